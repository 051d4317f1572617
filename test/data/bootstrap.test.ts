/**
 * Teleop bootstrap: a bag written the way rosbag2 writes it (see rosbag2-fixture.ts) imports into
 * exactly the transitions its ground truth implies, and bags that cannot be used get one-line errors.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { defaultConfig } from "../../src/config/config.js";
import { createControlStack } from "../../src/control/stack.js";
import { loadBootstrap } from "../../src/data/bootstrap.js";
import type { RealTransitionInput } from "../../src/mbpo/replay-buffer.js";
import { Kinematics } from "../../src/robot/kinematics.js";
import { type TeleopTruth, writeTeleopBag } from "./rosbag2-fixture.js";

const dir = mkdtempSync(join(tmpdir(), "mbpo-bootstrap-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const stack = createControlStack(defaultConfig());

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

/**
 * The transitions the truth implies: runs of consecutive present ticks, each cut into windows of
 * the task's episode length; goal = end-effector position at the window's last next state.
 */
function expectedTransitions(truth: TeleopTruth) {
  const kin = new Kinematics(stack.model);
  const ee = kin.linkIndex(stack.model.endEffector);
  const runs: number[][] = [];
  let run: number[] = [];
  for (let k = 0; k + 1 < truth.ticks; k++) {
    if (truth.present[k] && truth.present[k + 1]) run.push(k);
    else if (run.length > 0) {
      runs.push(run);
      run = [];
    }
  }
  if (run.length > 0) runs.push(run);
  const windows: number[][] = [];
  for (const r of runs) {
    for (let i = 0; i < r.length; i += stack.task.episodeSteps)
      windows.push(r.slice(i, i + stack.task.episodeSteps));
  }
  const out: { k: number; goal: Float64Array; terminated: boolean }[] = [];
  for (const w of windows) {
    const goal = new Float64Array(3);
    kin.update(truth.q[w[w.length - 1] + 1]);
    kin.linkPosition(ee, goal);
    for (const k of w) out.push({ k, goal, terminated: false });
  }
  return { windows: windows.length, transitions: out };
}

function checkAgainstTruth(got: RealTransitionInput[], truth: TeleopTruth) {
  const expected = expectedTransitions(truth);
  assert.equal(got.length, expected.transitions.length, "transition count");
  const obs = new Float32Array(stack.task.observationSize);
  const nextObs = new Float32Array(stack.task.observationSize);
  got.forEach((t, i) => {
    const { k, goal } = expected.transitions[i];
    const at = `transition ${i} (tick ${k})`;
    close(t.q, truth.q[k], 1e-9, `${at} q`);
    close(t.qd, truth.qd[k], 1e-9, `${at} qd`);
    close(t.nextQ, truth.q[k + 1], 1e-9, `${at} nextQ`);
    close(t.nextQd, truth.qd[k + 1], 1e-9, `${at} nextQd`);
    close(t.effort, truth.effort[k], 1e-9, `${at} effort`);
    close(t.action, truth.action[k], 1e-6, `${at} action`);
    close(t.goal, goal, 1e-9, `${at} goal`);
    stack.task.observe(truth.q[k], truth.qd[k], goal, obs);
    stack.task.observe(truth.q[k + 1], truth.qd[k + 1], goal, nextObs);
    close(t.obs, obs, 1e-6, `${at} obs`);
    close(t.nextObs, nextObs, 1e-6, `${at} nextObs`);
    const reward = stack.task.reward(obs, Float32Array.from(truth.action[k]), nextObs);
    assert.ok(Math.abs(t.reward - reward) < 1e-6, `${at} reward ${t.reward} vs ${reward}`);
    assert.equal(t.terminated, false);
  });
  return expected;
}

describe("teleop bootstrap from a rosbag2-style MCAP bag", () => {
  let truth: TeleopTruth;
  const bag = join(dir, "teleop.mcap");
  before(async () => {
    truth = await writeTeleopBag(bag, stack);
  });

  it("imports exactly the expected transitions (joint order, gripper, other topic, zstd+lz4, out of order, gap)", async () => {
    const result = await loadBootstrap(bag, stack);
    assert.equal(result.kind, "teleop");
    assert.equal(result.effortSource, "commands");
    assert.equal(result.read.problem, undefined);
    assert.equal(result.read.counts.get("/chatter"), 25);
    const expected = checkAgainstTruth(result.transitions, truth);
    // 260 ticks with a 10-tick gap: runs of 129 and 119 steps, cut at 100 steps.
    assert.equal(result.transitions.length, 248);
    assert.equal(result.segments, 2);
    assert.equal(result.episodes.length, expected.windows);
    assert.equal(result.episodes.length, 4);
    assert.equal(result.clippedActions, 0);
    // Windows end truncated; nothing terminates in reach.
    assert.deepEqual(
      result.episodes.map((e) => [e.rows, e.truncated[e.rows - 1]]),
      [
        [100, 1],
        [29, 1],
        [100, 1],
        [19, 1],
      ],
    );
  });

  it("without a command topic, takes the effort from JointState.effort", async () => {
    const file = join(dir, "no-commands.mcap");
    const t = await writeTeleopBag(file, stack, { withCommands: false });
    const result = await loadBootstrap(file, stack);
    assert.equal(result.effortSource, "joint-state-effort");
    checkAgainstTruth(result.transitions, t);
  });

  it("a joint missing from /joint_states is an error naming it", async () => {
    const file = join(dir, "missing-joint.mcap");
    await writeTeleopBag(file, stack, { jointStateNames: ["joint1", "joint2", "joint3", "gripper_joint"] });
    await assert.rejects(
      loadBootstrap(file, stack),
      /joint "joint4" is not in \/joint_states \(it has joint1, joint2, joint3, gripper_joint\)/,
    );
  });

  it("a command array of the wrong length names the topic and the fix", async () => {
    const result = loadBootstrap(bag, stack, {
      commandJoints: ["joint1", "joint2", "joint3", "joint4", "gripper"],
    });
    await assert.rejects(result, /has 4 values; expected 5 .*--command-joints/);
  });

  it("a topic that is not there is an error listing the topics", async () => {
    await assert.rejects(
      loadBootstrap(bag, stack, { jointStatesTopic: "/arm/joint_states" }),
      /no messages on \/arm\/joint_states.*\/joint_states \(250\)/,
    );
  });

  it("a .db3 bag gets told how to record MCAP or convert", async () => {
    const file = join(dir, "rosbag2_0.db3");
    writeFileSync(file, Buffer.concat([Buffer.from("SQLite format 3\0"), Buffer.alloc(100)]));
    await assert.rejects(loadBootstrap(file, stack), /sqlite3 bag.*-s mcap.*ros2 bag convert/);
  });

  it("a file that is not MCAP says so", async () => {
    const file = join(dir, "notes.mcap");
    writeFileSync(file, "hello, this is text\n");
    await assert.rejects(loadBootstrap(file, stack), /is not an MCAP file/);
  });
});
