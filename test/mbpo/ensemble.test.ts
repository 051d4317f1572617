import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import {
  type EnsembleEpoch,
  type EnsembleHyperparameters,
  ProbabilisticEnsemble,
} from "../../src/mbpo/ensemble.js";
import { Rng } from "../../src/util/rng.js";

await selectBackend("wasm");

/** A small ensemble that trains in well under a second. */
const SMALL: Partial<EnsembleHyperparameters> = {
  members: 4,
  elites: 2,
  hiddenSizes: [32, 32],
  weightDecays: [2.5e-5, 5e-5, 1e-4],
  batchSize: 64,
};

/** y = (sin(2 x0) + x1², x0 · x1) + N(0, noise²) for x uniform in [−1, 1]². */
function nonlinearData(rows: number, noise: number, rng: Rng): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(rows * 2);
  const y = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) {
    const [a, b] = [rng.range(-1, 1), rng.range(-1, 1)];
    x.set([a, b], 2 * r);
    y.set([Math.sin(2 * a) + b * b + noise * rng.normal(), a * b + noise * rng.normal()], 2 * r);
  }
  return { x, y };
}

function variance(values: Float32Array, column: number, width: number): number {
  const rows = values.length / width;
  let mean = 0;
  for (let r = 0; r < rows; r++) mean += values[r * width + column] / rows;
  let sum = 0;
  for (let r = 0; r < rows; r++) sum += (values[r * width + column] - mean) ** 2;
  return sum / rows;
}

const softplus = (v: number) => Math.log1p(Math.exp(v));

describe("ProbabilisticEnsemble", () => {
  it("predicts every member's Gaussian and samples one member per row, with the documented shapes", async () => {
    const ensemble = new ProbabilisticEnsemble(3, 2, new Rng(1), SMALL);
    const rows = 5;
    const inputs = Float32Array.from({ length: rows * 3 }, (_, i) => Math.sin(i));
    const prediction = { mean: new Float32Array(4 * rows * 2), logvar: new Float32Array(4 * rows * 2) };
    await ensemble.predict(inputs, rows, prediction);
    assert.ok(prediction.mean.every(Number.isFinite) && prediction.logvar.every(Number.isFinite));
    // Different members (different initial weights) predict differently.
    assert.notDeepEqual(prediction.mean.slice(0, rows * 2), prediction.mean.slice(rows * 2, 2 * rows * 2));
    const out = { delta: new Float32Array(rows * 2), disagreement: new Float32Array(rows) };
    const members = new Int32Array(rows);
    ensemble.randomElites(rows, new Rng(2), members);
    assert.ok(members.every((m) => ensemble.elites.includes(m)));
    await ensemble.sample(inputs, rows, members, new Rng(3), out);
    assert.ok(out.delta.every(Number.isFinite));
    assert.ok(out.disagreement.every((d) => d > 0 && Number.isFinite(d)));
    const fromPrediction = new Float32Array(rows);
    ensemble.disagreement(prediction, rows, fromPrediction);
    for (let r = 0; r < rows; r++) assert.ok(Math.abs(fromPrediction[r] - out.disagreement[r]) < 1e-5);
    await assert.rejects(
      ensemble.predict(inputs, rows, { mean: new Float32Array(3), logvar: prediction.logvar }),
      /ProbabilisticEnsemble.predict: out arrays need 40 values for 5 rows/,
    );
    ensemble.dispose();
  });

  it("computes the Gaussian NLL and the objective of a hand-set linear ensemble", async () => {
    // No hidden layer: member e is [μ, r] = x·W + b with one input and one output.
    const ensemble = new ProbabilisticEnsemble(1, 1, new Rng(1), {
      members: 2,
      elites: 1,
      hiddenSizes: [],
      weightDecays: [0.1],
    });
    const [maxLv, minLv] = [0.5, -10];
    ensemble.setParameters({
      weights: [Float32Array.from([2, 0.3, -1, 0])], // [E=2, in=1, out=2]: (μ, r) weights
      biases: [Float32Array.from([0.5, -1, 0, 0.2])],
      maxLogvar: Float32Array.from([maxLv]),
      minLogvar: Float32Array.from([minLv]),
    });
    const x = [0, 1, -2];
    const y = [1, 2, -3];
    const params = [
      { w: [2, 0.3], b: [0.5, -1] },
      { w: [-1, 0], b: [0, 0.2] },
    ];
    const handNll = params.map(({ w, b }) => {
      let sum = 0;
      x.forEach((xi, i) => {
        const mu = w[0] * xi + b[0];
        const raw = w[1] * xi + b[1];
        let lv = maxLv - softplus(maxLv - raw);
        lv = minLv + softplus(lv - minLv);
        sum += 0.5 * ((y[i] - mu) ** 2 * Math.exp(-lv) + lv + Math.log(2 * Math.PI));
      });
      return sum / x.length;
    });
    const scores = await ensemble.evaluate(Float32Array.from(x), Float32Array.from(y));
    scores.nll.forEach((nll, e) => {
      assert.ok(Math.abs(nll - handNll[e]) < 1e-5, `member ${e}: ${nll} vs ${handNll[e]}`);
    });
    const objective = await ensemble.objective(Float32Array.from(x), Float32Array.from(y));
    const decay = 0.1 * 0.5 * (2 ** 2 + 0.3 ** 2 + 1 ** 2);
    assert.ok(Math.abs(objective.nll - (handNll[0] + handNll[1])) < 1e-4);
    assert.ok(Math.abs(objective.weightDecay - decay) < 1e-6);
    assert.ok(Math.abs(objective.boundPenalty - 0.01 * (maxLv - minLv)) < 1e-6);
    assert.ok(Math.abs(objective.total - (handNll[0] + handNll[1] + decay + 0.105)) < 1e-4);
    ensemble.dispose();
  });

  it("keeps the log-variance within its soft bounds for extreme raw outputs", async () => {
    const ensemble = new ProbabilisticEnsemble(1, 1, new Rng(1), {
      members: 2,
      elites: 1,
      hiddenSizes: [],
      weightDecays: [0],
    });
    const [maxLv, minLv] = [0.5, -10];
    // Member 0's raw log-variance is 1e4·x, member 1's −1e4·x.
    ensemble.setParameters({
      weights: [Float32Array.from([0, 1e4, 0, -1e4])],
      biases: [new Float32Array(4)],
      maxLogvar: Float32Array.from([maxLv]),
      minLogvar: Float32Array.from([minLv]),
    });
    const inputs = Float32Array.from([-1, -0.01, 0, 0.01, 1]);
    const prediction = { mean: new Float32Array(10), logvar: new Float32Array(10) };
    await ensemble.predict(inputs, 5, prediction);
    // The outer softplus can lift the top by at most log(1 + e^−(max−min)) ≈ 2.8e-5.
    const top = maxLv + Math.log1p(Math.exp(-(maxLv - minLv)));
    for (const lv of prediction.logvar) assert.ok(lv >= minLv && lv <= top + 1e-6, `log-variance ${lv}`);
    assert.ok(Math.abs(prediction.logvar[0] - minLv) < 1e-3, "raw −1e4 sits on the lower bound");
    assert.ok(Math.abs(prediction.logvar[4] - maxLv) < 1e-3, "raw +1e4 sits on the upper bound");
    ensemble.dispose();
  });

  it("draws a different bootstrap sample, with replacement, for every member", async () => {
    const ensemble = new ProbabilisticEnsemble(2, 1, new Rng(1), SMALL);
    const samples = ensemble.bootstrapIndices(500, new Rng(7));
    assert.equal(samples.length, 4);
    for (const indices of samples) {
      assert.equal(indices.length, 500);
      assert.ok(indices.every((i) => i >= 0 && i < 500));
      const distinct = new Set(indices).size;
      assert.ok(distinct > 270 && distinct < 360, `${distinct} distinct rows (expected about 63% of 500)`);
    }
    assert.notDeepEqual(samples[0], samples[1]);
    assert.notDeepEqual(samples[2], samples[3]);
    ensemble.dispose();
  });

  it("learns a nonlinear map: holdout MSE falls well below the variance of y", async () => {
    const rng = new Rng(11);
    const noise = 0.05;
    const { x, y } = nonlinearData(1500, noise, rng);
    const ensemble = new ProbabilisticEnsemble(2, 2, new Rng(12), { ...SMALL, hiddenSizes: [64, 64] });
    const report = await ensemble.train(x, y, rng, { maxEpochs: 25 });
    console.log(
      `learning test: ${report.epochs} epochs, elite MSE ${report.eliteMse.toFixed(4)}, ${report.seconds.toFixed(2)} s`,
    );
    // Standardised units: predicting the mean scores 1; the noise floor is noise² / var(y).
    const noiseFloor = Math.max(noise ** 2 / variance(y, 0, 2), noise ** 2 / variance(y, 1, 2));
    assert.ok(report.eliteMse < 0.05, `elite holdout MSE ${report.eliteMse} (noise floor ${noiseFloor})`);
    assert.ok(report.holdoutNll.every(Number.isFinite));
    assert.equal(report.holdoutRows, 300);
    assert.equal(report.trainRows, 1200);
    // De-standardised predictions are in y's own units.
    const inputs = Float32Array.from([0.5, -0.5]);
    const prediction = { mean: new Float32Array(4 * 2), logvar: new Float32Array(4 * 2) };
    await ensemble.predict(inputs, 1, prediction);
    const e = report.elites[0];
    assert.ok(Math.abs(prediction.mean[e * 2] - (Math.sin(1) + 0.25)) < 0.15);
    assert.ok(Math.abs(prediction.mean[e * 2 + 1] - -0.25) < 0.15);
    ensemble.dispose();
  });

  it("stops early when the holdout stops improving, and keeps each member's best weights", async () => {
    // Targets independent of the inputs: nothing to learn, so the holdout MSE stalls at once.
    const rng = new Rng(21);
    const rows = 400;
    const x = Float32Array.from({ length: rows * 2 }, () => rng.normal());
    const y = Float32Array.from({ length: rows }, () => rng.normal());
    const ensemble = new ProbabilisticEnsemble(2, 1, new Rng(22), SMALL);
    const history: EnsembleEpoch[] = [];
    const report = await ensemble.train(x, y, rng, { maxEpochs: 100, onEpoch: (e) => history.push(e) });
    assert.ok(report.stoppedEarly);
    assert.ok(report.epochs < 40, `${report.epochs} epochs`);
    assert.equal(history.length, report.epochs);
    // The last `patience` epochs brought no improvement to any member.
    for (const epoch of history.slice(-5)) assert.ok(epoch.improved.every((i) => !i));
    // Each member's final holdout MSE is the one of the epoch whose weights it kept.
    report.bestEpoch.forEach((epoch, e) => {
      if (epoch === 0) return;
      const seen = history[epoch - 1].holdoutMse[e];
      assert.ok(
        Math.abs(report.holdoutMse[e] - seen) < 1e-6,
        `member ${e}: ${report.holdoutMse[e]} vs ${seen}`,
      );
    });
    ensemble.dispose();
  });

  it("chooses as elites the members with the lowest holdout MSE, never corrupted ones", async () => {
    const rng = new Rng(31);
    const { x, y } = nonlinearData(600, 0.05, rng);
    const ensemble = new ProbabilisticEnsemble(2, 2, new Rng(32), SMALL);
    await ensemble.train(x, y, rng, { maxEpochs: 10 });
    // Spoil members 0 and 3: scale their output layer and shift its bias.
    const parameters = await ensemble.getParameters();
    const last = parameters.weights.length - 1;
    const perMember = parameters.weights[last].length / 4;
    const biasPerMember = parameters.biases[last].length / 4;
    for (const e of [0, 3]) {
      for (let i = 0; i < perMember; i++) parameters.weights[last][e * perMember + i] *= 20;
      for (let i = 0; i < biasPerMember; i++) parameters.biases[last][e * biasPerMember + i] += 3;
    }
    ensemble.setParameters(parameters);
    const report = await ensemble.train(x, y, rng, { maxEpochs: 1 });
    assert.deepEqual([...report.elites].sort(), [1, 2]);
    const ranked = report.holdoutMse.map((mse, e) => ({ mse, e })).sort((a, b) => a.mse - b.mse);
    assert.deepEqual(
      report.elites,
      ranked.slice(0, 2).map((m) => m.e),
    );
    assert.ok(
      Math.min(report.holdoutMse[0], report.holdoutMse[3]) >
        Math.max(report.holdoutMse[1], report.holdoutMse[2]),
    );
    ensemble.dispose();
  });

  it("round-trips through JSON to identical predictions, elites and training", async () => {
    const rng = new Rng(41);
    const { x, y } = nonlinearData(300, 0.05, rng);
    const ensemble = new ProbabilisticEnsemble(2, 2, new Rng(42), SMALL);
    await ensemble.train(x, y, rng, { maxEpochs: 3 });
    const json = JSON.parse(JSON.stringify(await ensemble.toJSON()));
    const copy = await ProbabilisticEnsemble.fromJSON(json, new Rng(0));
    assert.deepEqual(copy.elites, ensemble.elites);
    const predict = async (model: ProbabilisticEnsemble) => {
      const out = { mean: new Float32Array(4 * 10 * 2), logvar: new Float32Array(4 * 10 * 2) };
      await model.predict(x.subarray(0, 20), 10, out);
      return out;
    };
    const fromCopy = await predict(copy);
    assert.ok(
      fromCopy.mean.some((m) => m !== 0),
      "the copy predicted something",
    );
    assert.deepEqual(fromCopy, await predict(ensemble));
    // Adam's state came along: one more epoch from the same seed gives the same weights.
    await ensemble.train(x, y, new Rng(5), { maxEpochs: 1 });
    await copy.train(x, y, new Rng(5), { maxEpochs: 1 });
    assert.deepEqual(await copy.getParameters(), await ensemble.getParameters());
    await assert.rejects(
      ProbabilisticEnsemble.fromJSON({ ...json, kind: "sac" }, new Rng(0)),
      /ensemble checkpoint: kind is sac, expected probabilistic-ensemble/,
    );
    ensemble.dispose();
    copy.dispose();
  });

  it("gives the same numbers from the same seed", async () => {
    const run = async () => {
      const rng = new Rng(51);
      const { x, y } = nonlinearData(300, 0.1, rng);
      const ensemble = new ProbabilisticEnsemble(2, 2, new Rng(52), SMALL);
      const report = await ensemble.train(x, y, rng, { maxEpochs: 3 });
      const out = { delta: new Float32Array(20), disagreement: new Float32Array(10) };
      const members = new Int32Array(10);
      ensemble.randomElites(10, rng, members);
      await ensemble.sample(x.subarray(0, 20), 10, members, rng, out);
      ensemble.dispose();
      return { mse: report.holdoutMse, nll: report.holdoutNll, elites: report.elites, out };
    };
    assert.deepEqual(await run(), await run());
  });

  it("leaves no tensors behind across train, predict and sample", async () => {
    const rng = new Rng(61);
    const { x, y } = nonlinearData(200, 0.1, rng);
    const ensemble = new ProbabilisticEnsemble(2, 2, new Rng(62), SMALL);
    await ensemble.train(x, y, rng, { maxEpochs: 1 }); // creates Adam's moments once
    const before = tf.memory().numTensors;
    const prediction = { mean: new Float32Array(4 * 100 * 2), logvar: new Float32Array(4 * 100 * 2) };
    const out = { delta: new Float32Array(200), disagreement: new Float32Array(100) };
    const members = new Int32Array(100);
    for (let i = 0; i < 3; i++) {
      await ensemble.train(x, y, rng, { maxEpochs: 2 });
      await ensemble.predict(x, 100, prediction);
      ensemble.randomElites(100, rng, members);
      await ensemble.sample(x, 100, members, rng, out);
      await ensemble.evaluate(x, y);
      await ensemble.objective(x, y);
    }
    assert.equal(tf.memory().numTensors, before);
    ensemble.dispose();
    // dispose() frees the variables, Adam's moments and everything else the ensemble made.
    const empty = tf.memory().numTensors;
    new ProbabilisticEnsemble(2, 2, new Rng(63), SMALL).dispose();
    assert.equal(tf.memory().numTensors, empty);
  });

  it("rejects bad shapes and options with one-line errors", async () => {
    assert.throws(
      () => new ProbabilisticEnsemble(2, 2, new Rng(1), { elites: 9 }),
      /ProbabilisticEnsemble: option elites \(9\) exceeds members \(7\)/,
    );
    assert.throws(
      () => new ProbabilisticEnsemble(2, 2, new Rng(1), { hiddenSizes: [8] }),
      /option weightDecays must be 2 non-negative numbers/,
    );
    const ensemble = new ProbabilisticEnsemble(2, 1, new Rng(1), SMALL);
    await assert.rejects(
      ensemble.train(new Float32Array(6), new Float32Array(2), new Rng(1)),
      /ProbabilisticEnsemble.train: inputs \(6 values\) and targets \(2\) are not N×2 and N×1/,
    );
    await assert.rejects(
      ensemble.train(new Float32Array(4), new Float32Array(2), new Rng(1)),
      /leave no holdout/,
    );
    ensemble.dispose();
  });
});
