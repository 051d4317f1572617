import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  createBatch,
  mixedBatch,
  RealReplayBuffer,
  ReplayBuffer,
  type ReplayBufferJSON,
} from "../../src/mbpo/replay-buffer.js";
import { Rng } from "../../src/util/rng.js";

/** Transition number k: obs = [k, k+0.5], action = [-k], reward k, nextObs = [k+1, k+1.5], terminated when k is odd. */
function transition(k: number) {
  return { obs: [k, k + 0.5], action: [-k], reward: k, nextObs: [k + 1, k + 1.5], terminated: k % 2 === 1 };
}

function realTransition(k: number) {
  return {
    ...transition(k),
    q: [k, 2 * k],
    qd: [0.1 * k, 0.2 * k],
    effort: [k + 0.25, k - 0.25],
    nextQ: [k + 1, 2 * k + 1],
    nextQd: [0.1 * k + 0.01, 0.2 * k + 0.01],
    goal: [1e-3 * k, 1e-9 * k, 1 + 1e-9 * k],
  };
}

describe("ReplayBuffer", () => {
  it("wraps around: the oldest transitions are overwritten and size stops at capacity", () => {
    const buffer = new ReplayBuffer(3, 2, 1);
    for (let k = 0; k < 5; k++) buffer.add(transition(k));
    assert.equal(buffer.size, 3);
    assert.equal(buffer.added, 5);
    assert.equal(buffer.next, 2);
    // Slots 0, 1 hold transitions 3, 4; slot 2 still holds transition 2.
    assert.deepEqual([...buffer.reward], [3, 4, 2]);
    assert.deepEqual([...buffer.obs], [3, 3.5, 4, 4.5, 2, 2.5]);
    assert.deepEqual([...buffer.action], [-3, -4, -2]);
    assert.deepEqual([...buffer.nextObs], [4, 4.5, 5, 5.5, 3, 3.5]);
    assert.deepEqual([...buffer.terminated], [1, 0, 0]);
  });

  it("holds exactly the last min(n, capacity) transitions (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 60 }), (capacity, n) => {
        const buffer = new ReplayBuffer(capacity, 2, 1);
        for (let k = 0; k < n; k++) buffer.add(transition(k));
        assert.equal(buffer.size, Math.min(n, capacity));
        assert.equal(buffer.next, n % capacity);
        const held = [...buffer.reward.subarray(0, buffer.size)].sort((a, b) => a - b);
        const expected = Array.from({ length: buffer.size }, (_, i) => n - buffer.size + i);
        assert.deepEqual(held, expected);
      }),
    );
  });

  it("samples only filled slots, each of them, and copies whole rows", () => {
    const buffer = new ReplayBuffer(10, 2, 1);
    for (let k = 1; k <= 4; k++) buffer.add(transition(k));
    const batch = createBatch(2, 1, 400);
    buffer.sampleBatch(400, new Rng(3), batch);
    const seen = new Set<number>();
    for (let row = 0; row < 400; row++) {
      const k = batch.reward[row];
      seen.add(k);
      assert.deepEqual([...batch.obs.subarray(2 * row, 2 * row + 2)], [k, k + 0.5]);
      assert.equal(batch.action[row], -k);
      assert.deepEqual([...batch.nextObs.subarray(2 * row, 2 * row + 2)], [k + 1, k + 1.5]);
      assert.equal(batch.terminated[row], k % 2);
    }
    assert.deepEqual([...seen].sort(), [1, 2, 3, 4]);
  });

  it("same seed, same batch", () => {
    const buffer = new ReplayBuffer(50, 2, 1);
    for (let k = 0; k < 50; k++) buffer.add(transition(k));
    const a = createBatch(2, 1, 32);
    const b = createBatch(2, 1, 32);
    buffer.sampleBatch(32, new Rng(9), a);
    buffer.sampleBatch(32, new Rng(9), b);
    assert.deepEqual(a.reward, b.reward);
  });

  it("mixes real and model rows in the asked proportion, real rows first", () => {
    const real = new ReplayBuffer(100, 2, 1);
    const model = new ReplayBuffer(1000, 2, 1);
    for (let k = 0; k < 10; k++) real.add({ ...transition(k), reward: 1 });
    const batch = createBatch(2, 1, 256);
    // No model data yet: every row is real.
    assert.equal(mixedBatch(real, model, 0.05, 256, new Rng(1), batch), 256);
    assert.ok(batch.reward.every((r) => r === 1));
    for (let k = 0; k < 500; k++) model.add({ ...transition(k), reward: 2 });
    const realRows = mixedBatch(real, model, 0.05, 256, new Rng(1), batch);
    assert.equal(realRows, 13); // round(0.05 · 256)
    assert.ok(batch.reward.subarray(0, 13).every((r) => r === 1));
    assert.ok(batch.reward.subarray(13).every((r) => r === 2));
    assert.throws(() => mixedBatch(real, model, 1.5, 256, new Rng(1), batch), /realFraction/);
  });

  it("addBatch copies rollout rows in order", () => {
    const model = new ReplayBuffer(4, 2, 1);
    const source = new ReplayBuffer(8, 2, 1);
    for (let k = 0; k < 3; k++) source.add(transition(k));
    const batch = createBatch(2, 1, 3);
    for (let row = 0; row < 3; row++) source.copyToBatch(row, batch, row);
    model.addBatch(batch, 3);
    model.addBatch(batch, 2);
    assert.equal(model.size, 4);
    // Rows 0, 1, 2 fill slots 0–2; then row 0 fills slot 3 and row 1 wraps onto slot 0.
    assert.deepEqual([...model.reward], [1, 1, 2, 0]);
  });

  it("round-trips through JSON and goes on identically", () => {
    const buffer = new ReplayBuffer(5, 2, 1);
    for (let k = 0; k < 7; k++) buffer.add(transition(k + 0.125));
    const json = JSON.parse(JSON.stringify(buffer.toJSON())) as ReplayBufferJSON;
    const restored = ReplayBuffer.fromJSON(json);
    assert.equal(restored.size, 5);
    assert.equal(restored.next, buffer.next);
    assert.equal(restored.added, 7);
    for (const field of ["obs", "action", "reward", "nextObs", "terminated"] as const) {
      assert.deepEqual(restored[field], buffer[field], field);
    }
    buffer.add(transition(100));
    restored.add(transition(100));
    assert.deepEqual(restored.reward, buffer.reward);
    // A partly filled buffer stores only its filled rows.
    const small = new ReplayBuffer(1000, 2, 1);
    small.add(transition(1));
    const smallRestored = ReplayBuffer.fromJSON(small.toJSON());
    assert.equal(smallRestored.size, 1);
    assert.deepEqual([...smallRestored.obs.subarray(0, 2)], [1, 1.5]);
  });

  it("rejects bad input with a message naming the field", () => {
    const buffer = new ReplayBuffer(5, 2, 1);
    assert.throws(() => buffer.add({ ...transition(0), obs: [1, 2, 3] }), /obs has 3 values, expected 2/);
    assert.throws(() => buffer.sampleBatch(1, new Rng(1), createBatch(2, 1, 1)), /empty/);
    buffer.add(transition(0));
    assert.throws(() => buffer.sampleBatch(2, new Rng(1), createBatch(2, 1, 1)), /1 rows, needs 2/);
    assert.throws(() => new ReplayBuffer(0, 2, 1), /capacity must be a positive integer/);
    const json = buffer.toJSON();
    assert.throws(() => ReplayBuffer.fromJSON({ ...json, size: 2 }), /arrays\.obs: 2 values, expected 4/);
    assert.throws(() => ReplayBuffer.fromJSON({ ...json, kind: "real-replay-buffer" }), /kind/);
  });
});

describe("RealReplayBuffer", () => {
  it("stores the joint-space part beside the transition, in Float64 precision", () => {
    const buffer = new RealReplayBuffer(4, 2, 1, 2, 3);
    for (let k = 0; k < 6; k++) buffer.add(realTransition(k));
    // Slot 1 holds transition 5 after wrapping.
    const t = realTransition(5);
    assert.equal(buffer.reward[1], 5);
    assert.deepEqual([...buffer.q.subarray(2, 4)], t.q);
    assert.deepEqual([...buffer.qd.subarray(2, 4)], t.qd);
    assert.deepEqual([...buffer.effort.subarray(2, 4)], t.effort);
    assert.deepEqual([...buffer.nextQ.subarray(2, 4)], t.nextQ);
    assert.deepEqual([...buffer.nextQd.subarray(2, 4)], t.nextQd);
    assert.deepEqual([...buffer.goal.subarray(3, 6)], t.goal); // 1 + 5e-9 survives: Float64
    assert.throws(() => buffer.add({ ...realTransition(0), effort: [1] }), /effort has 1 values, expected 2/);
    assert.throws(() => buffer.addBatch(), /one by one/);
  });

  it("round-trips through JSON with its joint-space arrays", () => {
    const buffer = new RealReplayBuffer(4, 2, 1, 2, 3);
    for (let k = 0; k < 3; k++) buffer.add(realTransition(k));
    const restored = RealReplayBuffer.fromJSON(JSON.parse(JSON.stringify(buffer.toJSON())));
    for (const field of ["obs", "reward", "q", "qd", "effort", "nextQ", "nextQd", "goal"] as const) {
      assert.deepEqual(restored[field], buffer[field], field);
    }
    assert.equal(restored.size, 3);
    assert.equal(restored.dof, 2);
    assert.equal(restored.goalSize, 3);
  });
});
