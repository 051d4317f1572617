/**
 * A lean front-to-back walk over an MCAP file's data section: header, schemas, channels, and the
 * messages inside chunks, handed out as views without copying. @mcap/core's McapStreamReader does
 * the same but copies every message and checks CRCs in JavaScript, which made it the bottleneck
 * of bootstrap imports; here chunks are decompressed with @mcap/support's handlers (zstd, lz4,
 * bz2), CRCs are checked with zlib's native crc32, and nothing per message is allocated.
 *
 * Record layout (MCAP spec): opcode u8, content length u64, content; integers little-endian,
 * strings as u32 length + UTF-8, byte arrays as u32 or u64 length + bytes.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import zlib from "node:zlib";
import type { McapTypes } from "@mcap/core";

const OP_HEADER = 0x01;
const OP_FOOTER = 0x02;
const OP_SCHEMA = 0x03;
const OP_CHANNEL = 0x04;
const OP_MESSAGE = 0x05;
const OP_CHUNK = 0x06;
const OP_DATA_END = 0x0f;
const MAGIC_LENGTH = 8;

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
const utf8 = new TextDecoder();

export interface ScanCallbacks {
  header(profile: string, library: string): void;
  schema(schema: McapTypes.Schema): void;
  channel(channel: McapTypes.Channel): void;
  /** `data` is a view that stays valid (each chunk's records are a buffer of their own). */
  message(channelId: number, logTime: bigint, publishTime: bigint, data: Uint8Array): void;
  /** Errors thrown by a callback that must end the scan as they are, rather than count as damage. */
  isFatal?(err: unknown): boolean;
}

export interface ScanResult {
  /** Bytes of the file read. */
  bytes: number;
  /** True when the data section ended properly and the file ends with the closing magic. */
  complete: boolean;
  /** Where and why reading stopped early; undefined when the file was read to its end. */
  problem?: { offset: number; kind: "damaged" | "truncated" | "unclosed"; detail: string };
}

/** Reads little-endian fields from a byte view, with bounds checks that throw a clear error. */
class Fields {
  private readonly view: DataView;
  offset = 0;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): void {
    if (this.offset + n > this.bytes.byteLength) throw new Error("record shorter than its fields");
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }
  bytesOf(length: number): Uint8Array {
    this.need(length);
    const v = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return v;
  }
  string(): string {
    return utf8.decode(this.bytesOf(this.u32()));
  }
  map(): Map<string, string> {
    const end = this.offset + this.u32();
    const map = new Map<string, string>();
    while (this.offset < end) map.set(this.string(), this.string());
    return map;
  }
}

type Decompress = (data: Uint8Array, size: bigint) => Uint8Array;

/** What one walk over a buffer found: where its whole records end, and the DataEnd if it was met. */
interface Walked {
  consumed: number;
  ended: boolean;
  /** Offset (in the walked bytes) of the DataEnd or Footer record that ended the data section. */
  dataEnd?: number;
  /** The DataEnd's data section CRC; undefined when a Footer ended the data section itself. */
  dataCrc?: number;
}

/**
 * Walks the records of `bytes` (a chunk's decompressed records, or part of the data section).
 * Returns the offset after the last whole record, and whether a DataEnd or Footer was met.
 */
function walk(
  bytes: Uint8Array,
  callbacks: ScanCallbacks,
  decompress: Record<string, Decompress>,
  inChunk: boolean,
  progress?: { pos: number },
): Walked {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  while (pos + 9 <= bytes.byteLength) {
    const opcode = bytes[pos];
    const length = view.getUint32(pos + 1, true) + view.getUint32(pos + 5, true) * 2 ** 32;
    const start = pos + 9;
    if (start + length > bytes.byteLength) {
      if (inChunk) throw new Error("a record runs past the end of its chunk");
      break;
    }
    if (progress !== undefined) progress.pos = pos;
    if (opcode === OP_MESSAGE) {
      if (length < 22) throw new Error("message record shorter than its fields");
      const channelId = view.getUint16(start, true);
      const logTime = view.getBigUint64(start + 6, true);
      const publishTime = view.getBigUint64(start + 14, true);
      // Outside a chunk the bytes live in the read buffer, which is reused: copy them.
      const data = inChunk
        ? bytes.subarray(start + 22, start + length)
        : bytes.slice(start + 22, start + length);
      callbacks.message(channelId, logTime, publishTime, data);
      pos = start + length;
      continue;
    }
    const content = bytes.subarray(start, start + length);
    switch (opcode) {
      case OP_CHUNK:
        if (inChunk) throw new Error("a chunk inside a chunk");
        readChunk(content, callbacks, decompress);
        break;
      case OP_SCHEMA: {
        const f = new Fields(content);
        const id = f.u16();
        const name = f.string();
        const encoding = f.string();
        const data = f.bytesOf(f.u32()).slice();
        callbacks.schema({ id, name, encoding, data });
        break;
      }
      case OP_CHANNEL: {
        const f = new Fields(content);
        const id = f.u16();
        const schemaId = f.u16();
        const topic = f.string();
        const messageEncoding = f.string();
        callbacks.channel({ id, schemaId, topic, messageEncoding, metadata: f.map() });
        break;
      }
      case OP_HEADER: {
        const f = new Fields(content);
        callbacks.header(f.string(), f.string());
        break;
      }
      case OP_DATA_END:
      case OP_FOOTER:
        if (inChunk) throw new Error("a summary record inside a chunk");
        return {
          consumed: start + length,
          ended: true,
          dataEnd: pos,
          // DataEnd's data_section_crc (0: not computed); a bare Footer (no DataEnd) has none.
          ...(opcode === OP_DATA_END && length >= 4 ? { dataCrc: view.getUint32(start, true) } : {}),
        };
      default:
        // Indexes, attachments, metadata and records of later spec versions: not needed here.
        break;
    }
    pos = start + length;
  }
  return { consumed: pos, ended: false };
}

const FOOTER_RECORD_LENGTH = 1 + 8 + 8 + 8 + 4;

/**
 * Checks what follows the data section: the footer (at its fixed place before the closing magic)
 * and the summary CRC, which covers the summary section and the footer up to the CRC itself.
 * Returns why they are not as written, or undefined when they check out (or carry no CRC).
 */
function checkSummary(fd: number, size: number, summaryFrom: number): string | undefined {
  const footerAt = size - MAGIC_LENGTH - FOOTER_RECORD_LENGTH;
  if (footerAt < summaryFrom) return "the footer is missing or cut short";
  const footer = new Uint8Array(FOOTER_RECORD_LENGTH);
  readSync(fd, footer, 0, FOOTER_RECORD_LENGTH, footerAt);
  const view = new DataView(footer.buffer);
  if (footer[0] !== OP_FOOTER || view.getBigUint64(1, true) !== 20n)
    return "no footer record before the closing magic";
  const summaryStart = Number(view.getBigUint64(9, true));
  const summaryCrc = view.getUint32(25, true);
  const from = summaryStart === 0 ? footerAt : summaryStart;
  if (summaryStart !== 0 && summaryStart !== summaryFrom) {
    return `the footer's summary start (${summaryStart}) is not where the data section ends (${summaryFrom})`;
  }
  if (summaryCrc === 0 || nativeCrc32 === undefined) return undefined;
  const summary = new Uint8Array(footerAt - from);
  readSync(fd, summary, 0, summary.byteLength, from);
  const crc = nativeCrc32(footer.subarray(0, FOOTER_RECORD_LENGTH - 4), nativeCrc32(summary));
  return crc === summaryCrc ? undefined : "summary CRC mismatch (the summary section or footer was altered)";
}

function readChunk(content: Uint8Array, callbacks: ScanCallbacks, decompress: Record<string, Decompress>) {
  const f = new Fields(content);
  f.u64(); // message start time
  f.u64(); // message end time
  const uncompressedSize = f.u64();
  const crc = f.u32();
  const compression = f.string();
  const recordsLength = f.u64();
  if (recordsLength > BigInt(content.byteLength - f.offset))
    throw new Error("chunk records run past the chunk");
  const compressed = f.bytesOf(Number(recordsLength));
  let records: Uint8Array;
  if (compression === "") {
    records = compressed.slice();
  } else {
    const handler = decompress[compression];
    if (handler === undefined) throw new Error(`unsupported chunk compression "${compression}"`);
    records = handler(compressed, uncompressedSize);
  }
  if (BigInt(records.byteLength) !== uncompressedSize) {
    throw new Error(`chunk decompressed to ${records.byteLength} bytes, expected ${uncompressedSize}`);
  }
  if (crc !== 0 && nativeCrc32 !== undefined && nativeCrc32(records) !== crc) {
    throw new Error("chunk CRC mismatch");
  }
  walk(records, callbacks, decompress, true);
}

/**
 * The data section has ended (DataEnd met at `step.dataEnd` of the buffer, whose first byte is at
 * file offset `base`): checks the data section CRC, the closing magic, the footer and the summary
 * CRC. Every message has been delivered; a mismatch is damage the messages may share (a schema's
 * text, say), so it is reported rather than passed over.
 */
function endOfData(
  fd: number,
  size: number,
  base: number,
  buffer: Uint8Array,
  step: Walked,
  crcSoFar: number,
): ScanResult {
  const dataEnd = step.dataEnd ?? step.consumed;
  if (step.dataCrc !== undefined && step.dataCrc !== 0 && nativeCrc32 !== undefined) {
    const crc = nativeCrc32(buffer.subarray(0, dataEnd), crcSoFar);
    if (crc !== step.dataCrc) {
      return {
        bytes: size,
        complete: false,
        problem: {
          offset: base + dataEnd,
          kind: "damaged",
          detail: "data section CRC mismatch: a header, schema, channel or index record was altered",
        },
      };
    }
  }
  const tail = new Uint8Array(MAGIC_LENGTH);
  readSync(fd, tail, 0, MAGIC_LENGTH, Math.max(0, size - MAGIC_LENGTH));
  const closed = tail[1] === 0x4d && tail[2] === 0x43 && tail[3] === 0x41 && tail[4] === 0x50;
  if (!closed || step.dataCrc === undefined) return { bytes: size, complete: closed };
  const summaryFrom = base + step.consumed;
  const bad = checkSummary(fd, size, summaryFrom);
  if (bad !== undefined) {
    return { bytes: size, complete: false, problem: { offset: summaryFrom, kind: "damaged", detail: bad } };
  }
  return { bytes: size, complete: true };
}

/**
 * Scans a file that starts with the MCAP magic (the caller checks). Damage stops the scan and is
 * described in `problem`; everything before it has been delivered.
 */
export function scanMcapFile(
  file: string,
  callbacks: ScanCallbacks,
  decompress: Record<string, Decompress>,
  blockSize = 4 << 20,
): ScanResult {
  const fd = openSync(file, "r");
  const size = fstatSync(fd).size;
  let buffer = new Uint8Array(blockSize);
  let base = MAGIC_LENGTH; // file offset of buffer[0]
  let filled = 0;
  let read = MAGIC_LENGTH;
  const progress = { pos: 0 };
  // The data section CRC covers every byte from the leading magic up to the DataEnd record.
  let dataCrc = 0;
  if (nativeCrc32 !== undefined) {
    const magic = new Uint8Array(MAGIC_LENGTH);
    readSync(fd, magic, 0, MAGIC_LENGTH, 0);
    dataCrc = nativeCrc32(magic);
  }
  try {
    for (;;) {
      if (filled === buffer.byteLength) {
        const bigger = new Uint8Array(buffer.byteLength * 2);
        bigger.set(buffer);
        buffer = bigger;
      }
      const n = readSync(fd, buffer, filled, buffer.byteLength - filled, read);
      filled += n;
      read += n;
      let step: Walked;
      try {
        step = walk(buffer.subarray(0, filled), callbacks, decompress, false, progress);
      } catch (err) {
        if (callbacks.isFatal?.(err) === true) throw err;
        return {
          bytes: read,
          complete: false,
          problem: { offset: base + progress.pos, kind: "damaged", detail: (err as Error).message },
        };
      }
      if (step.ended) return endOfData(fd, size, base, buffer, step, dataCrc);
      if (nativeCrc32 !== undefined) dataCrc = nativeCrc32(buffer.subarray(0, step.consumed), dataCrc);
      // Keep the unparsed remainder at the start of the buffer.
      buffer.copyWithin(0, step.consumed, filled);
      filled -= step.consumed;
      base += step.consumed;
      if (n === 0) {
        if (filled > 0) {
          return {
            bytes: read,
            complete: false,
            problem: {
              offset: base,
              kind: "truncated",
              detail: `the last ${filled} bytes are an incomplete record`,
            },
          };
        }
        return {
          bytes: read,
          complete: false,
          problem: { offset: base, kind: "unclosed", detail: "no summary or footer" },
        };
      }
    }
  } finally {
    closeSync(fd);
  }
}
