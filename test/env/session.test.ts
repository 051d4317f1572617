/**
 * EnvSession's rules for faults, in process: on the simulator a latched fault ends the episode and
 * the next reset starts from a fresh twin; on a real robot everything but spec and reward is
 * refused until someone restarts the server.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultConfig } from "../../src/config/config.js";
import { type ControlStack, createControlStack } from "../../src/control/stack.js";
import { ProtocolError } from "../../src/env/protocol.js";
import { EnvSession } from "../../src/env/session.js";

function session(driver: "sim" | "ros2") {
  const stacks: ControlStack[] = [];
  const logs: string[] = [];
  const env = new EnvSession({
    // A "ros2" stack here is the twin under a real driver's name: the session treats it as a
    // robot that cannot be rebuilt.
    createStack: () => {
      const stack = createControlStack(defaultConfig());
      stacks.push(stack);
      return driver === "sim" ? stack : { ...stack, config: { ...stack.config, driver } };
    },
    seed: 0,
    log: (_level, message) => logs.push(message),
  });
  return { env, stacks, logs };
}

async function stepZero(env: EnvSession) {
  env.actionBuffer.fill(0);
  return env.step();
}

describe("EnvSession and safety faults", () => {
  it("simulator: a fault ends the episode with an error; reset starts a fresh twin", async () => {
    const { env, stacks, logs } = session("sim");
    await env.start();
    await env.reset({ seed: 5 });
    await stepZero(env);
    stacks[0].safety.latch("estop", "test e-stop");
    await assert.rejects(stepZero(env), (err: Error) => {
      assert.ok(err instanceof ProtocolError);
      assert.match(
        err.message,
        /safety fault latched, episode over: estop: test e-stop \(reset starts a fresh simulator\)/,
      );
      return true;
    });
    await assert.rejects(stepZero(env), /episode 0 is over \(1 steps, safety fault: estop: test e-stop\)/);
    const reset = await env.reset({});
    assert.equal(stacks.length, 2, "a fresh twin");
    assert.equal(stacks[1].safety.fault, undefined);
    assert.equal((reset.info as { fault?: string }).fault, undefined);
    assert.match(logs.join("\n"), /fresh simulator/);
    assert.equal(((await stepZero(env)).info as { step: number }).step, 0);
    await env.close();
  });

  it("real robot: after a fault, reset and step are refused; spec and reward still answer", async () => {
    const { env, stacks } = session("ros2");
    await env.start();
    const first = await env.reset({ seed: 5 });
    await stepZero(env);
    stacks[0].safety.latch("driver", "servo 3 overheated");
    await assert.rejects(
      stepZero(env),
      /safety fault latched: driver: servo 3 overheated; .*restart the server/,
    );
    await assert.rejects(
      env.reset({ seed: 5 }),
      /safety fault latched: driver: servo 3 overheated; .*restart the server/,
    );
    await assert.rejects(env.reset({}), /safety fault latched/);
    assert.equal(stacks.length, 1, "a real robot is never rebuilt");
    assert.equal(env.spec().observation_size, stacks[0].task.observationSize);
    const obs = Float64Array.from(first.obs as number[]);
    const reward = env.reward({ rows: 1, obs, action: new Float64Array(4), nextObs: obs });
    assert.equal((reward.reward as number[]).length, 1);
    await env.close();
  });

  it("real robot: a seed restarts the episode stream without rebuilding the robot", async () => {
    const { env, stacks } = session("ros2");
    await env.start();
    const a = await env.reset({ seed: 8 });
    await stepZero(env);
    const b = await env.reset({ seed: 8 });
    assert.equal(stacks.length, 1);
    // Same episode (goal, start pose); the arm starts from where it was, so obs may differ slightly.
    assert.deepEqual((b.info as { goal: number[] }).goal, (a.info as { goal: number[] }).goal);
    assert.equal((b.info as { episode: number }).episode, 0);
    await env.close();
  });
});
