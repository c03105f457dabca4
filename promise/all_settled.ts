/**
 * {@linkcode allSettled}: `Promise.allSettled` on a loop.
 *
 * @module
 */
import type { LoopPromise } from "./loop_promise.ts";
import { ALL_SETTLED, combine } from "./_combinator.ts";
import type { CombinatorOptions, SettledOutcome } from "./types.ts";

/**
 * Waits for every input to settle: a promise of `{ status: "fulfilled", value }` or
 * `{ status: "rejected", reason }` per input, in input order, exactly as `Promise.allSettled`
 * (iteration order, one read of each thenable's `then`, `[]` for an empty iterable, a failing
 * iterator rejects the result). Never rejects otherwise, except through `options.signal`.
 *
 * The result is bound to `options.loop ?? currentLoop()` and tracked there while pending: closing
 * the loop rejects it with `LoopClosedError`.
 *
 * @param values An iterable of values, promises or thenables.
 * @param options `loop`, and `signal` (rejects the result with its reason when it aborts first).
 * @returns A promise of the outcomes in input order.
 * @throws {TypeError} If `options`, `options.loop` or `options.signal` is malformed.
 *
 * @example
 * ```ts
 * import { allSettled } from "./all_settled.ts";
 * const outcomes = await allSettled([1, Promise.reject(new Error("no"))]);
 * console.log(outcomes[0]); // { status: "fulfilled", value: 1 }
 * console.log(outcomes[1].status); // "rejected"
 * ```
 */
export function allSettled<const V extends readonly unknown[]>(
  values: V,
  options?: CombinatorOptions,
): LoopPromise<{ -readonly [P in keyof V]: SettledOutcome<Awaited<V[P]>> }>;
/**
 * `Promise.allSettled` over any iterable.
 *
 * @param values An iterable of values, promises or thenables.
 * @param options `loop` and `signal`.
 * @returns A promise of the outcomes in input order.
 */
export function allSettled<V>(
  values: Iterable<V>,
  options?: CombinatorOptions,
): LoopPromise<SettledOutcome<Awaited<V>>[]>;
export function allSettled(
  values: Iterable<unknown>,
  options?: CombinatorOptions,
): LoopPromise<SettledOutcome<unknown>[]> {
  return combine(ALL_SETTLED, values, options) as LoopPromise<SettledOutcome<unknown>[]>;
}
