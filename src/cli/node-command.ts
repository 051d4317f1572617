/**
 * `mbpo-arm node`: the ROS 2 node (what `ros2 launch` runs, through lib/mbpo_arm/mbpo_arm_node),
 * and what `run --driver ros2` and `train --driver ros2` become: there is one ROS node. Everything
 * after `--ros-args` goes to rcl (remaps, `-p name:=value`, `--params-file`); the settings are the
 * node's parameters (see src/ros/parameters.ts and src/ros/node-parameters.ts).
 *
 * rclnodejs is loaded first: without a sourced ROS 2 the command stops with its one line before
 * anything is opened or written.
 */
import type { Config } from "../config/config.js";
import { loadRclnodejs, type Rclnodejs } from "../drivers/ros2/rclnodejs.js";
import { MbpoArmNode, type NodeDriver, type NodeLearnOptions, type NodeMode } from "../ros/node.js";
import { robotDescriptionFromGraph } from "../ros/robot-description.js";
import type { TrainSummary } from "../train/run-dir.js";
import type { Logger } from "./logger.js";

export interface NodeCommandOptions {
  mode: NodeMode;
  driver?: NodeDriver;
  policy: string;
  episodes: number;
  autostart: boolean;
  /** The whole command line; rcl takes the part after --ros-args. */
  argv: string[];
  logger: Logger;
  signal: AbortSignal;
  /** Run and teleop modes: the run directory for transitions.mcap; undefined: no log. */
  outDir?: string;
  learn?: NodeLearnOptions;
  /** The parameters' defaults (the CLI's config, for `run` and `train` over ROS). */
  defaults?: Config;
  /** End when the work of the (auto)start is done, instead of at Ctrl-C (`run`, `train`). */
  exitWhenFinished?: boolean;
  /** For tests: a stand-in for rclnodejs. */
  rcl?: Rclnodejs;
}

export interface NodeOutcome {
  /** A safety fault ended the work (exit code 3). */
  faulted: boolean;
  /** Learn mode: the run's summary, and the directory it is in. */
  summary?: TrainSummary;
  runDir?: string;
}

export async function runNodeCommand(options: NodeCommandOptions): Promise<NodeOutcome> {
  const { logger } = options;
  const rcl = options.rcl ?? (await loadRclnodejs());
  await rcl.init(undefined, options.argv);
  rcl.removeSignalHandlers();
  const node = rcl.createNode("mbpo_arm");
  let arm: MbpoArmNode | undefined;
  let finished = () => {};
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  try {
    // Spinning first: the description's subscription, then the driver's and the timers, need it.
    rcl.spin(node);
    // With robot_description_topic set, the arm is what the graph publishes, not the urdf parameter.
    const description = await robotDescriptionFromGraph(rcl, node, options.signal);
    if (description !== undefined)
      logger.info(`robot description from ${description.topic}, kept in ${description.path}`);
    arm = new MbpoArmNode(rcl, node, {
      mode: options.mode,
      driver: options.driver,
      policy: options.policy,
      episodes: options.episodes,
      autostart: options.autostart,
      logger,
      runLogDir: options.outDir,
      learn: options.learn,
      defaults: options.defaults,
      description: description?.path,
      onFinished: options.exitWhenFinished ? () => finished() : undefined,
    });
    await arm.start(options.signal);
    await new Promise<void>((resolve) => {
      if (options.signal.aborted) resolve();
      else options.signal.addEventListener("abort", () => resolve(), { once: true });
      void done.then(resolve);
    });
    // Learn mode: the checkpoint and run directory are finished; the arm is brought to rest.
    await arm.close();
    return {
      faulted: arm.faulted || arm.safety.fault !== undefined,
      summary: arm.summary,
      runDir: arm.runDir,
    };
  } finally {
    await arm?.close();
    node.destroy();
    if (!rcl.isShutdown()) rcl.shutdown();
  }
}
