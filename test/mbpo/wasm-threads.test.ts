/**
 * The wasm backend on several threads (src/mbpo/wasm-threads.ts): tfjs-backend-wasm's threaded
 * build, which tfjs itself never starts under Node.
 *
 * XNNPACK splits a product's output into tiles across its threads and computes every element with
 * the same kernel over the same inner order, and every other wasm kernel stays single-threaded, so
 * the learner's numbers must not depend on the thread count at all: checked bit for bit.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { ProbabilisticEnsemble } from "../../src/mbpo/ensemble.js";
import { Sac } from "../../src/mbpo/sac.js";
import { MAX_WASM_THREADS, setWasmThreads, wasmThreads } from "../../src/mbpo/wasm-threads.js";
import { Rng } from "../../src/util/rng.js";
import { randomBatch } from "../support/batches.js";

const BACKEND_MODULE = fileURLToPath(new URL("../../src/mbpo/backend.js", import.meta.url));
const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** Runs `body` on wasm with one thread, then with two, and returns both results. */
async function onOneAndTwo<T>(body: () => Promise<T>): Promise<{ one: T; two: T }> {
  assert.equal((await selectBackend("wasm", 1)).threads, 1);
  const one = await body();
  const selection = await selectBackend("wasm", 2);
  assert.equal(selection.threads, 2);
  assert.equal(wasmThreads(), 2);
  try {
    return { one, two: await body() };
  } finally {
    await selectBackend("wasm", 1);
  }
}

describe("wasm backend on threads", () => {
  after(async () => {
    await selectBackend("wasm", 1);
  });

  it("SAC updates give bit-identical losses and weights on two threads and on one", async () => {
    const batch = randomBatch(20, 6, 256, new Rng(1));
    const { one, two } = await onOneAndTwo(async () => {
      const sac = new Sac(20, 6, new Rng(2), { hiddenSizes: [128, 128], batchSize: 256 });
      const losses = [];
      for (let i = 0; i < 3; i++) losses.push(await sac.update(batch));
      const weights = await Promise.all((["actor", "q1", "q2"] as const).map((name) => sac.getWeights(name)));
      sac.dispose();
      return { losses, weights };
    });
    assert.deepEqual(two.losses, one.losses);
    assert.ok(one.losses[0].qLoss !== one.losses[2].qLoss, "the updates changed something");
    two.weights.forEach((network, n) => {
      network.forEach((layer, k) => {
        assert.deepEqual(layer.weight, one.weights[n][k].weight, `network ${n} layer ${k}`);
      });
    });
  });

  it("ensemble training and prediction are bit-identical on two threads and on one", async () => {
    const rng = new Rng(3);
    const rows = 512;
    const x = Float32Array.from({ length: rows * 12 }, () => rng.normal());
    const y = Float32Array.from({ length: rows * 8 }, (_, i) =>
      Math.tanh(x[Math.floor(i / 8) * 12 + (i % 8)]),
    );
    const { one, two } = await onOneAndTwo(async () => {
      const model = new ProbabilisticEnsemble(12, 8, new Rng(4), {
        members: 5,
        elites: 3,
        hiddenSizes: [128, 128],
        weightDecays: [2.5e-5, 5e-5, 1e-4],
        batchSize: 128,
      });
      const report = await model.train(x, y, new Rng(5), { maxEpochs: 2 });
      const prediction = { mean: new Float32Array(5 * rows * 8), logvar: new Float32Array(5 * rows * 8) };
      await model.predict(x, rows, prediction);
      const parameters = await model.getParameters();
      model.dispose();
      return { report, prediction, parameters };
    });
    // Everything but the wall time it took.
    assert.deepEqual({ ...two.report, seconds: 0 }, { ...one.report, seconds: 0 });
    assert.deepEqual(two.prediction, one.prediction);
    assert.deepEqual(two.parameters, one.parameters);
    assert.ok(one.prediction.mean.some((m) => m !== 0));
  });

  it("refuses a thread count outside 1 to 8 in one line, leaving the backend as it was", async () => {
    await selectBackend("wasm", 1);
    for (const bad of [0, MAX_WASM_THREADS + 1, 1.5, Number.NaN]) {
      assert.throws(
        () => setWasmThreads(bad),
        /^Error: wasm threads must be an integer from 1 to 8, got .+$/,
      );
      await assert.rejects(selectBackend("wasm", bad), /wasm threads must be an integer from 1 to 8/);
    }
    assert.equal(wasmThreads(), 1);
    assert.equal(tf.getBackend(), "wasm");
  });

  it("a process that ran on two threads exits by itself (the pool's workers do not hold it)", () => {
    const program = `
      const { selectBackend, tf } = await import(${JSON.stringify(BACKEND_MODULE)});
      const selection = await selectBackend("wasm", 2);
      const a = tf.ones([300, 300]);
      const sum = (await tf.sum(tf.matMul(a, a)).data())[0];
      console.log(selection.threads, sum);
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", program], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.signal, null, `still running after 60 s: ${run.stderr}`);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), `2 ${300 * 300 * 300}`);
  });

  it("train --tf-threads 9 is a one-line error before anything starts", () => {
    const run = spawnSync(
      process.execPath,
      [CLI, "train", "--driver", "sim", "--steps", "100", "--out", "/nonexistent/x", "--tf-threads", "9"],
      { encoding: "utf8", timeout: 60_000 },
    );
    assert.equal(run.status, 1);
    assert.equal(run.stderr.trim(), "mbpo-arm: --tf-threads must be from 1 to 8, got 9");
  });
});
