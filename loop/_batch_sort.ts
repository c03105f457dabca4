// The sort behind the timer store's batches (see `sortBatch` in _timer_store.ts): a batch's
// deadlines with the index of each entry, sorted by deadline, ties in the order given.
//
// A stable sort on the deadline alone is enough: the intake holds its entries in the order they
// were armed, which is the order of their sequences, so ties come out in sequence order without
// carrying the sequences through the sort (when the order given is not the sequences' order,
// `sortTiesBySequence` settles the ties after). Carrying two arrays instead of three through the
// scatter pass, and scattering into the caller's arrays rather than a scratch copied back, halved
// the sort (about 30 to 16 ns a timer for 100k distinct deadlines here).

/** Deadlines and where each came from, by index: what the sort reads or writes. */
export interface SortKeys {
  deadlines: Float64Array;
  indices: Int32Array;
}

/**
 * The sort's working space, as large as the largest batch sorted lately: kept by the store,
 * because fresh typed arrays of 100k items cost more to allocate (zeroing, page faults) than the
 * sort itself.
 */
export interface SortScratch extends SortKeys {
  /** Each item's bucket. */
  buckets: Int32Array;
}

/** Items sorted by insertion; more are spread into buckets first. */
const INSERTION_SORT_LIMIT = 24;
/** Bucket passes before a range that will not spread out is left to a comparison sort. */
const BUCKET_DEPTH_LIMIT = 6;

/**
 * Sorts the `count` items of `from` by deadline into `to` (ties stay in the order of `from`,
 * which is left scrambled). A bucket sort: one pass spreads the items into about one bucket per
 * 8 by where their deadline falls between the least and the greatest, small buckets are finished
 * by insertion sort, larger ones sorted the same way in turn. Timer deadlines are spread smoothly
 * enough for this to take a few linear passes over contiguous typed arrays; a range that keeps
 * clustering goes to a comparison sort after {@linkcode BUCKET_DEPTH_LIMIT} passes.
 */
export function sortByDeadline(
  from: SortKeys,
  to: SortKeys,
  buckets: Int32Array,
  count: number,
): void {
  spreadInto(from, to, buckets, 0, count, 0);
}

/** Sorts [start, end) of `from` into the same range of `to`, which `from` may then not keep. */
function spreadInto(
  from: SortKeys,
  to: SortKeys,
  bucketOf: Int32Array,
  start: number,
  end: number,
  depth: number,
): void {
  const deadlines = from.deadlines;
  const indices = from.indices;
  const sortedDeadlines = to.deadlines;
  const sortedIndices = to.indices;
  const count = end - start;
  if (count <= INSERTION_SORT_LIMIT || depth >= BUCKET_DEPTH_LIMIT) {
    sortedDeadlines.set(deadlines.subarray(start, end), start);
    sortedIndices.set(indices.subarray(start, end), start);
    if (count <= INSERTION_SORT_LIMIT) insertionSort(to, start, end);
    else comparisonSort(to, start, end);
    return;
  }
  let minMs = Infinity;
  let maxMs = -Infinity;
  for (let i = start; i < end; i++) {
    const deadlineMs = deadlines[i];
    if (deadlineMs < minMs) minMs = deadlineMs;
    if (deadlineMs > maxMs) maxMs = deadlineMs;
  }
  let ways = 16;
  while (ways * 8 < count && ways < 65536) ways *= 2;
  const scale = ways / (maxMs - minMs);
  if (!(scale < Infinity)) {
    // One deadline: already in order.
    sortedDeadlines.set(deadlines.subarray(start, end), start);
    sortedIndices.set(indices.subarray(start, end), start);
    return;
  }
  // Count each bucket's items, then scatter them (stably) into `to`.
  const starts = new Int32Array(ways + 1);
  const last = ways - 1;
  for (let i = start; i < end; i++) {
    // Monotonic in the deadline, and in [0, ways) (the scale is finite, the deadlines are too).
    const t = (deadlines[i] - minMs) * scale;
    const bucket = t < last ? t | 0 : last;
    bucketOf[i] = bucket;
    starts[bucket + 1]++;
  }
  for (let b = 0; b < ways; b++) starts[b + 1] += starts[b];
  const next = starts.slice(0, ways);
  for (let i = start; i < end; i++) {
    const place = start + next[bucketOf[i]]++;
    sortedDeadlines[place] = deadlines[i];
    sortedIndices[place] = indices[i];
  }
  for (let b = 0; b < ways; b++) {
    const low = start + starts[b];
    const high = start + starts[b + 1];
    const size = high - low;
    if (size <= 1) continue;
    if (size <= INSERTION_SORT_LIMIT) insertionSort(to, low, high);
    else {
      // Through `from`'s range (free now) and back.
      spreadInto(to, from, bucketOf, low, high, depth + 1);
      sortedDeadlines.set(deadlines.subarray(low, high), low);
      sortedIndices.set(indices.subarray(low, high), low);
    }
  }
}

/** Stable: an item stops at an equal deadline. */
function insertionSort(keys: SortKeys, start: number, end: number): void {
  const { deadlines, indices } = keys;
  for (let i = start + 1; i < end; i++) {
    const deadlineMs = deadlines[i];
    const index = indices[i];
    let j = i;
    while (j > start && deadlineMs < deadlines[j - 1]) {
      deadlines[j] = deadlines[j - 1];
      indices[j] = indices[j - 1];
      j--;
    }
    deadlines[j] = deadlineMs;
    indices[j] = index;
  }
}

/** Stable too (Array.prototype.sort is), for ranges the buckets do not spread. */
function comparisonSort(keys: SortKeys, start: number, end: number): void {
  sortRangeBy(keys.deadlines, keys.indices, start, end);
}

/** Sorts [start, end) of `values`, and of `indices` with them, by value (stable). */
function sortRangeBy(values: Float64Array, indices: Int32Array, start: number, end: number): void {
  const places = Array.from({ length: end - start }, (_, i) => start + i);
  places.sort((a, b) => values[a] - values[b]);
  const sortedValues = places.map((place) => values[place]);
  const sortedIndices = places.map((place) => indices[place]);
  values.set(sortedValues, start);
  indices.set(sortedIndices, start);
}

/**
 * Puts items of equal deadline in sequence order, for a sort whose input was not in sequence
 * order: `sequences` is beside the sorted keys, and is permuted with them.
 */
export function sortTiesBySequence(
  keys: SortKeys,
  sequences: Float64Array,
  count: number,
): void {
  const { deadlines, indices } = keys;
  let tieStart = 0;
  for (let i = 1; i <= count; i++) {
    if (i < count && deadlines[i] === deadlines[tieStart]) continue;
    if (i - tieStart > 1 && !increasing(sequences, tieStart, i)) {
      sortRangeBy(sequences, indices, tieStart, i);
    }
    tieStart = i;
  }
}

function increasing(values: Float64Array, start: number, end: number): boolean {
  for (let i = start + 1; i < end; i++) if (values[i] < values[i - 1]) return false;
  return true;
}
