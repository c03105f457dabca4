/**
 * The {@linkcode Loop}: tasks, microtasks, timers, immediates and fd watches with a documented phase
 * order, hosted inside Deno's own event loop.
 *
 * @module
 */
import { type AnyCallback, argumentsFrom, EMPTY_ARGS, LoopCore } from "./_core.ts";
import {
  kAfterCheckpoint,
  kClearOwn,
  kCreateDefault,
  kMicrotaskSeq,
  kPromiseRuntime,
  kReportHandled,
  kReportUnhandled,
  kRequestHostTurn,
  kTrack,
  kUntrack,
  type TrackedResource,
} from "./_internal.ts";
import type {
  AliveReason,
  CloseReport,
  LoopOptions,
  LoopState,
  Timer,
  Watch,
  WatchEvent,
  WatchInterest,
  WatchOptions,
} from "./types.ts";
import type { MetricsSnapshot } from "./metrics.ts";
// The one value import from promise/ into loop/ (promise/ imports loop/ in turn): `loop.promise()`
// and `loop.withResolvers()` make LoopPromises, and a LoopPromise must reach its loop. Neither
// module touches the other's bindings while it is evaluated, so the cycle is safe whichever entry
// point loads first (tests/loop/promise_helpers_test.ts loads each one first in a fresh process).
import {
  LoopPromise,
  type LoopPromiseExecutor,
  type LoopPromiseWithResolvers,
} from "../promise/loop_promise.ts";

/**
 * An event loop with JavaScript semantics, hosted inside Deno.
 *
 * One iteration runs these phases in order (libuv's, with the task queue where libuv runs its
 * pending callbacks):
 *
 * 1. **timers**: due timers in (deadline, scheduling order); the clock is read just before.
 * 2. **tasks**: tasks from {@linkcode Loop.submit} queued when the phase began.
 * 3. **poll**: fd readiness callbacks (zero timeout while anything else is runnable).
 * 4. **check**: immediates queued when the phase began.
 * 5. **close**: `onClose` callbacks of watches closed since the last iteration.
 *
 * A microtask checkpoint (every loop microtask, including those queued meanwhile) follows every
 * callback. Each phase runs only the work that was queued when it began; work queued meanwhile runs
 * in the next iteration.
 *
 * `run()` shares the thread with Deno's own event loop: it runs iterations in batches of at most
 * `yieldIntervalMs` (default 4 ms), yields to Deno between them (~4 µs through a `MessageChannel`;
 * through a Deno timer at least every `yieldIntervalMs`, as Deno runs its own timers and I/O only
 * about every 129th message), and when idle parks in the poller (on a thread of Deno's blocking
 * pool, FFI permitting) or in a Deno timer until the next deadline, an fd event or new work
 * arrives.
 *
 * @example Ordering
 * ```ts
 * import { Loop } from "./loop.ts";
 * const loop = new Loop();
 * const log: string[] = [];
 * loop.setImmediate(() => log.push("immediate"));
 * loop.setTimeout(() => log.push("timeout"), 0);
 * loop.submit(() => {
 *   log.push("task");
 *   loop.queueMicrotask(() => log.push("microtask"));
 * });
 * await loop.run();
 * console.log(log.join(" ")); // "timeout task microtask immediate"
 * await loop.close();
 * ```
 */
export class Loop implements AsyncDisposable {
  #core: LoopCore;

  /**
   * Makes a loop. Nothing runs until {@linkcode Loop.run} or {@linkcode Loop.runOnce}.
   *
   * @param options Clock, error handlers, poller, metrics and scheduling options.
   */
  constructor(options?: LoopOptions) {
    const isDefault = (options as { [kCreateDefault]?: boolean } | undefined)?.[kCreateDefault] ===
      true;
    this.#core = new LoopCore(this, options, isDefault);
  }

  /** @internal Builds the default loop (see `defaultLoop()`). */
  static [kCreateDefault](): Loop {
    return new Loop({ [kCreateDefault]: true } as LoopOptions);
  }

  /** The loop's state: `"idle"`, `"running"`, `"closing"` or `"closed"`. */
  get state(): LoopState {
    return this.#core.state;
  }

  /** The loop's label (`"default"` for the default loop). */
  get label(): string {
    return this.#core.label;
  }

  /**
   * The loop time in ms: cached inside callbacks (like `uv_now`: read before timers are checked and
   * again at the start of every later non-empty phase), read fresh outside them. Timer delays are
   * measured from it: a timer set by a callback counts its delay from the start of that callback's
   * phase, as in Node, and never fires before the loop clock reaches its deadline. Outside
   * callbacks, timers set in one synchronous turn of JS share one reading (the first timer's, or
   * the latest `now()` call's), so call `now()` after a long synchronous stretch to measure later
   * timers from that point. That sharing is the system clock's only: outside callbacks an injected
   * clock (a `VirtualClock`) is read afresh by every call, so a test that advances it between two
   * `setTimeout` calls measures the second from the new time.
   *
   * @returns The loop's current time in ms.
   */
  now(): number {
    return this.#core.readNow();
  }

  /**
   * Queues a task (a macrotask), run in the tasks phase.
   *
   * @param task The function to run.
   * @throws {TypeError} If `task` is not a function.
   * @throws {LoopClosedError} If the loop is closing or closed.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.submit(() => console.log("ran"));
   * await loop.run();
   * ```
   */
  submit(task: () => void): void {
    this.#core.submit(task);
  }

  /**
   * Queues a loop microtask, run at the next checkpoint (after the current callback, before the next
   * task). Unlike tasks, microtasks are still accepted while the loop is closing.
   *
   * @param callback The function to run.
   * @throws {TypeError} If `callback` is not a function.
   * @throws {LoopClosedError} If the loop is closed.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.submit(() => loop.queueMicrotask(() => console.log("after the task")));
   * await loop.run();
   * ```
   */
  queueMicrotask(callback: () => void): void {
    this.#core.queueMicrotask(callback);
  }

  /**
   * A new {@linkcode LoopPromise} bound to this loop: `new LoopPromise(executor, { loop: this })`.
   * Its reactions run as this loop's microtasks.
   *
   * @typeParam T The fulfilment value's type.
   * @param executor Called at once with `resolve` and `reject` (only the first call of either
   * counts); an exception it throws rejects the promise.
   * @returns The promise.
   * @throws {TypeError} If `executor` is not a function.
   *
   * @example
   * ```ts
   * import { Loop, VirtualClock } from "./mod.ts";
   * const loop = new Loop({ clock: new VirtualClock() });
   * const later = loop.promise<string>((resolve) => loop.setTimeout(() => resolve("done"), 50));
   * later.then((text) => console.log(text, loop.now())); // "done" 50
   * await loop.run();
   * await loop.close();
   * ```
   */
  promise<T>(executor: LoopPromiseExecutor<T>): LoopPromise<T> {
    return new LoopPromise(executor, { loop: this });
  }

  /**
   * A pending {@linkcode LoopPromise} bound to this loop, with its resolve and reject functions:
   * `LoopPromise.withResolvers({ loop: this })`.
   *
   * @typeParam T The fulfilment value's type.
   * @returns `{ promise, resolve, reject }`; later calls of either function are ignored.
   *
   * @example
   * ```ts
   * import { Loop } from "./mod.ts";
   * const loop = new Loop();
   * const { promise, resolve } = loop.withResolvers<number>();
   * loop.submit(() => resolve(42));
   * promise.then((n) => console.log(n)); // 42
   * await loop.run();
   * await loop.close();
   * ```
   */
  withResolvers<T>(): LoopPromiseWithResolvers<T> {
    return LoopPromise.withResolvers<T>({ loop: this });
  }

  /**
   * Calls `callback(...args)` once, `delayMs` after the loop's current time. Delays are floats: sub-
   * millisecond delays are honoured; `NaN`, negative or missing become 0; delays beyond 2^31-1 ms are
   * honoured exactly (unlike Node and browsers); `Infinity` is a `RangeError`. The callback never runs
   * before the loop clock reaches the deadline. Equal deadlines run in scheduling order. The callback
   * runs with `this` undefined (see `install()` for Node's and browsers' receivers).
   *
   * @param callback The function to call.
   * @param delayMs The delay in ms (default 0).
   * @param args Arguments for the callback.
   * @returns A handle for {@linkcode Loop.clearTimeout}, `ref`/`unref` and `refresh`.
   *
   * @example
   * ```ts
   * import { Loop, VirtualClock } from "../mod.ts";
   * const loop = new Loop({ clock: new VirtualClock() });
   * loop.setTimeout((who: string) => console.log(`hello ${who}`), 3_600_000, "later");
   * await loop.run(); // finishes at once: virtual time jumps to the deadline
   * ```
   */
  // deno-lint-ignore no-explicit-any
  setTimeout<A extends any[]>(callback: (...args: A) => void, delayMs?: number, ...args: A): Timer;
  setTimeout(callback: AnyCallback, delayMs?: number): Timer {
    // `arguments`, not a rest parameter, here and below: that made an array on every call, a
    // quarter of what a timer allocates, and allocation paces the scavenges that copy the pending
    // timers.
    const args = arguments.length <= 2 ? EMPTY_ARGS : argumentsFrom(arguments, 2);
    return this.#core.setTimer(callback, delayMs, args, false);
  }

  /**
   * Calls `callback(...args)` every `delayMs`, on absolute deadlines (no drift). After a stall, the
   * loop's `missed` option decides: `"skip"` (default) jumps to the next tick in the future,
   * `"delay"` restarts the period from now, `"burst"` catches up one tick per iteration.
   *
   * @param callback The function to call.
   * @param delayMs The period in ms (default 0).
   * @param args Arguments for the callback.
   * @returns A handle for {@linkcode Loop.clearInterval}.
   *
   * @example
   * ```ts
   * import { Loop, VirtualClock } from "../mod.ts";
   * const loop = new Loop({ clock: new VirtualClock() });
   * let ticks = 0;
   * const interval = loop.setInterval(() => {
   *   if (++ticks === 3) loop.clearInterval(interval);
   * }, 10);
   * await loop.run();
   * console.log(ticks, loop.now()); // 3 30
   * ```
   */
  // deno-lint-ignore no-explicit-any
  setInterval<A extends any[]>(
    callback: (...args: A) => void,
    delayMs?: number,
    ...args: A
  ): Timer;
  setInterval(callback: AnyCallback, delayMs?: number): Timer {
    const args = arguments.length <= 2 ? EMPTY_ARGS : argumentsFrom(arguments, 2);
    return this.#core.setTimer(callback, delayMs, args, true);
  }

  /**
   * Calls `callback(...args)` in the next check phase, after the poll phase.
   *
   * @param callback The function to call.
   * @param args Arguments for the callback.
   * @returns A handle for {@linkcode Loop.clearImmediate}.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.setImmediate((n: number) => console.log(n), 42);
   * await loop.run();
   * ```
   */
  // deno-lint-ignore no-explicit-any
  setImmediate<A extends any[]>(callback: (...args: A) => void, ...args: A): Timer;
  setImmediate(callback: AnyCallback): Timer {
    const args = arguments.length <= 1 ? EMPTY_ARGS : argumentsFrom(arguments, 1);
    return this.#core.setImmediate(callback, args);
  }

  /**
   * Cancels a timeout or interval by handle or id. Unknown, stale or foreign ids are ignored.
   * Interchangeable with {@linkcode Loop.clearInterval}.
   *
   * @param timer The handle, its id (`Number(handle)`), or `undefined`.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * const timer = loop.setTimeout(() => console.log("never"), 10);
   * loop.clearTimeout(timer);
   * await loop.run();
   * ```
   */
  clearTimeout(timer: Timer | number | undefined): void {
    this.#core.clearAny(timer);
  }

  /**
   * Cancels an interval or timeout by handle or id; the same as {@linkcode Loop.clearTimeout}.
   *
   * @param timer The handle, its id, or `undefined`.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * const interval = loop.setInterval(() => {}, 10);
   * loop.clearInterval(interval);
   * await loop.run();
   * ```
   */
  clearInterval(timer: Timer | number | undefined): void {
    this.#core.clearAny(timer);
  }

  /**
   * Cancels an immediate by handle or id.
   *
   * @param immediate The handle, its id, or `undefined`.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.clearImmediate(loop.setImmediate(() => console.log("never")));
   * await loop.run();
   * ```
   */
  clearImmediate(immediate: Timer | number | undefined): void {
    this.#core.clearAny(immediate);
  }

  /**
   * Watches a file descriptor for readiness (level-triggered): `callback` runs in the poll phase, at
   * most once per pass, while the fd is ready for what was asked (hangup and error are always
   * reported). Needs `--allow-ffi` (or a `poller` option such as a `FakePoller`).
   *
   * @param fd The file descriptor (a SOCKET handle on Windows).
   * @param interest `{ readable?, writable?, priority? }`, at least one `true`.
   * @param callback Receives `{ readable, writable, priority, hangup, error }` (reused per watch).
   * @param options A `label`, and `onClose` to run once the watch is detached.
   * @returns The watch: `modify`, `close`, `ref`/`unref`, `[Symbol.dispose]`.
   * @throws {TypeError | RangeError} For a bad fd, interest or callback.
   * @throws {Deno.errors.AlreadyExists} If this loop already watches `fd`.
   * @throws {PollerUnavailableError} Without `--allow-ffi`, or on a platform with no backend.
   * @throws {PollerError} If the poller refuses the fd (`EBADF`, `EPERM` for regular files, ...).
   *
   * @example
   * ```ts ignore
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * const watch = loop.watch(0, { readable: true }, (event) => {
   *   if (event.readable || event.hangup) watch.close();
   * });
   * await loop.run();
   * ```
   */
  watch(
    fd: number,
    interest: WatchInterest,
    callback: (event: WatchEvent) => void,
    options?: WatchOptions,
  ): Watch {
    return this.#core.watch(fd, interest, callback, options);
  }

  /**
   * Runs the loop until nothing ref'd is left (timers, watches, queued work, pending helpers), or
   * until {@linkcode Loop.stop}. May be called again later.
   *
   * @returns A promise that resolves when the loop stops, or rejects with the error a callback threw
   * when there is no `onError` (the loop stops; queued work stays queued). If more callbacks threw
   * before it could stop (siblings in one microtask checkpoint), with an `AggregateError` of all of
   * them, in order.
   * @throws {LoopStateError} If the loop is already running, or `run()` is called from its callback.
   * @throws {LoopClosedError} If the loop is closed.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.setTimeout(() => console.log("done"), 1);
   * await loop.run();
   * ```
   */
  run(): Promise<void> {
    try {
      return this.#core.run();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs one iteration synchronously, without blocking (the poll phase uses a zero timeout). For
   * embedding and step-by-step tests; on a virtual clock, move time with the clock itself.
   *
   * @returns Whether ref'd work remains.
   * @throws The error a callback threw, when there is no `onError` (an `AggregateError` when
   * several did, as in {@linkcode Loop.run}).
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.submit(() => console.log("one"));
   * console.log(loop.runOnce()); // false: nothing left
   * ```
   */
  runOnce(): boolean {
    return this.#core.runOnce();
  }

  /**
   * Ends `run()` after the current callback. Queued work stays queued for the next `run()`. The
   * default loop, whose `run()` nobody calls, starts again after Deno's next turn if ref'd work is
   * left: there `stop()` is a pause that lets Deno's own event loop run.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.setInterval(() => loop.stop(), 1);
   * await loop.run(); // returns after the first tick
   * await loop.close();
   * ```
   */
  stop(): void {
    this.#core.stop();
  }

  /**
   * Closes the loop gracefully: already-queued tasks, microtasks and immediates run; then pending
   * timers are cancelled, watches closed (their `onClose` callbacks run) and pending helpers
   * (`sleep`, `deadline`, combinators) rejected with `LoopClosedError`; the poller is released.
   * Afterwards every scheduling call throws `LoopClosedError`. Idempotent: later calls return the
   * same promise. If called from a callback, the close happens once that callback returns.
   *
   * @returns What was pending and how each was disposed of; rejects with `LoopStateError` for the
   * default loop, which lives as long as the process, and (the loop is closed all the same) with a
   * `LoopShutdownError` when callbacks threw while closing and there is no `onError`:
   * an `AggregateError` of those errors (`cause` is the first) whose `report` is this report.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.submit(() => {});
   * loop.setTimeout(() => {}, 1000);
   * const report = await loop.close();
   * console.log(report.ran.tasks, report.disposed.timers); // 1 1
   * ```
   */
  close(): Promise<CloseReport> {
    return this.#core.close();
  }

  /**
   * Closes the loop (for `await using`); rejects as {@linkcode Loop.close} does.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * {
   *   await using loop = new Loop();
   *   loop.submit(() => console.log("runs before the loop closes"));
   * }
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#core.close();
  }

  /**
   * Why `run()` has not returned yet: every ref'd timer, watch, queued callback and pending helper,
   * each with a kind and a label.
   *
   * @returns The reasons, empty when the loop would finish.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop();
   * loop.setTimeout(function heartbeat() {}, 5000);
   * console.log(loop.aliveReasons()[0].kind); // "timer"
   * await loop.close();
   * ```
   */
  aliveReasons(): AliveReason[] {
    return this.#core.aliveReasons();
  }

  /**
   * A detached snapshot of the loop's metrics (see `formatMetrics`).
   *
   * @returns A plain, JSON-serialisable object.
   * @throws {LoopStateError} If the loop was created without `{ metrics: true }`.
   *
   * @example
   * ```ts
   * import { Loop } from "./loop.ts";
   * const loop = new Loop({ metrics: true });
   * loop.submit(() => {});
   * await loop.run();
   * console.log(loop.metrics().callbacks.count >= 1); // true
   * ```
   */
  metrics(): MetricsSnapshot {
    return this.#core.metricsSnapshot();
  }

  /** @internal Tracks a pending helper so close() can reject it. */
  [kTrack](resource: TrackedResource): void {
    this.#core.track(resource);
  }

  /** @internal install()'s clear: false for an id or object that is not this loop's to clear. */
  [kClearOwn](handle: unknown): boolean {
    return this.#core.clearOwn(handle);
  }

  /** @internal Forgets a settled helper. */
  [kUntrack](resource: TrackedResource): void {
    this.#core.untrack(resource);
  }

  /** @internal Runs `callback` once the current microtask checkpoint has drained. */
  [kAfterCheckpoint](callback: () => void): void {
    this.#core.addAfterCheckpoint(callback);
  }

  /** @internal Reports a rejection nobody handled. */
  [kReportUnhandled](reason: unknown, promise: PromiseLike<unknown>): void {
    this.#core.reportUnhandled(reason, promise);
  }

  /** @internal Counts every microtask queued (promise/ batches back-to-back reactions). */
  get [kMicrotaskSeq](): { value: number } {
    return this.#core.microtaskSeq;
  }

  /** @internal promise/'s per-loop state. */
  get [kPromiseRuntime](): unknown {
    return this.#core.promiseRuntime;
  }

  /** @internal promise/'s per-loop state. */
  set [kPromiseRuntime](runtime: unknown) {
    this.#core.promiseRuntime = runtime;
  }

  /** @internal Ends the current batch after this iteration: Deno's microtasks run next. */
  [kRequestHostTurn](): void {
    this.#core.requestHostTurn();
  }

  /** @internal Reports a late handler on a reported rejection (rejected with `reason`). */
  [kReportHandled](promise: PromiseLike<unknown>, reason: unknown): void {
    this.#core.reportHandled(promise, reason);
  }
}
