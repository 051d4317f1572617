/**
 * Model-Based Policy Optimization (Janner et al. 2019, "When to Trust Your Model", Algorithm 2),
 * and plain SAC as its model-free baseline, behind the Learner contract of learner.ts.
 *
 *   real steps come in through addReal()         → real buffer D_env
 *   update(), for the N real steps since the last call (nothing before initialExplorationSteps):
 *     MBPO  1. every modelRetrainEvery real steps: train the ensemble p_θ on all of D_env
 *              (inputs (q, q̇, τ_sent), targets Δ(q, q̇); see rollouts.ts)
 *           2. rolloutsPerRealStep · N branched rollouts of length k(t) from states of D_env,
 *              with the current policy, filtered (uncertainty, joint limits) → model buffer D_model
 *           3. G · N SAC updates, each batch realFraction from D_env and the rest from D_model
 *     SAC   3. G · N SAC updates on D_env alone (same SAC, same G, same exploration)
 *   SAC's networks see observations standardised with statistics frozen at the first learning
 *   update (MBPO_DEFAULTS.normalizeObservations); actorWeights() folds that into the first layer.
 *   actorWeights() → the control loop's MlpPolicy (stochastic while training, mean for evaluation)
 *
 * Every hyperparameter is in hyperparameters.ts, with where its default comes from; a spec may
 * override any of them by section and key, or pick a named profile.
 *
 * Randomness: one PCG32 stream per purpose, all from spec.seed (network initialisation, SAC's
 * noise, model training, rollouts, batch sampling), so that using one more random number in one
 * place does not shift every other. save() stores every stream's state with the networks, Adam's
 * moments, α, the normalisers, both buffers and the schedule's position; loadLearner() continues
 * a run exactly as if it had not stopped (same backend: tfjs kernels differ between backends).
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { defaultConfig } from "../config/config.js";
import { loadRobotDescription } from "../robot/description.js";
import { Dynamics } from "../robot/dynamics.js";
import type { RobotModel } from "../robot/types.js";
import { createTask, DEFAULT_REACH_CONFIG } from "../tasks/index.js";
import type { Task } from "../tasks/task.js";
import { Rng, type RngState } from "../util/rng.js";
import { selectBackend } from "./backend.js";
import { type EnsembleJSON, type EnsembleTrainReport, ProbabilisticEnsemble } from "./ensemble.js";
import { type Hyperparameters, resolveHyperparameters, rolloutLength } from "./hyperparameters.js";
import {
  type ActorWeights,
  type BootstrapReport,
  type ControlSpec,
  controlSpecFromConfig,
  type Learner,
  type LearnerSpec,
  type PretrainReport,
  type RealTransitionInput,
  type UpdateReport,
} from "./learner.js";
import { MODEL_PRIORS, ResidualModel, RigidBodyPrior, subtractPrior } from "./model-prior.js";
import { Normalizer, type NormalizerJSON } from "./normalizer.js";
import {
  createBatch,
  mixedBatch,
  RealReplayBuffer,
  ReplayBuffer,
  type ReplayBufferJSON,
  type TransitionBatch,
} from "./replay-buffer.js";
import {
  BranchedRollouts,
  createRolloutStarts,
  modelInputSize,
  modelOutputSize,
  realModelData,
  sampleRolloutStarts,
} from "./rollouts.js";
import { Sac, type SacJSON, type SacLosses, zeroLosses } from "./sac.js";

/** Branches advanced together in one rollout call: bounds the [rows, 256] activations. */
const ROLLOUT_CHUNK = 8192;
/** Fewest real transitions the model is trained on (its holdout split needs a few). */
const MIN_MODEL_ROWS = 20;
const CHECKPOINT_KIND = "mbpo-arm-learner";
const CHECKPOINT_VERSION = 1;

/** The independent random streams, by purpose (the number is the PCG32 stream). */
const RNG_STREAMS = {
  sac: 101, // SAC's initial weights and its ε noise in every update
  ensembleInit: 102, // the ensemble's initial weights
  modelTraining: 103, // holdout split, bootstrap, shuffles
  rollouts: 104, // rollout starts, the policy's ε, elite choice, model sampling
  batches: 105, // SAC batches from the buffers
} as const;
type RngName = keyof typeof RNG_STREAMS;

/** Counters of the schedule: where the run is. */
interface ScheduleState {
  /** Real steps whose SAC updates (and rollouts) have been done. */
  stepsLearned: number;
  /** Real steps at the last model training (null: never trained). */
  modelTrainedAt: number | null;
  modelTrainings: number;
  realRejected: number;
  /** Rows of the real buffer that came from a bootstrap before the first real step. */
  bootstrapped: number;
  /**
   * An update phase a stop cut short (Learner.update's shouldStop), or null: the next update()
   * finishes it, so that a stop costs the run no learning and the resumed run goes on exactly as
   * an uninterrupted one.
   */
  pending: PendingPhase | null;
}

/** Where a stopped update phase stood: its report so far and the work it still owes. */
interface PendingPhase {
  report: UpdateReport;
  /** Branched rollouts still to start, and SAC updates still to do. */
  rollouts: number;
  sacUpdates: number;
  /** SAC updates done so far, and the sums of their losses (the report gives their means). */
  sacDone: number;
  lossSums: SacLosses;
}

/** learner.json in a checkpoint directory (buffers lie beside it in binary files). */
interface LearnerCheckpoint {
  kind: typeof CHECKPOINT_KIND;
  version: number;
  spec: LearnerSpec;
  hyperparameters: Hyperparameters;
  control: ControlSpec;
  schedule: ScheduleState;
  rng: Record<RngName, RngState>;
  sac: SacJSON;
  /** SAC's observation standardisation (null: not fitted yet, or switched off). */
  observationNormalizer: NormalizerJSON | null;
  ensemble: EnsembleJSON | null;
  /**
   * With the URDF prior: per output, the std of the whole Δ over the data the model was last
   * trained on (the uncertainty filter's unit); null without a prior or before any training.
   * Absent in checkpoints from before the prior existed.
   */
  modelDeltaStd?: number[] | null;
  buffers: { real: BufferHeader; model: BufferHeader | null };
}

/** A buffer's checkpoint header: its JSON form with each array replaced by a file name. */
type BufferHeader = ReplayBufferJSON;

/** What both the fresh and the restored learner are built from. */
interface Parts {
  spec: LearnerSpec;
  hp: Hyperparameters;
  control: ControlSpec;
  backend: string;
  model: RobotModel;
  task: Task;
  rollouts: BranchedRollouts;
  /** The URDF prior under the ensemble (mbpo.modelPrior "urdf"), else undefined. */
  prior: RigidBodyPrior | undefined;
  rng: Record<RngName, Rng>;
}

/** Builds a fresh learner: new networks from the seed, empty buffers. */
export async function createLearner(spec: LearnerSpec): Promise<Learner> {
  const parts = await assemble(spec, resolveHyperparameters(spec.hyperparameters, spec.profile));
  const { hp, task, rng } = parts;
  const sac = new Sac(task.observationSize, task.actionSize, rng.sac, hp.sac);
  const ensemble =
    spec.algo === "mbpo"
      ? new ProbabilisticEnsemble(
          modelInputSize(task.dof, hp.mbpo.modelPreviousEffort),
          modelOutputSize(task.dof),
          rng.ensembleInit,
          hp.ensemble,
        )
      : undefined;
  const real = new RealReplayBuffer(
    hp.buffer.realCapacity,
    task.observationSize,
    task.actionSize,
    task.dof,
    task.goalSize,
  );
  const schedule: ScheduleState = {
    stepsLearned: 0,
    modelTrainedAt: null,
    modelTrainings: 0,
    realRejected: 0,
    bootstrapped: 0,
    pending: null,
  };
  return new MbpoLearner(parts, sac, ensemble, real, undefined, undefined, schedule, null);
}

/** Restores a learner that save(dir) wrote; it continues exactly where the saved one stood. */
export async function loadLearner(dir: string): Promise<Learner> {
  const path = join(dir, "learner.json");
  let checkpoint: LearnerCheckpoint;
  try {
    checkpoint = JSON.parse(await readFile(path, "utf8")) as LearnerCheckpoint;
  } catch (error) {
    throw new Error(
      `${path}: cannot read the learner checkpoint: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  if (checkpoint?.kind !== CHECKPOINT_KIND || checkpoint.version !== CHECKPOINT_VERSION) {
    throw new Error(
      `${path}: not a learner checkpoint of this version (kind ${checkpoint?.kind}, version ${checkpoint?.version}; expected ${CHECKPOINT_KIND} ${CHECKPOINT_VERSION})`,
    );
  }
  // The saved hyperparameters and control spec, not today's defaults: a resumed run stays the same run.
  // A checkpoint from before the URDF prior existed was trained without one.
  const hyperparameters = checkpoint.hyperparameters;
  hyperparameters.mbpo = { ...hyperparameters.mbpo };
  hyperparameters.mbpo.modelPrior ??= "none";
  hyperparameters.mbpo.priorRateHz ??= 1000;
  hyperparameters.mbpo.modelPreviousEffort ??= false;
  const parts = await assemble(
    // A checkpoint from before action_damping existed was trained without it.
    {
      ...checkpoint.spec,
      control: { ...checkpoint.control, actionDamping: checkpoint.control.actionDamping ?? 0 },
    },
    hyperparameters,
  );
  // Every array is checked as it is decoded (finite, right length); an error names the file.
  const sac = await named(path, () => Sac.fromJSON(checkpoint.sac, parts.rng.sac));
  const ensemble =
    checkpoint.ensemble === null
      ? undefined
      : await named(path, () =>
          ProbabilisticEnsemble.fromJSON(checkpoint.ensemble as EnsembleJSON, parts.rng.ensembleInit),
        );
  const real = RealReplayBuffer.fromJSON(...(await readBuffer(dir, checkpoint.buffers.real)));
  const model =
    checkpoint.buffers.model === null
      ? undefined
      : ReplayBuffer.fromJSON(...(await readBuffer(dir, checkpoint.buffers.model)));
  const observations =
    checkpoint.observationNormalizer === null
      ? undefined
      : Normalizer.fromJSON(checkpoint.observationNormalizer, `${path}: observationNormalizer`);
  // Restored last: building the networks above drew from these streams.
  for (const name of Object.keys(RNG_STREAMS) as RngName[]) parts.rng[name].setState(checkpoint.rng[name]);
  // A checkpoint from before bootstraps (or stoppable updates) existed has none (owes nothing).
  const schedule = {
    ...checkpoint.schedule,
    bootstrapped: checkpoint.schedule.bootstrapped ?? 0,
    pending: checkpoint.schedule.pending ?? null,
  };
  const deltaStd = checkpoint.modelDeltaStd ?? null;
  if (
    deltaStd !== null &&
    !(
      Array.isArray(deltaStd) &&
      deltaStd.length === modelOutputSize(parts.task.dof) &&
      deltaStd.every((v) => Number.isFinite(v) && v > 0)
    )
  ) {
    throw new Error(`${path}: modelDeltaStd must be ${modelOutputSize(parts.task.dof)} positive numbers`);
  }
  return new MbpoLearner(parts, sac, ensemble, real, model, observations, schedule, deltaStd);
}

class MbpoLearner implements Learner {
  readonly spec: LearnerSpec;
  readonly backend: string;
  private readonly hp: Hyperparameters;
  private readonly control: ControlSpec;
  private readonly task: Task;
  private readonly rollouts: BranchedRollouts;
  private readonly rng: Record<RngName, Rng>;
  private readonly sac: Sac;
  /** The dynamics model (MBPO only). */
  private readonly ensemble: ProbabilisticEnsemble | undefined;
  private readonly real: RealReplayBuffer;
  /** D_model (MBPO only), created at the first rollouts and resized when k changes. */
  private model: ReplayBuffer | undefined;
  /** SAC's observation standardisation, fitted at the first update after exploration. */
  private observations: Normalizer | undefined;
  private readonly schedule: ScheduleState;
  private readonly prior: RigidBodyPrior | undefined;
  /** See LearnerCheckpoint.modelDeltaStd. */
  private modelDeltaStd: number[] | null;

  constructor(
    parts: Parts,
    sac: Sac,
    ensemble: ProbabilisticEnsemble | undefined,
    real: RealReplayBuffer,
    model: ReplayBuffer | undefined,
    observations: Normalizer | undefined,
    schedule: ScheduleState,
    modelDeltaStd: number[] | null,
  ) {
    this.spec = parts.spec;
    this.backend = parts.backend;
    this.hp = parts.hp;
    this.control = parts.control;
    this.task = parts.task;
    this.rollouts = parts.rollouts;
    this.rng = parts.rng;
    this.sac = sac;
    this.ensemble = ensemble;
    this.real = real;
    this.model = model;
    this.observations = observations;
    this.schedule = schedule;
    this.prior = parts.prior;
    this.modelDeltaStd = modelDeltaStd;
  }

  addReal(t: RealTransitionInput): void {
    // A non-finite value would poison every network trained on it; the safety filter faults on
    // such states, so one here is a broken reading: refuse it, count it, carry on.
    const finite =
      Number.isFinite(t.reward) &&
      [t.obs, t.action, t.nextObs, t.q, t.qd, t.effort, t.nextQ, t.nextQd, t.goal].every(allFinite);
    if (!finite) {
      this.schedule.realRejected++;
      return;
    }
    this.real.add(t);
  }

  addBootstrap(transitions: readonly RealTransitionInput[]): BootstrapReport {
    const { schedule } = this;
    if (this.real.added > schedule.bootstrapped) {
      throw new Error(
        `learner: a bootstrap must come before the first real step (${this.real.added - schedule.bootstrapped} already stored)`,
      );
    }
    const rejectedBefore = schedule.realRejected;
    const addedBefore = this.real.added;
    for (const t of transitions) this.addReal(t);
    const added = this.real.added - addedBefore;
    schedule.bootstrapped += added;
    // Refused rows count against the bootstrap, not against the robot's readings.
    const rejected = schedule.realRejected - rejectedBefore;
    schedule.realRejected = rejectedBefore;
    return { added, rejected };
  }

  async pretrain(shouldStop: () => boolean = () => false): Promise<PretrainReport> {
    const report = {
      modelTrained: false,
      modelHoldoutNll: Number.NaN,
      modelHoldoutMse: Number.NaN,
      seconds: 0,
    };
    if (this.ensemble === undefined || this.real.size < MIN_MODEL_ROWS) return report;
    const started = performance.now();
    const trained = await this.trainModelOrRollBack(shouldStop);
    // Stopped: the model is as it was and counts as untrained, so the first update trains it.
    if (trained.interrupted)
      return { ...report, interrupted: true, seconds: (performance.now() - started) / 1000 };
    this.schedule.modelTrainedAt = this.real.added - this.schedule.bootstrapped;
    this.schedule.modelTrainings++;
    return {
      modelTrained: true,
      modelHoldoutNll: trained.eliteNll,
      modelHoldoutMse: trained.eliteMse,
      seconds: (performance.now() - started) / 1000,
    };
  }

  async update(shouldStop: () => boolean = () => false): Promise<UpdateReport> {
    const { hp, schedule } = this;
    // The robot's own steps: the schedule (exploration, k, retraining) runs on them. A bootstrap
    // does not replace the exploration: demonstrations cover a narrow band of states, and the
    // observation standardisation fitted on them alone (at the first update) made SAC's inputs
    // blow up outside it (bench/learning: 80% at 3,000 steps with 10 PD episodes instead of 95%
    // at 2,000 without them).
    const realSteps = this.real.added - schedule.bootstrapped;
    const k = rolloutLength(hp.mbpo.rolloutSchedule, realSteps);
    // Real steps owed learning: those since the last update, not counting the exploration steps.
    const newSteps = Math.max(
      0,
      realSteps - Math.max(schedule.stepsLearned, hp.mbpo.initialExplorationSteps),
    );
    schedule.stepsLearned = Math.max(schedule.stepsLearned, realSteps);
    // This phase: a stopped one continued (its report and sums so far), plus the new steps' work.
    const phase: PendingPhase = schedule.pending ?? {
      report: this.emptyReport(realSteps, this.ensemble === undefined ? 0 : k),
      rollouts: 0,
      sacUpdates: 0,
      sacDone: 0,
      lossSums: zeroLosses(),
    };
    const { report } = phase;
    report.realSteps = realSteps;
    report.interrupted = false;
    phase.rollouts += newSteps * hp.mbpo.rolloutsPerRealStep;
    phase.sacUpdates += newSteps * hp.mbpo.sacUpdatesPerRealStep;
    if (phase.rollouts === 0 && phase.sacUpdates === 0) return report;
    if (hp.mbpo.normalizeObservations && this.observations === undefined) {
      const spread = hp.mbpo.observationSpreadFloor ? this.task.observationSpread?.() : undefined;
      this.observations = new Normalizer(this.task.observationSize, hp.mbpo.observationMinStd, spread);
      this.observations.fit(this.real.obs, this.real.size);
    }
    // A stop ends the phase at its next gradient step or rollout chunk, where the learner is
    // consistent; schedule.pending keeps the rest for the next update() (after a resume too).
    const stopped = () => {
      if (!shouldStop()) return false;
      report.interrupted = true;
      schedule.pending = phase;
      return true;
    };
    if (this.ensemble !== undefined) {
      await this.trainModelIfDue(realSteps, report, stopped);
      if (report.interrupted) return report;
      // 2. Branched rollouts from the current policy.
      if (schedule.modelTrainedAt !== null && phase.rollouts > 0) {
        const started = performance.now();
        phase.rollouts -= await this.rollOut(phase.rollouts, k, report, stopped);
        report.seconds.rollouts += (performance.now() - started) / 1000;
        if (report.interrupted) return report;
      }
    }
    await this.updateSac(phase, stopped);
    if (!report.interrupted) schedule.pending = null;
    return report;
  }

  /**
   * 1. The model, on its schedule (and at the first update after exploration). Training cut
   * short by a stop is rolled back (trainModelOrRollBack) and modelTrainedAt left as it was, so
   * the continued phase trains the model again from the same state with the same random stream:
   * bit-identical to an uninterrupted run, as a cut in the rollouts or SAC updates is (their
   * random streams and loss sums carry on).
   */
  private async trainModelIfDue(
    realSteps: number,
    report: UpdateReport,
    stopped: () => boolean,
  ): Promise<void> {
    const { hp, schedule } = this;
    const due =
      schedule.modelTrainedAt === null || realSteps - schedule.modelTrainedAt >= hp.mbpo.modelRetrainEvery;
    if (!due || this.real.size < MIN_MODEL_ROWS) return;
    const started = performance.now();
    const trained = await this.trainModelOrRollBack(stopped);
    report.seconds.model += (performance.now() - started) / 1000;
    if (trained.interrupted) return;
    schedule.modelTrainedAt = realSteps;
    schedule.modelTrainings++;
    report.modelTrained = true;
    report.modelHoldoutNll = trained.eliteNll;
    report.modelHoldoutMse = trained.eliteMse;
  }

  /**
   * Trains the ensemble on the real buffer. A stop mid-training puts the ensemble (weights,
   * normalisers, elites, Adam) and its random stream back where they were before it began: the
   * partly trained model is never used, and training it again later is exactly training it once.
   * The snapshot is one toJSON() per model training; its cost at the paper's sizes is not yet
   * measured (a raw copy of the weights and Adam's moments would skip the base64 encoding).
   */
  private async trainModelOrRollBack(shouldStop: () => boolean): Promise<EnsembleTrainReport> {
    const ensemble = this.ensemble as ProbabilisticEnsemble;
    const before = await ensemble.toJSON();
    const rngBefore = this.rng.modelTraining.getState();
    const { inputs, targets } = realModelData(this.real, this.hp.mbpo.modelPreviousEffort);
    let deltaStd: number[] | null = null;
    if (this.prior !== undefined) {
      // The filter's unit is the whole Δ's spread; the ensemble learns what the URDF leaves over.
      const spread = new Normalizer(modelOutputSize(this.task.dof), this.hp.ensemble.normalizerMinStd);
      spread.fit(targets, this.real.size);
      deltaStd = Array.from(spread.std);
      subtractPrior(this.prior, this.real, targets);
    }
    const trained = await ensemble.train(inputs, targets, this.rng.modelTraining, { shouldStop });
    if (trained.interrupted) {
      await ensemble.restore(before);
      this.rng.modelTraining.setState(rngBefore);
    } else this.modelDeltaStd = deltaStd;
    return trained;
  }

  /** 3. The phase's SAC updates, G per new real step, on mixed (MBPO) or real (SAC) batches. */
  private async updateSac(phase: PendingPhase, stopped: () => boolean): Promise<void> {
    const { hp, report } = { hp: this.hp, report: phase.report };
    const started = performance.now();
    const model = this.model;
    const observations = this.observations;
    const sample = (out: TransitionBatch): void => {
      if (model !== undefined)
        mixedBatch(this.real, model, hp.buffer.realFraction, out.rows, this.rng.batches, out);
      else this.real.sampleBatch(out.rows, this.rng.batches, out);
      // The buffers hold raw observations; SAC learns on standardised ones, as it acts on them.
      if (observations !== undefined) {
        observations.normalize(out.obs, out.obs, out.rows);
        observations.normalize(out.nextObs, out.nextObs, out.rows);
      }
    };
    const done = await this.sac.accumulateUpdates(phase.sacUpdates, sample, stopped, phase.lossSums);
    phase.sacUpdates -= done;
    phase.sacDone += done;
    report.sacUpdates = phase.sacDone;
    report.qLoss = phase.sacDone > 0 ? phase.lossSums.qLoss / phase.sacDone : Number.NaN;
    report.policyLoss = phase.sacDone > 0 ? phase.lossSums.policyLoss / phase.sacDone : Number.NaN;
    report.alpha = this.sac.alpha;
    report.modelBufferSize = this.model?.size ?? 0;
    report.seconds.sac += (performance.now() - started) / 1000;
  }

  /** An update report before any work: nothing trained, rolled out or updated yet. */
  private emptyReport(realSteps: number, rolloutLength: number): UpdateReport {
    return {
      realSteps,
      modelTrained: false,
      modelHoldoutNll: Number.NaN,
      modelHoldoutMse: Number.NaN,
      rolloutLength,
      rolloutBranches: 0,
      rolloutsKept: 0,
      rolloutsFiltered: { terminated: 0, jointLimits: 0, uncertainty: 0 },
      modelBufferSize: this.model?.size ?? 0,
      realRejected: this.schedule.realRejected,
      sacUpdates: 0,
      qLoss: Number.NaN,
      policyLoss: Number.NaN,
      alpha: this.sac.alpha,
      seconds: { model: 0, rollouts: 0, sac: 0 },
      interrupted: false,
    };
  }

  /** The actor for raw observations: the standardisation is folded into its first layer. */
  async actorWeights(): Promise<ActorWeights> {
    const weights = await this.sac.actorWeights();
    if (this.observations !== undefined) foldStandardisation(weights, this.observations);
    return weights;
  }

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const rng = {} as Record<RngName, RngState>;
    for (const name of Object.keys(RNG_STREAMS) as RngName[]) rng[name] = this.rng[name].getState();
    const checkpoint: LearnerCheckpoint = {
      kind: CHECKPOINT_KIND,
      version: CHECKPOINT_VERSION,
      spec: this.spec,
      hyperparameters: this.hp,
      control: this.control,
      schedule: { ...this.schedule },
      rng,
      sac: await this.sac.toJSON(),
      observationNormalizer: this.observations?.toJSON() ?? null,
      ensemble: this.ensemble === undefined ? null : await this.ensemble.toJSON(),
      modelDeltaStd: this.modelDeltaStd,
      buffers: {
        real: await writeBuffer(dir, "real-buffer", this.real.toJSON()),
        model: this.model === undefined ? null : await writeBuffer(dir, "model-buffer", this.model.toJSON()),
      },
    };
    // learner.json last: it names the buffer files, so a directory without it is no checkpoint.
    await writeAtomically(join(dir, "learner.json"), JSON.stringify(checkpoint));
  }

  dispose(): void {
    this.sac.dispose();
    this.ensemble?.dispose();
  }

  /**
   * `branches` rollouts of length k into the model buffer, in chunks, fewer when `stopped` (asked
   * before each chunk) says stop; counts into the report. Returns the branches started.
   */
  private async rollOut(
    branches: number,
    k: number,
    report: UpdateReport,
    stopped: () => boolean,
  ): Promise<number> {
    const ensemble = this.ensemble as ProbabilisticEnsemble;
    const dynamicsModel =
      this.prior === undefined
        ? ensemble
        : new ResidualModel(ensemble, this.prior, this.modelDeltaStd as number[]);
    const model = this.modelBufferFor(k);
    const rng = this.rng.rollouts;
    const task = this.task;
    const observations = this.observations;
    let scratch = new Float32Array(0);
    const policy = async (obs: Float32Array, rows: number, out: Float32Array): Promise<void> => {
      if (observations === undefined) {
        await this.sac.act(obs, rows, out, "sample", rng);
        return;
      }
      if (scratch.length < rows * task.observationSize)
        scratch = new Float32Array(rows * task.observationSize);
      observations.normalize(obs, scratch, rows);
      await this.sac.act(scratch, rows, out, "sample", rng);
    };
    const starts = createRolloutStarts(Math.min(branches, ROLLOUT_CHUNK), task.dof, task.goalSize);
    const options = { length: k, disagreementThreshold: this.hp.mbpo.disagreementThreshold };
    const fraction = this.hp.mbpo.hindsightFraction;
    const hindsight =
      fraction > 0
        ? {
            fraction,
            achievedGoal: (q: Float64Array, out: Float64Array) => task.achievedGoal(q, out),
            inRange: this.hp.mbpo.hindsightInRange ? task.goalInRange?.bind(task) : undefined,
          }
        : undefined;
    let done = 0;
    for (; done < branches && !stopped(); done += starts.rows) {
      starts.rows = Math.min(ROLLOUT_CHUNK, branches - done);
      sampleRolloutStarts(this.real, rng, starts, hindsight);
      const counts = await this.rollouts.run(starts, dynamicsModel, policy, rng, options, model);
      report.rolloutBranches = (report.rolloutBranches ?? 0) + counts.branches;
      report.rolloutsKept += counts.kept;
      report.rolloutsFiltered.terminated += counts.terminated;
      report.rolloutsFiltered.jointLimits += counts.jointLimits;
      report.rolloutsFiltered.uncertainty += counts.uncertainty;
    }
    return done;
  }

  /**
   * D_model sized for rollout length k: rolloutsPerRealStep × modelRetrainEvery ×
   * modelRetainRetrains × k transitions (buffer.modelCapacity at least). When k changes it is
   * rebuilt with the newest transitions kept, as MBPO reallocates its model pool.
   */
  private modelBufferFor(k: number): ReplayBuffer {
    const { mbpo, buffer } = this.hp;
    const capacity = Math.max(
      mbpo.rolloutsPerRealStep * mbpo.modelRetrainEvery * mbpo.modelRetainRetrains * Math.max(k, 1),
      buffer.modelCapacity,
    );
    const old = this.model;
    if (old !== undefined && old.capacity === capacity) return old;
    const fresh = new ReplayBuffer(capacity, this.task.observationSize, this.task.actionSize);
    if (old !== undefined) copyNewest(old, fresh);
    this.model = fresh;
    return fresh;
  }
}

/** Resolves the backend, robot, task, rollouts and random streams for a spec. */
async function assemble(spec: LearnerSpec, hp: Hyperparameters): Promise<Parts> {
  if (spec.algo !== "mbpo" && spec.algo !== "sac") {
    throw new Error(`learner: algo must be "mbpo" or "sac", got ${JSON.stringify(spec.algo)}`);
  }
  if (!Number.isInteger(spec.seed) || spec.seed < 0) {
    throw new Error(`learner: seed must be a non-negative integer, got ${spec.seed}`);
  }
  checkMbpoHyperparameters(hp);
  const selection = await selectBackend(spec.backend, spec.threads);
  const model = loadRobotDescription(spec.urdf, spec.description);
  const control = spec.control ?? controlSpecFromConfig(defaultConfig(), model);
  const task = createTask(spec.task.name, model, taskParams(spec.task.params));
  const dynamics = new Dynamics(model);
  const rollouts = new BranchedRollouts(task, model, control, dynamics, hp.mbpo.modelPreviousEffort);
  const prior =
    spec.algo === "mbpo" && hp.mbpo.modelPrior === "urdf"
      ? new RigidBodyPrior(model, control.controlRateHz, hp.mbpo.priorRateHz)
      : undefined;
  const rng = {} as Record<RngName, Rng>;
  for (const [name, stream] of Object.entries(RNG_STREAMS)) rng[name as RngName] = new Rng(spec.seed, stream);
  return { spec, hp, control, backend: selection.name, model, task, rollouts, prior, rng };
}

/**
 * The task's constructor parameters from LearnerSpec.task.params. Accepts what Task.params()
 * reports too: its informational keys (task, observationSize) are dropped and a list given as
 * "a,b,c" (homePose) is split.
 */
function taskParams(params: Record<string, number | string | boolean>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params ?? {})) {
    if (key === "task" || key === "observationSize") continue;
    const isList = Array.isArray((DEFAULT_REACH_CONFIG as unknown as Record<string, unknown>)[key]);
    out[key] =
      isList && typeof value === "string"
        ? value
            .split(",")
            .filter((v) => v.trim() !== "")
            .map(Number)
        : value;
  }
  return out;
}

function checkMbpoHyperparameters(hp: Hyperparameters): void {
  const m = hp.mbpo;
  for (const key of [
    "rolloutsPerRealStep",
    "modelRetrainEvery",
    "modelRetainRetrains",
    "sacUpdatesPerRealStep",
  ] as const) {
    if (!Number.isInteger(m[key]) || m[key] <= 0) {
      throw new Error(`hyperparameters: mbpo.${key} must be a positive integer, got ${m[key]}`);
    }
  }
  if (!Number.isInteger(m.initialExplorationSteps) || m.initialExplorationSteps < 0) {
    throw new Error(
      `hyperparameters: mbpo.initialExplorationSteps must be a non-negative integer, got ${m.initialExplorationSteps}`,
    );
  }
  const s = m.rolloutSchedule;
  const scheduleOk =
    s.length === 4 &&
    s.every((v) => Number.isInteger(v) && v >= 0) &&
    s[1] >= s[0] &&
    s[2] >= 1 &&
    s[3] >= s[2];
  if (!scheduleOk) {
    throw new Error(
      `hyperparameters: mbpo.rolloutSchedule must be [startStep, endStep, minLength, maxLength] with integers, endStep ≥ startStep and 1 ≤ minLength ≤ maxLength, got ${JSON.stringify(s)}`,
    );
  }
  if (!MODEL_PRIORS.includes(m.modelPrior)) {
    throw new Error(
      `hyperparameters: mbpo.modelPrior must be one of ${MODEL_PRIORS.join(", ")}, got ${JSON.stringify(m.modelPrior)}`,
    );
  }
  if (!(m.priorRateHz > 0 && m.priorRateHz <= 100_000)) {
    throw new Error(`hyperparameters: mbpo.priorRateHz must be in (0, 100000], got ${m.priorRateHz}`);
  }
  if (!(m.hindsightFraction >= 0 && m.hindsightFraction <= 1)) {
    throw new Error(`hyperparameters: mbpo.hindsightFraction must be in [0, 1], got ${m.hindsightFraction}`);
  }
  if (!(m.disagreementThreshold > 0)) {
    throw new Error(
      `hyperparameters: mbpo.disagreementThreshold must be positive, got ${m.disagreementThreshold}`,
    );
  }
  if (!(hp.buffer.realFraction >= 0 && hp.buffer.realFraction <= 1)) {
    throw new Error(`hyperparameters: buffer.realFraction must be in [0, 1], got ${hp.buffer.realFraction}`);
  }
  for (const key of ["realCapacity", "modelCapacity"] as const) {
    if (!Number.isInteger(hp.buffer[key]) || hp.buffer[key] <= 0) {
      throw new Error(`hyperparameters: buffer.${key} must be a positive integer, got ${hp.buffer[key]}`);
    }
  }
}

/**
 * Rewrites the actor's first layer y = x'·W + b, x' = (x − mean) / std, as y = x·W' + b' with
 * W'[i][j] = W[i][j] / std[i] and b'[j] = b[j] − Σ_i mean[i] / std[i] · W[i][j] (sums in float64).
 */
function foldStandardisation(weights: ActorWeights, observations: Normalizer): void {
  const first = weights.layers[0];
  const inputs = weights.sizes[0];
  const outputs = weights.sizes[1];
  const { mean, std } = observations;
  const weight = new Float32Array(first.weight.length);
  const bias = new Float32Array(outputs);
  for (let j = 0; j < outputs; j++) {
    let shift = 0;
    for (let i = 0; i < inputs; i++) {
      const w = first.weight[i * outputs + j];
      weight[i * outputs + j] = w / std[i];
      shift += (mean[i] / std[i]) * w;
    }
    bias[j] = first.bias[j] - shift;
  }
  weights.layers[0] = { weight, bias };
}

/** Copies the newest min(size, capacity) transitions of `from` into `to`, oldest first. */
function copyNewest(from: ReplayBuffer, to: ReplayBuffer): void {
  const count = Math.min(from.size, to.capacity);
  const oldest = from.size < from.capacity ? 0 : from.next;
  const first = from.size - count;
  const chunk = 4096;
  const batch = createBatch(from.obsSize, from.actSize, chunk);
  for (let done = 0; done < count; done += chunk) {
    const rows = Math.min(chunk, count - done);
    for (let row = 0; row < rows; row++) {
      from.copyToBatch((oldest + first + done + row) % from.capacity, batch, row);
    }
    to.addBatch(batch, rows);
  }
}

function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

// ---- checkpoint files -----------------------------------------------------------------------

/** Writes a buffer's arrays as raw little-endian files beside the header; returns the header. */
async function writeBuffer(dir: string, name: string, json: ReplayBufferJSON): Promise<BufferHeader> {
  const arrays: Record<string, string> = {};
  for (const [field, base64] of Object.entries(json.arrays)) {
    const file = `${name}.${field}.bin`;
    await writeAtomically(join(dir, file), Buffer.from(base64, "base64"));
    arrays[field] = file;
  }
  return { ...json, arrays };
}

/**
 * Reads a buffer written by writeBuffer back into its JSON form, with the path of each array's
 * file for fromJSON's errors (it checks every value is finite and every length fits the header).
 */
async function readBuffer(
  dir: string,
  header: BufferHeader,
): Promise<[json: ReplayBufferJSON, files: Record<string, string>]> {
  const arrays: Record<string, string> = {};
  const files: Record<string, string> = {};
  for (const [field, file] of Object.entries(header?.arrays ?? {})) {
    files[field] = join(dir, String(file));
    arrays[field] = (await named(files[field], () => readFile(files[field]))).toString("base64");
  }
  return [{ ...header, arrays }, files];
}

/** Runs fn; an error it throws is prefixed with the file it concerns. */
function named<T>(path: string, fn: () => T): T {
  const rename = (error: unknown): never => {
    const message = (error as Error).message.split("\n")[0];
    throw new Error(message.startsWith(path) ? message : `${path}: ${message}`);
  };
  try {
    const result = fn();
    return result instanceof Promise ? (result.catch(rename) as T) : result;
  } catch (error) {
    return rename(error);
  }
}

/** Writes to a temporary name and renames it into place, so no reader sees half a file. */
async function writeAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}
