// A growable FIFO ring buffer: O(1) push/shift with no allocation per element once warm (Array#shift
// is O(n) on large arrays and a linked list allocates a node per element).

const INITIAL_CAPACITY = 1024;

/** FIFO queue on a power-of-two ring. Slots are cleared on shift so queued values can be collected. */
export class RingQueue<T> {
  buffer: (T | undefined)[];
  mask: number;
  head = 0;
  size = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.buffer = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
  }

  push(value: T): void {
    if (this.size === this.buffer.length) this.#grow();
    this.buffer[(this.head + this.size) & this.mask] = value;
    this.size++;
  }

  /** Removes and returns the oldest value; callers check `size` first. */
  shift(): T {
    const index = this.head;
    const value = this.buffer[index] as T;
    this.buffer[index] = undefined;
    this.head = (index + 1) & this.mask;
    this.size--;
    return value;
  }

  /** Calls `visit` for each queued value, oldest first. */
  forEach(visit: (value: T) => void): void {
    for (let i = 0; i < this.size; i++) visit(this.buffer[(this.head + i) & this.mask] as T);
  }

  clear(): void {
    this.buffer.fill(undefined);
    this.head = 0;
    this.size = 0;
  }

  #grow(): void {
    const old = this.buffer;
    const capacity = old.length * 2;
    const next = new Array<T | undefined>(capacity).fill(undefined);
    for (let i = 0; i < this.size; i++) next[i] = old[(this.head + i) & this.mask];
    this.buffer = next;
    this.mask = capacity - 1;
    this.head = 0;
  }
}
