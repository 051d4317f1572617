/**
 * Issue 16's defects in `env serve`, in process (no child server): a blank line is answered, a
 * step is scored on the action applied (clipped), reset takes a start pose, a goal or an
 * evaluation episode (checked against the limits), and spec describes the observation and limits.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { defaultConfig } from "../../src/config/config.js";
import { createControlStack } from "../../src/control/stack.js";
import { ProtocolError, parseRequest } from "../../src/env/protocol.js";
import { serveStreams } from "../../src/env/server.js";
import { EnvSession } from "../../src/env/session.js";
import { Rng } from "../../src/util/rng.js";

function newSession(): EnvSession {
  return new EnvSession({ createStack: () => createControlStack(defaultConfig()), seed: 0 });
}

async function stepWith(env: EnvSession, action: number[]) {
  env.actionBuffer.set(action);
  return env.step();
}

describe("env serve: one answer per line", () => {
  it("a blank or whitespace line gets an error reply, and serving goes on", async () => {
    const input = new PassThrough();
    const out: string[] = [];
    const served = serveStreams(newSession(), input, (line) => out.push(line));
    input.end('\n  \r\n{"cmd":"spec","id":1}\n{"cmd":"close"}\n');
    await served;
    assert.equal(out.length, 4, out.join(""));
    for (const line of out.slice(0, 2))
      assert.match(JSON.parse(line).error, /^empty line: expected one JSON request/);
    assert.equal(JSON.parse(out[2]).id, 1);
    assert.deepEqual(JSON.parse(out[3]), { ok: true });
  });
});

describe("env serve: a step is scored on the action applied", () => {
  it("an action of 1e6 is clipped to 1, scored as 1, and the reply says so", async () => {
    const a = newSession();
    const b = newSession();
    await a.start();
    await b.start();
    await a.reset({ seed: 3 });
    await b.reset({ seed: 3 });
    const huge = await stepWith(a, [1e6, -1e6, 0.5, 0]);
    const unit = await stepWith(b, [1, -1, 0.5, 0]);
    assert.equal(huge.reward, unit.reward);
    assert.ok((huge.reward as number) > -10, `reward ${huge.reward}`);
    const info = huge.info as { clipped: boolean; applied_action: number[] };
    assert.equal(info.clipped, true);
    assert.deepEqual(info.applied_action, [1, -1, 0.5, 0]);
    assert.equal((unit.info as { clipped: boolean }).clipped, false);
    assert.equal("applied_action" in (unit.info as object), false);
    await a.close();
    await b.close();
  });
});

describe("env serve: reset names its episode", () => {
  it('{"seed": S, "eval": k} is the (k+1)-th draw of Rng(S, 3), bench/learning\'s evaluation set', async () => {
    const env = newSession();
    await env.start();
    const task = createControlStack(defaultConfig()).task;
    const rng = new Rng(7, 3);
    const draws = [0, 1, 2].map(() => task.sampleEpisode(rng));
    const r2 = await env.reset({ seed: 7, eval: 2 });
    const info = r2.info as { goal: number[]; start_position: number[]; eval: number; seed: number };
    assert.deepEqual(info.goal, Array.from(draws[2].goal));
    assert.deepEqual(info.start_position, Array.from(draws[2].startPosition));
    assert.equal(info.eval, 2);
    assert.equal(info.seed, 7);
    // The same evaluation episode twice is the same, bit for bit (a fresh simulator each time).
    await stepWith(env, [0.3, 0.3, 0.3, 0.3]);
    const again = await env.reset({ seed: 7, eval: 2 });
    assert.deepEqual(again.obs, r2.obs);
    await env.close();
  });

  it("an evaluation reset leaves the training stream where it was", async () => {
    const a = newSession();
    const b = newSession();
    await a.start();
    await b.start();
    await a.reset({ seed: 5 });
    await b.reset({ seed: 5 });
    await a.reset({ eval: 0 });
    const nextA = (await a.reset({})).info as { goal: number[] };
    const nextB = (await b.reset({})).info as { goal: number[] };
    assert.deepEqual(nextA.goal, nextB.goal);
    await a.close();
    await b.close();
  });

  it("start_position, goal and goal_position are used as given", async () => {
    const env = newSession();
    await env.start();
    const start = [0.1, -0.5, 0.4, 0.8];
    const r = await env.reset({
      startPosition: Float64Array.from(start),
      goal: Float64Array.from([0.2, 0.05, 0.15]),
    });
    const info = r.info as { start_position: number[]; goal: number[]; reset_reached: boolean };
    assert.deepEqual(info.start_position, start);
    assert.deepEqual(info.goal, [0.2, 0.05, 0.15]);
    assert.equal(info.reset_reached, true);
    const obs = r.obs as number[];
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(obs[i] - start[i]) < 0.02, `q[${i}] ${obs[i]}`);
    const g = await env.reset({ goalPosition: Float64Array.from([0.2, -0.4, 0.5, 0.7]) });
    const task = createControlStack(defaultConfig()).task;
    const expected = new Float64Array(3);
    task.achievedGoal(Float64Array.from([0.2, -0.4, 0.5, 0.7]), expected);
    assert.deepEqual((g.info as { goal: number[] }).goal, Array.from(expected));
    await env.close();
  });

  it("a pose outside the soft limits is refused with the joint named; the session goes on", async () => {
    const env = newSession();
    await env.start();
    const before = (await env.reset({ seed: 2 })).info as { goal: number[] };
    await assert.rejects(
      env.reset({ startPosition: Float64Array.from([0, -0.6, 0.3, 99]) }),
      (err: Error) =>
        err instanceof ProtocolError &&
        /start_position\[3\] \(\w+\) = 99 is outside the soft limits/.test(err.message),
    );
    await assert.rejects(
      env.reset({ goalPosition: Float64Array.from([-99, 0, 0, 0]) }),
      /goal_position\[0\]/,
    );
    // A refused reset consumed no episode: the next one is the stream's next.
    const ref = newSession();
    await ref.start();
    await ref.reset({ seed: 2 });
    const expected = ((await ref.reset({})).info as { goal: number[] }).goal;
    assert.deepEqual(((await env.reset({})).info as { goal: number[] }).goal, expected);
    assert.ok(before.goal.length === 3);
    await env.close();
    await ref.close();
  });

  it("wrong lengths, non-finite values, unknown fields and eval with a pose are parse errors", () => {
    const sizes = { observationSize: 24, actionSize: 4, dof: 4, goalSize: 3 };
    const action = new Float32Array(4);
    const bad: [string, RegExp][] = [
      ['{"cmd":"reset","start_position":[0,0]}', /"start_position" must have 4 numbers, got 2/],
      ['{"cmd":"reset","goal":[0,null,0]}', /goal\[1\] must be a finite number, got null/],
      ['{"cmd":"reset","goal":[0,1e999,0]}', /goal\[1\] must be a finite number, got Infinity/],
      ['{"cmd":"reset","goal":"up"}', /"goal" must be an array of 3 goal values/],
      ['{"cmd":"reset","eval":-1}', /"eval" must be an integer ≥ 0, got -1/],
      ['{"cmd":"reset","eval":1,"goal":[0,0,0]}', /"eval" gives its own start and goal/],
      ['{"cmd":"reset","goal":[0,0,0],"goal_position":[0,0,0,0]}', /not both/],
      ['{"cmd":"reset","start":[0,0,0,0]}', /unknown field "start"/],
    ];
    for (const [line, pattern] of bad) {
      assert.throws(() => parseRequest(line, sizes, action), pattern, line);
    }
    assert.deepEqual(parseRequest('{"cmd":"reset","seed":3,"eval":1}', sizes, action), {
      cmd: "reset",
      seed: 3,
      eval: 1,
    });
  });
});

describe("env serve: spec describes the observation and the limits", () => {
  it("named slices cover the observation in order and match a real observation", async () => {
    const env = newSession();
    await env.start();
    const spec = env.spec() as {
      observation_size: number;
      observation_layout: { name: string; offset: number; length: number; unit: string }[];
      joint_limits: {
        name: string;
        lower: number;
        upper: number;
        velocity: number;
        effort: number;
        soft: { lower: number; upper: number } | null;
      }[];
      joint_names: string[];
    };
    const layout = spec.observation_layout;
    assert.deepEqual(
      layout.map((s) => s.name),
      ["q", "qd", "tool", "target", "delta", "delta_fine"],
    );
    let offset = 0;
    for (const slice of layout) {
      assert.equal(slice.offset, offset, slice.name);
      offset += slice.length;
    }
    assert.equal(offset, spec.observation_size);
    const model = createControlStack(defaultConfig()).model;
    assert.deepEqual(
      spec.joint_limits.map((j) => j.name),
      spec.joint_names,
    );
    spec.joint_limits.forEach((j, i) => {
      const m = model.joints[i];
      assert.equal(j.velocity, m.velocity);
      assert.equal(j.effort, m.effort);
      assert.equal(j.lower, m.lower);
      assert.equal(j.soft?.lower, m.safety?.softLower);
    });
    // The slices mean what they say on a real observation.
    const r = await env.reset({ seed: 1 });
    const obs = r.obs as number[];
    const at = (name: string) => {
      const s = layout.find((x) => x.name === name)!;
      return obs.slice(s.offset, s.offset + s.length);
    };
    const goal = (r.info as { goal: number[] }).goal;
    const [target, tool, delta] = [at("target"), at("tool"), at("delta")];
    for (let a = 0; a < 3; a++) {
      assert.ok(Math.abs(target[a] - goal[a]) < 1e-6, `target[${a}]`);
      assert.ok(Math.abs(delta[a] - (goal[a] - tool[a])) < 1e-6, `delta[${a}]`);
    }
    const s = await stepWith(env, [1, 1, 1, 1]);
    const qd = (s.obs as number[]).slice(layout[1].offset, layout[1].offset + 4);
    for (const x of qd) assert.ok(Math.abs(x) <= 1.5, `scaled q̇ ${x}`);
    await env.close();
  });
});
