/**
 * The learner's own native kernels for the wasm backend, where they have been built
 * (`npm run build:native`; Debian: `apt-get install libopenblas-dev`): a small N-API addon,
 * native/kernels.c. Optional: without it everything runs in tfjs-backend-wasm as before.
 *
 * What it runs (wasm-kernels.ts registers each as a tfjs kernel; the callers pick it only where
 * nativeKernelsActive() says so, and use tfjs's own ops everywhere else):
 *   - every float32 matrix product, through OpenBLAS's sgemm: XNNPACK compiled to WebAssembly
 *     reaches about 18 GFLOP/s at MBPO's sizes (128-bit SIMD, no FMA), native AVX2/FMA code about
 *     60–80;
 *   - sums over adjacent axes (the bias gradients) and Adam (fused-adam.ts), bit for bit tfjs's;
 *   - bias + activation forward and backward (activations.ts: SiLU for the ensemble, ReLU for SAC),
 *     SAC's tanh-squashed Gaussian head (sac.ts: samplePolicy) and the ensemble's Gaussian head
 *     (ensemble.ts: gaussianHead), each one pass instead of three to thirty tfjs kernels, which at
 *     these sizes cost as much in per-kernel overhead as in arithmetic. ReLU's equal tfjs's; the
 *     others use the addon's own vectorisable σ and softplus and agree to float32 rounding.
 *
 * Every kernel works in place on the wasm memory (a Float32Array over it, offsets from the
 * backend's tensor table): no copy in or out; every operand is bounds-checked in C against that
 * memory, and outputs against overlapping their inputs, before anything is written, so a wrong
 * offset is a RangeError, never a write outside it. Everything runs in the caller's thread:
 * OpenBLAS is held to one thread whatever `--tf-threads` says (its own pool beside XNNPACK's made a
 * SAC update slower on two cores: 35 ms against 24, `compute-sac.js --backends wasm:2`).
 *
 * MBPO_ARM_NATIVE=0 turns it off (e.g. to compare, or to rule it out).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../util/paths.js";

export interface NativeKernels {
  /**
   * out[i] = op(a[i]) · op(b[i]), i < batch, row-major, on `heap` (offsets in floats); a batch of 1
   * (batchA or batchB) is shared by every entry; op transposes where its flag is 1.
   */
  sgemm(
    heap: Float32Array,
    aOffset: number,
    bOffset: number,
    outOffset: number,
    batch: number,
    m: number,
    k: number,
    n: number,
    batchA: number,
    batchB: number,
    transposeA: number,
    transposeB: number,
  ): void;
  /**
   * x viewed as [outer, reduced, inner] at xOffset: out[o, i] = Σ_r x[o, r, i] at outOffset, each
   * sum in float32 from r = 0 up (tfjs-backend-wasm's Sum adds in that order: bit for bit its result).
   */
  sumMiddle(
    heap: Float32Array,
    xOffset: number,
    outOffset: number,
    outer: number,
    reduced: number,
    inner: number,
  ): void;
  /** out = SiLU(x + bias), x and out [batch, rows, cols], bias [batch, 1, cols] (own e^x: not bit for bit tfjs's). */
  biasSilu(
    heap: Float32Array,
    xOffset: number,
    biasOffset: number,
    outOffset: number,
    batch: number,
    rows: number,
    cols: number,
  ): void;
  /** out = dy · SiLU′(x + bias), shapes as biasSilu's. */
  biasSiluGrad(
    heap: Float32Array,
    dyOffset: number,
    xOffset: number,
    biasOffset: number,
    outOffset: number,
    batch: number,
    rows: number,
    cols: number,
  ): void;
  /** out = max(x + bias, 0), shapes as biasSilu's (exactly tfjs's Add and Relu). */
  biasRelu(
    heap: Float32Array,
    xOffset: number,
    biasOffset: number,
    outOffset: number,
    batch: number,
    rows: number,
    cols: number,
  ): void;
  /** out = dy · step(x + bias), shapes as biasSilu's (NaN where x + bias is NaN, as tfjs's). */
  biasReluGrad(
    heap: Float32Array,
    dyOffset: number,
    xOffset: number,
    biasOffset: number,
    outOffset: number,
    batch: number,
    rows: number,
    cols: number,
  ): void;
  /**
   * SAC's tanh-squashed Gaussian (sac.ts: samplePolicy) on [rows, 2A] actor outputs [μ, log σ] and
   * [rows, A] noise: the action [rows, A] and log π [rows, 1].
   */
  tanhGaussian(
    heap: Float32Array,
    meanAndLogStdOffset: number,
    noiseOffset: number,
    actionOffset: number,
    logProbOffset: number,
    rows: number,
    actions: number,
    logStdMin: number,
    logStdMax: number,
  ): void;
  /** Its gradient with respect to [μ, log σ] ([rows, 2A]) from dL/da and dL/d log π. */
  tanhGaussianGrad(
    heap: Float32Array,
    dActionOffset: number,
    dLogProbOffset: number,
    meanAndLogStdOffset: number,
    noiseOffset: number,
    outOffset: number,
    rows: number,
    actions: number,
    logStdMin: number,
    logStdMax: number,
  ): void;
  /**
   * The ensemble's output layer (ensemble.ts: forward): raw [rows, 2·out] into the mean [rows, out]
   * and the log-variance [rows, out] soft-bounded by maxLogvar and minLogvar ([out] each).
   */
  gaussianHead(
    heap: Float32Array,
    rawOffset: number,
    maxLogvarOffset: number,
    minLogvarOffset: number,
    meanOffset: number,
    logvarOffset: number,
    rows: number,
    out: number,
  ): void;
  /** Its gradient: d raw [rows, 2·out], and each row's terms of d max and d min ([rows, out] each). */
  gaussianHeadGrad(
    heap: Float32Array,
    dMeanOffset: number,
    dLogvarOffset: number,
    rawOffset: number,
    maxLogvarOffset: number,
    minLogvarOffset: number,
    dRawOffset: number,
    dMaxOffset: number,
    dMinOffset: number,
    rows: number,
    out: number,
  ): void;
  /**
   * The ensemble's network for inference: x [members or 1 (xShared = 1), rows, in] through every
   * layer (SiLU hidden, linear last) into out [members, rows, outLast], a block of rows at a time;
   * layout = [in, then per layer: out_k, weight offset, bias offset] (weights [members, in_k, out_k],
   * biases [members, 1, out_k]).
   */
  mlpForward(
    heap: Float32Array,
    xOffset: number,
    outOffset: number,
    members: number,
    rows: number,
    xShared: number,
    layout: Float64Array,
  ): void;
  /** out[0] = Σ x² over `count` floats at xOffset, in 16 interleaved float32 partial sums. */
  sumOfSquares(heap: Float32Array, xOffset: number, outOffset: number, count: number): void;
  /**
   * One Adam step of `count` parameters (value, first and second moment) from the gradient, into
   * three outputs that overlap no operand (else a RangeError), with tfjs-core's AdamOptimizer's float32
   * operations in its order; constants: ADAM_CONSTANTS's layout.
   */
  adam(
    heap: Float32Array,
    valueOffset: number,
    mOffset: number,
    vOffset: number,
    gradOffset: number,
    valueOut: number,
    mOut: number,
    vOut: number,
    count: number,
    constants: Float32Array,
  ): void;
}

/** The order of adam()'s constants (native/kernels.c's enum). */
export const ADAM_CONSTANTS = [
  "beta1",
  "oneMinusBeta1",
  "beta2",
  "oneMinusBeta2",
  "oneMinusAccBeta1",
  "oneMinusAccBeta2",
  "negLearningRate",
  "epsilon",
] as const;

/** Where `npm run build:native` puts the addon. */
export const NATIVE_KERNELS_PATH = join(packageRoot(), "native", "build", "Release", "kernels.node");

let loaded: NativeKernels | string | undefined;

/** The addon, or why there is none ("not built", "turned off", a load error's first line). */
export function nativeKernels(): NativeKernels | string {
  loaded ??= load();
  return loaded;
}

function load(): NativeKernels | string {
  if (process.env.MBPO_ARM_NATIVE === "0") return "turned off (MBPO_ARM_NATIVE=0)";
  if (!existsSync(NATIVE_KERNELS_PATH))
    return "not built (apt-get install libopenblas-dev; npm run build:native)";
  try {
    return createRequire(import.meta.url)(NATIVE_KERNELS_PATH) as NativeKernels;
  } catch (error) {
    return `failed to load: ${String((error as Error).message).split("\n")[0]}`;
  }
}
