/**
 * The node's settings. The file is a ROS 2 parameter file (`mbpo_arm: ros__parameters: {...}`), so
 * one file serves `ros2 launch` and the CLI alike. Every setting has a default here; the file and
 * then command-line flags override them. An unknown key or a bad value is an error that names it.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { DYNAMIXEL_BAUDS } from "../drivers/dynamixel/control-table.js";
import {
  REALITY_PRESET_NAMES,
  REALITY_PRESETS,
  type RealityPreset,
  type RealityRanges,
} from "../drivers/sim-reality.js";
import type { DescriptionOptions } from "../robot/description.js";

export const NODE_NAME = "mbpo_arm";

const positive = z.number().positive();
const nonNegative = z.number().nonnegative();

/**
 * Bounds with no model behind them, wide enough for an 18 kg collaborative arm and tight enough to
 * catch a typo (an exponent too many). Whether a gain is stable for a given arm needs its inertias.
 */
const MAX_DAMPING = 100; // N·m·s/rad
const MAX_GAIN = 10_000; // N·m/rad

/** A damping gain: one value for every joint, or one per joint. */
const gain = z.union([nonNegative.lte(MAX_DAMPING), z.array(nonNegative.lte(MAX_DAMPING)).min(1)]);

/** Largest safe-stop bandwidth per hertz of control rate (ω·T ≤ 0.6; see safe_stop_bandwidth). */
const SAFE_STOP_BANDWIDTH_PER_HZ = 0.6;

const SafetySchema = z
  .object({
    /** Fraction of each joint's URDF effort limit that may be commanded, in (0, 1]. */
    effort_scale: z.number().gt(0).lte(1).default(1.0),
    /**
     * Largest change of commanded effort per second (N·m/s), at most 1e5 (an 18 kg arm's full
     * effort in 2 ms); one value, or one per joint. Unset: each joint's effort limit / 41 ms
     * (100 N·m/s on urdf/arm.urdf; src/control/arm-gains.ts).
     */
    torque_rate_limit: z.union([positive.lte(1e5), z.array(positive.lte(1e5)).min(1)]).optional(),
    /**
     * A joint state older than this (s) is stale: the arm is held on the last trusted state. At
     * least one control period (checked with the rate, below: a state read last period is the
     * normal case), at most 1 s.
     */
    stale_timeout: positive.lte(1).default(0.1),
    /** How long (s), at most 5, a stale state may last, the arm held blind, before a stale_state fault latches. */
    stale_grace: nonNegative.lte(5).default(0.5),
    /** How far past a hard position limit (rad or m, at most 0.5) the state may be before a fault latches. */
    position_margin: nonNegative.lte(0.5).default(0.05),
    /** How far past the velocity limit, as a fraction of it (at most 1: twice the limit), before a fault latches. */
    velocity_margin: nonNegative.lte(1).default(0.25),
    /** Keep every joint's next velocity within its hard limits through the dynamics, for the whole torque vector. */
    dynamic_limits: z.boolean().default(true),
    /** Fraction of each velocity limit the dynamic limits keep free (model error, latency). */
    velocity_headroom: z.number().gte(0).lt(1).default(0.1),
    /** Fraction, in (0, 1], of the remaining velocity headroom one control period may use. */
    approach_rate: z.number().gt(0).lte(1).default(0.5),
    /** Fraction by which the arm's masses, inertias and armatures may differ from the URDF's. */
    model_error: z.number().gte(0).lt(1).default(0.3),
    /** Distance (rad or m, at most 0.5) inside each hard position limit where braking aims to stop. */
    position_headroom: nonNegative.lte(0.5).default(0.03),
    /** Fraction, in (0, 1], of the achievable deceleration the position barrier plans with. */
    brake_fraction: z.number().gt(0).lte(1).default(0.3),
    /**
     * Bandwidth ω (rad/s) of the safe stop: brake with −2ω·q̇, then hold the pose (through the
     * model). At least 1 (a weaker brake barely stops the arm) and at most 0.6 × the control rate
     * (checked with it, below): the sampled brake-and-hold a = −ω²(q − q_hold) − 2ω·q̇, held for a
     * period T, is stable for ω·T < 1 with an exact model; at ω·T ≤ 0.6 its spectral radius stays
     * below 0.7 with the masses off by up to 1/(1 − 0.3), and at 0.7 that error makes it unstable.
     */
    safe_stop_bandwidth: z.number().gte(1).default(15),
    /** Apply the URDF <safety_controller> soft limits (ros2_control joint_limits semantics). */
    use_soft_limits: z.boolean().default(true),
  })
  .strict();

const range = z.tuple([nonNegative, nonNegative]);

/**
 * The twin's reality gap (src/drivers/sim-reality.ts): a preset, and any of its ranges replaced.
 * Drawn once per seed; the controller, the safety filter and the learner still see the URDF. The
 * range overrides have no default, so the ROS node does not declare them as parameters (it takes
 * the preset); they are settings of the params file given to the CLI's --config, and of -p.
 */
const RealitySchema = z
  .object({
    /** none: the twin is exactly the URDF; realistic: a Dynamixel desk arm's likely gap (sources in sim-reality.ts). */
    preset: z.enum(REALITY_PRESET_NAMES as [RealityPreset, ...RealityPreset[]]).default("none"),
    /** Each link's mass × (1 + U(−e, e)); at most safety.model_error (checked below). */
    mass_error: z.number().gte(0).lt(1).optional(),
    /** Each centre-of-mass coordinate + U(−e, e) (m, at most 0.05). */
    com_error: nonNegative.lte(0.05).optional(),
    /** Each link's rotational inertia × (1 + U(−e, e)); at most safety.model_error. */
    inertia_error: z.number().gte(0).lt(1).optional(),
    /** Each joint's armature × (1 + U(−e, e)); at most safety.model_error. */
    armature_error: z.number().gte(0).lt(1).optional(),
    /** Each joint's viscous damping × U(lo, hi), at most 10. */
    viscous_scale: range.optional(),
    /** Each joint's Coulomb friction × U(lo, hi), at most 10. */
    coulomb_scale: range.optional(),
    /** Produced torque = commanded × (1 + U(−e, e)), e at most 0.5. */
    torque_constant_error: nonNegative.lte(0.5).optional(),
    /** Largest produced torque, a fraction U(lo, hi) of the URDF effort limit, in (0, 1]. */
    current_limit: range.optional(),
    /** Age of the state read, U(lo, hi) control periods, at most 5. */
    latency_periods: range.optional(),
    /** Quantisation of the position (rad per count, at most 0.1) and velocity (rad/s per unit, at most 1) read. */
    position_resolution: nonNegative.lte(0.1).optional(),
    velocity_resolution: nonNegative.lte(1).optional(),
    /** Gaussian noise on the position (rad, at most 0.1) and velocity (rad/s, at most 1) read. */
    position_noise: nonNegative.lte(0.1).optional(),
    velocity_noise: nonNegative.lte(1).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const ranges: [string, [number, number] | undefined, number, number][] = [
      ["viscous_scale", r.viscous_scale, 0, 10],
      ["coulomb_scale", r.coulomb_scale, 0, 10],
      ["current_limit", r.current_limit, Number.MIN_VALUE, 1],
      ["latency_periods", r.latency_periods, 0, 5],
    ];
    for (const [key, value, min, max] of ranges) {
      if (value === undefined) continue;
      const [lo, hi] = value;
      if (!(lo >= min && lo <= hi && hi <= max))
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `must be [lo, hi] with ${min === 0 ? "0 ≤" : "0 <"} lo ≤ hi ≤ ${max}, got [${lo}, ${hi}]`,
        });
    }
  });

const SimSchema = z
  .object({
    /**
     * Physics steps per second under the control loop, in [50, 20000] and at least the control rate
     * (checked with it, below): below it the integrator skips control periods and blows up; far
     * above 20 kHz a run only gets slower (1e12 once hung `run` silently).
     */
    physics_rate_hz: z.number().gte(50).lte(20000).default(1000.0),
    /** Pace the simulator to wall-clock time (a stand-in for a real robot) instead of running flat out. */
    realtime: z.boolean().default(false),
    /**
     * The arm the twin simulates, when it is not the one the node believes (`urdf`): e.g. `urdf`
     * an identified description (mbpo-arm identify --out) and this the twin's truth. Same joints
     * in the same order. Unset: the node's urdf.
     */
    urdf: z.string().min(1).optional(),
    reality: RealitySchema.default(RealitySchema.parse({})),
  })
  .strict();

const DynamixelSchema = z
  .object({
    /** Serial device of the servo bus (e.g. a U2D2 adapter). */
    port: z.string().min(1).default("/dev/ttyUSB0"),
    /** Bus baud rate, one the servos offer (DYNAMIXEL_BAUDS); every servo must be set to it. */
    baud: z
      .number()
      .int()
      .refine((b) => DYNAMIXEL_BAUDS.includes(b), { message: `must be one of ${DYNAMIXEL_BAUDS.join(", ")}` })
      .default(1000000),
    /** Per-joint servo calibration (IDs, directions, zero offsets, torque constants). */
    calibration: z.string().min(1).default("calibration/arm.yaml"),
  })
  .strict();

const TaskSchema = z
  .object({
    name: z.string().default("reach"),
    /** Control steps per episode (at 50 Hz, 100 steps = 2 s; at most 10^7, 2.3 days at 50 Hz). */
    episode_steps: z.number().int().positive().lte(10_000_000).default(100),
    /** Distance (m, at most 1) within which the end effector counts as on target. */
    success_radius: positive.lte(1).default(0.02),
    /**
     * Goal joint poses lie within ±target_spread (rad, at most π) of the home pose (reach; larger:
     * more workspace). Unset: 0.263 m / the arm's reach, two digits (0.6 on urdf/arm.urdf, whose
     * reach is 0.438 m): every arm's targets then lie about as far from its tool, relative to its size.
     */
    target_spread: positive.lte(Math.PI).optional(),
    /**
     * The episodes' start pose (rad or m, one per joint, inside the soft limits). Unset: the middle
     * of each joint's soft range (urdf/arm.urdf: its tuned elbow-up pose, ARM_HOME_POSE).
     */
    home_pose: z.array(z.number()).min(1).optional(),
  })
  .strict();

const ResetSchema = z
  .object({
    /**
     * Joint-space PD gains (N·m/rad, N·m·s/rad) of the move back to an episode's start pose,
     * tracking a reference that walks there at `speed`; also the PD policy's. One value, or one
     * per joint. Unset: derived per joint from the arm's effective inertia (a 10 rad/s bandwidth
     * at 50 Hz, damping ratio 0.7, stable with the state up to two periods late); a value that is
     * unstable on a joint at the control rate is refused, one unstable on a late state warned about.
     */
    kp: z.union([nonNegative.lte(MAX_GAIN), z.array(nonNegative.lte(MAX_GAIN)).min(1)]).optional(),
    kd: gain.optional(),
    /**
     * Speed of the reference (rad/s or m/s, in [0.05, 10]) for the joint that moves furthest; the
     * rest keep pace. Slower would make a reset across the range take minutes (1e-9 hung `run`).
     */
    speed: z.number().gte(0.05).lte(10).default(1.0),
    /** The move ends when every joint is within this many rad (at most 0.5) of the start pose and nearly still. */
    tolerance: positive.lte(0.5).default(0.02),
    /** Time (s, at most 60) allowed to settle after the planned move before the episode starts anyway, with a warning. */
    timeout: positive.lte(60).default(2.0),
  })
  .strict();

export const ConfigSchema = z
  .object({
    /** The robot description, a .urdf or a .xacro; a relative path is taken from the package root. */
    urdf: z.string().default("urdf/arm.urdf"),
    /** Arguments of a .xacro description (name → value), as `xacro file name:=value` takes them. */
    xacro_args: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    /** Folders searched first for `$(find pkg)` / `package://pkg` (then AMENT_PREFIX_PATH, ROS_PACKAGE_PATH). */
    package_path: z.array(z.string().min(1)).optional(),
    /** The end-effector link; unset: `end_effector` if the description has one, else the last link of its longest chain. */
    tool_frame: z.string().min(1).optional(),
    driver: z.enum(["sim", "ros2", "dynamixel"]).default("sim"),
    /**
     * Policy (control loop) rate, in [10, 1000] Hz: below 10 Hz a torque held for a whole period
     * is not control (and 0.001 Hz once hung `run`). Physics and hardware run at their own rates
     * underneath.
     */
    control_rate_hz: z.number().gte(10).lte(1000).default(50.0),
    /** Add RNEA gravity compensation to every command before the safety filter. */
    gravity_compensation: z.boolean().default(true),
    /** Torque per unit of normalised action, as a fraction of each joint's effort limit. */
    action_torque_fraction: z.number().gt(0).lte(1).default(0.5),
    /**
     * Joint damping (N·m·s/rad) added to every policy command: τ = a·scale − action_damping·q̇
     * (+ gravity). The policy still commands torque, but the arm it drives coasts to rest instead
     * of drifting, so holding a pose asks for no action and every learner only has to learn where
     * to push. One value, or one per joint. Unset: derived per joint from the arm's effective
     * inertia (src/control/arm-gains.ts; `mbpo-arm describe` prints it); a value that would ring
     * on a joint at the control rate is refused, naming the joint.
     */
    action_damping: gain.optional(),
    /**
     * Age of the joint state when it arrives, in control periods (0 to 1; `mbpo-arm identify`
     * measures it). Above 0, each state read is predicted forward over that age with the URDF model
     * and the last command (src/control/delay-compensation.ts) before anything uses it.
     */
    state_latency: z.number().gte(0).lte(1).default(0),
    /** Joint damping (N·m·s/rad) of the hold between episodes, on top of gravity compensation; one, or one per joint. Unset: derived. */
    hold_damping: gain.optional(),
    seed: z.number().int().nonnegative().default(0),
    safety: SafetySchema.default(SafetySchema.parse({})),
    sim: SimSchema.default(SimSchema.parse({})),
    dynamixel: DynamixelSchema.default(DynamixelSchema.parse({})),
    task: TaskSchema.default(TaskSchema.parse({})),
    reset: ResetSchema.default(ResetSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    const rate = c.control_rate_hz;
    const relation = (path: string[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (c.sim.physics_rate_hz < rate)
      relation(
        ["sim", "physics_rate_hz"],
        `must be at least control_rate_hz (${rate} Hz), got ${c.sim.physics_rate_hz}`,
      );
    const reality = realityRanges(c);
    for (const [key, value] of [
      ["mass_error", reality.massError],
      ["inertia_error", reality.inertiaError],
      ["armature_error", reality.armatureError],
    ] as const) {
      if (value > c.safety.model_error)
        relation(
          ["sim", "reality", key],
          `must be at most safety.model_error (${c.safety.model_error}): the safety filter's limits hold only for a model that far off; raise safety.model_error to test a larger gap, got ${value}`,
        );
    }
    if (c.safety.stale_timeout < 1 / rate)
      relation(
        ["safety", "stale_timeout"],
        `must be at least one control period (${round(1 / rate)} s at ${rate} Hz), got ${c.safety.stale_timeout}`,
      );
    if (c.safety.safe_stop_bandwidth > SAFE_STOP_BANDWIDTH_PER_HZ * rate)
      relation(
        ["safety", "safe_stop_bandwidth"],
        `must be at most ${SAFE_STOP_BANDWIDTH_PER_HZ} × control_rate_hz (${round(SAFE_STOP_BANDWIDTH_PER_HZ * rate)} rad/s ` +
          `at ${rate} Hz: a stronger sampled brake oscillates), got ${c.safety.safe_stop_bandwidth}`,
      );
  });

/** How the config's description is read: xacro arguments, package folders, tool frame. */
export function descriptionOptions(config: Config): DescriptionOptions {
  return {
    ...(config.xacro_args !== undefined ? { xacroArgs: config.xacro_args } : {}),
    ...(config.package_path !== undefined ? { packagePaths: config.package_path } : {}),
    ...(config.tool_frame !== undefined ? { toolFrame: config.tool_frame } : {}),
  };
}

/** The ranges the twin's reality is drawn from: the preset's, with the ones the config sets replaced. */
export function realityRanges(config: Config): RealityRanges {
  const r = config.sim.reality;
  const preset = REALITY_PRESETS[r.preset] as RealityRanges;
  return {
    massError: r.mass_error ?? preset.massError,
    comError: r.com_error ?? preset.comError,
    inertiaError: r.inertia_error ?? preset.inertiaError,
    armatureError: r.armature_error ?? preset.armatureError,
    viscousScale: r.viscous_scale ?? preset.viscousScale,
    coulombScale: r.coulomb_scale ?? preset.coulombScale,
    torqueConstantError: r.torque_constant_error ?? preset.torqueConstantError,
    currentLimit: r.current_limit ?? preset.currentLimit,
    latencyPeriods: r.latency_periods ?? preset.latencyPeriods,
    positionResolution: r.position_resolution ?? preset.positionResolution,
    velocityResolution: r.velocity_resolution ?? preset.velocityResolution,
    positionNoise: r.position_noise ?? preset.positionNoise,
    velocityNoise: r.velocity_noise ?? preset.velocityNoise,
  };
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Defaults only. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}

/**
 * Validates the `ros__parameters` of a ROS 2 parameter file's text. Accepts the node name or the
 * `/**` wildcard as the top key. Dotted keys (`safety.effort_scale: 0.5`, as `ros2 param dump`
 * writes nested parameters) are expanded.
 */
export function parseConfig(text: string, source = "<config>"): Config {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return defaultConfig();
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(
      `${source}: expected a ROS 2 parameter file (a mapping "${NODE_NAME}: ros__parameters: ...")`,
    );
  }
  const top = doc as Record<string, unknown>;
  const nodeKey = [NODE_NAME, `/${NODE_NAME}`, "/**"].find((k) => k in top);
  if (nodeKey === undefined) {
    throw new ConfigError(
      `${source}: no "${NODE_NAME}" node section (found: ${Object.keys(top).join(", ") || "nothing"})`,
    );
  }
  const section = top[nodeKey] as Record<string, unknown> | null;
  const params = section?.["ros__parameters"];
  if (params === undefined || params === null || typeof params !== "object" || Array.isArray(params)) {
    throw new ConfigError(`${source}: "${nodeKey}" has no "ros__parameters" mapping`);
  }
  return validateConfig(expandDottedKeys(params as Record<string, unknown>), source);
}

export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read config file: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  return parseConfig(text, path);
}

/**
 * The boolean spellings rcl's parameter-file parser (rcl_yaml_param_parser) accepts beyond YAML
 * 1.2's true/false, so that one params file works for `ros2 launch` and for the CLI.
 */
const RCL_TRUE = new Set(["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"]);
const RCL_FALSE = new Set(["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"]);

/** Turns rcl's boolean spellings into booleans, only where the setting is a boolean. */
function normaliseBooleans(params: Record<string, unknown>, defaults: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(params)) {
    const fallback = Object.hasOwn(defaults, key) ? defaults[key] : undefined;
    if (typeof fallback === "boolean" && typeof value === "string") {
      if (RCL_TRUE.has(value)) params[key] = true;
      else if (RCL_FALSE.has(value)) params[key] = false;
    } else if (isPlainObject(fallback) && isPlainObject(value)) {
      normaliseBooleans(value, fallback);
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Validates a plain object of settings (already nested), naming the first bad key. */
export function validateConfig(params: Record<string, unknown>, source = "<config>"): Config {
  normaliseBooleans(params, defaultConfig() as unknown as Record<string, unknown>);
  const result = ConfigSchema.safeParse(params);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => (where ? `${where}.${k}` : k));
    throw new ConfigError(`${source}: unknown parameter ${keys.map((k) => `"${k}"`).join(", ")}`);
  }
  throw new ConfigError(`${source}: parameter "${where}": ${issue.message}`);
}

/**
 * Applies `key=value` overrides (dotted keys for nested settings, values in YAML syntax), the way
 * `--ros-args -p key:=value` does, and re-validates.
 */
export function withOverrides(
  config: Config,
  overrides: Record<string, unknown>,
  source = "command line",
): Config {
  const merged = structuredClone(config) as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    setDotted(merged, key, value);
  }
  return validateConfig(merged, source);
}

function expandDottedKeys(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    const v =
      value !== null && typeof value === "object" && !Array.isArray(value)
        ? expandDottedKeys(value as Record<string, unknown>)
        : value;
    setDotted(out, key, v);
  }
  return out;
}

/** Keys that would write onto Object.prototype (or a constructor) instead of a setting. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function setDotted(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split(".");
  const bad = parts.find((p) => FORBIDDEN_KEYS.has(p));
  if (bad !== undefined) throw new ConfigError(`parameter "${key}": "${bad}" is not a setting name`);
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === undefined || next === null || typeof next !== "object" || Array.isArray(next))
      node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1]!;
  const existing = node[last];
  if (
    existing !== null &&
    typeof existing === "object" &&
    !Array.isArray(existing) &&
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value)
  ) {
    Object.assign(existing as Record<string, unknown>, value);
  } else {
    node[last] = value;
  }
}
