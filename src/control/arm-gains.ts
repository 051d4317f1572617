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
 * kp·T²/I < 4 − 2·kd·T/I; the checks below apply these to values a user sets.
 *
 * The numbers: on urdf/arm.urdf at 50 Hz they give, joint by joint, within 30% of the gains tuned
 * on that arm before they were derived (action damping 0.3, hold 0.05, reset and PD kp 4 and kd 0.3
 * N·m(·s)/rad for every joint): 0.27–0.36, 0.043–0.057, 3.9–5.1 and 0.29–0.38.
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
/** Reset and PD bandwidth ω = RESET_BANDWIDTH_PER_PERIOD / T (19 rad/s at 50 Hz), damping ratio RESET_DAMPING_RATIO. */
export const RESET_BANDWIDTH_PER_PERIOD = 0.38;
export const RESET_DAMPING_RATIO = 0.7;
/**
 * torque_rate_limit_i = effort_i / TORQUE_RISE_TIME: every joint may go from zero to its full
 * effort in 41 ms, as urdf/arm.urdf's 4.1 N·m servos do at the 100 N·m/s tuned on them. A fixed
 * N·m/s would let a desk servo jump or hold a 150 N·m shoulder to 2 N·m per tick.
 */
export const TORQUE_RISE_TIME = 0.041;
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
 * Why a gain is unstable on a joint, or undefined: velocity feedback d with d·T/I ≥ 2, or a PD
 * (kp, kd) outside kp·T²/I < 4 − 2·kd·T/I, for the joint's smallest effective inertia I.
 */
export function instability(
  kind: "damping" | "pd",
  kp: number,
  kd: number,
  inertia: number,
  controlRateHz: number,
): string | undefined {
  const T = 1 / controlRateHz;
  const d = (kd * T) / inertia;
  if (kind === "damping" || kp === 0) {
    return d >= 2
      ? `${kd} N·m·s/rad over a ${round(T * 1000)} ms period on an effective inertia of ${round(inertia)} is unstable (d·T/I = ${round(d)} ≥ 2; below ${round((2 * inertia) / T)})`
      : undefined;
  }
  const p = (kp * T * T) / inertia;
  return p >= 4 - 2 * d || d >= 2
    ? `kp ${kp}, kd ${kd} over a ${round(T * 1000)} ms period on an effective inertia of ${round(inertia)} are unstable (kp·T²/I = ${round(p)} must be < 4 − 2·kd·T/I = ${round(4 - 2 * d)})`
    : undefined;
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
}

/**
 * The config's gains for this arm: each unset one derived (deriveArmGains), each set one expanded
 * per joint; every one checked for stability on every joint. Errors name the setting and the joint.
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
  };
  for (let i = 0; i < n; i++) {
    const I = gains.inertia[i];
    // The policy's command adds the URDF's own viscous damping on top; the arm's friction helps.
    const checks: [string, string | undefined][] = [
      ["action_damping", instability("damping", 0, gains.actionDamping[i], I, rate)],
      ["hold_damping", instability("damping", 0, gains.holdDamping[i], I, rate)],
      ["reset.kp/kd", instability("pd", gains.resetKp[i], gains.resetKd[i], I, rate)],
    ];
    for (const [name, why] of checks) {
      if (why !== undefined)
        throw new Error(
          `${name} on joint "${names[i]}": ${why} at ${rate} Hz; lower it or leave it unset to derive it`,
        );
    }
    const kv = (config.safety?.use_soft_limits ?? true) ? model.joints[i].safety?.kVelocity : undefined;
    const whyKv = kv === undefined ? undefined : instability("damping", 0, kv, I, rate);
    if (whyKv !== undefined)
      throw new Error(`<safety_controller k_velocity> of joint "${names[i]}": ${whyKv} at ${rate} Hz`);
  }
  return gains;
}
