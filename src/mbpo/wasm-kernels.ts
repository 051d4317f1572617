/**
 * Two kernels of tfjs-backend-wasm replaced for the learner's sake (on the wasm backend only).
 *
 * 1. BatchMatMul: batched products at XNNPACK speed, or OpenBLAS's where native-kernels.ts has it.
 *
 * Why: tfjs-backend-wasm 4.22 runs a matrix product through XNNPACK only for one 2-D product
 * without transpose flags; a batch of several matrices, or either transpose flag, takes a plain
 * blocked C++ loop about 10× slower. The ensemble's members ([E, B, in] × [E, in, out]) and the
 * twin critics are exactly such batches.
 *
 * How: the stock kernel is replaced on the wasm backend (and only there) by one that
 *   - transposes an operand whose flag is set (the backend's own Transpose kernel), then
 *   - runs one XNNPACK 2-D product per batch entry on *views* of the operands' memory: each view
 *     is a tensor id registered with the wasm module at an offset inside the batched buffer, so
 *     nothing is copied in or out; the views are unregistered right after (their memory belongs
 *     to the batched tensors).
 *   A left operand shared by the whole batch against one right matrix, or a right operand shared
 *   by all entries, are handled likewise (broadcast batch of 1). Anything else (dtype other than
 *   float32, batch shapes that broadcast partially) goes to the stock kernel.
 *
 * Where the native addon is built (native-kernels.ts), every float32 product the kernel takes runs
 * there instead, transposes and batches included, in place on the wasm memory.
 *
 * The kernel is a drop-in: same inputs, attributes and output as the stock one, so the
 * BatchMatMul gradient (gradients.ts) and every caller are unchanged.
 *
 * 2. Identity: shares its input's memory instead of copying it. tfjs clones (Identity) every
 * tensor an op saves for its gradient, on every op recorded under tf.variableGrads, and the
 * stock wasm Identity copies the data: about 90 copies of activation-sized tensors per SAC update
 * or ensemble step. Sharing is what the cpu backend's Identity and the wasm backend's own Reshape
 * already do (reference-counted data; no wasm kernel writes into its inputs).
 *
 * Importing this module installs both; installWasmKernels() is idempotent.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { type NativeKernels, nativeKernels } from "./native-kernels.js";

/** The parts of tfjs-backend-wasm's BackendWasm this kernel uses (not exported by the package). */
interface WasmBackend {
  wasm: {
    cwrap(name: string, returnType: null, argTypes: string[]): (...args: unknown[]) => void;
    /** The module's memory: exported by the threaded build, whose HEAP views refresh lazily. */
    wasmMemory?: WebAssembly.Memory;
    HEAPF32: Float32Array;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
  dataIdMap: { get(dataId: tf.DataId): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  incRef(dataId: tf.DataId): void;
}

type KernelArgs = {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
  backend: WasmBackend;
  attrs: { transposeA?: boolean; transposeB?: boolean };
};

type WasmMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

const BYTES = 4;
let stockKernel: tf.KernelFunc | undefined;
let transposeKernel: tf.KernelFunc | undefined;
let stockSum: tf.KernelFunc | undefined;
/** The module's exported BatchMatMul, bound per wasm module (a test may re-create the backend). */
const matMulByModule = new WeakMap<object, WasmMatMul>();

const shapeBytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);

function product(values: number[]): number {
  return values.reduce((p, v) => p * v, 1);
}

/** The backend's Transpose of the last two axes, as a new tensor info the caller disposes. */
function transposeLastTwo(x: tf.TensorInfo, backend: WasmBackend): tf.TensorInfo {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return (transposeKernel as tf.KernelFunc)({
    inputs: { x },
    backend: backend as unknown as tf.KernelBackend,
    attrs: { perm },
  }) as tf.TensorInfo;
}

function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const { backend, attrs } = args;
  let { a, b } = args.inputs;
  const stock = () =>
    (stockKernel as tf.KernelFunc)(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) {
    return stock();
  }
  const batchShapeA = a.shape.slice(0, -2);
  const batchShapeB = b.shape.slice(0, -2);
  const batchA = product(batchShapeA);
  const batchB = product(batchShapeB);
  const sameBatch =
    batchShapeA.length === batchShapeB.length && batchShapeA.every((d, i) => d === batchShapeB[i]);
  // Broadcasting of a batch of one against a batch of many (any ranks); partial broadcasts
  // ([2, 1] against [1, 3]) go to the stock kernel.
  if (!(sameBatch || batchA === 1 || batchB === 1)) return stock();
  const outBatchShape = batchA >= batchB ? batchShapeA : batchShapeB;
  const transposedA = attrs.transposeA === true;
  const transposedB = attrs.transposeB === true;
  const rows = transposedA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2];
  const inner = transposedA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
  const cols = transposedB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  const innerB = transposedB ? b.shape[b.shape.length - 1] : b.shape[b.shape.length - 2];
  if (inner !== innerB) {
    throw new Error(
      `Error in matMul: inner shapes (${inner}) and (${innerB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposedA} and transposeB=${transposedB} must match.`,
    );
  }
  const batch = Math.max(batchA, batchB);
  const out = backend.makeOutput([...outBatchShape, rows, cols], "float32");
  if (batch === 0 || rows === 0 || cols === 0) return out;
  const native = nativeKernels();
  if (typeof native !== "string") {
    native.sgemm(
      wasmHeap(backend),
      offsetOf(a, backend),
      offsetOf(b, backend),
      offsetOf(out, backend),
      batch,
      rows,
      inner,
      cols,
      batchA,
      batchB,
      +transposedA,
      +transposedB,
    );
    return out;
  }

  const temporaries: tf.TensorInfo[] = [];
  if (transposedA) {
    a = transposeLastTwo(a, backend);
    temporaries.push(a);
  }
  if (transposedB) {
    b = transposeLastTwo(b, backend);
    temporaries.push(b);
  }
  const module = backend.wasm;
  let matMul = matMulByModule.get(module);
  if (matMul === undefined) {
    matMul = module.cwrap("BatchMatMul", null, [
      "number",
      "array",
      "number",
      "number",
      "array",
      "number",
      "number",
      "number",
      "number",
    ]) as WasmMatMul;
    matMulByModule.set(module, matMul);
  }
  const aOffset = backend.dataIdMap.get(a.dataId).memoryOffset;
  const bOffset = backend.dataIdMap.get(b.dataId).memoryOffset;
  const outOffset = backend.dataIdMap.get(out.dataId).memoryOffset;
  const view = (offset: number, size: number): number => {
    const id = backend.dataIdNextNumber++;
    module.tfjs.registerTensor(id, size, offset);
    return id;
  };

  if (batchB === 1 && batchA > 1) {
    // One right matrix for every entry: a single product over all the left rows at once.
    const aId = view(aOffset, batchA * rows * inner);
    const bId = view(bOffset, inner * cols);
    const outId = view(outOffset, batchA * rows * cols);
    matMul(
      aId,
      shapeBytes([1, batchA * rows, inner]),
      3,
      bId,
      shapeBytes([1, inner, cols]),
      3,
      false,
      false,
      outId,
    );
    for (const id of [aId, bId, outId]) module.tfjs.disposeData(id);
  } else {
    const aShape = shapeBytes([1, rows, inner]);
    const bShape = shapeBytes([1, inner, cols]);
    for (let i = 0; i < batch; i++) {
      const aId = view(aOffset + (batchA === 1 ? 0 : i * rows * inner * BYTES), rows * inner);
      const bId = view(bOffset + i * inner * cols * BYTES, inner * cols);
      const outId = view(outOffset + i * rows * cols * BYTES, rows * cols);
      matMul(aId, aShape, 3, bId, bShape, 3, false, false, outId);
      // Unregistering a view also drops XNNPACK's operator cached on it (packed weights).
      for (const id of [aId, bId, outId]) module.tfjs.disposeData(id);
    }
  }
  for (const t of temporaries) backend.disposeData(t.dataId);
  return out;
}

/**
 * Sum over one block of adjacent axes, on the native addon. The stock kernel first transposes the
 * summed axes to the end whenever they are not already last: a bias gradient (a sum over the rows
 * of a [members, rows, units] tensor) is then a transpose and a sum, 1.5 ms at the ensemble's sizes.
 * Viewed as [outer, reduced, inner], the addon adds whole rows into the output instead, in the
 * stock kernel's order (r = 0 upwards, float32), so the result is bit for bit the stock one.
 */
function sum(args: {
  inputs: { x: tf.TensorInfo };
  backend: WasmBackend;
  attrs: { axis: number | number[]; keepDims: boolean };
}): tf.TensorInfo {
  const { backend, attrs } = args;
  const { x } = args.inputs;
  const native = nativeKernels();
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).sort((p, q) => p - q);
  const adjacent = axes.every((axis, i) => i === 0 || axis === axes[i - 1] + 1);
  if (typeof native === "string" || x.dtype !== "float32" || axes.length === 0 || !adjacent) {
    return (stockSum as tf.KernelFunc)(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const first = axes[0];
  const last = axes[axes.length - 1];
  const outer = product(x.shape.slice(0, first));
  const reduced = product(x.shape.slice(first, last + 1));
  const inner = product(x.shape.slice(last + 1));
  const shape = attrs.keepDims
    ? x.shape.map((d, i) => (i >= first && i <= last ? 1 : d))
    : x.shape.filter((_, i) => i < first || i > last);
  const out = backend.makeOutput(shape, "float32");
  if (outer * inner === 0) return out;
  const heap = wasmHeap(backend);
  native.sumMiddle(heap, offsetOf(x, backend), offsetOf(out, backend), outer, reduced, inner);
  return out;
}

/** A Float32Array over the whole wasm memory (after makeOutput, which may have grown it). */
function wasmHeap(backend: WasmBackend): Float32Array {
  return backend.wasm.wasmMemory ? new Float32Array(backend.wasm.wasmMemory.buffer) : backend.wasm.HEAPF32;
}

/** Where a tensor's data starts in wasmHeap(), in floats. */
function offsetOf(t: tf.TensorInfo, backend: WasmBackend): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset / BYTES;
}

/** The kernels of our own below, which run where nativeKernelsActive() says so. */
export const FUSED_ADAM = "MbpoArmFusedAdam";

/** The hidden activations with a fused bias kernel: activation(x + bias), forward and backward. */
export const BIAS_ACTIVATION = {
  silu: { forward: "MbpoArmBiasSilu", backward: "MbpoArmBiasSiluGrad" },
  relu: { forward: "MbpoArmBiasRelu", backward: "MbpoArmBiasReluGrad" },
} as const;
export type FusedActivation = keyof typeof BIAS_ACTIVATION;

/** Whether our own kernels run on the active backend: the wasm backend, with the native addon built. */
export function nativeKernelsActive(): boolean {
  return tf.getBackend() === "wasm" && typeof nativeKernels() !== "string";
}

/** The addon, where a kernel of our own is called without it (a bug in the caller, not bad data). */
function requireNative(kernel: string): NativeKernels {
  const native = nativeKernels();
  if (typeof native === "string") throw new Error(`${kernel}: the native addon is ${native}`);
  return native;
}

/**
 * [batch, rows, cols] of a layer's pre-activation x and its bias: [batch, 1, cols] (x's rank, the
 * second-last axis 1, the others x's) or [cols] (one bias for every row); undefined for any other
 * pair (activations.ts then uses tfjs's own kernels).
 */
export function layerShape(x: tf.TensorInfo, bias: tf.TensorInfo): [number, number, number] | undefined {
  const r = x.shape.length;
  if (r < 2 || x.dtype !== "float32" || bias.dtype !== "float32") return undefined;
  const perBatch =
    bias.shape.length === r && bias.shape.every((d, i) => (i === r - 2 ? d === 1 : d === x.shape[i]));
  const shared = bias.shape.length === 1 && bias.shape[0] === x.shape[r - 1] && r === 2;
  if (!perBatch && !shared) return undefined;
  return [product(x.shape.slice(0, -2)), x.shape[r - 2], x.shape[r - 1]];
}

/** activation(x + bias) on the addon: inputs x, bias (layerShape's); output x's shape. */
function biasActivation(activation: FusedActivation) {
  const kernel = BIAS_ACTIVATION[activation].forward;
  return (args: {
    inputs: { x: tf.TensorInfo; bias: tf.TensorInfo };
    backend: WasmBackend;
  }): tf.TensorInfo => {
    const { backend } = args;
    const { x, bias } = args.inputs;
    const native = requireNative(kernel);
    const shape = layerShape(x, bias);
    if (shape === undefined) throw new Error(`${kernel}: bias ${bias.shape} does not fit x ${x.shape}`);
    const out = backend.makeOutput(x.shape, "float32");
    if (product(shape) === 0) return out;
    const run = activation === "silu" ? native.biasSilu : native.biasRelu;
    run(wasmHeap(backend), offsetOf(x, backend), offsetOf(bias, backend), offsetOf(out, backend), ...shape);
    return out;
  };
}

/** dy · activation′(x + bias) on the addon: inputs dy, x, bias; output x's shape. */
function biasActivationGrad(activation: FusedActivation) {
  const kernel = BIAS_ACTIVATION[activation].backward;
  return (args: {
    inputs: { dy: tf.TensorInfo; x: tf.TensorInfo; bias: tf.TensorInfo };
    backend: WasmBackend;
  }): tf.TensorInfo => {
    const { backend } = args;
    const { dy, x, bias } = args.inputs;
    const native = requireNative(kernel);
    const shape = layerShape(x, bias);
    if (shape === undefined || dy.shape.some((d, i) => d !== x.shape[i]) || dy.dtype !== "float32") {
      throw new Error(`${kernel}: dy ${dy.shape}, x ${x.shape} and bias ${bias.shape} do not fit`);
    }
    const out = backend.makeOutput(x.shape, "float32");
    if (product(shape) === 0) return out;
    const run = activation === "silu" ? native.biasSiluGrad : native.biasReluGrad;
    run(
      wasmHeap(backend),
      offsetOf(dy, backend),
      offsetOf(x, backend),
      offsetOf(bias, backend),
      offsetOf(out, backend),
      ...shape,
    );
    return out;
  };
}

/** SAC's tanh-squashed Gaussian policy head (sac.ts: samplePolicy) and its gradient. */
export const TANH_GAUSSIAN = "MbpoArmTanhGaussian";
export const TANH_GAUSSIAN_GRAD = "MbpoArmTanhGaussianGrad";

type PolicyBounds = { logStdMin: number; logStdMax: number };

/** [rows, A] of an actor output [rows, 2A] and noise [rows, A], or an error naming the shapes. */
function policyShape(kernel: string, meanAndLogStd: tf.TensorInfo, noise: tf.TensorInfo): [number, number] {
  const [rows, twiceA] = meanAndLogStd.shape;
  const fits =
    meanAndLogStd.shape.length === 2 &&
    noise.shape.length === 2 &&
    noise.shape[0] === rows &&
    2 * noise.shape[1] === twiceA &&
    meanAndLogStd.dtype === "float32" &&
    noise.dtype === "float32";
  if (!fits)
    throw new Error(`${kernel}: actor output ${meanAndLogStd.shape} and noise ${noise.shape} do not fit`);
  return [rows, noise.shape[1]];
}

/** Inputs meanAndLogStd [rows, 2A], noise [rows, A]; outputs the action [rows, A], log π [rows, 1]. */
function tanhGaussian(args: {
  inputs: { meanAndLogStd: tf.TensorInfo; noise: tf.TensorInfo };
  backend: WasmBackend;
  attrs: PolicyBounds;
}): tf.TensorInfo[] {
  const { backend, attrs } = args;
  const { meanAndLogStd, noise } = args.inputs;
  const native = requireNative(TANH_GAUSSIAN);
  const [rows, A] = policyShape(TANH_GAUSSIAN, meanAndLogStd, noise);
  const action = backend.makeOutput([rows, A], "float32");
  const logProb = backend.makeOutput([rows, 1], "float32");
  if (rows === 0) return [action, logProb];
  native.tanhGaussian(
    wasmHeap(backend),
    offsetOf(meanAndLogStd, backend),
    offsetOf(noise, backend),
    offsetOf(action, backend),
    offsetOf(logProb, backend),
    rows,
    A,
    attrs.logStdMin,
    attrs.logStdMax,
  );
  return [action, logProb];
}

/** Inputs dAction, dLogProb, meanAndLogStd, noise; output d meanAndLogStd. */
function tanhGaussianGrad(args: {
  inputs: {
    dAction: tf.TensorInfo;
    dLogProb: tf.TensorInfo;
    meanAndLogStd: tf.TensorInfo;
    noise: tf.TensorInfo;
  };
  backend: WasmBackend;
  attrs: PolicyBounds;
}): tf.TensorInfo {
  const { backend, attrs } = args;
  const { dAction, dLogProb, meanAndLogStd, noise } = args.inputs;
  const native = requireNative(TANH_GAUSSIAN_GRAD);
  const [rows, A] = policyShape(TANH_GAUSSIAN_GRAD, meanAndLogStd, noise);
  if (product(dAction.shape) !== rows * A || product(dLogProb.shape) !== rows) {
    throw new Error(
      `${TANH_GAUSSIAN_GRAD}: gradients ${dAction.shape} and ${dLogProb.shape} do not fit ${rows} rows`,
    );
  }
  const out = backend.makeOutput([rows, 2 * A], "float32");
  if (rows === 0) return out;
  native.tanhGaussianGrad(
    wasmHeap(backend),
    offsetOf(dAction, backend),
    offsetOf(dLogProb, backend),
    offsetOf(meanAndLogStd, backend),
    offsetOf(noise, backend),
    offsetOf(out, backend),
    rows,
    A,
    attrs.logStdMin,
    attrs.logStdMax,
  );
  return out;
}

/** The policy head's gradient, for tf.variableGrads through TANH_GAUSSIAN (noise gets none: it is data). */
const tanhGaussianGradient: tf.GradConfig = {
  kernelName: TANH_GAUSSIAN,
  inputsToSave: ["meanAndLogStd", "noise"],
  gradFunc: (dy, saved, attrs) => {
    const [dAction, dLogProb] = dy as tf.Tensor[];
    const [meanAndLogStd, noise] = saved;
    return {
      meanAndLogStd: () =>
        tf
          .engine()
          .runKernel(
            TANH_GAUSSIAN_GRAD,
            { dAction, dLogProb, meanAndLogStd, noise },
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor,
      noise: () => tf.zerosLike(noise),
    };
  },
};

/** The ensemble's output layer (ensemble.ts: forward) and its gradient. */
export const GAUSSIAN_HEAD = "MbpoArmGaussianHead";
export const GAUSSIAN_HEAD_GRAD = "MbpoArmGaussianHeadGrad";

/** [rows (all leading axes), out] of raw [..., 2·out] and bounds of `out` values, or an error. */
function headShape(kernel: string, raw: tf.TensorInfo, bounds: tf.TensorInfo[]): [number, number] {
  const twiceOut = raw.shape[raw.shape.length - 1] ?? 0;
  const out = twiceOut / 2;
  const fits =
    raw.shape.length >= 2 &&
    Number.isInteger(out) &&
    [raw, ...bounds].every((t) => t.dtype === "float32") &&
    bounds.every((b) => product(b.shape) === out);
  if (!fits)
    throw new Error(`${kernel}: raw ${raw.shape} and bounds ${bounds.map((b) => `[${b.shape}]`)} do not fit`);
  return [product(raw.shape) / twiceOut, out];
}

/** Inputs raw [..., 2·out], maxLogvar, minLogvar; outputs the mean and log σ², [..., out] each. */
function gaussianHead(args: {
  inputs: { raw: tf.TensorInfo; maxLogvar: tf.TensorInfo; minLogvar: tf.TensorInfo };
  backend: WasmBackend;
}): tf.TensorInfo[] {
  const { backend } = args;
  const { raw, maxLogvar, minLogvar } = args.inputs;
  const native = requireNative(GAUSSIAN_HEAD);
  const [rows, out] = headShape(GAUSSIAN_HEAD, raw, [maxLogvar, minLogvar]);
  const shape = [...raw.shape.slice(0, -1), out];
  const outputs = [backend.makeOutput(shape, "float32"), backend.makeOutput(shape, "float32")];
  if (rows * out === 0) return outputs;
  const at = (t: tf.TensorInfo) => offsetOf(t, backend);
  native.gaussianHead(
    wasmHeap(backend),
    at(raw),
    at(maxLogvar),
    at(minLogvar),
    at(outputs[0]),
    at(outputs[1]),
    rows,
    out,
  );
  return outputs;
}

/** Inputs dMean, dLogvar, raw, maxLogvar, minLogvar; outputs d raw and the rows' terms of d max, d min. */
function gaussianHeadGrad(args: {
  inputs: {
    dMean: tf.TensorInfo;
    dLogvar: tf.TensorInfo;
    raw: tf.TensorInfo;
    maxLogvar: tf.TensorInfo;
    minLogvar: tf.TensorInfo;
  };
  backend: WasmBackend;
}): tf.TensorInfo[] {
  const { backend } = args;
  const { dMean, dLogvar, raw, maxLogvar, minLogvar } = args.inputs;
  const native = requireNative(GAUSSIAN_HEAD_GRAD);
  const [rows, out] = headShape(GAUSSIAN_HEAD_GRAD, raw, [maxLogvar, minLogvar]);
  if (product(dMean.shape) !== rows * out || product(dLogvar.shape) !== rows * out) {
    throw new Error(
      `${GAUSSIAN_HEAD_GRAD}: gradients ${dMean.shape} and ${dLogvar.shape} do not fit raw ${raw.shape}`,
    );
  }
  const termShape = [...raw.shape.slice(0, -1), out];
  const outputs = [
    backend.makeOutput(raw.shape, "float32"),
    backend.makeOutput(termShape, "float32"),
    backend.makeOutput(termShape, "float32"),
  ];
  if (rows * out === 0) return outputs;
  const at = (t: tf.TensorInfo) => offsetOf(t, backend);
  native.gaussianHeadGrad(
    wasmHeap(backend),
    at(dMean),
    at(dLogvar),
    at(raw),
    at(maxLogvar),
    at(minLogvar),
    ...(outputs.map(at) as [number, number, number]),
    rows,
    out,
  );
  return outputs;
}

/** The head's gradient: d raw from the kernel, each bound's gradient its row terms summed. */
const gaussianHeadGradient: tf.GradConfig = {
  kernelName: GAUSSIAN_HEAD,
  inputsToSave: ["raw", "maxLogvar", "minLogvar"],
  gradFunc: (dy, saved) => {
    const [dMean, dLogvar] = dy as tf.Tensor[];
    const [raw, maxLogvar, minLogvar] = saved;
    const [dRaw, dMaxTerms, dMinTerms] = tf
      .engine()
      .runKernel(GAUSSIAN_HEAD_GRAD, { dMean, dLogvar, raw, maxLogvar, minLogvar }) as tf.Tensor[];
    const out = dMaxTerms.shape[dMaxTerms.shape.length - 1];
    const rowSum = (terms: tf.Tensor, like: tf.Tensor) =>
      tf.reshape(tf.sum(tf.reshape(terms, [-1, out]), 0), like.shape);
    return {
      raw: () => dRaw,
      maxLogvar: () => rowSum(dMaxTerms, maxLogvar),
      minLogvar: () => rowSum(dMinTerms, minLogvar),
    };
  },
};

/** Σ x² of a float32 tensor (a weight decay), and its gradient 2x·dy. */
export const SUM_OF_SQUARES = "MbpoArmSumOfSquares";

function sumOfSquares(args: { inputs: { x: tf.TensorInfo }; backend: WasmBackend }): tf.TensorInfo {
  const { backend } = args;
  const { x } = args.inputs;
  const native = requireNative(SUM_OF_SQUARES);
  if (x.dtype !== "float32") throw new Error(`${SUM_OF_SQUARES}: x must be float32, got ${x.dtype}`);
  const out = backend.makeOutput([], "float32");
  native.sumOfSquares(wasmHeap(backend), offsetOf(x, backend), offsetOf(out, backend), product(x.shape));
  return out;
}

const sumOfSquaresGradient: tf.GradConfig = {
  kernelName: SUM_OF_SQUARES,
  inputsToSave: ["x"],
  gradFunc: (dy, saved) => ({ x: () => tf.mul(dy as tf.Tensor, tf.mul(saved[0], 2)) }),
};

/**
 * The ensemble's whole network for inference (no gradient): inputs x ([rows, in] shared by every
 * member, or [members, rows, in]) and w0, b0, w1, b1, … ([members, in, out], [members, 1, out]);
 * attrs.layers; output [members, rows, out_last]. SiLU hidden layers, linear last.
 */
export const MLP_FORWARD = "MbpoArmMlpForward";

function mlpForward(args: {
  inputs: Record<string, tf.TensorInfo>;
  backend: WasmBackend;
  attrs: { layers: number };
}): tf.TensorInfo {
  const { backend, inputs, attrs } = args;
  const native = requireNative(MLP_FORWARD);
  const { x } = inputs;
  const weights = Array.from({ length: attrs.layers }, (_, k) => [inputs[`w${k}`], inputs[`b${k}`]]);
  const members = weights[0]?.[0]?.shape[0] ?? 0;
  const shared = x.shape.length === 2;
  const rows = x.shape[x.shape.length - 2];
  const layout = [x.shape[x.shape.length - 1]];
  let width = layout[0];
  for (const [w, b] of weights) {
    const fits =
      w !== undefined &&
      b !== undefined &&
      w.shape.length === 3 &&
      w.shape[0] === members &&
      w.shape[1] === width &&
      product(b.shape) === members * w.shape[2] &&
      w.dtype === "float32" &&
      b.dtype === "float32";
    if (!fits) throw new Error(`${MLP_FORWARD}: layer weights do not chain from x ${x.shape}`);
    width = w.shape[2];
    layout.push(width, offsetOf(w, backend), offsetOf(b, backend));
  }
  if (
    x.dtype !== "float32" ||
    weights.length === 0 ||
    (!shared && (x.shape.length !== 3 || x.shape[0] !== members))
  ) {
    throw new Error(`${MLP_FORWARD}: x ${x.shape} does not fit ${members} members`);
  }
  const out = backend.makeOutput([members, rows, width], "float32");
  // makeOutput may have grown the memory, but offsets stay valid: take the heap after it.
  native.mlpForward(
    wasmHeap(backend),
    offsetOf(x, backend),
    offsetOf(out, backend),
    members,
    rows,
    +shared,
    Float64Array.from(layout),
  );
  return out;
}

/**
 * One Adam step of one variable on the native addon: inputs value, m, v, gradient (float32, one
 * shape); attrs.constants in ADAM_CONSTANTS's order; outputs the new value, m and v. The addon does
 * in one pass what tfjs's AdamOptimizer does in eleven kernels per variable, bit for bit.
 */
function fusedAdam(args: {
  inputs: { value: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo; gradient: tf.TensorInfo };
  backend: WasmBackend;
  attrs: { constants: number[] };
}): tf.TensorInfo[] {
  const { backend } = args;
  const { value, m, v, gradient } = args.inputs;
  const native = requireNative(FUSED_ADAM);
  const count = product(value.shape);
  for (const t of [value, m, v, gradient]) {
    if (t.dtype !== "float32" || product(t.shape) !== count) {
      throw new Error(`${FUSED_ADAM}: value, moments and gradient must be float32 of one size`);
    }
  }
  const outputs = [value, m, v].map((t) => backend.makeOutput(t.shape, "float32"));
  const heap = wasmHeap(backend);
  const [valueOut, mOut, vOut] = outputs.map((t) => offsetOf(t, backend));
  native.adam(
    heap,
    offsetOf(value, backend),
    offsetOf(m, backend),
    offsetOf(v, backend),
    offsetOf(gradient, backend),
    valueOut,
    mOut,
    vOut,
    count,
    Float32Array.from(args.attrs.constants),
  );
  return outputs;
}

/** Identity without a copy: the output shares the input's reference-counted data. */
function identity(args: { inputs: { x: tf.TensorInfo }; backend: WasmBackend }): tf.TensorInfo {
  const { x } = args.inputs;
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Replaces the wasm backend's BatchMatMul and Identity kernels with the ones above (once). */
export function installWasmKernels(): void {
  if (stockKernel !== undefined) return;
  const stock = tf.getKernel(tf.BatchMatMul, "wasm");
  const transpose = tf.getKernel(tf.Transpose, "wasm");
  if (stock === undefined || transpose === undefined) return;
  stockKernel = stock.kernelFunc;
  transposeKernel = transpose.kernelFunc;
  tf.unregisterKernel(tf.BatchMatMul, "wasm");
  tf.registerKernel({
    kernelName: tf.BatchMatMul,
    backendName: "wasm",
    // The stock setup (binding the module's BatchMatMul) still runs for the stock fallback.
    setupFunc: stock.setupFunc,
    kernelFunc: batchMatMul as unknown as tf.KernelFunc,
  });
  const stockSumKernel = tf.getKernel(tf.Sum, "wasm");
  if (stockSumKernel !== undefined) {
    stockSum = stockSumKernel.kernelFunc;
    tf.unregisterKernel(tf.Sum, "wasm");
    tf.registerKernel({
      kernelName: tf.Sum,
      backendName: "wasm",
      setupFunc: stockSumKernel.setupFunc,
      kernelFunc: sum as unknown as tf.KernelFunc,
    });
  }
  const own: [string, unknown][] = [
    [FUSED_ADAM, fusedAdam],
    [TANH_GAUSSIAN, tanhGaussian],
    [TANH_GAUSSIAN_GRAD, tanhGaussianGrad],
  ];
  own.push([GAUSSIAN_HEAD, gaussianHead], [GAUSSIAN_HEAD_GRAD, gaussianHeadGrad]);
  tf.registerGradient(tanhGaussianGradient);
  own.push([SUM_OF_SQUARES, sumOfSquares], [MLP_FORWARD, mlpForward]);
  tf.registerGradient(gaussianHeadGradient);
  tf.registerGradient(sumOfSquaresGradient);
  for (const activation of Object.keys(BIAS_ACTIVATION) as FusedActivation[]) {
    own.push([BIAS_ACTIVATION[activation].forward, biasActivation(activation)]);
    own.push([BIAS_ACTIVATION[activation].backward, biasActivationGrad(activation)]);
  }
  for (const [kernelName, kernelFunc] of own) {
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: kernelFunc as tf.KernelFunc });
  }
  const stockIdentity = tf.getKernel(tf.Identity, "wasm");
  if (stockIdentity !== undefined) {
    tf.unregisterKernel(tf.Identity, "wasm");
    tf.registerKernel({
      kernelName: tf.Identity,
      backendName: "wasm",
      kernelFunc: identity as unknown as tf.KernelFunc,
    });
  }
}

installWasmKernels();
