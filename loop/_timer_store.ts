// The pending timers, stored as libuv and Node store them: one FIFO run per duration. Timers of
// one duration armed from a clock that never goes back come due in the order they were armed, so
// appending keeps each run sorted for free; a small indexed 4-ary min-heap orders the RUNS by
// their heads' (deadline, sequence), or a lower bound of it once the head was cancelled (settled
// when the run reaches the top). Insert and cancel are O(1); taking the next due timer is
// O(log R) for R runs (distinct durations, usually few), and its sifts touch only typed arrays.
//
// A run is a ring buffer, not a linked list: entries at absolute positions [head, tail), the
// entry at `p & mask`, its key in a Float64Array beside it. Walking a linked list chases one
// pointer per timer through memory laid out in scheduling order, not firing order, a cache miss
// each, one after the other (~150 ns a timer with 100k pending over 1000 durations); a ring hands
// out the next timers' addresses at once and keeps the keys the heap compares off the timers. A
// cancelled entry leaves a hole that the head and tail skip; a run full of holes is compacted
// when it would otherwise grow, so holes cost amortised O(1). An entry only knows its run and its
// position: the timer objects carry no key, so they are smaller and a sift never touches them.
//
// Out of order (an interval re-armed from its old deadline, a refresh with another base, a timer
// set aside during a pass and put back), an entry goes in at the head, or after a scan back from
// the tail of at most `scanLimit` positions (moving the few entries after it). Further out of
// order, and for durations beyond the first `maxRuns` distinct ones (random float delays would
// otherwise make a run per timer), entries are appended to the intake: an unsorted run keyed by
// its least entry. When it surfaces (its least entry is due, or was cancelled), a few entries go
// to the overflow, a plain 4-ary heap of entries ordered among the runs by its minimum; with more,
// the intake itself becomes a batch: its keys are sorted with their indices (a bucket sort over
// typed arrays, see `_batch_sort.ts`), its entries stay where they are, and it drains in that order
// like a duration's run while a spare run takes over as the intake. A heap of 100k timers costs a
// few cache misses a timer: its sifts jump around a large array and write the index of each entry
// they move; a batch is sorted in a few linear passes and writes to no entry.
//
// Taking an entry off a run does not write to the entry, and a run keeps each entry's `payload`
// beside it (for timers: the callback of a plain timeout), read as the entry is taken off, so a
// timer pass can run most timers without touching them: timer objects lie in scheduling order,
// not firing order, and that first touch was a cache miss per timer, most of the cost of firing
// 100k timers. The payloads are a second array written in the same order as the entries, so an
// insert or a pop costs one more store to a cache line it was about to touch anyway. So an
// entry's `run` and `slot` may be stale once it left a run: {@linkcode TimerStore.holds} is the
// truth (the entry is still where they point).

import {
  sortByDeadline,
  type SortKeys,
  type SortScratch,
  sortTiesBySequence,
} from "./_batch_sort.ts";

/** What the store needs of an entry: two fields it owns, and one it reads as the entry goes in. */
export interface StoreEntry {
  /**
   * The run holding the entry; null when it was removed (or never stored). After a pass took it
   * off a run it still names that run: see {@linkcode TimerStore.holds}.
   */
  run: TimerRun | null;
  /** Its absolute position in the run (its index in the overflow heap). */
  slot: number;
  /**
   * What a pass taking the entry off needs of it, kept beside it (see
   * {@linkcode TimerRun.payloads}); undefined: the pass reads the entry. Read as the entry goes in.
   */
  readonly payload: unknown;
}

const INITIAL_CAPACITY = 4;

/** The smallest power of two from INITIAL_CAPACITY up with room for `count`. */
function capacityFor(count: number): number {
  let capacity = INITIAL_CAPACITY;
  while (capacity < count) capacity *= 2;
  return capacity;
}
/** The sort arrays of a run that is no indirect batch (never written: they have no room). */
const NO_ORDER = new Int32Array(0);
const NO_KEYS = new Float64Array(0);

/** The store's tuning (tests make them small to reach every path). */
export interface StoreLimits {
  /** Positions scanned back from the tail before an out-of-order entry goes to the overflow. */
  scanLimit: number;
  /** Runs kept by duration; later durations share the overflow heap. */
  maxRuns: number;
  /** Emptied runs kept for reuse (a timeout chain, a refresh) before a sweep drops them. */
  emptyRunsKept: number;
  /** Capacity from which a run that is mostly empty gives memory back. */
  shrinkCapacity: number;
  /** Positions stay Smis: a run that never empties is rebased before its tail reaches this. */
  positionLimit: number;
  /**
   * The intake surfacing with at most this many entries moves them to the overflow heap; more
   * are sorted into a batch run.
   */
  sortLimit: number;
  /** Emptied batch runs kept for reuse. */
  batchesKept: number;
}

const DEFAULT_LIMITS: StoreLimits = {
  scanLimit: 16,
  maxRuns: 1024,
  emptyRunsKept: 1024,
  shrinkCapacity: 256,
  positionLimit: 1 << 30,
  sortLimit: 32,
  batchesKept: 64,
};

/** A run of entries: a duration's, a sorted batch, the unsorted intake, or the overflow heap. */
export class TimerRun {
  /** Ring storage: the entry at position p is `nodes[p & mask]`, its key `keys[2 * (p & mask)]`. */
  nodes: (StoreEntry | undefined)[];
  keys: Float64Array;
  mask: number;
  head = 0;
  tail = 0;
  /** Stored entries (the holes left by cancels excluded). */
  live = 0;
  /**
   * Each entry's payload (see {@linkcode StoreEntry.payload}) by index, beside `nodes`: read as an
   * entry is taken off (see {@linkcode TimerStore.shiftedPayload}) without touching the entry.
   * Unused by the overflow heap.
   */
  payloads: unknown[];
  /**
   * Whether the entries are in (deadlineMs, sequence) order: all but the intake (see
   * {@linkcode TimerStore.settleUnsorted}).
   */
  sorted = true;
  /**
   * For the intake: its heap key is its least entry's, not just a lower bound (that entry was
   * not removed since).
   */
  exact = true;
  /**
   * A batch sorted by an index: the intake it was, its entries left where the intake put them
   * (their `run` and `slot` stay right, so sorting writes to no entry). The entry at place c
   * is `nodes[order[c]]` (undefined once taken off or removed), its key `sortedDeadlines[c]`,
   * `sortedSequences[c]`; `head` and `tail` are places, [head, tail) the ones left.
   */
  indirect = false;
  order: Int32Array = NO_ORDER;
  sortedDeadlines: Float64Array = NO_KEYS;
  sortedSequences: Float64Array = NO_KEYS;
  /** The duration key (NaN for the overflow, the intake and batches). */
  readonly key: number;
  /** Its index in the store's tables (reused once the run is dropped). */
  readonly id: number;

  constructor(key: number, capacity: number, id: number) {
    this.key = key;
    this.id = id;
    this.nodes = new Array(capacity).fill(undefined);
    this.payloads = new Array(capacity).fill(undefined);
    this.keys = new Float64Array(capacity * 2);
    this.mask = capacity - 1;
  }
}

/** A stored key pair, for reports. */
export interface StoredTimer<T> {
  entry: T;
  deadlineMs: number;
  sequence: number;
}

/**
 * The smallest of the (up to four) children from `first` in a 4-ary heap of (deadline, sequence)
 * pairs stored flat in `keys`; `first < length`. Both heaps of the store sift down through it.
 */
function smallestChild(keys: Float64Array, first: number, length: number): number {
  let best = first;
  let bestDeadlineMs = keys[first << 1];
  let bestSequence = keys[(first << 1) + 1];
  const end = first + 4 < length ? first + 4 : length;
  for (let child = first + 1; child < end; child++) {
    const deadlineMs = keys[child << 1];
    const sequence = keys[(child << 1) + 1];
    if (deadlineMs < bestDeadlineMs || (deadlineMs === bestDeadlineMs && sequence < bestSequence)) {
      best = child;
      bestDeadlineMs = deadlineMs;
      bestSequence = sequence;
    }
  }
  return best;
}

// The batch's two gathering loops are functions of their own: in sortBatch, which runs once per
// batch, V8 compiled each loop on stack (OSR) before the code after it had ever run, and that
// code then bailed out of the compiled function on every later batch (a deopt loop seen in about
// half the runs of the distinct-delay benchmark).

/**
 * Copies the deadline and index of each live entry of the unsorted `run` into `into`, in the
 * run's order: the order the entries were armed in, unless some went in out of order. Returns
 * whether their sequences came in order (see sortTiesBySequence).
 */
function gatherLive(run: TimerRun, into: SortKeys): boolean {
  const { nodes, keys, mask, head, tail } = run;
  const deadlines = into.deadlines;
  const indices = into.indices;
  let inSequenceOrder = true;
  let lastSequence = -Infinity;
  let i = 0;
  for (let p = head; p < tail; p++) {
    const index = p & mask;
    if (nodes[index] === undefined) continue;
    const sequence = keys[(index << 1) + 1];
    if (sequence < lastSequence) inSequenceOrder = false;
    lastSequence = sequence;
    deadlines[i] = keys[index << 1];
    indices[i] = index;
    i++;
  }
  return inSequenceOrder;
}

/** The sequences of the entries at `order[0..count)`, from their keys, into `sequences`. */
function gatherSequences(
  keys: Float64Array,
  order: Int32Array,
  sequences: Float64Array,
  count: number,
): void {
  for (let k = 0; k < count; k++) sequences[k] = keys[(order[k] << 1) + 1];
}

/** The store: entries by (deadlineMs, sequence), FIFO among equal deadlines. */
export class TimerStore<T extends StoreEntry> {
  readonly scanLimit: number;
  readonly maxRuns: number;
  readonly emptyRunsKept: number;
  readonly shrinkCapacity: number;
  readonly positionLimit: number;
  readonly sortLimit: number;
  readonly batchesKept: number;
  /** Stored entries. */
  size = 0;
  /** The runs by id. */
  readonly runs: (TimerRun | undefined)[] = [];
  readonly freeIds: number[] = [];
  // The non-empty runs, a min-heap on their first entries' (deadlineMs, sequence), all in typed
  // arrays so that a sift touches no run: run ids and (deadlineMs, sequence) pairs by position,
  // and each run's position by id (-1 when it is empty).
  heapLength = 0;
  heapIds: Int32Array = new Int32Array(16);
  heapKeys: Float64Array = new Float64Array(32);
  heapPositions: Int32Array = new Int32Array(16);
  /** Where small batches from the intake go: a heap of entries. */
  readonly overflow: TimerRun = this.newRun(NaN);
  /**
   * Where the long tail of durations and far out-of-order entries go: an unsorted run, its heap
   * key its least entry's. When it surfaces with many entries it becomes a batch (sorted by an
   * index, see {@linkcode TimerRun.indirect}) and a spare run becomes the intake.
   */
  intake: TimerRun = this.newIntake();
  /**
   * Emptied batch runs kept for reuse as the intake. At most one keeps a large storage, on top:
   * the next intake takes it, so a burst of distinct durations that recurs reuses its arrays.
   */
  readonly spareBatches: TimerRun[] = [];
  /** See {@linkcode SortScratch}; grown on demand, given back when far larger than a batch. */
  scratch: SortScratch = { deadlines: NO_KEYS, indices: NO_ORDER, buckets: NO_ORDER };
  /** The key of the entry `shiftDue()` returned last. */
  shiftedDeadlineMs = 0;
  shiftedSequence = 0;
  /** Its payload as stored with it (undefined from the overflow heap). */
  shiftedPayload: unknown = undefined;
  // The runs by duration: open addressing with linear probing, keys in a typed array. A Map hashes
  // a non-integer number key slowly (~50 ns a lookup); this takes a few.
  slots: (TimerRun | undefined)[] = new Array(16).fill(undefined);
  slotKeys: Float64Array = new Float64Array(16);
  runCount = 0;
  /** Runs in the table that are empty (kept for reuse until there are too many). */
  emptyRuns = 0;
  /** A one-entry cache in front of the table: timers tend to come in runs of one duration. */
  lastKey = NaN;
  lastRun: TimerRun | null = null;

  constructor(limits?: Partial<StoreLimits>) {
    const {
      scanLimit,
      maxRuns,
      emptyRunsKept,
      shrinkCapacity,
      positionLimit,
      sortLimit,
      batchesKept,
    } = { ...DEFAULT_LIMITS, ...limits };
    this.scanLimit = scanLimit;
    this.maxRuns = maxRuns;
    this.emptyRunsKept = emptyRunsKept;
    this.shrinkCapacity = shrinkCapacity;
    this.positionLimit = positionLimit;
    this.sortLimit = sortLimit;
    this.batchesKept = batchesKept;
  }

  /** Whether `entry` is stored (its `run` and `slot` may be stale once a pass took it). */
  holds(entry: T): boolean {
    const run = entry.run;
    if (run === null) return false;
    return run.nodes[run === this.overflow ? entry.slot : entry.slot & run.mask] === entry;
  }

  /** Forgets the payload stored with a stored `entry`: the entry's own changed. */
  unshare(entry: T): void {
    const run = entry.run;
    if (run !== this.overflow && this.holds(entry)) {
      run!.payloads[entry.slot & run!.mask] = undefined;
    }
  }

  /** The earliest deadline, or Infinity when empty. */
  firstDeadlineMs(): number {
    if (this.heapLength === 0) return Infinity;
    this.settleTop();
    return this.heapKeys[0];
  }

  /**
   * Makes the top of the heap of runs exact. A run's heap key is a lower bound of its first
   * entry's key: cancelling a run's first entry leaves the key as it was (no sift: cancels come
   * in scheduling order, a head each, and most cancelled runs never reach the top), and the run
   * is sifted down to its place only once it surfaces.
   */
  settleTop(): void {
    for (;;) {
      // Read each time: settling the intake may make a run, which may grow the heap's tables.
      const heapKeys = this.heapKeys;
      const run = this.runs[this.heapIds[0]]!;
      if (run === this.overflow) return;
      if (!run.sorted) {
        if (run.exact) return;
        this.settleUnsorted(run);
        continue;
      }
      const deadlineMs = this.headDeadlineMs(run);
      const sequence = this.headSequence(run);
      if (deadlineMs === heapKeys[0] && sequence === heapKeys[1]) return;
      this.siftDown(run.id, deadlineMs, sequence, 0);
    }
  }

  /** The deadline of the first entry of the non-empty sorted `run`. */
  headDeadlineMs(run: TimerRun): number {
    return run.indirect ? run.sortedDeadlines[run.head] : run.keys[(run.head & run.mask) << 1];
  }

  /** The sequence of the first entry of the non-empty sorted `run`. */
  headSequence(run: TimerRun): number {
    return run.indirect
      ? run.sortedSequences[run.head]
      : run.keys[((run.head & run.mask) << 1) + 1];
  }

  /** The deadline of a stored entry. */
  deadlineOf(entry: T): number {
    const run = entry.run!;
    return run.keys[run === this.overflow ? entry.slot << 1 : (entry.slot & run.mask) << 1];
  }

  /** The sequence of a stored entry. */
  sequenceOf(entry: T): number {
    const run = entry.run!;
    return run.keys[(run === this.overflow ? entry.slot << 1 : (entry.slot & run.mask) << 1) + 1];
  }

  /**
   * Stores `entry` (not stored yet) with its key, in the run of `durationKey`: entries with the
   * same duration key should mostly arrive in (deadlineMs, sequence) order, which is what makes
   * the store fast; any order is correct.
   */
  insert(entry: T, durationKey: number, deadlineMs: number, sequence: number): void {
    let run = this.lastRun;
    if (durationKey !== this.lastKey || run === null) {
      run = this.lastRun = this.runFor(durationKey);
      this.lastKey = durationKey;
    }
    this.size++;
    if (run === this.intake) {
      this.intakePush(entry, deadlineMs, sequence);
      return;
    }
    if (run.live === 0) {
      this.emptyRuns--;
      this.fill(run, entry, deadlineMs, sequence);
      return;
    }
    const keys = run.keys;
    const last = ((run.tail - 1) & run.mask) << 1;
    if (
      deadlineMs > keys[last] || (deadlineMs === keys[last] && sequence > keys[last + 1])
    ) this.append(run, entry, deadlineMs, sequence);
    else this.insertSorted(run, entry, deadlineMs, sequence);
  }

  /** Puts `entry` in the empty `run`, which enters the heap with its key. */
  fill(run: TimerRun, entry: T, deadlineMs: number, sequence: number): void {
    run.nodes[0] = entry;
    run.payloads[0] = entry.payload;
    run.keys[0] = deadlineMs;
    run.keys[1] = sequence;
    run.head = 0;
    run.tail = 1;
    run.live = 1;
    entry.run = run;
    entry.slot = 0;
    this.pushRun(run, deadlineMs, sequence);
  }

  /** Appends `entry` at the tail of the non-empty `run` (making room if it is full). */
  append(run: TimerRun, entry: T, deadlineMs: number, sequence: number): void {
    let tail = run.tail;
    if (tail - run.head > run.mask || tail >= this.positionLimit) {
      this.relayout(run);
      tail = run.tail;
    }
    const index = tail & run.mask;
    run.nodes[index] = entry;
    run.payloads[index] = entry.payload;
    run.keys[index << 1] = deadlineMs;
    run.keys[(index << 1) + 1] = sequence;
    run.tail = tail + 1;
    run.live++;
    entry.run = run;
    entry.slot = tail;
  }

  /** Inserts `entry`, which sorts before the last entry of the non-empty `run`, at its place. */
  insertSorted(run: TimerRun, entry: T, deadlineMs: number, sequence: number): void {
    if (run.tail - run.head > run.mask || run.head <= -this.positionLimit) {
      this.relayout(run);
    }
    const nodes = run.nodes;
    const payloads = run.payloads;
    const keys = run.keys;
    const mask = run.mask;
    const first = (run.head & mask) << 1;
    if (deadlineMs < keys[first] || (deadlineMs === keys[first] && sequence < keys[first + 1])) {
      const position = run.head - 1;
      const index = position & mask;
      nodes[index] = entry;
      payloads[index] = entry.payload;
      keys[index << 1] = deadlineMs;
      keys[(index << 1) + 1] = sequence;
      run.head = position;
      run.live++;
      entry.run = run;
      entry.slot = position;
      // The heap key may be a lower bound already below this one (see settleTop).
      const at = this.heapPositions[run.id];
      const heapKeys = this.heapKeys;
      if (
        deadlineMs < heapKeys[at << 1] ||
        (deadlineMs === heapKeys[at << 1] && sequence < heapKeys[(at << 1) + 1])
      ) this.siftUp(run.id, deadlineMs, sequence, at);
      return;
    }
    // The entry goes after the last stored entry before it (the head at the latest): scan back.
    const tail = run.tail;
    let after = tail - 1;
    for (;;) {
      if (tail - after > this.scanLimit) {
        this.intakePush(entry, deadlineMs, sequence);
        return;
      }
      after--;
      const index = after & mask;
      if (nodes[index] === undefined) continue;
      const k = index << 1;
      if (deadlineMs > keys[k] || (deadlineMs === keys[k] && sequence > keys[k + 1])) break;
    }
    const position = after + 1;
    if (nodes[position & mask] !== undefined) {
      // Move the entries from `position` on one place later (a few: the scan was short).
      for (let p = tail; p > position; p--) {
        const to = p & mask;
        const from = (p - 1) & mask;
        const moved = nodes[from];
        nodes[to] = moved;
        payloads[to] = payloads[from];
        keys[to << 1] = keys[from << 1];
        keys[(to << 1) + 1] = keys[(from << 1) + 1];
        if (moved !== undefined) moved.slot = p;
      }
      run.tail = tail + 1;
    } // else a hole just there: fill it
    const index = position & mask;
    nodes[index] = entry;
    payloads[index] = entry.payload;
    keys[index << 1] = deadlineMs;
    keys[(index << 1) + 1] = sequence;
    run.live++;
    entry.run = run;
    entry.slot = position;
  }

  /** Removes `entry` if stored. */
  remove(entry: T): void {
    if (this.holds(entry)) this.removeHeld(entry);
  }

  /** Removes `entry`, which {@linkcode TimerStore.holds}. */
  removeHeld(entry: T): void {
    const run = entry.run!;
    entry.run = null;
    this.size--;
    if (run === this.overflow) {
      this.overflowRemove(entry.slot);
      return;
    }
    const position = entry.slot;
    const nodes = run.nodes;
    const mask = run.mask;
    nodes[position & mask] = undefined;
    run.payloads[position & mask] = undefined; // no callback kept alive by a cancelled timer
    if (--run.live === 0) {
      this.emptied(run);
      return;
    }
    if (run.indirect) {
      // Past the places whose entries are gone (none, unless this was the head's); the heap key
      // stays a lower bound (see settleTop).
      const order = run.order;
      let head = run.head;
      while (nodes[order[head]] === undefined) head++;
      run.head = head;
      if (mask >= this.shrinkCapacity && run.live * 8 <= mask) this.relayout(run);
      return;
    }
    if (!run.sorted && run.exact) {
      // Its least entry gone, the heap key is only a lower bound (settled when it surfaces).
      const k = (position & mask) << 1;
      const at = this.heapPositions[run.id] << 1;
      if (run.keys[k] === this.heapKeys[at] && run.keys[k + 1] === this.heapKeys[at + 1]) {
        run.exact = false;
      }
    }
    if (position === run.head) {
      // The run's heap key stays as a lower bound (see settleTop).
      let head = position + 1;
      while (nodes[head & mask] === undefined) head++;
      run.head = head;
    } else if (position === run.tail - 1) {
      let tail = position;
      while (nodes[(tail - 1) & mask] === undefined) tail--;
      run.tail = tail;
    }
    // The intake keeps its storage until it surfaces (see sortBatch): a burst of timers cancelled
    // and scheduled again (timeouts) would otherwise shrink and regrow it each time.
    if (mask >= this.shrinkCapacity && run.live * 8 <= mask && run !== this.intake) {
      this.relayout(run);
    }
  }

  /**
   * Removes and returns the first entry if its deadline is at or before `nowMs` (its key is left
   * in `shiftedDeadlineMs`/`shiftedSequence`), else returns null.
   */
  shiftDue(nowMs: number): T | null {
    if (this.heapLength === 0) return null;
    let heapKeys = this.heapKeys;
    let run: TimerRun;
    let position: number;
    for (;;) {
      if (heapKeys[0] > nowMs) return null;
      run = this.runs[this.heapIds[0]]!;
      if (run === this.overflow) {
        this.shiftedDeadlineMs = heapKeys[0];
        this.shiftedSequence = heapKeys[1];
        this.size--;
        const entry = run.nodes[0] as T;
        entry.run = null;
        this.shiftedPayload = undefined;
        this.overflowRemove(0);
        return entry;
      }
      if (!run.sorted) {
        this.settleUnsorted(run);
        heapKeys = this.heapKeys; // making a run may have grown the heap's tables
        continue;
      }
      position = run.head;
      const deadlineMs = this.headDeadlineMs(run);
      const sequence = this.headSequence(run);
      if (deadlineMs === heapKeys[0] && sequence === heapKeys[1]) break;
      this.siftDown(run.id, deadlineMs, sequence, 0); // a stale lower bound (see settleTop)
    }
    this.shiftedDeadlineMs = heapKeys[0];
    this.shiftedSequence = heapKeys[1];
    this.size--;
    // No write to the entry (see the top of the file): it still names this run, and `holds` sees
    // that its slot no longer holds it.
    const nodes = run.nodes;
    const mask = run.mask;
    const indirect = run.indirect;
    const index = indirect ? run.order[position] : position & mask;
    const entry = nodes[index] as T;
    nodes[index] = undefined;
    this.shiftedPayload = run.payloads[index];
    run.payloads[index] = undefined;
    if (--run.live === 0) this.emptied(run);
    else if (indirect) {
      // No shrinking as it drains: an emptied batch's storage is the next intake's.
      const order = run.order;
      let head = position + 1;
      while (nodes[order[head]] === undefined) head++;
      run.head = head;
      this.siftDown(run.id, run.sortedDeadlines[head], run.sortedSequences[head], 0);
    } else {
      let head = position + 1;
      while (nodes[head & mask] === undefined) head++;
      run.head = head;
      const k = (head & mask) << 1;
      this.siftDown(run.id, run.keys[k], run.keys[k + 1], 0);
      if (mask >= this.shrinkCapacity && run.live * 8 <= mask) this.relayout(run);
    }
    return entry;
  }

  /** Every stored entry with its key, in (deadlineMs, sequence) order. */
  sorted(): StoredTimer<T>[] {
    const stored: StoredTimer<T>[] = [];
    for (let i = 0; i < this.heapLength; i++) {
      const run = this.runs[this.heapIds[i]]!;
      const { nodes, keys, mask } = run;
      const from = run === this.overflow ? 0 : run.head;
      const to = run === this.overflow ? run.live : run.tail;
      for (let p = from; p < to; p++) {
        // (An indirect batch's keys are still where the intake put them too.)
        const index = run === this.overflow ? p : run.indirect ? run.order[p] : p & mask;
        const entry = nodes[index];
        if (entry !== undefined) {
          stored.push({
            entry: entry as T,
            deadlineMs: keys[index << 1],
            sequence: keys[(index << 1) + 1],
          });
        }
      }
    }
    return stored.sort((a, b) => a.deadlineMs - b.deadlineMs || a.sequence - b.sequence);
  }

  // ------------------------------------------------------------ runs

  /** A run emptied: out of the heap, kept for reuse (a duration's run, a batch) or not. */
  emptied(run: TimerRun): void {
    this.removeRun(this.heapPositions[run.id]);
    this.heapPositions[run.id] = -1;
    const sortedCount = run.indirect ? run.tail : 0;
    run.head = 0;
    run.tail = 0;
    if (run.key === run.key) {
      // A duration's run (the intake's and batches' keys are NaN). Swept once the empty ones outnumber the others (amortised O(1)).
      if (++this.emptyRuns > this.emptyRunsKept && this.emptyRuns > this.heapLength) this.sweep();
    } else if (run !== this.intake) this.releaseBatch(run, sortedCount);
  }

  /**
   * Gives `run` a storage fitting its entries (twice as many, at least the initial capacity),
   * holes squeezed out: in place when the capacity stays (a run churned by cancels and refreshes
   * allocates nothing), else in new arrays. Entries keep their positions up to the first hole, so
   * growing a run without holes touches no entry; positions far from zero start again near it.
   */
  relayout(run: TimerRun): void {
    if (run.indirect) {
      this.flatten(run);
      return;
    }
    const capacity = capacityFor(run.live * 2);
    const head = run.head;
    const limit = this.positionLimit / 2;
    const rebased = run.tail >= limit || head <= -limit ? 0 : head;
    const oldNodes = run.nodes;
    const oldPayloads = run.payloads;
    const oldKeys = run.keys;
    const oldMask = run.mask;
    const inPlace = capacity === oldMask + 1 && rebased === head;
    const nodes = inPlace ? oldNodes : new Array<StoreEntry | undefined>(capacity).fill(undefined);
    const payloads = inPlace ? oldPayloads : new Array<unknown>(capacity).fill(undefined);
    const keys = inPlace ? oldKeys : new Float64Array(capacity * 2);
    const mask = capacity - 1;
    // In place, entries only move to lower positions, onto slots already read.
    let position = rebased;
    for (let p = head; p < run.tail; p++) {
      const from = p & oldMask;
      const entry = oldNodes[from];
      if (entry === undefined) continue;
      if (position !== p || !inPlace) {
        const to = position & mask;
        nodes[to] = entry;
        payloads[to] = oldPayloads[from];
        keys[to << 1] = oldKeys[from << 1];
        keys[(to << 1) + 1] = oldKeys[(from << 1) + 1];
        if (position !== p) entry.slot = position;
      }
      position++;
    }
    if (inPlace) {
      for (let p = position; p < run.tail; p++) {
        nodes[p & mask] = undefined;
        payloads[p & mask] = undefined;
      }
    }
    run.nodes = nodes;
    run.payloads = payloads;
    run.keys = keys;
    run.mask = mask;
    run.head = rebased;
    run.tail = position;
  }

  /**
   * Makes an indirect batch (left mostly empty by removes) a plain run in a storage fitting its
   * entries, in their order from position 0.
   */
  flatten(run: TimerRun): void {
    const capacity = capacityFor(run.live * 2);
    const { nodes: oldNodes, payloads: oldPayloads, order, sortedDeadlines, sortedSequences } = run;
    const nodes = new Array<StoreEntry | undefined>(capacity).fill(undefined);
    const payloads = new Array<unknown>(capacity).fill(undefined);
    const keys = new Float64Array(capacity * 2);
    let position = 0;
    for (let place = run.head; place < run.tail; place++) {
      const from = order[place];
      const entry = oldNodes[from];
      if (entry === undefined) continue;
      nodes[position] = entry;
      payloads[position] = oldPayloads[from];
      keys[position << 1] = sortedDeadlines[place];
      keys[(position << 1) + 1] = sortedSequences[place];
      entry.slot = position;
      position++;
    }
    run.nodes = nodes;
    run.payloads = payloads;
    run.keys = keys;
    run.mask = capacity - 1;
    run.head = 0;
    run.tail = position;
    run.indirect = false;
    run.order = NO_ORDER;
    run.sortedDeadlines = NO_KEYS;
    run.sortedSequences = NO_KEYS;
  }

  /** The run of `key`, created (empty) if there is none; the overflow when there are too many. */
  runFor(key: number): TimerRun {
    const slots = this.slots;
    const slotKeys = this.slotKeys;
    const mask = slots.length - 1;
    for (let index = this.hash(key) & mask;; index = (index + 1) & mask) {
      const run = slots[index];
      if (run === undefined) break;
      if (slotKeys[index] === key) return run;
    }
    if (this.runCount >= this.maxRuns) {
      if (this.emptyRuns < this.maxRuns / 4) return this.intake;
      this.sweep();
    }
    const run = this.newRun(key);
    this.emptyRuns++;
    if ((this.runCount + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2, true);
    this.runCount++;
    this.place(run);
    return run;
  }

  /** A hash of a duration from its value in 2^-20 ms steps (keys closer than that collide). */
  hash(key: number): number {
    const steps = key * 1048576; // -0 and 0 alike
    const h = (steps | 0) ^ Math.imul((steps / 4294967296) | 0, 0x85ebca6b);
    return Math.imul(h ^ (h >>> 15), 0x9e3779b1) >>> 8;
  }

  place(run: TimerRun): void {
    const slots = this.slots;
    const mask = slots.length - 1;
    let index = this.hash(run.key) & mask;
    while (slots[index] !== undefined) index = (index + 1) & mask;
    slots[index] = run;
    this.slotKeys[index] = run.key;
  }

  /** Drops the empty runs from the table. */
  sweep(): void {
    this.rehash(this.slots.length, false);
    this.emptyRuns = 0;
    this.lastKey = NaN;
    this.lastRun = null;
  }

  /** Rebuilds the table with about `capacity` slots, without its empty runs unless `keepEmpty`. */
  rehash(capacity: number, keepEmpty: boolean): void {
    const old = this.slots;
    let count = 0;
    for (const run of old) if (run !== undefined && (keepEmpty || run.live !== 0)) count++;
    while (capacity > 16 && count * 4 < capacity) capacity >>= 1;
    this.slots = new Array(capacity).fill(undefined);
    this.slotKeys = new Float64Array(capacity);
    this.runCount = count;
    for (const run of old) {
      if (run === undefined) continue;
      if (keepEmpty || run.live !== 0) this.place(run);
      else {
        this.runs[run.id] = undefined;
        this.freeIds.push(run.id);
        this.dropStorage(run);
      }
    }
  }

  // ------------------------------------------------------------ the intake and its batches

  /** The intake: an unsorted run, out of the table. */
  newIntake(): TimerRun {
    const run = this.newRun(NaN);
    run.sorted = false;
    return run;
  }

  /** Appends `entry` to the intake (`size` already counted). */
  intakePush(entry: T, deadlineMs: number, sequence: number): void {
    const run = this.intake;
    if (run.live === 0) {
      run.exact = true;
      this.fill(run, entry, deadlineMs, sequence);
      return;
    }
    this.append(run, entry, deadlineMs, sequence);
    // The heap key stays the least entry's (below a stale lower bound, this one is the least).
    const at = this.heapPositions[run.id];
    const heapKeys = this.heapKeys;
    if (
      deadlineMs < heapKeys[at << 1] ||
      (deadlineMs === heapKeys[at << 1] && sequence < heapKeys[(at << 1) + 1])
    ) {
      run.exact = true;
      this.siftUp(run.id, deadlineMs, sequence, at);
    }
  }

  /**
   * Settles the intake at the top of the heap: a few entries go to the overflow heap (so that a
   * trickle of distinct durations does not make a run per timer); with more, the intake becomes a
   * batch, which drains like a duration's run (a batch costs fewer cache misses than a heap: see
   * the top of the file).
   */
  settleUnsorted(run: TimerRun): void {
    const count = run.live;
    if (count > this.sortLimit) {
      this.sortBatch(run);
      return;
    }
    this.spill(run);
    // Emptied: it keeps a storage that fits batches like this one.
    if (run.mask >= this.shrinkCapacity && count * 4 <= run.mask) this.dropStorage(run);
  }

  /** Moves the intake's entries to the overflow heap, and empties it. */
  spill(run: TimerRun): void {
    const { nodes, payloads, keys, mask, head, tail } = run;
    for (let p = head; p < tail; p++) {
      const index = p & mask;
      const entry = nodes[index];
      if (entry === undefined) continue;
      nodes[index] = undefined;
      payloads[index] = undefined; // the overflow heap keeps none
      this.overflowPush(entry as T, keys[index << 1], keys[(index << 1) + 1]);
    }
    run.live = 0;
    this.emptied(run);
  }

  /**
   * Turns the intake (at the top of the heap) into an indirect batch: its keys are sorted with
   * their indices (see {@linkcode TimerRun.indirect}), no entry moves or is written, and a spare
   * run becomes the intake. Writing each entry into a batch of its own cost more than the sort:
   * a scattered store and a write barrier per entry, and one more to the entry itself.
   */
  sortBatch(run: TimerRun): void {
    const keys = run.keys;
    const count = run.live;
    const next = this.spareBatches.pop() ?? this.newRun(NaN);
    if (run.order.length < count) {
      if (next.order.length >= count) {
        // The spare's sort arrays fit: they move here; this run's, too small, go there.
        const { order, sortedDeadlines, sortedSequences } = next;
        next.order = run.order;
        next.sortedDeadlines = run.sortedDeadlines;
        next.sortedSequences = run.sortedSequences;
        run.order = order;
        run.sortedDeadlines = sortedDeadlines;
        run.sortedSequences = sortedSequences;
      } else {
        const capacity = capacityFor(count);
        run.order = new Int32Array(capacity);
        run.sortedDeadlines = new Float64Array(capacity);
        run.sortedSequences = new Float64Array(capacity);
      }
    }
    const { order, sortedDeadlines, sortedSequences } = run;
    const scratch = this.scratchFor(count);
    const inSequenceOrder = gatherLive(run, scratch);
    const sorted = { deadlines: sortedDeadlines, indices: order };
    sortByDeadline(scratch, sorted, scratch.buckets, count);
    gatherSequences(keys, order, sortedSequences, count);
    if (!inSequenceOrder) sortTiesBySequence(sorted, sortedSequences, count);
    run.indirect = true;
    run.sorted = true;
    run.head = 0;
    run.tail = count;
    next.sorted = false;
    next.exact = true;
    this.intake = next;
    // The one-entry cache may name this run as the intake of a duration key.
    if (this.lastRun === run) {
      this.lastRun = null;
      this.lastKey = NaN;
    }
    // Its key in the heap was the intake's, maybe only a lower bound: now exact.
    this.siftDown(run.id, sortedDeadlines[0], sortedSequences[0], this.heapPositions[run.id]);
  }

  /** The sort's scratch, with room for `count` items (new when too small, or far too large). */
  scratchFor(count: number): SortScratch {
    const length = this.scratch.buckets.length;
    if (length >= count && (length < this.shrinkCapacity || count * 4 > length)) {
      return this.scratch;
    }
    const capacity = capacityFor(count);
    return this.scratch = {
      deadlines: new Float64Array(capacity),
      indices: new Int32Array(capacity),
      buckets: new Int32Array(capacity),
    };
  }

  /**
   * An emptied batch, `sortedCount` entries when sorted (0 if it was flattened): kept for reuse
   * as an intake, or dropped. It keeps a large storage only if its batch used a quarter of it and
   * no other spare keeps one; that one stays on top, for the next intake.
   */
  releaseBatch(run: TimerRun, sortedCount: number): void {
    run.indirect = false;
    const spares = this.spareBatches;
    if (spares.length >= this.batchesKept) {
      this.runs[run.id] = undefined;
      this.freeIds.push(run.id);
      this.dropStorage(run);
      return;
    }
    const large = this.shrinkCapacity;
    const top = spares.length === 0 ? undefined : spares[spares.length - 1];
    const topKeeps = top !== undefined && top.mask >= large;
    if (run.mask >= large && (topKeeps || sortedCount * 4 <= run.mask)) this.dropStorage(run);
    if (topKeeps) {
      spares.push(top);
      spares[spares.length - 2] = run;
    } else spares.push(run);
  }

  /**
   * Gives an empty run the smallest storage. Timers that fired from a dropped run still name it
   * (until re-armed): leave them little to keep.
   */
  dropStorage(run: TimerRun): void {
    run.nodes = [undefined];
    run.payloads = [undefined];
    run.keys = new Float64Array(2);
    run.mask = 0;
    run.order = NO_ORDER;
    run.sortedDeadlines = NO_KEYS;
    run.sortedSequences = NO_KEYS;
  }

  // ------------------------------------------------------------ the overflow heap

  overflowPush(entry: T, deadlineMs: number, sequence: number): void {
    const run = this.overflow;
    const index = run.live;
    if (index > run.mask) this.resizeOverflow(run, true);
    run.live = index + 1;
    entry.run = run;
    this.overflowSiftUp(entry, deadlineMs, sequence, index);
    if (index === 0) this.pushRun(run, deadlineMs, sequence);
    else if (entry.slot === 0) {
      this.siftUp(run.id, deadlineMs, sequence, this.heapPositions[run.id]);
    }
  }

  /** Doubles or halves the overflow's storage (entries keep their indices). */
  resizeOverflow(run: TimerRun, grow: boolean): void {
    const capacity = grow ? (run.mask + 1) * 2 : (run.mask + 1) / 2;
    const nodes: (StoreEntry | undefined)[] = new Array(capacity).fill(undefined);
    const keys = new Float64Array(capacity * 2);
    for (let i = 0; i < run.live; i++) nodes[i] = run.nodes[i];
    keys.set(run.keys.subarray(0, run.live * 2));
    run.nodes = nodes;
    run.keys = keys;
    run.mask = capacity - 1;
  }

  /** Removes the overflow entry at `index` (its `run` already cleared, `size` already counted). */
  overflowRemove(index: number): void {
    const run = this.overflow;
    const nodes = run.nodes;
    const keys = run.keys;
    const lastIndex = --run.live;
    const last = nodes[lastIndex]!;
    const lastDeadlineMs = keys[lastIndex << 1];
    const lastSequence = keys[(lastIndex << 1) + 1];
    nodes[lastIndex] = undefined;
    if (lastIndex === 0) {
      this.removeRun(this.heapPositions[run.id]);
      this.heapPositions[run.id] = -1;
      return;
    }
    if (index !== lastIndex) {
      const parent = (index - 1) >> 2;
      if (
        index > 0 &&
        (lastDeadlineMs < keys[parent << 1] ||
          (lastDeadlineMs === keys[parent << 1] && lastSequence < keys[(parent << 1) + 1]))
      ) this.overflowSiftUp(last, lastDeadlineMs, lastSequence, index);
      else this.overflowSiftDown(last, lastDeadlineMs, lastSequence, index);
    }
    if (index === 0) {
      // The minimum only moves later; a non-root entry never sifts up to the root.
      this.siftDown(run.id, keys[0], keys[1], this.heapPositions[run.id]);
    }
    if (run.mask >= this.shrinkCapacity && lastIndex * 8 <= run.mask) {
      this.resizeOverflow(run, false);
    }
  }

  overflowSiftUp(entry: StoreEntry, deadlineMs: number, sequence: number, index: number): void {
    const run = this.overflow;
    const nodes = run.nodes;
    const keys = run.keys;
    while (index > 0) {
      const parent = (index - 1) >> 2;
      const k = parent << 1;
      if (deadlineMs > keys[k] || (deadlineMs === keys[k] && sequence > keys[k + 1])) break;
      const moved = nodes[parent]!;
      nodes[index] = moved;
      keys[index << 1] = keys[k];
      keys[(index << 1) + 1] = keys[k + 1];
      moved.slot = index;
      index = parent;
    }
    nodes[index] = entry;
    keys[index << 1] = deadlineMs;
    keys[(index << 1) + 1] = sequence;
    entry.slot = index;
  }

  overflowSiftDown(entry: StoreEntry, deadlineMs: number, sequence: number, index: number): void {
    const run = this.overflow;
    const nodes = run.nodes;
    const keys = run.keys;
    const length = run.live;
    for (;;) {
      const first = (index << 2) + 1;
      if (first >= length) break;
      const best = smallestChild(keys, first, length);
      const bestDeadlineMs = keys[best << 1];
      const bestSequence = keys[(best << 1) + 1];
      if (
        deadlineMs < bestDeadlineMs || (deadlineMs === bestDeadlineMs && sequence < bestSequence)
      ) {
        break;
      }
      const moved = nodes[best]!;
      nodes[index] = moved;
      keys[index << 1] = bestDeadlineMs;
      keys[(index << 1) + 1] = bestSequence;
      moved.slot = index;
      index = best;
    }
    nodes[index] = entry;
    keys[index << 1] = deadlineMs;
    keys[(index << 1) + 1] = sequence;
    entry.slot = index;
  }

  // ------------------------------------------------------------ the heap of runs

  newRun(key: number): TimerRun {
    const id = this.freeIds.length !== 0 ? this.freeIds.pop()! : this.runs.length;
    if (id >= this.heapPositions.length) {
      const capacity = this.heapPositions.length * 2;
      const positions = new Int32Array(capacity);
      positions.set(this.heapPositions);
      this.heapPositions = positions;
      const ids = new Int32Array(capacity);
      ids.set(this.heapIds);
      this.heapIds = ids;
      const keys = new Float64Array(capacity * 2);
      keys.set(this.heapKeys);
      this.heapKeys = keys;
    }
    const run = new TimerRun(key, INITIAL_CAPACITY, id);
    this.runs[id] = run;
    this.heapPositions[id] = -1;
    return run;
  }

  pushRun(run: TimerRun, deadlineMs: number, sequence: number): void {
    this.siftUp(run.id, deadlineMs, sequence, this.heapLength++);
  }

  removeRun(index: number): void {
    const length = --this.heapLength;
    if (index === length) return; // it was the last
    const keys = this.heapKeys;
    const id = this.heapIds[length];
    const deadlineMs = keys[length << 1];
    const sequence = keys[(length << 1) + 1];
    const parent = ((index - 1) >> 2) << 1;
    if (
      index > 0 &&
      (deadlineMs < keys[parent] || (deadlineMs === keys[parent] && sequence < keys[parent + 1]))
    ) this.siftUp(id, deadlineMs, sequence, index);
    else this.siftDown(id, deadlineMs, sequence, index);
  }

  /** Puts run `id` with its (new) key at `index` or above. */
  siftUp(id: number, deadlineMs: number, sequence: number, index: number): void {
    const ids = this.heapIds;
    const keys = this.heapKeys;
    const positions = this.heapPositions;
    while (index > 0) {
      const parent = (index - 1) >> 2;
      const k = parent << 1;
      if (deadlineMs > keys[k] || (deadlineMs === keys[k] && sequence >= keys[k + 1])) break;
      const moved = ids[parent];
      ids[index] = moved;
      positions[moved] = index;
      keys[index << 1] = keys[k];
      keys[(index << 1) + 1] = keys[k + 1];
      index = parent;
    }
    ids[index] = id;
    positions[id] = index;
    keys[index << 1] = deadlineMs;
    keys[(index << 1) + 1] = sequence;
  }

  /** Puts run `id` with its (new) key at `index` or below. */
  siftDown(id: number, deadlineMs: number, sequence: number, index: number): void {
    const ids = this.heapIds;
    const keys = this.heapKeys;
    const positions = this.heapPositions;
    const length = this.heapLength;
    for (;;) {
      const first = (index << 2) + 1;
      if (first >= length) break;
      const best = smallestChild(keys, first, length);
      const bestDeadlineMs = keys[best << 1];
      const bestSequence = keys[(best << 1) + 1];
      if (
        bestDeadlineMs > deadlineMs || (bestDeadlineMs === deadlineMs && bestSequence >= sequence)
      ) break;
      const moved = ids[best];
      ids[index] = moved;
      positions[moved] = index;
      keys[index << 1] = bestDeadlineMs;
      keys[(index << 1) + 1] = bestSequence;
      index = best;
    }
    ids[index] = id;
    positions[id] = index;
    keys[index << 1] = deadlineMs;
    keys[(index << 1) + 1] = sequence;
  }
}
