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
