/**
 * Holding the arm while the learner works: the control thread keeps ticking the hold (gravity
 * compensation plus damping, through the safety filter) at the control rate, paced to wall-clock
 * time, until the learner's promise settles. It never awaits the learner directly.
 *
 * Pacing is wall-clock for every driver: a real arm needs its commands at the control rate however
 * long the update takes. A stepped simulator is advanced by one control period per hold tick, so the
 * twin is held exactly as a real arm would be.
 *
 * Each hold tick's compute time (read state → hold torque → safety filter → send) and how late it
 * woke are recorded in the given TickTimers: that is the "tick timing during training" of a run.
 */
import type { ControlStack } from "../control/stack.js";
import type { TickTimer } from "../control/tick-timer.js";

export interface HoldResult<T> {
  value: T;
  /** Hold ticks run while waiting. */
  ticks: number;
  /** Wall-clock seconds waited. */
  seconds: number;
}

/**
 * Ticks the hold until `work` settles, then returns its value (or throws its error, after the
 * last hold tick). At least one hold tick runs, so the arm is commanded even for instant work.
 */
export async function holdWhile<T>(
  stack: Pick<ControlStack, "loop" | "runner" | "driver">,
  work: Promise<T>,
  timers: readonly TickTimer[],
): Promise<HoldResult<T>> {
  let settled = false;
  const done = work.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  const { loop, runner, driver } = stack;
  const periodMs = loop.period * 1000;
  const startedMs = performance.now();
  let deadlineMs = startedMs;
  let ticks = 0;
  do {
    const t0 = process.hrtime.bigint();
    runner.holdTick();
    const computeUs = Number(process.hrtime.bigint() - t0) / 1000;
    for (const timer of timers) timer.recordCompute(computeUs);
    ticks++;
    if (driver.timing === "stepped") driver.advance?.(loop.period);
    deadlineMs += periodMs;
    const sleepMs = deadlineMs - performance.now();
    // Sleep to the next deadline, but wake as soon as the work settles.
    if (sleepMs > 0) await Promise.race([sleep(sleepMs), done]);
    if (settled) break;
    const lateMs = performance.now() - deadlineMs;
    for (const timer of timers) timer.recordLateness(Math.max(0, lateMs) * 1000);
    // More than a period late: start a fresh schedule rather than bursting catch-up ticks.
    if (lateMs > periodMs) deadlineMs = performance.now();
  } while (!settled);
  const value = await work;
  return { value, ticks, seconds: (performance.now() - startedMs) / 1000 };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * How the arm is kept commanded while the application waits for something (the learner, a log
 * file, a service call): `holdWhile` above for stacks that pace themselves; the ROS node's own
 * timer for a loop ticked by ROS (src/ros/timer-loop.ts).
 */
export interface Pacing {
  holdWhile<T>(work: Promise<T>, timers: readonly TickTimer[]): Promise<HoldResult<T>>;
}

export function selfPacing(stack: Pick<ControlStack, "loop" | "runner" | "driver">): Pacing {
  return { holdWhile: (work, timers) => holdWhile(stack, work, timers) };
}

/** At rest: every |q̇| below this (rad/s) ... */
export const REST_SPEED = 0.05;
/** ... for this long (s). */
export const REST_SECONDS = 0.2;
/** The longest the arm is given to come to rest before the driver stops anyway (s). */
export const REST_TIMEOUT = 3;

/**
 * Brings the arm to rest under control, then stops the driver: ticks the hold (through the safety
 * filter, so a latched fault's safe stop is what goes out) until every joint is slower than
 * REST_SPEED for REST_SECONDS, or REST_TIMEOUT wall-clock seconds have passed, or the state is lost.
 * Only then does `driver.stop()` send its final command. Never throws before the driver is stopped.
 */
export async function stopAtRest(
  stack: Pick<ControlStack, "loop" | "runner" | "driver">,
  tickWait: () => Promise<void> = () => stack.loop.wait(),
): Promise<{ atRest: boolean; seconds: number }> {
  const { loop, runner, driver } = stack;
  const started = performance.now();
  const needTicks = Math.max(1, Math.ceil(REST_SECONDS / loop.period));
  let calm = 0;
  let atRest = false;
  try {
    while (performance.now() - started < REST_TIMEOUT * 1000) {
      const state = driver.readState();
      if (state === undefined) break;
      runner.holdTick();
      calm = slowerThan(state.velocity, REST_SPEED) ? calm + 1 : 0;
      if (calm >= needTicks) {
        atRest = true;
        break;
      }
      await Promise.race([tickWait(), sleep(loop.period * 1000 * 5)]);
    }
  } finally {
    await driver.stop();
  }
  return { atRest, seconds: (performance.now() - started) / 1000 };
}

function slowerThan(velocity: Float64Array, limit: number): boolean {
  for (let i = 0; i < velocity.length; i++) if (!(Math.abs(velocity[i]) < limit)) return false;
  return true;
}
