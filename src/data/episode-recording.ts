/**
 * One episode's transitions, column by column in typed arrays: what the control thread copies each
 * tick (no allocation while the episode fits), and what it hands to the log's worker thread at the
 * episode's end (the arrays' buffers are transferred, not copied).
 */
import type { JointState } from "../drivers/driver.js";

export interface RecordingShape {
  dof: number;
  obsSize: number;
  actSize: number;
  goalSize: number;
}

/** Plain data (typed arrays and numbers): it crosses postMessage as is. */
export interface EpisodeRecording extends RecordingShape {
  episode: number;
  rows: number;
  capacity: number;
  /** When the observed state and the next state were measured (driver clock, s). */
  stamp: Float64Array;
  nextStamp: Float64Array;
  step: Uint32Array;
  /** Joint state at the observation and at the next observation, measured effort included. */
  position: Float64Array;
  velocity: Float64Array;
  measuredEffort: Float64Array;
  nextPosition: Float64Array;
  nextVelocity: Float64Array;
  nextMeasuredEffort: Float64Array;
  /** Effort sent (after gravity compensation and the safety filter). */
  effort: Float64Array;
  observation: Float32Array;
  action: Float32Array;
  nextObservation: Float32Array;
  reward: Float64Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  interventions: Uint32Array;
  /** The episode's goal (goalSize values). */
  goal: Float64Array;
}

export function createRecording(shape: RecordingShape, episode: number, capacity: number): EpisodeRecording {
  const { dof, obsSize, actSize, goalSize } = shape;
  const c = Math.max(1, capacity);
  return {
    dof,
    obsSize,
    actSize,
    goalSize,
    episode,
    rows: 0,
    capacity: c,
    stamp: new Float64Array(c),
    nextStamp: new Float64Array(c),
    step: new Uint32Array(c),
    position: new Float64Array(c * dof),
    velocity: new Float64Array(c * dof),
    measuredEffort: new Float64Array(c * dof),
    nextPosition: new Float64Array(c * dof),
    nextVelocity: new Float64Array(c * dof),
    nextMeasuredEffort: new Float64Array(c * dof),
    effort: new Float64Array(c * dof),
    observation: new Float32Array(c * obsSize),
    action: new Float32Array(c * actSize),
    nextObservation: new Float32Array(c * obsSize),
    reward: new Float64Array(c),
    terminated: new Uint8Array(c),
    truncated: new Uint8Array(c),
    interventions: new Uint32Array(c),
    goal: new Float64Array(goalSize),
  };
}

/** The typed arrays whose buffers postMessage may transfer. */
export function recordingBuffers(r: EpisodeRecording): ArrayBuffer[] {
  return [
    r.stamp,
    r.nextStamp,
    r.step,
    r.position,
    r.velocity,
    r.measuredEffort,
    r.nextPosition,
    r.nextVelocity,
    r.nextMeasuredEffort,
    r.effort,
    r.observation,
    r.action,
    r.nextObservation,
    r.reward,
    r.terminated,
    r.truncated,
    r.interventions,
    r.goal,
  ].map((a) => a.buffer as ArrayBuffer);
}

/** Doubles the capacity, keeping the rows (only when an episode outgrows its expected length). */
export function growRecording(r: EpisodeRecording): EpisodeRecording {
  const bigger = createRecording(r, r.episode, r.capacity * 2);
  bigger.rows = r.rows;
  for (const key of Object.keys(r) as (keyof EpisodeRecording)[]) {
    const from = r[key];
    const to = bigger[key];
    if (ArrayBuffer.isView(from) && ArrayBuffer.isView(to)) {
      (to as Float64Array).set(from as Float64Array);
    }
  }
  return bigger;
}

export interface TransitionRow {
  step: number;
  obs: ArrayLike<number>;
  action: ArrayLike<number>;
  effort: ArrayLike<number>;
  reward: number;
  nextObs: ArrayLike<number>;
  terminated: boolean;
  truncated: boolean;
  interventions: number;
}

/** Copies one transition into the next row. The caller makes sure rows < capacity. */
export function appendRow(r: EpisodeRecording, t: TransitionRow, state: JointState, next: JointState): void {
  const i = r.rows;
  const { dof, obsSize, actSize } = r;
  r.stamp[i] = state.stamp;
  r.nextStamp[i] = next.stamp;
  r.step[i] = t.step;
  copyInto(r.position, i * dof, state.position, dof);
  copyInto(r.velocity, i * dof, state.velocity, dof);
  copyInto(r.measuredEffort, i * dof, state.effort, dof);
  copyInto(r.nextPosition, i * dof, next.position, dof);
  copyInto(r.nextVelocity, i * dof, next.velocity, dof);
  copyInto(r.nextMeasuredEffort, i * dof, next.effort, dof);
  copyInto(r.effort, i * dof, t.effort, dof);
  copyInto(r.observation, i * obsSize, t.obs, obsSize);
  copyInto(r.action, i * actSize, t.action, actSize);
  copyInto(r.nextObservation, i * obsSize, t.nextObs, obsSize);
  r.reward[i] = t.reward;
  r.terminated[i] = t.terminated ? 1 : 0;
  r.truncated[i] = t.truncated ? 1 : 0;
  r.interventions[i] = t.interventions;
  r.rows = i + 1;
}

/** Copies n values; a shorter source (a driver without measured effort) leaves NaN. */
function copyInto(to: Float64Array | Float32Array, offset: number, from: ArrayLike<number>, n: number): void {
  for (let k = 0; k < n; k++) to[offset + k] = k < from.length ? from[k] : Number.NaN;
}
