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
   * joint: |out − previous out| ≤ torqueRateLimit·dt; one value for every joint or one per joint.
   * Default 100 (2 N·m per tick at 50 Hz, about half of an XM430's stall torque). +Infinity
   * switches the rate limit off. The safe stop and the final hard rules are not rate-limited (see
   * filter.ts).
   */
  torqueRateLimit: number | readonly number[];
  /**
   * A joint state older than this (s, on the driver's clock), or stamped more than this far in the
   * future (the clocks disagree, so freshness is unknown), is stale: the command is ignored and the
   * arm held (see staleGrace), and a `stale_state` fault latches once it has been stale for longer
   * than staleGrace. Default 0.1 s: five ticks at 50 Hz.
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
   * How long (s) the filter holds the arm on its last trusted state while the joint state is stale
   * (older than staleTimeout, or stamped further than that in the future), before a `stale_state`
   * fault latches. During the grace the command is ignored and the arm gets the gravity torque of
   * the last trusted pose, plus a brake on the last trusted velocity that fades as the model says
   * the arm slows down; a fresh state ends the grace with nothing latched. Default 0.5 s: an
   * outage of 0.3 s with the arm outstretched sags it by well under 1 cm, and one late sample never
   * latches. 0: latch at once.
   */
  staleGrace: number;
  /**
   * Use the robot's dynamics (the filter's Dynamics, when it has one) to keep every joint's next
   * velocity within its hard limit and able to brake before its hard position limit, for the whole
   * torque vector (dynamic-limits.ts). Default true; false leaves only the per-joint rules.
   */
  dynamicLimits: boolean;
  /**
   * Fraction of each URDF velocity limit the dynamic limits keep free, for model error, the
   * linearisation over one period and state latency. Default 0.1 (4.32 rad/s for 4.8).
   */
  velocityHeadroom: number;
  /**
   * γ in (0, 1]: the fraction of the remaining velocity headroom that one control period may use
   * (dynamic-limits.ts). Smaller is more robust to a wrong inertia (the bound holds while the true
   * M⁻¹ is at most 1/γ times the model's); 1 lets a joint reach the bound in one period. Default 0.5.
   */
  approachRate: number;
  /**
   * ρ in [0, 1): how far (as a fraction) the arm's masses, inertias and armatures may be off the
   * URDF's. The dynamic limits hold for every torque gain between 1/(1 + ρ) and 1/(1 − ρ)
   * (dynamic-limits.ts). Default 0.3: the rotor inertia is an estimate, the links are not weighed.
   */
  modelError: number;
  /** Distance (rad, or m) inside each hard position limit where the dynamic limits aim to stop. Default 0.03. */
  positionHeadroom: number;
  /**
   * Fraction of the deceleration that the effort limit can give against gravity, at the heaviest
   * pose, that the position barrier plans to brake with. Default 0.3: the rest is margin for a
   * wrong inertia and for the other joints' share of the effort.
   */
  brakeFraction: number;
  /**
   * Bandwidth ω (rad/s) of the safe stop when the filter has the dynamics: it brakes with the
   * deceleration −2ω·q̇ through the model (τ = M(q)·a + h(q, q̇) + D·q̇), and once every joint is
   * slower than 0.05 rad/s it holds that pose with a = ω²·(q_hold − q) − 2ω·q̇. Critically damped,
   * and stable at 50 Hz while the true inertia is within a factor of two of the model's (2ωT = 0.6
   * at ω = 15 rad/s, T = 20 ms). Default 15.
   */
  safeStopBandwidth: number;
  /**
   * Viscous gain of the safe stop of a filter WITHOUT dynamics (unit tests, tools):
   * τ = −safeStopDamping·q̇ + gravity (N·m·s/rad). Default 0.02. The stack always gives the filter
   * the model, and then safeStopBandwidth applies instead.
   *
   * Why so small: the safe stop is held for the whole period T (zero-order hold). For one joint of
   * effective inertia I (link inertia plus armature) with its own viscous damping c, v⁺ = p·v with
   * p = e^(−cT/I) − (b/c)(1 − e^(−cT/I)); stable iff b < c·coth(cT/2I), i.e. b < 2I/T without
   * damping, and b ≤ c is stable for any inertia. The arm's joints have c = 0.02–0.03.
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
  staleGrace: 0.5,
  dynamicLimits: true,
  velocityHeadroom: 0.1,
  approachRate: 0.5,
  modelError: 0.3,
  positionHeadroom: 0.03,
  brakeFraction: 0.3,
  safeStopBandwidth: 15,
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
  const rates = typeof c.torqueRateLimit === "number" ? [c.torqueRateLimit] : c.torqueRateLimit;
  if (!Array.isArray(rates) || rates.length === 0 || !rates.every((r) => isNumber(r) && r > 0)) {
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
  if (!isNumber(c.staleGrace) || !(c.staleGrace >= 0 && Number.isFinite(c.staleGrace))) {
    bad("staleGrace", "a finite number ≥ 0 s", c.staleGrace);
  }
  if (typeof c.dynamicLimits !== "boolean") bad("dynamicLimits", "true or false", c.dynamicLimits);
  if (!isNumber(c.velocityHeadroom) || !(c.velocityHeadroom >= 0 && c.velocityHeadroom < 1)) {
    bad("velocityHeadroom", "a fraction in [0, 1)", c.velocityHeadroom);
  }
  if (!isNumber(c.approachRate) || !(c.approachRate > 0 && c.approachRate <= 1)) {
    bad("approachRate", "in (0, 1]", c.approachRate);
  }
  if (!isNumber(c.modelError) || !(c.modelError >= 0 && c.modelError < 1)) {
    bad("modelError", "a fraction in [0, 1)", c.modelError);
  }
  if (!isNumber(c.positionHeadroom) || !(c.positionHeadroom >= 0 && Number.isFinite(c.positionHeadroom))) {
    bad("positionHeadroom", "a finite number ≥ 0", c.positionHeadroom);
  }
  if (!isNumber(c.brakeFraction) || !(c.brakeFraction > 0 && c.brakeFraction <= 1)) {
    bad("brakeFraction", "in (0, 1]", c.brakeFraction);
  }
  if (!isNumber(c.safeStopBandwidth) || !(c.safeStopBandwidth > 0 && Number.isFinite(c.safeStopBandwidth))) {
    bad("safeStopBandwidth", "a finite number > 0 rad/s", c.safeStopBandwidth);
  }
  if (typeof c.useSoftLimits !== "boolean") bad("useSoftLimits", "true or false", c.useSoftLimits);
}
