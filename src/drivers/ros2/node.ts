/**
 * The ROS 2 node `mbpo_arm`: the control stack (robot model, safety filter, control loop, task,
 * episode runner) on the Ros2Driver, ticked by a ROS timer at `control_rate_hz` on the node's
 * clock (so `use_sim_time` slows and pauses it with Gazebo's /clock), with:
 *
 *   services  ~/start, ~/stop (safe stop: hold in place), ~/reset_fault (std_srvs/Trigger),
 *             ~/set_learning (std_srvs/SetBool)
 *   topics    ~/estop (std_msgs/Bool, true latches a safe stop until ~/reset_fault),
 *             /teleop/joint_targets (teleop mode), /diagnostics (diagnostic_msgs/DiagnosticArray)
 *   params    every setting of config/mbpo_arm.yaml (see parameters.ts), plus `controller_joints`
 *             and `teleop.*`.
 *
 * Modes: `run` runs episodes of the task with a fixed policy; `learn` does the same and hands every
 * transition to the learner hook; `teleop` follows /teleop/joint_targets through the safety filter
 * and records the transitions. Whatever the mode, a tick that has nothing else to do holds the arm
 * (gravity compensation plus damping), and every command passes the safety filter.
 */
import { type Config, defaultConfig } from "../../config/config.js";
import { holdController } from "../../control/controllers.js";
import { type EpisodeResult, EpisodeRunner, type Transition } from "../../control/episode.js";
import { ControlLoop, type ControlLoopOptions } from "../../control/loop.js";
import { createPolicy } from "../../control/policies/index.js";
import type { Policy } from "../../control/policy.js";
import { createSafetyFilter } from "../../control/stack.js";
import type { JointState } from "../../drivers/driver.js";
import { Dynamics } from "../../robot/dynamics.js";
import type { RobotModel } from "../../robot/types.js";
import { loadUrdf } from "../../robot/urdf.js";
import { INTERVENTION_KINDS, type SafetyFilter } from "../../safety/filter.js";
import { createTask, taskParamsFromConfig } from "../../tasks/index.js";
import type { Task, TaskEpisode } from "../../tasks/task.js";
import { resolveDataPath } from "../../util/paths.js";
import { Rng } from "../../util/rng.js";
import { Ros2Driver } from "./driver.js";
import {
  type ConfigParameterSpec,
  checkParameterChange,
  configParameterSpecs,
  declareConfigParameters,
  defaultConfigText,
} from "./parameters.js";
import type {
  BoolMsg,
  DiagnosticArrayMsg,
  DiagnosticStatusMsg,
  JointStateMsg,
  RclNode,
  Rclnodejs,
  RclParameter,
  RclPublisher,
  RclSetParametersResult,
  RclTimer,
  SetBoolRequest,
  TriggerResponse,
} from "./rclnodejs.js";
import { ParameterType, timeSeconds, toStamp } from "./rclnodejs.js";
import { TeleopController, type TeleopGains } from "./teleop.js";

export type NodeMode = "run" | "learn" | "teleop";
export const NODE_MODES: readonly NodeMode[] = ["run", "learn", "teleop"];

/** Where real transitions go (the MCAP transition log, a learner). Same shape as TransitionLog. */
export interface TransitionSink {
  record(t: Transition, state: JointState, next: JointState, goal: ArrayLike<number>): void;
  endEpisode(result: EpisodeResult): void;
}

/** The learner as the node sees it: it takes transitions and may be paused with ~/set_learning. */
export interface LearnerHook extends TransitionSink {
  /** Called between episodes while learning is on; the returned policy (if any) runs next. */
  afterEpisode(result: EpisodeResult): Promise<Policy | undefined>;
}

export interface NodeLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface MbpoArmNodeOptions {
  mode: NodeMode;
  /** Policy for run and learn modes (a name createPolicy knows). */
  policy?: string;
  /** Episodes to run after each ~/start (0: until ~/stop). */
  episodes?: number;
  /** Start running as soon as the first joint state arrives (else wait for ~/start). */
  autostart?: boolean;
  logger?: NodeLogger;
  /** Records real transitions (teleop recording, and every episode in run and learn modes). */
  recorder?: TransitionSink;
  learner?: LearnerHook;
}

/** A ControlLoop whose wait() returns at the next firing of the node's ROS timer. */
export class TimerPacedLoop extends ControlLoop {
  private waiter: (() => void) | undefined;

  constructor(options: ControlLoopOptions) {
    super(options);
  }

  override wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Wakes the code waiting for this tick; false when nothing was waiting. */
  pulse(): boolean {
    const waiter = this.waiter;
    if (waiter === undefined) return false;
    this.waiter = undefined;
    waiter();
    return true;
  }

  get waiting(): boolean {
    return this.waiter !== undefined;
  }
}

/** The node-level parameters that are not settings of config/mbpo_arm.yaml. */
const TELEOP_DEFAULTS: TeleopGains = { kp: 4.0, kd: 0.3, maxSpeed: 1.0, targetTimeout: 0.5 };
const TELEOP_PARAMS: Record<string, keyof TeleopGains> = {
  "teleop.kp": "kp",
  "teleop.kd": "kd",
  "teleop.max_speed": "maxSpeed",
  "teleop.target_timeout": "targetTimeout",
};

const DIAGNOSTIC_LEVEL = { OK: 0, WARN: 1, ERROR: 2 } as const;

export class MbpoArmNode {
  readonly mode: NodeMode;
  readonly specs: readonly ConfigParameterSpec[];
  config: Config;
  readonly model: RobotModel;
  readonly driver: Ros2Driver;
  readonly safety: SafetyFilter;
  readonly loop: TimerPacedLoop;
  readonly teleop: TeleopController;
  task: Task;
  runner: EpisodeRunner;
  policy: Policy | undefined;
  /** Running: episodes (run, learn) or teleop following; otherwise the arm holds. */
  running = false;
  learning: boolean;
  episodesDone = 0;
  lastResult: EpisodeResult | undefined;
  transitionsRecorded = 0;
  /** Where real transitions go (set before start(), e.g. the transition log); undefined: nowhere. */
  recorder: TransitionSink | undefined;

  private readonly rcl: Rclnodejs;
  private readonly node: RclNode;
  private readonly options: MbpoArmNodeOptions;
  private readonly log: NodeLogger;
  private readonly hold;
  private readonly episodeRng: Rng;
  private pendingConfig: Config | undefined;
  private controlTimer: RclTimer | undefined;
  private diagnosticsTimer: RclTimer | undefined;
  private diagnosticsPublisher: RclPublisher<DiagnosticArrayMsg> | undefined;
  private activity: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private closed = false;
  private autostartPending: boolean;
  private readonly teleopRecording: TeleopRecording;
  /** The state the current episode tick acted on (copied by statePolicy). */
  private readonly tickState: JointState;

  /** Builds the node's stack from its parameters; call start() to create timers and services. */
  constructor(rcl: Rclnodejs, node: RclNode, options: MbpoArmNodeOptions) {
    this.rcl = rcl;
    this.node = node;
    this.options = options;
    this.mode = options.mode;
    this.log = options.logger ?? rosLogger(node);
    this.specs = configParameterSpecs(defaultConfigText());
    const defaults: Config = { ...defaultConfig(), driver: "ros2" };
    this.config = declareConfigParameters(rcl, node, defaults, this.specs);
    if (this.config.driver !== "ros2") {
      this.log.info(
        `parameter driver (${this.config.driver}) is not used: the ROS 2 node drives through ROS`,
      );
    }
    const controllerJoints = this.declareNodeParameters();
    const config = this.config;

    this.model = loadUrdf(resolveDataPath(config.urdf));
    const dynamics = new Dynamics(this.model);
    const jointNames = this.model.joints.map((j) => j.name);
    this.driver = new Ros2Driver({
      rcl,
      node,
      jointNames,
      controllerJoints: controllerJoints.length > 0 ? controllerJoints : undefined,
      onProblem: (detail) => this.onDriverProblem(detail),
    });
    this.safety = createSafetyFilter(config, this.model, dynamics);
    this.loop = new TimerPacedLoop({
      driver: this.driver,
      joints: this.model.joints,
      dynamics,
      safety: this.safety,
      controlRateHz: config.control_rate_hz,
      gravityCompensation: config.gravity_compensation,
    });
    this.task = this.buildTask(config);
    this.runner = this.buildRunner(config);
    this.hold = holdController(config.hold_damping);
    this.teleop = new TeleopController(jointNames, this.teleopGains());
    this.recorder = options.recorder;
    this.teleopRecording = new TeleopRecording(this);
    this.episodeRng = new Rng(config.seed, 1);
    this.tickState = cloneState({
      stamp: 0,
      position: new Float64Array(this.model.dof),
      velocity: new Float64Array(this.model.dof),
      effort: new Float64Array(this.model.dof),
    });
    this.learning = options.learner !== undefined;
    this.autostartPending = options.autostart === true;
    if (this.mode !== "teleop") {
      this.policy = createPolicy(options.policy ?? "pd", {
        task: this.task,
        model: this.model,
        seed: config.seed,
      });
    }
    node.addOnSetParametersCallback((params) => this.onSetParameters(params));
  }

  /** Subscribes, advertises the services and starts the control timer. */
  async start(): Promise<void> {
    const node = this.node;
    await this.driver.start();
    const periodNs = BigInt(Math.round(1e9 / this.config.control_rate_hz));
    this.controlTimer = node.createTimer(periodNs, () => this.onTimer());
    this.diagnosticsPublisher = node.createPublisher<DiagnosticArrayMsg>(
      "diagnostic_msgs/msg/DiagnosticArray",
      "/diagnostics",
    );
    this.diagnosticsTimer = node.createTimer(1_000_000_000n, () => this.publishDiagnostics());
    node.createSubscription<BoolMsg>("std_msgs/msg/Bool", "~/estop", {}, (msg) => this.onEstop(msg));
    node.createService<object, TriggerResponse>("std_srvs/srv/Trigger", "~/start", {}, (_req, res) =>
      res.send(this.startRunning()),
    );
    node.createService<object, TriggerResponse>("std_srvs/srv/Trigger", "~/stop", {}, (_req, res) =>
      res.send(this.stopRunning("~/stop")),
    );
    node.createService<object, TriggerResponse>("std_srvs/srv/Trigger", "~/reset_fault", {}, (_req, res) =>
      res.send(this.resetFault()),
    );
    node.createService<SetBoolRequest, TriggerResponse>(
      "std_srvs/srv/SetBool",
      "~/set_learning",
      {},
      (req, res) => res.send(this.setLearning(req.data)),
    );
    if (this.mode === "teleop") {
      node.createSubscription<JointStateMsg>(
        "sensor_msgs/msg/JointState",
        "/teleop/joint_targets",
        {},
        (msg) => {
          if (!this.teleop.onTarget(msg, this.driver.now()))
            this.log.warn(this.teleop.lastProblem ?? "bad target");
        },
      );
    }
    this.log.info(
      `mbpo_arm: mode ${this.mode}, ${this.model.dof} joints [${this.driver.jointNames.join(", ")}], ` +
        `${this.config.control_rate_hz} Hz, commands on ${this.driver.commandTopic}` +
        (this.options.autostart ? ", autostart" : ", waiting for ~/start"),
    );
  }

  // ---- the control tick ------------------------------------------------------------------------

  /** The control timer: wakes an episode waiting for its tick, or ticks the hold or teleop itself. */
  onTimer(): void {
    if (this.closed) return;
    // Until the first joint state arrives there is nothing to command and nothing for the
    // watchdog to judge (a fault would only make the operator reset a node that never ran):
    // publish nothing, so the effort controller keeps its initial zero command.
    if (this.driver.readState() === undefined) return;
    if (this.loop.pulse()) return;
    if (this.autostartPending && this.driver.readState() !== undefined) {
      this.autostartPending = false;
      const reply = this.startRunning();
      if (!reply.success) this.log.warn(`autostart: ${reply.message}`);
      // The episode loop is now waiting for its first tick: this one.
      if (this.loop.pulse()) return;
    }
    if (this.mode === "teleop" && this.running && this.safety.fault === undefined) {
      this.teleop.advance(this.driver.now(), this.loop.period);
      this.teleopRecording.beforeTick();
      const report = this.loop.tick(this.teleop.source);
      this.teleopRecording.afterTick(report.anyIntervention);
      if (report.faulted) this.onFault();
      return;
    }
    const report = this.loop.tick(this.hold);
    if (report.faulted && this.running) this.onFault();
  }

  // ---- services --------------------------------------------------------------------------------

  startRunning(): TriggerResponse {
    const fault = this.safety.fault;
    if (fault !== undefined) {
      return {
        success: false,
        message: `fault latched (${fault.reason}: ${fault.detail}); call ~/reset_fault first`,
      };
    }
    if (this.driver.readState() === undefined) {
      return { success: false, message: `no joint state yet on ${this.driver.jointStatesTopic}` };
    }
    if (this.running) return { success: true, message: "already running" };
    this.running = true;
    if (this.mode === "teleop") {
      this.teleop.resync();
      this.teleopRecording.begin();
    } else {
      this.abort = new AbortController();
      this.activity = this.runEpisodes(this.abort.signal).catch((err) => {
        this.safety.latch("driver", `episode loop failed: ${(err as Error).message}`);
        this.log.error(`episode loop failed: ${(err as Error).message}`);
        this.running = false;
      });
    }
    this.log.info(`started (${this.mode})`);
    return { success: true, message: `started (${this.mode})` };
  }

  /** Safe stop: ends the episode or teleop; the arm holds where it is (gravity compensation plus damping). */
  stopRunning(why: string): TriggerResponse {
    if (!this.running) return { success: true, message: "already stopped; holding" };
    this.running = false;
    this.abort?.abort();
    // Wake an episode waiting for its tick now: it sees the abort and ends without ticking, so the
    // next timer tick holds.
    this.loop.pulse();
    if (this.mode === "teleop") this.teleopRecording.end(false);
    this.log.info(`stopped (${why}); holding`);
    return { success: true, message: "stopped; holding" };
  }

  resetFault(): TriggerResponse {
    const fault = this.safety.fault;
    if (fault === undefined) return { success: true, message: "no fault latched" };
    if (!this.safety.resetFault()) {
      return {
        success: false,
        message: `fault ${fault.reason} stays latched: the last joint state is missing, stale, non-finite or out of range`,
      };
    }
    this.teleop.resync();
    this.log.info(`fault ${fault.reason} cleared (${fault.detail})`);
    return { success: true, message: `cleared ${fault.reason}` };
  }

  setLearning(on: boolean): TriggerResponse {
    if (this.mode !== "learn") return { success: false, message: `not in learn mode (mode ${this.mode})` };
    if (this.options.learner === undefined) return { success: false, message: "no learner attached" };
    this.learning = on;
    this.log.info(`learning ${on ? "on" : "off"}`);
    return { success: true, message: `learning ${on ? "on" : "off"}` };
  }

  onEstop(msg: BoolMsg): void {
    if (msg.data !== true) return;
    this.safety.latch("estop", `e-stop on ${this.node.name()}/estop`, this.driver.now());
    this.stopRunning("e-stop");
    this.log.warn("e-stop: safe stop latched; call ~/reset_fault to clear it");
  }

  // ---- episodes --------------------------------------------------------------------------------

  private async runEpisodes(signal: AbortSignal): Promise<void> {
    const total = this.options.episodes ?? 0;
    // Every tick of the episodes happens on a timer tick (one per period): start on the next one.
    await this.loop.wait();
    for (let i = 0; (total === 0 || i < total) && !signal.aborted; i++) {
      if (this.pendingConfig !== undefined) this.applyPendingConfig();
      const episode = this.task.sampleEpisode(this.episodeRng);
      const recorder = this.recorderFor();
      const policy = recorder !== undefined ? this.statePolicy(this.policy!) : this.policy!;
      const result = await this.runner.runEpisode(this.episodesDone, episode, policy, {
        signal,
        onTransition: recorder !== undefined ? (t) => this.forward(recorder, t, episode) : undefined,
      });
      recorder?.endEpisode(result);
      this.episodesDone++;
      this.lastResult = result;
      this.log.info(
        `episode ${result.episode}: return ${result.return.toFixed(2)}, ${result.success ? "success" : "no success"}, ` +
          `distance ${result.finalDistance.toFixed(3)}${result.fault ? `, fault ${result.fault}` : ""}`,
      );
      if (result.fault !== undefined) {
        this.onFault();
        return;
      }
      if (this.mode === "learn" && this.learning && this.options.learner !== undefined && !signal.aborted) {
        // The timer holds the arm meanwhile; the next episode starts on a timer tick.
        const next = await this.options.learner.afterEpisode(result);
        if (next !== undefined) this.policy = next;
        await this.loop.wait();
      }
    }
    if (!signal.aborted) {
      this.running = false;
      this.log.info(`${total} episodes done; holding`);
    }
  }

  /** Feeds one transition to the log and the learner, with the states it joins. */
  private forward(sink: TransitionSink, t: Transition, episode: TaskEpisode): void {
    const next = this.driver.readState();
    if (next === undefined) return;
    sink.record(t, this.tickState, next, episode.goal);
    this.transitionsRecorded++;
  }

  /** The policy, plus a copy of the state each tick acts on (the transition's `state`). */
  private statePolicy(inner: Policy): Policy {
    const tickState = this.tickState;
    return {
      name: inner.name,
      reset: (episode) => inner.reset(episode),
      act: (obs, ctx, out) => {
        copyState(ctx.state, tickState);
        inner.act(obs, ctx, out);
      },
    };
  }

  private recorderFor(): TransitionSink | undefined {
    const sinks: TransitionSink[] = [];
    if (this.recorder !== undefined) sinks.push(this.recorder);
    if (this.mode === "learn" && this.learning && this.options.learner !== undefined)
      sinks.push(this.options.learner);
    if (sinks.length === 0) return undefined;
    if (sinks.length === 1) return sinks[0];
    return {
      record: (t, s, n, g) => {
        for (const sink of sinks) sink.record(t, s, n, g);
      },
      endEpisode: (r) => {
        for (const sink of sinks) sink.endEpisode(r);
      },
    };
  }

  private onFault(): void {
    const fault = this.safety.fault;
    if (this.running) this.stopRunning(`fault ${fault?.reason}`);
    if (fault !== undefined) this.log.error(`safety fault latched: ${fault.reason}: ${fault.detail}`);
  }

  private onDriverProblem(detail: string): void {
    // A joint_states message we cannot use (a joint missing, arrays of the wrong length) means the
    // arm's state is unknown: latch a safe stop rather than wait for the staleness watchdog.
    if (this.safety.fault === undefined) {
      this.safety.latch("driver", detail, this.driver.now());
      this.log.error(`safe stop: ${detail}`);
    }
  }

  // ---- parameters ------------------------------------------------------------------------------

  private declareNodeParameters(): string[] {
    const rcl = this.rcl;
    const node = this.node;
    const joints = new rcl.ParameterDescriptor(
      "controller_joints",
      ParameterType.PARAMETER_STRING_ARRAY,
      "the effort controller's joints, in its order (empty: the URDF's order) (read-only: fixed at startup)",
      true,
    );
    node.declareParameter(
      new rcl.Parameter("controller_joints", ParameterType.PARAMETER_STRING_ARRAY, []),
      joints,
    );
    const descriptions: Record<string, string> = {
      "teleop.kp": "teleop PD stiffness, N·m/rad",
      "teleop.kd": "teleop PD damping, N·m·s/rad",
      "teleop.max_speed": "fastest the teleop reference walks toward the target, rad/s",
      "teleop.target_timeout": "teleop targets older than this (s) are ignored and the arm holds",
    };
    for (const [name, key] of Object.entries(TELEOP_PARAMS)) {
      const descriptor = new rcl.ParameterDescriptor(
        name,
        ParameterType.PARAMETER_DOUBLE,
        descriptions[name],
        false,
        new rcl.FloatingPointRange(0, name === "teleop.kp" ? 100 : 10, 0),
      );
      try {
        node.declareParameter(
          new rcl.Parameter(name, ParameterType.PARAMETER_DOUBLE, TELEOP_DEFAULTS[key]),
          descriptor,
        );
      } catch (err) {
        throw new Error(`parameter "${name}": ${(err as Error).message.split("\n")[0]}`);
      }
    }
    const value = node.getParameter("controller_joints").value;
    return Array.isArray(value) ? value.map(String) : [];
  }

  private teleopGains(): TeleopGains {
    const gains = { ...TELEOP_DEFAULTS };
    for (const [name, key] of Object.entries(TELEOP_PARAMS))
      gains[key] = Number(this.node.getParameter(name).value);
    return gains;
  }

  /** Vetoes a parameter change the schema rejects; takes the rest at the next episode boundary. */
  onSetParameters(params: RclParameter[]): RclSetParametersResult {
    const { result, config } = checkParameterChange(this.config, params, this.specs);
    if (!result.successful) return result;
    const gains = { ...this.teleop.gains };
    for (const p of params) {
      const key = TELEOP_PARAMS[p.name];
      if (key === undefined) continue;
      const v = Number(p.value);
      if (!(Number.isFinite(v) && v >= 0))
        return { successful: false, reason: `${p.name}: must be a number ≥ 0` };
      gains[key] = v;
    }
    this.teleop.gains = gains;
    if (config !== undefined && params.some((p) => this.specs.some((s) => s.name === p.name))) {
      this.pendingConfig = config;
      if (!this.running) this.applyPendingConfig();
    }
    return result;
  }

  private applyPendingConfig(): void {
    const config = this.pendingConfig;
    if (config === undefined) return;
    this.pendingConfig = undefined;
    this.config = config;
    this.task = this.buildTask(config);
    this.runner = this.buildRunner(config);
    this.log.info("parameters applied");
  }

  private buildTask(config: Config): Task {
    return createTask(config.task.name, this.model, taskParamsFromConfig(config.task));
  }

  private buildRunner(config: Config): EpisodeRunner {
    return new EpisodeRunner(this.loop, this.task, this.model.joints, {
      actionTorqueFraction: config.action_torque_fraction,
      actionDamping: config.action_damping,
      holdDamping: config.hold_damping,
      reset: config.reset,
    });
  }

  // ---- diagnostics -----------------------------------------------------------------------------

  diagnostics(): DiagnosticArrayMsg {
    const fault = this.safety.fault;
    const state = this.driver.readState();
    const timing = this.loop.timing.summary();
    let level: number = DIAGNOSTIC_LEVEL.OK;
    let message = this.running ? `running (${this.mode})` : "holding";
    if (fault !== undefined) {
      level = DIAGNOSTIC_LEVEL.ERROR;
      message = `fault ${fault.reason}: ${fault.detail}`;
    } else if (state === undefined) {
      level = DIAGNOSTIC_LEVEL.WARN;
      message = `no joint state on ${this.driver.jointStatesTopic}`;
    }
    const r = this.lastResult;
    const values: [string, string | number | boolean | undefined][] = [
      ["mode", this.mode],
      ["running", this.running],
      ["learning", this.learning],
      ["fault", fault ? `${fault.reason}: ${fault.detail}` : "none"],
      ["ticks", this.loop.ticks],
      ["tick_compute_median_us", timing.compute.medianUs.toFixed(1)],
      ["tick_compute_p99_us", timing.compute.p99Us.toFixed(1)],
      ["tick_compute_max_us", timing.compute.maxUs.toFixed(1)],
      ["joint_states_received", this.driver.received],
      ["joint_states_rejected", this.driver.rejected],
      ["velocity_estimated", this.driver.velocityEstimated],
      ["last_joint_states_problem", this.driver.lastProblem ?? "none"],
      ["episodes_done", this.episodesDone],
      ["last_return", r ? r.return.toFixed(3) : "none"],
      ["last_success", r ? r.success : "none"],
      ["last_final_distance_m", r ? r.finalDistance.toFixed(4) : "none"],
      ["transitions_recorded", this.transitionsRecorded],
    ];
    if (this.mode === "teleop") {
      values.push(["teleop_targets_received", this.teleop.targetsReceived]);
      values.push(["teleop_targets_rejected", this.teleop.targetsRejected]);
    }
    for (const kind of INTERVENTION_KINDS) values.push([`interventions.${kind}`, this.safety.counts[kind]]);
    const status: DiagnosticStatusMsg = {
      level,
      name: `${this.node.name()}: control`,
      message,
      hardware_id: "mbpo_arm",
      values: values.map(([key, v]) => ({ key, value: String(v) })),
    };
    return { header: { stamp: toStamp(timeSeconds(this.node.now())), frame_id: "" }, status: [status] };
  }

  publishDiagnostics(): void {
    if (!this.closed) this.diagnosticsPublisher?.publish(this.diagnostics());
  }

  // ---- shutdown --------------------------------------------------------------------------------

  /** Stops safely: ends the activity, sends zero effort, cancels the timers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stopRunning("shutdown");
    this.closed = true;
    await this.activity;
    this.controlTimer?.cancel();
    this.diagnosticsTimer?.cancel();
    await this.driver.stop();
  }
}

/**
 * Teleop transitions: each tick's observation, the effort sent and the state it led to, in
 * segments of the task's episode length (each with its own sampled goal, so rewards can be
 * relabelled later), written to the recorder.
 */
class TeleopRecording {
  private readonly owner: MbpoArmNode;
  private transition: Transition | undefined;
  private prev: JointState | undefined;
  private episode: TaskEpisode | undefined;
  private index = 0;
  private step = 0;
  private returnSum = 0;
  private countsBefore: Record<string, number> = {};
  private readonly rng: Rng;
  private pendingStep = false;

  constructor(owner: MbpoArmNode) {
    this.owner = owner;
    this.rng = new Rng(owner.config.seed, 2);
  }

  private get sink(): TransitionSink | undefined {
    return this.owner.recorder;
  }

  begin(): void {
    const task = this.owner.task;
    this.episode = task.sampleEpisode(this.rng);
    this.step = 0;
    this.returnSum = 0;
    this.countsBefore = { ...this.owner.safety.counts };
    this.prev = undefined;
    const dof = this.owner.model.dof;
    this.transition ??= {
      episode: 0,
      step: 0,
      obs: new Float32Array(task.observationSize),
      action: new Float32Array(task.actionSize),
      effort: new Float64Array(dof),
      reward: 0,
      nextObs: new Float32Array(task.observationSize),
      terminated: false,
      truncated: false,
      interventions: 0,
    };
  }

  /** Before the tick: the state the command will act on. */
  beforeTick(): void {
    const state = this.owner.driver.readState();
    if (this.sink === undefined || this.episode === undefined || state === undefined) return;
    if (this.prev !== undefined && this.transition !== undefined) this.finish(state);
    this.prev = this.prev ?? cloneState(state);
    copyState(state, this.prev);
    this.owner.task.observe(state.position, state.velocity, this.episode.goal, this.transition!.obs);
  }

  /** After the tick: the effort sent and the action it amounts to (gravity removed, normalised). */
  afterTick(intervened: boolean): void {
    const t = this.transition;
    if (this.sink === undefined || t === undefined || this.prev === undefined) return;
    const loop = this.owner.loop;
    const scale = this.owner.runner.torqueScale;
    for (let i = 0; i < t.effort.length; i++) {
      t.effort[i] = loop.sent[i];
      t.action[i] = Math.max(-1, Math.min(1, (loop.sent[i] - loop.gravity[i]) / scale[i]));
    }
    t.interventions = intervened ? 1 : 0;
    this.pendingStep = true;
  }

  /** Completes the last tick's transition with the state it led to. */
  private finish(next: JointState): void {
    if (!this.pendingStep) return;
    this.pendingStep = false;
    const t = this.transition!;
    const task = this.owner.task;
    const episode = this.episode!;
    task.observe(next.position, next.velocity, episode.goal, t.nextObs);
    t.episode = this.index;
    t.step = this.step;
    t.reward = task.reward(t.obs, t.action, t.nextObs);
    t.terminated = false;
    t.truncated = this.step === task.episodeSteps - 1;
    this.returnSum += t.reward;
    this.sink!.record(t, this.prev!, next, episode.goal);
    this.owner.transitionsRecorded++;
    this.step++;
    if (t.truncated) {
      this.end(true);
      this.begin();
    }
  }

  /** Closes the current segment (stop, fault or full length). */
  end(full: boolean): void {
    if (this.sink === undefined || this.episode === undefined || this.step === 0) return;
    // Safety interventions during the segment, by kind (as EpisodeRunner reports them).
    const interventions: Record<string, number> = {};
    for (const [kind, count] of Object.entries(this.owner.safety.counts as Record<string, number>)) {
      const delta = count - (this.countsBefore[kind] ?? 0);
      if (delta > 0) interventions[kind] = delta;
    }
    const result: EpisodeResult = {
      episode: this.index,
      steps: this.step,
      return: this.returnSum,
      success: false,
      finalDistance: Number.NaN,
      resetReached: true,
      interventions,
      peakEffortFraction: [],
      aborted: !full,
    };
    this.sink.endEpisode(result);
    this.index++;
    this.step = 0;
    this.pendingStep = false;
  }
}

function cloneState(s: JointState): JointState {
  return {
    stamp: s.stamp,
    position: Float64Array.from(s.position),
    velocity: Float64Array.from(s.velocity),
    effort: Float64Array.from(s.effort),
  };
}

function copyState(from: JointState, to: JointState): void {
  to.stamp = from.stamp;
  to.position.set(from.position);
  to.velocity.set(from.velocity);
  to.effort.set(from.effort);
}

function rosLogger(node: RclNode): NodeLogger {
  const l = node.getLogger();
  return { info: (m) => l.info(m), warn: (m) => l.warn(m), error: (m) => l.error(m) };
}
