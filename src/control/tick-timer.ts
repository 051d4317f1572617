/**
 * Tick timing statistics: compute time of each control tick and, for paced loops, how late each
 * tick woke. Recording is allocation-free (ring buffers); summaries sort a copy, off the hot path.
 */
export interface TimingSummary {
  count: number;
  medianUs: number;
  p99Us: number;
  maxUs: number;
}

class Samples {
  private readonly ring: Float64Array;
  private written = 0;
  private maxSeen = 0;
  total = 0;

  constructor(capacity: number) {
    this.ring = new Float64Array(capacity);
  }

  record(us: number): void {
    this.ring[this.written % this.ring.length] = us;
    this.written++;
    this.total++;
    if (us > this.maxSeen) this.maxSeen = us;
  }

  /** Median and p99 of the most recent samples (up to the ring's capacity); max over all. */
  summary(): TimingSummary {
    const n = Math.min(this.written, this.ring.length);
    if (n === 0) return { count: 0, medianUs: 0, p99Us: 0, maxUs: 0 };
    const sorted = this.ring.slice(0, n).sort();
    return {
      count: this.total,
      medianUs: quantile(sorted, 0.5),
      p99Us: quantile(sorted, 0.99),
      maxUs: this.maxSeen,
    };
  }

  clear(): void {
    this.written = 0;
    this.total = 0;
    this.maxSeen = 0;
  }
}

function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export class TickTimer {
  private readonly compute: Samples;
  private readonly lateness: Samples;

  constructor(capacity = 8192) {
    this.compute = new Samples(capacity);
    this.lateness = new Samples(capacity);
  }

  recordCompute(us: number): void {
    this.compute.record(us);
  }

  recordLateness(us: number): void {
    this.lateness.record(us);
  }

  summary(): { compute: TimingSummary; lateness: TimingSummary } {
    return { compute: this.compute.summary(), lateness: this.lateness.summary() };
  }

  clear(): void {
    this.compute.clear();
    this.lateness.clear();
  }
}
