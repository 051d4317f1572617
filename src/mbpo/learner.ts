/**
 * The contract between the learning algorithm (src/mbpo/mbpo.ts: MBPO, and plain SAC as its
 * model-free baseline) and whatever hosts it (the worker thread of src/mbpo/worker.ts, the `train`
 * command, tests). The host feeds real transitions in, asks for an update phase between episodes,
 * hands the actor's weights to the control loop, and saves and restores the whole learner.
 *
 * Everything that crosses this boundary is plain data (numbers, strings, typed arrays), so that it
 * can cross a worker_threads postMessage unchanged.
 */
import type { Config } from "../config/config.js";
import { resolveArmGains } from "../control/arm-gains.js";
import type { DescriptionOptions } from "../robot/description.js";
import type { RobotModel } from "../robot/types.js";
import type { RealTransitionInput } from "./replay-buffer.js";
import type { ActorWeights } from "./sac.js";

export type { ActorWeights, RealTransitionInput };

export type Algorithm = "mbpo" | "sac";

/** How to build the learner: enough for a worker thread to rebuild the task and networks itself. */
export interface LearnerSpec {
  algo: Algorithm;
  /** URDF path (absolute) and task name and parameters: rewards and terminations come from the task. */
  urdf: string;
  task: { name: string; params: Record<string, number | string | boolean> };
  seed: number;
  /** TensorFlow.js backend to force (`--tf-backend`); undefined picks the fastest present. */
  backend?: string;
  /**
   * Threads of the wasm backend (`--tf-threads`, 1 to 8; default 1), if wasm is the one that runs.
   * The numbers are the same on any count; more threads take cores from the control loop.
   */
  threads?: number;
  /** Overrides of the defaults in src/mbpo/hyperparameters.ts, by section and key. */
  hyperparameters?: Record<string, Record<string, unknown>>;
  /**
   * A named override set from HYPERPARAMETER_PROFILES (e.g. "quick"), applied before
   * `hyperparameters`; undefined: the papers' defaults.
   */
  profile?: string;
  /**
   * How the control stack turns an action into the effort it sends: model rollouts must do the
   * same, because the dynamics model learns from the effort actually sent. Build it from the run's
   * config with controlSpecFromConfig(config); undefined means the config defaults.
   */
  control?: ControlSpec;
  /** How `urdf` is read when it is a xacro (arguments, package folders) and its tool frame. */
  description?: DescriptionOptions;
}

/**
 * The parts of the run's config that map a normalised action to the effort sent and bound the
 * states the robot may be in (see src/config/config.ts for each setting's meaning).
 */
export interface ControlSpec {
  /** action_torque_fraction: torque per unit action, as a fraction of each joint's effort limit. */
  actionTorqueFraction: number;
  /**
   * action_damping (N·m·s/rad) per joint, as the stack resolved it (the config's, or derived from
   * the arm): τ = a·scale − actionDamping·q̇ before gravity and the filter. One number (checkpoints
   * from before it was per joint) means every joint.
   */
  actionDamping: number | number[];
  /** gravity_compensation: RNEA gravity torque added to every command. */
  gravityCompensation: boolean;
  /** control_rate_hz: one model step is one control period. */
  controlRateHz: number;
  /** safety.effort_scale, safety.use_soft_limits, safety.torque_rate_limit (N·m/s). */
  effortScale: number;
  useSoftLimits: boolean;
  /** Per joint, as the stack resolved it; one number (older checkpoints) means every joint. */
  torqueRateLimit: number | number[];
  /** safety.position_margin (rad) and safety.velocity_margin (fraction): where the watchdog faults. */
  positionMargin: number;
  velocityMargin: number;
  /**
   * safety.dynamic_limits and its settings (src/safety/dynamic-limits.ts), so that model rollouts
   * send the torque the filter would: velocity_headroom, approach_rate, model_error,
   * position_headroom, brake_fraction.
   */
  dynamicLimits: boolean;
  velocityHeadroom: number;
  approachRate: number;
  modelError: number;
  positionHeadroom: number;
  brakeFraction: number;
}

/** The ControlSpec of a run's config on its arm (whose dynamics give the derived gains). */
export function controlSpecFromConfig(config: Config, model: RobotModel): ControlSpec {
  const gains = resolveArmGains(config, model);
  return {
    actionTorqueFraction: config.action_torque_fraction,
    actionDamping: gains.actionDamping,
    gravityCompensation: config.gravity_compensation,
    controlRateHz: config.control_rate_hz,
    effortScale: config.safety.effort_scale,
    useSoftLimits: config.safety.use_soft_limits,
    torqueRateLimit: gains.torqueRateLimit,
    positionMargin: config.safety.position_margin,
    velocityMargin: config.safety.velocity_margin,
    dynamicLimits: config.safety.dynamic_limits,
    velocityHeadroom: config.safety.velocity_headroom,
    approachRate: config.safety.approach_rate,
    modelError: config.safety.model_error,
    positionHeadroom: config.safety.position_headroom,
    brakeFraction: config.safety.brake_fraction,
  };
}

/** What one update phase did, for metrics.csv (NaN where a figure does not apply this phase). */
export interface UpdateReport {
  /** The robot's real transitions the learner holds after this phase (bootstrap rows not counted). */
  realSteps: number;
  /** Whether the dynamics model was (re)trained in this phase, and its holdout figures if so. */
  modelTrained: boolean;
  modelHoldoutNll: number;
  modelHoldoutMse: number;
  /**
   * Branched rollouts this phase: length k in force, branches started, and what became of the
   * predicted transitions. Every predicted transition is either kept (added to the model buffer)
   * or dropped by the joint-limit or the uncertainty filter, and each of those drops ends its
   * branch. `terminated` counts branches that ended because the task terminated: their last
   * transition is kept (with terminated = 1, so SAC learns the failure) and counted in
   * rolloutsKept. So: predicted = rolloutsKept + jointLimits + uncertainty, and
   * rolloutBranches = terminated + jointLimits + uncertainty + branches that ran all k steps.
   * (The fields marked optional here are always filled by src/mbpo/mbpo.ts; they are optional
   * only so that simpler test doubles of the contract need not invent them.)
   */
  rolloutLength: number;
  rolloutBranches?: number;
  rolloutsKept: number;
  rolloutsFiltered: { terminated: number; jointLimits: number; uncertainty: number };
  /** Transitions in the model buffer after this phase. */
  modelBufferSize?: number;
  /** Real transitions refused by addReal so far (non-finite values), never stored. */
  realRejected?: number;
  /** SAC updates this phase, and the mean losses and α over them. */
  sacUpdates: number;
  qLoss: number;
  policyLoss: number;
  alpha: number;
  /** Wall-clock seconds spent per part of the phase. */
  seconds: { model: number; rollouts: number; sac: number };
  /**
   * True when shouldStop ended the phase early: the figures above count what was done, and the
   * learner does the rest in its next phase.
   */
  interrupted?: boolean;
}

/** What addBootstrap stored: rows added, and rows refused for non-finite values. */
export interface BootstrapReport {
  added: number;
  rejected: number;
}

/** What pretrain did: the model's holdout figures when it trained one. */
export interface PretrainReport {
  modelTrained: boolean;
  modelHoldoutNll: number;
  modelHoldoutMse: number;
  seconds: number;
  /** A stop cut the training short: the model counts as untrained (the first update trains it). */
  interrupted?: boolean;
}

export interface Learner {
  readonly spec: LearnerSpec;
  /** The TensorFlow.js backend the learner runs on (our name: node-gpu, webgpu, node, wasm or cpu). */
  readonly backend?: string;
  /** Stores one real transition (copied: the caller may reuse its arrays). */
  addReal(transition: RealTransitionInput): void;
  /**
   * Before the run's first real step: stores transitions recorded elsewhere (a teleop bag, another
   * run's log; src/data/bootstrap.ts) in the real buffer. They are data, not this run's steps: no
   * SAC updates or rollouts are owed for them, and the schedule (initial exploration included)
   * counts only the robot's own steps.
   */
  addBootstrap(transitions: readonly RealTransitionInput[]): BootstrapReport;
  /**
   * Trains the dynamics model (MBPO) on everything in the real buffer now, before the first
   * episode; the next retrain follows modelRetrainEvery robot steps later. SAC has no model: it
   * reports modelTrained false.
   */
  pretrain(shouldStop?: () => boolean): Promise<PretrainReport>;
  /**
   * The update phase owed for the real steps added since the last call: model retraining on its
   * schedule, branched rollouts, and G SAC updates per new real step (MBPO); or G SAC updates per
   * new real step on real data alone (SAC). May take minutes: hosts run it off the control thread.
   *
   * `shouldStop` is asked between gradient steps (and rollout chunks): when it says true the phase
   * ends there, with the learner in a consistent state (save() may follow at once), and the work
   * left is done at the start of the next phase, after a resume too. A model training cut short
   * counts as not done (it is redone). pretrain() stops the same way.
   */
  update(shouldStop?: () => boolean): Promise<UpdateReport>;
  /** The actor's current weights, for the control loop's MlpPolicy. */
  actorWeights(): Promise<ActorWeights>;
  /** Writes everything needed to resume (networks, optimiser states, normalisers, buffers, RNG) under dir. */
  save(dir: string): Promise<void>;
  /** Frees tensors. */
  dispose(): void;
}
