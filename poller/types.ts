/**
 * The backend contract shared by every poller: plain TypeScript, no FFI pointer ever leaks out.
 *
 * Every backend is **level-triggered**: an fd that stays ready is reported by every wait until the
 * condition clears or the registration changes. Spurious wakeups are allowed: a wait may return
 * fewer events than are ready, or none at all, before its timeout (after {@linkcode Poller.wake},
 * a signal, or an internal retry); callers loop.
 *
 * @module
 */
import { describe } from "./_validate.ts";

/** Readiness bit: the fd can be read without blocking (or has reached EOF). */
export const READABLE = 1;
/** Readiness bit: the fd can be written without blocking. */
export const WRITABLE = 2;
/** Readiness bit: priority or out-of-band data (`EPOLLPRI`, `POLLPRI`, GPIO edge events). */
export const PRIORITY = 4;
/** Readiness bit (reported only): the peer hung up (`EPOLLHUP`/`EPOLLRDHUP`, `EV_EOF`). */
export const HANGUP = 8;
/** Readiness bit (reported only): an error condition is pending on the fd (`EPOLLERR`). */
export const ERROR = 16;

/** The interest bits a registration may ask for. */
export const INTEREST_MASK: number = READABLE | WRITABLE | PRIORITY;

/** The name of a polling backend. */
export type PollerBackend = "epoll" | "poll" | "kqueue" | "iocp" | "fake";

/**
 * A fixed, reusable batch that a wait fills with ready events. Allocate it once and pass it to
 * every wait: the hot path allocates nothing.
 *
 * @example Reading a batch
 * ```ts
 * import { EventBatch, READABLE } from "./types.ts";
 * const batch = new EventBatch(64);
 * batch.length = 1; // a backend's wait sets this
 * batch.tokens[0] = 7;
 * batch.readiness[0] = READABLE;
 * for (let i = 0; i < batch.length; i++) {
 *   if (batch.readiness[i] & READABLE) console.log("token", batch.tokens[i], "readable");
 * }
 * ```
 */
export class EventBatch {
  /** How many events one wait may report at most. */
  readonly capacity: number;
  /** How many entries the last wait filled. */
  length = 0;
  /** The token registered with each ready fd, in `[0, length)`. */
  readonly tokens: Uint32Array;
  /** The readiness bits ({@linkcode READABLE} ... {@linkcode ERROR}) of each ready fd. */
  readonly readiness: Uint8Array;

  /**
   * Makes a batch for up to `capacity` events.
   *
   * @param capacity Events a single wait may report, a positive integer (default 1024).
   */
  constructor(capacity = 1024) {
    if (typeof capacity !== "number") {
      throw new TypeError(
        `Cannot create an event batch as the capacity must be a number: current value is ${
          describe(capacity)
        }`,
      );
    }
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) {
      throw new RangeError(
        `Cannot create an event batch as the capacity must be an integer in [1, 1048576]: current value is ${
          describe(capacity)
        }`,
      );
    }
    this.capacity = capacity;
    this.tokens = new Uint32Array(capacity);
    this.readiness = new Uint8Array(capacity);
  }
}

/**
 * One readiness-polling backend. All methods but {@linkcode Poller.wake} and
 * {@linkcode Poller.waitAsync}'s parked part run synchronously on the calling thread.
 *
 * Tokens are integers in `[0, 2^32)`; each registered fd has exactly one token and one interest
 * mask (a non-zero combination of {@linkcode READABLE}, {@linkcode WRITABLE} and
 * {@linkcode PRIORITY}). {@linkcode HANGUP} and {@linkcode ERROR} are always reported.
 *
 * `register`, `modify` and `unregister` may be called while a {@linkcode Poller.waitAsync} is
 * parked; the change takes effect no later than the next wait (a backend whose parked wait cannot
 * see it wakes that wait itself). After `unregister(fd)` returns, no later wait reports its
 * token, even one that was already parked.
 */
export interface Poller {
  /** Which backend this is. */
  readonly backend: PollerBackend;
  /** Whether {@linkcode Poller.close} has been called. */
  readonly closed: boolean;
  /**
   * Starts watching `fd` for `interest`, reporting `token` when it is ready.
   * Throws `PollerError` (with `syscall` and `code`, e.g. `EBADF`, `EEXIST`, `EPERM`).
   */
  register(fd: number, token: number, interest: number): void;
  /** Changes the interest (and token) of a registered fd. */
  modify(fd: number, token: number, interest: number): void;
  /** Stops watching `fd`. Unregistering an fd that is not registered throws `PollerError`. */
  unregister(fd: number): void;
  /**
   * Whether `fd` can be polled for `interest` on this backend (epoll refuses regular files,
   * directories and `/dev/null`; poll(2) accepts any open fd; AFD polls only sockets). Never throws
   * for a bad fd: returns `false`.
   */
  supports(fd: number, interest: number): boolean;
  /**
   * Waits on the calling thread for up to `timeoutMs` (fractional allowed; `0` polls without
   * blocking, a negative value or `Infinity` waits forever) and fills `batch`. Returns the number of
   * events, also stored in `batch.length`. Interrupted waits (`EINTR`) return 0.
   */
  wait(batch: EventBatch, timeoutMs: number): number;
  /**
   * The same wait, parked on a thread of Deno's blocking pool (FFI `nonblocking: true`) so the
   * calling thread stays free. At most one may be outstanding (another rejects with
   * `Deno.errors.Busy`); {@linkcode Poller.wake} or {@linkcode Poller.close} ends it early
   * (resolving, possibly with 0).
   */
  waitAsync(batch: EventBatch, timeoutMs: number): Promise<number>;
  /** Makes a parked or the next wait return promptly. Safe to call at any time, repeatedly. */
  wake(): void;
  /**
   * For scripted pollers only: the clock time (ms) of the next scripted event, or `Infinity`.
   * A loop on a virtual clock advances its clock to it when idle. Real backends omit it.
   */
  nextEventTimeMs?(): number;
  /**
   * Releases every resource. If a `waitAsync` is parked, it is woken and settled first; the
   * returned promise resolves once no thread is left inside the backend.
   */
  close(): Promise<void>;
}

/** Options for `createPoller`. */
export interface CreatePollerOptions {
  /** Force a backend instead of the platform's best one (`"poll"` is the POSIX fallback). */
  backend?: Exclude<PollerBackend, "fake">;
}
