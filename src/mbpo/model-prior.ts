/**
 * The URDF prior under the learned dynamics model (hyperparameter mbpo.modelPrior = "urdf").
 *
 * The node knows the arm's rigid-body structure, so the ensemble need only learn what the URDF
 * gets wrong. For a model input (q, q̇, τ) the prior is the nominal model integrated over one
 * control period T with τ held, in N = round(T · priorRateHz) steps of h = T / N
 * (src/robot/forward-integrator.ts):
 *
 *   τ_net = τ − damping·q̇ − friction·tanh(q̇ / v_s)          (URDF <dynamics>, v_s = COULOMB_SMOOTHING)
 *   q̈     = ABA(q, q̇, τ_net)                                 (Dynamics.forwardDynamics, with armature)
 *   q̇    += h·q̈;   q += h·q̇                                   (semi-implicit Euler, as the twin)
 *   a joint that would pass a hard limit stops there (q at the limit, its velocity zeroed): an
 *   inelastic stand-in for the twin's stiff stops, which model rollouts never rely on (their
 *   joint-limit filter ends a branch near the limits)
 *
 *   Δ_prior(q, q̇, τ) = (q_N − q, q̇_N − q̇)
 *
 * and each ensemble member predicts the residual r = Δ − Δ_prior: trained on the real buffer's
 * Δ − Δ_prior, sampled in rollouts as Δ = Δ_prior + r. Where the URDF is right, r = 0 and there is
 * nothing to learn; on the twin with no reality gap, Δ_prior equals the twin's step to rounding
 * (same integrator, same rate) away from the stops.
 *
 * The uncertainty filter keeps its meaning: the elites' disagreement about r is measured against
 * how much the whole Δ varies over the training data (ResidualModel's disagreementUnits), not
 * against r's own spread, which is small exactly where the prior is good.
 *
 * Plain typed arrays, allocation-free per row: at the quick profile's sizes (10,000 branches per
 * update phase) a 4-joint arm's prior costs 20 ABA calls per row at 50 Hz over 1 kHz.
 */
import { ForwardIntegrator } from "../robot/forward-integrator.js";
import type { RobotModel } from "../robot/types.js";
import type { Rng } from "../util/rng.js";
import type { EnsembleSample, ProbabilisticEnsemble } from "./ensemble.js";
import type { RealReplayBuffer } from "./replay-buffer.js";
import type { RolloutModel } from "./rollouts.js";

export type ModelPrior = "none" | "urdf";

export const MODEL_PRIORS: readonly ModelPrior[] = ["none", "urdf"];

export class RigidBodyPrior {
  readonly dof: number;
  /** Integration steps per control period, and their length (s). */
  readonly steps: number;
  readonly h: number;
  private readonly integrator: ForwardIntegrator;
  private readonly q: Float64Array;
  private readonly qd: Float64Array;
  private readonly tau: Float64Array;

  constructor(model: RobotModel, controlRateHz: number, priorRateHz: number) {
    if (!(controlRateHz > 0) || !(priorRateHz >= controlRateHz) || !Number.isFinite(priorRateHz)) {
      throw new Error(
        `RigidBodyPrior: the prior's rate (${priorRateHz} Hz) must be finite and at least the control rate (${controlRateHz} Hz)`,
      );
    }
    const n = model.dof;
    this.dof = n;
    this.steps = Math.round(priorRateHz / controlRateHz);
    this.h = 1 / controlRateHz / this.steps;
    this.integrator = new ForwardIntegrator(model);
    this.q = new Float64Array(n);
    this.qd = new Float64Array(n);
    this.tau = new Float64Array(n);
  }

  /**
   * Δ_prior for `rows` rows of model inputs (q, q̇, τ, then anything: rows are `stride` values
   * apart, default 3·dof) into out (rows × 2·dof, Δq then Δq̇).
   */
  predict(
    inputs: ArrayLike<number>,
    rows: number,
    out: Float32Array | Float64Array,
    stride = 3 * this.dof,
  ): void {
    const n = this.dof;
    if (stride < 3 * n || inputs.length < (rows - 1) * stride + 3 * n || out.length < rows * 2 * n) {
      throw new Error(`RigidBodyPrior.predict: inputs or out too short for ${rows} rows`);
    }
    for (let r = 0; r < rows; r++) {
      const x = r * stride;
      for (let j = 0; j < n; j++) {
        this.q[j] = inputs[x + j];
        this.qd[j] = inputs[x + n + j];
        this.tau[j] = inputs[x + 2 * n + j];
      }
      this.integrator.run(this.q, this.qd, this.tau, this.steps, this.h);
      const y = r * 2 * n;
      for (let j = 0; j < n; j++) {
        out[y + j] = this.q[j] - inputs[x + j];
        out[y + n + j] = this.qd[j] - inputs[x + n + j];
      }
    }
  }
}

/**
 * The ensemble over a prior, as rollouts use a model: Δ = Δ_prior + the ensemble's residual draw,
 * and the disagreement measured in units of the whole Δ's spread (disagreementUnits: per output,
 * the standard deviation of Δ over the model's training data).
 */
export class ResidualModel implements RolloutModel {
  readonly inputSize: number;
  readonly outputSize: number;
  private priorDelta = new Float32Array(0);

  constructor(
    private readonly ensemble: ProbabilisticEnsemble,
    private readonly prior: RigidBodyPrior,
    private readonly disagreementUnits: ArrayLike<number>,
  ) {
    this.inputSize = ensemble.inputSize;
    this.outputSize = ensemble.outputSize;
  }

  randomElites(rows: number, rng: Rng, out: Int32Array): void {
    this.ensemble.randomElites(rows, rng, out);
  }

  async sample(
    inputs: Float32Array,
    rows: number,
    memberPerRow: Int32Array,
    rng: Rng,
    out: EnsembleSample,
  ): Promise<void> {
    await this.ensemble.sample(inputs, rows, memberPerRow, rng, out, this.disagreementUnits);
    if (this.priorDelta.length < rows * this.outputSize)
      this.priorDelta = new Float32Array(rows * this.outputSize);
    this.prior.predict(inputs, rows, this.priorDelta, this.inputSize);
    for (let i = 0; i < rows * this.outputSize; i++) out.delta[i] += this.priorDelta[i];
  }
}

/**
 * Turns the real buffer's model targets Δ (realModelData's, slot order) into the residuals
 * Δ − Δ_prior, in place; the prior reads the buffer's float64 states, not the float32 inputs.
 */
export function subtractPrior(prior: RigidBodyPrior, real: RealReplayBuffer, targets: Float32Array): void {
  const n = prior.dof;
  const rows = real.size;
  const chunk = 1024;
  const inputs = new Float64Array(chunk * 3 * n);
  const delta = new Float64Array(chunk * 2 * n);
  for (let start = 0; start < rows; start += chunk) {
    const count = Math.min(chunk, rows - start);
    for (let r = 0; r < count; r++) {
      const base = (start + r) * n;
      for (let j = 0; j < n; j++) {
        inputs[r * 3 * n + j] = real.q[base + j];
        inputs[r * 3 * n + n + j] = real.qd[base + j];
        inputs[r * 3 * n + 2 * n + j] = real.effort[base + j];
      }
    }
    prior.predict(inputs, count, delta);
    for (let i = 0; i < count * 2 * n; i++) targets[start * 2 * n + i] -= delta[i];
  }
}
