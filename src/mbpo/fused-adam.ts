/**
 * tfjs-core's Adam, with each variable's step in one kernel where the backend has it.
 *
 * AdamOptimizer.applyGradients runs eleven element-wise kernels per variable (two moments, two
 * bias corrections, a square root, the step, the sum): at MBPO's sizes a tenth to a fifth of an
 * ensemble step or a SAC update, most of it reading and writing the same arrays again. On the wasm
 * backend with the native addon built (wasm-kernels.ts: FUSED_ADAM, native/kernels.c: adam) one
 * kernel per variable does the same float32 operations in the same order in one pass, so the
 * result is bit for bit AdamOptimizer's (test/mbpo/fused-adam.test.ts): checkpoints, resume
 * (adam-state.ts) and determinism are unchanged. Everywhere else, and on the first step (which
 * creates the moments), it is AdamOptimizer itself.
 */
import * as tf from "@tensorflow/tfjs-core";
import { ADAM_CONSTANTS } from "./native-kernels.js";
import { FUSED_ADAM, nativeKernelsActive } from "./wasm-kernels.js";

/** AdamOptimizer's fields this class reads (private in tfjs-core 4.x; adam-state.ts reads them too). */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ variable: tf.Variable } | undefined)[];
}

type VariableGradients = Parameters<tf.AdamOptimizer["applyGradients"]>[0];

export class FusedAdam extends tf.AdamOptimizer {
  /** tf.train.adam's defaults: β₁ 0.9, β₂ 0.999, ε the backend's. */
  constructor(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon?: number) {
    super(learningRate, beta1, beta2, epsilon);
  }

  override applyGradients(variableGradients: VariableGradients): void {
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((v) => v.name)
      : Object.keys(variableGradients);
    const self = this as unknown as AdamInternals;
    const ready =
      nativeKernelsActive() &&
      names.every((_, i) => self.accumulatedFirstMoment[i] && self.accumulatedSecondMoment[i]);
    if (!ready) {
      super.applyGradients(variableGradients);
      return;
    }
    const constants = this.constants(self);
    tf.tidy(() => {
      names.forEach((name, i) => {
        const gradient = Array.isArray(variableGradients)
          ? variableGradients[i].tensor
          : variableGradients[name];
        if (gradient == null) return;
        const value = tf.engine().registeredVariables[name];
        const m = self.accumulatedFirstMoment[i]?.variable as tf.Variable;
        const v = self.accumulatedSecondMoment[i]?.variable as tf.Variable;
        const [newValue, newM, newV] = tf
          .engine()
          .runKernel(FUSED_ADAM, { value, m, v, gradient }, { constants }) as tf.Tensor[];
        m.assign(newM);
        v.assign(newV);
        value.assign(newValue);
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
    });
    this.incrementIterations();
  }

  /** The kernel's constants, each the float32 number AdamOptimizer's kernels see. */
  private constants(self: AdamInternals): number[] {
    const f = Math.fround;
    const accBeta1 = self.accBeta1.dataSync()[0];
    const accBeta2 = self.accBeta2.dataSync()[0];
    const byName: Record<(typeof ADAM_CONSTANTS)[number], number> = {
      beta1: f(self.beta1),
      oneMinusBeta1: f(1 - self.beta1),
      beta2: f(self.beta2),
      oneMinusBeta2: f(1 - self.beta2),
      // sub(1, accBeta) in float32: the difference of two float32 numbers rounded once.
      oneMinusAccBeta1: f(1 - accBeta1),
      oneMinusAccBeta2: f(1 - accBeta2),
      negLearningRate: f(-self.learningRate),
      epsilon: f(self.epsilon),
    };
    return ADAM_CONSTANTS.map((name) => byName[name]);
  }
}
