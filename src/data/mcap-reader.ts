/**
 * Reads ROS 2 MCAP files (rosbag2's or our own) front to back with @mcap/core's streaming reader,
 * so that a file without its summary (a recorder killed mid-write) or cut short (a copy interrupted,
 * a full disk) yields every message before the damage, and the damage is described in one line
 * rather than thrown. Messages are decoded from CDR with @foxglove/rosmsg2-serialization, using the
 * `ros2msg` schema stored in the file.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import { parse } from "@foxglove/rosmsg";
import { MessageReader } from "@foxglove/rosmsg2-serialization";
import type { McapTypes } from "@mcap/core";
import { hasMcapPrefix, McapStreamReader } from "@mcap/core";
import { loadDecompressHandlers } from "@mcap/support";

/** A file we cannot read at all: not MCAP, a sqlite3 bag, missing. The message is one line. */
export class BagFormatError extends Error {}

export interface ChannelInfo {
  id: number;
  topic: string;
  /** The ROS 2 type, e.g. "sensor_msgs/msg/JointState" (the schema name). */
  type: string;
  messageEncoding: string;
  schemaEncoding: string;
}

export interface ReadReport {
  file: string;
  profile: string;
  library: string;
  /** Channels by id, as declared in the file (including topics nobody asked for). */
  channels: Map<number, ChannelInfo>;
  /** Messages seen per topic (all topics, decoded or not). */
  counts: Map<string, number>;
  /** Total messages seen. */
  messages: number;
  /** Bytes of the file read. */
  bytes: number;
  /** True when the footer was reached: the writer closed the file properly. */
  complete: boolean;
  /**
   * Set when reading stopped early or the file is incomplete: one line saying where and why. What
   * was read before it is valid.
   */
  problem?: string;
}

/** One decoded message. `message` is the decoded object, a fresh one per call. */
export interface DecodedMessage<T = unknown> {
  topic: string;
  type: string;
  /** Nanoseconds: when the recorder received it, and when it was published. */
  logTime: bigint;
  publishTime: bigint;
  message: T;
}

export interface ReadOptions {
  /** Topics to decode (others are counted, not decoded). Undefined: decode every topic. */
  topics?: ReadonlySet<string>;
  onMessage?: (m: DecodedMessage) => void;
  /** Bytes read from the file per read call. */
  blockSize?: number;
}

const SQLITE_MAGIC = "SQLite format 3\0";

/** Checks the first bytes, with a clear error for a sqlite3 bag or anything else that is not MCAP. */
export function checkMcapFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    throw new BagFormatError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const head = new Uint8Array(16);
  const n = readSync(fd, head, 0, 16, 0);
  closeSync(fd);
  if (new TextDecoder("latin1").decode(head.subarray(0, n)) === SQLITE_MAGIC || /\.db3$/i.test(file)) {
    throw new BagFormatError(
      `${file} is a rosbag2 sqlite3 bag (.db3, Humble's default storage); mbpo-arm reads MCAP. ` +
        "Record with `ros2 bag record -s mcap ...`, or convert this one with " +
        "`ros2 bag convert -i BAG_DIR -o out.yaml` where out.yaml says `output_bags: [{uri: converted, storage_id: mcap, all: true}]`",
    );
  }
  if (n < 8 || !hasMcapPrefix(new DataView(head.buffer, 0, n))) {
    throw new BagFormatError(
      `${file} is not an MCAP file (${n === 0 ? "it is empty" : "no MCAP magic at its start"})`,
    );
  }
}

/** Decoders per channel, built from the channel's schema on first use. */
class Decoders {
  private readonly byChannel = new Map<number, MessageReader | null>();

  get(channel: McapTypes.Channel, schema: McapTypes.Schema | undefined, file: string): MessageReader {
    let reader = this.byChannel.get(channel.id);
    if (reader !== undefined && reader !== null) return reader;
    if (channel.messageEncoding !== "cdr") {
      throw new BagFormatError(
        `${file}: topic ${channel.topic} has message encoding "${channel.messageEncoding}"; expected "cdr" (ROS 2)`,
      );
    }
    if (schema === undefined || schema.encoding !== "ros2msg") {
      throw new BagFormatError(
        `${file}: topic ${channel.topic} has ${schema === undefined ? "no schema" : `schema encoding "${schema.encoding}"`}; expected "ros2msg"`,
      );
    }
    reader = new MessageReader(parse(new TextDecoder().decode(schema.data), { ros2: true }));
    this.byChannel.set(channel.id, reader);
    return reader;
  }
}

/**
 * Reads a whole file, calling onMessage for each decoded message in file order. Throws
 * BagFormatError only when nothing can be read (not MCAP, wrong encodings of a wanted topic); damage
 * part-way is reported in the result's `problem`.
 */
export async function readRos2Mcap(file: string, options: ReadOptions = {}): Promise<ReadReport> {
  checkMcapFile(file);
  const decompressHandlers = await loadDecompressHandlers();
  const reader = new McapStreamReader({ decompressHandlers, validateCrcs: true });
  const schemas = new Map<number, McapTypes.Schema>();
  const rawChannels = new Map<number, McapTypes.Channel>();
  const report: ReadReport = {
    file,
    profile: "",
    library: "",
    channels: new Map(),
    counts: new Map(),
    messages: 0,
    bytes: 0,
    complete: false,
  };
  const decoders = new Decoders();
  const name = basename(file);
  const fd = openSync(file, "r");
  const block = new Uint8Array(options.blockSize ?? 1 << 20);
  let appended = 0;
  try {
    for (;;) {
      const n = readSync(fd, block, 0, block.byteLength, appended);
      if (n === 0) break;
      appended += n;
      reader.append(block.subarray(0, n));
      try {
        for (let record = reader.nextRecord(); record !== undefined; record = reader.nextRecord()) {
          switch (record.type) {
            case "Header":
              report.profile = record.profile;
              report.library = record.library;
              break;
            case "Schema":
              schemas.set(record.id, record);
              break;
            case "Channel": {
              rawChannels.set(record.id, record);
              const schema = schemas.get(record.schemaId);
              report.channels.set(record.id, {
                id: record.id,
                topic: record.topic,
                type: schema?.name ?? "",
                messageEncoding: record.messageEncoding,
                schemaEncoding: schema?.encoding ?? "",
              });
              if (!report.counts.has(record.topic)) report.counts.set(record.topic, 0);
              break;
            }
            case "Message": {
              const channel = rawChannels.get(record.channelId)!;
              report.counts.set(channel.topic, (report.counts.get(channel.topic) ?? 0) + 1);
              report.messages++;
              if (options.onMessage === undefined) break;
              if (options.topics !== undefined && !options.topics.has(channel.topic)) break;
              const decoder = decoders.get(channel, schemas.get(channel.schemaId), file);
              let message: unknown;
              try {
                message = decoder.readMessage(record.data);
              } catch (err) {
                throw new Error(
                  `message on ${channel.topic} does not decode as ${schemas.get(channel.schemaId)?.name}: ${(err as Error).message}`,
                );
              }
              options.onMessage({
                topic: channel.topic,
                type: schemas.get(channel.schemaId)?.name ?? "",
                logTime: record.logTime,
                publishTime: record.publishTime,
                message,
              });
              break;
            }
            case "Footer":
              report.complete = true;
              break;
            default:
              break;
          }
        }
      } catch (err) {
        if (err instanceof BagFormatError) throw err;
        const at = appended - reader.bytesRemaining();
        report.bytes = appended;
        report.problem = `${name}: damaged at byte ${at} (${(err as Error).message}); read ${report.messages} messages before it`;
        return report;
      }
      if (reader.done()) break;
    }
  } finally {
    closeSync(fd);
  }
  report.bytes = appended;
  report.complete = reader.done();
  if (!report.complete) {
    const left = reader.bytesRemaining();
    report.problem =
      left > 0
        ? `${name}: truncated at byte ${appended - left} (the last ${left} bytes are an incomplete record); read ${report.messages} messages before it`
        : `${name}: ends without a summary or footer (the writer was stopped before closing it); read ${report.messages} messages`;
  }
  return report;
}
