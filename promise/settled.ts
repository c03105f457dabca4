/**
 * {@linkcode settled}: an async iterator over promises' outcomes in the order they settle.
 *
 * @module
 */
import { describe } from "../poller/_validate.ts";
import type { Loop } from "../loop/loop.ts";
import { currentLoop } from "../loop/default_loop.ts";
import type { LoopClosedError } from "../loop/errors.ts";
import { type Disposition, kUntrack, type TrackedResource } from "../loop/_internal.ts";
import {
  type LoopPromise,
  makePromise,
  observe,
  type Runtime,
  runtimeOf,
  settlePromise,
} from "./loop_promise.ts";
import { checkOptions, checkSignal, trackOn } from "./_combinator.ts";

/** One outcome from {@linkcode settled}: the input's `index` and how it settled. */
export type SettledResult<T> =
  | { status: "fulfilled"; value: T; index: number }
  // deno-lint-ignore no-explicit-any
  | { status: "rejected"; reason: any; index: number };

/** Options of {@linkcode settled}. */
export interface SettledOptions {
  /** The loop of the iterator's promises; default `currentLoop()`. */
  loop?: Loop;
  /** Ends the iteration when it aborts: waiting and later `next()` calls reject with its reason. */
  signal?: AbortSignal;
}

/** The async iterator returned by {@linkcode settled}. */
export interface SettledIterator<T> {
  /**
   * The next outcome in settlement order, or `{ done: true }` once every input was yielded (or
   * after `return()`).
   */
  next(): LoopPromise<IteratorResult<SettledResult<T>, undefined>>;
  /** Stops early: pending and later `next()` calls report `{ done: true }`; inputs are ignored. */
  return(): LoopPromise<IteratorResult<SettledResult<T>, undefined>>;
  /** Returns itself (for `for await`). */
  [Symbol.asyncIterator](): SettledIterator<T>;
  /** Stops early, like `return()` (for `await using`). */
  [Symbol.asyncDispose](): LoopPromise<void>;
  /** How many inputs have not settled yet. */
  readonly pending: number;
}

type Result = IteratorResult<SettledResult<unknown>, undefined>;
const DONE: Result = Object.freeze({ value: undefined, done: true }) as Result;

class SettledState implements TrackedResource, SettledIterator<unknown> {
  readonly kind = "promise.settled";
  readonly refed = false;
  readonly rt: Runtime;
  readonly ready: SettledResult<unknown>[] = [];
  readyHead = 0;
  readonly waiters: LoopPromise<Result>[] = [];
  waitersHead = 0;
  count = 0;
  pending = 0;
  finished = false;
  failure: { error: unknown } | undefined = undefined;
  tracked = false;
  signal: AbortSignal | undefined = undefined;
  readonly onAbort = (): void => this.fail(this.signal!.reason);

  constructor(rt: Runtime) {
    this.rt = rt;
  }

  get label(): string {
    return `settled() of ${this.count} inputs (${this.pending} pending)`;
  }

  resolved(result: Result): LoopPromise<Result> {
    const promise = makePromise<Result>(this.rt);
    settlePromise(promise, false, result);
    return promise;
  }

  next(): LoopPromise<Result> {
    if (this.readyHead < this.ready.length) {
      const value = this.ready[this.readyHead];
      this.ready[this.readyHead++] = undefined as never;
      if (this.readyHead === this.ready.length) this.ready.length = this.readyHead = 0;
      return this.resolved({ value, done: false });
    }
    if (this.failure !== undefined) {
      const { error } = this.failure;
      this.failure = undefined; // reported once; afterwards the iterator is done
      const promise = makePromise<Result>(this.rt);
      settlePromise(promise, true, error);
      return promise;
    }
    if (this.finished || this.pending === 0) return this.resolved(DONE);
    const waiter = makePromise<Result>(this.rt);
    this.waiters.push(waiter);
    return waiter;
  }

  return(): LoopPromise<Result> {
    this.finish();
    this.failure = undefined;
    this.ready.length = this.readyHead = 0;
    return this.resolved(DONE);
  }

  [Symbol.asyncIterator](): SettledIterator<unknown> {
    return this;
  }

  [Symbol.asyncDispose](): LoopPromise<void> {
    return this.return().then(() => undefined);
  }

  /** Stops tracking; answers waiting `next()` calls with done. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tracked) {
      this.tracked = false;
      this.rt.loop[kUntrack](this);
    }
    this.signal?.removeEventListener("abort", this.onAbort);
    while (this.waitersHead < this.waiters.length) {
      settlePromise(this.waiters[this.waitersHead++], false, DONE);
    }
    this.waiters.length = this.waitersHead = 0;
  }

  /** Ends with an error: waiting `next()` calls reject with it (else the next one does). */
  fail(error: unknown): void {
    if (this.finished) return;
    this.ready.length = this.readyHead = 0;
    if (this.waitersHead < this.waiters.length) {
      while (this.waitersHead < this.waiters.length) {
        settlePromise(this.waiters[this.waitersHead++], true, error);
      }
    } else this.failure = { error };
    this.finish();
  }

  dispose(error: LoopClosedError): Disposition {
    if (this.finished) return "cancelled";
    this.tracked = false; // the loop already forgot it
    this.fail(error);
    return "rejected";
  }
}

function onInput(state: SettledState, index: number, rejected: boolean, value: unknown): void {
  state.pending--; // counted even after return() or an abort: `pending` is what has not settled
  if (state.finished) return;
  const result: SettledResult<unknown> = rejected
    ? { status: "rejected", reason: value, index }
    : { status: "fulfilled", value, index };
  if (state.waitersHead < state.waiters.length) {
    const waiter = state.waiters[state.waitersHead];
    state.waiters[state.waitersHead++] = undefined as never;
    settlePromise(waiter, false, { value: result, done: false });
  } else state.ready.push(result);
  if (state.pending === 0) state.finish();
}

/**
 * Yields each input's outcome, `{ status, value | reason, index }`, in the order the inputs
 * settle (the Go original's `ToChannel`, generalised). The iterable is read at once, in full; its
 * values may be plain values, native promises, `LoopPromise`s or thenables, and all are marked
 * handled (rejections arrive as results, never as unhandled rejections). `return()` (a `break` out
 * of `for await`) stops early. While inputs are pending, the iterator is tracked on its loop:
 * closing the loop makes a waiting `next()` reject with `LoopClosedError`.
 *
 * If reading the iterable throws (its `Symbol.iterator` or its iterator's `next()`), `settled()`
 * still returns the iterator, as an async generator would: its first `next()` rejects with that
 * error (the inputs read before it are dropped) and later calls report `{ done: true }`. So does
 * an already-aborted `signal`, with its reason (which wins over a failed read).
 *
 * @typeParam V The inputs' type.
 * @param values An iterable of values, promises or thenables.
 * @param options `loop` and `signal`.
 * @returns The async iterator.
 * @throws {TypeError} If `values` is not iterable (has no `Symbol.iterator` method), or `options`,
 * `options.loop` or `options.signal` is malformed.
 *
 * @example
 * ```ts
 * import { settled } from "./settled.ts";
 * const wait = (ms: number, value: string) => new Promise((resolve) => setTimeout(resolve, ms, value));
 * for await (const result of settled([wait(30, "slow"), wait(1, "fast"), Promise.reject("no")])) {
 *   console.log(result.index, result.status); // 2 "rejected", then 1 "fulfilled", then 0 "fulfilled"
 * }
 * ```
 */
export function settled<V>(
  values: Iterable<V>,
  options?: SettledOptions,
): SettledIterator<Awaited<V>> {
  checkOptions(options, "iterate settled promises");
  let method: unknown;
  let failure: { error: unknown } | undefined;
  try {
    method = (values as { [Symbol.iterator]?: unknown } | null)?.[Symbol.iterator];
  } catch (error) {
    // A throwing Symbol.iterator getter: the iteration failed (reported by next()), as below.
    failure = { error };
  }
  if (failure === undefined && typeof method !== "function") {
    throw new TypeError(
      `Cannot iterate settled promises as the values must be iterable: current value is ${
        describe(values)
      }`,
    );
  }
  const signal = checkSignal(options?.signal, "iterate settled promises");
  const rt = runtimeOf(options?.loop ?? currentLoop());
  const state = new SettledState(rt);
  failure ??= readInputs(state, values);
  if (signal?.aborted) {
    state.fail(signal.reason); // as the combinators, an aborted signal wins over a failed read
    return state as SettledIterator<Awaited<V>>;
  }
  if (failure !== undefined) {
    state.fail(failure.error);
    return state as SettledIterator<Awaited<V>>;
  }
  if (state.pending === 0) {
    state.finished = true;
    return state as SettledIterator<Awaited<V>>;
  }
  if (signal !== undefined) {
    state.signal = signal;
    signal.addEventListener("abort", state.onAbort, { once: true });
  }
  state.tracked = true;
  trackOn(rt.loop, state);
  return state as SettledIterator<Awaited<V>>;
}

/**
 * Reads every input (observing each as it comes); returns the error if the iteration threw (the
 * inputs read before it are observed all the same, so their rejections count as handled).
 */
function readInputs(
  state: SettledState,
  values: Iterable<unknown>,
): { error: unknown } | undefined {
  try {
    for (const value of values) {
      state.pending++;
      observe(state.rt, value, onInput, state, state.count++);
    }
  } catch (error) {
    return { error };
  }
  return undefined;
}
