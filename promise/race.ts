/**
 * {@linkcode race}: `Promise.race` on a loop, with an optional task-factory mode that aborts the
 * losers.
 *
 * @module
 */
import type { LoopPromise } from "./loop_promise.ts";
import { combine, RACE } from "./_combinator.ts";
import type { AbortLosersOptions, CombinatorOptions, TaskValue } from "./types.ts";

/**
 * Settles like the first input to settle, exactly as `Promise.race` (iteration order, one read of
 * each thenable's `then`; a failing iterator rejects the result). An empty iterable gives a
 * promise that stays pending, tracked on its loop: closing the loop rejects it with
 * `LoopClosedError`.
 *
 * With `{ abortLosers: true }` the inputs are task factories `(signal) => value | promise`: each
 * is called with its own `AbortSignal`, and once one settles the others are aborted with a
 * `DOMException` named `AbortError` (the winner's signal is never aborted, so e.g. a winning
 * `fetch` can still read its body). On a closed loop no task is started: the result
 * rejects with `LoopClosedError`.
 *
 * @param values An iterable of values, promises or thenables (task factories with `abortLosers`).
 * @param options `loop`, `signal` (rejects the result, and aborts the tasks, when it aborts) and
 * `abortLosers`.
 * @returns A promise settled like the first input to settle.
 * @throws {TypeError} If `options`, `options.loop`, `options.signal` or `options.abortLosers` is
 * malformed.
 *
 * @example Like Promise.race
 * ```ts
 * import { race } from "./race.ts";
 * console.log(await race([new Promise(() => {}), "first"])); // "first"
 * ```
 *
 * @example The fastest mirror wins, the others are cancelled
 * ```ts
 * import { race } from "./race.ts";
 * const mirror = (name: string, ms: number) => (signal: AbortSignal) =>
 *   new Promise<string>((resolve, reject) => {
 *     const timer = setTimeout(() => resolve(name), ms);
 *     signal.addEventListener("abort", () => {
 *       clearTimeout(timer);
 *       reject(signal.reason);
 *     });
 *   });
 * console.log(await race([mirror("far", 500), mirror("near", 5)], { abortLosers: true })); // "near"
 * ```
 */
export function race<V>(
  values: Iterable<V>,
  options: AbortLosersOptions,
): LoopPromise<TaskValue<V>>;
/**
 * `Promise.race` over any iterable.
 *
 * @param values An iterable of values, promises or thenables.
 * @param options `loop` and `signal`.
 * @returns A promise settled like the first input to settle.
 */
export function race<V>(values: Iterable<V>, options?: CombinatorOptions): LoopPromise<Awaited<V>>;
export function race(
  values: Iterable<unknown>,
  options?: CombinatorOptions | AbortLosersOptions,
): LoopPromise<unknown> {
  return combine(RACE, values, options);
}
