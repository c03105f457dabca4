// An indexed 4-ary min-heap of timers ordered by (deadline, sequence): O(log n) insert, remove-any
// and pop, O(1) peek, ties in scheduling (FIFO) order. Each entry stores its own index, so cancel
// needs no search. A 4-ary heap is shallower than a binary one and its children share cache lines.

/** What the heap needs of an entry. */
export interface HeapEntry {
  deadlineMs: number;
  sequence: number;
  heapIndex: number;
}

function before(a: HeapEntry, b: HeapEntry): boolean {
  return a.deadlineMs < b.deadlineMs || (a.deadlineMs === b.deadlineMs && a.sequence < b.sequence);
}

/** The heap. `heapIndex` is -1 for entries not in it. */
export class TimerHeap<T extends HeapEntry> {
  items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(entry: T): void {
    const items = this.items;
    items.push(entry);
    this.#siftUp(entry, items.length - 1);
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    if (top === undefined) return undefined;
    const last = items.pop()!;
    if (last !== top) this.#siftDown(last, 0);
    top.heapIndex = -1;
    return top;
  }

  remove(entry: T): void {
    const index = entry.heapIndex;
    if (index < 0) return;
    const items = this.items;
    const last = items.pop()!;
    entry.heapIndex = -1;
    if (last === entry) return;
    if (index > 0 && before(last, items[(index - 1) >> 2])) this.#siftUp(last, index);
    else this.#siftDown(last, index);
  }

  #siftUp(entry: T, index: number): void {
    const items = this.items;
    while (index > 0) {
      const parentIndex = (index - 1) >> 2;
      const parent = items[parentIndex];
      if (!before(entry, parent)) break;
      items[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    items[index] = entry;
    entry.heapIndex = index;
  }

  #siftDown(entry: T, index: number): void {
    const items = this.items;
    const length = items.length;
    for (;;) {
      const first = (index << 2) + 1;
      if (first >= length) break;
      let best = first;
      let bestItem = items[first];
      const end = first + 4 < length ? first + 4 : length;
      for (let child = first + 1; child < end; child++) {
        const candidate = items[child];
        if (before(candidate, bestItem)) {
          best = child;
          bestItem = candidate;
        }
      }
      if (!before(bestItem, entry)) break;
      items[index] = bestItem;
      bestItem.heapIndex = index;
      index = best;
    }
    items[index] = entry;
    entry.heapIndex = index;
  }
}
