/**
 * Errors raised by pollers.
 *
 * @module
 */

/**
 * A system call made by a poller failed. Carries the call's name and the `errno` it left, both as
 * a number and by name (`EBADF`, `EPERM`, ...); the poller stays usable.
 *
 * @example
 * ```ts
 * import { PollerError } from "./errors.ts";
 * const error = new PollerError("epoll_ctl", 9, "EBADF");
 * console.log(error.message); // "epoll_ctl failed: EBADF (errno 9)"
 * ```
 */
export class PollerError extends Error {
  /** The failed call, e.g. `"epoll_ctl"`. */
  readonly syscall: string;
  /** The numeric `errno` (or Windows error code) the call left. */
  readonly errno: number;
  /** The symbolic name of {@linkcode PollerError.errno}, e.g. `"EBADF"`, or `"E<number>"`. */
  readonly code: string;

  /**
   * Makes the error.
   *
   * @param syscall The failed call.
   * @param errno The error number it left.
   * @param code Its symbolic name.
   * @param options `cause` and an extra `detail` appended to the message.
   */
  constructor(
    syscall: string,
    errno: number,
    code: string,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(
      `${syscall} failed: ${code} (errno ${errno})${options?.detail ? `: ${options.detail}` : ""}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "PollerError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

/** Why no poller can be made here. */
export type PollerUnavailableReason = "permission" | "platform";

/**
 * No poller can be created: either the `--allow-ffi` permission is missing, or this platform has
 * no backend.
 *
 * @example
 * ```ts
 * import { PollerUnavailableError } from "./errors.ts";
 * const error = new PollerUnavailableError("permission", "run with --allow-ffi");
 * console.log(error.reason); // "permission"
 * ```
 */
export class PollerUnavailableError extends Error {
  /** `"permission"` when `--allow-ffi` is missing, `"platform"` when there is no backend. */
  readonly reason: PollerUnavailableReason;

  /**
   * Makes the error.
   *
   * @param reason Why no poller is available.
   * @param message What the user should know.
   * @param options `cause`.
   */
  constructor(reason: PollerUnavailableReason, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PollerUnavailableError";
    this.reason = reason;
  }
}
