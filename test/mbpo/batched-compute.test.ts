import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { type EnsembleHyperparameters, ProbabilisticEnsemble } from "../../src/mbpo/ensemble.js";
import { Sac } from "../../src/mbpo/sac.js";
import { Rng } from "../../src/util/rng.js";
import { randomBatch } from "../support/batches.js";

await selectBackend("wasm");

/** Runs f on the cpu backend (the reference: its matMul is plain JS) and returns the values. */
async function onCpu(f: () => tf.Tensor): Promise<Float32Array> {
  await selectBackend("cpu");
  try {
    const t = f();
    const values = Float32Array.from(t.dataSync() as Float32Array);
    t.dispose();
    return values;
  } finally {
    await selectBackend("wasm");
  }
}

function randomValues(size: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: size }, () => rng.normal());
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  label: string,
) {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  assert.ok(worst <= tolerance, `${label}: largest difference ${worst} > ${tolerance}`);
}

describe("wasm BatchMatMul kernel (wasm-kernels.ts)", () => {
  const cases: { name: string; a: number[]; b: number[]; transposeA?: boolean; transposeB?: boolean }[] = [
    { name: "batch of 3", a: [3, 5, 4], b: [3, 4, 6] },
    { name: "batch of 1", a: [1, 5, 4], b: [1, 4, 6] },
    { name: "2-D", a: [5, 4], b: [4, 6] },
    { name: "shared left [rows, in] × [E, in, out]", a: [5, 4], b: [3, 4, 6] },
    { name: "shared left [1, rows, in]", a: [1, 5, 4], b: [3, 4, 6] },
    { name: "shared right [E, rows, in] × [in, out]", a: [3, 5, 4], b: [4, 6] },
    { name: "rank 4 batch", a: [2, 3, 5, 4], b: [2, 3, 4, 6] },
    { name: "transposeA", a: [3, 4, 5], b: [3, 4, 6], transposeA: true },
    { name: "transposeB", a: [3, 5, 4], b: [3, 6, 4], transposeB: true },
    { name: "both transposed", a: [3, 4, 5], b: [3, 6, 4], transposeA: true, transposeB: true },
    { name: "partial broadcast (stock kernel)", a: [2, 1, 5, 4], b: [1, 3, 4, 6] },
  ];
  for (const c of cases) {
    it(`matches the cpu backend: ${c.name}`, async () => {
      const rng = new Rng(c.name.length);
      const size = (shape: number[]) => shape.reduce((p, v) => p * v, 1);
      const a = randomValues(size(c.a), rng);
      const b = randomValues(size(c.b), rng);
      const product = () =>
        tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b), c.transposeA ?? false, c.transposeB ?? false);
      const before = tf.memory().numTensors;
      const got = tf.tidy(product);
      const values = Float32Array.from(got.dataSync() as Float32Array);
      const shape = got.shape;
      got.dispose();
      assert.equal(tf.memory().numTensors, before, "no tensor left behind");
      const expected = await onCpu(() => tf.tidy(product));
      assert.deepEqual(shape, await onCpuShape(product));
      assertClose(values, expected, 1e-4, c.name);
    });
  }

  it("gives the same numbers as E separate 2-D products, and is repeatable", async () => {
    const rng = new Rng(5);
    const [E, rows, inner, cols] = [7, 33, 20, 17];
    const a = tf.tensor3d(randomValues(E * rows * inner, rng), [E, rows, inner]);
    const b = tf.tensor3d(randomValues(E * inner * cols, rng), [E, inner, cols]);
    const batched = tf.matMul(a, b);
    const separate = tf.tidy(() =>
      tf.concat(
        tf
          .split(a, E, 0)
          .map((ae, e) =>
            tf.reshape(
              tf.matMul(tf.reshape(ae, [rows, inner]), tf.reshape(tf.split(b, E, 0)[e], [inner, cols])),
              [1, rows, cols],
            ),
          ),
        0,
      ),
    );
    assertClose(batched.dataSync(), separate.dataSync(), 0, "batched against separate");
    const again = tf.matMul(a, b);
    assert.deepEqual(again.dataSync(), batched.dataSync());
    tf.dispose([a, b, batched, separate, again]);
  });

  it("rejects mismatched inner sizes with tfjs's own message", async () => {
    const a = tf.zeros([3, 5, 4]);
    const b = tf.zeros([3, 5, 6]);
    assert.throws(() => tf.matMul(a, b), /inner shapes \(4\) and \(5\)/);
    tf.dispose([a, b]);
  });
});

async function onCpuShape(product: () => tf.Tensor): Promise<number[]> {
  await selectBackend("cpu");
  try {
    const t = product();
    const shape = t.shape;
    t.dispose();
    return shape;
  } finally {
    await selectBackend("wasm");
  }
}

const SMALL: Partial<EnsembleHyperparameters> = {
  members: 4,
  elites: 2,
  hiddenSizes: [16, 16],
  weightDecays: [2.5e-5, 5e-5, 1e-4],
  batchSize: 32,
};

function pair(seed: number): { batched: ProbabilisticEnsemble; perMember: ProbabilisticEnsemble } {
  return {
    batched: new ProbabilisticEnsemble(3, 2, new Rng(seed), SMALL),
    perMember: new ProbabilisticEnsemble(3, 2, new Rng(seed), SMALL, { path: "per-member" }),
  };
}

function data(rows: number, rng: Rng): { x: Float32Array; y: Float32Array } {
  const x = randomValues(rows * 3, rng);
  const y = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) {
    y[2 * r] = Math.sin(x[3 * r]) + 0.5 * x[3 * r + 1] * x[3 * r + 2];
    y[2 * r + 1] = x[3 * r] * x[3 * r + 1] + 0.1 * rng.normal();
  }
  return { x, y };
}

describe("ProbabilisticEnsemble: batched and per-member paths agree", () => {
  for (const backend of ["wasm", "cpu"]) {
    it(`predict, sample and the objective match on ${backend}`, async () => {
      await selectBackend(backend);
      try {
        const { batched, perMember } = pair(3);
        assert.equal(batched.computePath, "batched");
        assert.equal(perMember.computePath, "per-member");
        const { x, y } = data(50, new Rng(4));
        const predict = async (model: ProbabilisticEnsemble) => {
          const out = { mean: new Float32Array(4 * 50 * 2), logvar: new Float32Array(4 * 50 * 2) };
          await model.predict(x, 50, out);
          return out;
        };
        const [pb, pp] = [await predict(batched), await predict(perMember)];
        assertClose(pb.mean, pp.mean, 1e-5, "mean");
        assertClose(pb.logvar, pp.logvar, 1e-5, "logvar");
        const ob = await batched.objective(x, y);
        const op = await perMember.objective(x, y);
        assert.ok(Math.abs(ob.total - op.total) < 1e-4 * Math.abs(op.total), `${ob.total} vs ${op.total}`);
        const members = new Int32Array(50).map((_, r) => r % 4);
        const draw = async (model: ProbabilisticEnsemble) => {
          const out = { delta: new Float32Array(100), disagreement: new Float32Array(50) };
          await model.sample(x, 50, members, new Rng(9), out);
          return out;
        };
        const [sb, sp] = [await draw(batched), await draw(perMember)];
        assertClose(sb.delta, sp.delta, 1e-4, "sampled Δ");
        assertClose(sb.disagreement, sp.disagreement, 1e-5, "disagreement");
        batched.dispose();
        perMember.dispose();
      } finally {
        await selectBackend("wasm");
      }
    });
  }

  it("takes the same gradient steps: weights agree after training epochs from the same seed", async () => {
    const { batched, perMember } = pair(7);
    const { x, y } = data(300, new Rng(8));
    const rb = await batched.train(x, y, new Rng(10), { maxEpochs: 3 });
    const rp = await perMember.train(x, y, new Rng(10), { maxEpochs: 3 });
    // 24 Adam steps each: float rounding differs between one batched product and E 2-D ones
    // only in the last bits, so the weights stay within a small tolerance of each other.
    const wb = await batched.getParameters();
    const wp = await perMember.getParameters();
    wb.weights.forEach((w, k) => {
      assertClose(w, wp.weights[k], 1e-4, `weights[${k}]`);
    });
    wb.biases.forEach((b, k) => {
      assertClose(b, wp.biases[k], 1e-4, `biases[${k}]`);
    });
    assertClose(wb.maxLogvar, wp.maxLogvar, 1e-4, "maxLogvar");
    assertClose(rb.holdoutMse, rp.holdoutMse, 1e-4, "holdout MSE");
    assert.deepEqual(rb.elites, rp.elites);
    // And training moved the weights (the comparison is not between two untouched copies).
    const fresh = new ProbabilisticEnsemble(3, 2, new Rng(7), SMALL);
    const moved = (await fresh.getParameters()).weights[0].some(
      (w, i) => Math.abs(w - wb.weights[0][i]) > 1e-3,
    );
    assert.ok(moved, "training changed the first layer");
    for (const model of [batched, perMember, fresh]) model.dispose();
  });

  it("rejects an unknown compute path", async () => {
    assert.throws(
      () => new ProbabilisticEnsemble(3, 2, new Rng(1), SMALL, { path: "gpu" as "batched" }),
      /ProbabilisticEnsemble: compute path must be batched or per-member, got gpu/,
    );
  });
});

describe("Sac: batched and separate twin critics agree", () => {
  it("gives the same targets, losses and weights over several updates", async () => {
    const options = { hiddenSizes: [16, 16], batchSize: 32 };
    const batched = new Sac(3, 2, new Rng(5), options);
    const separate = new Sac(3, 2, new Rng(5), options, { critics: "separate" });
    assert.equal(batched.criticPath, "batched");
    assert.equal(separate.criticPath, "separate");
    const batch = randomBatch(3, 2, 32, new Rng(6));
    const noise = randomValues(32 * 2, new Rng(7));
    assertClose(await batched.targets(batch, noise), await separate.targets(batch, noise), 1e-5, "targets");
    for (let i = 0; i < 5; i++) {
      const [lb, ls] = [await batched.update(batch), await separate.update(batch)];
      for (const key of ["qLoss", "policyLoss", "alphaLoss", "alpha", "qMean", "entropy"] as const) {
        assert.ok(
          Math.abs(lb[key] - ls[key]) <= 1e-4 * Math.max(1, Math.abs(ls[key])),
          `${key}: ${lb[key]} vs ${ls[key]}`,
        );
      }
    }
    for (const name of ["actor", "q1", "q2", "q1Target", "q2Target"] as const) {
      const theirs = await separate.getWeights(name);
      (await batched.getWeights(name)).forEach((layer, k) => {
        assertClose(layer.weight, theirs[k].weight, 1e-5, `${name} weight ${k}`);
      });
    }
    // Q1 and Q2 are separate networks inside the stack: setting one leaves the other alone.
    const q2 = await batched.getWeights("q2");
    await batched.setWeights(
      "q1",
      (await batched.getWeights("q1")).map((l) => ({ ...l, weight: l.weight.map(() => 0) })),
    );
    assert.deepEqual(await batched.getWeights("q2"), q2);
    assert.ok((await batched.getWeights("q1"))[0].weight.every((w) => w === 0));
    batched.dispose();
    separate.dispose();
  });

  it("rejects an unknown critic path", async () => {
    assert.throws(
      () => new Sac(3, 2, new Rng(1), {}, { critics: "fused" as "batched" }),
      /Sac: critic path must be batched or separate, got fused/,
    );
  });
});
