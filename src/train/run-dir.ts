/**
 * A training run's directory:
 *
 *   config.yaml        the control settings, as a ROS 2 parameter file (usable with --config)
 *   run.json           the training settings and the learner spec
 *   metrics.csv        one row per training episode (METRICS_COLUMNS), appended as each ends
 *   summary.json       the run so far (rewritten at each checkpoint and at the end)
 *   curve.svg          the learning curve: eval success and training success against real steps
 *   checkpoint/        learner/ (Learner.save), actor.json (the actor as MlpJson), host.json,
 *                      SHA256SUMS (every file's digest, verified before a resume loads it)
 *   transitions.mcap   every real transition (src/data/transition-log.ts); a resumed session
 *                      writes its own transitions-from-episode-N.mcap
 *
 * A checkpoint is written into a temporary directory and renamed into place, so `checkpoint/` is
 * always a complete one; a crash between the two renames leaves `.checkpoint-old`, which
 * recoverCheckpoint() puts back.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { type Config, NODE_NAME } from "../config/config.js";
import type { MlpJson } from "../control/policies/mlp.js";
import type { TimingSummary } from "../control/tick-timer.js";
import type { Algorithm, LearnerSpec } from "../mbpo/learner.js";
import { verifyChecksums, writeChecksums } from "../util/checksums.js";
import { renderLineChart } from "./curve-svg.js";

/** The columns of metrics.csv, in order. Not-applicable values are written as empty fields. */
export const METRICS_COLUMNS = [
  "episode",
  /** "random" (initial exploration) or "learned" (the actor, stochastic). */
  "policy",
  /** Real transitions collected so far, this episode included. */
  "real_steps",
  "episode_steps",
  "return",
  "success",
  "final_distance_m",
  /** Evaluation after this episode (mean action, eval_episodes episodes); empty when none ran. */
  "eval_success",
  "eval_return",
  /** Mean over the evaluation episodes of the task's distance to goal at the end (m for reach). */
  "eval_final_distance_m",
  "model_trained",
  "model_holdout_nll",
  "model_holdout_mse",
  "rollout_length",
  "rollouts_kept",
  "rollouts_filtered_terminated",
  "rollouts_filtered_joint_limits",
  "rollouts_filtered_uncertainty",
  "sac_updates",
  "q_loss",
  "policy_loss",
  "alpha",
  /** Wall-clock seconds: the episode on the robot, the whole update phase, its parts, the evaluation. */
  "seconds_episode",
  "seconds_update",
  "seconds_model",
  "seconds_rollouts",
  "seconds_sac",
  "seconds_eval",
  /** Hold ticks run while the learner worked after this episode, and their timing (µs). */
  "hold_ticks",
  "hold_tick_median_us",
  "hold_tick_p99_us",
  "hold_tick_max_us",
  "hold_late_p99_us",
  "hold_late_max_us",
  /** Safety filter interventions during the episode (its reset move included), all kinds. */
  "safety_interventions",
] as const;

export type MetricsColumn = (typeof METRICS_COLUMNS)[number];
export type MetricsRow = Record<MetricsColumn, number | string>;

/** The training settings (run.json), everything a resume needs besides config.yaml. */
export interface TrainSettings {
  algo: Algorithm;
  /** Real steps to collect. */
  steps: number;
  seed: number;
  /** Evaluate after every evalEvery-th training episode (and at the end). */
  evalEvery: number;
  evalEpisodes: number;
  /** Save a checkpoint after every checkpointEvery-th training episode (and at the end). */
  checkpointEvery: number;
  /** Passed to the learner spec: a named profile (HYPERPARAMETER_PROFILES), then overrides. */
  profile?: string;
  hyperparameters?: Record<string, Record<string, unknown>>;
  /** What the real buffer started with (train --bootstrap); absent without one. */
  bootstrap?: BootstrapInfo;
}

/** A bootstrap as a run records it. */
export interface BootstrapInfo {
  file: string;
  /** "transition-log" (one of our runs) or "teleop" (a rosbag2 recording, converted). */
  kind: string;
  /** Transitions stored in the real buffer, and refused ones (non-finite values). */
  transitions: number;
  rejected: number;
  /** The dynamics model's holdout figures after pre-training on them (NaN: no model, SAC). */
  modelHoldoutNll: number;
  modelHoldoutMse: number;
}

export interface RunFile {
  version: 1;
  settings: TrainSettings;
  learner: LearnerSpec;
}

/** The host's side of a checkpoint (checkpoint/host.json). */
export interface HostState {
  version: 1;
  /** Training episodes completed, their update phases included. */
  episodes: number;
  realSteps: number;
  /** Evaluation rounds completed. */
  evals: number;
  /** Every metrics row written so far. */
  rows: MetricsRow[];
  /** A row whose evaluation was interrupted: the resumed run evaluates, then writes it. */
  pendingRow?: MetricsRow;
  /**
   * A row whose update phase a stop cut short (its learner columns so far): the resumed run first
   * finishes the phase (the learner keeps where it stood), then evaluates and writes the row.
   */
  pendingUpdate?: MetricsRow;
  /** Wall-clock seconds of training before this session. */
  elapsedSeconds: number;
}

export interface TrainSummary {
  algo: Algorithm;
  task: string;
  seed: number;
  backend: string;
  stepsTarget: number;
  realSteps: number;
  episodes: number;
  evals: number;
  /** Eval success of the last evaluation, and the best one; NaN before the first. */
  finalEvalSuccess: number;
  bestEvalSuccess: number;
  /** Real steps at the first evaluation with success ≥ 0.9, or null. */
  stepsTo90: number | null;
  wallSeconds: number;
  /** Summed wall-clock seconds per phase over the run. */
  seconds: { episodes: number; update: number; model: number; rollouts: number; sac: number; eval: number };
  /**
   * Control tick compute time (every tick), and the hold ticks while the learner worked: compute
   * time and lateness (µs). These three cover this session only (a resumed run starts them afresh);
   * metrics.csv has the hold figures of every episode.
   */
  episodeTicks: TimingSummary;
  holdTicks: TimingSummary;
  holdLateness: TimingSummary;
  completed: boolean;
  interrupted: boolean;
  fault?: string;
  checkpoint: string | null;
  /** What the run was bootstrapped from, or null. */
  bootstrap: BootstrapInfo | null;
  /** This session's transition log (every real transition, training and evaluation), or null. */
  transitionLog: { path: string; episodes: number; messages: number; bytes: number } | null;
}

export const RUN_FILES = {
  config: "config.yaml",
  run: "run.json",
  metrics: "metrics.csv",
  summary: "summary.json",
  curve: "curve.svg",
  checkpoint: "checkpoint",
} as const;

export const CHECKPOINT_FILES = { learner: "learner", actor: "actor.json", host: "host.json" } as const;

const OLD_CHECKPOINT = ".checkpoint-old";

export function writeConfigYaml(dir: string, config: Config): void {
  const text = stringifyYaml({ [NODE_NAME]: { ros__parameters: config } });
  writeFileSync(
    join(dir, RUN_FILES.config),
    `# mbpo-arm settings of this training run (a ROS 2 parameter file; --config accepts it)\n${text}`,
  );
}

export function writeRunFile(dir: string, run: RunFile): void {
  writeFileSync(join(dir, RUN_FILES.run), `${JSON.stringify(run, null, 2)}\n`);
}

export function readRunFile(dir: string): RunFile {
  const path = join(dir, RUN_FILES.run);
  let run: RunFile;
  try {
    run = JSON.parse(readFileSync(path, "utf8")) as RunFile;
  } catch (error) {
    throw new Error(`${path}: cannot read the run's settings (${firstLine(error)})`);
  }
  if (run?.version !== 1 || typeof run.settings !== "object" || typeof run.learner !== "object") {
    throw new Error(`${path}: not a run file of this version (expected version 1 with settings and learner)`);
  }
  return run;
}

/** Rewrites metrics.csv from the rows (a resume drops rows written after its checkpoint). */
export function writeMetrics(dir: string, rows: readonly MetricsRow[]): void {
  const lines = [METRICS_COLUMNS.join(","), ...rows.map(csvLine)];
  writeFileSync(join(dir, RUN_FILES.metrics), `${lines.join("\n")}\n`);
}

export function appendMetricsRow(dir: string, row: MetricsRow): void {
  appendFileSync(join(dir, RUN_FILES.metrics), `${csvLine(row)}\n`);
}

function csvLine(row: MetricsRow): string {
  return METRICS_COLUMNS.map((c) => csvField(row[c])).join(",");
}

function csvField(value: number | string | undefined): string {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  if (value === undefined) return "";
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function writeSummary(dir: string, summary: TrainSummary): void {
  writeFileSync(join(dir, RUN_FILES.summary), `${JSON.stringify(summary, nanToNull, 2)}\n`);
}

function nanToNull(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value;
}

/** curve.svg: eval success (dots) and a 10-episode moving average of training success. */
export function writeCurve(dir: string, rows: readonly MetricsRow[], title: string): void {
  const evalPoints: [number, number][] = [];
  const trainPoints: [number, number][] = [];
  const window: number[] = [];
  for (const row of rows) {
    const steps = Number(row.real_steps);
    if (typeof row.eval_success === "number" && Number.isFinite(row.eval_success)) {
      evalPoints.push([steps, row.eval_success]);
    }
    window.push(Number(row.success));
    if (window.length > 10) window.shift();
    trainPoints.push([steps, window.reduce((a, b) => a + b, 0) / window.length]);
  }
  const svg = renderLineChart({
    title,
    xLabel: "real steps",
    yLabel: "success rate",
    yRange: [0, 1],
    series: [
      { name: "evaluation (mean action)", points: evalPoints, color: "#1f77b4", markers: true },
      { name: "training episodes (moving average of 10)", points: trainPoints, color: "#ff7f0e" },
    ],
  });
  writeFileSync(join(dir, RUN_FILES.curve), svg);
}

export function checkpointDir(runDir: string): string {
  return join(runDir, RUN_FILES.checkpoint);
}

/** Puts back a checkpoint left aside by a save interrupted between its two renames. */
export function recoverCheckpoint(runDir: string): void {
  const current = checkpointDir(runDir);
  const old = join(runDir, OLD_CHECKPOINT);
  if (!existsSync(current) && existsSync(join(old, CHECKPOINT_FILES.host))) renameSync(old, current);
}

/**
 * Verifies every file of the run's checkpoint against its SHA256SUMS (src/train/checksums.ts);
 * throws one line naming a damaged or missing file. False: a checkpoint written before checksums
 * existed (nothing to verify; the learner still checks every value it loads is finite).
 */
export function verifyCheckpoint(runDir: string): boolean {
  return verifyChecksums(checkpointDir(runDir));
}

export function hasCheckpoint(runDir: string): boolean {
  return existsSync(join(checkpointDir(runDir), CHECKPOINT_FILES.host));
}

export function readHostState(runDir: string): HostState {
  const path = join(checkpointDir(runDir), CHECKPOINT_FILES.host);
  let state: HostState;
  try {
    state = JSON.parse(readFileSync(path, "utf8"), nullToNaN) as HostState;
  } catch (error) {
    throw new Error(`${path}: cannot read the checkpoint (${firstLine(error)})`);
  }
  if (state?.version !== 1 || !Number.isInteger(state.episodes) || !Array.isArray(state.rows)) {
    throw new Error(`${path}: not a checkpoint of this version`);
  }
  return state;
}

function nullToNaN(_key: string, value: unknown): unknown {
  return value === null ? Number.NaN : value;
}

/**
 * Writes a checkpoint atomically: `fill(tmp)` writes the learner's part into a fresh temporary
 * directory, then the host state and the actor are added, and the directory is renamed into place.
 */
export async function writeCheckpoint(
  runDir: string,
  fill: (learnerDir: string) => Promise<void>,
  host: HostState,
  actor: MlpJson,
): Promise<string> {
  const tmp = join(runDir, `.checkpoint-tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await fill(join(tmp, CHECKPOINT_FILES.learner));
  writeFileSync(join(tmp, CHECKPOINT_FILES.actor), JSON.stringify(actor));
  writeFileSync(join(tmp, CHECKPOINT_FILES.host), JSON.stringify(host, nanToNull));
  writeChecksums(tmp);
  const current = checkpointDir(runDir);
  const old = join(runDir, OLD_CHECKPOINT);
  rmSync(old, { recursive: true, force: true });
  if (existsSync(current)) renameSync(current, old);
  renameSync(tmp, current);
  rmSync(old, { recursive: true, force: true });
  return current;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
