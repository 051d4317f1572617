/**
 * The loop's own torque sources, used between episodes and for resets. Gravity compensation is
 * added by the control loop, so these only supply damping and feedback terms.
 */
import type { TorqueSource } from "./loop.js";

/** Hold: joint damping only (τ = −d_i·q̇_i), so with gravity compensation the arm rests where it is. */
export function holdController(damping: readonly number[]): TorqueSource {
  const d = Float64Array.from(damping);
  return (state, out) => {
    for (let i = 0; i < out.length; i++) out[i] = -d[i] * state.velocity[i];
  };
}

/**
 * A move to a joint pose along a straight line in joint space at a bounded speed: the reference
 * q_ref walks from the start pose to the target, every joint arriving together, the fastest at
 * `speed`; the torque is a PD on the moving reference, τ = Kp·(q_ref − q) + Kd·(q̇_ref − q̇).
 * A PD straight to a far target would ask for a large torque at once and swing the light distal
 * joints past their velocity limits; the walking reference keeps the error, and so the torque,
 * small throughout.
 */
export class JointMove {
  readonly reference: Float64Array;
  readonly referenceVelocity: Float64Array;
  readonly target: Float64Array;
  /** Per-joint gains (N·m/rad, N·m·s/rad). */
  readonly kp: Float64Array;
  readonly kd: Float64Array;
  /** The torque source for ControlLoop.tick; call advance() once per tick. */
  readonly source: TorqueSource;
  private remaining = 0;

  constructor(
    dof: number,
    kpPerJoint: readonly number[],
    kdPerJoint: readonly number[],
    readonly speed: number,
  ) {
    if (!(speed > 0)) throw new Error(`JointMove: speed must be > 0, got ${speed}`);
    if (kpPerJoint.length !== dof || kdPerJoint.length !== dof)
      throw new Error(
        `JointMove: kp and kd need ${dof} values, got ${kpPerJoint.length} and ${kdPerJoint.length}`,
      );
    const kp = Float64Array.from(kpPerJoint);
    const kd = Float64Array.from(kdPerJoint);
    this.kp = kp;
    this.kd = kd;
    this.reference = new Float64Array(dof);
    this.referenceVelocity = new Float64Array(dof);
    this.target = new Float64Array(dof);
    this.source = (state, out) => {
      for (let i = 0; i < out.length; i++) {
        out[i] =
          kp[i] * (this.reference[i] - state.position[i]) +
          kd[i] * (this.referenceVelocity[i] - state.velocity[i]);
      }
    };
  }

  /** Starts a move from `from` (the measured pose) to `to`; returns its planned duration (s). */
  start(from: ArrayLike<number>, to: ArrayLike<number>): number {
    let longest = 0;
    for (let i = 0; i < this.target.length; i++) {
      this.reference[i] = from[i];
      this.target[i] = to[i];
      longest = Math.max(longest, Math.abs(to[i] - from[i]));
    }
    this.remaining = longest / this.speed;
    const duration = this.remaining;
    for (let i = 0; i < this.target.length; i++) {
      this.referenceVelocity[i] = duration > 0 ? (to[i] - from[i]) / duration : 0;
    }
    return duration;
  }

  /** Moves the reference on by dt seconds; at the end it rests on the target. */
  advance(dt: number): void {
    if (this.remaining <= dt) {
      this.remaining = 0;
      this.reference.set(this.target);
      this.referenceVelocity.fill(0);
      return;
    }
    this.remaining -= dt;
    for (let i = 0; i < this.reference.length; i++) this.reference[i] += this.referenceVelocity[i] * dt;
  }

  /** Whether the reference has reached the target (the arm may still be settling). */
  get referenceArrived(): boolean {
    return this.remaining === 0;
  }
}

/** True when every joint is within `tolerance` of the target and moving slower than `speed`. */
export function atPose(
  position: Float64Array,
  velocity: Float64Array,
  target: Float64Array,
  tolerance: number,
  speed: number,
): boolean {
  for (let i = 0; i < target.length; i++) {
    if (!(Math.abs(position[i] - target[i]) <= tolerance && Math.abs(velocity[i]) <= speed)) return false;
  }
  return true;
}
