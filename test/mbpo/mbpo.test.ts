import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { hyperparameterSettings } from "../../src/app/run-setup.js";
import { defaultConfig } from "../../src/config/config.js";
import { MlpPolicy } from "../../src/control/policies/mlp.js";
import { RandomPolicy } from "../../src/control/policies/random.js";
import type { PolicyContext } from "../../src/control/policy.js";
import { createControlStack } from "../../src/control/stack.js";
import type { JointState } from "../../src/drivers/driver.js";
import {
  DEFAULT_PROFILE,
  HYPERPARAMETER_DEFAULTS,
  resolveHyperparameters,
  rolloutLength,
} from "../../src/mbpo/hyperparameters.js";
import {
  type Algorithm,
  controlSpecFromConfig,
  type Learner,
  type LearnerSpec,
  type RealTransitionInput,
  type UpdateReport,
} from "../../src/mbpo/learner.js";
import { createLearner, loadLearner } from "../../src/mbpo/mbpo.js";
import { RigidBodyPrior, subtractPrior } from "../../src/mbpo/model-prior.js";
import { Normalizer } from "../../src/mbpo/normalizer.js";
import { RealReplayBuffer } from "../../src/mbpo/replay-buffer.js";
import { realModelData } from "../../src/mbpo/rollouts.js";
import { Sac } from "../../src/mbpo/sac.js";
import { Rng } from "../../src/util/rng.js";
import { StateRecorder } from "../support/state-recorder.js";

const EPISODE_STEPS = 20;

/** Small enough that a whole run of updates takes a second or two; every part still runs. */
const TINY = {
  sac: { hiddenSizes: [16, 16], batchSize: 32 },
  ensemble: {
    members: 3,
    elites: 2,
    hiddenSizes: [16, 16],
    weightDecays: [2.5e-5, 5e-5, 1e-4],
    // Small batches: the ensemble's Adam is dozens of steps in when the checkpoint is taken, where
    // tfjs's own restore (pow) and training's float32 product of β differ.
    batchSize: 8,
    maxEpochs: 3,
  },
  mbpo: {
    rolloutsPerRealStep: 4,
    sacUpdatesPerRealStep: 2,
    initialExplorationSteps: 40,
    modelRetrainEvery: 20,
    // k = 1 up to step 0, then rising to 3 at step 100: the model buffer is resized on the way.
    rolloutSchedule: [0, 100, 1, 3],
  },
  buffer: { realCapacity: 1000, modelCapacity: 100 },
};

const config = defaultConfig();
config.task.episode_steps = EPISODE_STEPS;
const stack = createControlStack(config);

function spec(algo: Algorithm, seed = 7): LearnerSpec {
  return {
    algo,
    urdf: stack.urdfPath,
    task: { name: "reach", params: { episodeSteps: EPISODE_STEPS, successRadius: 0.02 } },
    seed,
    backend: "wasm",
    hyperparameters: TINY,
    control: controlSpecFromConfig(config, stack.model),
  };
}

/** Real transitions of `episodes` random-action episodes on the twin, one array per episode. */
async function collect(episodes: number, seed: number): Promise<RealTransitionInput[][]> {
  const rng = new Rng(seed, 1);
  const recorder = new StateRecorder(new RandomPolicy(4, { seed }));
  const out: RealTransitionInput[][] = [];
  for (let e = 0; e < episodes; e++) {
    const episode = stack.task.sampleEpisode(rng);
    const transitions: RealTransitionInput[] = [];
    await stack.runner.runEpisode(e, episode, recorder, {
      onTransition: (tr) => {
        const next = stack.driver.readState() as JointState;
        transitions.push({
          obs: Float32Array.from(tr.obs),
          action: Float32Array.from(tr.action),
          reward: tr.reward,
          nextObs: Float32Array.from(tr.nextObs),
          terminated: tr.terminated,
          q: recorder.q,
          qd: recorder.qd,
          effort: Float64Array.from(tr.effort),
          nextQ: Float64Array.from(next.position),
          nextQd: Float64Array.from(next.velocity),
          goal: Float64Array.from(episode.goal),
        });
      },
    });
    out.push(transitions);
  }
  return out;
}

const data = await collect(8, 3);

/** Feeds episodes [from, to) with an update after each; returns the reports (seconds removed). */
async function feed(learner: Learner, from: number, to: number): Promise<Omit<UpdateReport, "seconds">[]> {
  const reports: Omit<UpdateReport, "seconds">[] = [];
  for (let e = from; e < to; e++) {
    for (const t of data[e]) learner.addReal(t);
    const { seconds, ...report } = await learner.update();
    assert.ok(seconds.model >= 0 && seconds.rollouts >= 0 && seconds.sac >= 0);
    reports.push(report);
  }
  return reports;
}

async function actorValues(learner: Learner): Promise<number[][]> {
  return (await learner.actorWeights()).layers.flatMap((l) => [Array.from(l.weight), Array.from(l.bias)]);
}

const directories: string[] = [];
function temporaryDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), "mbpo-learner-"));
  directories.push(dir);
  return dir;
}
after(() => {
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

describe("MBPO schedule and hyperparameters", () => {
  it("schedules the rollout length as MBPO does: flat, then linear, truncated, then flat", async () => {
    const hopper = [20, 100, 1, 15]; // MBPO's Hopper schedule
    assert.equal(rolloutLength(hopper, 0), 1);
    assert.equal(rolloutLength(hopper, 20), 1);
    assert.equal(rolloutLength(hopper, 25), 1); // 1 + 5/80 · 14 = 1.875 → 1
    assert.equal(rolloutLength(hopper, 26), 2); // 1 + 6/80 · 14 = 2.05 → 2
    assert.equal(rolloutLength(hopper, 60), 8); // 1 + 0.5 · 14
    assert.equal(rolloutLength(hopper, 100), 15);
    assert.equal(rolloutLength(hopper, 1e6), 15);
    assert.equal(rolloutLength([5, 5, 2, 4], 5), 2);
    assert.equal(rolloutLength([5, 5, 2, 4], 6), 4);
    assert.deepEqual(
      [0, 1000, 2500, 4000, 9000].map((t) => rolloutLength(HYPERPARAMETER_DEFAULTS.mbpo.rolloutSchedule, t)),
      [1, 1, 3, 5, 5],
    );
  });

  it("keeps the papers' defaults and applies a profile, then overrides", async () => {
    const defaults = resolveHyperparameters();
    assert.equal(defaults.mbpo.rolloutsPerRealStep, 400);
    assert.equal(defaults.mbpo.modelRetrainEvery, 250);
    assert.equal(defaults.mbpo.sacUpdatesPerRealStep, 20);
    assert.equal(defaults.buffer.realFraction, 0.05);
    assert.deepEqual(defaults.ensemble.hiddenSizes, [200, 200, 200, 200]);
    assert.deepEqual(defaults.sac.hiddenSizes, [256, 256]);
    const quick = resolveHyperparameters({ mbpo: { sacUpdatesPerRealStep: 3 } }, "quick");
    assert.equal(quick.mbpo.sacUpdatesPerRealStep, 3);
    assert.notDeepEqual(quick.sac.hiddenSizes, defaults.sac.hiddenSizes);
    // "eager" is quick with learning from the 200th real step and G = 20, nothing else.
    const eager = resolveHyperparameters({}, "eager");
    const quickAsIs = resolveHyperparameters({}, "quick");
    assert.equal(eager.mbpo.initialExplorationSteps, 200);
    assert.equal(eager.mbpo.sacUpdatesPerRealStep, 20);
    assert.deepEqual(
      { ...eager, mbpo: { ...eager.mbpo, initialExplorationSteps: 500, sacUpdatesPerRealStep: 10 } },
      quickAsIs,
    );
    // The defaults object itself is never changed.
    assert.equal(HYPERPARAMETER_DEFAULTS.mbpo.sacUpdatesPerRealStep, 20);
    assert.equal(resolveHyperparameters({ sac: { targetEntropy: -2 } }).sac.targetEntropy, -2);
    // "paper" names the defaults; a new run without a profile gets DEFAULT_PROFILE (quick), while
    // a stored spec without one (a run from before the default) still resolves to the defaults.
    assert.deepEqual(resolveHyperparameters({}, "paper"), defaults);
    assert.equal(DEFAULT_PROFILE, "quick");
    assert.deepEqual(hyperparameterSettings(undefined, {}), { profile: "quick" });
    assert.deepEqual(hyperparameterSettings("paper", { "sac.batchSize": "64" }), {
      profile: "paper",
      hyperparameters: { sac: { batchSize: 64 } },
    });
  });

  it("names what is wrong in an override", async () => {
    assert.throws(() => resolveHyperparameters({ model: {} }), /unknown section "model"/);
    assert.throws(() => resolveHyperparameters({ mbpo: { rollouts: 3 } }), /unknown key "mbpo.rollouts"/);
    assert.throws(
      () => resolveHyperparameters({ mbpo: { sacUpdatesPerRealStep: "20" } }),
      /"mbpo.sacUpdatesPerRealStep" must be like 20, got "20"/,
    );
    assert.throws(
      () => resolveHyperparameters({ mbpo: { observationSpreadFloor: "yes" } }),
      /"mbpo.observationSpreadFloor" must be like true, got "yes"/,
    );
    assert.throws(() => resolveHyperparameters({}, "fast"), /unknown profile "fast"/);
  });

  it("refuses impossible MBPO settings when the learner is built", async () => {
    const bad = (mbpo: Record<string, unknown>) =>
      createLearner({ ...spec("mbpo"), hyperparameters: { ...TINY, mbpo } });
    await assert.rejects(bad({ rolloutSchedule: [10, 5, 1, 2] }), /rolloutSchedule must be/);
    await assert.rejects(bad({ rolloutSchedule: [0, 5, 0, 2] }), /rolloutSchedule must be/);
    await assert.rejects(
      bad({ sacUpdatesPerRealStep: 0 }),
      /sacUpdatesPerRealStep must be a positive integer/,
    );
    await assert.rejects(bad({ disagreementThreshold: -1 }), /disagreementThreshold must be positive/);
    await assert.rejects(
      createLearner({ ...spec("mbpo"), algo: "ppo" as Algorithm }),
      /algo must be "mbpo" or "sac"/,
    );
  });
});

describe("MBPO learner", () => {
  it("explores first, then trains the model on schedule, rolls out, and updates SAC G times per step", async () => {
    const learner = await createLearner(spec("mbpo"));
    assert.equal(learner.backend, "wasm");
    const reports = await feed(learner, 0, 6);
    // Two exploration episodes (40 steps): nothing learned.
    for (const r of reports.slice(0, 2)) {
      assert.equal(r.sacUpdates, 0);
      assert.equal(r.modelTrained, false);
      assert.equal(r.rolloutBranches, 0);
    }
    // Then: the model every 20 steps (every episode here); rollouts and G = 2 updates per new
    // step in every phase.
    assert.deepEqual(
      reports.map((r) => r.modelTrained),
      [false, false, true, true, true, true],
    );
    for (const r of reports.slice(2)) {
      assert.equal(r.sacUpdates, 2 * EPISODE_STEPS);
      assert.equal(r.rolloutBranches, 4 * EPISODE_STEPS);
      const f = r.rolloutsFiltered;
      assert.ok(f.terminated + f.jointLimits + f.uncertainty <= (r.rolloutBranches as number));
      assert.ok(r.rolloutsKept > 0 && r.rolloutsKept <= (r.rolloutBranches as number) * r.rolloutLength);
      assert.ok(Number.isFinite(r.qLoss) && Number.isFinite(r.policyLoss) && r.alpha > 0);
    }
    assert.ok(Number.isFinite(reports[2].modelHoldoutNll) && reports[2].modelHoldoutMse > 0);
    assert.deepEqual(
      reports.map((r) => r.rolloutLength),
      [1, 1, 2, 2, 3, 3],
    );
    // The model buffer holds every kept transition (it never filled up here) across the resizes.
    const kept = reports.reduce((sum, r) => sum + r.rolloutsKept, 0);
    assert.equal(reports.at(-1)?.modelBufferSize, kept);
    assert.equal(reports.at(-1)?.realSteps, 6 * EPISODE_STEPS);
    learner.dispose();
  });

  it("takes a bootstrap into its real buffer, pre-trains the model on it, and owes no updates for it", async () => {
    const learner = await createLearner(spec("mbpo"));
    // Two recorded episodes (40 rows).
    assert.deepEqual(learner.addBootstrap([...data[0], ...data[1]]), { added: 40, rejected: 0 });
    const pretrained = await learner.pretrain();
    assert.equal(pretrained.modelTrained, true);
    assert.ok(Number.isFinite(pretrained.modelHoldoutNll) && pretrained.modelHoldoutMse > 0);
    // The robot's own 40 exploration steps still come first; then G per robot step, none for
    // the 40 bootstrap rows, and the schedule's step counts are the robot's.
    const reports = await feed(learner, 2, 5);
    assert.deepEqual(
      reports.map((r) => [r.realSteps, r.sacUpdates, r.rolloutBranches]),
      [
        [EPISODE_STEPS, 0, 0],
        [2 * EPISODE_STEPS, 0, 0],
        [3 * EPISODE_STEPS, 2 * EPISODE_STEPS, 4 * EPISODE_STEPS],
      ],
    );
    assert.throws(() => learner.addBootstrap(data[5]), /bootstrap must come before the first real step/);
    // A checkpoint keeps the count: the resumed learner schedules as the uninterrupted one.
    const dir = temporaryDirectory();
    await learner.save(dir);
    const resumed = await loadLearner(dir);
    assert.deepEqual(await feed(resumed, 5, 6), await feed(learner, 5, 6));
    learner.dispose();
    resumed.dispose();
  });

  it("takes a bootstrap without a model under SAC", async () => {
    const sac = await createLearner(spec("sac"));
    assert.deepEqual(sac.addBootstrap(data[0]), { added: EPISODE_STEPS, rejected: 0 });
    assert.equal((await sac.pretrain()).modelTrained, false);
    sac.dispose();
  });

  it("gives the same numbers for the same seed, and different ones for another", async () => {
    const a = await createLearner(spec("mbpo", 11));
    const b = await createLearner(spec("mbpo", 11));
    const c = await createLearner(spec("mbpo", 12));
    const [ra, rb] = [await feed(a, 0, 4), await feed(b, 0, 4)];
    await feed(c, 0, 4);
    assert.deepEqual(rb, ra);
    assert.deepEqual(await actorValues(b), await actorValues(a));
    assert.notDeepEqual(await actorValues(c), await actorValues(a));
    for (const learner of [a, b, c]) learner.dispose();
  });

  it("saves and loads so that the run continues exactly as an uninterrupted one", async () => {
    const dir = temporaryDirectory();
    const uninterrupted = await createLearner(spec("mbpo", 5));
    await feed(uninterrupted, 0, 4);
    await uninterrupted.save(dir);
    const expected = await feed(uninterrupted, 4, 8);

    const resumed = await loadLearner(dir);
    assert.deepEqual(resumed.spec.hyperparameters, TINY);
    const got = await feed(resumed, 4, 8);
    assert.deepEqual(got, expected);
    assert.deepEqual(await actorValues(resumed), await actorValues(uninterrupted));
    // Everything else too: networks, Adam, α, normalisers, buffers, schedule, random streams.
    const [dirA, dirB] = [temporaryDirectory(), temporaryDirectory()];
    await uninterrupted.save(dirA);
    await resumed.save(dirB);
    const files = readdirSync(dirA).sort();
    assert.deepEqual(readdirSync(dirB).sort(), files);
    assert.ok(
      files.includes("learner.json") &&
        files.includes("model-buffer.obs.bin") &&
        files.includes("real-buffer.q.bin"),
    );
    for (const file of files)
      assert.ok(readFileSync(join(dirA, file)).equals(readFileSync(join(dirB, file))), file);
    uninterrupted.dispose();
    resumed.dispose();
  });

  it("a phase a stop cuts short is saved where it stood and finished exactly by the next update", async () => {
    const uninterrupted = await createLearner(spec("mbpo", 8));
    await feed(uninterrupted, 0, 4);
    const expected = await feed(uninterrupted, 4, 6);
    const expectedActor = await actorValues(uninterrupted);
    uninterrupted.dispose();
    // Stopped at the c-th question: in the model's training, in the rollouts, in the SAC updates.
    for (const c of [1, 5, 31, 40]) {
      const learner = await createLearner(spec("mbpo", 8));
      await feed(learner, 0, 4);
      for (const t of data[4]) learner.addReal(t);
      let asked = 0;
      const cut = await learner.update(() => ++asked >= c);
      assert.equal(cut.interrupted, true, `c = ${c}`);
      assert.ok(cut.sacUpdates < expected[0].sacUpdates, `c = ${c}`);
      const dir = temporaryDirectory();
      await learner.save(dir);
      learner.dispose();
      const resumed = await loadLearner(dir);
      const { seconds, ...finished } = await resumed.update();
      const rest = await feed(resumed, 5, 6);
      // Wherever it was cut (a cut model training is rolled back and trained again from the same
      // state and random stream): the same numbers as the uninterrupted run.
      assert.deepEqual([finished, ...rest], expected, `c = ${c}`);
      assert.deepEqual(await actorValues(resumed), expectedActor, `c = ${c}`);
      if (c === 1)
        assert.ok(expected[0].modelTrained && !cut.modelTrained, "c = 1 cuts the model's training");
      resumed.dispose();
    }
  });

  it("refuses a checkpoint holding a non-finite value, naming the file and the array", async () => {
    const learner = await createLearner(spec("mbpo", 6));
    await feed(learner, 0, 4);
    const dir = temporaryDirectory();
    await learner.save(dir);
    learner.dispose();
    const json = readFileSync(join(dir, "learner.json"), "utf8");
    const checkpoint = JSON.parse(json);
    const poison = (base64: string, value: number, at: number) => {
      const values = new Float32Array(new Uint8Array(Buffer.from(base64, "base64")).buffer);
      values[at] = value;
      return Buffer.from(values.buffer).toString("base64");
    };
    const edits: [(c: typeof checkpoint) => void, RegExp][] = [
      [
        (c) => (c.sac.networks.actor[1].weight = poison(c.sac.networks.actor[1].weight, Number.NaN, 3)),
        /learner\.json: SAC checkpoint: networks\.actor\[1\]\.weight: element 3 of \d+ is NaN/,
      ],
      [
        (c) => (c.ensemble.biases[0] = poison(c.ensemble.biases[0], Number.POSITIVE_INFINITY, 0)),
        /learner\.json: ensemble checkpoint: biases\[0\]: element 0 of \d+ is Infinity/,
      ],
      [
        (c) => (c.sac.logAlpha = null),
        /learner\.json: SAC checkpoint: field logAlpha must be a finite number/,
      ],
    ];
    for (const [edit, pattern] of edits) {
      const edited = JSON.parse(json);
      edit(edited);
      writeFileSync(join(dir, "learner.json"), JSON.stringify(edited));
      await assert.rejects(loadLearner(dir), pattern);
    }
    writeFileSync(join(dir, "learner.json"), json);
    const q = join(dir, "real-buffer.q.bin");
    const values = new Float64Array(new Uint8Array(readFileSync(q)).buffer);
    values[values.length - 1] = Number.NEGATIVE_INFINITY;
    writeFileSync(q, Buffer.from(values.buffer));
    await assert.rejects(loadLearner(dir), (error: Error) => {
      assert.match(error.message, /real-buffer\.q\.bin: element \d+ of \d+ is -Infinity/);
      assert.ok(error.message.startsWith(q), error.message);
      return true;
    });
  });

  it("hands the control loop an actor for raw observations, standardisation folded in", async () => {
    const learner = await createLearner(spec("mbpo", 4));
    await feed(learner, 0, 3);
    const dir = temporaryDirectory();
    await learner.save(dir);
    const checkpoint = JSON.parse(readFileSync(join(dir, "learner.json"), "utf8"));
    // Fitted on the real data held at the first update after exploration (3 episodes), then frozen.
    const normalizer = Normalizer.fromJSON(checkpoint.observationNormalizer);
    const seen = data.slice(0, 3).flat();
    const O = seen[0].obs.length;
    for (let j = 0; j < O; j++) {
      const mean = seen.reduce((sum, t) => sum + t.obs[j], 0) / seen.length;
      assert.ok(Math.abs(normalizer.mean[j] - mean) < 1e-6, `feature ${j}`);
    }
    await feed(learner, 3, 4);
    await learner.save(dir);
    const after = JSON.parse(readFileSync(join(dir, "learner.json"), "utf8"));
    assert.deepEqual(after.observationNormalizer, checkpoint.observationNormalizer);

    const sac = await Sac.fromJSON(after.sac, new Rng(0));
    const weights = await learner.actorWeights();
    const policy = new MlpPolicy({
      sizes: weights.sizes,
      activation: weights.activation,
      weights: weights.layers.map((l) => l.weight),
      biases: weights.layers.map((l) => l.bias),
      actionSize: weights.actionSize,
      logStdMin: weights.logStdMin,
      logStdMax: weights.logStdMax,
    });
    for (const t of data[5].slice(0, 10)) {
      const raw = Float32Array.from(t.obs);
      const standardised = new Float32Array(O);
      normalizer.normalize(raw, standardised, 1);
      const expected = new Float32Array(4);
      await sac.act(standardised, 1, expected, "mean");
      const got = new Float32Array(4);
      policy.act(raw, undefined as unknown as PolicyContext, got);
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-4, `${got} vs ${expected}`);
    }
    sac.dispose();
    learner.dispose();
  });

  it("says what is wrong with a directory that holds no checkpoint", async () => {
    const dir = temporaryDirectory();
    await assert.rejects(loadLearner(dir), /learner\.json: cannot read the learner checkpoint/);
  });

  it("refuses a real transition with a non-finite value, counts it, and carries on", async () => {
    const learner = await createLearner(spec("sac"));
    const good = data[0][0];
    learner.addReal({ ...good, nextQd: Float64Array.from([0, Number.NaN, 0, 0]) });
    learner.addReal({ ...good, reward: Number.POSITIVE_INFINITY });
    learner.addReal(good);
    const report = await learner.update();
    assert.equal(report.realSteps, 1);
    assert.equal(report.realRejected, 2);
    learner.dispose();
  });
});

describe("SAC baseline", () => {
  it("runs the same SAC with the same G on real data only, and resumes exactly", async () => {
    const learner = await createLearner(spec("sac", 9));
    const reports = await feed(learner, 0, 3);
    assert.deepEqual(
      reports.map((r) => r.sacUpdates),
      [0, 0, 2 * EPISODE_STEPS],
    );
    for (const r of reports) {
      assert.equal(r.modelTrained, false);
      assert.equal(r.rolloutBranches, 0);
      assert.equal(r.rolloutsKept, 0);
      assert.equal(r.modelBufferSize, 0);
    }
    assert.ok(Number.isFinite(reports[2].qLoss));
    const dir = temporaryDirectory();
    await learner.save(dir);
    assert.ok(!readdirSync(dir).some((f) => f.startsWith("model-buffer")));
    const expected = await feed(learner, 3, 5);
    const resumed = await loadLearner(dir);
    assert.deepEqual(await feed(resumed, 3, 5), expected);
    assert.deepEqual(await actorValues(resumed), await actorValues(learner));
    learner.dispose();
    resumed.dispose();
  });
});

describe("MBPO with the URDF prior (mbpo.modelPrior urdf)", () => {
  const withPrior = (seed: number): LearnerSpec => ({
    ...spec("mbpo", seed),
    hyperparameters: { ...TINY, mbpo: { ...TINY.mbpo, modelPrior: "urdf" } },
  });

  it("on the exact twin the residuals it learns are zero to float32 rounding", () => {
    const real = new RealReplayBuffer(1000, stack.task.observationSize, 4, 4, stack.task.goalSize);
    for (const episode of data) for (const t of episode) real.add(t);
    const { targets } = realModelData(real);
    const residuals = Float32Array.from(targets);
    subtractPrior(new RigidBodyPrior(stack.model, config.control_rate_hz, 1000), real, residuals);
    // Per output: the largest residual against the largest Δ (Δq and Δq̇ differ in scale).
    for (let j = 0; j < 8; j++) {
      let delta = 0;
      let residual = 0;
      for (let r = 0; r < real.size; r++) {
        delta = Math.max(delta, Math.abs(targets[r * 8 + j]));
        residual = Math.max(residual, Math.abs(residuals[r * 8 + j]));
      }
      assert.ok(
        delta > 0 && residual <= 1e-6 * delta,
        `output ${j}: residual ${residual} against Δ ${delta}`,
      );
    }
  });

  it("trains, rolls out and updates on the residual model, and resumes exactly", async () => {
    const dir = temporaryDirectory();
    const uninterrupted = await createLearner(withPrior(5));
    const before = await feed(uninterrupted, 0, 4);
    assert.deepEqual(
      before.map((r) => r.modelTrained),
      [false, false, true, true],
    );
    for (const r of before.slice(2)) assert.ok(r.rolloutsKept > 0 && r.sacUpdates > 0);
    await uninterrupted.save(dir);
    const saved = JSON.parse(readFileSync(join(dir, "learner.json"), "utf8"));
    assert.equal(saved.hyperparameters.mbpo.modelPrior, "urdf");
    assert.equal(saved.modelDeltaStd.length, 8);
    const expected = await feed(uninterrupted, 4, 8);
    const resumed = await loadLearner(dir);
    assert.deepEqual(await feed(resumed, 4, 8), expected);
    assert.deepEqual(await actorValues(resumed), await actorValues(uninterrupted));
    // Without the prior the same seed learns other numbers: the prior is in the loop.
    const plain = await createLearner(spec("mbpo", 5));
    await feed(plain, 0, 4);
    assert.notDeepEqual(await actorValues(plain), await actorValues(uninterrupted));
    for (const learner of [uninterrupted, resumed, plain]) learner.dispose();
  });

  it("refuses an unknown prior, and a checkpoint whose prior scale is broken", async () => {
    await assert.rejects(
      createLearner({ ...spec("mbpo"), hyperparameters: { ...TINY, mbpo: { modelPrior: "mujoco" } } }),
      /mbpo.modelPrior must be one of none, urdf, got "mujoco"/,
    );
    const learner = await createLearner(withPrior(6));
    await feed(learner, 0, 3);
    const dir = temporaryDirectory();
    await learner.save(dir);
    learner.dispose();
    const path = join(dir, "learner.json");
    const saved = JSON.parse(readFileSync(path, "utf8"));
    saved.modelDeltaStd[3] = -1;
    writeFileSync(path, JSON.stringify(saved));
    await assert.rejects(loadLearner(dir), /learner\.json: modelDeltaStd must be 8 positive numbers/);
  });
});

describe("MBPO with the previous effort as a model input (mbpo.modelPreviousEffort)", () => {
  it("gives the model (q, q̇, τ, τ_prev): the tick before's effort, τ itself at an episode's first step", () => {
    const real = new RealReplayBuffer(1000, stack.task.observationSize, 4, 4, stack.task.goalSize);
    for (const episode of data.slice(0, 2)) for (const t of episode) real.add(t);
    const { inputs } = realModelData(real, true);
    const width = 16;
    for (let row = 0; row < real.size; row++) {
      const first = row % EPISODE_STEPS === 0;
      const source = first ? row : row - 1;
      for (let j = 0; j < 4; j++) {
        assert.equal(inputs[row * width + 8 + j], Math.fround(real.effort[row * 4 + j]));
        assert.equal(inputs[row * width + 12 + j], Math.fround(real.effort[source * 4 + j]), `row ${row}`);
      }
    }
  });

  it("trains, rolls out and resumes exactly with the wider input, with and without the URDF prior", async () => {
    for (const modelPrior of ["none", "urdf"]) {
      const withPrevious: LearnerSpec = {
        ...spec("mbpo", 4),
        hyperparameters: { ...TINY, mbpo: { ...TINY.mbpo, modelPreviousEffort: true, modelPrior } },
      };
      const dir = temporaryDirectory();
      const uninterrupted = await createLearner(withPrevious);
      const before = await feed(uninterrupted, 0, 4);
      for (const r of before.slice(2)) assert.ok(r.modelTrained && r.rolloutsKept > 0, modelPrior);
      await uninterrupted.save(dir);
      const expected = await feed(uninterrupted, 4, 6);
      const resumed = await loadLearner(dir);
      assert.deepEqual(await feed(resumed, 4, 6), expected);
      assert.deepEqual(await actorValues(resumed), await actorValues(uninterrupted));
      uninterrupted.dispose();
      resumed.dispose();
    }
  });
});
