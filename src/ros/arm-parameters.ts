/**
 * The gains derived from the arm (src/control/arm-gains.ts) as ROS 2 parameters: each a
 * double array with one value per joint, declared with what the arm gets (the params file's
 * value where it sets one, else the derived value), so that `ros2 param get /mbpo_arm reset.kp`
 * shows the gains in use and `ros2 param set` can change the live ones between episodes.
 *
 * These settings have no fixed default (they depend on the arm), so the schema walk of
 * parameters.ts leaves them out and they are declared here, once the description is known. A
 * params file (shared with the CLI's --config) may give one number for every joint or one per
 * joint, as a double or an integer: each is taken and widened to one per joint. Every value is
 * checked for stability on every joint (resolveArmGains), at startup and on each change.
 */

import type { Config } from "../config/config.js";
import { type ArmGains, perJoint, resolveArmGains } from "../control/arm-gains.js";
import type { RclNode, Rclnodejs, RclParameter, RclSetParametersResult } from "../drivers/ros2/rclnodejs.js";
import { ParameterType } from "../drivers/ros2/rclnodejs.js";
import type { Dynamics } from "../robot/dynamics.js";
import type { RobotModel } from "../robot/types.js";

export interface ArmParameter {
  /** Dotted name, as in config/mbpo_arm.yaml. */
  name: string;
  /** Where the config keeps it. */
  path: readonly string[];
  /** The field of ArmGains that holds its resolved value. */
  gain: keyof Omit<ArmGains, "inertia">;
  /** Applied at the next episode; otherwise read-only (fixed at startup). */
  live: boolean;
  description: string;
}

/**
 * The derived settings. Action damping shapes the dynamics the learner models, and the torque-rate
 * limit is the safety filter's: both are fixed at startup, like every other safety setting.
 */
export const ARM_PARAMETERS: readonly ArmParameter[] = [
  {
    name: "action_damping",
    path: ["action_damping"],
    gain: "actionDamping",
    live: false,
    description: "N·m·s/rad per joint subtracted per rad/s from every policy command",
  },
  {
    name: "hold_damping",
    path: ["hold_damping"],
    gain: "holdDamping",
    live: true,
    description: "N·m·s/rad per joint, the hold between episodes (on top of gravity compensation)",
  },
  {
    name: "reset.kp",
    path: ["reset", "kp"],
    gain: "resetKp",
    live: true,
    description: "N·m/rad per joint, PD of the move back to the start pose (and the pd policy's)",
  },
  {
    name: "reset.kd",
    path: ["reset", "kd"],
    gain: "resetKd",
    live: true,
    description: "N·m·s/rad per joint, PD of the move back to the start pose (and the pd policy's)",
  },
  {
    name: "safety.torque_rate_limit",
    path: ["safety", "torque_rate_limit"],
    gain: "torqueRateLimit",
    live: false,
    description: "N·m/s per joint, the largest change of effort per second",
  },
];

type Rcl = Pick<Rclnodejs, "Parameter" | "ParameterDescriptor">;

/** A parameter value as one number per joint, or a one-line reason it is not one. */
function perJointValue(p: RclParameter, model: RobotModel): number[] | string {
  const names = model.joints.map((j) => j.name);
  const values =
    p.type === ParameterType.PARAMETER_DOUBLE || p.type === ParameterType.PARAMETER_INTEGER
      ? Number(p.value)
      : p.type === ParameterType.PARAMETER_DOUBLE_ARRAY || p.type === ParameterType.PARAMETER_INTEGER_ARRAY
        ? Array.from(p.value as ArrayLike<number | bigint>, Number)
        : undefined;
  if (values === undefined)
    return `${p.name}: one number, or one per joint (${names.join(", ")}), not a value of ROS parameter type ${p.type}`;
  try {
    const list = perJoint(values, model.dof, p.name, names);
    const bad = list.findIndex((v) => !(Number.isFinite(v) && v >= 0));
    if (bad >= 0)
      return `${p.name}: joint "${names[bad]}" has ${list[bad]}; every value must be a number ≥ 0`;
    return list;
  } catch (err) {
    return (err as Error).message;
  }
}

function withSetting(config: Config, setting: ArmParameter, value: number[]): Config {
  const next = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
  const [head, leaf] = setting.path;
  if (leaf === undefined) (next as Record<string, unknown>)[head] = value;
  else next[head] = { ...next[head], [leaf]: value };
  return next as unknown as Config;
}

/**
 * Declares ARM_PARAMETERS on the node with the values the arm gets, taking the command line's and
 * params file's overrides; returns the config with every overridden one set (per joint). Throws
 * one line naming the parameter (or, for an unstable value, the setting and the joint).
 */
export function declareArmParameters(
  rcl: Rcl,
  node: RclNode,
  config: Config,
  model: RobotModel,
  dynamics: Dynamics,
  /** Settings whose overrides are ignored (a resumed run keeps its own). */
  fixed = false,
): Config {
  const resolved = resolveArmGains(config, model, dynamics);
  let out = config;
  for (const setting of ARM_PARAMETERS) {
    const current = resolved[setting.gain];
    const type = ParameterType.PARAMETER_DOUBLE_ARRAY;
    // First without a descriptor, so that an override of another type (one number; integers) is
    // taken as given, then again with the descriptor and the value widened to one per joint.
    let value = current;
    if (!fixed) {
      const given = node.declareParameter(new rcl.Parameter(setting.name, type, current));
      node.undeclareParameter(setting.name);
      const parsed = perJointValue(given, model);
      if (typeof parsed === "string") throw new Error(`parameter ${parsed}`);
      value = parsed;
    }
    const readOnly = !setting.live;
    const description = `${setting.description}; unset in the params file: derived from the arm (mbpo-arm describe)${
      readOnly ? " (read-only: fixed at startup)" : " (applied at the next episode)"
    }`;
    const descriptor = new rcl.ParameterDescriptor(setting.name, type, description, readOnly);
    node.declareParameter(new rcl.Parameter(setting.name, type, value), descriptor, true);
    if (value.some((v, i) => v !== current[i])) out = withSetting(out, setting, value);
  }
  resolveArmGains(out, model, dynamics);
  return out;
}

/**
 * A change of ARM_PARAMETERS (`ros2 param set`), merged into `config` and checked on every joint.
 * Returns the merged config, or the reason it is refused; undefined config when none of them changed.
 */
export function checkArmParameterChange(
  config: Config,
  changes: readonly RclParameter[],
  model: RobotModel,
  dynamics: Dynamics,
): { result: RclSetParametersResult; config?: Config } {
  let out: Config | undefined;
  for (const p of changes) {
    const setting = ARM_PARAMETERS.find((s) => s.name === p.name);
    if (setting === undefined) continue;
    const parsed = perJointValue(p, model);
    if (typeof parsed === "string") return { result: { successful: false, reason: parsed } };
    out = withSetting(out ?? config, setting, parsed);
  }
  if (out === undefined) return { result: { successful: true, reason: "" } };
  try {
    resolveArmGains(out, model, dynamics);
  } catch (err) {
    return { result: { successful: false, reason: String((err as Error).message).split("\n")[0] } };
  }
  return { result: { successful: true, reason: "" }, config: out };
}
