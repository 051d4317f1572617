/**
 * Settings precedence through the real CLI: defaults < --config < -p key=value < the command's own
 * flags, and a flag that was not given overrides nothing. Every key that also has a flag is set
 * with -p to a value the command must act on (refuse, or open): a dropped -p would run the
 * simulator with the defaults and exit 0.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { packageRoot } from "../../src/util/paths.js";

const main = join(packageRoot(), "dist", "src", "cli", "main.js");
const scratch = mkdtempSync(join(tmpdir(), "mbpo-settings-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], {
    encoding: "utf8",
    timeout: 60_000,
    input: "",
    env: { ...process.env, MBPO_ARM_LOG_DIR: join(scratch, "log"), MBPO_ARM_RUNS_DIR: join(scratch, "runs") },
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

const quick = ["--no-log-file", "--no-transition-log", "-p", "task.episode_steps=3"];
const runArgs = (...more: string[]) => ["run", "--episodes", "1", ...quick, ...more];

/** [-p setting, what the error must name] for every setting `run` also has a flag for. */
const RUN_SETTINGS: Array<[string[], RegExp]> = [
  [["-p", "driver=foo"], /parameter "driver"/],
  [["-p", "urdf=/nonexistent/robot.urdf"], /\/nonexistent\/robot\.urdf/],
  [["-p", "task.name=nope"], /nope/],
  [["-p", "seed=-1"], /parameter "seed"/],
  [["-p", "sim.realtime=maybe"], /parameter "sim\.realtime"/],
  [["-p", "gravity_compensation=7"], /parameter "gravity_compensation"/],
  [["-p", "driver=dynamixel", "-p", "dynamixel.port=/nonexistent/ttyFOO"], /\/nonexistent\/ttyFOO/],
  [["-p", "dynamixel.baud=0"], /parameter "dynamixel\.baud"/],
  [
    ["-p", "driver=dynamixel", "-p", "dynamixel.calibration=/nonexistent/cal.yaml"],
    /\/nonexistent\/cal\.yaml/,
  ],
];

describe("settings precedence: defaults < --config < -p < flags", () => {
  for (const [param, names] of RUN_SETTINGS) {
    it(`run ${param.join(" ")} is obeyed (exit 1 naming it), not dropped`, () => {
      const r = cli(runArgs(...param));
      assert.equal(r.code, 1, `exit 1; stderr:\n${r.stderr}`);
      assert.match(r.stderr, names);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line:\n${r.stderr}`);
    });
  }

  it("--baud takes only a rate the servos offer, on run and on dynamixel scan", () => {
    for (const args of [
      runArgs("--baud", "12"),
      ["dynamixel", "scan", "--port", "/nonexistent/tty", "--baud", "7"],
    ]) {
      const r = cli(args);
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /--baud must be one of 9600, 57600, .*4500000, got (12|7)/);
    }
  });

  it("an explicit flag beats -p for the same setting; -p beats the default", () => {
    const r = cli(
      runArgs(
        "-p",
        "driver=dynamixel",
        "-p",
        "dynamixel.port=/nonexistent/ttyA",
        "--port",
        "/nonexistent/ttyB",
      ),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\/nonexistent\/ttyB/);
    assert.doesNotMatch(r.stderr, /ttyA/);
    const flag = cli(runArgs("-p", "driver=dynamixel", "--driver", "sim"));
    assert.equal(flag.code, 0, `--driver sim beats -p driver=dynamixel; stderr:\n${flag.stderr}`);
  });

  it("train, env serve and bootstrap obey -p for their flagged settings too", () => {
    const train = cli([
      "train",
      "--steps",
      "10",
      "--no-log-file",
      "--out",
      join(scratch, "t"),
      "-p",
      "driver=foo",
    ]);
    assert.equal(train.code, 1, train.stderr);
    assert.match(train.stderr, /parameter "driver"/);
    const env = cli(["env", "serve", "--no-log-file", "-p", "urdf=/nonexistent/env.urdf"]);
    assert.equal(env.code, 1, env.stderr);
    assert.match(env.stderr, /\/nonexistent\/env\.urdf/);
    const boot = cli([
      "bootstrap",
      "--no-log-file",
      "--bag",
      "/nonexistent/bag.mcap",
      "--out",
      join(scratch, "b"),
      "-p",
      "urdf=/nonexistent/boot.urdf",
    ]);
    assert.equal(boot.code, 1, boot.stderr);
    assert.match(boot.stderr, /\/nonexistent\/boot\.urdf/);
  });
});

describe("console colour", () => {
  const noColourEnv = { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined };
  const run = (env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [main, ...runArgs("-p", "driver=foo")], {
      encoding: "utf8",
      env: { ...env, MBPO_ARM_LOG_DIR: join(scratch, "log") },
    });

  it("a piped stderr gets no ANSI codes; FORCE_COLOR brings colour back, NO_COLOR keeps it off", () => {
    const plain = spawnSync(process.execPath, [main, ...runArgs("--policy", "zero")], {
      encoding: "utf8",
      env: { ...noColourEnv, MBPO_ARM_LOG_DIR: join(scratch, "log") },
    });
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr, /\[info\]/);
    assert.equal(plain.stderr.includes("\x1b["), false, "no ANSI escape");
    const forced = spawnSync(process.execPath, [main, ...runArgs("--policy", "zero")], {
      encoding: "utf8",
      env: { ...noColourEnv, FORCE_COLOR: "1", MBPO_ARM_LOG_DIR: join(scratch, "log") },
    });
    assert.ok(forced.stderr.includes("\x1b["), "coloured with FORCE_COLOR");
    assert.equal(run({ ...noColourEnv, NO_COLOR: "1" }).stderr.includes("\x1b["), false);
  });
});

describe("dynamics as a filter", () => {
  it("a reader that closes the pipe early (dynamics | head -1) ends it quietly, exit 0", () => {
    const states = "0 0 0 0 0 0 0 0\n".repeat(20_000);
    const script = `node ${JSON.stringify(main)} dynamics --urdf ${JSON.stringify(join(packageRoot(), "urdf/arm.urdf"))} | head -1 >/dev/null; echo "status \${PIPESTATUS[0]}"`;
    const r = spawnSync("bash", ["-c", script], { input: states, encoding: "utf8", timeout: 30_000 });
    assert.match(r.stdout, /status 0/, `stderr:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /EPIPE/);
  });
});
