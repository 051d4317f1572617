import type { Rng } from "../util/rng.js";

/**
 * A task turns joint states into observations and rewards. Reward, termination and success are
 * pure functions of observations, so that the MBPO learner can score model-predicted states with
 * the task's own code, and an external learner can ask for them (see `env serve`).
 */
export interface Task {
  readonly name: string;
  readonly dof: number;
  readonly observationSize: number;
  /** Actions are normalised to [-1, 1]^actionSize; the control loop maps them to torques. */
  readonly actionSize: number;
  /** Control steps per episode before truncation. */
  readonly episodeSteps: number;
  /** Size of the goal vector that each episode samples (part of the observation). */
  readonly goalSize: number;

  /** Samples a new episode: start pose and goal. */
  sampleEpisode(rng: Rng): TaskEpisode;

  /** Builds the observation of joint state (q, q̇) under a goal. Must not allocate. */
  observe(q: Float64Array, qd: Float64Array, goal: Float64Array, out: Float32Array): void;

  /** Reward for the transition obs --action--> nextObs. */
  reward(obs: Float32Array, action: Float32Array, nextObs: Float32Array): number;
  /** True when the episode must end at nextObs (a failure state); success does not terminate. */
  terminated(nextObs: Float32Array): boolean;
  /** True when obs counts as success. */
  success(obs: Float32Array): boolean;
  /** The task's distance-to-goal for reports (m for reach). */
  distance(obs: Float32Array): number;
  /**
   * The goal that joint pose q achieves (for reach: its end-effector position), written into out
   * (goalSize values); learners relabel goals with it (hindsight). Must not allocate.
   */
  achievedGoal(q: Float64Array, out: Float64Array): void;
  /**
   * Whether a goal lies where this task sets its goals (sampleEpisode's region). Hindsight
   * relabelling keeps only such goals; a task without this method accepts every goal.
   */
  goalInRange?(goal: Float64Array): boolean;
  /**
   * Per observation feature, the spread it has over the task's whole range (its units; 0 where
   * none is known): a learner that standardises observations with statistics of early data uses
   * at least this std, so that a state its exploration never reached is still a moderate input.
   */
  observationSpread?(): Float64Array;

  /** The task's parameters, for `spec` and run configs. */
  params(): Record<string, number | string | boolean>;
}

export interface TaskEpisode {
  /** Joint pose the reset move brings the arm to before the episode starts. */
  startPosition: Float64Array;
  /** Goal vector (for reach: the target position in the base frame, m). */
  goal: Float64Array;
  /** A joint pose known to achieve the goal, when the task has one (the PD policy tracks it). */
  goalPosition?: Float64Array;
}
