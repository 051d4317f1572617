/**
 * The gains derived from the arm as the node's parameters: declared per joint with what the arm
 * gets, overridden by one number or one per joint (double or integer), checked for stability on
 * every joint at startup and on each live change, read-only where they are the learner's dynamics
 * or the safety filter's.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ParameterType } from "../../src/drivers/ros2/rclnodejs.js";
import { rig } from "./rig.js";

const ARRAY = ParameterType.PARAMETER_DOUBLE_ARRAY;
const resetMoveKp = (r: Awaited<ReturnType<typeof rig>>) => [
  ...(r.arm.runner as unknown as { resetMove: { kp: Float64Array } }).resetMove.kp,
];

test("declared per joint with the derived values; read-only where the learner or the safety filter depends on them", async () => {
  const r = await rig();
  const gains = r.arm.app.stack.gains;
  const expected: [string, number[], boolean][] = [
    ["action_damping", gains.actionDamping, true],
    ["hold_damping", gains.holdDamping, false],
    ["reset.kp", gains.resetKp, false],
    ["reset.kd", gains.resetKd, false],
    ["safety.torque_rate_limit", gains.torqueRateLimit, true],
  ];
  for (const [name, values, readOnly] of expected) {
    const p = r.node.getParameter(name);
    assert.equal(p.type, ARRAY, name);
    assert.deepEqual(p.value, values, name);
    assert.equal(values.length, 4, name);
    const d = r.node.descriptors.get(name)!;
    assert.equal(d.readOnly, readOnly, name);
    assert.match(d.description, /derived from the arm/, name);
  }
  assert.deepEqual(gains.fromConfig, [], "nothing overridden: every gain is the arm's");
});

test("overrides: one number for all joints, one per joint, integers; the stack runs with them", async () => {
  const r = await rig([
    "-p",
    "reset.kp:=1.0",
    "-p",
    "reset.kd:=[0.1, 0.12, 0.14, 0.1]",
    "-p",
    "safety.torque_rate_limit:=[50, 60, 70, 80]",
  ]);
  assert.deepEqual(r.node.getParameter("reset.kp").value, [1, 1, 1, 1]);
  assert.deepEqual(r.node.getParameter("reset.kd").value, [0.1, 0.12, 0.14, 0.1]);
  assert.deepEqual(r.node.getParameter("safety.torque_rate_limit").value, [50, 60, 70, 80]);
  assert.equal(r.node.getParameter("reset.kd").type, ARRAY, "an integer or scalar override is widened");
  assert.deepEqual(r.arm.app.stack.gains.resetKp, [1, 1, 1, 1]);
  assert.deepEqual(resetMoveKp(r), [1, 1, 1, 1]);
  assert.deepEqual(r.arm.config.safety.torque_rate_limit, [50, 60, 70, 80]);
  assert.deepEqual(r.arm.app.stack.gains.fromConfig.sort(), [
    "reset.kd",
    "reset.kp",
    "safety.torque_rate_limit",
  ]);
});

test("a bad override stops the node before anything starts, in one line naming the parameter or the joint", async () => {
  const cases: [string, RegExp][] = [
    [
      "reset.kp:=[1.0, 2.0]",
      /^parameter reset\.kp: 2 values for 4 joints \(joint1, joint2, joint3, joint4\)/,
    ],
    [
      "hold_damping:=hello",
      /^parameter hold_damping: one number, or one per joint .* not a value of ROS parameter type 4/,
    ],
    ["reset.kd:=-0.1", /^parameter reset\.kd: joint "joint1" has -0\.1; every value must be a number ≥ 0/],
    ["action_damping:=5.0", /^action_damping on joint "joint1": 5 N·m·s\/rad .* unstable/],
  ];
  for (const [arg, pattern] of cases) {
    await assert.rejects(rig(["-p", arg]), (err: Error) => {
      assert.match(err.message, pattern, arg);
      assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
      return true;
    });
  }
});

test("live changes: reset.kp applies at the next episode, an unstable or misshapen one is refused, read-only ones too", async () => {
  const r = await rig();
  const set = (name: string, value: unknown) =>
    r.node.setParameters([new r.rcl.Parameter(name, ARRAY, value)]);
  const before = resetMoveKp(r);
  const unstable = set("reset.kp", [1, 1, 1, 400]);
  assert.equal(unstable.successful, false);
  assert.match(unstable.reason, /^reset\.kp\/kd on joint "joint4": kp 400, .* unstable/);
  assert.deepEqual(resetMoveKp(r), before, "a refused change changes nothing");
  assert.match(set("reset.kp", [1, 1]).reason, /2 values for 4 joints/);
  assert.match(set("action_damping", [0.1, 0.1, 0.1, 0.1]).reason, /read-only/);
  assert.match(set("safety.torque_rate_limit", [10, 10, 10, 10]).reason, /read-only/);

  const ok = set("reset.kp", [0.8, 0.9, 1.0, 1.1]);
  assert.equal(ok.successful, true, ok.reason);
  assert.deepEqual(resetMoveKp(r), [0.8, 0.9, 1.0, 1.1], "applied (the node is not running an episode)");
  assert.deepEqual(r.arm.config.reset.kp, [0.8, 0.9, 1.0, 1.1]);
  assert.deepEqual(r.node.getParameter("reset.kp").value, [0.8, 0.9, 1.0, 1.1]);
  const pd = r.arm.policy as unknown as { name: string; kp: Float64Array };
  assert.equal(pd.name, "pd");
  assert.deepEqual([...pd.kp], [0.8, 0.9, 1.0, 1.1], "the pd policy is rebuilt on the new gains");
  const hold = set("hold_damping", [0.02, 0.02, 0.02, 0.02]);
  assert.equal(hold.successful, true, hold.reason);
  assert.deepEqual(r.arm.app.stack.gains.holdDamping, [0.02, 0.02, 0.02, 0.02]);
});
