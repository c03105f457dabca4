/**
 * Fast, precise, web-compatible timers on the event loop: `setTimeout`, `setInterval`,
 * `setImmediate` and their `clear*` on the current loop (the loop whose callback is running, else
 * the default loop), plus {@linkcode sleep}, {@linkcode interval} and {@linkcode install}.
 *
 * ## Semantics
 * - Due timers run in deadline order; equal deadlines in scheduling order (FIFO). The due timers
 *   are collected before any runs: a timer scheduled (or refreshed) by a timer callback never runs
 *   in the same pass, and cancelling a timer due later in the same pass prevents it.
 * - Timers never fire early: a callback runs only once the loop clock has reached its deadline.
 *   Delays count from the loop's cached time (as `uv_now`): inside a callback, the start of its
 *   phase; outside callbacks, the first reading of the current synchronous turn of JS (or the
 *   latest `loop.now()` call, which reads the clock afresh).
 * - Intervals run against absolute deadlines, so they do not drift. After a stall, the loop's
 *   `missed` option (`setInterval`) or the iterator's (`interval()`) decides: `"skip"` (default),
 *   `"delay"` or `"burst"`, as tokio's `MissedTickBehavior`.
 * - Handles have an `id`, a safe integer never reused, and convert to it (`Number(handle)`), so
 *   `clearTimeout(id)` works; the `clear*` functions are interchangeable, and clearing an unknown or
 *   stale id is a no-op. Each loop counts its ids up from 2^52 + 1, clear of Deno's (which count
 *   from 1): neither Deno's `clearTimeout` nor a loop's clears the other's timer by mistake.
 * - Callbacks run with `this` undefined (except through {@linkcode install}: the global object in
 *   its `"web"` mode, the handle in its `"node"` mode). `unref()`'d timers do not keep `run()` alive
 *   (on the default loop: the process), yet fire if it lives on.
 *   `refresh()` re-arms a pending or fired timeout from the current time; a cleared one stays
 *   cleared.
 *
 * ## Delay policy
 * - `delayMs` is a float in ms: sub-millisecond delays are honoured.
 * - `NaN`, negative or missing delays become 0 (non-numbers are converted with `Number()`, as the
 *   web does; `sleep()` and `interval()` require a number).
 * - Delays beyond 2^31-1 ms are honoured exactly (Node and browsers fire them after ~1 ms), except
 *   through {@linkcode install}'s `"node"` mode, which coerces as Node does.
 * - `Infinity` (or anything beyond `Number.MAX_SAFE_INTEGER`) is a `RangeError`.
 * - A callback that is not a function is a `TypeError` (no string evaluation).
 * - HTML's nesting clamp (from the sixth nested timer on, a delay under 4 ms becomes 4 ms) is off
 *   by default; the loop option `clampNestedTimers` turns it on for a whole loop, and
 *   {@linkcode install}'s `"web"` mode for the timers it schedules.
 *
 * ## Precision
 * The loop waits for the next deadline in its poller with a sub-millisecond timeout
 * (`epoll_pwait2` with `--allow-ffi`), or without FFI in a Deno timer for the bulk of the wait and
 * short yields for the last millisecond, never in Deno's `setTimeout` alone.
 *
 * @example Timers, sleep and an interval on a virtual clock
 * ```ts
 * import { Loop, VirtualClock } from "../loop/mod.ts";
 * import { interval, setTimeout, sleep } from "./mod.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const log: string[] = [];
 * loop.submit(() => {
 *   // Inside a loop callback, the free functions use that loop.
 *   setTimeout(() => log.push(`timeout at ${loop.now()}`), 1.5);
 * });
 * const slept = sleep(1000, { loop }).then(() => log.push(`slept until ${loop.now()}`));
 * const ticked = (async () => {
 *   for await (const tickMs of interval(400, { loop })) {
 *     log.push(`tick at ${tickMs}`);
 *     if (tickMs >= 800) break;
 *   }
 * })();
 * await loop.run();
 * await Promise.all([slept, ticked]);
 * console.log(log);
 * // [ "timeout at 1.5", "tick at 400", "tick at 800", "slept until 1000" ]
 * await loop.close();
 * ```
 *
 * @example Fake time for code that calls the global timers
 * ```ts
 * import { Loop, VirtualClock } from "../loop/mod.ts";
 * import { install } from "./mod.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * using _timers = install(loop); // globalThis.setTimeout & co. now schedule on `loop`
 * let fired = false;
 * setTimeout(() => (fired = true), 3_600_000);
 * await loop.run(); // an hour of virtual time, at once
 * console.log(fired, loop.now()); // true 3600000
 * ```
 *
 * @module
 */
export * from "./set_timeout.ts";
export * from "./set_interval.ts";
export * from "./set_immediate.ts";
export * from "./sleep.ts";
export * from "./interval.ts";
export * from "./install.ts";
export type { MissedTickBehavior, Timer } from "../loop/types.ts";
