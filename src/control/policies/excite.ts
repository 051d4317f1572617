import type { RobotModel } from "../../robot/types.js";
import type { TaskEpisode } from "../../tasks/task.js";
import { Rng } from "../../util/rng.js";
import type { Policy, PolicyContext } from "../policy.js";
import { PdPolicy, type PdPolicyOptions } from "./pd.js";

/** Sinusoids per joint, their base frequency (Hz) and the fraction of the soft range they sweep. */
export const EXCITE_DEFAULTS = { harmonics: 5, baseFrequency: 0.2, rangeFraction: 0.6 };

/**
 * Excitation for system identification (`mbpo-arm identify`): the PD policy tracking, per joint,
 *
 *   q*(t) = centre + Σ_k a_k sin(2π f_k t + φ_k),   f_k = k·f₀·(1 + 0.1·i)   (joint i, k = 1..K)
 *
 * with t the state's stamp, centre the middle of the joint's soft range (the URDF's
 * <safety_controller>, else 0.1 rad inside the hard limits), random phases from the seed and
 * amplitudes a_k ∝ 1/k summing to rangeFraction × half the range, so that q* stays inside it. The
 * frequencies differ per joint, so that no two joints move in lockstep and the regressor's
 * columns separate. Every command passes the safety filter like any policy's.
 */
export class ExcitePolicy implements Policy {
  readonly name = "excite";
  private readonly pd: PdPolicy;
  private readonly centre: Float64Array;
  private readonly amplitude: Float64Array;
  private readonly frequency: Float64Array;
  private readonly phase: Float64Array;
  private readonly reference: Float64Array;
  private readonly harmonics: number;

  constructor(model: RobotModel, options: { seed: number; pd?: PdPolicyOptions } = { seed: 0 }) {
    const { harmonics, baseFrequency, rangeFraction } = EXCITE_DEFAULTS;
    const n = model.dof;
    this.harmonics = harmonics;
    this.pd = new PdPolicy(model, options.pd);
    this.centre = new Float64Array(n);
    this.amplitude = new Float64Array(n * harmonics);
    this.frequency = new Float64Array(n * harmonics);
    this.phase = new Float64Array(n * harmonics);
    this.reference = new Float64Array(n);
    const rng = new Rng(options.seed, 31);
    const weights = Array.from({ length: harmonics }, (_, k) => 1 / (k + 1));
    const total = weights.reduce((a, b) => a + b, 0);
    model.joints.forEach((joint, i) => {
      const lo = joint.safety?.softLower ?? (Number.isFinite(joint.lower) ? joint.lower + 0.1 : -Math.PI);
      const hi = joint.safety?.softUpper ?? (Number.isFinite(joint.upper) ? joint.upper - 0.1 : Math.PI);
      this.centre[i] = 0.5 * (lo + hi);
      for (let k = 0; k < harmonics; k++) {
        this.amplitude[i * harmonics + k] = (rangeFraction * 0.5 * (hi - lo) * weights[k]) / total;
        this.frequency[i * harmonics + k] = (k + 1) * baseFrequency * (1 + 0.1 * i);
        this.phase[i * harmonics + k] = rng.range(0, 2 * Math.PI);
      }
    });
  }

  reset(_episode: TaskEpisode): void {}

  act(obs: Float32Array, ctx: PolicyContext, out: Float32Array): void {
    const t = ctx.state.stamp;
    const K = this.harmonics;
    for (let i = 0; i < this.reference.length; i++) {
      let q = this.centre[i];
      for (let k = 0; k < K; k++) {
        const j = i * K + k;
        q += this.amplitude[j] * Math.sin(2 * Math.PI * this.frequency[j] * t + this.phase[j]);
      }
      this.reference[i] = q;
    }
    this.pd.setTarget(this.reference);
    this.pd.act(obs, ctx, out);
  }
}
