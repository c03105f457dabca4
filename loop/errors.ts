/**
 * Errors raised by the loop.
 *
 * @module
 */

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
