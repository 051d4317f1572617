import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/util/rng.js";

/** The PCG32 reference on BigInt (pcg32_random_r and pcg32_srandom_r), to check the 32-bit version. */
class ReferencePcg32 {
  private state = 0n;
  private readonly inc: bigint;
  constructor(seed: number, stream: number) {
    const mask = 0xffffffffffffffffn;
    this.inc = ((BigInt(stream) << 1n) | 1n) & mask;
    this.next();
    this.state = (this.state + BigInt.asUintN(64, BigInt(Math.trunc(seed)))) & mask;
    this.next();
  }
  next(): number {
    const old = this.state;
    this.state = (old * 6364136223846793005n + this.inc) & 0xffffffffffffffffn;
    const xorshifted = Number(((old >> 18n) ^ old) >> 27n) >>> 0;
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << (-rot & 31))) >>> 0;
  }
}

describe("Rng (PCG32)", () => {
  it("matches the published PCG32 demo output (seed 42, stream 54)", () => {
    // pcg32-demo.c's first six outputs for pcg32_srandom(42u, 54u).
    const rng = new Rng(42, 54);
    const expected = [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e];
    assert.deepEqual(
      expected.map(() => rng.nextUint32()),
      expected,
    );
  });

  it("matches a BigInt reference for many seeds and streams, negative and large ones too", () => {
    const cases: [number, number][] = [
      [0, 54],
      [1, 0],
      [-1, 3],
      [-123456789, -7],
      [2 ** 40 + 12345, 2 ** 35 + 1],
      [Number.MAX_SAFE_INTEGER, 1],
      [987654321, 54],
    ];
    for (const [seed, stream] of cases) {
      const ours = new Rng(seed, stream);
      const reference = new ReferencePcg32(seed, stream);
      for (let i = 0; i < 2000; i++) {
        const a = ours.nextUint32();
        const b = reference.next();
        if (a !== b) assert.fail(`seed ${seed}, stream ${stream}, draw ${i}: ${a} ≠ ${b}`);
      }
    }
  });

  it("keeps its derived draws in range and its normals standard", () => {
    const rng = new Rng(7);
    let sum = 0;
    let sumSquares = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      assert.ok(u >= 0 && u < 1);
      const k = rng.int(5);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 5);
      const r = rng.range(-2, 3);
      assert.ok(r >= -2 && r < 3);
      const z = rng.normal();
      sum += z;
      sumSquares += z * z;
    }
    assert.ok(Math.abs(sum / n) < 0.03, `mean ${sum / n}`);
    assert.ok(Math.abs(sumSquares / n - 1) < 0.04, `variance ${sumSquares / n}`);
  });

  it("resumes exactly from getState(), including a waiting Box–Muller normal", () => {
    const rng = new Rng(5, 9);
    for (let i = 0; i < 17; i++) rng.uniform();
    rng.normal(); // leaves the spare normal waiting
    const state = JSON.parse(JSON.stringify(rng.getState()));
    assert.notEqual(state.spareNormal, null);
    const expected = Array.from({ length: 50 }, (_, i) => (i % 2 ? rng.normal() : rng.uniform()));
    const restored = new Rng(0);
    restored.setState(state);
    assert.deepEqual(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? restored.normal() : restored.uniform())),
      expected,
    );
  });

  it("rejects a malformed state with a clear error", () => {
    const rng = new Rng(1);
    const good = rng.getState();
    for (const bad of [
      undefined,
      { ...good, kind: "mt19937" },
      { ...good, stateHi: -1 },
      { ...good, stateLo: 2 ** 32 },
      { ...good, incLo: 2 },
      { ...good, spareNormal: Number.NaN },
    ]) {
      assert.throws(() => rng.setState(bad as never), /Rng.setState: not a PCG32 state/);
    }
    assert.throws(() => new Rng(Number.NaN), /seed and stream must be finite/);
  });
});
