/**
 * Exact resume of tfjs's Adam. Adam divides by the bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ, which
 * AdamOptimizer keeps as accumulators multiplied by β once per step in float32. Its setWeights()
 * (how a checkpoint restores Adam) instead sets them to pow(β, t + 1): the same number in exact
 * arithmetic, but after a few dozen steps the two differ in the last bits, and a resumed run then
 * drifts away from the uninterrupted one. restoreBiasCorrections() rebuilds the accumulators the
 * way training builds them, so that a resumed run goes on bit for bit (on the same backend).
 *
 * Call it right after `await optimizer.setWeights(...)`. The accumulators are private fields of
 * tfjs-core's AdamOptimizer (4.x: accBeta1, accBeta2, beta1, beta2); their absence is an error
 * rather than a silent drift, so a tfjs upgrade that renames them is caught by the resume tests.
 */
import * as tf from "@tensorflow/tfjs-core";

interface AdamInternals {
  beta1: number;
  beta2: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

/** β^(t+1) as training accumulates it: fround(β), then t float32 multiplications by fround(β). */
export function accumulatedBeta(beta: number, iterations: number): number {
  const b = Math.fround(beta);
  let accumulated = b;
  for (let i = 0; i < iterations; i++) accumulated = Math.fround(accumulated * b);
  return accumulated;
}

/** Sets Adam's bias-correction accumulators for its current iteration count, as training would have. */
export function restoreBiasCorrections(optimizer: tf.AdamOptimizer): void {
  const { accBeta1, accBeta2, beta1, beta2 } = optimizer as unknown as AdamInternals;
  if (
    !(accBeta1 instanceof tf.Variable) ||
    !(accBeta2 instanceof tf.Variable) ||
    !(beta1 > 0) ||
    !(beta2 > 0)
  ) {
    throw new Error(
      "restoreBiasCorrections: this tfjs AdamOptimizer has no accBeta1/accBeta2 accumulators (did tfjs-core change?)",
    );
  }
  const iterations = optimizer.iterations;
  tf.tidy(() => {
    accBeta1.assign(tf.scalar(accumulatedBeta(beta1, iterations)));
    accBeta2.assign(tf.scalar(accumulatedBeta(beta2, iterations)));
  });
}
