/**
 * `mbpo-arm bootstrap --bag FILE.mcap --out DIR`: converts a rosbag2 recording of the arm (e.g. a
 * teleop session) into real transitions, written as a transition log (DIR/transitions.mcap, source
 * TELEOP) that `train --bootstrap` and `log summary` read.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/config.js";
import type { EpisodeResult } from "../control/episode.js";
import { createControlStack } from "../control/stack.js";
import { type BootstrapResult, loadBootstrap } from "../data/bootstrap.js";
import type { EpisodeRecording } from "../data/episode-recording.js";
import { addLogTopics, SOURCE_TELEOP, writeEpisode } from "../data/log-messages.js";
import { loadZstd, Ros2McapWriter } from "../data/mcap-writer.js";
import { checkNoRunLog, TRANSITIONS_FILE } from "../data/run-log.js";
import type { Task } from "../tasks/task.js";
import type { Logger } from "./logger.js";

export interface BootstrapCommandOptions {
  config: Config;
  bag: string;
  outDir: string;
  jointStatesTopic?: string;
  commandsTopic?: string;
  commandJoints?: string[];
  maxGap?: number;
  /** Convert from joint states even when the bag is a transition log. */
  fromJointStates?: boolean;
  logger: Logger;
}

export interface BootstrapCommandReport {
  bag: string;
  kind: BootstrapResult["kind"];
  transitions: number;
  episodes: number;
  segments: number;
  effortSource: BootstrapResult["effortSource"];
  clippedActions: number;
  messagesRead: number;
  problem?: string;
  /** The transition log written (absent when the bag already was one). */
  out?: string;
  seconds: number;
}

export async function runBootstrapCommand(options: BootstrapCommandOptions): Promise<BootstrapCommandReport> {
  const { config, logger } = options;
  const started = performance.now();
  // Before the bag is read: a bootstrap never replaces a run's log (run-log.ts).
  checkNoRunLog(options.outDir, "--out");
  const stack = createControlStack(config);
  const result = await loadBootstrap(options.bag, stack, {
    jointStatesTopic: options.jointStatesTopic,
    commandsTopic: options.commandsTopic,
    commandJoints: options.commandJoints,
    maxGap: options.maxGap,
    from: options.fromJointStates === true ? "joint-states" : "auto",
  });
  if (result.read.problem !== undefined) logger.warn(result.read.problem);
  const report: BootstrapCommandReport = {
    bag: options.bag,
    kind: result.kind,
    transitions: result.transitions.length,
    episodes: result.episodes.length,
    segments: result.segments,
    effortSource: result.effortSource,
    clippedActions: result.clippedActions,
    messagesRead: result.read.messages,
    ...(result.read.problem !== undefined ? { problem: result.read.problem } : {}),
    seconds: 0,
  };
  if (result.kind === "transition-log") {
    logger.info(
      `${options.bag} is already a transition log (${result.transitions.length} transitions); train --bootstrap takes it as it is (--from-joint-states converts it as a demonstration instead)`,
    );
  } else {
    if (result.transitions.length === 0) {
      throw new Error(
        `${options.bag}: no transitions (no stretch of joint states and efforts longer than one control period without a gap)`,
      );
    }
    mkdirSync(options.outDir, { recursive: true });
    const out = join(options.outDir, TRANSITIONS_FILE);
    await loadZstd();
    const writer = new Ros2McapWriter(out, { library: "mbpo-arm bootstrap" });
    addLogTopics(writer);
    const names = stack.model.joints.map((j) => j.name);
    for (const episode of result.episodes) {
      writeEpisode(
        writer,
        episode,
        names,
        episodeResult(episode, stack.task, stack.model.joints),
        SOURCE_TELEOP,
      );
      writer.flush();
    }
    writer.close();
    report.out = out;
    logger.info(
      `bootstrap: ${result.transitions.length} transitions in ${result.episodes.length} episodes from ${result.segments} stretches without gaps ` +
        `(effort from ${result.effortSource === "commands" ? "the command topic" : "JointState.effort"}; ` +
        `${result.clippedActions} actions clipped to [-1, 1]) → ${out}`,
    );
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** An episode's report, as the run would have made it (no reset move, no safety filter data). */
function episodeResult(
  r: EpisodeRecording,
  task: Task,
  joints: readonly { effort: number }[],
): EpisodeResult {
  const o = task.observationSize;
  const last = r.nextObservation.subarray((r.rows - 1) * o, r.rows * o);
  let ret = 0;
  for (let i = 0; i < r.rows; i++) ret += r.reward[i];
  const peak = joints.map((j, k) => {
    let m = 0;
    for (let i = 0; i < r.rows; i++) m = Math.max(m, Math.abs(r.effort[i * r.dof + k]) / j.effort);
    return m;
  });
  return {
    episode: r.episode,
    steps: r.rows,
    return: ret,
    success: task.success(last),
    finalDistance: task.distance(last),
    resetReached: false,
    interventions: {},
    peakEffortFraction: peak,
    aborted: false,
  };
}
