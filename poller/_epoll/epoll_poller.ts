// The Linux backend: epoll (level-triggered) with an eventfd waker.
import { PollerError } from "../errors.ts";
import { errnoName, LINUX_ERRNO } from "../_errno.ts";
import { ERROR, type EventBatch, HANGUP, type Poller } from "../types.ts";
import {
  checkBatch,
  checkFd,
  checkInterest,
  checkToken,
  MAX_TIMEOUT_MS,
  normaliseTimeout,
  wholeMsTimeout,
  writeTimespec,
} from "../_validate.ts";
import { type EpollLibrary, lastErrno, openEpollLibrary, PR_SET_TIMERSLACK } from "./_ffi.ts";
import {
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  type EpollEventLayout,
  epollEventLayout,
  EPOLLIN,
  epollToReadiness,
  interestToEpoll,
  O_CLOEXEC,
  O_NONBLOCK,
  TIMESPEC_SIZE,
} from "./_layout.ts";

/**
 * The high word of `epoll_event.data` holds a registration generation; this value is reserved for
 * the waker, whose events are never reported to callers. The low word holds the fd.
 */
const WAKER_GEN = 0xffffffff;
const INITIAL_TABLE_SIZE = 64;

interface WaitBuffers {
  /** `struct epoll_event[capacity]`, allocated once per growth, never per wait. */
  events: Uint8Array;
  words: Uint32Array;
  capacity: number;
  /** A `struct timespec`, written through `timespecWords` (little-endian i64 halves). */
  timespec: Uint8Array;
  timespecWords: Int32Array;
}

function makeWaitBuffers(capacity: number, layout: EpollEventLayout): WaitBuffers {
  const events = new Uint8Array(capacity * layout.size);
  const timespec = new Uint8Array(TIMESPEC_SIZE);
  return {
    events,
    words: new Uint32Array(events.buffer),
    capacity,
    timespec,
    timespecWords: new Int32Array(timespec.buffer),
  };
}

/** Private knobs (tests). */
export interface EpollPollerOptions {
  /** `false` forces the `epoll_wait` (whole-ms) path even where `epoll_pwait2` exists. */
  pwait2?: boolean;
}

/**
 * An epoll poller. Registrations live in the kernel; a small fd-indexed table (token, interest,
 * generation) lets a wait mask out events of fds that were unregistered or modified while it was
 * parked, so no caller ever sees a stale token.
 */
export class EpollPoller implements Poller {
  readonly backend = "epoll" as const;
  #lib: EpollLibrary;
  #layout: EpollEventLayout;
  #epfd: number;
  #wakeFd: number;
  #hasPwait2: boolean;
  #closed = false;
  #released = false;
  #closing: Promise<void> | null = null;
  #parked: Promise<number> | null = null;
  #wakePending = false;
  /**
   * An `EPOLL_CTL_DEL` failed: the fd was closed (or its number reused) while registered, so the
   * kernel may still hold its open file (kept open by a dup, a child, a passed fd) where no fd
   * number reaches it, and report it on every wait. The next wait rebuilds the set without it.
   */
  #orphaned = false;

  // fd-indexed registration table. interest 0 = not registered.
  #interests = new Uint8Array(INITIAL_TABLE_SIZE);
  #tokens = new Uint32Array(INITIAL_TABLE_SIZE);
  #gens = new Uint32Array(INITIAL_TABLE_SIZE);
  #nextGen = 0;

  // Scratch for control calls (one epoll_event) and the waker's 8-byte counter.
  #ctl: Uint8Array;
  #ctlWords: Uint32Array;
  #wakeValue = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);
  #drain = new Uint8Array(8);

  // Separate long-lived buffers: the parked off-thread wait owns #async while it runs, so a sync
  // wait meanwhile never touches memory the kernel is writing.
  #sync: WaitBuffers;
  #async: WaitBuffers;

  constructor(lib: EpollLibrary, layout: EpollEventLayout, options: EpollPollerOptions = {}) {
    this.#lib = lib;
    this.#layout = layout;
    this.#hasPwait2 = options.pwait2 !== false && lib.symbols.epoll_pwait2 !== null &&
      lib.symbols.epoll_pwait2_async !== null;
    this.#ctl = new Uint8Array(layout.size);
    this.#ctlWords = new Uint32Array(this.#ctl.buffer);
    this.#sync = makeWaitBuffers(0, layout);
    this.#async = makeWaitBuffers(0, layout);
    const s = lib.symbols;
    this.#epfd = s.epoll_create1(O_CLOEXEC);
    if (this.#epfd < 0) throw this.#errnoError("epoll_create1");
    this.#wakeFd = s.eventfd(0, O_NONBLOCK | O_CLOEXEC);
    if (this.#wakeFd < 0) {
      const error = this.#errnoError("eventfd");
      s.close(this.#epfd);
      throw error;
    }
    if (this.#ctlRaw(EPOLL_CTL_ADD, this.#wakeFd, EPOLLIN, this.#wakeFd, WAKER_GEN) < 0) {
      const error = this.#errnoError("epoll_ctl");
      s.close(this.#wakeFd);
      s.close(this.#epfd);
      throw error;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  register(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "register an fd");
    checkToken(token, "register an fd");
    checkInterest(interest, "register an fd");
    this.#checkOpen("epoll_ctl");
    if (!inRange) throw this.#codeError("epoll_ctl", LINUX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (this.#isRegistered(fd)) {
      throw this.#codeError(
        "epoll_ctl",
        LINUX_ERRNO.EEXIST,
        `fd ${fd} is already registered (use modify)`,
      );
    }
    const gen = this.#nextGen;
    // Skip the waker's reserved value when the counter wraps.
    this.#nextGen = gen + 1 >= WAKER_GEN ? 0 : gen + 1;
    if (this.#ctlRaw(EPOLL_CTL_ADD, fd, interestToEpoll(interest), fd, gen) < 0) {
      throw this.#errnoError("epoll_ctl", `cannot register fd ${fd}`);
    }
    this.#ensureTable(fd);
    this.#interests[fd] = interest;
    this.#tokens[fd] = token;
    this.#gens[fd] = gen;
  }

  modify(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "modify an fd");
    checkToken(token, "modify an fd");
    checkInterest(interest, "modify an fd");
    this.#checkOpen("epoll_ctl");
    if (!inRange) throw this.#codeError("epoll_ctl", LINUX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (!this.#isRegistered(fd)) {
      throw this.#codeError("epoll_ctl", LINUX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
    if (this.#ctlRaw(EPOLL_CTL_MOD, fd, interestToEpoll(interest), fd, this.#gens[fd]) < 0) {
      throw this.#errnoError("epoll_ctl", `cannot modify fd ${fd}`);
    }
    this.#interests[fd] = interest;
    this.#tokens[fd] = token;
  }

  unregister(fd: number): void {
    const inRange = checkFd(fd, "unregister an fd");
    this.#checkOpen("epoll_ctl");
    if (!inRange) throw this.#codeError("epoll_ctl", LINUX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (!this.#isRegistered(fd)) {
      throw this.#codeError("epoll_ctl", LINUX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
    // Forget it first: even if the kernel call fails (the fd was closed before unregister, which
    // already removed it from the epoll set), no later wait may report it.
    this.#interests[fd] = 0;
    if (this.#ctlRaw(EPOLL_CTL_DEL, fd, 0, 0, 0) < 0) {
      const error = this.#errnoError("epoll_ctl", `fd ${fd} was unregistered, but the kernel said`);
      this.#orphaned = true;
      throw error;
    }
  }

  supports(fd: number, interest: number): boolean {
    checkInterest(interest, "check support");
    this.#checkOpen("epoll_ctl");
    if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) return false;
    fd |= 0; // -0 is fd 0 (the FFI's i32 refuses -0)
    // Probe a scratch epoll set: the real one may already hold fd, and must not change.
    const s = this.#lib.symbols;
    const scratch = s.epoll_create1(O_CLOEXEC);
    if (scratch < 0) throw this.#errnoError("epoll_create1");
    try {
      const ctl = this.#ctlWords;
      const dataWord = this.#layout.dataOffset >> 2;
      ctl[this.#layout.eventsOffset >> 2] = interestToEpoll(interest);
      ctl[dataWord] = 0;
      ctl[dataWord + 1] = 0;
      if (s.epoll_ctl(scratch, EPOLL_CTL_ADD, fd, this.#ctl) < 0) return false;
      s.epoll_ctl(scratch, EPOLL_CTL_DEL, fd, this.#ctl);
      return true;
    } finally {
      s.close(scratch);
    }
  }

  wait(batch: EventBatch, timeoutMs: number): number {
    checkBatch(batch);
    const ms = normaliseTimeout(timeoutMs);
    // A zero or whole-ms timeout needs no timespec: epoll_wait skips copying one in (~35 ns a
    // call here, measured on a socketpair ping-pong, where every wait is a zero-timeout poll).
    const precise = this.#hasPwait2 && (ms !== Math.trunc(ms) || ms > MAX_TIMEOUT_MS);
    this.#checkOpen(precise ? "epoll_pwait2" : "epoll_wait");
    if (this.#orphaned && this.#parked === null) this.#rebuild();
    const buffers = this.#sync = this.#buffersFor(this.#sync, batch.capacity);
    const s = this.#lib.symbols;
    let n: number;
    if (precise) {
      writeTimespec(buffers.timespecWords, ms);
      n = s.epoll_pwait2!(this.#epfd, buffers.events, batch.capacity, buffers.timespec, null);
    } else {
      n = s.epoll_wait(this.#epfd, buffers.events, batch.capacity, wholeMsTimeout(ms));
    }
    if (n < 0) {
      const errno = lastErrno(this.#lib);
      batch.length = 0;
      if (errno === LINUX_ERRNO.EINTR) return 0;
      throw this.#codeError(precise ? "epoll_pwait2" : "epoll_wait", errno);
    }
    // While an off-thread wait is parked it must be the one to drain the waker: draining here
    // could leave it asleep after the kernel had already woken it for that wake().
    return this.#decode(buffers, n, batch, this.#parked === null);
  }

  waitAsync(batch: EventBatch, timeoutMs: number): Promise<number> {
    let ms: number;
    try {
      checkBatch(batch);
      ms = normaliseTimeout(timeoutMs);
      this.#checkOpen(this.#hasPwait2 ? "epoll_pwait2" : "epoll_wait");
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
    if (this.#orphaned) this.#rebuild();
    const buffers = this.#async = this.#buffersFor(this.#async, batch.capacity);
    const s = this.#lib.symbols;
    let call: Promise<number>;
    if (this.#hasPwait2) {
      let timespec: Uint8Array | null = null;
      if (ms >= 0) {
        writeTimespec(buffers.timespecWords, ms);
        timespec = buffers.timespec;
      }
      call = s.epoll_pwait2_async!(this.#epfd, buffers.events, batch.capacity, timespec, null);
    } else {
      call = s.epoll_wait_async(this.#epfd, buffers.events, batch.capacity, wholeMsTimeout(ms));
    }
    const parked = call.then(
      (n) => {
        this.#parked = null;
        // errno of the pool thread is out of reach: a failed off-thread wait is a spurious wakeup.
        if (n < 0 || this.#closed) {
          batch.length = 0;
          return 0;
        }
        return this.#decode(buffers, n, batch, true);
      },
      (error) => {
        this.#parked = null;
        throw error;
      },
    );
    this.#parked = parked;
    return parked;
  }

  wake(): void {
    if (this.#released || this.#wakePending) return;
    this.#wakePending = true;
    // The eventfd counter cannot overflow: at most one wake is in flight until it is drained.
    this.#lib.symbols.write(this.#wakeFd, this.#wakeValue, 8n);
  }

  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closed = true;
      this.#closing = this.#release();
    }
    return this.#closing;
  }

  async #release(): Promise<void> {
    const parked = this.#parked;
    if (parked !== null) {
      this.wake();
      // Its result no longer matters; the thread must be out of epoll before the fds go.
      await parked.catch(() => {});
    }
    this.#released = true;
    const s = this.#lib.symbols;
    s.close(this.#wakeFd);
    s.close(this.#epfd);
    this.#lib.close();
  }

  /**
   * Replaces the epoll set by a new one holding the waker and every registered fd, dropping
   * registrations no fd number reaches any more (see `#orphaned`). Only while no wait is parked on
   * the old set. A registered fd that cannot be added again (closed meanwhile) is reported by
   * nothing, as before; if its number now names another open file, that file is watched instead,
   * as poll(2) does. On failure the old set stays and the next wait tries again.
   */
  #rebuild(): void {
    const s = this.#lib.symbols;
    const epfd = s.epoll_create1(O_CLOEXEC);
    if (epfd < 0) return;
    const old = this.#epfd;
    this.#epfd = epfd;
    if (this.#ctlRaw(EPOLL_CTL_ADD, this.#wakeFd, EPOLLIN, this.#wakeFd, WAKER_GEN) < 0) {
      this.#epfd = old;
      s.close(epfd);
      return;
    }
    const interests = this.#interests;
    for (let fd = 0; fd < interests.length; fd++) {
      const interest = interests[fd];
      if (interest !== 0) {
        this.#ctlRaw(EPOLL_CTL_ADD, fd, interestToEpoll(interest), fd, this.#gens[fd]);
      }
    }
    s.close(old);
    this.#orphaned = false;
  }

  #decode(buffers: WaitBuffers, n: number, batch: EventBatch, mayDrain: boolean): number {
    const words = buffers.words;
    const stride = this.#layout.size >> 2;
    const eventsWord = this.#layout.eventsOffset >> 2;
    const dataWord = this.#layout.dataOffset >> 2;
    const interests = this.#interests;
    const tableSize = interests.length;
    const tokens = batch.tokens;
    const readiness = batch.readiness;
    let count = 0;
    let sawWaker = false;
    for (let i = 0, base = 0; i < n; i++, base += stride) {
      const fd = words[base + dataWord];
      const gen = words[base + dataWord + 1];
      if (gen === WAKER_GEN) {
        sawWaker = true;
        continue;
      }
      // Stale: unregistered, or unregistered and registered again, while this wait was parked.
      if (fd >= tableSize) continue;
      const interest = interests[fd];
      if (interest === 0 || this.#gens[fd] !== gen) continue;
      const ready = epollToReadiness(words[base + eventsWord]) & (interest | HANGUP | ERROR);
      if (ready === 0) continue;
      tokens[count] = this.#tokens[fd];
      readiness[count] = ready;
      count++;
    }
    if (sawWaker && mayDrain) {
      this.#wakePending = false;
      this.#lib.symbols.read(this.#wakeFd, this.#drain, 8n);
    }
    batch.length = count;
    return count;
  }

  /**
   * The buffers for a batch of `capacity`, grown (rarely) to fit it. A wait asks the kernel for at
   * most `batch.capacity` events, so every event it returns fits the batch: none is dropped, and
   * epoll's own round-robin over level-triggered fds keeps a small batch from starving anyone
   * (the waker may take a slot; that wait then reports one event fewer).
   */
  #buffersFor(buffers: WaitBuffers, capacity: number): WaitBuffers {
    if (buffers.capacity >= capacity) return buffers;
    const grown = makeWaitBuffers(Math.max(capacity, buffers.capacity * 2), this.#layout);
    return grown;
  }

  #ctlRaw(op: number, fd: number, events: number, dataLow: number, dataHigh: number): number {
    const words = this.#ctlWords;
    const dataWord = this.#layout.dataOffset >> 2;
    words[this.#layout.eventsOffset >> 2] = events;
    words[dataWord] = dataLow;
    words[dataWord + 1] = dataHigh;
    // `| 0`: the FFI's i32 refuses -0, an fd the checks accept as 0 (callers checked the range).
    return this.#lib.symbols.epoll_ctl(this.#epfd, op, fd | 0, this.#ctl);
  }

  #isRegistered(fd: number): boolean {
    return fd < this.#interests.length && this.#interests[fd] !== 0;
  }

  #ensureTable(fd: number): void {
    if (fd < this.#interests.length) return;
    let size = this.#interests.length * 2;
    while (size <= fd) size *= 2;
    const interests = new Uint8Array(size);
    interests.set(this.#interests);
    const tokens = new Uint32Array(size);
    tokens.set(this.#tokens);
    const gens = new Uint32Array(size);
    gens.set(this.#gens);
    this.#interests = interests;
    this.#tokens = tokens;
    this.#gens = gens;
  }

  #checkOpen(syscall: string): void {
    if (this.#closed) {
      throw this.#codeError(syscall, LINUX_ERRNO.EBADF, "the poller is closed");
    }
  }

  #errnoError(syscall: string, detail?: string): PollerError {
    return this.#codeError(syscall, lastErrno(this.#lib), detail);
  }

  #codeError(syscall: string, errno: number, detail?: string): PollerError {
    return new PollerError(syscall, errno, errnoName(errno, "linux"), { detail });
  }
}

/** Opens libc and makes an epoll poller (Linux only; the caller checked the platform). */
export function createEpollPoller(options: EpollPollerOptions = {}): Poller {
  const layout = epollEventLayout(Deno.build.arch);
  if (layout === undefined) {
    throw new RangeError(
      `Cannot create an epoll poller as the arch has no epoll_event layout: current value is ${Deno.build.arch}`,
    );
  }
  const lib = openEpollLibrary();
  try {
    const poller = new EpollPoller(lib, layout, options);
    // Synchronous waits run on the calling thread: without this, each is padded by the default
    // 50 µs of timer slack (measured here: a 0.25 ms wait returned 106 µs late at the median, 39 µs
    // with 1 ns of slack). Best effort: a failure only costs precision.
    lib.symbols.prctl(PR_SET_TIMERSLACK, 1n, 0n, 0n, 0n);
    return poller;
  } catch (error) {
    lib.close();
    throw error;
  }
}
