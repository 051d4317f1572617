/**
 * A learning run on a started control stack: episodes with the actor (stochastic), each episode's
 * real transitions handed to the learner in its worker thread, the update phase run there while the
 * arm is held (Pacing), evaluations with the mean action, metrics and checkpoints in the run
 * directory (src/train/run-dir.ts), and resume. `train` and the ROS node's learn mode both run this.
 *
 * Reproducibility: every episode draws its start pose and goal, and the actor's exploration noise,
 * from its own seeded stream (by episode index), and the evaluation set is the same M episodes
 * every time. On the stepped simulator each episode starts with the twin placed exactly at its start
 * pose, at rest (as a Gym reset does), so nothing carries over from the hold between episodes. The
 * same seed and backend therefore give the same numbers, also across a stop and a resume: an
 * episode cut short is discarded and run again.
 */
import { join } from "node:path";
import { hardwareDriver } from "../control/delay-compensation.js";
import { MlpPolicy } from "../control/policies/mlp.js";
import { RecordingPolicy } from "../control/recording-policy.js";
import type { ControlStack } from "../control/stack.js";
import { TickTimer } from "../control/tick-timer.js";
import type { BootstrapResult } from "../data/bootstrap.js";
import { newSegmentPath } from "../data/run-log.js";
import type { TransitionLog } from "../data/transition-log.js";
import { SimDriver } from "../drivers/sim.js";
import type { BackendSelection } from "../mbpo/backend.js";
import { describeAdapter } from "../mbpo/gpu-adapter.js";
import { resolveHyperparameters } from "../mbpo/hyperparameters.js";
import type { ActorWeights, UpdateReport } from "../mbpo/learner.js";
import { RealTransitionPacker } from "../mbpo/transition-batch.js";
import { LearnerWorker } from "../mbpo/worker.js";
import type { TaskEpisode } from "../tasks/task.js";
import {
  appendMetricsRow,
  type BootstrapInfo,
  checkpointDir,
  hasCheckpoint,
  type MetricsRow,
  type TrainSummary,
  writeCheckpoint,
  writeCurve,
  writeSummary,
} from "../train/run-dir.js";
import { Rng } from "../util/rng.js";
import type { EventSink } from "./events.js";
import type { Pacing } from "./hold.js";
import { type EvaluationResult, episodeRow, summarise, updateColumns } from "./metrics.js";
import type { PreparedRun } from "./run-setup.js";
import { makeTransitionSink, openTransitionLog } from "./transitions.js";

/** Rng streams, each offset by the episode index (PCG streams are independent sequences). */
const TRAIN_EPISODE_STREAM = 1_000_000;
const TRAIN_NOISE_STREAM = 2_000_000;
const EVAL_EPISODE_STREAM = 3_000_000;
const PAUSED_EPISODE_STREAM = 4_000_000;
/** Evaluation episodes are numbered from here (in the transition log), apart from training ones. */
const EVAL_EPISODE_INDEX = 1_000_000;
const PAUSED_EPISODE_INDEX = 2_000_000;
/**
 * How long (ms) a stop lets the learner's update phase run on before interrupting it: a short
 * phase then ends whole (a resume continues exactly as an uninterrupted run would), a long one is
 * cut at its next gradient step, leaving the stop well inside 2 s.
 */
const UPDATE_STOP_GRACE_MS = 500;

export interface AppLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string, meta?: object): void;
}

export interface LearningRunOptions {
  /** The run directory (absolute). */
  out: string;
  prepared: PreparedRun;
  resumed: boolean;
  /** Transitions for the real buffer before the first episode, the model pre-trained on them. */
  bootstrap?: BootstrapResult;
  /** Write every real transition to DIR/transitions*.mcap (default true). */
  transitionLog?: boolean;
  /** Tests only: a test double of the learner module. */
  learnerModule?: string;
  logger: AppLogger;
  emit: EventSink;
}

/** How a stretch of learning ended. */
export type LearnOutcome = "done" | "stopped" | "fault";

/** Thrown for a learner that crashed or misbehaved; the safety filter is latched by then. */
class LearnerFailure extends Error {}
class SafetyStop extends Error {}

export class LearningRun {
  /** Whether episodes feed the learner (false: they run with the current actor's mean action). */
  learning = true;
  /** Set when the learner failed: it cannot go on (resume from the last checkpoint). */
  learnerFailed = false;
  fault: string | undefined;
  /** The last evaluation's success rate and the last model holdout MSE (NaN: none yet). */
  lastEvalSuccess = Number.NaN;
  lastModelHoldoutMse = Number.NaN;

  readonly out: string;
  private readonly stack: ControlStack;
  private readonly pacing: Pacing;
  private readonly options: LearningRunOptions;
  private readonly worker: LearnerWorker;
  private readonly packer: RealTransitionPacker;
  private readonly recorder: RecordingPolicy;
  private readonly trainingSink;
  private readonly evaluationSink;
  private readonly episodeTimer = new TickTimer();
  private readonly runHoldTimer = new TickTimer();
  private readonly started = performance.now();
  private transitionLog: TransitionLog | undefined;
  private backend: BackendSelection | undefined;
  private actor: ActorWeights | undefined;
  private checkpointCurrent: boolean;
  private interrupted = false;
  private learnerStarted = false;
  private pausedEpisodes = 0;
  private logClosed = false;

  constructor(stack: ControlStack, pacing: Pacing, options: LearningRunOptions) {
    this.stack = stack;
    this.pacing = pacing;
    this.options = options;
    this.out = options.out;
    this.checkpointCurrent = options.resumed;
    const { logger } = options;
    this.worker = new LearnerWorker({
      learnerModule: options.learnerModule,
      onFailure: (error) => {
        // The first thing done on a learner failure: the safe stop, before anything is reported.
        stack.safety.latch("learner", error.message);
        if (this.learnerStarted) logger.error(`learner failed: ${error.message}; safety stop latched`);
      },
      onLog: (level, message) => {
        if (level === "warn") logger.warn(message);
        else if (level === "info") logger.info(message);
        else logger.debug(message);
      },
    });
    const shape = {
      obsSize: stack.task.observationSize,
      actSize: stack.task.actionSize,
      dof: stack.model.dof,
      goalSize: stack.task.goalSize,
    };
    this.packer = new RealTransitionPacker(shape, stack.task.episodeSteps);
    this.recorder = new RecordingPolicy(stack.model.dof, stack.task.goalSize);
    this.trainingSink = makeTransitionSink(stack, this.recorder, this.packer, () => this.transitionLog);
    this.evaluationSink = makeTransitionSink(stack, this.recorder, undefined, () => this.transitionLog);
  }

  private get settings() {
    return this.options.prepared.run.settings;
  }

  private get host() {
    return this.options.prepared.host;
  }

  get realSteps(): number {
    return this.host.realSteps;
  }

  get episodes(): number {
    return this.host.episodes;
  }

  /** The target of real steps (0: until stopped). */
  get stepsTarget(): number {
    return this.settings.steps;
  }

  get done(): boolean {
    return this.settings.steps > 0 && this.host.realSteps >= this.settings.steps;
  }

  /** Whether the learner's thread is working on a request now. */
  get training(): boolean {
    return this.worker.busy;
  }

  get backendName(): string {
    return this.backend?.name ?? "none";
  }

  private hold<T>(work: Promise<T>, timers: readonly TickTimer[] = [this.episodeTimer, this.runHoldTimer]) {
    return this.pacing.holdWhile(work, timers);
  }

  /**
   * Holds the arm while a learner phase runs; a stop signal lets it finish for UPDATE_STOP_GRACE_MS,
   * then interrupts it at its next gradient step (Learner.update), so that a stop never waits for
   * a whole phase (2,000 SAC updates and a model retrain at the paper's sizes: minutes).
   */
  private async stoppable<T>(work: Promise<T>, signal: AbortSignal) {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(() => this.worker.interrupt(), UPDATE_STOP_GRACE_MS);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.hold(work);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Starts (or loads) the learner while the arm is held, adds the bootstrap, writes the run's files
   * and opens this session's transition log. A start-up error is one line; nothing has moved.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const { prepared, resumed, logger } = this.options;
    const spec = prepared.run.learner;
    try {
      if (resumed) {
        const learnerDir = join(checkpointDir(this.out), "learner");
        this.backend = (
          await this.hold(this.worker.load(learnerDir, spec.backend, spec.threads))
        ).value.backend;
      } else {
        this.backend = (await this.hold(this.worker.init(spec))).value.backend;
      }
      this.actor = this.checkActor((await this.hold(this.worker.actorWeights())).value);
      if (this.options.bootstrap !== undefined)
        this.settings.bootstrap = await this.addBootstrap(this.options.bootstrap, signal);
    } catch (error) {
      throw new Error(
        `train: the learner could not start: ${(this.worker.failure ?? (error as Error)).message}`,
      );
    }
    this.learnerStarted = true;
    prepared.write();
    const workToDo =
      !this.done || this.host.pendingRow !== undefined || this.host.pendingUpdate !== undefined;
    if (this.options.transitionLog !== false && workToDo) {
      // One segment per session: a resumed run never touches the earlier ones (run-log.ts).
      const file = newSegmentPath(this.out, this.host.episodes + 1);
      // The writer thread takes a moment to start: the arm is held meanwhile.
      this.transitionLog = (await this.hold(openTransitionLog(this.stack, file))).value;
      this.transitionLog.onError = (message) => logger.error(`transition log stopped: ${message}`);
    }
    logger.info(`train: TensorFlow.js backend ${this.backend.name} (${describeTried(this.backend)})`);
    this.options.emit({
      type: "learn-start",
      realSteps: this.host.realSteps,
      stepsTarget: this.settings.steps,
      backend: this.backend,
      resumed,
    });
  }

  /**
   * Runs episodes until the step target, a stop (the signal), or a fault. A stop mid-episode drops
   * that episode (run again later); a checkpoint is saved on the way out unless the learner failed.
   * May be called again after a stop, or after a fault once the fault is reset.
   */
  async run(
    signal: AbortSignal,
    hooks: { betweenEpisodes?: () => Promise<void> } = {},
  ): Promise<LearnOutcome> {
    if (this.learnerFailed)
      throw new Error(`the learner failed (${this.fault}); resume from the last checkpoint`);
    this.interrupted = false;
    this.fault = undefined;
    try {
      if (this.host.pendingUpdate !== undefined && !signal.aborted) {
        if (!(await this.finishUpdate(this.host.pendingUpdate, signal))) this.interrupted = true;
      } else if (this.host.pendingRow !== undefined && !signal.aborted) {
        if (!(await this.finishRow(this.host.pendingRow, signal))) this.interrupted = true;
      }
      while (!this.interrupted && !this.done) {
        if (signal.aborted) {
          this.interrupted = true;
          break;
        }
        const finished = this.learning ? await this.trainEpisode(signal) : await this.pausedEpisode(signal);
        if (!finished) this.interrupted = true;
        else await hooks.betweenEpisodes?.();
      }
    } catch (error) {
      this.onRunError(error);
    }
    if (!this.learnerFailed && !this.checkpointCurrent) {
      if (this.interrupted) this.options.logger.warn("train: interrupted; saving a checkpoint");
      await this.saveCheckpoint();
    }
    if (this.fault !== undefined) return "fault";
    return this.interrupted ? "stopped" : "done";
  }

  private onRunError(error: unknown): void {
    if (error instanceof SafetyStop) {
      this.fault = error.message;
      this.options.logger.error(`safety fault latched during an episode: ${this.fault}`);
    } else if (this.worker.failure !== undefined || error instanceof LearnerFailure) {
      const message = this.worker.failure?.message ?? (error as Error).message;
      this.stack.safety.latch("learner", message);
      this.fault = `learner: ${message}`;
      this.learnerFailed = true;
    } else {
      throw error;
    }
    this.options.emit({ type: "fault", fault: this.fault });
  }

  /** One training episode, its update and its row; false when stopped mid-way. */
  private async trainEpisode(signal: AbortSignal): Promise<boolean> {
    const { stack, host, settings } = this;
    const index = host.episodes;
    const episode = stack.task.sampleEpisode(new Rng(settings.seed, TRAIN_EPISODE_STREAM + index));
    const actor = this.actor as ActorWeights;
    this.recorder.use(
      MlpPolicy.fromActor(actor, {
        stochastic: true,
        rng: new Rng(settings.seed, TRAIN_NOISE_STREAM + index),
        name: "actor",
      }),
    );
    placeAtStart(stack, episode);
    const t0 = performance.now();
    const result = await stack.runner.runEpisode(index, episode, this.recorder, {
      signal,
      onTransition: this.trainingSink,
    });
    const episodeSeconds = (performance.now() - t0) / 1000;
    // The log keeps every real episode, also one cut short (which the learner does not get).
    this.transitionLog?.endEpisode(result);
    this.options.emit({ type: "episode", kind: "train", result });
    if (result.aborted) {
      this.packer.clear();
      return false;
    }
    if (result.fault !== undefined) {
      this.packer.clear();
      throw new SafetyStop(result.fault);
    }
    this.episodeTimer.clear();
    const updateStarted = performance.now();
    const exploring = host.realSteps < this.explorationSteps();
    this.options.emit({ type: "learner", state: "training" });
    await this.hold(this.worker.addReal(this.packer.take()));
    const report = await this.updateLearner(signal);
    host.episodes++;
    host.realSteps += result.steps;
    // The host state has moved past the last checkpoint (also if the evaluation is stopped).
    this.checkpointCurrent = false;
    const row = episodeRow({
      index,
      exploring,
      realSteps: host.realSteps,
      result,
      report,
      episodeSeconds,
      updateSeconds: (performance.now() - updateStarted) / 1000,
      hold: this.episodeTimer.summary(),
      interventions: Object.values(result.interventions).reduce((a, b) => a + b, 0),
    });
    return this.afterUpdate(row, report, signal);
  }

  /** The learner's update phase (stoppable), then its actor; the report. */
  private async updateLearner(signal: AbortSignal): Promise<UpdateReport> {
    const report = checkReport((await this.stoppable(this.worker.update(), signal)).value);
    this.actor = this.checkActor((await this.hold(this.worker.actorWeights())).value);
    this.options.emit({ type: "learner", state: "idle" });
    if (report.modelTrained) this.lastModelHoldoutMse = report.modelHoldoutMse;
    return report;
  }

  /**
   * After an episode's update phase: a phase a stop cut short leaves its row pending (the resume
   * finishes the phase first: finishUpdate); otherwise the row is evaluated and written, and a
   * checkpoint saved when due. False when stopped.
   */
  private async afterUpdate(row: MetricsRow, report: UpdateReport, signal: AbortSignal): Promise<boolean> {
    const { host, settings } = this;
    if (report.interrupted === true) {
      host.pendingUpdate = row;
      return false;
    }
    host.pendingUpdate = undefined;
    if (!(await this.finishRow(row, signal))) return false;
    if (host.episodes % settings.checkpointEvery === 0) await this.saveCheckpoint();
    return true;
  }

  /** Finishes the update phase a stop cut short (host.pendingUpdate), then its row. */
  private async finishUpdate(pending: MetricsRow, signal: AbortSignal): Promise<boolean> {
    const started = performance.now();
    this.options.emit({ type: "learner", state: "training" });
    const report = await this.updateLearner(signal);
    this.checkpointCurrent = false;
    const seconds = Number(pending.seconds_update) + (performance.now() - started) / 1000;
    return this.afterUpdate({ ...pending, ...updateColumns(report, seconds) }, report, signal);
  }

  /** Learning paused: one episode with the current actor's mean action, logged, not learned from. */
  private async pausedEpisode(signal: AbortSignal): Promise<boolean> {
    const { stack, settings } = this;
    const j = this.pausedEpisodes++;
    const episode = stack.task.sampleEpisode(new Rng(settings.seed, PAUSED_EPISODE_STREAM + j));
    this.recorder.use(MlpPolicy.fromActor(this.actor as ActorWeights, { name: "actor (mean action)" }));
    placeAtStart(stack, episode);
    const result = await stack.runner.runEpisode(PAUSED_EPISODE_INDEX + j, episode, this.recorder, {
      signal,
      onTransition: this.evaluationSink,
    });
    this.transitionLog?.endEpisode(result);
    this.options.emit({ type: "episode", kind: "paused", result });
    if (result.fault !== undefined) throw new SafetyStop(result.fault);
    return !result.aborted;
  }

  private explorationSteps(): number {
    const spec = this.options.prepared.run.learner;
    return resolveHyperparameters(spec.hyperparameters ?? {}, spec.profile).mbpo.initialExplorationSteps;
  }

  /** Evaluates into a row (when due), then writes it; false when the evaluation was interrupted. */
  private async finishRow(row: MetricsRow, signal: AbortSignal): Promise<boolean> {
    const { host, settings } = this;
    const due = host.episodes % settings.evalEvery === 0 || this.done;
    if (due) {
      // Pending until evaluated: a checkpoint saved on the way out (a stop, a fault) keeps it.
      host.pendingRow = row;
      const result = await this.evaluate(signal);
      if (result === undefined) return false;
      row.eval_success = result.success;
      row.eval_return = result.return;
      row.eval_final_distance_m = result.finalDistance;
      row.seconds_eval = result.seconds;
      if (Number.isFinite(result.success)) this.lastEvalSuccess = result.success;
    }
    host.pendingRow = undefined;
    host.rows.push(row);
    appendMetricsRow(this.out, row);
    this.checkpointCurrent = false;
    this.options.emit({ type: "row", row, realSteps: host.realSteps, stepsTarget: settings.steps });
    return true;
  }

  /** Runs the evaluation episodes with the mean action; undefined when interrupted. */
  private async evaluate(signal: AbortSignal): Promise<EvaluationResult | undefined> {
    const { stack, host, settings } = this;
    if (this.actor === undefined || settings.evalEpisodes === 0)
      return { success: Number.NaN, return: Number.NaN, finalDistance: Number.NaN, seconds: 0 };
    this.recorder.use(MlpPolicy.fromActor(this.actor, { name: "actor (mean action)" }));
    const t0 = performance.now();
    let successes = 0;
    let returns = 0;
    let distances = 0;
    for (let j = 0; j < settings.evalEpisodes; j++) {
      const episode = stack.task.sampleEpisode(new Rng(settings.seed, EVAL_EPISODE_STREAM + j));
      placeAtStart(stack, episode);
      const index = EVAL_EPISODE_INDEX + host.evals * settings.evalEpisodes + j;
      const result = await stack.runner.runEpisode(index, episode, this.recorder, {
        signal,
        onTransition: this.evaluationSink,
      });
      this.transitionLog?.endEpisode(result);
      this.options.emit({ type: "episode", kind: "eval", result });
      if (result.aborted) return undefined;
      if (result.fault !== undefined) throw new SafetyStop(result.fault);
      successes += result.success ? 1 : 0;
      returns += result.return;
      distances += result.finalDistance;
    }
    host.evals++;
    const n = settings.evalEpisodes;
    return {
      success: successes / n,
      return: returns / n,
      finalDistance: distances / n,
      seconds: (performance.now() - t0) / 1000,
    };
  }

  /** Saves a checkpoint now (the arm held while the learner writes its part). */
  async saveCheckpoint(): Promise<void> {
    if (this.actor === undefined || this.learnerFailed) return;
    const host = this.host;
    const elapsed = host.elapsedSeconds + (performance.now() - this.started) / 1000;
    const t0 = performance.now();
    await writeCheckpoint(
      this.out,
      async (learnerDir) => {
        await this.hold(this.worker.save(learnerDir));
      },
      { ...host, elapsedSeconds: elapsed },
      MlpPolicy.fromActor(this.actor).toJSON(),
    );
    this.checkpointCurrent = true;
    this.writeArtifacts(false);
    this.options.emit({
      type: "checkpoint",
      dir: checkpointDir(this.out),
      episodes: host.episodes,
      realSteps: host.realSteps,
    });
    this.options.logger.debug(
      `checkpoint: ${host.episodes} episodes, ${host.realSteps} real steps (${((performance.now() - t0) / 1000).toFixed(2)} s)`,
    );
  }

  /** summary.json and curve.svg from the rows so far. */
  writeArtifacts(completed: boolean): TrainSummary {
    const { settings, host, out } = this;
    const spec = this.options.prepared.run.learner;
    const summary = summarise({
      settings,
      spec,
      host,
      backend: this.backendName,
      wallSeconds: host.elapsedSeconds + (performance.now() - this.started) / 1000,
      controlTicks: this.stack.loop.timing.summary().compute,
      hold: this.runHoldTimer.summary(),
      completed,
      interrupted: this.interrupted,
      fault: this.fault,
      checkpoint: hasCheckpoint(out) ? checkpointDir(out) : null,
      transitionLog: this.transitionLog?.stats() ?? null,
    });
    writeSummary(out, summary);
    writeCurve(out, host.rows, `${settings.algo.toUpperCase()} on ${spec.task.name}, seed ${settings.seed}`);
    return summary;
  }

  /**
   * Ends the session: the learner's thread and the transition log are closed (the arm held
   * meanwhile), summary.json is written. Safe to call once the run has stopped; idempotent.
   */
  async close(): Promise<TrainSummary> {
    const completed = this.fault === undefined && !this.interrupted && this.done;
    // A run closed with learning not yet checkpointed (the node shut down before its first
    // activity, after a bootstrap's import) keeps it: the resume starts from here.
    if (this.learnerStarted && !this.learnerFailed && !this.checkpointCurrent) await this.saveCheckpoint();
    await this.hold(this.worker.dispose());
    if (this.transitionLog !== undefined && !this.logClosed) {
      this.logClosed = true;
      const stats = (await this.hold(this.transitionLog.close())).value;
      this.options.logger.info(
        `transition log: ${stats.episodes} episodes, ${stats.messages} messages in ${stats.path}`,
      );
    }
    return this.writeArtifacts(completed);
  }

  /** Frees what close() would, without holding (the error path: the driver may be gone). */
  async abandon(): Promise<void> {
    await this.worker.dispose();
    await this.transitionLog?.close();
  }

  /** Hands the bootstrap's transitions to the learner and pre-trains its model, while the arm is held. */
  private async addBootstrap(
    bootstrap: BootstrapResult,
    signal = new AbortController().signal,
  ): Promise<BootstrapInfo> {
    const { stack, worker } = this;
    const logger = this.options.logger;
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
    const stored = (await this.hold(worker.addBootstrap(packer.take()))).value;
    logger.info(
      `train: bootstrap ${bootstrap.file} (${bootstrap.kind}): ${stored.added} transitions in the real buffer` +
        (stored.rejected > 0 ? `, ${stored.rejected} refused (non-finite values)` : ""),
    );
    // A stop cuts the pre-training short (the first update phase retrains the model anyway).
    const pretrained = (await this.stoppable(worker.pretrain(), signal)).value;
    if (pretrained.interrupted) logger.warn("train: model pre-training stopped before it converged");
    else if (pretrained.modelTrained) {
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

  /** The actor's weights must build the control loop's MLP (finite, right sizes) for this task. */
  private checkActor(weights: ActorWeights): ActorWeights {
    const task = this.stack.task;
    let policy: MlpPolicy;
    try {
      policy = MlpPolicy.fromActor(weights);
    } catch (error) {
      throw new LearnerFailure(`unusable actor weights: ${(error as Error).message}`);
    }
    if (policy.observationSize !== task.observationSize || policy.actionSize !== task.actionSize) {
      throw new LearnerFailure(
        `actor weights are for ${policy.observationSize} observations and ${policy.actionSize} actions; the task has ${task.observationSize} and ${task.actionSize}`,
      );
    }
    return weights;
  }
}

/**
 * The twin, stepped: placed exactly at the episode's start pose, at rest, so that the episode does
 * not depend on what the hold before it did. A real arm (or a realtime twin) gets the reset move.
 */
function placeAtStart(stack: ControlStack, episode: TaskEpisode): void {
  const twin = hardwareDriver(stack.driver);
  if (twin instanceof SimDriver && twin.timing === "stepped") {
    twin.setState(episode.startPosition);
    stack.safety.forgetMotionHistory();
  }
}

function checkReport(report: UpdateReport): UpdateReport {
  const numbers = [report?.realSteps, report?.sacUpdates, report?.rolloutsKept];
  if (typeof report !== "object" || report === null || !numbers.every((n) => typeof n === "number")) {
    throw new LearnerFailure("the update report is not an UpdateReport");
  }
  return report;
}

function describeTried(selection: BackendSelection): string {
  const passed = selection.tried.filter((t) => t.error !== undefined);
  const adapter =
    selection.adapter !== undefined
      ? `on ${describeAdapter(selection.adapter)}; `
      : [
          (selection.threads ?? 1) > 1 ? `${selection.threads} threads; ` : "",
          selection.products !== undefined ? `products on ${selection.products}; ` : "",
        ].join("");
  if (passed.length === 0)
    return `${adapter}${selection.tried.length === 1 ? "as asked" : "the fastest present"}`;
  return `${adapter}passed over: ${passed.map((t) => `${t.name} (${t.error})`).join("; ")}`;
}
