/**
 * Dynamixel Protocol 2.0 packets: the CRC, byte stuffing, and encoding and decoding of instruction
 * and status packets. Pure functions on byte arrays; no I/O.
 *
 * Packet layout (both directions):
 *   FF FF FD 00 | ID | LEN_L LEN_H | INSTRUCTION | [ERROR (status only)] PARAMS… | CRC_L CRC_H
 * LEN counts everything after itself: instruction, (error,) stuffed params and the two CRC bytes.
 * Byte stuffing: inside instruction..params, each "FF FF FD" is followed by an extra FD, so that a
 * header cannot appear inside a packet. The CRC (CRC-16, polynomial 0x8005, initial value 0, not
 * reflected) covers the whole packet from the header up to the CRC, stuffing included.
 */

export const HEADER = [0xff, 0xff, 0xfd, 0x00] as const;
/** Header (4) + ID (1) + length (2). */
export const PREFIX_LENGTH = 7;
export const BROADCAST_ID = 0xfe;
/** IDs a servo can have (0xFD, 0xFE and 0xFF are reserved). */
export const MAX_SERVO_ID = 252;

export const Instruction = {
  PING: 0x01,
  READ: 0x02,
  WRITE: 0x03,
  REBOOT: 0x08,
  STATUS: 0x55,
  SYNC_READ: 0x82,
  SYNC_WRITE: 0x83,
} as const;

/** Status error byte: bit 7 is the hardware alert, bits 0–6 the result of the instruction. */
export const ALERT_BIT = 0x80;

const STATUS_ERRORS: Record<number, string> = {
  1: "result fail",
  2: "instruction error",
  3: "CRC error (the servo received a damaged packet)",
  4: "data range error",
  5: "data length error",
  6: "data limit error",
  7: "access error",
};

/** The instruction-result part of a status error byte, in words ("" when it is 0). */
export function describeStatusError(error: number): string {
  const code = error & 0x7f;
  if (code === 0) return "";
  return STATUS_ERRORS[code] ?? `unknown error ${code}`;
}

// CRC-16/0x8005 lookup table, one entry per byte value (MSB-first, as the protocol specifies).
const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x8005) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC-16 (polynomial 0x8005, init 0) of bytes[start, end). */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >> 8) ^ bytes[i]) & 0xff]) & 0xffff;
  return crc;
}

/** Bytes `body` takes once stuffed (each "FF FF FD" gains one FD). */
export function stuffedLength(body: Uint8Array, start = 0, end = body.length): number {
  let extra = 0;
  for (let i = start + 2; i < end; i++) {
    if (body[i] === 0xfd && body[i - 1] === 0xff && body[i - 2] === 0xff) extra++;
  }
  return end - start + extra;
}

/**
 * Writes a whole packet into `out` at `offset` and returns its length. `body` is the unstuffed
 * instruction (and error) byte followed by the parameters. Allocates nothing; throws when `out`
 * is too short.
 */
export function writePacket(
  out: Uint8Array,
  id: number,
  body: Uint8Array,
  bodyLength = body.length,
  offset = 0,
): number {
  if (!Number.isInteger(id) || id < 0 || id > BROADCAST_ID)
    throw new RangeError(`dynamixel: packet ID must be 0–${BROADCAST_ID}, got ${id}`);
  const stuffed = stuffedLength(body, 0, bodyLength);
  const total = PREFIX_LENGTH + stuffed + 2;
  if (out.length - offset < total)
    throw new RangeError(
      `dynamixel: packet of ${total} bytes does not fit a ${out.length - offset}-byte buffer`,
    );
  const lengthField = stuffed + 2;
  out[offset] = 0xff;
  out[offset + 1] = 0xff;
  out[offset + 2] = 0xfd;
  out[offset + 3] = 0x00;
  out[offset + 4] = id;
  out[offset + 5] = lengthField & 0xff;
  out[offset + 6] = lengthField >> 8;
  let w = offset + PREFIX_LENGTH;
  for (let i = 0; i < bodyLength; i++) {
    const b = body[i];
    out[w++] = b;
    if (b === 0xfd && i >= 2 && body[i - 1] === 0xff && body[i - 2] === 0xff) out[w++] = 0xfd;
  }
  const crc = crc16(out, offset, w);
  out[w++] = crc & 0xff;
  out[w++] = crc >> 8;
  return w - offset;
}

/** An instruction packet as a new array (setup and tests; the tick path uses writePacket). */
export function encodeInstruction(
  id: number,
  instruction: number,
  params: ArrayLike<number> = [],
): Uint8Array {
  const body = new Uint8Array(1 + params.length);
  body[0] = instruction;
  body.set(params, 1);
  const out = new Uint8Array(PREFIX_LENGTH + 2 * body.length + 2);
  return out.slice(0, writePacket(out, id, body));
}

/** A status packet as a new array (the servo side: the emulator and tests). */
export function encodeStatus(id: number, error: number, params: ArrayLike<number> = []): Uint8Array {
  const body = new Uint8Array(2 + params.length);
  body[0] = Instruction.STATUS;
  body[1] = error;
  body.set(params, 2);
  const out = new Uint8Array(PREFIX_LENGTH + 2 * body.length + 2);
  return out.slice(0, writePacket(out, id, body));
}

/**
 * Removes byte stuffing from src[start, end) into dst (from index 0); returns the unstuffed length.
 * dst may be src itself when start ≥ 3 (writes then stay behind every byte still to be read).
 */
export function unstuff(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let w = 0;
  for (let i = start; i < end; i++) {
    const b = src[i];
    dst[w++] = b;
    if (b === 0xfd && i + 1 < end && src[i + 1] === 0xfd && i - 2 >= start) {
      if (src[i - 1] === 0xff && src[i - 2] === 0xff) i++; // skip the stuffed FD
    }
  }
  return w;
}

/** A decoded packet. `params` excludes the error byte of a status packet. */
export interface DecodedPacket {
  id: number;
  instruction: number;
  /** Status packets only: the error byte (alert bit and result code). */
  error: number;
  params: Uint8Array;
}

/**
 * Decodes exactly one complete packet (tests, tools; the bus uses PacketReader). Throws a one-line
 * error naming what is wrong: header, length, CRC or the packet's shape.
 */
export function decodePacket(bytes: Uint8Array): DecodedPacket {
  if (bytes.length < PREFIX_LENGTH + 3)
    throw new Error(`dynamixel packet: ${bytes.length} bytes is shorter than the smallest packet (10)`);
  for (let i = 0; i < HEADER.length; i++) {
    if (bytes[i] !== HEADER[i])
      throw new Error("dynamixel packet: does not start with the header FF FF FD 00");
  }
  const lengthField = bytes[5] | (bytes[6] << 8);
  if (PREFIX_LENGTH + lengthField !== bytes.length)
    throw new Error(
      `dynamixel packet: length field says ${PREFIX_LENGTH + lengthField} bytes, got ${bytes.length}`,
    );
  const end = bytes.length - 2;
  const expected = crc16(bytes, 0, end);
  const received = bytes[end] | (bytes[end + 1] << 8);
  if (expected !== received)
    throw new Error(
      `dynamixel packet: CRC mismatch (received 0x${hex4(received)}, computed 0x${hex4(expected)})`,
    );
  const body = new Uint8Array(end - PREFIX_LENGTH);
  const n = unstuff(bytes, PREFIX_LENGTH, end, body);
  const instruction = body[0];
  const isStatus = instruction === Instruction.STATUS;
  if (isStatus && n < 2) throw new Error("dynamixel packet: status packet without an error byte");
  return {
    id: bytes[4],
    instruction,
    error: isStatus ? body[1] : 0,
    params: body.slice(isStatus ? 2 : 1, n),
  };
}

function hex4(v: number): string {
  return v.toString(16).toUpperCase().padStart(4, "0");
}

// ---- Parameter builders for the instructions the driver uses (little-endian, as the protocol). ----

export function pingPacket(id: number): Uint8Array {
  return encodeInstruction(id, Instruction.PING);
}

export function readPacket(id: number, address: number, length: number): Uint8Array {
  return encodeInstruction(id, Instruction.READ, [address & 0xff, address >> 8, length & 0xff, length >> 8]);
}

export function writeInstructionPacket(id: number, address: number, data: ArrayLike<number>): Uint8Array {
  const params = new Uint8Array(2 + data.length);
  params[0] = address & 0xff;
  params[1] = address >> 8;
  params.set(data, 2);
  return encodeInstruction(id, Instruction.WRITE, params);
}

export function rebootPacket(id: number): Uint8Array {
  return encodeInstruction(id, Instruction.REBOOT);
}

export function syncReadPacket(address: number, length: number, ids: readonly number[]): Uint8Array {
  return encodeInstruction(BROADCAST_ID, Instruction.SYNC_READ, [
    address & 0xff,
    address >> 8,
    length & 0xff,
    length >> 8,
    ...ids,
  ]);
}

/** data: one row of `length` bytes per ID, concatenated. */
export function syncWritePacket(
  address: number,
  length: number,
  ids: readonly number[],
  data: ArrayLike<number>,
): Uint8Array {
  if (data.length !== length * ids.length)
    throw new RangeError(`dynamixel sync write: ${data.length} data bytes for ${ids.length} × ${length}`);
  const params = new Uint8Array(4 + ids.length * (1 + length));
  params[0] = address & 0xff;
  params[1] = address >> 8;
  params[2] = length & 0xff;
  params[3] = length >> 8;
  let w = 4;
  for (let k = 0; k < ids.length; k++) {
    params[w++] = ids[k];
    for (let j = 0; j < length; j++) params[w++] = data[k * length + j];
  }
  return encodeInstruction(BROADCAST_ID, Instruction.SYNC_WRITE, params);
}

/** Little-endian value of `size` (1, 2 or 4) bytes, as unsigned or two's-complement signed. */
export function readLE(bytes: Uint8Array, offset: number, size: number, signed: boolean): number {
  switch (size) {
    case 1:
      return signed ? (bytes[offset] << 24) >> 24 : bytes[offset];
    case 2: {
      const v = bytes[offset] | (bytes[offset + 1] << 8);
      return signed ? (v << 16) >> 16 : v;
    }
    case 4: {
      const v =
        bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24);
      return signed ? v : v >>> 0;
    }
    default:
      throw new RangeError(`dynamixel: field size must be 1, 2 or 4 bytes, got ${size}`);
  }
}

/** Writes `value` as `size` little-endian bytes (two's complement for negatives). */
export function writeLE(bytes: Uint8Array, offset: number, size: number, value: number): void {
  for (let i = 0; i < size; i++) bytes[offset + i] = (value >> (8 * i)) & 0xff;
}
