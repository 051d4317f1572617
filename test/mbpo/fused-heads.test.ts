/**
 * The two output heads that run as one kernel forward and one backward on the wasm backend with the
 * native addon, against the tfjs ops on the cpu backend (to float32 rounding):
 * - SAC's tanh-squashed Gaussian (sac.ts: samplePolicy): the action, log π and the gradient of a
 *   loss of both with respect to the actor's output, including log σ clamped at either bound (no
 *   gradient there), saturated actions and zero noise;
 * - the ensemble's Gaussian head (ensemble.ts: gaussianHead): the mean, the soft-bounded log σ² and
 *   the gradients with respect to the raw output and both learned bounds, from far below the lower
 *   bound to far above the upper one.
 * - the ensemble's whole network for inference (wasm-kernels.ts: MLP_FORWARD), blocks of rows at a
 *   time: its predictions against the cpu backend's layer-by-layer ones.
 * And hostile calls to the addon's kernels are RangeErrors that write nothing. Skipped with a
 * message where the addon is not built (CI builds it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { gaussianHead, ProbabilisticEnsemble } from "../../src/mbpo/ensemble.js";
import { nativeKernels } from "../../src/mbpo/native-kernels.js";
import { samplePolicy } from "../../src/mbpo/sac.js";
import {
  GAUSSIAN_HEAD,
  GAUSSIAN_HEAD_GRAD,
  MLP_FORWARD,
  TANH_GAUSSIAN,
  TANH_GAUSSIAN_GRAD,
} from "../../src/mbpo/wasm-kernels.js";
import { Rng } from "../../src/util/rng.js";
import { unavailable } from "../support/system.js";

const native = nativeKernels();
const problem = unavailable(
  "the native kernels addon",
  "apt-get install libopenblas-dev; npm run build:native",
  typeof native === "string" ? native : undefined,
);
const BOUNDS = { logStdMin: -5, logStdMax: 2 };

/** Action, log π, and d/d[μ, log σ] of Σ wA·a + Σ wP·log π; the kernels that ran. */
async function run(
  out: Float32Array,
  noise: Float32Array,
  rows: number,
  A: number,
  wA: Float32Array,
  wP: Float32Array,
) {
  const outputs = tf.tensor2d(out, [rows, 2 * A]);
  const eps = tf.tensor2d(noise, [rows, A]);
  const weightA = tf.tensor2d(wA, [rows, A]);
  const weightP = tf.tensor2d(wP, [rows, 1]);
  let action: Float32Array = new Float32Array();
  let logProb: Float32Array = new Float32Array();
  const info = await tf.profile(() =>
    tf.grad((x: tf.Tensor) => {
      const sample = samplePolicy(x as tf.Tensor2D, eps, BOUNDS);
      action = sample.action.dataSync() as Float32Array;
      logProb = sample.logProb.dataSync() as Float32Array;
      return tf.add(tf.sum(tf.mul(sample.action, weightA)), tf.sum(tf.mul(sample.logProb, weightP)));
    })(outputs),
  );
  const grad = (info.result as tf.Tensor).dataSync().slice() as Float32Array;
  tf.dispose([outputs, eps, weightA, weightP, info.result as tf.Tensor]);
  return { action: action.slice(), logProb: logProb.slice(), grad, kernels: info.kernels.map((k) => k.name) };
}

function assertClose(got: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(got.length, expected.length, what);
  for (let i = 0; i < got.length; i++) {
    const tolerance = 1e-5 * Math.abs(expected[i]) + 2e-6;
    assert.ok(Math.abs(got[i] - expected[i]) <= tolerance, `${what}[${i}]: ${got[i]} against ${expected[i]}`);
  }
}

describe("SAC's policy head as one kernel", { skip: problem }, () => {
  it("agrees with the tfjs ops on the cpu backend, forward and backward", async () => {
    const rng = new Rng(21);
    const rows = 64;
    const A = 5;
    const out = Float32Array.from({ length: rows * 2 * A }, () => rng.normal());
    const noise = Float32Array.from({ length: rows * A }, () => rng.normal());
    // Row 0: log σ beyond both bounds and exactly at one; row 1: saturated actions; row 2: no noise.
    out.set([0.1, -0.2, 0.3, 0, 0, -9, 7, 2, -5, 0.5], 0);
    out.set([12, -12, 20, 0.5, -0.5], 2 * A);
    noise.fill(0, 2 * A, 3 * A);
    const wA = Float32Array.from({ length: rows * A }, () => rng.normal());
    const wP = Float32Array.from({ length: rows }, () => rng.normal());
    await selectBackend("cpu");
    const expected = await run(out, noise, rows, A, wA, wP);
    await selectBackend("wasm");
    const got = await run(out, noise, rows, A, wA, wP);
    assert.ok(
      got.kernels.includes(TANH_GAUSSIAN) && got.kernels.includes(TANH_GAUSSIAN_GRAD),
      "the kernels ran",
    );
    assert.ok(!got.kernels.includes("Tanh") && !got.kernels.includes("Softplus"));
    assertClose(got.action, expected.action, "action");
    assertClose(got.logProb, expected.logProb, "log π");
    assertClose(got.grad, expected.grad, "gradient");
    // The clamped log σ (beyond the bounds) get no gradient; one exactly at a bound does.
    for (const i of [A + 0, A + 1]) assert.equal(got.grad[i], 0, `log σ ${i - A} clamped`);
    assert.notEqual(got.grad[A + 2], 0);
  });

  it("refuses hostile calls to the addon's kernels and writes nothing", () => {
    const kernels = native as Exclude<typeof native, string>;
    const heap = new Float32Array(64).map((_, i) => i / 64);
    const calls: [string, () => void][] = [
      ["action past the end", () => kernels.tanhGaussian(heap, 0, 8, 62, 40, 2, 2, -5, 2)],
      ["log π over the input", () => kernels.tanhGaussian(heap, 0, 8, 16, 2, 2, 2, -5, 2)],
      ["bounds reversed", () => kernels.tanhGaussian(heap, 0, 8, 16, 24, 2, 2, 2, -5)],
      [
        "bounds not numbers",
        () => (kernels.tanhGaussian as (...a: unknown[]) => void)(heap, 0, 8, 16, 24, 2, 2, "a", 2),
      ],
      ["grad output over the noise", () => kernels.tanhGaussianGrad(heap, 0, 8, 16, 24, 22, 2, 2, -5, 2)],
      ["grad absurd rows", () => kernels.tanhGaussianGrad(heap, 0, 8, 16, 24, 32, 2 ** 40, 2, -5, 2)],
    ];
    for (const [what, call] of calls) {
      const before = heap.slice();
      assert.throws(
        call,
        (e: Error) => e instanceof RangeError && /^tanhGaussian(Grad)?: /.test(e.message),
        what,
      );
      assert.deepEqual(heap, before, `${what}: nothing written`);
    }
  });
});

/** Mean, log σ², and d/d(raw, max, min) of Σ wM·mean + Σ wL·log σ²; the kernels that ran. */
async function runHead(
  raw: Float32Array,
  shape: number[],
  max: Float32Array,
  min: Float32Array,
  wM: Float32Array,
  wL: Float32Array,
) {
  const out = shape[2] / 2;
  const inputs = [
    tf.tensor3d(raw, shape as [number, number, number]),
    tf.tensor3d(max, [1, 1, out]),
    tf.tensor3d(min, [1, 1, out]),
  ];
  const weightM = tf.tensor(wM, [shape[0], shape[1], out]);
  const weightL = tf.tensor(wL, [shape[0], shape[1], out]);
  let mean: Float32Array = new Float32Array();
  let logvar: Float32Array = new Float32Array();
  const info = await tf.profile(() =>
    tf.grads((r: tf.Tensor, hi: tf.Tensor, lo: tf.Tensor) => {
      const head = gaussianHead(r as tf.Tensor3D, hi, lo);
      mean = head.mean.dataSync() as Float32Array;
      logvar = head.logvar.dataSync() as Float32Array;
      return tf.add(tf.sum(tf.mul(head.mean, weightM)), tf.sum(tf.mul(head.logvar, weightL)));
    })(inputs),
  );
  const grads = (info.result as tf.Tensor[]).map((g) => g.dataSync().slice() as Float32Array);
  tf.dispose([...inputs, weightM, weightL, ...(info.result as tf.Tensor[])]);
  return { mean: mean.slice(), logvar: logvar.slice(), grads, kernels: info.kernels.map((k) => k.name) };
}

describe("the ensemble's Gaussian head as one kernel", { skip: problem }, () => {
  it("agrees with the tfjs ops on the cpu backend, forward and backward", async () => {
    const rng = new Rng(22);
    const shape = [3, 40, 16];
    const out = 8;
    const raw = Float32Array.from({ length: 3 * 40 * 16 }, () => 3 * rng.normal());
    // ℓ far below the lower bound, far above the upper one, and on each bound.
    raw.set([0, 0, 0, 0, 0, 0, 0, 0, -60, 60, -10, 0.5, 30, -30, 0, 1], 0);
    const max = Float32Array.from({ length: out }, (_, j) => 0.5 + 0.1 * j);
    const min = Float32Array.from({ length: out }, (_, j) => -10 + 0.2 * j);
    const wM = Float32Array.from({ length: 3 * 40 * out }, () => rng.normal());
    const wL = Float32Array.from({ length: 3 * 40 * out }, () => rng.normal());
    await selectBackend("cpu");
    const expected = await runHead(raw, shape, max, min, wM, wL);
    await selectBackend("wasm");
    const got = await runHead(raw, shape, max, min, wM, wL);
    assert.ok(
      got.kernels.includes(GAUSSIAN_HEAD) && got.kernels.includes(GAUSSIAN_HEAD_GRAD),
      "the kernels ran",
    );
    assert.ok(!got.kernels.includes("Softplus"));
    assertClose(got.mean, expected.mean, "mean");
    assertClose(got.logvar, expected.logvar, "log σ²");
    assertClose(got.grads[0], expected.grads[0], "d raw");
    // The bounds' gradients sum 120 rows each.
    for (const [k, what] of [
      [1, "d max"],
      [2, "d min"],
    ] as const) {
      const g = got.grads[k];
      const e = expected.grads[k];
      for (let i = 0; i < g.length; i++) {
        assert.ok(
          Math.abs(g[i] - e[i]) <= 1e-5 * Math.abs(e[i]) + 1e-5,
          `${what}[${i}]: ${g[i]} against ${e[i]}`,
        );
      }
    }
  });

  it("refuses hostile calls to the addon's kernels and writes nothing", () => {
    const kernels = native as Exclude<typeof native, string>;
    const heap = new Float32Array(64).map((_, i) => i / 64);
    const calls: [string, () => void][] = [
      ["mean past the end", () => kernels.gaussianHead(heap, 0, 8, 10, 62, 40, 2, 2)],
      ["log σ² over raw", () => kernels.gaussianHead(heap, 0, 8, 10, 20, 4, 2, 2)],
      ["absurd rows", () => kernels.gaussianHead(heap, 0, 8, 10, 20, 30, 2 ** 40, 2)],
      ["grad d max over d raw", () => kernels.gaussianHeadGrad(heap, 0, 4, 8, 16, 18, 20, 22, 40, 2, 2)],
      ["grad wrong arguments", () => (kernels.gaussianHeadGrad as (...a: unknown[]) => void)(heap, 0, 4)],
    ];
    for (const [what, call] of calls) {
      const before = heap.slice();
      assert.throws(
        call,
        (e: Error) => e instanceof RangeError && /^gaussianHead(Grad)?: /.test(e.message),
        what,
      );
      assert.deepEqual(heap, before, `${what}: nothing written`);
    }
  });
});

describe("the ensemble's inference forward as one kernel", { skip: problem }, () => {
  it("predicts what the cpu backend's layer-by-layer network does, over several row blocks", async () => {
    const rows = 300; // more than two of the kernel's 128-row blocks
    const rng = new Rng(23);
    const x = Float32Array.from({ length: rows * 12 }, () => rng.normal());
    const predict = async (backend: string) => {
      await selectBackend(backend);
      const model = new ProbabilisticEnsemble(12, 8, new Rng(5), { members: 3, elites: 2 });
      // Nonzero biases everywhere (a fresh model's are zero, which would hide a bias left out).
      const parameters = await model.getParameters();
      const draw = new Rng(6);
      for (const bias of parameters.biases) {
        for (let i = 0; i < bias.length; i++) bias[i] = 0.3 * draw.normal();
      }
      model.setParameters(parameters);
      const out = { mean: new Float32Array(3 * rows * 8), logvar: new Float32Array(3 * rows * 8) };
      const info = await tf.profile(() => model.predict(x, rows, out));
      model.dispose();
      return { ...out, kernels: info.kernels.map((k) => k.name) };
    };
    const expected = await predict("cpu");
    const got = await predict("wasm");
    assert.deepEqual(
      got.kernels.filter((k) => k !== "Reshape"),
      [MLP_FORWARD, GAUSSIAN_HEAD],
    );
    assertClose(got.mean, expected.mean, "mean");
    assertClose(got.logvar, expected.logvar, "log σ²");
  });

  it("refuses hostile calls and writes nothing", () => {
    const kernels = native as Exclude<typeof native, string>;
    const heap = new Float32Array(256).map((_, i) => i / 256);
    // x [4, 2] at 0, w0 [1, 2, 3] at 8, b0 [1, 1, 3] at 14, w1 [1, 3, 2] at 17, b1 at 23, out [1, 4, 2].
    const layout = Float64Array.of(2, 3, 8, 14, 2, 17, 23);
    kernels.mlpForward(heap, 0, 100, 1, 4, 1, layout);
    const calls: [string, () => void][] = [
      ["output past the end", () => kernels.mlpForward(heap, 0, 250, 1, 4, 1, layout)],
      ["output over a weight", () => kernels.mlpForward(heap, 0, 10, 1, 4, 1, layout)],
      ["output over the input", () => kernels.mlpForward(heap, 0, 4, 1, 4, 1, layout)],
      [
        "a weight past the end",
        () => kernels.mlpForward(heap, 0, 100, 1, 4, 1, Float64Array.of(2, 3, 252, 14, 2, 17, 23)),
      ],
      [
        "a fractional width",
        () => kernels.mlpForward(heap, 0, 100, 1, 4, 1, Float64Array.of(2.5, 3, 8, 14, 2, 17, 23)),
      ],
      ["a short layout", () => kernels.mlpForward(heap, 0, 100, 1, 4, 1, Float64Array.of(2, 3, 8))],
      ["a layout of the wrong type", () => kernels.mlpForward(heap, 0, 100, 1, 4, 1, [2, 3, 8, 14] as never)],
      ["too many members", () => kernels.mlpForward(heap, 0, 100, 2 ** 20, 4, 1, layout)],
    ];
    for (const [what, call] of calls) {
      const before = heap.slice();
      assert.throws(call, (e: Error) => e instanceof RangeError && /^mlpForward: /.test(e.message), what);
      assert.deepEqual(heap, before, `${what}: nothing written`);
    }
  });
});
