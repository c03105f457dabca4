// Streaming statistics for the metrics recorder: a log-linear histogram (quantiles with a bounded
// relative error) and a rolling window of 1 s slots (rates). Internal: the public face is
// `MetricsSnapshot` in ./metrics.ts.

/** log2 of the number of linear sub-buckets per power of two (64 sub-buckets). */
const SUB_BITS = 6;
const SUB_COUNT = 1 << SUB_BITS;
const SUB_MASK = SUB_COUNT - 1;
/** Smallest tracked exponent: 2^-17 ms ≈ 7.6 ns (below any clock read's cost). Smaller values share bucket 0. */
const MIN_EXP = -17;
/** One past the largest tracked exponent: values from 2^22 ms ≈ 70 min share the last bucket. */
const MAX_EXP = 22;
/** Bucket 0 holds [0, 2^MIN_EXP); then (MAX_EXP - MIN_EXP) octaves of SUB_COUNT buckets. */
const BUCKETS = (MAX_EXP - MIN_EXP) * SUB_COUNT + 1;
const MIN_TRACKABLE_MS = 2 ** MIN_EXP;
const MAX_TRACKABLE_MS = 2 ** MAX_EXP;
/** IEEE 754 exponent bias plus the smallest exponent: maps a biased exponent to an octave index. */
const EXP_OFFSET = 1023 + MIN_EXP;

/**
 * The worst-case relative error of a quantile read from a {@linkcode LogHistogram}, against the
 * exact (weighted) nearest-rank quantile of the recorded values, for values in [2^-17, 2^22) ms
 * (~7.6 ns to ~70 min): half a sub-bucket over its lower edge, 2^-7 = 0.78125 %. Below that range
 * the absolute error is < 7.6 ns; above it the estimate is at most the exact maximum.
 */
export const HISTOGRAM_RELATIVE_ERROR: number = 1 / (2 * SUB_COUNT);
/** Values below this (ms) are indistinguishable from 0 in a {@linkcode LogHistogram}. */
export const HISTOGRAM_MIN_MS: number = MIN_TRACKABLE_MS;
/** Values from this (ms) up share the top bucket of a {@linkcode LogHistogram}. */
export const HISTOGRAM_MAX_MS: number = MAX_TRACKABLE_MS;

/** Quantiles reported in every snapshot, in order. */
export const QUANTILES: readonly number[] = Object.freeze([0.5, 0.9, 0.95, 0.99]);

/**
 * A log-linear histogram of non-negative millisecond values with integer weights (HdrHistogram's
 * layout): each power of two is split into 64 equal buckets, so a bucket is at most 1/64 of its lower
 * bound wide and its midpoint is within 2^-7 (0.78 %) of any value in it. The bucket index is read
 * straight from the IEEE 754 bits (exponent and top 6 mantissa bits) through a per-instance scratch
 * Float64Array: O(1), no Math.log, no allocation per record. 2 497 Float64 counters (~20 KiB):
 * Float64 because a sample may stand for many events (its weight), and 2^53 does not overflow.
 *
 * The quantile bound holds for every distribution (no shape assumption): the exact nearest-rank
 * q-quantile lies in the bucket whose midpoint is returned (clamped to the exact min and max).
 */
export class LogHistogram {
  readonly counts: Float64Array = new Float64Array(BUCKETS);
  /** Number of record() calls. */
  samples = 0;
  /** Sum of the weights: the number of events the samples stand for. */
  total = 0;
  /** Weighted sum, for the mean. */
  sumMs = 0;
  /** Exact maximum (0 when empty). */
  maxMs = 0;
  /** Exact minimum (Infinity when empty: never leaves this class). */
  minMs = Infinity;
  readonly #f64 = new Float64Array(1);
  readonly #u32 = new Uint32Array(this.#f64.buffer);
  /** Index of the 32-bit word holding the sign, exponent and top mantissa bits. */
  readonly #hiWord: number = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

  /** The bucket index of `valueMs` (already sanitised: finite, >= 0). */
  bucketOf(valueMs: number): number {
    if (valueMs < MIN_TRACKABLE_MS) return 0;
    if (valueMs >= MAX_TRACKABLE_MS) return BUCKETS - 1;
    this.#f64[0] = valueMs;
    const hi = this.#u32[this.#hiWord];
    return ((hi >>> 20) - EXP_OFFSET) * SUB_COUNT + ((hi >>> (20 - SUB_BITS)) & SUB_MASK) + 1;
  }

  /**
   * Records `valueMs` standing for `weight` events (a positive integer; 1 unless the value is a
   * sample of several). NaN and negative values count as 0 (a clock that went backwards or a caller
   * bug must not poison the figures); values beyond 2^22 ms are kept as 2^22 ms so that every figure
   * stays finite.
   */
  record(valueMs: number, weight: number): void {
    if (!(valueMs > 0)) valueMs = 0;
    else if (valueMs > MAX_TRACKABLE_MS) valueMs = MAX_TRACKABLE_MS;
    this.samples++;
    this.total += weight;
    this.sumMs += valueMs * weight;
    if (valueMs > this.maxMs) this.maxMs = valueMs;
    if (valueMs < this.minMs) this.minMs = valueMs;
    this.counts[this.bucketOf(valueMs)] += weight;
  }

  /** Adds everything recorded in `other` to this histogram. */
  add(other: LogHistogram): void {
    if (other.samples === 0) return;
    const a = this.counts;
    const b = other.counts;
    const hi = other.bucketOf(other.maxMs);
    for (let i = other.bucketOf(other.minMs); i <= hi; i++) a[i] += b[i];
    this.samples += other.samples;
    this.total += other.total;
    this.sumMs += other.sumMs;
    if (other.maxMs > this.maxMs) this.maxMs = other.maxMs;
    if (other.minMs < this.minMs) this.minMs = other.minMs;
  }

  /** Forgets everything. */
  reset(): void {
    this.counts.fill(0);
    this.samples = 0;
    this.total = 0;
    this.sumMs = 0;
    this.maxMs = 0;
    this.minMs = Infinity;
  }

  /** The weighted mean in ms, 0 when empty. */
  meanMs(): number {
    return this.total === 0 ? 0 : this.sumMs / this.total;
  }

  /**
   * Writes the estimated (weighted) nearest-rank quantiles for `qs` (ascending, in (0, 1]) into
   * `out`, in one pass over the occupied buckets. Empty histogram: zeros.
   */
  quantilesInto(qs: readonly number[], out: Float64Array | number[]): void {
    const total = this.total;
    if (total === 0) {
      for (let k = 0; k < qs.length; k++) out[k] = 0;
      return;
    }
    const counts = this.counts;
    let i = this.bucketOf(this.minMs);
    const last = this.bucketOf(this.maxMs);
    let seen = 0;
    for (let k = 0; k < qs.length; k++) {
      // Nearest rank: the smallest value with at least ceil(q * total) of the weight at or below it.
      const rank = Math.max(1, Math.ceil(qs[k] * total));
      if (rank >= total) {
        out[k] = this.maxMs; // the top rank is the exact maximum
        continue;
      }
      while (i < last && seen + counts[i] < rank) seen += counts[i++];
      out[k] = this.#representative(i);
    }
  }

  /** One estimated quantile (see {@linkcode quantilesInto}). */
  quantile(q: number): number {
    const out = [0];
    this.quantilesInto([q], out);
    return out[0];
  }

  /** Bucket midpoint, clamped to the exact extremes (so p100 is the max and tiny spreads are exact). */
  #representative(i: number): number {
    let mid = 0;
    if (i > 0) {
      const base = 2 ** (((i - 1) >>> SUB_BITS) + MIN_EXP);
      mid = base + (base / SUB_COUNT) * (((i - 1) & SUB_MASK) + 0.5);
    }
    if (mid > this.maxMs) return this.maxMs;
    if (mid < this.minMs) return this.minMs;
    return mid;
  }
}

/**
 * Sums over a rolling window of fixed slots (default 10 slots of 1 s): O(1) add, and a rate over the
 * window as it stands at any later time. Amounts are attributed to the slot of the time they are
 * added at; slots older than the window are cleared lazily as time moves on.
 */
export class RollingSum {
  readonly #slots: Float64Array;
  readonly #slotMs: number;
  readonly #originMs: number;
  /** Absolute index (floor(time / slotMs)) of the newest slot. */
  #head: number;

  constructor(originMs: number, slotCount = 10, slotMs = 1000) {
    this.#slots = new Float64Array(slotCount);
    this.#slotMs = slotMs;
    this.#originMs = originMs;
    this.#head = Math.floor(originMs / slotMs);
  }

  /** The window length in ms. */
  get windowMs(): number {
    return this.#slots.length * this.#slotMs;
  }

  #roll(timeMs: number): void {
    const slot = Math.floor(timeMs / this.#slotMs);
    const head = this.#head;
    if (!(slot > head)) return; // same slot, or time went backwards: keep the newest slot
    const slots = this.#slots;
    const n = slots.length;
    if (slot - head >= n) slots.fill(0);
    else for (let s = head + 1; s <= slot; s++) slots[s % n] = 0;
    this.#head = slot;
  }

  /**
   * Adds `amount` at `timeMs`: to its slot if that is still in the window (time may lag behind
   * the newest slot), to nothing if it is older than the window (it would not count anyway).
   */
  add(timeMs: number, amount: number): void {
    this.#roll(timeMs);
    const slot = Math.floor(timeMs / this.#slotMs);
    const n = this.#slots.length;
    if (this.#head - slot < n) this.#slots[(slot > this.#head ? this.#head : slot) % n] += amount;
  }

  /** The total within the window ending at `nowMs`. */
  sum(nowMs: number): number {
    this.#roll(nowMs);
    let total = 0;
    const slots = this.#slots;
    for (let k = 0; k < slots.length; k++) total += slots[k];
    return total;
  }

  /**
   * How much time the window ending at `nowMs` spans: the current partial slot plus the full older
   * slots (between 9 and 10 slots), but never before the origin (a young window is shorter).
   */
  coveredMs(nowMs: number): number {
    this.#roll(nowMs);
    const startMs = Math.max(this.#originMs, (this.#head - this.#slots.length + 1) * this.#slotMs);
    const spanMs = nowMs - startMs;
    return spanMs > 0 ? spanMs : 0;
  }

  /** Amount per second over the window ending at `nowMs`; 0 when the window spans no time. */
  perSecond(nowMs: number): number {
    const spanMs = this.coveredMs(nowMs);
    return spanMs > 0 ? this.sum(nowMs) * 1000 / spanMs : 0;
  }
}
