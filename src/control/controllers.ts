/**
 * The loop's own torque sources, used between episodes and for resets. Gravity compensation is
 * added by the control loop, so these only supply damping and feedback terms.
 */
import type { TorqueSource } from "./loop.js";

/** Hold: joint damping only (τ = −d·q̇), so with gravity compensation the arm rests where it is. */
export function holdController(damping: number): TorqueSource {
  return (state, out) => {
    for (let i = 0; i < out.length; i++) out[i] = -damping * state.velocity[i];
  };
}

/** Joint-space PD to a target pose: τ = Kp·(q* − q) − Kd·q̇. The target array is read every tick. */
export function jointPdController(target: Float64Array, kp: number, kd: number): TorqueSource {
  return (state, out) => {
    for (let i = 0; i < out.length; i++) {
      out[i] = kp * (target[i] - state.position[i]) - kd * state.velocity[i];
    }
  };
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
