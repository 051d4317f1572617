/**
 * FusedAdam (src/mbpo/fused-adam.ts) against tfjs-core's AdamOptimizer on the wasm backend with
 * the native addon: the same gradients give bit-for-bit the same weights and moments, step after
 * step, and the fused kernel is what ran. Skipped with a message where the addon is not built (CI
 * builds it). Elsewhere FusedAdam is AdamOptimizer itself (checked on the cpu backend).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { FusedAdam } from "../../src/mbpo/fused-adam.js";
import { nativeKernels } from "../../src/mbpo/native-kernels.js";
import { FUSED_ADAM } from "../../src/mbpo/wasm-kernels.js";
import { Rng } from "../../src/util/rng.js";
import { unavailable } from "../support/system.js";

const native = nativeKernels();
const problem = unavailable(
  "the native kernels addon",
  "apt-get install libopenblas-dev; npm run build:native",
  typeof native === "string" ? native : undefined,
);

const SHAPES = [[], [3], [7, 12, 20], [7, 1, 20], [33, 5]];

function randomValues(shape: number[], rng: Rng, scale: number): Float32Array {
  const size = shape.reduce((p, d) => p * d, 1);
  return Float32Array.from({ length: size }, () => scale * rng.normal());
}

/** Runs `steps` Adam steps of `optimizer` on fresh variables; returns weights then moments. */
async function train(
  optimizer: tf.AdamOptimizer,
  steps: number,
  kernels: string[][],
): Promise<Float32Array[]> {
  const rng = new Rng(5);
  const variables = SHAPES.map((shape, i) =>
    tf.variable(
      tf.tensor(randomValues(shape, rng, 1), shape),
      true,
      `adam-test-${optimizer.constructor.name}-${i}`,
    ),
  );
  for (let step = 0; step < steps; step++) {
    // Gradients of very different scales, and one exactly zero, as the learner sees.
    const grads: tf.NamedTensorMap = {};
    variables.forEach((v, i) => {
      grads[v.name] = tf.tensor(randomValues(v.shape, rng, i === 1 ? 0 : 10 ** (i - 3)), v.shape);
    });
    const info = await tf.profile(() =>
      optimizer.applyGradients(grads as Parameters<tf.AdamOptimizer["applyGradients"]>[0]),
    );
    kernels.push(info.kernels.map((k) => k.name));
    tf.dispose(Object.values(grads));
  }
  const moments = await optimizer.getWeights();
  const out = [...variables, ...moments.slice(1).map((w) => w.tensor)].map(
    (t) => t.dataSync() as Float32Array,
  );
  const copies = out.map((a) => a.slice());
  tf.dispose(variables);
  optimizer.dispose();
  return copies;
}

describe("FusedAdam", () => {
  it("is bit for bit tfjs's AdamOptimizer on the wasm backend, through the fused kernel", {
    skip: problem,
  }, async () => {
    await selectBackend("wasm");
    const stockKernels: string[][] = [];
    const fusedKernels: string[][] = [];
    const expected = await train(tf.train.adam(1e-3), 6, stockKernels);
    const got = await train(new FusedAdam(1e-3), 6, fusedKernels);
    assert.equal(got.length, expected.length);
    for (let i = 0; i < got.length; i++) {
      assert.deepEqual(
        new Uint32Array(got[i].buffer),
        new Uint32Array(expected[i].buffer),
        `array ${i} (weights, then first and second moments) differs`,
      );
    }
    // The first step creates the moments through AdamOptimizer; every later one is fused.
    assert.ok(!fusedKernels[0].includes(FUSED_ADAM));
    for (const names of fusedKernels.slice(1)) {
      assert.equal(names.filter((n) => n === FUSED_ADAM).length, SHAPES.length);
      assert.ok(!names.includes("Sqrt"), "no stock Adam kernels beside the fused one");
    }
    assert.ok(!stockKernels.flat().includes(FUSED_ADAM));
  });

  it("is AdamOptimizer where the backend has no fused kernel (cpu)", async () => {
    await selectBackend("cpu");
    const kernels: string[][] = [];
    const expected = await train(tf.train.adam(1e-3), 3, []);
    const got = await train(new FusedAdam(1e-3), 3, kernels);
    for (let i = 0; i < got.length; i++) assert.deepEqual(got[i], expected[i], `array ${i}`);
    assert.ok(!kernels.flat().includes(FUSED_ADAM));
  });
});
