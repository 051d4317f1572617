/**
 * The learner's worker thread: the protocol both ways (with the test double of fake-learner.ts),
 * packed transitions, and every way the worker can fail turning into one failure report.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { LearnerSpec } from "../../src/mbpo/learner.js";
import {
  forEachTransition,
  type PackedTransitions,
  RealTransitionPacker,
} from "../../src/mbpo/transition-batch.js";
import { LearnerWorker } from "../../src/mbpo/worker.js";
import { resolveDataPath } from "../../src/util/paths.js";

const FAKE = new URL("./fake-learner.js", import.meta.url).href;
const SIZES = { obsSize: 20, actSize: 4, dof: 4, goalSize: 3 };

function spec(test: Record<string, unknown> = {}): LearnerSpec {
  return {
    algo: "mbpo",
    urdf: resolveDataPath("urdf/arm.urdf"),
    task: { name: "reach", params: {} },
    seed: 1,
    backend: "cpu",
    hyperparameters: { test },
  };
}

/** n transitions with distinct, recognisable values. */
function batch(n: number, packer = new RealTransitionPacker(SIZES, n)): PackedTransitions {
  const row = (width: number, i: number, k: number) =>
    Array.from({ length: width }, (_, j) => i + 0.01 * j + k);
  for (let i = 0; i < n; i++) {
    packer.push({
      obs: row(20, i, 0.1),
      action: row(4, i, 0.2).map((v) => Math.tanh(v)),
      reward: -i,
      nextObs: row(20, i, 0.3),
      terminated: i === n - 1,
      q: row(4, i, 0.4),
      qd: row(4, i, 0.5),
      effort: row(4, i, 0.6),
      nextQ: row(4, i, 0.7),
      nextQd: row(4, i, 0.8),
      goal: row(3, i, 0.9),
    });
  }
  return packer.take();
}

function failures(): { errors: Error[]; onFailure: (e: Error) => void } {
  const errors: Error[] = [];
  return { errors, onFailure: (e) => errors.push(e) };
}

describe("packed transitions", () => {
  it("round-trip every field, row by row", () => {
    const p = batch(3);
    const seen: number[][] = [];
    forEachTransition(p, (t) => seen.push([t.reward, t.q[1], t.goal[2], t.terminated ? 1 : 0, t.obs[16]]));
    assert.equal(seen.length, 3);
    // Same arithmetic as batch() builds them with: q[1] = i + 0.01 + 0.4, goal[2] = i + 0.02 + 0.9.
    assert.deepEqual(
      seen.map((r) => r.slice(0, 4)),
      [0, 1, 2].map((i) => [-i, i + 0.01 * 1 + 0.4, i + 0.01 * 2 + 0.9, i === 2 ? 1 : 0]),
    );
    assert.ok(Math.abs(seen[2][4] - (2 + 0.16 + 0.1)) < 1e-6);
  });

  it("refuse wrong lengths, a full packer and non-finite values with a message naming the field", () => {
    const packer = new RealTransitionPacker(SIZES, 1);
    const good = {
      obs: new Float32Array(20),
      action: new Float32Array(4),
      reward: 0,
      nextObs: new Float32Array(20),
      terminated: false,
      q: new Float64Array(4),
      qd: new Float64Array(4),
      effort: new Float64Array(4),
      nextQ: new Float64Array(4),
      nextQd: new Float64Array(4),
      goal: new Float64Array(3),
    };
    assert.throws(() => packer.push({ ...good, q: new Float64Array(3) }), /q has 3 values, expected 4/);
    packer.push(good);
    assert.throws(() => packer.push(good), /full/);
    const p = packer.take();
    p.effort[2] = Number.NaN;
    assert.throws(() => forEachTransition(p, () => {}), /effort\[2\] is NaN/);
    const q = batch(2);
    assert.throws(() => forEachTransition({ ...q, count: 3 }, () => {}), /obs has 40 values, expected 60/);
  });
});

describe("LearnerWorker", () => {
  it("runs the learner: init, addReal (buffers transferred), update, actorWeights, save, load", async () => {
    const { errors, onFailure } = failures();
    const worker = new LearnerWorker({ learnerModule: FAKE, onFailure });
    const { backend } = await worker.init(spec());
    assert.equal(backend.name, "cpu");
    const b = batch(5);
    const obs = b.obs;
    assert.deepEqual(await worker.addReal(b), { added: 5 });
    assert.equal(obs.byteLength, 0, "the batch's buffers are transferred, not copied");
    const report = await worker.update();
    assert.equal(report.realSteps, 5);
    assert.equal(report.sacUpdates, 10);
    const weights = await worker.actorWeights();
    assert.deepEqual(weights.sizes, [20, 8]);
    assert.ok(weights.layers[0].weight instanceof Float32Array);
    assert.equal(weights.layers[0].weight.length, 20 * 8);
    const dir = mkdtempSync(join(tmpdir(), "learner-"));
    await worker.save(dir);
    await worker.dispose();

    const restored = new LearnerWorker({ learnerModule: FAKE, onFailure });
    const loaded = await restored.load(dir, "cpu");
    assert.equal(loaded.spec.seed, 1);
    assert.deepEqual(await restored.actorWeights(), weights);
    assert.equal((await restored.update()).realSteps, 5);
    await restored.dispose();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(errors, []);
  });

  it("answers requests in the order they were sent", async () => {
    const worker = new LearnerWorker({ learnerModule: FAKE });
    await worker.init(spec());
    const [a, u1, b, u2] = await Promise.all([
      worker.addReal(batch(2)),
      worker.update(),
      worker.addReal(batch(3)),
      worker.update(),
    ]);
    assert.equal(a.added + b.added, 5);
    assert.equal(u1.realSteps, 2);
    assert.equal(u2.realSteps, 5);
    await worker.dispose();
  });

  for (const [mode, pattern] of [
    ["throw", /learner update failed: fake learner: update failed on purpose/],
    ["crash", /learner worker crashed: fake learner: crashed on purpose/],
    ["exit", /learner worker exited unexpectedly \(exit code 7\)/],
  ] as const) {
    it(`reports a worker that fails (${mode}) once, and refuses every later request`, async () => {
      const { errors, onFailure } = failures();
      const worker = new LearnerWorker({ learnerModule: FAKE, onFailure });
      await worker.init(spec({ fail: mode, failOnUpdate: 1 }));
      await worker.addReal(batch(2));
      await assert.rejects(worker.update(), pattern);
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, pattern);
      assert.equal(worker.failure, errors[0]);
      await assert.rejects(worker.actorWeights(), pattern);
      await worker.dispose();
      assert.equal(errors.length, 1, "a failure is reported once");
    });
  }

  it("treats a bad batch (non-finite values) as a learner failure, naming the field", async () => {
    const { errors, onFailure } = failures();
    const worker = new LearnerWorker({ learnerModule: FAKE, onFailure });
    await worker.init(spec());
    const b = batch(2);
    b.reward[1] = Number.POSITIVE_INFINITY;
    await assert.rejects(
      worker.addReal(b),
      /learner addReal failed: transition batch: reward\[1\] is Infinity/,
    );
    assert.equal(errors.length, 1);
    await worker.dispose();
  });

  it("reports a learner module that cannot be loaded", async () => {
    const { errors, onFailure } = failures();
    const worker = new LearnerWorker({ learnerModule: new URL("./no-such-module.js", FAKE).href, onFailure });
    await assert.rejects(worker.init(spec()), /learner worker crashed/);
    assert.equal(errors.length, 1);
    await worker.dispose();
  });

  it("reports a request before init as an error", async () => {
    const { errors, onFailure } = failures();
    const worker = new LearnerWorker({ learnerModule: FAKE, onFailure });
    await assert.rejects(worker.update(), /update before init or load/);
    assert.equal(errors.length, 1);
    await worker.dispose();
  });
});
