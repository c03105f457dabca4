/**
 * The default loop and the current loop.
 *
 * @module
 */
import { Loop } from "./loop.ts";
import { kCreateDefault } from "./_internal.ts";
import { runningLoopOrUndefined } from "./_current.ts";

// The one piece of module-level state the package keeps: the default loop, made on first use.
let theDefaultLoop: Loop | undefined;

/**
 * The default loop: made on first use, shared by the free functions of `timers/` and `promise/`. It
 * starts itself when work is scheduled on it (in a native microtask, so the current synchronous code
 * finishes first) and goes dormant when no ref'd work is left, so it never keeps a Deno process
 * alive on its own. Unref'd timers still fire while the process lives on for other reasons (as in
 * Node): dormant, it waits for the next one in an unref'd Deno timer, so they may then fire a
 * millisecond or so late. An error thrown by one of its callbacks with no `onError` is reported as
 * Deno reports a throw in a timer callback (`reportError`: an `error` event on `globalThis`, and
 * unless a listener prevents it the process ends there); an unhandled rejection of one of its
 * promises dispatches a cancelable `unhandledrejection` event on `globalThis` first. It is never
 * closed.
 *
 * @returns The default loop.
 *
 * @example
 * ```ts
 * import { defaultLoop } from "./default_loop.ts";
 * defaultLoop().setTimeout(() => console.log("from the default loop"), 1);
 * ```
 */
export function defaultLoop(): Loop {
  return theDefaultLoop ??= Loop[kCreateDefault]();
}

/**
 * The loop whose callback is running right now, else the default loop.
 *
 * @returns The current loop.
 *
 * @example
 * ```ts
 * import { currentLoop, Loop } from "../mod.ts";
 * const loop = new Loop();
 * loop.submit(() => console.log(currentLoop() === loop)); // true
 * await loop.run();
 * ```
 */
export function currentLoop(): Loop {
  return runningLoopOrUndefined() ?? defaultLoop();
}
