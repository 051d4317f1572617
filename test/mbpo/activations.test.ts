/**
 * biasSilu (src/mbpo/activations.ts): on the wasm backend with the native addon it is one kernel
 * forward and one backward with our own σ; it must agree with tfjs's Add, Sigmoid and Multiply (and
 * their gradients) on the cpu backend to float32 rounding, over the whole range of z (σ's clamp far
 * out, both signs, zero), keep NaN, and fall back to the tfjs ops where the bias does not have the
 * layer's [..., 1, cols] shape. Skipped with a message where the addon is not built (CI builds it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { biasSilu } from "../../src/mbpo/activations.js";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { nativeKernels } from "../../src/mbpo/native-kernels.js";
import { BIAS_SILU, BIAS_SILU_GRAD } from "../../src/mbpo/wasm-kernels.js";
import { Rng } from "../../src/util/rng.js";
import { unavailable } from "../support/system.js";

const native = nativeKernels();
const problem = unavailable(
  "the native kernels addon",
  "apt-get install libopenblas-dev; npm run build:native",
  typeof native === "string" ? native : undefined,
);

/** SiLU(x + b), its gradients with respect to x and b for the loss Σ dy·y, and the kernels that ran. */
async function run(x: Float32Array, xShape: number[], b: Float32Array, bShape: number[], dy: Float32Array) {
  const xt = tf.tensor(x, xShape);
  const bt = tf.tensor(b, bShape);
  const dyt = tf.tensor(dy, xShape);
  let y: Float32Array = new Float32Array();
  const info = await tf.profile(() => {
    const { value, grads } = tf.valueAndGrads((xs: tf.Tensor, bs: tf.Tensor) => {
      const out = biasSilu(xs, bs);
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

describe("biasSilu", () => {
  it("agrees with tfjs's ops on the cpu backend, forward and backward", { skip: problem }, async () => {
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
      const expected = await run(x, xShape, b, bShape, dy);
      await selectBackend("wasm");
      const got = await run(x, xShape, b, bShape, dy);
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

  it("keeps NaN, and falls back to tfjs's ops for a bias of another shape", { skip: problem }, async () => {
    await selectBackend("wasm");
    const y = tf.tidy(() => biasSilu(tf.tensor([[Number.NaN, 1]]), tf.zeros([1, 2])));
    const values = await y.data();
    assert.ok(Number.isNaN(values[0]));
    assert.ok(Math.abs(values[1] - 1 / (1 + Math.exp(-1))) < 1e-6);
    y.dispose();
    const info = await tf.profile(() => biasSilu(tf.ones([2, 3]), tf.ones([3])));
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
    ];
    for (const [what, call] of calls) {
      const before = heap.slice();
      assert.throws(
        call,
        (e: Error) => e instanceof RangeError && /^biasSilu(Grad)?: /.test(e.message),
        what,
      );
      assert.deepEqual(heap, before, `${what}: nothing written`);
    }
  });
});
