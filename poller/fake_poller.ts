import { PollerError } from "./errors.ts";
import { errnoName, LINUX_ERRNO } from "./_errno.ts";
import {
  ERROR,
  type EventBatch,
  HANGUP,
  type Poller,
  PRIORITY,
  READABLE,
  WRITABLE,
} from "./types.ts";
import {
  checkBatch,
  checkFd,
  checkInterest,
  checkToken,
  describe,
  MAX_FD,
  normaliseTimeout,
} from "./_validate.ts";

const ALL_READINESS = READABLE | WRITABLE | PRIORITY | HANGUP | ERROR;
// Deno's own timers, captured at import: timers/install() may replace the globals with a loop's,
// and a real-clock wait must not end up waiting on (or being refused by) that loop.
const setTimeout = globalThis.setTimeout;
const clearTimeout = globalThis.clearTimeout;

/** The clock a {@linkcode FakePoller} reads scripted times from (a `VirtualClock` fits). */
export interface FakePollerClock {
  /** The current time in ms. */
  now(): number;
  /** `true` when the clock moves only when told (then the fake never waits in real time). */
  readonly virtual?: boolean;
}

/** Options for {@linkcode FakePoller}. */
export interface FakePollerOptions {
  /**
   * The clock scripted times refer to. Default: real monotonic time (`performance.now()`).
   * With a virtual clock the fake never sleeps: a `waitAsync` with a finite timeout, or with a
   * scripted change still ahead, resolves 0 at once so the caller can advance the clock.
   */
  clock?: FakePollerClock;
  /**
   * Which fds a real backend would accept, like {@linkcode Poller.supports}; `register` of an fd
   * it refuses throws an `EPERM` {@linkcode PollerError}, as epoll does for regular files.
   * Default: every fd.
   */
  supports?: (fd: number, interest: number) => boolean;
}

interface ScriptEntry {
  atMs: number;
  fd: number;
  readiness: number;
}

interface Registration {
  token: number;
  interest: number;
}

interface ParkedWait {
  batch: EventBatch;
  deadlineMs: number;
  resolve: (count: number) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * A scripted, in-memory {@linkcode Poller} for tests: no fds, no FFI, no permissions. Each fd has
 * a level-triggered readiness state (a combination of {@linkcode READABLE} ... {@linkcode ERROR})
 * that a script changes at given clock times, or that {@linkcode FakePoller.setReadiness} changes
 * at once. A wait reports every registered fd whose state intersects its interest (plus
 * {@linkcode HANGUP} and {@linkcode ERROR}), exactly like a real level-triggered backend, and it
 * validates arguments the same way (`EEXIST` on a double register, `ENOENT` on an unknown fd,
 * `EBADF` on a negative fd).
 *
 * Time: scripted changes apply when a wait (or {@linkcode FakePoller.nextEventTimeMs}) finds the
 * clock at or past them. {@linkcode FakePoller.nextEventTimeMs} tells a virtual-clock loop where to
 * advance when idle. The sync `wait` never blocks. `waitAsync` with nothing ready parks until
 * {@linkcode FakePoller.wake}, {@linkcode FakePoller.close}, a readiness change that makes a
 * registered fd ready, or (real clocks only) a scripted change or its timeout.
 *
 * @experimental The scripting API may change before 1.0.
 *
 * @example fd 7 readable at t=30 ms, hang-up at 50 ms
 * ```ts
 * import { EventBatch, FakePoller, HANGUP, READABLE } from "./mod.ts";
 * import { VirtualClock } from "../loop/clock.ts";
 *
 * const clock = new VirtualClock();
 * const poller = new FakePoller({ clock });
 * poller.script(30, 7, READABLE).script(50, 7, READABLE | HANGUP);
 * poller.register(7, 1, READABLE);
 * const batch = new EventBatch(8);
 *
 * console.log(poller.wait(batch, 0)); // 0: nothing yet
 * clock.set(poller.nextEventTimeMs()); // 30
 * console.log(poller.wait(batch, 0), batch.tokens[0]); // 1 1
 * clock.set(poller.nextEventTimeMs()); // 50
 * poller.wait(batch, 0);
 * console.log((batch.readiness[0] & HANGUP) !== 0); // true
 * await poller.close();
 * ```
 */
export class FakePoller implements Poller {
  /** Always `"fake"`. */
  readonly backend = "fake" as const;
  #clock: FakePollerClock;
  #supports: ((fd: number, interest: number) => boolean) | undefined;
  #state = new Map<number, number>();
  #registrations = new Map<number, Registration>();
  /** Sorted by time (stable); entries before #next have been applied. */
  #script: ScriptEntry[] = [];
  #next = 0;
  #parked: ParkedWait | null = null;
  #wakePending = false;
  #closed = false;

  /**
   * Makes a fake poller.
   *
   * @param options The clock scripted times refer to, and which fds count as supported.
   * @throws {TypeError} If `options`, its `clock` or its `supports` is malformed.
   */
  constructor(options: FakePollerOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `Cannot create a fake poller as the options must be an object: current value is ${
          describe(options)
        }`,
      );
    }
    const clock = options.clock;
    if (clock !== undefined && (clock === null || typeof clock.now !== "function")) {
      throw new TypeError(
        `Cannot create a fake poller as the clock must have a now() method: current value is ${
          describe(clock)
        }`,
      );
    }
    this.#clock = clock ?? { now: () => performance.now(), virtual: false };
    if (options.supports !== undefined && typeof options.supports !== "function") {
      throw new TypeError(
        `Cannot create a fake poller as supports must be a function: current value is ${
          describe(options.supports)
        }`,
      );
    }
    this.#supports = options.supports;
  }

  /**
   * The clock scripted times refer to (the one given, or the default real-time one). A loop using
   * this poller must run on the same clock: `new Loop({ clock, poller: new FakePoller({ clock }) })`.
   */
  get clock(): FakePollerClock {
    return this.#clock;
  }

  /** Whether {@linkcode FakePoller.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Schedules the readiness state of `fd` to become `readiness` at clock time `atMs`. Changes at
   * the same time apply in the order they were scripted; a time already past applies at the next
   * wait. A parked `waitAsync` sees the change too (on a virtual clock it resolves 0 at once, so
   * the caller can advance the clock).
   *
   * @param atMs The clock time of the change, in ms.
   * @param fd The fd whose state changes (registered or not).
   * @param readiness Its new state: a combination of READABLE, WRITABLE, PRIORITY, HANGUP, ERROR
   *   (0 = nothing ready).
   * @returns This poller, to chain scripts.
   */
  script(atMs: number, fd: number, readiness: number): this {
    if (typeof atMs !== "number") {
      throw new TypeError(
        `Cannot script a readiness change as the time must be a number of ms: current value is ${
          describe(atMs)
        }`,
      );
    }
    if (!Number.isFinite(atMs)) {
      throw new RangeError(
        `Cannot script a readiness change as the time must be a finite number of ms: current value is ${atMs}`,
      );
    }
    checkStateArgs(fd, readiness, "script a readiness change");
    const entries = this.#script;
    // Binary search for the first entry later than atMs, never before the applied prefix.
    let low = this.#next;
    let high = entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (entries[mid].atMs <= atMs) low = mid + 1;
      else high = mid;
    }
    entries.splice(low, 0, { atMs, fd, readiness });
    const parked = this.#parked;
    if (parked !== null) {
      // A parked wait must see the new change: now if it is due, else at its time (real clock),
      // or by handing control back so the caller advances the virtual clock to it.
      this.#recheckParked();
      if (this.#parked === parked) {
        if (this.#clock.virtual === true) {
          if (atMs > this.#clock.now()) this.#settle(0);
        } else {
          if (parked.timer !== undefined) clearTimeout(parked.timer);
          parked.timer = undefined;
          this.#armTimer();
        }
      }
    }
    return this;
  }

  /**
   * Sets the readiness state of `fd` now. A parked `waitAsync` that this makes report something
   * resolves.
   *
   * @param fd The fd (registered or not).
   * @param readiness Its new state (0 = nothing ready).
   */
  setReadiness(fd: number, readiness: number): void {
    checkStateArgs(fd, readiness, "set readiness");
    this.#setState(fd, readiness);
    this.#recheckParked();
  }

  /**
   * The current readiness state of `fd` (scripted changes due by now included).
   *
   * @param fd The fd.
   * @returns Its readiness bits, 0 when nothing is ready.
   */
  readiness(fd: number): number {
    this.#applyDue();
    return this.#state.get(fd) ?? 0;
  }

  /**
   * The interest `fd` is registered with, or 0 when it is not registered (for assertions).
   *
   * @param fd The fd.
   * @returns The interest bits, or 0.
   */
  interestOf(fd: number): number {
    return this.#registrations.get(fd)?.interest ?? 0;
  }

  /**
   * The clock time of the next scripted change still ahead of the clock, or `Infinity`.
   *
   * @returns A time in ms, or `Infinity` when the script is exhausted.
   */
  nextEventTimeMs(): number {
    this.#applyDue();
    return this.#next < this.#script.length ? this.#script[this.#next].atMs : Infinity;
  }

  /**
   * Starts watching `fd`; validates like a real backend.
   *
   * @param fd A non-negative integer.
   * @param token An integer in `[0, 2^32)` reported with its events.
   * @param interest A non-zero combination of READABLE, WRITABLE, PRIORITY.
   */
  register(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "register an fd");
    checkToken(token, "register an fd");
    checkInterest(interest, "register an fd");
    this.#checkOpen("register");
    if (!inRange) throw codeError("register", LINUX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (this.#registrations.has(fd)) {
      throw codeError(
        "register",
        LINUX_ERRNO.EEXIST,
        `fd ${fd} is already registered (use modify)`,
      );
    }
    if (this.#supports !== undefined && !this.#supports(fd, interest)) {
      throw codeError("register", LINUX_ERRNO.EPERM, `fd ${fd} cannot be polled`);
    }
    this.#registrations.set(fd, { token, interest });
    this.#recheckParked();
  }

  /**
   * Changes the token and interest of a registered fd.
   *
   * @param fd A registered fd.
   * @param token The new token.
   * @param interest The new interest.
   */
  modify(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "modify an fd");
    checkToken(token, "modify an fd");
    checkInterest(interest, "modify an fd");
    this.#checkOpen("modify");
    if (!inRange) throw codeError("modify", LINUX_ERRNO.EBADF, `fd ${fd} is not valid`);
    const registration = this.#registrations.get(fd);
    if (registration === undefined) {
      throw codeError("modify", LINUX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
    registration.token = token;
    registration.interest = interest;
    this.#recheckParked();
  }

  /**
   * Stops watching `fd`. Its readiness state is kept (it belongs to the "fd", not the watch).
   *
   * @param fd A registered fd.
   */
  unregister(fd: number): void {
    const inRange = checkFd(fd, "unregister an fd");
    this.#checkOpen("unregister");
    if (!inRange) throw codeError("unregister", LINUX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (!this.#registrations.delete(fd)) {
      throw codeError("unregister", LINUX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
  }

  /**
   * Whether `fd` could be registered for `interest` (the `supports` option, default all fds).
   *
   * @param fd The fd; `false` for a negative, non-integer or out-of-range (> 2^31 - 1) one.
   * @param interest The interest.
   * @returns Whether a register would be accepted.
   */
  supports(fd: number, interest: number): boolean {
    checkInterest(interest, "check support");
    if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > MAX_FD) return false;
    return this.#supports === undefined || this.#supports(fd, interest);
  }

  /**
   * Applies due scripted changes and reports ready fds. Never blocks, whatever `timeoutMs` says
   * (returning 0 early is a permitted spurious wakeup).
   *
   * @param batch The batch to fill.
   * @param timeoutMs Validated like a real backend, otherwise ignored.
   * @returns The number of events.
   */
  wait(batch: EventBatch, timeoutMs: number): number {
    checkBatch(batch);
    normaliseTimeout(timeoutMs);
    this.#checkOpen("wait");
    this.#wakePending = false;
    this.#applyDue();
    return this.#collect(batch);
  }

  /**
   * Reports ready fds, or parks until something happens (see the class description).
   *
   * @param batch The batch to fill when it resolves.
   * @param timeoutMs `0` to poll, a negative value or `Infinity` to wait until woken.
   * @returns The number of events, once there are some or the wait ends.
   */
  waitAsync(batch: EventBatch, timeoutMs: number): Promise<number> {
    let ms: number;
    try {
      checkBatch(batch);
      ms = normaliseTimeout(timeoutMs);
      this.#checkOpen("wait");
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#parked !== null) {
      return Promise.reject(
        new Deno.errors.Busy(
          "Cannot wait asynchronously as another waitAsync is still outstanding",
        ),
      );
    }
    this.#applyDue();
    const count = this.#collect(batch);
    if (count > 0 || ms === 0 || this.#wakePending) {
      this.#wakePending = false;
      return Promise.resolve(count);
    }
    if (this.#clock.virtual === true && (ms > 0 || this.nextEventTimeMs() !== Infinity)) {
      // Virtual time does not pass by itself: hand control back so the caller advances it.
      return Promise.resolve(0);
    }
    return new Promise<number>((resolve) => {
      this.#parked = {
        batch,
        deadlineMs: ms < 0 ? Infinity : this.#clock.now() + ms,
        resolve,
        timer: undefined,
      };
      this.#armTimer();
    });
  }

  /** Ends a parked `waitAsync` with 0 events, or makes the next one return at once. */
  wake(): void {
    if (this.#closed) return;
    if (this.#parked !== null) this.#settle(0);
    else this.#wakePending = true;
  }

  /**
   * Closes the poller; a parked `waitAsync` resolves with 0 first.
   *
   * @returns A promise that resolves once closed.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#parked !== null) this.#settle(0);
      this.#registrations.clear();
    }
    return Promise.resolve();
  }

  #setState(fd: number, readiness: number): void {
    if (readiness === 0) this.#state.delete(fd);
    else this.#state.set(fd, readiness);
  }

  #applyDue(): void {
    const entries = this.#script;
    if (this.#next >= entries.length) return;
    const now = this.#clock.now();
    while (this.#next < entries.length && entries[this.#next].atMs <= now) {
      const entry = entries[this.#next++];
      this.#setState(entry.fd, entry.readiness);
    }
    // Drop the applied prefix now and then, so a long script does not keep growing.
    if (this.#next > 256 && this.#next * 2 > entries.length) {
      entries.splice(0, this.#next);
      this.#next = 0;
    }
  }

  #collect(batch: EventBatch): number {
    let count = 0;
    let overflow = false;
    for (const [fd, readiness] of this.#state) {
      const registration = this.#registrations.get(fd);
      if (registration === undefined) continue;
      const ready = readiness & (registration.interest | HANGUP | ERROR);
      if (ready === 0) continue;
      if (count === batch.capacity) {
        overflow = true;
        break;
      }
      batch.tokens[count] = registration.token;
      batch.readiness[count] = ready;
      count++;
    }
    if (overflow) {
      // Level-triggered fairness: move the reported fds to the back so the rest come next time.
      let moved = 0;
      for (const [fd, readiness] of this.#state) {
        if (moved === count) break;
        const registration = this.#registrations.get(fd);
        if (registration === undefined) continue;
        if ((readiness & (registration.interest | HANGUP | ERROR)) === 0) continue;
        this.#state.delete(fd);
        this.#state.set(fd, readiness);
        moved++;
      }
    }
    batch.length = count;
    return count;
  }

  /** A readiness or registration change happened: resolve a parked wait if it has events now. */
  #recheckParked(): void {
    const parked = this.#parked;
    if (parked === null) return;
    this.#applyDue();
    const count = this.#collect(parked.batch);
    if (count > 0) this.#settle(count);
  }

  #settle(count: number): void {
    const parked = this.#parked!;
    this.#parked = null;
    if (parked.timer !== undefined) clearTimeout(parked.timer);
    if (count === 0) parked.batch.length = 0;
    parked.resolve(count);
  }

  /** Real clocks only: wake at the next scripted change or the deadline, whichever is first. */
  #armTimer(): void {
    const parked = this.#parked;
    if (parked === null || this.#clock.virtual === true) return;
    const untilMs = Math.min(parked.deadlineMs, this.nextEventTimeMs());
    if (untilMs === Infinity) return;
    const delayMs = Math.max(0, untilMs - this.#clock.now());
    parked.timer = setTimeout(() => {
      parked.timer = undefined;
      if (this.#parked !== parked) return;
      this.#applyDue();
      const count = this.#collect(parked.batch);
      if (count > 0 || this.#clock.now() >= parked.deadlineMs) this.#settle(count);
      else this.#armTimer();
    }, Math.ceil(delayMs));
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw codeError(operation, LINUX_ERRNO.EBADF, "the poller is closed");
  }
}

function checkStateArgs(fd: number, readiness: number, action: string): void {
  if (!checkFd(fd, action)) {
    throw new RangeError(
      `Cannot ${action} as the fd must be in [0, ${MAX_FD}]: current value is ${fd}`,
    );
  }
  if (typeof readiness !== "number") {
    throw new TypeError(
      `Cannot ${action} as the readiness must be a number: current value is ${describe(readiness)}`,
    );
  }
  if (!Number.isInteger(readiness) || readiness < 0 || (readiness & ~ALL_READINESS) !== 0) {
    throw new RangeError(
      `Cannot ${action} as the readiness must be a combination of READABLE, WRITABLE, PRIORITY, HANGUP and ERROR (0-31): current value is ${readiness}`,
    );
  }
}

function codeError(operation: string, errno: number, detail: string): PollerError {
  return new PollerError(operation, errno, errnoName(errno, "linux"), { detail });
}
