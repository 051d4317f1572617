/** `mbpo-arm log summary` and `mbpo-arm bootstrap` as a user runs them: subprocess, output, exit code. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { defaultConfig } from "../../src/config/config.js";
import { createControlStack } from "../../src/control/stack.js";
import { loadBootstrap } from "../../src/data/bootstrap.js";
import { summarizeLog } from "../../src/data/log-summary.js";
import { readRos2Mcap } from "../../src/data/mcap-reader.js";
import { packageRoot } from "../../src/util/paths.js";
import { writeTeleopBag } from "./rosbag2-fixture.js";

const main = join(packageRoot(), "dist", "src", "cli", "main.js");
const dir = mkdtempSync(join(tmpdir(), "mbpo-data-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], {
    encoding: "utf8",
    env: { ...process.env, MBPO_ARM_LOG_DIR: dir, MBPO_ARM_RUNS_DIR: join(dir, "runs") },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("mbpo-arm log summary", () => {
  const runDir = join(dir, "run");
  let runEpisodes: { return: number; success: boolean }[] = [];
  before(() => {
    const r = cli(["run", "--policy", "pd", "--episodes", "2", "--seed", "4", "--out", runDir, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    runEpisodes = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((l) => l.type === "episode");
  });

  it("prints topics, counts, episodes and returns", () => {
    const r = cli(["log", "summary", join(runDir, "transitions.mcap")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\/mbpo\/transition +mbpo_arm_msgs\/msg\/Transition +200/);
    assert.match(r.stdout, /2 episodes, 200 transitions/);
    assert.match(r.stdout, /success 100%/);
  });

  it("--json gives the same figures as the run reported", () => {
    const r = cli(["log", "summary", join(runDir, "transitions.mcap"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.complete, true);
    assert.deepEqual(
      s.episodes.map((e: { return: number; success: boolean }) => [e.return, e.success]),
      runEpisodes.map((e) => [e.return, e.success]),
    );
  });

  it("a PD run's log converted as a demonstration: the derived actions are the policy's own", async () => {
    const stack = createControlStack(defaultConfig());
    const file = join(runDir, "transitions.mcap");
    const logged: { action: Float32Array; safety_interventions: number; position: Float64Array }[] = [];
    await readRos2Mcap(file, {
      topics: new Set(["/mbpo/transition"]),
      onMessage: (m) => logged.push(m.message as (typeof logged)[number]),
    });
    const demo = await loadBootstrap(file, stack, { from: "joint-states" });
    assert.equal(demo.kind, "teleop");
    assert.equal(demo.effortSource, "commands");
    // Each episode is one stretch (the reset moves between them are not logged: gaps).
    assert.equal(demo.segments, 2);
    assert.equal(demo.transitions.length, logged.length);
    let compared = 0;
    demo.transitions.forEach((t, i) => {
      for (let j = 0; j < 4; j++) assert.ok(Math.abs(t.q[j] - logged[i].position[j]) < 1e-9, `q ${i}`);
      const a = logged[i].action;
      if (logged[i].safety_interventions > 0 || a.some((x) => Math.abs(x) > 1)) return;
      compared++;
      for (let j = 0; j < 4; j++) {
        assert.ok(Math.abs(t.action[j] - a[j]) < 1e-5, `action ${i}/${j}: ${t.action[j]} vs ${a[j]}`);
      }
    });
    assert.ok(compared > 150, `${compared} transitions compared`);
  });

  it("a truncated log: summary of what is there, the problem on stderr, exit code 2", () => {
    const bytes = readFileSync(join(runDir, "transitions.mcap"));
    const cut = join(dir, "cut.mcap");
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.8)));
    const r = cli(["log", "summary", cut]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /INCOMPLETE/);
    assert.match(r.stderr, /^mbpo-arm: cut\.mcap: truncated at byte \d+/);
  });

  it("not MCAP, or not a transition log: a one-line error, exit code 1", async () => {
    const text = join(dir, "notes.txt");
    writeFileSync(text, "not a bag");
    const r = cli(["log", "summary", text]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^mbpo-arm: .*notes\.txt is not an MCAP file/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    await assert.rejects(summarizeLog(join(dir, "missing.mcap")), /cannot open \(ENOENT\)/);
  });
});

describe("mbpo-arm bootstrap", () => {
  const bag = join(dir, "teleop.mcap");
  const stack = createControlStack(defaultConfig());
  before(async () => {
    await writeTeleopBag(bag, stack);
  });

  it("converts a teleop bag into a transition log that loads back to the same transitions", async () => {
    const out = join(dir, "boot");
    const r = cli(["bootstrap", "--bag", bag, "--out", out, "--json", "--no-log-file"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.kind, "teleop");
    assert.equal(report.transitions, 248);
    assert.equal(report.episodes, 4);
    const direct = await loadBootstrap(bag, stack);
    const viaLog = await loadBootstrap(join(out, "transitions.mcap"), stack);
    assert.equal(viaLog.kind, "transition-log");
    assert.equal(viaLog.transitions.length, direct.transitions.length);
    viaLog.transitions.forEach((t, i) => {
      const d = direct.transitions[i];
      assert.deepEqual(Array.from(t.obs), Array.from(d.obs));
      assert.deepEqual(Array.from(t.action), Array.from(d.action));
      assert.deepEqual(Array.from(t.effort), Array.from(d.effort));
      assert.deepEqual(Array.from(t.q), Array.from(d.q));
      assert.equal(t.reward, d.reward);
    });
    // Marked as teleop data.
    let source = -1;
    await readRos2Mcap(join(out, "transitions.mcap"), {
      topics: new Set(["/mbpo/transition"]),
      onMessage: (m) => {
        source = (m.message as { source: number }).source;
      },
    });
    assert.equal(source, 1);
    assert.equal((await summarizeLog(join(out, "transitions.mcap"))).episodes.length, 4);
  });

  it("a .db3 bag: exit 1 with how to record or convert to MCAP", () => {
    const db3 = join(dir, "teleop_0.db3");
    writeFileSync(db3, Buffer.concat([Buffer.from("SQLite format 3\0"), Buffer.alloc(64)]));
    const r = cli(["bootstrap", "--bag", db3, "--out", join(dir, "x"), "--no-log-file"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /sqlite3 bag .*ros2 bag record -s mcap.*ros2 bag convert/);
  });

  it("log summary of a teleop bag names the missing topic", async () => {
    await assert.rejects(
      summarizeLog(bag),
      /has no \/mbpo\/transition topic: it is not an mbpo-arm transition log \(topics: \/joint_states, \/effort_controller\/commands, \/chatter\)/,
    );
  });
});
