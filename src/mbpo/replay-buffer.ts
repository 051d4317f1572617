/**
 * Replay buffers: fixed-capacity rings of transitions in flat typed arrays (row i of `obs` is
 * obs[i·obsSize .. (i+1)·obsSize)), so that adding and sampling never allocate.
 *
 * - ReplayBuffer holds what SAC learns from: (obs, action, reward, nextObs, terminated). The model
 *   buffer (branched rollouts) is one of these.
 * - RealReplayBuffer adds what the dynamics model learns from and what rollouts start from: the
 *   joint state (q, q̇), the effort τ actually applied, the next joint state, and the episode's goal
 *   (observations of model-predicted states are rebuilt with task.observe(q, q̇, goal)).
 *   Joint-space fields are Float64Array (SI units), because Δq over one tick is small next to q.
 *
 * Sampling is uniform with replacement over the filled slots, from the caller's seeded Rng.
 */
import type { Rng } from "../util/rng.js";

/** A batch of transitions for SAC, preallocated once and refilled in place. */
export interface TransitionBatch {
  /** Rows allocated. */
  readonly rows: number;
  readonly obsSize: number;
  readonly actSize: number;
  readonly obs: Float32Array;
  readonly action: Float32Array;
  readonly reward: Float32Array;
  readonly nextObs: Float32Array;
  /** 1 where the episode terminated at nextObs (no bootstrapping), else 0. Truncation is not termination. */
  readonly terminated: Float32Array;
}

export function createBatch(obsSize: number, actSize: number, rows: number): TransitionBatch {
  return {
    rows,
    obsSize,
    actSize,
    obs: new Float32Array(rows * obsSize),
    action: new Float32Array(rows * actSize),
    reward: new Float32Array(rows),
    nextObs: new Float32Array(rows * obsSize),
    terminated: new Float32Array(rows),
  };
}

/** One transition as the caller holds it (arrays may be reused by the caller: add() copies). */
export interface TransitionInput {
  obs: ArrayLike<number>;
  action: ArrayLike<number>;
  reward: number;
  nextObs: ArrayLike<number>;
  terminated: boolean;
}

/** A real transition: the SAC part plus the joint-space part the dynamics model learns from. */
export interface RealTransitionInput extends TransitionInput {
  /** Joint positions (rad or m) and velocities at obs. */
  q: ArrayLike<number>;
  qd: ArrayLike<number>;
  /** Effort applied during the step (after gravity compensation and the safety filter), N·m or N. */
  effort: ArrayLike<number>;
  /** Joint positions and velocities at nextObs. */
  nextQ: ArrayLike<number>;
  nextQd: ArrayLike<number>;
  /** The episode's goal vector (task.goalSize values). */
  goal: ArrayLike<number>;
}

/** Checkpoint form: sizes, ring position, and the filled rows of each array as base64 float32/64. */
export interface ReplayBufferJSON {
  kind: "replay-buffer" | "real-replay-buffer";
  capacity: number;
  obsSize: number;
  actSize: number;
  size: number;
  next: number;
  added: number;
  /** Field name → base64 of the filled rows (little-endian Float32Array or Float64Array bytes). */
  arrays: Record<string, string>;
  dof?: number;
  goalSize?: number;
}

export class ReplayBuffer {
  readonly capacity: number;
  readonly obsSize: number;
  readonly actSize: number;
  readonly obs: Float32Array;
  readonly action: Float32Array;
  readonly reward: Float32Array;
  readonly nextObs: Float32Array;
  readonly terminated: Float32Array;
  /** Filled slots: min(added, capacity). */
  private filled = 0;
  /** Slot the next add() writes (the oldest transition once the ring is full). */
  private nextSlot = 0;
  /** Transitions ever added, including overwritten ones. */
  private addedTotal = 0;

  constructor(capacity: number, obsSize: number, actSize: number) {
    requirePositiveInt("capacity", capacity);
    requirePositiveInt("obsSize", obsSize);
    requirePositiveInt("actSize", actSize);
    this.capacity = capacity;
    this.obsSize = obsSize;
    this.actSize = actSize;
    this.obs = new Float32Array(capacity * obsSize);
    this.action = new Float32Array(capacity * actSize);
    this.reward = new Float32Array(capacity);
    this.nextObs = new Float32Array(capacity * obsSize);
    this.terminated = new Float32Array(capacity);
  }

  get size(): number {
    return this.filled;
  }

  /** Transitions ever added (size stops at capacity, this does not). */
  get added(): number {
    return this.addedTotal;
  }

  /** Slot the next add() writes. */
  get next(): number {
    return this.nextSlot;
  }

  /** Copies one transition into the ring, overwriting the oldest when full. Returns the slot written. */
  add(t: TransitionInput): number {
    const slot = this.nextSlot;
    copyRowIn(t.obs, this.obs, slot, this.obsSize, "obs");
    copyRowIn(t.action, this.action, slot, this.actSize, "action");
    copyRowIn(t.nextObs, this.nextObs, slot, this.obsSize, "nextObs");
    this.reward[slot] = t.reward;
    this.terminated[slot] = t.terminated ? 1 : 0;
    this.advance();
    return slot;
  }

  /** Copies the first `count` rows of a batch (e.g. one step of model rollouts) into the ring. */
  addBatch(batch: TransitionBatch, count: number): void {
    if (batch.obsSize !== this.obsSize || batch.actSize !== this.actSize) {
      throw new Error(
        `ReplayBuffer.addBatch: batch has obs ${batch.obsSize}, action ${batch.actSize}; expected ${this.obsSize}, ${this.actSize}`,
      );
    }
    if (count > batch.rows)
      throw new Error(`ReplayBuffer.addBatch: count ${count} > batch rows ${batch.rows}`);
    for (let row = 0; row < count; row++) {
      const slot = this.nextSlot;
      copyRow(batch.obs, row, this.obs, slot, this.obsSize);
      copyRow(batch.action, row, this.action, slot, this.actSize);
      copyRow(batch.nextObs, row, this.nextObs, slot, this.obsSize);
      this.reward[slot] = batch.reward[row];
      this.terminated[slot] = batch.terminated[row];
      this.advance();
    }
  }

  /** Copies slot `slot` into row `row` of a batch. */
  copyToBatch(slot: number, out: TransitionBatch, row: number): void {
    copyRow(this.obs, slot, out.obs, row, this.obsSize);
    copyRow(this.action, slot, out.action, row, this.actSize);
    copyRow(this.nextObs, slot, out.nextObs, row, this.obsSize);
    out.reward[row] = this.reward[slot];
    out.terminated[row] = this.terminated[slot];
  }

  /** A uniformly random filled slot. */
  sampleSlot(rng: Rng): number {
    if (this.filled === 0) throw new Error("ReplayBuffer: cannot sample from an empty buffer");
    return rng.int(this.filled);
  }

  /**
   * Fills rows [offset, offset + n) of `out` with transitions drawn uniformly (with replacement)
   * from the filled slots.
   */
  sampleBatch(n: number, rng: Rng, out: TransitionBatch, offset = 0): void {
    this.checkBatch(out, offset + n);
    for (let row = offset; row < offset + n; row++) this.copyToBatch(this.sampleSlot(rng), out, row);
  }

  /** Forgets every transition (the arrays keep their stale values; they are never read). */
  clear(): void {
    this.filled = 0;
    this.nextSlot = 0;
    this.addedTotal = 0;
  }

  toJSON(): ReplayBufferJSON {
    return {
      kind: "replay-buffer",
      capacity: this.capacity,
      obsSize: this.obsSize,
      actSize: this.actSize,
      size: this.filled,
      next: this.nextSlot,
      added: this.addedTotal,
      arrays: this.encodeArrays(),
    };
  }

  /** `files`: where each array was read from (field → path), to name it in errors. */
  static fromJSON(json: ReplayBufferJSON, files: Record<string, string> = {}): ReplayBuffer {
    checkJSON(json, "replay-buffer");
    const buffer = new ReplayBuffer(json.capacity, json.obsSize, json.actSize);
    buffer.restore(json, files);
    return buffer;
  }

  protected checkBatch(out: TransitionBatch, rowsNeeded: number): void {
    if (out.obsSize !== this.obsSize || out.actSize !== this.actSize) {
      throw new Error(
        `ReplayBuffer: batch has obs ${out.obsSize}, action ${out.actSize}; expected ${this.obsSize}, ${this.actSize}`,
      );
    }
    if (rowsNeeded > out.rows)
      throw new Error(`ReplayBuffer: batch has ${out.rows} rows, needs ${rowsNeeded}`);
  }

  /** The arrays a checkpoint holds, with their row widths. */
  protected fields(): Record<string, { array: Float32Array | Float64Array; width: number }> {
    return {
      obs: { array: this.obs, width: this.obsSize },
      action: { array: this.action, width: this.actSize },
      reward: { array: this.reward, width: 1 },
      nextObs: { array: this.nextObs, width: this.obsSize },
      terminated: { array: this.terminated, width: 1 },
    };
  }

  protected encodeArrays(): Record<string, string> {
    const arrays: Record<string, string> = {};
    for (const [name, { array, width }] of Object.entries(this.fields())) {
      arrays[name] = encodeTyped(array.subarray(0, this.filled * width));
    }
    return arrays;
  }

  protected restore(json: ReplayBufferJSON, files: Record<string, string>): void {
    if (!(json.size >= 0 && json.size <= json.capacity) || !(json.next >= 0 && json.next < json.capacity)) {
      throw new Error(
        `replay buffer checkpoint: size ${json.size} / next ${json.next} outside capacity ${json.capacity}`,
      );
    }
    for (const [name, { array, width }] of Object.entries(this.fields())) {
      const encoded = json.arrays?.[name];
      if (typeof encoded !== "string")
        throw new Error(`replay buffer checkpoint: field arrays.${name} missing`);
      const what = files[name] ?? `replay buffer checkpoint: arrays.${name}`;
      const values = decodeTyped(encoded, array instanceof Float64Array ? "float64" : "float32", what);
      if (values.length !== json.size * width) {
        throw new Error(
          `${what}: ${values.length} values, expected ${json.size * width} (${json.size} rows)`,
        );
      }
      array.set(values);
    }
    this.filled = json.size;
    this.nextSlot = json.next;
    this.addedTotal = json.added;
  }

  private advance(): void {
    this.nextSlot = (this.nextSlot + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
    this.addedTotal++;
  }
}

/** The real buffer: SAC's transition plus the joint-space part (see the file comment). */
export class RealReplayBuffer extends ReplayBuffer {
  readonly dof: number;
  readonly goalSize: number;
  readonly q: Float64Array;
  readonly qd: Float64Array;
  readonly effort: Float64Array;
  readonly nextQ: Float64Array;
  readonly nextQd: Float64Array;
  readonly goal: Float64Array;

  constructor(capacity: number, obsSize: number, actSize: number, dof: number, goalSize: number) {
    super(capacity, obsSize, actSize);
    requirePositiveInt("dof", dof);
    if (!Number.isInteger(goalSize) || goalSize < 0) {
      throw new Error(`RealReplayBuffer: goalSize must be a non-negative integer, got ${goalSize}`);
    }
    this.dof = dof;
    this.goalSize = goalSize;
    this.q = new Float64Array(capacity * dof);
    this.qd = new Float64Array(capacity * dof);
    this.effort = new Float64Array(capacity * dof);
    this.nextQ = new Float64Array(capacity * dof);
    this.nextQd = new Float64Array(capacity * dof);
    this.goal = new Float64Array(capacity * goalSize);
  }

  override add(t: RealTransitionInput): number {
    const slot = super.add(t);
    copyRowIn(t.q, this.q, slot, this.dof, "q");
    copyRowIn(t.qd, this.qd, slot, this.dof, "qd");
    copyRowIn(t.effort, this.effort, slot, this.dof, "effort");
    copyRowIn(t.nextQ, this.nextQ, slot, this.dof, "nextQ");
    copyRowIn(t.nextQd, this.nextQd, slot, this.dof, "nextQd");
    copyRowIn(t.goal, this.goal, slot, this.goalSize, "goal");
    return slot;
  }

  override addBatch(): void {
    throw new Error(
      "RealReplayBuffer.addBatch: real transitions carry joint state; add them one by one with add()",
    );
  }

  override toJSON(): ReplayBufferJSON {
    return { ...super.toJSON(), kind: "real-replay-buffer", dof: this.dof, goalSize: this.goalSize };
  }

  static override fromJSON(json: ReplayBufferJSON, files: Record<string, string> = {}): RealReplayBuffer {
    checkJSON(json, "real-replay-buffer");
    if (json.dof === undefined || json.goalSize === undefined) {
      throw new Error("real replay buffer checkpoint: fields dof and goalSize are required");
    }
    const buffer = new RealReplayBuffer(json.capacity, json.obsSize, json.actSize, json.dof, json.goalSize);
    buffer.restore(json, files);
    return buffer;
  }

  protected override fields(): Record<string, { array: Float32Array | Float64Array; width: number }> {
    return {
      ...super.fields(),
      q: { array: this.q, width: this.dof },
      qd: { array: this.qd, width: this.dof },
      effort: { array: this.effort, width: this.dof },
      nextQ: { array: this.nextQ, width: this.dof },
      nextQd: { array: this.nextQd, width: this.dof },
      goal: { array: this.goal, width: this.goalSize },
    };
  }
}

/**
 * Fills the n rows of `out` for one SAC update: round(realFraction·n) rows from the real buffer,
 * the rest from the model buffer (MBPO: 5% real, 95% model). While the model buffer is empty
 * every row comes from the real buffer. Returns the number of real rows (they come first).
 */
export function mixedBatch(
  real: ReplayBuffer,
  model: ReplayBuffer,
  realFraction: number,
  n: number,
  rng: Rng,
  out: TransitionBatch,
): number {
  if (!(realFraction >= 0 && realFraction <= 1)) {
    throw new Error(`mixedBatch: realFraction must be in [0, 1], got ${realFraction}`);
  }
  const realRows = model.size === 0 ? n : Math.round(realFraction * n);
  if (realRows > 0 && real.size === 0) throw new Error("mixedBatch: the real buffer is empty");
  real.sampleBatch(realRows, rng, out, 0);
  if (n > realRows) model.sampleBatch(n - realRows, rng, out, realRows);
  return realRows;
}

/** Base64 of a typed array's bytes (little-endian on every platform Node runs on here). */
export function encodeTyped(array: Float32Array | Float64Array): string {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString("base64");
}

/**
 * Inverse of encodeTyped; the result owns its memory (aligned). Everything decoded this way comes
 * from a checkpoint, which only ever holds finite numbers (buffers refuse non-finite rows, training
 * stops on non-finite losses): a NaN or an infinity means the file was damaged or edited, and loading
 * it would train on garbage, so it is refused here, naming `what` and the element.
 */
export function decodeTyped(base64: string, type: "float32", what: string): Float32Array;
export function decodeTyped(base64: string, type: "float64", what: string): Float64Array;
export function decodeTyped(
  base64: string,
  type: "float32" | "float64",
  what: string,
): Float32Array | Float64Array;
export function decodeTyped(
  base64: string,
  type: "float32" | "float64",
  what: string,
): Float32Array | Float64Array {
  const bytes = Buffer.from(base64, "base64");
  const width = type === "float32" ? 4 : 8;
  if (bytes.length % width !== 0)
    throw new Error(`${what}: ${bytes.length} bytes is not a whole ${type} array`);
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  const values = type === "float32" ? new Float32Array(copy) : new Float64Array(copy);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]))
      throw new Error(
        `${what}: element ${i} of ${values.length} is ${values[i]}; a checkpoint holds only finite numbers`,
      );
  }
  return values;
}

function copyRowIn(
  src: ArrayLike<number>,
  dst: Float32Array | Float64Array,
  row: number,
  width: number,
  field: string,
) {
  if (src.length !== width)
    throw new Error(`ReplayBuffer.add: ${field} has ${src.length} values, expected ${width}`);
  const base = row * width;
  for (let j = 0; j < width; j++) dst[base + j] = src[j];
}

function copyRow(src: Float32Array, srcRow: number, dst: Float32Array, dstRow: number, width: number): void {
  const s = srcRow * width;
  const d = dstRow * width;
  for (let j = 0; j < width; j++) dst[d + j] = src[s + j];
}

function requirePositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`ReplayBuffer: ${name} must be a positive integer, got ${value}`);
  }
}

function checkJSON(json: ReplayBufferJSON, kind: ReplayBufferJSON["kind"]): void {
  if (json?.kind !== kind)
    throw new Error(`replay buffer checkpoint: kind is ${json?.kind}, expected ${kind}`);
}
