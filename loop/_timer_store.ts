// The pending timers, stored as libuv and Node store them: one FIFO list per duration. Timers of
// one duration armed from a clock that never goes back come due in the order they were armed, so
// appending keeps each list sorted for free; a small indexed 4-ary min-heap orders the LISTS by
// their heads' (deadline, sequence). Insert and cancel are O(1) (an append, an unlink); taking the
// next due timer is O(log L) for L lists (distinct durations, usually few), and the sifts touch
// only list objects, which stay hot in cache, never the timers scattered in memory.
//
// Lists are circular and doubly linked through a sentinel, the list object itself (as Node's are),
// so an entry needs no pointer to its list: unlinking needs only its neighbours, and the entry was
// the head exactly when its predecessor is a list. The links replace the heap index a heap entry
// would carry, so an entry costs one field more than in a heap, and the heap's array is gone.
//
// An entry that would land out of order (an interval re-armed from its old deadline, a refresh
// with another base, a clamp, a timer set aside during a pass and put back) is inserted at its
// place: after the tail is checked, the head, then a short scan back from the tail. When the scan
// is longer than SCAN_LIMIT, the entry starts a run of its own, a list outside the map ordered by
// the same heap, so the worst case is the O(log n) of a plain heap, never a linear scan.

/** What the store needs of an entry: its key and the two links it owns. */
export interface Linked {
  deadlineMs: number;
  sequence: number;
  /** The previous entry, or the list when this is the head; null when not stored. */
  prev: Linked | null;
  /** The next entry, or the list when this is the tail; null when not stored. */
  next: Linked | null;
}

/** Entries scanned back from the tail before an out-of-order entry gets a run of its own. */
const SCAN_LIMIT = 16;
/** Emptied lists kept in the map for reuse (a timer re-armed with the same duration) before a sweep. */
const EMPTY_LISTS_KEPT = 1024;

/** One sorted run of entries, and its own sentinel. `deadlineMs`/`sequence` mirror its head's. */
export class TimerList implements Linked {
  deadlineMs = 0;
  sequence = 0;
  /** The tail (the list itself when empty). */
  prev: Linked;
  /** The head (the list itself when empty). */
  next: Linked;
  /** Position in the store's heap, -1 when empty (lists are in the heap exactly when non-empty). */
  heapIndex = -1;
  /** The duration key, or NaN for a run outside the map. */
  readonly key: number;

  constructor(key: number) {
    this.prev = this;
    this.next = this;
    this.key = key;
  }
}

function before(a: Linked, b: Linked): boolean {
  return a.deadlineMs < b.deadlineMs || (a.deadlineMs === b.deadlineMs && a.sequence < b.sequence);
}

/** The store: entries by (deadlineMs, sequence), FIFO among equal deadlines. */
export class TimerStore<T extends Linked> {
  /** Stored entries. */
  size = 0;
  /** The non-empty lists, a min-heap on their heads' (deadlineMs, sequence). */
  readonly heap: TimerList[] = [];
  readonly lists: Map<number, TimerList> = new Map();
  /** A one-entry cache in front of the map: timers tend to come in runs of one duration. */
  lastKey = NaN;
  lastList: TimerList | null = null;
  /** Lists in the map that are empty (kept for reuse until there are too many). */
  emptyLists = 0;

  /** The earliest deadline, or Infinity when empty. */
  firstDeadlineMs(): number {
    const heap = this.heap;
    return heap.length === 0 ? Infinity : heap[0].deadlineMs;
  }

  /** The entry due first, if any. */
  first(): T | undefined {
    const heap = this.heap;
    return heap.length === 0 ? undefined : heap[0].next as T;
  }

  /** Whether `entry` is stored. */
  has(entry: T): boolean {
    return entry.next !== null;
  }

  /**
   * Stores `entry` (not stored yet) in the list of `key`: entries with the same key should
   * mostly arrive in (deadlineMs, sequence) order, which is what makes the store fast; any order
   * is correct.
   */
  insert(entry: T, key: number): void {
    let list = this.lastList;
    if (key !== this.lastKey || list === null) {
      let found = this.lists.get(key);
      if (found === undefined) {
        found = new TimerList(key);
        this.lists.set(key, found);
        this.emptyLists++;
      }
      list = this.lastList = found;
      this.lastKey = key;
    }
    const tail = list.prev;
    if (tail === list) {
      this.emptyLists--;
      entry.prev = list;
      entry.next = list;
      list.next = entry;
      list.prev = entry;
      list.deadlineMs = entry.deadlineMs;
      list.sequence = entry.sequence;
      this.push(list);
    } else if (
      entry.deadlineMs > tail.deadlineMs ||
      (entry.deadlineMs === tail.deadlineMs && entry.sequence > tail.sequence)
    ) {
      entry.prev = tail;
      entry.next = list;
      tail.next = entry;
      list.prev = entry;
    } else this.insertSorted(list, entry);
    this.size++;
  }

  /** Inserts `entry`, which sorts before the tail of the non-empty `list`, at its place. */
  insertSorted(list: TimerList, entry: T): void {
    const head = list.next;
    if (before(entry, head)) {
      entry.prev = list;
      entry.next = head;
      head.prev = entry;
      list.next = entry;
      list.deadlineMs = entry.deadlineMs;
      list.sequence = entry.sequence;
      this.siftUp(list, list.heapIndex);
      return;
    }
    // entry >= head, so the scan stops at the head at the latest, never at the sentinel.
    let node = list.prev.prev!;
    for (let steps = 0; steps < SCAN_LIMIT; steps++) {
      if (!before(entry, node)) {
        const next = node.next!;
        entry.prev = node;
        entry.next = next;
        node.next = entry;
        next.prev = entry;
        return;
      }
      node = node.prev!;
    }
    // Far out of order: a run of its own, ordered by the heap like any list.
    const run = new TimerList(NaN);
    entry.prev = run;
    entry.next = run;
    run.next = entry;
    run.prev = entry;
    run.deadlineMs = entry.deadlineMs;
    run.sequence = entry.sequence;
    this.push(run);
  }

  /** Removes `entry` if stored. */
  remove(entry: T): void {
    const next = entry.next;
    if (next === null) return;
    const prev = entry.prev!;
    prev.next = next;
    next.prev = prev;
    entry.prev = null;
    entry.next = null;
    this.size--;
    if (prev instanceof TimerList) {
      // It was the head: the list's key moves later (or the list empties).
      if (next === prev) this.emptied(prev);
      else {
        prev.deadlineMs = next.deadlineMs;
        prev.sequence = next.sequence;
        this.siftDown(prev, prev.heapIndex);
      }
    }
  }

  /** Removes and returns the first entry if its deadline is at or before `nowMs`, else null. */
  shiftDue(nowMs: number): T | null {
    const heap = this.heap;
    if (heap.length === 0) return null;
    const list = heap[0];
    if (list.deadlineMs > nowMs) return null;
    const entry = list.next;
    const next = entry.next!;
    list.next = next;
    next.prev = list;
    entry.prev = null;
    entry.next = null;
    this.size--;
    if (next === list) this.emptied(list);
    else {
      list.deadlineMs = next.deadlineMs;
      list.sequence = next.sequence;
      this.siftDown(list, 0);
    }
    return entry as T;
  }

  /** Every stored entry, in no particular order. */
  collect(): T[] {
    const entries: T[] = [];
    for (const list of this.heap) {
      for (let node = list.next; node !== list; node = node.next!) entries.push(node as T);
    }
    return entries;
  }

  emptied(list: TimerList): void {
    this.removeAt(list.heapIndex);
    list.heapIndex = -1;
    if (Number.isNaN(list.key)) return; // a run of its own: garbage now
    // Kept in the map: a timer re-armed with the same duration (a timeout chain, a refresh)
    // reuses it. Swept once the empty ones outnumber the others (amortised O(1)).
    if (++this.emptyLists > EMPTY_LISTS_KEPT && this.emptyLists > this.heap.length) this.sweep();
  }

  sweep(): void {
    for (const [key, list] of this.lists) {
      if (list.next === list) this.lists.delete(key);
    }
    this.emptyLists = 0;
    this.lastKey = NaN;
    this.lastList = null;
  }

  // ------------------------------------------------------------ the heap of lists

  push(list: TimerList): void {
    const heap = this.heap;
    heap.push(list);
    this.siftUp(list, heap.length - 1);
  }

  removeAt(index: number): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (index === heap.length) return; // it was the last
    if (index > 0 && before(last, heap[(index - 1) >> 2])) this.siftUp(last, index);
    else this.siftDown(last, index);
  }

  siftUp(list: TimerList, index: number): void {
    const heap = this.heap;
    while (index > 0) {
      const parentIndex = (index - 1) >> 2;
      const parent = heap[parentIndex];
      if (!before(list, parent)) break;
      heap[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    heap[index] = list;
    list.heapIndex = index;
  }

  siftDown(list: TimerList, index: number): void {
    const heap = this.heap;
    const length = heap.length;
    for (;;) {
      const first = (index << 2) + 1;
      if (first >= length) break;
      let best = first;
      let bestList = heap[first];
      const end = first + 4 < length ? first + 4 : length;
      for (let child = first + 1; child < end; child++) {
        const candidate = heap[child];
        if (before(candidate, bestList)) {
          best = child;
          bestList = candidate;
        }
      }
      if (!before(bestList, list)) break;
      heap[index] = bestList;
      bestList.heapIndex = index;
      index = best;
    }
    heap[index] = list;
    list.heapIndex = index;
  }
}
