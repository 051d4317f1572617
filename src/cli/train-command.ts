/**
 * `mbpo-arm train`: a training run (MBPO, or SAC as the model-free baseline) on a robot, with the
 * learner in a worker thread; progress on the console, everything else in the run directory (see
 * src/train/run-dir.ts). `--resume DIR` continues an interrupted run.
 */
import cliProgress from "cli-progress";
import { hyperparameterSettings } from "../app/run-setup.js";
import { train } from "../app/train.js";
import type { Config } from "../config/config.js";
import type { Algorithm } from "../mbpo/learner.js";
import type { MetricsRow, TrainSettings, TrainSummary } from "../train/run-dir.js";
import type { Logger } from "./logger.js";

export interface TrainCommandFlags {
  out?: string;
  resume?: string;
  steps?: number;
  seed?: number;
  algo: Algorithm;
  evalEvery: number;
  evalEpisodes: number;
  checkpointEvery: number;
  tfBackend?: string;
  tfThreads?: number;
  profile?: string;
  /** `--hp section.key=value` overrides, already split at "=" (values parsed as YAML). */
  hp: Record<string, unknown>;
  json: boolean;
  /** false with --no-transition-log. */
  transitionLog?: boolean;
  /** --bootstrap FILE (a new run only), with the teleop bag's topics. */
  bootstrap?: string;
  jointStates?: string;
  commands?: string;
}

export interface TrainCommandOptions {
  flags: TrainCommandFlags;
  /** Builds the control settings of a new run from the common flags (not called on --resume). */
  config: () => Config;
  logger: Logger;
  signal: AbortSignal;
}

export async function trainCommand(options: TrainCommandOptions): Promise<TrainSummary> {
  const { flags, logger, signal } = options;
  if (flags.tfBackend !== undefined) {
    // Checked here, so that a typo is a one-line error before anything starts.
    const { parseBackendName } = await import("../mbpo/backend.js");
    parseBackendName(flags.tfBackend);
  }
  if (flags.tfThreads !== undefined) {
    const { MAX_WASM_THREADS } = await import("../mbpo/wasm-threads.js");
    if (flags.tfThreads > MAX_WASM_THREADS) {
      throw new Error(`--tf-threads must be from 1 to ${MAX_WASM_THREADS}, got ${flags.tfThreads}`);
    }
  }
  let out: string;
  let config: Config | undefined;
  let settings: TrainSettings | undefined;
  if (flags.resume !== undefined) {
    if (flags.out !== undefined && flags.out !== flags.resume) {
      throw new Error(
        "train: --resume DIR continues the run in DIR; leave out --out (or give the same directory)",
      );
    }
    const fixed = [
      ["--seed", flags.seed],
      ["--profile", flags.profile],
      ["--hp", Object.keys(flags.hp).length > 0 ? flags.hp : undefined],
      // The learner restores the backend it was saved with (numbers differ between backends).
      ["--tf-backend", flags.tfBackend],
      ["--tf-threads", flags.tfThreads],
      // The bootstrapped transitions are in the checkpoint's real buffer already.
      ["--bootstrap", flags.bootstrap],
    ].filter(([, value]) => value !== undefined);
    if (fixed.length > 0) {
      throw new Error(
        `train --resume: ${fixed.map(([name]) => name).join(", ")} cannot change a run; it continues with its own settings (${flags.resume}/run.json)`,
      );
    }
    out = flags.resume;
  } else {
    if (flags.out === undefined) throw new Error("train: --out DIR is required (where the run is written)");
    if (flags.steps === undefined) throw new Error("train: --steps N is required (real steps to collect)");
    out = flags.out;
    config = options.config();
    settings = {
      algo: flags.algo,
      steps: flags.steps,
      seed: flags.seed ?? config.seed,
      evalEvery: flags.evalEvery,
      evalEpisodes: flags.evalEpisodes,
      checkpointEvery: flags.checkpointEvery,
      ...hyperparameterSettings(flags.profile, flags.hp),
    };
  }

  const progress = createProgress(flags.json, logger);
  try {
    const { summary, out: dir } = await train({
      out,
      config,
      settings,
      resume: flags.resume !== undefined,
      steps: flags.resume !== undefined ? flags.steps : undefined,
      tfBackend: flags.tfBackend,
      tfThreads: flags.tfThreads,
      bootstrap:
        flags.bootstrap === undefined
          ? undefined
          : { file: flags.bootstrap, jointStatesTopic: flags.jointStates, commandsTopic: flags.commands },
      transitionLog: flags.transitionLog !== false,
      signal,
      logger,
      onStart: (info) => {
        logger.info(
          `train: ${flags.resume !== undefined ? "resuming" : "starting"} in ${out} at ${info.realSteps} of ${info.stepsTarget} real steps`,
        );
        if (info.realSteps >= info.stepsTarget) {
          logger.info(
            `train: the run has reached its ${info.stepsTarget} steps; --steps N sets a higher target`,
          );
        }
        progress.start(info.stepsTarget, info.realSteps);
      },
      onEvent: (event) => {
        if (event.type === "learner" && event.state === "training")
          logger.debug("train: learner update phase (Ctrl-C stops it at its next gradient step)");
      },
      onEpisode: (row, info) => {
        if (flags.json) process.stdout.write(`${JSON.stringify({ type: "episode", ...finite(row) })}\n`);
        progress.episode(row, info.realSteps);
      },
    });
    progress.stop();
    if (flags.json) process.stdout.write(`${JSON.stringify({ type: "summary", ...summary })}\n`);
    else logger.info(formatTrainSummary(summary, dir));
    if (summary.fault !== undefined) logger.error(`safety stop: ${summary.fault}`);
    return summary;
  } finally {
    progress.stop();
  }
}

interface Progress {
  start(total: number, done: number): void;
  episode(row: MetricsRow, done: number): void;
  stop(): void;
}

/** A progress bar on a terminal; one log line per episode otherwise; nothing extra with --json. */
function createProgress(json: boolean, logger: Logger): Progress {
  if (json) return { start() {}, episode() {}, stop() {} };
  if (process.stderr.isTTY !== true) {
    return {
      start() {},
      episode(row, done) {
        logger.info(formatEpisodeRow(row, done));
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format:
        "train |{bar}| {value}/{total} real steps | episode {episode} return {ret} | eval success {evalSuccess} | ETA {eta_formatted}",
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  let lastEval = "–";
  return {
    start(total, done) {
      bar.start(total, done, { episode: "–", ret: "–", evalSuccess: lastEval });
      running = true;
    },
    episode(row, done) {
      if (typeof row.eval_success === "number" && Number.isFinite(row.eval_success)) {
        lastEval = `${Math.round(row.eval_success * 100)}%`;
      }
      bar.update(done, { episode: row.episode, ret: Number(row.return).toFixed(1), evalSuccess: lastEval });
      logger.debug(formatEpisodeRow(row, done));
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

export function formatEpisodeRow(row: MetricsRow, done: number): string {
  const evalPart =
    typeof row.eval_success === "number" && Number.isFinite(row.eval_success)
      ? `  eval success ${Math.round(row.eval_success * 100)}%`
      : "";
  const model =
    row.model_trained === 1 ? `  model holdout MSE ${Number(row.model_holdout_mse).toPrecision(3)}` : "";
  return (
    `episode ${row.episode} (${row.policy})  real steps ${done}  return ${Number(row.return).toFixed(2)}  ` +
    `success ${row.success === 1 ? "yes" : "no"}${evalPart}${model}  update ${Number(row.seconds_update).toFixed(2)} s  ` +
    `hold tick p99 ${Number(row.hold_tick_p99_us).toFixed(0)} µs`
  );
}

export function formatTrainSummary(s: TrainSummary, dir: string): string {
  const pct = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : "n/a");
  const state = s.completed ? "done" : s.fault !== undefined ? "stopped by a safety fault" : "interrupted";
  // A target of 0 (the node's steps:=0) means "until stopped".
  const steps = s.stepsTarget > 0 ? `${s.realSteps}/${s.stepsTarget}` : `${s.realSteps} (no target)`;
  return (
    `train ${state}: ${s.algo} on ${s.task}, ${steps} real steps in ${s.episodes} episodes, ` +
    `${s.wallSeconds.toFixed(1)} s; eval success ${pct(s.finalEvalSuccess)} (best ${pct(s.bestEvalSuccess)}), ` +
    `90% at ${s.stepsTo90 ?? "–"} steps; hold tick p99 ${s.holdTicks.p99Us.toFixed(0)} µs, max ${s.holdTicks.maxUs.toFixed(0)} µs, ` +
    `lateness p99 ${(s.holdLateness.p99Us / 1000).toFixed(1)} ms; backend ${s.backend}; run in ${dir}`
  );
}

/** NaN as null for JSON lines. */
function finite(row: MetricsRow): Record<string, number | string | null> {
  const out: Record<string, number | string | null> = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === "number" && !Number.isFinite(v) ? null : v;
  return out;
}
