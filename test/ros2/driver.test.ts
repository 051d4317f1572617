/**
 * The ROS 2 driver on the fake rclnodejs: joint states mapped by name onto the URDF's order,
 * extra joints ignored, a missing joint or a malformed message rejected with a line naming it,
 * empty velocity or effort arrays tolerated, header stamps used, commands published in the
 * effort controller's order.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Ros2Driver } from "../../src/drivers/ros2/driver.js";
import { jointOrder } from "../../src/drivers/ros2/joint-map.js";
import type { Float64MultiArrayMsg, JointStateMsg } from "../../src/drivers/ros2/rclnodejs.js";
import { loadRclnodejs, timeSeconds, toStamp } from "../../src/drivers/ros2/rclnodejs.js";
import { StandaloneRos2Driver } from "../../src/drivers/ros2/standalone.js";
import { FakeRclnodejs } from "./fake-rclnodejs.js";

const JOINTS = ["joint1", "joint2", "joint3", "joint4"];

async function rig(controllerJoints?: string[]) {
  const rcl = new FakeRclnodejs();
  await rcl.init(undefined, []);
  const node = rcl.createNode("mbpo_arm");
  const problems: string[] = [];
  const driver = new Ros2Driver({
    rcl,
    node,
    jointNames: JOINTS,
    controllerJoints,
    onProblem: (p) => problems.push(p),
  });
  await driver.start();
  return { rcl, node, driver, problems };
}

function jointState(
  names: string[],
  position: number[],
  velocity: number[] = [],
  effort: number[] = [],
  stamp = 12.5,
): JointStateMsg {
  return {
    header: { stamp: toStamp(stamp), frame_id: "" },
    name: names,
    position: Float64Array.from(position),
    velocity: Float64Array.from(velocity),
    effort: Float64Array.from(effort),
  };
}

test("subscribes /joint_states with sensor-data QoS and advertises the effort controller's topic", async () => {
  const { node } = await rig();
  const sub = node.subscriptions.find((s) => s.topic === "/joint_states");
  assert.ok(sub, "no /joint_states subscription");
  assert.equal(sub.type, "sensor_msgs/msg/JointState");
  assert.equal(sub.options.qos, "qos_profile_sensor_data");
  assert.equal(node.publisherTypes.get("/effort_controller/commands"), "std_msgs/msg/Float64MultiArray");
});

test("joints are mapped by name onto the URDF order; extra joints are ignored", async () => {
  const { node, driver, problems } = await rig();
  assert.equal(driver.readState(), undefined, "a state before any message");
  node.deliver(
    "/joint_states",
    jointState(
      ["gripper", "joint3", "joint1", "joint4", "joint2"],
      [0.9, 0.3, 0.1, 0.4, 0.2],
      [9, 3, 1, 4, 2],
      [90, 30, 10, 40, 20],
    ),
  );
  const s = driver.readState();
  assert.ok(s);
  assert.deepEqual(Array.from(s.position), [0.1, 0.2, 0.3, 0.4]);
  assert.deepEqual(Array.from(s.velocity), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(s.effort), [10, 20, 30, 40]);
  assert.equal(s.stamp, 12.5, "the header stamp is the state's time");
  assert.deepEqual(problems, []);
  // A reordered name list is re-mapped.
  node.deliver(
    "/joint_states",
    jointState(["joint4", "joint3", "joint2", "joint1"], [4, 3, 2, 1], [], [], 13),
  );
  assert.deepEqual(Array.from(driver.readState()!.position), [1, 2, 3, 4]);
});

test("a missing joint is rejected with its name and the state is not updated", async () => {
  const { node, driver, problems } = await rig();
  node.deliver("/joint_states", jointState(JOINTS, [0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], [], 1));
  node.deliver("/joint_states", jointState(["joint1", "joint2", "joint4"], [1, 2, 4], [0, 0, 0], [], 2));
  assert.equal(problems.length, 1);
  assert.match(problems[0], /lacks joint "joint3"/);
  assert.deepEqual(Array.from(driver.readState()!.position), [0.1, 0.2, 0.3, 0.4]);
  assert.equal(driver.readState()!.stamp, 1, "the old state keeps its old stamp, so it goes stale");
  assert.equal(driver.rejected, 1);
});

test("malformed messages are rejected, one line each", async () => {
  const { node, driver, problems } = await rig();
  node.deliver("/joint_states", jointState(JOINTS, [0.1, 0.2, 0.3])); // short positions
  node.deliver("/joint_states", jointState(JOINTS, [0.1, 0.2, 0.3, 0.4], [1, 2])); // short velocities
  node.deliver("/joint_states", jointState(JOINTS, [0.1, 0.2, 0.3, 0.4], [], [1])); // short efforts
  node.deliver("/joint_states", jointState([...JOINTS, "joint1"], [0.1, 0.2, 0.3, 0.4, 0.5])); // duplicate
  const noStamp = jointState(JOINTS, [0, 0, 0, 0]);
  (noStamp.header.stamp as { sec: number }).sec = Number.NaN;
  node.deliver("/joint_states", noStamp);
  assert.equal(driver.readState(), undefined);
  assert.equal(problems.length, 5);
  assert.match(problems[0], /3 positions for 4 names/);
  assert.match(problems[1], /2 velocities for 4 names/);
  assert.match(problems[2], /1 efforts for 4 names/);
  assert.match(problems[3], /"joint1" appears twice/);
  assert.match(problems[4], /stamp/);
  for (const p of problems) assert.ok(!p.includes("\n"), "one line");
});

test("an empty velocity array: velocities are estimated from positions and stamps", async () => {
  const { node, driver } = await rig();
  node.deliver("/joint_states", jointState(JOINTS, [0, 0, 0, 0], [], [], 10.0));
  assert.deepEqual(Array.from(driver.readState()!.velocity), [0, 0, 0, 0]);
  node.deliver("/joint_states", jointState(JOINTS, [0.01, -0.02, 0, 0.03], [], [], 10.01));
  const v = Array.from(driver.readState()!.velocity);
  const expected = [1, -2, 0, 3];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(v[i] - expected[i]) < 1e-6, `velocity ${i}: ${v[i]}`);
  assert.equal(driver.velocityEstimated, true);
  assert.deepEqual(Array.from(driver.readState()!.effort), [0, 0, 0, 0], "no efforts: zero");
});

test("non-finite values are passed on for the safety watchdog to judge", async () => {
  const { node, driver, problems } = await rig();
  node.deliver(
    "/joint_states",
    jointState(JOINTS, [0, Number.NaN, 0, 0], [0, 0, Number.POSITIVE_INFINITY, 0]),
  );
  assert.ok(Number.isNaN(driver.readState()!.position[1]));
  assert.equal(driver.readState()!.velocity[2], Number.POSITIVE_INFINITY);
  assert.deepEqual(problems, []);
});

test("efforts are published in the controller's joint order as Float64MultiArray", async () => {
  const { node, driver } = await rig(["joint4", "joint2", "joint1", "joint3"]);
  driver.sendEffort(Float64Array.from([1, 2, 3, 4]));
  const msg = node.last<Float64MultiArrayMsg>("/effort_controller/commands");
  assert.ok(msg);
  assert.ok(msg.data instanceof Float64Array, "data is a Float64Array");
  assert.deepEqual(Array.from(msg.data), [4, 2, 1, 3]);
  assert.deepEqual(msg.layout, { dim: [], data_offset: 0 });
  await driver.stop();
  assert.deepEqual(
    Array.from(node.last<Float64MultiArrayMsg>("/effort_controller/commands")!.data),
    [0, 0, 0, 0],
  );
  driver.sendEffort(Float64Array.from([1, 2, 3, 4]));
  assert.deepEqual(
    Array.from(node.last<Float64MultiArrayMsg>("/effort_controller/commands")!.data),
    [0, 0, 0, 0],
    "nothing is sent after stop()",
  );
});

test("a controller joint list that does not match the URDF is an error naming the joint", () => {
  assert.throws(
    () => jointOrder(JOINTS, ["joint1", "joint2", "joint3", "elbow"], "effort controller joints"),
    /"elbow"/,
  );
  assert.throws(
    () => jointOrder(JOINTS, ["joint1", "joint2", "joint3"], "effort controller joints"),
    /3 joints/,
  );
  assert.throws(() => jointOrder(JOINTS, ["joint1", "joint2", "joint3", "joint3"], "x"), /listed twice/);
});

test("time: the node's clock (bigint nanoseconds) in seconds, at full precision", async () => {
  const { rcl, driver } = await rig();
  rcl.clockNs = 1_732_000_000_123_456_789n;
  assert.equal(driver.now(), 1_732_000_000 + 0.123456789);
  assert.equal(timeSeconds({ nanoseconds: 1_500_000_000n }), 1.5);
  assert.deepEqual(toStamp(3.25), { sec: 3, nanosec: 250_000_000 });
});

test("without a sourced ROS 2 or without rclnodejs, loading fails with one line saying what to do", async () => {
  const saved = process.env.AMENT_PREFIX_PATH;
  try {
    delete process.env.AMENT_PREFIX_PATH;
    await assert.rejects(loadRclnodejs(), (err: Error) => {
      assert.match(err.message, /source a ROS 2 distro/);
      assert.match(err.message, /npm install rclnodejs/);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
    process.env.AMENT_PREFIX_PATH = "/opt/ros/humble";
    await assert.rejects(loadRclnodejs("rclnodejs-not-installed-here"), (err: Error) => {
      assert.match(err.message, /rclnodejs is not available/);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.AMENT_PREFIX_PATH;
    else process.env.AMENT_PREFIX_PATH = saved;
  }
});

test("the standalone driver (run --driver ros2) waits for the first joint state, or fails naming the topic", async () => {
  const rcl = new FakeRclnodejs();
  const driver = new StandaloneRos2Driver({ jointNames: JOINTS, rcl, firstStateTimeout: 2 });
  const started = driver.start();
  await new Promise((r) => setTimeout(r, 30));
  const node = rcl.nodes[0];
  node.deliver("/joint_states", jointState(JOINTS, [0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0]));
  await started;
  assert.deepEqual(Array.from(driver.readState()!.position), [0.1, 0.2, 0.3, 0.4]);
  driver.sendEffort(Float64Array.from([1, 1, 1, 1]));
  await driver.stop();
  assert.deepEqual(
    Array.from(node.last<Float64MultiArrayMsg>("/effort_controller/commands")!.data),
    [0, 0, 0, 0],
  );
  assert.equal(rcl.isShutdown(), true);

  const silent = new StandaloneRos2Driver({
    jointNames: JOINTS,
    rcl: new FakeRclnodejs(),
    firstStateTimeout: 0.05,
  });
  await assert.rejects(silent.start(), /no usable joint state on \/joint_states within 0.05 s/);
});
