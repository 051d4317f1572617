/**
 * The wasm backend's matrix products through OpenBLAS (src/mbpo/native-gemm.ts, native/gemm.c):
 * every shape the learner's BatchMatMul kernel takes agrees with the pure-JavaScript cpu backend,
 * and a hostile call to the addon (offsets outside the wasm memory, wrong arguments) is a
 * RangeError, never a write outside it. Skipped with a message where the addon is not built; CI
 * builds it (.ci/run), and there a missing addon fails.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { nativeGemm } from "../../src/mbpo/native-gemm.js";
import "../../src/mbpo/wasm-kernels.js";
import { Rng } from "../../src/util/rng.js";
import { unavailable } from "../support/system.js";

const native = nativeGemm();
const problem = unavailable(
  "the OpenBLAS addon",
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

describe("OpenBLAS products on the wasm backend", { skip: problem }, () => {
  it("is what the wasm backend reports running its products", async () => {
    assert.equal((await selectBackend("wasm")).products, "OpenBLAS");
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
});
