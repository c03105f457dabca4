// Symbol-keyed hooks through which promise/ and timers/ integrate with a Loop. Not exported from any
// mod.ts: they are the package's own seams, not public API.
import type { LoopClosedError } from "./errors.ts";

/** How a tracked resource was disposed of when its loop closed. */
export type Disposition = "cancelled" | "rejected";

/** A pending helper (sleep, deadline, combinator) that the loop lists and disposes of on close. */
export interface TrackedResource {
  readonly kind: string;
  readonly label: string;
  /** Whether it keeps `run()` alive (and shows in `aliveReasons()`). Read live. */
  readonly refed: boolean;
  /**
   * Tracked while `close()` drains (by a callback or reaction it ran), it is not disposed of but
   * left to finish on its own after the close: the unhandled-rejection check, which then reports
   * as it always does. Absent for every other resource.
   */
  readonly finishesAfterClose?: boolean;
  dispose(error: LoopClosedError): Disposition;
}

/** `loop[kTrack](resource)`: start tracking a pending helper. */
export const kTrack: unique symbol = Symbol("eventloop.track");
/** `loop[kUntrack](resource)`: it settled; forget it. */
export const kUntrack: unique symbol = Symbol("eventloop.untrack");
/** `loop[kAfterCheckpoint](fn)`: run `fn` once the current microtask checkpoint has drained. */
export const kAfterCheckpoint: unique symbol = Symbol("eventloop.afterCheckpoint");
/** `loop[kReportUnhandled](reason, promise)`: a rejection nobody handled by the end of a checkpoint. */
export const kReportUnhandled: unique symbol = Symbol("eventloop.reportUnhandled");
/** `loop[kReportHandled](promise, reason)`: a handler was attached to a previously reported rejection. */
export const kReportHandled: unique symbol = Symbol("eventloop.reportHandled");
/**
 * `loop[kRequestHostTurn]()`: end the current batch after this iteration, so that Deno's pending
 * microtasks run before the loop's next callback (as `requestHostTurn` does for a timer).
 */
export const kRequestHostTurn: unique symbol = Symbol("eventloop.requestHostTurn");
/** `Loop[kCreateDefault]()`: builds the one default loop (see `defaultLoop()`). */
export const kCreateDefault: unique symbol = Symbol("eventloop.createDefault");
/** `loop[kMicrotaskSeq]`: a `{ value }` cell counting every loop microtask ever queued. */
export const kMicrotaskSeq: unique symbol = Symbol("eventloop.microtaskSeq");
/** `loop[kPromiseRuntime]`: the slot where promise/ keeps its per-loop state (undefined at first). */
export const kPromiseRuntime: unique symbol = Symbol("eventloop.promiseRuntime");
/**
 * `loop[kClearOwn](handle)`: `clearTimeout` for install(): clears a handle on its own loop, or the id
 * of a pending timer of this loop; returns false for any other id or object (to be forwarded).
 */
export const kClearOwn: unique symbol = Symbol("eventloop.clearOwn");
