/**
 * SAC's tanh-squashed Gaussian (sac.ts: samplePolicy) as one kernel forward and one backward on the
 * wasm backend with the native addon: the action, log π and the gradient of any loss of both with
 * respect to the actor's output agree with the tfjs ops on the cpu backend to float32 rounding,
 * including log σ clamped at either bound (no gradient there), saturated actions and zero noise.
 * Skipped with a message where the addon is not built (CI builds it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { nativeKernels } from "../../src/mbpo/native-kernels.js";
import { samplePolicy } from "../../src/mbpo/sac.js";
import { TANH_GAUSSIAN, TANH_GAUSSIAN_GRAD } from "../../src/mbpo/wasm-kernels.js";
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
