/**
 * Training on the robot: episodes on the control stack with the actor (stochastic), each episode's
 * real transitions handed to the learner in its worker thread, the update phase run there while
 * the control thread holds the arm, evaluations with the mean action, metrics and checkpoints in
 * the run directory (src/train/run-dir.ts), and resume.
 *
 * Reproducibility: every episode draws its start pose and goal, and the actor's exploration noise,
 * from its own seeded stream (by episode index), and the evaluation set is the same M episodes
 * every time. On the stepped simulator each episode starts with the twin placed exactly at its start
 * pose, at rest (as a Gym reset does), so nothing carries over from the hold between episodes. The
 * same seed and backend therefore give the same numbers, also across a Ctrl-C and --resume: an
 * episode cut short by Ctrl-C is discarded and run again by the resumed run.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Config, loadConfig } from "../config/config.js";
import type { EpisodeResult, Transition } from "../control/episode.js";
import { MlpPolicy } from "../control/policies/mlp.js";
import type { Policy, PolicyContext } from "../control/policy.js";
import { type ControlStack, createControlStack } from "../control/stack.js";
import { TickTimer, type TimingSummary } from "../control/tick-timer.js";
import { type BootstrapResult, loadBootstrap } from "../data/bootstrap.js";
import { TRANSITIONS_FILE, TransitionLog } from "../data/transition-log.js";
import type { JointState } from "../drivers/driver.js";
import { SimDriver } from "../drivers/sim.js";
import type { BackendSelection } from "../mbpo/backend.js";
import { resolveHyperparameters } from "../mbpo/hyperparameters.js";
import {
  type ActorWeights,
  controlSpecFromConfig,
  type LearnerSpec,
  type RealTransitionInput,
  type UpdateReport,
} from "../mbpo/learner.js";
import { RealTransitionPacker } from "../mbpo/transition-batch.js";
import { LearnerWorker } from "../mbpo/worker.js";
import type { TaskEpisode } from "../tasks/task.js";
import { Rng } from "../util/rng.js";
import { holdWhile } from "./hold.js";
import {
  appendMetricsRow,
  type BootstrapInfo,
  checkpointDir,
  type HostState,
  hasCheckpoint,
  type MetricsRow,
  RUN_FILES,
  type RunFile,
  readHostState,
  readRunFile,
  recoverCheckpoint,
  type TrainSettings,
  type TrainSummary,
  writeCheckpoint,
  writeConfigYaml,
  writeCurve,
  writeMetrics,
  writeRunFile,
  writeSummary,
} from "./run-dir.js";

/** Rng streams, each offset by the episode index (PCG streams are independent sequences). */
const TRAIN_EPISODE_STREAM = 1_000_000;
const TRAIN_NOISE_STREAM = 2_000_000;
const EVAL_EPISODE_STREAM = 3_000_000;
/** Evaluation episodes are numbered from here (in the transition log), apart from training ones. */
const EVAL_EPISODE_INDEX = 1_000_000;

export interface TrainLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string, meta?: object): void;
}

export interface TrainOptions {
  /** The run directory. */
  out: string;
  /** A new run: its control settings and training settings. Ignored when resuming. */
  config?: Config;
  settings?: TrainSettings;
  /** Continue the run in `out` from its checkpoint. */
  resume?: boolean;
  /**
   * A new run: a bag or transition log whose transitions go into the real buffer before the first
   * episode (src/data/bootstrap.ts), with the model pre-trained on them. Read before the robot
   * moves: a file that cannot be imported stops the run there. A resumed run has them already.
   */
  bootstrap?: { file: string; jointStatesTopic?: string; commandsTopic?: string };
  /** Resume only: a new target of real steps (to train on past the original one). */
  steps?: number;
  /**
   * A new run: force a TensorFlow.js backend (see src/mbpo/backend.ts); default the fastest
   * present. A resumed run uses the one it was saved with.
   */
  tfBackend?: string;
  signal?: AbortSignal;
  logger: TrainLogger;
  /** After each training episode's row is written. */
  onEpisode?: (row: MetricsRow, summary: { realSteps: number; stepsTarget: number }) => void;
  /** Once the learner is ready, before the first episode. */
  onStart?: (info: { realSteps: number; stepsTarget: number; backend: BackendSelection }) => void;
  /** Tests only: a test double of the learner module (see LearnerWorkerOptions.learnerModule). */
  learnerModule?: string;
  /** Write every real transition to DIR/transitions*.mcap (default true). */
  transitionLog?: boolean;
  /** Tests only: sees the control stack once built (e.g. to record what the driver is sent). */
  inspectStack?: (stack: ControlStack) => void;
}

export interface TrainOutcome {
  summary: TrainSummary;
  /** The run directory (absolute). */
  out: string;
}

/**
 * Hands the bootstrap's transitions to the learner and pre-trains its model, while the arm is held.
 * Returns what the run records of it.
 */
async function addBootstrap(
  bootstrap: BootstrapResult,
  worker: LearnerWorker,
  stack: ControlStack,
  hold: <T>(work: Promise<T>) => Promise<{ value: T }>,
  logger: TrainLogger,
): Promise<BootstrapInfo> {
  const rows = bootstrap.transitions;
  const packer = new RealTransitionPacker(
    {
      obsSize: stack.task.observationSize,
      actSize: stack.task.actionSize,
      dof: stack.model.dof,
      goalSize: stack.task.goalSize,
    },
    rows.length,
  );
  for (const t of rows) packer.push(t);
  const stored = (await hold(worker.addBootstrap(packer.take()))).value;
  logger.info(
    `train: bootstrap ${bootstrap.file} (${bootstrap.kind}): ${stored.added} transitions in the real buffer` +
      (stored.rejected > 0 ? `, ${stored.rejected} refused (non-finite values)` : ""),
  );
  const pretrained = (await hold(worker.pretrain())).value;
  if (pretrained.modelTrained) {
    logger.info(
      `train: model pre-trained on them: holdout NLL ${pretrained.modelHoldoutNll.toFixed(3)}, MSE ${pretrained.modelHoldoutMse.toFixed(4)} (${pretrained.seconds.toFixed(1)} s)`,
    );
  }
  return {
    file: bootstrap.file,
    kind: bootstrap.kind,
    transitions: stored.added,
    rejected: stored.rejected,
    modelHoldoutNll: pretrained.modelHoldoutNll,
    modelHoldoutMse: pretrained.modelHoldoutMse,
  };
}

/** Thrown for a learner that crashed or misbehaved; the safety filter is latched by then. */
class LearnerFailure extends Error {}

/** Runs (or resumes) a training run; resolves when it completes, is interrupted, or faults. */
export async function train(options: TrainOptions): Promise<TrainOutcome> {
  const out = resolve(options.out);
  const { logger, signal } = options;
  const prepared = options.resume ? prepareResume(out, options) : prepareNewRun(out, options);
  const { run, config, host } = prepared;
  const settings = run.settings;
  const stack = createControlStack(config);
  options.inspectStack?.(stack);
  const spec = run.learner;
  const explorationSteps = resolveHyperparameters(spec.hyperparameters ?? {}, spec.profile).mbpo
    .initialExplorationSteps;
  // Read the bootstrap before anything moves, so that a bad file stops the run here.
  const bootstrap =
    options.bootstrap !== undefined && !options.resume
      ? await loadBootstrap(options.bootstrap.file, stack, {
          jointStatesTopic: options.bootstrap.jointStatesTopic,
          commandsTopic: options.bootstrap.commandsTopic,
        }).catch((error: Error) => {
          throw new Error(`train --bootstrap: ${error.message.split("\n")[0]}`);
        })
      : undefined;
  if (bootstrap !== undefined && bootstrap.transitions.length === 0) {
    throw new Error(`train --bootstrap: ${bootstrap.file} holds no transitions to learn from`);
  }

  const episodeTimer = new TickTimer();
  const runHoldTimer = new TickTimer();
  const timers = [episodeTimer, runHoldTimer];
  let fault: string | undefined;
  let learnerFailed = false;
  let learnerStarted = false;
  const worker = new LearnerWorker({
    learnerModule: options.learnerModule,
    onFailure: (error) => {
      // The first thing done on a learner failure: the safe stop, before anything is reported.
      stack.safety.latch("learner", error.message);
      // A failure while starting is reported once, as the start-up error.
      if (learnerStarted) logger.error(`learner failed: ${error.message}; safety stop latched`);
    },
    onLog: (level, message) => {
      if (level === "warn") logger.warn(message);
      else if (level === "info") logger.info(message);
      else logger.debug(message);
    },
  });
  const hold = async <T>(work: Promise<T>) => holdWhile(stack, work, timers);
  signal?.addEventListener(
    "abort",
    () => {
      if (worker.busy)
        logger.warn(
          "train: the arm is held until the learner's current step ends, then a checkpoint is saved",
        );
    },
    { once: true },
  );

  const packer = new RealTransitionPacker(
    {
      obsSize: stack.task.observationSize,
      actSize: stack.task.actionSize,
      dof: stack.model.dof,
      goalSize: stack.task.goalSize,
    },
    stack.task.episodeSteps,
  );
  const recorder = new RecordingPolicy(stack.model.dof, stack.task.goalSize);
  /** Every real transition of this session (training and evaluation), in DIR/transitions*.mcap. */
  let transitionLog: TransitionLog | undefined;
  const trainingSink = makeTransitionSink(stack, recorder, packer, () => transitionLog);
  const evaluationSink = makeTransitionSink(stack, recorder, undefined, () => transitionLog);

  const started = performance.now();
  let backend: BackendSelection | undefined;
  let actor: ActorWeights | undefined;
  let interrupted = false;
  let checkpointCurrent = options.resume === true;

  const writeArtifacts = (completed: boolean) => {
    const summary = summarise({
      settings,
      spec,
      host,
      backend: backend?.name ?? "none",
      wallSeconds: host.elapsedSeconds + (performance.now() - started) / 1000,
      controlTicks: stack.loop.timing.summary().compute,
      hold: runHoldTimer.summary(),
      completed,
      interrupted,
      fault,
      checkpoint: hasCheckpoint(out) ? checkpointDir(out) : null,
      transitionLog: transitionLog?.stats() ?? null,
    });
    writeSummary(out, summary);
    writeCurve(out, host.rows, `${settings.algo.toUpperCase()} on ${spec.task.name}, seed ${settings.seed}`);
    return summary;
  };

  const saveCheckpoint = async () => {
    if (actor === undefined) return;
    const elapsed = host.elapsedSeconds + (performance.now() - started) / 1000;
    const t0 = performance.now();
    await writeCheckpoint(
      out,
      async (learnerDir) => {
        await hold(worker.save(learnerDir));
      },
      { ...host, elapsedSeconds: elapsed },
      MlpPolicy.fromActor(actor).toJSON(),
    );
    checkpointCurrent = true;
    writeArtifacts(false);
    logger.debug(
      `checkpoint: ${host.episodes} episodes, ${host.realSteps} real steps (${((performance.now() - t0) / 1000).toFixed(2)} s)`,
    );
  };

  /** Runs the evaluation episodes with the mean action; undefined when interrupted. */
  const evaluate = async (): Promise<
    { success: number; return: number; finalDistance: number; seconds: number } | undefined
  > => {
    if (actor === undefined || settings.evalEpisodes === 0)
      return { success: Number.NaN, return: Number.NaN, finalDistance: Number.NaN, seconds: 0 };
    recorder.use(MlpPolicy.fromActor(actor, { name: "actor (mean action)" }));
    const t0 = performance.now();
    let successes = 0;
    let returns = 0;
    let distances = 0;
    for (let j = 0; j < settings.evalEpisodes; j++) {
      const episode = stack.task.sampleEpisode(new Rng(settings.seed, EVAL_EPISODE_STREAM + j));
      placeAtStart(stack, episode);
      const index = EVAL_EPISODE_INDEX + host.evals * settings.evalEpisodes + j;
      const result = await stack.runner.runEpisode(index, episode, recorder, {
        signal,
        onTransition: evaluationSink,
      });
      transitionLog?.endEpisode(result);
      if (result.aborted) return undefined;
      if (result.fault !== undefined) throw new SafetyStop(result.fault);
      successes += result.success ? 1 : 0;
      returns += result.return;
      distances += result.finalDistance;
    }
    host.evals++;
    return {
      success: successes / settings.evalEpisodes,
      return: returns / settings.evalEpisodes,
      finalDistance: distances / settings.evalEpisodes,
      seconds: (performance.now() - t0) / 1000,
    };
  };

  /** Evaluates into a row (when due), then writes it; false when the evaluation was interrupted. */
  const finishRow = async (row: MetricsRow): Promise<boolean> => {
    const due = host.episodes % settings.evalEvery === 0 || host.realSteps >= settings.steps;
    if (due) {
      // Pending until evaluated: a checkpoint saved on the way out (Ctrl-C, a safety fault) keeps it.
      host.pendingRow = row;
      const result = await evaluate();
      if (result === undefined) return false;
      row.eval_success = result.success;
      row.eval_return = result.return;
      row.eval_final_distance_m = result.finalDistance;
      row.seconds_eval = result.seconds;
    }
    host.pendingRow = undefined;
    host.rows.push(row);
    appendMetricsRow(out, row);
    checkpointCurrent = false;
    options.onEpisode?.(row, { realSteps: host.realSteps, stepsTarget: settings.steps });
    return true;
  };

  try {
    await stack.driver.start();
    try {
      // The arm is held while TensorFlow.js and the learner start (or load).
      if (options.resume) {
        const learnerDir = join(checkpointDir(out), "learner");
        // The learner restores the backend it was saved with (loadLearner selects spec.backend).
        backend = (await hold(worker.load(learnerDir, spec.backend))).value.backend;
      } else {
        backend = (await hold(worker.init(spec))).value.backend;
      }
      actor = checkActor((await hold(worker.actorWeights())).value, stack);
      if (bootstrap !== undefined)
        settings.bootstrap = await addBootstrap(bootstrap, worker, stack, hold, logger);
    } catch (error) {
      // Nothing has moved yet: a start-up error (e.g. a forced backend that is not installed).
      throw new Error(`train: the learner could not start: ${(worker.failure ?? (error as Error)).message}`);
    }
    learnerStarted = true;
    prepared.write();
    const workToDo = host.realSteps < settings.steps || host.pendingRow !== undefined;
    if (options.transitionLog !== false && workToDo) {
      // One file per session: a resumed run does not touch the earlier ones.
      const file =
        host.episodes === 0 ? TRANSITIONS_FILE : `transitions-from-episode-${host.episodes + 1}.mcap`;
      const opening = TransitionLog.open(join(out, file), {
        jointNames: stack.model.joints.map((j) => j.name),
        dof: stack.model.dof,
        obsSize: stack.task.observationSize,
        actSize: stack.task.actionSize,
        goalSize: stack.task.goalSize,
        episodeSteps: stack.task.episodeSteps,
      });
      // The writer thread takes a moment to start: the arm is held meanwhile.
      transitionLog = (await hold(opening)).value;
      transitionLog.onError = (message) => logger.error(`transition log stopped: ${message}`);
    }
    logger.info(`train: TensorFlow.js backend ${backend.name} (${describeTried(backend)})`);
    options.onStart?.({ realSteps: host.realSteps, stepsTarget: settings.steps, backend });
    try {
      if (host.pendingRow !== undefined && !signal?.aborted) {
        if (!(await finishRow(host.pendingRow))) interrupted = true;
      }
      while (!interrupted && host.realSteps < settings.steps) {
        if (signal?.aborted) {
          interrupted = true;
          break;
        }
        const index = host.episodes;
        const episode = stack.task.sampleEpisode(new Rng(settings.seed, TRAIN_EPISODE_STREAM + index));
        const policy = MlpPolicy.fromActor(actor, {
          stochastic: true,
          rng: new Rng(settings.seed, TRAIN_NOISE_STREAM + index),
          name: "actor",
        });
        recorder.use(policy);
        placeAtStart(stack, episode);
        const t0 = performance.now();
        const result = await stack.runner.runEpisode(index, episode, recorder, {
          signal,
          onTransition: trainingSink,
        });
        const episodeSeconds = (performance.now() - t0) / 1000;
        // The log keeps every real episode, also one cut short (which the learner does not get).
        transitionLog?.endEpisode(result);
        if (result.aborted) {
          // Ctrl-C mid-episode: drop it; the resumed run runs this episode again from its start.
          packer.clear();
          interrupted = true;
          break;
        }
        if (result.fault !== undefined) {
          packer.clear();
          throw new SafetyStop(result.fault);
        }
        episodeTimer.clear();
        const updateStarted = performance.now();
        const exploring = host.realSteps < explorationSteps;
        await hold(worker.addReal(packer.take()));
        const update = await hold(worker.update());
        const report = checkReport(update.value);
        actor = checkActor((await hold(worker.actorWeights())).value, stack);
        const updateSeconds = (performance.now() - updateStarted) / 1000;
        host.episodes++;
        host.realSteps += result.steps;
        const row = episodeRow({
          index,
          exploring,
          realSteps: host.realSteps,
          result,
          report,
          episodeSeconds,
          updateSeconds,
          hold: episodeTimer.summary(),
          interventions: Object.values(result.interventions).reduce((a, b) => a + b, 0),
        });
        if (!(await finishRow(row))) {
          interrupted = true;
          break;
        }
        if (host.episodes % settings.checkpointEvery === 0) await saveCheckpoint();
      }
    } catch (error) {
      if (error instanceof SafetyStop) {
        fault = error.message;
        logger.error(`safety fault latched during an episode: ${fault}`);
      } else if (worker.failure !== undefined || error instanceof LearnerFailure) {
        const message = worker.failure?.message ?? (error as Error).message;
        stack.safety.latch("learner", message);
        fault = `learner: ${message}`;
        learnerFailed = true;
      } else {
        throw error;
      }
    }

    if (learnerFailed) {
      // The learner is gone or untrustworthy: keep the safe stop going for a moment so the arm
      // comes to rest under control, then stop. The last checkpoint is the one to resume from.
      await holdWhile(stack, sleep(1000), [runHoldTimer]);
    } else if (!checkpointCurrent) {
      if (interrupted) logger.warn("train: interrupted; saving a checkpoint");
      await saveCheckpoint();
    }
    const completed = fault === undefined && !interrupted && host.realSteps >= settings.steps;
    // Until the driver stops the arm, it is held: while the log flushes and the learner ends too.
    await hold(worker.dispose());
    if (transitionLog !== undefined) {
      const stats = (await hold(transitionLog.close())).value;
      logger.info(`transition log: ${stats.episodes} episodes, ${stats.messages} messages in ${stats.path}`);
    }
    const summary = writeArtifacts(completed);
    if (interrupted) logger.warn(`train: stopped; continue with: mbpo-arm train --resume ${out}`);
    return { summary, out };
  } finally {
    await worker.dispose();
    await stack.driver.stop();
    await transitionLog?.close();
  }
}

class SafetyStop extends Error {}

/** A run ready to start: `write` puts its files in place once the learner has started. */
interface PreparedRun {
  run: RunFile;
  config: Config;
  host: HostState;
  write: () => void;
}

function prepareNewRun(out: string, options: TrainOptions): PreparedRun {
  const { config, settings } = options;
  if (config === undefined || settings === undefined)
    throw new Error("train: a new run needs config and settings");
  checkSettings(settings);
  for (const file of [RUN_FILES.run, RUN_FILES.metrics, RUN_FILES.checkpoint]) {
    if (existsSync(join(out, file))) {
      throw new Error(
        `--out ${out}: already holds a training run (${file}); continue it with --resume ${out}, or choose another directory`,
      );
    }
  }
  // Built once here so that a bad URDF or task fails before anything is written.
  const stack = createControlStack(config);
  const spec: LearnerSpec = {
    algo: settings.algo,
    urdf: stack.urdfPath,
    task: { name: stack.task.name, params: stack.task.params() },
    seed: settings.seed,
    ...(options.tfBackend !== undefined ? { backend: options.tfBackend } : {}),
    ...(settings.profile !== undefined ? { profile: settings.profile } : {}),
    ...(settings.hyperparameters !== undefined ? { hyperparameters: settings.hyperparameters } : {}),
    control: controlSpecFromConfig(config),
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

function prepareResume(out: string, options: TrainOptions): PreparedRun {
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

function checkSettings(s: TrainSettings): void {
  const positive = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min)
      throw new Error(`train: ${name} must be an integer ≥ ${min}, got ${v}`);
  };
  if (s.algo !== "mbpo" && s.algo !== "sac")
    throw new Error(`train: algo must be mbpo or sac, got ${s.algo}`);
  positive("steps", s.steps, 1);
  positive("seed", s.seed, 0);
  positive("evalEvery", s.evalEvery, 1);
  positive("evalEpisodes", s.evalEpisodes, 0);
  positive("checkpointEvery", s.checkpointEvery, 1);
}

/**
 * The twin, stepped: placed exactly at the episode's start pose, at rest, so that the episode does
 * not depend on what the hold before it did. A real arm (or a realtime twin) gets the reset move.
 */
function placeAtStart(stack: ControlStack, episode: TaskEpisode): void {
  if (stack.driver instanceof SimDriver && stack.driver.timing === "stepped") {
    stack.driver.setState(episode.startPosition);
    stack.safety.forgetMotionHistory();
  }
}

/**
 * Wraps the policy the episode runs, to record what the learner needs beside the transition: the
 * joint state each action was chosen at, and the episode's goal. Copies into preallocated arrays.
 */
class RecordingPolicy implements Policy {
  /** The joint state the last action was chosen at (a copy). */
  readonly observed: JointState;
  readonly goal: Float64Array;
  private inner: Policy | undefined;

  constructor(dof: number, goalSize: number) {
    this.observed = {
      stamp: 0,
      position: new Float64Array(dof),
      velocity: new Float64Array(dof),
      effort: new Float64Array(dof),
    };
    this.goal = new Float64Array(goalSize);
  }

  use(policy: Policy): void {
    this.inner = policy;
  }

  /** The wrapped policy's name: the wrapper changes nothing the policy does. */
  get name(): string {
    return this.inner?.name ?? "none";
  }

  reset(episode: TaskEpisode): void {
    this.goal.set(episode.goal);
    this.inner?.reset(episode);
  }

  act(obs: Float32Array, ctx: PolicyContext, out: Float32Array): void {
    const { stamp, position, velocity, effort } = ctx.state;
    this.observed.stamp = stamp;
    this.observed.position.set(position);
    this.observed.velocity.set(velocity);
    if (effort.length === this.observed.effort.length) this.observed.effort.set(effort);
    else this.observed.effort.fill(Number.NaN);
    (this.inner as Policy).act(obs, ctx, out);
  }
}

/**
 * The onTransition callback: one reused RealTransitionInput filled and packed for the learner per
 * tick (when there is a packer), and the transition recorded in the log (when there is one).
 */
function makeTransitionSink(
  stack: ControlStack,
  recorder: RecordingPolicy,
  packer: RealTransitionPacker | undefined,
  log: () => TransitionLog | undefined,
): (t: Transition) => void {
  const dof = stack.model.dof;
  const nextQ = new Float64Array(dof);
  const nextQd = new Float64Array(dof);
  const input: RealTransitionInput = {
    obs: new Float32Array(0),
    action: new Float32Array(0),
    reward: 0,
    nextObs: new Float32Array(0),
    terminated: false,
    q: recorder.observed.position,
    qd: recorder.observed.velocity,
    effort: stack.loop.sent,
    nextQ,
    nextQd,
    goal: recorder.goal,
  };
  return (t) => {
    // The runner has already read the state the action led to; it is the driver's current state.
    const next = stack.driver.readState();
    if (next === undefined) return;
    log()?.record(t, recorder.observed, next, recorder.goal);
    if (packer === undefined) return;
    nextQ.set(next.position);
    nextQd.set(next.velocity);
    input.obs = t.obs;
    input.action = t.action;
    input.reward = t.reward;
    input.nextObs = t.nextObs;
    input.terminated = t.terminated;
    input.effort = t.effort;
    packer.push(input);
  };
}

/** The actor's weights must build the control loop's MLP (finite, right sizes) for this task. */
function checkActor(weights: ActorWeights, stack: ControlStack): ActorWeights {
  let policy: MlpPolicy;
  try {
    policy = MlpPolicy.fromActor(weights);
  } catch (error) {
    throw new LearnerFailure(`unusable actor weights: ${(error as Error).message}`);
  }
  if (policy.observationSize !== stack.task.observationSize || policy.actionSize !== stack.task.actionSize) {
    throw new LearnerFailure(
      `actor weights are for ${policy.observationSize} observations and ${policy.actionSize} actions; the task has ${stack.task.observationSize} and ${stack.task.actionSize}`,
    );
  }
  return weights;
}

function checkReport(report: UpdateReport): UpdateReport {
  const numbers = [report?.realSteps, report?.sacUpdates, report?.rolloutsKept];
  if (typeof report !== "object" || report === null || !numbers.every((n) => typeof n === "number")) {
    throw new LearnerFailure("the update report is not an UpdateReport");
  }
  return report;
}

function episodeRow(p: {
  index: number;
  exploring: boolean;
  realSteps: number;
  result: EpisodeResult;
  report: UpdateReport;
  episodeSeconds: number;
  updateSeconds: number;
  hold: { compute: TimingSummary; lateness: TimingSummary };
  interventions: number;
}): MetricsRow {
  const { result: r, report: u } = p;
  const filtered = u.rolloutsFiltered ?? {
    terminated: Number.NaN,
    jointLimits: Number.NaN,
    uncertainty: Number.NaN,
  };
  return {
    episode: p.index + 1,
    policy: p.exploring ? "explore" : "actor",
    real_steps: p.realSteps,
    episode_steps: r.steps,
    return: r.return,
    success: r.success ? 1 : 0,
    final_distance_m: r.finalDistance,
    eval_success: Number.NaN,
    eval_return: Number.NaN,
    eval_final_distance_m: Number.NaN,
    model_trained: u.modelTrained ? 1 : 0,
    model_holdout_nll: u.modelHoldoutNll,
    model_holdout_mse: u.modelHoldoutMse,
    rollout_length: u.rolloutLength,
    rollouts_kept: u.rolloutsKept,
    rollouts_filtered_terminated: filtered.terminated,
    rollouts_filtered_joint_limits: filtered.jointLimits,
    rollouts_filtered_uncertainty: filtered.uncertainty,
    sac_updates: u.sacUpdates,
    q_loss: u.qLoss,
    policy_loss: u.policyLoss,
    alpha: u.alpha,
    seconds_episode: p.episodeSeconds,
    seconds_update: p.updateSeconds,
    seconds_model: u.seconds?.model ?? Number.NaN,
    seconds_rollouts: u.seconds?.rollouts ?? Number.NaN,
    seconds_sac: u.seconds?.sac ?? Number.NaN,
    seconds_eval: Number.NaN,
    hold_ticks: p.hold.compute.count,
    hold_tick_median_us: p.hold.compute.medianUs,
    hold_tick_p99_us: p.hold.compute.p99Us,
    hold_tick_max_us: p.hold.compute.maxUs,
    hold_late_p99_us: p.hold.lateness.p99Us,
    hold_late_max_us: p.hold.lateness.maxUs,
    safety_interventions: p.interventions,
  };
}

function summarise(p: {
  settings: TrainSettings;
  spec: LearnerSpec;
  host: HostState;
  backend: string;
  wallSeconds: number;
  controlTicks: TimingSummary;
  hold: { compute: TimingSummary; lateness: TimingSummary };
  completed: boolean;
  interrupted: boolean;
  fault?: string;
  checkpoint: string | null;
  transitionLog: TrainSummary["transitionLog"];
}): TrainSummary {
  const rows = p.host.rows;
  const evals = rows.filter((r) => typeof r.eval_success === "number" && Number.isFinite(r.eval_success));
  const sum = (column: keyof MetricsRow) =>
    rows.reduce(
      (s, r) => s + (typeof r[column] === "number" && Number.isFinite(r[column]) ? (r[column] as number) : 0),
      0,
    );
  const first90 = evals.find((r) => (r.eval_success as number) >= 0.9);
  return {
    algo: p.settings.algo,
    task: p.spec.task.name,
    seed: p.settings.seed,
    backend: p.backend,
    stepsTarget: p.settings.steps,
    realSteps: p.host.realSteps,
    episodes: p.host.episodes,
    evals: p.host.evals,
    finalEvalSuccess: evals.length > 0 ? (evals[evals.length - 1].eval_success as number) : Number.NaN,
    bestEvalSuccess: evals.length > 0 ? Math.max(...evals.map((r) => r.eval_success as number)) : Number.NaN,
    stepsTo90: first90 === undefined ? null : (first90.real_steps as number),
    wallSeconds: p.wallSeconds,
    seconds: {
      episodes: sum("seconds_episode"),
      update: sum("seconds_update"),
      model: sum("seconds_model"),
      rollouts: sum("seconds_rollouts"),
      sac: sum("seconds_sac"),
      eval: sum("seconds_eval"),
    },
    episodeTicks: p.controlTicks,
    holdTicks: p.hold.compute,
    holdLateness: p.hold.lateness,
    completed: p.completed,
    interrupted: p.interrupted,
    ...(p.fault !== undefined ? { fault: p.fault } : {}),
    checkpoint: p.checkpoint,
    bootstrap: p.settings.bootstrap ?? null,
    transitionLog: p.transitionLog,
  };
}

function describeTried(selection: BackendSelection): string {
  const passed = selection.tried.filter((t) => t.error !== undefined);
  if (passed.length === 0) return selection.tried.length === 1 ? "as asked" : "the fastest present";
  return `passed over: ${passed.map((t) => `${t.name} (${t.error})`).join("; ")}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
