/**
 * Gradients of the tfjs kernels the learner differentiates through.
 *
 * Why this file exists: @tensorflow/tfjs-core registers no gradients by itself. Its own
 * `dist/register_all_gradients.js` is an ES module with extension-less imports inside a package
 * without "type": "module", so Node cannot load it (bundlers can; the @tensorflow/tfjs union
 * package bundles it). Rather than pull in the union package, the learner registers what it needs
 * here: the elementwise and reduction ops of SAC and of the ensemble's Gaussian NLL, batched
 * matrix products, and the split/concat/reshape plumbing. Each rule is the textbook derivative;
 * test/mbpo/gradients.test.ts checks every one against central finite differences.
 *
 * A kernel that already has a gradient (e.g. registered by the union package) is left alone.
 * Importing this module registers them; registerLearnerGradients() is idempotent.
 */
import * as tf from "@tensorflow/tfjs-core";

type Saved = tf.Tensor[];
type Attrs = Record<string, unknown>;
type GradFunc = (dy: tf.Tensor | tf.Tensor[], saved: Saved, attrs: Attrs) => Record<string, () => tf.Tensor>;

interface Rule {
  kernelName: string;
  inputsToSave?: string[];
  outputsToSave?: boolean[];
  saveAllInputs?: boolean;
  gradFunc: GradFunc;
}

/** dx of a broadcasting op, summed back over the broadcast axes to `shape`. */
function sumToShape(dx: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, dx.shape);
  const reduced = axes.length > 0 ? tf.sum(dx, axes) : dx;
  return tf.reshape(reduced, shape);
}

const asFloat = (t: tf.Tensor) => tf.cast(t, "float32");

/** Broadcasting binary op: da = sumTo(fa(dy, a, b)), db = sumTo(fb(dy, a, b)). */
function binary(
  kernelName: string,
  fa: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  fb: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): Rule {
  return {
    kernelName,
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b]) => ({
      a: () => sumToShape(fa(dy as tf.Tensor, a, b), a.shape),
      b: () => sumToShape(fb(dy as tf.Tensor, a, b), b.shape),
    }),
  };
}

/** Elementwise unary op of its input x: dx = f(dy, x). */
function unaryOfInput(kernelName: string, f: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor): Rule {
  return { kernelName, inputsToSave: ["x"], gradFunc: (dy, [x]) => ({ x: () => f(dy as tf.Tensor, x) }) };
}

/** Elementwise unary op whose derivative is cheapest from its output y: dx = f(dy, y). */
function unaryOfOutput(kernelName: string, f: (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor): Rule {
  return { kernelName, outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => f(dy as tf.Tensor, y) }) };
}

/** dy of a reduction over `axis`, reshaped with the reduced axes kept and broadcast back to x. */
function expandReduced(dy: tf.Tensor, x: tf.Tensor, axis: unknown): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis as number | number[], x.shape);
  const keptShape = x.shape.map((size, i) => (axes.includes(i) ? 1 : size));
  return tf.mul(tf.reshape(dy, keptShape), tf.onesLike(x));
}

const RULES: Rule[] = [
  binary(
    tf.Add,
    (dy) => dy,
    (dy) => dy,
  ),
  binary(
    tf.Sub,
    (dy) => dy,
    (dy) => tf.neg(dy),
  ),
  binary(
    tf.Multiply,
    (dy, _a, b) => tf.mul(dy, b),
    (dy, a) => tf.mul(dy, a),
  ),
  binary(
    tf.RealDiv,
    (dy, _a, b) => tf.div(dy, b),
    (dy, a, b) => tf.neg(tf.div(tf.mul(dy, a), tf.square(b))),
  ),
  // Ties go to a (as in tfjs): d min(a, b) = [a ≤ b] da + [a > b] db.
  binary(
    tf.Minimum,
    (dy, a, b) => tf.mul(dy, asFloat(tf.lessEqual(a, b))),
    (dy, a, b) => tf.mul(dy, asFloat(tf.greater(a, b))),
  ),
  binary(
    tf.Maximum,
    (dy, a, b) => tf.mul(dy, asFloat(tf.greaterEqual(a, b))),
    (dy, a, b) => tf.mul(dy, asFloat(tf.less(a, b))),
  ),
  binary(
    tf.SquaredDifference,
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(a, b), 2)),
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(b, a), 2)),
  ),
  {
    kernelName: tf.BatchMatMul,
    inputsToSave: ["a", "b"],
    // C = op(A)·op(B), op = identity or transpose of the last two axes. The gradients' products
    // carry transpose flags rather than explicit transposes: wasm-kernels.ts's kernel (the stock
    // wasm one takes a slow generic path with flags) transposes for XNNPACK itself, and hands the
    // flags to OpenBLAS, which reads a transposed operand in place (no Transpose kernel at all).
    gradFunc: (dy, [a, b], attrs) => {
      const g = dy as tf.Tensor;
      const tA = attrs.transposeA === true;
      const tB = attrs.transposeB === true;
      /** x·y with x, y read transposed where tx, ty. */
      const mm = (x: tf.Tensor, y: tf.Tensor, tx = false, ty = false) => tf.matMul(x, y, tx, ty);
      // An operand broadcast over the batch (a [rows, in] shared by E members) gets the sum
      // of its per-entry gradients.
      const grads = (da: () => tf.Tensor, db: () => tf.Tensor) => ({
        a: () => sumToShape(da(), a.shape),
        b: () => sumToShape(db(), b.shape),
      });
      if (!tA && !tB)
        return grads(
          () => mm(g, b, false, true),
          () => mm(a, g, true, false),
        );
      if (!tA && tB)
        return grads(
          () => mm(g, b),
          () => mm(g, a, true, false),
        );
      if (tA && !tB)
        return grads(
          () => mm(b, g, false, true),
          () => mm(a, g),
        );
      return grads(
        () => mm(b, g, true, true),
        () => mm(g, a, true, true),
      );
    },
  },
  unaryOfInput(tf.Neg, (dy) => tf.neg(dy)),
  unaryOfOutput(tf.Exp, (dy, y) => tf.mul(dy, y)),
  unaryOfInput(tf.Log, (dy, x) => tf.div(dy, x)),
  unaryOfInput(tf.Square, (dy, x) => tf.mul(dy, tf.mul(x, 2))),
  unaryOfOutput(tf.Sqrt, (dy, y) => tf.div(dy, tf.mul(y, 2))),
  unaryOfOutput(tf.Tanh, (dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))),
  unaryOfOutput(tf.Sigmoid, (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  unaryOfInput(tf.Softplus, (dy, x) => tf.mul(dy, tf.sigmoid(x))),
  // step(x) = [x > 0] in one kernel (greater + cast is 2.5× slower on wasm).
  unaryOfInput(tf.Relu, (dy, x) => tf.mul(dy, tf.step(x))),
  unaryOfInput(tf.Cast, (dy) => dy),
  unaryOfInput(tf.Identity, (dy) => dy),
  {
    kernelName: tf.ClipByValue,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => ({
      x: () =>
        tf.mul(
          dy as tf.Tensor,
          asFloat(
            tf.logicalAnd(
              tf.greaterEqual(x, attrs.clipValueMin as number),
              tf.lessEqual(x, attrs.clipValueMax as number),
            ),
          ),
        ),
    }),
  },
  {
    kernelName: tf.Sum,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => ({ x: () => expandReduced(dy as tf.Tensor, x, attrs.axis) }),
  },
  {
    kernelName: tf.Mean,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
        const count = axes.reduce((n, axis) => n * x.shape[axis], 1);
        return tf.div(expandReduced(dy as tf.Tensor, x, attrs.axis), count);
      },
    }),
  },
  {
    kernelName: tf.Reshape,
    inputsToSave: ["x"],
    gradFunc: (dy, [x]) => ({ x: () => tf.reshape(dy as tf.Tensor, x.shape) }),
  },
  {
    // Outputs that received no gradient arrive as zeros, so concatenating them is always right.
    kernelName: tf.SplitV,
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.concat(dy as tf.Tensor[], attrs.axis as number) }),
  },
  {
    kernelName: tf.Concat,
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0].shape)[0];
      const parts = tf.split(
        dy as tf.Tensor,
        saved.map((t) => t.shape[axis]),
        axis,
      );
      // Concat's inputs are a list: its gradients are keyed by position.
      return Object.fromEntries(parts.map((part, i) => [String(i), () => part]));
    },
  },
];

/** Registers every rule whose kernel has no gradient yet. Safe to call more than once. */
export function registerLearnerGradients(): void {
  for (const rule of RULES) {
    if (tf.getGradient(rule.kernelName) === undefined) {
      tf.registerGradient(rule as unknown as tf.GradConfig);
    }
  }
}

/** Kernels this module knows the gradient of (for tests). */
export const LEARNER_GRADIENT_KERNELS: readonly string[] = RULES.map((r) => r.kernelName);

registerLearnerGradients();
