/**
 * Policies by name, for the CLI and tests. A spec is a policy name, or "checkpoint:DIR" for the
 * actor a training run saved (evaluated with its mean action).
 */
import type { RobotModel } from "../../robot/types.js";
import type { Task } from "../../tasks/task.js";
import type { Policy } from "../policy.js";
import { CHECKPOINT_POLICY_PREFIX, loadCheckpointPolicy } from "./checkpoint.js";
import { ExcitePolicy } from "./excite.js";
import { PdPolicy, type PdPolicyOptions } from "./pd.js";
import { RandomPolicy } from "./random.js";
import { ZeroPolicy } from "./zero.js";

export { EXCITE_DEFAULTS, ExcitePolicy } from "./excite.js";
export type { Activation, MlpJson, MlpPolicyOptions, MlpSpec } from "./mlp.js";
export { LOG_STD_MAX, LOG_STD_MIN, MlpPolicy } from "./mlp.js";
export type { PdPolicyOptions } from "./pd.js";
export { ARM_PD_GAINS, PD_CRUISE_SPEED_FRACTION, PdPolicy } from "./pd.js";
export type { RandomPolicyOptions } from "./random.js";
export { RandomPolicy } from "./random.js";
export { ZeroPolicy } from "./zero.js";

export interface PolicyFactoryOptions {
  task: Task;
  model: RobotModel;
  /** Seeds the random policy. */
  seed: number;
  /** Low-pass factor of the random policy (see RandomPolicyOptions.smoothing); default 0. */
  randomSmoothing?: number;
  /** Gains of the PD policy (the stack's reset gains, ControlStack.gains); default ARM_PD_GAINS (urdf/arm.urdf only). */
  pd?: PdPolicyOptions;
}

const POLICIES: Record<string, (options: PolicyFactoryOptions) => Policy> = {
  zero: () => new ZeroPolicy(),
  random: (o) => new RandomPolicy(o.task.actionSize, { seed: o.seed, smoothing: o.randomSmoothing }),
  pd: (o) => new PdPolicy(o.model, o.pd),
  excite: (o) => new ExcitePolicy(o.model, { seed: o.seed, pd: o.pd }),
};

export const POLICY_NAMES: readonly string[] = Object.keys(POLICIES);

export function createPolicy(spec: string, options: PolicyFactoryOptions): Policy {
  if (spec.startsWith(CHECKPOINT_POLICY_PREFIX)) {
    return loadCheckpointPolicy(spec.slice(CHECKPOINT_POLICY_PREFIX.length), options.task);
  }
  if (!Object.hasOwn(POLICIES, spec)) {
    throw new Error(`unknown policy "${spec}" (known policies: ${POLICY_NAMES.join(", ")}, checkpoint:DIR)`);
  }
  return POLICIES[spec](options);
}
