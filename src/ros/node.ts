/**
 * The ROS 2 node `mbpo_arm`: a front end over the application core (src/app/), as the CLI is.
 * The core runs the episodes and the learning; the node gives it a ROS face:
 *
 *   services  ~/start, ~/stop (ends the episode; learn mode saves a checkpoint; then holds),
 *             ~/reset_fault, ~/save_checkpoint (std_srvs/Trigger), ~/set_learning (std_srvs/SetBool)
 *   topics    ~/estop (std_msgs/Bool: true latches the safe stop), /teleop/joint_targets (teleop
 *             mode), /diagnostics, ~/learning_progress (learn mode, see diagnostics.ts)
 *   params    every setting of config/mbpo_arm.yaml (parameters.ts), plus the node's own
 *             (node-parameters.ts: controller_joints, teleop.*, learn mode's run)
 *
 * The arm is the `driver` the node was started with: "ros2" (joint states and efforts on topics,
 * ticked by the node's ROS timer, TimerPacedLoop) or "sim" (the embedded twin, pacing itself, for a
 * ROS graph without an arm). Modes: `run` (a fixed policy, N episodes per ~/start or until ~/stop),
 * `learn` (what `mbpo-arm train` does, same run directory), `teleop` (follow /teleop/joint_targets,
 * recording). Whatever the mode, a tick with nothing else to do holds the arm, a latched fault's
 * safe stop goes on until ~/reset_fault, and every command passes the safety filter.
 */

import { join } from "node:path";
import { ArmApp } from "../app/app.js";
import type { AppEvent } from "../app/events.js";
import type { AppLogger, LearningRun } from "../app/learning.js";
import { hyperparameterSettings } from "../app/run-setup.js";
import { configForRun, createLearningRun, type LearnSetup, prepareLearning } from "../app/train.js";
import type { TransitionSink } from "../app/transitions.js";
import { type Config, defaultConfig, descriptionOptions } from "../config/config.js";
import { holdController } from "../control/controllers.js";
import { hardwareDriver } from "../control/delay-compensation.js";
import type { EpisodeResult, EpisodeRunner } from "../control/episode.js";
import type { ControlLoop, TorqueSource } from "../control/loop.js";
import { createPolicy } from "../control/policies/index.js";
import type { Policy } from "../control/policy.js";
import { reconfigureEpisodes } from "../control/stack.js";
import { SOURCE_TELEOP } from "../data/log-messages.js";
import { defaultRunDir } from "../data/transition-log.js";
import type { Driver } from "../drivers/driver.js";
import { Ros2Driver } from "../drivers/ros2/driver.js";
import type {
  BoolMsg,
  DiagnosticArrayMsg,
  Float64MultiArrayMsg,
  JointStateMsg,
  RclNode,
  Rclnodejs,
  RclParameter,
  RclPublisher,
  RclSetParametersResult,
  RclTimer,
  SetBoolRequest,
  TriggerResponse,
} from "../drivers/ros2/rclnodejs.js";
import { timeSeconds, toStamp } from "../drivers/ros2/rclnodejs.js";
import { loadRobotDescription } from "../robot/description.js";
import { Dynamics } from "../robot/dynamics.js";
import type { RobotModel } from "../robot/types.js";
import type { SafetyFilter } from "../safety/filter.js";
import type { Task } from "../tasks/task.js";
import type { TrainSummary } from "../train/run-dir.js";
import { resolveDataPath } from "../util/paths.js";
import { ARM_PARAMETERS, checkArmParameterChange, declareArmParameters } from "./arm-parameters.js";
import { fillProgress, progressMessage, statusValues } from "./diagnostics.js";
import {
  declareControllerJoints,
  declareLearnParameters,
  declareTeleopParameters,
  LEARN_DEFAULTS,
  type LearnParameters,
  TELEOP_PARAMS,
} from "./node-parameters.js";
import {
  type ConfigParameterSpec,
  checkParameterChange,
  configParameterSpecs,
  declareConfigParameters,
  defaultConfigText,
} from "./parameters.js";
import { TeleopController } from "./teleop.js";
import { TeleopRecording } from "./teleop-recording.js";
import { TimerPacedLoop } from "./timer-loop.js";

export type NodeMode = "run" | "learn" | "teleop";
export const NODE_MODES: readonly NodeMode[] = ["run", "learn", "teleop"];
export type NodeDriver = "ros2" | "sim";

export interface NodeLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

/** Learn mode: the node's learn parameters' defaults (the command's flags) and what only flags give. */
export interface NodeLearnOptions extends Partial<LearnParameters> {
  /** `--hp section.key=value` overrides (values parsed as YAML). */
  hp?: Record<string, unknown>;
  tfBackend?: string;
  tfThreads?: number;
  bootstrap?: LearnSetup["bootstrap"];
  transitionLog?: boolean;
  /** Tests only: a test double of the learner module. */
  learnerModule?: string;
}

export interface MbpoArmNodeOptions {
  mode: NodeMode;
  /** The arm: on ROS topics (default) or the embedded twin. */
  driver?: NodeDriver;
  /** Policy for run mode (a name createPolicy knows, or checkpoint:DIR). */
  policy?: string;
  /** Episodes to run after each ~/start (0: until ~/stop). */
  episodes?: number;
  /** Start as soon as the first joint state arrives (else wait for ~/start). */
  autostart?: boolean;
  logger?: NodeLogger;
  /** Run and teleop modes: where transitions go, instead of DIR/transitions.mcap (tests). */
  recorder?: TransitionSink;
  /** Run and teleop modes: write DIR/transitions.mcap. */
  runLogDir?: string;
  learn?: NodeLearnOptions;
  /** Called once the work of one ~/start has ended by itself (the episodes or steps asked for). */
  onFinished?: () => void;
  /** The settings' defaults, before the parameter overrides (default: the built-in defaults). */
  defaults?: Config;
  /**
   * A description file that replaces the `urdf` parameter (the robot description read from the
   * graph: src/ros/robot-description.ts); a resumed learning run keeps its own.
   */
  description?: string;
}

/** The parts of a started node that other code (and tests) look at. */
export class MbpoArmNode {
  readonly mode: NodeMode;
  readonly specs: readonly ConfigParameterSpec[];
  readonly app: ArmApp;
  readonly teleop: TeleopController;
  policy: Policy | undefined;
  /** Running: episodes (run, learn) or teleop following; otherwise the arm holds. */
  running = false;
  episodesDone = 0;
  lastResult: EpisodeResult | undefined;
  transitionsRecorded = 0;
  /** The learning run (learn mode, once started). */
  learning: LearningRun | undefined;
  /** Whether the last ~/start's work ended in a fault (for the command's exit code). */
  faulted = false;

  private readonly node: RclNode;
  private readonly options: MbpoArmNodeOptions;
  private readonly log: NodeLogger;
  private readonly learnParams: LearnParameters;
  private readonly timerLoop: TimerPacedLoop | undefined;
  private hold: TorqueSource;
  private readonly teleopRecording: TeleopRecording;
  private readonly progress: Float64MultiArrayMsg = progressMessage();
  private pendingConfig: Config | undefined;
  private timers: RclTimer[] = [];
  private diagnosticsPublisher: RclPublisher<DiagnosticArrayMsg> | undefined;
  private progressPublisher: RclPublisher<Float64MultiArrayMsg> | undefined;
  private activity: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private idle: { wake: () => void; done: Promise<unknown> } | undefined;
  private checkpointRequested = false;
  /** close() has begun: no new activity; the timer still ticks until the arm is at rest. */
  private closing = false;
  /** close() has ended: the driver is stopped and the timers cancelled. */
  private closed = false;
  private autostartPending: boolean;
  /** start() has finished: the learner (learn mode) or the log is ready. */
  private ready = false;
  /** Learn mode: the run's summary, once close() has finished it. */
  summary: TrainSummary | undefined;

  /** Learn mode: the run's directory (once the learner has been set up). */
  get runDir(): string | undefined {
    return this.learning?.out;
  }

  /** Declares the parameters and builds the stack; call start() to create timers and services. */
  constructor(rcl: Rclnodejs, node: RclNode, options: MbpoArmNodeOptions) {
    this.node = node;
    this.options = options;
    this.mode = options.mode;
    this.log = options.logger ?? rosLogger(node);
    this.specs = configParameterSpecs(defaultConfigText());
    const driver: NodeDriver = options.driver ?? "ros2";
    this.learnParams = declareLearnParameters(rcl, node, {
      ...LEARN_DEFAULTS,
      ...definedOnly(options.learn),
    });
    // A resumed run keeps its own settings (its config.yaml): they are declared as they are.
    const resumed = this.mode === "learn" && this.learnParams.resume !== "";
    const base = resumed
      ? configForRun({ out: this.learnParams.resume, resume: true })
      : (options.defaults ?? defaultConfig());
    const fixed = resumed ? this.specs.map((spec) => spec.name) : [];
    const description = options.description;
    if (description !== undefined && resumed)
      this.log.info(
        `the robot description read from the graph is not used: a resumed run keeps its own (${base.urdf})`,
      );
    const urdf = description !== undefined && !resumed ? { urdf: description } : {};
    if (description !== undefined && !resumed) fixed.push("urdf");
    const declared = declareConfigParameters(rcl, node, { ...base, driver, ...urdf }, this.specs, fixed);
    // `driver` is the node's to decide (its --driver flag), whatever a params file says.
    if (declared.driver !== driver) {
      this.log.info(
        `parameter driver (${declared.driver}) is not used: this node drives ${driver} (--driver)`,
      );
    }
    // The gains derived from the arm are parameters too, declared once the arm is known.
    const model = loadRobotDescription(resolveDataPath(declared.urdf), descriptionOptions(declared));
    const config: Config = declareArmParameters(
      rcl,
      node,
      { ...declared, driver },
      model,
      new Dynamics(model),
      resumed,
    );
    const controllerJoints = declareControllerJoints(rcl, node);
    const gains = declareTeleopParameters(rcl, node);
    const ros = driver === "ros2";
    this.app = ArmApp.create({
      config,
      logger: appLogger(this.log),
      recorder: options.recorder,
      emit: (event) => this.onEvent(event),
      parts: ros
        ? {
            driver: (model: RobotModel) =>
              new Ros2Driver({
                rcl,
                node,
                jointNames: model.joints.map((j) => j.name),
                controllerJoints: controllerJoints.length > 0 ? controllerJoints : undefined,
                onProblem: (detail) => this.onDriverProblem(detail),
              }),
            loop: (loopOptions) => new TimerPacedLoop(loopOptions),
          }
        : {},
      pacing: ros ? (stack) => (stack.loop as TimerPacedLoop).pacing : undefined,
    });
    this.timerLoop = ros ? (this.app.stack.loop as TimerPacedLoop) : undefined;
    this.hold = holdController(this.app.stack.gains.holdDamping);
    this.teleop = new TeleopController(this.driver.jointNames, gains);
    this.teleopRecording = new TeleopRecording(this);
    this.autostartPending = options.autostart === true;
    if (this.mode === "run") this.policy = this.runPolicy();
    node.addOnSetParametersCallback((params) => this.onSetParameters(params));
  }

  /** Run mode's policy, with the stack's PD gains (reset.kp/kd) for the pd and excite policies. */
  private runPolicy(): Policy {
    return createPolicy(this.options.policy ?? "pd", {
      task: this.task,
      model: this.model,
      seed: this.config.seed,
      pd: { kp: this.app.stack.gains.resetKp, kd: this.app.stack.gains.resetKd },
    });
  }

  // ---- what the node drives (the app's stack) --------------------------------------------------

  get config(): Config {
    return this.app.stack.config;
  }
  get model(): RobotModel {
    return this.app.stack.model;
  }
  get driver(): Driver {
    return this.app.stack.driver;
  }
  get safety(): SafetyFilter {
    return this.app.stack.safety;
  }
  get loop(): ControlLoop {
    return this.app.stack.loop;
  }
  get task(): Task {
    return this.app.stack.task;
  }
  get runner(): EpisodeRunner {
    return this.app.stack.runner;
  }
  get recorder(): TransitionSink | undefined {
    return this.app.transitionLog ?? this.options.recorder;
  }

  // ---- start -----------------------------------------------------------------------------------

  /**
   * Starts the driver, then (learn mode) the learner and the run directory, or (run and teleop)
   * the transition log; then the timers, topics and services. `signal` (the node's shutdown) cuts
   * a learner's pre-training on a bootstrap short, so that a stop during it ends within seconds.
   */
  async start(signal?: AbortSignal): Promise<void> {
    await this.app.start();
    // Timers first: the arm is held while the learner or the log starts.
    this.advertise();
    if (this.mode === "learn") await this.startLearning(signal);
    else if (this.options.runLogDir !== undefined && this.options.recorder === undefined) {
      const log = await this.app.openRunLog(
        this.options.runLogDir,
        this.mode === "teleop" ? SOURCE_TELEOP : undefined,
      );
      this.log.info(`transition log: ${log.path}`);
    }
    this.ready = true;
    const hardware = hardwareDriver(this.driver);
    const where =
      hardware instanceof Ros2Driver ? `commands on ${hardware.commandTopic}` : `driver ${hardware.name}`;
    this.log.info(
      `mbpo_arm: mode ${this.mode}, ${this.model.dof} joints [${this.driver.jointNames.join(", ")}], ` +
        `${this.config.control_rate_hz} Hz, ${where}` +
        (this.options.autostart ? ", autostart" : ", waiting for ~/start"),
    );
    if (this.timerLoop === undefined) {
      // A self-paced arm (the twin) has no timer to hold it: the app holds it between activities.
      if (this.autostartPending) {
        this.autostartPending = false;
        this.reportAutostart(this.startRunning());
      } else this.holdIdle();
    }
  }

  private async startLearning(signal?: AbortSignal): Promise<void> {
    const p = this.learnParams;
    const resume = p.resume !== "";
    const learn = this.options.learn ?? {};
    const setup: LearnSetup = {
      out: resume ? p.resume : p.out !== "" ? p.out : defaultRunDir("node"),
      resume,
      config: this.config,
      settings: resume
        ? undefined
        : {
            algo: p.algo as "mbpo" | "sac",
            steps: p.steps,
            seed: this.config.seed,
            evalEvery: p.evalEvery,
            evalEpisodes: p.evalEpisodes,
            checkpointEvery: p.checkpointEvery,
            ...hyperparameterSettings(p.profile === "" ? undefined : p.profile, learn.hp ?? {}),
          },
      steps: resume && p.steps > 0 ? p.steps : undefined,
      tfBackend: learn.tfBackend,
      tfThreads: learn.tfThreads,
      bootstrap: learn.bootstrap,
      transitionLog: learn.transitionLog,
      learnerModule: learn.learnerModule,
    };
    if (resume) this.log.info(`learn: resuming ${setup.out} with its own settings (its config.yaml)`);
    const ready = await prepareLearning(setup, this.app.stack);
    this.learning = createLearningRun(this.app, ready, setup, (event) => this.onEvent(event));
    await this.learning.start(signal);
    this.log.info(`learn: run directory ${ready.out}, ${this.learning.realSteps} real steps so far`);
  }

  private advertise(): void {
    const node = this.node;
    if (this.timerLoop !== undefined) {
      const periodNs = BigInt(Math.round(1e9 / this.config.control_rate_hz));
      this.timers.push(node.createTimer(periodNs, () => this.onTimer()));
    }
    this.diagnosticsPublisher = node.createPublisher<DiagnosticArrayMsg>(
      "diagnostic_msgs/msg/DiagnosticArray",
      "/diagnostics",
    );
    if (this.mode === "learn") {
      this.progressPublisher = node.createPublisher<Float64MultiArrayMsg>(
        "std_msgs/msg/Float64MultiArray",
        "~/learning_progress",
      );
    }
    this.timers.push(node.createTimer(1_000_000_000n, () => this.publishDiagnostics()));
    node.createSubscription<BoolMsg>("std_msgs/msg/Bool", "~/estop", {}, (msg) => this.onEstop(msg));
    const trigger = (name: string, handler: () => TriggerResponse) =>
      node.createService<object, TriggerResponse>("std_srvs/srv/Trigger", name, {}, (_req, res) =>
        res.send(handler()),
      );
    trigger("~/start", () => this.startRunning());
    trigger("~/stop", () => this.stopRunning("~/stop"));
    trigger("~/reset_fault", () => this.resetFault());
    trigger("~/save_checkpoint", () => this.saveCheckpoint());
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
  }

  // ---- the control tick (a ROS-timed arm) -------------------------------------------------------

  /** The control timer: wakes an episode waiting for its tick, or ticks the hold or teleop itself. */
  onTimer(): void {
    const loop = this.timerLoop;
    if (this.closed || loop === undefined) return;
    // Until the first joint state arrives there is nothing to command and nothing for the
    // watchdog to judge: publish nothing, so the effort controller keeps its initial zero command.
    if (this.driver.readState() === undefined) return;
    if (loop.pulse()) return;
    if (this.autostartPending && this.ready) {
      this.autostartPending = false;
      this.reportAutostart(this.startRunning());
      // The activity now waits for its first tick: this one.
      if (loop.pulse()) return;
    }
    if (this.mode === "teleop" && this.running && this.safety.fault === undefined) {
      this.teleop.advance(this.driver.now(), loop.period);
      this.teleopRecording.beforeTick();
      const report = loop.idleTick(this.teleop.source);
      this.teleopRecording.afterTick(report.anyIntervention);
      if (report.faulted) this.onFault();
      return;
    }
    // Nothing waits: the hold (or, with a fault latched, the safety filter's safe stop).
    const report = loop.idleTick(this.hold);
    if (report.faulted && this.running && this.mode === "teleop") this.onFault();
  }

  private reportAutostart(reply: TriggerResponse): void {
    if (!reply.success) this.log.warn(`autostart: ${reply.message}`);
  }

  /** A self-paced arm between activities: the app's hold, until the next ~/start or close(). */
  private holdIdle(): void {
    if (this.timerLoop !== undefined || this.idle !== undefined || this.closing) return;
    let wake = () => {};
    const until = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.idle = { wake, done: this.app.pacing.holdWhile(until, []) };
  }

  private async endIdle(): Promise<void> {
    const idle = this.idle;
    if (idle === undefined) return;
    this.idle = undefined;
    idle.wake();
    await idle.done;
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
    if (this.closing) return { success: false, message: "shutting down" };
    if (this.driver.readState() === undefined) {
      const hardware = hardwareDriver(this.driver);
      const topic = hardware instanceof Ros2Driver ? ` on ${hardware.jointStatesTopic}` : "";
      return { success: false, message: `no joint state yet${topic}` };
    }
    if (this.running) return { success: true, message: "already running" };
    if (!this.ready)
      return { success: false, message: "starting: the learner or the transition log is not ready yet" };
    if (this.learning?.learnerFailed) {
      return {
        success: false,
        message: `the learner failed (${this.learning.fault}); restart the node with resume:=${this.learning.out}`,
      };
    }
    if (this.mode === "learn" && this.learning?.done) {
      return {
        success: false,
        message: `the run has reached its ${this.learning.stepsTarget} steps; restart with a higher steps:=N`,
      };
    }
    this.running = true;
    this.faulted = false;
    if (this.mode === "teleop") {
      this.teleop.resync();
      this.teleopRecording.begin();
    } else {
      const abort = new AbortController();
      this.abort = abort;
      this.activity = this.runActivity(abort.signal).catch((err) => {
        this.safety.latch("driver", `episode loop failed: ${(err as Error).message}`);
        this.log.error(`episode loop failed: ${(err as Error).message}`);
        this.running = false;
      });
    }
    this.log.info(`started (${this.mode})`);
    return { success: true, message: `started (${this.mode})` };
  }

  /** Ends the episode (learn mode: then saves a checkpoint); the arm holds where it is. */
  stopRunning(why: string): TriggerResponse {
    if (!this.running) return { success: true, message: "already stopped; holding" };
    this.running = false;
    this.abort?.abort();
    // Wake an episode waiting for its tick now: it sees the abort and ends without ticking.
    this.timerLoop?.pulse();
    if (this.mode === "teleop") this.teleopRecording.end(false);
    this.log.info(`stopped (${why}); holding`);
    const saving = this.mode === "learn" ? "; a checkpoint is saved" : "";
    return { success: true, message: `stopped; holding${saving}` };
  }

  resetFault(): TriggerResponse {
    const fault = this.safety.fault;
    if (fault === undefined) return { success: true, message: "no fault latched" };
    if (!this.safety.resetFault()) {
      return {
        success: false,
        message: `fault ${fault.reason} stays latched: the e-stop is asserted, or the last joint state is missing, stale, non-finite or out of range`,
      };
    }
    this.teleop.resync();
    this.log.info(`fault ${fault.reason} cleared (${fault.detail})`);
    return { success: true, message: `cleared ${fault.reason}` };
  }

  setLearning(on: boolean): TriggerResponse {
    if (this.mode !== "learn") return { success: false, message: `not in learn mode (mode ${this.mode})` };
    if (this.learning === undefined) return { success: false, message: "the learner has not started" };
    this.learning.learning = on;
    const what = on ? "learning on" : "learning paused: episodes go on with the current actor (mean action)";
    this.log.info(what);
    return { success: true, message: what };
  }

  /** Learn mode: a checkpoint now when holding, else at the end of the current episode. */
  saveCheckpoint(): TriggerResponse {
    if (this.mode !== "learn" || this.learning === undefined)
      return { success: false, message: `no learning run (mode ${this.mode})` };
    if (this.learning.learnerFailed)
      return { success: false, message: `the learner failed: ${this.learning.fault}` };
    const dir = join(this.learning.out, "checkpoint");
    if (this.running) {
      this.checkpointRequested = true;
      return { success: true, message: `checkpoint requested: written to ${dir} after the current episode` };
    }
    const learning = this.learning;
    this.activity = (this.activity ?? Promise.resolve()).then(() => learning.saveCheckpoint());
    return { success: true, message: `saving a checkpoint to ${dir}` };
  }

  onEstop(msg: BoolMsg): void {
    const asserted = msg.data === true;
    this.safety.setEstop(asserted, `e-stop on ${this.node.name()}/estop`);
    if (!asserted) return;
    this.stopRunning("e-stop");
    this.log.warn("e-stop: safe stop latched; call ~/reset_fault to clear it");
  }

  // ---- activities ------------------------------------------------------------------------------

  private async runActivity(signal: AbortSignal): Promise<void> {
    await this.endIdle();
    // Every tick of a ROS-timed activity happens on a timer tick: start on the next one.
    if (this.timerLoop !== undefined) await this.timerLoop.wait();
    let finished = false;
    if (this.mode === "learn") {
      const learning = this.learning as LearningRun;
      const outcome = await learning.run(signal, { betweenEpisodes: () => this.betweenEpisodes(learning) });
      this.faulted = outcome === "fault";
      finished = outcome === "done";
      if (finished) this.log.info(`learn: ${learning.realSteps} real steps done; holding`);
    } else {
      const total = this.options.episodes ?? 0;
      const summary = await this.app.series.run(
        this.policy as Policy,
        total === 0 ? Number.POSITIVE_INFINITY : total,
        {
          signal,
          emit: (event) => this.onEvent(event),
        },
      );
      this.faulted = summary.fault !== undefined;
      finished = !summary.aborted && summary.fault === undefined;
      if (finished) this.log.info(`${total} episodes done; holding`);
    }
    if (this.faulted) this.onFault();
    this.running = false;
    this.holdIdle();
    if (finished || this.faulted) this.options.onFinished?.();
  }

  private async betweenEpisodes(learning: LearningRun): Promise<void> {
    if (!this.checkpointRequested) return;
    this.checkpointRequested = false;
    await learning.saveCheckpoint();
  }

  private onEvent(event: AppEvent): void {
    if (event.type === "episode" && event.kind !== "eval") {
      this.episodesDone++;
      this.lastResult = event.result;
      const r = event.result;
      this.log.info(
        `episode ${r.episode} (${event.kind}): return ${r.return.toFixed(2)}, ${r.success ? "success" : "no success"}, ` +
          `distance ${r.finalDistance.toFixed(3)}${r.fault ? `, fault ${r.fault}` : ""}`,
      );
    } else if (event.type === "row") {
      fillProgress(this.progress, event.row);
      if (!this.closed) this.progressPublisher?.publish(this.progress);
    } else if (event.type === "checkpoint") {
      this.log.info(`checkpoint: ${event.dir} (${event.realSteps} real steps)`);
    }
    if (event.type === "episode" && (this.recorder !== undefined || this.mode === "learn"))
      this.transitionsRecorded += event.result.steps;
  }

  private onFault(): void {
    const fault = this.safety.fault;
    if (this.running) this.stopRunning(`fault ${fault?.reason}`);
    if (fault !== undefined)
      this.log.error(
        `safety fault latched: ${fault.reason}: ${fault.detail}; holding (safe stop) until ~/reset_fault`,
      );
  }

  private onDriverProblem(detail: string): void {
    // A joint_states message we cannot use means the arm's state is unknown: latch a safe stop
    // rather than wait for the staleness watchdog.
    if (this.safety.fault === undefined) {
      this.safety.latch("driver", detail, this.driver.now());
      this.log.error(`safe stop: ${detail}`);
    }
  }

  // ---- parameters ------------------------------------------------------------------------------

  /** Vetoes a parameter change the schema rejects; takes the rest at the next episode boundary. */
  onSetParameters(params: RclParameter[]): RclSetParametersResult {
    const configChange = params.some(
      (p) => this.specs.some((s) => s.name === p.name) || ARM_PARAMETERS.some((s) => s.name === p.name),
    );
    if (configChange && this.mode === "learn") {
      return {
        successful: false,
        reason: "learn mode: the settings are the run's (its config.yaml) and fixed",
      };
    }
    const checked = checkParameterChange(this.config, params, this.specs);
    if (!checked.result.successful) return checked.result;
    const { result, config: withGains } = checkArmParameterChange(
      checked.config ?? this.config,
      params,
      this.model,
      this.app.stack.dynamics,
    );
    if (!result.successful) return result;
    const config = withGains ?? checked.config;
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
    if (config !== undefined && configChange) {
      this.pendingConfig = config;
      if (!this.running) this.applyPendingConfig();
      else this.activity = this.activity?.then(() => this.applyPendingConfig());
    }
    return result;
  }

  private applyPendingConfig(): void {
    const config = this.pendingConfig;
    if (config === undefined) return;
    this.pendingConfig = undefined;
    reconfigureEpisodes(this.app.stack, config);
    this.hold = holdController(this.app.stack.gains.holdDamping);
    // The PD gains are reset.kp/kd: a policy built on them is rebuilt with the new ones.
    const name = this.policy?.name;
    if (this.mode === "run" && (name === "pd" || name === "excite")) this.policy = this.runPolicy();
    this.log.info("parameters applied");
  }

  // ---- diagnostics -----------------------------------------------------------------------------

  diagnostics(): DiagnosticArrayMsg {
    const d = this.driver;
    const learning = this.learning;
    const { level, message, values } = statusValues(this.app.stack, {
      mode: this.mode,
      running: this.running,
      episodesDone: this.episodesDone,
      lastResult: this.lastResult,
      transitionsRecorded: this.transitionsRecorded,
      driverValues:
        d instanceof Ros2Driver
          ? [
              ["joint_states_received", d.received],
              ["joint_states_rejected", d.rejected],
              ["velocity_estimated", d.velocityEstimated],
              ["last_joint_states_problem", d.lastProblem ?? "none"],
            ]
          : [],
      extra:
        this.mode === "teleop"
          ? [
              ["teleop_targets_received", this.teleop.targetsReceived],
              ["teleop_targets_rejected", this.teleop.targetsRejected],
            ]
          : [],
      learn:
        learning === undefined
          ? undefined
          : {
              realSteps: learning.realSteps,
              stepsTarget: learning.stepsTarget,
              learning: learning.learning,
              training: learning.training,
              lastEvalSuccess: learning.lastEvalSuccess,
              lastModelHoldoutMse: learning.lastModelHoldoutMse,
              out: learning.out,
            },
    });
    return {
      header: { stamp: toStamp(timeSeconds(this.node.now())), frame_id: "" },
      status: [{ level, name: `${this.node.name()}: control`, message, hardware_id: "mbpo_arm", values }],
    };
  }

  publishDiagnostics(): void {
    if (!this.closed) this.diagnosticsPublisher?.publish(this.diagnostics());
  }

  // ---- shutdown --------------------------------------------------------------------------------

  /**
   * Stops safely: ends the activity (learn mode: a checkpoint is saved and the run directory
   * finished), brings the arm to rest under control, then the driver stops and the timers end.
   * The control timer must keep firing meanwhile (rclnodejs spins until ROS shuts down).
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.autostartPending = false;
    this.stopRunning("shutdown");
    await this.activity;
    await this.endIdle();
    try {
      if (this.learning !== undefined) this.summary = await this.learning.close();
    } finally {
      await this.app.close();
      this.closed = true;
      for (const timer of this.timers) timer.cancel();
    }
  }
}

function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function rosLogger(node: RclNode): NodeLogger {
  const l = node.getLogger();
  return {
    info: (m) => l.info(m),
    warn: (m) => l.warn(m),
    error: (m) => l.error(m),
    debug: (m) => l.debug(m),
  };
}

function appLogger(log: NodeLogger): AppLogger {
  return {
    info: (m) => log.info(m),
    warn: (m) => log.warn(m),
    error: (m) => log.error(m),
    debug: (m) => log.debug?.(m),
  };
}
