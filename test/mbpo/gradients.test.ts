import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { LEARNER_GRADIENT_KERNELS } from "../../src/mbpo/gradients.js";
// The learner's wasm BatchMatMul kernel: the batched cases below run through it.
import "../../src/mbpo/wasm-kernels.js";
import { Rng } from "../../src/util/rng.js";

await tf.setBackend("wasm");
await tf.ready();

/**
 * Checks tf.grads of f (summed against a fixed random cotangent) against central differences
 * in float64 arithmetic on float32 tensors: h = 1e-2, tolerance 2e-3 relative to the largest
 * gradient entry. Inputs are kept away from kinks (relu, clip, min/max) by the caller.
 */
function checkGradient(name: string, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: number[][][]): void {
  const rng = new Rng(name.length);
  const xs = inputs.map((m) => tf.tensor(m));
  const out = f(...xs);
  const cotangent = tf.tensor(
    Array.from({ length: out.size }, () => rng.range(0.5, 1.5)),
    out.shape,
  );
  const loss = (...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), cotangent));
  const analytic = tf
    .grads(loss)(xs)
    .map((g) => Array.from(g.dataSync()));
  const h = 1e-2;
  inputs.forEach((matrix, k) => {
    const flat = matrix.flat();
    const shape = xs[k].shape;
    const numeric = flat.map((_, j) => {
      const evalAt = (delta: number) => {
        const shifted = flat.slice();
        shifted[j] += delta;
        const args = xs.map((x, i) => (i === k ? tf.tensor(shifted, shape) : x));
        return tf.tidy(() => loss(...args).dataSync()[0]);
      };
      return (evalAt(h) - evalAt(-h)) / (2 * h);
    });
    const scale = Math.max(1, ...numeric.map(Math.abs));
    numeric.forEach((n, j) => {
      assert.ok(
        Math.abs(analytic[k][j] - n) < 2e-3 * scale,
        `${name}: d/dx${k}[${j}] analytic ${analytic[k][j]} vs numeric ${n}`,
      );
    });
  });
  tf.disposeVariables();
}

const A = [
  [0.3, -1.2, 0.8],
  [1.5, 0.4, -0.7],
];
const B = [
  [0.9, 0.2, -0.5],
  [-0.6, 1.1, 0.35],
];
const ROW = [[0.5, -0.25, 1.3]];
const POSITIVE = [
  [0.3, 1.2, 0.8],
  [1.5, 0.4, 2.7],
];

describe("learner gradients (central differences)", () => {
  const cases: [string, (...xs: tf.Tensor[]) => tf.Tensor, number[][][]][] = [
    ["add (broadcast)", (a, b) => tf.add(a, b), [A, ROW]],
    ["sub (broadcast)", (a, b) => tf.sub(a, b), [A, ROW]],
    ["mul (broadcast)", (a, b) => tf.mul(a, b), [A, ROW]],
    ["div", (a, b) => tf.div(a, b), [A, POSITIVE]],
    ["minimum", (a, b) => tf.minimum(a, b), [A, B]],
    ["maximum", (a, b) => tf.maximum(a, b), [A, B]],
    ["squaredDifference", (a, b) => tf.squaredDifference(a, b), [A, B]],
    [
      "matMul",
      (a, b) => tf.matMul(a, b),
      [
        A,
        [
          [0.2, 1],
          [-0.4, 0.3],
          [0.7, -0.9],
        ],
      ],
    ],
    ["matMul transposeA", (a, b) => tf.matMul(a, b, true, false), [A, B]],
    ["matMul transposeB", (a, b) => tf.matMul(a, b, false, true), [A, B]],
    [
      "matMul both",
      (a, b) => tf.matMul(a, b, true, true),
      [
        A,
        [
          [0.2, 1],
          [-0.4, 0.3],
          [0.7, -0.9],
        ],
      ],
    ],
    ["batched matMul", (a, b) => tf.matMul(tf.reshape(a, [2, 1, 3]), tf.reshape(b, [2, 3, 1])), [A, B]],
    [
      "batched matMul, batch of 2 with 2 rows each (the ensemble's layer)",
      (a, b) => tf.matMul(tf.reshape(a, [2, 2, 3]), tf.reshape(b, [2, 3, 2])),
      [
        [...A, ...B],
        [...A, ...B],
      ],
    ],
    [
      "batched matMul, left operand shared by the batch (broadcast)",
      (a, b) => tf.matMul(a, tf.reshape(b, [2, 3, 2])),
      [A, [...A, ...B]],
    ],
    [
      "batched matMul transposeA",
      (a, b) => tf.matMul(tf.reshape(a, [2, 1, 3]), tf.reshape(b, [2, 1, 3]), true, false),
      [A, B],
    ],
    [
      "batched matMul transposeB",
      (a, b) => tf.matMul(tf.reshape(a, [2, 1, 3]), tf.reshape(b, [2, 1, 3]), false, true),
      [A, B],
    ],
    ["neg", (x) => tf.neg(x), [A]],
    ["exp", (x) => tf.exp(x), [A]],
    ["log", (x) => tf.log(x), [POSITIVE]],
    ["square", (x) => tf.square(x), [A]],
    ["sqrt", (x) => tf.sqrt(x), [POSITIVE]],
    ["tanh", (x) => tf.tanh(x), [A]],
    ["sigmoid", (x) => tf.sigmoid(x), [A]],
    ["softplus", (x) => tf.softplus(x), [A]],
    ["relu", (x) => tf.relu(x), [A]],
    ["clipByValue", (x) => tf.clipByValue(x, -1, 1), [A]],
    ["sum axis 1 keepDims", (x) => tf.sum(x, 1, true), [A]],
    ["sum all", (x) => tf.sum(x), [A]],
    ["mean axis 0", (x) => tf.mean(x, 0), [A]],
    ["mean all", (x) => tf.mean(x), [A]],
    ["reshape", (x) => tf.reshape(x, [3, 2]), [A]],
    ["split (one part used)", (x) => tf.split(x, [1, 2], 1)[1], [A]],
    ["concat", (a, b) => tf.concat([a, tf.square(b)], 1), [A, B]],
  ];
  for (const [name, f, inputs] of cases) it(name, () => checkGradient(name, f, inputs));

  it("covers every kernel SAC differentiates through", () => {
    for (const kernel of [
      "Add",
      "Sub",
      "Multiply",
      "Minimum",
      "SquaredDifference",
      "BatchMatMul",
      "Neg",
      "Exp",
    ]) {
      assert.ok(LEARNER_GRADIENT_KERNELS.includes(kernel), kernel);
    }
    for (const kernel of [
      "Square",
      "Tanh",
      "Softplus",
      "Relu",
      "ClipByValue",
      "Sum",
      "Mean",
      "SplitV",
      "Concat",
    ]) {
      assert.ok(LEARNER_GRADIENT_KERNELS.includes(kernel), kernel);
    }
  });
});
