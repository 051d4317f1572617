/**
 * Teleop recording: while the node follows /teleop/joint_targets, each tick's observation, the
 * effort sent and the state it led to become transitions, in segments of the task's episode length,
 * written to the node's transition sink. Only the ROS node has teleop: this lives beside it.
 */
import type { TransitionSink } from "../app/transitions.js";
import type { Config } from "../config/config.js";
import type { EpisodeResult, EpisodeRunner, Transition } from "../control/episode.js";
import type { ControlLoop } from "../control/loop.js";
import type { Driver, JointState } from "../drivers/driver.js";
import type { RobotModel } from "../robot/types.js";
import type { SafetyFilter } from "../safety/filter.js";
import type { Task, TaskEpisode } from "../tasks/task.js";
import { Rng } from "../util/rng.js";

/** What the recording reads from the node. */
export interface TeleopOwner {
  readonly recorder: TransitionSink | undefined;
  readonly task: Task;
  readonly safety: SafetyFilter;
  readonly model: RobotModel;
  readonly driver: Driver;
  readonly loop: ControlLoop;
  readonly runner: EpisodeRunner;
  readonly config: Config;
  transitionsRecorded: number;
}

/**
 * Teleop transitions: each tick's observation, the effort sent and the state it led to, in
 * segments of the task's episode length (each with its own sampled goal, so rewards can be
 * relabelled later), written to the recorder.
 */
export class TeleopRecording {
  private readonly owner: TeleopOwner;
  private transition: Transition | undefined;
  private prev: JointState | undefined;
  private episode: TaskEpisode | undefined;
  private index = 0;
  private step = 0;
  private returnSum = 0;
  private countsBefore: Record<string, number> = {};
  private readonly rng: Rng;
  private pendingStep = false;

  constructor(owner: TeleopOwner) {
    this.owner = owner;
    this.rng = new Rng(owner.config.seed, 2);
  }

  private get sink(): TransitionSink | undefined {
    return this.owner.recorder;
  }

  begin(): void {
    const task = this.owner.task;
    this.episode = task.sampleEpisode(this.rng);
    this.step = 0;
    this.returnSum = 0;
    this.countsBefore = { ...this.owner.safety.counts };
    this.prev = undefined;
    const dof = this.owner.model.dof;
    this.transition ??= {
      episode: 0,
      step: 0,
      obs: new Float32Array(task.observationSize),
      action: new Float32Array(task.actionSize),
      effort: new Float64Array(dof),
      reward: 0,
      nextObs: new Float32Array(task.observationSize),
      terminated: false,
      truncated: false,
      interventions: 0,
    };
  }

  /** Before the tick: the state the command will act on. */
  beforeTick(): void {
    const state = this.owner.driver.readState();
    if (this.sink === undefined || this.episode === undefined || state === undefined) return;
    if (this.prev !== undefined && this.transition !== undefined) this.finish(state);
    this.prev = this.prev ?? cloneState(state);
    copyState(state, this.prev);
    this.owner.task.observe(state.position, state.velocity, this.episode.goal, this.transition!.obs);
  }

  /** After the tick: the effort sent and the action it amounts to (gravity removed, normalised). */
  afterTick(intervened: boolean): void {
    const t = this.transition;
    if (this.sink === undefined || t === undefined || this.prev === undefined) return;
    const loop = this.owner.loop;
    const scale = this.owner.runner.torqueScale;
    for (let i = 0; i < t.effort.length; i++) {
      t.effort[i] = loop.sent[i];
      t.action[i] = Math.max(-1, Math.min(1, (loop.sent[i] - loop.gravity[i]) / scale[i]));
    }
    t.interventions = intervened ? 1 : 0;
    this.pendingStep = true;
  }

  /** Completes the last tick's transition with the state it led to. */
  private finish(next: JointState): void {
    if (!this.pendingStep) return;
    this.pendingStep = false;
    const t = this.transition!;
    const task = this.owner.task;
    const episode = this.episode!;
    task.observe(next.position, next.velocity, episode.goal, t.nextObs);
    t.episode = this.index;
    t.step = this.step;
    t.reward = task.reward(t.obs, t.action, t.nextObs);
    t.terminated = false;
    t.truncated = this.step === task.episodeSteps - 1;
    this.returnSum += t.reward;
    this.sink!.record(t, this.prev!, next, episode.goal);
    this.owner.transitionsRecorded++;
    this.step++;
    if (t.truncated) {
      this.end(true);
      this.begin();
    }
  }

  /** Closes the current segment (stop, fault or full length). */
  end(full: boolean): void {
    if (this.sink === undefined || this.episode === undefined || this.step === 0) return;
    // Safety interventions during the segment, by kind (as EpisodeRunner reports them).
    const interventions: Record<string, number> = {};
    for (const [kind, count] of Object.entries(this.owner.safety.counts as Record<string, number>)) {
      const delta = count - (this.countsBefore[kind] ?? 0);
      if (delta > 0) interventions[kind] = delta;
    }
    const result: EpisodeResult = {
      episode: this.index,
      steps: this.step,
      return: this.returnSum,
      success: false,
      finalDistance: Number.NaN,
      resetReached: true,
      interventions,
      peakEffortFraction: [],
      aborted: !full,
    };
    this.sink.endEpisode(result);
    this.index++;
    this.step = 0;
    this.pendingStep = false;
  }
}

function cloneState(s: JointState): JointState {
  return {
    stamp: s.stamp,
    position: Float64Array.from(s.position),
    velocity: Float64Array.from(s.velocity),
    effort: Float64Array.from(s.effort),
  };
}

function copyState(from: JointState, to: JointState): void {
  to.stamp = from.stamp;
  to.position.set(from.position);
  to.velocity.set(from.velocity);
  to.effort.set(from.effort);
}
