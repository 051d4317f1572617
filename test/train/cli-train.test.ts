/**
 * `mbpo-arm train` as a user runs it, with the real MBPO learner (tiny networks so that it takes
 * seconds): a run, Ctrl-C (a real SIGINT) and --resume giving the same numbers, evaluating the saved
 * actor with `run --policy checkpoint:DIR`, and the one-line errors.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { writeChecksums } from "../../src/util/checksums.js";
import { packageRoot } from "../../src/util/paths.js";

const main = join(packageRoot(), "dist", "src", "cli", "main.js");
const env = { ...process.env, MBPO_ARM_LOG_DIR: mkdtempSync(join(tmpdir(), "mbpo-log-")) };

/** A tiny MBPO: 25-step episodes, 3 × 16×16 ensemble, 16×16 SAC, few rollouts and updates. */
const TINY = [
  "-p",
  "task.episode_steps=25",
  "--eval-every",
  "2",
  "--eval-episodes",
  "2",
  "--checkpoint-every",
  "100",
  ...[
    "mbpo.initialExplorationSteps=50",
    "mbpo.modelRetrainEvery=50",
    "mbpo.rolloutsPerRealStep=4",
    "mbpo.sacUpdatesPerRealStep=1",
    "sac.hiddenSizes=[16,16]",
    "sac.batchSize=32",
    "ensemble.hiddenSizes=[16,16]",
    "ensemble.weightDecays=[0,0,0]",
    "ensemble.members=3",
    "ensemble.elites=2",
    "ensemble.maxEpochs=3",
    "ensemble.batchSize=32",
  ].flatMap((hp) => ["--hp", hp]),
];

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8", env, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("(run with --help"));
}

/** Metrics rows without the wall-clock columns, which differ from run to run. */
function deterministicMetrics(dir: string): string[][] {
  const [header, ...rows] = readFileSync(join(dir, "metrics.csv"), "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => l.split(","));
  const keep = header
    .map((h, i) => (h.startsWith("seconds_") || h.startsWith("hold_") ? -1 : i))
    .filter((i) => i >= 0);
  return [header, ...rows].map((r) => keep.map((i) => r[i]));
}

describe("mbpo-arm train (real learner)", () => {
  const root = mkdtempSync(join(tmpdir(), "cli-train-"));
  after(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(env.MBPO_ARM_LOG_DIR, { recursive: true, force: true });
  });
  const whole = join(root, "whole");
  const args = (out: string) => [
    "train",
    "--driver",
    "sim",
    "--task",
    "reach",
    "--steps",
    "100",
    "--seed",
    "5",
    "--out",
    out,
    ...TINY,
  ];

  it("trains, writes the run directory and prints JSON lines", () => {
    const r = cli([...args(whole), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.type),
      ["episode", "episode", "episode", "episode", "summary"],
    );
    const summary = lines[4];
    assert.equal(summary.completed, true);
    assert.equal(summary.realSteps, 100);
    assert.match(summary.backend, /^(node-gpu|node|wasm|cpu)$/);
    // After the 50 exploration steps the model is trained and SAC updates run.
    assert.equal(lines[2].policy, "actor");
    assert.equal(lines[2].model_trained, 1);
    assert.ok(Number.isFinite(lines[2].model_holdout_mse));
    assert.equal(lines[2].sac_updates, 25);
    for (const file of [
      "metrics.csv",
      "summary.json",
      "curve.svg",
      "config.yaml",
      "run.json",
      "checkpoint/actor.json",
    ]) {
      assert.ok(existsSync(join(whole, file)), file);
    }
    // No --profile: the default profile, recorded so that a resume keeps it.
    const run = JSON.parse(readFileSync(join(whole, "run.json"), "utf8"));
    assert.equal(run.learner.profile, "quick");
  });

  it("Ctrl-C saves a checkpoint, and --resume finishes with the same numbers", async () => {
    const out = join(root, "interrupted");
    const child = spawn(process.execPath, [main, ...args(out)], { env });
    let stderr = "";
    let signalled = false;
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      // In the 3rd episode (dropped), or the update phase after it (stopped there, or let finish
      // within its grace: the resume continues it either way), or the evaluation after that.
      if (!signalled && /episode 2 \(/.test(stderr)) {
        signalled = true;
        child.kill("SIGINT");
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, stderr);
    assert.match(stderr, /SIGINT: stopping safely/);
    assert.match(stderr, /continue with: mbpo-arm train --resume/);
    const interrupted = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    assert.equal(interrupted.interrupted, true);
    assert.ok(interrupted.realSteps < 100);

    const resumed = cli(["train", "--resume", out, "--json"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(deterministicMetrics(out), deterministicMetrics(whole));
    assert.equal(
      readFileSync(join(out, "checkpoint", "actor.json"), "utf8"),
      readFileSync(join(whole, "checkpoint", "actor.json"), "utf8"),
    );
  });

  it("a stop during a long update phase ends train within 2 s, the work left kept for the resume", async () => {
    const out = join(root, "long-update");
    // 25 new steps × 400 SAC updates: the phase after episode 3 takes tens of seconds.
    const child = spawn(
      process.execPath,
      [main, ...args(out), "--hp", "mbpo.sacUpdatesPerRealStep=400", "--verbose", "--no-log-file"],
      { env },
    );
    let stderr = "";
    let signalledAt: number | undefined;
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      // The third phase (after episode 3) is the first past the 50 exploration steps.
      if (signalledAt === undefined && (stderr.match(/learner update phase/g) ?? []).length === 3) {
        signalledAt = -1;
        // Past the stop's grace (0.5 s), well inside the phase.
        setTimeout(() => {
          signalledAt = performance.now();
          child.kill("SIGTERM");
        }, 1000);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    const stopSeconds = (performance.now() - (signalledAt ?? 0)) / 1000;
    assert.equal(code, 0, stderr);
    assert.ok(signalledAt !== undefined && signalledAt > 0, stderr);
    assert.ok(stopSeconds < 2, `stopped ${stopSeconds.toFixed(2)} s after SIGTERM\n${stderr}`);
    const rows = readFileSync(join(out, "metrics.csv"), "utf8").trim().split("\n");
    // Not written yet: the row waits in the checkpoint for the resumed run to finish its phase.
    assert.equal(rows.length, 3, rows.join("\n"));
    const host = JSON.parse(readFileSync(join(out, "checkpoint", "host.json"), "utf8"));
    assert.equal(host.episodes, 3);
    assert.equal(host.realSteps, 75);
    // Cut in its SAC updates, or (on a loaded machine, where the model trains for longer than the
    // second before the stop) in its model training, which is rolled back and owes all 10,000.
    const done = host.pendingUpdate.sac_updates;
    assert.ok(done >= 0 && done < 25 * 400, `episode 3's phase did ${done} SAC updates`);
    const schedule = JSON.parse(
      readFileSync(join(out, "checkpoint", "learner", "learner.json"), "utf8"),
    ).schedule;
    assert.equal(schedule.pending.sacUpdates, 25 * 400 - done);
    assert.equal(schedule.stepsLearned, 75);
  });

  it("run --policy checkpoint:DIR evaluates the saved actor", () => {
    const r = cli([
      "run",
      "--policy",
      `checkpoint:${whole}`,
      "--episodes",
      "2",
      "--json",
      "--no-transition-log",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.at(-1).type, "summary");
    assert.equal(lines.at(-1).episodes, 2);
  });

  it("a damaged or edited checkpoint is refused with one line naming the file, before anything moves", () => {
    const copy = (name: string) => {
      const dir = join(root, name);
      cpSync(whole, dir, { recursive: true });
      return dir;
    };
    const obs = (dir: string) => join(dir, "checkpoint", "learner", "real-buffer.obs.bin");
    // One flipped bit on disk: SHA256SUMS catches it.
    const damaged = copy("damaged");
    const bytes = readFileSync(obs(damaged));
    bytes[17] ^= 0x04;
    writeFileSync(obs(damaged), bytes);
    // A buffer full of NaN with SHA256SUMS written to match (edited on purpose, or written by a
    // learner gone wrong): the learner's finiteness check catches it.
    const poisoned = copy("poisoned");
    writeFileSync(obs(poisoned), Buffer.from(new Float32Array(bytes.length / 4).fill(Number.NaN).buffer));
    writeChecksums(join(poisoned, "checkpoint"));
    // The actor alone, as `run --policy checkpoint:DIR` reads it.
    const actor = copy("actor");
    const actorPath = join(actor, "checkpoint", "actor.json");
    writeFileSync(
      actorPath,
      readFileSync(actorPath, "utf8").replace(/\d(?=[,\]])/, (d) => String((Number(d) + 1) % 10)),
    );
    const cases: [string[], RegExp][] = [
      [["train", "--resume", damaged, "--steps", "150"], /real-buffer\.obs\.bin: checksum mismatch/],
      [["train", "--resume", poisoned, "--steps", "150"], /real-buffer\.obs\.bin: element 0 of \d+ is NaN/],
      [["run", "--policy", `checkpoint:${actor}`, "--episodes", "1"], /actor\.json: checksum mismatch/],
    ];
    for (const [argv, pattern] of cases) {
      const started = Date.now();
      const r = cli([...argv, "--no-log-file", "--no-transition-log"]);
      assert.equal(r.code, 1, `${argv.join(" ")}: ${r.stderr}`);
      const lines = errorLines(r.stderr);
      assert.equal(lines.length, 1, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(lines[0], pattern);
      // Refused at load: no episode ran (a NaN buffer once trained for 22 s, then faulted).
      assert.ok(Date.now() - started < 30_000, `${argv.join(" ")} took ${Date.now() - started} ms`);
      assert.doesNotMatch(r.stderr, /episode 1/);
    }
    // A checkpoint from before SHA256SUMS existed still resumes, with a warning that says so.
    const old = copy("old");
    rmSync(join(old, "checkpoint", "SHA256SUMS"));
    const r = cli(["train", "--resume", old, "--steps", "125", "--no-log-file"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the checkpoint has no SHA256SUMS .* not verified/);
    assert.ok(existsSync(join(old, "checkpoint", "SHA256SUMS")), "the next checkpoint has one");
  });

  it("bad flags and a --resume without a checkpoint are one-line errors", () => {
    const empty = join(root, "empty");
    mkdirSync(empty);
    const cases: [string[], RegExp][] = [
      [["train", "--steps", "abc", "--out", empty], /--steps must be an integer ≥ 1/],
      [["train", "--steps", "0", "--out", empty], /--steps must be an integer ≥ 1/],
      [["train", "--out", empty], /--steps N is required/],
      [["train", "--steps", "10"], /--out DIR is required/],
      [["train", "--resume", empty], /--resume .*empty: no checkpoint there/],
      [["train", "--resume", join(root, "nothing")], /no such directory/],
      [["train", "--resume", whole, "--seed", "3"], /--seed cannot change a run/],
      [["train", "--resume", whole, "--tf-backend", "cpu"], /--tf-backend cannot change a run/],
      [["train", "--steps", "10", "--out", whole], /already holds a transition log .* --resume /],
      [["train", "--steps", "10", "--out", empty, "--tf-backend", "bogus"], /unknown backend "bogus"/],
      [["train", "--steps", "10", "--out", empty, "--hp", "sac.nope=1"], /unknown key "sac.nope"/],
      [["train", "--steps", "10", "--out", empty, "--algo", "ppo"], /argument 'ppo' is invalid/],
    ];
    for (const [argv, pattern] of cases) {
      const r = cli([...argv, "--no-log-file"]);
      assert.equal(r.code, 1, `${argv.join(" ")}: ${r.stderr}`);
      const lines = errorLines(r.stderr);
      assert.equal(lines.length, 1, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(lines[0], pattern);
    }
  });
});
