/**
 * Probabilistic ensemble dynamics model (Chua et al. 2018, "PETS"; as used by MBPO, Janner et
 * al. 2019, and mbrl-lib's GaussianMLP).
 *
 *   input   x = (q, q̇, τ), standardised by an input Normalizer fitted on the training split
 *   target  y = Δ(q, q̇) = (q', q̇') − (q, q̇), standardised by a target Normalizer likewise: Δq and
 *           Δq̇ differ by orders of magnitude, and without this the loss would see only Δq̇
 *   member  e = 1..E:  h = SiLU(x·W₁ₑ + b₁ₑ) … (4 × 200);  [μ, r] = h·W₅ₑ + b₅ₑ
 *           log σ² = max − softplus(max − r);  log σ² = min + softplus(log σ² − min)
 *           with max, min learned (one per output, shared by the members), so log σ² stays
 *           (softly) between min and max
 *   loss    Σₑ mean_{rows, dims} ½[(y − μ)² e^{−log σ²} + log σ² + log 2π]     (Gaussian NLL)
 *           + Σ_k decay_k · ½‖W_k‖²  +  0.01 · (Σ max − Σ min)
 *
 * Layout: layer k of all members is one [E, in, out] weight variable and one [E, 1, out] bias
 * variable, and every member is computed at once: activations are [E, rows, width] and each
 * layer is one batched product [E, rows, in] × [E, in, out] (tf.matMul on 3-D tensors) plus one
 * broadcast bias add. Rows shared by all members (predict, sample) enter as one [rows, in]
 * matrix, broadcast against the members' first layer. On tfjs-backend-wasm the batched product
 * runs through XNNPACK thanks to wasm-kernels.ts (the stock wasm kernel takes a generic loop for
 * any batch above one, about 10× slower). Measured in one run of bench/compute-ensemble.ts
 * (batched / per-member, below 1: batched faster): wasm train step 0.74, forward of 8,000
 * member-rows 0.90, rollout forward of 8,000 rows × 7 members 0.77. On the pure-JS cpu backend the
 * batched path measured 1.12–1.14 (its broadcasting elementwise ops on [E, rows, ·] are slower);
 * it stays the default there too, cpu being the last-resort backend at 30–60× wasm's time.
 *
 * The per-member path ("per-member" compute path, for benchmarks and the equivalence tests) runs
 * the same parameters as E separate 2-D networks: member e's weights are split out of the
 * stacked variables and its rows computed on their own, the outputs joined at the end.
 *
 * Units: everything inside (NLL, MSE, log-variances, disagreement) is in standardised target
 * units; predict() and sample() hand back de-standardised Δ.
 *
 * Randomness comes from the caller's Rng only (initial weights, holdout split, bootstrap,
 * shuffles, sampling), so the same seed on the same backend gives the same numbers.
 */
import type { Rng } from "../util/rng.js";
import { biasSilu } from "./activations.js";
import { restoreBiasCorrections } from "./adam-state.js";
import { tf } from "./backend.js";
import { FusedAdam } from "./fused-adam.js";
import { ENSEMBLE_DEFAULTS, type EnsembleHyperparameters } from "./hyperparameters.js";
import { Normalizer, type NormalizerJSON } from "./normalizer.js";
import { decodeTyped, encodeTyped } from "./replay-buffer.js";
import { GAUSSIAN_HEAD, MLP_FORWARD, nativeKernelsActive, SUM_OF_SQUARES } from "./wasm-kernels.js";

export { ENSEMBLE_DEFAULTS, type EnsembleHyperparameters } from "./hyperparameters.js";

const LOG_2PI = Math.log(2 * Math.PI);

/** Layer k of every member: y = x·weight + bias, weight [E, in, out], bias [E, 1, out]. */
interface StackedLayer {
  weight: tf.Variable;
  bias: tf.Variable;
}

/**
 * How the members are computed: "batched" (the default) runs all members in one batched product
 * per layer; "per-member" runs E separate 2-D networks on the same parameters (the reference the
 * benchmarks and equivalence tests compare against). Both give the same numbers up to float
 * rounding.
 */
export type EnsembleComputePath = "batched" | "per-member";

export interface EnsembleComputeOptions {
  /** Default "batched". */
  path?: EnsembleComputePath;
}

/** All members' Gaussians for a batch, row-major [member][row][output], de-standardised Δ units. */
export interface EnsemblePrediction {
  /** E × rows × outputSize means of Δ. */
  mean: Float32Array;
  /** E × rows × outputSize log-variances of Δ (log σ² of the standardised output + 2 log std). */
  logvar: Float32Array;
}

/** What sample() fills for a batch of rows. */
export interface EnsembleSample {
  /** rows × outputSize draws of Δ from each row's chosen member, de-standardised. */
  delta: Float32Array;
  /** rows values of the disagreement measure (see ProbabilisticEnsemble.disagreement). */
  disagreement: Float32Array;
}

/** Holdout scores of every member after one epoch, passed to TrainOptions.onEpoch. */
export interface EnsembleEpoch {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean training objective per gradient step in this epoch (sum over members, with penalties). */
  trainLoss: number;
  /** Per member: holdout MSE of the mean, standardised target units. */
  holdoutMse: number[];
  /** Per member: holdout Gaussian NLL per output dimension, standardised target units. */
  holdoutNll: number[];
  /** Per member: whether it improved by more than the threshold (its weights were kept). */
  improved: boolean[];
}

export interface EnsembleTrainOptions {
  /** Epoch cap for this call (default: options.maxEpochs). */
  maxEpochs?: number;
  /** Called after every epoch (for progress display and tests). */
  onEpoch?: (epoch: EnsembleEpoch) => void;
  /**
   * Asked after every gradient step: true ends training there (a stop signal). Each member then
   * gets back the weights of its best epoch so far, as at an early stop, and the report says
   * `interrupted`.
   */
  shouldStop?: () => boolean;
}

export interface EnsembleTrainReport {
  /** Epochs run. */
  epochs: number;
  /** True when the patience rule ended training before maxEpochs. */
  stoppedEarly: boolean;
  /** True when shouldStop ended training (mid-epoch: that epoch is not scored). */
  interrupted: boolean;
  trainRows: number;
  holdoutRows: number;
  /** Per member, the epoch whose weights were kept (0: no epoch beat the weights it started with). */
  bestEpoch: number[];
  /** Per member, on the holdout, with the kept weights (standardised target units). */
  holdoutMse: number[];
  holdoutNll: number[];
  /** Members with the lowest holdout MSE, best first. */
  elites: number[];
  /** Means over the elites of holdoutMse and holdoutNll. */
  eliteMse: number;
  eliteNll: number;
  /** Mean training objective per step in the last epoch. */
  trainLoss: number;
  seconds: number;
}

/** Per-member scores on a data set (standardised target units). */
export interface EnsembleScores {
  mse: number[];
  nll: number[];
}

/** The training objective's parts on one data set, all members on the same rows. */
export interface EnsembleObjective {
  /** Σ over members of the mean Gaussian NLL per output dimension. */
  nll: number;
  /** Σ_k decay_k · ½‖W_k‖². */
  weightDecay: number;
  /** logvarBoundPenalty · (Σ max_logvar − Σ min_logvar). */
  boundPenalty: number;
  total: number;
}

/** Plain copies of the parameters (weight k is row-major [E, in_k, out_k], bias k [E, out_k]). */
export interface EnsembleParameters {
  weights: Float32Array[];
  biases: Float32Array[];
  /** outputSize values each. */
  maxLogvar: Float32Array;
  minLogvar: Float32Array;
}

interface AdamJSON {
  iterations: number;
  firstMoments: string[];
  secondMoments: string[];
}

/** Checkpoint form (float arrays as base64 little-endian float32, see encodeTyped). */
export interface EnsembleJSON {
  kind: "probabilistic-ensemble";
  inputSize: number;
  outputSize: number;
  options: EnsembleHyperparameters;
  weights: string[];
  biases: string[];
  maxLogvar: string;
  minLogvar: string;
  inputNormalizer: NormalizerJSON;
  targetNormalizer: NormalizerJSON;
  elites: number[];
  optimizer: AdamJSON;
}

export class ProbabilisticEnsemble {
  readonly inputSize: number;
  readonly outputSize: number;
  readonly options: EnsembleHyperparameters;
  /** Fitted on the training split of the last train() call (identity before). */
  readonly inputNormalizer: Normalizer;
  readonly targetNormalizer: Normalizer;

  /** How the members are computed (see EnsembleComputePath). */
  readonly computePath: EnsembleComputePath;
  /** layers[k]: layer k of every member, stacked along the first axis. */
  private readonly layers: StackedLayer[];
  /** Widths of the layers' inputs and outputs: [in, 200, 200, 200, 200, 2·out]. */
  private readonly sizes: number[];
  /** Soft bounds of the standardised log-variance, [1, 1, outputSize] (shared by the members). */
  private readonly maxLogvar: tf.Variable;
  private readonly minLogvar: tf.Variable;
  private readonly trainable: tf.Variable[];
  private readonly optimizer: tf.AdamOptimizer;
  private eliteIndices: number[];
  /** Standardised forward outputs of the last forwardStandardised() call, regrown as needed. */
  private scratchMean = new Float32Array(0);
  private scratchLogvar = new Float32Array(0);

  /**
   * `rng` draws the initial weights; options override ENSEMBLE_DEFAULTS; `compute` picks the
   * compute path (batched unless told otherwise).
   */
  constructor(
    inputSize: number,
    outputSize: number,
    rng: Rng,
    options: Partial<EnsembleHyperparameters> = {},
    compute: EnsembleComputeOptions = {},
  ) {
    for (const [name, value] of [
      ["inputSize", inputSize],
      ["outputSize", outputSize],
    ] as const) {
      if (!Number.isInteger(value) || value <= 0) {
        throw new Error(`ProbabilisticEnsemble: ${name} must be a positive integer, got ${value}`);
      }
    }
    this.inputSize = inputSize;
    this.outputSize = outputSize;
    this.options = { ...ENSEMBLE_DEFAULTS, ...options };
    checkOptions(this.options);
    const o = this.options;
    this.inputNormalizer = new Normalizer(inputSize, o.normalizerMinStd);
    this.targetNormalizer = new Normalizer(outputSize, o.normalizerMinStd);

    const sizes = [inputSize, ...o.hiddenSizes, 2 * outputSize];
    this.sizes = sizes;
    const path = compute.path ?? "batched";
    if (path !== "batched" && path !== "per-member") {
      throw new Error(`ProbabilisticEnsemble: compute path must be batched or per-member, got ${path}`);
    }
    this.computePath = path;
    // Drawn member by member, layer by layer (the order a seed has always fixed).
    const E = o.members;
    const initial = sizes.slice(1).map((outputs, k) => new Float32Array(E * sizes[k] * outputs));
    for (let e = 0; e < E; e++) {
      sizes.slice(1).forEach((outputs, k) => {
        const per = sizes[k] * outputs;
        initial[k].set(truncatedNormal(sizes[k], outputs, rng), e * per);
      });
    }
    this.layers = sizes.slice(1).map((outputs, k) => ({
      // (tidy frees the initial values; variables outlive it)
      weight: tf.tidy(() => tf.variable(tf.tensor3d(initial[k], [E, sizes[k], outputs]))),
      bias: tf.tidy(() => tf.variable(tf.zeros([E, 1, outputs]))),
    }));
    this.maxLogvar = tf.tidy(() => tf.variable(tf.fill([1, 1, outputSize], o.initialMaxLogvar)));
    this.minLogvar = tf.tidy(() => tf.variable(tf.fill([1, 1, outputSize], o.initialMinLogvar)));
    this.trainable = [
      ...this.layers.flatMap((layer) => [layer.weight, layer.bias]),
      this.maxLogvar,
      this.minLogvar,
    ];
    this.optimizer = new FusedAdam(o.learningRate);
    this.eliteIndices = Array.from({ length: o.elites }, (_, i) => i);
  }

  /** Number of members E. */
  get members(): number {
    return this.options.members;
  }

  /** The elite members (lowest holdout MSE at the last train(), best first; 0..K−1 before). */
  get elites(): readonly number[] {
    return this.eliteIndices;
  }

  /**
   * Trains on N rows (inputs N × inputSize, targets N × outputSize, row-major): holdout split,
   * normalisers refitted on the training split, one bootstrap sample per member, epochs of
   * shuffled mini-batches until no member has improved its holdout MSE by more than
   * improvementThreshold for `patience` epochs; then each member gets back the weights of its own
   * best epoch, and the elites are chosen by holdout MSE. Training continues from the current
   * weights (and Adam state), as MBPO does on every retrain.
   */
  async train(
    inputs: Float32Array,
    targets: Float32Array,
    rng: Rng,
    trainOptions: EnsembleTrainOptions = {},
  ): Promise<EnsembleTrainReport> {
    const start = performance.now();
    const o = this.options;
    const nIn = this.inputSize;
    const nOut = this.outputSize;
    const E = o.members;
    const maxEpochs = trainOptions.maxEpochs ?? o.maxEpochs;
    if (!Number.isInteger(maxEpochs) || maxEpochs < 0) {
      throw new Error(
        `ProbabilisticEnsemble.train: maxEpochs must be a non-negative integer, got ${maxEpochs}`,
      );
    }
    const rows = inputs.length / nIn;
    if (!Number.isInteger(rows) || targets.length !== rows * nOut) {
      throw new Error(
        `ProbabilisticEnsemble.train: inputs (${inputs.length} values) and targets (${targets.length}) are not N×${nIn} and N×${nOut}`,
      );
    }
    const holdoutRows = Math.min(Math.floor(rows * o.holdoutFraction), o.maxHoldout);
    const trainRows = rows - holdoutRows;
    if (holdoutRows < 1 || trainRows < 1) {
      throw new Error(
        `ProbabilisticEnsemble.train: ${rows} rows leave no holdout or no training rows (holdoutFraction ${o.holdoutFraction})`,
      );
    }

    // Holdout split: a random permutation, the first holdoutRows rows held out (as MBPO).
    const order = permutation(rows, rng);
    const trainX = gatherRows(inputs, nIn, order, holdoutRows, rows);
    const trainY = gatherRows(targets, nOut, order, holdoutRows, rows);
    const holdoutX = gatherRows(inputs, nIn, order, 0, holdoutRows);
    const holdoutY = gatherRows(targets, nOut, order, 0, holdoutRows);
    this.inputNormalizer.fit(trainX, trainRows);
    this.targetNormalizer.fit(trainY, trainRows);
    this.inputNormalizer.normalize(trainX, trainX, trainRows);
    this.targetNormalizer.normalize(trainY, trainY, trainRows);
    this.inputNormalizer.normalize(holdoutX, holdoutX, holdoutRows);
    this.targetNormalizer.normalize(holdoutY, holdoutY, holdoutRows);

    // Bootstrap: member e trains on trainRows rows drawn with replacement, reshuffled every epoch.
    const bootstrap = this.bootstrapIndices(trainRows, rng);

    // Early stopping state: the best holdout MSE per member and the weights that gave it.
    let best = (await this.scoreStandardised(holdoutX, holdoutY, holdoutRows)).mse;
    const bestEpoch = new Array<number>(E).fill(0);
    const kept = await this.getParameters();
    let epochsSinceImprovement = 0;
    let epoch = 0;
    let trainLoss = Number.NaN;
    let interrupted = false;

    const batch = o.batchSize;
    const batchX = new Float32Array(E * batch * nIn);
    const batchY = new Float32Array(E * batch * nOut);
    while (!interrupted && epoch < maxEpochs && epochsSinceImprovement < o.patience) {
      epoch++;
      for (const indices of bootstrap) shuffleInPlace(indices, rng);
      let lossSum: tf.Scalar = tf.scalar(0);
      let steps = 0;
      for (let first = 0; first < trainRows; first += batch) {
        const b = Math.min(batch, trainRows - first);
        for (let e = 0; e < E; e++) {
          for (let i = 0; i < b; i++) {
            const row = bootstrap[e][first + i];
            const slot = e * b + i;
            batchX.set(trainX.subarray(row * nIn, (row + 1) * nIn), slot * nIn);
            batchY.set(trainY.subarray(row * nOut, (row + 1) * nOut), slot * nOut);
          }
        }
        const loss = this.trainStepTensor(
          batchX.subarray(0, E * b * nIn),
          batchY.subarray(0, E * b * nOut),
          b,
        );
        const previous = lossSum;
        lossSum = tf.add(previous, loss);
        tf.dispose([previous, loss]);
        steps++;
        if (trainOptions.shouldStop?.() === true) {
          interrupted = true;
          break;
        }
      }
      trainLoss = (await lossSum.data())[0] / steps;
      lossSum.dispose();
      if (interrupted) break;

      const scores = await this.scoreStandardised(holdoutX, holdoutY, holdoutRows);
      const improved = scores.mse.map(
        (mse, e) => (best[e] - mse) / Math.abs(best[e]) > o.improvementThreshold,
      );
      if (improved.some(Boolean)) {
        const current = await this.getParameters();
        improved.forEach((better, e) => {
          if (!better) return;
          best[e] = scores.mse[e];
          bestEpoch[e] = epoch;
          copyMember(current, kept, e, E);
        });
        epochsSinceImprovement = 0;
      } else {
        epochsSinceImprovement++;
      }
      trainOptions.onEpoch?.({
        epoch,
        trainLoss,
        holdoutMse: scores.mse,
        holdoutNll: scores.nll,
        improved,
      });
    }

    // Each member returns to its best epoch's weights; the shared log-variance bounds stay as
    // trained (MBPO keeps per-member snapshots of the layers only).
    const trainedBounds = await this.getParameters();
    kept.maxLogvar = trainedBounds.maxLogvar;
    kept.minLogvar = trainedBounds.minLogvar;
    this.setParameters(kept);
    const final = await this.scoreStandardised(holdoutX, holdoutY, holdoutRows);
    best = final.mse;
    this.eliteIndices = best
      .map((mse, e) => ({ mse, e }))
      .sort((a, b) => a.mse - b.mse || a.e - b.e)
      .slice(0, o.elites)
      .map((m) => m.e);
    const eliteMean = (values: number[]) =>
      this.eliteIndices.reduce((sum, e) => sum + values[e], 0) / this.eliteIndices.length;
    return {
      epochs: epoch,
      stoppedEarly: epochsSinceImprovement >= o.patience,
      interrupted,
      trainRows,
      holdoutRows,
      bestEpoch,
      holdoutMse: final.mse,
      holdoutNll: final.nll,
      elites: [...this.eliteIndices],
      eliteMse: eliteMean(final.mse),
      eliteNll: eliteMean(final.nll),
      trainLoss,
      seconds: (performance.now() - start) / 1000,
    };
  }

  /**
   * Per member, the bootstrap sample of a training set of `trainRows` rows: trainRows indices
   * drawn with replacement (each member sees about 63% of the rows, some several times).
   */
  bootstrapIndices(trainRows: number, rng: Rng): Int32Array[] {
    return Array.from({ length: this.members }, () => {
      const indices = new Int32Array(trainRows);
      for (let i = 0; i < trainRows; i++) indices[i] = rng.int(trainRows);
      return indices;
    });
  }

  /**
   * Every member's Gaussian over Δ for `rows` rows of raw inputs (rows × inputSize), into out
   * (E × rows × outputSize each, de-standardised).
   */
  async predict(inputs: Float32Array, rows: number, out: EnsemblePrediction): Promise<void> {
    const size = this.members * rows * this.outputSize;
    if (out.mean.length < size || out.logvar.length < size) {
      throw new Error(`ProbabilisticEnsemble.predict: out arrays need ${size} values for ${rows} rows`);
    }
    await this.forwardStandardised(inputs, rows);
    const nOut = this.outputSize;
    const { mean: mu, std } = this.targetNormalizer;
    const logStd = Array.from(std, (s) => 2 * Math.log(s));
    for (let i = 0; i < size; i++) {
      const j = i % nOut;
      out.mean[i] = this.scratchMean[i] * std[j] + mu[j];
      out.logvar[i] = this.scratchLogvar[i] + logStd[j];
    }
  }

  /**
   * For `rows` rows of raw inputs, draws Δ ~ N(μ, σ²) of member memberPerRow[r] for row r (MBPO:
   * a random elite per row, see randomElites), de-standardised into out.delta, and the
   * disagreement of each row into out.disagreement. All members are evaluated (one batched
   * forward pass), so the disagreement costs nothing extra. `disagreementUnits` (per output, in
   * the output's units) replaces the target std as the disagreement's unit: a model of a residual
   * (src/mbpo/model-prior.ts) measures against the spread of the whole Δ.
   */
  async sample(
    inputs: Float32Array,
    rows: number,
    memberPerRow: Int32Array,
    rng: Rng,
    out: EnsembleSample,
    disagreementUnits?: ArrayLike<number>,
  ): Promise<void> {
    const nOut = this.outputSize;
    if (memberPerRow.length < rows || out.delta.length < rows * nOut || out.disagreement.length < rows) {
      throw new Error(
        `ProbabilisticEnsemble.sample: memberPerRow, out.delta or out.disagreement too short for ${rows} rows`,
      );
    }
    await this.forwardStandardised(inputs, rows);
    const { mean: mu, std } = this.targetNormalizer;
    for (let r = 0; r < rows; r++) {
      const member = memberPerRow[r];
      if (!(Number.isInteger(member) && member >= 0 && member < this.members)) {
        throw new Error(`ProbabilisticEnsemble.sample: memberPerRow[${r}] = ${member} is not a member index`);
      }
      const base = (member * rows + r) * nOut;
      for (let j = 0; j < nOut; j++) {
        const z = this.scratchMean[base + j] + Math.exp(0.5 * this.scratchLogvar[base + j]) * rng.normal();
        out.delta[r * nOut + j] = z * std[j] + mu[j];
      }
    }
    const scale =
      disagreementUnits === undefined ? undefined : Array.from(std, (s, j) => s / disagreementUnits[j]);
    this.disagreementStandardised(this.scratchMean, rows, out.disagreement, scale);
  }

  /** Fills out[0..rows) with members drawn uniformly from the elites. */
  randomElites(rows: number, rng: Rng, out: Int32Array): void {
    for (let r = 0; r < rows; r++) out[r] = this.eliteIndices[rng.int(this.eliteIndices.length)];
  }

  /**
   * The disagreement of the ensemble about each row, from a prediction of predict():
   *
   *   d(r) = max over outputs j of  std over elites e of  μₑ(r, j) / targetStd_j
   *
   * the epistemic spread of the elites' means, in standardised target units (so Δq and Δq̇ weigh
   * alike), worst output dimension. 0 where the elites agree; of order 1 where they disagree by as
   * much as Δ varies across the training data. The rollout filter cuts a branch where it passes a
   * threshold.
   */
  disagreement(prediction: EnsemblePrediction, rows: number, out: Float32Array): void {
    const nOut = this.outputSize;
    const size = this.members * rows * nOut;
    if (prediction.mean.length < size || out.length < rows) {
      throw new Error(`ProbabilisticEnsemble.disagreement: prediction or out too short for ${rows} rows`);
    }
    const standardised = new Float32Array(size);
    const { mean: mu, std } = this.targetNormalizer;
    for (let i = 0; i < size; i++) standardised[i] = (prediction.mean[i] - mu[i % nOut]) / std[i % nOut];
    this.disagreementStandardised(standardised, rows, out);
  }

  /**
   * Per-member holdout-style scores on raw data (N × inputSize, N × outputSize), with the current
   * normalisers: MSE of the mean and Gaussian NLL per output dimension, standardised target units.
   */
  async evaluate(inputs: Float32Array, targets: Float32Array): Promise<EnsembleScores> {
    const rows = this.checkData(inputs, targets, "evaluate");
    const x = new Float32Array(inputs.length);
    const y = new Float32Array(targets.length);
    this.inputNormalizer.normalize(inputs, x, rows);
    this.targetNormalizer.normalize(targets, y, rows);
    return this.scoreStandardised(x, y, rows);
  }

  /** The training objective on raw data, every member on every row (for tests and inspection). */
  async objective(inputs: Float32Array, targets: Float32Array): Promise<EnsembleObjective> {
    const rows = this.checkData(inputs, targets, "objective");
    const E = this.members;
    const x = new Float32Array(inputs.length);
    const y = new Float32Array(targets.length);
    this.inputNormalizer.normalize(inputs, x, rows);
    this.targetNormalizer.normalize(targets, y, rows);
    const parts = tf.tidy(() => {
      const xt = tf.tensor2d(x, [rows, this.inputSize]);
      const yt = tf.tile(tf.tensor3d(y, [1, rows, this.outputSize]), [E, 1, 1]) as tf.Tensor3D;
      const { nll, weightDecay, boundPenalty } = this.objectiveTerms(xt, yt);
      return tf.stack([nll, weightDecay, boundPenalty]);
    });
    const [nll, weightDecay, boundPenalty] = Array.from(await parts.data());
    parts.dispose();
    return { nll, weightDecay, boundPenalty, total: nll + weightDecay + boundPenalty };
  }

  /** A copy of every parameter; layer k's members are stacked into one [E, in, out] array. */
  async getParameters(): Promise<EnsembleParameters> {
    // (Float32Array.from: a copy the caller owns, whatever the backend's readback shares.)
    const read = async (t: tf.Tensor) => Float32Array.from((await t.data()) as Float32Array);
    return {
      weights: await Promise.all(this.layers.map((layer) => read(layer.weight))),
      biases: await Promise.all(this.layers.map((layer) => read(layer.bias))),
      maxLogvar: await read(this.maxLogvar),
      minLogvar: await read(this.minLogvar),
    };
  }

  /** Overwrites every parameter (sizes as getParameters() gives them). */
  setParameters(parameters: EnsembleParameters): void {
    const layerCount = this.sizes.length - 1;
    if (parameters.weights?.length !== layerCount || parameters.biases?.length !== layerCount) {
      throw new Error(`ProbabilisticEnsemble.setParameters: expected ${layerCount} weights and biases`);
    }
    const check = (values: Float32Array | undefined, size: number, label: string): Float32Array => {
      if (values === undefined || values.length !== size) {
        throw new Error(
          `ProbabilisticEnsemble.setParameters: ${label} has ${values?.length ?? 0} values, expected ${size}`,
        );
      }
      return values;
    };
    const E = this.members;
    for (let k = 0; k < layerCount; k++) {
      const [inputs, outputs] = [this.sizes[k], this.sizes[k + 1]];
      const weights = check(parameters.weights[k], E * inputs * outputs, `weights[${k}]`);
      const biases = check(parameters.biases[k], E * outputs, `biases[${k}]`);
      tf.tidy(() => {
        this.layers[k].weight.assign(tf.tensor3d(Float32Array.from(weights), [E, inputs, outputs]));
        this.layers[k].bias.assign(tf.tensor3d(Float32Array.from(biases), [E, 1, outputs]));
      });
    }
    const bound = (variable: tf.Variable, values: Float32Array | undefined, label: string) => {
      const checked = check(values, this.outputSize, label);
      tf.tidy(() => variable.assign(tf.tensor3d(Float32Array.from(checked), [1, 1, this.outputSize])));
    };
    bound(this.maxLogvar, parameters.maxLogvar, "maxLogvar");
    bound(this.minLogvar, parameters.minLogvar, "minLogvar");
  }

  /** Sets the elites (e.g. when a checkpoint is loaded). */
  setElites(elites: readonly number[]): void {
    const valid =
      elites.length === this.options.elites &&
      new Set(elites).size === elites.length &&
      elites.every((e) => Number.isInteger(e) && e >= 0 && e < this.members);
    if (!valid) {
      throw new Error(
        `ProbabilisticEnsemble.setElites: expected ${this.options.elites} distinct member indices below ${this.members}, got [${elites.join(", ")}]`,
      );
    }
    this.eliteIndices = [...elites];
  }

  /** Everything needed to resume: weights, bounds, normalisers, elites and Adam's state. */
  async toJSON(): Promise<EnsembleJSON> {
    const p = await this.getParameters();
    return {
      kind: "probabilistic-ensemble",
      inputSize: this.inputSize,
      outputSize: this.outputSize,
      options: {
        ...this.options,
        hiddenSizes: [...this.options.hiddenSizes],
        weightDecays: [...this.options.weightDecays],
      },
      weights: p.weights.map(encodeTyped),
      biases: p.biases.map(encodeTyped),
      maxLogvar: encodeTyped(p.maxLogvar),
      minLogvar: encodeTyped(p.minLogvar),
      inputNormalizer: this.inputNormalizer.toJSON(),
      targetNormalizer: this.targetNormalizer.toJSON(),
      elites: [...this.eliteIndices],
      optimizer: await saveAdam(this.optimizer),
    };
  }

  /** Rebuilds an ensemble from toJSON()'s output. */
  static async fromJSON(json: EnsembleJSON, rng: Rng): Promise<ProbabilisticEnsemble> {
    const label = "ensemble checkpoint";
    if (json?.kind !== "probabilistic-ensemble") {
      throw new Error(`${label}: kind is ${json?.kind}, expected probabilistic-ensemble`);
    }
    for (const field of ["weights", "biases"] as const) {
      if (!Array.isArray(json[field]))
        throw new Error(`${label}: field ${field} must be an array of base64 strings`);
    }
    const ensemble = new ProbabilisticEnsemble(json.inputSize, json.outputSize, rng, json.options);
    await ensemble.restore(json, label);
    return ensemble;
  }

  /**
   * Returns this ensemble to a state toJSON() gave (same sizes): weights, bounds, normalisers,
   * elites and Adam's state, exactly, as a checkpoint's load does.
   */
  async restore(json: EnsembleJSON, label = "ensemble state"): Promise<void> {
    this.setParameters({
      weights: json.weights.map((w, i) => decodeTyped(w, "float32", `${label}: weights[${i}]`)),
      biases: json.biases.map((b, i) => decodeTyped(b, "float32", `${label}: biases[${i}]`)),
      maxLogvar: decodeTyped(json.maxLogvar, "float32", `${label}: maxLogvar`),
      minLogvar: decodeTyped(json.minLogvar, "float32", `${label}: minLogvar`),
    });
    this.inputNormalizer.load(json.inputNormalizer, `${label}: inputNormalizer`);
    this.targetNormalizer.load(json.targetNormalizer, `${label}: targetNormalizer`);
    this.setElites(json.elites ?? []);
    await restoreAdam(this.optimizer, json.optimizer, this.trainable, label);
  }

  /** Frees every tensor and the optimiser's state. */
  dispose(): void {
    tf.dispose(this.trainable);
    this.optimizer.dispose();
  }

  // ---- tensor work -------------------------------------------------------------------------

  /**
   * μ and log σ² (standardised, soft-bounded) of every member, [E, rows, out] each. `x` is
   * [E, rows, in] (training: each member its own bootstrap rows) or [rows, in] for all members.
   */
  private forward(
    x: tf.Tensor2D | tf.Tensor3D,
    inference = false,
  ): { mean: tf.Tensor3D; logvar: tf.Tensor3D } {
    const out =
      inference && this.computePath === "batched" && nativeKernelsActive()
        ? this.inferenceOutputs(x)
        : this.computePath === "batched"
          ? this.batchedOutputs(x)
          : this.perMemberOutputs(x);
    return gaussianHead(out, this.maxLogvar, this.minLogvar);
  }

  /**
   * batchedOutputs' numbers, for inference only (no gradient), as one native kernel that runs
   * every layer on a block of rows at a time while it is in the CPU's cache (wasm-kernels.ts:
   * MLP_FORWARD): the rollouts' and evaluations' forward passes.
   */
  private inferenceOutputs(x: tf.Tensor2D | tf.Tensor3D): tf.Tensor3D {
    const inputs: tf.NamedTensorMap = { x };
    this.layers.forEach((layer, k) => {
      inputs[`w${k}`] = layer.weight;
      inputs[`b${k}`] = layer.bias;
    });
    return tf.engine().runKernel(MLP_FORWARD, inputs, { layers: this.layers.length }) as tf.Tensor3D;
  }

  /** Raw outputs [E, rows, 2·out], every layer one batched product over the members. */
  private batchedOutputs(x: tf.Tensor2D | tf.Tensor3D): tf.Tensor3D {
    const last = this.layers.length - 1;
    let h: tf.Tensor = x;
    this.layers.forEach((layer, k) => {
      // [rows, in] × [E, in, out] broadcasts the shared rows to every member.
      const product = tf.matMul(h, layer.weight);
      h = k < last ? biasSilu(product, layer.bias) : tf.add(product, layer.bias);
    });
    return h as tf.Tensor3D;
  }

  /** Raw outputs [E, rows, 2·out], each member a 2-D network of its own (the reference path). */
  private perMemberOutputs(x: tf.Tensor2D | tf.Tensor3D): tf.Tensor3D {
    const E = this.members;
    const last = this.layers.length - 1;
    const member2d = (t: tf.Tensor) => {
      const [, rows, cols] = t.shape as [number, number, number];
      return tf.reshape(t, [rows, cols]) as tf.Tensor2D;
    };
    let hs: tf.Tensor2D[] =
      x.rank === 2 ? new Array<tf.Tensor2D>(E).fill(x as tf.Tensor2D) : tf.split(x, E, 0).map(member2d);
    this.layers.forEach((layer, k) => {
      const weights = tf.split(layer.weight, E, 0).map(member2d);
      const biases = tf.split(layer.bias, E, 0).map(member2d);
      hs = hs.map((h, e) => {
        const product = tf.matMul(h, weights[e]);
        return (k < last ? biasSilu(product, biases[e]) : tf.add(product, biases[e])) as tf.Tensor2D;
      });
    });
    return tf.concat(
      hs.map((h) => tf.reshape(h, [1, ...h.shape])),
      0,
    ) as tf.Tensor3D;
  }

  /** Gaussian NLL per member [E] (mean over rows and outputs) of y [E, rows, out] given x. */
  private memberNll(x: tf.Tensor2D | tf.Tensor3D, y: tf.Tensor3D): tf.Tensor1D {
    const { mean, logvar } = this.forward(x);
    const perValue = tf.mul(
      tf.add(tf.add(tf.mul(tf.squaredDifference(y, mean), tf.exp(tf.neg(logvar))), logvar), LOG_2PI),
      0.5,
    );
    return tf.mean(perValue, [1, 2]) as tf.Tensor1D;
  }

  private objectiveTerms(
    x: tf.Tensor2D | tf.Tensor3D,
    y: tf.Tensor3D,
  ): { nll: tf.Scalar; weightDecay: tf.Scalar; boundPenalty: tf.Scalar } {
    const nll = tf.sum(this.memberNll(x, y)) as tf.Scalar;
    // (A chain of adds, not tf.addN: AddN has no registered gradient.)
    let weightDecay = tf.scalar(0);
    this.layers.forEach((layer, k) => {
      const decay = tf.mul(sumOfSquares(layer.weight), 0.5 * this.options.weightDecays[k]);
      weightDecay = tf.add(weightDecay, decay);
    });
    const boundPenalty = tf.mul(
      tf.sub(tf.sum(this.maxLogvar), tf.sum(this.minLogvar)),
      this.options.logvarBoundPenalty,
    ) as tf.Scalar;
    return { nll, weightDecay, boundPenalty };
  }

  /**
   * One Adam step on a batch laid out [E, b, ·] (member e's rows first); returns the objective
   * as a scalar tensor (the caller disposes it), so that the training loop reads the losses
   * back once per epoch rather than once per step.
   */
  private trainStepTensor(x: Float32Array, y: Float32Array, b: number): tf.Scalar {
    const E = this.members;
    return tf.tidy(() => {
      const xt = tf.tensor3d(x, [E, b, this.inputSize]);
      const yt = tf.tensor3d(y, [E, b, this.outputSize]);
      const { value, grads } = tf.variableGrads(() => {
        const { nll, weightDecay, boundPenalty } = this.objectiveTerms(xt, yt);
        return tf.add(tf.add(nll, weightDecay), boundPenalty) as tf.Scalar;
      }, this.trainable);
      this.optimizer.applyGradients(grads as Parameters<tf.AdamOptimizer["applyGradients"]>[0]);
      return value;
    });
  }

  /**
   * Runs every member on the same `rows` standardised-or-raw rows. Raw inputs are standardised
   * here; results (standardised μ, log σ², [E][rows][out]) land in scratchMean / scratchLogvar.
   * Done in chunks of predictChunkRows rows so that activations stay small.
   */
  private async forwardStandardised(
    inputs: Float32Array,
    rows: number,
    alreadyStandardised = false,
  ): Promise<void> {
    const nIn = this.inputSize;
    const nOut = this.outputSize;
    const E = this.members;
    if (!Number.isInteger(rows) || rows < 0 || inputs.length < rows * nIn) {
      throw new Error(`ProbabilisticEnsemble: inputs have ${inputs.length} values, need ${rows}×${nIn}`);
    }
    if (this.scratchMean.length < E * rows * nOut) {
      this.scratchMean = new Float32Array(E * rows * nOut);
      this.scratchLogvar = new Float32Array(E * rows * nOut);
    }
    const chunk = this.options.predictChunkRows;
    const x = new Float32Array(Math.min(chunk, rows) * nIn);
    for (let first = 0; first < rows; first += chunk) {
      const n = Math.min(chunk, rows - first);
      const src = inputs.subarray(first * nIn, (first + n) * nIn);
      if (alreadyStandardised) x.set(src);
      else this.inputNormalizer.normalize(src, x, n);
      const [mean, logvar] = tf.tidy(() => {
        const out = this.forward(tf.tensor2d(x.subarray(0, n * nIn), [n, nIn]), true);
        return [out.mean, out.logvar];
      });
      const [meanValues, logvarValues] = (await Promise.all([mean.data(), logvar.data()])) as Float32Array[];
      tf.dispose([mean, logvar]);
      for (let e = 0; e < E; e++) {
        const dst = (e * rows + first) * nOut;
        this.scratchMean.set(meanValues.subarray(e * n * nOut, (e + 1) * n * nOut), dst);
        this.scratchLogvar.set(logvarValues.subarray(e * n * nOut, (e + 1) * n * nOut), dst);
      }
    }
  }

  /** Per-member MSE and NLL on standardised data. */
  private async scoreStandardised(x: Float32Array, y: Float32Array, rows: number): Promise<EnsembleScores> {
    await this.forwardStandardised(x, rows, true);
    const E = this.members;
    const nOut = this.outputSize;
    const mse = new Array<number>(E).fill(0);
    const nll = new Array<number>(E).fill(0);
    for (let e = 0; e < E; e++) {
      let squared = 0;
      let negLogLik = 0;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < nOut; j++) {
          const i = (e * rows + r) * nOut + j;
          const d = y[r * nOut + j] - this.scratchMean[i];
          const logvar = this.scratchLogvar[i];
          squared += d * d;
          negLogLik += 0.5 * (d * d * Math.exp(-logvar) + logvar + LOG_2PI);
        }
      }
      mse[e] = squared / (rows * nOut);
      nll[e] = negLogLik / (rows * nOut);
    }
    return { mse, nll };
  }

  /** The disagreement of standardised means; `scale` (per output, default 1) multiplies each output's spread. */
  private disagreementStandardised(
    mean: Float32Array,
    rows: number,
    out: Float32Array,
    scale?: readonly number[],
  ): void {
    const nOut = this.outputSize;
    const elites = this.eliteIndices;
    const K = elites.length;
    for (let r = 0; r < rows; r++) {
      let worst = 0;
      for (let j = 0; j < nOut; j++) {
        let sum = 0;
        let sumSquares = 0;
        for (const e of elites) {
          const m = mean[(e * rows + r) * nOut + j];
          sum += m;
          sumSquares += m * m;
        }
        const average = sum / K;
        const variance = Math.max(sumSquares / K - average * average, 0);
        worst = Math.max(worst, Math.sqrt(variance) * (scale === undefined ? 1 : scale[j]));
      }
      out[r] = worst;
    }
  }

  private checkData(inputs: Float32Array, targets: Float32Array, method: string): number {
    const rows = inputs.length / this.inputSize;
    if (!Number.isInteger(rows) || targets.length !== rows * this.outputSize) {
      throw new Error(
        `ProbabilisticEnsemble.${method}: inputs (${inputs.length} values) and targets (${targets.length}) are not N×${this.inputSize} and N×${this.outputSize}`,
      );
    }
    return rows;
  }
}

// ---- helpers ---------------------------------------------------------------------------------

/**
 * Initial weights [in, out]: normal with std 1/(2√in), redrawn beyond 2 std (MBPO and
 * mbrl-lib's truncated-normal initialisation), from our Rng so that a seed fixes them.
 */
function truncatedNormal(inputs: number, outputs: number, rng: Rng): Float32Array {
  const std = 1 / (2 * Math.sqrt(inputs));
  const values = new Float32Array(inputs * outputs);
  for (let i = 0; i < values.length; i++) {
    let z = rng.normal();
    while (Math.abs(z) > 2) z = rng.normal();
    values[i] = z * std;
  }
  return values;
}

/** A uniformly random permutation of 0..n−1 (Fisher–Yates). */
function permutation(n: number, rng: Rng): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  shuffleInPlace(order, rng);
  return order;
}

function shuffleInPlace(values: Int32Array, rng: Rng): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = values[i];
    values[i] = values[j];
    values[j] = t;
  }
}

/** Rows order[from..to) of a row-major array, as a new array. */
function gatherRows(
  data: Float32Array,
  width: number,
  order: Int32Array,
  from: number,
  to: number,
): Float32Array {
  const out = new Float32Array((to - from) * width);
  for (let i = from; i < to; i++) {
    const row = order[i];
    out.set(data.subarray(row * width, (row + 1) * width), (i - from) * width);
  }
  return out;
}

/** Copies member e's slice of every layer from `source` into `target`. */
function copyMember(
  source: EnsembleParameters,
  target: EnsembleParameters,
  e: number,
  members: number,
): void {
  for (const field of ["weights", "biases"] as const) {
    source[field].forEach((values, k) => {
      const per = values.length / members;
      target[field][k].set(values.subarray(e * per, (e + 1) * per), e * per);
    });
  }
}

function checkOptions(o: EnsembleHyperparameters): void {
  const positiveIntegers = [
    "members",
    "elites",
    "batchSize",
    "maxHoldout",
    "patience",
    "maxEpochs",
    "predictChunkRows",
  ] as const;
  for (const key of positiveIntegers) {
    if (!Number.isInteger(o[key]) || o[key] <= 0) {
      throw new Error(`ProbabilisticEnsemble: option ${key} must be a positive integer, got ${o[key]}`);
    }
  }
  if (o.elites > o.members)
    throw new Error(`ProbabilisticEnsemble: option elites (${o.elites}) exceeds members (${o.members})`);
  if (!(o.learningRate > 0))
    throw new Error(`ProbabilisticEnsemble: option learningRate must be positive, got ${o.learningRate}`);
  if (!(o.holdoutFraction > 0 && o.holdoutFraction < 1)) {
    throw new Error(
      `ProbabilisticEnsemble: option holdoutFraction must be in (0, 1), got ${o.holdoutFraction}`,
    );
  }
  if (!(o.improvementThreshold >= 0)) {
    throw new Error(
      `ProbabilisticEnsemble: option improvementThreshold must be ≥ 0, got ${o.improvementThreshold}`,
    );
  }
  if (o.hiddenSizes.some((h) => !Number.isInteger(h) || h <= 0)) {
    throw new Error(
      `ProbabilisticEnsemble: option hiddenSizes must be positive integers, got [${o.hiddenSizes.join(", ")}]`,
    );
  }
  if (o.weightDecays.length !== o.hiddenSizes.length + 1 || o.weightDecays.some((d) => !(d >= 0))) {
    throw new Error(
      `ProbabilisticEnsemble: option weightDecays must be ${o.hiddenSizes.length + 1} non-negative numbers (one per weight matrix), got [${o.weightDecays.join(", ")}]`,
    );
  }
  if (!(o.initialMinLogvar < o.initialMaxLogvar)) {
    throw new Error("ProbabilisticEnsemble: option initialMinLogvar must be below initialMaxLogvar");
  }
  if (!(o.logvarBoundPenalty >= 0))
    throw new Error("ProbabilisticEnsemble: option logvarBoundPenalty must be ≥ 0");
  if (!(o.normalizerMinStd > 0))
    throw new Error("ProbabilisticEnsemble: option normalizerMinStd must be positive");
}

type NamedTensor = Awaited<ReturnType<tf.AdamOptimizer["getWeights"]>>[number];

async function saveAdam(optimizer: tf.AdamOptimizer): Promise<AdamJSON> {
  // getWeights() → [iterations, first moments…, second moments…] in the variables' order; empty
  // moments before the first step.
  const [iterations, ...moments] = await optimizer.getWeights();
  const half = moments.length / 2;
  const encode = async (m: NamedTensor) => encodeTyped((await m.tensor.data()) as Float32Array);
  const json = {
    iterations: (await iterations.tensor.data())[0],
    firstMoments: await Promise.all(moments.slice(0, half).map(encode)),
    secondMoments: await Promise.all(moments.slice(half).map(encode)),
  };
  iterations.tensor.dispose();
  return json;
}

async function restoreAdam(
  optimizer: tf.AdamOptimizer,
  json: AdamJSON,
  variables: tf.Variable[],
  label: string,
): Promise<void> {
  const count = json?.firstMoments?.length ?? -1;
  if (!(count === 0 || count === variables.length) || json.secondMoments?.length !== count) {
    throw new Error(`${label}: optimizer has ${count} moments, expected 0 or ${variables.length}`);
  }
  const moment = (encoded: string, i: number, suffix: string): NamedTensor => {
    const values = decodeTyped(encoded, "float32", `${label}: optimizer moment ${suffix}[${i}]`);
    if (values.length !== variables[i].size) {
      throw new Error(
        `${label}: optimizer moment ${i} has ${values.length} values, expected ${variables[i].size}`,
      );
    }
    return { name: `${variables[i].name}/${suffix}`, tensor: tf.tensor(values, variables[i].shape) };
  };
  const weights: NamedTensor[] = [
    { name: "iter", tensor: tf.scalar(json.iterations, "int32") },
    ...json.firstMoments.map((m, i) => moment(m, i, "m")),
    ...json.secondMoments.map((v, i) => moment(v, i, "v")),
  ];
  await optimizer.setWeights(weights);
  restoreBiasCorrections(optimizer); // setWeights' pow(β, t + 1) is not training's float32 product
  tf.dispose(weights.map((w) => w.tensor));
}

/**
 * The output layer's split: raw [E, rows, 2·out] into the mean and a log-variance kept softly
 * between the learned bounds, upper = max − softplus(max − ℓ), log σ² = min + softplus(upper − min)
 * (PETS). One kernel forward and one backward where our own kernels run (wasm-kernels.ts:
 * GAUSSIAN_HEAD); tfjs ops elsewhere. Exported for tests.
 */
export function gaussianHead(
  out: tf.Tensor3D,
  maxLogvar: tf.Tensor,
  minLogvar: tf.Tensor,
): { mean: tf.Tensor3D; logvar: tf.Tensor3D } {
  if (nativeKernelsActive()) {
    const [mean, logvar] = tf
      .engine()
      .runKernel(GAUSSIAN_HEAD, { raw: out, maxLogvar, minLogvar }) as tf.Tensor3D[];
    return { mean, logvar };
  }
  const [mean, raw] = tf.split(out, 2, 2) as [tf.Tensor3D, tf.Tensor3D];
  const upper = tf.sub(maxLogvar, tf.softplus(tf.sub(maxLogvar, raw)));
  const logvar = tf.add(minLogvar, tf.softplus(tf.sub(upper, minLogvar))) as tf.Tensor3D;
  return { mean, logvar };
}

/** Σ w² (a weight decay's): one vectorised kernel where our own kernels run, tfjs ops elsewhere. */
function sumOfSquares(weight: tf.Tensor): tf.Scalar {
  if (nativeKernelsActive()) return tf.engine().runKernel(SUM_OF_SQUARES, { x: weight }) as tf.Scalar;
  return tf.sum(tf.square(weight));
}
