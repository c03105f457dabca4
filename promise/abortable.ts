/**
 * {@linkcode abortable}: a promise that rejects when a signal aborts.
 *
 * @module
 */
import { describe } from "../poller/_validate.ts";
import type { Loop } from "../loop/loop.ts";
import { type LoopPromise, makePromise, observe, settlePromise } from "./loop_promise.ts";
import { checkOptions, trackOn } from "./_combinator.ts";
import { helperRuntime, PendingHelper } from "./_helper.ts";

/** Options of {@linkcode abortable}. */
export interface AbortableOptions {
  /** The loop of the result; default the input's loop if it is a `LoopPromise`, else `currentLoop()`. */
  loop?: Loop;
}

class AbortableState extends PendingHelper {
  readonly kind = "promise.abortable";
  readonly label = "abortable()";
  signal: AbortSignal | undefined = undefined;
  readonly onAbort = (): void => this.settle(true, this.signal!.reason);

  cleanup(): void {
    this.signal!.removeEventListener("abort", this.onAbort);
  }
}

function onInput(state: AbortableState, _index: number, rejected: boolean, value: unknown): void {
  state.settle(rejected, value);
}

function ignore(): void {}

/**
 * Follows `promise`, but rejects with `signal.reason` as soon as `signal` aborts (at once if it
 * already has). The input is not cancelled (use its own signal for that); it is marked handled, so
 * its later rejection is not reported. The result is tracked on its loop while pending: closing the
 * loop rejects it with `LoopClosedError`.
 *
 * @typeParam T The value's type.
 * @param promise A promise, thenable or value.
 * @param signal The signal that abandons the wait.
 * @param options The `loop` of the result.
 * @returns A promise settled like `promise`, or rejected with the abort reason.
 * @throws {TypeError} If `signal` is not an `AbortSignal` or `options` is malformed.
 *
 * @example
 * ```ts
 * import { abortable } from "./abortable.ts";
 * const controller = new AbortController();
 * const never = new Promise<string>(() => {});
 * const result = abortable(never, controller.signal);
 * controller.abort(new Error("user gave up"));
 * console.log(await result.catch((error) => error.message)); // "user gave up"
 * ```
 */
export function abortable<T>(
  promise: T | PromiseLike<T>,
  signal: AbortSignal,
  options?: AbortableOptions,
): LoopPromise<Awaited<T>> {
  checkOptions(options, "make a promise abortable");
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot make a promise abortable as the signal must be an AbortSignal: current value is ${
        describe(signal)
      }`,
    );
  }
  const rt = helperRuntime(promise, options?.loop);
  const result = makePromise<Awaited<T>>(rt);
  if (signal.aborted) {
    settlePromise(result, true, signal.reason);
    observe(rt, promise, ignore, undefined, 0, true); // its outcome no longer matters: handle it
    return result;
  }
  const state = new AbortableState(rt.loop, result);
  state.signal = signal;
  signal.addEventListener("abort", state.onAbort, { once: true });
  // Untracked: the state keeps run() alive until the outcome, not an input abandoned by an abort.
  observe(rt, promise, onInput, state, 0, true);
  if (!state.done) {
    state.tracked = true;
    trackOn(rt.loop, state);
  }
  return result;
}
