/**
 * `mbpo-arm env serve` as a learner sees it: a real server process, driven over its pipes and over
 * TCP. One step must be one control period of the loop `run` uses, so an episode played with the
 * actions of `run --policy random` gives exactly the same return; bad lines are answered with an
 * error and serving goes on.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runEpisodes } from "../../src/app/episodes.js";
import { defaultConfig, withOverrides } from "../../src/config/config.js";
import type { Transition } from "../../src/control/episode.js";
import { RandomPolicy } from "../../src/control/policies/index.js";
import { createControlStack } from "../../src/control/stack.js";
import {
  connectTcp,
  type EnvClient,
  killServers,
  MAIN,
  numbers,
  type Response,
  startStdioServer,
  startTcpServer,
} from "./helpers.js";

/** The run command's log files, removed at the end. */
const logDir = mkdtempSync(join(tmpdir(), "mbpo-env-log-"));
after(() => rmSync(logDir, { recursive: true, force: true }));

after(killServers);

const SEED = 4;
const EPISODES = 2;
const stack0 = createControlStack(defaultConfig());
const OBS = stack0.task.observationSize;
const ACT = stack0.task.actionSize;
const STEPS = stack0.task.episodeSteps;

/** The actions `run --policy random --seed SEED` takes, in order (they do not depend on the state). */
function randomActions(count: number, seed: number): number[][] {
  const policy = new RandomPolicy(ACT, { seed });
  const out = new Float32Array(ACT);
  const actions: number[][] = [];
  for (let i = 0; i < count; i++) {
    policy.act(new Float32Array(OBS), undefined as never, out);
    actions.push(Array.from(out));
  }
  return actions;
}

/** Episode returns printed by the real `mbpo-arm run` command. */
function runCommandReturns(seed: number, episodes: number): number[] {
  const r = spawnSync(
    process.execPath,
    [
      MAIN,
      "run",
      "--policy",
      "random",
      "--seed",
      String(seed),
      "--episodes",
      String(episodes),
      "--json",
      "--no-transition-log",
    ],
    {
      encoding: "utf8",
      env: { ...process.env, MBPO_ARM_LOG_DIR: logDir },
      timeout: 120_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((l) => l.type === "episode")
    .map((l) => l.return as number);
}

/** The transitions of the same run, in process (the body of `run`), for a step-by-step comparison. */
async function inProcessTransitions(seed: number, episodes: number) {
  const stack = createControlStack(withOverrides(defaultConfig(), { seed }));
  const policy = new RandomPolicy(ACT, { seed });
  const transitions: { obs: number[]; reward: number; nextObs: number[]; truncated: boolean }[] = [];
  await stack.driver.start();
  await runEpisodes(stack, policy, {
    episodes,
    seed,
    onTransition: (t: Transition) =>
      transitions.push({
        obs: Array.from(t.obs),
        reward: t.reward,
        nextObs: Array.from(t.nextObs),
        truncated: t.truncated,
      }),
  });
  await stack.driver.stop();
  return transitions;
}

/** Lines a broken or hostile client might send, with a word the error must contain. */
const HOSTILE: [string, RegExp][] = [
  ["not json at all", /malformed JSON/],
  ['{"cmd":"step","action":[0,0', /malformed JSON/],
  ['{"cmd":"step","action":[0,NaN,0,0]}', /NaN and Infinity/],
  ['{"cmd":"step","action":[0,-Infinity,0,0]}', /NaN and Infinity/],
  ['{"cmd":"step","action":[0,1e999,0,0]}', /action\[1\] must be finite/],
  ['{"cmd":"step","action":[0,null,0,0]}', /action\[1\] must be a number, got null/],
  ['{"cmd":"step","action":[0,"1",0,0]}', /action\[1\] must be a number/],
  ['{"cmd":"step","action":[0,0,0]}', /must have 4 numbers, got 3/],
  ['{"cmd":"step","action":[0,0,0,0,0]}', /must have 4 numbers, got 5/],
  ['{"cmd":"step","action":{"0":1}}', /must be an array of 4 numbers/],
  ['{"cmd":"step"}', /must be an array of 4 numbers, got nothing/],
  ['{"cmd":"jump"}', /unknown command "jump"/],
  ['{"command":"step"}', /missing "cmd"/],
  ["[1,2,3]", /expected a JSON object/],
  ["42", /expected a JSON object/],
  ["null", /expected a JSON object/],
  ['{"cmd":"reset","seed":-1}', /seed" must be an integer ≥ 0/],
  ['{"cmd":"reset","seed":1.5}', /seed" must be an integer ≥ 0/],
  ['{"cmd":"reset","seed":"7"}', /seed" must be an integer ≥ 0/],
  ['{"cmd":"spec","id":{}}', /"id" must be a string or a number/],
  ['{"cmd":"reward","obs":[[1]],"action":[[0,0,0,0]],"next_obs":[[1]]}', /obs\[0\] must be an array of 20/],
  ['{"cmd":"reward","obs":[],"action":[[0,0,0,0]],"next_obs":[]}', /"action" has 1 rows, "obs" has 0/],
  ["\u0000\u00ff\ufffd garbage", /malformed JSON/],
  [`{"cmd":"step","action":[${"0,".repeat(200_000)}0]}`, /line too long/],
];

async function sendHostile(client: EnvClient): Promise<void> {
  for (const [line, expected] of HOSTILE) {
    const r = await client.raw(line);
    assert.equal(typeof r.error, "string", `no error for ${line.slice(0, 60)}: ${JSON.stringify(r)}`);
    assert.match(r.error!, expected, `line ${line.slice(0, 60)}`);
    assert.deepEqual(Object.keys(r), ["error"]);
  }
}

/** Plays EPISODES episodes with the given actions; hostile lines are mixed in when asked. */
async function playEpisodes(client: EnvClient, actions: number[][], hostileEvery = 0) {
  const returns: number[] = [];
  const steps: Response[] = [];
  let k = 0;
  for (let e = 0; e < EPISODES; e++) {
    const reset = await client.request(e === 0 ? { cmd: "reset", seed: SEED } : { cmd: "reset" });
    assert.equal(reset.error, undefined, reset.error);
    let total = 0;
    for (let s = 0; s < STEPS; s++) {
      if (hostileEvery > 0 && s % hostileEvery === 0) {
        const [line, expected] = HOSTILE[(s / hostileEvery) % HOSTILE.length];
        const bad = await client.raw(line);
        assert.match(bad.error ?? "", expected);
      }
      const r = await client.request({ cmd: "step", action: actions[k++] });
      assert.equal(r.error, undefined, r.error);
      total += r.reward as number;
      steps.push(r);
      if (r.terminated || r.truncated) break;
    }
    returns.push(total);
  }
  return { returns, steps };
}

describe("env serve over a pipe", () => {
  const actions = randomActions(EPISODES * STEPS, SEED);
  let expectedReturns: number[];
  let expected: Awaited<ReturnType<typeof inProcessTransitions>>;
  /** One server for the tests on default settings: each starts with a seeded reset, so none depends on another. */
  let shared: ReturnType<typeof startStdioServer>;
  before(async () => {
    shared = startStdioServer();
    expectedReturns = runCommandReturns(SEED, EPISODES);
    expected = await inProcessTransitions(SEED, EPISODES);
  });
  after(() => {
    if (shared.child.exitCode === null) shared.child.kill();
  });

  it("spec names sizes, bounds, episode length, control rate, joints and the task", async () => {
    const server = shared;
    const spec = await server.client.request({ cmd: "spec", id: "s1" });
    assert.equal(spec.id, "s1");
    assert.equal(spec.observation_size, OBS);
    assert.equal(spec.action_size, ACT);
    assert.deepEqual(spec.action_low, [-1, -1, -1, -1]);
    assert.deepEqual(spec.action_high, [1, 1, 1, 1]);
    assert.equal(spec.episode_steps, 100);
    assert.equal(spec.control_rate_hz, 50);
    assert.deepEqual(
      spec.joint_names,
      stack0.model.joints.map((j) => j.name),
    );
    const task = spec.task as { name: string; params: Record<string, unknown> };
    assert.equal(task.name, "reach");
    assert.equal(task.params.successRadius, 0.02);
    assert.equal(spec.driver, "sim");
    assert.equal(spec.timing, "stepped");
  });

  it("episodes played with run's actions and seed give run's returns, bit for bit", async () => {
    assert.equal(expectedReturns.length, EPISODES);
    const server = shared;
    const { returns, steps } = await playEpisodes(server.client, actions);
    assert.deepEqual(returns, expectedReturns);
    // Step by step: the same observations and rewards as the in-process run.
    assert.equal(steps.length, expected.length);
    steps.forEach((r, i) => {
      assert.deepEqual(numbers(r.obs), expected[i].nextObs, `step ${i}`);
      assert.equal(r.reward, expected[i].reward, `step ${i}`);
      assert.equal(r.truncated, expected[i].truncated, `step ${i}`);
    });
    const last = steps[steps.length - 1].info as { episode: { return: number; steps: number } };
    assert.equal(last.episode.return, expectedReturns[EPISODES - 1]);
    assert.equal(last.episode.steps, STEPS);
  });

  it("hostile lines get an error naming the problem, and serving goes on unchanged", async () => {
    const server = startStdioServer(["--max-line-bytes", "65536"]);
    await sendHostile(server.client);
    const early = await server.client.request({ cmd: "step", action: [0, 0, 0, 0] });
    assert.match(early.error ?? "", /no episode yet: send reset first/);
    // Hostile lines between the steps of an episode change nothing in it.
    const { returns } = await playEpisodes(server.client, actions, 7);
    assert.deepEqual(returns, expectedReturns);
    // A line that arrives in pieces is still one line; CRLF endings are accepted.
    server.client.write('{"cmd":"sp');
    await new Promise((r) => setTimeout(r, 50));
    server.client.write('ec","id":3}\r\n');
    const spec = await server.client.read();
    assert.equal(spec.id, 3);
    assert.equal(spec.observation_size, OBS);
    assert.match(server.stderr(), /env serve: driver sim/);
    await server.client.request({ cmd: "close" });
    assert.equal(await server.exited, 0);
  });

  it("reset with a seed repeats its episode whatever came before; another seed differs", async () => {
    const server = shared;
    const c = server.client;
    const first = await c.request({ cmd: "reset", seed: 9 });
    for (let i = 0; i < 30; i++) await c.request({ cmd: "step", action: actions[i] });
    await c.request({ cmd: "reset" });
    const again = await c.request({ cmd: "reset", seed: 9 });
    assert.deepEqual(again.obs, first.obs);
    assert.deepEqual(again.info, first.info);
    const other = await c.request({ cmd: "reset", seed: 10 });
    assert.notDeepEqual(other.obs, first.obs);
    const info = first.info as { seed: number; episode: number; goal: number[]; reset_reached: boolean };
    assert.equal(info.seed, 9);
    assert.equal(info.episode, 0);
    assert.equal(info.reset_reached, true);
    assert.equal(info.goal.length, 3);
    // A fresh server gives the same episode for the same seed.
    const fresh = startStdioServer();
    assert.deepEqual(await fresh.client.request({ cmd: "reset", seed: 9 }), first);
    fresh.child.stdin.end();
    assert.equal(await fresh.exited, 0, "the end of stdin closes the server");
  });

  it("an episode ends at its length: truncated, then refused until reset; the safety filter's work is reported", async () => {
    const server = startStdioServer(["-p", "task.episode_steps=3", "-p", "safety.torque_rate_limit=50"]);
    const c = server.client;
    await c.request({ cmd: "reset", seed: 1 });
    // A full-scale action from rest (2.05 N·m) exceeds a 50 N·m/s torque-rate limit (1 N·m per
    // 20 ms tick): the filter acts, and the step says so.
    const limited = await c.request({ cmd: "step", action: [1, -1, 1, -1] });
    const limitedInfo = limited.info as { interventions: Record<string, number> };
    assert.ok((limitedInfo.interventions.rateLimit ?? 0) > 0, JSON.stringify(limitedInfo));
    await c.request({ cmd: "reset", seed: 1 });
    const flags: [unknown, unknown][] = [];
    for (let i = 0; i < 3; i++) {
      const r = await c.request({ cmd: "step", action: [0.1, -0.2, 0.3, 2] });
      flags.push([r.terminated, r.truncated]);
      const info = r.info as { step: number; effort: number[]; interventions: Record<string, number> };
      assert.equal(info.step, i);
      assert.equal(info.effort.length, ACT);
      assert.equal(typeof info.interventions, "object");
    }
    assert.deepEqual(flags, [
      [false, false],
      [false, false],
      [false, true],
    ]);
    const refused = await c.request({ cmd: "step", action: [0, 0, 0, 0] });
    assert.match(refused.error ?? "", /episode 0 is over \(3 steps\): send reset/);
    const next = await c.request({ cmd: "reset" });
    assert.equal((next.info as { episode: number }).episode, 1);
    assert.equal((await c.request({ cmd: "step", action: [0, 0, 0, 0] })).error, undefined);
    await c.request({ cmd: "close" });
    assert.equal(await server.exited, 0);
  });

  it("reward scores a batch exactly as the steps did; null (a non-finite value) is an invalid state", async () => {
    const server = shared;
    const c = server.client;
    await c.request({ cmd: "reset", seed: 3 });
    const rows = { obs: [] as number[][], action: [] as number[][], next_obs: [] as number[][] };
    const rewards: number[] = [];
    let obs = numbers((await c.request({ cmd: "reset", seed: 3 })).obs);
    for (let i = 0; i < 20; i++) {
      const r = await c.request({ cmd: "step", action: actions[i] });
      rows.obs.push(obs);
      rows.action.push(actions[i]);
      rows.next_obs.push(numbers(r.obs));
      rewards.push(r.reward as number);
      obs = numbers(r.obs);
    }
    const batch = await c.request({ cmd: "reward", ...rows });
    assert.deepEqual(batch.reward, rewards);
    assert.deepEqual(batch.terminated, new Array(20).fill(false));
    // The binary form: base64 float32 rows in (what the task scores: the same rewards as the JSON
    // form), base64 float64 rewards and one byte per flag out.
    const b64 = (table: number[][]) => Buffer.from(Float32Array.from(table.flat()).buffer).toString("base64");
    const binary = await c.request({
      cmd: "reward",
      encoding: "base64",
      obs: b64(rows.obs),
      action: b64(rows.action),
      next_obs: b64(rows.next_obs.map((row, i) => (i === 5 ? row.map(() => Number.NaN) : row))),
    });
    const decoded = new Float64Array(new Uint8Array(Buffer.from(binary.reward as string, "base64")).buffer);
    assert.deepEqual(
      Array.from(decoded),
      rewards.map((r, i) => (i === 5 ? -10 : r)),
    );
    const flags = Array.from(Buffer.from(binary.terminated as string, "base64"));
    assert.deepEqual(
      flags,
      rewards.map((_, i) => (i === 5 ? 1 : 0)),
    );
    const broken = rows.next_obs[0].slice();
    broken[2] = null as unknown as number;
    const invalid = await c.request({
      cmd: "reward",
      obs: [rows.obs[0]],
      action: [rows.action[0]],
      next_obs: [broken],
    });
    assert.deepEqual(invalid.reward, [-10]);
    assert.deepEqual(invalid.terminated, [true]);
    // A NaN action has no reward: it comes back as null, the protocol's non-finite number.
    const nanAction = await c.request({
      cmd: "reward",
      obs: [rows.obs[0]],
      action: [[null, 0, 0, 0]],
      next_obs: [rows.next_obs[0]],
    });
    assert.deepEqual(nanAction.reward, [null]);
  });

  it("close answers ok and ends the server with exit code 0", async () => {
    assert.deepEqual(await shared.client.request({ cmd: "close", id: "bye" }), { ok: true, id: "bye" });
    assert.equal(await shared.client.nextLine(), undefined);
    assert.equal(await shared.exited, 0);
  });
});

describe("env serve over TCP", () => {
  const actions = randomActions(EPISODES * STEPS, SEED);
  let server: Awaited<ReturnType<typeof startTcpServer>>;
  before(async () => {
    server = await startTcpServer(["--max-line-bytes", "65536"]);
  });
  after(() => {
    if (server.child.exitCode === null) server.child.kill();
  });

  it("serves spec, seeded resets and run's returns; one client at a time; close ends the server", async () => {
    const expectedReturns = runCommandReturns(SEED, EPISODES);
    const first = await connectTcp(server.port);
    const spec = await first.client.request({ cmd: "spec" });
    assert.equal(spec.observation_size, OBS);

    // A second client is told the robot is busy, and the first is not disturbed.
    const second = await connectTcp(server.port);
    assert.match((await second.client.read()).error ?? "", /busy/);
    assert.equal(await second.client.nextLine(), undefined);

    await sendHostile(first.client);
    const { returns } = await playEpisodes(first.client, actions, 11);
    assert.deepEqual(returns, expectedReturns);

    // Leaving mid-episode abandons it; the next client is served and must reset.
    await first.client.request({ cmd: "reset", seed: SEED });
    await first.client.request({ cmd: "step", action: [0, 0, 0, 0] });
    first.socket.end();
    await new Promise((r) => first.socket.once("close", r));
    const third = await connectTcp(server.port);
    const refused = await third.client.request({ cmd: "step", action: [0, 0, 0, 0] });
    assert.match(refused.error ?? "", /abandoned\): send reset/);
    const again = await third.client.request({ cmd: "reset", seed: SEED });
    const fresh = await playEpisodes(third.client, actions);
    assert.deepEqual(fresh.returns, expectedReturns);
    assert.equal((again.info as { seed: number }).seed, SEED);

    assert.deepEqual(await third.client.request({ cmd: "close", id: 1 }), { ok: true, id: 1 });
    assert.equal(await third.client.nextLine(), undefined);
    assert.equal(await server.exited, 0);
  });
});

describe("env serve on a paced robot (the twin on wall-clock time)", () => {
  it("holds the arm at the control rate between calls, and a step takes one control period", async () => {
    const server = startStdioServer(["--realtime", "-p", "task.episode_steps=20"]);
    const c = server.client;
    const spec = await c.request({ cmd: "spec" });
    assert.equal(spec.timing, "realtime");
    const reset = await c.request({ cmd: "reset", seed: 1 });
    assert.equal((reset.info as { reset_reached: boolean }).reset_reached, true);
    const t0 = performance.now();
    const fast = await c.request({ cmd: "step", action: [0, 0, 0, 0] });
    const stepMs = performance.now() - t0;
    assert.ok(stepMs >= 10, `a step took ${stepMs.toFixed(1)} ms; the period is 20 ms`);
    assert.ok(typeof (fast.info as { hold_ticks: number }).hold_ticks === "number");
    // The client thinks for 300 ms: about 15 periods, each one a hold tick.
    await new Promise((r) => setTimeout(r, 300));
    const slow = await c.request({ cmd: "step", action: [0, 0, 0, 0] });
    const holds = (slow.info as { hold_ticks: number }).hold_ticks;
    assert.ok(holds >= 8 && holds <= 20, `hold ticks ${holds}`);
    // Held, not dropped: gravity compensation kept the arm where it was.
    const before = numbers(fast.obs);
    const after = numbers(slow.obs);
    for (let j = 0; j < ACT; j++) assert.ok(Math.abs(after[j] - before[j]) < 0.02, `joint ${j} sagged`);
    await c.request({ cmd: "close" });
    assert.equal(await server.exited, 0);
  });

  it("SIGTERM (as Ctrl-C) while holding stops the robot and exits cleanly", async () => {
    const server = startStdioServer(["--realtime"]);
    await server.client.request({ cmd: "reset", seed: 1 });
    await server.client.request({ cmd: "step", action: [0, 0, 0, 0] });
    server.child.kill("SIGTERM");
    assert.equal(await server.exited, 0);
    assert.match(server.stderr(), /SIGTERM: stopping safely[\s\S]*env serve: closed; robot stopped/);
  });
});

describe("env serve when the input ends", () => {
  it("answers every request written before the end of stdin, in order, then exits 0", () => {
    const steps = 250; // more than two episodes: truncation errors and resets are answered too
    const lines = [JSON.stringify({ cmd: "reset", seed: 1, id: 0 })];
    for (let i = 1; i <= steps; i++) {
      lines.push(JSON.stringify({ cmd: "step", action: [0.1, -0.1, 0.2, 0], id: i }));
    }
    lines.push(JSON.stringify({ cmd: "spec", id: steps + 1 }));
    const r = spawnSync(process.execPath, [MAIN, "env", "serve", "--no-log-file"], {
      input: `${lines.join("\n")}\n`,
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const answers = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: number; error?: string });
    assert.deepEqual(
      answers.map((a) => a.id),
      lines.map((_, i) => i),
    );
    // Steps past the episode's end are refused, not dropped.
    assert.equal(answers.filter((a) => a.error !== undefined).length, steps - STEPS);
  });
});
