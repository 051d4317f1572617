/**
 * A multilayer perceptron evaluated in plain JavaScript on Float32Array weights: the trained actor
 * runs inside the control tick with no tensor library and no allocation.
 *
 * Layer l computes y = act(x·W_l + b_l), with W_l stored row-major as [inputs × outputs] (the layout
 * the SAC actor exports, see ActorWeights in src/mbpo/sac.ts); the last layer is linear. Its output
 * is either the action mean (actionSize values) or, as SAC's actor, the mean followed by a log-std
 * head (2·actionSize values, log σ clamped to [logStdMin, logStdMax]). The action is tanh(mean), or
 * tanh(mean + σ·ε) with ε ~ N(0, 1) when the policy is stochastic.
 */
import type { TaskEpisode } from "../../tasks/task.js";
import type { Rng } from "../../util/rng.js";
import type { Policy, PolicyContext } from "../policy.js";

export type Activation = "relu" | "tanh" | "silu";
const ACTIVATIONS: readonly Activation[] = ["relu", "tanh", "silu"];

/** SAC's bounds on the log standard deviation. */
export const LOG_STD_MIN = -20;
export const LOG_STD_MAX = 2;

export interface MlpSpec {
  /** Layer widths from input to output: [observationSize, ...hidden, actionSize or 2·actionSize]. */
  sizes: number[];
  /** Activation of the hidden layers (the output layer is linear). */
  activation: Activation;
  /** weights[l]: sizes[l] × sizes[l+1] values, row-major [inputs × outputs]. */
  weights: Float32Array[];
  /** biases[l]: sizes[l+1] values. */
  biases: Float32Array[];
  /** Defaults to the output width; an output of 2·actionSize is read as [mean, log σ]. */
  actionSize?: number;
  logStdMin?: number;
  logStdMax?: number;
  /** Observation normaliser: the network sees (obs − mean) / std. Both or neither. */
  obsMean?: Float32Array;
  obsStd?: Float32Array;
}

export interface MlpPolicyOptions {
  /** Sample a ~ tanh(N(mean, σ²)) instead of tanh(mean); needs a log-std head and an rng. */
  stochastic?: boolean;
  rng?: Rng;
  name?: string;
}

/** MlpSpec as plain JSON (checkpoints). */
export interface MlpJson {
  type: "mlp";
  sizes: number[];
  activation: Activation;
  actionSize: number;
  logStdMin: number;
  logStdMax: number;
  weights: number[][];
  biases: number[][];
  obsMean?: number[];
  obsStd?: number[];
}

export class MlpPolicy implements Policy {
  readonly name: string;
  readonly sizes: readonly number[];
  readonly activation: Activation;
  readonly actionSize: number;
  readonly observationSize: number;
  readonly stochastic: boolean;
  readonly logStdMin: number;
  readonly logStdMax: number;
  private readonly weights: Float32Array[];
  private readonly biases: Float32Array[];
  private readonly obsMean?: Float32Array;
  private readonly obsStd?: Float32Array;
  private readonly rng?: Rng;
  /** Two activation buffers, ping-ponged layer to layer (Float64 for the sums). */
  private readonly bufferA: Float64Array;
  private readonly bufferB: Float64Array;

  constructor(spec: MlpSpec, options: MlpPolicyOptions = {}) {
    const { sizes, activation, weights, biases } = spec;
    if (!Array.isArray(sizes) || sizes.length < 2 || !sizes.every((s) => Number.isInteger(s) && s > 0)) {
      throw new Error(`mlp: sizes must list at least 2 positive integers, got ${JSON.stringify(sizes)}`);
    }
    if (!ACTIVATIONS.includes(activation)) {
      throw new Error(
        `mlp: activation must be one of ${ACTIVATIONS.join(", ")}, got ${JSON.stringify(activation)}`,
      );
    }
    const layers = sizes.length - 1;
    if (!Array.isArray(weights) || weights.length !== layers) {
      throw new Error(
        `mlp: expected ${layers} weight arrays for sizes ${sizes.join("-")}, got ${weights?.length}`,
      );
    }
    if (!Array.isArray(biases) || biases.length !== layers) {
      throw new Error(
        `mlp: expected ${layers} bias arrays for sizes ${sizes.join("-")}, got ${biases?.length}`,
      );
    }
    for (let l = 0; l < layers; l++) {
      const inputs = sizes[l];
      const outputs = sizes[l + 1];
      checkArray(
        `weights[${l}]`,
        weights[l],
        inputs * outputs,
        `layer ${l}: ${inputs} inputs × ${outputs} outputs`,
      );
      checkArray(`biases[${l}]`, biases[l], outputs, `layer ${l}: ${outputs} outputs`);
    }
    const outputSize = sizes[layers];
    const actionSize = spec.actionSize ?? outputSize;
    if (!(outputSize === actionSize || outputSize === 2 * actionSize)) {
      throw new Error(
        `mlp: output layer has ${outputSize} units; expected actionSize (${actionSize}) or 2·actionSize (mean and log-std)`,
      );
    }
    const logStdMin = spec.logStdMin ?? LOG_STD_MIN;
    const logStdMax = spec.logStdMax ?? LOG_STD_MAX;
    if (!(Number.isFinite(logStdMin) && Number.isFinite(logStdMax) && logStdMin <= logStdMax)) {
      throw new Error(`mlp: log-std bounds must be finite with min ≤ max, got [${logStdMin}, ${logStdMax}]`);
    }
    if ((spec.obsMean === undefined) !== (spec.obsStd === undefined)) {
      throw new Error("mlp: the observation normaliser needs both obsMean and obsStd");
    }
    if (spec.obsMean !== undefined && spec.obsStd !== undefined) {
      checkArray("obsMean", spec.obsMean, sizes[0], "one per observation entry");
      checkArray("obsStd", spec.obsStd, sizes[0], "one per observation entry");
      spec.obsStd.forEach((s, i) => {
        if (!(s > 0)) throw new Error(`mlp: obsStd[${i}] = ${s}; expected a positive number`);
      });
    }
    const stochastic = options.stochastic === true;
    if (stochastic && outputSize !== 2 * actionSize) {
      throw new Error(
        `mlp: a stochastic policy needs a log-std head (output ${2 * actionSize}), got ${outputSize}`,
      );
    }
    if (stochastic && options.rng === undefined) throw new Error("mlp: a stochastic policy needs an rng");

    this.name = options.name ?? "mlp";
    this.sizes = [...sizes];
    this.activation = activation;
    this.actionSize = actionSize;
    this.observationSize = sizes[0];
    this.stochastic = stochastic;
    this.logStdMin = logStdMin;
    this.logStdMax = logStdMax;
    this.weights = weights.map((w) => Float32Array.from(w));
    this.biases = biases.map((b) => Float32Array.from(b));
    this.obsMean = spec.obsMean && Float32Array.from(spec.obsMean);
    this.obsStd = spec.obsStd && Float32Array.from(spec.obsStd);
    this.rng = options.rng;
    const widest = Math.max(...sizes);
    this.bufferA = new Float64Array(widest);
    this.bufferB = new Float64Array(widest);
  }

  reset(_episode: TaskEpisode): void {}

  act(obs: Float32Array, _ctx: PolicyContext, out: Float32Array): void {
    const y = this.forward(obs);
    const A = this.actionSize;
    const hasLogStd = this.sizes[this.sizes.length - 1] === 2 * A;
    for (let i = 0; i < A; i++) {
      let u = y[i];
      if (this.stochastic && hasLogStd) {
        const logStd = Math.min(this.logStdMax, Math.max(this.logStdMin, y[A + i]));
        u += Math.exp(logStd) * (this.rng as Rng).normal();
      }
      out[i] = Math.tanh(u);
    }
  }

  /**
   * The raw output of the last (linear) layer for an observation; valid until the next call. The
   * returned array is scratch and may be longer than the output layer.
   */
  forward(obs: Float32Array): Float64Array {
    let x = this.bufferA;
    let y = this.bufferB;
    const n0 = this.sizes[0];
    const { obsMean, obsStd } = this;
    for (let i = 0; i < n0; i++) x[i] = obsMean && obsStd ? (obs[i] - obsMean[i]) / obsStd[i] : obs[i];
    const layers = this.sizes.length - 1;
    for (let l = 0; l < layers; l++) {
      const inputs = this.sizes[l];
      const outputs = this.sizes[l + 1];
      const W = this.weights[l];
      const b = this.biases[l];
      for (let j = 0; j < outputs; j++) y[j] = b[j];
      // Row by row over the inputs: W is [inputs × outputs], so each row is contiguous.
      for (let i = 0; i < inputs; i++) {
        const xi = x[i];
        const row = i * outputs;
        for (let j = 0; j < outputs; j++) y[j] += xi * W[row + j];
      }
      if (l < layers - 1) applyActivation(this.activation, y, outputs);
      const t = x;
      x = y;
      y = t;
    }
    return x;
  }

  toJSON(): MlpJson {
    const json: MlpJson = {
      type: "mlp",
      sizes: [...this.sizes],
      activation: this.activation,
      actionSize: this.actionSize,
      logStdMin: this.logStdMin,
      logStdMax: this.logStdMax,
      weights: this.weights.map((w) => Array.from(w)),
      biases: this.biases.map((b) => Array.from(b)),
    };
    if (this.obsMean && this.obsStd) {
      json.obsMean = Array.from(this.obsMean);
      json.obsStd = Array.from(this.obsStd);
    }
    return json;
  }

  /** From toJSON()'s output (already parsed); every field is checked, errors name it. */
  static fromJSON(json: unknown, options: MlpPolicyOptions = {}): MlpPolicy {
    if (typeof json !== "object" || json === null) throw new Error("mlp: expected a JSON object");
    const j = json as Record<string, unknown>;
    if (j.type !== "mlp") throw new Error(`mlp: field "type" must be "mlp", got ${JSON.stringify(j.type)}`);
    const numbers = (field: string, value: unknown): Float32Array => {
      if (!Array.isArray(value) || !value.every((v) => typeof v === "number" && Number.isFinite(v))) {
        throw new Error(`mlp: field "${field}" must be an array of finite numbers`);
      }
      return Float32Array.from(value as number[]);
    };
    const arrays = (field: string, value: unknown): Float32Array[] => {
      if (!Array.isArray(value)) throw new Error(`mlp: field "${field}" must be an array of arrays`);
      return value.map((v, i) => numbers(`${field}[${i}]`, v));
    };
    const optionalNumber = (field: string): number | undefined => {
      const v = j[field];
      if (v === undefined) return undefined;
      if (typeof v !== "number") throw new Error(`mlp: field "${field}" must be a number`);
      return v;
    };
    if (!Array.isArray(j.sizes)) throw new Error('mlp: field "sizes" must be an array of integers');
    return new MlpPolicy(
      {
        sizes: j.sizes as number[],
        activation: j.activation as Activation,
        weights: arrays("weights", j.weights),
        biases: arrays("biases", j.biases),
        actionSize: optionalNumber("actionSize"),
        logStdMin: optionalNumber("logStdMin"),
        logStdMax: optionalNumber("logStdMax"),
        obsMean: j.obsMean === undefined ? undefined : numbers("obsMean", j.obsMean),
        obsStd: j.obsStd === undefined ? undefined : numbers("obsStd", j.obsStd),
      },
      options,
    );
  }

  /** From the SAC actor's export (src/mbpo/sac.ts ActorWeights). */
  static fromActor(
    actor: {
      sizes: number[];
      activation: Activation;
      layers: { weight: Float32Array; bias: Float32Array }[];
      actionSize: number;
      logStdMin: number;
      logStdMax: number;
    },
    options: MlpPolicyOptions & { obsMean?: Float32Array; obsStd?: Float32Array } = {},
  ): MlpPolicy {
    return new MlpPolicy(
      {
        sizes: actor.sizes,
        activation: actor.activation,
        weights: actor.layers.map((l) => l.weight),
        biases: actor.layers.map((l) => l.bias),
        actionSize: actor.actionSize,
        logStdMin: actor.logStdMin,
        logStdMax: actor.logStdMax,
        obsMean: options.obsMean,
        obsStd: options.obsStd,
      },
      options,
    );
  }
}

function applyActivation(activation: Activation, y: Float64Array, n: number): void {
  switch (activation) {
    case "relu":
      for (let j = 0; j < n; j++) if (y[j] < 0) y[j] = 0;
      return;
    case "tanh":
      for (let j = 0; j < n; j++) y[j] = Math.tanh(y[j]);
      return;
    case "silu":
      for (let j = 0; j < n; j++) y[j] = y[j] / (1 + Math.exp(-y[j]));
      return;
  }
}

function checkArray(
  field: string,
  values: ArrayLike<number> | undefined,
  expected: number,
  what: string,
): void {
  if (values === undefined || values === null || typeof values.length !== "number") {
    throw new Error(`mlp: ${field} is missing; expected ${expected} values (${what})`);
  }
  if (values.length !== expected) {
    throw new Error(`mlp: ${field} has ${values.length} values; expected ${expected} (${what})`);
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]))
      throw new Error(`mlp: ${field}[${i}] is ${values[i]}; weights must be finite`);
  }
}
