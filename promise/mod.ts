/**
 * Promises on the loop.
 *
 * - {@linkcode LoopPromise}: a Promises/A+ promise whose reactions run as the loop's microtasks
 *   (faster than native promises, with the loop's order, virtual time and error handling).
 * - Combinators, each its own entry: {@linkcode all}, {@linkcode allSettled}, {@linkcode race},
 *   {@linkcode any} (exactly as the language's, over any iterable), with a task-factory mode
 *   (`{ abortLosers: true }`) that hands each input an `AbortSignal` and aborts the losers.
 * - Helpers: {@linkcode abortable}, {@linkcode deadline} (on the loop's timers),
 *   {@linkcode settled} (outcomes in settlement order), {@linkcode toNative}, and
 *   {@linkcode TaskScope} for structured concurrency.
 *
 * Pending combinators and helpers are tracked on their loop: closing it rejects them with
 * `LoopClosedError` rather than leaving them pending forever.
 *
 * ```ts
 * import { all, deadline, LoopPromise } from "./mod.ts";
 * const values = await deadline(all([1, LoopPromise.resolve(2), Promise.resolve(3)]), 1_000);
 * console.log(values); // [1, 2, 3]
 * ```
 *
 * @module
 */
export { LoopPromise } from "./loop_promise.ts";
export type {
  LoopPromiseExecutor,
  LoopPromiseOptions,
  LoopPromiseState,
  LoopPromiseWithResolvers,
} from "./loop_promise.ts";
export { all } from "./all.ts";
export { allSettled } from "./all_settled.ts";
export { race } from "./race.ts";
export { any } from "./any.ts";
export type {
  AbortLosersOptions,
  CombinatorOptions,
  SettledOutcome,
  TaskFactory,
  TaskResults,
  TaskValue,
} from "./types.ts";
export { abortable, type AbortableOptions } from "./abortable.ts";
export { deadline, type DeadlineOptions } from "./deadline.ts";
export {
  settled,
  type SettledIterator,
  type SettledOptions,
  type SettledResult,
} from "./settled.ts";
export { toNative } from "./to_native.ts";
export {
  type TaskOutcome,
  TaskScope,
  TaskScopeClosedError,
  type TaskScopeOptions,
} from "./task_scope.ts";
