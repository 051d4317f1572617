/**
 * Writes ROS 2 bags as rosbag2's MCAP storage plugin does: profile `ros2`, one schema per message
 * type (encoding `ros2msg`, the complete definition with its dependencies appended), channels with
 * message encoding `cdr` and the `offered_qos_profiles` metadata, messages in zstd-compressed chunks
 * followed by their message indexes, and on close the summary (schemas, channels, statistics, chunk
 * indexes, summary offsets) and footer, with CRCs.
 *
 * Unlike @mcap/core's McapWriter, the caller decides where a chunk ends (flush()): the transition
 * log flushes once per episode, so a process killed at any moment leaves every earlier episode in
 * complete, indexed chunks that a streaming reader recovers. Writes are synchronous (fs.writeSync):
 * this class runs in the log's worker thread, or in commands that have nothing else to do.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import zlib from "node:zlib";
import { parse } from "@foxglove/rosmsg";
import { MessageWriter } from "@foxglove/rosmsg2-serialization";
import zstd from "@foxglove/wasm-zstd";
import type { McapTypes } from "@mcap/core";
import { McapChunkBuilder, McapRecordBuilder, Opcode } from "@mcap/core";
import { completeDefinition } from "./definitions.js";

/**
 * CRC-32 as MCAP uses it (zlib's). zlib.crc32 arrived in Node 20.15; on older Nodes CRCs are written
 * as 0, which MCAP defines as "not computed".
 */
const crc32: (data: Uint8Array, previous?: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === "function"
    ? (zlib as unknown as { crc32: (d: Uint8Array, p?: number) => number }).crc32
    : () => 0;
const CRC_COMPUTED = crc32(new Uint8Array([1])) !== 0;

/**
 * The QoS rosbag2 records for a topic published reliably with volatile durability (Humble's YAML
 * form; `ros2 bag play` offers the same QoS again).
 */
const RELIABLE_QOS = `- history: 3
  depth: 0
  reliability: 1
  durability: 2
  deadline:
    sec: 2147483647
    nsec: 4294967295
  lifespan:
    sec: 2147483647
    nsec: 4294967295
  liveliness: 1
  liveliness_lease_duration:
    sec: 2147483647
    nsec: 4294967295
  avoid_ros_namespace_conventions: false`;

export interface Ros2McapWriterOptions {
  /** Chunk compression: zstd (rosbag2's default) or none. */
  compression?: "zstd" | "none";
  /** zstd level (1 is fast and still shrinks these logs several-fold). */
  zstdLevel?: number;
  /** A chunk is also closed when its uncompressed size passes this (bytes). */
  chunkSize?: number;
  /** The Header record's library string. */
  library?: string;
}

interface Topic {
  channelId: number;
  writer: MessageWriter;
}

/** Loads the zstd WebAssembly module; call once before opening a writer. */
export async function loadZstd(): Promise<void> {
  await zstd.isLoaded;
}

export class Ros2McapWriter {
  readonly path: string;
  private readonly fd: number;
  private readonly compression: "zstd" | "none";
  private readonly zstdLevel: number;
  private readonly chunkSize: number;
  private readonly records = new McapRecordBuilder();
  private readonly chunk = new McapChunkBuilder({ useMessageIndex: true });
  private readonly topics = new Map<string, Topic>();
  private readonly schemas = new Map<string, McapTypes.Schema>();
  private readonly channels: McapTypes.Channel[] = [];
  private readonly chunkIndexes: McapTypes.ChunkIndex[] = [];
  private readonly channelMessageCounts = new Map<number, bigint>();
  private position = 0n;
  private dataCrc = 0;
  private messageCount = 0n;
  private startTime = 0n;
  private endTime = 0n;
  private closed = false;

  /** The latest log time written so far (ns; 0 before the first message). */
  get lastLogTime(): bigint {
    return this.endTime;
  }

  /**
   * Creates the file and writes the magic and the Header record. Call loadZstd() first. An
   * existing file is never replaced (it may be a run's only record of the robot's transitions):
   * that is a one-line error naming it.
   */
  constructor(path: string, options: Ros2McapWriterOptions = {}) {
    this.path = path;
    this.compression = options.compression ?? "zstd";
    this.zstdLevel = options.zstdLevel ?? 1;
    this.chunkSize = options.chunkSize ?? 4 * 1024 * 1024;
    try {
      this.fd = openSync(path, "wx");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST")
        throw new Error(`${path} already exists; an MCAP log is never overwritten`);
      throw err;
    }
    this.records.writeMagic();
    this.records.writeHeader({ profile: "ros2", library: options.library ?? "mbpo-arm" });
    this.emit(true);
  }

  /** Messages written so far. */
  get messages(): number {
    return Number(this.messageCount);
  }

  /** Bytes written to the file so far. */
  get bytes(): number {
    return Number(this.position);
  }

  /**
   * Declares a topic of a known type (see definitions.ts). Its schema and channel records go to the
   * file at once, ahead of any chunk, so that even a file cut short after them is self-describing.
   */
  addTopic(topic: string, type: string): void {
    if (this.topics.has(topic)) throw new Error(`mcap writer: topic ${topic} declared twice`);
    let schema = this.schemas.get(type);
    if (schema === undefined) {
      const text = completeDefinition(type);
      schema = {
        id: this.schemas.size + 1,
        name: type,
        encoding: "ros2msg",
        data: new TextEncoder().encode(text),
      };
      this.schemas.set(type, schema);
      this.records.writeSchema(schema);
    }
    const channel: McapTypes.Channel = {
      id: this.channels.length + 1,
      schemaId: schema.id,
      topic,
      messageEncoding: "cdr",
      metadata: new Map([["offered_qos_profiles", RELIABLE_QOS]]),
    };
    this.channels.push(channel);
    this.records.writeChannel(channel);
    this.emit(true);
    const definitions = parse(new TextDecoder().decode(schema.data), { ros2: true });
    this.topics.set(topic, { channelId: channel.id, writer: new MessageWriter(definitions) });
  }

  /**
   * Serialises a message (a plain object with the type's fields) into the current chunk. Times are
   * nanoseconds; the log time is when the message was recorded, the publish time when it was sent.
   */
  write(topic: string, logTime: bigint, message: unknown, publishTime: bigint = logTime): void {
    if (this.closed) throw new Error(`mcap writer: ${this.path} is closed`);
    const t = this.topics.get(topic);
    if (t === undefined) throw new Error(`mcap writer: topic ${topic} was not declared`);
    const data = t.writer.writeMessage(message);
    this.chunk.addMessage({ channelId: t.channelId, sequence: 0, logTime, publishTime, data });
    this.channelMessageCounts.set(t.channelId, (this.channelMessageCounts.get(t.channelId) ?? 0n) + 1n);
    if (this.messageCount === 0n || logTime < this.startTime) this.startTime = logTime;
    if (this.messageCount === 0n || logTime > this.endTime) this.endTime = logTime;
    this.messageCount++;
    if (this.chunk.byteLength >= this.chunkSize) this.flush();
  }

  /**
   * Ends the current chunk: compresses it and writes it and its message indexes to the file. After
   * flush() returns, everything written so far is in the operating system's hands (it survives the
   * process being killed); fsync() also makes it survive a power cut.
   */
  flush(): void {
    if (this.chunk.numMessages === 0) return;
    const uncompressed = this.chunk.buffer;
    let compression = "";
    let records = uncompressed;
    if (this.compression === "zstd") {
      compression = "zstd";
      records = zstd.compress(uncompressed, this.zstdLevel);
    }
    const chunkStart = this.position;
    const chunkLength = this.records.writeChunk({
      messageStartTime: this.chunk.messageStartTime,
      messageEndTime: this.chunk.messageEndTime,
      uncompressedSize: BigInt(uncompressed.byteLength),
      uncompressedCrc: crc32(uncompressed),
      compression,
      records,
    });
    const indexStart = chunkStart + chunkLength;
    const messageIndexOffsets = new Map<number, bigint>();
    let indexLength = 0n;
    for (const index of this.chunk.indices) {
      messageIndexOffsets.set(index.channelId, indexStart + indexLength);
      indexLength += this.records.writeMessageIndex(index);
    }
    this.chunkIndexes.push({
      messageStartTime: this.chunk.messageStartTime,
      messageEndTime: this.chunk.messageEndTime,
      chunkStartOffset: chunkStart,
      chunkLength,
      messageIndexOffsets,
      messageIndexLength: indexLength,
      compression,
      compressedSize: BigInt(records.byteLength),
      uncompressedSize: BigInt(uncompressed.byteLength),
    });
    this.chunk.reset();
    this.emit(true);
  }

  /** Forces the written bytes to the disk itself. */
  fsync(): void {
    fsyncSync(this.fd);
  }

  /** Flushes, then writes the data end, the summary section and the footer, and closes the file. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.records.writeDataEnd({ dataSectionCrc: CRC_COMPUTED ? this.dataCrc : 0 });
    this.emit(true);

    const summaryStart = this.position;
    const offsets: McapTypes.SummaryOffset[] = [];
    const group = (opcode: number, write: () => bigint) => {
      const start = this.position + BigInt(this.records.length);
      const length = write();
      if (length > 0n) offsets.push({ groupOpcode: opcode, groupStart: start, groupLength: length });
    };
    group(Opcode.SCHEMA, () => {
      let n = 0n;
      for (const s of this.schemas.values()) n += this.records.writeSchema(s);
      return n;
    });
    group(Opcode.CHANNEL, () => {
      let n = 0n;
      for (const c of this.channels) n += this.records.writeChannel(c);
      return n;
    });
    group(Opcode.STATISTICS, () =>
      this.records.writeStatistics({
        messageCount: this.messageCount,
        schemaCount: this.schemas.size,
        channelCount: this.channels.length,
        attachmentCount: 0,
        metadataCount: 0,
        chunkCount: this.chunkIndexes.length,
        messageStartTime: this.startTime,
        messageEndTime: this.endTime,
        channelMessageCounts: this.channelMessageCounts,
      }),
    );
    group(Opcode.CHUNK_INDEX, () => {
      let n = 0n;
      for (const c of this.chunkIndexes) n += this.records.writeChunkIndex(c);
      return n;
    });
    const summaryOffsetStart = this.position + BigInt(this.records.length);
    for (const o of offsets) this.records.writeSummaryOffset(o);

    // The summary CRC covers the summary section and the footer up to the CRC field itself.
    const footer = new McapRecordBuilder();
    footer.writeFooter({ summaryStart, summaryOffsetStart, summaryCrc: 0 });
    const footerHead = footer.buffer.subarray(0, footer.buffer.byteLength - 4);
    const summaryCrc = CRC_COMPUTED ? crc32(footerHead, crc32(this.records.buffer)) : 0;
    this.records.writeFooter({ summaryStart, summaryOffsetStart, summaryCrc });
    this.records.writeMagic();
    this.emit(false);
    this.closed = true;
    closeSync(this.fd);
  }

  /** Writes what the record builder holds; data-section bytes also feed the data CRC. */
  private emit(dataSection: boolean): void {
    const bytes = this.records.buffer;
    if (dataSection && CRC_COMPUTED) this.dataCrc = crc32(bytes, this.dataCrc);
    let written = 0;
    while (written < bytes.byteLength) {
      written += writeSync(this.fd, bytes, written, bytes.byteLength - written);
    }
    this.position += BigInt(bytes.byteLength);
    this.records.reset();
  }
}
