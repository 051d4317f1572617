/**
 * The fixed-rate control loop: one tick reads the joint state, asks a torque source (a policy, the
 * hold, the reset move, teleop) for a command, adds gravity compensation, passes the safety filter
 * and sends the result. Every command the robot ever receives goes through tick().
 *
 * Pacing: a "stepped" driver (the simulator run flat out) is advanced by one control period after
 * each tick; a "realtime" driver moves on its own and the loop sleeps to the next deadline.
 */
import type { Driver, JointState } from "../drivers/driver.js";
import type { Dynamics } from "../robot/dynamics.js";
import type { JointSpec } from "../robot/types.js";
import type { SafetyFilter, SafetyReport } from "../safety/filter.js";
import { TickTimer } from "./tick-timer.js";

/**
 * Writes the torque a controller wants (N·m per joint, gravity compensation NOT included: the loop
 * adds it) into `out`. Called inside the tick: must not allocate.
 */
export type TorqueSource = (state: JointState, out: Float64Array) => void;

export interface ControlLoopOptions {
  driver: Driver;
  joints: readonly JointSpec[];
  dynamics: Dynamics;
  safety: SafetyFilter;
  controlRateHz: number;
  gravityCompensation: boolean;
}

export class ControlLoop {
  readonly driver: Driver;
  readonly safety: SafetyFilter;
  readonly dof: number;
  /** Control period (s). */
  readonly period: number;
  readonly gravityCompensation: boolean;
  /** Gravity torque at the last tick's state (zero when compensation is off). */
  readonly gravity: Float64Array;
  /** What the torque source asked for, before gravity and the filter. */
  readonly requested: Float64Array;
  /** What was sent to the driver at the last tick (after the safety filter). */
  readonly sent: Float64Array;
  /** Compute time of each tick (read state to send), and lateness of paced ticks. */
  readonly timing = new TickTimer();
  /** Ticks run since construction. */
  ticks = 0;
  /** Ticks the watchdog ran because the application did not tick for two periods. */
  watchdogTicks = 0;

  private readonly dynamics: Dynamics;
  private readonly command: Float64Array;
  private nextDeadlineMs = Number.NaN;
  private lastTickMs = 0;
  private ticksSinceYield = 0;

  constructor(options: ControlLoopOptions) {
    this.driver = options.driver;
    this.safety = options.safety;
    this.dynamics = options.dynamics;
    this.dof = options.joints.length;
    if (this.driver.jointNames.length !== this.dof) {
      throw new Error(
        `control loop: driver "${this.driver.name}" has ${this.driver.jointNames.length} joints, the robot model has ${this.dof}`,
      );
    }
    this.period = 1 / options.controlRateHz;
    this.gravityCompensation = options.gravityCompensation;
    this.gravity = new Float64Array(this.dof);
    this.requested = new Float64Array(this.dof);
    this.command = new Float64Array(this.dof);
    this.sent = new Float64Array(this.dof);
  }

  /**
   * One control tick. With no source (or no state yet) the command is left to the safety filter's
   * safe default. Returns the filter's report (a reused object, overwritten by the next tick).
   */
  tick(source: TorqueSource | undefined): SafetyReport {
    const started = process.hrtime.bigint();
    this.lastTickMs = performance.now();
    let state: JointState | undefined;
    let command: Float64Array | undefined;
    try {
      state = this.driver.readState();
      if (state !== undefined) {
        this.updateGravity(state);
        if (source !== undefined) {
          this.requested.fill(0);
          source(state, this.requested);
          for (let i = 0; i < this.dof; i++) this.command[i] = this.requested[i] + this.gravity[i];
          command = this.command;
        }
      }
    } catch (err) {
      // A policy, task or driver read that throws: this tick still sends the safe stop, and the
      // fault says what threw.
      this.safety.latch("tick_error", `control tick threw: ${describeError(err)}`, this.driver.now());
      command = undefined;
      if (state !== undefined && !isFiniteVector(this.gravity, this.dof)) state = undefined;
    }
    const report = this.safety.filter(
      command,
      state,
      this.driver.now(),
      this.gravityCompensation && state !== undefined ? this.gravity : undefined,
      this.period,
      this.sent,
    );
    this.driver.sendEffort(this.sent);
    this.ticks++;
    this.timing.recordCompute(Number(process.hrtime.bigint() - started) / 1000);
    return report;
  }

  /**
   * A watchdog outside the tick, for a realtime driver: a timer that checks, every period, that
   * some tick ran in the last two periods. When none did (the application is awaiting something
   * it should not, or the event loop was blocked), it ticks the hold itself (no torque source: the
   * filter's safe command, gravity compensation, or its safe stop if a fault is latched), and when
   * no tick has run for longer than the state may be stale (staleTimeout + staleGrace), it latches
   * a `loop_stalled` fault first. A timer cannot fire while the event loop itself is blocked: for
   * that, the hardware's own command timeout is the last line (the Dynamixel bus watchdog). Not
   * for a stepped driver, whose time only moves when the loop advances it. Returns a stop function.
   */
  startWatchdog(): () => void {
    if (this.driver.timing === "stepped") return () => {};
    const periodMs = this.period * 1000;
    const stallMs = (this.safety.config.staleTimeout + this.safety.config.staleGrace) * 1000;
    this.lastTickMs = performance.now();
    const timer = setInterval(() => {
      const idleMs = performance.now() - this.lastTickMs;
      if (idleMs <= 2 * periodMs) return;
      this.watchdogTicks++;
      if (idleMs > stallMs) {
        this.safety.latch("loop_stalled", `no control tick for ${Math.round(idleMs)} ms`, this.driver.now());
      }
      this.tick(undefined);
    }, periodMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Waits for the next tick: advances a stepped driver by one period, or sleeps until the next
   * deadline of a realtime one. A stepped loop still yields to the event loop now and then, so
   * that Ctrl-C and the learner's messages get through.
   */
  async wait(): Promise<void> {
    if (this.driver.timing === "stepped") {
      this.driver.advance!(this.period);
      if (++this.ticksSinceYield >= 50) {
        this.ticksSinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return;
    }
    const periodMs = this.period * 1000;
    const nowMs = performance.now();
    if (Number.isNaN(this.nextDeadlineMs)) this.nextDeadlineMs = nowMs;
    this.nextDeadlineMs += periodMs;
    const sleepMs = this.nextDeadlineMs - nowMs;
    if (sleepMs > 0) {
      // Node's timers count whole milliseconds from a cached loop time, so a fractional sleep can
      // wake up to 1 ms early; rounding up trades that for waking up to 1 ms late, never early.
      await new Promise<void>((resolve) => setTimeout(resolve, Math.ceil(sleepMs)));
    }
    const lateMs = performance.now() - this.nextDeadlineMs;
    this.timing.recordLateness(lateMs * 1000);
    // A tick more than a whole period late is an overrun: start a fresh schedule rather than
    // firing a burst of catch-up ticks at the arm.
    if (lateMs > periodMs) this.nextDeadlineMs = performance.now();
  }

  /** Forgets the pacing schedule (after a pause, e.g. between runs). */
  resetSchedule(): void {
    this.nextDeadlineMs = Number.NaN;
  }

  private updateGravity(state: JointState): void {
    if (!this.gravityCompensation) {
      this.gravity.fill(0);
      return;
    }
    this.dynamics.gravity(state.position, this.gravity);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function isFiniteVector(v: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (!Number.isFinite(v[i])) return false;
  return true;
}
