/**
 * Types shared by the loop's public API.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { Poller } from "../poller/types.ts";
import type { CallbackKind, MetricsOptions, SlowCallbackInfo } from "./metrics.ts";

/** The life-cycle state of a loop. */
export type LoopState = "idle" | "running" | "closing" | "closed";

/** Where an error thrown by a callback came from. */
export interface ErrorContext {
  /** The kind of callback that threw. */
  readonly kind: CallbackKind | "close";
  /** The callback's label (its function name, or the label given when it was scheduled). */
  readonly label: string;
}

/** What an interval does after the loop stalled past one or more of its ticks (tokio's `MissedTickBehavior`). */
export type MissedTickBehavior = "skip" | "delay" | "burst";

/** Options for `new Loop()`. */
export interface LoopOptions {
  /** Where the loop reads its time; default the monotonic system clock. Pass a `VirtualClock` in tests. */
  clock?: Clock;
  /**
   * Called with every error thrown by a callback. Without it the loop fails fast: it stops and `run()`
   * rejects with the error. An error thrown by `onError` itself fails the loop the same way.
   */
  onError?: (error: unknown, context: ErrorContext) => void;
  /**
   * Called once for every loop promise rejected with no handler by the end of a microtask checkpoint.
   * Without it, an explicit loop fails fast (`run()` rejects with the reason); the default loop
   * dispatches a cancelable `unhandledrejection` event on `globalThis` first.
   */
  onUnhandledRejection?: (reason: unknown, promise: PromiseLike<unknown>) => void;
  /** Called when a handler is attached to a rejection that was already reported as unhandled. */
  onRejectionHandled?: (promise: PromiseLike<unknown>) => void;
  /** What `setInterval` does after a stall: `"skip"` (default), `"delay"` or `"burst"`. */
  missed?: MissedTickBehavior;
  /**
   * HTML's timer nesting clamp: a timer nested more than 5 levels deep with a delay under 4 ms gets
   * 4 ms. Off by default (browsers have it, Node does not).
   */
  clampNestedTimers?: boolean;
  /**
   * The poller for `watch()` and idle waits, or a factory for it; default `createPoller()` on first
   * use. A poller serves one open loop at a time (`Deno.errors.Busy` otherwise); the loop closes a
   * poller its factory made, and leaves one given as is to its owner. A scripted poller with a
   * `clock` (a `FakePoller`) must read the loop's clock when either is virtual (a `TypeError`
   * otherwise): `new Loop({ clock, poller: new FakePoller({ clock }) })`.
   */
  poller?: Poller | (() => Poller);
  /**
   * Record metrics (`loop.metrics()`); off by default. `true` uses the defaults (adaptive sampling of
   * callback durations); an object sets `samplePeriod`, `topN` and the slow-callback options.
   */
  metrics?: boolean | MetricsOptions;
  /** Report callbacks that run at least this long (times every callback while set). */
  slowCallbackMs?: number;
  /**
   * Receives slow-callback reports (given alone, it implies `slowCallbackMs: 100`). Without it
   * nothing is logged: slow callbacks are only counted and ranked in `loop.metrics()`.
   */
  onSlowCallback?: (info: SlowCallbackInfo) => void;
  /**
   * How long a busy run may keep Deno's own event loop waiting before yielding to it, in ms
   * (default 4). Lower means more responsive native I/O, higher means better throughput.
   */
  yieldIntervalMs?: number;
  /**
   * After fd activity, keep waiting for the next fd event on Deno's own thread for up to this long
   * (ms) before parking on a thread of Deno's blocking pool (default 0: always park). Parking costs
   * two thread hand-offs per wake-up; for a busy server, `busyPollMs: 1` roughly halves the loop's
   * CPU per request (measured with redis-benchmark on the RESP example: 75-89k to 103-116k req/s).
   * The price: while fds are active, Deno's own timers and I/O run only between batches (every
   * `yieldIntervalMs`).
   */
  busyPollMs?: number;
  /**
   * How idle waits meet timer deadlines when the poller is available (FFI granted):
   * - `"high"` (default): park on Deno's blocking pool until 1 ms before the deadline, wait on
   *   Deno's own thread until 0.2 ms before it, then spin on the clock. Measured idle, a 1 ms timer
   *   fires a few µs late at the median and well under 0.2 ms at p99; the price is Deno's thread
   *   blocked for up to ~1.2 ms before each timer deadline (fd events still end the wait at once).
   *   Deno still gets a turn of its own event loop every `yieldIntervalMs`, taken out of a wait's
   *   early part so that it does not make the timer late.
   * - `"low"`: park all the way (the last 0.2 ms in ~4 µs yields to Deno); Deno's thread stays
   *   free, and a timer is as late as the blocking pool's wake-up (0.2 ms median, 0.8 ms p99
   *   measured idle).
   */
  timerPrecision?: "high" | "low";
  /** A name for messages and `aliveReasons()`. */
  label?: string;
}

/** One reason a loop is still alive, from `loop.aliveReasons()`. */
export interface AliveReason {
  /** `"task"`, `"microtask"`, `"timer"`, `"interval"`, `"immediate"`, `"watch"`, `"close"` or a helper's kind. */
  readonly kind: string;
  /** What it is: a callback name, an fd, a count. */
  readonly label: string;
}

/** How one pending item was disposed of when its loop closed. */
export interface ClosedItem {
  /** Its kind, as in {@linkcode AliveReason}. */
  readonly kind: string;
  /** Its label. */
  readonly label: string;
  /** `"ran"` (queued work that ran during close), `"cancelled"` or `"rejected"`. */
  readonly disposition: "ran" | "cancelled" | "rejected";
}

/** What `loop.close()` found pending and what it did with it. */
export interface CloseReport {
  /** Queued callbacks that ran during the graceful drain. */
  readonly ran: {
    readonly tasks: number;
    readonly microtasks: number;
    readonly immediates: number;
  };
  /** Timers and watches cancelled, helpers rejected with `LoopClosedError`. */
  readonly disposed: {
    readonly timers: number;
    readonly watches: number;
    readonly rejected: number;
  };
  /** Every timer, watch and helper that was pending, with its disposition. */
  readonly items: readonly ClosedItem[];
}

/** The interest of a watch. At least one must be `true`. */
export interface WatchInterest {
  /** Report when the fd can be read (or reached EOF). */
  readable?: boolean;
  /** Report when the fd can be written. */
  writable?: boolean;
  /** Report priority / out-of-band data. */
  priority?: boolean;
}

/**
 * What a watch callback receives. The object is reused for every callback of the same watch: read it
 * during the callback, copy what you keep.
 */
export interface WatchEvent {
  /** The fd can be read without blocking (or is at EOF). */
  readonly readable: boolean;
  /** The fd can be written without blocking. */
  readonly writable: boolean;
  /** Priority data is pending. */
  readonly priority: boolean;
  /** The peer hung up. */
  readonly hangup: boolean;
  /** An error is pending on the fd. */
  readonly error: boolean;
  /** The same as a bit set of the poller's READABLE, WRITABLE, PRIORITY, HANGUP and ERROR. */
  readonly bits: number;
}

/** Options for `loop.watch()`. */
export interface WatchOptions {
  /** A name for `aliveReasons()`, metrics and error contexts (default `"fd <n>"`). */
  label?: string;
  /**
   * Called in the close phase after the watch is closed and detached from the poller: the place to
   * close the fd itself.
   */
  onClose?: () => void;
}

/**
 * A handle on a watched fd, from `loop.watch()`.
 */
export interface Watch extends Disposable {
  /** The watched fd. */
  readonly fd: number;
  /** Whether `close()` has been called (or the loop closed). */
  readonly closed: boolean;
  /** Changes what the watch reports. */
  modify(interest: WatchInterest): void;
  /** Stops watching, at once: no callback follows, even one already polled. Idempotent. */
  close(): void;
  /** Makes the watch keep `run()` alive (the default). */
  ref(): this;
  /**
   * Lets `run()` finish even while this watch is open. On the default loop, an unref'd watch is
   * polled only while the loop runs for ref'd work: unlike an unref'd timer, it does not wake the
   * loop from dormancy (that would take a poll every few ms for as long as the process lives).
   */
  unref(): this;
  /** Whether the watch keeps `run()` alive. */
  hasRef(): boolean;
}

/**
 * A handle on a timeout, interval or immediate. Its `id` is a safe integer its loop never reuses,
 * counted up from 2^52 + 1 (clear of Deno's own ids, which count from 1) by each loop for itself;
 * the handle converts to it, so `clearTimeout(Number(handle))` works as in Node.
 */
export interface Timer extends Disposable {
  /** The id: a safe integer above 2^52, unique in its loop; `clearTimeout(id)` finds it. */
  readonly id: number;
  /** Makes the timer keep `run()` alive (the default). */
  ref(): this;
  /** Lets `run()` finish while this timer is pending. */
  unref(): this;
  /** Whether the timer keeps `run()` alive. */
  hasRef(): boolean;
  /**
   * Restarts the delay from the loop's current time (a fired timeout is armed again; a cleared one
   * stays cleared). For an immediate it does nothing.
   */
  refresh(): this;
  /** Cancels the timer; the same as `clearTimeout(handle)`. */
  close(): this;
  /** The id, for `+handle` and `clearTimeout(id)`. */
  [Symbol.toPrimitive](hint: string): number;
}
