/**
 * Times SafetyFilter.filter() per tick on the 4-joint arm (joints built by hand to the URDF's
 * limits: ±2.8/±1.8 rad, 4.1 N·m, 4.8 rad/s, soft limits 0.1 rad inside), in three regimes:
 * normal ticks with random states and commands that keep the soft limits and the rate limit busy,
 * hostile ticks (a bad command every other tick), and the latched safe stop.
 * Each tick is timed alone with process.hrtime.bigint(); prints one JSON object with the median,
 * p99 and mean in microseconds over 100,000 ticks per regime (after 20,000 warm-up ticks), and
 * the median cost of an empty timed region (the timer's own overhead, included in every figure).
 *
 *   npx tsc -p . && node dist/bench/safety.js [--ticks N]
 */
import type { JointState } from "../src/drivers/driver.js";
import type { JointSpec } from "../src/robot/types.js";
import { SafetyFilter } from "../src/safety/filter.js";
import { Rng } from "../src/util/rng.js";

const ticksArg = process.argv.indexOf("--ticks");
const TICKS = ticksArg > 0 ? Number(process.argv[ticksArg + 1]) : 100_000;
const WARMUP = 20_000;
const DT = 0.02;

function joint(name: string, limit: number): JointSpec {
  return {
    name,
    type: "revolute",
    lower: -limit,
    upper: limit,
    effort: 4.1,
    velocity: 4.8,
    damping: 0.03,
    friction: 0.03,
    armature: 0,
    safety: { softLower: -(limit - 0.1), softUpper: limit - 0.1, kPosition: 10, kVelocity: 1.5 },
  };
}
const joints = [joint("waist", 2.8), joint("shoulder", 1.8), joint("elbow", 1.8), joint("wrist", 1.8)];
const n = joints.length;

/** Precomputed inputs, so that the timed region holds the filter call only. */
const POOL = 4096;
const rng = new Rng(1);
const positions: Float64Array[] = [];
const velocities: Float64Array[] = [];
const commands: Float64Array[] = [];
const gravities: Float64Array[] = [];
for (let k = 0; k < POOL; k++) {
  positions.push(Float64Array.from(joints, (j) => j.lower + (j.upper - j.lower) * rng.uniform()));
  velocities.push(Float64Array.from(joints, () => (rng.uniform() * 2 - 1) * 4.7));
  commands.push(Float64Array.from(joints, () => (rng.uniform() * 2 - 1) * 5));
  gravities.push(Float64Array.from(joints, (_, i) => (i === 0 ? 0 : (rng.uniform() * 2 - 1) * 0.8)));
}
const badCommands: (ArrayLike<number> | undefined)[] = [
  undefined,
  Float64Array.of(Number.NaN, 0, 0, 0),
  [1, 2, 3],
  [0, Number.POSITIVE_INFINITY, 0, 0],
];

type Regime = "normal" | "hostile" | "faulted";

function run(regime: Regime): { median_us: number; p99_us: number; mean_us: number; interventions: object } {
  const filter = new SafetyFilter(joints, {});
  if (regime === "faulted") filter.latch("estop", "benchmark");
  const state: JointState = {
    stamp: 0,
    position: new Float64Array(n),
    velocity: new Float64Array(n),
    effort: new Float64Array(n),
  };
  const out = new Float64Array(n);
  const samples = new Float64Array(TICKS);
  let now = 0;
  for (let k = 0; k < WARMUP + TICKS; k++) {
    const slot = k % POOL;
    state.position.set(positions[slot]);
    state.velocity.set(velocities[slot]);
    now += DT;
    state.stamp = now;
    const command =
      regime === "hostile" && (k & 1) === 1 ? badCommands[(k >> 1) % badCommands.length] : commands[slot];
    const started = process.hrtime.bigint();
    filter.filter(command, state, now, gravities[slot], DT, out);
    const elapsed = process.hrtime.bigint() - started;
    if (k >= WARMUP) samples[k - WARMUP] = Number(elapsed) / 1000;
    if (regime !== "faulted" && filter.fault !== undefined) {
      throw new Error(`benchmark state latched a fault: ${filter.fault.reason}: ${filter.fault.detail}`);
    }
  }
  const sorted = samples.slice().sort();
  let sum = 0;
  for (let i = 0; i < TICKS; i++) sum += samples[i];
  return {
    median_us: round(sorted[Math.floor(TICKS * 0.5)]),
    p99_us: round(sorted[Math.floor(TICKS * 0.99)]),
    mean_us: round(sum / TICKS),
    interventions: { ...filter.counts },
  };
}

/** What an empty timed region costs: the floor under every figure above. */
function timerOverhead(): number {
  const samples = new Float64Array(TICKS);
  for (let k = 0; k < WARMUP + TICKS; k++) {
    const started = process.hrtime.bigint();
    const elapsed = process.hrtime.bigint() - started;
    if (k >= WARMUP) samples[k - WARMUP] = Number(elapsed) / 1000;
  }
  return round(samples.sort()[Math.floor(TICKS * 0.5)]);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

const result = {
  benchmark: "safety-filter-tick",
  dof: n,
  ticks: TICKS,
  warmup: WARMUP,
  node: process.version,
  timer_overhead_median_us: timerOverhead(),
  normal: run("normal"),
  hostile: run("hostile"),
  faulted: run("faulted"),
};
console.log(JSON.stringify(result));
