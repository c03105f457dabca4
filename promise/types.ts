/**
 * Types shared by the promise combinators.
 *
 * @module
 */
import type { Loop } from "../loop/loop.ts";

/** Options of `all`, `allSettled`, `race` and `any`. */
export interface CombinatorOptions {
  /** The loop the result is bound to (and tracked on); default `currentLoop()`. */
  loop?: Loop;
  /**
   * Rejects the result with `signal.reason` when it aborts before the outcome is known (and
   * aborts the inputs' signals in `abortLosers` mode). An already-aborted signal rejects at once,
   * without reading the inputs.
   */
  signal?: AbortSignal;
  /** `true` switches to task-factory mode; see {@linkcode AbortLosersOptions}. */
  abortLosers?: false;
}

/**
 * Task-factory mode (beyond the language): each function input is called with its own derived
 * `AbortSignal` (which also follows `options.signal`), and once the outcome is known the inputs
 * still pending are aborted: `race` on the first settlement, `any` on the first fulfilment, `all`
 * on the first rejection. Settled inputs (the winner) are never aborted. Non-function inputs are
 * used as they are; a factory that throws counts as a rejected input.
 */
export interface AbortLosersOptions {
  /** The loop the result is bound to (and tracked on); default `currentLoop()`. */
  loop?: Loop;
  /** Aborting it aborts every pending input's signal with its reason and rejects the result. */
  signal?: AbortSignal;
  /** Call function inputs with a derived signal and abort the losers. */
  abortLosers: true;
}

/** A task started by a combinator in {@linkcode AbortLosersOptions} mode or by a `TaskScope`. */
export type TaskFactory<T> = (signal: AbortSignal) => T | PromiseLike<T>;

/** The outcome of one input of `allSettled` (the same shape as native `PromiseSettledResult`). */
export type SettledOutcome<T> =
  | { status: "fulfilled"; value: T }
  // deno-lint-ignore no-explicit-any
  | { status: "rejected"; reason: any };

/** The value a task-factory-mode input yields: a factory's awaited result, or the input awaited. */
export type TaskValue<V> = V extends TaskFactory<infer R> ? Awaited<R> : Awaited<V>;

/** The results of task factories, in input order (a tuple for a tuple of factories). */
export type TaskResults<F extends readonly unknown[]> = {
  -readonly [P in keyof F]: TaskValue<F[P]>;
};
