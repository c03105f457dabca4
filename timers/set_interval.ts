/**
 * `setInterval` and `clearInterval` on the current loop.
 *
 * @module
 */
import { currentLoop } from "../loop/default_loop.ts";
import type { Timer } from "../loop/types.ts";
import { clearHandle } from "./_clear.ts";

/**
 * Calls `callback(...args)` every `delayMs` on the current loop, against absolute deadlines (no
 * drift). After a stall the loop's `missed` option decides what happens (`"skip"` by default); for a
 * per-iterator choice use {@linkcode interval}.
 *
 * @param callback The function to call.
 * @param delayMs The period in ms (default 0; see the module documentation for the delay policy).
 * @param args Arguments for the callback.
 * @returns The handle, as for `setTimeout`.
 * @throws {TypeError} If `callback` is not a function.
 * @throws {RangeError} If `delayMs` is `Infinity`.
 *
 * @example
 * ```ts
 * import { clearInterval, setInterval } from "./set_interval.ts";
 * let ticks = 0;
 * const timer = setInterval(() => {
 *   if (++ticks === 3) clearInterval(timer);
 * }, 1);
 * ```
 */
// deno-lint-ignore no-explicit-any
export function setInterval<A extends any[]>(
  callback: (...args: A) => void,
  delayMs?: number,
  ...args: A
): Timer;
export function setInterval(callback: () => void, delayMs?: number): Timer {
  const loop = currentLoop();
  // `arguments`, not a rest parameter: that made an array on every call (see Loop.setInterval).
  return arguments.length <= 2
    ? loop.setInterval(callback, delayMs)
    : Reflect.apply(loop.setInterval, loop, arguments);
}

/**
 * Cancels an interval; the same as `clearTimeout` (a handle on its own loop, an id on the current
 * loop; unknown ids ignored).
 *
 * @param timer The handle, its id, or `undefined`.
 *
 * @example
 * ```ts
 * import { clearInterval, setInterval } from "./set_interval.ts";
 * clearInterval(setInterval(() => console.log("never"), 10));
 * ```
 */
export function clearInterval(timer?: Timer | number): void {
  clearHandle(timer);
}
