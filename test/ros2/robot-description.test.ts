/**
 * The robot description read from the ROS graph: a transient-local std_msgs/String on the topic
 * the node is given, waited for (with a timeout, and cut short by a stop), checked, kept in a file
 * named by its content, and then the arm the node runs; without the parameter, nothing changes.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import type { Logger } from "../../src/cli/logger.js";
import { runNodeCommand } from "../../src/cli/node-command.js";
import { descriptionXml } from "../../src/robot/description.js";
import { MbpoArmNode } from "../../src/ros/node.js";
import {
  keepRobotDescription,
  receiveRobotDescription,
  robotDescriptionFromGraph,
} from "../../src/ros/robot-description.js";
import { packageRoot } from "../../src/util/paths.js";
import { FakeRclnodejs } from "./fake-rclnodejs.js";
import { quiet } from "./rig.js";

const SO100 = descriptionXml(resolve(packageRoot(), "urdf/so100.urdf.xacro")).xml;
let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "mbpo-descriptions-"));
  process.env["MBPO_ARM_DESCRIPTIONS_DIR"] = dir;
});
after(() => {
  delete process.env["MBPO_ARM_DESCRIPTIONS_DIR"];
  rmSync(dir, { recursive: true, force: true });
});

async function fakeNode(args: string[]) {
  const rcl = new FakeRclnodejs();
  await rcl.init(undefined, ["node", "main.js", "--ros-args", ...args]);
  return { rcl, node: rcl.createNode("mbpo_arm") };
}

test("without robot_description_topic the node subscribes to nothing and uses the urdf parameter", async () => {
  const { rcl, node } = await fakeNode([]);
  rcl.latch("/robot_description", { data: SO100 });
  assert.equal(await robotDescriptionFromGraph(rcl, node), undefined);
  assert.equal(node.subscriptions.length, 0);
  const arm = new MbpoArmNode(rcl, node, { mode: "run", driver: "sim", logger: quiet });
  assert.equal(arm.model.name, "mbpo_arm");
});

test("a latched description is read (reliable, transient-local), kept by content, and is the arm the node runs", async () => {
  const { rcl, node } = await fakeNode([
    "-p",
    "robot_description_topic:=/robot_description",
    "-p",
    "urdf:=urdf/arm.urdf",
  ]);
  rcl.latch("/robot_description", { data: SO100 });
  const got = await robotDescriptionFromGraph(rcl, node);
  assert.ok(got !== undefined);
  assert.equal(got.topic, "/robot_description");
  assert.match(got.path, /[0-9a-f]{16}\.urdf$/);
  assert.equal(readFileSync(got.path, "utf8"), SO100);
  assert.equal(node.subscriptions.length, 0, "the subscription is gone once the description came");
  // The same text is the same file.
  assert.equal(keepRobotDescription(SO100, "/robot_description"), got.path);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".partial")),
    [],
  );

  const arm = new MbpoArmNode(rcl, node, {
    mode: "run",
    driver: "sim",
    logger: quiet,
    description: got.path,
  });
  assert.equal(arm.model.dof, 5);
  assert.equal(arm.config.urdf, got.path, "-p urdf:=... does not override the graph's description");
  assert.equal(node.getParameter("urdf").value, got.path);
  assert.equal(node.descriptors.get("robot_description_topic")?.readOnly, true);
});

test("the QoS asked for is reliable, transient-local, keep-last 1; a description published later is taken too", async () => {
  const { rcl, node } = await fakeNode(["-p", "robot_description_topic:=arm/description"]);
  const pending = robotDescriptionFromGraph(rcl, node);
  await new Promise((r) => setImmediate(r));
  assert.equal(node.subscriptions.length, 1);
  const qos = node.subscriptions[0].options.qos as {
    history: number;
    depth: number;
    reliability: number;
    durability: number;
  };
  assert.deepEqual(
    [qos.history, qos.depth, qos.reliability, qos.durability],
    [
      rcl.QoS.HistoryPolicy.RMW_QOS_POLICY_HISTORY_KEEP_LAST,
      1,
      rcl.QoS.ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_RELIABLE,
      rcl.QoS.DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL,
    ],
  );
  assert.equal(node.deliver("/arm/description", { data: SO100 }), 1);
  const got = await pending;
  assert.equal(readFileSync(got!.path, "utf8"), SO100);
});

test("no description within the timeout, or a stop while waiting, is one line naming the topic, promptly", async () => {
  const { rcl, node } = await fakeNode([
    "-p",
    "robot_description_topic:=/robot_description",
    "-p",
    "robot_description_timeout:=0.2",
  ]);
  const t0 = performance.now();
  await assert.rejects(
    robotDescriptionFromGraph(rcl, node),
    /^Error: no robot description on \/robot_description within 0.2 s \(is robot_state_publisher running\?/,
  );
  const waited = performance.now() - t0;
  assert.ok(waited >= 190 && waited < 2000, `waited ${waited.toFixed(0)} ms`);
  assert.equal(node.subscriptions.length, 0);

  const stop = new AbortController();
  const source = { topic: "/robot_description", timeout: 60 };
  const pending = receiveRobotDescription(rcl, node, source, stop.signal);
  setTimeout(() => stop.abort(), 20);
  const t1 = performance.now();
  await assert.rejects(
    pending,
    /^Error: stopped while waiting for the robot description on \/robot_description$/,
  );
  assert.ok(performance.now() - t1 < 1000);
  assert.equal(node.subscriptions.length, 0);
});

test("a description that is empty, not XML or not a usable URDF is refused in one line naming the topic; nothing is kept", async () => {
  const before = readdirSync(dir).length;
  const bad: [string, RegExp][] = [
    ["", /^robot description on \/rd: the message is empty$/],
    ["<robot name='x'><link name='a'></robot>", /^robot description on \/rd: not well-formed XML at line 1/],
    ["not xml at all", /^robot description on \/rd: not well-formed XML/],
    [SO100.replace(/<mass value="[^"]+"/, '<mass value="-1"'), /robot description on \/rd.*mass/],
  ];
  for (const [xml, expected] of bad) {
    const { rcl, node } = await fakeNode(["-p", "robot_description_topic:=/rd"]);
    rcl.latch("/rd", { data: xml });
    await assert.rejects(robotDescriptionFromGraph(rcl, node), (err: Error) => {
      assert.match(err.message, expected);
      assert.equal(err.message.includes("\n"), false, err.message);
      return true;
    });
  }
  assert.equal(readdirSync(dir).length, before);
});

test("`mbpo-arm node` runs its episodes on the arm the graph describes (the twin, fake rclnodejs)", async () => {
  const rcl = new FakeRclnodejs();
  rcl.latch("/robot_description", { data: SO100 });
  const lines: string[] = [];
  const log = (line: unknown) => {
    lines.push(String(line));
  };
  const logger = { info: log, warn: log, error: log, debug: () => {} } as unknown as Logger;
  const outcome = await runNodeCommand({
    mode: "run",
    driver: "sim",
    policy: "zero",
    episodes: 1,
    autostart: true,
    exitWhenFinished: true,
    argv: [
      "node",
      "main.js",
      "--ros-args",
      "-p",
      "robot_description_topic:=/robot_description",
      "-p",
      "task.episode_steps:=10",
    ],
    logger,
    signal: new AbortController().signal,
    rcl,
  });
  assert.equal(outcome.faulted, false);
  const kept = lines.find((l) => l.startsWith("robot description from /robot_description, kept in "));
  assert.ok(kept !== undefined, lines.join("\n"));
  const path = kept.slice(kept.indexOf(" kept in ") + " kept in ".length);
  assert.ok(existsSync(path));
  assert.ok(
    lines.some((l) => /5 joints/.test(l)),
    `the node drives the description's 5 joints:\n${lines.join("\n")}`,
  );
  assert.equal(rcl.nodes[0].destroyed, true);
  assert.equal(rcl.isShutdown(), true);
});
