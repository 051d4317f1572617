/** The mbpo-arm command as a user runs it: a real subprocess, its stdout, stderr and exit code. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { packageRoot } from "../../src/util/paths.js";

const main = join(packageRoot(), "dist", "src", "cli", "main.js");
/** Logs and run directories of these runs go here, not under the user's ~/.mbpo-arm. */
const scratch = mkdtempSync(join(tmpdir(), "mbpo-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [main, ...args], {
    input,
    encoding: "utf8",
    env: { ...process.env, MBPO_ARM_LOG_DIR: join(scratch, "log"), MBPO_ARM_RUNS_DIR: join(scratch, "runs") },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("mbpo-arm CLI", () => {
  it("run --json prints one line per episode and a summary", () => {
    const r = cli([
      "run",
      "--driver",
      "sim",
      "--task",
      "reach",
      "--policy",
      "pd",
      "--episodes",
      "3",
      "--seed",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.type),
      ["episode", "episode", "episode", "summary"],
    );
    for (const e of lines.slice(0, 3)) {
      assert.equal(typeof e.return, "number");
      assert.equal(typeof e.success, "boolean");
      assert.equal(e.peakEffortFraction.length, 4);
      assert.ok(e.peakEffortFraction.every((p: number) => p >= 0 && p <= 1));
    }
    const summary = lines[3];
    assert.equal(summary.episodes, 3);
    assert.ok(summary.tick.medianUs > 0);
  });

  it("run prints human-readable episode lines", () => {
    const r = cli(["run", "--policy", "zero", "--episodes", "1", "--no-log-file"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /episode 1\/1 {2}return -?\d+\.\d\d {2}success (yes|no) {2}final distance \d+\.\d cm/,
    );
    assert.match(r.stderr, /1 episodes: success \d+%/);
  });

  it("a bad config key or value is one line naming it, with exit code 1", () => {
    const dir = mkdtempSync(join(scratch, "cfg-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "mbpo_arm:\n  ros__parameters:\n    safety:\n      effort_scal: 0.5\n");
    const r = cli(["run", "--config", file, "--episodes", "1", "--no-log-file"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `mbpo-arm: ${file}: unknown parameter "safety.effort_scal"`);
    const p = cli(["run", "-p", "control_rate_hz=-5", "--episodes", "1", "--no-log-file"]);
    assert.equal(p.code, 1);
    assert.match(p.stderr.trim(), /^mbpo-arm: -p: parameter "control_rate_hz": /);
  });

  it("a malformed URDF is one line naming the file and element", () => {
    const dir = mkdtempSync(join(scratch, "urdf-"));
    const file = join(dir, "broken.urdf");
    writeFileSync(
      file,
      '<robot name="x"><link name="a"/><joint name="j" type="hinge"><parent link="a"/><child link="b"/></joint><link name="b"/></robot>',
    );
    const r = cli(["run", "--urdf", file, "--episodes", "1", "--no-log-file"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /broken\.urdf.*joint.*"j".*hinge/);
  });

  it("dynamics reads states on stdin and prints M and bias per line", () => {
    const r = cli(
      ["dynamics", "--urdf", "urdf/arm.urdf"],
      "0 0.3 -0.5 0.2 0 0 0 0\n0.1 0.2 0.3 0.4 1 -1 0.5 0.2\n",
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    for (const l of lines) {
      assert.equal(l.M.length, 16);
      assert.equal(l.bias.length, 4);
      // A mass matrix is symmetric with a positive diagonal.
      for (let i = 0; i < 4; i++) {
        assert.ok(l.M[i * 4 + i] > 0);
        for (let j = 0; j < 4; j++) assert.ok(Math.abs(l.M[i * 4 + j] - l.M[j * 4 + i]) < 1e-12);
      }
    }
  });

  it("an unknown policy or driver is a clear error", () => {
    const r = cli(["run", "--policy", "magic", "--episodes", "1", "--no-log-file"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /magic/);
    const d = cli(["run", "--driver", "carrier-pigeon", "--episodes", "1"]);
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /carrier-pigeon/);
  });
});

describe("mbpo-arm identify", () => {
  it("fits an excitation log of a twin with a reality gap, reports what fell, and writes a URDF that loads", () => {
    const dir = join(scratch, "excite");
    const run = cli([
      "run",
      "--policy",
      "excite",
      "--reality",
      "realistic",
      "--seed",
      "3",
      "--episodes",
      "6",
      "--out",
      dir,
      "--no-log-file",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const urdf = join(scratch, "identified.urdf");
    const r = cli(["identify", join(dir, "transitions.mcap"), "--out", urdf, "--json", "--no-log-file"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
    // Each episode's first transition has no tick before it for the latency fit.
    assert.equal(report.samples + report.heldOut + report.skipped, 600);
    assert.ok(
      report.rank > 0 && report.rank < report.parameterCount && Number.isFinite(report.conditionNumber),
    );
    assert.ok(report.latencyPeriods >= 0 && report.latencyPeriods <= 1);
    const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
    assert.ok(
      sum(report.heldOutVelocityRms.identified) < sum(report.heldOutVelocityRms.nominal),
      `held-out error ${report.heldOutVelocityRms.identified} against the URDF's ${report.heldOutVelocityRms.nominal}`,
    );
    // The identified URDF drives the twin: `run` takes it as the node's description.
    const again = cli(["run", "--urdf", urdf, "--episodes", "1", "--no-transition-log", "--no-log-file"]);
    assert.equal(again.code, 0, again.stderr);
  });

  it("names the file that is not a log, in one line", () => {
    const bad = join(scratch, "not-a-log.mcap");
    writeFileSync(bad, "hello");
    const r = cli(["identify", bad, "--no-log-file"]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /not-a-log\.mcap/);
  });
});

describe("mbpo-arm describe", () => {
  it("prints what it derives for each shipped arm: joints, reach, home pose, per-joint gains, no warning", () => {
    for (const [file, dof, tool] of [
      ["urdf/arm.urdf", 4, "end_effector"],
      ["urdf/so100.urdf.xacro", 5, "gripper_tcp"],
      ["urdf/ur5e.urdf.xacro", 6, "tool0"],
      ["urdf/panda.urdf.xacro", 7, "panda_hand_tcp"],
    ] as const) {
      const r = cli(["describe", "--urdf", file, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const d = JSON.parse(r.stdout);
      assert.equal(d.dof, dof, file);
      assert.equal(d.toolFrame, tool, file);
      assert.deepEqual(d.warnings, [], file);
      assert.ok(d.toolAtHome[2] > 0.1, `${file}: tool above the table at home`);
      for (const j of d.joints) {
        assert.ok(
          j.home >= j.softLower && j.home <= j.softUpper,
          `${file} ${j.name}: home inside the soft range`,
        );
        assert.ok(j.gravityAtHome < 0.5, `${file} ${j.name}: gravity at home ${j.gravityAtHome}`);
        assert.ok(j.actionDamping > 0 && j.resetKp > 0 && j.resetKd > 0, `${file} ${j.name}`);
      }
    }
    const text = cli(["describe", "--urdf", "urdf/panda.urdf.xacro", "--tool-frame", "panda_link8"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /panda \(.*\): 7 moving joints, .* tool frame "panda_link8"/);
    assert.match(text.stdout, /gains at 50 Hz: all derived from the arm/);
  });

  it("a gain that would ring, or a broken xacro, is one line naming the joint or the construct", () => {
    const ring = cli(["describe", "-p", "action_damping=1.5"]);
    assert.equal(ring.code, 1);
    assert.equal(ring.stderr.trim().split("\n").length, 1, ring.stderr);
    assert.match(ring.stderr, /action_damping on joint "joint1"/);
    const bad = join(scratch, "bad.urdf.xacro");
    writeFileSync(bad, '<robot name="b" xmlns:xacro="http://www.ros.org/wiki/xacro"><xacro:arm/></robot>');
    const r = cli(["describe", "--urdf", bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /bad\.urdf\.xacro: <xacro:arm>: no macro "arm"/);
  });
});
