import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Normalizer } from "../../src/mbpo/normalizer.js";

describe("Normalizer", () => {
  it("is the identity before it has seen data", () => {
    const n = new Normalizer(2);
    const out = new Float64Array(2);
    n.normalize([3, -4], out);
    assert.deepEqual(Array.from(out), [3, -4]);
  });

  it("fits the mean and population std of each column", () => {
    const n = new Normalizer(2);
    n.fit([1, 10, 3, 10, 5, 10]); // column 0: 1, 3, 5; column 1 constant
    assert.deepEqual(Array.from(n.mean), [3, 10]);
    assert.ok(Math.abs(n.std[0] - Math.sqrt(8 / 3)) < 1e-12);
    assert.equal(n.std[1], 1e-6, "a constant column gets the floor, not a division by zero");
    const z = new Float32Array(6);
    n.normalize([1, 10, 3, 10, 5, 10], z);
    assert.ok(z.every(Number.isFinite));
    assert.equal(z[1], 0);
  });

  it("merging batches with update() equals one fit() on all rows", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 2, maxLength: 40 }),
        fc.nat(),
        (values, cutSeed) => {
          const rows = values.length;
          const cut = cutSeed % rows;
          const whole = new Normalizer(1);
          whole.fit(values);
          const merged = new Normalizer(1);
          merged.update(values.slice(0, cut));
          merged.update(values.slice(cut));
          const scale = 1 + Math.abs(whole.mean[0]) + whole.std[0];
          assert.ok(Math.abs(whole.mean[0] - merged.mean[0]) < 1e-9 * scale);
          assert.ok(Math.abs(whole.std[0] - merged.std[0]) < 1e-6 * scale);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("denormalize inverts normalize, and JSON keeps the statistics", () => {
    const n = new Normalizer(3, 1e-3);
    n.fit([0.1, 5, -2, 0.3, 7, -2.5, 0.2, 6, -1]);
    const restored = Normalizer.fromJSON(JSON.parse(JSON.stringify(n.toJSON())));
    assert.deepEqual(Array.from(restored.mean), Array.from(n.mean));
    assert.deepEqual(Array.from(restored.std), Array.from(n.std));
    assert.equal(restored.count, 3);
    const x = [0.25, 6.5, -1.75];
    const z = new Float64Array(3);
    const back = new Float64Array(3);
    n.normalize(x, z);
    restored.denormalize(z, back);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(back[i] - x[i]) < 1e-12);
  });

  it("floors each feature's std at its stdFloor, and JSON keeps the floor (older JSON has none)", () => {
    // Feature 0 varies by ±0.1 (std 0.0816), feature 1 by ±3 (std 2.45); floors 0.5 and 1.
    const data = [0.1, 3, 0, 0, -0.1, -3];
    const floored = new Normalizer(2, 1e-3, [0.5, 1]);
    floored.fit(data);
    const plain = new Normalizer(2, 1e-3);
    plain.fit(data);
    assert.ok(Math.abs(plain.std[0] - Math.sqrt(0.02 / 3)) < 1e-12);
    assert.deepEqual(Array.from(floored.std), [0.5, plain.std[1]]);
    const restored = Normalizer.fromJSON(JSON.parse(JSON.stringify(floored.toJSON())));
    assert.deepEqual(Array.from(restored.std), Array.from(floored.std));
    const { stdFloor: _, ...older } = floored.toJSON();
    assert.deepEqual(Array.from(Normalizer.fromJSON(older).std), Array.from(plain.std));
    assert.throws(() => new Normalizer(2, 1e-3, [1]), /stdFloor must be 2 finite numbers ≥ 0/);
    assert.throws(() => new Normalizer(2, 1e-3, [1, -1]), /stdFloor must be 2 finite numbers ≥ 0/);
  });

  it("rejects bad input with a one-line error", () => {
    assert.throws(() => new Normalizer(0), /Normalizer: size must be a positive integer, got 0/);
    assert.throws(
      () => new Normalizer(2).fit([1, 2, 3], 2),
      /Normalizer.update: 2 rows of 2 need 4 values, got 3/,
    );
    const json = new Normalizer(2).toJSON();
    assert.throws(
      () => Normalizer.fromJSON({ ...json, mean: [0] }, "ckpt inputNormalizer"),
      /ckpt inputNormalizer: field mean must be 2 finite numbers/,
    );
  });
});
