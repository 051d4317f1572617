/**
 * The URDF's forward dynamics integrated over a short horizon under a constant torque, the twin's
 * way (src/drivers/sim.ts) minus its stiff joint stops:
 *
 *   τ_net = τ − damping·q̇ − friction·tanh(q̇ / v_s)          (URDF <dynamics>, v_s = COULOMB_SMOOTHING)
 *   q̈     = ABA(q, q̇, τ_net)                                 (with armature)
 *   q̇    += h·q̈;   q += h·q̇                                   (semi-implicit Euler)
 *   a joint that would pass a hard limit stops there (q at the limit, its velocity zeroed)
 *
 * Used by the learner's URDF prior (src/mbpo/model-prior.ts) and by the delay compensation of a
 * late joint state (src/control/delay-compensation.ts). Allocation-free.
 */
import { COULOMB_SMOOTHING, Dynamics } from "./dynamics.js";
import type { RobotModel } from "./types.js";

export class ForwardIntegrator {
  readonly dof: number;
  private readonly dynamics: Dynamics;
  private readonly damping: Float64Array;
  private readonly friction: Float64Array;
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;
  private readonly qdd: Float64Array;
  private readonly tauNet: Float64Array;

  constructor(model: RobotModel) {
    const n = model.dof;
    this.dof = n;
    this.dynamics = new Dynamics(model);
    this.damping = Float64Array.from(model.joints, (j) => j.damping);
    this.friction = Float64Array.from(model.joints, (j) => j.friction);
    this.lower = Float64Array.from(model.joints, (j) => j.lower);
    this.upper = Float64Array.from(model.joints, (j) => j.upper);
    this.qdd = new Float64Array(n);
    this.tauNet = new Float64Array(n);
  }

  /** Integrates (q, q̇) in place over `steps` steps of h seconds under the constant torque tau. */
  run(q: Float64Array, qd: Float64Array, tau: ArrayLike<number>, steps: number, h: number): void {
    const n = this.dof;
    const { qdd, tauNet, damping, friction, lower, upper } = this;
    const invSmoothing = 1 / COULOMB_SMOOTHING;
    for (let step = 0; step < steps; step++) {
      for (let j = 0; j < n; j++) {
        const v = qd[j];
        tauNet[j] = tau[j] - damping[j] * v - friction[j] * Math.tanh(v * invSmoothing);
      }
      this.dynamics.forwardDynamics(q, qd, tauNet, qdd);
      for (let j = 0; j < n; j++) {
        qd[j] += h * qdd[j];
        const next = q[j] + h * qd[j];
        if (next > upper[j] || next < lower[j]) {
          q[j] = next > upper[j] ? upper[j] : lower[j];
          qd[j] = 0;
        } else q[j] = next;
      }
    }
  }
}
