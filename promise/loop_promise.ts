/**
 * {@linkcode LoopPromise}: a Promises/A+ promise whose reactions run as microtasks of a
 * {@linkcode Loop}.
 *
 * @module
 */
import { describe } from "../poller/_validate.ts";
import { Loop } from "../loop/loop.ts";
import { currentLoop, defaultLoop } from "../loop/default_loop.ts";
import { runningLoopOrUndefined } from "../loop/_current.ts";
import * as loopInternal from "../loop/_internal.ts";
import {
  kAfterCheckpoint,
  kReportHandled,
  kReportUnhandled,
  kRequestHostTurn,
  kTrack,
  kUntrack,
  type TrackedResource,
} from "../loop/_internal.ts";
import { all } from "./all.ts";
import { allSettled } from "./all_settled.ts";
import { any } from "./any.ts";
import { race } from "./race.ts";
import type { CombinatorOptions, SettledOutcome } from "./_combinator.ts";

// Engine overview (why it is shaped this way):
// - One object per promise (5 fields). A promise created by `then()` is also its own reaction
//   record: it holds the handler(s) and, while pending, is linked into its source's reaction list
//   through its `#value` (free until it settles), so `then()` allocates exactly one object and a
//   promise with one reaction stores it inline.
// - Reaction lists are intrusive singly linked lists, prepended and reversed once at settlement (FIFO
//   order of `then()` calls without an array or a tail pointer per promise).
// - Jobs wait in a per-loop ring of (job, incoming value) pairs. For each job one shared function is
//   queued with `loop.queueMicrotask`, so reactions interleave in exact FIFO order with the loop's
//   other microtasks, with no closure per reaction. If the loop exposes its microtask sequence
//   (kMicrotaskSeq), consecutive jobs with nothing queued in between share one loop microtask.
// - A pending promise's reaction list head is `#head`; a settled one holds `#value`. Hot functions
//   are kept small (cold paths split out) so V8 inlines them into `then` and the drain loop.
// - Internal records (combinator element callbacks, foreign-thenable jobs) are instances of the same
//   class in other "kinds", so every queue and list stays monomorphic.

// Deno's own microtask queue, captured at import: timers/install() may replace the global with a
// loop's, and the native fallback must not land on (or be refused by) that loop.
const queueMicrotask: (callback: () => void) => void = globalThis.queueMicrotask.bind(globalThis);

const PENDING = 0;
const FULFILLED = 1;
const REJECTED = 2;
const STATE_MASK = 3;
/** The resolve functions were used (the A+ "already resolved"), or it settled. */
const LOCKED = 4;
/** A handler was attached (or the outcome was consumed internally): never report it. */
const HANDLED = 8;
/** It was reported as an unhandled rejection. */
const REPORTED = 16;
/** As a queued job: the outcome it carries (in `#value`) is a rejection. */
const INCOMING_REJECTED = 32;
/** An internal callback record: `#handler(#head, #rt as index, rejected, #value)`. */
const KIND_RECORD = 64;
/** An internal job: calls a foreign thenable's `then` (`#handler`) on `#value` for promise `#head`. */
const KIND_THENABLE = 128;
/**
 * A shared observer: `#handler(#head, index, rejected, value)` for many inputs of one combinator,
 * queued once per settled input with the input's index (no object per input). `#value` holds the
 * settled inputs (LoopPromises, or plain values) by index until their job runs.
 */
const KIND_SHARED = 2048;
/**
 * A shared observer's ring entry carries `start * RANGE + count`: consecutive inputs queued back to
 * back (in the same segment) extend one entry instead of taking one each.
 */
const RANGE = 4194304; // 2 ** 22
const KINDS = KIND_RECORD | KIND_THENABLE | KIND_SHARED;
/** Resolving this promise with a LoopPromise calls its `then` in a job (native timing: `finally`). */
const ADOPT_VIA_THEN = 1024;
/** `#handler` holds the fulfilment handler. */
const ON_FULFILLED = 256;
/** `#handler` holds the rejection handler (with ON_FULFILLED too: a {@linkcode HandlerPair}). */
const ON_REJECTED = 512;
const BOTH_HANDLERS = ON_FULFILLED | ON_REJECTED;
/**
 * Adopting a foreign thenable does not keep `run()` alive: set on the inner promise of an
 * `observe(..., untracked)` whose caller tracks its own result (deadline, abortable), so that
 * an input that never settles does not outlive the outcome.
 */
const UNTRACKED_ADOPTION = 4096;

/** Both handlers of one `then(onFulfilled, onRejected)` (one field holds a single handler). */
class HandlerPair {
  readonly onFulfilled: AnyFunction;
  readonly onRejected: AnyFunction;
  constructor(onFulfilled: AnyFunction, onRejected: AnyFunction) {
    this.onFulfilled = onFulfilled;
    this.onRejected = onRejected;
  }
}

/**
 * How many native microtask turns a rejection left unhandled at the end of a loop checkpoint may
 * still be handled in. `await p` and `return p` in async functions attach their handler to a
 * LoopPromise from a native microtask (V8 calls `then` of a thenable in a job), which runs only
 * after the loop's batch: without this grace, `await LoopPromise.reject(e)` would be reported.
 */
const REPORT_AFTER_NATIVE_TURNS = 16;

/**
 * `loop[kMicrotaskSeq]`, if the loop offers it: a cell `{ value }` counting the loop microtasks
 * ever queued. With it, jobs queued while nothing else was queued on the loop since our last
 * drainer join that drainer (one loop microtask for a run of jobs, in exactly the order one
 * microtask per job would give). Without it (or if it is not such a cell), every job is its own
 * loop microtask.
 */
const kMicrotaskSeq: symbol | undefined = loopInternal.kMicrotaskSeq;
/** A loop's microtask counter. */
interface SeqCell {
  readonly value: number;
}

/** Initial slots of a runtime's job ring (two per job). */
const RING_INITIAL_SLOTS = 512;

const INTERNAL: unique symbol = Symbol("LoopPromise.internal");
/** Where a loop keeps its promise runtime (set on first use): a slot the Loop declares. */
const kRuntime: typeof loopInternal.kPromiseRuntime = loopInternal.kPromiseRuntime;

/** The settlement state of a {@linkcode LoopPromise}. */
export type LoopPromiseState = "pending" | "fulfilled" | "rejected";

/** Options for making a {@linkcode LoopPromise}. */
export interface LoopPromiseOptions {
  /** The loop whose microtasks run the promise's reactions; default `currentLoop()`. */
  loop?: Loop;
}

/** The executor passed to `new LoopPromise(executor)`. */
export type LoopPromiseExecutor<T> = (
  resolve: (value: T | PromiseLike<T>) => void,
  reject: (reason?: unknown) => void,
) => void;

/** What {@linkcode LoopPromise.withResolvers} returns. */
export interface LoopPromiseWithResolvers<T> {
  /** The promise. */
  promise: LoopPromise<T>;
  /** Resolves it (adopting a thenable); later calls of either function are ignored. */
  resolve: (value: T | PromiseLike<T>) => void;
  /** Rejects it; later calls of either function are ignored. */
  reject: (reason?: unknown) => void;
}

/**
 * An internal element callback: receives the context it was registered with, an index, whether
 * the observed value rejected, and the value or reason.
 *
 * @internal
 */
// deno-lint-ignore no-explicit-any
export type ElementCallback<C> = (ctx: C, index: number, rejected: boolean, value: any) => void;

/** Per-loop promise state: the job FIFO and the pending unhandled rejections. */
class Runtime {
  readonly loop: Loop;
  /** The job FIFO: pairs (job, incoming value) on a power-of-two ring. */
  ring: unknown[] = new Array(RING_INITIAL_SLOTS).fill(undefined);
  ringMask = RING_INITIAL_SLOTS - 1;
  /** Slot of the oldest pair. */
  ringHead = 0;
  /** Pairs queued. */
  ringSize = 0;
  /** Queued once per job: runs the oldest job. */
  drainOne: () => void = noop;
  /** With a sequenced loop: queued once per segment; runs the segment's jobs. */
  drainSegment: () => void = noop;
  /** The loop's microtask counter, if it has one (see kMicrotaskSeq). */
  seq: SeqCell | undefined = undefined;
  /** Jobs run so far (absolute position in the job sequence). */
  jobsRun = 0;
  /** End positions of closed segments whose drainers have not finished (from `segmentHead`). */
  segmentEnds: number[] = [];
  segmentHead = 0;
  /** The last segment still takes jobs: its drainer has not finished... */
  open = false;
  /** ...and nothing was queued on the loop since it was queued (the loop's count then). */
  openSeq = 0;
  /** Rejected without a handler since the last check. */
  unhandled: AnyPromise[] = [];
  checkScheduled = false;
  checkUnhandled: () => void = noop;
  /** Unhandled after a checkpoint; reported unless handled within a few native microtask turns. */
  suspects: AnyPromise[] = [];
  suspectDeadlines: number[] = [];
  hop = 0;
  hopScheduled = false;
  nativeHop: () => void = noop;
  /** Keeps `run()` alive until the suspects are judged (tracked only meanwhile). */
  pendingCheck: TrackedResource | undefined = undefined;
  /**
   * Whether adopting a foreign thenable keeps the loop alive until it answers (explicit loops: so
   * `run()` waits for the native promises its promises follow). The default loop does not: native
   * work keeps the process alive by itself, and wakes the loop when it answers.
   */
  refAdoptions = false;
  /** The loop refused a microtask (it is closed): jobs now run on native microtasks. */
  native = false;
  nativeScheduled = false;
  drainAll: () => void = noop;

  constructor(loop: Loop) {
    this.loop = loop;
  }
}

function noop(): void {}

/** The constructor's error for a non-function executor (out of line: keeps it small to inline). */
function badExecutor(executor: unknown): TypeError {
  return new TypeError(
    `Cannot construct a LoopPromise as the executor must be a function: current value is ${
      describe(executor)
    }`,
  );
}

/**
 * The loop of options without a `loop`: the current one, unless the options are a `Loop` itself
 * (`LoopPromise.resolve(value, loop)` for `{ loop }`), which would otherwise bind to another loop.
 */
function loopOption(options: LoopPromiseOptions | undefined): Loop {
  if (options instanceof Loop) {
    throw new TypeError(
      `Cannot bind a LoopPromise as the options must be an object like { loop }: current value is the Loop "${options.label}"`,
    );
  }
  return currentLoop();
}

const nativeThen = Promise.prototype.then;

// deno-lint-ignore no-explicit-any
type AnyPromise = LoopPromise<any>;
// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => any;

// Internal operations, defined inside the class body (they need its #private fields) and exported
// for the other files of promise/. Assigned once, while the class is evaluated.

/** @internal The promise runtime of `loop` (validated). */
export let runtimeOf: (loop: Loop) => Runtime;
/** @internal A new pending promise on runtime `rt`. */
export let makePromise: <T>(rt: Runtime) => LoopPromise<T>;
/** @internal The runtime a promise is bound to. */
export let runtimeOfPromise: (promise: AnyPromise) => Runtime;
/** @internal Whether `value` is a LoopPromise (brand check). */
export let isLoopPromise: (value: unknown) => value is AnyPromise;
/** @internal Resolves a pending promise with `value` (adopting thenables); ignores settled ones. */
export let resolvePromise: (promise: AnyPromise, value: unknown) => void;
/** @internal Settles a pending promise with a non-thenable outcome; ignores settled ones. */
export let settlePromise: (promise: AnyPromise, rejected: boolean, value: unknown) => void;
/**
 * @internal Calls `callback(ctx, index, rejected, value)` as a loop microtask once `value`
 * settles (at once for a non-thenable), marking a LoopPromise handled. Thenables are adopted on
 * `rt` per the A+ procedure; `untracked`: waiting for a foreign one does not keep `run()` alive
 * (the caller tracks what it makes of the outcome).
 */
export let observe: <C>(
  rt: Runtime,
  value: unknown,
  callback: ElementCallback<C>,
  ctx: C,
  index: number,
  untracked?: boolean,
) => void;
/** @internal Queues `callback(ctx, index, rejected, value)` as a microtask on `rt`. */
export let queueCallback: <C>(
  rt: Runtime,
  callback: ElementCallback<C>,
  ctx: C,
  index: number,
  rejected: boolean,
  value: unknown,
) => void;
/** @internal A shared observer for the inputs of one combinator; see {@linkcode observeWith}. */
export let makeObserver: <C>(rt: Runtime, callback: ElementCallback<C>, ctx: C) => AnyPromise;
/**
 * @internal Like {@linkcode observe}, through a shared observer: settled LoopPromises and plain
 * values cost no allocation (the observer is queued with the index).
 */
export let observeWith: (observer: AnyPromise, value: unknown, index: number) => void;
/**
 * @internal Marks a promise made by {@linkcode makePromise} handled before it is handed out: it is
 * never reported as an unhandled rejection (not yet settled, it cannot have been reported).
 */
export let markHandled: (promise: AnyPromise) => void;

export type { Runtime };

/**
 * A Promises/A+ promise whose reactions run as microtasks of a {@linkcode Loop}, so promise-driven
 * code shares the loop's order, virtual time, metrics and error handling. It is awaitable, adopts
 * any thenable (native promises included) and is faster than a native promise.
 *
 * - **Loop binding.** `new LoopPromise(executor)` binds to `options.loop ?? currentLoop()`
 *   (`loop.promise(executor)` and `loop.withResolvers()` are shorthands for the `{ loop }` forms);
 *   promises made by `then`/`catch`/`finally` bind to their source's loop. Reactions run in FIFO
 *   order with the loop's other microtasks, when that loop runs: the default loop starts itself, an
 *   explicit loop only runs in `run()`/`runOnce()`. So awaiting a promise of an explicit loop from
 *   outside it (or returning one from an async function) settles only while that loop runs.
 * - **Adoption.** Resolving with a thenable reads its `then` once and calls it in a later microtask
 *   (as native promises do); resolving with another `LoopPromise` (or a subclass) adopts its state
 *   directly, without calling `then` and without extra microtasks (`finally` keeps the native
 *   count). On an explicit loop, a promise adopting a foreign thenable (a native promise, say) keeps
 *   `run()` alive until the thenable answers (listed as `"promise.adopt"` in `aliveReasons()`, and
 *   rejected with `LoopClosedError` on close): `LoopPromise.from(main(), { loop })` keeps a loop
 *   running for as long as an async function runs.
 * - **Unhandled rejections.** A promise still rejected with no handler after the loop's microtask
 *   checkpoint (and a few native microtask turns, so that `await` and async-function returns, which
 *   attach their handlers from native microtasks, count as handling) is reported once: the loop's
 *   `onUnhandledRejection`, else the loop fails fast (`run()` rejects), or on the default loop a
 *   cancelable `unhandledrejection` event on `globalThis`. A handler attached later reports it
 *   handled (`onRejectionHandled` / `rejectionhandled`). As natively, `then(f)` without a
 *   rejection handler handles its source, and its child carries the rejection on (and is what
 *   gets reported).
 * - **Closed loops.** If its loop is closed, reactions run on native microtasks instead, so a promise
 *   never hangs because its loop is gone.
 * - **Inspection.** {@linkcode LoopPromise.state}, {@linkcode LoopPromise.value} and
 *   {@linkcode LoopPromise.reason} read the outcome synchronously, without handling the promise.
 * - `then` always returns a `LoopPromise` (no species): subclasses get the base behaviour.
 *
 * @typeParam T The fulfilment value's type.
 *
 * @example Basics
 * ```ts
 * import { LoopPromise } from "./loop_promise.ts";
 * const p = new LoopPromise<number>((resolve) => resolve(21)).then((n) => n * 2);
 * console.log(p.state); // "pending": reactions run as loop microtasks
 * console.log(await p); // 42
 * console.log(p.state, p.value); // "fulfilled" 42
 * ```
 *
 * @example On an explicit loop, in virtual time
 * ```ts
 * import { Loop, VirtualClock } from "../loop/mod.ts";
 * import { LoopPromise } from "./loop_promise.ts";
 * const loop = new Loop({ clock: new VirtualClock() });
 * const later = new LoopPromise<string>((resolve) => {
 *   loop.setTimeout(() => resolve("an hour later"), 3_600_000);
 * }, { loop });
 * later.then((text) => console.log(text, loop.now())); // "an hour later" 3600000
 * await loop.run();
 * await loop.close();
 * ```
 */
export class LoopPromise<T> implements PromiseLike<T> {
  // Field order is the object layout; keep the hot fields first.
  #flags = 0;
  /** The value or reason once settled; while pending, the link to the next sibling reaction. */
  #value: unknown = undefined;
  #rt: Runtime;
  /** Reaction list head; for a record, its index; for a thenable job, the target promise. */
  #head: unknown = undefined;
  /** The handler(s) (see ON_FULFILLED); for a record, its callback; for a thenable job, `then`. */
  #handler: AnyFunction | HandlerPair | undefined = undefined;

  /**
   * Makes a promise and calls `executor(resolve, reject)` synchronously; an exception it throws
   * rejects the promise (unless it was already resolved).
   *
   * @param executor Receives the resolve and reject functions (only the first call of either counts).
   * @param options The `loop` to bind to; default `currentLoop()`.
   * @throws {TypeError} If `executor` is not a function or `options.loop` is not a `Loop`.
   */
  constructor(executor: LoopPromiseExecutor<T>, options?: LoopPromiseOptions) {
    if ((executor as unknown) === INTERNAL) {
      this.#rt = options as unknown as Runtime;
      return;
    }
    if (typeof executor !== "function") throw badExecutor(executor);
    // Without options, nothing else is called: the hot path stays small enough to inline.
    this.#rt = runtimeOf(
      options === undefined ? currentLoop() : options.loop ?? loopOption(options),
    );
    LoopPromise.#execute(this, executor);
  }

  /**
   * Attaches reactions; they run as microtasks of the promise's loop once it settles, in the order
   * `then` was called. Non-function arguments pass the outcome through.
   *
   * @param onFulfilled Called with the value; its result resolves the returned promise.
   * @param onRejected Called with the reason; its result resolves the returned promise.
   * @returns A new promise on the same loop, resolved with the handler's result (or rejected with
   * what it throws).
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const doubled = LoopPromise.resolve(2).then((n) => n * 2);
   * console.log(await doubled); // 4
   * ```
   */
  then<TResult1 = T, TResult2 = never>(
    onFulfilled?: ((value: T) => TResult1 | PromiseLike<TResult1>) | null,
    // deno-lint-ignore no-explicit-any
    onRejected?: ((reason: any) => TResult2 | PromiseLike<TResult2>) | null,
  ): LoopPromise<TResult1 | TResult2> {
    const child = new LoopPromise<TResult1 | TResult2>(INTERNAL as never, this.#rt as never);
    if (typeof onFulfilled === "function") {
      if (typeof onRejected === "function") {
        child.#handler = new HandlerPair(onFulfilled, onRejected);
        child.#flags = BOTH_HANDLERS;
      } else {
        child.#handler = onFulfilled;
        child.#flags = ON_FULFILLED;
      }
    } else if (typeof onRejected === "function") {
      child.#handler = onRejected;
      child.#flags = ON_REJECTED;
    }
    LoopPromise.#attach(this, child);
    return child;
  }

  /**
   * Attaches a rejection handler: `then(undefined, onRejected)`.
   *
   * @param onRejected Called with the reason; its result resolves the returned promise.
   * @returns A new promise on the same loop.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const recovered = LoopPromise.reject(new Error("boom")).catch((error) => error.message);
   * console.log(await recovered); // "boom"
   * ```
   */
  catch<TResult = never>(
    // deno-lint-ignore no-explicit-any
    onRejected?: ((reason: any) => TResult | PromiseLike<TResult>) | null,
  ): LoopPromise<T | TResult> {
    return this.then(undefined, onRejected);
  }

  /**
   * Runs `onFinally` once the promise settles, then passes the outcome through (unless `onFinally`
   * throws or returns a promise that rejects, which rejects the result instead). If `onFinally`
   * returns a thenable, the result waits for it.
   *
   * @param onFinally Called with no arguments.
   * @returns A new promise on the same loop.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const value = await LoopPromise.resolve("done").finally(() => console.log("cleanup"));
   * console.log(value); // "done"
   * ```
   */
  finally(onFinally?: (() => void) | null): LoopPromise<T> {
    if (typeof onFinally !== "function") return this.then(onFinally, onFinally);
    const rt = this.#rt;
    // The spec's steps (then the result of onFinally, then the outcome), with the child adopting
    // through a `then` call in its own microtask: the same microtask count as native `finally`.
    const child = this.then(
      (value) => LoopPromise.#settledBy(rt, onFinally()).then(() => value),
      (reason) =>
        LoopPromise.#settledBy(rt, onFinally()).then(() => {
          throw reason;
        }),
    );
    child.#flags |= ADOPT_VIA_THEN;
    return child;
  }

  /**
   * The settlement state, read synchronously.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * console.log(LoopPromise.resolve(1).state); // "fulfilled"
   * ```
   */
  get state(): LoopPromiseState {
    const state = this.#flags & STATE_MASK;
    return state === PENDING ? "pending" : state === FULFILLED ? "fulfilled" : "rejected";
  }

  /**
   * The fulfilment value when {@linkcode LoopPromise.state} is `"fulfilled"`, else `undefined`
   * (check `state` to tell a pending promise from one fulfilled with `undefined`).
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * console.log(LoopPromise.resolve(7).value); // 7
   * ```
   */
  get value(): T | undefined {
    return (this.#flags & STATE_MASK) === FULFILLED ? this.#value as T : undefined;
  }

  /**
   * The rejection reason when {@linkcode LoopPromise.state} is `"rejected"`, else `undefined`.
   * Reading it does not handle the rejection: attach a handler for that.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const p = LoopPromise.reject(new Error("no"));
   * console.log((p.reason as Error).message); // "no"
   * p.catch(() => {}); // handle it
   * ```
   */
  get reason(): unknown {
    return (this.#flags & STATE_MASK) === REJECTED ? this.#value : undefined;
  }

  /**
   * The loop whose microtasks run this promise's reactions.
   *
   * @example
   * ```ts
   * import { currentLoop } from "../loop/mod.ts";
   * import { LoopPromise } from "./loop_promise.ts";
   * console.log(LoopPromise.resolve().loop === currentLoop()); // true
   * ```
   */
  get loop(): Loop {
    return this.#rt.loop;
  }

  /** `"LoopPromise"`, for `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return "LoopPromise";
  }

  /**
   * Formats the promise for `console.log` and `Deno.inspect` like a native one.
   *
   * @param inspect Deno's `inspect`.
   * @param options Inspect options, passed through.
   * @returns The text.
   */
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options: unknown) => string,
    options: unknown,
  ): string {
    const state = this.#flags & STATE_MASK;
    if (state === PENDING) return "LoopPromise { <pending> }";
    const text = inspect(this.#value, options);
    return state === FULFILLED ? `LoopPromise { ${text} }` : `LoopPromise { <rejected> ${text} }`;
  }

  /**
   * A promise resolved with `value`: `value` itself if it is a `LoopPromise` already bound to the
   * requested loop (any loop when none is requested), else a new promise on
   * `options.loop ?? currentLoop()` that adopts it.
   *
   * @param value A value, a `LoopPromise` or any thenable.
   * @param options The `loop` to bind to.
   * @returns The promise.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * console.log(await LoopPromise.resolve(Promise.resolve("adopted"))); // "adopted"
   * ```
   */
  static resolve(): LoopPromise<void>;
  /**
   * A promise resolved with `value`.
   *
   * @param value A value, a `LoopPromise` or any thenable.
   * @param options The `loop` to bind to.
   * @returns The promise.
   */
  static resolve<T>(value: T, options?: LoopPromiseOptions): LoopPromise<Awaited<T>>;
  static resolve<T>(value?: T, options?: LoopPromiseOptions): LoopPromise<Awaited<T>> {
    const loop = options?.loop;
    if (isLoopPromise(value) && (loop === undefined || value.#rt.loop === loop)) {
      return value as LoopPromise<Awaited<T>>;
    }
    return LoopPromise.#on(
      runtimeOf(loop ?? (options === undefined ? currentLoop() : loopOption(options))),
      value,
    );
  }

  /**
   * Adopts `value` onto a loop: `value` itself if it is a `LoopPromise` bound to
   * `options.loop ?? currentLoop()`, else a new promise on that loop that follows it. Unlike
   * {@linkcode LoopPromise.resolve}, a `LoopPromise` of another loop is always re-homed. Adopting a
   * native promise on an explicit loop keeps the loop's `run()` going until it settles.
   *
   * @param value A value, a native promise, a `LoopPromise` or any thenable.
   * @param options The `loop` to adopt onto.
   * @returns The promise on that loop.
   *
   * @example
   * ```ts
   * import { Loop } from "../loop/mod.ts";
   * import { LoopPromise } from "./loop_promise.ts";
   * const loop = new Loop();
   * const p = LoopPromise.from(Promise.resolve(1), { loop });
   * console.log(p.loop === loop); // true
   * p.then((n) => console.log(n)); // 1
   * await loop.run();
   * await loop.close();
   * ```
   */
  static from<T>(value: T | PromiseLike<T>, options?: LoopPromiseOptions): LoopPromise<Awaited<T>> {
    const rt = runtimeOf(
      options === undefined ? currentLoop() : options.loop ?? loopOption(options),
    );
    if (isLoopPromise(value) && value.#rt === rt) return value as LoopPromise<Awaited<T>>;
    return LoopPromise.#on(rt, value);
  }

  /**
   * A promise rejected with `reason`, on `options.loop ?? currentLoop()`.
   *
   * @param reason The reason.
   * @param options The `loop` to bind to.
   * @returns The rejected promise.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const p = LoopPromise.reject(new Error("nope"));
   * console.log(p.state); // "rejected"
   * await p.catch(() => {});
   * ```
   */
  static reject<T = never>(reason?: unknown, options?: LoopPromiseOptions): LoopPromise<T> {
    const promise = new LoopPromise<T>(
      INTERNAL as never,
      runtimeOf(
        options === undefined ? currentLoop() : options.loop ?? loopOption(options),
      ) as never,
    );
    LoopPromise.#settle(promise, REJECTED, reason);
    return promise;
  }

  /**
   * A pending promise with its resolve and reject functions.
   *
   * @param options The `loop` to bind to; default `currentLoop()`.
   * @returns `{ promise, resolve, reject }`.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const { promise, resolve } = LoopPromise.withResolvers<string>();
   * setTimeout(() => resolve("later"), 1);
   * console.log(await promise); // "later"
   * ```
   */
  static withResolvers<T>(options?: LoopPromiseOptions): LoopPromiseWithResolvers<T> {
    const promise = new LoopPromise<T>(
      INTERNAL as never,
      runtimeOf(
        options === undefined ? currentLoop() : options.loop ?? loopOption(options),
      ) as never,
    );
    return {
      promise,
      resolve: (value: T | PromiseLike<T>): void => {
        if ((promise.#flags & LOCKED) !== 0) return;
        promise.#flags |= LOCKED;
        LoopPromise.#resolve(promise, value);
      },
      reject: (reason?: unknown): void => {
        if ((promise.#flags & LOCKED) !== 0) return;
        promise.#flags |= LOCKED;
        LoopPromise.#settle(promise, REJECTED, reason);
      },
    };
  }

  /**
   * Calls `fn(...args)` now and returns a promise of its result: rejected if it throws, adopting
   * it if it returns a thenable. Bound to `currentLoop()`.
   *
   * @param fn The function.
   * @param args Its arguments.
   * @returns The promise.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const p = LoopPromise.try(() => JSON.parse("{"));
   * console.log(await p.catch((error) => error.name)); // "SyntaxError"
   * ```
   */
  static try<T, A extends readonly unknown[]>(
    fn: (...args: A) => T | PromiseLike<T>,
    ...args: A
  ): LoopPromise<Awaited<T>> {
    const promise = new LoopPromise<Awaited<T>>(
      INTERNAL as never,
      runtimeOf(currentLoop()) as never,
    );
    promise.#flags = LOCKED;
    if (typeof fn !== "function") {
      // Rejects rather than throws, as Promise.try does.
      LoopPromise.#settle(
        promise,
        REJECTED,
        new TypeError(
          `Cannot call LoopPromise.try as fn must be a function: current value is ${describe(fn)}`,
        ),
      );
      return promise;
    }
    let result: unknown;
    try {
      result = fn(...args);
    } catch (error) {
      LoopPromise.#settle(promise, REJECTED, error);
      return promise;
    }
    LoopPromise.#resolve(promise, result);
    return promise;
  }

  /**
   * `Promise.all` on the loop; see {@linkcode all} (also for `{ abortLosers: true }` with task
   * factories).
   *
   * @param values An iterable of values, promises or thenables.
   * @param options `loop` and `signal`.
   * @returns A promise of the values in input order, rejected by the first rejection.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * console.log(await LoopPromise.all([1, LoopPromise.resolve(2), Promise.resolve(3)])); // [1, 2, 3]
   * ```
   */
  static all<const V extends readonly unknown[]>(
    values: V,
    options?: CombinatorOptions,
  ): LoopPromise<{ -readonly [P in keyof V]: Awaited<V[P]> }>;
  /**
   * `Promise.all` over any iterable.
   *
   * @param values An iterable of values, promises or thenables.
   * @param options `loop` and `signal`.
   * @returns A promise of the values in input order.
   */
  static all<V>(values: Iterable<V>, options?: CombinatorOptions): LoopPromise<Awaited<V>[]>;
  static all(values: Iterable<unknown>, options?: CombinatorOptions): LoopPromise<unknown[]> {
    return all(values, options);
  }

  /**
   * `Promise.allSettled` on the loop; see {@linkcode allSettled}.
   *
   * @param values An iterable of values, promises or thenables.
   * @param options `loop` and `signal`.
   * @returns A promise of `{ status, value | reason }` in input order.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * const results = await LoopPromise.allSettled([1, LoopPromise.reject("no")]);
   * console.log(results.map((r) => r.status)); // ["fulfilled", "rejected"]
   * ```
   */
  static allSettled<const V extends readonly unknown[]>(
    values: V,
    options?: CombinatorOptions,
  ): LoopPromise<{ -readonly [P in keyof V]: SettledOutcome<Awaited<V[P]>> }>;
  /**
   * `Promise.allSettled` over any iterable.
   *
   * @param values An iterable of values, promises or thenables.
   * @param options `loop` and `signal`.
   * @returns A promise of outcomes in input order.
   */
  static allSettled<V>(
    values: Iterable<V>,
    options?: CombinatorOptions,
  ): LoopPromise<SettledOutcome<Awaited<V>>[]>;
  static allSettled(
    values: Iterable<unknown>,
    options?: CombinatorOptions,
  ): LoopPromise<SettledOutcome<unknown>[]> {
    return allSettled(values, options);
  }

  /**
   * `Promise.race` on the loop; see {@linkcode race}.
   *
   * @param values An iterable of values, promises or thenables.
   * @param options `loop` and `signal`.
   * @returns A promise settled like the first input to settle.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * console.log(await LoopPromise.race([new LoopPromise(() => {}), "now"])); // "now"
   * ```
   */
  static race<V>(values: Iterable<V>, options?: CombinatorOptions): LoopPromise<Awaited<V>> {
    return race(values, options);
  }

  /**
   * `Promise.any` on the loop; see {@linkcode any}.
   *
   * @param values An iterable of values, promises or thenables.
   * @param options `loop` and `signal`.
   * @returns A promise of the first fulfilment, or rejected with an `AggregateError` of all reasons.
   *
   * @example
   * ```ts
   * import { LoopPromise } from "./loop_promise.ts";
   * console.log(await LoopPromise.any([LoopPromise.reject("a"), LoopPromise.resolve("b")])); // "b"
   * ```
   */
  static any<V>(values: Iterable<V>, options?: CombinatorOptions): LoopPromise<Awaited<V>> {
    return any(values, options);
  }

  // ------------------------------------------------------------------ engine

  /** Calls the executor with the resolve functions (the A+ "already resolved" is LOCKED). */
  static #execute<T>(promise: LoopPromise<T>, executor: LoopPromiseExecutor<T>): void {
    const resolve = (value: T | PromiseLike<T>): void => {
      const flags = promise.#flags;
      if ((flags & LOCKED) !== 0) return;
      promise.#flags = flags | LOCKED;
      LoopPromise.#resolve(promise, value);
    };
    const reject = (reason?: unknown): void => {
      const flags = promise.#flags;
      if ((flags & LOCKED) !== 0) return;
      promise.#flags = flags | LOCKED;
      LoopPromise.#settle(promise, REJECTED, reason);
    };
    try {
      executor(resolve, reject);
    } catch (error) {
      reject(error);
    }
  }

  /** `value` itself if it is a LoopPromise (as PromiseResolve), else a new promise on `rt`. */
  static #settledBy(rt: Runtime, value: unknown): AnyPromise {
    if (typeof value === "object" && value !== null && #flags in value) return value as AnyPromise;
    return LoopPromise.#on(rt, value);
  }

  /** A new promise on `rt` resolved with `value`. */
  static #on<T>(rt: Runtime, value: unknown): LoopPromise<Awaited<T>> {
    const promise = new LoopPromise<Awaited<T>>(INTERNAL as never, rt as never);
    promise.#flags = LOCKED;
    LoopPromise.#resolve(promise, value);
    return promise;
  }

  /** Adds reaction `reaction` to `source`, or queues it at once if `source` has settled. */
  static #attach(source: AnyPromise, reaction: AnyPromise): void {
    const flags = source.#flags;
    if ((flags & STATE_MASK) === PENDING) {
      reaction.#value = source.#head;
      source.#head = reaction;
      source.#flags = flags | HANDLED;
      return;
    }
    if ((flags & HANDLED) === 0) LoopPromise.#handle(source, flags);
    if ((flags & STATE_MASK) === REJECTED) reaction.#flags |= INCOMING_REJECTED;
    LoopPromise.#enqueue(source.#rt, reaction, source.#value);
  }

  /** Marks a settled promise handled, reporting it handled if it was reported unhandled. */
  static #handle(promise: AnyPromise, flags: number): void {
    promise.#flags = flags | HANDLED;
    if ((flags & REPORTED) !== 0) LoopPromise.#reportHandled(promise);
  }

  /**
   * Appends `job` (with the outcome it carries) to the FIFO of `rt` and makes sure a loop
   * microtask will run it, in order.
   */
  static #enqueue(rt: Runtime, job: AnyPromise, value: unknown): void {
    const size = rt.ringSize;
    let ring = rt.ring;
    if (size * 2 === ring.length) ring = LoopPromise.#grow(rt);
    const slot = (rt.ringHead + size * 2) & rt.ringMask;
    ring[slot] = job;
    ring[slot + 1] = value;
    rt.ringSize = size + 1;
    if (rt.native) LoopPromise.#scheduleNative(rt);
    else if (rt.seq !== undefined) LoopPromise.#enqueueSequenced(rt, rt.seq);
    else {
      try {
        rt.loop.queueMicrotask(rt.drainOne);
      } catch {
        LoopPromise.#goNative(rt);
      }
    }
  }

  /** Doubles the job ring, unwrapping it. */
  static #grow(rt: Runtime): unknown[] {
    const old = rt.ring;
    const ring = new Array(old.length * 2).fill(undefined);
    const used = rt.ringSize * 2;
    for (let i = 0; i < used; i++) ring[i] = old[(rt.ringHead + i) & rt.ringMask];
    rt.ring = ring;
    rt.ringMask = ring.length - 1;
    rt.ringHead = 0;
    return ring;
  }

  /** Takes the oldest job off the ring and runs it. */
  static #runNext(rt: Runtime): void {
    const ring = rt.ring;
    const slot = rt.ringHead;
    const job = ring[slot] as AnyPromise;
    const value = ring[slot + 1];
    ring[slot] = undefined;
    ring[slot + 1] = undefined;
    rt.ringHead = (slot + 2) & rt.ringMask;
    rt.ringSize--;
    rt.jobsRun++;
    LoopPromise.#run(job, value);
  }

  /**
   * If nothing was queued on the loop since our last drainer (and it has not finished), the job
   * joins its segment: running it there is running it next. Else a new drainer is queued.
   */
  static #enqueueSequenced(rt: Runtime, seq: SeqCell): void {
    if (rt.open) {
      if (seq.value === rt.openSeq) return; // joins the open segment
      // Something else was queued on the loop meanwhile: close the segment before this job.
      rt.segmentEnds.push(rt.jobsRun + rt.ringSize - 1);
    }
    try {
      rt.loop.queueMicrotask(rt.drainSegment);
    } catch {
      LoopPromise.#goNative(rt);
      return;
    }
    rt.open = true;
    rt.openSeq = seq.value;
  }

  /**
   * One loop microtask: runs the oldest unfinished segment, up to its end if it is closed (it may
   * close while running), else every queued job (including those that join it meanwhile).
   */
  static #drainSegment(rt: Runtime): void {
    try {
      LoopPromise.#runSegment(rt);
    } catch (error) {
      LoopPromise.#segmentThrew(rt);
      throw error;
    }
    LoopPromise.#segmentDone(rt);
  }

  /**
   * The drain's loop, in a function of its own that does nothing after it: V8 compiles a long
   * first drain while it is still looping (on-stack replacement), when nothing after the loop has
   * run yet. Anything there (a call, a comparison) then lacked type feedback, and the compiled
   * code deoptimized at the end of every later drain.
   */
  static #runSegment(rt: Runtime): void {
    const ends = rt.segmentEnds;
    while (rt.ringSize !== 0) {
      if (rt.segmentHead < ends.length && rt.jobsRun >= ends[rt.segmentHead]) return;
      LoopPromise.#runNext(rt);
    }
  }

  /** The drainer of the oldest segment finished it. */
  static #segmentDone(rt: Runtime): void {
    const ends = rt.segmentEnds;
    if (rt.segmentHead < ends.length) {
      if (++rt.segmentHead === ends.length) {
        ends.length = 0;
        rt.segmentHead = 0;
      }
    } else rt.open = false;
  }

  /**
   * A job threw (only an internal callback can): a new drainer replaces this one. Segments are run
   * oldest first, so the rest of this one still runs before later ones; an open segment is closed
   * here so that later jobs wait for their own drainer.
   */
  static #segmentThrew(rt: Runtime): void {
    const ends = rt.segmentEnds;
    if (rt.segmentHead >= ends.length) {
      ends.push(rt.jobsRun + rt.ringSize);
      rt.open = false;
    }
    try {
      rt.loop.queueMicrotask(rt.drainSegment);
    } catch {
      LoopPromise.#goNative(rt);
    }
  }

  /** The loop is closed: from now on its promises run on native microtasks. */
  static #goNative(rt: Runtime): void {
    rt.native = true;
    rt.segmentEnds.length = 0;
    rt.segmentHead = 0;
    rt.open = false;
    LoopPromise.#scheduleNative(rt);
  }

  static #scheduleNative(rt: Runtime): void {
    if (rt.nativeScheduled) return;
    rt.nativeScheduled = true;
    queueMicrotask(rt.drainAll);
  }

  /** A native microtask (closed loop): runs every queued job. */
  static #drainAll(rt: Runtime): void {
    rt.nativeScheduled = false;
    while (rt.ringSize !== 0) {
      try {
        LoopPromise.#runNext(rt);
      } catch (error) {
        reportError(error);
      }
    }
  }

  static #run(job: AnyPromise, value: unknown): void {
    const flags = job.#flags;
    if ((flags & KINDS) !== 0) {
      LoopPromise.#runInternal(job, flags, value);
      return;
    }
    // A promise reacting to its source's outcome.
    const rejected = (flags & INCOMING_REJECTED) !== 0;
    let handler: AnyFunction | undefined;
    const has = flags & BOTH_HANDLERS;
    if (has !== 0) {
      const stored = job.#handler!;
      job.#handler = undefined;
      if (has === BOTH_HANDLERS) {
        handler = rejected
          ? (stored as HandlerPair).onRejected
          : (stored as HandlerPair).onFulfilled;
      } else if (has === (rejected ? ON_REJECTED : ON_FULFILLED)) handler = stored as AnyFunction;
    }
    job.#flags = flags & ~(INCOMING_REJECTED | BOTH_HANDLERS);
    if (handler === undefined) {
      LoopPromise.#settle(job, rejected ? REJECTED : FULFILLED, value);
      return;
    }
    let result: unknown;
    try {
      result = handler(value);
    } catch (error) {
      LoopPromise.#settle(job, REJECTED, error);
      return;
    }
    LoopPromise.#resolve(job, result);
  }

  /** Runs an internal record or thenable job. */
  static #runInternal(job: AnyPromise, flags: number, value: unknown): void {
    if ((flags & KIND_SHARED) !== 0) {
      LoopPromise.#runShared(job, value as number);
      return;
    }
    if ((flags & KIND_RECORD) !== 0) {
      const callback = job.#handler as AnyFunction;
      const ctx = job.#head;
      job.#handler = undefined;
      job.#head = undefined;
      callback(ctx, job.#rt as unknown as number, (flags & INCOMING_REJECTED) !== 0, value);
      return;
    }
    LoopPromise.#callThen(job);
  }

  /** Runs a shared observer's range of settled inputs, in index order. */
  static #runShared(job: AnyPromise, packed: number): void {
    const sources = job.#value as unknown[];
    const count = packed % RANGE;
    const start = (packed - count) / RANGE;
    const end = start + count;
    const callback = job.#handler as AnyFunction;
    const ctx = job.#head;
    let failure: { error: unknown } | undefined;
    for (let index = start; index < end; index++) {
      const source = sources[index];
      sources[index] = undefined;
      try {
        if (typeof source === "object" && source !== null && #flags in source) {
          const settled = source as AnyPromise;
          callback(ctx, index, (settled.#flags & STATE_MASK) === REJECTED, settled.#value);
        } else callback(ctx, index, false, source);
      } catch (error) {
        if (failure === undefined) failure = { error };
        else reportError(error);
      }
    }
    if (failure !== undefined) throw failure.error;
  }

  /** Queues a shared observer for `index`, extending its range if it is the last job queued. */
  static #enqueueShared(rt: Runtime, observer: AnyPromise, index: number): void {
    const seq = rt.seq;
    if (seq !== undefined && rt.open && seq.value === rt.openSeq && rt.ringSize !== 0) {
      const ring = rt.ring;
      const last = (rt.ringHead + (rt.ringSize - 1) * 2) & rt.ringMask;
      if (ring[last] === observer) {
        const packed = ring[last + 1] as number;
        const count = packed % RANGE;
        if ((packed - count) / RANGE + count === index && count < RANGE - 1) {
          ring[last + 1] = packed + 1;
          return;
        }
      }
    }
    LoopPromise.#enqueue(rt, observer, index * RANGE + 1);
  }

  /** The A+ 2.3.3.3 step for a foreign thenable, run as its own microtask. */
  static #callThen(job: AnyPromise): void {
    const target = job.#head as AnyPromise;
    const then = job.#handler as AnyFunction;
    const thenable = job.#value;
    job.#head = undefined;
    job.#handler = undefined;
    job.#value = undefined;
    const rt = target.#rt;
    let called = false;
    // Assigned below, after `then` returns, but read by `answered` (which may run first).
    // deno-lint-ignore prefer-const
    let waiting: TrackedResource | undefined;
    const answered = (): boolean => {
      if (called) return false;
      called = true;
      if (waiting !== undefined) rt.loop[kUntrack](waiting);
      return true;
    };
    try {
      then.call(
        thenable,
        (value: unknown): void => {
          if (answered()) LoopPromise.#resolve(target, value);
        },
        (reason: unknown): void => {
          if (answered()) LoopPromise.#settle(target, REJECTED, reason);
        },
      );
    } catch (error) {
      if (answered()) LoopPromise.#settle(target, REJECTED, error);
    }
    if (
      called || !rt.refAdoptions || rt.native || (target.#flags & UNTRACKED_ADOPTION) !== 0 ||
      #flags in (thenable as object)
    ) return;
    // Waiting on outside work (a native promise, say): keep run() alive until it answers, and
    // reject on close rather than hang.
    waiting = {
      kind: "promise.adopt",
      label: `a LoopPromise adopting ${
        thenable instanceof Promise ? "a native Promise" : "a thenable"
      }`,
      refed: true,
      dispose: (error: unknown): "rejected" | "cancelled" => {
        if (called) return "cancelled";
        called = true;
        LoopPromise.#settle(target, REJECTED, error);
        return "rejected";
      },
    };
    rt.loop[kTrack](waiting);
  }

  /** The A+ resolution procedure. `promise` is pending (its resolve functions are spent). */
  static #resolve(promise: AnyPromise, value: unknown): void {
    if (value === null || (typeof value !== "object" && typeof value !== "function")) {
      LoopPromise.#settle(promise, FULFILLED, value);
    } else LoopPromise.#resolveObject(promise, value);
  }

  /** The resolution procedure for an object or function `value`. */
  static #resolveObject(promise: AnyPromise, value: object): void {
    if (value === promise) {
      LoopPromise.#settle(
        promise,
        REJECTED,
        new TypeError("Cannot resolve a LoopPromise with itself: chaining cycle detected"),
      );
      return;
    }
    if (#flags in value) {
      if ((promise.#flags & ADOPT_VIA_THEN) !== 0) {
        LoopPromise.#queueThenCall(promise, value, LoopPromise.prototype.then);
        return;
      }
      // Our own promise: adopt its state directly (A+ 2.3.2).
      const source = value as AnyPromise;
      const flags = source.#flags;
      const state = flags & STATE_MASK;
      if (state === PENDING) {
        promise.#value = source.#head;
        source.#head = promise;
        source.#flags = flags | HANDLED;
        return;
      }
      if ((flags & HANDLED) === 0) {
        source.#flags = flags | HANDLED;
        if ((flags & REPORTED) !== 0) LoopPromise.#reportHandled(source);
      }
      LoopPromise.#settle(promise, state, source.#value);
      return;
    }
    let then: unknown;
    try {
      then = (value as { then?: unknown }).then;
    } catch (error) {
      LoopPromise.#settle(promise, REJECTED, error);
      return;
    }
    if (typeof then !== "function") {
      LoopPromise.#settle(promise, FULFILLED, value);
      return;
    }
    if (
      then === nativeThen && runningLoopOrUndefined() !== promise.#rt.loop &&
      Object.getPrototypeOf(value) === Promise.prototype
    ) {
      // Outside its loop's batch, the job calling `then` may run only after Deno's end-of-turn
      // check (the loop is idle, parked or not started): mark the native promise handled now,
      // or Deno would report a rejection this promise takes over. (Within a batch, the job runs
      // in its checkpoint, before any native microtask.)
      nativeThen.call(value, undefined, noop);
    }
    LoopPromise.#queueThenCall(promise, value, then as AnyFunction);
  }

  /** Queues the job that calls `then` on `thenable` with the resolve functions of `promise`. */
  static #queueThenCall(promise: AnyPromise, thenable: object, then: AnyFunction): void {
    const rt = promise.#rt;
    const job = new LoopPromise<unknown>(INTERNAL as never, rt as never);
    job.#flags = KIND_THENABLE;
    job.#head = promise;
    job.#handler = then;
    job.#value = thenable;
    LoopPromise.#enqueue(rt, job, undefined);
  }

  /** Settles a pending promise and queues its reactions in `then` order. */
  static #settle(promise: AnyPromise, state: number, value: unknown): void {
    const flags = promise.#flags;
    if ((flags & STATE_MASK) !== PENDING) return;
    promise.#flags = flags | state | LOCKED;
    promise.#value = value;
    const reaction = promise.#head as AnyPromise | undefined;
    if (reaction !== undefined) {
      promise.#head = undefined;
      LoopPromise.#react(promise.#rt, reaction, state, value);
    } else if (state === REJECTED && (flags & HANDLED) === 0) LoopPromise.#trackUnhandled(promise);
  }

  /** Queues the reactions of a promise that just settled, in `then` order. */
  static #react(rt: Runtime, first: AnyPromise, state: number, value: unknown): void {
    // Pending reactions are linked through their #value (free while pending).
    let reaction: AnyPromise | undefined = first;
    if (first.#value !== undefined) {
      // Prepended as attached: reverse once to run them in attachment order.
      let previous: AnyPromise | undefined = undefined;
      while (reaction !== undefined) {
        const next = reaction.#value as AnyPromise | undefined;
        reaction.#value = previous;
        previous = reaction;
        reaction = next;
      }
      reaction = previous!;
    }
    const incoming = state === REJECTED ? INCOMING_REJECTED : 0;
    do {
      const next = reaction.#value as AnyPromise | undefined;
      reaction.#value = undefined;
      reaction.#flags |= incoming;
      LoopPromise.#enqueue(rt, reaction, value);
      reaction = next;
    } while (reaction !== undefined);
  }

  /**
   * A handler came for a rejection already reported unhandled: report it handled once the current
   * checkpoint ends (as Deno dispatches `rejectionhandled` after the call that attached it), not
   * from inside `then()`, where the handler would run before the new reaction is even queued.
   */
  static #reportHandled(promise: AnyPromise): void {
    const rt = promise.#rt;
    const reason = promise.#value;
    const report = (): void => rt.loop[kReportHandled](promise, reason);
    if (rt.native || rt.loop.state === "closed") queueMicrotask(report);
    else rt.loop[kAfterCheckpoint](report);
  }

  static #trackUnhandled(promise: AnyPromise): void {
    const rt = promise.#rt;
    rt.unhandled.push(promise);
    if (rt.checkScheduled) return;
    rt.checkScheduled = true;
    if (rt.native || rt.loop.state === "closed") queueMicrotask(rt.checkUnhandled);
    else rt.loop[kAfterCheckpoint](rt.checkUnhandled);
  }

  /**
   * After a checkpoint: the rejections still unhandled become suspects, judged after a few native
   * microtask turns (see REPORT_AFTER_NATIVE_TURNS).
   */
  static #checkUnhandled(rt: Runtime): void {
    rt.checkScheduled = false;
    const list = rt.unhandled;
    if (list.length === 0) return;
    rt.unhandled = [];
    const deadline = rt.hop + REPORT_AFTER_NATIVE_TURNS;
    for (let i = 0; i < list.length; i++) {
      const promise = list[i];
      if ((promise.#flags & (HANDLED | REPORTED)) !== 0) continue;
      rt.suspects.push(promise);
      rt.suspectDeadlines.push(deadline);
    }
    if (rt.suspects.length === 0 || rt.hopScheduled) return;
    rt.hopScheduled = true;
    if (!rt.native && rt.loop.state !== "closed") {
      rt.pendingCheck = {
        kind: "promise.rejectionCheck",
        label: "pending unhandled-rejection check",
        refed: true,
        finishesAfterClose: true,
        dispose: () => {
          rt.pendingCheck = undefined;
          LoopPromise.#judge(rt, true);
          return "cancelled";
        },
      };
      rt.loop[kTrack](rt.pendingCheck);
      // The grace turns are native microtasks: they must run before the loop's next callback, or
      // a rejection handled by a later task of the same batch would go unreported (and whether it
      // is would depend on how many tasks fit in a batch).
      rt.loop[kRequestHostTurn]();
    }
    queueMicrotask(rt.nativeHop);
  }

  /** One native microtask turn: drops handled suspects, reports those whose grace ran out. */
  static #judge(rt: Runtime, final: boolean): void {
    const hop = ++rt.hop;
    const suspects = rt.suspects;
    const deadlines = rt.suspectDeadlines;
    let kept = 0;
    let reports: AnyPromise[] | undefined;
    for (let i = 0; i < suspects.length; i++) {
      const promise = suspects[i];
      if ((promise.#flags & (HANDLED | REPORTED)) !== 0) continue;
      if (final || deadlines[i] <= hop) {
        promise.#flags |= REPORTED;
        (reports ??= []).push(promise);
        continue;
      }
      suspects[kept] = promise;
      deadlines[kept++] = deadlines[i];
    }
    suspects.length = kept;
    deadlines.length = kept;
    if (kept !== 0 && !final) queueMicrotask(rt.nativeHop);
    else {
      rt.hopScheduled = false;
      if (rt.pendingCheck !== undefined) {
        const resource = rt.pendingCheck;
        rt.pendingCheck = undefined;
        rt.loop[kUntrack](resource);
      }
    }
    if (reports === undefined) return;
    const loop = rt.loop;
    for (const promise of reports) loop[kReportUnhandled](promise.#value, promise);
  }

  /**
   * The runtime of a loop that has none yet (see runtimeOf, whose hot path stays small enough for
   * V8 to inline it into every constructor and `then`).
   */
  static #newRuntime(loop: Loop): Runtime {
    if (!(loop instanceof Loop)) {
      throw new TypeError(
        `Cannot bind a LoopPromise as the loop must be a Loop: current value is ${describe(loop)}`,
      );
    }
    const rt = new Runtime(loop);
    rt.refAdoptions = loop !== defaultLoop();
    // Closures made here reach the engine directly (no extra call layer per job); their names
    // label the loop's microtasks in metrics.
    const promiseReaction = (): void => {
      if (rt.ringSize !== 0) LoopPromise.#runNext(rt);
    };
    const promiseReactions = (): void => LoopPromise.#drainSegment(rt);
    rt.drainOne = promiseReaction;
    rt.drainSegment = promiseReactions;
    if (kMicrotaskSeq !== undefined) {
      const cell = (loop as unknown as Record<symbol, unknown>)[kMicrotaskSeq] as SeqCell;
      if (typeof cell?.value === "number") rt.seq = cell;
    }
    rt.checkUnhandled = () => LoopPromise.#checkUnhandled(rt);
    rt.nativeHop = () => {
      if (rt.hopScheduled) LoopPromise.#judge(rt, false);
    };
    rt.drainAll = () => LoopPromise.#drainAll(rt);
    (loop as unknown as { [kRuntime]: Runtime })[kRuntime] = rt;
    return rt;
  }

  static {
    runtimeOf = (loop: Loop): Runtime =>
      (loop as unknown as { [kRuntime]?: Runtime })[kRuntime] ?? LoopPromise.#newRuntime(loop);
    makePromise = <T>(rt: Runtime): LoopPromise<T> => {
      const promise = new LoopPromise<T>(INTERNAL as never, rt as never);
      promise.#flags = LOCKED;
      return promise;
    };
    runtimeOfPromise = (promise) => promise.#rt;
    isLoopPromise = (value: unknown): value is AnyPromise =>
      typeof value === "object" && value !== null && #flags in value;
    resolvePromise = (promise, value) => {
      if ((promise.#flags & STATE_MASK) === PENDING) LoopPromise.#resolve(promise, value);
    };
    settlePromise = (promise, rejected, value) => {
      LoopPromise.#settle(promise, rejected ? REJECTED : FULFILLED, value);
    };
    markHandled = (promise) => {
      promise.#flags |= HANDLED;
    };
    const record = <C>(
      callback: ElementCallback<C>,
      ctx: C,
      index: number,
    ): AnyPromise => {
      // A record's #rt holds its index: records are queued on their source's runtime.
      const job = new LoopPromise<unknown>(INTERNAL as never, index as never);
      job.#flags = KIND_RECORD;
      job.#handler = callback;
      job.#head = ctx;
      return job;
    };
    queueCallback = (rt, callback, ctx, index, rejected, value) => {
      const job = record(callback, ctx, index);
      if (rejected) job.#flags |= INCOMING_REJECTED;
      LoopPromise.#enqueue(rt, job, value);
    };
    makeObserver = (rt, callback, ctx) => {
      const observer = new LoopPromise<unknown>(INTERNAL as never, rt as never);
      observer.#flags = KIND_SHARED;
      observer.#handler = callback;
      observer.#head = ctx;
      observer.#value = [];
      return observer;
    };
    observeWith = (observer, value, index) => {
      if (typeof value === "object" && value !== null && #flags in value) {
        const source = value as AnyPromise;
        const flags = source.#flags;
        if ((flags & STATE_MASK) === PENDING) {
          LoopPromise.#attach(
            source,
            record(observer.#handler as ElementCallback<unknown>, observer.#head, index),
          );
          return;
        }
        if ((flags & HANDLED) === 0) LoopPromise.#handle(source, flags);
        (observer.#value as unknown[])[index] = source;
        LoopPromise.#enqueueShared(source.#rt, observer, index);
        return;
      }
      const rt = observer.#rt;
      if (value === null || (typeof value !== "object" && typeof value !== "function")) {
        (observer.#value as unknown[])[index] = value;
        LoopPromise.#enqueueShared(rt, observer, index);
        return;
      }
      observe(rt, value, observer.#handler as ElementCallback<unknown>, observer.#head, index);
    };
    observe = (rt, value, callback, ctx, index, untracked = false) => {
      if (value === null || (typeof value !== "object" && typeof value !== "function")) {
        queueCallback(rt, callback, ctx, index, false, value);
        return;
      }
      if (#flags in value) {
        LoopPromise.#attach(value as AnyPromise, record(callback, ctx, index));
        return;
      }
      // A foreign value: what `C.resolve(value)` would do (one read of `then`), then observe that.
      const promise = new LoopPromise<unknown>(INTERNAL as never, rt as never);
      promise.#flags = untracked ? LOCKED | UNTRACKED_ADOPTION : LOCKED;
      LoopPromise.#attach(promise, record(callback, ctx, index));
      LoopPromise.#resolve(promise, value);
    };
  }
}
