/**
 * The key-value store behind the example servers: binary keys and values, per-key expiry.
 *
 * Expiry is checked lazily on every access (so a key is never seen after its deadline) and also
 * reclaimed by one timer per expiring key, on whatever {@linkcode ExpiryTimers} the server runs on:
 * the loop's timers for the loop server, Deno's for the native one. Timers are unref'd, so they
 * never keep a server alive, and are cancelled or replaced when the key is overwritten, persisted
 * or deleted.
 *
 * Value storage avoids creating typed arrays: in Deno every `new Uint8Array(n)` gets its own
 * off-heap ArrayBuffer (~0.7 µs, ten times a view). {@linkcode Keyspace.store} overwrites a value
 * of the same length in place (a SET of the same size, a counter), and carves other small values
 * out of shared 16 KiB slabs. A slab is freed by the GC once none of its values is referenced:
 * the price is that one long-lived small value can keep a slab alive (a real store would compact).
 *
 * @example
 * ```ts
 * import { Keyspace } from "./keyspace.ts";
 * let nowMs = 0;
 * const keyspace = new Keyspace({ now: () => nowMs, schedule: () => 0, cancel: () => {} });
 * keyspace.set("k", new Uint8Array([1]), 1000);
 * nowMs = 1500;
 * console.log(keyspace.get("k")); // null
 * ```
 *
 * @module
 */

/** Where the keyspace gets time and timers from. */
export interface ExpiryTimers {
  /** The current time in ms (monotonic). */
  now(): number;
  /** Calls `callback` after `delayMs`; must not keep the process alive. Returns a handle. */
  schedule(callback: () => void, delayMs: number): unknown;
  /** Cancels a handle from {@linkcode ExpiryTimers.schedule}. */
  cancel(handle: unknown): void;
}

/** The subset of the `Loop` API the expiry timers use (structural, so tests can pass any loop). */
export interface TimerLoop {
  /** The loop's time in ms. */
  now(): number;
  /** A loop timer. */
  setTimeout(callback: () => void, delayMs?: number): { unref(): unknown };
  /** Cancels a loop timer. */
  // deno-lint-ignore no-explicit-any
  clearTimeout(timer: any): void;
}

/**
 * Expiry timers on an eventloop `Loop`: `loop.setTimeout(...).unref()`.
 *
 * @param loop The loop the server runs on.
 * @returns Timers for {@linkcode Keyspace}.
 */
export function loopExpiryTimers(loop: TimerLoop): ExpiryTimers {
  return {
    now: () => loop.now(),
    schedule(callback, delayMs) {
      const timer = loop.setTimeout(callback, delayMs);
      timer.unref();
      return timer;
    },
    cancel: (handle) => loop.clearTimeout(handle),
  };
}

/**
 * Expiry timers on Deno's own `setTimeout` (unref'd with `Deno.unrefTimer`), for the native server.
 *
 * @returns Timers for {@linkcode Keyspace}.
 */
export function nativeExpiryTimers(): ExpiryTimers {
  return {
    now: () => performance.now(),
    schedule(callback, delayMs) {
      const id = setTimeout(callback, delayMs);
      Deno.unrefTimer(id);
      return id;
    },
    cancel: (handle) => clearTimeout(handle as number),
  };
}

/** `expiresAtMs` for {@linkcode Keyspace.store}: keep the key's current deadline. */
export const KEEP_TTL: number = -1;

const SLAB_BYTES = 16 * 1024;
const SLAB_MAX_VALUE = 256; // larger values get their own buffer (copying dominates anyway)

/** Hands out small byte arrays as views into shared slabs. */
class SlabArena {
  #slab = new ArrayBuffer(0);
  #offset = 0;

  alloc(n: number): Uint8Array {
    if (n > SLAB_MAX_VALUE) return new Uint8Array(n);
    if (this.#offset + n > this.#slab.byteLength) {
      this.#slab = new ArrayBuffer(SLAB_BYTES);
      this.#offset = 0;
    }
    const view = new Uint8Array(this.#slab, this.#offset, n);
    this.#offset += n;
    return view;
  }
}

// Timers longer than this are clamped (setTimeout's 32-bit limit) and re-armed when they fire.
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Entry {
  value: Uint8Array;
  /** Absolute deadline on the timers' clock, or Infinity. */
  expiresAtMs: number;
  timer: unknown;
}

/** A binary-safe string keyspace with expiry. Keys are latin1 strings (one char per byte). */
export class Keyspace {
  #map = new Map<string, Entry>();
  #timers: ExpiryTimers;
  #expiring = 0;
  #arena = new SlabArena();

  /**
   * Makes an empty keyspace.
   *
   * @param timers Time and timers for expiry.
   */
  constructor(timers: ExpiryTimers) {
    this.#timers = timers;
  }

  /** The current time on the keyspace's clock, in ms. */
  now(): number {
    return this.#timers.now();
  }

  /** Keys stored (expired keys not yet reclaimed included, as Redis's DBSIZE). */
  get size(): number {
    return this.#map.size;
  }

  /** Keys that have a deadline. */
  get expiringCount(): number {
    return this.#expiring;
  }

  #live(key: string): Entry | undefined {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs !== Infinity && this.#timers.now() >= entry.expiresAtMs) {
      this.#remove(key, entry);
      return undefined;
    }
    return entry;
  }

  #remove(key: string, entry: Entry): void {
    this.#disarm(entry);
    this.#map.delete(key);
  }

  #disarm(entry: Entry): void {
    if (entry.expiresAtMs !== Infinity) this.#expiring--;
    if (entry.timer !== undefined) {
      this.#timers.cancel(entry.timer);
      entry.timer = undefined;
    }
    entry.expiresAtMs = Infinity;
  }

  #arm(key: string, entry: Entry, expiresAtMs: number): void {
    this.#disarm(entry);
    if (expiresAtMs === Infinity) return;
    this.#expiring++;
    entry.expiresAtMs = expiresAtMs;
    const delayMs = Math.min(MAX_TIMER_MS, Math.max(0, expiresAtMs - this.#timers.now()));
    entry.timer = this.#timers.schedule(() => this.#fire(key, entry), delayMs);
  }

  #fire(key: string, entry: Entry): void {
    entry.timer = undefined;
    if (this.#map.get(key) !== entry) return; // overwritten or deleted since (defensive)
    const remainingMs = entry.expiresAtMs - this.#timers.now();
    if (remainingMs <= 0) {
      this.#remove(key, entry);
      return;
    }
    // Clamped long timer, or a clock that lags the deadline by a fraction: re-arm.
    entry.timer = this.#timers.schedule(
      () => this.#fire(key, entry),
      Math.min(MAX_TIMER_MS, remainingMs),
    );
  }

  /** The value of `key`, or `null` when missing or expired. */
  get(key: string): Uint8Array | null {
    const entry = this.#live(key);
    return entry === undefined ? null : entry.value;
  }

  /** Whether `key` exists (and has not expired). */
  has(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  /**
   * Stores a copy of `source[start, end)`: in place when the key's current value has that length,
   * else in fresh storage. Values returned by {@linkcode Keyspace.get} may be overwritten by this:
   * copy them out (into a reply) first.
   *
   * @param key The key.
   * @param source The bytes to copy from.
   * @param start First byte.
   * @param end One past the last byte.
   * @param expiresAtMs Absolute deadline on the keyspace clock, `Infinity` for none (default), or
   *   {@linkcode KEEP_TTL}.
   */
  store(
    key: string,
    source: Uint8Array,
    start: number,
    end: number,
    expiresAtMs: number = Infinity,
  ): void {
    const n = end - start;
    const entry = this.#live(key);
    let target: Uint8Array;
    if (entry !== undefined && entry.value.length === n) target = entry.value;
    else target = this.#arena.alloc(n);
    if (n <= 32) { for (let k = 0; k < n; k++) target[k] = source[start + k]; }
    else target.set(source.subarray(start, end));
    if (entry === undefined) {
      const fresh: Entry = { value: target, expiresAtMs: Infinity, timer: undefined };
      this.#map.set(key, fresh);
      if (expiresAtMs !== Infinity && expiresAtMs !== KEEP_TTL) this.#arm(key, fresh, expiresAtMs);
      return;
    }
    entry.value = target;
    if (expiresAtMs === KEEP_TTL) return;
    if (expiresAtMs !== Infinity) this.#arm(key, entry, expiresAtMs);
    else if (entry.expiresAtMs !== Infinity) this.#disarm(entry);
  }

  /**
   * Stores `value` (kept, not copied: pass a copy), replacing any deadline.
   *
   * @param key The key.
   * @param value The bytes.
   * @param expiresAtMs Absolute deadline on the keyspace clock (default `Infinity`: none).
   */
  set(key: string, value: Uint8Array, expiresAtMs: number = Infinity): void {
    const entry = this.#live(key);
    if (entry === undefined) {
      const fresh: Entry = { value, expiresAtMs: Infinity, timer: undefined };
      this.#map.set(key, fresh);
      if (expiresAtMs !== Infinity) this.#arm(key, fresh, expiresAtMs);
      return;
    }
    entry.value = value;
    if (expiresAtMs !== Infinity) this.#arm(key, entry, expiresAtMs);
    else if (entry.expiresAtMs !== Infinity) this.#disarm(entry);
  }

  /** Stores `value` keeping the key's current deadline, if any (SET KEEPTTL, INCR, APPEND). */
  setKeepTtl(key: string, value: Uint8Array): void {
    const entry = this.#live(key);
    if (entry === undefined) this.#map.set(key, { value, expiresAtMs: Infinity, timer: undefined });
    else entry.value = value;
  }

  /** Deletes `key`; whether it existed. */
  delete(key: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#remove(key, entry);
    return true;
  }

  /** The deadline of `key`: `undefined` when missing, `Infinity` without one. */
  expiresAt(key: string): number | undefined {
    return this.#live(key)?.expiresAtMs;
  }

  /**
   * Sets the deadline of an existing key (a deadline now or in the past deletes it).
   *
   * @returns Whether the key existed.
   */
  expireAt(key: string, expiresAtMs: number): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    if (expiresAtMs <= this.#timers.now()) this.#remove(key, entry);
    else this.#arm(key, entry, expiresAtMs);
    return true;
  }

  /** Removes the deadline of `key`; whether it had one. */
  persist(key: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined || entry.expiresAtMs === Infinity) return false;
    this.#disarm(entry);
    return true;
  }

  /** Deletes every key and cancels every timer. */
  clear(): void {
    for (const entry of this.#map.values()) this.#disarm(entry);
    this.#map.clear();
    this.#expiring = 0;
  }
}
