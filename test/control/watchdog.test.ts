/**
 * The control loop's watchdog outside the tick: with a realtime driver, when the application stops
 * ticking, a timer sends the hold within a few periods, and latches loop_stalled once no tick has
 * run for longer than the state may be stale; it stops with the function startWatchdog returns. A
 * stepped driver gets none (its time only moves when the loop advances it).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ControlLoop } from "../../src/control/loop.js";
import type { Driver, JointState } from "../../src/drivers/driver.js";
import { SimDriver } from "../../src/drivers/sim.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import { SafetyFilter } from "../../src/safety/filter.js";
import { loadArm } from "../safety/adversary.js";

const arm = loadArm();

/** A realtime arm that holds still: a fresh state at every read, and a count of commands. */
class StillArm implements Driver {
  readonly name = "still";
  readonly jointNames = arm.joints.map((j) => j.name);
  readonly timing = "realtime" as const;
  commands = 0;
  readonly last = new Float64Array(arm.dof);
  private readonly state: JointState = {
    stamp: 0,
    position: new Float64Array(arm.dof),
    velocity: new Float64Array(arm.dof),
    effort: new Float64Array(arm.dof),
  };
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  readState(): JointState {
    this.state.stamp = this.now();
    return this.state;
  }
  sendEffort(effort: Float64Array): void {
    this.commands++;
    this.last.set(effort);
  }
  now(): number {
    return performance.now() / 1000;
  }
}

function loopFor(driver: Driver): ControlLoop {
  const dynamics = new Dynamics(arm);
  const safety = new SafetyFilter(arm.joints, { staleTimeout: 0.1, staleGrace: 0.4 }, dynamics);
  return new ControlLoop({
    driver,
    joints: arm.joints,
    dynamics,
    safety,
    controlRateHz: 50,
    gravityCompensation: true,
  });
}

test("watchdog: no tick for two periods sends the hold; a longer stall latches loop_stalled", async () => {
  const driver = new StillArm();
  const loop = loopFor(driver);
  loop.tick(undefined);
  const stop = loop.startWatchdog();
  try {
    await sleep(100); // five periods without a tick from the application
    assert.ok(loop.watchdogTicks >= 1, `the watchdog ticked ${loop.watchdogTicks} times`);
    assert.ok(driver.commands >= 2, "and the hold reached the driver");
    assert.equal(loop.safety.fault, undefined, "100 ms is within stale_timeout + stale_grace (500 ms)");
    // A blocked event loop: the timer fires late, finds 700 ms without a tick, latches first.
    const until = performance.now() + 700;
    while (performance.now() < until) {
      // busy: nothing else runs
    }
    await sleep(40);
    const fault = (loop.safety as SafetyFilter).fault;
    assert.equal(fault?.reason, "loop_stalled");
    assert.match(fault?.detail ?? "", /no control tick for \d+ ms/);
    // The hold it sends is gravity compensation: the shoulder is held, not dropped.
    const g = new Float64Array(arm.dof);
    new Dynamics(arm).gravity(new Float64Array(arm.dof), g);
    assert.ok(Math.abs(driver.last[1] - g[1]) < 1e-6, `shoulder ${driver.last[1]} vs gravity ${g[1]}`);
  } finally {
    stop();
  }
  const after = loop.watchdogTicks;
  await sleep(80);
  assert.equal(loop.watchdogTicks, after, "stopped");
});

test("watchdog: a stepped driver gets none", async () => {
  const loop = loopFor(new SimDriver({ model: arm, timing: "stepped" }));
  const stop = loop.startWatchdog();
  await sleep(80);
  stop();
  assert.equal(loop.watchdogTicks, 0);
});
