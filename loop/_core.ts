// The loop's machinery. The public `Loop` (loop.ts) is a thin, documented facade over this class,
// which keeps plain fields so the hot paths (submit, dispatch, timers) stay monomorphic and cheap, and
// so the timer and watch handles can reach it without exposing internals on `Loop`.
//
// One iteration, in order (libuv's phases, with the task queue where libuv runs pending callbacks):
//   1. timers     due timers, by (deadline, sequence); the clock is read just before
//   2. tasks      tasks queued when the phase began
//   3. poll       fd readiness (zero timeout; events from an idle wait are dispatched here)
//   4. check      immediates queued when the phase began
//   5. close      close callbacks of watches closed since the last pass
// A microtask checkpoint follows every callback. Each phase runs only what was queued when it began.
import { RingQueue } from "./_ring_queue.ts";
import { type TimerRun, TimerStore } from "./_timer_store.ts";
import { type Clock, systemClock } from "./clock.ts";
import { LoopClosedError, LoopShutdownError, LoopStateError } from "./errors.ts";
import { enterLoop, leaveLoop } from "./_current.ts";
import type { Disposition, TrackedResource } from "./_internal.ts";
import type {
  AliveReason,
  ClosedItem,
  CloseReport,
  ErrorContext,
  LoopOptions,
  LoopState,
  MissedTickBehavior,
  Timer,
  Watch,
  WatchEvent,
  WatchInterest,
  WatchOptions,
} from "./types.ts";
import type { Loop } from "./loop.ts";
import { ERROR, EventBatch, HANGUP, PRIORITY, READABLE, WRITABLE } from "../poller/types.ts";
import type { Poller } from "../poller/types.ts";
import { PollerError } from "../poller/errors.ts";
import { createPoller } from "../poller/create_poller.ts";
import { checkOptionalBoolean, describe } from "../poller/_validate.ts";
import {
  KIND_FD,
  KIND_IMMEDIATE,
  KIND_MICROTASK,
  KIND_TASK,
  KIND_TIMER,
  MetricsRecorder,
  QUEUE_MICROTASKS,
} from "./_metrics_recorder.ts";
import type { MetricsSnapshot } from "./metrics.ts";

/** Any function, as callbacks are stored. */
// deno-lint-ignore no-explicit-any
export type AnyCallback = (...args: any[]) => unknown;

/** The arguments of a callback that takes none: one frozen array for all. */
export const EMPTY_ARGS: readonly unknown[] = Object.freeze([]);

/**
 * A function's arguments from `first` on, as an array: for the timer functions, which read
 * `arguments` rather than take a rest parameter (that made an array on every call).
 */
export function argumentsFrom(args: IArguments, first: number): unknown[] {
  return Array.prototype.slice.call(args, first);
}
// Deno's own timers and microtask queue, captured at import: timers/install() may replace the
// globals with a loop's, and the loop must not wait on (or start itself through) its own queues.
const nativeSetTimeout = globalThis.setTimeout;
const nativeClearTimeout = globalThis.clearTimeout;
const nativeQueueMicrotask = globalThis.queueMicrotask;
const MAX_SAFE_DELAY_MS = Number.MAX_SAFE_INTEGER;
/** The longest delay Deno's own setTimeout takes as given (longer ones fire at once). */
const MAX_NATIVE_DELAY_MS = 2 ** 31 - 1;
const SLOT_BITS = 20;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const GENERATION_LIMIT = 1 << (32 - SLOT_BITS);
/**
 * A phase looks at the clock after its 8th, 16th, 32nd, ... callback, then every 1,024th: slow
 * callbacks give Deno its turn within a few of them, cheap ones pay a clock read (~100 ns) per
 * ~1k, and short phases none.
 */
const FIRST_BUDGET_CHECK = 8;
const BUDGET_CHECK_STRIDE = 1024;
/** How long before a timer deadline an idle wait in the poller hands over to short yields. */
const SPIN_TAIL_MS = 0.2;
/** `metrics.skip()` limit for a phase whose length is unknown up front (the timers phase). */
const UNBOUNDED_RUN = 0x3fffffff;
/**
 * With `timerPrecision: "high"`, how long before a deadline a parked wait hands over to a wait on
 * Deno's own thread. Measured here (idle): waking from the blocking pool is 0.18 ms late at the
 * median and 0.8 ms at p99 (thread hand-offs); a wait on the calling thread with 1 ns of timer slack
 * is 0.04 ms late at the median and 0.18 ms at p99.
 */
const BLOCKING_WINDOW_MS = 1;

// Callback kinds, as indices (the recorder's, plus close callbacks, which it does not time).
const KIND_CLOSE = 5;
const KIND_NAMES: readonly ErrorContext["kind"][] = [
  "task",
  "microtask",
  "timer",
  "immediate",
  "fd",
  "close",
];

const ACCEPTING = 0;
const CLOSING = 1;
const CLOSED = 2;

const TIMER_PENDING = 0;
const TIMER_FIRED = 1;
const TIMER_CLEARED = 2;
// TimerNode.flags: status in the low bits, then booleans, then the saturating nesting level.
const STATUS_MASK = 3;
const FLAG_UNREF = 4;
const FLAG_INDEXED = 8;
const FLAG_CLAMP = 16;
const FLAG_REPEAT = 32;
const NESTING_SHIFT = 6;
const NESTING_LOW_MASK = (1 << NESTING_SHIFT) - 1;
const NESTING_MAX = 15;

/** The deferred close of a loop, resolved when the close sequence finishes. */
interface CloseDeferred {
  promise: Promise<CloseReport>;
  resolve(report: CloseReport): void;
  reject(error: unknown): void;
}

/** The callback count at which a phase next looks at the clock (see FIRST_BUDGET_CHECK). */
function nextBudgetCheck(ran: number): number {
  return ran < BUDGET_CHECK_STRIDE ? ran * 2 : ran + BUDGET_CHECK_STRIDE;
}

function labelOf(callback: AnyCallback): string {
  return callback.name || "anonymous";
}

/** A `missed` option (`"skip"` when absent), validated; errors read `Cannot ${what} as ...`. */
export function checkMissed(missed: unknown, what: string): MissedTickBehavior {
  if (missed === undefined || missed === null) return "skip"; // as `??` treats them
  if (missed !== "skip" && missed !== "delay" && missed !== "burst") {
    throw new RangeError(
      `Cannot ${what} as missed must be "skip", "delay" or "burst": current value is ${
        describe(missed)
      }`,
    );
  }
  return missed;
}

/**
 * `Number(delayMs)`, with what it cannot convert (a Symbol, an object without a prototype, one whose
 * `valueOf` throws) refused in the house format (Number() has its own message; the cause keeps it).
 */
function delayToNumber(delayMs: unknown): number {
  try {
    if (typeof delayMs !== "symbol") return Number(delayMs);
  } catch (error) {
    throw new TypeError(
      `Cannot schedule a timer as the delay must convert to a number: current value is ${
        describe(delayMs)
      }`,
      { cause: error },
    );
  }
  throw new TypeError(
    `Cannot schedule a timer as the delay must convert to a number: current value is ${
      describe(delayMs)
    }`,
  );
}

/** Coerces a delay the way the web does, but honours floats and delays beyond 2^31-1 ms. */
function normalizeDelay(delayMs: unknown): number {
  if (delayMs === undefined) return 0;
  const value = typeof delayMs === "number" ? delayMs : delayToNumber(delayMs);
  if (value > 0) {
    if (value > MAX_SAFE_DELAY_MS) {
      throw new RangeError(
        `Cannot schedule a timer as the delay must be finite and at most 2^53-1 ms: current value is ${
          describe(delayMs)
        }`,
      );
    }
    return value;
  }
  return 0; // NaN, negative, zero
}

function assertCallback(callback: unknown, what: string): asserts callback is AnyCallback {
  if (typeof callback !== "function") {
    throw new TypeError(
      `Cannot ${what} as the callback must be a function: current value is ${describe(callback)}`,
    );
  }
}

/** install()'s web mode: HTML's nesting clamp for `timer`, whatever its loop's option. */
export function clampNestedTimer(timer: Timer): void {
  if (timer instanceof TimerNode) timer.core.clampTimer(timer);
}

/**
 * For timers/ helpers that settle a native promise from a timer callback: `run()` yields to Deno
 * after the current iteration, so the continuation runs before the loop goes on (and before a
 * virtual clock jumps ahead of it).
 */
export function requestHostTurn(timer: Timer): void {
  if (timer instanceof TimerNode) timer.core.hostTurnRequested = true;
}

/**
 * The deadline `delayMs` after `baseMs`: `baseMs + delayMs`, unless the addition rounds below
 * that (far from zero a float step is coarse: 1e12 + 1e-5 is 1e12), then the next float up that
 * is not, so that a timer never fires before `delayMs` have passed since its base.
 */
export function deadlineAfter(baseMs: number, delayMs: number): number {
  const deadlineMs = baseMs + delayMs;
  return deadlineMs - baseMs >= delayMs ? deadlineMs : roundDeadlineUp(baseMs, delayMs, deadlineMs);
}

function roundDeadlineUp(baseMs: number, delayMs: number, deadlineMs: number): number {
  // A step of at least one ulp (at most two): two or three of them reach it.
  while (deadlineMs - baseMs < delayMs) {
    deadlineMs += Math.max(Math.abs(deadlineMs) * Number.EPSILON, Number.MIN_VALUE);
  }
  return deadlineMs;
}

/**
 * The store list of a timer armed `delayMs` after its base time: timeouts by duration, intervals
 * in a key space of their own (re-armed from their previous deadline, they would land out of
 * order among timeouts of the same duration armed from the loop's time).
 */
function storeKey(delayMs: number, repeat: boolean): number {
  return repeat ? -1 - delayMs : delayMs;
}

/**
 * Timer ids are `ID_BASE` + a number each loop counts from 1: far above any id Deno issues (Deno
 * counts from 1; it would take it 2^52 timers, over a century at a million a second, to reach
 * them), so an id handed to the wrong `clearTimeout` (a loop's to Deno's, Deno's to a loop's)
 * clears nothing, which install()'s clear functions rely on. The count is the loop's own (no
 * state shared between loops: a loop's ids do not depend on what other loops did), so two loops
 * may issue the same id. Timers keep the number, a small integer (a V8 Smi, no boxed double per
 * timer); the id is made from it when handed out.
 */
export const ID_BASE = 2 ** 52;

/** A timeout or interval: the store's entry and the user's handle in one object. */
export class TimerNode implements Timer {
  // A timer pass runs most plain timeouts without touching them (their callback from the store,
  // see loop/_timer_store.ts): their flags then still say "pending", and `status` asks the store.
  /**
   * The store's run holding this timer; null when cleared, or set aside by a pass. Left as it was
   * when a pass fired it: `timers.holds(timer)` tells.
   */
  run: TimerRun | null = null;
  /**
   * status, unref, indexed, clamp, repeat and nesting in one small integer: a million pending
   * timers are 40 MB lighter than with a field each (Deno's V8 has no pointer compression), and
   * lighter handles mean less GC work when many are scheduled at once.
   */
  flags = 0;
  readonly callback: AnyCallback;
  readonly args: readonly unknown[];
  /** Its position in that run. */
  slot = 0;
  /** The id less `ID_BASE`, read without indexing it (the public `id` getter indexes it). */
  readonly timerId: number;
  readonly core: LoopCore;
  readonly delayMs: number;

  constructor(
    core: LoopCore,
    id: number,
    callback: AnyCallback,
    args: readonly unknown[],
    delayMs: number,
    repeat: boolean,
  ) {
    this.callback = callback;
    this.args = args;
    this.timerId = id;
    this.core = core;
    this.delayMs = delayMs;
    if (repeat) this.flags = FLAG_REPEAT;
  }

  /**
   * What the store keeps beside the timer, so that a pass runs it without reading it: the
   * callback of a ref'd, unindexed timeout without arguments; else nothing (the pass reads the
   * timer). A getter, read once as the timer goes in: no field. A pending timer that turns
   * unref'd or indexed is `unshare`d (the store forgets its payload).
   */
  get payload(): AnyCallback | undefined {
    return (this.flags & (FLAG_UNREF | FLAG_INDEXED | FLAG_REPEAT)) === 0 &&
        this.args === EMPTY_ARGS
      ? this.callback
      : undefined;
  }

  /** TIMER_PENDING, TIMER_FIRED or TIMER_CLEARED. */
  get status(): number {
    const status = this.flags & STATUS_MASK;
    // Pending in `flags` but no longer in its run: a pass fired it without writing here. (Pending
    // with no run: set aside during a pass, still to run.)
    if (status === TIMER_PENDING && this.run !== null && !this.core.timers.holds(this)) {
      return TIMER_FIRED;
    }
    return status;
  }
  set status(status: number) {
    this.flags = (this.flags & ~STATUS_MASK) | status;
  }

  get refed(): boolean {
    return (this.flags & FLAG_UNREF) === 0;
  }
  set refed(refed: boolean) {
    this.flags = refed ? this.flags & ~FLAG_UNREF : this.flags | FLAG_UNREF;
  }

  /** Whether the id is in the loop's id index (`Number(handle)` was taken). */
  get indexed(): boolean {
    return (this.flags & FLAG_INDEXED) !== 0;
  }
  set indexed(indexed: boolean) {
    this.flags = indexed ? this.flags | FLAG_INDEXED : this.flags & ~FLAG_INDEXED;
  }

  /** HTML's nesting clamp for this timer whatever the loop's option (install()'s web mode). */
  get clamp(): boolean {
    return (this.flags & FLAG_CLAMP) !== 0;
  }
  set clamp(clamp: boolean) {
    this.flags = clamp ? this.flags | FLAG_CLAMP : this.flags & ~FLAG_CLAMP;
  }

  get repeat(): boolean {
    return (this.flags & FLAG_REPEAT) !== 0;
  }

  /** The HTML timer nesting level, saturating (only "more than 5" matters). */
  get nesting(): number {
    return this.flags >>> NESTING_SHIFT;
  }
  set nesting(nesting: number) {
    this.flags = (this.flags & NESTING_LOW_MASK) |
      ((nesting < NESTING_MAX ? nesting : NESTING_MAX) << NESTING_SHIFT);
  }

  ref(): this {
    this.core.setTimerRef(this, true);
    return this;
  }

  unref(): this {
    this.core.setTimerRef(this, false);
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }

  refresh(): this {
    this.core.refreshTimer(this);
    return this;
  }

  close(): this {
    this.core.clearTimer(this);
    return this;
  }

  [Symbol.dispose](): void {
    this.core.clearTimer(this);
  }

  /**
   * The id. Reading it indexes the timer, as `Number(handle)` does, so that `clearTimeout(id)`
   * finds it: ids are indexed only once handed out, not for every timer.
   */
  get id(): number {
    this.core.indexTimer(this);
    return ID_BASE + this.timerId;
  }

  [Symbol.toPrimitive](_hint: string): number {
    this.core.indexTimer(this);
    return ID_BASE + this.timerId;
  }
}

/** An immediate: a check-phase callback. Cancelled ones stay queued, marked, and are skipped. */
export class ImmediateNode implements Timer {
  active = true;
  refed = true;
  indexed = false;
  /** The id less `ID_BASE`, read without indexing it (the public `id` getter indexes it). */
  readonly timerId: number;
  readonly core: LoopCore;
  readonly callback: AnyCallback;
  readonly args: readonly unknown[];

  constructor(core: LoopCore, id: number, callback: AnyCallback, args: readonly unknown[]) {
    this.core = core;
    this.timerId = id;
    this.callback = callback;
    this.args = args;
  }

  ref(): this {
    this.core.setImmediateRef(this, true);
    return this;
  }

  unref(): this {
    this.core.setImmediateRef(this, false);
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }

  refresh(): this {
    return this;
  }

  close(): this {
    this.core.clearImmediate(this);
    return this;
  }

  [Symbol.dispose](): void {
    this.core.clearImmediate(this);
  }

  /**
   * The id. Reading it indexes the timer, as `Number(handle)` does, so that `clearTimeout(id)`
   * finds it: ids are indexed only once handed out, not for every timer.
   */
  get id(): number {
    this.core.indexTimer(this);
    return ID_BASE + this.timerId;
  }

  [Symbol.toPrimitive](_hint: string): number {
    this.core.indexTimer(this);
    return ID_BASE + this.timerId;
  }
}

/** The mutable event object a watch hands its callback (one per watch, reused). */
class MutableWatchEvent implements WatchEvent {
  readable = false;
  writable = false;
  priority = false;
  hangup = false;
  error = false;
  bits = 0;
}

/** A watched fd. */
class WatchNode implements Watch {
  closed = false;
  refed = true;
  lastPass = 0;
  readonly event: MutableWatchEvent = new MutableWatchEvent();
  readonly fd: number;
  token: number;
  interest: number;
  readonly core: LoopCore;
  readonly callback: (event: WatchEvent) => void;
  readonly label: string;
  readonly onClose: (() => void) | undefined;

  constructor(
    core: LoopCore,
    fd: number,
    token: number,
    interest: number,
    callback: (event: WatchEvent) => void,
    options: WatchOptions | undefined,
  ) {
    this.core = core;
    this.fd = fd;
    this.token = token;
    this.interest = interest;
    this.callback = callback;
    this.label = options?.label ?? `fd ${fd}`;
    this.onClose = options?.onClose;
  }

  modify(interest: WatchInterest): void {
    this.core.modifyWatch(this, interest);
  }

  close(): void {
    this.core.closeWatch(this);
  }

  ref(): this {
    this.core.setWatchRef(this, true);
    return this;
  }

  unref(): this {
    this.core.setWatchRef(this, false);
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }

  [Symbol.dispose](): void {
    this.core.closeWatch(this);
  }
}

/** Turns a user's interest object into poller bits, validating it (`what`: "watch fd 3"). */
function interestBits(interest: WatchInterest, what: string): number {
  if (interest === null || typeof interest !== "object") {
    throw new TypeError(
      `Cannot ${what} as the interest must be an object like { readable: true }: current value is ${
        describe(interest)
      }`,
    );
  }
  const { readable, writable, priority } = interest;
  checkFlag(readable, "readable", what);
  checkFlag(writable, "writable", what);
  checkFlag(priority, "priority", what);
  for (const key in interest) {
    // A typo ({ writeable: true }) would otherwise be dropped without a word.
    if (key !== "readable" && key !== "writable" && key !== "priority") {
      throw new TypeError(
        `Cannot ${what} as the interest's keys must be readable, writable or priority: current value is ${
          JSON.stringify(key)
        }`,
      );
    }
  }
  const bits = (readable ? READABLE : 0) | (writable ? WRITABLE : 0) | (priority ? PRIORITY : 0);
  if (bits === 0) {
    throw new RangeError(
      `Cannot ${what} as the interest is empty: current value is ${JSON.stringify(interest)}`,
    );
  }
  return bits;
}

/** Throws a TypeError unless a numeric loop option is a number (a RangeError would show "5" as 5). */
function checkNumberOption(value: unknown, name: string): asserts value is number {
  if (typeof value === "number") return;
  throw new TypeError(
    `Cannot create a loop as ${name} must be a number: current value is ${describe(value)}`,
  );
}

/** Throws unless a label (used in errors, metrics and aliveReasons()) is a string. */
function checkLabel(label: unknown, what: string): void {
  if (typeof label === "string") return;
  throw new TypeError(
    `Cannot ${what} as the label must be a string: current value is ${describe(label)}`,
  );
}

/** Throws unless an interest flag is a boolean or undefined (`"false"` must not mean true). */
function checkFlag(value: unknown, name: string, what: string): void {
  if (value === undefined || typeof value === "boolean") return;
  throw new TypeError(
    `Cannot ${what} as interest.${name} must be a boolean: current value is ${describe(value)}`,
  );
}

/** The methods the loop calls on a poller. */
const POLLER_METHODS = ["register", "modify", "unregister", "wait", "waitAsync", "wake", "close"];

/** Throws unless `poller` looks like a {@linkcode Poller} (it has the methods the loop calls). */
function checkPoller(poller: unknown, what: string): asserts poller is Poller {
  let problem: string | undefined;
  if (poller === null) problem = "null";
  else if (typeof poller !== "object") problem = describe(poller);
  else {
    const methods = poller as Record<string, unknown>;
    const missing = POLLER_METHODS.find((name) => typeof methods[name] !== "function");
    if (missing !== undefined) problem = `an object without a ${missing}() method`;
  }
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot ${what} as the poller must be a Poller (or a function returning one): current value is ${problem}`,
    );
  }
}

/**
 * Which open loop uses a poller, kept on the poller itself (a hidden, non-enumerable property:
 * no module-level registry): every wait reports all of a poller's fds under the tokens their loop
 * gave them, so a poller shared by two loops would hand one loop's events to the other's watches
 * (and their idle waits would collide). Released when the loop closes. A poller that cannot take
 * the property (frozen) is not tracked.
 */
const kPollerUser: unique symbol = Symbol("eventloop.pollerUser");

type ClaimablePoller = Poller & { [kPollerUser]?: LoopCore | undefined };

/** Makes `core` the user of `poller`, or throws `Deno.errors.Busy` if another open loop is. */
function claimPoller(poller: Poller, core: LoopCore, what: string): void {
  const user = (poller as ClaimablePoller)[kPollerUser];
  if (user !== undefined && user !== core && user.state !== "closed") {
    throw new Deno.errors.Busy(
      `Cannot ${what} as its poller is in use by the loop "${user.label}" until that loop closes: current value is a "${
        String(poller.backend)
      }" poller`,
    );
  }
  if (user === core) return;
  checkPollerClock(poller, core, what);
  if (user === undefined && !Object.isExtensible(poller)) return;
  Object.defineProperty(poller, kPollerUser, { value: core, writable: true, configurable: true });
}

/**
 * Throws unless a scripted poller (one with a `clock`, as FakePoller) reads the loop's clock when
 * either is virtual: on different clocks, scripted times would depend on how long the process has
 * been up (a virtual loop, a real-time script) or the loop would spin until each timer (the
 * reverse).
 */
function checkPollerClock(poller: Poller, core: LoopCore, what: string): void {
  const pollerClock = (poller as { clock?: { now?: unknown; virtual?: boolean } }).clock;
  if (typeof pollerClock !== "object" || pollerClock === null) return;
  if (pollerClock === core.clock || (pollerClock.virtual !== true && !core.virtual)) return;
  const kind = (virtual: boolean): string => virtual ? "a virtual" : "a real-time";
  const current = pollerClock.virtual === true && core.virtual
    ? "a virtual poller clock other than the loop's"
    : `${kind(pollerClock.virtual === true)} poller clock on ${kind(core.virtual)} loop clock`;
  throw new TypeError(
    `Cannot ${what} as its ${
      String(poller.backend)
    } poller must read the loop's clock (new FakePoller({ clock })): current value is ${current}`,
  );
}

/** Frees `poller` for other loops if `core` holds it. */
function releasePoller(poller: unknown, core: LoopCore): void {
  if (typeof poller !== "object" || poller === null) return;
  const claimable = poller as ClaimablePoller;
  if (claimable[kPollerUser] === core) claimable[kPollerUser] = undefined;
}

/** Why a run failed: the first error, and any that siblings threw before the loop could stop. */
interface Failure {
  error: unknown;
  more: unknown[] | null;
}

/**
 * What run(), runOnce() or close() rejects with: the error; when more callbacks threw before the
 * loop stopped (siblings in one microtask checkpoint, onClose callbacks), an AggregateError of all
 * of them in order, so that none is silently dropped.
 */
function failureError(failure: Failure): unknown {
  if (failure.more === null) return failure.error;
  const errors = [failure.error, ...failure.more];
  let first: string;
  try {
    first = failure.error instanceof Error ? failure.error.message : String(failure.error);
  } catch {
    first = Object.prototype.toString.call(failure.error);
  }
  return new AggregateError(
    errors,
    `${errors.length} callbacks threw before the loop could stop; the first: ${first}`,
  );
}

function validateFd(fd: unknown): asserts fd is number {
  if (typeof fd !== "number") {
    throw new TypeError(
      `Cannot watch an fd as it must be a number: current value is ${describe(fd)}`,
    );
  }
  if (!Number.isSafeInteger(fd) || fd < 0) {
    throw new RangeError(
      `Cannot watch an fd as it must be a non-negative integer: current value is ${fd}`,
    );
  }
}

/** The loop's machinery. */
export class LoopCore {
  readonly loop: Loop;
  readonly clock: Clock;
  readonly virtual: boolean;
  readonly label: string;
  readonly isDefault: boolean;

  // Options.
  readonly onError: LoopOptions["onError"];
  readonly onUnhandledRejection: LoopOptions["onUnhandledRejection"];
  readonly onRejectionHandled: LoopOptions["onRejectionHandled"];
  readonly missed: MissedTickBehavior;
  readonly clampNested: boolean;
  readonly yieldIntervalMs: number;
  readonly busyPollMs: number;
  readonly highPrecision: boolean;
  readonly pollerOption: LoopOptions["poller"];
  metrics: MetricsRecorder | null = null;

  // Queues.
  readonly tasks: RingQueue<AnyCallback> = new RingQueue();
  readonly microtasks: RingQueue<AnyCallback> = new RingQueue();
  readonly immediates: RingQueue<ImmediateNode> = new RingQueue();
  readonly closeCallbacks: RingQueue<WatchNode> = new RingQueue();
  readonly timers: TimerStore<TimerNode> = new TimerStore();
  afterCheckpoint: (() => void)[] = [];
  /** Counts every microtask queued: promise/ batches reactions queued back to back. */
  readonly microtaskSeq: { value: number } = { value: 0 };
  /** promise/'s per-loop state, kept here so the Loop's shape never changes. */
  promiseRuntime: unknown = undefined;
  readonly tracked: Set<TrackedResource> = new Set();
  /** The pending timers and immediates whose id was handed out, by number (id less ID_BASE). */
  timersById: Map<number, TimerNode | ImmediateNode> | null = null;

  // Counters for liveness.
  refedTimers = 0;
  refedImmediates = 0;
  liveImmediates = 0;
  refedWatches = 0;

  // Ids (less ID_BASE) and ordering.
  nextId = 1;
  nextSequence = 0;
  nowMs: number;
  /** The cached time is out of date: the next reader refreshes it (a clock read costs ~130 ns). */
  nowStale = true;
  /** Outside a batch, `nowMs` holds this synchronous turn's reading until a microtask clears it. */
  turnNowValid = false;
  readonly cachesTurnNow: boolean;
  readonly endTurn = (): void => {
    this.turnNowValid = false;
  };
  /**
   * The HTML nesting level of the running timer callback (0 outside one); -1 while a timeout
   * whose flags the pass did not read runs: then it is `firingTimer.nesting`, read on demand.
   */
  currentNesting = 0;
  firingTimer: TimerNode | null = null;

  // Watches.
  poller: Poller | null = null;
  ownsPoller = false;
  pollerProbed = false;
  watchSlots: (WatchNode | undefined)[] = [];
  watchGenerations: number[] = [];
  freeSlots: number[] = [];
  watchesByFd: Map<number, WatchNode> = new Map();
  watchCount = 0;
  syncBatch: EventBatch | null = null;
  asyncBatch: EventBatch | null = null;
  pendingAsyncEvents = 0;
  pollPass = 0;
  /** The last poll pass reported events: poll again (zero timeout) before parking. */
  polledEvents = false;
  /** When the last poll pass with events ended (performance.now), for busyPollMs. */
  lastFdEventMs = -Infinity;

  // Life cycle.
  state: LoopState = "idle";
  accept = ACCEPTING;
  inBatch = false;
  stopRequested = false;
  failure: Failure | null = null;
  closeRequested = false;
  closeDeferred: CloseDeferred | null = null;
  autoStartScheduled = false;
  /**
   * The default loop gone dormant with only unref'd timers left: an unref'd Deno timer that starts
   * it again at the next deadline, so those timers fire while the process lives on for other
   * reasons (as Node's do), without keeping it alive themselves. Also the ref'd restart after a
   * failed run (see armRestart).
   */
  dormantWakeId: ReturnType<typeof setTimeout> | undefined = undefined;
  batchDeadlineMs = 0;
  /**
   * When Deno last had a turn of its own event loop (performance.now): after a yield or an
   * off-thread wait. Waits that stay on Deno's thread span batches, so they check this rather
   * than the batch budget, or a 1 ms interval would starve Deno's timers and I/O.
   */
  hostTurnMs = 0;
  hostTurnRequested = false;
  /** A phase stopped early because the batch's budget was spent (see overBudget). */
  budgetSpent = false;

  // Idle waiting.
  parked = false;
  parkedDeadlineMs = Infinity;
  jsWake: (() => void) | null = null;
  jsTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  channel: MessageChannel | null = null;
  yieldResolve: (() => void) | null = null;
  /**
   * A Deno timer armed by a yield, pending until Deno runs its timers. Deno runs its timers and
   * I/O only about every 129th MessageChannel message: once this one is yieldIntervalMs old, a
   * yield waits for it rather than posting another message.
   */
  hostTimerId: ReturnType<typeof setTimeout> | undefined = undefined;
  hostTimerArmedMs = 0;
  awaitingHostTimer = false;
  readonly onHostTimer = (): void => {
    this.hostTimerId = undefined;
    if (this.awaitingHostTimer) {
      // Resume through a message: Deno's other due timers run after this one, in the same turn.
      // Armed again at once, the next one is due by the end of the batch this resumes.
      this.awaitingHostTimer = false;
      this.channel!.port2.postMessage(null);
      this.hostTimerArmedMs = performance.now();
      this.hostTimerId = nativeSetTimeout(this.onHostTimer, 0);
    }
  };

  // Close accounting.
  ranTasks = 0;
  ranMicrotasks = 0;
  ranImmediates = 0;

  constructor(loop: Loop, options: LoopOptions | undefined, isDefault: boolean) {
    if (options !== undefined && (options === null || typeof options !== "object")) {
      throw new TypeError(
        `Cannot create a loop as the options must be an object: current value is ${
          describe(options)
        }`,
      );
    }
    this.loop = loop;
    this.isDefault = isDefault;
    const clock = options?.clock ?? systemClock;
    if (clock === null || typeof clock !== "object" || typeof clock.now !== "function") {
      throw new TypeError(
        "Cannot create a loop as the clock must have a now() method: current value is " +
          describe(clock),
      );
    }
    this.clock = clock;
    this.cachesTurnNow = clock === systemClock;
    this.virtual = clock.virtual === true;
    if (this.virtual && typeof (clock as { set?: unknown }).set !== "function") {
      throw new TypeError(
        "Cannot create a loop on a virtual clock without a set(ms) method: current value has none",
      );
    }
    this.nowMs = clock.now();
    for (const name of ["onError", "onUnhandledRejection", "onRejectionHandled"] as const) {
      const handler = options?.[name];
      if (handler !== undefined && typeof handler !== "function") {
        throw new TypeError(
          `Cannot create a loop as ${name} must be a function: current value is ${
            describe(handler)
          }`,
        );
      }
    }
    this.onError = options?.onError;
    this.onUnhandledRejection = options?.onUnhandledRejection;
    this.onRejectionHandled = options?.onRejectionHandled;
    this.missed = checkMissed(options?.missed, "create a loop");
    const clampNested = options?.clampNestedTimers;
    checkOptionalBoolean(clampNested, "create a loop", "clampNestedTimers");
    this.clampNested = clampNested === true;
    const yieldIntervalMs = options?.yieldIntervalMs ?? 4;
    checkNumberOption(yieldIntervalMs, "yieldIntervalMs");
    if (!(yieldIntervalMs > 0) || yieldIntervalMs > 1000) {
      throw new RangeError(
        `Cannot create a loop as yieldIntervalMs must be in (0, 1000]: current value is ${
          describe(yieldIntervalMs)
        }`,
      );
    }
    this.yieldIntervalMs = yieldIntervalMs;
    const busyPollMs = options?.busyPollMs ?? 0;
    checkNumberOption(busyPollMs, "busyPollMs");
    if (!(busyPollMs >= 0) || busyPollMs > 1000) {
      throw new RangeError(
        `Cannot create a loop as busyPollMs must be in [0, 1000]: current value is ${
          describe(busyPollMs)
        }`,
      );
    }
    this.busyPollMs = busyPollMs;
    const timerPrecision = options?.timerPrecision ?? "high";
    if (timerPrecision !== "high" && timerPrecision !== "low") {
      throw new RangeError(
        `Cannot create a loop as timerPrecision must be "high" or "low": current value is ${
          describe(timerPrecision)
        }`,
      );
    }
    this.highPrecision = timerPrecision === "high";
    const pollerOption = options?.poller ?? undefined;
    if (pollerOption !== undefined && typeof pollerOption !== "function") {
      checkPoller(pollerOption, "create a loop");
    }
    this.pollerOption = pollerOption;
    if (options?.label !== undefined) checkLabel(options.label, "create a loop");
    this.label = options?.label ?? (isDefault ? "default" : "loop");
    const metricsOption = options?.metrics;
    if (
      metricsOption !== undefined && typeof metricsOption !== "boolean" &&
      (metricsOption === null || typeof metricsOption !== "object")
    ) {
      throw new TypeError(
        `Cannot create a loop as metrics must be a boolean or an options object: current value is ${
          describe(metricsOption)
        }`,
      );
    }
    if (
      (metricsOption !== undefined && metricsOption !== false) ||
      options?.slowCallbackMs !== undefined || options?.onSlowCallback !== undefined
    ) {
      this.metrics = new MetricsRecorder(clock, {
        ...(typeof metricsOption === "object" ? metricsOption : {}),
        ...(options?.slowCallbackMs !== undefined
          ? { slowCallbackMs: options.slowCallbackMs }
          : {}),
        ...(options?.onSlowCallback !== undefined
          ? { onSlowCallback: options.onSlowCallback }
          : {}),
        onError: (error) => this.handleError(error, KIND_TASK, "onSlowCallback"),
      });
    }
    // Last, so that a loop refused for another option claims nothing.
    if (pollerOption !== undefined && typeof pollerOption !== "function") {
      claimPoller(pollerOption, this, "create a loop");
    }
  }

  // ---------------------------------------------------------------- scheduling

  refuse(what: string): never {
    throw new LoopClosedError(
      `Cannot ${what} as the loop "${this.label}" is ${
        this.accept === CLOSED ? "closed" : "closing"
      }`,
    );
  }

  submit(task: AnyCallback): void {
    if (typeof task !== "function") assertCallback(task, "submit a task");
    if (this.accept !== ACCEPTING) this.refuse("submit a task");
    this.tasks.push(task);
    if (!this.inBatch) this.noteWorkFromOutside();
  }

  queueMicrotask(callback: AnyCallback): void {
    if (typeof callback !== "function") assertCallback(callback, "queue a microtask");
    if (this.accept === CLOSED) this.refuse("queue a microtask");
    this.microtasks.push(callback);
    this.microtaskSeq.value++;
    if (!this.inBatch) this.noteWorkFromOutside();
  }

  /** Work arrived while no batch is running: wake a parked wait, or start the dormant default loop. */
  noteWorkFromOutside(): void {
    if (this.parked) this.wakeParked();
    else this.startIfDormant();
  }

  /** Ref'd work arrived from outside a batch: a dormant default loop must run (and keep Deno alive). */
  startIfDormant(): void {
    if (this.isDefault && this.state === "idle" && !this.inBatch) this.scheduleAutoStart();
  }

  /**
   * The time base for new timers, cached like `uv_now`: inside a batch per phase, outside one per
   * synchronous turn of JS on the system clock (a clock read costs more than scheduling a timer).
   * Injected clocks are read every time: tests advance them between calls in one turn.
   */
  baseNow(): number {
    if (this.inBatch) {
      if (!this.nowStale) return this.nowMs;
      this.nowStale = false;
      return this.nowMs = this.clock.now();
    }
    if (this.turnNowValid) return this.nowMs;
    return this.readNow();
  }

  /** A fresh reading, cached for the rest of this turn when outside a batch (public `now()`). */
  readNow(): number {
    if (this.inBatch) return this.baseNow();
    if (this.cachesTurnNow && !this.turnNowValid) {
      this.turnNowValid = true;
      nativeQueueMicrotask(this.endTurn);
    }
    return this.nowMs = this.clock.now();
  }

  setTimer(
    callback: AnyCallback,
    delay: unknown,
    args: readonly unknown[],
    repeat: boolean,
  ): TimerNode {
    if (typeof callback !== "function") {
      assertCallback(callback, repeat ? "set an interval" : "set a timeout");
    }
    if (this.accept !== ACCEPTING) this.refuse(repeat ? "set an interval" : "set a timeout");
    let delayMs = normalizeDelay(delay);
    const current = this.currentNesting;
    const nesting = (current >= 0 ? current : this.firingTimer!.nesting) + 1;
    if (this.clampNested && nesting > 5 && delayMs < 4) delayMs = 4;
    const timer = new TimerNode(this, this.nextId++, callback, args, delayMs, repeat);
    timer.nesting = nesting;
    const deadlineMs = deadlineAfter(this.baseNow(), delayMs);
    this.timers.insert(timer, storeKey(delayMs, repeat), deadlineMs, this.nextSequence++);
    this.refedTimers++;
    if (!this.inBatch) {
      if (this.parked) {
        if (deadlineMs < this.parkedDeadlineMs) this.wakeParked();
      } else this.startIfDormant();
    }
    return timer;
  }

  clearTimer(timer: TimerNode): void {
    if (timer.status !== TIMER_PENDING) {
      timer.status = TIMER_CLEARED;
      return;
    }
    timer.status = TIMER_CLEARED;
    // Pending: in the store (the status getter checked), or set aside by the running pass.
    if (timer.run !== null) this.timers.removeHeld(timer);
    if (timer.refed) this.refedTimers--;
    if (timer.indexed) this.timersById!.delete(timer.timerId);
    if (this.parked) this.wakeParked(); // liveness may have changed
  }

  /** `clearTimeout`/`clearInterval`/`clearImmediate` with a handle, an id or anything else. */
  clearAny(handle: unknown): void {
    if (handle instanceof TimerNode) {
      if (handle.core === this) this.clearTimer(handle);
      return;
    }
    if (handle instanceof ImmediateNode) {
      if (handle.core === this) this.clearImmediate(handle);
      return;
    }
    if (typeof handle === "number" || typeof handle === "string") this.clearId(handle);
    // Anything else, or an unknown or stale id: a no-op, as in browsers and Node.
  }

  /** Clears this loop's pending timer or immediate with the id `id`; returns whether there was one. */
  clearId(id: number | string): boolean {
    const found = this.timersById?.get(Number(id) - ID_BASE);
    if (found === undefined) return false;
    if (found instanceof TimerNode) this.clearTimer(found);
    else this.clearImmediate(found);
    return true;
  }

  /**
   * For install()'s clear functions: clears a handle (on its own loop) or the id of one of this
   * loop's pending timers, and returns true; returns false for anything else (the timers install()
   * replaced may know it: Deno's, an earlier installation's). `undefined` and `null` count as
   * handled. A stale id of this loop's goes on too: Deno's functions clear nothing with it (see
   * ID_BASE); an earlier installation's loop clears its own pending timer of that id, if any.
   */
  clearOwn(handle: unknown): boolean {
    if (handle instanceof TimerNode || handle instanceof ImmediateNode) {
      handle.close();
      return true;
    }
    if (handle === undefined || handle === null) return true;
    if (typeof handle !== "number" && typeof handle !== "string") return false;
    return this.clearId(handle);
  }

  indexTimer(timer: TimerNode | ImmediateNode): void {
    if (timer.indexed) return;
    if (timer instanceof TimerNode) {
      if (timer.status !== TIMER_PENDING) return;
      // Its stored payload no longer vouches for it: the pass must read its flags (to drop the id).
      this.timers.unshare(timer);
    } else if (!timer.active) return;
    timer.indexed = true;
    (this.timersById ??= new Map()).set(timer.timerId, timer);
  }

  setTimerRef(timer: TimerNode, refed: boolean): void {
    if (timer.refed === refed) return;
    timer.refed = refed;
    if (timer.status === TIMER_PENDING) {
      this.refedTimers += refed ? 1 : -1;
      if (!refed) {
        // Its stored payload no longer vouches for it: the pass must read its flags (not to count it).
        this.timers.unshare(timer);
        if (this.parked) this.wakeParked();
      } else this.startIfDormant();
    }
  }

  refreshTimer(timer: TimerNode): void {
    if (timer.status === TIMER_CLEARED) return;
    if (this.accept !== ACCEPTING) this.refuse("refresh a timer");
    if (timer.status === TIMER_PENDING) this.timers.remove(timer);
    else {
      timer.status = TIMER_PENDING;
      if (timer.refed) this.refedTimers++;
      // A fired timer's id left the index; refreshed, `clearTimeout(id)` must find it again.
      if (timer.indexed) this.timersById!.set(timer.timerId, timer);
    }
    const deadlineMs = deadlineAfter(this.baseNow(), timer.delayMs);
    this.timers.insert(
      timer,
      storeKey(timer.delayMs, timer.repeat),
      deadlineMs,
      this.nextSequence++,
    );
    if (this.parked) {
      if (!this.inBatch && deadlineMs < this.parkedDeadlineMs) this.wakeParked();
    } else this.startIfDormant(); // also re-arms the dormant wake for an unref'd one
  }

  /** HTML's nesting clamp for one timer (install()'s web mode), whatever the loop's option. */
  clampTimer(timer: TimerNode): void {
    timer.clamp = true;
    if (timer.nesting <= 5 || timer.delayMs >= 4 || timer.status !== TIMER_PENDING) return;
    const store = this.timers;
    // 4 ms from when it was set (this same callback: the base time has not moved). Not
    // `deadline + 4 - delayMs`: two roundings can land an ulp short of 4 ms, an early fire.
    const deadlineMs = deadlineAfter(this.baseNow(), 4);
    const sequence = store.sequenceOf(timer);
    store.remove(timer);
    store.insert(timer, storeKey(4, timer.repeat), deadlineMs, sequence);
  }

  setImmediate(callback: AnyCallback, args: readonly unknown[]): ImmediateNode {
    if (typeof callback !== "function") assertCallback(callback, "set an immediate");
    if (this.accept !== ACCEPTING) this.refuse("set an immediate");
    const immediate = new ImmediateNode(this, this.nextId++, callback, args);
    this.immediates.push(immediate);
    this.refedImmediates++;
    this.liveImmediates++;
    if (!this.inBatch) this.noteWorkFromOutside();
    return immediate;
  }

  clearImmediate(immediate: ImmediateNode): void {
    if (!immediate.active) return;
    immediate.active = false;
    this.liveImmediates--;
    if (immediate.refed) this.refedImmediates--;
    if (immediate.indexed) this.timersById!.delete(immediate.timerId);
  }

  setImmediateRef(immediate: ImmediateNode, refed: boolean): void {
    if (immediate.refed === refed) return;
    immediate.refed = refed;
    if (immediate.active) this.refedImmediates += refed ? 1 : -1;
  }

  // ---------------------------------------------------------------- watches

  /** The poller for watches; created on first use. Throws `PollerUnavailableError` when none can be. */
  requirePoller(): Poller {
    if (this.poller !== null) return this.poller;
    const option = this.pollerOption;
    let poller: Poller;
    if (option === undefined) {
      poller = createPoller();
      this.ownsPoller = true;
    } else if (typeof option === "function") {
      poller = option();
      checkPoller(poller, "use the loop's poller factory");
      claimPoller(poller, this, "use the loop's poller factory");
      this.ownsPoller = true;
    } else poller = option;
    this.poller = poller;
    this.syncBatch = new EventBatch(1024);
    this.asyncBatch = new EventBatch(1024);
    return poller;
  }

  /** The poller for idle waits, if one can be had without asking for anything (FFI granted). */
  idlePoller(): Poller | null {
    if (this.poller !== null || this.pollerProbed) return this.poller;
    this.pollerProbed = true;
    if (this.pollerOption === undefined) {
      let granted = false;
      try {
        granted = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
      } catch {
        granted = false;
      }
      if (!granted) return null;
    }
    try {
      return this.requirePoller();
    } catch {
      return null; // no backend here: idle waits fall back to Deno's timers
    }
  }

  watch(
    fd: number,
    interest: WatchInterest,
    callback: (event: WatchEvent) => void,
    options: WatchOptions | undefined,
  ): Watch {
    validateFd(fd);
    fd += 0; // -0 is fd 0 (and FFI's i32 refuses -0)
    const bits = interestBits(interest, `watch fd ${fd}`);
    assertCallback(callback, `watch fd ${fd}`);
    if (options !== undefined && (options === null || typeof options !== "object")) {
      throw new TypeError(
        `Cannot watch fd ${fd} as the options must be an object: current value is ${
          describe(options)
        }`,
      );
    }
    if (options?.onClose !== undefined && typeof options.onClose !== "function") {
      throw new TypeError(
        `Cannot watch fd ${fd} as onClose must be a function: current value is ${
          describe(options.onClose)
        }`,
      );
    }
    if (options?.label !== undefined) checkLabel(options.label, `watch fd ${fd}`);
    if (this.accept !== ACCEPTING) this.refuse(`watch fd ${fd}`);
    if (this.watchesByFd.has(fd)) {
      throw new Deno.errors.AlreadyExists(
        `Cannot watch fd ${fd} as it is already watched by this loop: use watch.modify() to change its interest`,
      );
    }
    const poller = this.requirePoller();
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.watchSlots.length;
      if (slot > SLOT_MASK) {
        throw new RangeError(
          `Cannot watch fd ${fd} as the loop already watches ${slot} fds, the most it can`,
        );
      }
      this.watchSlots.push(undefined);
      this.watchGenerations.push(0);
    }
    const generation = (this.watchGenerations[slot] + 1) % GENERATION_LIMIT;
    this.watchGenerations[slot] = generation;
    const token = ((generation << SLOT_BITS) | slot) >>> 0;
    try {
      poller.register(fd, token, bits);
    } catch (error) {
      this.freeSlots.push(slot);
      throw error;
    }
    const watch = new WatchNode(this, fd, token, bits, callback, options);
    this.watchSlots[slot] = watch;
    this.watchesByFd.set(fd, watch);
    this.watchCount++;
    this.refedWatches++;
    this.startIfDormant();
    return watch;
  }

  modifyWatch(watch: WatchNode, interest: WatchInterest): void {
    if (watch.closed) {
      throw new Deno.errors.BadResource(
        `Cannot modify the watch of fd ${watch.fd} as it is closed`,
      );
    }
    const bits = interestBits(interest, `modify the watch of fd ${watch.fd}`);
    if (bits === watch.interest) return;
    this.poller!.modify(watch.fd, watch.token, bits);
    watch.interest = bits;
  }

  closeWatch(watch: WatchNode): void {
    if (watch.closed) return;
    watch.closed = true;
    const slot = watch.token & SLOT_MASK;
    this.watchSlots[slot] = undefined;
    this.freeSlots.push(slot);
    this.watchesByFd.delete(watch.fd);
    this.watchCount--;
    if (watch.refed) this.refedWatches--;
    if (watch.onClose !== undefined) this.closeCallbacks.push(watch);
    let failure: unknown;
    try {
      this.poller!.unregister(watch.fd);
    } catch (error) {
      // The fd was closed before its watch (the kernel already dropped it): nothing is left to undo.
      if (!(error instanceof PollerError && (error.code === "EBADF" || error.code === "ENOENT"))) {
        failure = error;
      }
    }
    if (this.parked) this.wakeParked();
    if (failure !== undefined) throw failure;
  }

  setWatchRef(watch: WatchNode, refed: boolean): void {
    if (watch.refed === refed) return;
    watch.refed = refed;
    if (!watch.closed) {
      this.refedWatches += refed ? 1 : -1;
      if (!refed && this.parked) this.wakeParked();
      else if (refed) this.startIfDormant();
    }
  }

  // ---------------------------------------------------------------- errors

  handleError(error: unknown, kind: number, label: string | AnyCallback): void {
    const onError = this.onError;
    if (onError === undefined) {
      this.uncaught(error);
      return;
    }
    try {
      onError(error, {
        kind: KIND_NAMES[kind],
        label: typeof label === "string" ? label : labelOf(label),
      });
    } catch (handlerError) {
      this.uncaught(handlerError);
    }
  }

  /** An error no handler took: an explicit loop fails fast; the default loop reports it as Deno. */
  uncaught(error: unknown): void {
    if (!this.isDefault) {
      this.fail(error);
      return;
    }
    // As a throw in a native timer callback: an `error` event on globalThis, and unless a listener
    // prevents it, Deno ends the process right here ("Uncaught Error"), before anything else runs.
    // If one does, the loop goes on, as Deno's timers do.
    reportError(error);
  }

  fail(error: unknown): void {
    if (this.failure === null) this.failure = { error, more: null };
    else (this.failure.more ??= []).push(error);
    this.stopRequested = true;
    if (this.parked) this.wakeParked();
  }

  reportUnhandled(reason: unknown, promise: PromiseLike<unknown>): void {
    const handler = this.onUnhandledRejection;
    if (handler !== undefined) {
      try {
        handler(reason, promise);
      } catch (error) {
        this.handleError(error, KIND_MICROTASK, "onUnhandledRejection");
      }
      return;
    }
    if (this.isDefault && dispatchRejectionEvent("unhandledrejection", reason, promise)) return;
    if (this.state === "closed") {
      // run() and close() can no longer reject: fail the way Deno does for a native promise.
      void Promise.reject(reason);
      return;
    }
    this.fail(reason);
  }

  /** See kRequestHostTurn: only meaningful inside a batch (runOnce() returns to its caller anyway). */
  requestHostTurn(): void {
    if (this.inBatch) this.hostTurnRequested = true;
  }

  reportHandled(promise: PromiseLike<unknown>, reason: unknown): void {
    const handler = this.onRejectionHandled;
    if (handler !== undefined) {
      try {
        handler(promise);
      } catch (error) {
        this.handleError(error, KIND_MICROTASK, "onRejectionHandled");
      }
      return;
    }
    if (this.isDefault) dispatchRejectionEvent("rejectionhandled", reason, promise);
  }

  // ---------------------------------------------------------------- tracked helpers

  track(resource: TrackedResource): void {
    this.tracked.add(resource);
  }

  untrack(resource: TrackedResource): void {
    if (this.tracked.delete(resource) && this.parked && resource.refed) this.wakeParked();
  }

  addAfterCheckpoint(callback: () => void): void {
    this.afterCheckpoint.push(callback);
    if (!this.inBatch) this.noteWorkFromOutside();
  }

  // ---------------------------------------------------------------- liveness

  hasRefedTracked(): boolean {
    if (this.tracked.size === 0) return false;
    for (const resource of this.tracked) if (resource.refed) return true;
    return false;
  }

  alive(): boolean {
    return this.tasks.size !== 0 || this.microtasks.size !== 0 || this.refedTimers !== 0 ||
      this.refedImmediates !== 0 || this.refedWatches !== 0 || this.closeCallbacks.size !== 0 ||
      this.afterCheckpoint.length !== 0 || this.hasRefedTracked();
  }

  /** Whether an iteration would run something now (reads the clock for timers). */
  hasRunnableWork(): boolean {
    if (
      this.tasks.size !== 0 || this.microtasks.size !== 0 || this.liveImmediates !== 0 ||
      this.closeCallbacks.size !== 0 || this.afterCheckpoint.length !== 0 ||
      this.pendingAsyncEvents !== 0 || (this.polledEvents && this.watchCount !== 0)
    ) return true;
    const firstMs = this.timers.firstDeadlineMs();
    return firstMs !== Infinity && firstMs <= this.clock.now();
  }

  aliveReasons(): AliveReason[] {
    const reasons: AliveReason[] = [];
    if (this.tasks.size) reasons.push({ kind: "task", label: `${this.tasks.size} queued` });
    if (this.microtasks.size) {
      reasons.push({ kind: "microtask", label: `${this.microtasks.size} queued` });
    }
    const nowMs = this.clock.now();
    for (const { entry: timer, deadlineMs } of this.timers.sorted()) {
      if (!timer.refed) continue;
      reasons.push({
        kind: timer.repeat ? "interval" : "timer",
        label: `${labelOf(timer.callback)} (id ${ID_BASE + timer.timerId}, due in ${
          Math.max(0, deadlineMs - nowMs).toFixed(3)
        } ms)`,
      });
    }
    this.immediates.forEach((immediate) => {
      if (immediate.active && immediate.refed) {
        reasons.push({
          kind: "immediate",
          label: `${labelOf(immediate.callback)} (id ${ID_BASE + immediate.timerId})`,
        });
      }
    });
    for (const watch of this.watchesByFd.values()) {
      if (watch.refed) reasons.push({ kind: "watch", label: watch.label });
    }
    this.closeCallbacks.forEach((watch) => {
      reasons.push({ kind: "close", label: `close callback of ${watch.label}` });
    });
    if (this.afterCheckpoint.length) {
      reasons.push({ kind: "microtask", label: "pending rejection checks" });
    }
    for (const resource of this.tracked) {
      if (resource.refed) reasons.push({ kind: resource.kind, label: resource.label });
    }
    return reasons;
  }

  // ---------------------------------------------------------------- one iteration

  checkpoint(): void {
    const queue = this.microtasks;
    for (;;) {
      const metrics = this.metrics;
      let ran = 0;
      if (metrics === null) {
        while (queue.size !== 0) {
          const microtask = queue.shift();
          ran++;
          try {
            microtask();
          } catch (error) {
            this.handleError(error, KIND_MICROTASK, microtask);
          }
        }
      } else {
        metrics.peak(QUEUE_MICROTASKS, queue.size);
        let timedRan = 0;
        let untimed = metrics.skip(queue.size);
        while (queue.size !== 0) {
          const microtask = queue.shift();
          ran++;
          if (untimed !== 0) {
            untimed--;
            try {
              microtask();
            } catch (error) {
              this.handleError(error, KIND_MICROTASK, microtask);
            }
          } else {
            timedRan++;
            const startMs = metrics.begin();
            try {
              microtask();
            } catch (error) {
              this.handleError(error, KIND_MICROTASK, microtask);
            }
            metrics.end(KIND_MICROTASK, startMs, microtask, undefined);
            untimed = metrics.skip(queue.size);
          }
        }
        metrics.count(KIND_MICROTASK, ran - timedRan);
      }
      this.ranMicrotasks += ran;
      if (this.afterCheckpoint.length === 0) return;
      const hooks = this.afterCheckpoint;
      this.afterCheckpoint = [];
      for (const hook of hooks) {
        try {
          hook();
        } catch (error) {
          this.handleError(error, KIND_MICROTASK, hook);
        }
      }
      if (queue.size === 0 && this.afterCheckpoint.length === 0) return;
    }
  }

  /** Runs one iteration. Callers hold the batch (inBatch, current loop). */
  iterate(): void {
    if (this.microtasks.size !== 0 || this.afterCheckpoint.length !== 0) this.checkpoint();
    const metrics = this.metrics;
    if (metrics !== null) {
      // The recorder samples iterations (about one per ms): the others take the plain path below.
      const startMs = metrics.beginIteration();
      if (startMs >= 0) {
        this.iterateMeasured(metrics, startMs);
        return;
      }
    }
    // The cached time goes stale at the start of every non-empty phase and is read again on first
    // use, so a timer scheduled late in an iteration is measured from at most one phase ago (libuv
    // refreshes once per iteration), and phases that never ask for the time never pay for it.
    this.nowStale = true;
    if (this.timers.size !== 0) this.runTimers();
    if (this.stopRequested) return;
    if (this.tasks.size !== 0) {
      this.nowStale = true;
      this.runTasks();
      if (this.stopRequested) return;
    }
    if (this.watchCount !== 0 || this.pendingAsyncEvents !== 0) {
      this.nowStale = true;
      this.runPoll();
      if (this.stopRequested) return;
    }
    if (this.immediates.size !== 0) {
      this.nowStale = true;
      this.runImmediates();
      if (this.stopRequested) return;
    }
    if (this.closeCallbacks.size !== 0) this.runCloseCallbacks();
  }

  /** The same iteration, with its phases timed when the recorder samples this iteration. */
  iterateMeasured(metrics: MetricsRecorder, startMs: number): void {
    const clock = this.clock;
    let phaseStartMs = this.nowMs = startMs;
    this.nowStale = false;
    metrics.depths(
      this.tasks.size,
      this.microtasks.size,
      this.timers.size,
      this.liveImmediates,
      this.watchCount,
    );
    for (let phase = 0; phase < 5; phase++) {
      if (phase !== 0) this.nowStale = true;
      if (phase === 0) {
        if (this.timers.size !== 0) this.runTimers();
      } else if (phase === 1) {
        if (this.tasks.size !== 0) this.runTasks();
      } else if (phase === 2) {
        if (this.watchCount !== 0 || this.pendingAsyncEvents !== 0) this.runPoll();
      } else if (phase === 3) {
        if (this.immediates.size !== 0) this.runImmediates();
      } else if (this.closeCallbacks.size !== 0) this.runCloseCallbacks();
      const endMs = clock.now();
      metrics.phase(phase, endMs - phaseStartMs);
      phaseStartMs = endMs;
      if (this.stopRequested) return;
    }
  }

  runTimers(): void {
    const store = this.timers;
    // Timers are checked against a fresh reading, never a cached one.
    const nowMs = this.nowMs = this.clock.now();
    this.nowStale = false;
    const sequenceLimit = this.nextSequence;
    const metrics = this.metrics;
    let deferred: TimerNode[] | null = null;
    let deferredKeys: number[] | null = null;
    let untimed = metrics === null ? 0 : metrics.skip(UNBOUNDED_RUN);
    let untimedRan = 0;
    for (;;) {
      const timer = store.shiftDue(nowMs);
      if (timer === null) break;
      const deadlineMs = store.shiftedDeadlineMs;
      if (store.shiftedSequence >= sequenceLimit) {
        // Armed during this pass, yet due: a bursting interval catching up sorts before timers
        // that were due when the pass began. Set it aside so those still run in this pass.
        timer.run = null; // pending, out of the store (see TimerNode.status)
        (deferred ??= []).push(timer);
        (deferredKeys ??= []).push(deadlineMs, store.shiftedSequence);
        continue;
      }
      // The callback, from the store if it kept one with the timer (see TimerNode.payload).
      const payload = store.shiftedPayload as AnyCallback | undefined;
      let callback: AnyCallback;
      let args: readonly unknown[];
      if (payload !== undefined) {
        // The store vouches for it: a ref'd, unindexed timeout without arguments, with this
        // callback. Nothing about it needs reading or writing (its status now reads "fired").
        callback = payload;
        args = EMPTY_ARGS;
        this.refedTimers--;
        this.currentNesting = -1;
        this.firingTimer = timer;
      } else {
        // An interval, arguments, flags to act on, callbacks that differ: one touch of the timer.
        const flags = timer.flags;
        callback = timer.callback;
        args = timer.args;
        if ((flags & FLAG_REPEAT) !== 0) this.rearmInterval(timer, nowMs, deadlineMs);
        else {
          timer.flags = (flags & ~STATUS_MASK) | TIMER_FIRED;
          if ((flags & FLAG_UNREF) === 0) this.refedTimers--;
          // `indexed` stays set so that refresh() puts the id back.
          if ((flags & FLAG_INDEXED) !== 0) this.timersById!.delete(timer.timerId);
        }
        this.currentNesting = flags >>> NESTING_SHIFT;
      }
      let startMs = -1;
      if (metrics !== null) {
        // Lateness and duration are recorded for a sample of timers (as durations are for tasks).
        if (untimed !== 0) {
          untimed--;
          untimedRan++;
        } else {
          startMs = metrics.begin();
          if (startMs < 0) untimedRan++;
          // Lateness as documented: when this callback starts (after those before it in the
          // pass), not when the pass began.
          else metrics.timerFired(startMs - deadlineMs);
        }
      }
      try {
        if (args === EMPTY_ARGS) callback();
        else callback(...args);
      } catch (error) {
        this.handleError(error, KIND_TIMER, callback);
      }
      if (startMs >= 0) {
        metrics!.end(KIND_TIMER, startMs, callback, undefined);
        untimed = metrics!.skip(UNBOUNDED_RUN);
      }
      this.currentNesting = 0;
      this.firingTimer = null;
      if (this.microtasks.size !== 0 || this.afterCheckpoint.length !== 0) {
        if (untimed !== 0) {
          // The checkpoint's microtasks run before the timers the sample skipped: give them back.
          metrics!.unskip(untimed);
          this.checkpoint();
          untimed = metrics!.skip(UNBOUNDED_RUN);
        } else this.checkpoint();
      }
      if (this.stopRequested) break;
    }
    if (metrics !== null) {
      if (untimed !== 0) metrics.unskip(untimed); // reserved for timers that were not due
      metrics.count(KIND_TIMER, untimedRan);
    }
    if (deferred !== null) {
      // Back in the store with their keys, unless cleared (or refreshed, which re-stored them)
      // meanwhile. In reverse: each sorts before what its run holds now, so goes in at the head.
      for (let i = deferred.length - 1; i >= 0; i--) {
        const timer = deferred[i];
        if (timer.status === TIMER_PENDING && timer.run === null) {
          store.insert(
            timer,
            storeKey(timer.delayMs, timer.repeat),
            deferredKeys![2 * i],
            deferredKeys![2 * i + 1],
          );
        }
      }
    }
  }

  /** Re-arms an interval that was due at `deadlineMs` and fires now. */
  rearmInterval(timer: TimerNode, nowMs: number, deadlineMs: number): void {
    const intervalMs = timer.delayMs;
    let nextMs = deadlineAfter(deadlineMs, intervalMs);
    if (nextMs <= nowMs) {
      const missed = this.missed;
      if (missed === "delay") nextMs = deadlineAfter(nowMs, intervalMs);
      else if (missed === "skip") {
        if (intervalMs > 0) {
          // The first tick of the grid after now; the division may round to one tick short.
          let ticks = Math.floor((nowMs - deadlineMs) / intervalMs) + 1;
          nextMs = deadlineAfter(deadlineMs, ticks * intervalMs);
          while (nextMs <= nowMs) nextMs = deadlineAfter(deadlineMs, ++ticks * intervalMs);
        } else nextMs = nowMs;
      }
      // "burst": keep the absolute schedule; one tick per pass until caught up.
    }
    timer.nesting++;
    if (
      (this.clampNested || timer.clamp) && timer.nesting > 5 && intervalMs < 4 &&
      nextMs - nowMs < 4
    ) {
      nextMs = deadlineAfter(nowMs, 4); // `nowMs + 4` can round an ulp short
    }
    this.timers.insert(timer, storeKey(intervalMs, true), nextMs, this.nextSequence++);
  }

  runTasks(): void {
    const queue = this.tasks;
    let remaining = queue.size;
    const metrics = this.metrics;
    // With metrics on, untimed tasks take the same path as with metrics off; one in a sample is timed.
    let untimed = metrics === null ? remaining : metrics.skip(remaining);
    let ran = 0;
    let timedRan = 0;
    let nextCheck = FIRST_BUDGET_CHECK;
    while (remaining-- !== 0) {
      const task = queue.shift();
      ran++;
      if (untimed !== 0) {
        untimed--;
        try {
          task();
        } catch (error) {
          this.handleError(error, KIND_TASK, task);
        }
      } else {
        timedRan++;
        const startMs = metrics!.begin();
        try {
          task();
        } catch (error) {
          this.handleError(error, KIND_TASK, task);
        }
        metrics!.end(KIND_TASK, startMs, task, undefined);
        untimed = metrics!.skip(remaining);
      }
      if (this.microtasks.size !== 0 || this.afterCheckpoint.length !== 0) {
        if (metrics !== null && untimed !== 0) {
          // The checkpoint's microtasks run before the tasks the sample skipped: give them back.
          metrics.unskip(untimed);
          this.checkpoint();
          untimed = metrics.skip(remaining);
        } else this.checkpoint();
      }
      if (this.stopRequested) break;
      if (ran === nextCheck) {
        nextCheck = nextBudgetCheck(ran);
        if (this.overBudget()) break;
      }
    }
    this.ranTasks += ran;
    if (metrics !== null) {
      if (untimed !== 0) metrics.unskip(untimed); // stopped early: those tasks did not run
      metrics.count(KIND_TASK, ran - timedRan);
    }
  }

  /** Whether the batch's time budget is spent; if so, the batch yields after this phase. */
  overBudget(): boolean {
    if (performance.now() <= this.batchDeadlineMs) return false;
    this.budgetSpent = true;
    return true;
  }

  runPoll(): void {
    let batch: EventBatch;
    let count: number;
    this.polledEvents = false;
    if (this.pendingAsyncEvents !== 0) {
      batch = this.asyncBatch!;
      count = this.pendingAsyncEvents;
      this.pendingAsyncEvents = 0;
    } else {
      batch = this.syncBatch!;
      try {
        count = this.poller!.wait(batch, 0);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
    if (count === 0) return;
    // I/O tends to come in bursts (a peer answering at once): a cheap zero-timeout poll next
    // iteration saves a round trip through Deno's blocking pool (~10-20 µs) to park and wake.
    this.polledEvents = true;
    if (this.busyPollMs > 0) this.lastFdEventMs = performance.now();
    const pass = ++this.pollPass;
    const slots = this.watchSlots;
    const metrics = this.metrics;
    for (let i = 0; i < count; i++) {
      const token = batch.tokens[i];
      const watch = slots[token & SLOT_MASK];
      // Stale tokens (a watch closed since the wait was parked) and repeats are skipped.
      if (watch === undefined || watch.token !== token || watch.lastPass === pass) continue;
      const bits = batch.readiness[i] & (watch.interest | HANGUP | ERROR);
      if (bits === 0) continue;
      watch.lastPass = pass;
      const event = watch.event;
      event.bits = bits;
      event.readable = (bits & READABLE) !== 0;
      event.writable = (bits & WRITABLE) !== 0;
      event.priority = (bits & PRIORITY) !== 0;
      event.hangup = (bits & HANGUP) !== 0;
      event.error = (bits & ERROR) !== 0;
      const startMs = metrics === null ? -1 : metrics.begin();
      try {
        watch.callback(event);
      } catch (error) {
        this.handleError(error, KIND_FD, watch.label);
      }
      if (metrics !== null) metrics.end(KIND_FD, startMs, watch.callback, watch.label);
      if (this.microtasks.size !== 0 || this.afterCheckpoint.length !== 0) this.checkpoint();
      if (this.stopRequested) break;
    }
  }

  runImmediates(): void {
    const queue = this.immediates;
    let remaining = queue.size;
    const metrics = this.metrics;
    let untimed = metrics === null ? remaining : metrics.skip(remaining);
    let ran = 0;
    let timedRan = 0;
    let nextCheck = FIRST_BUDGET_CHECK;
    while (remaining-- !== 0) {
      const immediate = queue.shift();
      if (!immediate.active) continue;
      immediate.active = false;
      this.liveImmediates--;
      if (immediate.refed) this.refedImmediates--;
      if (immediate.indexed) this.timersById!.delete(immediate.timerId);
      ran++;
      const callback = immediate.callback;
      const args = immediate.args;
      if (untimed !== 0) {
        untimed--;
        try {
          if (args === EMPTY_ARGS) callback();
          else callback(...args);
        } catch (error) {
          this.handleError(error, KIND_IMMEDIATE, callback);
        }
      } else {
        timedRan++;
        const startMs = metrics!.begin();
        try {
          if (args === EMPTY_ARGS) callback();
          else callback(...args);
        } catch (error) {
          this.handleError(error, KIND_IMMEDIATE, callback);
        }
        metrics!.end(KIND_IMMEDIATE, startMs, callback, undefined);
        untimed = metrics!.skip(remaining);
      }
      if (this.microtasks.size !== 0 || this.afterCheckpoint.length !== 0) {
        if (metrics !== null && untimed !== 0) {
          metrics.unskip(untimed); // as in runTasks
          this.checkpoint();
          untimed = metrics.skip(remaining);
        } else this.checkpoint();
      }
      if (this.stopRequested) break;
      if (ran === nextCheck) {
        nextCheck = nextBudgetCheck(ran);
        if (this.overBudget()) break;
      }
    }
    this.ranImmediates += ran;
    if (metrics !== null) {
      if (untimed !== 0) metrics.unskip(untimed);
      metrics.count(KIND_IMMEDIATE, ran - timedRan);
    }
  }

  runCloseCallbacks(): void {
    const queue = this.closeCallbacks;
    let remaining = queue.size;
    while (remaining-- !== 0) {
      const watch = queue.shift();
      try {
        watch.onClose!();
      } catch (error) {
        this.handleError(error, KIND_CLOSE, watch.label);
      }
      if (this.microtasks.size !== 0 || this.afterCheckpoint.length !== 0) this.checkpoint();
      if (this.stopRequested) break;
    }
  }

  // ---------------------------------------------------------------- batches

  /** Runs iterations synchronously until idle, stopped, or the yield budget is spent. */
  runBatch(): "idle" | "yield" | "done" {
    const previous = enterLoop(this.loop);
    this.inBatch = true;
    this.batchDeadlineMs = performance.now() + this.yieldIntervalMs;
    this.budgetSpent = false;
    let iterations = 0;
    try {
      // Virtual time moves only here, at the start of a batch: after a turn of Deno's own event
      // loop, so the continuations of native promises settled by the last callbacks (an `await`
      // on a promise a loop timer resolved) have run before the clock jumps past them.
      if (this.virtual && !this.hasRunnableWork() && this.alive() && !this.pollBeforeJump()) {
        this.advanceVirtualClock();
      }
      if (this.stopRequested) return "done";
      for (;;) {
        this.iterate();
        if (this.stopRequested || !this.alive()) return "done";
        if (this.budgetSpent) {
          // A phase stopped early for the budget: the rest of its work waits for the next batch.
          this.budgetSpent = false;
          return "yield";
        }
        if (this.hostTurnRequested) {
          // A timer helper (sleep, interval) settled a native promise: let Deno run its
          // continuation now, before more callbacks run.
          this.hostTurnRequested = false;
          return "yield";
        }
        if (this.hasRunnableWork()) {
          // Long phases check the budget themselves; short iterations look at the clock every 8th.
          // (Also checking after the 1st, 2nd and 4th cut slow callbacks' runs from 8 to 3, but
          // cost a timer-firing run() 40%: left for a design decision.)
          ++iterations;
          if ((iterations & 7) === 0 && performance.now() > this.batchDeadlineMs) return "yield";
          continue;
        }
        if (this.virtual && this.nextVirtualEventMs() !== Infinity) return "yield";
        if (this.busyPollMs > 0 && this.watchCount !== 0 && !this.virtual) {
          const outcome = this.busyPoll();
          if (outcome === "continue") continue;
          if (outcome !== "park") return outcome;
        }
        return "idle";
      }
    } finally {
      this.inBatch = false;
      leaveLoop(previous);
    }
  }

  /**
   * Shortly after fd activity, waits for the next fd event on Deno's thread (a blocking wait, no
   * hand-off to the blocking pool and back: two context switches saved per wake-up) for at most
   * `busyPollMs` since the last event, the batch budget and the next timer deadline.
   */
  busyPoll(): "continue" | "yield" | "done" | "park" {
    const startMs = performance.now();
    const windowEndMs = this.lastFdEventMs + this.busyPollMs;
    if (startMs >= windowEndMs) return "park";
    let timeoutMs = (windowEndMs < this.batchDeadlineMs ? windowEndMs : this.batchDeadlineMs) -
      startMs;
    const firstDeadlineMs = this.timers.firstDeadlineMs();
    if (firstDeadlineMs !== Infinity) {
      const untilTimerMs = firstDeadlineMs - this.clock.now();
      if (untilTimerMs < timeoutMs) timeoutMs = untilTimerMs;
    }
    if (timeoutMs <= 0) return startMs >= this.batchDeadlineMs ? "yield" : "continue";
    let count: number;
    try {
      count = this.poller!.wait(this.asyncBatch!, timeoutMs);
    } catch (error) {
      this.fail(error);
      return "done";
    }
    const endMs = performance.now();
    this.metrics?.waited(endMs - startMs);
    if (count !== 0) {
      this.pendingAsyncEvents = count;
      return "continue";
    }
    return endMs >= this.batchDeadlineMs ? "yield" : "continue";
  }

  /** On a virtual clock: the time of the next timer deadline or scripted fd event, or Infinity. */
  nextVirtualEventMs(): number {
    let nextMs = this.timers.firstDeadlineMs();
    const poller = this.poller;
    if (poller !== null && poller.nextEventTimeMs !== undefined && this.watchCount !== 0) {
      const eventMs = poller.nextEventTimeMs();
      if (eventMs < nextMs) nextMs = eventMs;
    }
    return nextMs;
  }

  /**
   * On a virtual clock, before time jumps: whether a watched fd is ready now (a poll with a zero
   * timeout; its events are kept for the poll phase), so time does not jump past it.
   */
  pollBeforeJump(): boolean {
    if (this.watchCount === 0 || this.poller === null) return false;
    let count: number;
    try {
      count = this.poller.wait(this.asyncBatch!, 0);
    } catch (error) {
      this.fail(error);
      return true;
    }
    this.pendingAsyncEvents = count;
    return count !== 0;
  }

  /** On a virtual clock: jumps to the next timer deadline or scripted fd event. */
  advanceVirtualClock(): boolean {
    const nextMs = this.nextVirtualEventMs();
    if (nextMs === Infinity) return false;
    const clock = this.clock as Clock & { set(ms: number): void };
    const nowMs = clock.now();
    if (nextMs > nowMs) {
      this.metrics?.waited(nextMs - nowMs);
      clock.set(nextMs);
    }
    return true;
  }

  runOnce(): boolean {
    this.assertCanRun("run one iteration");
    const previous = enterLoop(this.loop);
    this.inBatch = true;
    this.batchDeadlineMs = performance.now() + this.yieldIntervalMs;
    try {
      this.iterate();
    } finally {
      this.inBatch = false;
      leaveLoop(previous);
      this.metrics?.stopped(this.clock.now());
    }
    this.stopRequested = false;
    const failure = this.failure; // this iteration's, not the close's (see run())
    this.failure = null;
    if (this.closeRequested) this.startClose();
    if (failure !== null) throw failureError(failure);
    return this.alive();
  }

  assertCanRun(what: string): void {
    if (this.accept === CLOSED || this.state === "closing") {
      throw new LoopClosedError(`Cannot ${what} as the loop "${this.label}" is ${this.state}`);
    }
    if (this.state === "running" || this.inBatch) {
      throw new LoopStateError(
        `Cannot ${what} as the loop "${this.label}" is already running${
          this.inBatch ? " (called from one of its own callbacks)" : ""
        }`,
      );
    }
  }

  async run(): Promise<void> {
    this.assertCanRun("run the loop");
    this.state = "running";
    this.stopRequested = false;
    this.autoStartScheduled = false;
    if (this.dormantWakeId !== undefined) this.clearDormantWake();
    this.metrics?.started(this.clock.now());
    try {
      for (;;) {
        const outcome = this.runBatch();
        if (outcome === "done") {
          if (this.stopRequested || this.failure !== null) break;
          // Before deciding nothing is left, give Deno one turn: an async callback awaiting an
          // already-settled native promise may still schedule loop work in its continuation.
          // Microtasks are enough here: waiting for a timer turn cost every short run() ~5 ms.
          await this.yieldToHost(false);
          if (this.stopRequested || !this.alive()) break;
          continue;
        }
        if (outcome === "yield") await this.yieldToHost();
        else await this.idleWait();
        if (this.stopRequested) break;
      }
    } finally {
      this.state = "idle";
      this.stopRequested = false;
      this.releaseChannel();
      this.metrics?.stopped(this.clock.now());
    }
    // The run's own failure is run()'s to report, whether or not a close follows (which would
    // otherwise take it, or not, depending on whether it has a poller to wait for).
    const failure = this.failure;
    this.failure = null;
    if (this.closeRequested) this.startClose();
    else if (this.isDefault) {
      // A run that failed or was stopped left queued work behind, and nobody calls the default
      // loop's run(): start again (once the error has surfaced, if the process lives on), rather
      // than go dormant with ref'd work that nothing would run.
      if (this.alive()) this.armRestart();
      else this.armDormantWake();
    }
    if (failure !== null) throw failureError(failure);
  }

  stop(): void {
    this.stopRequested = this.state === "running" || this.inBatch;
    if (this.parked) this.wakeParked();
  }

  scheduleAutoStart(): void {
    if (this.autoStartScheduled || this.accept !== ACCEPTING) return;
    this.autoStartScheduled = true;
    nativeQueueMicrotask(() => {
      if (this.state !== "idle" || this.inBatch || this.accept !== ACCEPTING) {
        this.autoStartScheduled = false;
        return;
      }
      // An error the default loop's callbacks throw surfaces as Deno surfaces an uncaught one.
      void this.run();
    });
  }

  /** See `dormantWakeId`: arms it for the earliest pending timer, if any. */
  armDormantWake(): void {
    const firstMs = this.timers.firstDeadlineMs();
    if (firstMs === Infinity || this.accept !== ACCEPTING) return;
    const delayMs = Math.min(
      Math.max(0, Math.ceil(firstMs - this.clock.now())),
      MAX_NATIVE_DELAY_MS,
    );
    const id = nativeSetTimeout(() => {
      this.dormantWakeId = undefined;
      if (this.state === "idle") this.scheduleAutoStart();
    }, delayMs);
    Deno.unrefTimer(id);
    this.dormantWakeId = id;
  }

  /**
   * The default loop's run() failed (an unhandled rejection nobody prevented, a poller failure) or
   * was stopped (stop()) with ref'd work still queued: a ref'd Deno timer (that work keeps the
   * process alive) starts it again after Deno's next turn, once a failure has surfaced as an
   * uncaught rejection (which ends the process, unless a listener prevents that). Callback errors
   * never get here: see uncaught().
   */
  armRestart(): void {
    if (this.accept !== ACCEPTING) return;
    this.dormantWakeId = nativeSetTimeout(() => {
      this.dormantWakeId = undefined;
      if (this.state === "idle") this.scheduleAutoStart();
    }, 0);
  }

  clearDormantWake(): void {
    nativeClearTimeout(this.dormantWakeId);
    this.dormantWakeId = undefined;
  }

  // ---------------------------------------------------------------- waiting

  /**
   * Lets Deno run: through a MessageChannel message, or through the pending Deno timer when its
   * timers and I/O have had no turn for `yieldIntervalMs` (unless `timersTurn` is false: only
   * native continuations need to run).
   */
  yieldToHost(timersTurn = true): Promise<void> {
    let channel = this.channel;
    if (channel === null) {
      channel = this.channel = new MessageChannel();
      channel.port1.onmessage = () => {
        this.hostTurnMs = performance.now();
        const resolve = this.yieldResolve;
        this.yieldResolve = null;
        resolve?.();
      };
    }
    let viaTimer = false;
    if (this.hostTimerId === undefined) {
      this.hostTimerArmedMs = performance.now();
      this.hostTimerId = nativeSetTimeout(this.onHostTimer, 0);
    } else if (timersTurn && performance.now() - this.hostTimerArmedMs >= this.yieldIntervalMs) {
      // Messages alone have not given Deno's timers and I/O a turn for yieldIntervalMs: wait for
      // the timer (past due, so it fires in the next turn).
      viaTimer = true;
    }
    const port = channel.port2;
    return new Promise((resolve) => {
      this.yieldResolve = resolve;
      if (viaTimer) this.awaitingHostTimer = true;
      else port.postMessage(null);
    });
  }

  releaseChannel(): void {
    if (this.hostTimerId !== undefined) {
      nativeClearTimeout(this.hostTimerId);
      this.hostTimerId = undefined;
    }
    if (this.channel !== null) {
      this.channel.port1.close();
      this.channel.port2.close();
      this.channel = null;
    }
  }

  /** Parks until the next timer deadline, an fd event, or a wake. */
  async idleWait(): Promise<void> {
    const poller = this.watchCount !== 0 ? this.poller : this.idlePoller();
    let timeoutMs = -1;
    const firstMs = this.timers.firstDeadlineMs();
    if (!this.virtual && firstMs !== Infinity) {
      timeoutMs = firstMs - this.clock.now();
      if (timeoutMs <= 0) return;
      if (
        poller !== null && this.highPrecision && timeoutMs <= BLOCKING_WINDOW_MS + SPIN_TAIL_MS
      ) {
        // Close to the deadline: wait on Deno's thread (no hand-off) up to the spin tail, then
        // spin on the clock (allocation-free: yields through Deno allocate, and the odd GC pause
        // they trigger was the p99). Measured idle: 0.2 µs late at the median, 14 µs at p99.
        const startMs = performance.now();
        if (startMs - this.hostTurnMs >= this.yieldIntervalMs && timeoutMs > SPIN_TAIL_MS) {
          // Deno's turn is due: take it now, out of the time left to wait, not after the wait
          // where it would make the timer late. The next iteration waits for what is left.
          await this.yieldToHost();
          return;
        }
        let count = 0;
        if (timeoutMs > SPIN_TAIL_MS) {
          try {
            count = poller.wait(this.asyncBatch!, timeoutMs - SPIN_TAIL_MS);
          } catch (error) {
            this.fail(error);
          }
        }
        if (count !== 0) {
          if (this.watchCount !== 0) this.pendingAsyncEvents = count;
        } else {
          // Spin: at most SPIN_TAIL_MS plus the wait's overshoot. On the system clock, read
          // performance.now() inline: through the Clock interface each read boxes a double, and
          // the garbage (~20 KB a wait) triggered the scavenges that made the p99.
          if (this.clock === systemClock) {
            while (performance.now() < firstMs) {
              // spin
            }
          } else {
            const clock = this.clock;
            while (clock.now() < firstMs) {
              // spin
            }
          }
        }
        const endMs = performance.now();
        this.metrics?.waited(endMs - startMs);
        // Overdue (waits too short to yield before them, as in a 0.1 ms interval): yield now.
        if (endMs - this.hostTurnMs >= 2 * this.yieldIntervalMs) await this.yieldToHost();
        return;
      }
      if (poller !== null && timeoutMs <= SPIN_TAIL_MS) {
        // "low" precision: the last stretch in short yields to Deno, as jsWait does. Each
        // iteration in between still polls the fds, with a zero timeout.
        await this.yieldToHost();
        return;
      }
    }
    this.parkedDeadlineMs = timeoutMs < 0 ? Infinity : firstMs;
    this.parked = true;
    const metrics = this.metrics;
    const startMs = metrics === null ? 0 : this.clock.now();
    try {
      if (poller !== null) {
        let count = 0;
        try {
          count = await poller.waitAsync(
            this.asyncBatch!,
            timeoutMs < 0
              ? timeoutMs
              : timeoutMs - (this.highPrecision ? BLOCKING_WINDOW_MS : SPIN_TAIL_MS),
          );
        } catch (error) {
          this.fail(error);
        }
        if (this.watchCount !== 0) this.pendingAsyncEvents = count;
      } else {
        await this.jsWait(timeoutMs);
      }
    } finally {
      this.hostTurnMs = performance.now();
      this.parked = false;
      this.parkedDeadlineMs = Infinity;
      if (metrics !== null) metrics.waited(this.clock.now() - startMs);
    }
  }

  /** Without a poller: Deno's timer for the bulk of the wait, then short yields to the deadline. */
  jsWait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadlineMs = timeoutMs < 0 ? Infinity : this.clock.now() + timeoutMs;
      const finish = () => {
        if (this.jsTimer !== undefined) nativeClearTimeout(this.jsTimer);
        this.jsTimer = undefined;
        this.jsWake = null;
        resolve();
      };
      this.jsWake = finish;
      if (deadlineMs === Infinity) return;
      // Deno's timers fire about 1 ms late; sleep until ~1 ms before the deadline, then yield to Deno
      // in ~4 us steps until it is reached, so timers are neither early nor coarse. A sleep is at
      // most 2^31-1 ms (Deno fires longer ones after 1 ms): a longer wait sleeps again.
      const step = () => {
        this.jsTimer = undefined;
        if (this.jsWake !== finish) return;
        const leftMs = deadlineMs - this.clock.now();
        if (leftMs <= 0) finish();
        else if (leftMs >= 2) {
          this.jsTimer = nativeSetTimeout(
            step,
            Math.min(Math.floor(leftMs - 1), MAX_NATIVE_DELAY_MS),
          );
        } else void this.yieldToHost().then(step);
      };
      step();
    });
  }

  wakeParked(): void {
    if (this.jsWake !== null) this.jsWake();
    else if (this.poller !== null) this.poller.wake();
  }

  // ---------------------------------------------------------------- closing

  close(): Promise<CloseReport> {
    if (this.isDefault) {
      // The free functions of timers/ and promise/ use it for the rest of the process.
      return Promise.reject(
        new LoopStateError(
          `Cannot close the default loop as it lives as long as the process: current state is ${this.state}`,
        ),
      );
    }
    if (this.closeDeferred !== null) return this.closeDeferred.promise;
    let resolve!: (report: CloseReport) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<CloseReport>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.closeDeferred = { promise, resolve, reject };
    this.accept = CLOSING;
    if (this.state === "running" || this.inBatch) {
      this.closeRequested = true;
      this.stopRequested = true;
      if (this.parked) this.wakeParked();
    } else {
      this.startClose();
    }
    return promise;
  }

  startClose(): void {
    this.closeRequested = false;
    if (this.dormantWakeId !== undefined) this.clearDormantWake();
    this.state = "closing";
    const deferred = this.closeDeferred!;
    let report: CloseReport;
    try {
      report = this.drainAndRelease();
    } catch (error) {
      this.fail(error);
      report = this.emptyReport();
    }
    // Nothing runs any more: refuse work from here on rather than queue it where nothing would run
    // it (the poller may take a while to close; loop promises then run on native microtasks).
    this.state = "closed";
    this.accept = CLOSED;
    // Another loop may use the poller now (a given one: this loop does not close it).
    releasePoller(this.poller, this);
    releasePoller(this.pollerOption, this);
    const poller = this.ownsPoller ? this.poller : null;
    this.poller = null;
    const finish = () => {
      const failure = this.failure;
      this.failure = null;
      if (failure === null) deferred.resolve(report);
      else {
        const errors = failure.more === null ? [failure.error] : [failure.error, ...failure.more];
        deferred.reject(new LoopShutdownError(errors, report, this.label));
      }
    };
    if (poller === null) finish();
    else {poller.close().then(finish, (error) => {
        this.fail(error);
        finish();
      });}
  }

  emptyReport(): CloseReport {
    return {
      ran: { tasks: 0, microtasks: 0, immediates: 0 },
      disposed: { timers: 0, watches: 0, rejected: 0 },
      items: [],
    };
  }

  /** The graceful part of close: run what is queued, then cancel and reject what is pending. */
  drainAndRelease(): CloseReport {
    const previous = enterLoop(this.loop);
    this.inBatch = true;
    this.stopRequested = false;
    this.batchDeadlineMs = Infinity;
    const ranTasksBefore = this.ranTasks;
    const ranMicrotasksBefore = this.ranMicrotasks;
    const ranImmediatesBefore = this.ranImmediates;
    const items: ClosedItem[] = [];
    let timers = 0;
    let watches = 0;
    let rejected = 0;
    try {
      const drainQueued = () => {
        // New tasks, timers and immediates are refused while closing, so this terminates unless
        // microtasks keep queueing microtasks forever (as they would on any loop).
        do {
          this.stopRequested = false;
          this.checkpoint();
          if (this.tasks.size !== 0) this.runTasks();
          if (this.immediates.size !== 0) this.runImmediates();
          if (this.closeCallbacks.size !== 0) this.runCloseCallbacks();
        } while (
          this.tasks.size !== 0 || this.microtasks.size !== 0 || this.liveImmediates !== 0 ||
          this.closeCallbacks.size !== 0 || this.afterCheckpoint.length !== 0
        );
      };
      drainQueued();
      for (const { entry: timer } of this.timers.sorted()) {
        items.push({
          kind: timer.repeat ? "interval" : "timer",
          label: labelOf(timer.callback),
          disposition: "cancelled",
        });
        this.clearTimer(timer);
        timers++;
      }
      for (const watch of [...this.watchesByFd.values()]) {
        items.push({ kind: "watch", label: watch.label, disposition: "cancelled" });
        try {
          this.closeWatch(watch);
        } catch (error) {
          this.handleError(error, KIND_CLOSE, watch.label);
        }
        watches++;
      }
      // Rejections and close callbacks settle their followers before the loop is gone; helpers
      // those make meanwhile (an all() in an onClose callback or in a reaction to a rejection)
      // are tracked while closing, so they are disposed of in turn, rather than left pending.
      // A rejection check made meanwhile is not (it `finishesAfterClose`): it reports after the
      // close, as it always did.
      let later = false;
      for (;;) {
        let disposed = false;
        for (const resource of [...this.tracked]) {
          if (later && resource.finishesAfterClose === true) continue;
          disposed = true;
          this.tracked.delete(resource);
          let disposition: Disposition;
          try {
            disposition = resource.dispose(
              new LoopClosedError(
                `Cannot settle ${resource.label} as its loop "${this.label}" was closed`,
              ),
            );
          } catch (error) {
            this.handleError(error, KIND_CLOSE, resource.label);
            disposition = "cancelled";
          }
          if (disposition === "rejected") rejected++;
          items.push({ kind: resource.kind, label: resource.label, disposition });
        }
        if (later && !disposed) break;
        drainQueued();
        later = true;
      }
    } finally {
      this.inBatch = false;
      leaveLoop(previous);
    }
    return {
      ran: {
        tasks: this.ranTasks - ranTasksBefore,
        microtasks: this.ranMicrotasks - ranMicrotasksBefore,
        immediates: this.ranImmediates - ranImmediatesBefore,
      },
      disposed: { timers, watches, rejected },
      items,
    };
  }

  metricsSnapshot(): MetricsSnapshot {
    if (this.metrics === null) {
      throw new LoopStateError(
        `Cannot take a metrics snapshot as the loop "${this.label}" was created without { metrics: true }`,
      );
    }
    return this.metrics.snapshot(this.clock.now());
  }
}

/**
 * Dispatches a cancelable `unhandledrejection`/`rejectionhandled` event on `globalThis`. Returns
 * whether a listener cancelled it.
 */
function dispatchRejectionEvent(
  type: "unhandledrejection" | "rejectionhandled",
  reason: unknown,
  promise: PromiseLike<unknown>,
): boolean {
  if (typeof globalThis.dispatchEvent !== "function") return false;
  const event = new Event(type, { cancelable: type === "unhandledrejection" });
  Object.defineProperties(event, {
    promise: { value: promise, enumerable: true },
    reason: { value: reason, enumerable: true },
  });
  globalThis.dispatchEvent(event);
  return event.defaultPrevented;
}
