/**
 * `interval()`: an async iterator ticking on a loop's timers, against absolute deadlines.
 *
 * @module
 */
import type { Loop } from "../loop/loop.ts";
import type { LoopClosedError } from "../loop/errors.ts";
import type { MissedTickBehavior, Timer } from "../loop/types.ts";
import { type Disposition, kTrack, kUntrack, type TrackedResource } from "../loop/_internal.ts";
import { checkMissed, deadlineAfter, requestHostTurn } from "../loop/_core.ts";
import { checkDelay, checkOptions, delayUntil, queueNativeMicrotask } from "./_helper.ts";

/** Options for {@linkcode interval}. */
export interface IntervalOptions {
  /** Aborting it rejects the pending (or next) `next()` with `signal.reason` and ends the iterator. */
  signal?: AbortSignal;
  /** The loop whose timers to use; default the current loop (the running one, else the default). */
  loop?: Loop;
  /**
   * What to do when a tick is delivered more than a period late (a slow consumer or a stalled
   * loop), as tokio's `MissedTickBehavior`: `"skip"` (default) drops the missed ticks and keeps the
   * original phase, `"delay"` restarts the period from the late tick, `"burst"` delivers every
   * missed tick, one per loop pass, until caught up.
   */
  missed?: MissedTickBehavior;
}

type Waiter = PromiseWithResolvers<IteratorResult<number, undefined>>;

const DONE: IteratorResult<number, undefined> = Object.freeze({ done: true, value: undefined });

/** The iterator. Ticks are `startMs + k * periodMs`; a timer is armed only while a `next()` waits. */
class IntervalIterator implements AsyncIterableIterator<number, undefined>, TrackedResource {
  readonly kind = "interval";
  readonly label: string;
  #loop: Loop;
  #periodMs: number;
  #missed: MissedTickBehavior;
  #signal: AbortSignal | undefined;
  #startMs: number;
  #k = 1;
  #deadlineMs: number;
  #timer: Timer | null = null;
  #waiters: Waiter[] = [];
  #done = false;
  #failure: { reason: unknown } | null = null;
  #tracked = false;
  #untrackQueued = false;
  #onAbort: (() => void) | null = null;

  constructor(
    loop: Loop,
    periodMs: number,
    missed: MissedTickBehavior,
    signal: AbortSignal | undefined,
  ) {
    this.#loop = loop;
    this.#periodMs = periodMs;
    this.#missed = missed;
    this.#signal = signal;
    this.label = `interval(${periodMs} ms)`;
    this.#startMs = loop.now();
    this.#deadlineMs = deadlineAfter(this.#startMs, periodMs);
    if (signal !== undefined) {
      if (signal.aborted) this.#failure = { reason: signal.reason };
      else {
        this.#onAbort = () => this.#abort();
        signal.addEventListener("abort", this.#onAbort, { once: true });
      }
    }
  }

  /** Keeps `run()` alive while a `next()` waits (and until its continuation had a microtask). */
  get refed(): boolean {
    return this.#tracked;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<number, undefined>> {
    if (this.#failure !== null) {
      const { reason } = this.#failure;
      this.#failure = null;
      this.#finish();
      return Promise.reject(reason);
    }
    if (this.#done) return Promise.resolve(DONE);
    const waiter: Waiter = Promise.withResolvers();
    this.#waiters.push(waiter);
    if (!this.#tracked) {
      this.#tracked = true;
      this.#loop[kTrack](this);
    }
    if (this.#timer === null) this.#arm();
    return waiter.promise;
  }

  return(): Promise<IteratorResult<number, undefined>> {
    this.#failure = null;
    this.#finish();
    return Promise.resolve(DONE);
  }

  /** On loop close: a waiting `next()` rejects with `LoopClosedError`; a later one would too. */
  dispose(error: LoopClosedError): Disposition {
    this.#tracked = false; // the closing loop already forgot it
    if (this.#waiters.length === 0) {
      this.#failure = { reason: error };
      this.#release();
      return "cancelled";
    }
    this.#waiters.shift()!.reject(error);
    this.#finish();
    return "rejected";
  }

  /** Fired by the loop: deliver the tick to the oldest waiter. */
  tick(): void {
    requestHostTurn(this.#timer!); // the loop lets the continuation run before it goes on
    this.#timer = null;
    const waiter = this.#waiters.shift();
    if (waiter === undefined) return;
    const tickMs = this.#deadlineMs;
    this.#advance(this.#loop.now());
    waiter.resolve({ done: false, value: tickMs });
    if (this.#waiters.length !== 0) this.#arm();
    else this.#untrackLater();
  }

  /** Arms the loop timer for the next deadline (0 when already due: it fires in the next pass). */
  #arm(): void {
    const loop = this.#loop;
    try {
      this.#timer = loop.setTimeout(fireInterval, delayUntil(loop.now(), this.#deadlineMs), this)
        .unref();
    } catch (error) {
      // The loop is closed: this and every later next() fail with it.
      this.#waiters.shift()!.reject(error);
      this.#finish();
    }
  }

  /** Moves to the next deadline; `nowMs` is when the current tick was delivered. */
  #advance(nowMs: number): void {
    const periodMs = this.#periodMs;
    this.#k++;
    let nextMs = deadlineAfter(this.#startMs, this.#k * periodMs);
    if (nextMs <= nowMs) {
      if (this.#missed === "delay" || periodMs === 0) {
        this.#startMs = nowMs;
        this.#k = 1;
        nextMs = deadlineAfter(nowMs, periodMs);
      } else if (this.#missed === "skip") {
        this.#k = Math.floor((nowMs - this.#startMs) / periodMs) + 1;
        nextMs = deadlineAfter(this.#startMs, this.#k * periodMs);
        while (nextMs <= nowMs) nextMs = deadlineAfter(this.#startMs, ++this.#k * periodMs);
      }
      // "burst": keep the schedule; each missed tick is due at once (one per loop pass).
    }
    this.#deadlineMs = nextMs;
  }

  #abort(): void {
    const reason = this.#signal!.reason;
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      this.#failure = { reason };
      this.#release();
      this.#untrackLater();
      return;
    }
    waiter.reject(reason);
    this.#finish();
  }

  /** Ends the iterator: clears the timer, removes the listener, settles waiters as done. */
  #finish(): void {
    this.#done = true;
    this.#release();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(DONE);
    this.#untrackLater();
  }

  #release(): void {
    this.#timer?.close();
    this.#timer = null;
    if (this.#onAbort !== null) {
      this.#signal!.removeEventListener("abort", this.#onAbort);
      this.#onAbort = null;
    }
  }

  /** Untracks once the consumer's continuation (a native microtask) has had its chance to run. */
  #untrackLater(): void {
    if (!this.#tracked || this.#untrackQueued) return;
    this.#untrackQueued = true;
    queueNativeMicrotask(() => {
      this.#untrackQueued = false;
      if (this.#tracked && this.#waiters.length === 0) {
        this.#loop[kUntrack](this);
        this.#tracked = false;
      }
    });
  }
}

function fireInterval(iterator: IntervalIterator): void {
  iterator.tick();
}
// The name shows in close reports for the (unref'd) timer behind an interval.
Object.defineProperty(fireInterval, "name", { value: "interval" });

/**
 * An async iterator that ticks every `delayMs` on a loop's timers. Ticks are scheduled against
 * absolute deadlines (`start + k * delayMs`), so they do not drift; the first comes `delayMs` after
 * the call. Each tick yields its **scheduled time** on the loop clock in ms (like tokio's
 * `Instant`): `loop.now() - tick` is its lateness, and a gap wider than `delayMs` shows skipped
 * ticks.
 *
 * A timer is armed only while a `next()` waits, so a slow consumer or a stalled loop meets the
 * `missed` behaviour (default `"skip"`, see {@linkcode IntervalOptions.missed}). Ending the
 * iteration (`break`, `return()`) clears the timer; aborting the signal rejects the waiting (or
 * next) `next()` with `signal.reason`, and a `next()` waiting when the loop closes rejects with
 * `LoopClosedError`; after either the iterator is done. Results are native promises: code after
 * `await` runs as a Deno microtask once the loop's current batch has returned.
 *
 * @param delayMs The period in ms (floats honoured; `NaN` and negative mean 0: a tick per pass).
 * @param options `signal`, `loop`, `missed`.
 * @returns The iterator.
 * @throws {TypeError} If `delayMs` is not a number or an option has the wrong type.
 * @throws {RangeError} If `delayMs` is `Infinity` or `missed` is not a known behaviour.
 *
 * @example Three ticks on a virtual clock
 * ```ts
 * import { Loop, VirtualClock } from "../loop/mod.ts";
 * import { interval } from "./interval.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const ticks: number[] = [];
 * const consumer = (async () => {
 *   for await (const tickMs of interval(250, { loop })) {
 *     ticks.push(tickMs);
 *     if (ticks.length === 3) break; // clears the timer
 *   }
 * })();
 * await loop.run();
 * await consumer;
 * console.log(ticks); // [ 250, 500, 750 ]
 * await loop.close();
 * ```
 */
export function interval(
  delayMs: number,
  options?: IntervalOptions,
): AsyncIterableIterator<number, undefined> {
  const periodMs = checkDelay(delayMs, "create an interval");
  const loop = checkOptions(options, "create an interval");
  const missed = checkMissed(options?.missed, "create an interval");
  return new IntervalIterator(loop, periodMs, missed, options?.signal);
}
