/**
 * Tasks by name. A new task adds one entry to TASKS.
 */
import type { RobotModel } from "../robot/types.js";
import { type ReachConfig, ReachTask } from "./reach.js";
import type { Task } from "./task.js";

export type { ReachConfig, ReachObservationLayout } from "./reach.js";
export { ARM_HOME_POSE, DEFAULT_REACH_CONFIG, ReachTask, reachObservationLayout } from "./reach.js";
export type { Task, TaskEpisode } from "./task.js";

/** Parameters any task may be given; each task rejects the ones it does not know. */
export type TaskParams = Partial<ReachConfig>;

/** The task parameters that the node's config (task.* in config/mbpo_arm.yaml) sets. */
export function taskParamsFromConfig(task: {
  episode_steps: number;
  success_radius: number;
  target_spread?: number;
  home_pose?: number[];
}): TaskParams {
  return {
    episodeSteps: task.episode_steps,
    successRadius: task.success_radius,
    ...(task.target_spread !== undefined ? { targetSpread: task.target_spread } : {}),
    ...(task.home_pose !== undefined ? { homePose: task.home_pose } : {}),
  };
}

const TASKS: Record<string, (model: RobotModel, params: TaskParams) => Task> = {
  reach: (model, params) => new ReachTask(model, params),
};

export const TASK_NAMES: readonly string[] = Object.keys(TASKS);

export function createTask(name: string, model: RobotModel, params: TaskParams = {}): Task {
  if (!Object.hasOwn(TASKS, name)) {
    throw new Error(`unknown task "${name}" (known tasks: ${TASK_NAMES.join(", ")})`);
  }
  return TASKS[name](model, params);
}
