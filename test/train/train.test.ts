/**
 * The trainer on the simulator with the test-double learner (fake-learner.ts, in its worker
 * thread): the arm is commanded throughout, a learner crash latches the safe stop, Ctrl-C saves a
 * checkpoint and --resume gives the numbers of an uninterrupted run, and the run directory holds
 * what it promises. The real learner is run end to end in cli-train.test.ts.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { XMLValidator } from "fast-xml-parser";
import { type TrainOptions, train } from "../../src/app/train.js";
import { type Config, defaultConfig, loadConfig, withOverrides } from "../../src/config/config.js";
import type { Policy } from "../../src/control/policy.js";
import type { ControlStack } from "../../src/control/stack.js";
import type { TaskEpisode } from "../../src/tasks/task.js";
import { METRICS_COLUMNS, type MetricsRow, type TrainSettings } from "../../src/train/run-dir.js";

const FAKE = new URL("./fake-learner.js", import.meta.url).href;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** Short episodes so that a run of several episodes takes a second or two. */
function config(): Config {
  return withOverrides(defaultConfig(), { "task.episode_steps": 20 });
}

function settings(extra: Partial<TrainSettings> = {}): TrainSettings {
  return { algo: "mbpo", steps: 200, seed: 4, evalEvery: 3, evalEpisodes: 2, checkpointEvery: 4, ...extra };
}

/** Every temporary directory of this file, removed at the end. */
const temporary: string[] = [];
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "train-"));
  temporary.push(dir);
  return join(dir, "run");
}

/** Records the wall-clock time of every command sent to the driver. */
function recordCommands(stack: ControlStack, sent: number[]): void {
  const send = stack.driver.sendEffort.bind(stack.driver);
  stack.driver.sendEffort = (effort: Float64Array) => {
    sent.push(performance.now());
    send(effort);
  };
}

/** The columns that must match between runs: everything but wall-clock timings. */
function deterministic(rows: MetricsRow[]): Record<string, number | string>[] {
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).filter(([k]) => !k.startsWith("seconds_") && !k.startsWith("hold_")),
    ),
  );
}

function readRows(dir: string): MetricsRow[] {
  const host = JSON.parse(readFileSync(join(dir, "checkpoint", "host.json"), "utf8"));
  return host.rows;
}

function csvRows(dir: string): string[][] {
  const lines = readFileSync(join(dir, "metrics.csv"), "utf8").trimEnd().split("\n");
  return lines.map((l) => l.split(","));
}

describe("train (test-double learner)", () => {
  const base = tempDir();
  let uninterrupted: Awaited<ReturnType<typeof train>>;

  it("runs to the step target and writes metrics, summary, curve, config and a checkpoint", async () => {
    const sent: number[] = [];
    uninterrupted = await train({
      out: base,
      config: config(),
      settings: settings(),
      logger: quiet,
      learnerModule: FAKE,
      inspectStack: (stack) => recordCommands(stack, sent),
    });
    const s = uninterrupted.summary;
    assert.equal(s.completed, true);
    assert.equal(s.realSteps, 200);
    assert.equal(s.episodes, 10);
    assert.equal(s.fault, undefined);
    assert.ok(s.holdTicks.count > 0, "the arm was held while the learner worked");

    // metrics.csv: the header, then one row per episode with the header's number of fields.
    const csv = csvRows(base);
    assert.deepEqual(csv[0], [...METRICS_COLUMNS]);
    assert.equal(csv.length, 11);
    for (const fields of csv.slice(1)) {
      assert.equal(fields.length, METRICS_COLUMNS.length);
      fields.forEach((f, i) => {
        if (METRICS_COLUMNS[i] === "policy") assert.match(f, /^(explore|actor)$/);
        else assert.ok(f === "" || Number.isFinite(Number(f)), `${METRICS_COLUMNS[i]} = "${f}"`);
      });
    }
    const col = (name: string) => csv.slice(1).map((f) => f[METRICS_COLUMNS.indexOf(name as never)]);
    assert.deepEqual(col("real_steps").map(Number), [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
    // Evaluations after episodes 3, 6, 9 and the last one.
    assert.deepEqual(
      col("eval_success").map((f) => f !== ""),
      [false, false, true, false, false, true, false, false, true, true],
    );
    assert.ok(col("hold_ticks").every((f) => Number(f) >= 1));

    // summary.json
    const summary = JSON.parse(readFileSync(join(base, "summary.json"), "utf8"));
    for (const key of [
      "algo",
      "task",
      "seed",
      "backend",
      "realSteps",
      "episodes",
      "wallSeconds",
      "holdTicks",
    ]) {
      assert.ok(key in summary, `summary.json has ${key}`);
    }
    assert.equal(summary.evals, 4);
    assert.equal(typeof summary.holdTicks.p99Us, "number");
    assert.equal(summary.checkpoint, join(base, "checkpoint"));

    // curve.svg is well-formed XML with the evaluation points drawn.
    const svg = readFileSync(join(base, "curve.svg"), "utf8");
    assert.equal(XMLValidator.validate(svg), true);
    assert.equal((svg.match(/<circle /g) ?? []).length, 4);
    assert.match(svg, /<polyline /);

    // config.yaml is a ROS 2 parameter file that reproduces the run's settings.
    assert.deepEqual(loadConfig(join(base, "config.yaml")), config());
    const run = JSON.parse(readFileSync(join(base, "run.json"), "utf8"));
    assert.equal(run.learner.algo, "mbpo");
    assert.equal(run.learner.control.controlRateHz, 50);
    assert.ok(existsSync(join(base, "checkpoint", "actor.json")));
    assert.ok(existsSync(join(base, "checkpoint", "learner", "fake-learner.json")));

    // Every real episode, training and evaluation, is in the transition log.
    assert.equal(s.transitionLog?.path, join(base, "transitions.mcap"));
    assert.equal(s.transitionLog?.episodes, 10 + 4 * 2);
    assert.ok(statSync(join(base, "transitions.mcap")).size > 1000);

    // The control loop never stopped commanding the arm for the learner.
    const gaps = sent.slice(1).map((t, i) => t - sent[i]);
    assert.ok(Math.max(...gaps) < 500, `longest gap between commands ${Math.max(...gaps).toFixed(0)} ms`);
  });

  for (const when of ["mid-episode", "mid-evaluation"] as const) {
    it(`Ctrl-C ${when} saves a checkpoint; --resume gives the same numbers as an uninterrupted run`, async () => {
      const out = tempDir();
      const controller = new AbortController();
      const first = await train({
        out,
        config: config(),
        settings: settings(),
        logger: quiet,
        learnerModule: FAKE,
        signal: controller.signal,
        inspectStack: (stack) => abortDuring(stack, controller, when),
      });
      assert.equal(first.summary.interrupted, true);
      assert.equal(first.summary.completed, false);
      // Stopped in the 5th episode (dropped, to be run again) or in the evaluation after the 6th.
      assert.equal(first.summary.episodes, when === "mid-episode" ? 4 : 6);
      assert.ok(existsSync(join(out, "checkpoint", "host.json")), "Ctrl-C saved a checkpoint");
      const host = JSON.parse(readFileSync(join(out, "checkpoint", "host.json"), "utf8"));
      assert.equal(host.pendingRow !== undefined, when === "mid-evaluation");

      // The episode cut short is kept in the log (the learner does not get it).
      assert.equal(first.summary.transitionLog?.episodes, when === "mid-episode" ? 4 + 1 + 2 : 6 + 2 + 1);

      const resumed = await train({ out, resume: true, logger: quiet, learnerModule: FAKE });
      assert.equal(resumed.summary.completed, true);
      const next = when === "mid-episode" ? 5 : 7;
      assert.equal(resumed.summary.transitionLog?.path, join(out, `transitions-from-episode-${next}.mcap`));
      assert.equal(resumed.summary.realSteps, 200);
      assert.deepEqual(deterministic(readRows(out)), deterministic(readRows(base)));
      assert.equal(csvRows(out).length, 11);
      assert.equal(
        readFileSync(join(out, "checkpoint", "actor.json"), "utf8"),
        readFileSync(join(base, "checkpoint", "actor.json"), "utf8"),
        "the same actor at the end",
      );
    });
  }

  it("starts from a bootstrap (another run's log): in the learner's buffer, named in the summary", async () => {
    // The first run's log: 10 training and 8 evaluation episodes of 20 steps.
    const log = join(base, "transitions.mcap");
    const out = tempDir();
    const { summary } = await train({
      out,
      config: config(),
      settings: settings({ steps: 60, hyperparameters: { mbpo: { initialExplorationSteps: 40 } } }),
      bootstrap: { file: log },
      logger: quiet,
      learnerModule: FAKE,
      transitionLog: false,
    });
    assert.equal(summary.completed, true);
    assert.equal(summary.realSteps, 60, "the bootstrap's rows are not the run's steps");
    assert.equal(summary.bootstrap?.file, log);
    assert.equal(summary.bootstrap?.kind, "transition-log");
    assert.equal(summary.bootstrap?.transitions, 18 * 20);
    assert.ok(Number.isFinite(summary.bootstrap?.modelHoldoutNll), "the model was pre-trained");
    // The robot's own exploration still comes first (40 steps: two episodes).
    assert.deepEqual(
      readRows(out).map((r) => r.policy),
      ["explore", "explore", "actor"],
    );
    assert.deepEqual(
      JSON.parse(readFileSync(join(out, "run.json"), "utf8")).settings.bootstrap,
      summary.bootstrap,
    );
  });

  it("a stop during the bootstrap's pre-training ends train within 2 s, with a checkpoint to resume", async () => {
    const out = tempDir();
    const controller = new AbortController();
    const warnings: string[] = [];
    const sent: number[] = [];
    // The stop comes 300 ms into the pre-training, which starts after the bootstrap is stored (on
    // a loaded machine, a stop at a fixed time from the start landed in the learner's start-up).
    let timer: NodeJS.Timeout | undefined;
    const info = (line: string) => {
      if (line.includes("transitions in the real buffer")) timer = setTimeout(() => controller.abort(), 300);
    };
    const started = performance.now();
    let stoppedAt = Number.NaN;
    controller.signal.addEventListener("abort", () => {
      stoppedAt = performance.now();
    });
    process.env.MBPO_FAKE_LEARNER = JSON.stringify({ pretrainUntilStopped: true });
    const { summary } = await train({
      out,
      config: config(),
      settings: settings(),
      bootstrap: { file: join(base, "transitions.mcap") },
      logger: { ...quiet, info, warn: (line: string) => warnings.push(line) },
      learnerModule: FAKE,
      signal: controller.signal,
      inspectStack: (stack) => recordCommands(stack, sent),
    }).finally(() => {
      delete process.env.MBPO_FAKE_LEARNER;
    });
    clearTimeout(timer);
    const ended = performance.now();
    assert.ok(Number.isFinite(stoppedAt), "the stop came while train ran");
    assert.ok(ended - stoppedAt < 2000, `train ended ${(ended - stoppedAt).toFixed(0)} ms after the stop`);
    assert.ok(ended - started < 10_000);
    assert.equal(summary.completed, false);
    assert.equal(summary.realSteps, 0);
    assert.ok(
      warnings.some((w) => w.includes("pre-training stopped")),
      warnings.join("\n"),
    );
    assert.ok(existsSync(join(out, "checkpoint", "host.json")), "a checkpoint to resume from");
  });

  it("stops on a bootstrap file it cannot import before the robot moves", async () => {
    const notMcap = join(tempDir(), "..", "not.mcap");
    writeFileSync(notMcap, "this is not an MCAP file");
    const sent: number[] = [];
    await assert.rejects(
      train({
        out: tempDir(),
        config: config(),
        settings: settings(),
        bootstrap: { file: notMcap },
        logger: quiet,
        learnerModule: FAKE,
        inspectStack: (stack) => recordCommands(stack, sent),
      }),
      (error: Error) => error.message.startsWith("train --bootstrap:") && error.message.includes(notMcap),
    );
    assert.equal(sent.length, 0, "no command was sent");
  });

  it("a learner crash latches the safe stop, is reported, and the arm stays commanded", async () => {
    const out = tempDir();
    const sent: number[] = [];
    let stackSeen: ControlStack | undefined;
    const options: TrainOptions = {
      out,
      config: config(),
      settings: settings(),
      logger: quiet,
      learnerModule: FAKE,
      inspectStack: (stack) => {
        stackSeen = stack;
        recordCommands(stack, sent);
      },
    };
    // The test double's failure mode: the worker thread gets a copy of this environment.
    process.env.MBPO_FAKE_LEARNER = JSON.stringify({ fail: "crash", failOnUpdate: 2, delayMs: 1500 });
    let outcome: Awaited<ReturnType<typeof train>>;
    try {
      outcome = await train(options);
    } finally {
      delete process.env.MBPO_FAKE_LEARNER;
    }
    assert.match(
      outcome.summary.fault ?? "",
      /^learner: learner worker crashed: fake learner: crashed on purpose/,
    );
    assert.equal(outcome.summary.completed, false);
    assert.equal(stackSeen?.safety.fault?.reason, "learner");
    assert.equal(outcome.summary.episodes, 1, "the first episode's update went through");
    // Commands went on during the 1.5 s updates and after the crash (the safe stop).
    const gaps = sent.slice(1).map((t, i) => t - sent[i]);
    assert.ok(Math.max(...gaps) < 500, `longest gap between commands ${Math.max(...gaps).toFixed(0)} ms`);
    const latchedAt = stackSeen?.safety.fault?.since ?? Number.NaN;
    assert.ok(Number.isFinite(latchedAt));
    assert.ok(sent.length > 2 * 20 + (2 * 1500) / 20, `only ${sent.length} commands sent`);
  });

  it("a learner that hands over NaN weights latches the safe stop instead of reaching the arm", async () => {
    const out = tempDir();
    let stackSeen: ControlStack | undefined;
    process.env.MBPO_FAKE_LEARNER = JSON.stringify({ nanWeightsAfter: 2 });
    let outcome: Awaited<ReturnType<typeof train>>;
    try {
      outcome = await train({
        out,
        config: config(),
        settings: settings(),
        logger: quiet,
        learnerModule: FAKE,
        inspectStack: (stack) => {
          stackSeen = stack;
        },
      });
    } finally {
      delete process.env.MBPO_FAKE_LEARNER;
    }
    assert.match(
      outcome.summary.fault ?? "",
      /^learner: unusable actor weights: mlp: weights\[0\]\[3\] is NaN/,
    );
    assert.equal(stackSeen?.safety.fault?.reason, "learner");
    assert.equal(outcome.summary.episodes, 1, "no episode ran on the bad weights");
    assert.equal(outcome.summary.completed, false);
  });

  it("resumes from the checkpoint left aside by a save interrupted between its renames", async () => {
    const out = tempDir();
    cpSync(base, out, { recursive: true });
    renameSync(join(out, "checkpoint"), join(out, ".checkpoint-old"));
    const resumed = await train({ out, resume: true, steps: 240, logger: quiet, learnerModule: FAKE });
    assert.equal(resumed.summary.completed, true);
    assert.equal(resumed.summary.realSteps, 240);
    assert.equal(readRows(out).length, 12);
    assert.ok(!existsSync(join(out, ".checkpoint-old")));
  });

  it("refuses a new run in a directory that holds one, and --resume without a checkpoint", async () => {
    await assert.rejects(
      train({ out: base, config: config(), settings: settings(), logger: quiet, learnerModule: FAKE }),
      /already holds a transition log \(.*transitions\.mcap\); a new run never replaces one: continue its training run with --resume/,
    );
    const empty = tempDir();
    await assert.rejects(
      train({ out: empty, resume: true, logger: quiet, learnerModule: FAKE }),
      /--resume .*: no such directory/,
    );
    const fresh = join(tempDir(), "..");
    await assert.rejects(
      train({ out: fresh, resume: true, logger: quiet, learnerModule: FAKE }),
      /--resume .*: no checkpoint there/,
    );
  });
});

/**
 * Aborts (as Ctrl-C does) during the 5th training episode, 7 ticks in, or at the start of the
 * evaluation after the 6th episode.
 */
function abortDuring(
  stack: ControlStack,
  controller: AbortController,
  when: "mid-episode" | "mid-evaluation",
) {
  const runEpisode = stack.runner.runEpisode.bind(stack.runner);
  let trainEpisodes = 0;
  let ticks = Number.NEGATIVE_INFINITY;
  const send = stack.driver.sendEffort.bind(stack.driver);
  stack.driver.sendEffort = (effort: Float64Array) => {
    if (++ticks === 7) controller.abort();
    send(effort);
  };
  stack.runner.runEpisode = (index: number, episode: TaskEpisode, policy: Policy, options) => {
    const evaluating = policy.name === "actor (mean action)";
    if (!evaluating) trainEpisodes++;
    if (when === "mid-episode" && !evaluating && trainEpisodes === 5) ticks = 0;
    if (when === "mid-evaluation" && evaluating && trainEpisodes === 6) ticks = 0;
    return runEpisode(index, episode, policy, options);
  };
}
