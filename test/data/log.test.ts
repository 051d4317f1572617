/**
 * The transition log end to end: a run on the simulator writes it, and every reader gets back
 * exactly what the control loop produced; damaged, truncated and killed files are read up to the
 * damage with a one-line problem, never a crash.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { McapIndexedReader } from "@mcap/core";
import { loadDecompressHandlers } from "@mcap/support";
import { runEpisodes } from "../../src/app/episodes.js";
import { openTransitionLog } from "../../src/app/transitions.js";
import { defaultConfig, withOverrides } from "../../src/config/config.js";
import { type EpisodeResult, emptyResult } from "../../src/control/episode.js";
import { createPolicy } from "../../src/control/policies/index.js";
import { createControlStack } from "../../src/control/stack.js";
import { loadBootstrap } from "../../src/data/bootstrap.js";
import { summarizeLog } from "../../src/data/log-summary.js";
import { readRos2Mcap } from "../../src/data/mcap-reader.js";
import { recordEpisodes, TransitionLog } from "../../src/data/transition-log.js";
import { packageRoot } from "../../src/util/paths.js";

const dir = mkdtempSync(join(tmpdir(), "mbpo-log-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const main = join(packageRoot(), "dist", "src", "cli", "main.js");

interface Captured {
  obs: Float32Array;
  action: Float32Array;
  effort: Float64Array;
  reward: number;
  nextObs: Float32Array;
  terminated: boolean;
}

async function indexedRead(file: string) {
  const handle = await open(file, "r");
  try {
    const reader = await McapIndexedReader.Initialize({
      readable: {
        size: async () => BigInt((await handle.stat()).size),
        read: async (offset: bigint, length: bigint) => {
          const buffer = new Uint8Array(Number(length));
          await handle.read(buffer, 0, buffer.byteLength, Number(offset));
          return buffer;
        },
      },
      decompressHandlers: await loadDecompressHandlers(),
    });
    let messages = 0;
    for await (const _ of reader.readMessages({ validateCrcs: true })) messages++;
    return { reader, messages };
  } finally {
    await handle.close();
  }
}

describe("transition log", () => {
  const file = join(dir, "run", "transitions.mcap");
  const captured: Captured[] = [];
  const results: EpisodeResult[] = [];
  const config = withOverrides(defaultConfig(), { seed: 5 });
  const stack = createControlStack(config);

  before(async () => {
    const policy = createPolicy("random", { task: stack.task, model: stack.model, seed: 5 });
    const log = await TransitionLog.open(file, {
      jointNames: stack.model.joints.map((j) => j.name),
      dof: stack.model.dof,
      obsSize: stack.task.observationSize,
      actSize: stack.task.actionSize,
      goalSize: stack.task.goalSize,
      // Smaller than an episode, so that growing the buffer is exercised too.
      episodeSteps: 30,
    });
    const recorder = recordEpisodes(log, stack.driver, policy, stack.model.dof);
    await stack.driver.start();
    await runEpisodes(stack, recorder.policy, {
      episodes: 3,
      seed: 5,
      onTransition: (t) => {
        recorder.onTransition(t);
        captured.push({
          obs: t.obs.slice(),
          action: t.action.slice(),
          effort: t.effort.slice(),
          reward: t.reward,
          nextObs: t.nextObs.slice(),
          terminated: t.terminated,
        });
      },
      onEpisode: (r) => {
        recorder.onEpisode(r);
        results.push(r);
      },
    });
    await stack.driver.stop();
    const stats = await log.close();
    assert.equal(stats.episodes, 3);
    assert.equal(log.error, undefined);
  });

  it("round trip: the log gives back exactly the transitions the loop produced", async () => {
    const loaded = await loadBootstrap(file, stack);
    assert.equal(loaded.kind, "transition-log");
    assert.equal(loaded.read.complete, true);
    assert.equal(loaded.transitions.length, captured.length);
    assert.equal(captured.length, 300);
    const layout = (stack.task as unknown as { layout: { q: number; qd: number; target: number } }).layout;
    const scale = (stack.task as unknown as { velocityScale: Float64Array }).velocityScale;
    loaded.transitions.forEach((t, i) => {
      const c = captured[i];
      assert.deepEqual(t.obs, c.obs, `obs ${i}`);
      assert.deepEqual(t.action, c.action, `action ${i}`);
      assert.deepEqual(t.effort, c.effort, `effort ${i}`);
      assert.deepEqual(t.nextObs, c.nextObs, `nextObs ${i}`);
      assert.equal(t.reward, c.reward);
      assert.equal(t.terminated, c.terminated);
      // The joint state and goal were recorded beside the observation built from them.
      for (let j = 0; j < stack.model.dof; j++) {
        assert.ok(Math.abs(t.q[j] - c.obs[layout.q + j]) < 1e-6, `q ${i}/${j}`);
        assert.ok(Math.abs(t.nextQ[j] - c.nextObs[layout.q + j]) < 1e-6, `nextQ ${i}/${j}`);
        assert.ok(Math.abs(t.qd[j] * scale[j] - c.obs[layout.qd + j]) < 1e-6, `qd ${i}/${j}`);
        assert.ok(Math.abs(t.nextQd[j] * scale[j] - c.nextObs[layout.qd + j]) < 1e-6, `nextQd ${i}/${j}`);
      }
      for (let a = 0; a < 3; a++) assert.ok(Math.abs(t.goal[a] - c.obs[layout.target + a]) < 1e-6);
    });
  });

  it("summary: topics, counts, episodes and returns as the run reported them", async () => {
    const s = await summarizeLog(file);
    assert.equal(s.complete, true);
    assert.equal(s.problem, undefined);
    assert.equal(s.profile, "ros2");
    const counts = Object.fromEntries(s.topics.map((t) => [t.topic, [t.type, t.messages]]));
    assert.deepEqual(counts, {
      "/joint_states": ["sensor_msgs/msg/JointState", 303],
      "/effort_controller/commands": ["std_msgs/msg/Float64MultiArray", 300],
      "/mbpo/transition": ["mbpo_arm_msgs/msg/Transition", 300],
      "/mbpo/episode": ["mbpo_arm_msgs/msg/EpisodeSummary", 3],
    });
    assert.deepEqual(
      s.episodes.map((e) => [e.episode, e.steps, e.return, e.success, e.aborted]),
      results.map((r) => [r.episode, r.steps, r.return, r.success, r.aborted]),
    );
    assert.equal(s.unfinishedTransitions, 0);
  });

  it("is a valid indexed MCAP: summary, chunk indexes, statistics and CRCs check out", async () => {
    const { reader, messages } = await indexedRead(file);
    assert.equal(reader.header.profile, "ros2");
    assert.equal(messages, 906);
    assert.equal(reader.statistics?.messageCount, 906n);
    assert.ok(reader.chunkIndexes.length >= 3, "at least one chunk per episode");
    assert.ok(reader.chunkIndexes.every((c) => c.compression === "zstd"));
    for (const schema of reader.schemasById.values()) assert.equal(schema.encoding, "ros2msg");
    for (const channel of reader.channelsById.values()) {
      assert.equal(channel.messageEncoding, "cdr");
      assert.match(channel.metadata.get("offered_qos_profiles") ?? "", /reliability: 1/);
    }
  });

  it("JointState messages carry the joint names and the state the observation was built from", async () => {
    const states: { name: string[]; position: Float64Array }[] = [];
    await readRos2Mcap(file, {
      topics: new Set(["/joint_states"]),
      onMessage: (m) => states.push(m.message as { name: string[]; position: Float64Array }),
    });
    assert.deepEqual(states[0].name, ["joint1", "joint2", "joint3", "joint4"]);
    assert.ok(Math.abs(states[0].position[1] - captured[0].obs[1]) < 1e-6);
  });

  it("a truncated file reads up to the cut, with a one-line problem and never a throw", async () => {
    const bytes = readFileSync(file);
    const full = await summarizeLog(file);
    let previous = -1;
    for (const fraction of [0.3, 0.5, 0.7, 0.95]) {
      const cut = join(dir, `cut-${fraction}.mcap`);
      writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * fraction)));
      const s = await summarizeLog(cut);
      assert.equal(s.complete, false);
      assert.match(
        s.problem ?? "",
        /^cut-[0-9.]+\.mcap: (truncated at byte \d+|truncated after its data section|ends without a summary)/,
      );
      assert.ok(!s.problem!.includes("\n"));
      // What was read is a prefix of the full log, episode by episode.
      assert.deepEqual(s.episodes, full.episodes.slice(0, s.episodes.length));
      assert.ok(s.episodes.length >= previous);
      previous = s.episodes.length;
      if (s.transitions > 0) {
        const boot = await loadBootstrap(cut, stack);
        assert.equal(boot.transitions.length, s.transitions);
        assert.equal(boot.read.problem, s.problem);
      } else {
        await assert.rejects(loadBootstrap(cut, stack), /nothing to bootstrap from.*also: cut-/);
      }
    }
    assert.ok(previous >= 2, "the 95% cut keeps at least two episodes");
  });

  it("a corrupted chunk stops reading there with a one-line problem", async () => {
    const bytes = Buffer.from(readFileSync(file));
    const { reader } = await indexedRead(file);
    const second = reader.chunkIndexes[1];
    // Overwrite bytes in the middle of the second chunk's compressed records.
    const at = Number(second.chunkStartOffset) + Number(second.chunkLength) - 200;
    bytes.fill(0x55, at, at + 64);
    const bad = join(dir, "corrupt.mcap");
    writeFileSync(bad, bytes);
    const s = await summarizeLog(bad);
    assert.equal(s.complete, false);
    assert.match(s.problem ?? "", /^corrupt\.mcap: damaged at byte \d+ \(.+\); read \d+ messages before it$/);
    assert.equal(s.episodes.length, 1, "the first episode's chunk is intact");
  });

  it("a file cut inside its header is a truncated log (exit 2 in the CLI), not a crash", async () => {
    const tiny = join(dir, "tiny.mcap");
    copyFileSync(file, tiny);
    writeFileSync(tiny, readFileSync(file).subarray(0, 20));
    const s = await summarizeLog(tiny);
    assert.equal(s.complete, false);
    assert.equal(s.transitions, 0);
    assert.match(s.problem ?? "", /truncated/);
    assert.ok(!s.problem!.includes("\n"));
  });
});

describe("an episode stopped before its first step", () => {
  const config = withOverrides(defaultConfig(), { seed: 6, "task.episode_steps": 20 });
  const stack = createControlStack(config);

  /** A log of `before` empty episodes, one run episode, then `afterwards` empty ones. */
  async function logWith(name: string, before: number, afterwards: number): Promise<string> {
    const file = join(dir, name, "transitions.mcap");
    const log = await openTransitionLog(stack, file);
    const empty = (episode: number): EpisodeResult => ({
      ...emptyResult(episode),
      fault: "estop: asserted",
      aborted: true,
    });
    for (let e = 0; e < before; e++) log.endEpisode(empty(e));
    const policy = createPolicy("pd", { task: stack.task, model: stack.model, seed: 6 });
    const recorder = recordEpisodes(log, stack.driver, policy, stack.model.dof);
    await stack.driver.start();
    await runEpisodes(stack, recorder.policy, {
      episodes: 1,
      seed: 6,
      onTransition: (t) => recorder.onTransition(t),
      onEpisode: (r) => recorder.onEpisode(r),
    });
    await stack.driver.stop();
    for (let e = 0; e < afterwards; e++) log.endEpisode(empty(before + 1 + e));
    await log.close();
    return file;
  }

  it("is stamped at the log's latest time, not 0, and does not bound the log's duration", async () => {
    const file = await logWith("empty-after", 0, 2);
    const times: Record<string, bigint[]> = {};
    await readRos2Mcap(file, {
      onMessage: (m) => {
        times[m.topic] = [...(times[m.topic] ?? []), m.logTime];
      },
    });
    const states = times["/joint_states"];
    const episodes = times["/mbpo/episode"];
    assert.equal(episodes.length, 3);
    const lastState = states[states.length - 1];
    assert.ok(lastState > 0n);
    assert.deepEqual(episodes.slice(1), [lastState, lastState], "the empty episodes carry the latest time");
    const s = await summarizeLog(file);
    assert.deepEqual(
      s.episodes.map((e) => e.steps),
      [20, 0, 0],
    );
    assert.ok(Math.abs(s.duration - 20 / config.control_rate_hz) < 1e-6, `duration ${s.duration}`);
  });

  it("first in a log (no time yet to take), it still does not bound the log's duration", async () => {
    const file = await logWith("empty-first", 1, 0);
    const s = await summarizeLog(file);
    assert.deepEqual(
      s.episodes.map((e) => e.steps),
      [0, 20],
    );
    assert.ok(Math.abs(s.duration - 20 / config.control_rate_hz) < 1e-6, `duration ${s.duration}`);
  });
});

/** Starts `mbpo-arm run` in a subprocess; resolves when the log holds at least `bytes`. */
async function runUntil(out: string, bytes: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [main, "run", "--policy", "pd", "--episodes", "100000", "--out", out, "--no-log-file"],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, MBPO_ARM_LOG_DIR: dir } },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  const file = join(out, "transitions.mcap");
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`run exited early (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) throw new Error(`log did not reach ${bytes} bytes: ${stderr}`);
    try {
      if (statSync(file).size >= bytes) return child;
    } catch {
      // not created yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

describe("an interrupted run", () => {
  it("killed with SIGKILL: every finished episode is readable, at most the one in progress is lost", async () => {
    const out = join(dir, "killed");
    const child = await runUntil(out, 120_000);
    const done = exited(child);
    child.kill("SIGKILL");
    await done;
    const s = await summarizeLog(join(out, "transitions.mcap"));
    assert.equal(s.complete, false);
    assert.ok(s.problem !== undefined);
    assert.ok(s.episodes.length >= 3, `${s.episodes.length} episodes`);
    assert.ok(s.episodes.every((e, i) => e.episode === i && e.steps === 100 && !e.aborted));
    assert.equal(s.transitions - s.unfinishedTransitions, 100 * s.episodes.length);
    const stack = createControlStack(defaultConfig());
    const boot = await loadBootstrap(join(out, "transitions.mcap"), stack);
    assert.equal(boot.transitions.length, s.transitions);
  });

  it("stopped with Ctrl-C (SIGINT): the file is closed properly, the stopped episode marked aborted", async () => {
    const out = join(dir, "interrupted");
    const child = await runUntil(out, 120_000);
    const done = exited(child);
    child.kill("SIGINT");
    assert.equal(await done, 0);
    const s = await summarizeLog(join(out, "transitions.mcap"));
    assert.equal(s.complete, true, s.problem);
    assert.equal(s.problem, undefined);
    assert.ok(s.episodes.length >= 4);
    assert.equal(s.episodes.at(-1)?.aborted, true);
    assert.ok(s.episodes.slice(0, -1).every((e) => e.steps === 100 && !e.aborted));
    assert.equal(s.unfinishedTransitions, 0);
    await indexedRead(join(out, "transitions.mcap"));
  });
});
