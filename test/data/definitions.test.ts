/**
 * The message definitions the log writes: ours match msg/*.msg, the standard ones parse to exactly
 * the Humble definitions that Foxglove ships, and the complete definitions follow rosbag2's layout.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "@foxglove/rosmsg";
import { ros2humble } from "@foxglove/rosmsg-msgs-common";
import { MessageReader, MessageWriter } from "@foxglove/rosmsg2-serialization";
import {
  completeDefinition,
  EPISODE_SUMMARY,
  FLOAT64_MULTI_ARRAY,
  JOINT_STATE,
  messageType,
  TRANSITION,
} from "../../src/data/definitions.js";
import { packageRoot } from "../../src/util/paths.js";

/** Field lists without comments, the way the parser sees them. */
function fields(defs: ReturnType<typeof parse>) {
  return defs.map((d) => ({
    name: d.name,
    fields: d.definitions.map((f) => [f.name, f.type, f.isArray === true, f.isConstant === true]),
  }));
}

describe("message definitions", () => {
  it("mbpo_arm_msgs definitions are msg/*.msg, byte for byte", () => {
    const root = packageRoot();
    assert.equal(messageType(TRANSITION).text, readFileSync(join(root, "msg", "Transition.msg"), "utf8"));
    assert.equal(
      messageType(EPISODE_SUMMARY).text,
      readFileSync(join(root, "msg", "EpisodeSummary.msg"), "utf8"),
    );
  });

  it("standard types parse to the ROS 2 Humble definitions", () => {
    const humble = ros2humble as Record<
      string,
      { definitions: { name: string; type: string; isArray?: boolean }[] }
    >;
    for (const [ours, theirs] of [
      [JOINT_STATE, "sensor_msgs/JointState"],
      [FLOAT64_MULTI_ARRAY, "std_msgs/Float64MultiArray"],
    ] as const) {
      const parsed = parse(completeDefinition(ours), { ros2: true });
      for (const def of parsed) {
        const name = def.name ?? theirs;
        const expected = humble[name];
        assert.ok(expected !== undefined, `${name} is a Humble type`);
        assert.deepEqual(
          def.definitions.map((f) => [f.name, f.type, f.isArray === true]),
          expected.definitions.map((f) => [f.name, f.type, f.isArray === true]),
          name,
        );
      }
    }
  });

  it("complete definitions append dependencies as rosbag2 does", () => {
    const text = completeDefinition(JOINT_STATE);
    const sep = `\n${"=".repeat(80)}\nMSG: `;
    const parts = text.split(sep);
    assert.equal(parts.length, 3);
    assert.ok(parts[1].startsWith("std_msgs/Header\n"));
    assert.ok(parts[2].startsWith("builtin_interfaces/Time\n"));
    assert.equal(completeDefinition(TRANSITION).split(sep).length, 3);
    // Our own types parse, with their constants.
    const transition = fields(parse(completeDefinition(TRANSITION), { ros2: true }))[0];
    assert.deepEqual(transition.fields.slice(0, 3), [
      ["SOURCE_POLICY", "uint8", false, true],
      ["SOURCE_TELEOP", "uint8", false, true],
      ["header", "std_msgs/Header", false, false],
    ]);
  });

  it("a Transition survives CDR serialisation", () => {
    const defs = parse(completeDefinition(TRANSITION), { ros2: true });
    const message = {
      header: { stamp: { sec: 12, nanosec: 345 }, frame_id: "" },
      source: 1,
      episode: 7,
      step: 42,
      joint_names: ["a", "b"],
      position: new Float64Array([1, 2]),
      velocity: new Float64Array([3, 4]),
      effort: new Float64Array([5, 6]),
      next_position: new Float64Array([7, 8]),
      next_velocity: new Float64Array([9, 10]),
      goal: new Float64Array([0.1, 0.2, 0.3]),
      observation: new Float32Array([1.5, 2.5]),
      action: new Float32Array([-1, 1]),
      next_observation: new Float32Array([3.5, 4.5]),
      reward: -0.25,
      terminated: false,
      truncated: true,
      safety_interventions: 3,
    };
    const bytes = new MessageWriter(defs).writeMessage(message);
    assert.deepEqual(new MessageReader(defs).readMessage(bytes), message);
  });
});
