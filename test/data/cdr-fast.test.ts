/** The hand-written CDR decoders agree with @foxglove/rosmsg2-serialization on any message. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "@foxglove/rosmsg";
import { MessageReader, MessageWriter } from "@foxglove/rosmsg2-serialization";
import fc from "fast-check";
import { fastDecoderFor } from "../../src/data/cdr-fast.js";
import { completeDefinition, FLOAT64_MULTI_ARRAY, JOINT_STATE } from "../../src/data/definitions.js";

const plain = (m: unknown) =>
  JSON.parse(JSON.stringify(m, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v)));

function check(type: string, arbitrary: fc.Arbitrary<unknown>) {
  const text = completeDefinition(type);
  const defs = parse(text, { ros2: true });
  const writer = new MessageWriter(defs);
  const reader = new MessageReader(defs);
  const fast = fastDecoderFor(type, text);
  const reusing = fastDecoderFor(type, text, true);
  assert.ok(fast !== undefined && reusing !== undefined, `${type} has a fast decoder`);
  fc.assert(
    fc.property(arbitrary, (message) => {
      const bytes = writer.writeMessage(message);
      // Decode from inside a larger buffer at an odd offset, as messages sit inside a chunk.
      const chunk = new Uint8Array(bytes.byteLength + 7);
      chunk.set(bytes, 3);
      const view = chunk.subarray(3, 3 + bytes.byteLength);
      const expected = plain(reader.readMessage(bytes));
      assert.deepEqual(plain(fast(view)), expected);
      // The reusing decoder overwrites one object across messages of any lengths.
      assert.deepEqual(plain(reusing(view)), expected);
    }),
    { numRuns: 300 },
  );
}

const float = fc.double({ noNaN: true });
const floats = fc.array(float, { maxLength: 7 }).map((a) => Float64Array.from(a));
const name = fc.string({ maxLength: 12 });

describe("fast CDR decoders", () => {
  it("JointState: same as MessageReader (names reused across messages or not)", () => {
    check(
      JOINT_STATE,
      fc.record({
        header: fc.record({
          stamp: fc.record({
            sec: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
            nanosec: fc.nat(999_999_999),
          }),
          frame_id: name,
        }),
        name: fc.oneof(
          fc.constant(["joint1", "joint2", "joint3", "joint4"]),
          fc.array(name, { maxLength: 6 }),
        ),
        position: floats,
        velocity: floats,
        effort: floats,
      }),
    );
  });

  it("Float64MultiArray: same as MessageReader", () => {
    check(
      FLOAT64_MULTI_ARRAY,
      fc.record({
        layout: fc.record({
          dim: fc.array(fc.record({ label: name, size: fc.nat(1000), stride: fc.nat(1000) }), {
            maxLength: 3,
          }),
          data_offset: fc.nat(100),
        }),
        data: floats,
      }),
    );
  });

  it("only standard definitions get the fast path", () => {
    assert.equal(
      fastDecoderFor("sensor_msgs/msg/JointState", "string[] name\nfloat64[] position\n"),
      undefined,
    );
    assert.equal(fastDecoderFor("std_msgs/msg/String", "string data\n"), undefined);
    assert.ok(fastDecoderFor("sensor_msgs/JointState", completeDefinition(JOINT_STATE)) !== undefined);
  });
});
