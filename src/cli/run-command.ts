/**
 * `mbpo-arm run`: runs episodes of a task with a fixed policy on a robot, through the same control
 * loop and safety filter that training uses, and reports each episode.
 */
import { join } from "node:path";
import type { Config } from "../config/config.js";
import type { EpisodeResult, Transition } from "../control/episode.js";
import type { Policy } from "../control/policy.js";
import { type ControlStack, createControlStack } from "../control/stack.js";
import type { TimingSummary } from "../control/tick-timer.js";
import { recordEpisodes, TRANSITIONS_FILE, TransitionLog } from "../data/transition-log.js";
import { Rng } from "../util/rng.js";
import type { Logger } from "./logger.js";

export interface RunSummary {
  episodes: number;
  successRate: number;
  meanReturn: number;
  meanFinalDistance: number;
  /** Interventions over the whole run, by kind. */
  interventions: Record<string, number>;
  /** Largest |effort| sent per joint over the run, as a fraction of its effort limit. */
  peakEffortFraction: number[];
  /** Control tick compute time (read state → policy → safety → send), µs. */
  tick: TimingSummary;
  fault?: string;
  aborted: boolean;
}

export interface RunOptions {
  episodes: number;
  seed: number;
  signal?: AbortSignal;
  onEpisode?: (result: EpisodeResult) => void;
  onTransition?: (t: Transition) => void;
}

/** Runs episodes on an already-built stack. The driver must be started. */
export async function runEpisodes(
  stack: ControlStack,
  policy: Policy,
  options: RunOptions,
): Promise<RunSummary> {
  // Episodes draw their start poses and goals from their own stream, so that the same seed gives
  // the same episodes whatever the policy draws from its own.
  const episodeRng = new Rng(options.seed, 1);
  const results: EpisodeResult[] = [];
  for (let i = 0; i < options.episodes; i++) {
    if (options.signal?.aborted) break;
    const episode = stack.task.sampleEpisode(episodeRng);
    const result = await stack.runner.runEpisode(i, episode, policy, {
      signal: options.signal,
      onTransition: options.onTransition,
    });
    results.push(result);
    options.onEpisode?.(result);
    if (result.fault !== undefined || result.aborted) break;
  }
  return summarise(results, stack, options.signal?.aborted ?? false);
}

function summarise(results: EpisodeResult[], stack: ControlStack, aborted: boolean): RunSummary {
  const n = results.length;
  const mean = (f: (r: EpisodeResult) => number) =>
    n === 0 ? Number.NaN : results.reduce((s, r) => s + f(r), 0) / n;
  const interventions: Record<string, number> = {};
  const peak = new Array<number>(stack.model.dof).fill(0);
  for (const r of results) {
    for (const [kind, count] of Object.entries(r.interventions))
      interventions[kind] = (interventions[kind] ?? 0) + count;
    r.peakEffortFraction.forEach((p, j) => {
      peak[j] = Math.max(peak[j], p);
    });
  }
  const fault = results.find((r) => r.fault !== undefined)?.fault;
  return {
    episodes: n,
    successRate: mean((r) => (r.success ? 1 : 0)),
    meanReturn: mean((r) => r.return),
    meanFinalDistance: mean((r) => r.finalDistance),
    interventions,
    peakEffortFraction: peak,
    tick: stack.loop.timing.summary().compute,
    ...(fault !== undefined ? { fault } : {}),
    aborted,
  };
}

export function formatEpisode(r: EpisodeResult, total: number): string {
  const interventions = Object.entries(r.interventions)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const peak = r.peakEffortFraction.map((p) => p.toFixed(2)).join(" ");
  return (
    `episode ${r.episode + 1}/${total}  return ${r.return.toFixed(2)}  ` +
    `success ${r.success ? "yes" : "no"}  final distance ${(r.finalDistance * 100).toFixed(1)} cm  ` +
    `interventions: ${interventions || "none"}  peak |effort|/limit: ${peak}` +
    (r.resetReached ? "" : "  (reset move timed out)") +
    (r.fault !== undefined ? `  FAULT ${r.fault}` : "")
  );
}

export function formatSummary(s: RunSummary): string {
  return (
    `${s.episodes} episodes: success ${(s.successRate * 100).toFixed(0)}%, ` +
    `mean return ${s.meanReturn.toFixed(2)}, mean final distance ${(s.meanFinalDistance * 100).toFixed(1)} cm; ` +
    `tick median ${s.tick.medianUs.toFixed(1)} µs, p99 ${s.tick.p99Us.toFixed(1)} µs` +
    (s.fault !== undefined ? `; stopped by safety fault: ${s.fault}` : "") +
    (s.aborted ? "; stopped by the user" : "")
  );
}

export interface RunCommandOptions {
  config: Config;
  policy: (stack: ControlStack) => Policy;
  episodes: number;
  json: boolean;
  logger: Logger;
  signal: AbortSignal;
  /** Run directory: the transition log goes to DIR/transitions.mcap. Undefined: no log. */
  outDir?: string;
}

/** The CLI body of `run`: builds the stack, runs, prints, and always stops the driver. */
export async function runCommand(options: RunCommandOptions): Promise<RunSummary> {
  const { config, logger, json } = options;
  const stack = createControlStack(config);
  let policy = options.policy(stack);
  let log: TransitionLog | undefined;
  let recorder: ReturnType<typeof recordEpisodes> | undefined;
  if (options.outDir !== undefined) {
    log = await TransitionLog.open(join(options.outDir, TRANSITIONS_FILE), {
      jointNames: stack.model.joints.map((j) => j.name),
      dof: stack.model.dof,
      obsSize: stack.task.observationSize,
      actSize: stack.task.actionSize,
      goalSize: stack.task.goalSize,
      episodeSteps: stack.task.episodeSteps,
    });
    log.onError = (message) => logger.error(`transition log stopped: ${message}`);
    recorder = recordEpisodes(log, stack.driver, policy, stack.model.dof);
    policy = recorder.policy;
    logger.info(`transition log: ${log.path}`);
  }
  logger.info(
    `run: driver ${config.driver}, task ${stack.task.name}, policy ${policy.name}, ` +
      `${options.episodes} episodes, seed ${config.seed}, urdf ${stack.urdfPath}`,
  );
  await stack.driver.start();
  try {
    const summary = await runEpisodes(stack, policy, {
      episodes: options.episodes,
      seed: config.seed,
      signal: options.signal,
      onTransition: recorder?.onTransition,
      // Each episode's line is the progress report of a run.
      onEpisode: (r) => {
        recorder?.onEpisode(r);
        if (json) process.stdout.write(`${JSON.stringify({ type: "episode", ...r })}\n`);
        else logger.info(formatEpisode(r, options.episodes));
        logger.debug("episode", { ...r });
      },
    });
    if (json) process.stdout.write(`${JSON.stringify({ type: "summary", ...summary })}\n`);
    else logger.info(formatSummary(summary));
    logger.debug("summary", { ...summary });
    if (summary.fault !== undefined) logger.error(`safety fault latched: ${summary.fault}`);
    return summary;
  } finally {
    await stack.driver.stop();
    if (log !== undefined) {
      const stats = await log.close();
      logger.info(
        `transition log: ${stats.episodes} episodes, ${stats.messages} messages, ${stats.bytes} bytes in ${stats.path}`,
      );
    }
  }
}
