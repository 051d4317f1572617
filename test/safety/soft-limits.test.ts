/**
 * Soft limits against numbers worked out by hand from ros2_control's joint_limits law for an
 * effort-controlled joint (effort scale 1, no gravity):
 *   v_lo = clamp(−k_p(q − s_lo), ±v_max), v_hi = clamp(−k_p(q − s_hi), ±v_max)
 *   e_lo = clamp(−k_v(q̇ − v_lo), ±e_max), e_hi = clamp(−k_v(q̇ − v_hi), ±e_max)
 * Joint: hard ±2.8 rad, soft ±2.7 rad, k_position 10, k_velocity 1.5, 4.8 rad/s, 4.1 N·m.
 * Each case is checked on the bare bounds function and through the whole filter (rate limit off,
 * the other joints parked at rest in the middle).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JointSpec } from "../../src/robot/types.js";
import { SafetyFilter } from "../../src/safety/filter.js";
import { softEffortBounds, softVelocityBounds } from "../../src/safety/soft-limits.js";

const waist: JointSpec = {
  name: "waist",
  type: "revolute",
  lower: -2.8,
  upper: 2.8,
  effort: 4.1,
  velocity: 4.8,
  damping: 0.03,
  friction: 0.03,
  armature: 0,
  safety: { softLower: -2.7, softUpper: 2.7, kPosition: 10, kVelocity: 1.5 },
};
const parked: JointSpec = { ...waist, name: "shoulder", lower: -1.8, upper: 1.8 };
parked.safety = { softLower: -1.7, softUpper: 1.7, kPosition: 20, kVelocity: 0.5 };

interface Case {
  what: string;
  q: number;
  qd: number;
  vBounds: [number, number];
  eBounds: [number, number];
  command: number;
  expected: number;
}

const cases: Case[] = [
  {
    what: "mid-range at rest: bounds saturate at ±v_max and ±e_max, the command passes",
    q: 0,
    qd: 0,
    vBounds: [-4.8, 4.8], // −10·(0 + 2.7) = −27 → −4.8
    eBounds: [-4.1, 4.1], // −1.5·(0 + 4.8) = −7.2 → −4.1
    command: 3,
    expected: 3,
  },
  {
    what: "inside, approaching the soft upper limit as fast as allowed: no more push outwards",
    q: 2.6,
    qd: 1.0,
    vBounds: [-4.8, 1.0], // −10·(2.6 − 2.7) = 1.0
    eBounds: [-4.1, 0], // −1.5·(1.0 − 1.0) = 0; −1.5·(1 + 4.8) = −8.7 → −4.1
    command: 2,
    expected: 0,
  },
  {
    what: "past the soft upper limit at rest: a brake of k_v·k_p·d is required",
    q: 2.75,
    qd: 0,
    vBounds: [-4.8, -0.5], // −10·0.05 = −0.5
    eBounds: [-4.1, -0.75], // −1.5·(0 + 0.5) = −0.75
    command: 0,
    expected: -0.75,
  },
  {
    what: "past the soft upper limit, a command pulling inwards harder passes",
    q: 2.75,
    qd: 0,
    vBounds: [-4.8, -0.5],
    eBounds: [-4.1, -0.75],
    command: -2,
    expected: -2,
  },
  {
    what: "inside, moving fast towards the soft lower limit: a minimum push back is required",
    q: -2.65,
    qd: -2,
    vBounds: [-0.5, 4.8], // −10·(−2.65 + 2.7) = −0.5; −10·(−5.35) = 53.5 → 4.8
    eBounds: [2.25, 4.1], // −1.5·(−2 + 0.5) = 2.25; −1.5·(−2 − 4.8) = 10.2 → 4.1
    command: -1,
    expected: 2.25,
  },
  {
    what: "over the velocity limit mid-range: braking of k_v·(q̇ − v_max)",
    q: 0,
    qd: 5.5,
    vBounds: [-4.8, 4.8],
    eBounds: [-4.1, -1.05], // −1.5·(5.5 − 4.8) = −1.05; −1.5·(5.5 + 4.8) = −15.45 → −4.1
    command: 1,
    expected: -1.05,
  },
  {
    what: "deep in the soft zone and fast: the brake saturates at −e_max",
    q: 2.79,
    qd: 3,
    vBounds: [-4.8, -0.9], // −10·0.09 = −0.9
    eBounds: [-4.1, -4.1], // −1.5·(3 + 0.9) = −5.85 → −4.1; −1.5·(3 + 4.8) = −11.7 → −4.1
    command: 4,
    expected: -4.1,
  },
];

const near = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: got ${actual}, expected ${expected}`);

for (const c of cases) {
  test(`soft limits, ros2_control numbers: ${c.what}`, () => {
    const bounds = new Float64Array(2);
    softVelocityBounds(waist, c.q, bounds);
    near(bounds[0], c.vBounds[0], "v_lo");
    near(bounds[1], c.vBounds[1], "v_hi");
    softEffortBounds(waist, c.q, c.qd, waist.effort, 0, bounds);
    near(bounds[0], c.eBounds[0], "e_lo");
    near(bounds[1], c.eBounds[1], "e_hi");

    const filter = new SafetyFilter([waist, parked], { torqueRateLimit: Number.POSITIVE_INFINITY });
    const out = new Float64Array(2);
    const state = {
      stamp: 0,
      position: Float64Array.of(c.q, 0),
      velocity: Float64Array.of(c.qd, 0),
      effort: new Float64Array(2),
    };
    const report = filter.filter([c.command, 0.5], state, 0, undefined, 0.02, out);
    near(out[0], c.expected, "filtered command");
    assert.equal(out[1], 0.5, "the parked joint is untouched");
    assert.equal(report.faulted, false);
    const changed = Math.abs(c.command - c.expected) > 1e-9;
    assert.equal(report.interventions.softLimit, changed ? 1 : 0);
    assert.equal(report.anyIntervention, changed);
  });
}

test("soft limits net of gravity: the bounds shift by the gravity torque", () => {
  const bounds = new Float64Array(2);
  // Past the soft upper limit at rest (e_hi = −0.75 without gravity), gravity pulling outwards:
  // holding takes g = −0.6, so the bound on the actuator is −0.75 − 0.6.
  softEffortBounds(waist, 2.75, 0, 4.1, -0.6, bounds);
  near(bounds[1], -1.35, "e_hi with outward gravity");
  near(bounds[0], -4.1, "e_lo saturates");
  // Gravity pulling inwards (g = +0.5): the bound relaxes to −0.25, gravity does the rest.
  softEffortBounds(waist, 2.75, 0, 4.1, 0.5, bounds);
  near(bounds[1], -0.25, "e_hi with inward gravity");
  // The shifted bound is still clamped to the effort limit.
  softEffortBounds(waist, 2.79, 3, 4.1, -1, bounds);
  near(bounds[1], -4.1, "e_hi saturates after the shift");
});

test("soft limits net of gravity: at the soft limit, a push outwards is cut to exactly the holding torque", () => {
  const filter = new SafetyFilter([waist, parked], { torqueRateLimit: Number.POSITIVE_INFINITY });
  const out = new Float64Array(2);
  for (const g of [-0.8, 0.8]) {
    const gravity = Float64Array.of(g, 0);
    const state = {
      stamp: 0,
      position: Float64Array.of(2.7, 0),
      velocity: new Float64Array(2),
      effort: new Float64Array(2),
    };
    filter.filter([g + 1.5, 0], state, 0, gravity, 0.02, out);
    // Net of gravity the joint gets zero: held at the soft limit, neither pushed out nor sagging.
    near(out[0], g, `g = ${g}`);
  }
});

test("a continuous joint's soft limits soften only its velocity limit", () => {
  const wheel: JointSpec = {
    ...waist,
    name: "wheel",
    type: "continuous",
    lower: Number.NEGATIVE_INFINITY,
    upper: Number.POSITIVE_INFINITY,
    safety: {
      softLower: Number.NEGATIVE_INFINITY,
      softUpper: Number.POSITIVE_INFINITY,
      kPosition: 10,
      kVelocity: 1.5,
    },
  };
  const bounds = new Float64Array(2);
  softVelocityBounds(wheel, 1000, bounds);
  assert.deepEqual(Array.from(bounds), [-4.8, 4.8]);
  softEffortBounds(wheel, 1000, 5.5, 4.1, 0, bounds);
  near(bounds[1], -1.05, "e_hi over the velocity limit");
  near(bounds[0], -4.1, "e_lo");
});

test("a joint without a <safety_controller>, or with soft limits switched off, is only effort-clamped", () => {
  const plain: JointSpec = { ...waist, safety: undefined };
  const out = new Float64Array(1);
  const state = {
    stamp: 0,
    position: Float64Array.of(2.75),
    velocity: new Float64Array(1),
    effort: new Float64Array(1),
  };
  new SafetyFilter([plain], { torqueRateLimit: Number.POSITIVE_INFINITY }).filter(
    [9],
    state,
    0,
    undefined,
    0.02,
    out,
  );
  assert.equal(out[0], 4.1);
  const off = new SafetyFilter([waist], { torqueRateLimit: Number.POSITIVE_INFINITY, useSoftLimits: false });
  off.filter([1], state, 0, undefined, 0.02, out);
  assert.equal(out[0], 1, "soft limits off: 1 N·m passes at q = 2.75");
});
