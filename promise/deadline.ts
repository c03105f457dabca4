/**
 * {@linkcode deadline}: a promise that rejects with a `TimeoutError` if the input does not settle
 * in time, on the loop's timers.
 *
 * @module
 */
import { checkOptionalBoolean, describe } from "../poller/_validate.ts";
import type { Loop } from "../loop/loop.ts";
import type { Timer } from "../loop/types.ts";
import { type LoopPromise, makePromise, observe } from "./loop_promise.ts";
import { checkOptions, checkSignal, trackOn } from "./_combinator.ts";
import { helperRuntime, PendingHelper } from "./_helper.ts";

/** Options of {@linkcode deadline}. */
export interface DeadlineOptions {
  /** Rejects the result with `signal.reason` when it aborts first. */
  signal?: AbortSignal;
  /** The loop whose timer measures the deadline (and of the result); default the input's loop if it
   * is a `LoopPromise`, else `currentLoop()`. */
  loop?: Loop;
  /**
   * Whether the deadline timer keeps the loop alive while the input is pending (default `true`, so
   * the deadline fires even if nothing else is pending). With `false` the loop may finish first, and
   * closing it rejects the result with `LoopClosedError`.
   */
  ref?: boolean;
}

class DeadlineState extends PendingHelper {
  readonly kind = "promise.deadline";
  readonly label: string;
  timer: Timer | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  readonly onAbort = (): void => this.settle(true, this.signal!.reason);

  constructor(loop: Loop, result: LoopPromise<unknown>, delayMs: number) {
    super(loop, result);
    this.label = `deadline(${delayMs} ms)`;
  }

  cleanup(): void {
    if (this.timer !== undefined) {
      const timer = this.timer;
      this.timer = undefined;
      if (this.loop.state !== "closed") this.loop.clearTimeout(timer);
    }
    this.signal?.removeEventListener("abort", this.onAbort);
  }
}

function onInput(state: DeadlineState, _index: number, rejected: boolean, value: unknown): void {
  state.settle(rejected, value);
}

// Named for the loop's timer labels (`aliveReasons()`, close reports).
function deadlineTimer(state: DeadlineState, delayMs: number): void {
  state.timer = undefined;
  state.settle(
    true,
    new DOMException(
      `Deadline of ${delayMs} ms exceeded before the promise settled`,
      "TimeoutError",
    ),
  );
}

/**
 * Follows `promise`, but rejects with a `DOMException` named `"TimeoutError"` if it has not settled
 * `delayMs` after the call, measured on the loop's timers (so in virtual time on a
 * `VirtualClock` loop). The timer is cleared as soon as the input settles, so a settled deadline
 * never keeps the loop alive; while pending, the timer keeps it alive unless `ref: false`. The input
 * is not cancelled (pass it a signal for that) and is marked handled. `delayMs` of `Infinity`
 * means no deadline.
 *
 * @typeParam T The value's type.
 * @param promise A promise, thenable or value.
 * @param delayMs How long to wait, in ms (a non-negative number).
 * @param options `signal`, `loop` and `ref`.
 * @returns A promise settled like `promise`, or rejected with the `TimeoutError`.
 * @throws {TypeError} If `delayMs` is not a number.
 * @throws {RangeError} If `delayMs` is negative or `NaN`, or is finite beyond 2^53-1 ms.
 * @throws {TypeError} If `options`, `options.signal` or `options.ref` is malformed.
 *
 * @example In virtual time
 * ```ts
 * import { Loop, VirtualClock } from "../loop/mod.ts";
 * import { deadline } from "./deadline.ts";
 * import { LoopPromise } from "./loop_promise.ts";
 * const loop = new Loop({ clock: new VirtualClock() });
 * const slow = new LoopPromise((resolve) => loop.setTimeout(() => resolve("late"), 60_000), { loop });
 * deadline(slow, 5_000).catch((error) => console.log(error.name, loop.now())); // "TimeoutError" 5000
 * await loop.run();
 * await loop.close();
 * ```
 */
export function deadline<T>(
  promise: T | PromiseLike<T>,
  delayMs: number,
  options?: DeadlineOptions,
): LoopPromise<Awaited<T>> {
  if (typeof delayMs !== "number") {
    throw new TypeError(
      `Cannot set a deadline as delayMs must be a number: current value is ${describe(delayMs)}`,
    );
  }
  if (!(delayMs >= 0)) {
    throw new RangeError(
      `Cannot set a deadline as delayMs must be a number >= 0: current value is ${
        describe(delayMs)
      }`,
    );
  }
  if (delayMs > Number.MAX_SAFE_INTEGER && delayMs !== Infinity) {
    // The loop's timers take at most 2^53-1 ms; refused here, not as a rejection that would
    // look like the loop's own refusal.
    throw new RangeError(
      `Cannot set a deadline as delayMs must be at most 2^53-1 ms, or Infinity for none: current value is ${delayMs}`,
    );
  }
  checkOptions(options, "set a deadline");
  const ref: unknown = options?.ref;
  checkOptionalBoolean(ref, "set a deadline", "ref");
  const signal = checkSignal(options?.signal, "set a deadline");
  const rt = helperRuntime(promise, options?.loop);
  const loop = rt.loop;
  const result = makePromise<Awaited<T>>(rt);
  const state = new DeadlineState(loop, result, delayMs);
  if (signal?.aborted) {
    state.settle(true, signal.reason);
    observe(rt, promise, onInput, state, 0, true); // handles the input; the state ignores it
    return result;
  }
  if (delayMs !== Infinity) {
    try {
      state.timer = loop.setTimeout(deadlineTimer, delayMs, state, delayMs);
    } catch (error) {
      // The loop is closing or closed: no timer can run there any more.
      state.settle(true, error);
      observe(rt, promise, onInput, state, 0, true);
      return result;
    }
    if (options?.ref === false) state.timer.unref();
  }
  if (signal !== undefined) {
    state.signal = signal;
    signal.addEventListener("abort", state.onAbort, { once: true });
  }
  // Untracked: the state keeps run() alive until the outcome; an input that never settles must
  // not keep it alive past the deadline.
  observe(rt, promise, onInput, state, 0, true);
  if (!state.done) {
    state.tracked = true;
    trackOn(loop, state);
  }
  return result;
}
