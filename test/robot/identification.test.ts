/**
 * System identification: the inertial regressor is exact, identification on a gapped twin's own
 * excitation data recovers the friction and the armatures the data determine, says which
 * parameters they do not, and writes a URDF that loads back as the identified model.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { defaultConfig, realityRanges, withOverrides } from "../../src/config/config.js";
import { ExcitePolicy } from "../../src/control/policies/excite.js";
import type { Policy } from "../../src/control/policy.js";
import { createControlStack } from "../../src/control/stack.js";
import { drawReality } from "../../src/drivers/sim-reality.js";
import { BODY_PARAMETERS, Dynamics } from "../../src/robot/dynamics.js";
import { type IdentificationSample, identify } from "../../src/robot/identification.js";
import type { RobotModel } from "../../src/robot/types.js";
import { loadUrdf, parseUrdf } from "../../src/robot/urdf.js";
import { writeIdentifiedUrdf } from "../../src/robot/urdf-writer.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";
import { StateRecorder } from "../support/state-recorder.js";

const armPath = resolve(packageRoot(), "urdf/arm.urdf");
const arm = loadUrdf(armPath);

/** A rigid-body gap only: masses, centres of mass, inertias, armatures and friction; exact sensing and actuators. */
const RIGID_GAP = {
  "sim.reality.preset": "realistic",
  "sim.reality.latency_periods": [0, 0],
  "sim.reality.position_resolution": 0,
  "sim.reality.velocity_resolution": 0,
  "sim.reality.velocity_noise": 0,
  "sim.reality.torque_constant_error": 0,
  "sim.reality.current_limit": [1, 1],
};

/** Transitions of `episodes` episodes of `policy` on the twin of `overrides` (seed 2). */
async function record(
  policy: (model: RobotModel) => Policy,
  episodes: number,
  overrides: Record<string, unknown>,
) {
  const config = withOverrides(defaultConfig(), { ...overrides, seed: 2 });
  const stack = createControlStack(config);
  const recorder = new StateRecorder(policy(stack.model));
  const rng = new Rng(2, 1);
  const samples: IdentificationSample[] = [];
  const faults: string[] = [];
  for (let e = 0; e < episodes; e++) {
    let previousEffort: Float64Array | undefined;
    const result = await stack.runner.runEpisode(e, stack.task.sampleEpisode(rng), recorder, {
      onTransition: (t) => {
        const next = stack.driver.readState() as { position: Float64Array; velocity: Float64Array };
        samples.push({
          q: recorder.q,
          qd: recorder.qd,
          effort: Float64Array.from(t.effort),
          nextQ: Float64Array.from(next.position),
          nextQd: Float64Array.from(next.velocity),
          previousEffort,
        });
        previousEffort = Float64Array.from(t.effort);
      },
    });
    if (result.fault !== undefined) faults.push(result.fault);
  }
  return { samples, faults, truth: drawReality(arm, realityRanges(config), 2).model };
}

describe("the inertial regressor", () => {
  it("Y(q, q̇, q̈)·π + armature·q̈ is RNEA's τ, on the arm and on a branched tree", () => {
    for (const file of ["urdf/arm.urdf", "test/urdf/branched.urdf"]) {
      const model = loadUrdf(resolve(packageRoot(), file));
      const dynamics = new Dynamics(model);
      const n = model.dof;
      const rng = new Rng(4);
      const pi = dynamics.bodyParameters();
      const Y = new Float64Array(n * BODY_PARAMETERS * n);
      for (let trial = 0; trial < 20; trial++) {
        const q = Float64Array.from({ length: n }, () => rng.range(-1, 1));
        const qd = Float64Array.from({ length: n }, () => rng.range(-2, 2));
        const qdd = Float64Array.from({ length: n }, () => rng.range(-5, 5));
        const tau = new Float64Array(n);
        dynamics.inverseDynamics(q, qd, qdd, tau);
        dynamics.inertialRegressor(q, qd, qdd, Y);
        for (let i = 0; i < n; i++) {
          let s = model.joints[i].armature * qdd[i];
          for (let k = 0; k < BODY_PARAMETERS * n; k++) s += Y[i * BODY_PARAMETERS * n + k] * pi[k];
          assert.ok(
            Math.abs(s - tau[i]) <= 1e-12 * (1 + Math.abs(tau[i])),
            `${file} joint ${i}: ${s} vs ${tau[i]}`,
          );
        }
      }
      // The dynamics are untouched by the regressor's temporary inertias.
      const again = new Float64Array(n);
      dynamics.gravity(new Float64Array(n), again);
      const fresh = new Float64Array(n);
      new Dynamics(model).gravity(new Float64Array(n), fresh);
      assert.deepEqual(again, fresh);
    }
  });
});

describe("identify", () => {
  it("on the gapped twin's excitation data recovers its friction and armatures, and says what the data leave open", async () => {
    const { samples, faults, truth } = await record((m) => new ExcitePolicy(m, { seed: 2 }), 16, RIGID_GAP);
    assert.deepEqual(faults, [], "the excitation passes the safety filter without a fault");
    // The excitation sweeps every joint over a good part of its soft range.
    arm.joints.forEach((joint, j) => {
      const qs = samples.map((s) => s.q[j]);
      const swept = Math.max(...qs) - Math.min(...qs);
      const soft = (joint.safety?.softUpper ?? joint.upper) - (joint.safety?.softLower ?? joint.lower);
      assert.ok(swept > 0.3 * soft, `${joint.name} swept ${swept.toFixed(2)} of ${soft.toFixed(2)} rad`);
    });
    const result = identify(arm, samples, { controlRateHz: 50 });
    const byName = new Map(result.parameters.map((p) => [p.name, p]));
    const within = (name: string, truthValue: number, tolerance: number) => {
      const p = byName.get(name);
      assert.ok(p !== undefined, name);
      assert.ok(
        Math.abs(p.value / truthValue - 1) <= tolerance,
        `${name}: ${p.value} against the twin's ${truthValue} (URDF ${p.nominal}), tolerance ${tolerance * 100}%`,
      );
    };
    truth.joints.forEach((joint) => {
      within(`${joint.name}.viscous`, joint.damping, 0.05);
      within(`${joint.name}.coulomb`, joint.friction, 0.05);
      assert.equal(byName.get(`${joint.name}.viscous`)?.determination, "identified");
      // Every armature lands within 5%, also those the data only determine with a link inertia.
      within(`${joint.name}.armature`, joint.armature, 0.05);
    });
    for (const name of ["joint3.armature", "joint4.armature"])
      assert.equal(byName.get(name)?.determination, "identified", name);
    // A yaw joint's armature and its link's inertia about the axis move the same torque.
    assert.equal(byName.get("joint1.armature")?.determination, "grouped");
    // The turret's mass moves no joint's torque on a fixed base: not excited, the URDF's kept.
    const turret = byName.get("link1.m");
    assert.equal(turret?.determination, "not excited");
    assert.equal(turret?.value, turret?.nominal);
    assert.ok(result.rank < result.parameters.length && result.conditionNumber < 1e4);
    // The torques are explained far better than by the URDF.
    for (const [j, rms] of result.residualRms.identified.entries()) {
      const nominal = result.residualRms.nominal[j];
      assert.ok(rms < 0.1 * nominal, `joint ${j}: ${rms} vs URDF ${nominal}`);
    }
  });

  it("fits the state's latency: a twin whose state is 0.6 periods old", async () => {
    const { samples, truth } = await record((m) => new ExcitePolicy(m, { seed: 2 }), 16, {
      ...RIGID_GAP,
      "sim.reality.latency_periods": [0.6, 0.6],
    });
    const plain = identify(arm, samples, { controlRateHz: 50 });
    const result = identify(arm, samples, { controlRateHz: 50, fitLatency: true });
    assert.equal(plain.latencyPeriods, null);
    assert.ok(
      result.latencyPeriods !== null && Math.abs(result.latencyPeriods - 0.6) <= 0.1,
      `latency ${result.latencyPeriods}`,
    );
    // Only each episode's first transition lacks the tick before it.
    assert.equal(result.skipped, 16);
    const total = (r: typeof result) => r.residualRms.identified.reduce((a, b) => a + b, 0);
    assert.ok(
      total(result) < 0.5 * total(plain),
      `residual ${total(result)} with latency, ${total(plain)} without`,
    );
    for (const joint of truth.joints) {
      const viscous = result.parameters.find((p) => p.name === `${joint.name}.viscous`);
      assert.ok(
        viscous !== undefined && Math.abs(viscous.value / joint.damping - 1) <= 0.1,
        `${joint.name}.viscous ${viscous?.value} vs ${joint.damping}`,
      );
    }
  });

  it("says when the data do not excite a parameter: an arm held still in many poses", () => {
    // Static poses: gravity torques only. The first moments are seen; no friction, no armature.
    const dynamics = new Dynamics(arm);
    const rng = new Rng(8);
    const samples: IdentificationSample[] = [];
    for (let k = 0; k < 60; k++) {
      const q = Float64Array.from(arm.joints, (j) => rng.range(j.lower + 0.2, j.upper - 0.2));
      const effort = new Float64Array(arm.dof);
      dynamics.gravity(q, effort);
      samples.push({ q, qd: new Float64Array(arm.dof), effort, nextQ: q, nextQd: new Float64Array(arm.dof) });
    }
    const result = identify(arm, samples, { controlRateHz: 50 });
    for (const p of result.parameters.filter((x) => x.kind !== "inertial")) {
      assert.equal(p.determination, "not excited", p.name);
      assert.equal(p.value, p.nominal, `${p.name} keeps the URDF's value`);
    }
    // The rotational inertias move nothing at rest either; the gravity torques are explained.
    assert.equal(result.parameters.find((x) => x.name === "link4.I_yy")?.determination, "not excited");
    for (const rms of result.residualRms.identified) assert.ok(rms < 1e-12);
  });

  it("refuses too little data and leaves out broken or stop-touching transitions", () => {
    const sample = (q: number): IdentificationSample => ({
      q: [q, 0, 0, 0],
      qd: [0, 0, 0, 0],
      effort: [0, 0, 0, 0],
      nextQ: [q, 0, 0, 0],
      nextQd: [0, 0, 0, 0],
    });
    assert.throws(
      () => identify(arm, [sample(0)], { controlRateHz: 50 }),
      /1 usable transitions give 4 equations for 52 parameters/,
    );
    const many = Array.from({ length: 20 }, () => sample(0));
    many.push(sample(Number.NaN), sample(arm.joints[0].upper));
    assert.equal(identify(arm, many, { controlRateHz: 50 }).skipped, 2);
  });
});

describe("writeIdentifiedUrdf", () => {
  it("writes inertials, dynamics and armatures that load back, and keeps the rest of the file", async () => {
    const { samples } = await record((m) => new ExcitePolicy(m, { seed: 2 }), 8, RIGID_GAP);
    const result = identify(arm, samples, { controlRateHz: 50 });
    const xml = readFileSync(armPath, "utf8");
    const written = writeIdentifiedUrdf(xml, arm, result.model, "identified.urdf");
    const back = parseUrdf(written, "identified.urdf");
    const close = (a: number, b: number) =>
      Math.abs(a - b) <= 1e-8 * Math.max(Math.abs(a), Math.abs(b), 1e-9);
    back.joints.forEach((joint, i) => {
      const want = result.model.joints[i];
      for (const key of ["armature", "damping", "friction"] as const)
        assert.ok(close(joint[key], want[key]), `${joint.name}.${key}`);
    });
    for (const l of arm.jointLink) {
      const got = back.links[l].inertial;
      const want = result.model.links[l].inertial;
      assert.ok(close(got.mass, want.mass));
      // Written with 10 significant digits.
      for (const [k, c] of got.com.entries()) assert.ok(Math.abs(c - want.com[k]) <= 1e-9 * 0.1, `com ${k}`);
      for (const [k, v] of got.inertia.entries())
        assert.ok(Math.abs(v - want.inertia[k]) <= 1e-9 * 1e-3, `inertia ${k}`);
    }
    // Everything else stays: the header comment, the ros2_control block, the tool frame.
    for (const kept of ["OpenManipulator-X class", "<ros2_control", '<link name="end_effector"/>'])
      assert.ok(written.includes(kept), kept);
  });

  it("adds a transmission and <dynamics> where a joint has none", () => {
    const xml = [
      "<robot name='two'>",
      '  <link name="base"/>',
      '  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="2" velocity="3"/></joint>',
      '  <link name="l1"><inertial><mass value="0.4"/><inertia ixx="1e-3" ixy="0" ixz="0" iyy="1e-3" iyz="0" izz="5e-4"/></inertial></link>',
      "</robot>",
    ].join("\n");
    const nominal = parseUrdf(xml, "two.urdf");
    const model = structuredClone(nominal);
    model.joints[0].armature = 0.002;
    model.joints[0].damping = 0.1;
    model.links[1].inertial = { mass: 0.5, com: [0, 0, 0.1], inertia: [1e-3, 0, 0, 0, 1e-3, 0, 0, 0, 5e-4] };
    const back = parseUrdf(writeIdentifiedUrdf(xml, nominal, model, "two.urdf"), "two.urdf");
    assert.ok(Math.abs(back.joints[0].armature - 0.002) < 1e-15);
    assert.equal(back.joints[0].damping, 0.1);
    assert.equal(back.links[1].inertial.mass, 0.5);
    assert.deepEqual(back.links[1].inertial.com, [0, 0, 0.1]);
  });
});
