/**
 * The application core: one robot's control stack (any driver), its lifecycle and what runs on it.
 * Every front end (`run`, `train`, `env serve`, the ROS node) goes through here:
 *
 *   ArmApp.create(config)       builds the stack; a bad config, URDF or task fails here, nothing opened
 *   app.start()                 starts the driver; nothing is opened or written before this succeeds
 *   app.series / app.learning   episodes with a fixed policy (EpisodeSeries), or a LearningRun
 *   app.close()                 brings the arm to rest under control (a latched fault's safe stop
 *                               included), then stops the driver, then closes the transition log
 *
 * Progress is reported as typed events (events.ts). A fault is never "handled" by dropping the arm:
 * until close(), every tick the application sends passes the safety filter, whose output while a
 * fault is latched is its safe stop.
 */
import { join } from "node:path";
import type { Config } from "../config/config.js";
import { type ControlStack, createControlStack, type StackParts } from "../control/stack.js";
import { checkNoRunLog } from "../data/run-log.js";
import { TRANSITIONS_FILE, type TransitionLog } from "../data/transition-log.js";
import { describeReality } from "../drivers/sim-reality.js";
import { EpisodeSeries } from "./episodes.js";
import { type EventSink, ignoreEvents } from "./events.js";
import { type Pacing, selfPacing, stopAtRest } from "./hold.js";
import type { AppLogger } from "./learning.js";
import { openTransitionLog, type TransitionSink } from "./transitions.js";

export interface ArmAppOptions {
  config: Config;
  parts?: StackParts;
  /** How the arm is held while the app waits (default: wall-clock hold ticks of its own). */
  pacing?: (stack: ControlStack) => Pacing;
  /** How stopAtRest waits for the next tick (default: the loop's own wait). */
  tickWait?: (stack: ControlStack) => () => Promise<void>;
  logger: AppLogger;
  emit?: EventSink;
  /** Where fixed-policy episodes' transitions go instead of a log opened by openRunLog (tests). */
  recorder?: TransitionSink;
}

export class ArmApp {
  readonly stack: ControlStack;
  readonly pacing: Pacing;
  readonly logger: AppLogger;
  emit: EventSink;
  private readonly tickWait: () => Promise<void>;
  private started = false;
  private closed = false;
  private stopWatchdog: () => void = () => {};
  private log: TransitionLog | undefined;
  private seriesLog: EpisodeSeries | undefined;
  private readonly recorder: TransitionSink | undefined;

  private constructor(stack: ControlStack, options: ArmAppOptions) {
    this.stack = stack;
    this.pacing = options.pacing?.(stack) ?? selfPacing(stack);
    this.tickWait = options.tickWait?.(stack) ?? (() => stack.loop.wait());
    this.logger = options.logger;
    this.emit = options.emit ?? ignoreEvents;
    this.recorder = options.recorder;
    for (const warning of [...(stack.model.warnings ?? []), ...stack.gains.warnings])
      this.logger.warn(warning);
    const preset = stack.config.sim.reality.preset;
    if (
      stack.reality !== undefined &&
      (preset !== "none" || Object.keys(stack.config.sim.reality).length > 1)
    )
      this.logger.info(
        `sim: reality gap "${preset}" (seed ${stack.config.seed}): ${describeReality(stack.reality, stack.model)}`,
      );
  }

  /** Builds the stack (nothing is started, opened or written). */
  static create(options: ArmAppOptions): ArmApp {
    return new ArmApp(createControlStack(options.config, options.parts), options);
  }

  get config(): Config {
    return this.stack.config;
  }

  /** Starts the driver. On failure the driver is stopped again and the error is one line. */
  async start(): Promise<void> {
    try {
      await this.stack.driver.start();
    } catch (error) {
      await this.stack.driver.stop().catch(() => {});
      throw error;
    }
    this.started = true;
    // Holds the arm if the application ever stops ticking a realtime driver (ControlLoop).
    this.stopWatchdog = this.stack.loop.startWatchdog();
  }

  /**
   * Opens DIR/transitions.mcap for episodes with a fixed policy (after start(): a driver that does
   * not load leaves no file behind). The arm is held while the writer thread starts.
   */
  async openRunLog(dir: string, source?: number): Promise<TransitionLog> {
    if (!this.started) throw new Error("ArmApp.openRunLog: start the driver first");
    checkNoRunLog(dir, "--out");
    const log = (
      await this.pacing.holdWhile(openTransitionLog(this.stack, join(dir, TRANSITIONS_FILE), source), [])
    ).value;
    log.onError = (message) => this.logger.error(`transition log stopped: ${message}`);
    this.log = log;
    return log;
  }

  /** The series of fixed-policy episodes (one per app: it continues across runs). */
  get series(): EpisodeSeries {
    this.seriesLog ??= new EpisodeSeries(this.stack, this.stack.config.seed, this.log ?? this.recorder);
    return this.seriesLog;
  }

  get transitionLog(): TransitionLog | undefined {
    return this.log;
  }

  /**
   * Ends the app: the arm is brought to rest under control (the hold, or a latched fault's safe
   * stop, until every joint is still or a few seconds have passed), then the driver stops, then the
   * transition log closes. Idempotent; never throws before the driver has stopped.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.started) {
        this.stopWatchdog();
        const rest = await stopAtRest(this.stack, this.tickWait);
        if (!rest.atRest)
          this.logger.warn(`stopping: the arm was not at rest after ${rest.seconds.toFixed(1)} s`);
      } else {
        await this.stack.driver.stop();
      }
    } finally {
      if (this.log !== undefined) {
        const stats = await this.log.close();
        this.logger.info(
          `transition log: ${stats.episodes} episodes, ${stats.messages} messages, ${stats.bytes} bytes in ${stats.path}`,
        );
      }
    }
  }
}
