/**
 * Policies: the MLP against a hand-computed network, its shape checks and JSON round trip; the
 * random policy's bounds and seeding; the PD policy's signs, clamping and targets; and the PD policy
 * closing the loop on urdf/arm.urdf (rigid-body dynamics integrated in the test, 1 kHz physics under
 * a 50 Hz policy, gravity compensation added as the control loop does).
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ARM_PD_GAINS,
  createPolicy,
  ExcitePolicy,
  MlpPolicy,
  type MlpSpec,
  PdPolicy,
  POLICY_NAMES,
  RandomPolicy,
  ZeroPolicy,
} from "../../src/control/policies/index.js";
import type { PolicyContext } from "../../src/control/policy.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import type { RobotModel } from "../../src/robot/types.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { ReachTask } from "../../src/tasks/reach.js";
import type { TaskEpisode } from "../../src/tasks/task.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));
const task = new ReachTask(arm);

function context(
  position: number[],
  velocity: number[],
  torqueScale: number[],
  actionDamping = 0,
): PolicyContext {
  return {
    state: {
      stamp: 0,
      position: Float64Array.from(position),
      velocity: Float64Array.from(velocity),
      effort: new Float64Array(position.length),
    },
    torqueScale: Float64Array.from(torqueScale),
    actionDamping: new Float64Array(position.length).fill(actionDamping),
  };
}

const noContext = context([0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]);
const episode: TaskEpisode = { startPosition: new Float64Array(4), goal: new Float64Array(3) };

/**
 * sizes 2-3-2, ReLU. For x = (1, −2): x·W0 + b0 = (0, −2, −5) + (0.1, 3, 0) = (0.1, 1, −5), ReLU →
 * (0.1, 1, 0); then x·W1 + b1 = (0.1 + 2, −0.1 + 0.5) + (0, −0.4) = (2.1, 0), so the action is
 * (tanh 2.1, 0).
 */
function smallSpec(): MlpSpec {
  return {
    sizes: [2, 3, 2],
    activation: "relu",
    weights: [Float32Array.from([1, 0, -1, 0.5, 1, 2]), Float32Array.from([1, -1, 2, 0.5, 3, 1])],
    biases: [Float32Array.from([0.1, 3, 0]), Float32Array.from([0, -0.4])],
  };
}

describe("MlpPolicy", () => {
  it("computes a hand-computed small network", () => {
    const policy = new MlpPolicy(smallSpec());
    const out = new Float32Array(2);
    policy.act(Float32Array.from([1, -2]), noContext, out);
    assert.ok(Math.abs(out[0] - Math.tanh(2.1)) < 1e-6, `${out[0]}`);
    assert.ok(Math.abs(out[1]) < 1e-6, `${out[1]}`);
  });

  it("applies tanh and SiLU hidden activations and the observation normaliser", () => {
    // One hidden unit h = act(x0 − x1), output y = 2h: for x = (1.5, 1) → pre-activation 0.5.
    const spec = (activation: "tanh" | "silu"): MlpSpec => ({
      sizes: [2, 1, 1],
      activation,
      weights: [Float32Array.from([1, -1]), Float32Array.from([2])],
      biases: [Float32Array.from([0]), Float32Array.from([0])],
    });
    const out = new Float32Array(1);
    new MlpPolicy(spec("tanh")).act(Float32Array.from([1.5, 1]), noContext, out);
    assert.ok(Math.abs(out[0] - Math.tanh(2 * Math.tanh(0.5))) < 1e-6);
    new MlpPolicy(spec("silu")).act(Float32Array.from([1.5, 1]), noContext, out);
    assert.ok(Math.abs(out[0] - Math.tanh((2 * 0.5) / (1 + Math.exp(-0.5)))) < 1e-6);
    // Normalised: ((3 − 1)/4, (−1 − 1)/2) = (0.5, −1) → pre-activation 1.5.
    const normalised = new MlpPolicy({
      ...spec("tanh"),
      obsMean: Float32Array.from([1, 1]),
      obsStd: Float32Array.from([4, 2]),
    });
    normalised.act(Float32Array.from([3, -1]), noContext, out);
    assert.ok(Math.abs(out[0] - Math.tanh(2 * Math.tanh(1.5))) < 1e-6);
  });

  it("reads a 2·actionSize output as mean and clamped log-std, as SAC's actor", () => {
    // Output (2.1, 0, 5, −30) for the small network's input: log σ clamps to (2, −20).
    const base = smallSpec();
    const spec: MlpSpec = {
      ...base,
      sizes: [2, 3, 4],
      weights: [base.weights[0], Float32Array.from([1, -1, 0, 0, 2, 0.5, 0, 0, 3, 1, 0, 0])],
      biases: [base.biases[0], Float32Array.from([0, -0.4, 5, -30])],
      actionSize: 2,
    };
    const obs = Float32Array.from([1, -2]);
    const out = new Float32Array(2);
    new MlpPolicy(spec).act(obs, noContext, out);
    assert.ok(
      Math.abs(out[0] - Math.tanh(2.1)) < 1e-6 && Math.abs(out[1]) < 1e-6,
      "deterministic = tanh(mean)",
    );

    const stochastic = new MlpPolicy(spec, { stochastic: true, rng: new Rng(9) });
    const mirror = new Rng(9);
    for (let k = 0; k < 5; k++) {
      stochastic.act(obs, noContext, out);
      const e0 = mirror.normal();
      const e1 = mirror.normal();
      assert.ok(Math.abs(out[0] - Math.tanh(2.1 + Math.exp(2) * e0)) < 1e-6);
      assert.ok(Math.abs(out[1] - Math.tanh(0 + Math.exp(-20) * e1)) < 1e-6);
    }
  });

  it("keeps stochastic actions within [−1, 1] for any observation", () => {
    const rng = new Rng(1);
    const sizes = [5, 8, 6];
    const weights = [0, 1].map((l) =>
      Float32Array.from({ length: sizes[l] * sizes[l + 1] }, () => rng.range(-3, 3)),
    );
    const biases = [1, 2].map((l) => Float32Array.from({ length: sizes[l] }, () => rng.range(-3, 3)));
    const policy = new MlpPolicy(
      { sizes, activation: "silu", weights, biases, actionSize: 3 },
      { stochastic: true, rng },
    );
    const out = new Float32Array(3);
    fc.assert(
      fc.property(
        fc.float32Array({ minLength: 5, maxLength: 5, noNaN: true, noDefaultInfinity: true }),
        (obs) => {
          policy.act(obs, noContext, out);
          for (const a of out) assert.ok(a >= -1 && a <= 1, `action ${a}`);
        },
      ),
      { numRuns: 300, seed: 3 },
    );
  });

  it("rejects wrong shapes and non-finite weights, naming the layer and the expected size", () => {
    const spec = smallSpec();
    assert.throws(
      () => new MlpPolicy({ ...spec, weights: [spec.weights[0], new Float32Array(5)] }),
      /mlp: weights\[1\] has 5 values; expected 6 \(layer 1: 3 inputs × 2 outputs\)/,
    );
    assert.throws(
      () => new MlpPolicy({ ...spec, biases: [new Float32Array(2), spec.biases[1]] }),
      /mlp: biases\[0\] has 2 values; expected 3 \(layer 0: 3 outputs\)/,
    );
    assert.throws(() => new MlpPolicy({ ...spec, weights: [spec.weights[0]] }), /expected 2 weight arrays/);
    const bad = Float32Array.from(spec.weights[1]);
    bad[4] = Number.NaN;
    assert.throws(
      () => new MlpPolicy({ ...spec, weights: [spec.weights[0], bad] }),
      /weights\[1\]\[4\] is NaN/,
    );
    assert.throws(
      () => new MlpPolicy({ ...spec, actionSize: 3 }),
      /output layer has 2 units; expected actionSize \(3\)/,
    );
    assert.throws(
      () => new MlpPolicy({ ...spec, activation: "gelu" as never }),
      /activation must be one of relu, tanh, silu/,
    );
    assert.throws(() => new MlpPolicy(spec, { stochastic: true, rng: new Rng(1) }), /needs a log-std head/);
    assert.throws(
      () => new MlpPolicy({ ...spec, obsMean: new Float32Array(2), obsStd: Float32Array.from([1, 0]) }),
      /obsStd\[1\] = 0/,
    );
  });

  it("survives a JSON round trip exactly, and fromJSON checks the fields", () => {
    const rng = new Rng(2);
    const sizes = [4, 7, 6];
    const policy = new MlpPolicy({
      sizes,
      activation: "tanh",
      weights: [0, 1].map((l) => Float32Array.from({ length: sizes[l] * sizes[l + 1] }, () => rng.normal())),
      biases: [1, 2].map((l) => Float32Array.from({ length: sizes[l] }, () => rng.normal())),
      actionSize: 3,
      obsMean: Float32Array.from([0.1, 0.2, 0.3, 0.4]),
      obsStd: Float32Array.from([1, 2, 3, 0.5]),
    });
    const copy = MlpPolicy.fromJSON(JSON.parse(JSON.stringify(policy)));
    assert.deepEqual(copy.toJSON(), policy.toJSON());
    const a = new Float32Array(3);
    const b = new Float32Array(3);
    for (let k = 0; k < 20; k++) {
      const obs = Float32Array.from({ length: 4 }, () => rng.range(-2, 2));
      policy.act(obs, noContext, a);
      copy.act(obs, noContext, b);
      assert.deepEqual(b, a);
    }
    assert.throws(
      () => MlpPolicy.fromJSON({ ...policy.toJSON(), type: "linear" }),
      /field "type" must be "mlp"/,
    );
    assert.throws(
      () => MlpPolicy.fromJSON({ ...policy.toJSON(), biases: [[1, "x"]] }),
      /field "biases\[0\]"/,
    );
    assert.throws(() => MlpPolicy.fromJSON("{}"), /expected a JSON object/);
  });

  it("takes the SAC actor's export", () => {
    const base = smallSpec();
    const policy = MlpPolicy.fromActor({
      sizes: [2, 3, 4],
      activation: "relu",
      layers: [
        { weight: base.weights[0], bias: base.biases[0] },
        {
          weight: Float32Array.from([1, -1, 0, 0, 2, 0.5, 0, 0, 3, 1, 0, 0]),
          bias: Float32Array.from([0, -0.4, 0, 0]),
        },
      ],
      actionSize: 2,
      logStdMin: -5,
      logStdMax: 2,
    });
    const out = new Float32Array(2);
    policy.act(Float32Array.from([1, -2]), noContext, out);
    assert.ok(Math.abs(out[0] - Math.tanh(2.1)) < 1e-6);
    assert.equal(policy.logStdMin, -5);
  });
});

describe("ZeroPolicy and RandomPolicy", () => {
  it("zero always commands nothing", () => {
    const out = Float32Array.from([1, 2, 3, 4]);
    new ZeroPolicy().act(new Float32Array(17), noContext, out);
    assert.deepEqual(Array.from(out), [0, 0, 0, 0]);
  });

  it("random stays in [−1, 1], covers it, and repeats from its seed", () => {
    for (const smoothing of [0, 0.8]) {
      const a = new RandomPolicy(4, { seed: 5, smoothing });
      const b = new RandomPolicy(4, { seed: 5, smoothing });
      const outA = new Float32Array(4);
      const outB = new Float32Array(4);
      let lo = 0;
      let hi = 0;
      for (let t = 0; t < 2000; t++) {
        a.act(noContext.state.position as never, noContext, outA);
        b.act(noContext.state.position as never, noContext, outB);
        assert.deepEqual(outB, outA);
        for (const x of outA) {
          assert.ok(x >= -1 && x <= 1);
          lo = Math.min(lo, x);
          hi = Math.max(hi, x);
        }
      }
      assert.ok(lo < -0.95 && hi > 0.95, `smoothing ${smoothing}: range [${lo}, ${hi}]`);
    }
    const c = new RandomPolicy(4, { seed: 6 });
    const outC = new Float32Array(4);
    const outD = new Float32Array(4);
    c.act(new Float32Array(17), noContext, outC);
    new RandomPolicy(4, { seed: 5 }).act(new Float32Array(17), noContext, outD);
    assert.notDeepEqual(outC, outD);
  });

  it("smoothing correlates successive actions as documented", () => {
    const lag1 = (smoothing: number) => {
      const policy = new RandomPolicy(1, { seed: 2, smoothing });
      policy.reset(episode);
      const out = new Float32Array(1);
      const xs: number[] = [];
      for (let t = 0; t < 20000; t++) {
        policy.act(new Float32Array(1), noContext, out);
        xs.push(out[0]);
      }
      const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
      let num = 0;
      let den = 0;
      for (let t = 0; t < xs.length; t++) {
        den += (xs[t] - mean) ** 2;
        if (t > 0) num += (xs[t] - mean) * (xs[t - 1] - mean);
      }
      return num / den;
    };
    assert.ok(Math.abs(lag1(0)) < 0.03, `unsmoothed lag-1 correlation ${lag1(0)}`);
    assert.ok(Math.abs(lag1(0.8) - 0.8) < 0.05, `smoothed lag-1 correlation ${lag1(0.8)}`);
    assert.throws(() => new RandomPolicy(2, { seed: 1, smoothing: 1 }), /smoothing must be in \[0, 1\)/);
  });
});

describe("PdPolicy", () => {
  it("pushes toward the target, brakes against the velocity, and clamps to [−1, 1]", () => {
    const policy = new PdPolicy(arm, { kp: 2, kd: 0.5 });
    policy.setTarget([0.1, 0, 0, 0]);
    const out = new Float32Array(4);
    // Joint 1 below its target: τ = 2·0.1 = 0.2 N·m on a 4 N·m scale → 0.05. Joint 2 moving: −0.5·1/4.
    policy.act(new Float32Array(17), context([0, 0, 0, 0], [0, 1, 0, 0], [4, 4, 4, 4]), out);
    assert.ok(Math.abs(out[0] - 0.05) < 1e-7 && Math.abs(out[1] + 0.125) < 1e-7, `${out}`);
    assert.equal(out[2], 0);
    // The loop's own action damping (0.2 here) counts towards Kd: the policy adds only 0.3·q̇ of braking.
    policy.act(new Float32Array(17), context([0, 0, 0, 0], [0, 1, 0, 0], [4, 4, 4, 4], 0.2), out);
    assert.ok(Math.abs(out[0] - 0.05) < 1e-7 && Math.abs(out[1] + 0.075) < 1e-7, `${out}`);
    // Far from the target: clamped.
    policy.setTarget([3, -3, 0, 0]);
    policy.act(new Float32Array(17), context([0, 0, 0, 0], [0, 0, 0, 0], [0.5, 0.5, 1, 1]), out);
    assert.deepEqual(Array.from(out), [1, -1, 0, 0]);
    // The proportional term stops at pLimit = (damping + Kd)·0.4·velocity limit + friction.
    const limit = (0.03 + 0.5) * 0.4 * 4.8 + 0.03;
    assert.ok(Math.abs(policy.pLimit[0] - limit) < 1e-12);
    policy.setTarget([3, 0, 0, 0]);
    policy.act(new Float32Array(17), context([0, 0, 0, 0], [0, 0, 0, 0], [4, 4, 4, 4]), out);
    assert.ok(Math.abs(out[0] - limit / 4) < 1e-7, `${out[0]}`);
    const unlimited = new PdPolicy(arm, { kp: 2, kd: 0.5, cruiseSpeedFraction: Number.POSITIVE_INFINITY });
    unlimited.setTarget([3, 0, 0, 0]);
    unlimited.act(new Float32Array(17), context([0, 0, 0, 0], [0, 0, 0, 0], [8, 4, 4, 4]), out);
    assert.ok(Math.abs(out[0] - 0.75) < 1e-7, `${out[0]}`);
    // A broken state commands nothing.
    policy.act(new Float32Array(17), context([Number.NaN, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]), out);
    assert.equal(out[0], 0);
  });

  it("tracks the episode's goal pose after reset, and setTarget after that", () => {
    const policy = new PdPolicy(arm);
    const e = task.sampleEpisode(new Rng(4));
    policy.reset(e);
    assert.deepEqual(policy.target, e.goalPosition);
    policy.reset({ startPosition: Float64Array.from([0.1, 0.2, 0.3, 0.4]), goal: new Float64Array(3) });
    assert.deepEqual(Array.from(policy.target), [0.1, 0.2, 0.3, 0.4]);
    policy.setTarget([0, 0, 0, 0]);
    assert.deepEqual(Array.from(policy.target), [0, 0, 0, 0]);
    assert.throws(() => policy.setTarget([0, 0]), /target has 2 values; expected 4/);
    assert.throws(() => policy.setTarget([0, Number.NaN, 0, 0]), /target\[1\] \(joint2\) is NaN/);
    assert.deepEqual(Array.from(policy.kp), ARM_PD_GAINS.kp);
  });

  it("takes the short way round on a continuous joint", () => {
    const model: RobotModel = {
      ...arm,
      joints: arm.joints.map((j, i) =>
        i === 0 ? { ...j, type: "continuous", lower: -Infinity, upper: Infinity } : j,
      ),
    };
    const policy = new PdPolicy(model, { kp: 1, kd: 0, cruiseSpeedFraction: Number.POSITIVE_INFINITY });
    policy.setTarget([3, 0, 0, 0]);
    const out = new Float32Array(4);
    policy.act(new Float32Array(17), context([-3, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]), out);
    // 3 − (−3) = 6 rad is −0.283 rad the other way round.
    assert.ok(Math.abs(out[0] - (6 - 2 * Math.PI)) < 1e-6, `${out[0]}`);
  });

  it("asks for gains on a model the defaults are not for", () => {
    const twoJoints: RobotModel = { ...arm, dof: 2, joints: arm.joints.slice(0, 2) };
    assert.throws(
      () => new PdPolicy(twoJoints),
      /default gains are for the 4-joint arm; .* has 2 joints, pass kp and kd/,
    );
    assert.throws(() => new PdPolicy(arm, { kp: [1, 2], kd: 0 }), /kp has 2 values; expected 4/);
    assert.throws(() => new PdPolicy(arm, { kp: 1, kd: -1 }), /kd\[0\] = -1/);
  });
});

describe("createPolicy", () => {
  it("builds the named policies and lists the known ones for an unknown name", () => {
    const options = { task, model: arm, seed: 1 };
    assert.ok(createPolicy("zero", options) instanceof ZeroPolicy);
    assert.ok(createPolicy("random", options) instanceof RandomPolicy);
    assert.ok(createPolicy("pd", options) instanceof PdPolicy);
    assert.ok(createPolicy("excite", options) instanceof ExcitePolicy);
    assert.deepEqual(POLICY_NAMES, ["zero", "random", "pd", "excite"]);
    assert.throws(
      () => createPolicy("sac", options),
      /unknown policy "sac" \(known policies: zero, random, pd, excite, checkpoint:DIR\)/,
    );
  });
});

/**
 * The PD policy on the arm's rigid-body dynamics: semi-implicit Euler at 1 kHz with the URDF's
 * viscous damping and a smoothed Coulomb friction, the policy at 50 Hz, its torque (action ·
 * torqueScale, half the effort limit as the default config) plus gravity compensation held over
 * each control period. Returns the final end-effector distance, the largest final joint speed and the
 * largest joint speed on the way as a fraction of that joint's velocity limit.
 */
function closedLoopEpisode(seed: number): { distance: number; speed: number; peakSpeedFraction: number } {
  const dynamics = new Dynamics(arm);
  const policy = new PdPolicy(arm);
  const n = arm.dof;
  const e = task.sampleEpisode(new Rng(seed));
  policy.reset(e);
  const ctx = context(
    Array.from(e.startPosition),
    new Array(n).fill(0),
    arm.joints.map((j) => 0.5 * j.effort),
  );
  const q = ctx.state.position;
  const qd = ctx.state.velocity;
  const obs = new Float32Array(task.observationSize);
  const action = new Float32Array(n);
  const command = new Float64Array(n);
  const gravity = new Float64Array(n);
  const tau = new Float64Array(n);
  const qdd = new Float64Array(n);
  const physicsDt = 0.001;
  let peakSpeedFraction = 0;
  const substeps = 20;
  for (let step = 0; step < task.episodeSteps; step++) {
    task.observe(q, qd, e.goal, obs);
    policy.act(obs, ctx, action);
    dynamics.gravity(q, gravity);
    for (let i = 0; i < n; i++) command[i] = action[i] * ctx.torqueScale[i] + gravity[i];
    for (let s = 0; s < substeps; s++) {
      for (let i = 0; i < n; i++) {
        const j = arm.joints[i];
        tau[i] = command[i] - j.damping * qd[i] - j.friction * Math.tanh(qd[i] / 0.01);
      }
      dynamics.forwardDynamics(q, qd, tau, qdd);
      for (let i = 0; i < n; i++) {
        qd[i] += physicsDt * qdd[i];
        q[i] += physicsDt * qd[i];
        peakSpeedFraction = Math.max(peakSpeedFraction, Math.abs(qd[i]) / arm.joints[i].velocity);
      }
    }
  }
  task.observe(q, qd, e.goal, obs);
  return { distance: task.distance(obs), speed: Math.max(...Array.from(qd, Math.abs)), peakSpeedFraction };
}

describe("PdPolicy in closed loop on urdf/arm.urdf", () => {
  it("brings the end effector within the success radius within the episode", () => {
    const results = Array.from({ length: 20 }, (_, k) => closedLoopEpisode(100 + k));
    const successes = results.filter((r) => r.distance < task.config.successRadius).length;
    const summary = results.map((r) => `${(100 * r.distance).toFixed(2)} cm`).join(", ");
    assert.ok(successes >= 18, `${successes}/20 within the radius: ${summary}`);
    // No episode diverges or rings: every one ends close and nearly still.
    for (const r of results) {
      assert.ok(r.distance < 0.05, `final distance ${r.distance} m: ${summary}`);
      assert.ok(r.speed < 0.5, `final joint speed ${r.speed} rad/s`);
      // The safety filter has nothing to do: no joint reaches its URDF velocity limit.
      assert.ok(r.peakSpeedFraction < 1, `a joint reached ${r.peakSpeedFraction} of its velocity limit`);
    }
  });
});
