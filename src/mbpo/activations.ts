/**
 * Hidden activations with their bias: SiLU(x + b) = z · σ(z) (the ensemble) and ReLU(x + b) (SAC's
 * networks), z = x + b.
 *
 * Written as tfjs ops (Add, Sigmoid, Multiply forward; tfjs's gradients of each backward) SiLU costs
 * three passes over every hidden layer forward and about five backward: at MBPO's sizes a fifth of an
 * 8,000-row rollout pass; ReLU two and three, and as many kernel calls, each with tfjs's overhead.
 * Where our own kernels run (the wasm backend with the native addon: wasm-kernels.ts) each is one
 * kernel forward and one backward. ReLU's are exactly tfjs's; SiLU's σ is the addon's own
 * (native/kernels.c: sigmoid_vectorisable), so it agrees with the tfjs ops to float32 rounding, not
 * bit for bit (test/mbpo/activations.test.ts). Everywhere else it is the tfjs ops themselves.
 */
import * as tf from "@tensorflow/tfjs-core";
import { BIAS_ACTIVATION, type FusedActivation, layerShape, nativeKernelsActive } from "./wasm-kernels.js";

/** SiLU(x + bias) for x [..., rows, cols] and bias [..., 1, cols] or [cols] (or any pair tf.add broadcasts). */
export function biasSilu(x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (nativeKernelsActive() && layerShape(x, bias) !== undefined) return fused.silu(x, bias);
  const z = tf.add(x, bias);
  return tf.mul(z, tf.sigmoid(z));
}

/** ReLU(x + bias), shapes as biasSilu's. */
export function biasRelu(x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (nativeKernelsActive() && layerShape(x, bias) !== undefined) return fused.relu(x, bias);
  return tf.relu(tf.add(x, bias));
}

/** activation(x + bias) as one kernel, with a gradient of one kernel and the bias's row sum. */
function fusedBiasActivation(activation: FusedActivation) {
  const { forward, backward } = BIAS_ACTIVATION[activation];
  return tf.customGrad((x, bias, save) => {
    const [xs, b] = [x as tf.Tensor, bias as tf.Tensor];
    (save as tf.GradSaveFunc)([xs, b]);
    return {
      value: tf.engine().runKernel(forward, { x: xs, bias: b }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedBias] = saved;
        const dz = tf.engine().runKernel(backward, { dy, x: savedX, bias: savedBias }) as tf.Tensor;
        // The bias was added to every row: its gradient is the sum over the rows.
        return [dz, tf.reshape(tf.sum(dz, -2, true), savedBias.shape)];
      },
    };
  }) as (x: tf.Tensor, bias: tf.Tensor) => tf.Tensor;
}

const fused: Record<FusedActivation, (x: tf.Tensor, bias: tf.Tensor) => tf.Tensor> = {
  silu: fusedBiasActivation("silu"),
  relu: fusedBiasActivation("relu"),
};
