import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { createBatch, ReplayBuffer } from "../../src/mbpo/replay-buffer.js";
import { type ActorWeights, type LayerWeights, Sac, type SacJSON, samplePolicy } from "../../src/mbpo/sac.js";
import { Rng } from "../../src/util/rng.js";
import { randomBatch } from "../support/batches.js";

await tf.setBackend("wasm");
await tf.ready();

const TINY = { hiddenSizes: [2], batchSize: 2 };

function layer(inputs: number, outputs: number, weight: number[], bias: number[]): LayerWeights {
  return { inputs, outputs, weight: Float32Array.from(weight), bias: Float32Array.from(bias) };
}

/** An Rng whose normals are a fixed sequence, so that its position can be copied. */
class ScriptedRng extends Rng {
  constructor(public position = 0) {
    super(0);
  }
  override normal(): number {
    return Math.sin(1.7 * this.position++);
  }
}

/** Plain-JS forward of the actor from actorWeights(): ReLU hidden layers, linear output. */
function actorForward(weights: ActorWeights, obs: number[]): number[] {
  let x = obs;
  weights.layers.forEach((l, i) => {
    const outputs = l.bias.length;
    const y = Array.from(l.bias);
    for (let j = 0; j < outputs; j++)
      for (let k = 0; k < x.length; k++) y[j] += x[k] * l.weight[k * outputs + j];
    x = i + 1 < weights.layers.length ? y.map((v) => Math.max(v, 0)) : y;
  });
  return x;
}

describe("Sac targets", () => {
  it("match y = r + γ(1−d)(min Q'(s',a') − α log π(a'|s')) computed by hand", async () => {
    const sac = new Sac(1, 1, new Rng(1), TINY);
    // Actor: h = relu(s·[1, −1] + [0.1, 0.2]); μ = 0.5 h0 − 0.3 h1; log σ = 0.1 h0 + 0.2 h1 − 1.
    await sac.setWeights("actor", [
      layer(1, 2, [1, -1], [0.1, 0.2]),
      layer(2, 2, [0.5, 0.1, -0.3, 0.2], [0, -1]),
    ]);
    // Q1': h = relu(s'·[1, 0.5] + a'·[−1, 2] + [0, 0.1]); Q = h0 − 0.5 h1 + 0.2.
    await sac.setWeights("q1Target", [layer(2, 2, [1, 0.5, -1, 2], [0, 0.1]), layer(2, 1, [1, -0.5], [0.2])]);
    // Q2': h = relu(s'·[−0.5, 1] + a'·[0.3, 0.3] + [0.2, 0]); Q = 0.8 h0 + 0.4 h1 − 0.1.
    await sac.setWeights("q2Target", [
      layer(2, 2, [-0.5, 1, 0.3, 0.3], [0.2, 0]),
      layer(2, 1, [0.8, 0.4], [-0.1]),
    ]);
    sac.setAlpha(0.3);
    const batch = createBatch(1, 1, 2);
    batch.nextObs.set([0.5, -2]);
    batch.reward.set([1, -0.5]);
    batch.terminated.set([0, 1]);
    const eps = [0.7, -1.2];

    const relu = (v: number) => Math.max(v, 0);
    const expected = [0, 1].map((i) => {
      const s = batch.nextObs[i];
      const h0 = relu(s + 0.1);
      const h1 = relu(-s + 0.2);
      const mu = 0.5 * h0 - 0.3 * h1;
      const logStd = 0.1 * h0 + 0.2 * h1 - 1;
      const u = mu + Math.exp(logStd) * eps[i];
      const a = Math.tanh(u);
      const logProb = -0.5 * eps[i] ** 2 - logStd - 0.5 * Math.log(2 * Math.PI) - Math.log(1 - a * a);
      const q1 = relu(s - a) - 0.5 * relu(0.5 * s + 2 * a + 0.1) + 0.2;
      const q2 = 0.8 * relu(-0.5 * s + 0.3 * a + 0.2) + 0.4 * relu(s + 0.3 * a) - 0.1;
      return batch.reward[i] + 0.99 * (1 - batch.terminated[i]) * (Math.min(q1, q2) - 0.3 * logProb);
    });
    const y = await sac.targets(batch, Float32Array.from(eps));
    assert.equal(y.length, 2);
    for (let i = 0; i < 2; i++)
      assert.ok(Math.abs(y[i] - expected[i]) < 1e-5, `row ${i}: ${y[i]} vs ${expected[i]}`);
    assert.equal(y[1], -0.5); // terminated: no bootstrap
    assert.notEqual(expected[0], 1); // the first row does bootstrap
    sac.dispose();
  });
});

describe("squashed Gaussian", () => {
  /** Standard normal probability of [lo, hi] by Simpson's rule. */
  function normalMass(lo: number, hi: number, mean: number, std: number): number {
    const n = 2000;
    const h = (hi - lo) / n;
    const pdf = (u: number) => Math.exp(-0.5 * ((u - mean) / std) ** 2) / (std * Math.sqrt(2 * Math.PI));
    let sum = pdf(lo) + pdf(hi);
    for (let i = 1; i < n; i++) sum += (i % 2 === 1 ? 4 : 2) * pdf(lo + i * h);
    return (sum * h) / 3;
  }

  it("log π(a) is the density of tanh(u), u ~ N(μ, σ²): checked against interval probabilities", async () => {
    const mean = 0.4;
    const logStd = -0.3;
    const std = Math.exp(logStd);
    const grid = [-0.95, -0.6, -0.2, 0, 0.3, 0.7, 0.9, 0.99];
    const eps = grid.map((a) => (Math.atanh(a) - mean) / std);
    const { action, logProb } = tf.tidy(() =>
      samplePolicy(
        tf.tensor2d(
          grid.flatMap(() => [mean, logStd]),
          [grid.length, 2],
        ),
        tf.tensor2d(eps, [grid.length, 1]),
        { logStdMin: -20, logStdMax: 2 },
      ),
    );
    const actions = action.dataSync();
    const logProbs = logProb.dataSync();
    tf.dispose([action, logProb]);
    grid.forEach((a, i) => {
      assert.ok(Math.abs(actions[i] - a) < 1e-5, `action ${actions[i]} vs ${a}`);
      const h = 1e-4 * (1 - Math.abs(a));
      const density = normalMass(Math.atanh(a - h), Math.atanh(a + h), mean, std) / (2 * h);
      assert.ok(
        Math.abs(Math.exp(logProbs[i]) / density - 1) < 2e-3,
        `a=${a}: ${Math.exp(logProbs[i])} vs ${density}`,
      );
    });
  });

  it("sums over action dimensions, stays finite when saturated, and clamps log σ", async () => {
    const bounds = { logStdMin: -20, logStdMax: 2 };
    const [joint, first, second, saturated, clamped, atBound] = tf.tidy(() => [
      samplePolicy(tf.tensor2d([[0.1, -0.5, 0.2, 0.3]]), tf.tensor2d([[0.4, -1.1]]), bounds).logProb,
      samplePolicy(tf.tensor2d([[0.1, 0.2]]), tf.tensor2d([[0.4]]), bounds).logProb,
      samplePolicy(tf.tensor2d([[-0.5, 0.3]]), tf.tensor2d([[-1.1]]), bounds).logProb,
      samplePolicy(tf.tensor2d([[30, -1]]), tf.tensor2d([[0]]), bounds).logProb,
      samplePolicy(tf.tensor2d([[0, 5]]), tf.tensor2d([[0.3]]), bounds).logProb,
      samplePolicy(tf.tensor2d([[0, 2]]), tf.tensor2d([[0.3]]), bounds).logProb,
    ]);
    const value = (t: tf.Tensor) => t.dataSync()[0];
    assert.ok(Math.abs(value(joint) - value(first) - value(second)) < 1e-5);
    // u = 30: 1 − tanh² underflows in float32, the softplus form does not (log(1−tanh²30) ≈ −58.6).
    assert.ok(Number.isFinite(value(saturated)) && value(saturated) > 50, `${value(saturated)}`);
    assert.equal(value(clamped), value(atBound));
    tf.dispose([joint, first, second, saturated, clamped, atBound]);
  });
});

describe("Sac update", () => {
  it("moves the target critics by Polyak averaging", async () => {
    const sac = new Sac(3, 2, new Rng(2), { hiddenSizes: [8], batchSize: 16, polyakTau: 0.1 });
    const before = await sac.getWeights("q1Target");
    assert.deepEqual(before, await sac.getWeights("q1")); // targets start as copies
    await sac.update(randomBatch(3, 2, 16, new Rng(3)));
    const online = await sac.getWeights("q1");
    const after = await sac.getWeights("q1Target");
    after.forEach((l, i) => {
      for (const key of ["weight", "bias"] as const) {
        l[key].forEach((v, j) => {
          const expected = 0.9 * before[i][key][j] + 0.1 * online[i][key][j];
          assert.ok(Math.abs(v - expected) < 1e-6, `layer ${i} ${key}[${j}]: ${v} vs ${expected}`);
        });
      }
    });
    assert.notDeepEqual(after, before);
    sac.dispose();
  });

  it("raises α when the entropy is below target and lowers it when above", async () => {
    const batch = randomBatch(3, 1, 16, new Rng(4));
    // A 1-D tanh-Gaussian's entropy is at most log 2 < 5, and far above −50.
    const high = new Sac(3, 1, new Rng(5), { hiddenSizes: [8], batchSize: 16, targetEntropy: 5 });
    const low = new Sac(3, 1, new Rng(5), { hiddenSizes: [8], batchSize: 16, targetEntropy: -50 });
    for (let i = 0; i < 3; i++) {
      await high.update(batch);
      await low.update(batch);
    }
    assert.ok(high.alpha > 1, `α = ${high.alpha}`);
    assert.ok(low.alpha < 1, `α = ${low.alpha}`);
    // Fixed α stays put.
    const fixed = new Sac(3, 1, new Rng(5), {
      hiddenSizes: [8],
      batchSize: 16,
      autoTuneAlpha: false,
      initialAlpha: 0.2,
    });
    const losses = await fixed.update(batch);
    assert.equal(losses.alphaLoss, 0);
    assert.ok(Math.abs(fixed.alpha - 0.2) < 1e-7);
    for (const sac of [high, low, fixed]) sac.dispose();
  });

  it("leaks no tensors across updates, and dispose() frees everything", async () => {
    const start = tf.memory().numTensors;
    const sac = new Sac(4, 2, new Rng(6), { hiddenSizes: [16, 16], batchSize: 32 });
    const batch = randomBatch(4, 2, 32, new Rng(7));
    await sac.update(batch); // creates Adam's moment variables
    const afterFirst = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await sac.update(batch);
    await sac.targets(batch, new Float32Array(64));
    await sac.act(batch.obs, 32, new Float32Array(64), "sample");
    assert.equal(tf.memory().numTensors, afterFirst);
    sac.dispose();
    assert.equal(tf.memory().numTensors, start);
  });

  it("same seed, same numbers", async () => {
    const batch = randomBatch(4, 2, 32, new Rng(8));
    const run = async () => {
      const sac = new Sac(4, 2, new Rng(9), { hiddenSizes: [16], batchSize: 32 });
      const losses = [await sac.update(batch), await sac.update(batch)];
      sac.dispose();
      return losses;
    };
    const first = await run();
    assert.ok(Number.isFinite(first[0].qLoss));
    assert.deepEqual(first, await run());
  });

  it("learns a continuous bandit (best action a = s/2) in a few hundred updates", async () => {
    const rng = new Rng(10);
    const buffer = new ReplayBuffer(2000, 1, 1);
    for (let i = 0; i < 2000; i++) {
      const s = rng.range(-1, 1);
      const a = rng.range(-1, 1);
      buffer.add({ obs: [s], action: [a], reward: -((a - s / 2) ** 2) * 4, nextObs: [s], terminated: true });
    }
    const options = {
      hiddenSizes: [32, 32],
      batchSize: 64,
      criticLearningRate: 3e-3,
      actorLearningRate: 3e-3,
      alphaLearningRate: 3e-3,
    };
    const sac = new Sac(1, 1, new Rng(11), options);
    const states = Float32Array.from({ length: 21 }, (_, i) => -1 + i / 10);
    const meanError = async () => {
      const actions = new Float32Array(21);
      await sac.act(states, 21, actions, "mean");
      return states.reduce((sum, s, i) => sum + Math.abs(actions[i] - s / 2), 0) / 21;
    };
    const initialError = await meanError();
    let losses = await sac.updateMany(400, (out) => buffer.sampleBatch(64, rng, out));
    const finalError = await meanError();
    assert.ok(
      finalError < 0.1,
      `mean |a − s/2| = ${finalError} (was ${initialError}); last losses ${JSON.stringify(losses)}`,
    );
    assert.ok(finalError < initialError / 2);
    losses = await sac.updateMany(1, (out) => buffer.sampleBatch(64, rng, out));
    assert.ok(losses.qLoss < 0.5, `q loss ${losses.qLoss}`);
    sac.dispose();
  });
});

describe("Sac weights and checkpoints", () => {
  it("actorWeights() in a plain-JS MLP gives the tf actor's mean action", async () => {
    const sac = new Sac(5, 3, new Rng(12), { hiddenSizes: [64, 64], batchSize: 8 });
    await sac.update(randomBatch(5, 3, 8, new Rng(13))); // weights away from their initial values
    const weights = await sac.actorWeights();
    assert.deepEqual(weights.sizes, [5, 64, 64, 6]);
    const rng = new Rng(14);
    const obs = Float32Array.from({ length: 4 * 5 }, () => rng.normal());
    const tfActions = new Float32Array(4 * 3);
    await sac.act(obs, 4, tfActions, "mean");
    for (let row = 0; row < 4; row++) {
      const out = actorForward(weights, [...obs.subarray(5 * row, 5 * row + 5)]);
      for (let j = 0; j < 3; j++) {
        const plain = Math.tanh(out[j]);
        assert.ok(
          Math.abs(plain - tfActions[3 * row + j]) < 1e-5,
          `row ${row} action ${j}: ${plain} vs ${tfActions[3 * row + j]}`,
        );
      }
    }
    sac.dispose();
  });

  it("round-trips through JSON with Adam's state, and goes on with the same numbers", async () => {
    const options = { hiddenSizes: [16], batchSize: 16 };
    const batch = randomBatch(3, 2, 16, new Rng(15));
    const rng = new ScriptedRng();
    const sac = new Sac(3, 2, rng, options);
    for (let i = 0; i < 3; i++) await sac.update(batch);
    const json = JSON.parse(JSON.stringify(await sac.toJSON())) as SacJSON;
    assert.equal(json.optimizers.critic.iterations, 3);
    assert.equal(json.optimizers.critic.firstMoments.length, 8); // W, b of 2 layers × 2 critics
    const restored = await Sac.fromJSON(json, new ScriptedRng(rng.position));
    assert.equal(restored.updates, 3);
    assert.deepEqual(await restored.toJSON(), json);
    const next = await sac.update(batch);
    assert.deepEqual(await restored.update(batch), next);
    for (const name of ["actor", "q1", "q2Target"] as const) {
      assert.deepEqual(await restored.getWeights(name), await sac.getWeights(name), name);
    }
    // Without the moments (a fresh Adam) the same step would differ.
    const freshAdam = await Sac.fromJSON(
      {
        ...json,
        optimizers: {
          critic: { iterations: 0, firstMoments: [], secondMoments: [] },
          actor: { iterations: 0, firstMoments: [], secondMoments: [] },
          alpha: { iterations: 0, firstMoments: [], secondMoments: [] },
        },
      },
      new ScriptedRng(rng.position - 2 * 16 * 2),
    );
    assert.notDeepEqual(await freshAdam.update(batch), next);
    await assert.rejects(
      Sac.fromJSON({ ...json, kind: "x" } as unknown as SacJSON, rng),
      /kind is x, expected sac/,
    );
    for (const s of [sac, restored, freshAdam]) s.dispose();
  });

  it("rejects bad sizes and options with clear messages", async () => {
    assert.throws(() => new Sac(0, 2, new Rng(1)), /obsSize must be a positive integer/);
    assert.throws(() => new Sac(3, 2, new Rng(1), { discount: 2 }), /discount must be in \[0, 1\]/);
    const sac = new Sac(3, 2, new Rng(1), { hiddenSizes: [4], batchSize: 4 });
    await assert.rejects(sac.update(createBatch(4, 2, 4)), /batch has obs 4, action 2; expected 3, 2/);
    await assert.rejects(sac.setWeights("q1", []), /0 layers given, network has 2/);
    sac.dispose();
  });
});
