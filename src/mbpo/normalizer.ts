/**
 * Per-feature standardisation z = (x − mean) / std for the ensemble's inputs and targets.
 *
 * Statistics are kept as a count, a mean and M2 = Σ(x − mean)² (Welford), in float64, so that
 * update() can merge a new batch into what was seen before (Chan et al.'s parallel form) and fit()
 * can start afresh; both give the population variance M2 / n. The std used is floored at `minStd`:
 * a feature that hardly varies in the data would otherwise be divided by ~0, and anything unusual
 * at prediction time would become a huge input. An optional per-feature `stdFloor` raises that
 * floor feature by feature (SAC's observations: a joint position's spread over its whole range).
 *
 * Until it has seen data a Normalizer is the identity (mean 0, std 1).
 */
export interface NormalizerJSON {
  kind: "normalizer";
  size: number;
  minStd: number;
  /** Per-feature floor of the std (absent: minStd alone, as before it existed). */
  stdFloor?: number[];
  count: number;
  mean: number[];
  m2: number[];
}

export class Normalizer {
  readonly size: number;
  readonly minStd: number;
  /** Per-feature floor of the std on top of minStd (its units), or undefined. */
  readonly stdFloor: Float64Array | undefined;
  /** Per-feature mean (0 before any data). */
  readonly mean: Float64Array;
  /** Per-feature std used to scale, max(√(M2/n), minStd, stdFloor) (1 before any data). */
  readonly std: Float64Array;
  private readonly m2: Float64Array;
  private seen = 0;

  constructor(size: number, minStd = 1e-6, stdFloor?: ArrayLike<number>) {
    if (!Number.isInteger(size) || size <= 0)
      throw new Error(`Normalizer: size must be a positive integer, got ${size}`);
    if (!(minStd > 0)) throw new Error(`Normalizer: minStd must be positive, got ${minStd}`);
    if (stdFloor !== undefined) {
      const values = Array.from(stdFloor);
      if (values.length !== size || !values.every((v) => Number.isFinite(v) && v >= 0))
        throw new Error(
          `Normalizer: stdFloor must be ${size} finite numbers ≥ 0, got ${JSON.stringify(values)}`,
        );
    }
    this.size = size;
    this.minStd = minStd;
    this.stdFloor = stdFloor === undefined ? undefined : Float64Array.from(stdFloor);
    this.mean = new Float64Array(size);
    this.std = new Float64Array(size).fill(1);
    this.m2 = new Float64Array(size);
  }

  /** Rows seen since the last fit(). */
  get count(): number {
    return this.seen;
  }

  /** Replaces the statistics by those of the first `rows` rows of `data` (row-major, rows × size). */
  fit(data: ArrayLike<number>, rows = data.length / this.size): void {
    this.seen = 0;
    this.mean.fill(0);
    this.m2.fill(0);
    this.update(data, rows);
  }

  /** Merges the first `rows` rows of `data` into the statistics. */
  update(data: ArrayLike<number>, rows = data.length / this.size): void {
    this.checkRows(data, rows, "update");
    if (rows === 0) return;
    const n = this.size;
    for (let j = 0; j < n; j++) {
      // Mean and M2 of the batch, then the parallel merge with what was seen before.
      let batchMean = 0;
      for (let r = 0; r < rows; r++) batchMean += data[r * n + j];
      batchMean /= rows;
      let batchM2 = 0;
      for (let r = 0; r < rows; r++) {
        const d = data[r * n + j] - batchMean;
        batchM2 += d * d;
      }
      const total = this.seen + rows;
      const delta = batchMean - this.mean[j];
      this.mean[j] += (delta * rows) / total;
      this.m2[j] += batchM2 + (delta * delta * this.seen * rows) / total;
    }
    this.seen += rows;
    this.refreshStd();
  }

  /** dst = (src − mean) / std over `rows` rows; dst may be src. */
  normalize(src: ArrayLike<number>, dst: Float32Array | Float64Array, rows = src.length / this.size): void {
    this.checkRows(src, rows, "normalize");
    const n = this.size;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) dst[r * n + j] = (src[r * n + j] - this.mean[j]) / this.std[j];
    }
  }

  /** dst = src · std + mean over `rows` rows; dst may be src. */
  denormalize(src: ArrayLike<number>, dst: Float32Array | Float64Array, rows = src.length / this.size): void {
    this.checkRows(src, rows, "denormalize");
    const n = this.size;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) dst[r * n + j] = src[r * n + j] * this.std[j] + this.mean[j];
    }
  }

  toJSON(): NormalizerJSON {
    return {
      kind: "normalizer",
      size: this.size,
      minStd: this.minStd,
      ...(this.stdFloor === undefined ? {} : { stdFloor: Array.from(this.stdFloor) }),
      count: this.seen,
      mean: Array.from(this.mean),
      m2: Array.from(this.m2),
    };
  }

  /** A Normalizer with the statistics of toJSON()'s output; `label` names it in errors. */
  static fromJSON(json: NormalizerJSON, label = "normalizer"): Normalizer {
    if (json?.kind !== "normalizer") throw new Error(`${label}: kind is ${json?.kind}, expected normalizer`);
    const normalizer = new Normalizer(json.size, json.minStd, json.stdFloor);
    normalizer.load(json, label);
    return normalizer;
  }

  /** Replaces the statistics by those of toJSON()'s output (same size; minStd and stdFloor stay this one's). */
  load(json: NormalizerJSON, label = "normalizer"): void {
    if (json?.kind !== "normalizer") throw new Error(`${label}: kind is ${json?.kind}, expected normalizer`);
    if (json.size !== this.size) throw new Error(`${label}: size is ${json.size}, expected ${this.size}`);
    for (const field of ["mean", "m2"] as const) {
      const values = json[field];
      if (!Array.isArray(values) || values.length !== this.size || !values.every(Number.isFinite)) {
        throw new Error(`${label}: field ${field} must be ${this.size} finite numbers`);
      }
    }
    if (!(Number.isInteger(json.count) && json.count >= 0)) {
      throw new Error(`${label}: field count must be a non-negative integer, got ${json.count}`);
    }
    this.mean.set(json.mean);
    this.m2.set(json.m2);
    this.seen = json.count;
    this.refreshStd();
  }

  private refreshStd(): void {
    for (let j = 0; j < this.size; j++) {
      const floor = Math.max(this.minStd, this.stdFloor?.[j] ?? 0);
      this.std[j] = this.seen > 0 ? Math.max(Math.sqrt(this.m2[j] / this.seen), floor) : 1;
    }
  }

  private checkRows(data: ArrayLike<number>, rows: number, method: string): void {
    if (!Number.isInteger(rows) || rows < 0 || rows * this.size > data.length) {
      throw new Error(
        `Normalizer.${method}: ${rows} rows of ${this.size} need ${rows * this.size} values, got ${data.length}`,
      );
    }
  }
}
