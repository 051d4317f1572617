/**
 * The digital twin: energy behaviour of the integrator, gravity compensation, the joint-limit
 * stops, timing (stepped and realtime), and what the driver does with bad or excessive commands.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { SimDriver } from "../../src/drivers/sim.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import { Kinematics } from "../../src/robot/kinematics.js";
import type { RobotModel } from "../../src/robot/types.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));

/** The arm with its joints made limitless (continuous) and, unless kept, without damping or friction. */
function freeArm(keepDissipation: boolean): RobotModel {
  return {
    ...arm,
    joints: arm.joints.map((j) => ({
      ...j,
      type: "continuous" as const,
      lower: Number.NEGATIVE_INFINITY,
      upper: Number.POSITIVE_INFINITY,
      damping: keepDissipation ? j.damping : 0,
      friction: keepDissipation ? j.friction : 0,
    })),
  };
}

/** Kinetic plus potential energy (J): ½ q̇ᵀ M q̇ − Σ m g·c over the links' centres of mass. */
function energyMeter(model: RobotModel): (q: Float64Array, qd: Float64Array) => number {
  const n = model.dof;
  const dynamics = new Dynamics(model);
  const kinematics = new Kinematics(model);
  const M = new Float64Array(n * n);
  const p = new Float64Array(3);
  const R = new Float64Array(9);
  const g = model.gravity;
  return (q, qd) => {
    dynamics.massMatrix(q, M);
    let kinetic = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) kinetic += 0.5 * qd[i] * M[i * n + j] * qd[j];
    kinematics.update(q);
    let potential = 0;
    model.links.forEach((link, l) => {
      const { mass, com } = link.inertial;
      if (mass === 0) return;
      kinematics.linkPosition(l, p);
      kinematics.linkRotation(l, R);
      for (let a = 0; a < 3; a++) {
        const c = p[a] + R[3 * a] * com[0] + R[3 * a + 1] * com[1] + R[3 * a + 2] * com[2];
        potential -= mass * g[a] * c;
      }
    });
    return kinetic + potential;
  };
}

function copyState(sim: SimDriver): { q: Float64Array; qd: Float64Array } {
  const s = sim.readState();
  return { q: Float64Array.from(s.position), qd: Float64Array.from(s.velocity) };
}

function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

const swingStart = { initialPosition: [0.3, 0.6, -0.4, 0.5], initialVelocity: [1, -0.5, 0.8, -1] };

/** Near the hanging rest pose of the limitless arm (upper arm down, forearm folded), swinging. */
const hangingSwing = { initialPosition: [0, 2.95, -1.39, 0.03], initialVelocity: [1, 1.5, -2, 2] };

/** Largest |E − E0| and the final E − E0 over 1 s of free swing, and the largest kinetic energy. */
function swingEnergy(physicsRateHz: number): { maxDeviation: number; drift: number; maxKinetic: number } {
  const model = freeArm(false);
  const energy = energyMeter(model);
  const kineticOnly = energyMeter({ ...model, gravity: [0, 0, 0] });
  const sim = new SimDriver({ model, physicsRateHz, ...hangingSwing });
  const start = copyState(sim);
  const e0 = energy(start.q, start.qd);
  let maxKinetic = 0;
  let maxDeviation = 0;
  let drift = 0;
  for (let k = 0; k < 1000; k++) {
    sim.advance(0.001);
    const { q, qd } = copyState(sim);
    drift = energy(q, qd) - e0;
    maxDeviation = Math.max(maxDeviation, Math.abs(drift));
    maxKinetic = Math.max(maxKinetic, kineticOnly(q, qd));
  }
  assert.equal(sim.limitContactSteps, 0);
  return { maxDeviation, drift, maxKinetic };
}

test("free swing without damping or friction keeps its total energy at 1 kHz", () => {
  const at1k = swingEnergy(1000);
  assert.ok(at1k.maxKinetic > 5e-3, `the arm should swing (max kinetic energy ${at1k.maxKinetic} J)`);
  // Symplectic Euler: the energy error oscillates at O(dt) instead of accumulating.
  assert.ok(at1k.maxDeviation < 0.02 * at1k.maxKinetic, `energy deviated by ${at1k.maxDeviation} J`);
  assert.ok(Math.abs(at1k.drift) < 0.005 * at1k.maxKinetic, `energy drifted by ${at1k.drift} J in 1 s`);
  // The error is the integrator's (first order), not a modelling mismatch: 4× the rate, ~¼ the error.
  const at4k = swingEnergy(4000);
  assert.ok(at4k.maxDeviation < 0.4 * at1k.maxDeviation, `${at4k.maxDeviation} J at 4 kHz`);
});

test("with the URDF's damping and friction, energy decreases", () => {
  const model = freeArm(true);
  const energy = energyMeter(model);
  const sim = new SimDriver({ model, ...swingStart });
  const start = copyState(sim);
  const e0 = energy(start.q, start.qd);
  let previousSecond = e0;
  let maxEnergy = e0;
  for (let k = 1; k <= 1000; k++) {
    sim.advance(0.001);
    const { q, qd } = copyState(sim);
    const e = energy(q, qd);
    maxEnergy = Math.max(maxEnergy, e);
    if (k % 100 === 0) {
      assert.ok(e < previousSecond, `energy rose over 0.1 s at step ${k}: ${previousSecond} → ${e}`);
      previousSecond = e;
    }
  }
  assert.ok(previousSecond < e0 - 0.05, `energy fell only from ${e0} to ${previousSecond} J in 1 s`);
  assert.ok(maxEnergy < e0 + 1e-3, `energy rose above the start: ${maxEnergy} > ${e0}`);
});

test("gravity compensation from Dynamics.gravity holds the arm still; without it the arm falls", () => {
  const pose = Float64Array.from([0.4, 0.7, -0.5, 0.3]);
  for (const compensate of [true, false]) {
    const sim = new SimDriver({ model: arm, initialPosition: pose });
    const dynamics = new Dynamics(arm);
    const tau = new Float64Array(4);
    let maxMove = 0;
    let maxSpeed = 0;
    for (let k = 0; k < 200; k++) {
      const s = sim.readState();
      if (compensate) dynamics.gravity(s.position, tau);
      sim.sendEffort(tau);
      sim.advance(0.01);
      for (let i = 0; i < 4; i++) {
        maxMove = Math.max(maxMove, Math.abs(sim.readState().position[i] - pose[i]));
        maxSpeed = Math.max(maxSpeed, Math.abs(sim.readState().velocity[i]));
      }
    }
    if (compensate) {
      assert.ok(maxMove < 1e-9, `compensated arm moved ${maxMove} rad`);
      assert.ok(maxSpeed < 1e-9, `compensated arm reached ${maxSpeed} rad/s`);
    } else {
      assert.ok(maxMove > 0.1, `uncompensated arm moved only ${maxMove} rad in 2 s`);
    }
  }
});

test("driven hard into its limits, every joint stops there: small overshoot, no NaN, no tunnelling", () => {
  for (const direction of [1, -1]) {
    const sim = new SimDriver({ model: arm, initialVelocity: [0, 0, 0, 0] });
    const command = new Float64Array(4).fill(100 * direction); // saturates at the 4.1 N·m limit
    sim.sendEffort(command);
    const worst = new Float64Array(4).fill(Number.NEGATIVE_INFINITY);
    for (let k = 0; k < 1500; k++) {
      sim.advance(0.001);
      const s = sim.readState();
      assert.ok(allFinite(s.position) && allFinite(s.velocity), `non-finite state at step ${k}`);
      arm.joints.forEach((j, i) => {
        const past = direction > 0 ? s.position[i] - j.upper : j.lower - s.position[i];
        worst[i] = Math.max(worst[i], past);
      });
    }
    const s = sim.readState();
    arm.joints.forEach((j, i) => {
      const limit = direction > 0 ? j.upper : j.lower;
      assert.ok(worst[i] < 0.002, `${j.name} went ${worst[i]} rad past ${limit}`);
      assert.ok(
        Math.abs(s.position[i] - limit) < 0.002,
        `${j.name} rests at ${s.position[i]}, limit ${limit}`,
      );
      assert.ok(Math.abs(s.velocity[i]) < 1e-3, `${j.name} still moves at ${s.velocity[i]} rad/s`);
    });
    assert.ok(sim.limitContactSteps > 0);
  }
});

test("a joint arriving at 50 rad/s stops at the limit, even with a very stiff stop", () => {
  // The default stop (1e6 N·m/rad) and a very stiff one. (A soft 1e4 stop lets the wrist, with its
  // rotor's reflected inertia, in by v·sqrt(I/k) ≈ 5 cm at 50 rad/s: physics, not a bug.)
  for (const limitStiffness of [1e6, 1e8]) {
    const wrist = arm.joints[3];
    const sim = new SimDriver({
      model: arm,
      limitStiffness,
      initialPosition: [0, 0, 0, wrist.upper - 0.01],
      initialVelocity: [0, 0, 0, 50],
    });
    let worst = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < 300; k++) {
      sim.advance(0.001);
      const s = sim.readState();
      assert.ok(allFinite(s.position) && allFinite(s.velocity), `k=${limitStiffness}: non-finite at ${k}`);
      worst = Math.max(worst, s.position[3] - wrist.upper);
    }
    assert.ok(worst < 0.01, `k=${limitStiffness}: the wrist went ${worst} rad past its limit`);
    assert.ok(sim.readState().position[3] > wrist.lower, "the wrist went through to the other side");
  }
});

test("property: any commands (NaN and infinities included) keep the state finite and inside the limits", () => {
  const effort = fc.oneof(
    fc.double({ min: -50, max: 50, noNaN: true }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  );
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }),
      fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 4, maxLength: 4 }),
      fc.array(fc.array(effort, { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 10 }),
      (fractions, velocity, commands) => {
        const position = arm.joints.map((j, i) => j.lower + (j.upper - j.lower) * fractions[i]);
        const sim = new SimDriver({ model: arm, initialPosition: position, initialVelocity: velocity });
        for (const command of commands) {
          sim.sendEffort(Float64Array.from(command));
          sim.advance(0.02);
          const s = sim.readState();
          if (!allFinite(s.position) || !allFinite(s.velocity)) return false;
          for (let i = 0; i < 4; i++) {
            const j = arm.joints[i];
            if (s.position[i] > j.upper + 0.01 || s.position[i] < j.lower - 0.01) return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 40, seed: 7 },
  );
});

test("stepped timing: nothing moves until advance(); advance carries the rounding remainder", async () => {
  const sim = new SimDriver({ model: arm, initialPosition: [0, 0.8, 0, 0] });
  await sim.start();
  const before = copyState(sim);
  await new Promise((r) => setTimeout(r, 50));
  const s = sim.readState();
  assert.equal(s.stamp, 0);
  assert.equal(sim.now(), 0);
  assert.deepEqual(Array.from(s.position), Array.from(before.q));
  sim.advance(0.01);
  assert.ok(Math.abs(sim.readState().stamp - 0.01) < 1e-12);
  assert.notEqual(sim.readState().position[1], before.q[1], "gravity should move the arm");
  // 1/30 s is 33.3 physics steps: over 30 calls, exactly one second is simulated.
  for (let k = 0; k < 30; k++) sim.advance(1 / 30);
  assert.ok(Math.abs(sim.simTime - 1.01) < 1e-9, `simTime ${sim.simTime}`);
  await sim.stop();
  await sim.stop();
});

test("realtime timing follows wall time, and a stalled event loop drops steps instead of bursting", async () => {
  const sim = new SimDriver({ model: arm, timing: "realtime", maxStepsPerWake: 10 });
  assert.throws(() => sim.advance(0.01), /realtime/);
  await sim.start();
  const wallStart = performance.now();
  await new Promise((r) => setTimeout(r, 200));
  const simElapsed = sim.now();
  const wallElapsed = (performance.now() - wallStart) / 1000;
  assert.ok(
    simElapsed > 0.5 * wallElapsed && simElapsed <= wallElapsed + 0.002,
    `sim time ${simElapsed} s after ${wallElapsed} s of wall time`,
  );
  // Block the event loop for 100 ms: the next look at the state runs at most 10 steps.
  const t0 = sim.now();
  const until = performance.now() + 100;
  while (performance.now() < until) {
    // busy wait: a stalled event loop
  }
  const t1 = sim.readState().stamp;
  assert.ok(t1 - t0 <= 0.01 + 1e-9, `after a 100 ms stall the twin jumped ${t1 - t0} s`);
  assert.ok(sim.droppedSteps > 50, `dropped ${sim.droppedSteps} steps`);
  await sim.stop();
  const stopped = sim.now();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(sim.now(), stopped, "a stopped twin does not move on");
});

test("non-finite efforts are applied as zero and counted; the state stays finite", () => {
  const sim = new SimDriver({ model: arm });
  const reference = new SimDriver({ model: arm });
  sim.sendEffort(Float64Array.from([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1]));
  reference.sendEffort(Float64Array.from([0, 0, 0, 1]));
  sim.advance(0.1);
  reference.advance(0.1);
  const s = sim.readState();
  assert.equal(sim.nonFiniteEfforts, 1);
  assert.deepEqual(Array.from(s.effort), [0, 0, 0, 1]);
  assert.ok(allFinite(s.position) && allFinite(s.velocity));
  assert.deepEqual(Array.from(s.position), Array.from(reference.readState().position));
});

test("efforts saturate at the URDF limit, and the clamped value is what acts and is reported", () => {
  const sim = new SimDriver({ model: arm });
  const reference = new SimDriver({ model: arm });
  const command = Float64Array.from([100, -100, 2, 0]);
  sim.sendEffort(command);
  command[2] = 3; // sendEffort copied: changing the caller's array afterwards changes nothing
  reference.sendEffort(Float64Array.from([4.1, -4.1, 2, 0]));
  sim.advance(0.05);
  reference.advance(0.05);
  assert.deepEqual(Array.from(sim.readState().effort), [4.1, -4.1, 2, 0]);
  assert.equal(sim.saturatedEfforts, 2);
  assert.deepEqual(Array.from(sim.readState().position), Array.from(reference.readState().position));
});

test("readState returns one reused object; setState and bad input", () => {
  const sim = new SimDriver({ model: arm });
  assert.equal(sim.readState(), sim.readState());
  sim.setState([0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]);
  assert.deepEqual(Array.from(sim.readState().position), [0.1, 0.2, 0.3, 0.4]);
  assert.deepEqual(Array.from(sim.readState().velocity), [1, 2, 3, 4]);
  assert.throws(() => sim.setState([0, 0, 0]), /expected 4 values, got 3/);
  assert.throws(() => sim.setState([0, 0, Number.NaN, 0]), /value 2 must be finite/);
  assert.throws(() => sim.sendEffort(new Float64Array(3)), /expected 4 efforts/);
  assert.throws(() => new SimDriver({ model: arm, physicsRateHz: 0 }), /physicsRateHz/);
  // Friction this sharp cannot be integrated explicitly at 1 kHz: a clear error, not chatter.
  assert.throws(() => new SimDriver({ model: arm, frictionSmoothing: 0.001 }), /frictionSmoothing above/);
});

test("sensor noise is reproducible from the seed and leaves the physics alone", () => {
  const a = new SimDriver({ model: arm, positionNoise: 0.01, velocityNoise: 0.1, seed: 3 });
  const b = new SimDriver({ model: arm, positionNoise: 0.01, velocityNoise: 0.1, seed: 3 });
  const clean = new SimDriver({ model: arm });
  for (const sim of [a, b, clean]) sim.advance(0.05);
  const pa = Array.from(a.readState().position);
  assert.deepEqual(pa, Array.from(b.readState().position));
  const truth = clean.readState().position;
  const error = pa.map((x, i) => Math.abs(x - truth[i]));
  assert.ok(Math.max(...error) > 1e-4 && Math.max(...error) < 0.06, `noise ${error}`);
  // One sample per physics step: a second reading before the next step is the same sample.
  assert.deepEqual(Array.from(a.readState().position), pa);
  // The noise is on the reading only: over many steps the readings average to the clean twin.
  const mean = new Float64Array(4);
  for (let k = 0; k < 2000; k++) {
    a.step();
    clean.step();
    const reading = a.readState().position;
    const exact = clean.readState().position;
    for (let i = 0; i < 4; i++) mean[i] += (reading[i] - exact[i]) / 2000;
  }
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(mean[i]) < 2e-3, `joint ${i}: ${mean[i]}`);
});
