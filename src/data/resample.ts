/**
 * Resampling of recorded joint states and efforts onto the control rate: the pure arithmetic of the
 * teleop bootstrap (bootstrap.ts reads the bag and builds the series).
 *
 * Joint positions and velocities are interpolated linearly at the grid times (a continuous joint
 * along the short way round). The effort of a step is the time average over [t_k, t_k+1) of the
 * effort signal held from each sample to the next (zero-order hold, as an effort controller applies
 * a command until the next one), so commands at any rate, late or early against the joint states,
 * give the effort that actually acted during the step. A joint-state gap longer than maxGap, or an
 * effort signal older than maxGap, splits the recording: no transition spans missing data.
 */

/** Samples of n values each, at increasing times (s). `values` holds row i at [i·n, (i+1)·n). */
export interface Series {
  n: number;
  times: Float64Array;
  values: Float64Array;
}

/** An append-only series that grows by doubling. */
export class SeriesBuilder {
  readonly n: number;
  count = 0;
  times: Float64Array;
  values: Float64Array;

  constructor(n: number, capacity = 1024) {
    this.n = n;
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity * n);
  }

  /** Appends a row; returns its offset in `values` for the caller to fill. */
  push(time: number): number {
    if (this.count === this.times.length) {
      const times = new Float64Array(this.times.length * 2);
      times.set(this.times);
      this.times = times;
      const values = new Float64Array(this.values.length * 2);
      values.set(this.values);
      this.values = values;
    }
    this.times[this.count] = time;
    return this.count++ * this.n;
  }

  /**
   * The rows sorted by time (stable; recorders may write messages out of order), with rows at a
   * time already seen dropped.
   */
  sorted(): Series {
    const { n, count } = this;
    let inOrder = true;
    for (let i = 1; i < count && inOrder; i++) if (!(this.times[i] > this.times[i - 1])) inOrder = false;
    if (inOrder) return { n, times: this.times.slice(0, count), values: this.values.slice(0, count * n) };
    const order = Array.from({ length: count }, (_, i) => i).sort(
      (a, b) => this.times[a] - this.times[b] || a - b,
    );
    const times = new Float64Array(count);
    const values = new Float64Array(count * n);
    let m = 0;
    for (const i of order) {
      if (m > 0 && times[m - 1] === this.times[i]) continue;
      times[m] = this.times[i];
      values.set(this.values.subarray(i * n, (i + 1) * n), m * n);
      m++;
    }
    return { n, times: times.slice(0, m), values: values.slice(0, m * n) };
  }
}

/** Index ranges [start, end] (inclusive) of samples with no gap longer than maxGap between neighbours. */
export function splitAtGaps(times: Float64Array, maxGap: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  if (times.length === 0) return runs;
  let start = 0;
  for (let i = 1; i < times.length; i++) {
    if (times[i] - times[i - 1] > maxGap) {
      runs.push([start, i - 1]);
      start = i;
    }
  }
  runs.push([start, times.length - 1]);
  return runs;
}

/**
 * Linear interpolation of a series at increasing query times, keeping a cursor between calls.
 * `wrap[j]` marks continuous joints, interpolated along the short arc.
 */
export class Interpolator {
  private cursor = 0;
  constructor(
    private readonly series: Series,
    private readonly wrap?: Uint8Array,
  ) {}

  /** Writes the value at time t (inside [times[0], times[last]]) into out[offset..offset+n). */
  at(t: number, out: Float64Array, offset = 0): void {
    const { times, values, n } = this.series;
    const last = times.length - 1;
    if (this.cursor > last || times[this.cursor] > t) this.cursor = 0;
    while (this.cursor < last && times[this.cursor + 1] <= t) this.cursor++;
    const i = this.cursor;
    if (i === last || times[i] === t) {
      for (let j = 0; j < n; j++) out[offset + j] = values[i * n + j];
      return;
    }
    const s = (t - times[i]) / (times[i + 1] - times[i]);
    for (let j = 0; j < n; j++) {
      const a = values[i * n + j];
      let d = values[(i + 1) * n + j] - a;
      if (this.wrap?.[j] === 1) d = Math.atan2(Math.sin(d), Math.cos(d));
      out[offset + j] = a + s * d;
    }
  }
}

/**
 * The time average over [a, b) of a zero-order-hold signal (each sample holds until the next).
 * Returns false when the signal is undefined somewhere in the interval: before its first sample, or
 * a sample held for longer than maxGap.
 */
export class HoldAverager {
  private cursor = -1;
  constructor(
    private readonly series: Series,
    private readonly maxGap: number,
  ) {}

  average(a: number, b: number, out: Float64Array, offset = 0): boolean {
    const { times, values, n } = this.series;
    const count = times.length;
    if (this.cursor >= 0 && times[this.cursor] > a) this.cursor = -1;
    while (this.cursor + 1 < count && times[this.cursor + 1] <= a) this.cursor++;
    if (this.cursor < 0) return false;
    for (let j = 0; j < n; j++) out[offset + j] = 0;
    let i = this.cursor;
    let t = a;
    while (t < b) {
      const next = i + 1 < count ? times[i + 1] : Number.POSITIVE_INFINITY;
      const end = Math.min(b, next);
      if (end - times[i] > this.maxGap) return false;
      const w = (end - t) / (b - a);
      for (let j = 0; j < n; j++) out[offset + j] += w * values[i * n + j];
      t = end;
      i++;
    }
    return true;
  }
}
