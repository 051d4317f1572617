import type { JointState } from "../drivers/driver.js";
import type { TaskEpisode } from "../tasks/task.js";

/**
 * A policy maps an observation to a normalised action in [-1, 1]^n. The control loop scales it
 * to torque (action · torqueScale − actionDamping · q̇ per joint), adds gravity compensation, and
 * passes the result through the safety filter. Policies run inside the control tick: act() must not allocate.
 */
export interface Policy {
  readonly name: string;
  /** Called at the start of each episode. */
  reset(episode: TaskEpisode): void;
  act(obs: Float32Array, ctx: PolicyContext, out: Float32Array): void;
}

/** What a policy may read besides the observation (joint-space controllers use it). */
export interface PolicyContext {
  state: JointState;
  /** Torque per unit action, per joint (N·m): torque = action · torqueScale. */
  torqueScale: Float64Array;
  /** Damping (N·m·s/rad, per joint) the loop adds to every command: torque = action · torqueScale − actionDamping · q̇. */
  actionDamping: Float64Array;
}
