/**
 * Episodes on the robot: the reset move to the start pose, the policy's run with one transition per
 * control tick, and the hold between episodes. All of it goes through ControlLoop.tick, so every
 * command passes the safety filter.
 *
 * An episode can be run whole (runEpisode, for `run` and training) or driven one control period at
 * a time (beginEpisode, step, endEpisode, for `env serve`); runEpisode is built on the step-wise
 * calls, so both give the same transitions for the same actions.
 */
import type { JointState } from "../drivers/driver.js";
import type { JointSpec } from "../robot/types.js";
import type { SafetyReport } from "../safety/filter.js";
import type { Task, TaskEpisode } from "../tasks/task.js";
import { atPose, holdController, JointMove } from "./controllers.js";
import type { ControlLoop, TorqueSource } from "./loop.js";
import type { Policy, PolicyContext } from "./policy.js";

export interface EpisodeOptions {
  /** Torque per unit of normalised action, as a fraction of each joint's effort limit. */
  actionTorqueFraction: number;
  /** Joint damping (N·m·s/rad, per joint) in every policy command: τ = a·torqueScale − actionDamping·q̇. */
  actionDamping: readonly number[];
  /** Joint damping (per joint) of the hold between episodes. */
  holdDamping: readonly number[];
  /** The move back to the start pose: per-joint PD gains, reference speed, tolerance, timeout. */
  reset: { kp: readonly number[]; kd: readonly number[]; speed: number; tolerance: number; timeout: number };
}

/**
 * One real transition. The runner reuses this object and its arrays for every tick: a consumer that
 * keeps it must copy.
 */
export interface Transition {
  episode: number;
  step: number;
  obs: Float32Array;
  /** The normalised action applied: the policy's, clipped to [-1, 1]. */
  action: Float32Array;
  /** The effort actually sent (after gravity compensation and the safety filter), N·m. */
  effort: Float64Array;
  reward: number;
  nextObs: Float32Array;
  terminated: boolean;
  truncated: boolean;
  /** Safety interventions at this tick (0 when the command went through unchanged). */
  interventions: number;
}

export interface EpisodeResult {
  episode: number;
  steps: number;
  return: number;
  success: boolean;
  finalDistance: number;
  /** Whether the reset move reached the start pose within its timeout. */
  resetReached: boolean;
  /** Safety interventions during the episode, by kind. */
  interventions: Record<string, number>;
  /** Largest |effort| sent per joint, as a fraction of that joint's URDF effort limit. */
  peakEffortFraction: number[];
  /** Set when a safety fault latched and ended the episode. */
  fault?: string;
  /** Set when the run was stopped (Ctrl-C) during the episode. */
  aborted: boolean;
}

export class EpisodeRunner {
  readonly torqueScale: Float64Array;
  private readonly loop: ControlLoop;
  private readonly task: Task;
  private readonly joints: readonly JointSpec[];
  private readonly options: EpisodeOptions;
  private readonly hold: TorqueSource;
  private readonly resetMove: JointMove;
  private readonly obs: Float32Array[];
  private readonly action: Float32Array;
  private readonly peak: Float64Array;
  private readonly transition: Transition;
  private readonly context: PolicyContext;
  /** The tick's torque source: the current policy on the state the tick read. */
  private readonly policySource: TorqueSource;

  // The episode in progress (beginEpisode → step … → endEpisode).
  private active = false;
  private episode: TaskEpisode | undefined;
  private policy: Policy | undefined;
  private stepIndex = 0;
  /** Which of the two observation buffers the current tick observes into. */
  private current = 0;
  private countsBefore: Record<string, number> = {};
  private episodeResult: EpisodeResult = emptyResult(0);
  /** The safety filter's report of the last step's tick (a reused object; see SafetyReport). */
  lastReport: SafetyReport | undefined;

  constructor(loop: ControlLoop, task: Task, joints: readonly JointSpec[], options: EpisodeOptions) {
    this.loop = loop;
    this.task = task;
    this.joints = joints;
    this.options = options;
    const n = joints.length;
    this.torqueScale = Float64Array.from(joints, (j) => j.effort * options.actionTorqueFraction);
    this.hold = holdController(options.holdDamping);
    const { kp, kd, speed } = options.reset;
    this.resetMove = new JointMove(n, kp, kd, speed);
    this.obs = [new Float32Array(task.observationSize), new Float32Array(task.observationSize)];
    this.action = new Float32Array(task.actionSize);
    this.peak = new Float64Array(n);
    this.transition = {
      episode: 0,
      step: 0,
      obs: this.obs[0],
      action: this.action,
      effort: loop.sent,
      reward: 0,
      nextObs: this.obs[1],
      terminated: false,
      truncated: false,
      interventions: 0,
    };
    this.context = {
      state: undefined as unknown as JointState,
      torqueScale: this.torqueScale,
      actionDamping: Float64Array.from(options.actionDamping),
    };
    // Each tick observes the state it acts on; after the wait, the state the action led to is
    // observed into the other buffer, and the two buffers swap roles each step.
    const damping = this.context.actionDamping;
    this.policySource = (state, out) => {
      const obs = this.obs[this.current];
      this.task.observe(state.position, state.velocity, this.episode!.goal, obs);
      this.context.state = state;
      this.policy!.act(obs, this.context, this.action);
      for (let i = 0; i < out.length; i++) {
        // An action outside [-1, 1] is clipped here, in place, so that the transition (its reward,
        // the log, the learner) carries the action actually applied; a NaN passes on so that the
        // safety filter replaces it and counts the intervention.
        const a = Math.max(-1, Math.min(1, this.action[i]));
        this.action[i] = a;
        out[i] = a * this.torqueScale[i] - damping[i] * state.velocity[i];
      }
    };
  }

  /**
   * Moves to a joint pose at the reset speed (JointMove: PD on a walking reference, plus gravity
   * compensation, through the safety filter). Returns whether the pose was reached within the
   * planned duration plus the settling timeout (false also when a fault latched, the run was
   * stopped, or no joint state has arrived).
   */
  async moveTo(target: Float64Array, signal?: AbortSignal): Promise<boolean> {
    const { tolerance, timeout } = this.options.reset;
    const from = this.loop.driver.readState();
    if (from === undefined) return false;
    const move = this.resetMove;
    const period = this.loop.period;
    const maxTicks = Math.ceil((move.start(from.position, target) + timeout) / period);
    for (let t = 0; t < maxTicks; t++) {
      if (signal?.aborted) return false;
      move.advance(period);
      const report = this.loop.tick(move.source);
      if (report.faulted) return false;
      // Wait out this tick's period before judging (and before the caller's next command), so
      // that a command is never followed by another within the same period.
      await this.loop.wait();
      const state = this.loop.driver.readState();
      if (
        move.referenceArrived &&
        state !== undefined &&
        atPose(state.position, state.velocity, target, tolerance, 10 * tolerance)
      ) {
        return true;
      }
    }
    return false;
  }

  /** Holds the arm (gravity compensation plus damping) for a number of ticks. */
  async holdFor(ticks: number, signal?: AbortSignal): Promise<void> {
    for (let t = 0; t < ticks && !signal?.aborted; t++) {
      this.loop.tick(this.hold);
      await this.loop.wait();
    }
  }

  /** One hold tick, for callers that interleave holding with other work. */
  holdTick(): void {
    this.loop.tick(this.hold);
  }

  /**
   * Runs one episode: reset move to the episode's start pose, then the policy for the task's
   * episode length. onTransition sees every transition (a reused object: copy to keep).
   * Built on beginEpisode / step / endEpisode, the same path `env serve` drives step by step.
   */
  async runEpisode(
    index: number,
    episode: TaskEpisode,
    policy: Policy,
    options: { signal?: AbortSignal; onTransition?: (t: Transition) => void } = {},
  ): Promise<EpisodeResult> {
    const { signal, onTransition } = options;
    await this.beginEpisode(index, episode, signal);
    policy.reset(episode);
    while (this.active) {
      if (signal?.aborted) return this.endEpisode(true);
      const transition = await this.step(policy);
      if (transition !== undefined) onTransition?.(transition);
    }
    return this.result;
  }

  /**
   * Starts an episode: the reset move to its start pose (through the safety filter), then observes
   * the start state. Returns that observation (the runner's own buffer: valid until the next step).
   * An episode still running is ended first.
   */
  async beginEpisode(index: number, episode: TaskEpisode, signal?: AbortSignal): Promise<Float32Array> {
    if (this.active) this.endEpisode();
    this.countsBefore = { ...this.loop.safety.counts };
    this.peak.fill(0);
    this.episodeResult = emptyResult(index);
    this.episode = episode;
    this.stepIndex = 0;
    this.lastReport = undefined;
    this.transition.episode = index;
    this.active = true;
    this.episodeResult.resetReached = await this.moveTo(episode.startPosition, signal);
    const start = this.obs[0];
    start.fill(Number.NaN);
    const state = this.loop.driver.readState();
    if (state !== undefined) this.task.observe(state.position, state.velocity, episode.goal, start);
    return start;
  }

  /**
   * One control period of the episode: a tick in which the policy acts on the state it observes
   * (plus gravity compensation, through the safety filter), the wait to the next period, and the
   * transition it led to. Returns that transition (a reused object: copy to keep), or undefined
   * when the episode ended without one (a latched safety fault, or no joint state). The episode
   * ends by itself on termination, truncation, a fault or a lost state; see `active`.
   */
  async step(policy: Policy): Promise<Transition | undefined> {
    if (!this.active || this.episode === undefined) {
      throw new Error("EpisodeRunner.step: no episode running (call beginEpisode first)");
    }
    if (this.loop.safety.fault !== undefined) {
      this.endEpisode();
      return undefined;
    }
    const task = this.task;
    const tr = this.transition;
    const step = this.stepIndex;
    this.policy = policy;
    this.current = step % 2;
    const report = this.loop.tick(this.policySource);
    this.lastReport = report;
    if (report.faulted) {
      this.endEpisode();
      return undefined;
    }
    tr.obs = this.obs[this.current];
    tr.nextObs = this.obs[1 - this.current];
    tr.step = step;
    tr.interventions = report.anyIntervention ? 1 : 0;
    this.trackPeak();
    await this.loop.wait();

    const next = this.loop.driver.readState();
    if (next === undefined) {
      this.endEpisode();
      return undefined;
    }
    task.observe(next.position, next.velocity, this.episode.goal, tr.nextObs);
    tr.reward = task.reward(tr.obs, this.action, tr.nextObs);
    tr.terminated = task.terminated(tr.nextObs);
    tr.truncated = !tr.terminated && step === task.episodeSteps - 1;
    this.stepIndex = step + 1;
    const result = this.episodeResult;
    result.return += tr.reward;
    result.steps = step + 1;
    if (tr.terminated || tr.truncated) this.endEpisode();
    return tr;
  }

  /** Whether an episode has begun and not ended (steps may be taken). */
  get isActive(): boolean {
    return this.active;
  }

  /**
   * The current (or last) episode's result. Final distance, success, interventions and peak effort
   * are filled in when the episode ends.
   */
  get result(): EpisodeResult {
    return this.episodeResult;
  }

  /**
   * Ends the episode now (idempotent) and fills in its result: fault, final distance and success
   * at the current state, interventions by kind, peak effort. `aborted` marks a stop by the user.
   */
  endEpisode(aborted = false): EpisodeResult {
    const result = this.episodeResult;
    if (!this.active) return result;
    this.active = false;
    result.aborted = aborted;
    const safety = this.loop.safety;
    if (safety.fault !== undefined) {
      result.fault = `${safety.fault.reason}: ${safety.fault.detail}`;
    }
    const last = this.loop.driver.readState();
    if (last !== undefined && this.episode !== undefined) {
      const finalObs = this.obs[0];
      this.task.observe(last.position, last.velocity, this.episode.goal, finalObs);
      result.finalDistance = this.task.distance(finalObs);
      result.success = result.fault === undefined && this.task.success(finalObs);
    }
    for (const [kind, count] of Object.entries(safety.counts as Record<string, number>)) {
      const delta = count - (this.countsBefore[kind] ?? 0);
      if (delta > 0) result.interventions[kind] = delta;
    }
    result.peakEffortFraction = Array.from(this.peak);
    return result;
  }

  private trackPeak(): void {
    const sent = this.loop.sent;
    for (let i = 0; i < sent.length; i++) {
      const fraction = Math.abs(sent[i]) / this.joints[i].effort;
      if (fraction > this.peak[i]) this.peak[i] = fraction;
    }
  }
}

/** The result of episode `index` before its first step (and of one that never took one). */
export function emptyResult(index: number): EpisodeResult {
  return {
    episode: index,
    steps: 0,
    return: 0,
    success: false,
    finalDistance: Number.NaN,
    resetReached: false,
    interventions: {},
    peakEffortFraction: [],
    aborted: false,
  };
}
