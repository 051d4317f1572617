/**
 * The twin's reality gap: draws are deterministic per seed and inside their ranges, "none" is
 * today's twin bit for bit, and each effect (torque constant, current saturation, latency,
 * quantisation) does what it says; the config refuses a gap the safety filter does not cover.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { defaultConfig, realityRanges, withOverrides } from "../../src/config/config.js";
import { createControlStack } from "../../src/control/stack.js";
import { SimDriver } from "../../src/drivers/sim.js";
import { drawReality, REALITY_PRESETS, type RealityRanges } from "../../src/drivers/sim-reality.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));
const realistic = REALITY_PRESETS.realistic as RealityRanges;

/** Drives a twin with a fixed pseudo-random effort sequence (hard enough to reach the stops) and returns every state read. */
function trajectory(sim: SimDriver, ticks: number): number[] {
  const rng = new Rng(5);
  const effort = new Float64Array(arm.dof);
  const out: number[] = [];
  for (let t = 0; t < ticks; t++) {
    for (let i = 0; i < arm.dof; i++) effort[i] = rng.range(-1.2, 1.2) * arm.joints[i].effort;
    sim.sendEffort(effort);
    sim.advance(0.02);
    const s = sim.readState();
    out.push(s.stamp, ...s.position, ...s.velocity, ...s.effort);
  }
  return out;
}

test("a reality is the same for the same seed and differs between seeds", () => {
  const a = drawReality(arm, realistic, 7);
  const b = drawReality(arm, realistic, 7);
  const c = drawReality(arm, realistic, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(
    a.model.links.map((l) => l.inertial.mass),
    c.model.links.map((l) => l.inertial.mass),
  );
  assert.notDeepEqual(Array.from(a.torqueConstant), Array.from(c.torqueConstant));
  // The nominal model is never touched.
  assert.deepEqual(loadUrdf(resolve(packageRoot(), "urdf/arm.urdf")), arm);
});

test("every drawn value lies in its range, over many seeds", () => {
  const r = realistic;
  const within = (x: number, lo: number, hi: number, what: string) =>
    assert.ok(x >= lo - 1e-12 && x <= hi + 1e-12, `${what}: ${x} outside [${lo}, ${hi}]`);
  let latencies = 0;
  for (let seed = 0; seed < 50; seed++) {
    const d = drawReality(arm, r, seed);
    arm.links.forEach((nominal, l) => {
      const link = d.model.links[l];
      if (nominal.inertial.mass === 0) {
        // A massless frame (the tool point) stays massless.
        assert.equal(link.inertial.mass, 0);
        return;
      }
      within(
        link.inertial.mass / nominal.inertial.mass,
        1 - r.massError,
        1 + r.massError,
        `seed ${seed} mass ${l}`,
      );
      for (let k = 0; k < 3; k++)
        within(
          link.inertial.com[k] - nominal.inertial.com[k],
          -r.comError,
          r.comError,
          `seed ${seed} com ${l}`,
        );
      const ratio = link.inertial.inertia[0] / nominal.inertial.inertia[0];
      within(ratio, 1 - r.inertiaError, 1 + r.inertiaError, `seed ${seed} inertia ${l}`);
      // One factor for the whole tensor: still symmetric positive definite, triangle inequality kept.
      for (const [k, v] of link.inertial.inertia.entries())
        assert.ok(Math.abs(v - ratio * nominal.inertial.inertia[k]) <= 1e-18);
    });
    arm.joints.forEach((nominal, i) => {
      const joint = d.model.joints[i];
      within(joint.armature / nominal.armature, 1 - r.armatureError, 1 + r.armatureError, `armature ${i}`);
      within(joint.damping / nominal.damping, ...r.viscousScale, `damping ${i}`);
      within(joint.friction / nominal.friction, ...r.coulombScale, `friction ${i}`);
      within(
        d.torqueConstant[i],
        1 - r.torqueConstantError,
        1 + r.torqueConstantError,
        `torque constant ${i}`,
      );
      within(d.torqueCeiling[i] / nominal.effort, ...r.currentLimit, `ceiling ${i}`);
      // Limits and structure are the URDF's.
      assert.deepEqual(
        { ...joint, armature: 0, damping: 0, friction: 0 },
        { ...nominal, armature: 0, damping: 0, friction: 0 },
      );
    });
    within(d.latencyPeriods, ...r.latencyPeriods, "latency");
    latencies += d.latencyPeriods;
  }
  // The draws spread over their ranges rather than sitting at one end.
  assert.ok(latencies / 50 > 0.3 && latencies / 50 < 0.7, `mean latency ${latencies / 50}`);
});

test("\"none\" is today's twin bit for bit, and the stack builds the twin from the config's reality", () => {
  const today = new SimDriver({ model: arm });
  const stack = createControlStack(defaultConfig());
  assert.ok(stack.driver instanceof SimDriver);
  const none = stack.driver as SimDriver;
  const reference = trajectory(today, 300);
  assert.deepEqual(trajectory(none, 300), reference);
  assert.ok(today.limitContactSteps > 0, "the sequence reaches the joint-limit stops");

  const gapped = createControlStack(
    withOverrides(defaultConfig(), { "sim.reality.preset": "realistic", seed: 4 }),
  );
  assert.deepEqual(gapped.reality, drawReality(arm, realityRanges(gapped.config), 4));
  // The safety filter and the task keep the URDF's model; only the twin is the drawn arm.
  assert.deepEqual(gapped.model, arm);
  assert.notDeepEqual(trajectory(gapped.driver as SimDriver, 300), reference);
});

test("the torque constant scales the torque that acts, the ceiling clamps it, the effort read is in nominal units", () => {
  const k = [1.1, 0.9, 1, 1];
  const scaled = new SimDriver({ model: arm, torqueConstant: k, torqueCeiling: [4.1, 4.1, 0.5, 4.1] });
  const reference = new SimDriver({ model: arm });
  scaled.sendEffort(Float64Array.from([1, 1, 1, 1]));
  reference.sendEffort(Float64Array.from([1.1, 0.9, 0.5, 1]));
  scaled.advance(0.1);
  reference.advance(0.1);
  const a = scaled.readState();
  assert.deepEqual(Array.from(a.effort), [1, 1, 0.5, 1]);
  const positions = Array.from(a.position);
  assert.deepEqual(positions, Array.from(reference.readState().position));
});

test("latency: the state read is the state of stateLatency ago, stamped with that time", () => {
  const latency = 0.013; // 13 physics steps at 1 kHz
  const late = new SimDriver({ model: arm, stateLatency: latency });
  const now = new SimDriver({ model: arm });
  const history: { stamp: number; q: number[] }[] = [];
  const effort = Float64Array.from([0.8, -0.6, 0.5, -0.3]);
  late.sendEffort(effort);
  now.sendEffort(effort);
  for (let k = 0; k < 60; k++) {
    const s = now.readState();
    history.push({ stamp: s.stamp, q: Array.from(s.position) });
    const l = late.readState();
    const expected = history[Math.max(0, k - 13)];
    assert.deepEqual(Array.from(l.position), expected.q, `step ${k}`);
    assert.equal(l.stamp, expected.stamp);
    late.step();
    now.step();
  }
  // After setState the whole history is the new state (a reset is not seen as a slide).
  late.setState([0.1, 0.2, 0.3, 0.4]);
  assert.deepEqual(Array.from(late.readState().position), [0.1, 0.2, 0.3, 0.4]);
});

test("quantisation rounds the state read to whole counts and leaves the physics alone", () => {
  const resolution = (2 * Math.PI) / 4096;
  const quantised = new SimDriver({ model: arm, positionResolution: resolution, velocityResolution: 0.024 });
  const exact = new SimDriver({ model: arm });
  for (const sim of [quantised, exact]) {
    sim.sendEffort(Float64Array.from([0.7, 0.2, -0.4, 0.1]));
    sim.advance(0.25);
  }
  const q = quantised.readState();
  const e = exact.readState();
  let moved = 0;
  for (let i = 0; i < arm.dof; i++) {
    const counts = q.position[i] / resolution;
    assert.ok(Math.abs(counts - Math.round(counts)) < 1e-9, `joint ${i}: ${counts} counts`);
    assert.ok(Math.abs(q.position[i] - e.position[i]) <= resolution / 2 + 1e-15);
    assert.ok(Math.abs(q.velocity[i] - e.velocity[i]) <= 0.012 + 1e-15);
    if (q.position[i] !== e.position[i]) moved++;
  }
  assert.ok(moved > 0);
});

test("the config: ranges replace the preset's; a gap beyond the filter's model error and bad ranges are refused", () => {
  const config = withOverrides(defaultConfig(), {
    "sim.reality.preset": "realistic",
    "sim.reality.latency_periods": [1, 1],
  });
  const ranges = realityRanges(config);
  assert.deepEqual(ranges.latencyPeriods, [1, 1]);
  assert.equal(ranges.massError, realistic.massError);
  assert.throws(
    () => withOverrides(defaultConfig(), { "sim.reality.inertia_error": 0.35 }),
    /sim\.reality\.inertia_error.*at most safety\.model_error \(0\.3\)/,
  );
  assert.doesNotThrow(() =>
    withOverrides(defaultConfig(), { "sim.reality.inertia_error": 0.35, "safety.model_error": 0.4 }),
  );
  assert.throws(
    () => withOverrides(defaultConfig(), { "sim.reality.viscous_scale": [2, 1] }),
    /sim\.reality\.viscous_scale.*lo ≤ hi/,
  );
  assert.throws(
    () => withOverrides(defaultConfig(), { "sim.reality.current_limit": [0, 1] }),
    /sim\.reality\.current_limit.*0 < lo/,
  );
  assert.throws(
    () => withOverrides(defaultConfig(), { "sim.reality.preset": "perfect" }),
    /sim\.reality\.preset/,
  );
  assert.throws(() => withOverrides(defaultConfig(), { "sim.reality.mass_eror": 0.1 }), /mass_eror/);
});
