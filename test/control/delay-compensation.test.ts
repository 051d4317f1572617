/**
 * The delay compensation: a late state predicted forward with the URDF and the last command is the
 * state now; broken readings pass through; the stack wraps its driver when state_latency is set.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { defaultConfig, withOverrides } from "../../src/config/config.js";
import { DelayCompensatedDriver, hardwareDriver } from "../../src/control/delay-compensation.js";
import { createControlStack } from "../../src/control/stack.js";
import type { JointState } from "../../src/drivers/driver.js";
import { SimDriver } from "../../src/drivers/sim.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));

describe("DelayCompensatedDriver", () => {
  it("turns a state 16 ms old into the state now, under changing commands", () => {
    const latency = 0.016;
    const late = new SimDriver({ model: arm, stateLatency: latency });
    const compensated = new DelayCompensatedDriver(late, arm, latency);
    const truth = new SimDriver({ model: arm });
    const rng = new Rng(3);
    const effort = new Float64Array(arm.dof);
    const gravity = new Float64Array(arm.dof);
    const dynamics = new Dynamics(arm);
    let worstLate = 0;
    let worstCompensated = 0;
    for (let tick = 0; tick < 100; tick++) {
      // A new command every 20 ms tick (gravity held, so that the arm stays off its stops); the
      // 16 ms before a reading saw only the last one.
      dynamics.gravity((truth.readState() as JointState).position, gravity);
      for (let i = 0; i < arm.dof; i++) effort[i] = gravity[i] + rng.range(-0.3, 0.3);
      compensated.sendEffort(effort);
      truth.sendEffort(effort);
      compensated.advance?.(0.02);
      truth.advance(0.02);
      const now = truth.readState() as JointState;
      const seen = late.readState() as JointState;
      const predicted = compensated.readState() as JointState;
      assert.equal(predicted.stamp, seen.stamp, "the stamp stays the measurement's");
      for (let i = 0; i < arm.dof; i++) {
        worstLate = Math.max(worstLate, Math.abs(seen.velocity[i] - now.velocity[i]));
        worstCompensated = Math.max(worstCompensated, Math.abs(predicted.velocity[i] - now.velocity[i]));
      }
    }
    assert.equal(truth.limitContactSteps, 0);
    assert.ok(worstLate > 0.05, `the late state is off by ${worstLate} rad/s`);
    assert.ok(worstCompensated < 1e-9, `the prediction is off by ${worstCompensated} rad/s`);
  });

  it("passes a broken reading through, unwraps to the hardware, refuses a latency out of range", () => {
    const inner = new SimDriver({ model: arm });
    const broken = {
      ...inner,
      name: "broken",
      jointNames: inner.jointNames,
      timing: "stepped" as const,
      start: async () => {},
      stop: async () => {},
      now: () => 0,
      sendEffort: () => {},
      readState: (): JointState => ({
        stamp: 1,
        position: Float64Array.from([Number.NaN, 0, 0, 0]),
        velocity: new Float64Array(4),
        effort: new Float64Array(4),
      }),
    };
    const compensated = new DelayCompensatedDriver(broken, arm, 0.01);
    assert.ok(Number.isNaN(compensated.readState()?.position[0] as number));
    assert.equal(hardwareDriver(compensated), broken);
    assert.equal(hardwareDriver(inner), inner);
    assert.throws(() => new DelayCompensatedDriver(inner, arm, 0), /latency must be in \(0, 1\] s/);
  });

  it("the stack wraps its driver when state_latency is set, and not otherwise", () => {
    const plain = createControlStack(defaultConfig());
    assert.ok(plain.driver instanceof SimDriver);
    const late = createControlStack(withOverrides(defaultConfig(), { state_latency: 0.5 }));
    assert.ok(late.driver instanceof DelayCompensatedDriver);
    assert.ok(hardwareDriver(late.driver) instanceof SimDriver);
    assert.equal((late.driver as DelayCompensatedDriver).latency, 0.01);
    assert.throws(() => withOverrides(defaultConfig(), { state_latency: 1.5 }), /state_latency/);
  });
});
