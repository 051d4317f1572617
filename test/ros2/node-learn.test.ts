/**
 * Learn mode of the `mbpo_arm` node on the fake rclnodejs: on a ROS-timed arm (the simulator
 * playing it behind joint_states and efforts) with the test-double learner, every service does what
 * it says; and on the embedded twin with the real learner, the node writes the same metrics as
 * `train` for the same seed (they run one core).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { train } from "../../src/app/train.js";
import { defaultConfig, withOverrides } from "../../src/config/config.js";
import type { DiagnosticArrayMsg, Float64MultiArrayMsg } from "../../src/drivers/ros2/rclnodejs.js";
import { ParameterType } from "../../src/drivers/ros2/rclnodejs.js";
import { MbpoArmNode } from "../../src/ros/node.js";
import { FakeRclnodejs } from "./fake-rclnodejs.js";
import { closeStepping, quiet, type Rig, rig, stepUntil } from "./rig.js";

const FAKE = new URL("../train/fake-learner.js", import.meta.url).href;
const root = mkdtempSync(join(tmpdir(), "node-learn-"));
after(() => rmSync(root, { recursive: true, force: true }));

function csv(dir: string): string[][] {
  return readFileSync(join(dir, "metrics.csv"), "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => l.split(","));
}

/** metrics.csv without the wall-clock columns (seconds_*, hold_*), which differ between runs. */
function deterministic(dir: string): string[][] {
  const [header, ...rows] = csv(dir);
  const keep = header
    .map((h, i) => (h.startsWith("seconds_") || h.startsWith("hold_") ? -1 : i))
    .filter((i) => i >= 0);
  return [header, ...rows].map((r) => keep.map((i) => r[i]));
}

function diagnostic(r: Rig): Map<string, string> {
  r.arm.publishDiagnostics();
  const status = r.node.last<DiagnosticArrayMsg>("/diagnostics")!.status[0];
  return new Map(status.values.map((kv) => [kv.key, kv.value]));
}

function hostEpisodes(dir: string): number {
  return JSON.parse(readFileSync(join(dir, "checkpoint", "host.json"), "utf8")).episodes;
}

describe("node --mode learn (fake rclnodejs)", () => {
  const out = join(root, "ros-run");
  const args = ["-p", "task.episode_steps:=20", "-p", "reset.timeout:=0.5"];
  const learn = { steps: 200, out, evalEvery: 3, evalEpisodes: 1, checkpointEvery: 100, learnerModule: FAKE };

  it("runs episodes and learns through the services: set_learning, save_checkpoint, stop, start, resume", async () => {
    const r = await rig(args, { mode: "learn", learn });
    const run = r.arm.learning!;
    assert.ok(run, "the learner started with the node");
    for (const name of ["start", "stop", "reset_fault", "save_checkpoint"])
      assert.equal(r.node.services.get(`/mbpo_arm/${name}`)?.type, "std_srvs/srv/Trigger");
    r.publishState();
    await r.run(2);
    const started = r.node.call("~/start");
    assert.equal(started.success, true, String(started.message));

    // Two training episodes: rows in metrics.csv, progress on the topic, figures in /diagnostics.
    assert.ok(await stepUntil(r, () => run.episodes >= 2));
    assert.equal(csv(out).length, 1 + run.episodes);
    assert.ok(existsSync(join(out, "run.json")) && existsSync(join(out, "config.yaml")));
    const progress = r.node.published.get("/mbpo_arm/learning_progress") as Float64MultiArrayMsg[];
    assert.equal(progress.length, run.episodes);
    assert.equal(progress[0].layout.dim[0].label, "real_steps");
    assert.equal(progress[1].data[0], 40, "real steps after two episodes");
    const d = diagnostic(r);
    assert.equal(d.get("real_steps"), String(run.realSteps));
    assert.equal(d.get("learning"), "true");
    assert.ok(["training", "idle"].includes(d.get("learner") ?? ""));
    assert.ok(d.has("model_holdout_mse") && d.has("last_eval_success") && d.has("tick_compute_p99_us"));

    // Paused: episodes go on with the current actor; the learner gets none of them.
    assert.equal(r.node.call("~/set_learning", { data: false }).success, true);
    const rows = run.episodes;
    const done = r.arm.episodesDone;
    assert.ok(await stepUntil(r, () => r.arm.episodesDone >= done + 3));
    assert.ok(run.episodes <= rows + 1, "at most the episode under way when paused was learned from");
    const paused = run.episodes;
    assert.ok(await stepUntil(r, () => r.arm.episodesDone >= done + 5));
    assert.equal(run.episodes, paused, "no learning while paused");
    assert.equal(r.node.call("~/set_learning", { data: true }).success, true);
    assert.ok(await stepUntil(r, () => run.episodes > paused), "learning resumes");

    // A checkpoint on request, written after the episode under way.
    const saved = r.node.call("~/save_checkpoint");
    assert.equal(saved.success, true);
    assert.match(String(saved.message), /after the current episode/);
    const atRequest = run.episodes;
    assert.ok(await stepUntil(r, () => existsSync(join(out, "checkpoint", "host.json"))));
    assert.ok(hostEpisodes(out) >= atRequest);

    // ~/stop: the episode ends, a checkpoint is saved, the arm is held.
    assert.equal(r.node.call("~/stop").success, true);
    const stoppedAt = run.episodes;
    assert.ok(
      await stepUntil(
        r,
        () => existsSync(join(out, "checkpoint", "host.json")) && hostEpisodes(out) === stoppedAt,
      ),
    );
    const ticks = r.arm.loop.ticks;
    await r.run(20);
    assert.equal(r.arm.loop.ticks, ticks + 20, "held: one command per timer tick");
    assert.equal(run.episodes, stoppedAt);

    // ~/start again: learning continues where it stopped.
    assert.equal(r.node.call("~/start").success, true);
    assert.ok(await stepUntil(r, () => run.episodes > stoppedAt));
    await closeStepping(r);
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    assert.equal(summary.episodes, hostEpisodes(out));
    assert.equal(summary.completed, false);
    assert.equal(r.arm.safety.fault, undefined);
    // What the command's last line names: the run, not its checkpoint folder.
    assert.equal(r.arm.runDir, out);

    // resume:=DIR continues the run to its 200 steps; the rows go on from the checkpoint.
    const resumed = await rig([...args, "-p", `resume:=${out}`], {
      mode: "learn",
      learn: { learnerModule: FAKE },
      autostart: true,
    });
    resumed.publishState();
    assert.ok(
      await stepUntil(resumed, () => resumed.arm.learning?.done === true && !resumed.arm.running, 60_000),
    );
    await closeStepping(resumed);
    const realSteps = csv(out)
      .slice(1)
      .map((row) => Number(row[csv(out)[0].indexOf("real_steps")]));
    assert.deepEqual(realSteps, [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
    assert.equal(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")).completed, true);
  });

  it("a shutdown during the bootstrap's pre-training ends the node's start within 2 s, with a checkpoint", async () => {
    // The first test's run directory holds a transition log to bootstrap from.
    const bootstrap = { file: join(out, "transitions.mcap") };
    const stopDir = join(root, "stopped-pretraining");
    const shutdown = new AbortController();
    let stoppedAt = Number.NaN;
    // 300 ms into the pre-training, which starts once the bootstrap is stored.
    const info = (line: string) => {
      if (!line.includes("transitions in the real buffer")) return;
      setTimeout(() => {
        stoppedAt = performance.now();
        shutdown.abort();
      }, 300);
    };
    process.env.MBPO_FAKE_LEARNER = JSON.stringify({ pretrainUntilStopped: true });
    const r = await rig(
      args,
      { mode: "learn", logger: { ...quiet, info }, learn: { ...learn, out: stopDir, bootstrap } },
      shutdown.signal,
    ).finally(() => {
      delete process.env.MBPO_FAKE_LEARNER;
    });
    const started = performance.now();
    assert.ok(Number.isFinite(stoppedAt), "the shutdown came while the node started");
    assert.ok(
      started - stoppedAt < 2000,
      `start ended ${(started - stoppedAt).toFixed(0)} ms after the shutdown`,
    );
    await closeStepping(r);
    assert.ok(existsSync(join(stopDir, "checkpoint", "host.json")), "a checkpoint to resume from");
    assert.equal(r.arm.summary?.realSteps, 0);
  });

  it("refuses what does not apply: services outside learn mode, settings changes in learn mode", async () => {
    const r = await rig(args, { mode: "learn", learn: { ...learn, out: join(root, "refusals") } });
    const set = r.node.setParameters([
      new r.rcl.Parameter("reset.speed", ParameterType.PARAMETER_DOUBLE, 0.5),
    ]);
    assert.equal(set.successful, false);
    assert.match(set.reason, /learn mode/);
    await closeStepping(r);
    const plain = await rig();
    assert.match(String(plain.node.call("~/save_checkpoint").message), /no learning run/);
  });
});

/** A tiny MBPO on the quick profile: 25-step episodes, few rollouts and updates. */
const TINY = {
  "mbpo.initialExplorationSteps": 50,
  "mbpo.modelRetrainEvery": 50,
  "mbpo.rolloutsPerRealStep": 4,
  "mbpo.sacUpdatesPerRealStep": 1,
  "sac.hiddenSizes": "[16,16]",
  "sac.batchSize": 32,
  "ensemble.hiddenSizes": "[16,16]",
  "ensemble.weightDecays": "[0,0,0]",
  "ensemble.members": 3,
  "ensemble.elites": 2,
  "ensemble.maxEpochs": 3,
  "ensemble.batchSize": 32,
};

describe("node --mode learn and train share the core (real learner, quick profile)", () => {
  it("write the same metrics.csv for the same seed on the simulator", async () => {
    const viaTrain = join(root, "train");
    const settings = { steps: 100, evalEvery: 2, evalEpisodes: 2, checkpointEvery: 100 };
    const { hyperparameterSettings } = await import("../../src/app/run-setup.js");
    await train({
      out: viaTrain,
      config: withOverrides(defaultConfig(), { "task.episode_steps": 25, seed: 7 }),
      settings: { algo: "mbpo", seed: 7, ...settings, ...hyperparameterSettings("quick", TINY) },
      logger: { ...quiet, debug() {} },
    });

    const viaNode = join(root, "node");
    const rcl = new FakeRclnodejs();
    await rcl.init(undefined, ["--ros-args", "-p", "task.episode_steps:=25", "-p", "seed:=7"]);
    let finished = () => {};
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const arm = new MbpoArmNode(rcl, rcl.createNode("mbpo_arm"), {
      mode: "learn",
      driver: "sim",
      autostart: true,
      logger: quiet,
      learn: { ...settings, out: viaNode, profile: "quick", hp: TINY },
      onFinished: () => finished(),
    });
    await arm.start();
    await done;
    await arm.close();
    assert.equal(arm.faulted, false);
    const expected = deterministic(viaTrain);
    assert.equal(expected.length, 1 + 4, "four episodes of 25 steps");
    assert.deepEqual(deterministic(viaNode), expected);
  });
});
