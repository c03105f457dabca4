/**
 * {@linkcode all}: `Promise.all` on a loop, with an optional task-factory mode that aborts the
 * remaining tasks on the first rejection.
 *
 * @module
 */
import type { LoopPromise } from "./loop_promise.ts";
import { ALL, combine } from "./_combinator.ts";
import type { AbortLosersOptions, CombinatorOptions, TaskResults, TaskValue } from "./types.ts";

/**
 * Waits for every input: a promise of their values in input order, rejected with the first
 * rejection (by time). Accepts any iterable of values, native promises, `LoopPromise`s and
 * thenables, exactly as `Promise.all` does: iteration order, one read of each thenable's `then`,
 * an empty iterable fulfils with `[]`, and a failing iterator rejects the result (it never throws).
 *
 * With `{ abortLosers: true }` the inputs are task factories `(signal) => value | promise`: each
 * is called with its own `AbortSignal`, and on the first rejection the tasks still pending are
 * aborted with a `DOMException` named `AbortError` whose `cause` is that rejection. On a closed loop no task is started: the result
 * rejects with `LoopClosedError`.
 *
 * The result is bound to `options.loop ?? currentLoop()`; while pending it is tracked there, so
 * closing the loop rejects it with `LoopClosedError` instead of leaving it pending forever.
 *
 * @param values An iterable of values, promises or thenables (task factories with `abortLosers`).
 * @param options `loop`, `signal` (rejects the result, and aborts the tasks, when it aborts) and
 * `abortLosers`.
 * @returns A promise of the values in input order.
 * @throws {TypeError} If `options`, `options.loop`, `options.signal` or `options.abortLosers` is
 * malformed.
 *
 * @example Like Promise.all
 * ```ts
 * import { all } from "./all.ts";
 * import { LoopPromise } from "./loop_promise.ts";
 * const values = await all([1, Promise.resolve("two"), LoopPromise.resolve(3n)]);
 * console.log(values); // [1, "two", 3n]
 * ```
 *
 * @example Fail fast and cancel the rest
 * ```ts
 * import { all } from "./all.ts";
 * const aborted: string[] = [];
 * const task = (name: string, ms: number, fail = false) => (signal: AbortSignal) =>
 *   new Promise<string>((resolve, reject) => {
 *     const timer = setTimeout(() => (fail ? reject(new Error(name)) : resolve(name)), ms);
 *     signal.addEventListener("abort", () => {
 *       clearTimeout(timer);
 *       aborted.push(name);
 *       reject(signal.reason);
 *     });
 *   });
 * const result = all([task("slow", 1000), task("broken", 5, true)], { abortLosers: true });
 * await result.catch((error) => console.log(error.message)); // "broken"
 * console.log(aborted); // ["slow"]
 * ```
 */
export function all<const F extends readonly unknown[]>(
  values: F,
  options: AbortLosersOptions,
): LoopPromise<TaskResults<F>>;
/**
 * Task-factory mode over any iterable.
 *
 * @param values An iterable of task factories (or plain values).
 * @param options `abortLosers: true`, `loop`, `signal`.
 * @returns A promise of the results in input order.
 */
export function all<V>(
  values: Iterable<V>,
  options: AbortLosersOptions,
): LoopPromise<TaskValue<V>[]>;
/**
 * `Promise.all` over a tuple.
 *
 * @param values A tuple of values, promises or thenables.
 * @param options `loop` and `signal`.
 * @returns A promise of the tuple of values.
 */
export function all<const V extends readonly unknown[]>(
  values: V,
  options?: CombinatorOptions,
): LoopPromise<{ -readonly [P in keyof V]: Awaited<V[P]> }>;
/**
 * `Promise.all` over any iterable.
 *
 * @param values An iterable of values, promises or thenables.
 * @param options `loop` and `signal`.
 * @returns A promise of the values in input order.
 */
export function all<V>(values: Iterable<V>, options?: CombinatorOptions): LoopPromise<Awaited<V>[]>;
export function all(
  values: Iterable<unknown>,
  options?: CombinatorOptions | AbortLosersOptions,
): LoopPromise<unknown[]> {
  return combine(ALL, values, options) as LoopPromise<unknown[]>;
}
