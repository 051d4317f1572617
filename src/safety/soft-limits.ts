/**
 * Soft joint limits for an effort-controlled joint, with the semantics of ros2_control's
 * joint_limits (the effort soft-limits handle of joint_limits_interface, and the effort branch of
 * JointSoftLimiter), written here from the law, not from their code:
 *
 *   velocity bounds  v_lo = clamp(−k_position·(q − soft_lower), −v_max, v_max)
 *                    v_hi = clamp(−k_position·(q − soft_upper), −v_max, v_max)
 *   effort bounds    e_lo = clamp(−k_velocity·(q̇ − v_lo), −e_max, e_max)
 *                    e_hi = clamp(−k_velocity·(q̇ − v_hi), −e_max, e_max)
 *   command          τ = clamp(τ, e_lo, e_hi)
 *
 * Inside the soft range at low speed the bounds are wide (v_lo < 0 < v_hi, so e_lo < 0 < e_hi); near
 * or past a soft limit the velocity bound on that side turns towards the inside and the effort bound
 * becomes a brake proportional to how much the joint moves faster than it may. A continuous joint
 * has no position limits: v_lo, v_hi = ∓v_max, so only the velocity limit is softened.
 *
 * Gravity. The command that reaches the filter already contains gravity compensation g (the torque
 * that holds the arm still). Bounds on the raw effort treat gravity as if it were no load: at rest
 * a distance d past the soft upper limit they allow at most τ = −k_velocity·k_position·d, so a
 * command that pushes outwards on a joint that gravity also pulls outwards (g < 0 there) settles
 * where k_velocity·k_position·d = |g| — for this arm 0.83 N·m / (1.5·10) ≈ 0.055 rad past the soft
 * limit, more than half-way to the hard one — and a joint that gravity pulls inwards cannot be held
 * closer than g/(k_velocity·k_position) to its soft limit. So we apply the law to the effort net of
 * gravity: both bounds are shifted by g,
 *
 *   e_lo = clamp(−k_velocity·(q̇ − v_lo) + g, −e_max, e_max),   likewise e_hi,
 *
 * which makes the soft limit behave on a loaded arm as ros2_control's does on a weightless one.
 * With g = 0 (no gravity compensation) this is exactly ros2_control's law. The final hard rules in
 * filter.ts apply after this and do not depend on g being right.
 *
 * What we leave out: the newer JointSoftLimiter also forces both velocity bounds to ±1°/s once the
 * joint is past a soft limit, and to zero past a hard limit; we keep the plain linear law (the
 * filter's hard rules and watchdog cover the region past the hard limit).
 */
import type { JointSpec } from "../robot/types.js";

/** min(max(x, lo), hi); lo ≤ hi is the caller's promise. */
export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

/**
 * The soft velocity bounds [v_lo, v_hi] of a joint at position q, written into out[0], out[1].
 * A joint without a <safety_controller>, or a continuous joint, gets ∓v_max.
 */
export function softVelocityBounds(joint: JointSpec, q: number, out: Float64Array): void {
  const vMax = joint.velocity;
  const soft = joint.safety;
  if (soft === undefined || joint.type === "continuous") {
    out[0] = -vMax;
    out[1] = vMax;
    return;
  }
  out[0] = clamp(-soft.kPosition * (q - soft.softLower), -vMax, vMax);
  out[1] = clamp(-soft.kPosition * (q - soft.softUpper), -vMax, vMax);
}

/**
 * The soft effort bounds [e_lo, e_hi] of a joint with a <safety_controller>, at position q and
 * velocity qd, for an effort limit effortMax (already scaled) and gravity torque g (0 for none),
 * written into out[0], out[1]. Needs kVelocity > 0 and, for a joint with position limits,
 * kPosition > 0 (the filter's constructor checks this), and finite q, qd, g.
 */
export function softEffortBounds(
  joint: JointSpec,
  q: number,
  qd: number,
  effortMax: number,
  g: number,
  out: Float64Array,
): void {
  softVelocityBounds(joint, q, out);
  const kVelocity = joint.safety === undefined ? 0 : joint.safety.kVelocity;
  if (kVelocity === 0) {
    // No soft limit on this joint: only the effort limit.
    out[0] = -effortMax;
    out[1] = effortMax;
    return;
  }
  const vLo = out[0];
  const vHi = out[1];
  out[0] = clamp(-kVelocity * (qd - vLo) + g, -effortMax, effortMax);
  out[1] = clamp(-kVelocity * (qd - vHi) + g, -effortMax, effortMax);
}
