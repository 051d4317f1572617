/**
 * Seeded pseudo-random numbers (PCG32 with a Box–Muller normal), so that a run is reproducible
 * from its seed. Math.random is never used by the node.
 */
export class Rng {
  private state = 0n;
  private readonly inc: bigint;
  private spareNormal = Number.NaN;

  constructor(seed: number, stream = 54) {
    this.inc = ((BigInt(stream) << 1n) | 1n) & 0xffffffffffffffffn;
    this.nextUint32();
    this.state = (this.state + BigInt.asUintN(64, BigInt(Math.trunc(seed)))) & 0xffffffffffffffffn;
    this.nextUint32();
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const old = this.state;
    this.state = (old * 6364136223846793005n + this.inc) & 0xffffffffffffffffn;
    const xorshifted = Number(((old >> 18n) ^ old) >> 27n) >>> 0;
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << (-rot & 31))) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
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
}
