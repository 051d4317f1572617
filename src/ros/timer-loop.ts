/**
 * The control loop of the ROS node: ticked by the node's ROS timer at the control rate, on the
 * node's clock (so `use_sim_time` slows and pauses it with Gazebo's /clock). An episode's wait()
 * returns at the next firing of the timer; when nothing waits, the timer's callback ticks the hold
 * itself (idleTick), so the arm is commanded every period whatever the application is doing, and
 * the application's Pacing only has to wait.
 */
import type { HoldResult, Pacing } from "../app/hold.js";
import { ControlLoop, type ControlLoopOptions, type TorqueSource } from "../control/loop.js";
import type { TickTimer } from "../control/tick-timer.js";
import type { SafetyReport } from "../safety/filter.js";

export class TimerPacedLoop extends ControlLoop {
  private waiter: (() => void) | undefined;
  /** Where idle ticks are timed while the application holds (empty otherwise). */
  private holdTimers: readonly TickTimer[] = [];
  private holdTicks = 0;

  constructor(options: ControlLoopOptions) {
    super(options);
  }

  /**
   * None needed: the node's timer ticks the hold itself whenever nothing waits (idleTick), on the
   * node's clock, which a paused simulation pauses (a wall-clock watchdog would call that a stall).
   */
  override startWatchdog(): () => void {
    return () => {};
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

  /** A timer tick nobody waited for: one tick of `source`, timed for whoever is holding. */
  idleTick(source: TorqueSource): SafetyReport {
    const t0 = process.hrtime.bigint();
    const report = this.tick(source);
    if (this.holdTimers.length > 0) {
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      for (const timer of this.holdTimers) timer.recordCompute(us);
      this.holdTicks++;
    }
    return report;
  }

  /** Holding is the timer's idle ticks: the application only waits for its work. */
  get pacing(): Pacing {
    return {
      holdWhile: async <T>(work: Promise<T>, timers: readonly TickTimer[]): Promise<HoldResult<T>> => {
        const started = performance.now();
        const before = this.holdTicks;
        this.holdTimers = timers;
        try {
          const value = await work;
          return { value, ticks: this.holdTicks - before, seconds: (performance.now() - started) / 1000 };
        } finally {
          this.holdTimers = [];
        }
      },
    };
  }
}
