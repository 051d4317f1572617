/**
 * Hand-written CDR decoders for the two message types a bootstrap import reads by the hundred
 * thousand: sensor_msgs/msg/JointState and std_msgs/msg/Float64MultiArray. They give exactly what
 * @foxglove/rosmsg2-serialization's MessageReader gives (a test checks this on random messages) at
 * a fraction of the cost, and JointState's joint names, the same in every message of a recording,
 * are decoded once and reused while their bytes do not change.
 *
 * Only little-endian plain CDR (encapsulation 0x0001, what ROS 2 publishes) takes this path; the
 * reader falls back to MessageReader for anything else.
 */
import { parse } from "@foxglove/rosmsg";
import { completeDefinition, FLOAT64_MULTI_ARRAY, JOINT_STATE } from "./definitions.js";

const utf8 = new TextDecoder();

/** Field lists of a parsed definition, for comparing a bag's schema with the standard one. */
function shape(text: string): string {
  return JSON.stringify(
    parse(text, { ros2: true }).map((d) =>
      d.definitions
        .filter((f) => f.isConstant !== true)
        .map((f) => [f.name, f.type, f.isArray === true, f.arrayLength]),
    ),
  );
}

const JOINT_STATE_SHAPE = shape(completeDefinition(JOINT_STATE));
const FLOAT64_MULTI_ARRAY_SHAPE = shape(completeDefinition(FLOAT64_MULTI_ARRAY));

export type FastDecoder = (data: Uint8Array) => unknown;

/**
 * A fast decoder for a schema, when it is one of the two standard types; else undefined. With
 * `reuse`, each call returns the same object with its arrays overwritten (allocation-free while
 * array lengths stay the same): for consumers that copy what they need before the next message.
 */
export function fastDecoderFor(
  schemaName: string,
  schemaText: string,
  reuse = false,
): FastDecoder | undefined {
  const name = schemaName.replace(/^(\w+)\/(\w+)$/, "$1/msg/$2");
  try {
    if (name === JOINT_STATE && shape(schemaText) === JOINT_STATE_SHAPE) return jointStateDecoder(reuse);
    if (name === FLOAT64_MULTI_ARRAY && shape(schemaText) === FLOAT64_MULTI_ARRAY_SHAPE)
      return multiArrayDecoder(reuse);
  } catch {
    return undefined;
  }
  return undefined;
}

/** A cursor over a CDR body; alignment counts from the end of the 4-byte encapsulation header. */
let sharedView: DataView | undefined;

/** A DataView over a whole buffer, reused while messages come from the same chunk. */
function viewOf(bytes: Uint8Array): DataView {
  if (sharedView === undefined || sharedView.buffer !== bytes.buffer) sharedView = new DataView(bytes.buffer);
  return sharedView;
}

class Cdr {
  readonly view: DataView;
  /** Offsets are relative to the message; `base` places them in the view's buffer. */
  private readonly base: number;
  offset = 4;
  constructor(readonly bytes: Uint8Array) {
    if (bytes.byteLength < 4 || bytes[0] !== 0 || bytes[1] !== 1) {
      throw new NotPlainLittleEndian();
    }
    this.view = viewOf(bytes);
    this.base = bytes.byteOffset;
  }
  align(n: number): void {
    const r = (this.offset - 4) % n;
    if (r > 0) this.offset += n - r;
  }
  u32(): number {
    this.align(4);
    if (this.offset + 4 > this.bytes.byteLength) throw new RangeError("field past the end of the message");
    const v = this.view.getUint32(this.base + this.offset, true);
    this.offset += 4;
    return v;
  }
  i32(): number {
    this.align(4);
    if (this.offset + 4 > this.bytes.byteLength) throw new RangeError("field past the end of the message");
    const v = this.view.getInt32(this.base + this.offset, true);
    this.offset += 4;
    return v;
  }
  /** A string's bytes without the terminating NUL. */
  stringBytes(): Uint8Array {
    const length = this.u32();
    if (this.offset + length > this.bytes.byteLength)
      throw new RangeError("string past the end of the message");
    const v = this.bytes.subarray(this.offset, this.offset + Math.max(0, length - 1));
    this.offset += length;
    return v;
  }
  skipString(): void {
    const length = this.u32();
    if (this.offset + length > this.bytes.byteLength)
      throw new RangeError("string past the end of the message");
    this.offset += length;
  }
  string(): string {
    return utf8.decode(this.stringBytes());
  }
  /** A float64 sequence, into `into` when given and of the right length, else a new array. */
  float64s(into?: Float64Array): Float64Array {
    const count = this.u32();
    const out = into !== undefined && into.length === count ? into : new Float64Array(count);
    if (count === 0) return out;
    this.align(8);
    if (this.offset + 8 * count > this.bytes.byteLength)
      throw new RangeError("array past the end of the message");
    const at = this.base + this.offset;
    for (let i = 0; i < count; i++) out[i] = this.view.getFloat64(at + 8 * i, true);
    this.offset += 8 * count;
    return out;
  }
}

/** Thrown for encodings the fast path does not handle; the caller falls back to MessageReader. */
export class NotPlainLittleEndian extends Error {}

interface JointStateFields {
  header: { stamp: { sec: number; nanosec: number }; frame_id: string };
  name: string[];
  position: Float64Array;
  velocity: Float64Array;
  effort: Float64Array;
}

function jointStateDecoder(reuse: boolean): FastDecoder {
  let lastNameBytes: Uint8Array | undefined;
  let lastNames: string[] = [];
  let out: JointStateFields | undefined;
  return (data) => {
    const c = new Cdr(data);
    const sec = c.i32();
    const nanosec = c.u32();
    const frame_id = c.string();
    // Joint names: compare the raw bytes with the previous message's before decoding them.
    const start = c.offset;
    const count = c.u32();
    for (let i = 0; i < count; i++) c.skipString();
    const length = c.offset - start;
    if (lastNameBytes === undefined || !sameBytes(data, start, length, lastNameBytes)) {
      const again = new Cdr(data);
      again.offset = start;
      lastNames = Array.from({ length: again.u32() }, () => again.string());
      lastNameBytes = data.slice(start, start + length);
    }
    if (!reuse || out === undefined) {
      const fresh: JointStateFields = {
        header: { stamp: { sec, nanosec }, frame_id },
        name: lastNames,
        position: c.float64s(),
        velocity: c.float64s(),
        effort: c.float64s(),
      };
      if (reuse) out = fresh;
      return fresh;
    }
    out.header.stamp.sec = sec;
    out.header.stamp.nanosec = nanosec;
    out.header.frame_id = frame_id;
    out.name = lastNames;
    out.position = c.float64s(out.position);
    out.velocity = c.float64s(out.velocity);
    out.effort = c.float64s(out.effort);
    return out;
  };
}

function multiArrayDecoder(reuse: boolean): FastDecoder {
  let out: { layout: { dim: unknown[]; data_offset: number }; data: Float64Array } | undefined;
  return (data) => {
    const c = new Cdr(data);
    const dims = c.u32();
    const dim = [];
    for (let i = 0; i < dims; i++) dim.push({ label: c.string(), size: c.u32(), stride: c.u32() });
    const data_offset = c.u32();
    if (!reuse || out === undefined) {
      const fresh = { layout: { dim, data_offset }, data: c.float64s() };
      if (reuse) out = fresh;
      return fresh;
    }
    out.layout.dim = dim;
    out.layout.data_offset = data_offset;
    out.data = c.float64s(out.data);
    return out;
  };
}

function sameBytes(data: Uint8Array, start: number, length: number, previous: Uint8Array): boolean {
  if (length !== previous.byteLength) return false;
  for (let i = 0; i < length; i++) if (data[start + i] !== previous[i]) return false;
  return true;
}
