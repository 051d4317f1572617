/**
 * The learner on the webgpu backend (Dawn through the `webgpu` package), against the cpu backend.
 *
 * Here, and in CI, the adapter is Mesa's software Vulkan driver (lavapipe, Debian's
 * `mesa-vulkan-drivers` from bookworm-backports; bookworm's own 22.3 gives Dawn no adapter), which
 * runs the same WGSL shaders a robot's GPU runs. Without an adapter the tests are skipped with a
 * message naming the package; under CI a missing adapter fails them (test/support/system.ts).
 *
 * Agreement: the same seed on both backends gives the same initial weights (drawn by our Rng), so
 * forward passes, an epoch of ensemble training and SAC updates must agree to float32 rounding:
 * the two backends sum products in different orders and WGSL's exp and log are not bit-equal to
 * JavaScript's. Tolerances are relative, stated per check.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { defaultConfig } from "../../src/config/config.js";
import type { Policy, PolicyContext } from "../../src/control/policy.js";
import { createControlStack } from "../../src/control/stack.js";
import { selectBackend, tf } from "../../src/mbpo/backend.js";
import { ProbabilisticEnsemble } from "../../src/mbpo/ensemble.js";
import { controlSpecFromConfig, type Learner } from "../../src/mbpo/learner.js";
import { createLearner, loadLearner } from "../../src/mbpo/mbpo.js";
import { ReplayBuffer } from "../../src/mbpo/replay-buffer.js";
import { Sac } from "../../src/mbpo/sac.js";
import { Rng } from "../../src/util/rng.js";
import { randomBatch } from "../support/batches.js";
import { unavailable } from "../support/system.js";

/** Why webgpu cannot run here (undefined where it can); leaves the cpu backend selected. */
async function webgpuProblem(): Promise<string | undefined> {
  try {
    await selectBackend("webgpu");
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await selectBackend("cpu");
  }
}

const problem = unavailable(
  "a WebGPU adapter",
  "apt-get install -t bookworm-backports mesa-vulkan-drivers",
  await webgpuProblem(),
);

/** max |a − b| / max(1, |b|) over the arrays: relative where values are large, absolute near 0. */
function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const error = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    worst = Number.isNaN(error) ? Number.POSITIVE_INFINITY : Math.max(worst, error);
  }
  return worst;
}

/** Asserts agreement within `tolerance`; returns the error, for the test's diagnostic. */
function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tolerance: number, what: string): number {
  const error = maxRelativeError(a, b);
  assert.ok(error <= tolerance, `${what}: max relative error ${error.toExponential(2)} > ${tolerance}`);
  return error;
}

/** "what 1.2e-7, …" for t.diagnostic. */
const errors = (measured: Record<string, number>) =>
  `max relative errors: ${Object.entries(measured)
    .map(([what, e]) => `${what} ${e.toExponential(1)}`)
    .join(", ")}`;

/** Runs `body` on cpu, then on webgpu, and returns both results. */
async function onBoth<T>(body: () => Promise<T>): Promise<{ cpu: T; webgpu: T }> {
  await selectBackend("cpu");
  const cpu = await body();
  await selectBackend("webgpu");
  try {
    return { cpu, webgpu: await body() };
  } finally {
    await selectBackend("cpu");
  }
}

/** Uniform actions in ±0.5, keeping the joint state each tick acted on (a real transition's q, q̇). */
class RandomPolicy implements Policy {
  readonly name = "random";
  readonly q: Float64Array;
  readonly qd: Float64Array;
  constructor(
    dof: number,
    private readonly rng: Rng,
  ) {
    this.q = new Float64Array(dof);
    this.qd = new Float64Array(dof);
  }
  reset(): void {}
  act(_obs: Float32Array, ctx: PolicyContext, out: Float32Array): void {
    this.q.set(ctx.state.position);
    this.qd.set(ctx.state.velocity);
    for (let i = 0; i < out.length; i++) out[i] = this.rng.range(-0.5, 0.5);
  }
}

const ENSEMBLE = {
  members: 4,
  elites: 3,
  hiddenSizes: [32, 32],
  weightDecays: [2.5e-5, 5e-5, 1e-4],
  batchSize: 32,
};
const SAC = { hiddenSizes: [32, 32], batchSize: 32 };

describe("webgpu backend", { skip: problem }, () => {
  it("is chosen by itself only on a hardware adapter, and says which adapter runs", async () => {
    const forced = await selectBackend("webgpu");
    assert.equal(forced.name, "webgpu");
    assert.equal(forced.tfBackend, "webgpu");
    const adapter = forced.adapter;
    assert.ok(adapter !== undefined, "a webgpu selection names its adapter");
    assert.ok(adapter.vendor !== "" || adapter.description !== "", JSON.stringify(adapter));
    const automatic = await selectBackend();
    const webgpu = automatic.tried.find((t) => t.name === "webgpu");
    if (adapter.software) {
      assert.notEqual(automatic.name, "webgpu");
      assert.match(webgpu?.error ?? "", /only a software adapter \(.+\), used only when forced/);
    } else {
      assert.equal(automatic.name, "webgpu");
    }
    await selectBackend("cpu");
  });

  it("the ensemble's forward pass and sample agree with cpu (relative 1e-4)", async (t) => {
    const rows = 60;
    const x = Float32Array.from({ length: rows * 6 }, (_, i) => Math.sin(0.37 * i));
    const members = Int32Array.from({ length: rows }, (_, r) => r % 4);
    const { cpu, webgpu } = await onBoth(async () => {
      const model = new ProbabilisticEnsemble(6, 4, new Rng(1), ENSEMBLE);
      const prediction = { mean: new Float32Array(4 * rows * 4), logvar: new Float32Array(4 * rows * 4) };
      await model.predict(x, rows, prediction);
      const sample = { delta: new Float32Array(rows * 4), disagreement: new Float32Array(rows) };
      await model.sample(x, rows, members, new Rng(2), sample);
      model.dispose();
      return { prediction, sample };
    });
    assert.ok(cpu.prediction.mean.some((m) => m !== 0));
    const measured = {
      mean: assertClose(webgpu.prediction.mean, cpu.prediction.mean, 1e-4, "mean"),
      logvar: assertClose(webgpu.prediction.logvar, cpu.prediction.logvar, 1e-4, "log-variance"),
      delta: assertClose(webgpu.sample.delta, cpu.sample.delta, 1e-4, "sampled Δ"),
      disagreement: assertClose(webgpu.sample.disagreement, cpu.sample.disagreement, 1e-4, "disagreement"),
    };
    t.diagnostic(errors(measured));
  });

  it("three epochs of ensemble training give the same weights and holdout scores (relative 1e-3)", async (t) => {
    const rng = new Rng(3);
    const rows = 400;
    const x = Float32Array.from({ length: rows * 6 }, () => rng.normal());
    // Output j of row r: tanh(x_j + x_{j+1}/2) of the same row, something to learn.
    const y = Float32Array.from({ length: rows * 4 }, (_, i) => {
      const [r, j] = [Math.floor(i / 4), i % 4];
      return Math.tanh(x[r * 6 + j] + 0.5 * x[r * 6 + j + 1]);
    });
    const { cpu, webgpu } = await onBoth(async () => {
      const model = new ProbabilisticEnsemble(6, 4, new Rng(4), ENSEMBLE);
      const before = await model.getParameters();
      const report = await model.train(x, y, new Rng(5), { maxEpochs: 3 });
      const parameters = await model.getParameters();
      model.dispose();
      return { before, report, parameters };
    });
    assert.equal(webgpu.report.epochs, 3);
    // Each member keeps its best epoch's weights: training must have improved some (and moved them).
    assert.deepEqual(webgpu.report.bestEpoch, cpu.report.bestEpoch);
    assert.ok(
      cpu.report.bestEpoch.some((epoch) => epoch > 0),
      `best epochs ${cpu.report.bestEpoch}`,
    );
    assert.ok(maxRelativeError(cpu.parameters.weights[0], cpu.before.weights[0]) > 1e-3, "training moved");
    let weights = 0;
    cpu.parameters.weights.forEach((w, k) => {
      weights = Math.max(weights, assertClose(webgpu.parameters.weights[k], w, 1e-3, `weights[${k}]`));
      const biases = webgpu.parameters.biases[k];
      weights = Math.max(weights, assertClose(biases, cpu.parameters.biases[k], 1e-3, `biases[${k}]`));
    });
    const mse = assertClose(webgpu.report.holdoutMse, cpu.report.holdoutMse, 1e-3, "holdout MSE");
    t.diagnostic(errors({ weights, "holdout MSE": mse }));
    assert.deepEqual(webgpu.report.elites, cpu.report.elites);
  });

  it("SAC updates give the same losses and weights (relative 1e-3), and act() agrees", async (t) => {
    const batch = randomBatch(5, 2, 32, new Rng(6));
    const obs = Float32Array.from({ length: 10 * 5 }, (_, i) => Math.cos(0.3 * i));
    const { cpu, webgpu } = await onBoth(async () => {
      const sac = new Sac(5, 2, new Rng(7), SAC);
      const losses = [];
      for (let i = 0; i < 3; i++) losses.push(await sac.update(batch));
      const actions = new Float32Array(10 * 2);
      await sac.act(obs, 10, actions, "sample", new Rng(8));
      const weights = await Promise.all(
        (["actor", "q1", "q2", "q1Target"] as const).map((name) => sac.getWeights(name)),
      );
      const alpha = sac.alpha;
      sac.dispose();
      return { losses, actions, weights, alpha };
    });
    let losses = 0;
    for (const [i, l] of cpu.losses.entries()) {
      const keys = Object.keys(l) as (keyof typeof l)[];
      const error = assertClose(
        keys.map((k) => webgpu.losses[i][k]),
        keys.map((k) => l[k]),
        1e-3,
        `losses of update ${i + 1}`,
      );
      losses = Math.max(losses, error);
    }
    const actions = assertClose(webgpu.actions, cpu.actions, 1e-3, "sampled actions");
    let weights = 0;
    cpu.weights.forEach((network, n) => {
      network.forEach((layer, k) => {
        const error = assertClose(webgpu.weights[n][k].weight, layer.weight, 1e-3, `network ${n} layer ${k}`);
        weights = Math.max(weights, error);
      });
    });
    t.diagnostic(errors({ losses, actions, weights }));
    assert.ok(Math.abs(webgpu.alpha - cpu.alpha) < 1e-5, `α ${webgpu.alpha} vs ${cpu.alpha}`);
  });

  it("SAC learns a continuous bandit on webgpu (best action a = s/2)", { timeout: 120_000 }, async () => {
    await selectBackend("webgpu");
    try {
      const rng = new Rng(10);
      const buffer = new ReplayBuffer(1000, 1, 1);
      for (let i = 0; i < 1000; i++) {
        const s = rng.range(-1, 1);
        const a = rng.range(-1, 1);
        buffer.add({
          obs: [s],
          action: [a],
          reward: -((a - s / 2) ** 2) * 4,
          nextObs: [s],
          terminated: true,
        });
      }
      const rates = { criticLearningRate: 3e-3, actorLearningRate: 3e-3, alphaLearningRate: 3e-3 };
      const sac = new Sac(1, 1, new Rng(11), { hiddenSizes: [32, 32], batchSize: 64, ...rates });
      const states = Float32Array.from({ length: 21 }, (_, i) => -1 + i / 10);
      const meanError = async () => {
        const actions = new Float32Array(21);
        await sac.act(states, 21, actions, "mean");
        return states.reduce((sum, s, i) => sum + Math.abs(actions[i] - s / 2), 0) / 21;
      };
      const initial = await meanError();
      await sac.updateMany(300, (out) => buffer.sampleBatch(64, rng, out));
      const learned = await meanError();
      assert.ok(learned < 0.1 && learned < initial / 2, `mean |a − s/2| ${learned} (was ${initial})`);
      sac.dispose();
    } finally {
      await selectBackend("cpu");
    }
  });

  describe("MBPO on webgpu", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "mbpo-webgpu-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("runs the whole learner (model, rollouts, SAC) on the arm's twin, saves and loads", {
      timeout: 240_000,
    }, async (t) => {
      const started = performance.now();
      const config = defaultConfig();
      const stack = createControlStack(config);
      const { task, runner } = stack;
      const learner: Learner = await createLearner({
        algo: "mbpo",
        urdf: stack.urdfPath,
        task: { name: task.name, params: task.params() },
        seed: 1,
        backend: "webgpu",
        profile: "quick",
        hyperparameters: {
          sac: { hiddenSizes: [32, 32], batchSize: 64 },
          ensemble: { members: 3, elites: 2, hiddenSizes: [32, 32], weightDecays: [2.5e-5, 5e-5, 1e-4] },
          mbpo: {
            initialExplorationSteps: 200,
            modelRetrainEvery: 100,
            rolloutsPerRealStep: 10,
            sacUpdatesPerRealStep: 2,
            rolloutSchedule: [0, 1, 1, 1],
          },
        },
        control: controlSpecFromConfig(config, stack.model),
      });
      assert.equal(learner.backend, "webgpu");
      const rng = new Rng(1, 1);
      const nextQ = new Float64Array(task.dof);
      const nextQd = new Float64Array(task.dof);
      let realSteps = 0;
      const reports = [];
      for (let index = 0; realSteps < 400; index++) {
        const episode = task.sampleEpisode(rng);
        const policy = new RandomPolicy(task.dof, rng);
        await runner.runEpisode(index, episode, policy, {
          onTransition: (transition) => {
            const next = stack.driver.readState();
            assert.ok(next !== undefined);
            nextQ.set(next.position);
            nextQd.set(next.velocity);
            learner.addReal({ ...transition, q: policy.q, qd: policy.qd, nextQ, nextQd, goal: episode.goal });
            realSteps++;
          },
        });
        reports.push(await learner.update());
      }
      const last = reports.at(-1)!;
      assert.ok(
        reports.some((r) => r.modelTrained),
        "the model trained",
      );
      assert.ok(reports.some((r) => Number.isFinite(r.modelHoldoutMse)));
      assert.ok(last.rolloutsKept > 0, "rollouts kept transitions");
      assert.ok(last.sacUpdates > 0 && Number.isFinite(last.qLoss) && Number.isFinite(last.policyLoss));
      await learner.save(dir);
      const actor = await learner.actorWeights();
      learner.dispose();
      const loaded = await loadLearner(dir);
      assert.deepEqual(await loaded.actorWeights(), actor, "the checkpoint gives back the actor exactly");
      const resumed = await loaded.update();
      assert.equal(resumed.interrupted, false);
      loaded.dispose();
      t.diagnostic(
        `${realSteps} real steps on webgpu in ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
      await selectBackend("cpu");
      assert.equal(tf.getBackend(), "cpu");
    });
  });
});
