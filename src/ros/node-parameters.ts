/**
 * The node's own parameters, beside the settings of config/mbpo_arm.yaml (parameters.ts):
 * `controller_joints`, the teleop gains, and learn mode's run parameters (`algo`, `profile`,
 * `steps`, `out`, `resume`, `eval_every`, `eval_episodes`, `checkpoint_every`), whose defaults
 * are the node command's flags, so that `--steps 2000` and `-p steps:=2000` say the same.
 */
import type { RclNode, Rclnodejs } from "../drivers/ros2/rclnodejs.js";
import { ParameterType } from "../drivers/ros2/rclnodejs.js";
import type { TeleopGains } from "./teleop.js";

export const TELEOP_DEFAULTS: TeleopGains = { kp: 4.0, kd: 0.3, maxSpeed: 1.0, targetTimeout: 0.5 };
export const TELEOP_PARAMS: Record<string, keyof TeleopGains> = {
  "teleop.kp": "kp",
  "teleop.kd": "kd",
  "teleop.max_speed": "maxSpeed",
  "teleop.target_timeout": "targetTimeout",
};
const TELEOP_DESCRIPTIONS: Record<string, string> = {
  "teleop.kp": "teleop PD stiffness, N·m/rad",
  "teleop.kd": "teleop PD damping, N·m·s/rad",
  "teleop.max_speed": "fastest the teleop reference walks toward the target, rad/s",
  "teleop.target_timeout": "teleop targets older than this (s) are ignored and the arm holds",
};

/** Learn mode's run: what `mbpo-arm train` takes as flags. */
export interface LearnParameters {
  algo: string;
  /** Hyperparameter profile ("" for the default). */
  profile: string;
  /** Real steps to collect (0: until ~/stop). */
  steps: number;
  /** The run directory of a new run ("" : ~/.mbpo-arm/runs/node-<time>/). */
  out: string;
  /** Continue the run in this directory ("" : a new run). */
  resume: string;
  evalEvery: number;
  evalEpisodes: number;
  checkpointEvery: number;
}

export const LEARN_DEFAULTS: LearnParameters = {
  algo: "mbpo",
  profile: "",
  steps: 0,
  out: "",
  resume: "",
  evalEvery: 5,
  evalEpisodes: 10,
  checkpointEvery: 10,
};

type Rcl = Pick<Rclnodejs, "Parameter" | "ParameterDescriptor" | "FloatingPointRange" | "IntegerRange">;

const READ_ONLY = " (read-only: fixed at startup)";

function declare(
  node: RclNode,
  rcl: Rcl,
  name: string,
  type: number,
  value: unknown,
  description: string,
  range?: object,
): unknown {
  const descriptor = new rcl.ParameterDescriptor(
    name,
    type as never,
    description,
    !name.startsWith("teleop."),
    range,
  );
  try {
    return node.declareParameter(new rcl.Parameter(name, type as never, value), descriptor).value;
  } catch (err) {
    throw new Error(`parameter "${name}": ${String((err as Error).message).split("\n")[0]}`);
  }
}

/** `controller_joints`: the effort controller's joints, in its order (empty: the URDF's). */
export function declareControllerJoints(rcl: Rcl, node: RclNode): string[] {
  const value = declare(
    node,
    rcl,
    "controller_joints",
    ParameterType.PARAMETER_STRING_ARRAY,
    [],
    `the effort controller's joints, in its order (empty: the URDF's order)${READ_ONLY}`,
  );
  return Array.isArray(value) ? value.map(String) : [];
}

export function declareTeleopParameters(rcl: Rcl, node: RclNode): TeleopGains {
  const gains = { ...TELEOP_DEFAULTS };
  for (const [name, key] of Object.entries(TELEOP_PARAMS)) {
    const range = new rcl.FloatingPointRange(0, name === "teleop.kp" ? 100 : 10, 0);
    const v = declare(
      node,
      rcl,
      name,
      ParameterType.PARAMETER_DOUBLE,
      TELEOP_DEFAULTS[key],
      TELEOP_DESCRIPTIONS[name],
      range,
    );
    gains[key] = Number(v);
  }
  return gains;
}

/** Learn mode's parameters, from the given defaults (the command's flags) and the overrides. */
export function declareLearnParameters(rcl: Rcl, node: RclNode, defaults: LearnParameters): LearnParameters {
  const S = ParameterType.PARAMETER_STRING;
  const I = ParameterType.PARAMETER_INTEGER;
  const text = (name: string, v: string, d: string) => String(declare(node, rcl, name, S, v, d + READ_ONLY));
  const int = (name: string, v: number, min: number, d: string) => {
    const range = new rcl.IntegerRange(BigInt(min), BigInt(Number.MAX_SAFE_INTEGER), 1n);
    return Number(declare(node, rcl, name, I, BigInt(v), d + READ_ONLY, range));
  };
  const learn: LearnParameters = {
    algo: text("algo", defaults.algo, "learn mode: mbpo or sac"),
    profile: text(
      "profile",
      defaults.profile,
      "learn mode: hyperparameter profile (empty: the default, quick; eager: quick learning from the 200th real step with G = 20; paper: the papers' sizes)",
    ),
    steps: int("steps", defaults.steps, 0, "learn mode: real steps to collect (0: until ~/stop)"),
    out: text("out", defaults.out, "learn mode: run directory (empty: ~/.mbpo-arm/runs/node-<time>/)"),
    resume: text(
      "resume",
      defaults.resume,
      "learn mode: continue the run in this directory from its checkpoint",
    ),
    evalEvery: int("eval_every", defaults.evalEvery, 1, "learn mode: evaluate after every k-th episode"),
    evalEpisodes: int(
      "eval_episodes",
      defaults.evalEpisodes,
      0,
      "learn mode: episodes per evaluation (mean action)",
    ),
    checkpointEvery: int(
      "checkpoint_every",
      defaults.checkpointEvery,
      1,
      "learn mode: checkpoint after every k-th episode",
    ),
  };
  if (learn.algo !== "mbpo" && learn.algo !== "sac")
    throw new Error(`parameter "algo": must be mbpo or sac, got "${learn.algo}"`);
  return learn;
}
