/**
 * Promises on the loop: {@linkcode LoopPromise}, the combinators
 * ({@linkcode all}, {@linkcode allSettled}, {@linkcode race}, {@linkcode any}), and helpers.
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
export type * from "./types.ts";
