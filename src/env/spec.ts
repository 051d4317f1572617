/**
 * What `spec` tells a model-based client so that it can write its own reward and termination
 * without reading this repository: the observation's named slices and the joint limits.
 */
import type { JointSpec, RobotModel } from "../robot/types.js";
import { ReachTask } from "../tasks/reach.js";
import type { Task } from "../tasks/task.js";

export interface ObservationSlice {
  name: string;
  offset: number;
  length: number;
  unit: string;
  /** How the raw quantity was transformed into these values. */
  normalisation: string;
}

/** The observation's slices, in order; undefined for a task that publishes no layout. */
export function observationLayout(task: Task, model: RobotModel): ObservationSlice[] | undefined {
  if (!(task instanceof ReachTask)) return undefined;
  const l = task.layout;
  const scale = task.config.precisionScale;
  const hasContinuous = model.joints.some((j) => j.type === "continuous");
  return [
    {
      name: "q",
      offset: l.q,
      length: l.qLength,
      unit: "rad",
      normalisation: hasContinuous ? "none; a continuous joint takes two entries, sin q and cos q" : "none",
    },
    {
      name: "qd",
      offset: l.qd,
      length: model.dof,
      unit: "1",
      normalisation: "q̇ / velocity limit (joint_limits.velocity; 1 where the limit is not finite)",
    },
    { name: "tool", offset: l.ee, length: 3, unit: "m", normalisation: "none; tool point, base frame" },
    { name: "target", offset: l.target, length: 3, unit: "m", normalisation: "none; base frame" },
    { name: "delta", offset: l.delta, length: 3, unit: "m", normalisation: "target − tool" },
    {
      name: "delta_fine",
      offset: l.fine,
      length: 3,
      unit: "1",
      normalisation: `tanh((target − tool) / ${scale}) (task.params.precisionScale)`,
    },
  ];
}

/** One entry per joint: hard limits, velocity and effort limits, soft limits (null where none). */
export function jointLimits(joints: readonly JointSpec[]): Record<string, unknown>[] {
  // JSON has no Infinity: an unbounded limit (a continuous joint) is written as null.
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  return joints.map((j) => ({
    name: j.name,
    type: j.type,
    lower: finite(j.lower),
    upper: finite(j.upper),
    velocity: finite(j.velocity),
    effort: finite(j.effort),
    soft:
      j.safety === undefined
        ? null
        : {
            lower: j.safety.softLower,
            upper: j.safety.softUpper,
            k_position: j.safety.kPosition,
            k_velocity: j.safety.kVelocity,
          },
  }));
}

/** Why a joint pose is refused (undefined: inside the soft limits, or the hard ones where a joint has none). */
export function poseOutsideLimits(
  joints: readonly JointSpec[],
  q: Float64Array,
  field: string,
): string | undefined {
  for (let i = 0; i < joints.length; i++) {
    const j = joints[i];
    if (j.type === "continuous") continue;
    const lower = j.safety?.softLower ?? j.lower;
    const upper = j.safety?.softUpper ?? j.upper;
    if (!(q[i] >= lower && q[i] <= upper)) {
      const which = j.safety === undefined ? "limits" : "soft limits";
      return `reset: ${field}[${i}] (${j.name}) = ${q[i]} is outside the ${which} [${lower}, ${upper}]`;
    }
  }
  return undefined;
}
