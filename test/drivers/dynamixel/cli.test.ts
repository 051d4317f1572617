/**
 * The Dynamixel driver through the real command, as a subprocess, on the servo-bus emulator behind
 * a socat pty pair: a whole episode with `mbpo-arm run --driver dynamixel`, injected faults (a
 * corrupted CRC, dropped replies, a hardware alert, the port closing) each ending in a latched safe
 * stop with torque off within a checked time and exit code 3, never a crash; Ctrl-C, a killed
 * process and process.exit all leaving the servos stopped; `dynamixel scan` and `calibrate`.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { REST_TIMEOUT } from "../../../src/app/hold.js";
import {
  type JointCalibration,
  loadCalibration,
  parseCalibration,
} from "../../../src/drivers/dynamixel/calibration.js";
import { type ServoModel, X_SERIES } from "../../../src/drivers/dynamixel/control-table.js";
import { loadUrdf } from "../../../src/robot/urdf.js";
import { packageRoot } from "../../../src/util/paths.js";
import { missingDependency, SOCAT } from "../../support/system.js";
import { atNormalPriority, PtyPair, ServoBusEmulator } from "./emulator.js";

/** Log files and calibration outputs of this file's runs, removed at the end. */
const scratch = mkdtempSync(join(tmpdir(), "mbpo-dxl-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const root = packageRoot();
const main = join(root, "dist", "src", "cli", "main.js");
const calibrationFile = join(root, "calibration", "arm.yaml");
const model = loadUrdf(join(root, "urdf", "arm.urdf"));
const jointNames = model.joints.map((j) => j.name);
const shipped = loadCalibration(calibrationFile, jointNames);

interface Cli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[], options: { stdin?: boolean } = {}): Cli {
  const [command, argv] = atNormalPriority(process.execPath, [main, ...args]);
  const child = spawn(command, argv, {
    stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    env: { ...process.env, MBPO_ARM_LOG_DIR: scratch },
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function exitWithin(c: Cli, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      c.child.kill("SIGKILL");
      reject(new Error(`the command did not exit within ${ms} ms; stderr:\n${c.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([c.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function withBus(
  servos: readonly JointCalibration[],
  body: (pair: PtyPair, emu: ServoBusEmulator) => Promise<void>,
) {
  const pair = await PtyPair.create();
  const emu = new ServoBusEmulator(model, servos);
  await emu.listen(pair.servoPath);
  try {
    await body(pair, emu);
  } finally {
    await emu.close();
    await pair.close();
  }
}

/**
 * The safety filter's stale-state watchdog is relaxed in these runs so that on a loaded test machine
 * the fault that latches is the one the driver detects, not a late tick.
 */
const runArgs = (
  port: string,
  episodes: number,
  options: { staleTimeout?: number; steps?: number; policy?: string } = {},
) => [
  "run",
  "--driver",
  "dynamixel",
  "--port",
  port,
  "--calibration",
  calibrationFile,
  "--policy",
  options.policy ?? "pd",
  "--episodes",
  String(episodes),
  "--json",
  "--no-log-file",
  "--no-transition-log",
  "-p",
  `safety.stale_timeout=${options.staleTimeout ?? 0.5}`,
  "-p",
  `task.episode_steps=${options.steps ?? 40}`,
];

/** Starts a long run and waits until the arm is under control (torque on, ticks flowing). */
async function startRun(pair: PtyPair, emu: ServoBusEmulator): Promise<Cli> {
  const c = cli(runArgs(pair.driverPath, 1000));
  await waitFor(
    "the run to take control of the arm",
    () => emu.servos.every((s) => emu.torqueOn(s.id)) && emu.counts.syncReads > 25,
    15_000,
  ).catch((e) => {
    c.child.kill("SIGKILL");
    throw new Error(`${e.message}; stderr:\n${c.stderr()}`);
  });
  return c;
}

/**
 * Injects a fault mid-run and checks: the fault is noticed within boundMs; the servos then get the
 * safe stop (torque on) until the arm is at rest, at most REST_TIMEOUT s, and only then torque
 * goes off; exit code 3, the cause named, no stack.
 */
async function faultEndsInSafeStop(
  t: { diagnostic: (message: string) => void },
  inject: (pair: PtyPair, emu: ServoBusEmulator) => void | Promise<void>,
  cause: RegExp,
  detectMs: number,
): Promise<void> {
  // The rest timeout is wall-clock time in the run, plus up to a second of a loaded machine's slack.
  const boundMs = detectMs + REST_TIMEOUT * 1000 + 1000;
  await withBus(shipped.joints, async (pair, emu) => {
    const c = await startRun(pair, emu);
    const injectedAt = emu.nowMs();
    await inject(pair, emu);
    await waitFor(
      "every servo's output to stop",
      () => emu.allOutputsOffAtMs() !== undefined,
      boundMs + 3000,
    );
    const stoppedAfter = emu.allOutputsOffAtMs()! - injectedAt;
    if (!pair.closed) {
      // With the link up, torque goes off by a torque-enable write, before any watchdog would act.
      for (const s of emu.servos) assert.equal(emu.torqueLog.filter((e) => e.id === s.id).at(-1)?.on, false);
    }
    t.diagnostic(
      `every servo's output stopped ${stoppedAfter.toFixed(0)} ms after the fault (bound ${boundMs} ms)`,
    );
    const { code, signal } = await exitWithin(c, 10_000);
    const stderr = c.stderr();
    assert.equal(signal, null, `no crash by signal; stderr:\n${stderr}`);
    assert.equal(code, 3, `exit code 3 (a latched safety fault); stderr:\n${stderr}`);
    assert.match(stderr, /safety fault latched: driver: /);
    assert.match(stderr, cause);
    assert.doesNotMatch(stderr, /\n\s+at .*\(.*:\d+:\d+\)/, "no stack trace");
    const summary = JSON.parse(c.stdout().trim().split("\n").at(-1)!);
    assert.equal(summary.type, "summary");
    assert.match(summary.fault, cause);
    assert.ok(
      stoppedAfter <= boundMs,
      `servos stopped ${stoppedAfter.toFixed(0)} ms after the fault (bound ${boundMs} ms)`,
    );
  });
}

describe("mbpo-arm with the dynamixel driver on an emulated servo bus", () => {
  // Skipped, naming the package, where socat is missing (a failure under CI: see test/support).
  const socatMissing = missingDependency(SOCAT);

  it("runs a whole episode through `run --driver dynamixel`, then turns torque off", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await withBus(shipped.joints, async (pair, emu) => {
      const c = cli(runArgs(pair.driverPath, 1));
      const { code } = await exitWithin(c, 30_000);
      assert.equal(code, 0, c.stderr());
      const lines = c
        .stdout()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        lines.map((l) => l.type),
        ["episode", "summary"],
      );
      assert.equal(lines[0].steps, 40);
      assert.equal(lines[1].fault, undefined);
      assert.ok(Number.isFinite(lines[0].finalDistance));
      // Every tick went over the bus: the reset move plus 40 steps, each one SYNC_WRITE + SYNC_READ.
      assert.ok(emu.counts.syncWrites >= 40 && emu.counts.syncReads >= 40, JSON.stringify(emu.counts));
      for (const s of emu.servos) {
        const events = emu.torqueLog.filter((e) => e.id === s.id).map((e) => e.on);
        assert.deepEqual(events, [true, false], `servo ${s.id}: torque on once, then off`);
      }
    });
  });

  it("20 episodes on a noisy bus (3% of replies dropped, 3% damaged, 3% behind garbage) end without a fault", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await withBus(shipped.joints, async (pair, emu) => {
      emu.setLineNoise({ drop: 0.03, corrupt: 0.03, garbage: 0.03, seed: 12 });
      // A stale timeout of 0.2 s, not the shipped 0.1: on a loaded machine a late tick alone can pass
      // 0.1 s (the driver test checks the state's age under the same noise in-process). Without the
      // retries, a lost reply was waited out (103 ms on a pty) and three such ticks latched a fault:
      // that fails here within a few episodes.
      // The PD policy, so that the arm moves. A retried read (after the 35 ms read timeout on a pty)
      // puts the state two or more control periods behind; with the PD tuned by hand before the
      // gains were derived (kp 4, kd 0.3 at 50 Hz on the wrist's I = 0.0115 kg·m²: spectral radius
      // 0.87 one period late, 1.09 two periods late) the velocity watchdog latched here in 5 of 13
      // runs under PD and, more rarely, in the reset moves under the zero policy (CI, 2026-12-03).
      // The derived gains are stable with the state up to two periods late (arm-gains.ts): 0
      // faults in 40 runs, two at a time, under PD.
      const started = performance.now();
      const c = cli(runArgs(pair.driverPath, 20, { staleTimeout: 0.2, steps: 15, policy: "pd" }));
      const { code } = await exitWithin(c, 60_000);
      const lines = c
        .stdout()
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l));
      const summary = lines.at(-1);
      const { dropped, corrupted, garbage } = emu.injected;
      t.diagnostic(
        `${lines.length - 1} episodes in ${((performance.now() - started) / 1000).toFixed(1)} s over ` +
          `${emu.counts.syncReads} sync reads and ${emu.counts.replies} replies: ${dropped} dropped, ` +
          `${corrupted} damaged, ${garbage} behind garbage; fault: ${summary?.fault ?? "none"}`,
      );
      assert.equal(summary?.fault, undefined, `no fault; stderr:\n${c.stderr()}\nstdout:\n${c.stdout()}`);
      assert.equal(code, 0, c.stderr());
      assert.equal(lines.filter((l) => l.type === "episode").length, 20);
      assert.ok(dropped > 5 && corrupted > 5 && garbage > 5, JSON.stringify(emu.injected));
    });
  });

  it("a hardware alert latches the safe stop, which brings the arm to rest before torque goes off", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await faultEndsInSafeStop(
      t,
      (_pair, emu) => emu.raiseHardwareError(13, 0x20),
      /joint "joint3" \(servo ID 13\): hardware alert: overload error/,
      300,
    );
  });

  it("replies with a corrupted CRC latch the safe stop; torque goes off once the arm is at rest", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await faultEndsInSafeStop(
      t,
      (_pair, emu) => {
        emu.faults.corruptCrc = true;
      },
      /damaged replies on the bus \(CRC mismatch\)/,
      1000,
    );
  });

  it("a servo that stops replying latches the safe stop; torque goes off once the arm is at rest", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await faultEndsInSafeStop(
      t,
      (_pair, emu) => {
        emu.faults.silent.add(12);
      },
      /joint "joint2" \(servo ID 12\) stopped answering/,
      1000,
    );
  });

  it("the port closing latches the safe stop; the servos' bus watchdog stops them", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    // Nothing can reach the servos once the link is gone: their own watchdog must stop them. The
    // driver sets it to 2.5 times a tick's three state-read attempts on a pty (0.28 s; 35 ms each).
    await faultEndsInSafeStop(t, (pair) => pair.close(), /the serial link to the servos is gone/, 280 + 200);
  });

  it("Ctrl-C stops the run and turns torque off", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await withBus(shipped.joints, async (pair, emu) => {
      const c = await startRun(pair, emu);
      const at = emu.nowMs();
      c.child.kill("SIGINT");
      const { code } = await exitWithin(c, 10_000);
      assert.equal(code, 0, c.stderr());
      assert.match(c.stderr(), /SIGINT: stopping safely/);
      const off = emu.allOutputsOffAtMs();
      assert.ok(off !== undefined && off - at < 1000, "torque off within 1 s of Ctrl-C");
      // Off by a torque-enable write (not left to the watchdog).
      for (const s of emu.servos) assert.equal(emu.torqueLog.filter((e) => e.id === s.id).at(-1)?.on, false);
    });
  });

  it("a killed process leaves the servos to their bus watchdog, which stops them", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await withBus(shipped.joints, async (pair, emu) => {
      const c = await startRun(pair, emu);
      const watchdogMs = emu.servos[0].table[X_SERIES.busWatchdog.address] * 20;
      const at = emu.nowMs();
      c.child.kill("SIGKILL");
      await c.exited;
      await waitFor("the watchdog", () => emu.allOutputsOffAtMs() !== undefined, 2000);
      const after = emu.allOutputsOffAtMs()! - at;
      t.diagnostic(`the watchdog stopped every servo ${after.toFixed(0)} ms after the kill`);
      assert.ok(
        after < watchdogMs + 200,
        `stopped ${after.toFixed(0)} ms after the kill (watchdog ${watchdogMs} ms)`,
      );
    });
  });

  it("process.exit without stop() still turns torque off (the exit hook writes the torque-off packet)", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    await withBus(shipped.joints, async (pair, emu) => {
      const script = `
        import { loadUrdf } from ${JSON.stringify(join(root, "dist/src/robot/urdf.js"))};
        import { createDynamixelDriver } from ${JSON.stringify(join(root, "dist/src/drivers/dynamixel/index.js"))};
        const model = loadUrdf(${JSON.stringify(join(root, "urdf/arm.urdf"))});
        const d = createDynamixelDriver({ port: ${JSON.stringify(pair.driverPath)}, baud: 1000000, calibration: ${JSON.stringify(calibrationFile)} }, model);
        await d.start();
        d.sendEffort(new Float64Array(4));
        await new Promise((r) => setTimeout(r, 30));
        process.exit(7);
      `;
      const child = spawn(...atNormalPriority(process.execPath, ["--input-type=module", "-e", script]), {
        stdio: "inherit",
      });
      const code = await new Promise((r) => child.on("exit", r));
      assert.equal(code, 7);
      await waitFor("torque off", () => emu.allOutputsOffAtMs() !== undefined, 2000);
      for (const s of emu.servos) {
        const last = emu.torqueLog.filter((e) => e.id === s.id).at(-1);
        assert.equal(last?.on, false, `servo ${s.id}: torque-enable written 0 (not a watchdog stop)`);
      }
    });
  });

  it("`dynamixel scan` lists the servos, and flags one without current control by name", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    const xl430: ServoModel = { ...shipped.joints[0].model, name: "XL430-W250", modelNumber: 1060 };
    const servos = [...shipped.joints, { ...shipped.joints[0], id: 3, model: xl430 }];
    await withBus(servos, async (pair) => {
      const json = cli(["dynamixel", "scan", "--port", pair.driverPath, "--json"]);
      assert.equal((await exitWithin(json, 10_000)).code, 0, json.stderr());
      const r = JSON.parse(json.stdout());
      assert.deepEqual(
        r.servos.map((s: { id: number; model: string; currentMode: boolean }) => [
          s.id,
          s.model,
          s.currentMode,
        ]),
        [
          [3, "XL430-W250", false],
          [11, "XM430-W350", true],
          [12, "XM430-W350", true],
          [13, "XM430-W350", true],
          [14, "XM430-W350", true],
        ],
      );
      const text = cli(["dynamixel", "scan", "--port", pair.driverPath]);
      assert.equal((await exitWithin(text, 10_000)).code, 0);
      assert.match(text.stdout(), /5 servos on .* at 1000000 baud/);
      assert.match(
        text.stdout(),
        /ID {3}3 {2}XL430-W250 .*current mode: NO \(XL430-W250 has no current \(torque\) control mode/,
      );
    });
  });

  it("`calibrate` records zero offsets and directions from a guided session and writes a valid file", async (t) => {
    if (socatMissing) return t.skip(socatMissing);
    // The "real" arm: offsets and directions the session must discover.
    const truth = shipped.joints.map((j, i) => ({
      ...j,
      zeroOffset: [2000, 2150, 1890, 2300][i],
      direction: ([1, -1, -1, 1] as const)[i],
    }));
    await withBus(truth, async (pair, emu) => {
      emu.paused = true; // the user holds the arm where they put it
      const output = join(mkdtempSync(join(scratch, "dxl-cal-")), "arm.yaml");
      const c = cli(["calibrate", "--port", pair.driverPath, "--output", output], { stdin: true });
      const prompts = () => c.stdout().split("Press Enter").length - 1;
      const answer = async (step: number, pose: number[]) => {
        await waitFor(`prompt ${step}`, () => prompts() >= step, 10_000).catch((e) => {
          throw new Error(`${e.message}; stdout:\n${c.stdout()}\nstderr:\n${c.stderr()}`);
        });
        emu.sim.setState(pose);
        c.child.stdin!.write("\n");
      };
      await answer(1, [0, 0, 0, 0]);
      for (let i = 0; i < 4; i++)
        await answer(
          i + 2,
          [0, 1, 2, 3].map((k) => (k === i ? 0.35 : 0)),
        );
      const { code } = await exitWithin(c, 10_000);
      assert.equal(code, 0, c.stderr());
      assert.ok(
        emu.servos.every((s) => !emu.torqueOn(s.id)),
        "torque stays off",
      );
      const written = parseCalibration(readFileSync(output, "utf8"), output, jointNames);
      assert.deepEqual(
        written.joints.map((j) => [j.joint, j.id, j.model.name, j.zeroOffset, j.direction]),
        truth.map((j) => [j.joint, j.id, j.model.name, j.zeroOffset, j.direction]),
      );
      assert.ok(written.joints.every((j) => j.currentLimit > 0 && j.torqueConstant === 1.78));
    });
  });
});
