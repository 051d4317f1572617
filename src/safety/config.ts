/**
 * Settings of the safety filter, in SI units. A plain object so that a ROS 2 parameter file, the
 * CLI and tests can all build one; validateSafetyConfig() checks it once, in the filter's
 * constructor, and names the first bad field.
 */

export interface SafetyConfig {
  /**
   * Fraction of each joint's URDF `<limit effort>` that may ever be commanded, in (0, 1].
   * Default 1.0. Every output, the safe stop included, is clamped to ±effort·effortScale.
   */
  effortScale: number;
  /**
   * Largest change of the commanded effort per second (N·m/s, or N/s for a prismatic joint), per
   * joint: |out − previous out| ≤ torqueRateLimit·dt. Default 100 (2 N·m per tick at 50 Hz, about
   * half of an XM430's stall torque). +Infinity switches the rate limit off. The safe stop and the
   * final hard rules are not rate-limited (see filter.ts).
   */
  torqueRateLimit: number;
  /**
   * A joint state older than this (s, on the driver's clock) latches a `stale_state` fault; so does
   * one stamped more than this far in the future (the clocks disagree, so freshness is unknown).
   * Default 0.1 s: five ticks at 50 Hz.
   */
  staleTimeout: number;
  /**
   * How far (rad, or m for a prismatic joint) a measured position may lie beyond a hard limit before
   * a `position_out_of_range` fault latches. Default 0.05. Between the limit and limit + margin the
   * filter keeps running and the hard rule forbids effort that pushes further out.
   */
  positionMargin: number;
  /**
   * How far beyond the URDF velocity limit a measured velocity may be before a
   * `velocity_out_of_range` fault latches, as a FRACTION of that limit: the fault latches when
   * |q̇| > velocity·(1 + velocityMargin). Default 0.25 (6.0 rad/s for a 4.8 rad/s joint). A
   * fraction, not an absolute value, so that one setting suits fast and slow joints alike.
   */
  velocityMargin: number;
  /**
   * Viscous gain of the safe stop, τ = −safeStopDamping·q̇ + gravity (N·m·s/rad). Default 0.02.
   *
   * Why so small: the safe stop is computed once per control tick and held (zero-order hold) for
   * the whole period T (20 ms at 50 Hz), although the simulator, or the servo, applies it at 1 kHz.
   * For one joint of effective inertia I with its own viscous damping c, the velocity after one
   * period is v⁺ = p·v with p = e^(−cT/I) − (b/c)·(1 − e^(−cT/I)); the stop is stable iff |p| < 1,
   * i.e. b < c·coth(cT/2I). Without physical damping (c → 0) this is b < 2I/T.
   * - coth ≥ 1, so b ≤ c is stable for ANY inertia at ANY control rate. The arm's joints have
   *   c = 0.02–0.03 N·m·s/rad (urdf/arm.urdf), so 0.02 is stable on all of them in every pose.
   * - The arm's smallest effective inertia (the smallest eigenvalue of M(q), the base joint with the
   *   arm folded) is about 9.4e-5 kg·m²; with c = 0.03 and T = 0.02 s, b = 0.05 gives p ≈ −1.7, an
   *   oscillation that grows until the effort limit clips it, while b = 0.02 gives p ≈ −0.66.
   *   Measured on the embedded simulator (1 kHz physics, 50 Hz safe stop, base joint folded in,
   *   starting at 3 rad/s): after 0.1 s, b = 0.02 leaves 5e-5 rad/s; b = 0.05 reaches 32 rad/s.
   * Raise it only together with the control rate, and keep b ≤ the smallest URDF damping (or
   * below 2·λmin(M)·/T where the joints have little damping of their own).
   */
  safeStopDamping: number;
  /**
   * Apply the URDF `<safety_controller>` soft limits (ros2_control joint_limits semantics, see
   * soft-limits.ts) to joints that have one. Default true.
   */
  useSoftLimits: boolean;
}

export const DEFAULT_SAFETY_CONFIG: Readonly<SafetyConfig> = Object.freeze({
  effortScale: 1.0,
  torqueRateLimit: 100,
  staleTimeout: 0.1,
  positionMargin: 0.05,
  velocityMargin: 0.25,
  safeStopDamping: 0.02,
  useSoftLimits: true,
});

/** Thrown for a bad SafetyConfig or a JointSpec the filter cannot make safe. */
export class SafetyConfigError extends Error {
  override name = "SafetyConfigError";
}

/** Fills in defaults and checks every field; throws a SafetyConfigError naming the first bad one. */
export function resolveSafetyConfig(config: Partial<SafetyConfig> = {}): SafetyConfig {
  const resolved: SafetyConfig = { ...DEFAULT_SAFETY_CONFIG };
  for (const key of Object.keys(config) as (keyof SafetyConfig)[]) {
    if (!(key in DEFAULT_SAFETY_CONFIG)) {
      throw new SafetyConfigError(`safety config: unknown field "${String(key)}"`);
    }
    const value = config[key];
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  validateSafetyConfig(resolved);
  return resolved;
}

export function validateSafetyConfig(c: SafetyConfig): void {
  const bad = (field: keyof SafetyConfig, expected: string, got: unknown): never => {
    throw new SafetyConfigError(`safety config: ${field} must be ${expected}, got ${String(got)}`);
  };
  const isNumber = (v: unknown): v is number => typeof v === "number" && !Number.isNaN(v);
  if (!isNumber(c.effortScale) || !(c.effortScale > 0 && c.effortScale <= 1)) {
    bad("effortScale", "in (0, 1]", c.effortScale);
  }
  if (!isNumber(c.torqueRateLimit) || !(c.torqueRateLimit > 0)) {
    bad("torqueRateLimit", "> 0 N·m/s (Infinity for none)", c.torqueRateLimit);
  }
  if (!isNumber(c.staleTimeout) || !(c.staleTimeout > 0 && Number.isFinite(c.staleTimeout))) {
    bad("staleTimeout", "a finite number > 0 s", c.staleTimeout);
  }
  if (!isNumber(c.positionMargin) || !(c.positionMargin >= 0 && Number.isFinite(c.positionMargin))) {
    bad("positionMargin", "a finite number ≥ 0", c.positionMargin);
  }
  if (!isNumber(c.velocityMargin) || !(c.velocityMargin >= 0 && Number.isFinite(c.velocityMargin))) {
    bad("velocityMargin", "a finite fraction ≥ 0", c.velocityMargin);
  }
  if (!isNumber(c.safeStopDamping) || !(c.safeStopDamping >= 0 && Number.isFinite(c.safeStopDamping))) {
    bad("safeStopDamping", "a finite number ≥ 0 N·m·s/rad", c.safeStopDamping);
  }
  if (typeof c.useSoftLimits !== "boolean") bad("useSoftLimits", "true or false", c.useSoftLimits);
}
