/**
 * What the project derives for an arm, before the first power-on: joints and limits, mass, reach,
 * the tool point at the home pose and the gravity load there, each joint's smallest effective
 * inertia and the gains the stack will use, and every warning. `mbpo-arm describe` prints it.
 * It builds no driver: describing an arm talks to no hardware.
 */
import { type Config, descriptionOptions } from "../config/config.js";
import { type ResolvedGains, resolveArmGains } from "../control/arm-gains.js";
import { loadRobotDescription } from "../robot/description.js";
import { Dynamics } from "../robot/dynamics.js";
import { Kinematics } from "../robot/kinematics.js";
import { armReach, softRange } from "../robot/workspace.js";
import { createTask, taskParamsFromConfig } from "../tasks/index.js";
import { resolveDataPath } from "../util/paths.js";

export interface JointDescription {
  name: string;
  type: string;
  lower: number;
  upper: number;
  softLower: number;
  softUpper: number;
  velocity: number;
  effort: number;
  armature: number;
  damping: number;
  friction: number;
  home: number;
  /** Gravity torque at the home pose as a fraction of the effort limit. */
  gravityAtHome: number;
  inertia: number;
  actionDamping: number;
  holdDamping: number;
  resetKp: number;
  resetKd: number;
}

export interface ArmDescription {
  robot: string;
  source: string;
  dof: number;
  mass: number;
  toolFrame: string;
  /** Largest distance (m) from the first moving joint to the tool point over sampled poses in the soft range. */
  reach: number;
  /** Tool point at the home pose (m, base frame). */
  toolAtHome: [number, number, number];
  /** The reach task's target spread (rad per joint; task.target_spread, or derived from the reach). */
  targetSpread: number;
  controlRateHz: number;
  /** Gains the config sets (the rest are derived from the arm). */
  gainsFromConfig: string[];
  joints: JointDescription[];
  warnings: string[];
}

export function describeArm(config: Config): ArmDescription {
  const source = resolveDataPath(config.urdf);
  const model = loadRobotDescription(source, descriptionOptions(config));
  const dynamics = new Dynamics(model);
  const gains: ResolvedGains = resolveArmGains(config, model, dynamics);
  const task = createTask(config.task.name, model, taskParamsFromConfig(config.task));
  const home = (task as { homePose?: Float64Array }).homePose ?? new Float64Array(model.dof);
  const kinematics = new Kinematics(model);
  const tool = kinematics.linkIndex(model.endEffector);
  const p = new Float64Array(3);

  kinematics.update(home);
  kinematics.linkPosition(tool, p);
  const toolAtHome: [number, number, number] = [p[0], p[1], p[2]];
  const gravity = new Float64Array(model.dof);
  dynamics.gravity(home, gravity);

  const { lower, upper } = softRange(model);
  const reach = armReach(model);

  const warnings = [...(model.warnings ?? []), ...gains.warnings];
  const joints = model.joints.map((j, i): JointDescription => {
    const load = Math.abs(gravity[i]) / j.effort;
    if (load > 0.5)
      warnings.push(
        `joint "${j.name}": gravity at the home pose takes ${(100 * load).toFixed(0)}% of its effort limit; little is left to move it`,
      );
    return {
      name: j.name,
      type: j.type,
      lower: j.lower,
      upper: j.upper,
      softLower: lower[i],
      softUpper: upper[i],
      velocity: j.velocity,
      effort: j.effort,
      armature: j.armature,
      damping: j.damping,
      friction: j.friction,
      home: home[i],
      gravityAtHome: load,
      inertia: gains.inertia[i],
      actionDamping: gains.actionDamping[i],
      holdDamping: gains.holdDamping[i],
      resetKp: gains.resetKp[i],
      resetKd: gains.resetKd[i],
    };
  });
  if (toolAtHome[2] < 0.05)
    warnings.push(
      `the tool point at the home pose is ${toolAtHome[2].toFixed(3)} m high: at or below the table (reach targets need it above 0.05 m)`,
    );
  return {
    robot: model.name,
    source,
    dof: model.dof,
    mass: model.links.reduce((m, l) => m + l.inertial.mass, 0),
    toolFrame: model.endEffector,
    reach,
    toolAtHome,
    targetSpread: (task.params() as { targetSpread?: number }).targetSpread ?? Number.NaN,
    controlRateHz: config.control_rate_hz,
    gainsFromConfig: gains.fromConfig,
    joints,
    warnings,
  };
}

function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : x > 0 ? "inf" : "-inf";
}

/** The description as a few lines and a table, for a person at a terminal. */
export function formatArmDescription(d: ArmDescription): string {
  const lines = [
    `${d.robot} (${d.source}): ${d.dof} moving joints, ${d.mass.toFixed(3)} kg, tool frame "${d.toolFrame}", reach ${d.reach.toFixed(3)} m`,
    `home pose: tool point at (${d.toolAtHome.map((x) => x.toFixed(3)).join(", ")}) m; reach targets within ±${d.targetSpread} rad of it per joint`,
    `gains at ${d.controlRateHz} Hz: ${d.gainsFromConfig.length === 0 ? "all derived from the arm" : `${d.gainsFromConfig.join(", ")} from the config, the rest derived`}`,
    "",
  ];
  const header = [
    "joint",
    "lower",
    "upper",
    "soft lo",
    "soft hi",
    "vel",
    "effort",
    "armature",
    "home",
    "g@home",
    "I_min",
    "act.damp",
    "hold",
    "reset kp",
    "reset kd",
  ];
  const rows = d.joints.map((j) => [
    j.name,
    fixed(j.lower, 3),
    fixed(j.upper, 3),
    fixed(j.softLower, 3),
    fixed(j.softUpper, 3),
    fixed(j.velocity, 2),
    fixed(j.effort, 2),
    j.armature.toPrecision(3),
    fixed(j.home, 3),
    `${(100 * j.gravityAtHome).toFixed(0)}%`,
    j.inertia.toPrecision(3),
    String(j.actionDamping),
    String(j.holdDamping),
    String(j.resetKp),
    String(j.resetKd),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const format = (r: string[]) =>
    r.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join("  ");
  lines.push(format(header), ...rows.map(format));
  if (d.warnings.length > 0) lines.push("", ...d.warnings.map((w) => `warning: ${w}`));
  return lines.join("\n");
}
