/**
 * The URDF prior under the ensemble: with an exact URDF it is the twin's control period, and
 * ResidualModel hands rollouts Δ_prior plus the ensemble's residual draw, with the disagreement in
 * units of the whole Δ.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { SimDriver } from "../../src/drivers/sim.js";
import { selectBackend } from "../../src/mbpo/backend.js";
import { type EnsembleSample, ProbabilisticEnsemble } from "../../src/mbpo/ensemble.js";
import { ResidualModel, RigidBodyPrior } from "../../src/mbpo/model-prior.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

await selectBackend("wasm");

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));
const n = arm.dof;
const CONTROL_HZ = 50;

/** Random model inputs (q, q̇, τ) at least `margin` rad inside the hard limits, |q̇| ≤ 1, |τ| ≤ effort. */
function randomInputs(rows: number, seed: number, margin = 0.3): Float64Array {
  const rng = new Rng(seed);
  const x = new Float64Array(rows * 3 * n);
  for (let r = 0; r < rows; r++) {
    arm.joints.forEach((j, i) => {
      x[r * 3 * n + i] = rng.range(j.lower + margin, j.upper - margin);
      x[r * 3 * n + n + i] = rng.range(-1, 1);
      x[r * 3 * n + 2 * n + i] = rng.range(-1, 1) * j.effort;
    });
  }
  return x;
}

describe("RigidBodyPrior", () => {
  it("with an exact URDF predicts the twin's control period to rounding", () => {
    const rows = 200;
    const inputs = randomInputs(rows, 3);
    const prior = new RigidBodyPrior(arm, CONTROL_HZ, 1000);
    assert.equal(prior.steps, 20);
    const predicted = new Float64Array(rows * 2 * n);
    prior.predict(inputs, rows, predicted);
    const twin = new SimDriver({ model: arm, physicsRateHz: 1000 });
    let worst = 0;
    let largest = 0;
    for (let r = 0; r < rows; r++) {
      const x = inputs.subarray(r * 3 * n, (r + 1) * 3 * n);
      twin.setState(x.subarray(0, n), x.subarray(n, 2 * n));
      twin.sendEffort(Float64Array.from(x.subarray(2 * n, 3 * n)));
      twin.advance(1 / CONTROL_HZ);
      const s = twin.readState();
      for (let j = 0; j < n; j++) {
        const dq = s.position[j] - x[j];
        const dqd = s.velocity[j] - x[n + j];
        worst = Math.max(
          worst,
          Math.abs(dq - predicted[r * 2 * n + j]),
          Math.abs(dqd - predicted[r * 2 * n + n + j]),
        );
        largest = Math.max(largest, Math.abs(dqd));
      }
    }
    assert.equal(twin.limitContactSteps, 0, "no row reaches a stop");
    // Same integrator, same rate: the only differences are the order of float operations.
    assert.ok(worst < 1e-12, `largest difference ${worst}`);
    assert.ok(largest > 1, "the torques move the arm (|Δq̇| above 1 rad/s somewhere)");
  });

  it("a wrong URDF is wrong by what the twin's arm differs by; a coarser rate by the integration error", () => {
    const rows = 50;
    const inputs = randomInputs(rows, 4);
    const exact = new Float64Array(rows * 2 * n);
    new RigidBodyPrior(arm, CONTROL_HZ, 1000).predict(inputs, rows, exact);
    const coarse = new Float64Array(rows * 2 * n);
    new RigidBodyPrior(arm, CONTROL_HZ, 250).predict(inputs, rows, coarse);
    const heavier = structuredClone(arm);
    for (const link of heavier.links) link.inertial.mass *= 1.2;
    for (const joint of heavier.joints) joint.armature *= 1.2;
    const wrong = new Float64Array(rows * 2 * n);
    new RigidBodyPrior(heavier, CONTROL_HZ, 1000).predict(inputs, rows, wrong);
    const gap = (a: Float64Array) => Math.max(...a.map((v, i) => Math.abs(v - exact[i])));
    const scale = Math.max(...exact.map(Math.abs));
    assert.ok(gap(coarse) > 0 && gap(coarse) < 0.05 * scale, `coarse: ${gap(coarse)} of ${scale}`);
    assert.ok(gap(wrong) > 0.05 * scale, `20% heavier: ${gap(wrong)} of ${scale}`);
  });

  it("stops a joint at its hard limit instead of passing it", () => {
    const prior = new RigidBodyPrior(arm, CONTROL_HZ, 1000);
    const x = new Float64Array(3 * n);
    x[1] = arm.joints[1].upper - 0.01;
    x[n + 1] = 3;
    x[2 * n + 1] = arm.joints[1].effort;
    const out = new Float64Array(2 * n);
    prior.predict(x, 1, out);
    assert.equal(x[1] + out[1], arm.joints[1].upper);
    assert.equal(x[n + 1] + out[n + 1], 0);
  });

  it("refuses a rate below the control rate and short arrays", () => {
    assert.throws(() => new RigidBodyPrior(arm, 50, 20), /at least the control rate/);
    assert.throws(() => new RigidBodyPrior(arm, 50, Number.POSITIVE_INFINITY), /finite/);
    const prior = new RigidBodyPrior(arm, 50, 1000);
    assert.throws(
      () => prior.predict(new Float64Array(3 * n), 2, new Float64Array(4 * n)),
      /too short for 2 rows/,
    );
  });
});

describe("ResidualModel", () => {
  it("adds the prior to the ensemble's draw and measures the disagreement in the given units", async () => {
    const rows = 64;
    const ensemble = new ProbabilisticEnsemble(3 * n, 2 * n, new Rng(1), {
      members: 3,
      elites: 3,
      hiddenSizes: [16],
      weightDecays: [0, 0],
      maxEpochs: 1,
    });
    const inputs = Float32Array.from(randomInputs(rows, 5));
    const prior = new RigidBodyPrior(arm, CONTROL_HZ, 1000);
    // Units of 4 × the ensemble's (untrained: unit) target std: the disagreement is a quarter.
    const units = new Array(2 * n).fill(4);
    const model = new ResidualModel(ensemble, prior, units);
    assert.equal(model.inputSize, 3 * n);
    const members = new Int32Array(rows).map((_, r) => r % 3);
    const plain: EnsembleSample = {
      delta: new Float32Array(rows * 2 * n),
      disagreement: new Float32Array(rows),
    };
    const residual: EnsembleSample = {
      delta: new Float32Array(rows * 2 * n),
      disagreement: new Float32Array(rows),
    };
    await ensemble.sample(inputs, rows, members, new Rng(9), plain);
    await model.sample(inputs, rows, members, new Rng(9), residual);
    const delta = new Float32Array(rows * 2 * n);
    prior.predict(inputs, rows, delta);
    for (let i = 0; i < rows * 2 * n; i++) {
      assert.ok(
        Math.abs(residual.delta[i] - (plain.delta[i] + delta[i])) <= 1e-6 * (1 + Math.abs(delta[i])),
        `value ${i}`,
      );
    }
    for (let r = 0; r < rows; r++) {
      assert.ok(plain.disagreement[r] > 0);
      assert.ok(
        Math.abs(residual.disagreement[r] - plain.disagreement[r] / 4) <= 1e-6 * plain.disagreement[r],
      );
    }
    ensemble.dispose();
  });
});
