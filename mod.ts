/**
 * **eventloop**: a pure-TypeScript event loop for Deno that gives the runtime what it lacks:
 * readiness polling of any file descriptor (epoll, kqueue, IOCP, poll(2) over FFI), fast and precise
 * timers, deterministic scheduling with a virtual clock, a Promises/A+ promise whose reactions run on
 * the loop, and metrics.
 *
 * Entry points: `./loop` (the {@linkcode Loop}), `./timers`, `./promise`, `./poller`. This root
 * module re-exports `./loop`, plus {@linkcode LoopPromise} and the errors `watch()` throws
 * ({@linkcode PollerError}, {@linkcode PollerUnavailableError}).
 *
 * ```ts
 * import { Loop, VirtualClock } from "./mod.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const log: string[] = [];
 * loop.setTimeout(() => log.push("timer"), 1000);
 * loop.setImmediate(() => log.push("immediate"));
 * loop.submit(() => log.push("task"));
 * await loop.run(); // virtual time: the 1 s timer fires at once
 * console.log(log); // [ "task", "immediate", "timer" ]
 * await loop.close();
 * ```
 *
 * @module
 */
export * from "./loop/mod.ts";
export { LoopPromise } from "./promise/loop_promise.ts";
export { PollerError, PollerUnavailableError } from "./poller/errors.ts";
