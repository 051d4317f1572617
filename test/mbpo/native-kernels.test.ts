/**
 * The wasm backend's native kernels (src/mbpo/native-kernels.ts, native/kernels.c): every shape the
 * learner's BatchMatMul kernel takes agrees with the pure-JavaScript cpu backend; sums over
 * adjacent axes are bit for bit float32 sums in the stock kernel's order; and a hostile call to the
 * addon (offsets outside the wasm memory, overlapping operands, wrong arguments) is a RangeError,
 * never a write outside it. FusedAdam's kernel is checked in fused-adam.test.ts. Skipped with a message where the addon is not built; CI
 * builds it (.ci/run), and there a missing addon fails.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { nativeKernels } from "../../src/mbpo/native-kernels.js";
import { SUM_OF_SQUARES } from "../../src/mbpo/wasm-kernels.js";
import { Rng } from "../../src/util/rng.js";
import { unavailable } from "../support/system.js";

const native = nativeKernels();
const problem = unavailable(
  "the native kernels addon",
  "apt-get install libopenblas-dev; npm run build:native",
  typeof native === "string" ? native : undefined,
);

/** [shape of a, shape of b, transposeA, transposeB] */
const CASES: [number[], number[], boolean, boolean][] = [
  [[7, 5], [5, 3], false, false],
  [[5, 7], [5, 3], true, false],
  [[7, 5], [3, 5], false, true],
  [[5, 7], [3, 5], true, true],
  [[4, 6, 5], [4, 5, 3], false, false],
  [[4, 5, 6], [4, 3, 5], true, true],
  [[1, 6, 5], [4, 5, 3], false, false],
  [[4, 6, 5], [1, 5, 3], false, false],
  [[4, 6, 5], [5, 3], false, false],
  [[2, 3, 6, 5], [2, 3, 5, 4], false, false],
  [[256, 26], [26, 256], false, false],
  [[7, 256, 200], [7, 200, 200], false, false],
  [[7, 256, 200], [7, 256, 200], true, false],
];

function values(shape: number[], rng: Rng): Float32Array {
  return Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.normal());
}

async function product(a: Float32Array, b: Float32Array, c: (typeof CASES)[number]): Promise<Float32Array> {
  const [shapeA, shapeB, transposeA, transposeB] = c;
  const result = tf.tidy(() => tf.matMul(tf.tensor(a, shapeA), tf.tensor(b, shapeB), transposeA, transposeB));
  const data = (await result.data()) as Float32Array;
  result.dispose();
  return data;
}

describe("the native kernels on the wasm backend", { skip: problem }, () => {
  it("is what the wasm backend reports running its products", async () => {
    assert.equal((await selectBackend("wasm")).products, "OpenBLAS and native kernels");
  });

  it("agrees with the cpu backend on plain, transposed, batched and broadcast products", async () => {
    const rng = new Rng(1);
    for (const c of CASES) {
      const a = values(c[0], rng);
      const b = values(c[1], rng);
      await selectBackend("cpu");
      const expected = await product(a, b, c);
      await selectBackend("wasm");
      const got = await product(a, b, c);
      assert.equal(got.length, expected.length, JSON.stringify(c));
      let worst = 0;
      for (let i = 0; i < got.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
      }
      // float32 sums in another order: up to about k·2⁻²⁴ of the terms' size (k ≤ 256 here).
      assert.ok(worst < 1e-4, `${JSON.stringify(c)}: max relative error ${worst}`);
    }
  });

  it("a product with an empty inner dimension is zeros, as the stock kernel gives", async () => {
    await selectBackend("wasm");
    const result = tf.matMul(tf.ones([3, 0]), tf.ones([0, 2]));
    assert.deepEqual(Array.from(await result.data()), [0, 0, 0, 0, 0, 0]);
    result.dispose();
  });

  it("refuses operands outside the memory and malformed calls with a RangeError", () => {
    const gemm = native as Exclude<typeof native, string>;
    const heap = new Float32Array(64);
    // 2×2 · 2×2 fits: a at 0, b at 4, out at 8.
    heap.set([1, 2, 3, 4, 1, 0, 0, 1]);
    gemm.sgemm(heap, 0, 4, 8, 1, 2, 2, 2, 1, 1, 0, 0);
    assert.deepEqual(Array.from(heap.subarray(8, 12)), [1, 2, 3, 4]);
    const hostile: [number, number, number, number, number, number, number][] = [
      [0, 4, 61, 1, 2, 2, 2], // out runs past the end
      [-1, 4, 8, 1, 2, 2, 2], // negative offset
      [0, 4, 8, 100, 2, 2, 2], // a batch of 100 does not fit
      [0, 4, 8, 1, 2 ** 31, 2, 2], // absurd size
      [0, 4, 50, 1, 4, 4, 4], // a 4×4 out at 50 ends at 66
    ];
    for (const [a, b, out, batch, m, k, n] of hostile) {
      const before = heap.slice();
      assert.throws(
        () => gemm.sgemm(heap, a, b, out, batch, m, k, n, batch, batch, 0, 0),
        (e: Error) => e instanceof RangeError && /^sgemm: /.test(e.message),
        JSON.stringify([a, b, out, batch, m, k, n]),
      );
      assert.deepEqual(heap, before, "nothing written");
    }
    assert.throws(() => gemm.sgemm(heap, 0, 4, 8, 2, 2, 2, 2, 3, 1, 0, 0), /batches must match or be 1/);
    assert.throws(
      () => gemm.sgemm(new Float64Array(8) as never, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0),
      /Float32Array/,
    );
    assert.throws(() => (gemm.sgemm as (...args: unknown[]) => void)(heap, 0, 4), /expected 12 arguments/);
  });

  it("sums over adjacent axes bit for bit as float32 sums from the first element up", async () => {
    await selectBackend("wasm");
    const rng = new Rng(3);
    /** [shape, axes, keepDims] */
    const cases: [number[], number | number[] | undefined, boolean][] = [
      [[7, 256, 200], 1, false], // a bias gradient
      [[7, 256, 200], [1], true],
      [[7, 200, 200], undefined, false], // a weight decay's sum of squares: everything
      [[256, 26], 0, false],
      [[256, 26], -1, false],
      [[4, 5, 6, 3], [1, 2], false],
      [[4, 5, 6, 3], [2, 0], false], // not adjacent: the stock kernel
      [[5, 0, 3], 1, false], // nothing to add: zeros
    ];
    for (const [shape, axis, keepDims] of cases) {
      const values = Float32Array.from(
        { length: shape.reduce((p, d) => p * d, 1) },
        () => 1e3 * rng.normal(),
      );
      const result = tf.tidy(() => tf.sum(tf.tensor(values, shape), axis, keepDims));
      const got = (await result.data()) as Float32Array;
      const axes = axis === undefined ? shape.map((_, i) => i) : tf.util.parseAxisParam(axis, shape);
      const expectedShape = keepDims
        ? shape.map((d, i) => (axes.includes(i) ? 1 : d))
        : shape.filter((_, i) => !axes.includes(i));
      assert.deepEqual(result.shape, expectedShape, JSON.stringify([shape, axis]));
      // The reference: Math.fround after every addition, in row-major order over the summed axes.
      const expected = new Float32Array(got.length);
      const strides = shape.map((_, i) => shape.slice(i + 1).reduce((p, d) => p * d, 1));
      const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
      for (let flat = 0; flat < values.length; flat++) {
        const index = shape.map((d, i) => Math.floor(flat / strides[i]) % d);
        let out = 0;
        for (const i of kept) out = out * shape[i] + index[i];
        expected[out] = Math.fround(expected[out] + values[flat]);
      }
      const sorted = [...axes].sort((p, q) => p - q);
      if (sorted.every((a, i) => i === 0 || a === sorted[i - 1] + 1)) {
        assert.deepEqual(
          new Uint32Array(got.buffer, got.byteOffset, got.length),
          new Uint32Array(expected.buffer),
          JSON.stringify([shape, axis]),
        );
      } else {
        // The stock kernel adds in the order the axes were given: the same sums, rounded otherwise.
        for (let i = 0; i < got.length; i++) {
          assert.ok(Math.abs(got[i] - expected[i]) <= 1e-5 * (1 + Math.abs(expected[i])), `${i}`);
        }
      }
      result.dispose();
    }
    // Other dtypes go to the stock kernel.
    const ints = tf.sum(
      tf.tensor(
        [
          [1, 2],
          [3, 4],
        ],
        [2, 2],
        "int32",
      ),
      0,
    );
    assert.deepEqual(Array.from(await ints.data()), [4, 6]);
    ints.dispose();
  });

  it("refuses a hostile sumMiddle or adam call with a RangeError and writes nothing", () => {
    const kernels = native as Exclude<typeof native, string>;
    const heap = new Float32Array(64).map((_, i) => i);
    const constants = Float32Array.of(0.9, 0.1, 0.999, 0.001, 0.1, 0.001, -1e-3, 1e-7);
    const calls: [string, () => void][] = [
      ["sumMiddle past the end", () => kernels.sumMiddle(heap, 0, 60, 8, 2, 4)],
      ["sumMiddle input past the end", () => kernels.sumMiddle(heap, 40, 0, 1, 7, 4)],
      ["sumMiddle overlapping", () => kernels.sumMiddle(heap, 0, 4, 2, 4, 4)],
      ["sumMiddle negative", () => kernels.sumMiddle(heap, -4, 40, 1, 1, 4)],
      ["sumMiddle absurd", () => kernels.sumMiddle(heap, 0, 40, 2 ** 40, 1, 1)],
      ["adam past the end", () => kernels.adam(heap, 0, 8, 16, 24, 32, 40, 60, 8, constants)],
      ["adam output over an input", () => kernels.adam(heap, 0, 8, 16, 24, 4, 40, 48, 8, constants)],
      ["adam outputs overlapping", () => kernels.adam(heap, 0, 8, 16, 24, 32, 36, 48, 8, constants)],
      ["adam short constants", () => kernels.adam(heap, 0, 8, 16, 24, 32, 40, 48, 8, constants.subarray(1))],
      ["adam wrong arguments", () => (kernels.adam as (...args: unknown[]) => void)(heap, 0, 8)],
    ];
    for (const [what, call] of calls) {
      const before = heap.slice();
      assert.throws(
        call,
        (e: Error) => e instanceof RangeError && /^(sumMiddle|adam): /.test(e.message),
        what,
      );
      assert.deepEqual(heap, before, `${what}: nothing written`);
    }
    // And a well-formed call works: rows [0..3] + [4..7] = [4, 6, 8, 10] at 40.
    kernels.sumMiddle(heap, 0, 40, 1, 2, 4);
    assert.deepEqual(Array.from(heap.subarray(40, 44)), [4, 6, 8, 10]);
  });

  it("sums squares (a weight decay) to float32 rounding, with the gradient 2x·dy", async () => {
    await selectBackend("wasm");
    const rng = new Rng(4);
    for (const size of [0, 1, 15, 16, 17, 7 * 200 * 200]) {
      const values = Float32Array.from({ length: size }, () => rng.normal());
      const x = tf.tensor(values);
      const { value, grads } = tf.valueAndGrads((t: tf.Tensor) =>
        tf.mul(tf.engine().runKernel(SUM_OF_SQUARES, { x: t }) as tf.Scalar, 3),
      )([x]);
      const exact = values.reduce((sum, v) => sum + v * v, 0);
      const got = (await value.data())[0] / 3;
      assert.ok(Math.abs(got - exact) <= 1e-6 * exact + 1e-30, `${size}: ${got} against ${exact}`);
      const grad = await grads[0].data();
      for (let i = 0; i < size; i++)
        assert.equal(grad[i], Math.fround(3 * Math.fround(values[i] * 2)), `${size}: grad ${i}`);
      tf.dispose([x, value, ...grads]);
    }
    const kernels = native as Exclude<typeof native, string>;
    const heap = new Float32Array(16).fill(1);
    assert.throws(
      () => kernels.sumOfSquares(heap, 0, 16, 4),
      /^RangeError: sumOfSquares: an operand lies outside/,
    );
    assert.throws(
      () => kernels.sumOfSquares(heap, 8, 0, 9),
      /^RangeError: sumOfSquares: an operand lies outside/,
    );
    assert.deepEqual(heap, new Float32Array(16).fill(1));
  });
});
