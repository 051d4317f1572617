/**
 * A teleop recording written the way rosbag2 writes one, with @mcap/core's own McapWriter (not our
 * writer): profile ros2, ros2msg schemas, cdr messages, channels with offered_qos_profiles, small
 * chunks compressed alternately with zstd and lz4, plus everything a real bag throws at an importer:
 * joints in another order with an extra gripper joint, a topic we do not read, messages written out
 * of order, a gap, and receive times 1 ms after the stamps.
 *
 * The ground truth is known exactly: joint states at 50 Hz on the control grid, and at each tick the
 * command gravity(q) + a·torqueScale − action_damping·q̇ for a known action a in (−1, 1).
 */
import { writeFileSync } from "node:fs";
import { parse } from "@foxglove/rosmsg";
import { MessageWriter } from "@foxglove/rosmsg2-serialization";
import zstd from "@foxglove/wasm-zstd";
import { McapWriter } from "@mcap/core";
import lz4 from "lz4js";
import type { ControlStack } from "../../src/control/stack.js";
import { completeDefinition } from "../../src/data/definitions.js";

export const STAMP0 = 1_700_000_000_000_000_000n;
export const TICK_NS = 20_000_000n;
export const RECEIVE_LATENCY_NS = 1_000_000n;

export interface TeleopTruth {
  ticks: number;
  /** Ticks present in the bag (the gap's ticks are missing). */
  present: boolean[];
  q: Float64Array[];
  qd: Float64Array[];
  action: Float64Array[];
  effort: Float64Array[];
}

export interface TeleopBagOptions {
  ticks?: number;
  /** Ticks [from, to) with no joint states and no commands. */
  gap?: [number, number];
  withCommands?: boolean;
  /** Joint names in the JointState messages, in their order. */
  jointStateNames?: string[];
  /** Pairs of ticks whose messages are written in swapped order. */
  swaps?: number[];
}

const QOS =
  "- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 2147483647\n    nsec: 4294967295\n  lifespan:\n    sec: 2147483647\n    nsec: 4294967295\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 2147483647\n    nsec: 4294967295\n  avoid_ros_namespace_conventions: false";

export function teleopTruth(stack: ControlStack, ticks: number, gap: [number, number]): TeleopTruth {
  const n = stack.model.dof;
  const home = [0, -0.6, 0.3, 0.9];
  const scale = stack.model.joints.map((j) => j.effort * stack.config.action_torque_fraction);
  const truth: TeleopTruth = { ticks, present: [], q: [], qd: [], action: [], effort: [] };
  const g = new Float64Array(n);
  for (let k = 0; k < ticks; k++) {
    const t = k * 0.02;
    const q = new Float64Array(n);
    const qd = new Float64Array(n);
    const a = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const w = 1.3 + 0.4 * j;
      q[j] = home[j] + 0.3 * Math.sin(w * t + j);
      qd[j] = 0.3 * w * Math.cos(w * t + j);
      a[j] = 0.8 * Math.sin(0.7 * t + 2 * j);
    }
    stack.dynamics.gravity(q, g);
    const damping = stack.gains.actionDamping;
    const effort = Float64Array.from(a, (ai, j) => g[j] + ai * scale[j] - damping[j] * qd[j]);
    truth.q.push(q);
    truth.qd.push(qd);
    truth.action.push(a);
    truth.effort.push(effort);
    truth.present.push(!(k >= gap[0] && k < gap[1]));
  }
  return truth;
}

function rosTime(ns: bigint) {
  return { sec: Number(ns / 1_000_000_000n), nanosec: Number(ns % 1_000_000_000n) };
}

/** Writes the bag; returns the truth it was made from. */
export async function writeTeleopBag(
  path: string,
  stack: ControlStack,
  options: TeleopBagOptions = {},
): Promise<TeleopTruth> {
  await zstd.isLoaded;
  const ticks = options.ticks ?? 260;
  const gap = options.gap ?? [130, 140];
  const truth = teleopTruth(stack, ticks, gap);
  const names = options.jointStateNames ?? ["joint3", "gripper_joint", "joint1", "joint4", "joint2"];
  const modelNames = stack.model.joints.map((j) => j.name);

  const parts: Uint8Array[] = [];
  let position = 0n;
  let chunks = 0;
  const writer = new McapWriter({
    writable: {
      position: () => position,
      write: async (buffer: Uint8Array) => {
        parts.push(buffer.slice());
        position += BigInt(buffer.byteLength);
      },
    },
    chunkSize: 2048,
    compressChunk: (data) => {
      chunks++;
      return chunks % 2 === 1
        ? { compression: "zstd", compressedData: zstd.compress(data, 3) }
        : { compression: "lz4", compressedData: lz4.compress(data) };
    },
  });
  await writer.start({ profile: "ros2", library: "rosbag2 (test double, @mcap/core)" });
  const topic = async (name: string, type: string) => {
    const text = completeDefinition(type);
    const schemaId = await writer.registerSchema({
      name: type,
      encoding: "ros2msg",
      data: new TextEncoder().encode(text),
    });
    const channelId = await writer.registerChannel({
      schemaId,
      topic: name,
      messageEncoding: "cdr",
      metadata: new Map([["offered_qos_profiles", QOS]]),
    });
    return { channelId, writer: new MessageWriter(parse(text, { ros2: true })) };
  };
  const joints = await topic("/joint_states", "sensor_msgs/msg/JointState");
  const commands = await topic("/effort_controller/commands", "std_msgs/msg/Float64MultiArray");
  const chatter = await topic("/chatter", "std_msgs/msg/String");

  const order = Array.from({ length: ticks }, (_, k) => k);
  for (const s of options.swaps ?? [50]) [order[s], order[s + 1]] = [order[s + 1], order[s]];
  let sequence = 0;
  for (const k of order) {
    if (!truth.present[k]) continue;
    const stamp = STAMP0 + BigInt(k) * TICK_NS;
    const received = stamp + RECEIVE_LATENCY_NS;
    const byName = (values: Float64Array) =>
      names.map((nm) => {
        const j = modelNames.indexOf(nm);
        return j >= 0 ? values[j] : 0.01;
      });
    const js = {
      header: { stamp: rosTime(stamp), frame_id: "" },
      name: names,
      position: byName(truth.q[k]),
      velocity: byName(truth.qd[k]),
      effort: byName(truth.effort[k]),
    };
    await writer.addMessage({
      channelId: joints.channelId,
      sequence: sequence++,
      logTime: received,
      publishTime: stamp,
      data: joints.writer.writeMessage(js),
    });
    if (options.withCommands ?? true) {
      await writer.addMessage({
        channelId: commands.channelId,
        sequence: sequence++,
        logTime: received,
        publishTime: received,
        data: commands.writer.writeMessage({ layout: { dim: [], data_offset: 0 }, data: truth.effort[k] }),
      });
    }
    if (k % 10 === 0) {
      await writer.addMessage({
        channelId: chatter.channelId,
        sequence: sequence++,
        logTime: received,
        publishTime: received,
        data: chatter.writer.writeMessage({ data: `tick ${k}` }),
      });
    }
  }
  await writer.end();
  writeFileSync(path, Buffer.concat(parts));
  if (chunks < 4) throw new Error(`fixture: only ${chunks} chunks; expected zstd and lz4 ones`);
  return truth;
}
