/**
 * `setTimeout` and `clearTimeout` on the current loop.
 *
 * @module
 */
import { currentLoop } from "../loop/default_loop.ts";
import type { Timer } from "../loop/types.ts";
import { clearHandle } from "./_clear.ts";

/**
 * Calls `callback(...args)` once, `delayMs` after the current loop's time (the loop whose callback
 * is running, else the default loop). See the module documentation for the delay policy: floats
 * honoured, `NaN`/negative/missing become 0, delays beyond 2^31-1 ms honoured exactly, `Infinity`
 * is a `RangeError`.
 *
 * @param callback The function to call.
 * @param delayMs The delay in ms (default 0).
 * @param args Arguments for the callback.
 * @returns The handle: `id`, `ref()`, `unref()`, `hasRef()`, `refresh()`, `close()`,
 * `[Symbol.dispose]` and a numeric primitive value (its id).
 * @throws {TypeError} If `callback` is not a function.
 * @throws {RangeError} If `delayMs` is `Infinity`.
 *
 * @example
 * ```ts
 * import { setTimeout } from "./set_timeout.ts";
 * setTimeout((name: string) => console.log(`hello ${name}`), 1.5, "world");
 * ```
 */
// deno-lint-ignore no-explicit-any
export function setTimeout<A extends any[]>(
  callback: (...args: A) => void,
  delayMs?: number,
  ...args: A
): Timer;
export function setTimeout(callback: () => void, delayMs?: number): Timer {
  const loop = currentLoop();
  // `arguments`, not a rest parameter: that made an array on every call (see Loop.setTimeout).
  return arguments.length <= 2
    ? loop.setTimeout(callback, delayMs)
    : Reflect.apply(loop.setTimeout, loop, arguments);
}

/**
 * Cancels a timeout (or an interval or immediate: the clear functions are interchangeable). A handle
 * is cleared on its own loop; a numeric id (`Number(handle)`) on the current loop. Unknown, stale or
 * foreign ids and `undefined` are ignored.
 *
 * @param timer The handle, its id, or `undefined`.
 *
 * @example
 * ```ts
 * import { clearTimeout, setTimeout } from "./set_timeout.ts";
 * const timer = setTimeout(() => console.log("never"), 10);
 * clearTimeout(timer);
 * clearTimeout(Number(timer)); // already cleared: a no-op
 * ```
 */
export function clearTimeout(timer?: Timer | number): void {
  clearHandle(timer);
}
