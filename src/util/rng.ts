/**
 * Seeded pseudo-random numbers (PCG32 with a Box–Muller normal), so that a run is reproducible
 * from its seed. Math.random is never used by the node.
 *
 * PCG32 (O'Neill 2014, pcg32_random_r): a 64-bit linear congruential state
 *   state ← state · 6364136223846793005 + inc  (mod 2^64)
 * and an output permutation of the old state (xorshift-high, then a random rotation). The 64-bit
 * state is kept as two unsigned 32-bit halves and multiplied with 16-bit partial products and
 * Math.imul, so a draw costs a few integer operations and allocates nothing (a BigInt version
 * allocated on every call). The numbers are exactly those of the reference PCG32.
 *
 * getState()/setState() capture and restore the whole generator (checkpoints resume the stream).
 */

/** The whole generator as plain data (JSON-safe: no NaN, no BigInt). */
export interface RngState {
  kind: "pcg32";
  /** State and increment as unsigned 32-bit halves. */
  stateHi: number;
  stateLo: number;
  incHi: number;
  incLo: number;
  /** Box–Muller's second normal, waiting to be returned; null when none is waiting. */
  spareNormal: number | null;
}

/** 6364136223846793005 = 0x5851F42D_4C957F2D, the PCG32 multiplier, as 32-bit halves. */
const MULT_HI = 0x5851f42d;
const MULT_LO = 0x4c957f2d;
const TWO_32 = 4294967296;

export class Rng {
  private stateHi = 0;
  private stateLo = 0;
  private incHi = 0;
  private incLo = 0;
  private spareNormal = Number.NaN;

  /**
   * `seed` and `stream` are integers (a fraction is truncated; a negative seed is taken modulo
   * 2^64, as the C reference's uint64_t would). Different streams give independent sequences.
   */
  constructor(seed: number, stream = 54) {
    if (!Number.isFinite(seed) || !Number.isFinite(stream)) {
      throw new Error(`Rng: seed and stream must be finite numbers, got ${seed} and ${stream}`);
    }
    // inc = (stream << 1) | 1 (mod 2^64)
    const [streamHi, streamLo] = toUint64(stream);
    this.incHi = ((streamHi << 1) | (streamLo >>> 31)) >>> 0;
    this.incLo = ((streamLo << 1) | 1) >>> 0;
    this.nextUint32();
    const [seedHi, seedLo] = toUint64(seed);
    this.add64(seedHi, seedLo);
    this.nextUint32();
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const oldHi = this.stateHi;
    const oldLo = this.stateLo;

    // state ← old · MULT + inc (mod 2^64). The low halves' full 64-bit product comes from 16-bit
    // partial products (each below 2^32, so exact in a double); the cross terms only reach the
    // high half, where Math.imul's wrap-around is exactly the mod 2^32 we want.
    const a0 = oldLo & 0xffff;
    const a1 = oldLo >>> 16;
    const b0 = MULT_LO & 0xffff;
    const b1 = MULT_LO >>> 16;
    const p00 = a0 * b0;
    const p01 = a0 * b1;
    const p10 = a1 * b0;
    const middle = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    const productLo = (((middle & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
    const productHi =
      (a1 * b1 +
        (p01 >>> 16) +
        (p10 >>> 16) +
        Math.floor(middle / 65536) +
        Math.imul(oldHi, MULT_LO) +
        Math.imul(oldLo, MULT_HI)) >>>
      0;
    const sumLo = productLo + this.incLo;
    this.stateLo = sumLo >>> 0;
    this.stateHi = (productHi + this.incHi + (sumLo >= TWO_32 ? 1 : 0)) >>> 0;

    // Output: xorshifted = uint32(((old >> 18) ^ old) >> 27), rotated right by old >> 59.
    const xHi = oldHi ^ (oldHi >>> 18);
    const xLo = oldLo ^ ((oldLo >>> 18) | (oldHi << 14));
    const xorshifted = ((xLo >>> 27) | (xHi << 5)) >>> 0;
    const rot = oldHi >>> 27;
    return ((xorshifted >>> rot) | (xorshifted << (-rot & 31))) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / TWO_32;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal. */
  normal(): number {
    if (!Number.isNaN(this.spareNormal)) {
      const z = this.spareNormal;
      this.spareNormal = Number.NaN;
      return z;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A copy of the whole generator state. */
  getState(): RngState {
    return {
      kind: "pcg32",
      stateHi: this.stateHi,
      stateLo: this.stateLo,
      incHi: this.incHi,
      incLo: this.incLo,
      spareNormal: Number.isNaN(this.spareNormal) ? null : this.spareNormal,
    };
  }

  /** Restores a state from getState(); the sequence continues exactly where it was captured. */
  setState(state: RngState): void {
    const halves = [state?.stateHi, state?.stateLo, state?.incHi, state?.incLo];
    const valid =
      state?.kind === "pcg32" &&
      halves.every((h) => Number.isInteger(h) && h >= 0 && h < TWO_32) &&
      (state.incLo & 1) === 1 &&
      (state.spareNormal === null || Number.isFinite(state.spareNormal));
    if (!valid) {
      throw new Error(
        `Rng.setState: not a PCG32 state (expected kind "pcg32", four unsigned 32-bit halves with an odd increment, spareNormal a number or null), got ${JSON.stringify(state)}`,
      );
    }
    this.stateHi = state.stateHi;
    this.stateLo = state.stateLo;
    this.incHi = state.incHi;
    this.incLo = state.incLo;
    this.spareNormal = state.spareNormal ?? Number.NaN;
  }

  /** state ← state + (hi, lo) (mod 2^64). */
  private add64(hi: number, lo: number): void {
    const sumLo = this.stateLo + lo;
    this.stateLo = sumLo >>> 0;
    this.stateHi = (this.stateHi + hi + (sumLo >= TWO_32 ? 1 : 0)) >>> 0;
  }
}

/**
 * An integer (truncated) as the unsigned 64-bit halves [hi, lo] of its value modulo 2^64, as C's
 * conversion to uint64_t gives it. Exact for |x| < 2^53; beyond, a double has no units digit anyway.
 */
function toUint64(x: number): [number, number] {
  const magnitude = Math.abs(Math.trunc(x));
  let lo = magnitude % TWO_32;
  let hi = Math.floor(magnitude / TWO_32) % TWO_32;
  if (x < 0 && magnitude !== 0) {
    // Two's complement: −m = ~m + 1 (mod 2^64).
    lo = ~lo >>> 0;
    hi = ~hi >>> 0;
    const sumLo = lo + 1;
    lo = sumLo >>> 0;
    hi = (hi + (sumLo >= TWO_32 ? 1 : 0)) >>> 0;
  }
  return [hi, lo];
}
