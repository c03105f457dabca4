// The portable POSIX fallback: poll(2) over an array of pollfd with a self-pipe waker.
//
// Cost: every wait hands the kernel the whole array and scans it back, so a wait is O(watched
// fds), not O(ready fds) like epoll/kqueue. That is inherent to poll(2); use it for a handful of
// fds, or where nothing better exists.
import { PollerError } from "../errors.ts";
import { errnoName, POSIX_ERRNO } from "../_errno.ts";
import { ERROR, type EventBatch, HANGUP, type Poller } from "../types.ts";
import {
  checkBatch,
  checkFd,
  checkInterest,
  checkToken,
  normaliseTimeout,
  wholeMsTimeout,
} from "../_validate.ts";
import {
  F_GETFD,
  lastErrno,
  openPollLibrary,
  type PollLibrary,
  type PollPlatform,
  pollPlatform,
} from "./_ffi.ts";
import { interestToPoll, POLLFD_LAYOUT, POLLIN, pollToReadiness } from "./_layout.ts";

const INITIAL_TABLE_SIZE = 64;
const DRAIN_BYTES = 64;
const DRAIN_BYTES_BIG = 64n;

/**
 * One wait's pollfd array (slot 0 is the waker) plus the registration generation of every slot at
 * the time it was built. Each kind of wait has its own, so the array a parked poll() is reading is
 * never rewritten under it: a change only bumps the version, and the next wait rebuilds.
 */
interface PollBuffers {
  bytes: Uint8Array;
  fds: Int32Array;
  shorts: Uint16Array;
  gens: Uint32Array;
  /** Slots the array can hold. */
  capacity: number;
  /** Slots in use (waker included) and the same as a BigInt for the `usize` parameter. */
  nfds: number;
  nfdsBig: bigint;
  /** The registration version this array reflects; -1 = never built. */
  version: number;
}

function makePollBuffers(capacity: number): PollBuffers {
  const bytes = new Uint8Array(capacity * POLLFD_LAYOUT.size);
  return {
    bytes,
    fds: new Int32Array(bytes.buffer),
    shorts: new Uint16Array(bytes.buffer),
    gens: new Uint32Array(capacity),
    capacity,
    nfds: 0,
    nfdsBig: 0n,
    version: -1,
  };
}

/**
 * A poll(2) poller. Registrations live in a dense slot list (swap-remove) plus fd-indexed tables;
 * a wait copies them into its own pollfd array only when they changed since its last build.
 * Because a parked poll() cannot see changes, register/modify/unregister wake it, and the parked
 * waitAsync rebuilds and polls again (with the time left) instead of returning early.
 */
export class PollPoller implements Poller {
  readonly backend = "poll" as const;
  #lib: PollLibrary;
  #platform: PollPlatform;
  #os: string;
  #wakeRead: number;
  #wakeWrite: number;
  #closed = false;
  #released = false;
  #closing: Promise<void> | null = null;
  #parked: Promise<number> | null = null;
  #wakePending = false;
  /** A caller's wake() not yet consumed by a wait (internal wakes for registration changes are not). */
  #userWake = false;
  #sawWaker = false;
  /** Where the next scan starts, so an overfull batch does not always favour the same fds. */
  #cursor = 0;

  // fd-indexed tables; slot 0 = not registered (slots are stored +1).
  #fdSlot = new Int32Array(INITIAL_TABLE_SIZE);
  #tokens = new Uint32Array(INITIAL_TABLE_SIZE);
  #interests = new Uint8Array(INITIAL_TABLE_SIZE);
  #fdGens = new Uint32Array(INITIAL_TABLE_SIZE);
  #nextGen = 1;
  // Dense registrations.
  #slotFds = new Int32Array(INITIAL_TABLE_SIZE);
  #slotEvents = new Uint16Array(INITIAL_TABLE_SIZE);
  #count = 0;
  #version = 0;

  #sync = makePollBuffers(0);
  #async = makePollBuffers(0);
  #one = new Uint8Array([1]);
  #drain = new Uint8Array(DRAIN_BYTES);

  constructor(lib: PollLibrary, platform: PollPlatform, os: string) {
    this.#lib = lib;
    this.#platform = platform;
    this.#os = os;
    const s = lib.symbols;
    const pair = new Int32Array(2);
    const bytes = new Uint8Array(pair.buffer);
    const flags = platform.pipe2Flags;
    const result = flags !== null && s.pipe2 !== null ? s.pipe2(bytes, flags) : s.pipe(bytes);
    if (result < 0) throw this.#errnoError(flags !== null ? "pipe2" : "pipe");
    this.#wakeRead = pair[0];
    this.#wakeWrite = pair[1];
  }

  get closed(): boolean {
    return this.#closed;
  }

  register(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "register an fd");
    checkToken(token, "register an fd");
    checkInterest(interest, "register an fd");
    this.#checkOpen("poll");
    if (!inRange) throw this.#codeError("poll", POSIX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (this.#slotOf(fd) !== 0) {
      throw this.#codeError(
        "poll",
        POSIX_ERRNO.EEXIST,
        `fd ${fd} is already registered (use modify)`,
      );
    }
    // poll() would only say POLLNVAL later; check now, like epoll_ctl does.
    // `| 0`: the FFI's i32 refuses -0, an fd the checks accept as 0.
    if (this.#lib.symbols.fcntl(fd | 0, F_GETFD) < 0) {
      throw this.#errnoError("fcntl", `cannot register fd ${fd}`);
    }
    this.#ensureFdTable(fd);
    this.#ensureSlots(this.#count + 1);
    const slot = this.#count++;
    this.#slotFds[slot] = fd;
    this.#slotEvents[slot] = interestToPoll(interest, this.#platform.rdhup);
    this.#fdSlot[fd] = slot + 1;
    this.#tokens[fd] = token;
    this.#interests[fd] = interest;
    this.#fdGens[fd] = this.#nextGen;
    this.#nextGen = this.#nextGen === 0xffffffff ? 1 : this.#nextGen + 1;
    this.#changed();
  }

  modify(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "modify an fd");
    checkToken(token, "modify an fd");
    checkInterest(interest, "modify an fd");
    this.#checkOpen("poll");
    if (!inRange) throw this.#codeError("poll", POSIX_ERRNO.EBADF, `fd ${fd} is not valid`);
    const slot = this.#slotOf(fd);
    if (slot === 0) {
      throw this.#codeError("poll", POSIX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
    this.#slotEvents[slot - 1] = interestToPoll(interest, this.#platform.rdhup);
    this.#tokens[fd] = token;
    this.#interests[fd] = interest;
    this.#changed();
  }

  unregister(fd: number): void {
    const inRange = checkFd(fd, "unregister an fd");
    this.#checkOpen("poll");
    if (!inRange) throw this.#codeError("poll", POSIX_ERRNO.EBADF, `fd ${fd} is not valid`);
    const slot = this.#slotOf(fd);
    if (slot === 0) {
      throw this.#codeError("poll", POSIX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
    const last = --this.#count;
    const index = slot - 1;
    if (index !== last) {
      const moved = this.#slotFds[last];
      this.#slotFds[index] = moved;
      this.#slotEvents[index] = this.#slotEvents[last];
      this.#fdSlot[moved] = slot;
    }
    this.#fdSlot[fd] = 0;
    this.#interests[fd] = 0;
    this.#changed();
  }

  supports(fd: number, interest: number): boolean {
    checkInterest(interest, "check support");
    this.#checkOpen("fcntl");
    if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) return false;
    // poll(2) accepts any open fd (regular files simply always poll ready).
    return this.#lib.symbols.fcntl(fd | 0, F_GETFD) >= 0; // -0 is fd 0 (i32 refuses -0)
  }

  wait(batch: EventBatch, timeoutMs: number): number {
    checkBatch(batch);
    const ms = normaliseTimeout(timeoutMs);
    this.#checkOpen("poll");
    const buffers = this.#build(this.#sync);
    this.#sync = buffers;
    const n = this.#lib.symbols.poll(buffers.bytes, buffers.nfdsBig, wholeMsTimeout(ms));
    if (n < 0) {
      const errno = lastErrno(this.#lib);
      batch.length = 0;
      if (errno === POSIX_ERRNO.EINTR) return 0;
      throw this.#codeError("poll", errno);
    }
    // A parked waitAsync must drain the waker itself (see the epoll backend for why).
    return this.#decode(buffers, n, batch, this.#parked === null);
  }

  waitAsync(batch: EventBatch, timeoutMs: number): Promise<number> {
    let ms: number;
    try {
      checkBatch(batch);
      ms = normaliseTimeout(timeoutMs);
      this.#checkOpen("poll");
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
    const parked = this.#park(batch, ms);
    this.#parked = parked;
    return parked;
  }

  async #park(batch: EventBatch, ms: number): Promise<number> {
    const deadline = ms < 0 ? Infinity : performance.now() + ms;
    let timeout = wholeMsTimeout(ms);
    try {
      for (;;) {
        const buffers = this.#build(this.#async);
        this.#async = buffers;
        const version = buffers.version;
        const n = await this.#lib.symbols.poll_async(buffers.bytes, buffers.nfdsBig, timeout);
        if (this.#closed || n < 0) {
          // errno of the pool thread is out of reach: a failed off-thread wait is spurious.
          batch.length = 0;
          return 0;
        }
        const woken = this.#userWake;
        const count = this.#decode(buffers, n, batch, true);
        // Return on events, on timeout (n === 0), or on the caller's wake(); retry only when an
        // internal wake (a registration change) cut the wait short.
        if (count > 0 || n === 0 || woken) {
          this.#userWake = false;
          return count;
        }
        if (!this.#sawWaker && version === this.#version) return 0;
        if (deadline !== Infinity) {
          const leftMs = deadline - performance.now();
          if (leftMs <= 0) return 0;
          timeout = wholeMsTimeout(leftMs);
        }
      }
    } finally {
      this.#parked = null;
    }
  }

  wake(): void {
    if (this.#released) return;
    this.#userWake = true;
    this.#signal();
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
      this.#signal();
      await parked.catch(() => {});
    }
    this.#released = true;
    const s = this.#lib.symbols;
    s.close(this.#wakeRead);
    s.close(this.#wakeWrite);
    this.#lib.close();
  }

  /** Writes the wake byte unless one is already in flight (so the pipe never fills or blocks). */
  #signal(): void {
    if (this.#released || this.#wakePending) return;
    this.#wakePending = true;
    this.#lib.symbols.write(this.#wakeWrite, this.#one, 1n);
  }

  #changed(): void {
    this.#version++;
    if (this.#parked !== null) this.#signal();
  }

  /** `buffers` if current, else rebuilt in place, or a grown copy when too small. */
  #build(buffers: PollBuffers): PollBuffers {
    if (buffers.version === this.#version) return buffers;
    const nfds = this.#count + 1;
    if (buffers.capacity < nfds) {
      buffers = makePollBuffers(Math.max(nfds, buffers.capacity * 2, 16));
    }
    const fds = buffers.fds;
    const shorts = buffers.shorts;
    const gens = buffers.gens;
    fds[0] = this.#wakeRead;
    shorts[2] = POLLIN;
    shorts[3] = 0;
    for (let slot = 0; slot < this.#count; slot++) {
      const fd = this.#slotFds[slot];
      const at = slot + 1;
      fds[at * 2] = fd;
      shorts[at * 4 + 2] = this.#slotEvents[slot];
      shorts[at * 4 + 3] = 0;
      gens[at] = this.#fdGens[fd];
    }
    buffers.nfds = nfds;
    buffers.nfdsBig = BigInt(nfds);
    buffers.version = this.#version;
    return buffers;
  }

  #decode(buffers: PollBuffers, n: number, batch: EventBatch, mayDrain: boolean): number {
    const fds = buffers.fds;
    const shorts = buffers.shorts;
    const gens = buffers.gens;
    const rdhup = this.#platform.rdhup;
    const tokens = batch.tokens;
    const readiness = batch.readiness;
    const capacity = batch.capacity;
    let remaining = n;
    let count = 0;
    const sawWaker = shorts[3] !== 0;
    if (sawWaker) remaining--;
    const userSlots = buffers.nfds - 1;
    if (remaining > 0 && userSlots > 0) {
      let i = this.#cursor < userSlots ? this.#cursor : 0;
      for (let k = 0; k < userSlots && remaining > 0; k++, i = i + 1 === userSlots ? 0 : i + 1) {
        const at = i + 1;
        const revents = shorts[at * 4 + 3];
        if (revents === 0) continue;
        remaining--;
        const fd = fds[at * 2];
        if (fd >= this.#interests.length) continue;
        const interest = this.#interests[fd];
        // Stale: unregistered (or replaced) since this array was built.
        if (interest === 0 || this.#fdGens[fd] !== gens[at]) continue;
        const ready = pollToReadiness(revents, rdhup) & (interest | HANGUP | ERROR);
        if (ready === 0) continue;
        if (count === capacity) {
          // Level-triggered: the rest are reported again; start there next time.
          this.#cursor = i;
          break;
        }
        tokens[count] = this.#tokens[fd];
        readiness[count] = ready;
        count++;
      }
    }
    this.#sawWaker = sawWaker;
    if (sawWaker && mayDrain) {
      this.#wakePending = false;
      this.#userWake = false;
      this.#lib.symbols.read(this.#wakeRead, this.#drain, DRAIN_BYTES_BIG);
    }
    batch.length = count;
    return count;
  }

  #slotOf(fd: number): number {
    return fd < this.#fdSlot.length ? this.#fdSlot[fd] : 0;
  }

  #ensureFdTable(fd: number): void {
    if (fd < this.#fdSlot.length) return;
    let size = this.#fdSlot.length * 2;
    while (size <= fd) size *= 2;
    const fdSlot = new Int32Array(size);
    fdSlot.set(this.#fdSlot);
    const tokens = new Uint32Array(size);
    tokens.set(this.#tokens);
    const interests = new Uint8Array(size);
    interests.set(this.#interests);
    const fdGens = new Uint32Array(size);
    fdGens.set(this.#fdGens);
    this.#fdSlot = fdSlot;
    this.#tokens = tokens;
    this.#interests = interests;
    this.#fdGens = fdGens;
  }

  #ensureSlots(count: number): void {
    if (count <= this.#slotFds.length) return;
    const size = Math.max(count, this.#slotFds.length * 2);
    const slotFds = new Int32Array(size);
    slotFds.set(this.#slotFds);
    const slotEvents = new Uint16Array(size);
    slotEvents.set(this.#slotEvents);
    this.#slotFds = slotFds;
    this.#slotEvents = slotEvents;
  }

  #checkOpen(syscall: string): void {
    if (this.#closed) throw this.#codeError(syscall, POSIX_ERRNO.EBADF, "the poller is closed");
  }

  #errnoError(syscall: string, detail?: string): PollerError {
    return this.#codeError(syscall, lastErrno(this.#lib), detail);
  }

  #codeError(syscall: string, errno: number, detail?: string): PollerError {
    return new PollerError(syscall, errno, errnoName(errno, this.#os), { detail });
  }
}

/** Opens the C library and makes a poll(2) poller for the running OS. */
export function createPollPoller(): Poller {
  const os = Deno.build.os;
  const platform = pollPlatform(os);
  if (platform === undefined) {
    throw new RangeError(
      `Cannot create a poll(2) poller as the OS has no poll backend: current value is ${os}`,
    );
  }
  const lib = openPollLibrary(platform);
  try {
    return new PollPoller(lib, platform, os);
  } catch (error) {
    lib.close();
    throw error;
  }
}
