/**
 * Episodes on the robot: the reset move to the start pose, the policy's run with one transition per
 * control tick, and the hold between episodes. All of it goes through ControlLoop.tick, so every
 * command passes the safety filter.
 */
import type { JointState } from "../drivers/driver.js";
import type { JointSpec } from "../robot/types.js";
import type { Task, TaskEpisode } from "../tasks/task.js";
import { atPose, holdController, JointMove } from "./controllers.js";
import type { ControlLoop, TorqueSource } from "./loop.js";
import type { Policy, PolicyContext } from "./policy.js";

export interface EpisodeOptions {
  /** Torque per unit of normalised action, as a fraction of each joint's effort limit. */
  actionTorqueFraction: number;
  holdDamping: number;
  reset: { kp: number; kd: number; speed: number; tolerance: number; timeout: number };
}

/**
 * One real transition. The runner reuses this object and its arrays for every tick: a consumer that
 * keeps it must copy.
 */
export interface Transition {
  episode: number;
  step: number;
  obs: Float32Array;
  /** The policy's normalised action. */
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
    this.context = { state: undefined as unknown as JointState, torqueScale: this.torqueScale };
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
      const state = this.loop.driver.readState();
      if (
        move.referenceArrived &&
        state !== undefined &&
        atPose(state.position, state.velocity, target, tolerance, 10 * tolerance)
      ) {
        return true;
      }
      await this.loop.wait();
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
   */
  async runEpisode(
    index: number,
    episode: TaskEpisode,
    policy: Policy,
    options: { signal?: AbortSignal; onTransition?: (t: Transition) => void } = {},
  ): Promise<EpisodeResult> {
    const { signal, onTransition } = options;
    const safety = this.loop.safety;
    const countsBefore = { ...safety.counts };
    this.peak.fill(0);
    const result: EpisodeResult = {
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

    result.resetReached = await this.moveTo(episode.startPosition, signal);
    policy.reset(episode);

    const task = this.task;
    const tr = this.transition;
    tr.episode = index;
    let current = 0;
    const steps = task.episodeSteps;
    // Each tick observes the state it acts on; after the wait, the state the action led to is
    // observed into the other buffer, and the two buffers swap roles each step.
    const policySource: TorqueSource = (state, out) => {
      const obs = this.obs[current];
      task.observe(state.position, state.velocity, episode.goal, obs);
      this.context.state = state;
      policy.act(obs, this.context, this.action);
      for (let i = 0; i < out.length; i++) {
        const a = this.action[i];
        // An action outside [-1, 1] is clipped here; a NaN passes on so that the safety filter
        // replaces it and counts the intervention.
        out[i] = Math.max(-1, Math.min(1, a)) * this.torqueScale[i];
      }
    };

    for (let step = 0; step < steps; step++) {
      if (signal?.aborted) {
        result.aborted = true;
        break;
      }
      if (safety.fault !== undefined) break;
      current = step % 2;
      const report = this.loop.tick(policySource);
      if (report.faulted) break;
      tr.obs = this.obs[current];
      tr.nextObs = this.obs[1 - current];
      tr.step = step;
      tr.interventions = report.anyIntervention ? 1 : 0;
      this.trackPeak();
      await this.loop.wait();

      const next = this.loop.driver.readState();
      if (next === undefined) break;
      task.observe(next.position, next.velocity, episode.goal, tr.nextObs);
      tr.reward = task.reward(tr.obs, this.action, tr.nextObs);
      tr.terminated = task.terminated(tr.nextObs);
      tr.truncated = !tr.terminated && step === steps - 1;
      result.return += tr.reward;
      result.steps = step + 1;
      onTransition?.(tr);
      if (tr.terminated) break;
    }

    if (safety.fault !== undefined) {
      result.fault = `${safety.fault.reason}: ${safety.fault.detail}`;
    }
    const last = this.loop.driver.readState();
    if (last !== undefined) {
      const finalObs = this.obs[0];
      task.observe(last.position, last.velocity, episode.goal, finalObs);
      result.finalDistance = task.distance(finalObs);
      result.success = result.fault === undefined && task.success(finalObs);
    }
    for (const [kind, count] of Object.entries(safety.counts as Record<string, number>)) {
      const delta = count - (countsBefore[kind] ?? 0);
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
