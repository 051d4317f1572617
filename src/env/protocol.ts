/**
 * The `env serve` wire protocol: one JSON object per line each way. This module turns a line into
 * a checked request, or throws a ProtocolError whose message names what was wrong; it knows the
 * sizes it checks against but nothing of the robot.
 *
 * Numbers: JSON has no NaN or ±Infinity. In responses a non-finite number is written as null
 * (JSON.stringify does this). In a `reward` batch, null is read back as NaN, so that a model-based
 * learner can ask about a prediction that blew up (the task scores it as invalid). A step's
 * action must be all finite numbers: null, or a number too large for a double (1e999), is an error.
 *
 * A `reward` batch may also come as binary, for speed (a JSON number costs more to write and read
 * than the reward costs to compute): with `"encoding":"base64"`, each of obs, action and next_obs is
 * one base64 string of little-endian float32 values, row-major (NaN allowed: the precision the
 * task scores in, as a JSON number is rounded to it too), and the response's `reward` is base64
 * float64 and its `terminated` base64 bytes (1 terminated, 0 not), one per row.
 */
import { endianness } from "node:os";

/** 2: the base64 form of a reward batch. */
export const PROTOCOL_VERSION = 2;

export const COMMANDS = ["spec", "reset", "step", "reward", "close"] as const;
export type Command = (typeof COMMANDS)[number];

/** A client's request id (any string or number), echoed in the response so clients can pair them. */
export type RequestId = string | number;

export type Request =
  | { cmd: "spec"; id?: RequestId }
  | ({ cmd: "reset"; id?: RequestId } & ResetRequest)
  /** The action is written into the buffer given to parseRequest. */
  | { cmd: "step"; id?: RequestId }
  | { cmd: "reward"; id?: RequestId; batch: RewardBatch; encoding: RewardEncoding }
  | { cmd: "close"; id?: RequestId };

/**
 * What a reset may name; each part left out comes from the episode stream. Lengths and finiteness
 * are checked here; limits (which need the robot) by the session.
 */
export interface ResetRequest {
  /** Restarts the training episode stream (or, with `eval`, names the evaluation set). */
  seed?: number;
  /** Evaluation episode k of the seed (src/env/episodes.ts); excludes the three below. */
  eval?: number;
  /** Joint pose (rad) the reset move goes to. */
  startPosition?: Float64Array;
  /** The goal vector (reach: the target point, m, base frame). */
  goal?: Float64Array;
  /** A joint pose (rad) whose goal (reach: tool point) becomes the goal; excludes `goal`. */
  goalPosition?: Float64Array;
}

/** How a reward batch and its answer are written: JSON rows of numbers, or base64 (above). */
export type RewardEncoding = "json" | "base64";

/** A reward batch, flattened row-major, non-finite entries as NaN (float32 in the binary form). */
export interface RewardBatch {
  rows: number;
  obs: Float64Array | Float32Array;
  action: Float64Array | Float32Array;
  nextObs: Float64Array | Float32Array;
}

export interface ProtocolSizes {
  observationSize: number;
  actionSize: number;
  /** Joints (the length of a joint pose in a reset). */
  dof: number;
  /** Length of a goal vector in a reset. */
  goalSize: number;
}

export class ProtocolError extends Error {
  /** The request's id, when the line was readable enough to have one. */
  readonly id: RequestId | undefined;
  constructor(message: string, id?: RequestId) {
    super(message);
    this.name = "ProtocolError";
    this.id = id;
  }
}

/**
 * Parses one request line. A step's action is checked and written into `action` (no new array);
 * everything else is returned.
 */
export function parseRequest(line: string, sizes: ProtocolSizes, action: Float32Array): Request {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch (err) {
    throw new ProtocolError(`malformed JSON: ${describeJsonError(line, err as Error)}`);
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    throw new ProtocolError(`expected a JSON object such as {"cmd":"spec"}, got ${kindOf(message)}`);
  }
  const m = message as Record<string, unknown>;
  const id = m.id;
  if (id !== undefined && typeof id !== "string" && !(typeof id === "number" && Number.isFinite(id))) {
    throw new ProtocolError(`"id" must be a string or a number, got ${kindOf(id)}`);
  }
  const fail = (text: string): never => {
    throw new ProtocolError(text, id as RequestId | undefined);
  };
  const cmd = m.cmd;
  if (typeof cmd !== "string") fail(`missing "cmd" (one of ${COMMANDS.join(", ")})`);
  const base = id === undefined ? {} : { id: id as RequestId };
  switch (cmd) {
    case "spec":
    case "close":
      return { cmd, ...base };
    case "reset":
      return { cmd, ...base, ...readReset(m, sizes, fail) };
    case "step":
      readAction(m.action, sizes.actionSize, action, fail);
      return { cmd, ...base };
    case "reward": {
      const encoding = m.encoding ?? "json";
      if (encoding === "base64")
        return { cmd, ...base, encoding, batch: readBinaryRewardBatch(m, sizes, fail) };
      if (encoding === "json") return { cmd, ...base, encoding, batch: readRewardBatch(m, sizes, fail) };
      return fail(`reward: "encoding" must be "json" or "base64", got ${kindOf(encoding)}`);
    }
    default:
      return fail(`unknown command "${truncate(String(cmd))}" (known: ${COMMANDS.join(", ")})`);
  }
}

const RESET_FIELDS = ["seed", "eval", "start_position", "goal", "goal_position"];

function readReset(
  m: Record<string, unknown>,
  sizes: ProtocolSizes,
  fail: (text: string) => never,
): ResetRequest {
  for (const key of Object.keys(m)) {
    if (key !== "cmd" && key !== "id" && !RESET_FIELDS.includes(key)) {
      fail(`reset: unknown field "${truncate(key)}" (known: ${RESET_FIELDS.join(", ")})`);
    }
  }
  const out: ResetRequest = {};
  const seed = readCount(m.seed, "seed", fail);
  if (seed !== undefined) out.seed = seed;
  const k = readCount(m.eval, "eval", fail);
  const start = readVector(m.start_position, "start_position", sizes.dof, "joint angles (rad)", fail);
  const goal = readVector(m.goal, "goal", sizes.goalSize, "goal values", fail);
  const goalPose = readVector(m.goal_position, "goal_position", sizes.dof, "joint angles (rad)", fail);
  if (k !== undefined) {
    if (start !== undefined || goal !== undefined || goalPose !== undefined) {
      fail(`reset: "eval" gives its own start and goal; leave out start_position, goal and goal_position`);
    }
    out.eval = k;
  }
  if (goal !== undefined && goalPose !== undefined) {
    fail(`reset: give "goal" or "goal_position", not both`);
  }
  if (start !== undefined) out.startPosition = start;
  if (goal !== undefined) out.goal = goal;
  if (goalPose !== undefined) out.goalPosition = goalPose;
  return out;
}

/** An optional integer ≥ 0 (null counts as absent). */
function readCount(value: unknown, field: string, fail: (text: string) => never): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    fail(`reset: "${field}" must be an integer ≥ 0, got ${kindOf(value)}`);
  }
  return value as number;
}

/** An optional array of `size` finite numbers. */
function readVector(
  value: unknown,
  field: string,
  size: number,
  what: string,
  fail: (text: string) => never,
): Float64Array | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value))
    fail(`reset: "${field}" must be an array of ${size} ${what}, got ${kindOf(value)}`);
  const a = value as unknown[];
  if (a.length !== size) fail(`reset: "${field}" must have ${size} numbers, got ${a.length}`);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const x = a[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      fail(`reset: ${field}[${i}] must be a finite number, got ${kindOf(x)}`);
    }
    out[i] = x as number;
  }
  return out;
}

function readAction(value: unknown, size: number, out: Float32Array, fail: (text: string) => never): void {
  if (!Array.isArray(value)) fail(`step: "action" must be an array of ${size} numbers, got ${kindOf(value)}`);
  const a = value as unknown[];
  if (a.length !== size) fail(`step: "action" must have ${size} numbers, got ${a.length}`);
  for (let i = 0; i < size; i++) {
    const x = a[i];
    if (typeof x !== "number") fail(`step: action[${i}] must be a number, got ${kindOf(x)}`);
    if (!Number.isFinite(x)) fail(`step: action[${i}] must be finite, got ${x}`);
    out[i] = x as number;
  }
}

function readRewardBatch(
  m: Record<string, unknown>,
  sizes: ProtocolSizes,
  fail: (text: string) => never,
): RewardBatch {
  const rows = Array.isArray(m.obs) ? m.obs.length : -1;
  const read = (field: "obs" | "action" | "next_obs", width: number): Float64Array => {
    const value = m[field];
    if (!Array.isArray(value)) {
      fail(`reward: "${field}" must be an array of rows of ${width} numbers, got ${kindOf(value)}`);
    }
    const table = value as unknown[];
    if (table.length !== rows) fail(`reward: "${field}" has ${table.length} rows, "obs" has ${rows}`);
    const out = new Float64Array(rows * width);
    for (let r = 0; r < rows; r++) {
      const row = table[r];
      if (!Array.isArray(row) || row.length !== width) {
        fail(
          `reward: ${field}[${r}] must be an array of ${width} numbers, got ${Array.isArray(row) ? `${row.length} values` : kindOf(row)}`,
        );
      }
      for (let c = 0; c < width; c++) {
        const x = (row as unknown[])[c];
        if (x === null) out[r * width + c] = Number.NaN;
        else if (typeof x === "number") out[r * width + c] = x;
        else fail(`reward: ${field}[${r}][${c}] must be a number or null, got ${kindOf(x)}`);
      }
    }
    return out;
  };
  const obs = read("obs", sizes.observationSize);
  const action = read("action", sizes.actionSize);
  const nextObs = read("next_obs", sizes.observationSize);
  return { rows, obs, action, nextObs };
}

/** A batch in the base64 float32 form; the row count follows from the length of obs. */
function readBinaryRewardBatch(
  m: Record<string, unknown>,
  sizes: ProtocolSizes,
  fail: (text: string) => never,
): RewardBatch {
  let rows = -1;
  const read = (field: "obs" | "action" | "next_obs", width: number): Float32Array => {
    const value = m[field];
    const bytes = typeof value === "string" ? Buffer.from(value, "base64") : undefined;
    // Buffer.from skips what is not base64, so text with anything else in it decodes short (a
    // regular expression over megabytes of text cost ten times the decoding).
    if (bytes === undefined || bytes.length !== base64Bytes(value as string)) {
      fail(
        `reward: "${field}" must be a base64 string of float32 values (encoding "base64"), got ${kindOf(value)}`,
      );
    }
    const count = bytes.length / 4;
    if (!Number.isInteger(count / width)) {
      fail(
        `reward: "${field}" holds ${bytes.length} bytes, not rows of ${width} float32 values (${4 * width} bytes)`,
      );
    }
    if (rows === -1) rows = count / width;
    else if (count / width !== rows) fail(`reward: "${field}" has ${count / width} rows, "obs" has ${rows}`);
    if (BIG_ENDIAN_HOST) bytes.swap32();
    // Copied, not viewed: a Buffer from the pool need not sit on a 4-byte boundary.
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  };
  const obs = read("obs", sizes.observationSize);
  const action = read("action", sizes.actionSize);
  const nextObs = read("next_obs", sizes.observationSize);
  return { rows, obs, action, nextObs };
}

const BIG_ENDIAN_HOST = endianness() === "BE";

/** The bytes a padded base64 text holds (-1 when its length is not a multiple of 4). */
function base64Bytes(text: string): number {
  if (text.length % 4 !== 0) return -1;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  return (text.length / 4) * 3 - padding;
}

/** The base64 float64 (little-endian) form of an answer's numbers, and one byte per flag. */
export function encodeFloat64(values: Float64Array): string {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  if (!BIG_ENDIAN_HOST) return bytes.toString("base64");
  return Buffer.from(bytes).swap64().toString("base64");
}

export function encodeFlags(values: Uint8Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString("base64");
}

/** A short name for what a value is, for error messages (never the whole value). */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "string") return `the string "${truncate(value)}"`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === undefined) return "nothing";
  return typeof value === "object" ? "an object" : typeof value;
}

function truncate(text: string, max = 40): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

function describeJsonError(line: string, err: Error): string {
  // Python's json.dumps writes NaN and Infinity by default; say so rather than "unexpected token".
  if (/(^|[^"\w])-?(NaN|Infinity)\b/.test(line)) {
    return "NaN and Infinity are not JSON numbers (actions must be finite; in a reward batch write null)";
  }
  return truncate(err.message, 120);
}
