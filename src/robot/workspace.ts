/**
 * The size of an arm's workspace, for settings that scale with the arm: its reach, the largest
 * distance from the first moving joint to the tool point over poses in the soft range.
 */
import { Rng } from "../util/rng.js";
import { Kinematics } from "./kinematics.js";
import type { RobotModel } from "./types.js";

/** Poses sampled (deterministically) for the reach. */
const REACH_SAMPLES = 2000;

/** The soft range of each joint (a continuous joint: one turn). */
export function softRange(model: RobotModel): { lower: number[]; upper: number[] } {
  const lower = model.joints.map((j) =>
    j.type === "continuous" ? -Math.PI : (j.safety?.softLower ?? j.lower),
  );
  const upper = model.joints.map((j) =>
    j.type === "continuous" ? Math.PI : (j.safety?.softUpper ?? j.upper),
  );
  return { lower, upper };
}

/** Largest distance (m) from the first moving joint's frame to the tool point over sampled poses in the soft range. */
export function armReach(model: RobotModel): number {
  const kinematics = new Kinematics(model);
  const tool = kinematics.linkIndex(model.endEffector);
  const shoulder = model.jointLink[0];
  const { lower, upper } = softRange(model);
  const rng = new Rng(2, 9102);
  const q = new Float64Array(model.dof);
  const p = new Float64Array(3);
  const base = new Float64Array(3);
  let reach = 0;
  for (let s = 0; s < REACH_SAMPLES; s++) {
    for (let i = 0; i < model.dof; i++) q[i] = rng.range(lower[i], upper[i]);
    kinematics.update(q);
    kinematics.linkPosition(tool, p);
    kinematics.linkPosition(shoulder, base);
    reach = Math.max(reach, Math.hypot(p[0] - base[0], p[1] - base[1], p[2] - base[2]));
  }
  return reach;
}
