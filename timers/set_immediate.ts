/**
 * `setImmediate` and `clearImmediate` on the current loop.
 *
 * @module
 */
import { currentLoop } from "../loop/default_loop.ts";
import type { Timer } from "../loop/types.ts";
import { clearHandle } from "./_clear.ts";

/**
 * Calls `callback(...args)` in the current loop's next check phase (after timers, tasks and fd
 * callbacks).
 *
 * @param callback The function to call.
 * @param args Arguments for the callback.
 * @returns The handle (`refresh()` does nothing for an immediate).
 * @throws {TypeError} If `callback` is not a function.
 *
 * @example
 * ```ts
 * import { setImmediate } from "./set_immediate.ts";
 * setImmediate((n: number) => console.log(n), 42);
 * ```
 */
// deno-lint-ignore no-explicit-any
export function setImmediate<A extends any[]>(callback: (...args: A) => void, ...args: A): Timer;
export function setImmediate(callback: () => void): Timer {
  const loop = currentLoop();
  // `arguments`, not a rest parameter: that made an array on every call (see Loop.setImmediate).
  return arguments.length <= 1
    ? loop.setImmediate(callback)
    : Reflect.apply(loop.setImmediate, loop, arguments);
}

/**
 * Cancels an immediate (a handle on its own loop, an id on the current loop; unknown ids ignored).
 *
 * @param immediate The handle, its id, or `undefined`.
 *
 * @example
 * ```ts
 * import { clearImmediate, setImmediate } from "./set_immediate.ts";
 * clearImmediate(setImmediate(() => console.log("never")));
 * ```
 */
export function clearImmediate(immediate?: Timer | number): void {
  clearHandle(immediate);
}
