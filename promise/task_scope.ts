/**
 * {@linkcode TaskScope}: structured concurrency on a loop (asyncio's `TaskGroup`, tokio's
 * `JoinSet`).
 *
 * @module
 */
import { checkOptionalBoolean, describe } from "../poller/_validate.ts";
import type { Loop } from "../loop/loop.ts";
import { currentLoop } from "../loop/default_loop.ts";
import { LoopClosedError } from "../loop/errors.ts";
import { type Disposition, kUntrack, type TrackedResource } from "../loop/_internal.ts";
import {
  type LoopPromise,
  makePromise,
  markHandled,
  observe,
  resolvePromise,
  type Runtime,
  runtimeOf,
  settlePromise,
} from "./loop_promise.ts";
import { abortError, checkOptions, checkSignal, trackOn } from "./_combinator.ts";
import type { TaskFactory } from "./types.ts";

/**
 * A {@linkcode TaskScope} was disposed (closed to new tasks) and `spawn()` was called on it. The
 * scope's counterpart of `LoopClosedError` (what `loop.submit()` throws on a closed loop): a state
 * error, not a bad argument.
 *
 * @example
 * ```ts
 * import { TaskScope, TaskScopeClosedError } from "./task_scope.ts";
 * const scope = new TaskScope();
 * await scope[Symbol.asyncDispose]();
 * try {
 *   scope.spawn(() => 1);
 * } catch (error) {
 *   console.log(error instanceof TaskScopeClosedError); // true
 * }
 * ```
 */
export class TaskScopeClosedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was refused.
   * @param options `cause`.
   */
  constructor(message = "The TaskScope is closed", options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TaskScopeClosedError";
  }
}

/** Options of {@linkcode TaskScope}. */
export interface TaskScopeOptions {
  /** The loop of the scope's promises (and where it is tracked); default `currentLoop()`. */
  loop?: Loop;
  /** Aborting it aborts every task (with its reason) and makes the scope reject with it. */
  signal?: AbortSignal;
  /**
   * Whether the first failure aborts the other tasks (default `true`). With `false` the tasks run
   * on and failures are only collected.
   */
  failFast?: boolean;
  /** A name for `aliveReasons()` and close reports. */
  label?: string;
}

/** How one task of a {@linkcode TaskScope} ended, from {@linkcode TaskScope.next}. */
export type TaskOutcome<T> =
  | { status: "fulfilled"; value: T; id: number }
  // deno-lint-ignore no-explicit-any
  | { status: "rejected"; reason: any; id: number };

/** The scope's pending state, tracked on its loop while tasks run. */
class ScopeState implements TrackedResource {
  readonly kind = "promise.TaskScope";
  readonly refed = false;
  readonly label: string;
  readonly scope: TaskScope<unknown>;

  constructor(scope: TaskScope<unknown>, label: string) {
    this.scope = scope;
    this.label = label;
  }

  dispose(error: LoopClosedError): Disposition {
    return disposeScope(this.scope, error);
  }
}

// Reach the scope's private methods (assigned once, while the class is evaluated).
let taskSettled: (scope: TaskScope<unknown>, id: number, rejected: boolean, value: unknown) => void;
let disposeScope: (scope: TaskScope<unknown>, error: LoopClosedError) => Disposition;

function onTask(scope: TaskScope<unknown>, id: number, rejected: boolean, value: unknown): void {
  taskSettled(scope, id, rejected, value);
}

/**
 * A scope for concurrent tasks. `spawn(task)` starts `task(signal)` at once, with a signal of its
 * own that the scope aborts (with the scope's abort reason) only while the task runs, so a
 * finished task's resources are never cancelled. The scope waits for every task when it is
 * disposed (`await using scope = new TaskScope()`), and:
 *
 * - the first failure (a task that rejects or throws) aborts the other tasks through their signal
 *   (a `DOMException` named `AbortError` whose `cause` is the failure), unless `failFast: false`;
 * - disposal rejects with an `AggregateError` of the failures, in the order they happened.
 *   Rejections with the scope's own abort reason are cancellations, not failures; failures already
 *   taken through {@linkcode TaskScope.next} count as handled and are not repeated;
 * - without failures, if the outer `signal` aborted the scope, disposal rejects with its reason;
 *   after an explicit {@linkcode TaskScope.abort} it resolves.
 *
 * Results can be consumed as they finish with {@linkcode TaskScope.next} or `for await`.
 * While tasks run, the scope is tracked on its loop: closing the loop aborts the tasks and rejects
 * waiting `next()`/disposal with `LoopClosedError`. On a closed loop, `spawn()` starts nothing: its
 * promise, and then `next()` and disposal, reject with `LoopClosedError`. An exception thrown by
 * the body of an `await using` block does not abort the tasks by itself: call `scope.abort()` for
 * that.
 *
 * @typeParam T The tasks' value type.
 *
 * @example Fan out, wait for all
 * ```ts
 * import { TaskScope } from "./task_scope.ts";
 * const sleep = (ms: number, signal: AbortSignal) =>
 *   new Promise<void>((resolve, reject) => {
 *     const timer = setTimeout(resolve, ms);
 *     signal.addEventListener("abort", () => {
 *       clearTimeout(timer);
 *       reject(signal.reason);
 *     });
 *   });
 * const results: number[] = [];
 * {
 *   await using scope = new TaskScope<void>();
 *   for (const ms of [3, 1, 2]) scope.spawn(async (signal) => {
 *     await sleep(ms, signal);
 *     results.push(ms);
 *   });
 * } // waits here for all three
 * console.log(results); // [1, 2, 3]
 * ```
 *
 * @example The first failure cancels the siblings
 * ```ts
 * import { TaskScope } from "./task_scope.ts";
 * const scope = new TaskScope();
 * const slow = scope.spawn((signal) =>
 *   new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
 * );
 * scope.spawn(() => Promise.reject(new Error("boom")));
 * const error = await scope[Symbol.asyncDispose]().catch((e) => e);
 * console.log(error instanceof AggregateError, error.errors[0].message); // true "boom"
 * console.log(slow.state); // "rejected": aborted
 * ```
 *
 * @example Results as they finish
 * ```ts
 * import { TaskScope } from "./task_scope.ts";
 * await using scope = new TaskScope<string>();
 * scope.spawn(() => new Promise<string>((resolve) => setTimeout(resolve, 5, "late")));
 * scope.spawn(() => "early");
 * for await (const outcome of scope) {
 *   console.log(outcome.status === "fulfilled" && outcome.value); // "early", then "late"
 * }
 * ```
 */
export class TaskScope<T = unknown> implements AsyncDisposable {
  #rt: Runtime;
  #state: ScopeState;
  #controller = new AbortController();
  #failFast: boolean;
  #outer: AbortSignal | undefined;
  #onOuterAbort: (() => void) | undefined = undefined;
  #nextId = 0;
  #running = 0;
  /** The running tasks' own controllers: an abort reaches only the tasks still running. */
  #tasks = new Map<number, AbortController>();
  #tracked = false;
  #closed = false;
  #abortedByUser = false;
  #failures: { id: number; reason: unknown; taken: boolean }[] = [];
  #outcomes: TaskOutcome<T>[] = [];
  #waiters: LoopPromise<TaskOutcome<T> | undefined>[] = [];
  #joiners: LoopPromise<void>[] = [];
  #closedBy: { error: unknown } | undefined = undefined;

  /**
   * Makes a scope.
   *
   * @param options `loop`, `signal`, `failFast` and `label`.
   * @throws {TypeError} If `options`, `options.loop`, `options.signal`, `options.failFast` or
   * `options.label` is malformed.
   */
  constructor(options?: TaskScopeOptions) {
    checkOptions(options, "create a TaskScope");
    const label = options?.label;
    if (label !== undefined && typeof label !== "string") {
      throw new TypeError(
        `Cannot create a TaskScope as the label must be a string: current value is ${
          describe(label)
        }`,
      );
    }
    const failFast = options?.failFast;
    checkOptionalBoolean(failFast, "create a TaskScope", "failFast");
    this.#rt = runtimeOf(options?.loop ?? currentLoop());
    this.#failFast = options?.failFast !== false;
    this.#state = new ScopeState(this as TaskScope<unknown>, options?.label ?? "TaskScope");
    const scopeSignal = this.#controller.signal;
    scopeSignal.addEventListener("abort", () => {
      for (const controller of this.#tasks.values()) controller.abort(scopeSignal.reason);
    }, { once: true });
    const outer = checkSignal(options?.signal, "create a TaskScope");
    this.#outer = outer;
    if (outer !== undefined) {
      if (outer.aborted) this.#controller.abort(outer.reason);
      else {
        this.#onOuterAbort = () => this.#controller.abort(outer.reason);
        outer.addEventListener("abort", this.#onOuterAbort, { once: true });
      }
    }
  }

  /**
   * The scope's signal: aborted on the first failure (with `failFast`), by
   * {@linkcode TaskScope.abort}, by the outer signal, or when the loop closes. Its reason is what
   * the running tasks' signals are aborted with.
   *
   * @example
   * ```ts
   * import { TaskScope } from "./task_scope.ts";
   * const scope = new TaskScope();
   * scope.abort();
   * console.log(scope.signal.aborted); // true
   * ```
   */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * How many tasks are still running.
   *
   * @example
   * ```ts
   * import { TaskScope } from "./task_scope.ts";
   * const scope = new TaskScope();
   * scope.spawn(() => new Promise((resolve) => setTimeout(resolve, 1)));
   * console.log(scope.size); // 1
   * await scope[Symbol.asyncDispose]();
   * console.log(scope.size); // 0
   * ```
   */
  get size(): number {
    return this.#running;
  }

  /**
   * Starts `task(signal)` now (synchronously) and returns a promise of its result. The promise is
   * pre-handled: a failure is the scope's to report, so leaving it alone raises no unhandled
   * rejection. If the scope was already aborted, the task is not started and the promise rejects
   * with the abort reason. If the scope's loop is closed, the task is not started either: the
   * promise rejects with `LoopClosedError` (it does not throw, as the other promise helpers on a
   * closed loop), the scope is aborted with it, and later `next()` and disposal reject with it too,
   * as when the loop closes while tasks run.
   *
   * @typeParam R The task's value type.
   * @param task Receives its own signal (aborted when the scope aborts while it runs); may return
   * a value, a promise or throw.
   * @returns The task's result; rejected (the task not started) with the abort reason if the scope
   * was aborted, or with `LoopClosedError` if its loop is closed.
   * @throws {TypeError} If `task` is not a function.
   * @throws {TaskScopeClosedError} If the scope was disposed (`[Symbol.asyncDispose]()` was
   * called): it takes no new tasks.
   *
   * @example
   * ```ts
   * import { TaskScope } from "./task_scope.ts";
   * await using scope = new TaskScope<number>();
   * const answer = scope.spawn(() => 42);
   * console.log(await answer); // 42
   * ```
   */
  spawn<R extends T>(task: TaskFactory<R>): LoopPromise<Awaited<R>> {
    if (typeof task !== "function") {
      throw new TypeError(
        `Cannot spawn a task as it must be a function: current value is ${describe(task)}`,
      );
    }
    if (this.#closed) {
      throw new TaskScopeClosedError(
        `Cannot spawn a task as the scope "${this.#state.label}" is disposed: current state is closed`,
      );
    }
    const rt = this.#rt;
    const result = makePromise<Awaited<R>>(rt);
    markHandled(result);
    const scopeSignal = this.#controller.signal;
    if (scopeSignal.aborted) {
      settlePromise(result, true, scopeSignal.reason);
      return result;
    }
    if (rt.loop.state === "closed") {
      // Idle when its loop closed (or made after): nothing could abort the task or settle the
      // scope's waiters any more. Refused, as sleep() and the combinators refuse there, and the
      // scope ends as the close would have ended it, so ignoring this promise loses nothing.
      const error = new LoopClosedError(
        `Cannot spawn a task as the loop "${rt.loop.label}" of the scope "${this.#state.label}" is closed: current state is closed`,
      );
      this.#closedBy = { error };
      this.#controller.abort(error);
      this.#detachOuter();
      settlePromise(result, true, error);
      return result;
    }
    const id = this.#nextId++;
    const controller = new AbortController();
    this.#tasks.set(id, controller);
    if (this.#running++ === 0 && !this.#tracked) {
      this.#tracked = true;
      trackOn(rt.loop, this.#state);
    }
    try {
      resolvePromise(result, task(controller.signal));
    } catch (error) {
      settlePromise(result, true, error);
    }
    observe(rt, result, onTask, this as TaskScope<unknown>, id);
    return result;
  }

  /**
   * The next task outcome, in the order tasks finish: `{ status, value | reason, id }` (`id` counts
   * spawns from 0), or `undefined` when no task is running and every outcome was taken. A failure
   * taken here is handled: disposal does not repeat it.
   *
   * @returns A promise of the outcome.
   *
   * @example
   * ```ts
   * import { TaskScope } from "./task_scope.ts";
   * const scope = new TaskScope<string>();
   * scope.spawn(() => "done");
   * console.log(await scope.next()); // { status: "fulfilled", value: "done", id: 0 }
   * console.log(await scope.next()); // undefined
   * ```
   */
  next(): LoopPromise<TaskOutcome<T> | undefined> {
    const promise = makePromise<TaskOutcome<T> | undefined>(this.#rt);
    if (this.#outcomes.length !== 0) {
      settlePromise(promise, false, this.#take(this.#outcomes.shift()!));
    } else if (this.#closedBy !== undefined) {
      settlePromise(promise, true, this.#closedBy.error);
    } else if (this.#running === 0) settlePromise(promise, false, undefined);
    else this.#waiters.push(promise);
    return promise;
  }

  /**
   * Iterates the outcomes as tasks finish (see {@linkcode TaskScope.next}), until none is running.
   *
   * @returns An async iterator of outcomes.
   *
   * @example
   * ```ts
   * import { TaskScope } from "./task_scope.ts";
   * const scope = new TaskScope<number>();
   * scope.spawn(() => 1);
   * for await (const outcome of scope) console.log(outcome.status); // "fulfilled"
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<TaskOutcome<T>, void, undefined> {
    for (;;) {
      const outcome = await this.next();
      if (outcome === undefined) return;
      yield outcome;
    }
  }

  /**
   * Aborts the running tasks through their signal (with `reason`, default an `AbortError`);
   * spawning afterwards starts nothing. Disposal then resolves once they finish (unless tasks
   * failed otherwise).
   *
   * @param reason The abort reason.
   *
   * @example
   * ```ts
   * import { TaskScope } from "./task_scope.ts";
   * const scope = new TaskScope();
   * const task = scope.spawn((signal) =>
   *   new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
   * );
   * scope.abort();
   * await scope[Symbol.asyncDispose](); // resolves: cancellations are not failures
   * console.log(task.state); // "rejected"
   * ```
   */
  abort(reason?: unknown): void {
    if (this.#controller.signal.aborted) return;
    this.#abortedByUser = true;
    this.#controller.abort(reason ?? abortError("The TaskScope was aborted"));
  }

  /**
   * Closes the scope to new tasks (`spawn()` then throws {@linkcode TaskScopeClosedError}) and
   * waits for the running ones. Rejects with an `AggregateError` of the failures not taken
   * through {@linkcode TaskScope.next}; else with the outer signal's reason if it aborted the
   * scope; else resolves. Calling it again waits again.
   *
   * @returns A promise that settles once no task is running.
   *
   * @example
   * ```ts
   * import { TaskScope } from "./task_scope.ts";
   * const scope = new TaskScope();
   * scope.spawn(() => Promise.reject(new Error("broken")));
   * const error = await scope[Symbol.asyncDispose]().catch((e) => e);
   * console.log(error.errors.length); // 1
   * ```
   */
  [Symbol.asyncDispose](): LoopPromise<void> {
    this.#closed = true;
    const promise = makePromise<void>(this.#rt);
    if (this.#closedBy !== undefined) settlePromise(promise, true, this.#closedBy.error);
    else if (this.#running === 0) {
      this.#detachOuter();
      this.#finishJoin(promise);
    } else this.#joiners.push(promise);
    return promise;
  }

  /** Stops following the outer signal (closed and idle: nothing is left for it to abort). */
  #detachOuter(): void {
    if (this.#onOuterAbort === undefined) return;
    this.#outer!.removeEventListener("abort", this.#onOuterAbort);
    this.#onOuterAbort = undefined;
  }

  #take(outcome: TaskOutcome<T>): TaskOutcome<T> {
    if (outcome.status === "rejected") {
      const failure = this.#failures.find((f) => f.id === outcome.id);
      if (failure !== undefined) failure.taken = true;
    }
    return outcome;
  }

  #finishJoin(promise: LoopPromise<void>): void {
    const failures = this.#failures.filter((f) => !f.taken);
    if (failures.length !== 0) {
      const reasons = failures.map((f) => f.reason);
      settlePromise(
        promise,
        true,
        new AggregateError(
          reasons,
          `${reasons.length} task${
            reasons.length === 1 ? "" : "s"
          } of the scope "${this.#state.label}" failed`,
        ),
      );
    } else if (this.#outer?.aborted && !this.#abortedByUser) {
      settlePromise(promise, true, this.#outer.reason);
    } else settlePromise(promise, false, undefined);
  }

  /** A task settled. */
  #taskSettled(id: number, rejected: boolean, value: unknown): void {
    this.#running--;
    this.#tasks.delete(id);
    if (this.#closedBy !== undefined) return; // its waiters were rejected with the close
    const signal = this.#controller.signal;
    if (rejected && !(signal.aborted && value === signal.reason)) {
      this.#failures.push({ id, reason: value, taken: false });
      if (this.#failFast && !signal.aborted) {
        this.#controller.abort(abortError("Aborted: a sibling task in the scope failed", value));
      }
    }
    const outcome: TaskOutcome<T> = rejected
      ? { status: "rejected", reason: value, id }
      : { status: "fulfilled", value: value as T, id };
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) settlePromise(waiter, false, this.#take(outcome));
    else this.#outcomes.push(outcome);
    if (this.#running !== 0) return;
    // Idle: answer whoever waits for "no more".
    for (const w of this.#waiters.splice(0)) settlePromise(w, false, undefined);
    if (this.#tracked) {
      this.#tracked = false;
      this.#rt.loop[kUntrack](this.#state);
    }
    for (const joiner of this.#joiners.splice(0)) this.#finishJoin(joiner);
    if (this.#closed) this.#detachOuter();
  }

  /** The loop is closing: abort the tasks; reject whoever waits. */
  #dispose(error: LoopClosedError): Disposition {
    this.#tracked = false;
    if (this.#closedBy !== undefined || this.#running === 0) return "cancelled";
    this.#closedBy = { error };
    if (!this.#controller.signal.aborted) this.#controller.abort(error);
    for (const w of this.#waiters.splice(0)) settlePromise(w, true, error);
    for (const j of this.#joiners.splice(0)) settlePromise(j, true, error);
    this.#detachOuter();
    return "rejected";
  }

  static {
    taskSettled = (scope, id, rejected, value) => scope.#taskSettled(id, rejected, value);
    disposeScope = (scope, error) => scope.#dispose(error);
  }
}
