/**
 * A fixed-size latency histogram in microseconds: exact below 2 ms, then 1024 sub-buckets per
 * power of two (under 0.1% error), so recording allocates nothing and a run of any length uses
 * the same ~120 KiB.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./latency.ts";
 * const h = new LatencyHistogram();
 * for (let us = 1; us <= 100; us++) h.record(us);
 * console.log(h.count, h.percentile(0.5), h.max); // 100 50 100
 * ```
 *
 * @module
 */

const EXACT = 2048; // µs values below this have their own bucket
const SUB_BITS = 10;
const SUB = 1 << SUB_BITS;
const MAX_EXP = 40; // up to 2^40 µs (12 days): far beyond any run
const SIZE = EXACT + (MAX_EXP - 11) * SUB;

/** Latency samples in µs. */
export class LatencyHistogram {
  #counts = new Uint32Array(SIZE);
  /** Samples recorded. */
  count = 0;
  /** Sum of samples, in µs. */
  sumUs = 0;
  /** Largest sample, in µs. */
  max = 0;

  /**
   * Records `times` samples of `us` microseconds.
   *
   * @param us The latency (fractions are truncated, negatives count as 0).
   * @param times How many requests had it (default 1).
   */
  record(us: number, times = 1): void {
    const v = us > 0 ? Math.floor(us) : 0;
    this.#counts[bucket(v)] += times;
    this.count += times;
    this.sumUs += v * times;
    if (v > this.max) this.max = v;
  }

  /** The latency (µs) at quantile `q` in [0, 1] (a bucket's lower bound; 0 when empty). */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    const counts = this.#counts;
    for (let i = 0; i < SIZE; i++) {
      seen += counts[i];
      if (seen >= rank) return Math.min(lowerBound(i), this.max);
    }
    return this.max;
  }

  /** Mean latency in µs. */
  get mean(): number {
    return this.count === 0 ? 0 : this.sumUs / this.count;
  }

  /** Adds another histogram's samples. */
  merge(other: LatencyHistogram): void {
    const a = this.#counts;
    const b = other.#counts;
    for (let i = 0; i < SIZE; i++) a[i] += b[i];
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.max > this.max) this.max = other.max;
  }
}

function bucket(v: number): number {
  if (v < EXACT) return v;
  const exp = Math.min(MAX_EXP - 1, 31 - Math.clz32(Math.min(v, 2 ** 31 - 1))); // >= 11
  const sub = Math.floor(v / 2 ** (exp - SUB_BITS)) - SUB; // [0, SUB)
  return EXACT + (exp - 11) * SUB + Math.min(SUB - 1, Math.max(0, sub));
}

function lowerBound(index: number): number {
  if (index < EXACT) return index;
  const exp = Math.floor((index - EXACT) / SUB) + 11;
  const sub = (index - EXACT) % SUB;
  return (SUB + sub) * 2 ** (exp - SUB_BITS);
}
