/**
 * biasSilu and biasRelu (src/mbpo/activations.ts): on the wasm backend with the native addon each is
 * one kernel forward and one backward. SiLU, with our own σ, must agree with tfjs's Add, Sigmoid
 * and Multiply (and their gradients) on the cpu backend to float32 rounding over the whole range of
 * z (σ's clamp far out, both signs, zero); ReLU must equal tfjs's Add and Relu exactly. Both keep
 * NaN, and fall back to the tfjs ops where the bias has neither layer shape ([..., 1, cols], [cols]). Skipped with a message where the addon is not built (CI builds it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { biasRelu, biasSilu } from "../../src/mbpo/activations.js";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { nativeKernels } from "../../src/mbpo/native-kernels.js";
import { BIAS_ACTIVATION } from "../../src/mbpo/wasm-kernels.js";

const BIAS_SILU = BIAS_ACTIVATION.silu.forward;
const BIAS_SILU_GRAD = BIAS_ACTIVATION.silu.backward;

import { Rng } from "../../src/util/rng.js";
import { unavailable } from "../support/system.js";

const native = nativeKernels();
const problem = unavailable(
  "the native kernels addon",
  "apt-get install libopenblas-dev; npm run build:native",
  typeof native === "string" ? native : undefined,
);

/** SiLU(x + b), its gradients with respect to x and b for the loss Σ dy·y, and the kernels that ran. */
async function run(
  activation: (x: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  x: Float32Array,
  xShape: number[],
  b: Float32Array,
  bShape: number[],
  dy: Float32Array,
) {
  const xt = tf.tensor(x, xShape);
  const bt = tf.tensor(b, bShape);
  const dyt = tf.tensor(dy, xShape);
  let y: Float32Array = new Float32Array();
  const info = await tf.profile(() => {
    const { value, grads } = tf.valueAndGrads((xs: tf.Tensor, bs: tf.Tensor) => {
      const out = activation(xs, bs);
      y = out.dataSync() as Float32Array;
      return tf.sum(tf.mul(out, dyt)) as tf.Scalar;
    })([xt, bt]);
    return [value, ...grads];
  });
  const [, dx, db] = info.result as tf.Tensor[];
  const out = {
    y: y.slice(),
    dx: dx.dataSync().slice() as Float32Array,
    db: db.dataSync().slice() as Float32Array,
    kernels: info.kernels.map((k) => k.name),
  };
  tf.dispose([xt, bt, dyt, ...(info.result as tf.Tensor[])]);
  return out;
}

function assertClose(got: Float32Array, expected: Float32Array, what: string, scale: number): void {
  assert.equal(got.length, expected.length, what);
  for (let i = 0; i < got.length; i++) {
    const tolerance = 4e-6 * Math.abs(expected[i]) + 1e-6 * scale;
    assert.ok(Math.abs(got[i] - expected[i]) <= tolerance, `${what}[${i}]: ${got[i]} against ${expected[i]}`);
  }
}

describe("biasSilu and biasRelu", () => {
  it("SiLU agrees with tfjs's ops on the cpu backend, forward and backward", { skip: problem }, async () => {
    const rng = new Rng(11);
    const special = [0, -0, 1e-30, -1e-30, 5, -5, 20, -20, 87, -87, 88.5, -88.5, 100, -100, 1e4, -1e4];
    for (const [xShape, bShape] of [
      [
        [3, 17, 24],
        [3, 1, 24],
      ],
      [
        [40, 8],
        [1, 8],
      ],
    ]) {
      const size = xShape.reduce((p, d) => p * d, 1);
      const x = Float32Array.from({ length: size }, (_, i) =>
        i < special.length ? special[i] : 6 * rng.normal(),
      );
      const b = Float32Array.from({ length: bShape.reduce((p, d) => p * d, 1) }, () => rng.normal());
      b[0] = 0; // the special values reach σ unchanged in the first column of the first block
      const dy = Float32Array.from({ length: size }, () => rng.normal());
      await selectBackend("cpu");
      const expected = await run(biasSilu, x, xShape, b, bShape, dy);
      await selectBackend("wasm");
      const got = await run(biasSilu, x, xShape, b, bShape, dy);
      assert.ok(
        got.kernels.includes(BIAS_SILU) && got.kernels.includes(BIAS_SILU_GRAD),
        "the fused kernels ran",
      );
      assert.ok(!got.kernels.includes("Sigmoid"));
      assertClose(got.y, expected.y, `y ${xShape}`, 1);
      assertClose(got.dx, expected.dx, `dx ${xShape}`, 1);
      assertClose(got.db, expected.db, `db ${xShape}`, Math.sqrt(xShape[xShape.length - 2]));
    }
  });

  it("ReLU equals tfjs's Add and Relu on the cpu backend, forward and backward", {
    skip: problem,
  }, async () => {
    const rng = new Rng(12);
    for (const [xShape, bShape] of [
      [
        [2, 30, 16],
        [2, 1, 16],
      ],
      [[30, 16], [16]],
    ]) {
      const size = xShape.reduce((p, d) => p * d, 1);
      const x = Float32Array.from({ length: size }, () => rng.normal());
      const b = Float32Array.from({ length: bShape.reduce((p, d) => p * d, 1) }, () => rng.normal());
      x[0] = -b[0]; // z = 0 exactly: ReLU′ taken as 0 there, as tfjs's step
      const dy = Float32Array.from({ length: size }, () => rng.normal());
      await selectBackend("cpu");
      const expected = await run(biasRelu, x, xShape, b, bShape, dy);
      await selectBackend("wasm");
      const got = await run(biasRelu, x, xShape, b, bShape, dy);
      assert.ok(got.kernels.includes(BIAS_ACTIVATION.relu.forward), "the fused kernel ran");
      assert.ok(got.kernels.includes(BIAS_ACTIVATION.relu.backward));
      assert.ok(!got.kernels.includes("Relu") && !got.kernels.includes("Step"));
      assert.deepEqual(Array.from(got.y), Array.from(expected.y), `y ${xShape}`);
      assert.deepEqual(Array.from(got.dx), Array.from(expected.dx), `dx ${xShape}`);
      // The bias's row sums: in the same order on both backends here, to float32 rounding at most.
      assertClose(got.db, expected.db, `db ${xShape}`, 1);
    }
  });

  it("keeps NaN, and falls back to tfjs's ops for a bias of another shape", { skip: problem }, async () => {
    await selectBackend("wasm");
    for (const activation of [biasSilu, biasRelu]) {
      const y = tf.tidy(() => activation(tf.tensor([[Number.NaN, 1]]), tf.zeros([1, 2])));
      const values = await y.data();
      assert.ok(Number.isNaN(values[0]), activation.name);
      y.dispose();
      const grad = tf.tidy(() =>
        tf.grad((x: tf.Tensor) => tf.sum(activation(x, tf.zeros([2]))))(tf.tensor([[Number.NaN, 1]])),
      );
      assert.ok(Number.isNaN((await grad.data())[0]), `${activation.name}: NaN in the gradient too`);
      grad.dispose();
    }
    // A bias per row ([rows, 1]) is no layer bias: tfjs's kernels.
    const info = await tf.profile(() => biasSilu(tf.ones([2, 3]), tf.ones([2, 1])));
    assert.ok(!info.kernels.some((k) => k.name === BIAS_SILU));
    assert.ok(info.kernels.some((k) => k.name === "Sigmoid"));
    assert.ok(Math.abs((info.result as tf.Tensor).dataSync()[0] - 2 / (1 + Math.exp(-2))) < 1e-6);
    (info.result as tf.Tensor).dispose();
  });

  it("refuses hostile calls to the addon's kernels and writes nothing", { skip: problem }, () => {
    const kernels = native as Exclude<typeof native, string>;
    const heap = new Float32Array(64).map((_, i) => i / 8);
    const calls: [string, () => void][] = [
      ["output past the end", () => kernels.biasSilu(heap, 0, 16, 56, 1, 4, 4)],
      ["bias past the end", () => kernels.biasSilu(heap, 0, 62, 32, 1, 4, 4)],
      ["output over the input", () => kernels.biasSilu(heap, 0, 40, 8, 1, 4, 4)],
      ["negative size", () => kernels.biasSilu(heap, 0, 40, 20, 1, -4, 4)],
      ["grad output over dy", () => kernels.biasSiluGrad(heap, 0, 16, 40, 4, 1, 4, 4)],
      ["grad wrong arguments", () => (kernels.biasSiluGrad as (...a: unknown[]) => void)(heap, 0, 16)],
      ["relu output past the end", () => kernels.biasRelu(heap, 0, 16, 56, 1, 4, 4)],
      ["relu grad output over x", () => kernels.biasReluGrad(heap, 0, 16, 40, 20, 1, 4, 4)],
    ];
    for (const [what, call] of calls) {
      const before = heap.slice();
      assert.throws(
        call,
        (e: Error) => e instanceof RangeError && /^bias(Silu|Relu)(Grad)?: /.test(e.message),
        what,
      );
      assert.deepEqual(heap, before, `${what}: nothing written`);
    }
  });
});
