/**
 * Real transitions packed for the trip to the learner's worker thread: one flat typed array per
 * field (row i of `obs` is obs[i·obsSize .. (i+1)·obsSize)), whose buffers are transferred, not
 * copied, by postMessage.
 *
 * The control thread fills a RealTransitionPacker tick by tick (a copy into preallocated arrays,
 * no allocation), then take()s the episode's rows as one message.
 */
import type { RealTransitionInput } from "./learner.js";

export interface PackedTransitions {
  count: number;
  obsSize: number;
  actSize: number;
  dof: number;
  goalSize: number;
  obs: Float32Array;
  action: Float32Array;
  reward: Float64Array;
  nextObs: Float32Array;
  /** 1 where the episode terminated at nextObs, else 0. */
  terminated: Uint8Array;
  q: Float64Array;
  qd: Float64Array;
  effort: Float64Array;
  nextQ: Float64Array;
  nextQd: Float64Array;
  goal: Float64Array;
}

export interface PackerSizes {
  obsSize: number;
  actSize: number;
  dof: number;
  goalSize: number;
}

export class RealTransitionPacker {
  readonly sizes: PackerSizes;
  private packed: PackedTransitions;
  private capacity: number;

  /** capacity: rows held before take(); an episode's length is the natural choice. */
  constructor(sizes: PackerSizes, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new Error(`RealTransitionPacker: capacity must be a positive integer, got ${capacity}`);
    }
    this.sizes = { ...sizes };
    this.capacity = capacity;
    this.packed = allocate(this.sizes, capacity);
  }

  get count(): number {
    return this.packed.count;
  }

  /** Copies one transition in. Throws when full or when an array has the wrong length. */
  push(t: RealTransitionInput): void {
    const p = this.packed;
    const row = p.count;
    if (row >= this.capacity) {
      throw new Error(`RealTransitionPacker: full (${this.capacity} rows); take() the rows first`);
    }
    const { obsSize, actSize, dof, goalSize } = this.sizes;
    copyRow("obs", t.obs, p.obs, row, obsSize);
    copyRow("action", t.action, p.action, row, actSize);
    copyRow("nextObs", t.nextObs, p.nextObs, row, obsSize);
    copyRow("q", t.q, p.q, row, dof);
    copyRow("qd", t.qd, p.qd, row, dof);
    copyRow("effort", t.effort, p.effort, row, dof);
    copyRow("nextQ", t.nextQ, p.nextQ, row, dof);
    copyRow("nextQd", t.nextQd, p.nextQd, row, dof);
    copyRow("goal", t.goal, p.goal, row, goalSize);
    p.reward[row] = t.reward;
    p.terminated[row] = t.terminated ? 1 : 0;
    p.count = row + 1;
  }

  /** Drops the rows held (e.g. an episode cut short by Ctrl-C). */
  clear(): void {
    this.packed.count = 0;
  }

  /**
   * The rows held, trimmed to their count, as fresh arrays ready to transfer; the packer starts
   * empty on new arrays.
   */
  take(): PackedTransitions {
    const p = this.packed;
    const n = p.count;
    const { obsSize, actSize, dof, goalSize } = this.sizes;
    const taken: PackedTransitions = {
      ...this.sizes,
      count: n,
      obs: p.obs.slice(0, n * obsSize),
      action: p.action.slice(0, n * actSize),
      reward: p.reward.slice(0, n),
      nextObs: p.nextObs.slice(0, n * obsSize),
      terminated: p.terminated.slice(0, n),
      q: p.q.slice(0, n * dof),
      qd: p.qd.slice(0, n * dof),
      effort: p.effort.slice(0, n * dof),
      nextQ: p.nextQ.slice(0, n * dof),
      nextQd: p.nextQd.slice(0, n * dof),
      goal: p.goal.slice(0, n * goalSize),
    };
    p.count = 0;
    return taken;
  }
}

/** The buffers of a packed batch, for postMessage's transfer list. */
export function transferList(p: PackedTransitions): ArrayBuffer[] {
  return [
    p.obs,
    p.action,
    p.reward,
    p.nextObs,
    p.terminated,
    p.q,
    p.qd,
    p.effort,
    p.nextQ,
    p.nextQd,
    p.goal,
  ].map((a) => a.buffer as ArrayBuffer);
}

/**
 * Checks a batch that arrived by message (sizes consistent, every number finite) and calls visit
 * with each row as a RealTransitionInput of subarray views (valid only during the call).
 * Throws one line naming the first bad field.
 */
export function forEachTransition(p: PackedTransitions, visit: (t: RealTransitionInput) => void): void {
  validatePacked(p);
  const { count, obsSize, actSize, dof, goalSize } = p;
  const row = (a: Float32Array | Float64Array, i: number, width: number) =>
    a.subarray(i * width, (i + 1) * width);
  for (let i = 0; i < count; i++) {
    visit({
      obs: row(p.obs, i, obsSize),
      action: row(p.action, i, actSize),
      reward: p.reward[i],
      nextObs: row(p.nextObs, i, obsSize),
      terminated: p.terminated[i] === 1,
      q: row(p.q, i, dof),
      qd: row(p.qd, i, dof),
      effort: row(p.effort, i, dof),
      nextQ: row(p.nextQ, i, dof),
      nextQd: row(p.nextQd, i, dof),
      goal: row(p.goal, i, goalSize),
    });
  }
}

export function validatePacked(p: PackedTransitions): void {
  if (typeof p !== "object" || p === null) throw new Error("transition batch: expected an object");
  const { count, obsSize, actSize, dof, goalSize } = p;
  for (const [name, v] of Object.entries({ count, obsSize, actSize, dof, goalSize })) {
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`transition batch: ${name} must be a non-negative integer, got ${v}`);
    }
  }
  type ArrayType = Float32ArrayConstructor | Float64ArrayConstructor | Uint8ArrayConstructor;
  const fields: [string, unknown, number, ArrayType][] = [
    ["obs", p.obs, count * obsSize, Float32Array],
    ["action", p.action, count * actSize, Float32Array],
    ["reward", p.reward, count, Float64Array],
    ["nextObs", p.nextObs, count * obsSize, Float32Array],
    ["terminated", p.terminated, count, Uint8Array],
    ["q", p.q, count * dof, Float64Array],
    ["qd", p.qd, count * dof, Float64Array],
    ["effort", p.effort, count * dof, Float64Array],
    ["nextQ", p.nextQ, count * dof, Float64Array],
    ["nextQd", p.nextQd, count * dof, Float64Array],
    ["goal", p.goal, count * goalSize, Float64Array],
  ];
  for (const [name, value, length, type] of fields) {
    if (!(value instanceof type)) throw new Error(`transition batch: ${name} must be a ${type.name}`);
    const array = value as Float64Array;
    if (array.length !== length) {
      throw new Error(`transition batch: ${name} has ${array.length} values, expected ${length}`);
    }
    for (let i = 0; i < array.length; i++) {
      if (!Number.isFinite(array[i])) {
        throw new Error(`transition batch: ${name}[${i}] is ${array[i]}; every value must be finite`);
      }
    }
  }
}

function allocate(s: PackerSizes, rows: number): PackedTransitions {
  return {
    ...s,
    count: 0,
    obs: new Float32Array(rows * s.obsSize),
    action: new Float32Array(rows * s.actSize),
    reward: new Float64Array(rows),
    nextObs: new Float32Array(rows * s.obsSize),
    terminated: new Uint8Array(rows),
    q: new Float64Array(rows * s.dof),
    qd: new Float64Array(rows * s.dof),
    effort: new Float64Array(rows * s.dof),
    nextQ: new Float64Array(rows * s.dof),
    nextQd: new Float64Array(rows * s.dof),
    goal: new Float64Array(rows * s.goalSize),
  };
}

function copyRow(
  field: string,
  from: ArrayLike<number>,
  to: Float32Array | Float64Array,
  row: number,
  width: number,
): void {
  if (from.length !== width) {
    throw new Error(`RealTransitionPacker: ${field} has ${from.length} values, expected ${width}`);
  }
  const base = row * width;
  for (let i = 0; i < width; i++) to[base + i] = from[i];
}
