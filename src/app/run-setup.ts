/**
 * A learning run before anything moves: a new run's settings checked and its learner spec built,
 * or a resumed run read back from its directory. Nothing is written here; `write` puts the files in
 * place once the learner has started (so a run that cannot start leaves no directory behind).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type Config, descriptionOptions, loadConfig } from "../config/config.js";
import type { ControlStack } from "../control/stack.js";
import { checkNoRunLog } from "../data/run-log.js";
import {
  DEFAULT_PROFILE,
  type HyperparameterOverrides,
  resolveHyperparameters,
} from "../mbpo/hyperparameters.js";
import { controlSpecFromConfig, type LearnerSpec } from "../mbpo/learner.js";
import {
  checkpointDir,
  type HostState,
  hasCheckpoint,
  RUN_FILES,
  type RunFile,
  readHostState,
  readRunFile,
  recoverCheckpoint,
  type TrainSettings,
  writeConfigYaml,
  writeMetrics,
  writeRunFile,
} from "../train/run-dir.js";

export interface RunSetupOptions {
  config?: Config;
  settings?: TrainSettings;
  /** A new run: force a TensorFlow.js backend. */
  tfBackend?: string;
  /** A new run: threads of the wasm backend. */
  tfThreads?: number;
  /** Resume only: a new target of real steps. */
  steps?: number;
}

/** A run ready to start: `write` puts its files in place once the learner has started. */
export interface PreparedRun {
  run: RunFile;
  config: Config;
  host: HostState;
  write: () => void;
}

export function prepareNewRun(
  out: string,
  options: RunSetupOptions,
  stack: Pick<ControlStack, "urdfPath" | "task" | "model">,
): PreparedRun {
  const { config, settings } = options;
  if (config === undefined || settings === undefined)
    throw new Error("train: a new run needs config and settings");
  checkSettings(settings);
  checkNoRunLog(out, "--out", `continue its training run with --resume ${out}, or choose another directory`);
  for (const file of [RUN_FILES.run, RUN_FILES.metrics, RUN_FILES.checkpoint]) {
    if (existsSync(join(out, file))) {
      throw new Error(
        `--out ${out}: already holds a training run (${file}); continue it with --resume ${out}, or choose another directory`,
      );
    }
  }
  const spec: LearnerSpec = {
    algo: settings.algo,
    urdf: stack.urdfPath,
    task: { name: stack.task.name, params: stack.task.params() },
    seed: settings.seed,
    ...(options.tfBackend !== undefined ? { backend: options.tfBackend } : {}),
    ...(options.tfThreads !== undefined ? { threads: options.tfThreads } : {}),
    ...(settings.profile !== undefined ? { profile: settings.profile } : {}),
    ...(settings.hyperparameters !== undefined ? { hyperparameters: settings.hyperparameters } : {}),
    control: controlSpecFromConfig(config, stack.model),
    description: descriptionOptions(config),
  };
  // Bad hyperparameters are a one-line error now, not a learner failure later.
  resolveHyperparameters(spec.hyperparameters ?? {}, spec.profile);
  const run: RunFile = { version: 1, settings, learner: spec };
  return {
    run,
    config,
    host: { version: 1, episodes: 0, realSteps: 0, evals: 0, rows: [], elapsedSeconds: 0 },
    write: () => {
      mkdirSync(out, { recursive: true });
      writeConfigYaml(out, config);
      writeRunFile(out, run);
      writeMetrics(out, []);
    },
  };
}

export function prepareResume(out: string, options: RunSetupOptions): PreparedRun {
  if (!existsSync(out)) throw new Error(`--resume ${out}: no such directory`);
  recoverCheckpoint(out);
  if (!hasCheckpoint(out)) {
    throw new Error(
      `--resume ${out}: no checkpoint there (${join(checkpointDir(out), "host.json")} is missing)`,
    );
  }
  const run = readRunFile(out);
  const config = loadConfig(join(out, RUN_FILES.config));
  const host = readHostState(out);
  const newTarget = options.steps !== undefined && options.steps !== run.settings.steps;
  if (newTarget) run.settings = { ...run.settings, steps: options.steps as number };
  checkSettings(run.settings);
  return {
    run,
    config,
    host,
    write: () => {
      if (newTarget) writeRunFile(out, run);
      // Rows written after the checkpoint are dropped: the resumed run writes them again.
      writeMetrics(out, host.rows);
    },
  };
}

export function checkSettings(s: TrainSettings): void {
  const positive = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min)
      throw new Error(`train: ${name} must be an integer ≥ ${min}, got ${v}`);
  };
  if (s.algo !== "mbpo" && s.algo !== "sac")
    throw new Error(`train: algo must be mbpo or sac, got ${s.algo}`);
  // 0: until stopped (the ROS node's `steps:=0`).
  positive("steps", s.steps, 0);
  positive("seed", s.seed, 0);
  positive("evalEvery", s.evalEvery, 1);
  positive("evalEpisodes", s.evalEpisodes, 0);
  positive("checkpointEvery", s.checkpointEvery, 1);
}

/**
 * --profile (DEFAULT_PROFILE when not given; recorded in the run) and --hp (overrides by section
 * and key; string values parsed as YAML, e.g. [64,64]).
 */
export function hyperparameterSettings(
  profile: string | undefined,
  hp: Record<string, unknown>,
): Pick<TrainSettings, "profile" | "hyperparameters"> & { profile: string } {
  const overrides: HyperparameterOverrides = {};
  for (const [key, raw] of Object.entries(hp)) {
    const dot = key.indexOf(".");
    if (dot <= 0 || dot === key.length - 1) {
      throw new Error(`--hp: expected section.key=value (e.g. sac.batchSize=128), got "${key}"`);
    }
    const value = typeof raw === "string" ? parseYaml(raw) : raw;
    const section = key.slice(0, dot);
    overrides[section] = { ...overrides[section], [key.slice(dot + 1)]: value };
  }
  // Checked here so that a bad name or value is a one-line error before anything starts.
  const named = profile ?? DEFAULT_PROFILE;
  resolveHyperparameters(overrides, named);
  return {
    profile: named,
    ...(Object.keys(overrides).length > 0 ? { hyperparameters: overrides } : {}),
  };
}
