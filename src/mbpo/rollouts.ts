/**
 * Branched model rollouts (MBPO, Janner et al. 2019, Algorithm 2, lines 8–10): from real states,
 * the current policy acts in the learned model for k steps, and every predicted transition that
 * survives the filters goes to the model buffer for SAC.
 *
 *   start      (q, q̇, goal) sampled uniformly from the real buffer
 *   each step  obs = task.observe(q, q̇, goal)
 *              a ~ π(·|obs)                                   (stochastic, one batched call)
 *              τ = effort the control stack would send for a  (EffortModel, below)
 *              e ~ uniform over the elites, per row
 *              Δ ~ N(μₑ, σₑ²)(q, q̇, τ);  (q', q̇') = (q, q̇) + Δ     (one batched ensemble call)
 *              obs' = task.observe(q', q̇', goal);  r = task.reward(obs, a, obs');  d = task.terminated(obs')
 *   a branch stops where
 *     uncertainty   the elites' disagreement about (q, q̇, τ) passes the threshold: the transition
 *                   is dropped (the model does not know where this goes);
 *     jointLimits   (q', q̇') is non-finite or where the real robot's watchdog would latch a fault
 *                   (past a hard position limit by more than position_margin, or faster than
 *                   velocity·(1 + velocity_margin)): dropped (the real arm is never there);
 *     terminated    the task terminates at obs': the transition is kept with d = 1 (SAC must learn
 *                   the failure), and the branch ends.
 *   The filters are checked in that order; the first that applies is the cause counted.
 *
 * Which τ the model sees. The real buffer records the effort actually sent: the policy's
 * a·torqueScale, plus gravity compensation, through the safety filter. The dynamics model learns
 * (q, q̇, τ_sent) → Δ(q, q̇), which is pure rigid-body physics (the twin, or the arm, integrates
 * exactly that torque over the period); it is never asked to learn gravity compensation or the
 * filter, which we know exactly. Rollouts must therefore feed the model the τ_sent the stack would
 * produce for the policy's action: EffortModel mirrors ControlLoop.tick and every rule of
 * SafetyFilter that is a function of the state (effort limit, soft limits net of gravity, the
 * hard position and velocity rules) and the torque-rate limit, which needs the previous effort:
 * inside a branch it is the branch's previous τ; at a branch's start it is the effort the real
 * robot sent at the tick before (found in the real buffer when the previous slot is the same
 * episode's previous step), else the filter's own reference after a reset, the gravity hold.
 * test/mbpo/rollouts.test.ts checks EffortModel against SafetyFilter tick by tick.
 *
 * Batching. All active branches advance together: one policy call and one ensemble call per step
 * over every branch (tensors), and plain loops over rows for what is per-row by nature (the
 * task's observe, reward and termination, gravity by RNEA, the filter's rules). Finished branches
 * are compacted away, so each step only carries the live ones.
 */

import { perJoint } from "../control/arm-gains.js";
import type { JointState } from "../drivers/driver.js";
import type { Dynamics } from "../robot/dynamics.js";
import type { JointSpec, RobotModel } from "../robot/types.js";
import { DynamicLimits } from "../safety/dynamic-limits.js";
import { clamp, softEffortBounds } from "../safety/soft-limits.js";
import type { Task } from "../tasks/task.js";
import type { Rng } from "../util/rng.js";
import type { EnsembleSample } from "./ensemble.js";
import type { ControlSpec } from "./learner.js";
import {
  createBatch,
  type RealReplayBuffer,
  type ReplayBuffer,
  type TransitionBatch,
} from "./replay-buffer.js";

/**
 * The dynamics model as rollouts use it (ProbabilisticEnsemble implements it; tests may hand-build
 * one). Inputs are rows of modelInput(), outputs rows of Δ(q, q̇).
 */
export interface RolloutModel {
  readonly inputSize: number;
  readonly outputSize: number;
  /** Fills out[0..rows) with members drawn uniformly from the elites. */
  randomElites(rows: number, rng: Rng, out: Int32Array): void;
  /**
   * Draws Δ from memberPerRow[r]'s Gaussian for each row, and each row's disagreement (async: on a
   * GPU backend the results are read back from the device).
   */
  sample(
    inputs: Float32Array,
    rows: number,
    memberPerRow: Int32Array,
    rng: Rng,
    out: EnsembleSample,
  ): Promise<void>;
}

/** The policy as rollouts use it: actions in [-1, 1] for `rows` observations (row-major). */
export type RolloutPolicy = (obs: Float32Array, rows: number, out: Float32Array) => Promise<void>;

// ---- the model's data layout -----------------------------------------------------------------

/** Model input width for a robot with `dof` joints: (q, q̇, τ), or (q, q̇, τ, τ_prev) (mbpo.modelPreviousEffort). */
export function modelInputSize(dof: number, previousEffort = false): number {
  return (previousEffort ? 4 : 3) * dof;
}

/** Model output width: Δ(q, q̇). */
export function modelOutputSize(dof: number): number {
  return 2 * dof;
}

/**
 * The dynamics model's training set from the real buffer: inputs (q, q̇, τ_sent) and, with
 * previousEffort, the effort of the tick before (τ itself where the slot before is not that tick),
 * and targets (q' − q, q̇' − q̇), row-major, one row per stored real transition (slot order).
 */
export function realModelData(
  real: RealReplayBuffer,
  previousEffort = false,
): { inputs: Float32Array; targets: Float32Array } {
  const n = real.size;
  const dof = real.dof;
  const width = modelInputSize(dof, previousEffort);
  const inputs = new Float32Array(n * width);
  const targets = new Float32Array(n * modelOutputSize(dof));
  for (let row = 0; row < n; row++) {
    const base = row * dof;
    const x = row * width;
    const y = row * 2 * dof;
    const before = previousEffort ? previousSlot(real, row) : -1;
    for (let j = 0; j < dof; j++) {
      inputs[x + j] = real.q[base + j];
      inputs[x + dof + j] = real.qd[base + j];
      inputs[x + 2 * dof + j] = real.effort[base + j];
      if (previousEffort) inputs[x + 3 * dof + j] = real.effort[(before >= 0 ? before : row) * dof + j];
      // Differences in float64 first: Δq over one tick is small next to q.
      targets[y + j] = real.nextQ[base + j] - real.q[base + j];
      targets[y + dof + j] = real.nextQd[base + j] - real.qd[base + j];
    }
  }
  return { inputs, targets };
}

// ---- action → effort, as the control stack does it -------------------------------------------

/**
 * The effort the control loop and safety filter send for a normalised action at a state, for a
 * batch of model states (see the file comment). Mirrors ControlLoop.tick (a·torqueScale +
 * gravity) and SafetyFilter's rules d, e, the dynamic limits (e', without their observer: a model
 * state has no measured past) and f; the watchdog (a) is the rollouts' joint-limit filter, and
 * rules b and c never apply to a finite action at a state that passed it.
 */
export class EffortModel {
  readonly dof: number;
  /** Torque per unit action per joint: effort limit × action_torque_fraction (EpisodeRunner's). */
  readonly torqueScale: Float64Array;
  private readonly joints: readonly JointSpec[];
  private readonly dynamics: Dynamics | undefined;
  /** N·m·s/rad in every command (EpisodeRunner's action damping). */
  private readonly actionDamping: Float64Array;
  private readonly effortMax: Float64Array;
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;
  private readonly velocityMax: Float64Array;
  private readonly softJoint: Uint8Array;
  /** Largest change of effort per control period (N·m). */
  private readonly rateStep: Float64Array;
  private readonly controlRateHz: number;
  private readonly qRow: Float64Array;
  private readonly gravity: Float64Array;
  private readonly bounds = new Float64Array(2);
  /** The filter's limits from the dynamics, when the run has them on. */
  private readonly limits: DynamicLimits | undefined;
  private readonly limitState: JointState;
  private readonly row: Float64Array;

  /** `dynamics` computes gravity; it may be omitted only when gravity compensation is off. */
  constructor(model: RobotModel, control: ControlSpec, dynamics?: Dynamics) {
    if (control.gravityCompensation && dynamics === undefined) {
      throw new Error("EffortModel: gravity compensation is on, so the robot's Dynamics are needed");
    }
    const n = model.dof;
    this.dof = n;
    this.joints = model.joints;
    this.dynamics = control.gravityCompensation ? dynamics : undefined;
    this.torqueScale = Float64Array.from(model.joints, (j) => j.effort * control.actionTorqueFraction);
    const names = model.joints.map((j) => j.name);
    this.actionDamping = Float64Array.from(
      perJoint(control.actionDamping, n, "control.actionDamping", names),
    );
    this.effortMax = Float64Array.from(model.joints, (j) => j.effort * control.effortScale);
    this.lower = Float64Array.from(model.joints, (j) => (j.type === "continuous" ? -Infinity : j.lower));
    this.upper = Float64Array.from(model.joints, (j) => (j.type === "continuous" ? Infinity : j.upper));
    this.velocityMax = Float64Array.from(model.joints, (j) => j.velocity);
    this.softJoint = Uint8Array.from(model.joints, (j) => (control.useSoftLimits && j.safety ? 1 : 0));
    this.rateStep = Float64Array.from(
      perJoint(control.torqueRateLimit, n, "control.torqueRateLimit", names),
      (r) => r / control.controlRateHz,
    );
    this.controlRateHz = control.controlRateHz;
    this.qRow = new Float64Array(n);
    this.gravity = new Float64Array(n);
    this.row = new Float64Array(n);
    this.limitState = {
      stamp: 0,
      position: new Float64Array(n),
      velocity: new Float64Array(n),
      effort: new Float64Array(n),
    };
    this.limits =
      control.dynamicLimits && dynamics !== undefined
        ? new DynamicLimits(dynamics, model.joints, this.effortMax, control)
        : undefined;
  }

  /**
   * Effort for row `row` of the batch arrays (q, q̇ and previous effort: dof values per row;
   * action: dof values per row, normalised) into out (dof values per row). previous[row·dof] NaN
   * means no previous effort is known: the torque-rate limit is taken from the gravity hold, as
   * the filter does after a reset.
   */
  effort(
    q: Float64Array,
    qd: Float64Array,
    action: Float32Array,
    previous: Float64Array,
    row: number,
    out: Float64Array,
  ): void {
    const n = this.dof;
    const base = row * n;
    const g = this.gravity;
    if (this.dynamics !== undefined) {
      for (let i = 0; i < n; i++) this.qRow[i] = q[base + i];
      this.dynamics.gravity(this.qRow, g);
    } else {
      g.fill(0);
    }
    const knownPrevious = !Number.isNaN(previous[base]);
    const x = this.row;
    for (let i = 0; i < n; i++) {
      const qi = q[base + i];
      const vi = qd[base + i];
      const eMax = this.effortMax[i];
      // ControlLoop.tick: the source's torque (EpisodeRunner: clipped action × scale − damping·q̇) + gravity.
      const a = Math.max(-1, Math.min(1, action[base + i]));
      let xi = a * this.torqueScale[i] - this.actionDamping[i] * vi + g[i];
      // d. Effort limit, then the soft limits net of gravity.
      xi = clamp(xi, -eMax, eMax);
      if (this.softJoint[i] === 1) {
        softEffortBounds(this.joints[i], qi, vi, eMax, g[i], this.bounds);
        xi = clamp(xi, this.bounds[0], this.bounds[1]);
      }
      // e. Torque-rate limit around the previous effort (or the gravity hold).
      const reference = knownPrevious ? previous[base + i] : g[i];
      x[i] = clamp(xi, reference - this.rateStep[i], reference + this.rateStep[i]);
    }
    // e'. The limits from the dynamics, for the whole torque vector.
    if (this.limits !== undefined) {
      const s = this.limitState;
      for (let i = 0; i < n; i++) {
        s.position[i] = q[base + i];
        s.velocity[i] = qd[base + i];
      }
      this.limits.forget();
      this.limits.prepare(s, 1 / this.controlRateHz);
      this.limits.constrain(x);
    }
    for (let i = 0; i < n; i++) {
      const qi = q[base + i];
      const vi = qd[base + i];
      const eMax = this.effortMax[i];
      // f. Hard rules: no effort pushing further past a hard position or velocity limit.
      const pastUpper = qi >= this.upper[i];
      const pastLower = qi <= this.lower[i];
      const high = pastUpper || vi >= this.velocityMax[i];
      const low = pastLower || vi <= -this.velocityMax[i];
      let lo = -Infinity;
      let hi = Infinity;
      if (high) hi = 0;
      if (low) lo = 0;
      if (this.dynamics !== undefined && high !== low) {
        if (high && g[i] < 0) hi = g[i];
        if (low && g[i] > 0) lo = g[i];
      }
      const xi = clamp(clamp(x[i], lo, hi), -eMax, eMax);
      out[base + i] = Number.isFinite(xi) ? xi : 0;
    }
  }
}

// ---- rollout starts -------------------------------------------------------------------------

/** Where branches start: rows of (q, q̇, goal) and the effort sent just before (NaN: unknown). */
export interface RolloutStarts {
  rows: number;
  q: Float64Array;
  qd: Float64Array;
  goal: Float64Array;
  previousEffort: Float64Array;
}

export function createRolloutStarts(rows: number, dof: number, goalSize: number): RolloutStarts {
  return {
    rows,
    q: new Float64Array(rows * dof),
    qd: new Float64Array(rows * dof),
    goal: new Float64Array(rows * goalSize),
    previousEffort: new Float64Array(rows * dof),
  };
}

/**
 * Hindsight goals for rollout starts (HER's "future" strategy, Andrychowicz et al. 2017, used with
 * model rollouts as in MHER, Yang et al. 2021): a start keeps its state but, with probability
 * `fraction`, takes as its goal what a later step of the same real episode achieved.
 */
export interface HindsightRelabelling {
  fraction: number;
  /** The goal a joint pose achieves (Task.achievedGoal). */
  achievedGoal: (q: Float64Array, out: Float64Array) => void;
  /** Whether a goal lies where the task sets goals (Task.goalInRange); others are not used. */
  inRange?: (goal: Float64Array) => boolean;
}

/**
 * Samples `starts.rows` real states uniformly (with replacement) from the real buffer. The effort
 * sent at the tick before is known when the slot before holds the same episode's previous step
 * (its next state is exactly this state: the same joint-state reading). With `hindsight`, some
 * starts get the goal achieved at a uniformly chosen step of the rest of their episode (that
 * step's next state), so that the policy sees, in the model, what reaching and holding a goal is
 * worth long before its own episodes end on their targets.
 */
export function sampleRolloutStarts(
  real: RealReplayBuffer,
  rng: Rng,
  starts: RolloutStarts,
  hindsight?: HindsightRelabelling,
): void {
  const n = real.dof;
  const G = real.goalSize;
  if (starts.q.length < starts.rows * n || starts.goal.length < starts.rows * G) {
    throw new Error(`sampleRolloutStarts: starts arrays are too short for ${starts.rows} rows`);
  }
  const hindsightQ = new Float64Array(n);
  const hindsightGoal = new Float64Array(G);
  for (let row = 0; row < starts.rows; row++) {
    const slot = real.sampleSlot(rng);
    const from = slot * n;
    const to = row * n;
    for (let j = 0; j < n; j++) {
      starts.q[to + j] = real.q[from + j];
      starts.qd[to + j] = real.qd[from + j];
    }
    for (let j = 0; j < G; j++) starts.goal[row * G + j] = real.goal[slot * G + j];
    const previous = previousSlot(real, slot);
    for (let j = 0; j < n; j++)
      starts.previousEffort[to + j] = previous >= 0 ? real.effort[previous * n + j] : Number.NaN;
    if (hindsight !== undefined && rng.uniform() < hindsight.fraction) {
      const last = lastSlotOfEpisode(real, slot);
      const span = (last - slot + real.capacity) % real.capacity;
      const future = (slot + rng.int(span + 1)) % real.capacity;
      for (let j = 0; j < n; j++) hindsightQ[j] = real.nextQ[future * n + j];
      hindsight.achievedGoal(hindsightQ, hindsightGoal);
      if (hindsight.inRange === undefined || hindsight.inRange(hindsightGoal))
        for (let j = 0; j < G; j++) starts.goal[row * G + j] = hindsightGoal[j];
    }
  }
}

/**
 * The slot holding the same episode's previous step (its next state is exactly this state: the
 * same joint-state reading), or −1: none for the first slot of a ring not yet full, none for the
 * oldest slot of a full ring (the one before it holds the newest transition), none after a reset.
 */
export function previousSlot(real: RealReplayBuffer, slot: number): number {
  const n = real.dof;
  const full = real.size === real.capacity;
  const previous = slot > 0 ? slot - 1 : full ? real.capacity - 1 : -1;
  if (previous < 0 || (full && slot === real.next)) return -1;
  for (let j = 0; j < n; j++) {
    if (
      real.nextQ[previous * n + j] !== real.q[slot * n + j] ||
      real.nextQd[previous * n + j] !== real.qd[slot * n + j]
    )
      return -1;
  }
  return previous;
}

/**
 * The last slot of the episode that holds `slot`: steps follow each other while the next slot's
 * state is this one's next state and the goal is the same (a new episode starts from a reset).
 */
function lastSlotOfEpisode(real: RealReplayBuffer, slot: number): number {
  const n = real.dof;
  const G = real.goalSize;
  let current = slot;
  for (;;) {
    const following = (current + 1) % real.capacity;
    // The newest transition has no successor: `next` is the slot to be written (or the oldest).
    if (following === real.next || (real.size < real.capacity && following >= real.size)) return current;
    for (let j = 0; j < n; j++) {
      if (real.q[following * n + j] !== real.nextQ[current * n + j]) return current;
    }
    for (let j = 0; j < G; j++) {
      if (real.goal[following * G + j] !== real.goal[current * G + j]) return current;
    }
    current = following;
  }
}

// ---- the rollouts ---------------------------------------------------------------------------

/** What one run() did (see UpdateReport for the identities between these). */
export interface RolloutCounts {
  branches: number;
  /** Predicted transitions, kept or not. */
  predicted: number;
  kept: number;
  /** Branches ended by the task's termination (their last transition is kept). */
  terminated: number;
  jointLimits: number;
  uncertainty: number;
  /** Branches that ran all k steps. */
  completed: number;
}

export interface RolloutOptions {
  /** Steps per branch. */
  length: number;
  /** The uncertainty filter's threshold on the disagreement (standardised units). */
  disagreementThreshold: number;
}

/** Branched rollouts for one task and robot; scratch arrays are kept and regrown between runs. */
export class BranchedRollouts {
  readonly effortModel: EffortModel;
  private readonly task: Task;
  private readonly dof: number;
  /** Watchdog bounds: the joint-limit filter. */
  private readonly qMin: Float64Array;
  private readonly qMax: Float64Array;
  private readonly qdMax: Float64Array;
  private capacity = 0;
  private obs = new Float32Array(0);
  private readonly obsRow: Float32Array;
  private readonly nextObsRow: Float32Array;
  private readonly actionRow: Float32Array;
  private actions = new Float32Array(0);
  private effort = new Float64Array(0);
  private inputs = new Float32Array(0);
  private members = new Int32Array(0);
  private sampled: EnsembleSample = { delta: new Float32Array(0), disagreement: new Float32Array(0) };
  private batch: TransitionBatch;
  private readonly qNext: Float64Array;
  private readonly qdNext: Float64Array;
  /** The model's input width: (q, q̇, τ), or (q, q̇, τ, τ_prev). */
  private readonly inputWidth: number;

  constructor(
    task: Task,
    model: RobotModel,
    control: ControlSpec,
    dynamics?: Dynamics,
    /** mbpo.modelPreviousEffort: the model's input has a fourth block, the effort of the tick before. */
    private readonly previousEffortInput = false,
  ) {
    if (task.dof !== model.dof || task.actionSize !== model.dof) {
      throw new Error(
        `BranchedRollouts: task "${task.name}" has ${task.dof} joints and ${task.actionSize} actions, the robot ${model.dof} joints`,
      );
    }
    this.task = task;
    this.dof = model.dof;
    this.effortModel = new EffortModel(model, control, dynamics);
    this.qMin = Float64Array.from(model.joints, (j) =>
      j.type === "continuous" ? -Infinity : j.lower - control.positionMargin,
    );
    this.qMax = Float64Array.from(model.joints, (j) =>
      j.type === "continuous" ? Infinity : j.upper + control.positionMargin,
    );
    this.qdMax = Float64Array.from(model.joints, (j) => j.velocity * (1 + control.velocityMargin));
    this.obsRow = new Float32Array(task.observationSize);
    this.nextObsRow = new Float32Array(task.observationSize);
    this.actionRow = new Float32Array(task.actionSize);
    this.batch = createBatch(task.observationSize, task.actionSize, 1);
    this.qNext = new Float64Array(this.dof);
    this.qdNext = new Float64Array(this.dof);
    this.inputWidth = modelInputSize(this.dof, previousEffortInput);
  }

  /** Whether a predicted joint state is finite and where the real robot's watchdog accepts it. */
  admissible(q: Float64Array, qd: Float64Array): boolean {
    for (let j = 0; j < this.dof; j++) {
      // Written so that NaN fails every test.
      if (!(q[j] >= this.qMin[j] && q[j] <= this.qMax[j])) return false;
      if (!(Math.abs(qd[j]) <= this.qdMax[j])) return false;
    }
    return true;
  }

  /**
   * Runs one branch from each start for up to options.length steps, adding every kept transition
   * to `out`. `starts` is used as the branches' working state (overwritten).
   */
  async run(
    starts: RolloutStarts,
    model: RolloutModel,
    policy: RolloutPolicy,
    rng: Rng,
    options: RolloutOptions,
    out: ReplayBuffer,
  ): Promise<RolloutCounts> {
    const n = this.dof;
    const task = this.task;
    const O = task.observationSize;
    const A = task.actionSize;
    const G = task.goalSize;
    const W = this.inputWidth;
    if (model.inputSize !== W || model.outputSize !== modelOutputSize(n)) {
      throw new Error(
        `BranchedRollouts: the model maps ${model.inputSize} → ${model.outputSize} values, expected ${this.previousEffortInput ? "(q, q̇, τ, τ_prev)" : "(q, q̇, τ)"} = ${W} → Δ(q, q̇) = ${modelOutputSize(n)}`,
      );
    }
    if (!(Number.isInteger(options.length) && options.length >= 0)) {
      throw new Error(`BranchedRollouts: length must be a non-negative integer, got ${options.length}`);
    }
    const counts: RolloutCounts = {
      branches: starts.rows,
      predicted: 0,
      kept: 0,
      terminated: 0,
      jointLimits: 0,
      uncertainty: 0,
      completed: 0,
    };
    this.reserve(starts.rows);
    const { q, qd, goal, previousEffort } = starts;
    const { obs, actions, effort, inputs, members, sampled, batch, qNext, qdNext } = this;
    const goalRow = new Float64Array(G);
    const qRow = new Float64Array(n);
    const qdRow = new Float64Array(n);
    let active = starts.rows;

    for (let step = 0; step < options.length && active > 0; step++) {
      // Observe, act, and build the model's inputs for every live branch.
      for (let r = 0; r < active; r++) {
        this.copyRow(q, qd, goal, r, qRow, qdRow, goalRow);
        task.observe(qRow, qdRow, goalRow, this.obsRow);
        obs.set(this.obsRow, r * O);
      }
      await policy(obs, active, actions);
      for (let r = 0; r < active; r++) {
        this.effortModel.effort(q, qd, actions, previousEffort, r, effort);
        const x = r * W;
        for (let j = 0; j < n; j++) {
          inputs[x + j] = q[r * n + j];
          inputs[x + n + j] = qd[r * n + j];
          inputs[x + 2 * n + j] = effort[r * n + j];
          if (this.previousEffortInput) {
            const before = previousEffort[r * n + j];
            inputs[x + 3 * n + j] = Number.isNaN(before) ? effort[r * n + j] : before;
          }
        }
      }
      model.randomElites(active, rng, members);
      await model.sample(inputs, active, members, rng, sampled);
      counts.predicted += active;

      // Filter, score and keep; compact the live branches to the front.
      let kept = 0;
      let live = 0;
      for (let r = 0; r < active; r++) {
        if (!(sampled.disagreement[r] <= options.disagreementThreshold)) {
          counts.uncertainty++;
          continue;
        }
        for (let j = 0; j < n; j++) {
          qNext[j] = q[r * n + j] + sampled.delta[r * 2 * n + j];
          qdNext[j] = qd[r * n + j] + sampled.delta[r * 2 * n + n + j];
        }
        if (!this.admissible(qNext, qdNext)) {
          counts.jointLimits++;
          continue;
        }
        for (let j = 0; j < G; j++) goalRow[j] = goal[r * G + j];
        const next = this.nextObsRow;
        task.observe(qNext, qdNext, goalRow, next);
        const { obsRow, actionRow } = this;
        for (let j = 0; j < O; j++) obsRow[j] = obs[r * O + j];
        for (let j = 0; j < A; j++) actionRow[j] = actions[r * A + j];
        const terminated = task.terminated(next);
        batch.obs.set(obsRow, kept * O);
        batch.action.set(actionRow, kept * A);
        batch.nextObs.set(next, kept * O);
        batch.reward[kept] = task.reward(obsRow, actionRow, next);
        batch.terminated[kept] = terminated ? 1 : 0;
        kept++;
        if (terminated) {
          counts.terminated++;
          continue;
        }
        // Live on: row r's next state moves to row `live` (live ≤ r, so nothing unread is overwritten).
        for (let j = 0; j < n; j++) {
          q[live * n + j] = qNext[j];
          qd[live * n + j] = qdNext[j];
          previousEffort[live * n + j] = effort[r * n + j];
        }
        for (let j = 0; j < G; j++) goal[live * G + j] = goalRow[j];
        live++;
      }
      out.addBatch(batch, kept);
      counts.kept += kept;
      active = live;
    }
    counts.completed = active;
    return counts;
  }

  /** Regrows the scratch arrays for `rows` branches. */
  private reserve(rows: number): void {
    if (rows <= this.capacity) return;
    const { observationSize: O, actionSize: A } = this.task;
    const n = this.dof;
    this.capacity = rows;
    this.obs = new Float32Array(rows * O);
    this.actions = new Float32Array(rows * A);
    this.effort = new Float64Array(rows * n);
    this.inputs = new Float32Array(rows * this.inputWidth);
    this.members = new Int32Array(rows);
    this.sampled = { delta: new Float32Array(rows * 2 * n), disagreement: new Float32Array(rows) };
    this.batch = createBatch(O, A, rows);
  }

  private copyRow(
    q: Float64Array,
    qd: Float64Array,
    goal: Float64Array,
    r: number,
    qRow: Float64Array,
    qdRow: Float64Array,
    goalRow: Float64Array,
  ): void {
    const n = this.dof;
    const G = goalRow.length;
    for (let j = 0; j < n; j++) {
      qRow[j] = q[r * n + j];
      qdRow[j] = qd[r * n + j];
    }
    for (let j = 0; j < G; j++) goalRow[j] = goal[r * G + j];
  }
}
