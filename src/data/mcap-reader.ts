/**
 * Reads ROS 2 MCAP files (rosbag2's or our own) front to back (mcap-scan.ts),
 * so that a file without its summary (a recorder killed mid-write) or cut short (a copy interrupted,
 * a full disk) yields every message before the damage, and the damage is described in one line
 * rather than thrown. Messages are decoded from CDR with @foxglove/rosmsg2-serialization, using the
 * `ros2msg` schema stored in the file.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import { parse } from "@foxglove/rosmsg";
import { MessageReader } from "@foxglove/rosmsg2-serialization";
import type { McapTypes } from "@mcap/core";
import { hasMcapPrefix } from "@mcap/core";
import { loadDecompressHandlers } from "@mcap/support";
import { fastDecoderFor, NotPlainLittleEndian } from "./cdr-fast.js";
import { scanMcapFile } from "./mcap-scan.js";

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
  /**
   * Let decoders hand out the same object for every message of a topic, overwritten by the next
   * (for consumers that copy what they keep; saves the allocations of hot topics).
   */
  reuseMessages?: boolean;
}

const SQLITE_MAGIC = "SQLite format 3\0";

const MCAP_MAGIC = Uint8Array.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]);

/**
 * Checks the first bytes, with a clear error for a directory, a sqlite3 bag or anything else that
 * is not MCAP. "cut-in-magic": the file is a few bytes of MCAP's magic and nothing else (a file
 * cut right after it was created), which is a truncated MCAP file rather than something else.
 */
export function checkMcapFile(file: string): "mcap" | "cut-in-magic" {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    throw new BagFormatError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  if (fstatSync(fd).isDirectory()) {
    closeSync(fd);
    throw new BagFormatError(`${file} is a directory; expected an MCAP file`);
  }
  const head = new Uint8Array(16);
  const n = readSync(fd, head, 0, 16, 0);
  closeSync(fd);
  if (n > 0 && n < 8 && MCAP_MAGIC.subarray(0, n).every((b, i) => head[i] === b)) return "cut-in-magic";
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
  return "mcap";
}

/** Decoders per channel, built from the channel's schema on first use. */
class Decoders {
  private readonly byChannel = new Map<number, (data: Uint8Array) => unknown>();
  constructor(private readonly reuse: boolean) {}

  get(
    channel: McapTypes.Channel,
    schema: McapTypes.Schema | undefined,
    file: string,
  ): (data: Uint8Array) => unknown {
    const known = this.byChannel.get(channel.id);
    if (known !== undefined) return known;
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
    const text = new TextDecoder().decode(schema.data);
    const reader = new MessageReader(parse(text, { ros2: true }));
    const fast = fastDecoderFor(schema.name, text, this.reuse);
    const decode =
      fast === undefined
        ? (data: Uint8Array) => reader.readMessage(data)
        : (data: Uint8Array) => {
            try {
              return fast(data);
            } catch (err) {
              if (err instanceof NotPlainLittleEndian) return reader.readMessage(data);
              throw err;
            }
          };
    this.byChannel.set(channel.id, decode);
    return decode;
  }
}

/**
 * Reads a whole file, calling onMessage for each decoded message in file order. Throws
 * BagFormatError only when nothing can be read (not MCAP, wrong encodings of a wanted topic); damage
 * part-way is reported in the result's `problem`.
 */
export async function readRos2Mcap(file: string, options: ReadOptions = {}): Promise<ReadReport> {
  const kind = checkMcapFile(file);
  const decompress = await loadDecompressHandlers();
  const schemas = new Map<number, McapTypes.Schema>();
  const channels = new Map<number, McapTypes.Channel>();
  const topicCounts: number[] = [];
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
  if (kind === "cut-in-magic") {
    report.problem = `${basename(file)}: truncated at byte 0 (the file ends inside MCAP's leading magic); read 0 messages before it`;
    return report;
  }
  const decoders = new Decoders(options.reuseMessages === true);
  const wanted = new Map<number, (data: Uint8Array) => unknown>();
  const { onMessage, topics } = options;
  const scan = scanMcapFile(
    file,
    {
      isFatal: (err) => err instanceof BagFormatError,
      header(profile, library) {
        report.profile = profile;
        report.library = library;
      },
      schema(schema) {
        schemas.set(schema.id, schema);
      },
      channel(channel) {
        channels.set(channel.id, channel);
        const schema = schemas.get(channel.schemaId);
        report.channels.set(channel.id, {
          id: channel.id,
          topic: channel.topic,
          type: schema?.name ?? "",
          messageEncoding: channel.messageEncoding,
          schemaEncoding: schema?.encoding ?? "",
        });
        topicCounts[channel.id] ??= 0;
        if (onMessage !== undefined && (topics === undefined || topics.has(channel.topic))) {
          wanted.set(channel.id, decoders.get(channel, schema, file));
        }
      },
      message(channelId, logTime, publishTime, data) {
        if (topicCounts[channelId] === undefined) {
          throw new Error(`a message on channel ${channelId}, which no Channel record declared`);
        }
        topicCounts[channelId]++;
        report.messages++;
        const decode = wanted.get(channelId);
        if (decode === undefined) return;
        const channel = channels.get(channelId)!;
        let message: unknown;
        try {
          message = decode(data);
        } catch (err) {
          throw new Error(
            `message on ${channel.topic} does not decode as ${schemas.get(channel.schemaId)?.name}: ${(err as Error).message}`,
          );
        }
        onMessage!({
          topic: channel.topic,
          type: report.channels.get(channelId)!.type,
          logTime,
          publishTime,
          message,
        });
      },
    },
    decompress,
  );
  for (const [id, channel] of channels) {
    report.counts.set(channel.topic, (report.counts.get(channel.topic) ?? 0) + (topicCounts[id] ?? 0));
  }
  report.bytes = scan.bytes;
  report.complete = scan.complete;
  const name = basename(file);
  const p = scan.problem;
  if (p !== undefined) {
    report.problem =
      p.kind === "damaged"
        ? `${name}: damaged at byte ${p.offset} (${p.detail}); read ${report.messages} messages before it`
        : p.kind === "truncated"
          ? `${name}: truncated at byte ${p.offset} (${p.detail}); read ${report.messages} messages before it`
          : `${name}: ends without a summary or footer (the writer was stopped before closing it); read ${report.messages} messages`;
  } else if (!scan.complete) {
    report.problem = `${name}: truncated after its data section (summary or footer cut off); read all ${report.messages} messages`;
  }
  return report;
}
