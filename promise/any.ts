/**
 * {@linkcode any}: `Promise.any` on a loop, with an optional task-factory mode that aborts the
 * losers once one fulfils.
 *
 * @module
 */
import type { LoopPromise } from "./loop_promise.ts";
import { ANY, combine } from "./_combinator.ts";
import type { AbortLosersOptions, CombinatorOptions, TaskValue } from "./types.ts";

/**
 * Fulfils with the first input to fulfil; if all reject, rejects with an `AggregateError` whose
 * `errors` are the reasons in input order (message `"All promises were rejected"`), exactly as
 * `Promise.any` (an empty iterable rejects at once with an empty `AggregateError`; a failing
 * iterator rejects with its error).
 *
 * With `{ abortLosers: true }` the inputs are task factories `(signal) => value | promise`: each
 * is called with its own `AbortSignal`, and once one fulfils the others still pending are aborted
 * with a `DOMException` named `AbortError`. On a closed loop no task is started: the result
 * rejects with `LoopClosedError`.
 *
 * The result is bound to `options.loop ?? currentLoop()` and tracked there while pending: closing
 * the loop rejects it with `LoopClosedError`.
 *
 * @param values An iterable of values, promises or thenables (task factories with `abortLosers`).
 * @param options `loop`, `signal` (rejects the result, and aborts the tasks, when it aborts) and
 * `abortLosers`.
 * @returns A promise of the first fulfilment.
 * @throws {TypeError} If `options`, `options.loop`, `options.signal` or `options.abortLosers` is
 * malformed.
 *
 * @example Like Promise.any
 * ```ts
 * import { any } from "./any.ts";
 * console.log(await any([Promise.reject(new Error("a")), Promise.resolve("b")])); // "b"
 * const error = await any([Promise.reject(1), Promise.reject(2)]).catch((e) => e);
 * console.log(error instanceof AggregateError, error.errors); // true [1, 2]
 * ```
 *
 * @example First answer wins, the rest are cancelled
 * ```ts
 * import { any } from "./any.ts";
 * const ask = (answer: string | Error, ms: number) => (signal: AbortSignal) =>
 *   new Promise<string>((resolve, reject) => {
 *     const timer = setTimeout(() => answer instanceof Error ? reject(answer) : resolve(answer), ms);
 *     signal.addEventListener("abort", () => {
 *       clearTimeout(timer);
 *       reject(signal.reason);
 *     });
 *   });
 * const answer = await any([ask(new Error("down"), 1), ask("yes", 5), ask("late", 500)], {
 *   abortLosers: true,
 * });
 * console.log(answer); // "yes"
 * ```
 */
export function any<V>(values: Iterable<V>, options: AbortLosersOptions): LoopPromise<TaskValue<V>>;
/**
 * `Promise.any` over any iterable.
 *
 * @param values An iterable of values, promises or thenables.
 * @param options `loop` and `signal`.
 * @returns A promise of the first fulfilment.
 */
export function any<V>(values: Iterable<V>, options?: CombinatorOptions): LoopPromise<Awaited<V>>;
export function any(
  values: Iterable<unknown>,
  options?: CombinatorOptions | AbortLosersOptions,
): LoopPromise<unknown> {
  return combine(ANY, values, options);
}
