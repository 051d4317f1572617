/**
 * Builds the whole control stack from a config: robot model, dynamics, driver, safety filter,
 * control loop, task and episode runner. The application core (src/app/) builds every front
 * end's stack here, so that they all drive the robot in exactly the same way.
 */
import { type Config, descriptionOptions, realityRanges } from "../config/config.js";
import type { Driver } from "../drivers/driver.js";
import { createDynamixelDriver, DynamixelDriver } from "../drivers/dynamixel/index.js";
import { StandaloneRos2Driver } from "../drivers/ros2/standalone.js";
import { SimDriver } from "../drivers/sim.js";
import { drawReality, type Reality } from "../drivers/sim-reality.js";
import { loadRobotDescription } from "../robot/description.js";
import { Dynamics } from "../robot/dynamics.js";
import type { RobotModel } from "../robot/types.js";
import { SafetyFilter } from "../safety/filter.js";
import { createTask, taskParamsFromConfig } from "../tasks/index.js";
import type { Task } from "../tasks/task.js";
import { resolveDataPath } from "../util/paths.js";
import { type ResolvedGains, resolveArmGains } from "./arm-gains.js";
import { DelayCompensatedDriver } from "./delay-compensation.js";
import { EpisodeRunner } from "./episode.js";
import { ControlLoop, type ControlLoopOptions } from "./loop.js";

export interface ControlStack {
  config: Config;
  urdfPath: string;
  model: RobotModel;
  dynamics: Dynamics;
  /** Action, hold and reset gains per joint: the config's, or derived from the arm (src/control/arm-gains.ts). */
  gains: ResolvedGains;
  driver: Driver;
  safety: SafetyFilter;
  loop: ControlLoop;
  task: Task;
  runner: EpisodeRunner;
  /** The simulator's reality gap (driver sim only): the arm the twin is, not the URDF's. */
  reality?: Reality;
}

/**
 * What a front end may bring instead of the defaults: its own driver (the ROS node's, on its
 * node) and its own loop (ticked by the node's ROS timer).
 */
export interface StackParts {
  driver?: (model: RobotModel) => Driver;
  loop?: (options: ControlLoopOptions) => ControlLoop;
}

export function createControlStack(config: Config, parts: StackParts = {}): ControlStack {
  const urdfPath = resolveDataPath(config.urdf);
  const model = loadRobotDescription(urdfPath, descriptionOptions(config));
  const dynamics = new Dynamics(model);
  const gains = resolveArmGains(config, model, dynamics);
  const task = createTask(config.task.name, model, taskParamsFromConfig(config.task));
  // The twin is the arm as it is (its reality gap drawn from the seed); everything else in the
  // stack sees the URDF's model.
  const reality =
    parts.driver === undefined && config.driver === "sim"
      ? drawReality(twinModel(config, model), realityRanges(config), config.seed)
      : undefined;
  const hardware = parts.driver !== undefined ? parts.driver(model) : createDriver(config, model, reality);
  const safety = createSafetyFilter(config, model, dynamics, gains);
  // A driver that detects faults of its own (a servo's hardware alert, a lost bus) latches the filter.
  if (hardware instanceof DynamixelDriver) hardware.onFault = (detail) => safety.latch("driver", detail);
  // A late state is predicted forward to now before the loop, the filter or the learner see it.
  const driver =
    config.state_latency > 0
      ? new DelayCompensatedDriver(hardware, model, config.state_latency / config.control_rate_hz)
      : hardware;
  const loopOptions: ControlLoopOptions = {
    driver,
    joints: model.joints,
    dynamics,
    safety,
    controlRateHz: config.control_rate_hz,
    gravityCompensation: config.gravity_compensation,
  };
  const loop = parts.loop !== undefined ? parts.loop(loopOptions) : new ControlLoop(loopOptions);
  const runner = createRunner(config, loop, task, model, gains);
  return { config, urdfPath, model, dynamics, gains, driver, safety, loop, task, runner, reality };
}

/**
 * Takes the settings that may change between episodes (task, action scaling, hold and reset):
 * the task and the episode runner are rebuilt; the robot, driver, safety filter and loop stay.
 */
export function reconfigureEpisodes(stack: ControlStack, config: Config): void {
  stack.config = config;
  stack.gains = resolveArmGains(config, stack.model, stack.dynamics);
  stack.task = createTask(config.task.name, stack.model, taskParamsFromConfig(config.task));
  stack.runner = createRunner(config, stack.loop, stack.task, stack.model, stack.gains);
}

function createRunner(
  config: Config,
  loop: ControlLoop,
  task: Task,
  model: RobotModel,
  gains: ResolvedGains,
): EpisodeRunner {
  return new EpisodeRunner(loop, task, model.joints, {
    actionTorqueFraction: config.action_torque_fraction,
    actionDamping: gains.actionDamping,
    holdDamping: gains.holdDamping,
    reset: { ...config.reset, kp: gains.resetKp, kd: gains.resetKd },
  });
}

/** The safety filter for a config: the model's limits and dynamics, and the `safety` settings. */
export function createSafetyFilter(
  config: Config,
  model: RobotModel,
  dynamics: Dynamics,
  gains: ResolvedGains = resolveArmGains(config, model, dynamics),
): SafetyFilter {
  const s = config.safety;
  return new SafetyFilter(
    model.joints,
    {
      effortScale: s.effort_scale,
      torqueRateLimit: gains.torqueRateLimit,
      staleTimeout: s.stale_timeout,
      staleGrace: s.stale_grace,
      positionMargin: s.position_margin,
      velocityMargin: s.velocity_margin,
      dynamicLimits: s.dynamic_limits,
      velocityHeadroom: s.velocity_headroom,
      approachRate: s.approach_rate,
      modelError: s.model_error,
      positionHeadroom: s.position_headroom,
      brakeFraction: s.brake_fraction,
      safeStopBandwidth: s.safe_stop_bandwidth,
      useSoftLimits: s.use_soft_limits,
    },
    dynamics,
  );
}

/** The arm the twin simulates: sim.urdf where set (with the node's joints, in its order), else the node's model. */
function twinModel(config: Config, model: RobotModel): RobotModel {
  if (config.sim.urdf === undefined) return model;
  const twin = loadRobotDescription(resolveDataPath(config.sim.urdf), descriptionOptions(config));
  const names = (m: RobotModel) => m.joints.map((j) => j.name).join(", ");
  if (names(twin) !== names(model))
    throw new Error(
      `sim.urdf ${config.sim.urdf}: its joints (${names(twin)}) are not the node's urdf's (${names(model)})`,
    );
  return twin;
}

function createDriver(config: Config, model: RobotModel, reality: Reality | undefined): Driver {
  switch (config.driver) {
    case "sim": {
      if (reality === undefined) throw new Error("createDriver: the simulator needs its reality");
      return new SimDriver({
        model: reality.model,
        physicsRateHz: config.sim.physics_rate_hz,
        timing: config.sim.realtime ? "realtime" : "stepped",
        torqueConstant: reality.torqueConstant,
        torqueCeiling: reality.torqueCeiling,
        stateLatency: reality.latencyPeriods / config.control_rate_hz,
        positionResolution: reality.positionResolution,
        velocityResolution: reality.velocityResolution,
        positionNoise: reality.positionNoise,
        velocityNoise: reality.velocityNoise,
        seed: config.seed,
      });
    }
    case "dynamixel":
      return createDynamixelDriver(config.dynamixel, model);
    case "ros2":
      // Loads rclnodejs in start(); `mbpo-arm node` is the full ROS node (parameters, services).
      return new StandaloneRos2Driver({ jointNames: model.joints.map((j) => j.name) });
  }
}
