/**
 * The ensemble's hidden activation with its bias: SiLU(x + b) = z · σ(z), z = x + b.
 *
 * Written as tfjs ops (Add, Sigmoid, Multiply forward; tfjs's gradients of each backward) it costs
 * three passes over every hidden layer forward and about five backward, which at MBPO's sizes took
 * a fifth of an 8,000-row rollout pass. Where our own kernels run (the wasm backend with the native
 * addon: wasm-kernels.ts) it is one kernel forward and one backward, with e^x computed by the addon
 * (native/kernels.c: exp_vectorisable), so the result agrees with the tfjs ops to float32 rounding,
 * not bit for bit (test/mbpo/activations.test.ts). Everywhere else it is the tfjs ops themselves.
 */
import * as tf from "@tensorflow/tfjs-core";
import { BIAS_SILU, BIAS_SILU_GRAD, layerShape, nativeKernelsActive } from "./wasm-kernels.js";

/** SiLU(x + bias) for x [..., rows, cols] and bias [..., 1, cols] (or any shape tf.add broadcasts). */
export function biasSilu(x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (nativeKernelsActive() && layerShape(x, bias) !== undefined) return fusedBiasSilu(x, bias);
  const z = tf.add(x, bias);
  return tf.mul(z, tf.sigmoid(z));
}

const fusedBiasSilu = tf.customGrad((x, bias, save) => {
  const [xs, b] = [x as tf.Tensor, bias as tf.Tensor];
  (save as tf.GradSaveFunc)([xs, b]);
  return {
    value: tf.engine().runKernel(BIAS_SILU, { x: xs, bias: b }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedX, savedBias] = saved;
      const dz = tf.engine().runKernel(BIAS_SILU_GRAD, { dy, x: savedX, bias: savedBias }) as tf.Tensor;
      // The bias was added to every row: its gradient is the sum over the rows.
      return [dz, tf.sum(dz, -2, true)];
    },
  };
}) as (x: tf.Tensor, bias: tf.Tensor) => tf.Tensor;
