/**
 * Errors raised by the loop.
 *
 * @module
 */
import type { CloseReport } from "./types.ts";

/**
 * The loop is closed (or closing) and refuses new work, or a promise could no longer settle because
 * its loop was closed.
 *
 * @example
 * ```ts
 * import { Loop, LoopClosedError } from "../mod.ts";
 * const loop = new Loop();
 * await loop.close();
 * try {
 *   loop.submit(() => {});
 * } catch (error) {
 *   console.log(error instanceof LoopClosedError); // true
 * }
 * ```
 */
export class LoopClosedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was refused.
   * @param options `cause`.
   */
  constructor(message = "The loop is closed", options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LoopClosedError";
  }
}

/**
 * A loop was used in a way its current state does not allow: `run()` while it is already running,
 * or from inside one of its own callbacks.
 *
 * @example
 * ```ts
 * import { Loop, LoopStateError } from "../mod.ts";
 * const loop = new Loop();
 * loop.submit(() => {
 *   loop.run().catch((error) => console.log(error instanceof LoopStateError)); // true
 * });
 * await loop.run();
 * ```
 */
export class LoopStateError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was attempted and the state that forbids it.
   */
  constructor(message: string) {
    super(message);
    this.name = "LoopStateError";
  }
}

/**
 * `loop.close()` closed the loop, but errors were raised meanwhile that no `onError` took (a
 * callback that threw during the graceful drain or in an `onClose`, or the poller failing to
 * close). `errors` holds them all in order (`cause` is the first), and `report` the
 * {@linkcode CloseReport} close() would have resolved with. Not to be confused with
 * {@linkcode LoopClosedError}, which refuses work because the loop is closed.
 *
 * @example
 * ```ts
 * import { Loop, LoopShutdownError } from "../mod.ts";
 * const loop = new Loop();
 * loop.submit(() => {
 *   throw new Error("boom");
 * });
 * loop.setTimeout(() => {}, 1000);
 * try {
 *   await loop.close();
 * } catch (error) {
 *   if (!(error instanceof LoopShutdownError)) throw error;
 *   console.log(error.errors[0].message, error.report.disposed.timers); // "boom" 1
 * }
 * ```
 */
export class LoopShutdownError extends AggregateError {
  /** What was pending at close and how each was disposed of, as `close()` resolves with. */
  readonly report: CloseReport;

  /**
   * Makes the error.
   *
   * @param errors The errors raised while closing, in order (at least one).
   * @param report The close report.
   * @param label The loop's label, for the message.
   */
  constructor(errors: readonly unknown[], report: CloseReport, label = "loop") {
    const first = errors[0];
    let shown: string;
    try {
      shown = first instanceof Error ? first.message : String(first);
    } catch {
      shown = Object.prototype.toString.call(first);
    }
    super(
      errors,
      `The loop "${label}" closed, but ${
        errors.length === 1
          ? `an error was raised while closing it: ${shown}`
          : `${errors.length} errors were raised while closing it; the first: ${shown}`
      }`,
      { cause: first },
    );
    this.name = "LoopShutdownError";
    this.report = report;
  }
}
