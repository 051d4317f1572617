/**
 * Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"), the
 * policy learner inside MBPO. Written against tfjs-core only, in the structure of Spinning Up's and
 * CleanRL's SAC:
 *
 *   critics   Q1, Q2 : (s, a) → ℝ, each with a Polyak-averaged target copy Q1', Q2'
 *   actor     π : s → (μ, log σ) ∈ ℝ^{2|A|};  u = μ + σ·ε, ε ~ N(0, I);  a = tanh(u)
 *   log π(a|s) = Σ_i [log N(u_i; μ_i, σ_i) − log(1 − tanh²(u_i))]
 *   target    y = r + γ(1 − d)(min(Q1'(s', a'), Q2'(s', a')) − α log π(a'|s')),  a' ~ π(·|s')
 *   losses    L_Q = mean (Q1(s,a) − y)² + mean (Q2(s,a) − y)²
 *             L_π = mean (α log π(ã|s) − min(Q1(s, ã), Q2(s, ã))),  ã ~ π(·|s) (reparameterised)
 *             L_α = −mean (log α · (log π(ã|s) + H̄)),  H̄ = −|A|
 *
 * One update: critic step, actor step (against the updated critics), temperature step, then the
 * Polyak update of the targets. The noise ε is drawn from the caller's seeded Rng in JS and fed to
 * tf, so that the same seed gives the same numbers on the same backend.
 *
 * Layout: the twin critics are computed together. Layer k of Q1 and Q2 is one [2, in, out] weight
 * and one [2, 1, out] bias variable (and likewise for the targets), so both critics' forward and
 * backward passes are one batched product per layer ([B, in] broadcast × [2, in, out], then
 * [2, B, ·] × [2, ·, ·]) and one Polyak update per tensor. getWeights / setWeights / toJSON still
 * present Q1 and Q2 (and their moments) as separate networks. The "separate" critic path runs the
 * same parameters as two 2-D networks (the reference the benchmark and tests compare against).
 * Measured in one run of bench/compute-sac.ts (batched / separate): wasm 0.89, cpu 0.98.
 *
 * Backend: this file only uses @tensorflow/tfjs-core; whoever creates a Sac selects the backend first.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../util/rng.js";
import { biasRelu } from "./activations.js";
import { restoreBiasCorrections } from "./adam-state.js";
import { FusedAdam } from "./fused-adam.js";
import "./gradients.js";
import { SAC_DEFAULTS, type SacHyperparameters } from "./hyperparameters.js";
import { createBatch, decodeTyped, encodeTyped, type TransitionBatch } from "./replay-buffer.js";
import { nativeKernelsActive, TANH_GAUSSIAN } from "./wasm-kernels.js";

export { SAC_DEFAULTS, type SacHyperparameters } from "./hyperparameters.js";

const LOG_2 = Math.log(2);
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** What one update (or the mean over several) reports. */
/** All-zero losses, to accumulate into (Sac.accumulateUpdates). */
export function zeroLosses(): SacLosses {
  return { qLoss: 0, policyLoss: 0, alphaLoss: 0, alpha: 0, qMean: 0, entropy: 0 };
}

export interface SacLosses {
  /** L_Q, the sum of both critics' mean squared Bellman errors. */
  qLoss: number;
  /** L_π. */
  policyLoss: number;
  /** L_α (0 when α is fixed). */
  alphaLoss: number;
  /** α used in this update (before its own step). */
  alpha: number;
  /** Mean of Q1(s, a) and Q2(s, a) over the batch. */
  qMean: number;
  /** Entropy estimate −mean log π(ã|s) over the batch. */
  entropy: number;
}

/** One dense layer: y = x·W + b with W of shape [in, out] (row-major, in × out). */
interface DenseLayer {
  weight: tf.Variable;
  bias: tf.Variable;
}

/** A ReLU MLP as a list of dense layers; the last layer is linear. */
type Network = DenseLayer[];

/** Layer k of both critics (or both targets): weight [2, in, out], bias [2, 1, out]. */
interface TwinLayer {
  weight: tf.Variable;
  bias: tf.Variable;
}

/** The twin critics (or their targets) as one ReLU MLP of stacked layers. */
type TwinNetwork = TwinLayer[];

/** The networks a Sac holds, by name (for checkpoints, tests and inspection). */
export type SacNetworkName = "actor" | "q1" | "q2" | "q1Target" | "q2Target";

const NETWORK_NAMES: readonly SacNetworkName[] = ["actor", "q1", "q2", "q1Target", "q2Target"];

/**
 * How the twin critics are computed: "batched" (the default) as one stacked network, one batched
 * product per layer; "separate" as two 2-D networks on the same parameters (the reference).
 */
export type SacCriticPath = "batched" | "separate";

export interface SacComputeOptions {
  /** Default "batched". */
  critics?: SacCriticPath;
}

/** Plain weights of one dense layer: weight is row-major [inputs × outputs]. */
export interface LayerWeights {
  inputs: number;
  outputs: number;
  weight: Float32Array;
  bias: Float32Array;
}

/** Adam's state in a checkpoint: step count and the moments, in the optimiser's variable order. */
interface AdamJSON {
  iterations: number;
  firstMoments: string[];
  secondMoments: string[];
}

/** Checkpoint form of a Sac (weights and moments as base64 little-endian float32). */
export interface SacJSON {
  kind: "sac";
  obsSize: number;
  actSize: number;
  options: SacHyperparameters;
  updates: number;
  logAlpha: number;
  networks: Record<SacNetworkName, { weight: string; bias: string }[]>;
  optimizers: { critic: AdamJSON; actor: AdamJSON; alpha: AdamJSON };
}

export class Sac {
  readonly obsSize: number;
  readonly actSize: number;
  readonly options: SacHyperparameters;
  /** H̄, the entropy the temperature steers the policy towards. */
  readonly targetEntropy: number;

  /** How the twin critics are computed (see SacCriticPath). */
  readonly criticPath: SacCriticPath;

  private readonly rng: Rng;
  private readonly actor: Network;
  /** Q1 and Q2, stacked; and their Polyak-averaged targets, stacked the same way. */
  private readonly critics: TwinNetwork;
  private readonly targetCritics: TwinNetwork;
  private readonly logAlpha: tf.Variable;
  /** log α as the variable holds it (float32), kept here so that reading α needs no GPU readback. */
  private logAlphaValue: number;
  private readonly criticVariables: tf.Variable[];
  private readonly actorVariables: tf.Variable[];
  private readonly criticOptimizer: tf.AdamOptimizer;
  private readonly actorOptimizer: tf.AdamOptimizer;
  private readonly alphaOptimizer: tf.AdamOptimizer;
  /** Batch that updateMany() asks its sampler to fill. */
  private readonly batch: TransitionBatch;
  /** ε for a' ~ π(·|s') then for ã ~ π(·|s): 2 · rows · |A| values, regrown if a larger batch comes. */
  private noise: Float32Array;
  private updateCount = 0;

  /**
   * `rng` draws the initial weights and, from then on, the policy noise; options override
   * SAC_DEFAULTS; `compute` picks the critic path (batched unless told otherwise).
   */
  constructor(
    obsSize: number,
    actSize: number,
    rng: Rng,
    options: Partial<SacHyperparameters> = {},
    compute: SacComputeOptions = {},
  ) {
    if (!Number.isInteger(obsSize) || obsSize <= 0)
      throw new Error(`Sac: obsSize must be a positive integer, got ${obsSize}`);
    if (!Number.isInteger(actSize) || actSize <= 0)
      throw new Error(`Sac: actSize must be a positive integer, got ${actSize}`);
    this.obsSize = obsSize;
    this.actSize = actSize;
    this.options = { ...SAC_DEFAULTS, ...options };
    checkOptions(this.options);
    this.targetEntropy = this.options.targetEntropy ?? -actSize;
    this.rng = rng;

    const criticPath = compute.critics ?? "batched";
    if (criticPath !== "batched" && criticPath !== "separate") {
      throw new Error(`Sac: critic path must be batched or separate, got ${criticPath}`);
    }
    this.criticPath = criticPath;

    const hidden = this.options.hiddenSizes;
    const criticSizes = [obsSize + actSize, ...hidden, 1];
    // Drawn Q1, Q2, then the actor (the order a seed has always fixed).
    const q1 = drawNetwork(criticSizes, rng);
    const q2 = drawNetwork(criticSizes, rng);
    this.actor = createNetwork(drawNetwork([obsSize, ...hidden, 2 * actSize], rng));
    this.critics = createTwinNetwork(q1, q2, true);
    this.targetCritics = createTwinNetwork(q1, q2, false);
    this.logAlpha = tf.tidy(() =>
      tf.variable(tf.scalar(Math.log(this.options.initialAlpha)), this.options.autoTuneAlpha),
    );
    this.logAlphaValue = Math.fround(Math.log(this.options.initialAlpha));
    this.criticVariables = networkVariables(this.critics);
    this.actorVariables = networkVariables(this.actor);
    this.criticOptimizer = new FusedAdam(this.options.criticLearningRate);
    this.actorOptimizer = new FusedAdam(this.options.actorLearningRate);
    this.alphaOptimizer = new FusedAdam(this.options.alphaLearningRate);
    this.batch = createBatch(obsSize, actSize, this.options.batchSize);
    this.noise = new Float32Array(2 * this.options.batchSize * actSize);
  }

  /** Updates done so far (gradient steps of each network). */
  get updates(): number {
    return this.updateCount;
  }

  /** The entropy temperature α = exp(log α). */
  get alpha(): number {
    return Math.exp(this.logAlphaValue);
  }

  /**
   * One SAC update on the first `rows` rows of `batch` (all of them by default): critic, actor and
   * temperature steps, then the Polyak update of the target critics.
   */
  async update(batch: TransitionBatch, rows = batch.rows): Promise<SacLosses> {
    this.checkBatch(batch, rows);
    const { nextNoise, policyNoise } = this.drawNoise(rows);

    // Tensors kept out of variableGrads' own scope for the statistics; disposed below.
    const kept: tf.Tensor[] = [];
    let values: Float32Array | Int32Array | Uint8Array;
    try {
      values = await this.step(batch, rows, nextNoise, policyNoise, kept);
    } finally {
      tf.dispose(kept);
    }
    this.updateCount++;
    this.logAlphaValue = values[6];
    return {
      qLoss: values[0],
      policyLoss: values[1],
      alphaLoss: values[2],
      alpha: values[3],
      qMean: values[4],
      entropy: values[5],
    };
  }

  /** The tensor work of update(): returns [L_Q, L_π, L_α, α, mean Q, entropy, log α after the step]. */
  private async step(
    batch: TransitionBatch,
    rows: number,
    nextNoise: Float32Array,
    policyNoise: Float32Array,
    kept: tf.Tensor[],
  ): Promise<Float32Array | Int32Array | Uint8Array> {
    const { polyakTau, autoTuneAlpha } = this.options;
    const A = this.actSize;
    const stats = tf.tidy(() => {
      // The batch arrays are only read during this call (the cpu backend may alias them).
      const obs = tf.tensor2d(batch.obs.subarray(0, rows * this.obsSize), [rows, this.obsSize]);
      const action = tf.tensor2d(batch.action.subarray(0, rows * A), [rows, A]);
      const reward = tf.tensor2d(batch.reward.subarray(0, rows), [rows, 1]);
      const nextObs = tf.tensor2d(batch.nextObs.subarray(0, rows * this.obsSize), [rows, this.obsSize]);
      const terminated = tf.tensor2d(batch.terminated.subarray(0, rows), [rows, 1]);
      const alpha = tf.exp(this.logAlpha);

      // Critic step towards the soft Bellman target y (no gradient flows into y).
      const y = this.softBellmanTarget(reward, nextObs, terminated, tf.tensor2d(nextNoise, [rows, A]), alpha);
      const obsAction = tf.concat([obs, action], 1);
      const critic = tf.variableGrads(() => {
        const q = this.twinForward(this.critics, obsAction); // [2, rows, 1]
        kept.push(tf.keep(tf.mean(q)));
        // mean over both critics ×2 = mean (Q1 − y)² + mean (Q2 − y)²
        return tf.mul(tf.mean(tf.squaredDifference(q, y)), 2) as tf.Scalar;
      }, this.criticVariables);
      applyGradients(this.criticOptimizer, critic.grads);
      const qMean = kept[0];

      // Actor step: reparameterised ã = tanh(μ + σε), against the critics just updated.
      const actor = tf.variableGrads(() => {
        const sample = samplePolicy(
          forward(this.actor, obs),
          tf.tensor2d(policyNoise, [rows, A]),
          this.options,
        );
        kept.push(tf.keep(sample.logProb));
        const sampledObsAction = tf.concat([obs, sample.action], 1);
        const qMin = minOfTwins(this.twinForward(this.critics, sampledObsAction));
        return tf.mean(tf.sub(tf.mul(alpha, sample.logProb), qMin)) as tf.Scalar;
      }, this.actorVariables);
      applyGradients(this.actorOptimizer, actor.grads);
      const logProb = kept[1];

      // Temperature step: log α rises when the entropy −log π is below H̄, falls when above.
      let alphaLoss: tf.Scalar = tf.scalar(0);
      if (autoTuneAlpha) {
        const target = tf.add(logProb, this.targetEntropy);
        const temperature = tf.variableGrads(
          () => tf.neg(tf.mean(tf.mul(this.logAlpha, target))) as tf.Scalar,
          [this.logAlpha],
        );
        applyGradients(this.alphaOptimizer, temperature.grads);
        alphaLoss = temperature.value;
      }

      polyakUpdate(this.targetCritics, this.critics, polyakTau);
      const entropy = tf.neg(tf.mean(logProb));
      return tf.stack([critic.value, actor.value, alphaLoss, alpha, qMean, entropy, this.logAlpha]);
    });
    // The update's one readback (on a GPU backend the wait for the device is here).
    const values = await stats.data();
    stats.dispose();
    return values;
  }

  /**
   * `count` updates, each on a batch of options.batchSize rows that `sample` fills (e.g. with
   * mixedBatch). Returns the mean of each reported quantity over the updates.
   */
  async updateMany(count: number, sample: (out: TransitionBatch) => void): Promise<SacLosses> {
    const sum = zeroLosses();
    const done = await this.accumulateUpdates(count, sample, () => false, sum);
    if (done > 0) for (const key of Object.keys(sum) as (keyof SacLosses)[]) sum[key] /= done;
    return sum;
  }

  /**
   * Up to `count` updates as updateMany does, stopping early when `shouldStop` (asked before
   * each) says so; adds each update's losses into `sum` and returns how many it did. A phase cut
   * short and continued later with the same `sum` totals exactly what one uninterrupted call would.
   */
  async accumulateUpdates(
    count: number,
    sample: (out: TransitionBatch) => void,
    shouldStop: () => boolean,
    sum: SacLosses,
  ): Promise<number> {
    let done = 0;
    while (done < count && !shouldStop()) {
      sample(this.batch);
      const losses = await this.update(this.batch);
      for (const key of Object.keys(sum) as (keyof SacLosses)[]) sum[key] += losses[key];
      done++;
    }
    return done;
  }

  /**
   * The soft Bellman targets y = r + γ(1 − d)(min Q'(s', a') − α log π(a'|s')) for the first `rows`
   * rows of `batch`, with a' = tanh(μ(s') + σ(s')·noise) for the given noise (rows × |A|).
   * For tests and inspection; update() computes the same thing inside its step.
   */
  async targets(batch: TransitionBatch, noise: Float32Array, rows = batch.rows): Promise<Float32Array> {
    this.checkBatch(batch, rows);
    if (noise.length !== rows * this.actSize) {
      throw new Error(`Sac.targets: noise has ${noise.length} values, expected ${rows * this.actSize}`);
    }
    const y = tf.tidy(() =>
      this.softBellmanTarget(
        tf.tensor2d(batch.reward.subarray(0, rows), [rows, 1]),
        tf.tensor2d(batch.nextObs.subarray(0, rows * this.obsSize), [rows, this.obsSize]),
        tf.tensor2d(batch.terminated.subarray(0, rows), [rows, 1]),
        tf.tensor2d(noise, [rows, this.actSize]),
        tf.exp(this.logAlpha),
      ),
    );
    const values = (await y.data()) as Float32Array;
    y.dispose();
    return Float32Array.from(values);
  }

  /**
   * Actions for `rows` observations (row-major in obs) into out (rows × |A|): "sample" draws
   * a = tanh(μ + σε) with ε from rng (the Sac's own by default), "mean" gives tanh(μ).
   * Allocates (it is for batches of model rollouts, not for the control tick).
   */
  async act(
    obs: Float32Array,
    rows: number,
    out: Float32Array,
    mode: "sample" | "mean",
    rng: Rng = this.rng,
  ): Promise<void> {
    const A = this.actSize;
    if (obs.length < rows * this.obsSize || out.length < rows * A) {
      throw new Error(`Sac.act: obs or out too short for ${rows} rows (obs ${this.obsSize}, action ${A})`);
    }
    const noise = new Float32Array(rows * A);
    if (mode === "sample") for (let i = 0; i < noise.length; i++) noise[i] = rng.normal();
    const action = tf.tidy(() => {
      const x = tf.tensor2d(obs.subarray(0, rows * this.obsSize), [rows, this.obsSize]);
      return samplePolicy(forward(this.actor, x), tf.tensor2d(noise, [rows, A]), this.options).action;
    });
    out.set((await action.data()) as Float32Array);
    action.dispose();
  }

  /** A copy of one network's weights, layer by layer. */
  async getWeights(name: SacNetworkName): Promise<LayerWeights[]> {
    if (name === "actor") {
      const layers: LayerWeights[] = [];
      for (const layer of this.actor) {
        const [inputs, outputs] = layer.weight.shape;
        const weight = Float32Array.from((await layer.weight.data()) as Float32Array);
        const bias = Float32Array.from((await layer.bias.data()) as Float32Array);
        layers.push({ inputs, outputs, weight, bias });
      }
      return layers;
    }
    const { twin, entry } = this.twinOf(name);
    const layers: LayerWeights[] = [];
    for (const layer of twin) {
      const [, inputs, outputs] = layer.weight.shape;
      const weights = (await layer.weight.data()) as Float32Array;
      const biases = (await layer.bias.data()) as Float32Array;
      layers.push({
        inputs,
        outputs,
        weight: weights.slice(entry * inputs * outputs, (entry + 1) * inputs * outputs),
        bias: biases.slice(entry * outputs, (entry + 1) * outputs),
      });
    }
    return layers;
  }

  /** Overwrites one network's weights (shapes must match). Targets are not touched. */
  async setWeights(name: SacNetworkName, layers: readonly LayerWeights[]): Promise<void> {
    const network = name === "actor" ? this.actor : this.twinOf(name).twin;
    if (layers.length !== network.length) {
      throw new Error(
        `Sac.setWeights(${name}): ${layers.length} layers given, network has ${network.length}`,
      );
    }
    layers.forEach((given, i) => {
      const { weight } = network[i];
      const [inputs, outputs] = name === "actor" ? weight.shape : weight.shape.slice(1);
      if (given.weight.length !== inputs * outputs || given.bias.length !== outputs) {
        throw new Error(
          `Sac.setWeights(${name}): layer ${i} has ${given.weight.length}+${given.bias.length} values, expected ${inputs}×${outputs}+${outputs}`,
        );
      }
    });
    for (const [i, given] of layers.entries()) {
      const { weight, bias } = network[i];
      if (name === "actor") {
        const [inputs, outputs] = weight.shape;
        tf.tidy(() => {
          weight.assign(tf.tensor2d(Float32Array.from(given.weight), [inputs, outputs]));
          bias.assign(tf.tensor1d(Float32Array.from(given.bias)));
        });
        continue;
      }
      // One critic's slice of the stacked tensors: the other critic's values are kept.
      const { entry } = this.twinOf(name);
      const [, inputs, outputs] = weight.shape;
      const weights = Float32Array.from((await weight.data()) as Float32Array);
      const biases = Float32Array.from((await bias.data()) as Float32Array);
      weights.set(given.weight, entry * inputs * outputs);
      biases.set(given.bias, entry * outputs);
      tf.tidy(() => {
        weight.assign(tf.tensor3d(weights, [2, inputs, outputs]));
        bias.assign(tf.tensor3d(biases, [2, 1, outputs]));
      });
    }
  }

  /** Sets α (and log α) directly, e.g. in tests. */
  setAlpha(alpha: number): void {
    if (!(alpha > 0)) throw new Error(`Sac.setAlpha: α must be positive, got ${alpha}`);
    tf.tidy(() => this.logAlpha.assign(tf.scalar(Math.log(alpha))));
    this.logAlphaValue = Math.fround(Math.log(alpha));
  }

  /**
   * The actor's weights for the control loop's plain-JS MLP: a ReLU MLP whose output is
   * [μ (|A| values), log σ (|A| values)]; the action is tanh(μ + σε) while training, tanh(μ) when
   * evaluating.
   */
  async actorWeights(): Promise<ActorWeights> {
    const layers = await this.getWeights("actor");
    return {
      sizes: [layers[0].inputs, ...layers.map((l) => l.outputs)],
      activation: "relu",
      layers: layers.map((l) => ({ weight: l.weight, bias: l.bias })),
      actionSize: this.actSize,
      logStdMin: this.options.logStdMin,
      logStdMax: this.options.logStdMax,
    };
  }

  /** Everything needed to resume: weights, targets, log α, Adam moments and step counts. */
  async toJSON(): Promise<SacJSON> {
    const networks = {} as SacJSON["networks"];
    for (const name of NETWORK_NAMES) {
      networks[name] = (await this.getWeights(name)).map((l) => ({
        weight: encodeTyped(l.weight),
        bias: encodeTyped(l.bias),
      }));
    }
    return {
      kind: "sac",
      obsSize: this.obsSize,
      actSize: this.actSize,
      options: { ...this.options, hiddenSizes: [...this.options.hiddenSizes] },
      updates: this.updateCount,
      logAlpha: (await this.logAlpha.data())[0],
      networks,
      optimizers: {
        critic: await saveAdam(this.criticOptimizer, splitTwinMoments),
        actor: await saveAdam(this.actorOptimizer),
        alpha: await saveAdam(this.alphaOptimizer),
      },
    };
  }

  /** Rebuilds a Sac from toJSON()'s output; `rng` supplies the noise from here on. */
  static async fromJSON(json: SacJSON, rng: Rng): Promise<Sac> {
    if (json?.kind !== "sac") throw new Error(`SAC checkpoint: kind is ${json?.kind}, expected sac`);
    const sac = new Sac(json.obsSize, json.actSize, rng, json.options);
    for (const name of NETWORK_NAMES) {
      const layers = json.networks?.[name];
      if (!Array.isArray(layers)) throw new Error(`SAC checkpoint: field networks.${name} missing`);
      const shapes = await sac.getWeights(name);
      await sac.setWeights(
        name,
        layers.map((l, i) => ({
          inputs: shapes[i]?.inputs ?? 0,
          outputs: shapes[i]?.outputs ?? 0,
          weight: decodeTyped(l.weight, "float32", `SAC checkpoint: networks.${name}[${i}].weight`),
          bias: decodeTyped(l.bias, "float32", `SAC checkpoint: networks.${name}[${i}].bias`),
        })),
      );
    }
    if (!Number.isFinite(json.logAlpha))
      throw new Error(`SAC checkpoint: field logAlpha must be a finite number, got ${json.logAlpha}`);
    sac.setAlpha(Math.exp(json.logAlpha));
    await restoreAdam(
      sac.criticOptimizer,
      json.optimizers.critic,
      sac.criticVariables,
      "critic",
      stackTwinMoments,
    );
    await restoreAdam(sac.actorOptimizer, json.optimizers.actor, sac.actorVariables, "actor");
    await restoreAdam(sac.alphaOptimizer, json.optimizers.alpha, [sac.logAlpha], "alpha");
    sac.updateCount = json.updates;
    return sac;
  }

  /** Frees every tensor this Sac holds. */
  dispose(): void {
    for (const network of [this.actor, this.critics, this.targetCritics]) {
      tf.dispose(networkVariables(network));
    }
    this.logAlpha.dispose();
    this.criticOptimizer.dispose();
    this.actorOptimizer.dispose();
    this.alphaOptimizer.dispose();
  }

  /** y = r + γ(1 − d)(min(Q1'(s', a'), Q2'(s', a')) − α log π(a'|s')), shape [rows, 1]. */
  private softBellmanTarget(
    reward: tf.Tensor2D,
    nextObs: tf.Tensor2D,
    terminated: tf.Tensor2D,
    noise: tf.Tensor2D,
    alpha: tf.Tensor,
  ): tf.Tensor2D {
    const next = samplePolicy(forward(this.actor, nextObs), noise, this.options);
    const nextObsAction = tf.concat([nextObs, next.action], 1);
    const minTargetQ = minOfTwins(this.twinForward(this.targetCritics, nextObsAction));
    const softValue = tf.sub(minTargetQ, tf.mul(alpha, next.logProb));
    const notDone = tf.sub(1, terminated);
    return tf.add(reward, tf.mul(tf.mul(notDone, this.options.discount), softValue));
  }

  /**
   * Both critics (or both targets) of `twin` on the same rows [rows, in]: Q values [2, rows, 1],
   * Q1 first. Batched: one product per layer for both; separate: two 2-D networks.
   */
  private twinForward(twin: TwinNetwork, input: tf.Tensor2D): tf.Tensor3D {
    const last = twin.length - 1;
    if (this.criticPath === "batched") {
      let h: tf.Tensor = input;
      twin.forEach((layer, i) => {
        // [rows, in] × [2, in, out] broadcasts the rows to both critics.
        const product = tf.matMul(h, layer.weight);
        h = i < last ? biasRelu(product, layer.bias) : tf.add(product, layer.bias);
      });
      return h as tf.Tensor3D;
    }
    const entry2d = (t: tf.Tensor) => {
      const [, rows, cols] = t.shape as [number, number, number];
      return tf.reshape(t, [rows, cols]) as tf.Tensor2D;
    };
    const q = [0, 1].map((entry) => {
      let h: tf.Tensor2D = input;
      twin.forEach((layer, i) => {
        const weight = entry2d(tf.split(layer.weight, 2, 0)[entry]);
        const bias = entry2d(tf.split(layer.bias, 2, 0)[entry]);
        const product = tf.matMul(h, weight);
        h = (i < last ? biasRelu(product, bias) : tf.add(product, bias)) as tf.Tensor2D;
      });
      return tf.reshape(h, [1, ...h.shape]);
    });
    return tf.concat(q, 0) as tf.Tensor3D;
  }

  /** The stacked network holding a critic or target, and the critic's entry in it. */
  private twinOf(name: Exclude<SacNetworkName, "actor">): { twin: TwinNetwork; entry: 0 | 1 } {
    const twin = name === "q1" || name === "q2" ? this.critics : this.targetCritics;
    return { twin, entry: name === "q1" || name === "q1Target" ? 0 : 1 };
  }

  /** Standard normal ε from the seeded Rng: first for a' ~ π(·|s'), then for ã ~ π(·|s). */
  private drawNoise(rows: number): { nextNoise: Float32Array; policyNoise: Float32Array } {
    const n = rows * this.actSize;
    if (this.noise.length < 2 * n) this.noise = new Float32Array(2 * n);
    for (let i = 0; i < 2 * n; i++) this.noise[i] = this.rng.normal();
    return { nextNoise: this.noise.subarray(0, n), policyNoise: this.noise.subarray(n, 2 * n) };
  }

  private checkBatch(batch: TransitionBatch, rows: number): void {
    if (batch.obsSize !== this.obsSize || batch.actSize !== this.actSize) {
      throw new Error(
        `Sac: batch has obs ${batch.obsSize}, action ${batch.actSize}; expected ${this.obsSize}, ${this.actSize}`,
      );
    }
    if (!Number.isInteger(rows) || rows <= 0 || rows > batch.rows) {
      throw new Error(`Sac: rows must be an integer in [1, ${batch.rows}], got ${rows}`);
    }
  }
}

/** The actor as the plain-JS MLP takes it (see src/control/policies/mlp.ts). */
export interface ActorWeights {
  /** Layer widths from input to output: [obsSize, ...hidden, 2·|A|]. */
  sizes: number[];
  activation: "relu";
  /** Row-major [inputs × outputs] weights and biases per layer. */
  layers: { weight: Float32Array; bias: Float32Array }[];
  actionSize: number;
  logStdMin: number;
  logStdMax: number;
}

/**
 * The tanh-squashed Gaussian: from the actor's output [μ, log σ] and noise ε, the action
 * a = tanh(μ + σε) and log π(a|s) = Σ_i [−ε_i²/2 − log σ_i − log(2π)/2 − log(1 − tanh²(u_i))],
 * with log(1 − tanh²(u)) = 2(log 2 − u − softplus(−2u)) (exact, and finite for large |u|).
 * Exported for tests.
 */
export function samplePolicy(
  meanAndLogStd: tf.Tensor2D,
  noise: tf.Tensor2D,
  bounds: { logStdMin: number; logStdMax: number },
): { action: tf.Tensor2D; logProb: tf.Tensor2D } {
  if (nativeKernelsActive()) {
    // The same, as one kernel forward and one backward (wasm-kernels.ts, native/kernels.c).
    const attrs = { logStdMin: bounds.logStdMin, logStdMax: bounds.logStdMax };
    const [action, logProb] = tf
      .engine()
      .runKernel(TANH_GAUSSIAN, { meanAndLogStd, noise }, attrs) as tf.Tensor2D[];
    return { action, logProb };
  }
  const [mean, rawLogStd] = tf.split(meanAndLogStd, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
  const logStd = tf.clipByValue(rawLogStd, bounds.logStdMin, bounds.logStdMax);
  const u = tf.add(mean, tf.mul(tf.exp(logStd), noise));
  // (u − μ)/σ is ε itself, so the Gaussian term uses ε directly (same value, same gradient).
  const gaussianLogProb = tf.sum(
    tf.sub(tf.sub(tf.mul(tf.square(noise), -0.5), logStd), HALF_LOG_2PI),
    1,
    true,
  );
  const logTanhJacobian = tf.sum(tf.mul(tf.sub(tf.sub(LOG_2, u), tf.softplus(tf.mul(u, -2))), 2), 1, true);
  return {
    action: tf.tanh(u) as tf.Tensor2D,
    logProb: tf.sub(gaussianLogProb, logTanhJacobian) as tf.Tensor2D,
  };
}

/**
 * Initial weights of a ReLU MLP with PyTorch's nn.Linear initialisation (weights and biases uniform
 * in ±1/√fan_in), as Spinning Up and CleanRL use; drawn from our Rng so that the seed fixes them.
 */
function drawNetwork(sizes: readonly number[], rng: Rng): LayerWeights[] {
  const layers: LayerWeights[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const inputs = sizes[i];
    const outputs = sizes[i + 1];
    const bound = 1 / Math.sqrt(inputs);
    const weight = new Float32Array(inputs * outputs);
    for (let j = 0; j < weight.length; j++) weight[j] = rng.range(-bound, bound);
    const bias = new Float32Array(outputs);
    for (let j = 0; j < bias.length; j++) bias[j] = rng.range(-bound, bound);
    layers.push({ inputs, outputs, weight, bias });
  }
  return layers;
}

function createNetwork(layers: readonly LayerWeights[]): Network {
  // tidy frees the initial-value tensors; variables outlive it.
  return layers.map(({ inputs, outputs, weight, bias }) =>
    tf.tidy(() => ({
      weight: tf.variable(tf.tensor2d(weight, [inputs, outputs])),
      bias: tf.variable(tf.tensor1d(bias)),
    })),
  );
}

/** Two networks of the same sizes as one stacked network (trainable: the critics; not: targets). */
function createTwinNetwork(
  first: readonly LayerWeights[],
  second: readonly LayerWeights[],
  trainable: boolean,
): TwinNetwork {
  return first.map(({ inputs, outputs, weight, bias }, i) => {
    const weights = new Float32Array(2 * inputs * outputs);
    weights.set(weight);
    weights.set(second[i].weight, inputs * outputs);
    const biases = new Float32Array(2 * outputs);
    biases.set(bias);
    biases.set(second[i].bias, outputs);
    return tf.tidy(() => ({
      weight: tf.variable(tf.tensor3d(weights, [2, inputs, outputs]), trainable),
      bias: tf.variable(tf.tensor3d(biases, [2, 1, outputs]), trainable),
    }));
  });
}

function networkVariables(network: Network | TwinNetwork): tf.Variable[] {
  return network.flatMap((layer) => [layer.weight, layer.bias]);
}

/** The smaller of the twins' Q values [2, rows, 1], as [rows, 1]. */
function minOfTwins(q: tf.Tensor3D): tf.Tensor2D {
  const [q1, q2] = tf.split(q, 2, 0);
  const rows = q.shape[1];
  return tf.reshape(tf.minimum(q1, q2), [rows, 1]) as tf.Tensor2D;
}

/**
 * Hidden layers relu(x·W + b) (activations.ts: one kernel where the native addon runs), the output
 * layer linear. Not tf.fused.matMul: its built-in gradient multiplies with transpose flags, which
 * tfjs-backend-wasm runs on a slow path.
 */
function forward(network: Network, input: tf.Tensor2D): tf.Tensor2D {
  let x: tf.Tensor2D = input;
  network.forEach((layer, i) => {
    const product = tf.matMul(x, layer.weight);
    x = (i + 1 < network.length ? biasRelu(product, layer.bias) : tf.add(product, layer.bias)) as tf.Tensor2D;
  });
  return x;
}

/** target ← (1 − τ)·target + τ·online, layer by layer. */
function polyakUpdate(target: TwinNetwork, online: TwinNetwork, tau: number): void {
  tf.tidy(() => {
    target.forEach((layer, i) => {
      layer.weight.assign(tf.add(tf.mul(layer.weight, 1 - tau), tf.mul(online[i].weight, tau)));
      layer.bias.assign(tf.add(tf.mul(layer.bias, 1 - tau), tf.mul(online[i].bias, tau)));
    });
  });
}

/** What Adam's getWeights()/setWeights() exchange (tfjs-core does not export the type). */
type NamedTensor = Awaited<ReturnType<tf.AdamOptimizer["getWeights"]>>[number];

/** Bridges variableGrads' gradient map and applyGradients' parameter type (the same shape in tfjs-core). */
function applyGradients(optimizer: tf.AdamOptimizer, grads: tf.NamedTensorMap): void {
  optimizer.applyGradients(grads as Parameters<tf.AdamOptimizer["applyGradients"]>[0]);
}

/** Turns moments between the optimiser's variables and the checkpoint's list (see below). */
type MomentLayout = (moments: Float32Array[]) => Float32Array[];

/**
 * The critics' Adam moments as checkpoints keep them: Q1's (W₀, b₀, W₁, …) then Q2's, as if the
 * critics were separate networks; the optimiser holds one stacked [2, …] moment per variable.
 */
function splitTwinMoments(moments: Float32Array[]): Float32Array[] {
  return [0, 1].flatMap((entry) =>
    moments.map((m) => m.slice((entry * m.length) / 2, ((entry + 1) * m.length) / 2)),
  );
}

/** The inverse of splitTwinMoments (an odd count is left for restoreAdam's count check). */
function stackTwinMoments(moments: Float32Array[]): Float32Array[] {
  if (moments.length % 2 !== 0) return moments;
  const perCritic = moments.length / 2;
  return moments.slice(0, perCritic).map((first, i) => {
    const second = moments[perCritic + i];
    const stacked = new Float32Array(first.length + second.length);
    stacked.set(first);
    stacked.set(second, first.length);
    return stacked;
  });
}

async function saveAdam(optimizer: tf.AdamOptimizer, layout?: MomentLayout): Promise<AdamJSON> {
  // getWeights() → [iterations, first moments…, second moments…] in the variables' order.
  const [iterations, ...moments] = await optimizer.getWeights();
  const half = moments.length / 2;
  const read = async (m: NamedTensor[]) => {
    const values = (await Promise.all(m.map((moment) => moment.tensor.data()))) as Float32Array[];
    return (layout === undefined ? values : layout(values)).map(encodeTyped);
  };
  const json = {
    iterations: (await iterations.tensor.data())[0],
    firstMoments: await read(moments.slice(0, half)),
    secondMoments: await read(moments.slice(half)),
  };
  iterations.tensor.dispose();
  return json;
}

async function restoreAdam(
  optimizer: tf.AdamOptimizer,
  json: AdamJSON,
  variables: tf.Variable[],
  label: string,
  layout?: MomentLayout,
): Promise<void> {
  const count = json?.firstMoments?.length ?? -1;
  const expected = layout === undefined ? variables.length : 2 * variables.length;
  if (!(count === 0 || count === expected) || json.secondMoments?.length !== count) {
    throw new Error(`SAC checkpoint: optimizers.${label} has ${count} moments, expected 0 or ${expected}`);
  }
  const decode = (encoded: string[], moments: string) => {
    const values = encoded.map((m, i) =>
      decodeTyped(m, "float32", `SAC checkpoint: optimizers.${label} ${moments}[${i}]`),
    );
    return layout === undefined ? values : layout(values);
  };
  const moment = (values: Float32Array, i: number, suffix: string): NamedTensor => {
    if (values.length !== variables[i].size) {
      throw new Error(
        `SAC checkpoint: optimizers.${label} moment ${i} has ${values.length} values, expected ${variables[i].size}`,
      );
    }
    return { name: `${variables[i].name}/${suffix}`, tensor: tf.tensor(values, variables[i].shape) };
  };
  const weights: NamedTensor[] = [
    { name: "iter", tensor: tf.scalar(json.iterations, "int32") },
    ...decode(json.firstMoments, "firstMoments").map((m, i) => moment(m, i, "m")),
    ...decode(json.secondMoments, "secondMoments").map((v, i) => moment(v, i, "v")),
  ];
  await optimizer.setWeights(weights);
  restoreBiasCorrections(optimizer); // setWeights' pow(β, t + 1) is not training's float32 product
  // setWeights made variables sharing these tensors' data; the tensors themselves can go.
  tf.dispose(weights.map((w) => w.tensor));
}

function checkOptions(o: SacHyperparameters): void {
  const positive = ["criticLearningRate", "actorLearningRate", "alphaLearningRate", "initialAlpha"] as const;
  for (const key of positive) {
    if (!(o[key] > 0)) throw new Error(`Sac: option ${key} must be positive, got ${o[key]}`);
  }
  if (!Number.isInteger(o.batchSize) || o.batchSize <= 0) {
    throw new Error(`Sac: option batchSize must be a positive integer, got ${o.batchSize}`);
  }
  if (!(o.discount >= 0 && o.discount <= 1))
    throw new Error(`Sac: option discount must be in [0, 1], got ${o.discount}`);
  if (!(o.polyakTau > 0 && o.polyakTau <= 1))
    throw new Error(`Sac: option polyakTau must be in (0, 1], got ${o.polyakTau}`);
  if (!(o.logStdMin < o.logStdMax)) throw new Error("Sac: option logStdMin must be below logStdMax");
  if (o.hiddenSizes.some((h) => !Number.isInteger(h) || h <= 0)) {
    throw new Error(`Sac: option hiddenSizes must be positive integers, got [${o.hiddenSizes.join(", ")}]`);
  }
}
