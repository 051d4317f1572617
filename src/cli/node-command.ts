/**
 * `mbpo-arm node`: the ROS 2 node (what `ros2 launch` runs, through lib/mbpo_arm/mbpo_arm_node).
 * Everything after `--ros-args` goes to rcl (remaps, `-p name:=value`, `--params-file`); the
 * settings are the node's parameters (see src/drivers/ros2/parameters.ts).
 */
import { join } from "node:path";
import { SOURCE_POLICY, SOURCE_TELEOP } from "../data/log-messages.js";
import { TRANSITIONS_FILE, TransitionLog } from "../data/transition-log.js";
import { MbpoArmNode, type NodeMode } from "../drivers/ros2/node.js";
import { loadRclnodejs, type Rclnodejs } from "../drivers/ros2/rclnodejs.js";
import type { Logger } from "./logger.js";

export interface NodeCommandOptions {
  mode: NodeMode;
  policy: string;
  episodes: number;
  autostart: boolean;
  /** The whole command line; rcl takes the part after --ros-args. */
  argv: string[];
  logger: Logger;
  signal: AbortSignal;
  /** Run directory for transitions.mcap (every episode, or the teleop segments); undefined: no log. */
  outDir?: string;
  /** For tests: a stand-in for rclnodejs. */
  rcl?: Rclnodejs;
}

export async function runNodeCommand(options: NodeCommandOptions): Promise<void> {
  const { logger } = options;
  if (options.mode === "learn") {
    // The node has the hook (MbpoArmNodeOptions.learner); the learner worker is not wired in yet.
    throw new Error(
      "--mode learn: the MBPO learner is not wired into the ROS node yet; learn over ROS with `mbpo-arm train --driver ros2` (no node services), or use --mode run or --mode teleop",
    );
  }
  const rcl = options.rcl ?? (await loadRclnodejs());
  await rcl.init(undefined, options.argv);
  rcl.removeSignalHandlers();
  const node = rcl.createNode("mbpo_arm");
  let arm: MbpoArmNode | undefined;
  let log: TransitionLog | undefined;
  try {
    arm = new MbpoArmNode(rcl, node, {
      mode: options.mode,
      policy: options.policy,
      episodes: options.episodes,
      autostart: options.autostart,
      logger,
    });
    if (options.outDir !== undefined) {
      log = await TransitionLog.open(join(options.outDir, TRANSITIONS_FILE), {
        jointNames: arm.driver.jointNames,
        dof: arm.model.dof,
        obsSize: arm.task.observationSize,
        actSize: arm.task.actionSize,
        goalSize: arm.task.goalSize,
        episodeSteps: arm.task.episodeSteps,
        source: options.mode === "teleop" ? SOURCE_TELEOP : SOURCE_POLICY,
      });
      log.onError = (message) => logger.error(`transition log stopped: ${message}`);
      arm.recorder = log;
      logger.info(`transition log: ${log.path}`);
    }
    await arm.start();
    rcl.spin(node);
    await new Promise<void>((resolve) => {
      if (options.signal.aborted) resolve();
      else options.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    // Zero effort goes out before ROS shuts down.
    await arm?.close();
    if (log !== undefined) {
      const stats = await log.close();
      logger.info(`transition log: ${stats.episodes} episodes, ${stats.messages} messages in ${stats.path}`);
    }
    node.destroy();
    if (!rcl.isShutdown()) rcl.shutdown();
  }
}
