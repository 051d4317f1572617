/**
 * The gains the control stack uses, derived from the arm's dynamics instead of tuned for one arm.
 *
 * A joint-space gain acts on a joint through its effective inertia I_i = M_ii(q) (armature
 * included), which differs from arm to arm by three orders of magnitude (a desk servo's 0.01 kg·m²,
 * a collaborative arm's shoulder at several kg·m²) and, on one arm, from pose to pose. Each gain is
 * therefore a dimensionless number per control period times I_i / T (damping) or I_i / T²
 * (stiffness), with I_i the smallest effective inertia the joint has over its soft range (the
 * lightest case is the one that rings). Sampled at the control period T, with the torque held for
 * the period, velocity feedback d is stable for d·T / I < 2 and PD feedback (semi-implicit) for
 * kp·T²/I < 4 − 2·kd·T/I, when the state is fresh. A real state is not: a retried servo-bus read
 * or a ROS hop makes it one or two periods late, and the same gains then ring much sooner (the
 * loop's characteristic polynomial gains a factor z^k for k periods of delay; see loopIsStable).
 * The derived gains are stable with the state up to STATE_DELAY_PERIODS periods late; a gain the
 * user sets is refused where it is unstable on a fresh state and warned about where it is
 * unstable on a late one.
 *
 * The numbers: on urdf/arm.urdf at 50 Hz the dampings come, joint by joint, within 30% of those
 * tuned on that arm before they were derived (action damping 0.3, hold 0.05 N·m·s/rad): 0.27–0.36
 * and 0.043–0.057. The hand-tuned reset and PD gains (kp 4, kd 0.3) were not kept: on the wrist
 * they are unstable with the state two periods late (spectral radius 1.09), which latched the
 * velocity watchdog on a noisy servo bus; the derived ones are about a quarter as stiff.
 *
 * A setting given in the config (one value for all joints, or one per joint) replaces the derived
 * value and is checked against each joint; `mbpo-arm describe` prints what an arm gets.
 */
import type { Config } from "../config/config.js";
import { Dynamics } from "../robot/dynamics.js";
import type { RobotModel } from "../robot/types.js";
import { softRange } from "../robot/workspace.js";
import { Rng } from "../util/rng.js";

/** action_damping_i = ACTION_DAMPING_PER_PERIOD · I_i / T: a coasting joint's speed falls by ~40% per period. */
export const ACTION_DAMPING_PER_PERIOD = 0.5;
/** hold_damping_i = HOLD_DAMPING_PER_PERIOD · I_i / T: the hold between episodes only calms the arm. */
export const HOLD_DAMPING_PER_PERIOD = 0.08;
/**
 * Reset and PD bandwidth ω = RESET_BANDWIDTH_PER_PERIOD / T (10 rad/s at 50 Hz), damping ratio
 * RESET_DAMPING_RATIO: the loop's spectral radius is 0.85, 0.79 and 0.89 with the state 0, 1 and 2
 * periods late (at 0.38 / T it was 0.68, 0.88 and 1.10: unstable at two).
 */
export const RESET_BANDWIDTH_PER_PERIOD = 0.2;
export const RESET_DAMPING_RATIO = 0.7;
/**
 * torque_rate_limit_i = effort_i / TORQUE_RISE_TIME: every joint may go from zero to its full
 * effort in 41 ms, as urdf/arm.urdf's 4.1 N·m servos do at the 100 N·m/s tuned on them. A fixed
 * N·m/s would let a desk servo jump or hold a 150 N·m shoulder to 2 N·m per tick.
 */
export const TORQUE_RISE_TIME = 0.041;
/**
 * The derived gains stay stable with the joint state up to this many control periods old (a servo
 * bus read that needed a retry, a DDS hop); a gain set in the config that would not is warned about.
 */
export const STATE_DELAY_PERIODS = 2;
/** Poses sampled over the soft range for the smallest effective inertia (plus the range's middle). */
const INERTIA_SAMPLES = 256;

export interface ArmGains {
  /** Smallest effective inertia of each joint over its soft range (kg·m², or kg for a prismatic joint). */
  inertia: number[];
  actionDamping: number[];
  holdDamping: number[];
  resetKp: number[];
  resetKd: number[];
  /** Largest change of effort per second (N·m/s) per joint: the safety filter's torque_rate_limit. */
  torqueRateLimit: number[];
}

/** min over poses in the soft range of M_ii(q), per joint (deterministic: a fixed seed). */
export function smallestEffectiveInertia(model: RobotModel, dynamics: Dynamics): number[] {
  const n = model.dof;
  const { lower, upper } = softRange(model);
  const rng = new Rng(1, 9101);
  const q = new Float64Array(n);
  const M = new Float64Array(n * n);
  const smallest = new Array<number>(n).fill(Number.POSITIVE_INFINITY);
  for (let s = 0; s <= INERTIA_SAMPLES; s++) {
    for (let i = 0; i < n; i++) q[i] = s === 0 ? 0.5 * (lower[i] + upper[i]) : rng.range(lower[i], upper[i]);
    dynamics.massMatrix(q, M);
    for (let i = 0; i < n; i++) smallest[i] = Math.min(smallest[i], M[i * n + i]);
  }
  return smallest;
}

/** The derived gains of an arm at a control rate. */
export function deriveArmGains(model: RobotModel, dynamics: Dynamics, controlRateHz: number): ArmGains {
  const T = 1 / controlRateHz;
  const inertia = smallestEffectiveInertia(model, dynamics);
  const omega = RESET_BANDWIDTH_PER_PERIOD / T;
  return {
    inertia,
    actionDamping: inertia.map((I) => round((ACTION_DAMPING_PER_PERIOD * I) / T)),
    holdDamping: inertia.map((I) => round((HOLD_DAMPING_PER_PERIOD * I) / T)),
    resetKp: inertia.map((I) => round(omega * omega * I)),
    resetKd: inertia.map((I) => round(2 * RESET_DAMPING_RATIO * omega * I)),
    torqueRateLimit: model.joints.map((j) => round(j.effort / TORQUE_RISE_TIME)),
  };
}

/** Three significant digits: the gains print and log as the numbers they are. */
function round(x: number): number {
  return Number(x.toPrecision(3));
}

/** A setting given as one value for every joint or one per joint, as a per-joint array. */
export function perJoint(
  value: number | readonly number[],
  n: number,
  name: string,
  joints: readonly string[],
): number[] {
  if (typeof value === "number") return new Array<number>(n).fill(value);
  if (value.length !== n)
    throw new Error(
      `${name}: ${value.length} values for ${n} joints (${joints.join(", ")}); give one value or one per joint`,
    );
  return [...value];
}

/**
 * Whether every root of a real polynomial (coefficients from the highest power down) lies inside
 * the unit circle: the Schur–Cohn recursion. Each step divides out one reflection coefficient
 * a_0 / a_n, which must stay below 1 in magnitude.
 */
export function rootsInsideUnitCircle(coefficients: readonly number[]): boolean {
  let a = [...coefficients];
  while (a.length > 1) {
    const lead = a[0];
    const last = a[a.length - 1];
    if (!(Math.abs(last) < Math.abs(lead))) return false;
    const n = a.length - 1;
    // p(z)·a_n − p*(z)·a_0, divided by z: one degree lower, the same count of roots inside.
    a = a.slice(0, n).map((c, i) => lead * c - last * a[n - i]);
  }
  return true;
}

/**
 * Stability of one joint's sampled loop with the state `delay` periods old, in the normalized
 * gains p = kp·T²/I and d = kd·T/I (torque held over each period, semi-implicit position update):
 * with X = q/T and V = q̇ the loop is V⁺ = V − p·X₋ₖ − d·V₋ₖ, X⁺ = X + V⁺, whose characteristic
 * polynomial is z^k·(z − 1)² + (p + d)·z − d. Pure velocity feedback (p = 0) leaves the factor
 * (z − 1) of a position that is not held; the rest, z^k·(z − 1) + d, must be stable.
 */
export function loopIsStable(p: number, d: number, delay: number): boolean {
  const zk = new Array<number>(delay).fill(0);
  if (p === 0)
    return rootsInsideUnitCircle([1, -1, ...zk].map((c, i, all) => (i === all.length - 1 ? c + d : c)));
  // z^k·(z² − 2z + 1) + (p + d)·z − d
  const c = [1, -2, 1, ...zk];
  const m = c.length - 1;
  c[m - 1] += p + d;
  c[m] -= d;
  return rootsInsideUnitCircle(c);
}

/**
 * Why a gain is unstable on a joint, or undefined: velocity feedback (kp = 0) or a PD (kp, kd)
 * whose sampled loop has a root on or outside the unit circle for the joint's smallest effective
 * inertia, with the state `delay` control periods old (0: fresh, where the bounds are d·T/I < 2
 * and kp·T²/I < 4 − 2·kd·T/I).
 */
export function instability(
  kind: "damping" | "pd",
  kp: number,
  kd: number,
  inertia: number,
  controlRateHz: number,
  delay = 0,
): string | undefined {
  const T = 1 / controlRateHz;
  const d = (kd * T) / inertia;
  const p = kind === "damping" ? 0 : (kp * T * T) / inertia;
  if (loopIsStable(p, d, delay)) return undefined;
  const late = delay === 0 ? "" : ` with the state ${delay} period${delay === 1 ? "" : "s"} late`;
  if (p === 0) {
    const bound = delay === 0 ? `; below ${round((2 * inertia) / T)}` : "";
    return `${kd} N·m·s/rad over a ${round(T * 1000)} ms period on an effective inertia of ${round(inertia)} is unstable${late} (d·T/I = ${round(d)}${delay === 0 ? " ≥ 2" : ""}${bound})`;
  }
  const bound = delay === 0 ? ` must be < 4 − 2·kd·T/I = ${round(4 - 2 * d)}` : `, kd·T/I = ${round(d)}`;
  return `kp ${kp}, kd ${kd} over a ${round(T * 1000)} ms period on an effective inertia of ${round(inertia)} are unstable${late} (kp·T²/I = ${round(p)}${bound})`;
}

/** The settings the gains come from (a whole Config will do). */
export type GainSettings = Pick<Config, "control_rate_hz" | "action_damping" | "hold_damping"> & {
  reset?: Partial<Pick<Config["reset"], "kp" | "kd">>;
  safety?: Partial<Pick<Config["safety"], "use_soft_limits" | "torque_rate_limit">>;
};

/** The gains a run uses: the config's where it sets them, derived from the arm elsewhere; checked. */
export interface ResolvedGains extends ArmGains {
  /** Which of them the config set ("action_damping", ...); the rest are derived. */
  fromConfig: string[];
  /**
   * A set gain that is stable on a fresh state but not with the state up to STATE_DELAY_PERIODS
   * periods late, one line per setting and joint (derived gains never are).
   */
  warnings: string[];
}

/**
 * The config's gains for this arm: each unset one derived (deriveArmGains), each set one expanded
 * per joint; every one checked for stability on every joint, on a fresh state (an error naming the
 * setting and the joint) and on a late one (a warning, in `warnings`).
 */
export function resolveArmGains(
  config: GainSettings,
  model: RobotModel,
  dynamics = new Dynamics(model),
): ResolvedGains {
  const rate = config.control_rate_hz;
  const derived = deriveArmGains(model, dynamics, rate);
  const names = model.joints.map((j) => j.name);
  const n = model.dof;
  const fromConfig: string[] = [];
  const pick = (name: string, value: number | readonly number[] | undefined, fallback: number[]) => {
    if (value === undefined) return fallback;
    fromConfig.push(name);
    return perJoint(value, n, name, names);
  };
  const gains: ResolvedGains = {
    inertia: derived.inertia,
    actionDamping: pick("action_damping", config.action_damping, derived.actionDamping),
    holdDamping: pick("hold_damping", config.hold_damping, derived.holdDamping),
    resetKp: pick("reset.kp", config.reset?.kp, derived.resetKp),
    resetKd: pick("reset.kd", config.reset?.kd, derived.resetKd),
    torqueRateLimit: pick(
      "safety.torque_rate_limit",
      config.safety?.torque_rate_limit,
      derived.torqueRateLimit,
    ),
    fromConfig,
    warnings: [],
  };
  for (let i = 0; i < n; i++) {
    const I = gains.inertia[i];
    // The policy's command adds the URDF's own viscous damping on top; the arm's friction helps.
    const checks = (delay: number): [string, string | undefined][] => [
      ["action_damping", instability("damping", 0, gains.actionDamping[i], I, rate, delay)],
      ["hold_damping", instability("damping", 0, gains.holdDamping[i], I, rate, delay)],
      ["reset.kp/kd", instability("pd", gains.resetKp[i], gains.resetKd[i], I, rate, delay)],
    ];
    for (const [name, why] of checks(0)) {
      if (why !== undefined)
        throw new Error(
          `${name} on joint "${names[i]}": ${why} at ${rate} Hz; lower it or leave it unset to derive it`,
        );
    }
    const warned = new Set<string>();
    for (let delay = 1; delay <= STATE_DELAY_PERIODS; delay++) {
      for (const [name, why] of checks(delay)) {
        if (why === undefined || warned.has(name)) continue;
        warned.add(name);
        gains.warnings.push(
          `${name} on joint "${names[i]}": ${why} at ${rate} Hz (a retried bus read or a ROS hop does that); ` +
            "lower it or leave it unset to derive it",
        );
      }
    }
    const kv = (config.safety?.use_soft_limits ?? true) ? model.joints[i].safety?.kVelocity : undefined;
    const whyKv = kv === undefined ? undefined : instability("damping", 0, kv, I, rate);
    if (whyKv !== undefined)
      throw new Error(`<safety_controller k_velocity> of joint "${names[i]}": ${whyKv} at ${rate} Hz`);
  }
  return gains;
}
