import type { RobotModel } from "../../robot/types.js";
import type { TaskEpisode } from "../../tasks/task.js";
import type { Policy, PolicyContext } from "../policy.js";

/**
 * Default gains for urdf/arm.urdf at a 50 Hz control rate (joint1..joint4; N·m/rad and N·m·s/rad).
 *
 * How they were sized: the torque is held for a whole 20 ms tick, so the derivative gain must stay
 * well below 2·I/dt for the lightest effective joint inertia I. On this arm every joint carries its
 * servo's reflected rotor inertia (0.0106 kg·m², the URDF's <transmission>), which dominates: the
 * effective inertias run from 0.011 kg·m² (wrist) to 0.033 (joint1, arm stretched). Kd·dt/I ≤ 0.56
 * here, and Kp = 4 gives a natural frequency of 11 to 19 rad/s, damping ratio 0.4 to 0.7.
 * Measured with the closed loop of test/control/policies.test.ts (1 kHz rigid-body dynamics, URDF
 * damping and smoothed friction, gravity compensation, torque scale 0.5·effort), seeds 1000–1199: 200 of 200 reach
 * episodes of 2 s within 2 cm, median 0.5 mm, worst 2 mm; joint speed peaks at half the limit.
 * That is on a fresh state: with the state two control periods late (a retried bus read) these
 * gains ring on the wrist, so the control stack never uses them; it passes the gains derived in
 * src/control/arm-gains.ts (ControlStack.gains), which stay stable there. These are the class's
 * default for tests and scripts that build a PdPolicy on this arm by hand.
 */
export const ARM_PD_GAINS: Readonly<{ kp: readonly number[]; kd: readonly number[] }> = Object.freeze({
  kp: [4, 4, 4, 4],
  kd: [0.3, 0.3, 0.3, 0.3],
});

/** The proportional term's default limit: a cruise speed of this fraction of each URDF velocity limit. */
export const PD_CRUISE_SPEED_FRACTION = 0.4;

export interface PdPolicyOptions {
  /** Proportional gains (N·m/rad), one per joint or one for all; defaults to ARM_PD_GAINS.kp. */
  kp?: number | readonly number[];
  /** Derivative gains (N·m·s/rad), one per joint or one for all; defaults to ARM_PD_GAINS.kd. */
  kd?: number | readonly number[];
  /**
   * Cruise speed on long moves as a fraction of each joint's URDF velocity limit (default
   * PD_CRUISE_SPEED_FRACTION); Infinity turns the limit off. See PdPolicy.
   */
  cruiseSpeedFraction?: number;
}

/**
 * Joint-space PD to a target pose: τ = Kp·(q* − q) − Kd·q̇, then action = clamp((τ + actionDamping·q̇)
 * / torqueScale, −1, 1): the loop's own action damping counts towards Kd.
 * Gravity compensation is added by the control loop, not here.
 *
 * The proportional term is limited to ±pLimit per joint, pLimit = (damping + Kd)·v_cruise + friction
 * with the URDF's damping and friction and v_cruise = cruiseSpeedFraction · velocity limit: on a long
 * move the joint then cruises at about v_cruise instead of speeding up until the safety filter steps
 * in (the light distal joints would otherwise pass 30 rad/s against a 4.8 rad/s limit). Near the
 * target, where |Kp·(q* − q)| is below the limit, it is the plain PD.
 * The target is the episode's
 * goalPosition at reset() (or its startPosition when the task has none), or whatever setTarget()
 * was last given (teleop). For continuous joints the error is taken the short way round.
 */
export class PdPolicy implements Policy {
  readonly name = "pd";
  readonly kp: Float64Array;
  readonly kd: Float64Array;
  /** Limit on |Kp·(q* − q)| per joint (N·m). */
  readonly pLimit: Float64Array;
  /** The pose being tracked (rad or m); read every tick. */
  readonly target: Float64Array;
  private readonly continuous: Uint8Array;
  private readonly jointNames: string[];

  constructor(model: RobotModel, options: PdPolicyOptions = {}) {
    const n = model.dof;
    this.jointNames = model.joints.map((j) => j.name);
    const usesDefaults = options.kp === undefined || options.kd === undefined;
    if (usesDefaults && n !== ARM_PD_GAINS.kp.length) {
      throw new Error(
        `pd policy: the default gains are for the ${ARM_PD_GAINS.kp.length}-joint arm; model "${model.name}" has ${n} joints, pass kp and kd`,
      );
    }
    this.kp = gains("kp", options.kp ?? ARM_PD_GAINS.kp, n);
    this.kd = gains("kd", options.kd ?? ARM_PD_GAINS.kd, n);
    const cruise = options.cruiseSpeedFraction ?? PD_CRUISE_SPEED_FRACTION;
    if (!(cruise > 0)) throw new Error(`pd policy: cruiseSpeedFraction must be > 0, got ${cruise}`);
    this.pLimit = Float64Array.from(model.joints, (j, i) => {
      // Without viscous damping there is no cruise speed to aim for; no limit then.
      const viscous = j.damping + this.kd[i];
      return viscous > 0 ? viscous * cruise * j.velocity + j.friction : Number.POSITIVE_INFINITY;
    });
    this.continuous = Uint8Array.from(model.joints, (j) => (j.type === "continuous" ? 1 : 0));
    this.target = new Float64Array(n);
  }

  reset(episode: TaskEpisode): void {
    this.setTarget(episode.goalPosition ?? episode.startPosition);
  }

  /** Tracks a new pose from the next tick on (teleop calls this; it does not allocate). */
  setTarget(q: ArrayLike<number>): void {
    if (q.length !== this.target.length) {
      throw new Error(`pd policy: target has ${q.length} values; expected ${this.target.length}`);
    }
    for (let i = 0; i < q.length; i++) {
      if (!Number.isFinite(q[i])) {
        throw new Error(
          `pd policy: target[${i}] (${this.jointNames[i]}) is ${q[i]}; expected a finite number`,
        );
      }
    }
    for (let i = 0; i < q.length; i++) this.target[i] = q[i];
  }

  act(_obs: Float32Array, ctx: PolicyContext, out: Float32Array): void {
    const q = ctx.state.position;
    const qd = ctx.state.velocity;
    for (let i = 0; i < this.target.length; i++) {
      let error = this.target[i] - q[i];
      if (this.continuous[i] === 1) error = Math.atan2(Math.sin(error), Math.cos(error));
      const limit = this.pLimit[i];
      const p = Math.min(limit, Math.max(-limit, this.kp[i] * error));
      const tau = p - this.kd[i] * qd[i];
      const a = (tau + ctx.actionDamping[i] * qd[i]) / ctx.torqueScale[i];
      // NaN (a broken state) commands nothing rather than poisoning the command.
      out[i] = a > 1 ? 1 : a < -1 ? -1 : Number.isNaN(a) ? 0 : a;
    }
  }
}

function gains(field: string, value: number | readonly number[], n: number): Float64Array {
  const values = typeof value === "number" ? new Array<number>(n).fill(value) : value;
  if (values.length !== n) throw new Error(`pd policy: ${field} has ${values.length} values; expected ${n}`);
  values.forEach((g, i) => {
    if (!(g >= 0 && Number.isFinite(g)))
      throw new Error(`pd policy: ${field}[${i}] = ${g}; expected a finite number ≥ 0`);
  });
  return Float64Array.from(values);
}
