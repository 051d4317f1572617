/**
 * The Dynamixel bus over a pseudo-terminal at 1 Mbps, against the servo-bus emulator running in its
 * own process (four XM430-W350 servos with the simulator's physics behind them):
 *
 *  1. Round trip of one tick: SYNC_WRITE of four goal currents plus SYNC_READ of present current,
 *     velocity and position from four servos, back to back, timed from the write to the last reply.
 *  2. The highest control rate it sustains: the DynamixelDriver driven at a fixed rate (the way the
 *     control loop drives it: sendEffort, then readState at the next tick); a rate counts as
 *     sustained when at least 99% of ticks see a state newer than the previous tick's and at most 1%
 *     of commands had to wait for the bus to free up.
 *
 *  3. Line noise: the same tick (with the driver's two retries within the tick) and the driver at
 *     50 Hz with 0%, 3% (1% each) and 9% (3% each) of replies dropped, damaged or garbage-prefixed
 *     (seeded): retries, bad ticks, faults, tick times and the oldest state the control loop saw.
 *
 * A pty moves bytes as fast as the two processes and socat can hand them over; it does not impose
 * the 1 Mbps wire time, the servos' return delay or a USB adapter's latency. The wire time of the
 * same packets at 1 Mbps is printed beside the measurement (computed, not measured).
 *
 *   node dist/bench/dynamixel.js [--ticks N] [--noise-seconds S] [--json]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { DynamixelBus } from "../src/drivers/dynamixel/bus.js";
import { loadCalibration } from "../src/drivers/dynamixel/calibration.js";
import { STATE_BLOCK, X_SERIES } from "../src/drivers/dynamixel/control-table.js";
import { DynamixelDriver } from "../src/drivers/dynamixel/driver.js";
import { SerialTransport } from "../src/drivers/dynamixel/serial-transport.js";
import { PTY_LATENCY_MS } from "../src/drivers/dynamixel/transport.js";
import { loadUrdf } from "../src/robot/urdf.js";
import { packageRoot } from "../src/util/paths.js";
import { PtyPair } from "../test/drivers/dynamixel/emulator.js";

const BAUD = 1_000_000;
const root = packageRoot();
const ticks = Number(process.argv[process.argv.indexOf("--ticks") + 1] ?? 2000) || 2000;
const json = process.argv.includes("--json");
const noiseSeconds = Number(process.argv[process.argv.indexOf("--noise-seconds") + 1] ?? 6) || 6;
const model = loadUrdf(join(root, "urdf/arm.urdf"));
const calibration = loadCalibration(
  join(root, "calibration/arm.yaml"),
  model.joints.map((j) => j.name),
);
const ids = calibration.joints.map((j) => j.id);
const n = ids.length;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Bytes on the wire for one tick at four servos: sync write, sync read, and the replies. */
function tickBytes(): { tx: number; rx: number } {
  const syncWrite = 7 + 1 + 4 + n * (1 + 2) + 2;
  const syncRead = 7 + 1 + 4 + n + 2;
  const replies = n * (7 + 1 + 1 + STATE_BLOCK.size + 2);
  return { tx: syncWrite + syncRead, rx: replies };
}

async function startEmulator(pair: PtyPair, noise = 0): Promise<ChildProcess> {
  const f = String(noise);
  const child = spawn(
    process.execPath,
    [
      join(root, "dist/test/drivers/dynamixel/emulator-main.js"),
      "--port",
      pair.servoPath,
      ...(noise > 0 ? ["--drop", f, "--corrupt", f, "--garbage", f, "--seed", "12"] : []),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const [data] = (await once(child.stdout!, "data")) as [Buffer];
  if (!data.toString().includes("ready")) throw new Error(`emulator did not start: ${data}`);
  return child;
}

async function roundTrip(
  pair: PtyPair,
  count = ticks,
  retries = 0,
): Promise<{ times: number[]; failed: number; retries: number; timeoutMs: number }> {
  const bus = new DynamixelBus(await SerialTransport.open(pair.driverPath, BAUD), {
    latencyMs: PTY_LATENCY_MS,
  });
  const goal = new Uint8Array(2 * n);
  const block = new Uint8Array(STATE_BLOCK.size * n);
  const times: number[] = [];
  let failed = 0;
  let retried = 0;
  for (let k = 0; k < count + 100; k++) {
    const t0 = performance.now();
    bus.syncWrite(X_SERIES.goalCurrent.address, 2, ids, goal);
    const o = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, block, retries);
    const dt = performance.now() - t0;
    if (k < 100) continue; // the first 100 warm up the JIT and the pty
    if (!o.ok) failed++;
    retried += o.attempts - 1;
    times.push(dt * 1000);
  }
  const timeoutMs = bus.timeoutMs(7 + 5 + n + 2, n * (7 + 4 + STATE_BLOCK.size + 2), n);
  await bus.close();
  return { times: times.sort((a, b) => a - b), failed, retries: retried, timeoutMs };
}

interface NoiseResult {
  /** Fraction of replies touched by each kind of noise (dropped, damaged, garbage-prefixed). */
  perKind: number;
  /** The bus's timeout for one state-read attempt (ms). */
  attemptTimeoutMs: number;
  injected: { dropped: number; corrupted: number; garbage: number };
  replies: number;
  /** Back-to-back ticks on the bus with two retries each: µs. */
  tickUs: { median: number; p99: number; max: number; ticks: number; retries: number; failed: number };
  /** The driver at 50 Hz. */
  driver: {
    ticks: number;
    retries: number;
    recovered: number;
    badTicks: number;
    faults: number;
    maxTickMs: number;
    /** Age of the state the control loop read at each tick (ms). */
    stateAgeMs: { median: number; p99: number; max: number };
  };
}

/** The tick and the driver at 50 Hz against an emulator that drops, damages and pollutes replies. */
async function underNoise(perKind: number): Promise<NoiseResult> {
  const pair = await PtyPair.create();
  const emulator = await startEmulator(pair, perKind);
  try {
    const rt = await roundTrip(pair, Math.min(ticks, 1000), 2);
    const driver = new DynamixelDriver({ model, calibration, port: pair.driverPath });
    let faults = 0;
    driver.onFault = () => faults++;
    await driver.start();
    const effort = new Float64Array(n);
    const ages: number[] = [];
    const count = Math.round(50 * noiseSeconds);
    let deadline = performance.now();
    for (let k = 0; k < count; k++) {
      ages.push((driver.now() - driver.readState()!.stamp) * 1000);
      driver.sendEffort(effort);
      deadline += 20;
      const sleep = deadline - performance.now();
      if (sleep > 0) await new Promise((r) => setTimeout(r, sleep));
    }
    await driver.stop();
    ages.sort((a, b) => a - b);
    emulator.kill("SIGTERM");
    const [line] = (await once(emulator.stdout!, "data")) as [Buffer];
    const counts = JSON.parse(line.toString().trim().split("\n").at(-1)!);
    const d = driver.stats;
    return {
      perKind,
      attemptTimeoutMs: rt.timeoutMs,
      injected: counts.injected,
      replies: counts.replies,
      tickUs: {
        median: percentile(rt.times, 0.5),
        p99: percentile(rt.times, 0.99),
        max: rt.times[rt.times.length - 1],
        ticks: rt.times.length,
        retries: rt.retries,
        failed: rt.failed,
      },
      driver: {
        ticks: d.ticks,
        retries: d.retries,
        recovered: d.recovered,
        badTicks: d.badTicks,
        faults,
        maxTickMs: d.maxTickMs,
        stateAgeMs: {
          median: percentile(ages, 0.5),
          p99: percentile(ages, 0.99),
          max: ages[ages.length - 1],
        },
      },
    };
  } finally {
    if (emulator.exitCode === null) {
      emulator.kill("SIGTERM");
      await once(emulator, "exit");
    }
    await pair.close();
  }
}

interface RateResult {
  rateHz: number;
  ticks: number;
  freshFraction: number;
  coalesced: number;
  sustained: boolean;
}

async function driveAt(pair: PtyPair, rateHz: number, seconds: number): Promise<RateResult> {
  const driver = new DynamixelDriver({ model, calibration, port: pair.driverPath });
  await driver.start();
  const effort = new Float64Array(n);
  const periodMs = 1000 / rateHz;
  const count = Math.round(rateHz * seconds);
  let fresh = 0;
  let lastStamp = driver.readState()!.stamp;
  let deadline = performance.now();
  for (let k = 0; k < count; k++) {
    const s = driver.readState()!;
    if (k > 0 && s.stamp > lastStamp) fresh++;
    lastStamp = s.stamp;
    driver.sendEffort(effort);
    deadline += periodMs;
    const sleep = deadline - performance.now();
    if (sleep > 0) await new Promise((r) => setTimeout(r, sleep));
  }
  const coalesced = driver.stats.coalesced;
  await driver.stop();
  const freshFraction = fresh / (count - 1);
  return {
    rateHz,
    ticks: count,
    freshFraction,
    coalesced,
    sustained: freshFraction >= 0.99 && coalesced <= 0.01 * count,
  };
}

const pair = await PtyPair.create();
const emulator = await startEmulator(pair);
try {
  const { times: rtt, failed } = await roundTrip(pair);
  const { tx, rx } = tickBytes();
  const rates: RateResult[] = [];
  for (const rateHz of [50, 100, 150, 200, 300, 500, 1000]) rates.push(await driveAt(pair, rateHz, 2));
  const highest = rates.filter((r) => r.sustained).at(-1)?.rateHz ?? 0;
  const noise: NoiseResult[] = [];
  for (const perKind of [0, 0.01, 0.03]) noise.push(await underNoise(perKind));
  const result = {
    servos: n,
    baud: BAUD,
    link: "socat pty pair, emulator in its own process",
    roundTripUs: {
      median: percentile(rtt, 0.5),
      p90: percentile(rtt, 0.9),
      p99: percentile(rtt, 0.99),
      max: rtt[rtt.length - 1],
      ticks: rtt.length,
      failed,
    },
    machine: { cpus: cpus().length, loadAverage1m: loadavg()[0] },
    backToBackTicksPerSecond: 1e6 / percentile(rtt, 0.5),
    wireAt1MbpsUs: { bytes: tx + rx, us: ((tx + rx) * 10 * 1e6) / BAUD },
    rates,
    highestSustainedRateHz: highest,
    noise,
  };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const r = result.roundTripUs;
    console.log(
      `Dynamixel bus, ${n} servos, ${BAUD} baud, over a pty to the emulator (own process); ` +
        `${result.machine.cpus} CPUs, load average ${result.machine.loadAverage1m.toFixed(1)}`,
    );
    console.log(
      `  one tick (SYNC_WRITE + SYNC_READ): median ${r.median.toFixed(0)} µs, p90 ${r.p90.toFixed(0)} µs, ` +
        `p99 ${r.p99.toFixed(0)} µs, max ${r.max.toFixed(0)} µs over ${r.ticks} ticks, ${r.failed} failed ` +
        `(${result.backToBackTicksPerSecond.toFixed(0)} ticks/s back to back)`,
    );
    console.log(
      `  the same ${tx + rx} bytes on a real 1 Mbps wire: ${result.wireAt1MbpsUs.us.toFixed(0)} µs (computed), ` +
        "plus the servos' return delay and the adapter's latency",
    );
    for (const x of rates)
      console.log(
        `  ${String(x.rateHz).padStart(5)} Hz: ${(x.freshFraction * 100).toFixed(1)}% of ticks saw a new state, ` +
          `${x.coalesced} commands waited for the bus -> ${x.sustained ? "sustained" : "NOT sustained"}`,
      );
    console.log(`  highest control rate sustained: ${highest} Hz`);
    console.log(
      `  line noise (emulator: each fraction of replies dropped, damaged, garbage-prefixed; seed 12; ` +
        `a tick retries twice; timeout ${noise[0].attemptTimeoutMs.toFixed(0)} ms for a state read of ${n} servos):`,
    );
    for (const x of noise) {
      const t = x.tickUs;
      const d = x.driver;
      const a = d.stateAgeMs;
      console.log(
        `    ${(3 * x.perKind * 100).toFixed(0).padStart(2)}% of replies (${x.injected.dropped} dropped, ${x.injected.corrupted} damaged, ` +
          `${x.injected.garbage} behind garbage of ${x.replies}): back-to-back tick median ${t.median.toFixed(0)} µs, ` +
          `p99 ${t.p99.toFixed(0)} µs, max ${(t.max / 1000).toFixed(1)} ms, ${t.retries} retries, ${t.failed} failed of ${t.ticks}`,
      );
      console.log(
        `        driver at 50 Hz: ${d.ticks} ticks, ${d.retries} retries, ${d.recovered} ticks recovered, ` +
          `${d.badTicks} bad, ${d.faults} faults; longest bus tick ${d.maxTickMs.toFixed(1)} ms; state age at the tick ` +
          `median ${a.median.toFixed(1)} ms, p99 ${a.p99.toFixed(1)} ms, max ${a.max.toFixed(1)} ms (stale timeout 100 ms)`,
      );
    }
  }
} finally {
  emulator.kill("SIGTERM");
  await once(emulator, "exit");
  await pair.close();
}
