/**
 * The safety filter, case by case: command replacement, hard rules, rate limit, watchdog and
 * latched faults, the safe stop, counting, config validation, and a guard on the hot path's
 * source against allocating constructs.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JointState } from "../../src/drivers/driver.js";
import type { JointSpec } from "../../src/robot/types.js";
import { DEFAULT_SAFETY_CONFIG, SafetyConfigError } from "../../src/safety/config.js";
import { SafetyFilter } from "../../src/safety/filter.js";
import { softEffortBounds, softVelocityBounds } from "../../src/safety/soft-limits.js";

/** A 4-joint arm of the OpenManipulator-X class: ±2.8 / ±1.8 rad, 4.1 N·m, 4.8 rad/s. */
function arm(): JointSpec[] {
  const joint = (name: string, limit: number, kPosition: number, kVelocity: number): JointSpec => ({
    name,
    type: "revolute",
    lower: -limit,
    upper: limit,
    effort: 4.1,
    velocity: 4.8,
    damping: 0.03,
    friction: 0.03,
    armature: 0,
    safety: { softLower: -(limit - 0.1), softUpper: limit - 0.1, kPosition, kVelocity },
  });
  return [
    joint("waist", 2.8, 10, 1.5),
    joint("shoulder", 1.8, 20, 0.5),
    joint("elbow", 1.8, 15, 2),
    joint("wrist", 1.8, 12, 1),
  ];
}

function stateOf(position: ArrayLike<number>, velocity: ArrayLike<number>, stamp = 0): JointState {
  return {
    stamp,
    position: Float64Array.from(position),
    velocity: Float64Array.from(velocity),
    effort: new Float64Array(position.length),
  };
}

const REST = stateOf([0, 0, 0, 0], [0, 0, 0, 0]);
const GRAVITY = Float64Array.of(0, 0.8, 0.35, 0.1);
const DT = 0.02;
const NO_RATE = { torqueRateLimit: Number.POSITIVE_INFINITY };

function nearArray(actual: ArrayLike<number>, expected: readonly number[], what: string, tol = 1e-12): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (all: ${Array.from(actual)})`,
    );
  }
}

// --- c. Bad commands ------------------------------------------------------------------------------

test("a good command passes unchanged, from a plain array, a Float32Array and a Float64Array", () => {
  const f = new SafetyFilter(arm(), NO_RATE);
  const out = new Float64Array(4);
  for (const command of [
    [0.5, -1, 2, -0],
    Float32Array.of(0.5, -1, 2, -0),
    Float64Array.of(0.5, -1, 2, -0),
  ]) {
    const report = f.filter(command, REST, 0, GRAVITY, DT, out);
    nearArray(out, [0.5, -1, 2, 0], "out", 0);
    assert.equal(report.anyIntervention, false);
    assert.equal(report.faulted, false);
  }
});

test("missing, wrong-length and non-finite commands are replaced by gravity compensation, and counted", () => {
  const f = new SafetyFilter(arm(), NO_RATE);
  const out = new Float64Array(4);
  const hostile: [ArrayLike<number> | undefined, "missingCommand" | "wrongLength" | "nonfiniteCommand"][] = [
    [undefined, "missingCommand"],
    [[1, 2, 3], "wrongLength"],
    [[1, 2, 3, 4, 5], "wrongLength"],
    [[], "wrongLength"],
    [[1, Number.NaN, 0, 0], "nonfiniteCommand"],
    [[0, 0, 0, Number.POSITIVE_INFINITY], "nonfiniteCommand"],
    [Float32Array.of(Number.NEGATIVE_INFINITY, 0, 0, 0), "nonfiniteCommand"],
    [[0, 0, "1" as unknown as number, 0], "nonfiniteCommand"],
  ];
  for (const [command, kind] of hostile) {
    out.fill(99);
    const report = f.filter(command, REST, 0, GRAVITY, DT, out);
    nearArray(out, Array.from(GRAVITY), `${kind} ${String(command)}`, 0);
    assert.equal(report.interventions[kind], 1, kind);
    assert.equal(report.anyIntervention, true);
  }
  assert.equal(f.counts.missingCommand, 1);
  assert.equal(f.counts.wrongLength, 3);
  assert.equal(f.counts.nonfiniteCommand, 4);
  f.resetCounts();
  assert.equal(f.counts.nonfiniteCommand, 0);
});

test("without usable gravity the replacement is zero; bad gravity is counted and treated as absent", () => {
  const f = new SafetyFilter(arm(), NO_RATE);
  const out = new Float64Array(4);
  f.filter(undefined, REST, 0, undefined, DT, out);
  nearArray(out, [0, 0, 0, 0], "no gravity", 0);
  const r1 = f.filter(undefined, REST, 0, Float64Array.of(0, Number.NaN, 0, 0), DT, out);
  nearArray(out, [0, 0, 0, 0], "NaN gravity", 0);
  assert.equal(r1.interventions.badGravity, 1);
  f.filter(Float64Array.of(0.1, 0.2, 0.3, 0.4), REST, 0, Float64Array.of(1, 1), DT, out);
  nearArray(out, [0.1, 0.2, 0.3, 0.4], "short gravity, good command", 0);
});

test("huge commands are clamped to ±effort·effortScale", () => {
  const f = new SafetyFilter(arm(), { ...NO_RATE, effortScale: 0.5 });
  const out = new Float64Array(4);
  const report = f.filter([1e308, -1e308, 3, -2.05], REST, 0, undefined, DT, out);
  nearArray(out, [2.05, -2.05, 2.05, -2.05], "out");
  assert.equal(report.interventions.effortClamp, 3);
  assert.equal(f.counts.effortClamp, 1, "counts are ticks");
});

// --- f. Hard rules --------------------------------------------------------------------------------

test("no effort pushing further past a hard position limit; gravity pulling outwards must be held", () => {
  const f = new SafetyFilter(arm(), { ...NO_RATE, useSoftLimits: false });
  const out = new Float64Array(4);
  // waist 0.02 past its upper limit (inside the 0.05 margin), shoulder exactly at its lower limit.
  const s = stateOf([2.82, -1.8, 0, 0], [0, 0, 0, 0]);
  let r = f.filter([2, -2, 1, 1], s, 0, undefined, DT, out);
  nearArray(out, [0, 0, 1, 1], "no gravity", 0);
  assert.equal(r.interventions.positionLimit, 2);
  assert.equal(r.faulted, false);
  // Gravity dragging the waist outwards (holding torque −0.7) and the shoulder outwards (+0.9):
  // each must get at least the holding torque, pointing inwards.
  r = f.filter([2, -2, 1, 1], s, 0, Float64Array.of(-0.7, 0.9, 0, 0), DT, out);
  nearArray(out, [-0.7, 0.9, 1, 1], "outward gravity", 0);
  // Gravity pulling inwards: zero is the bound, gravity does the rest.
  f.filter([2, -2, 1, 1], s, 0, Float64Array.of(0.7, -0.9, 0, 0), DT, out);
  nearArray(out, [0, 0, 1, 1], "inward gravity", 0);
  // Inward commands pass.
  f.filter([-3, 3, 1, 1], s, 0, undefined, DT, out);
  nearArray(out, [-3, 3, 1, 1], "inward commands", 0);
});

test("no effort pushing further past the velocity limit", () => {
  const f = new SafetyFilter(arm(), { ...NO_RATE, useSoftLimits: false });
  const out = new Float64Array(4);
  const s = stateOf([0, 0, 0, 0], [4.8, -4.9, 4.79, 0]);
  const r = f.filter([1, -1, 1, 1], s, 0, undefined, DT, out);
  nearArray(out, [0, 0, 1, 1], "out", 0);
  assert.equal(r.interventions.velocityLimit, 2);
  f.filter([-1, 1, 1, 1], s, 0, undefined, DT, out);
  nearArray(out, [-1, 1, 1, 1], "braking passes", 0);
});

test("both sides violated at once (past the upper limit, moving down too fast): zero effort", () => {
  const f = new SafetyFilter(arm(), { ...NO_RATE, useSoftLimits: false });
  const out = new Float64Array(4);
  const s = stateOf([2.82, 0, 0, 0], [-4.9, 0, 0, 0]);
  for (const command of [
    [3, 0, 0, 0],
    [-3, 0, 0, 0],
  ]) {
    f.filter(command, s, 0, Float64Array.of(-0.7, 0, 0, 0), DT, out);
    assert.equal(out[0], 0);
  }
});

test("a continuous joint has no position limits", () => {
  const joints = arm();
  joints[0] = {
    ...joints[0],
    type: "continuous",
    lower: Number.NEGATIVE_INFINITY,
    upper: Number.POSITIVE_INFINITY,
    safety: undefined,
  };
  const f = new SafetyFilter(joints, NO_RATE);
  const out = new Float64Array(4);
  const r = f.filter([2, 0, 0, 0], stateOf([1000, 0, 0, 0], [0, 0, 0, 0]), 0, undefined, DT, out);
  assert.equal(out[0], 2);
  assert.equal(r.faulted, false);
});

test("infinite effort and velocity limits (continuous joint without <limit>) still give a finite output", () => {
  const wheel: JointSpec = {
    name: "wheel",
    type: "continuous",
    lower: Number.NEGATIVE_INFINITY,
    upper: Number.POSITIVE_INFINITY,
    effort: Number.POSITIVE_INFINITY,
    velocity: Number.POSITIVE_INFINITY,
    damping: 0,
    friction: 0,
    armature: 0,
    safety: { softLower: -Infinity, softUpper: Infinity, kPosition: 10, kVelocity: 1 },
  };
  const f = new SafetyFilter([wheel], NO_RATE);
  const out = new Float64Array(1);
  f.filter([1e308], stateOf([0], [0]), 0, Float64Array.of(1e308), DT, out);
  assert.equal(out[0], 1e308);
  // A safe stop of −b·q̇ + g that overflows is replaced by zero, not sent as Infinity.
  f.latch("estop", "test");
  const r = f.filter([0], stateOf([0], [-1e308]), 0, Float64Array.of(1e308), DT, out);
  const g = new SafetyFilter([wheel], { ...NO_RATE, safeStopDamping: 2 });
  g.latch("estop", "test");
  const r2 = g.filter([0], stateOf([0], [-1e308]), 0, Float64Array.of(1e308), DT, out);
  assert.ok(Number.isFinite(out[0]));
  assert.equal(out[0], 0);
  assert.equal(r2.interventions.nonfiniteOutput, 1);
  assert.equal(r.faulted, true);
});

// --- e. Rate limit --------------------------------------------------------------------------------

test("torque-rate limit: the first tick ramps from gravity compensation, later ticks from the last output", () => {
  const f = new SafetyFilter(arm(), { torqueRateLimit: 10 }); // 0.2 N·m per 20 ms tick
  const out = new Float64Array(4);
  let r = f.filter([3, 3, -3, 0.1], REST, 0, GRAVITY, DT, out);
  nearArray(out, [0.2, 1.0, 0.15, 0.1], "tick 1");
  assert.equal(r.interventions.rateLimit, 3);
  r = f.filter([3, 3, -3, 0.1], REST, 0.02, GRAVITY, DT, out);
  nearArray(out, [0.4, 1.2, -0.05, 0.1], "tick 2");
  // A dt that is not a positive finite number allows no change at all.
  for (const dt of [0, -0.02, Number.NaN, Number.POSITIVE_INFINITY]) {
    f.filter([3, 3, -3, 0.1], REST, 0.04, GRAVITY, dt, out);
    nearArray(out, [0.4, 1.2, -0.05, 0.1], `dt = ${dt}`);
  }
  // Without gravity the first tick ramps from zero.
  const z = new SafetyFilter(arm(), { torqueRateLimit: 10 });
  z.filter([3, 3, -3, 0.1], REST, 0, undefined, DT, out);
  nearArray(out, [0.2, 0.2, -0.2, 0.1], "from zero");
});

test("the hard rules override the rate limit", () => {
  const f = new SafetyFilter(arm(), { torqueRateLimit: 10, useSoftLimits: false });
  const out = new Float64Array(4);
  f.filter([3, 0, 0, 0], REST, 0, undefined, DT, out);
  f.filter([3, 0, 0, 0], REST, 0, undefined, DT, out);
  assert.ok(Math.abs(out[0] - 0.4) < 1e-12);
  f.filter([3, 0, 0, 0], stateOf([2.8, 0, 0, 0], [0, 0, 0, 0]), 0, undefined, DT, out);
  assert.equal(out[0], 0, "at the hard limit the output drops to 0 at once");
});

// --- a, b. Watchdog, latched faults and the safe stop ---------------------------------------------

test("watchdog: each bad state latches its own fault reason, naming the joint and value", () => {
  const cases: [JointState | undefined, number, string, RegExp][] = [
    [undefined, 0, "missing_state", /no joint state/],
    [stateOf([0, 0, 0], [0, 0, 0]), 0, "malformed_state", /3 positions and 3 velocities, expected 4/],
    [stateOf([0, 0, 0, 0], [0, 0, 0, 0], 0), 0.2, "stale_state", /0\.200 s old \(limit 0\.1 s\)/],
    [stateOf([0, 0, 0, 0], [0, 0, 0, 0], 0.5), 0.2, "stale_state", /in the future/],
    [stateOf([0, 0, 0, 0], [0, 0, 0, 0], Number.NaN), 0, "stale_state", /not a number/],
    [stateOf([0, Number.NaN, 0, 0], [0, 0, 0, 0]), 0, "nonfinite_state", /"shoulder" position NaN/],
    [stateOf([0, 0, 0, 0], [0, 0, 0, -Infinity]), 0, "nonfinite_state", /"wrist" velocity -Infinity/],
    [stateOf([0, 0, -1.86, 0], [0, 0, 0, 0]), 0, "position_out_of_range", /"elbow" position -1\.86/],
    [stateOf([0, 0, 0, 0], [6.1, 0, 0, 0]), 0, "velocity_out_of_range", /"waist" velocity 6\.1/],
  ];
  for (const [state, now, reason, detail] of cases) {
    const f = new SafetyFilter(arm(), { staleGrace: 0 });
    const out = new Float64Array(4);
    const report = f.filter([1, 1, 1, 1], state, now, GRAVITY, DT, out);
    assert.equal(report.faulted, true, reason);
    assert.equal(report.fault?.reason, reason);
    assert.match(report.fault?.detail ?? "", detail);
    assert.equal(report.fault?.since, now);
    assert.equal(report.interventions.faultStop, 1);
  }
});

test("inside the margins nothing latches: 0.05 rad past a position limit, 25% over the velocity limit", () => {
  const f = new SafetyFilter(arm());
  const out = new Float64Array(4);
  const r = f.filter(
    [0, 0, 0, 0],
    stateOf([2.849, -1.849, 0, 0], [0, 0, 5.99, -5.99], 0),
    0.1,
    GRAVITY,
    DT,
    out,
  );
  assert.equal(r.faulted, false);
});

test("safe stop: damping plus gravity while the state is fresh, the last trusted gravity while it is stale or missing", () => {
  const b = 0.02;
  const f = new SafetyFilter(arm(), { safeStopDamping: b });
  const out = new Float64Array(4);
  f.latch("estop", "operator pressed the e-stop", 1.5);
  assert.deepEqual(f.fault, { reason: "estop", detail: "operator pressed the e-stop", since: 1.5 });
  const v = [1, -2, 3, 0.5];
  f.filter([4, 4, 4, 4], stateOf([0, 0, 0, 0], v, 2), 2, GRAVITY, DT, out);
  nearArray(
    out,
    v.map((vi, i) => -b * vi + GRAVITY[i]),
    "fresh",
  );
  f.filter([4, 4, 4, 4], stateOf([0, 0, 0, 0], v, 2), 2, undefined, DT, out);
  nearArray(
    out,
    v.map((vi) => -b * vi),
    "gravity compensation off: damping only",
  );
  f.filter([4, 4, 4, 4], stateOf([0, 0, 0, 0], v, 2), 2, Float64Array.of(Number.NaN, 1, 1, 1), DT, out);
  nearArray(
    out,
    v.map((vi) => -b * vi),
    "NaN gravity: its term is zero, never NaN",
  );
  f.filter([4, 4, 4, 4], stateOf([0, 0, 0, 0], v, 2), 2.5, GRAVITY, DT, out);
  nearArray(out, [0, 0, 0, 0], "stale after a tick without gravity: the zero it last trusted", 0);
  f.filter([4, 4, 4, 4], stateOf([0, 0, 0, 0], v, 2.6), 2.6, GRAVITY, DT, out);
  f.filter([4, 4, 4, 4], stateOf([0, 0, 0, 0], v, 2.6), 3.1, GRAVITY, DT, out);
  nearArray(out, Array.from(GRAVITY), "stale: the gravity of the last trusted state", 0);
  f.filter([4, 4, 4, 4], undefined, 3, GRAVITY, DT, out);
  nearArray(out, Array.from(GRAVITY), "missing", 0);
  f.filter([4, 4, 4, 4], stateOf([0, Number.NaN, 0, 0], v, 3), 3, GRAVITY, DT, out);
  nearArray(out, Array.from(GRAVITY), "non-finite", 0);
  assert.equal(f.fault?.reason, "estop", "later faults do not replace the first");
  assert.equal(f.counts.faultStop, 8);
});

test("safe stop: the hard rules and the effort clamp still apply", () => {
  const f = new SafetyFilter(arm(), { safeStopDamping: 1, effortScale: 0.5 });
  const out = new Float64Array(4);
  // waist past its upper limit by more than the margin, moving inwards: damping would push out (+1),
  // and gravity pulls outwards (−0.3): the hard rule leaves −0.3. Shoulder: −1·(−3) + 0 = 3 → 2.05.
  const s = stateOf([2.9, 0, 0, 0], [-1, -3, 0, 0], 0);
  const r = f.filter([0, 0, 0, 0], s, 0, Float64Array.of(-0.3, 0, 0, 0), DT, out);
  assert.equal(r.fault?.reason, "position_out_of_range");
  nearArray(out, [-0.3, 2.05, 0, 0], "out");
  assert.equal(r.interventions.positionLimit, 1);
  assert.equal(r.interventions.effortClamp, 1);
});

test("a latched fault stays latched on good states until resetFault, which refuses while the state is bad", () => {
  const f = new SafetyFilter(arm(), { torqueRateLimit: 10, staleGrace: 0 });
  const out = new Float64Array(4);
  assert.equal(f.resetFault(), true, "nothing latched: reset is a no-op");
  f.filter([0, 0, 0, 0], stateOf([0, 0, 0, 0], [0, 0, 0, 0], 0), 0.5, GRAVITY, DT, out);
  assert.equal(f.fault?.reason, "stale_state");
  assert.equal(f.resetFault(), false, "refused: the last state was stale");
  for (let k = 0; k < 5; k++) {
    const r = f.filter([1, 1, 1, 1], REST, 0, GRAVITY, DT, out);
    assert.equal(r.faulted, true, "still latched on a good state");
    nearArray(out, Array.from(GRAVITY), "safe stop at rest = gravity");
  }
  f.filter([1, 1, 1, 1], stateOf([0, 0, 2.0, 0], [0, 0, 0, 0]), 0, GRAVITY, DT, out);
  assert.equal(f.resetFault(), false, "refused: elbow out of range");
  f.filter([1, 1, 1, 1], stateOf([0, 0, 0, 0], [0, 0, 0, 7]), 0, GRAVITY, DT, out);
  assert.equal(f.resetFault(), false, "refused: wrist too fast");
  f.filter([1, 1, 1, 1], stateOf([0, 0, 0, Number.NaN], [0, 0, 0, 0]), 0, GRAVITY, DT, out);
  assert.equal(f.resetFault(), false, "refused: NaN");
  f.filter([1, 1, 1, 1], undefined, 0, GRAVITY, DT, out);
  assert.equal(f.resetFault(), false, "refused: missing");
  assert.equal(f.fault?.reason, "stale_state", "the root cause is kept");
  f.filter([1, 1, 1, 1], REST, 0, GRAVITY, DT, out);
  assert.equal(f.resetFault(), true);
  assert.equal(f.fault, undefined);
  // After a reset the command ramps from gravity compensation.
  const r = f.filter([1, 1, 1, 1], REST, 0, GRAVITY, DT, out);
  assert.equal(r.faulted, false);
  nearArray(out, [0.2, 1, 0.55, 0.3], "ramp from gravity");
});

test("an external latch with a good state can be reset at once; a filter never run refuses", () => {
  const fresh = new SafetyFilter(arm());
  fresh.latch("driver", "servo 3 overload");
  assert.equal(fresh.resetFault(), false);
  const f = new SafetyFilter(arm());
  const out = new Float64Array(4);
  f.filter([0, 0, 0, 0], REST, 0, GRAVITY, DT, out);
  f.latch("learner", "worker exited with code 1");
  assert.equal(f.fault?.since, 0, "since defaults to the last tick's clock");
  assert.equal(f.resetFault(), true);
});

test("stale grace: a stale state holds the last trusted gravity without latching, a fresh one ends the grace", () => {
  const f = new SafetyFilter(arm(), {
    staleTimeout: 0.1,
    staleGrace: 0.5,
    torqueRateLimit: Number.POSITIVE_INFINITY,
  });
  const out = new Float64Array(4);
  f.filter([1, 1, 1, 1], stateOf([0, 0, 0, 0], [0, 0, 0, 0], 1), 1, GRAVITY, DT, out);
  // The same sample, 0.105 s and then up to 0.5 s later: held on gravity, the command ignored, no fault.
  for (const now of [1.105, 1.2, 1.4, 1.6]) {
    const r = f.filter([3, 3, 3, 3], stateOf([0, 0, 0, 0], [0, 0, 0, 0], 1), now, GRAVITY, DT, out);
    assert.equal(r.faulted, false, `within the grace at ${now}`);
    assert.equal(r.interventions.staleHold, 1);
    nearArray(out, Array.from(GRAVITY), `held at ${now}`, 0);
  }
  // A fresh state ends the grace; the command passes again.
  const fresh = f.filter([1, 1, 1, 1], stateOf([0, 0, 0, 0], [0, 0, 0, 0], 1.62), 1.62, GRAVITY, DT, out);
  assert.equal(fresh.faulted, false);
  nearArray(out, [1, 1, 1, 1], "fresh again");
  // Late samples, 95 ± 10 ms old, interleaved with fresh ones, never latch.
  for (let k = 0; k < 200; k++) {
    const now = 2 + k * DT;
    const age = k % 2 === 0 ? 0.105 : 0.085;
    assert.equal(
      f.filter([1, 1, 1, 1], stateOf([0, 0, 0, 0], [0, 0, 0, 0], now - age), now, GRAVITY, DT, out).faulted,
      false,
    );
  }
  // Stale for longer than the grace: latched.
  f.filter([1, 1, 1, 1], stateOf([0, 0, 0, 0], [0, 0, 0, 0], 9), 9.2, GRAVITY, DT, out);
  const late = f.filter([1, 1, 1, 1], stateOf([0, 0, 0, 0], [0, 0, 0, 0], 9), 9.71, GRAVITY, DT, out);
  assert.equal(late.fault?.reason, "stale_state");
  assert.match(late.fault?.detail ?? "", /stale for 0\.510 s \(grace 0\.5 s\)/);
  nearArray(out, Array.from(GRAVITY), "still held after the latch", 0);
});

test("the e-stop latches, and resetFault refuses while it stays asserted", () => {
  const f = new SafetyFilter(arm());
  const out = new Float64Array(4);
  f.filter([0, 0, 0, 0], REST, 0, GRAVITY, DT, out);
  f.setEstop(true);
  assert.equal(f.estop, true);
  assert.equal(f.fault?.reason, "estop");
  assert.equal(f.filter([1, 1, 1, 1], REST, 0.02, GRAVITY, DT, out).faulted, true);
  assert.equal(f.resetFault(), false, "refused: the e-stop is still asserted");
  f.setEstop(false);
  assert.equal(f.fault?.reason, "estop", "releasing the e-stop does not clear the fault");
  assert.equal(f.resetFault(), true);
  assert.equal(f.fault, undefined);
});

test("the output array must have one element per joint", () => {
  const f = new SafetyFilter(arm());
  assert.throws(
    () => f.filter([0, 0, 0, 0], REST, 0, GRAVITY, DT, new Float64Array(3)),
    /length 3, expected 4/,
  );
});

// --- Config and joints ----------------------------------------------------------------------------

test("config: defaults, and a clear error naming each bad field", () => {
  assert.deepEqual(new SafetyFilter(arm()).config, DEFAULT_SAFETY_CONFIG);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ effortScale: 0 }, /effortScale must be in \(0, 1\], got 0/],
    [{ effortScale: 1.5 }, /effortScale/],
    [{ effortScale: Number.NaN }, /effortScale/],
    [{ torqueRateLimit: -1 }, /torqueRateLimit/],
    [{ staleTimeout: Number.POSITIVE_INFINITY }, /staleTimeout/],
    [{ positionMargin: -0.1 }, /positionMargin/],
    [{ velocityMargin: Number.NaN }, /velocityMargin/],
    [{ safeStopDamping: -1 }, /safeStopDamping/],
    [{ useSoftLimits: "yes" }, /useSoftLimits must be true or false/],
    [{ effortscale: 1 }, /unknown field "effortscale"/],
  ];
  for (const [config, message] of bad) {
    assert.throws(
      () => new SafetyFilter(arm(), config),
      (e: Error) => e instanceof SafetyConfigError && message.test(e.message),
    );
  }
});

test("joints the filter cannot make safe are rejected by name", () => {
  const cases: [Partial<JointSpec>, RegExp][] = [
    [{ effort: 0 }, /joint "waist": effort limit must be > 0/],
    [{ velocity: Number.NaN }, /joint "waist": velocity limit must be > 0/],
    [{ lower: 1, upper: -1 }, /joint "waist": needs lower ≤ upper/],
    [
      { safety: { softLower: 1, softUpper: -1, kPosition: 1, kVelocity: 1 } },
      /soft_lower_limit ≤ soft_upper_limit/,
    ],
    [
      { safety: { softLower: -1, softUpper: 1, kPosition: 1, kVelocity: 0 } },
      /k_velocity must be a finite number > 0/,
    ],
    [
      { safety: { softLower: -1, softUpper: 1, kPosition: 0, kVelocity: 1 } },
      /k_position must be a finite number > 0/,
    ],
  ];
  for (const [change, message] of cases) {
    const joints = arm();
    joints[0] = { ...joints[0], ...change };
    assert.throws(() => new SafetyFilter(joints), message);
  }
  assert.throws(() => new SafetyFilter([]), /no moving joints/);
  // Zero gains are fine when the soft limits are switched off.
  const joints = arm();
  joints[0] = { ...joints[0], safety: { softLower: -1, softUpper: 1, kPosition: 0, kVelocity: 0 } };
  assert.doesNotThrow(() => new SafetyFilter(joints, { useSoftLimits: false }));
});

// --- Allocation guard -----------------------------------------------------------------------------

test("the per-tick path has no allocating constructs (new, literals, closures, template strings)", () => {
  // A heap-allocation test is unreliable in JS; instead check the compiled source of every method
  // that runs each tick. watch() is left out: it builds a detail string, but only when latching.
  const proto = SafetyFilter.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const hot = [
    ...["filter", "usableGravity", "takeCommand", "applySoftLimits", "applyRateLimit", "applyHardRules"].map(
      (name) => [name, proto[name]] as const,
    ),
    ...["clampEffort", "finishReport"].map((name) => [name, proto[name]] as const),
    ["softEffortBounds", softEffortBounds] as const,
    ["softVelocityBounds", softVelocityBounds] as const,
  ];
  for (const [name, fn] of hot) {
    assert.equal(typeof fn, "function", `${name} exists`);
    const body = fn.toString();
    const source = body.slice(body.indexOf("{"));
    const withoutThrow = source
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "")
      .replace(/throw new Error\(`[^`]*`\);/g, "");
    assert.doesNotMatch(withoutThrow, /\bnew\s/, `${name}: "new"`);
    assert.doesNotMatch(withoutThrow, /=>|\bfunction\b/, `${name}: closure`);
    assert.doesNotMatch(withoutThrow, /`/, `${name}: template string`);
    assert.doesNotMatch(withoutThrow, /[=(,:?]\s*\[/, `${name}: array literal`);
    assert.doesNotMatch(withoutThrow, /[=(,:?]\s*\{/, `${name}: object literal`);
    assert.doesNotMatch(withoutThrow, /\.\.\./, `${name}: spread`);
    assert.doesNotMatch(withoutThrow, /\bfor\s*\([^)]*\bof\b/, `${name}: for-of iterator`);
  }
});
