/**
 * A whole training run, start to end, on an ArmApp: the run prepared (a new one checked, or a
 * resumed one read back) and its bootstrap read before anything moves, the driver started, the
 * learner started, episodes until the target or a stop, a checkpoint on the way out, the arm brought
 * to rest and the driver stopped. `mbpo-arm train` calls this; the ROS node drives the same
 * LearningRun through its services (src/ros/).
 */
import { resolve } from "node:path";
import type { Config } from "../config/config.js";
import type { ControlStack } from "../control/stack.js";
import { type BootstrapResult, loadBootstrap } from "../data/bootstrap.js";
import type { BackendSelection } from "../mbpo/backend.js";
import {
  type MetricsRow,
  type TrainSettings,
  type TrainSummary,
  verifyCheckpoint,
} from "../train/run-dir.js";
import { CHECKSUM_FILE } from "../util/checksums.js";
import { ArmApp, type ArmAppOptions } from "./app.js";
import type { AppEvent, EventSink } from "./events.js";
import { type AppLogger, LearningRun } from "./learning.js";
import { type PreparedRun, prepareNewRun, prepareResume } from "./run-setup.js";

export interface LearnSetup {
  /** The run directory. */
  out: string;
  /** A new run: its control settings and training settings. Ignored when resuming. */
  config?: Config;
  settings?: TrainSettings;
  /** Continue the run in `out` from its checkpoint. */
  resume?: boolean;
  /** A new run: a bag or transition log whose transitions go into the real buffer first. */
  bootstrap?: { file: string; jointStatesTopic?: string; commandsTopic?: string };
  /** Resume only: a new target of real steps. */
  steps?: number;
  /** A new run: force a TensorFlow.js backend (default the fastest present). */
  tfBackend?: string;
  /** A new run: threads of the wasm backend (default 1). */
  tfThreads?: number;
  /** Write every real transition to DIR/transitions*.mcap (default true). */
  transitionLog?: boolean;
  /** Tests only: a test double of the learner module. */
  learnerModule?: string;
}

export interface TrainOptions extends LearnSetup {
  signal?: AbortSignal;
  logger: AppLogger;
  onEvent?: EventSink;
  /** After each training episode's row is written. */
  onEpisode?: (row: MetricsRow, summary: { realSteps: number; stepsTarget: number }) => void;
  /** Once the learner is ready, before the first episode. */
  onStart?: (info: { realSteps: number; stepsTarget: number; backend: BackendSelection }) => void;
  /** Tests only: sees the control stack once built (e.g. to record what the driver is sent). */
  inspectStack?: (stack: ControlStack) => void;
}

export interface TrainOutcome {
  summary: TrainSummary;
  /** The run directory (absolute). */
  out: string;
}

/** A learning run made ready on an app whose driver is not started yet. */
export interface PreparedLearning {
  prepared: PreparedRun;
  bootstrap: BootstrapResult | undefined;
  out: string;
  /** Things the user should know before the run starts (logged as warnings). */
  warnings: string[];
}

/**
 * Checks the run (a one-line error for bad settings or a directory that holds another run) and
 * reads its bootstrap. The app's stack must be built from `prepared.config`: see configForRun.
 */
export async function prepareLearning(setup: LearnSetup, stack: ControlStack): Promise<PreparedLearning> {
  const out = resolve(setup.out);
  const prepared = setup.resume ? prepareResume(out, setup) : prepareNewRun(out, setup, stack);
  const warnings: string[] = [];
  // A damaged checkpoint is refused here, naming the file, before anything is loaded or moves.
  if (setup.resume && !verifyCheckpoint(out))
    warnings.push(
      `--resume ${out}: the checkpoint has no ${CHECKSUM_FILE} (written by an older mbpo-arm): its files are not verified, only checked for non-finite values`,
    );
  const bootstrap =
    setup.bootstrap !== undefined && !setup.resume
      ? await loadBootstrap(setup.bootstrap.file, stack, {
          jointStatesTopic: setup.bootstrap.jointStatesTopic,
          commandsTopic: setup.bootstrap.commandsTopic,
        }).catch((error: Error) => {
          throw new Error(`train --bootstrap: ${error.message.split("\n")[0]}`);
        })
      : undefined;
  if (bootstrap !== undefined && bootstrap.transitions.length === 0) {
    throw new Error(`train --bootstrap: ${bootstrap.file} holds no transitions to learn from`);
  }
  return { prepared, bootstrap, out, warnings };
}

/** The control settings a run uses: a resumed run's own (config.yaml), else the given ones. */
export function configForRun(setup: LearnSetup): Config {
  if (setup.resume) return prepareResume(resolve(setup.out), setup).config;
  if (setup.config === undefined) throw new Error("train: a new run needs config and settings");
  return setup.config;
}

export function createLearningRun(
  app: ArmApp,
  ready: PreparedLearning,
  setup: LearnSetup,
  emit: EventSink,
): LearningRun {
  for (const warning of ready.warnings) app.logger.warn(warning);
  return new LearningRun(app.stack, app.pacing, {
    out: ready.out,
    prepared: ready.prepared,
    resumed: setup.resume === true,
    bootstrap: ready.bootstrap,
    transitionLog: setup.transitionLog,
    learnerModule: setup.learnerModule,
    logger: app.logger,
    emit,
  });
}

/** Runs (or resumes) a training run; resolves when it completes, is interrupted, or faults. */
export async function train(
  options: TrainOptions,
  appOptions: Partial<ArmAppOptions> = {},
): Promise<TrainOutcome> {
  const { logger } = options;
  const signal = options.signal ?? new AbortController().signal;
  const emit = (event: AppEvent) => {
    options.onEvent?.(event);
    if (event.type === "learn-start") options.onStart?.(event);
    if (event.type === "row") options.onEpisode?.(event.row, event);
  };
  const app = ArmApp.create({ ...appOptions, config: configForRun(options), logger, emit });
  options.inspectStack?.(app.stack);
  // Checked and read before anything moves: a bad run or bootstrap stops here.
  const ready = await prepareLearning(options, app.stack);
  const run = createLearningRun(app, ready, options, emit);
  const warnOnAbort = () => {
    if (run.training)
      logger.warn(
        "train: the learner stops at its next gradient step (its remaining work is kept for the resume); the arm is held while a checkpoint is saved",
      );
  };
  signal.addEventListener("abort", warnOnAbort, { once: true });
  try {
    await app.start();
    await run.start(signal);
    const outcome = await run.run(signal);
    const summary = await run.close();
    if (outcome === "stopped")
      logger.warn(`train: stopped; continue with: mbpo-arm train --resume ${ready.out}`);
    return { summary, out: ready.out };
  } finally {
    signal.removeEventListener("abort", warnOnAbort);
    // The arm is brought to rest and the driver stopped first; then whatever is still open is freed.
    await app.close();
    await run.abandon();
  }
}
