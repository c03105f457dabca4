/**
 * The BSD/macOS backend: kqueue with level-triggered EVFILT_READ/EVFILT_WRITE (and EVFILT_EXCEPT
 * with NOTE_OOB for PRIORITY where it exists), woken by an EVFILT_USER event, or by a pipe where
 * the system has no EVFILT_USER.
 *
 * A small fd-indexed table (token, interest, generation) masks events of fds that were
 * unregistered or modified while a wait was parked; the generation travels in `udata`. One fd
 * can return one event per filter: they are merged into one batch entry.
 *
 * Differences from epoll: HANGUP comes from EV_EOF on the filters the interest registered (a
 * WRITABLE-only registration learns of a hang-up when the write side reports EOF), and PRIORITY
 * needs EVFILT_EXCEPT (macOS, OpenBSD); elsewhere it is refused with EOPNOTSUPP.
 *
 * Not run on a real BSD yet: the logic runs on Linux against a simulated kernel
 * (tests/poller/kqueue_sim_test.ts) and the ABI values are pinned against the BSD headers
 * (tests/poller/kqueue_layout_test.ts).
 *
 * @module
 */

import { PollerError } from "../errors.ts";
import { errnoName, POSIX_ERRNO } from "../_errno.ts";
import { ERROR, type EventBatch, HANGUP, type Poller, PRIORITY, READABLE } from "../types.ts";
import { checkBatch, checkFd, checkInterest, checkToken, normaliseTimeout } from "../_validate.ts";
import type { KqueueLibrary } from "./_ffi.ts";
import {
  encodeKevent,
  EV_ADD,
  EV_CLEAR,
  EV_DELETE,
  EV_ENABLE,
  EV_ERROR,
  EV_RECEIPT,
  filtersFor,
  type Kevent,
  keventReadiness,
  type KqueuePlatform,
  NOTE_TRIGGER,
  O_NONBLOCK,
  TIMESPEC_SIZE,
  writeTimespec,
} from "./_layout.ts";

/** The generation reserved for the waker's events (never a registration's). */
const WAKER_GEN = 0xffffffff;
/** The EVFILT_USER ident of the waker (its own namespace: no clash with fds). */
const WAKER_IDENT = 0x5741;
const INITIAL_TABLE_SIZE = 64;
/** Filters per registration at most (READ, WRITE, EXCEPT). */
const MAX_FILTERS = 3;
const EINTR = POSIX_ERRNO.EINTR;

interface WaitBuffers {
  events: Uint8Array;
  view: DataView;
  capacity: number;
  timespec: Uint8Array;
  timespecWords: Int32Array;
}

function makeWaitBuffers(capacity: number, size: number): WaitBuffers {
  const events = new Uint8Array(capacity * size);
  const timespec = new Uint8Array(TIMESPEC_SIZE);
  return {
    events,
    view: new DataView(events.buffer),
    capacity,
    timespec,
    timespecWords: new Int32Array(timespec.buffer),
  };
}

/** The kqueue poller. Made by `createKqueuePoller` (or by tests, over a simulated library). */
export class KqueuePoller implements Poller {
  readonly backend = "kqueue" as const;
  #lib: KqueueLibrary;
  #platform: KqueuePlatform;
  #kq: number;
  /** The pipe waker's ends, or -1 when EVFILT_USER wakes. */
  #wakeRead = -1;
  #wakeWrite = -1;
  #closed = false;
  #released = false;
  #closing: Promise<void> | null = null;
  #parked: Promise<number> | null = null;
  #wakePending = false;

  // fd-indexed registration table. interest 0 = not registered.
  #interests = new Uint8Array(INITIAL_TABLE_SIZE);
  #tokens = new Uint32Array(INITIAL_TABLE_SIZE);
  #gens = new Uint32Array(INITIAL_TABLE_SIZE);
  /** Per fd: the decode pass that last reported it, and where, to merge filters. */
  #seenPass = new Uint32Array(INITIAL_TABLE_SIZE);
  #seenIndex = new Uint32Array(INITIAL_TABLE_SIZE);
  #pass = 0;
  #nextGen = 0;

  // Control calls: up to MAX_FILTERS changes and as many receipts; a zero timespec.
  #changes: Uint8Array;
  #changesView: DataView;
  #receipts: Uint8Array;
  #receiptsView: DataView;
  #zeroTimeout = new Uint8Array(TIMESPEC_SIZE);
  #scratch: Kevent = {
    ident: 0,
    filter: 0,
    flags: 0,
    fflags: 0,
    data: 0,
    udataLow: 0,
    udataHigh: 0,
  };
  #wakeChange: Uint8Array;
  #wakeByte = new Uint8Array([1]);
  #drainBuffer = new Uint8Array(64);

  #sync: WaitBuffers;
  #async: WaitBuffers;

  /** Takes ownership of `lib` (unloaded by close, or here if construction fails). */
  constructor(lib: KqueueLibrary, platform: KqueuePlatform) {
    this.#lib = lib;
    this.#platform = platform;
    const size = platform.layout.size;
    this.#changes = new Uint8Array(MAX_FILTERS * size);
    this.#changesView = new DataView(this.#changes.buffer);
    this.#receipts = new Uint8Array(MAX_FILTERS * size);
    this.#receiptsView = new DataView(this.#receipts.buffer);
    this.#sync = makeWaitBuffers(0, size);
    this.#async = makeWaitBuffers(0, size);
    this.#wakeChange = new Uint8Array(size);
    this.#kq = lib.kqueue();
    if (this.#kq < 0) {
      const error = this.#errnoError("kqueue");
      lib.unload();
      throw error;
    }
    try {
      this.#setUpWaker();
    } catch (error) {
      this.#closeWakerFds();
      lib.close(this.#kq);
      lib.unload();
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
    this.#checkOpen();
    if (!inRange) throw this.#codeError(POSIX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (this.#isRegistered(fd)) {
      throw this.#codeError(POSIX_ERRNO.EEXIST, `fd ${fd} is already registered (use modify)`);
    }
    this.#checkPriority(interest);
    const gen = this.#nextGen;
    this.#nextGen = gen + 1 >= WAKER_GEN ? 0 : gen + 1;
    const failure = this.#apply(fd, gen, interest, 0);
    if (failure !== 0) throw this.#codeError(failure, `cannot register fd ${fd}`);
    this.#ensureTable(fd);
    this.#interests[fd] = interest;
    this.#tokens[fd] = token;
    this.#gens[fd] = gen;
  }

  modify(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "modify an fd");
    checkToken(token, "modify an fd");
    checkInterest(interest, "modify an fd");
    this.#checkOpen();
    if (!inRange) throw this.#codeError(POSIX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (!this.#isRegistered(fd)) {
      throw this.#codeError(POSIX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
    this.#checkPriority(interest);
    const old = this.#interests[fd];
    if (old !== interest) {
      const failure = this.#apply(fd, this.#gens[fd], interest, old);
      if (failure !== 0) throw this.#codeError(failure, `cannot modify fd ${fd}`);
      this.#interests[fd] = interest;
    }
    this.#tokens[fd] = token; // the token lives here only: no kernel call for it
  }

  unregister(fd: number): void {
    const inRange = checkFd(fd, "unregister an fd");
    this.#checkOpen();
    if (!inRange) throw this.#codeError(POSIX_ERRNO.EBADF, `fd ${fd} is not valid`);
    if (!this.#isRegistered(fd)) {
      throw this.#codeError(POSIX_ERRNO.ENOENT, `fd ${fd} is not registered`);
    }
    // Forget it first: even if the kernel refuses (the fd was closed, which already dropped its
    // filters), no later wait may report it.
    const old = this.#interests[fd];
    this.#interests[fd] = 0;
    const failure = this.#apply(fd, this.#gens[fd], 0, old);
    if (failure !== 0) {
      throw this.#codeError(failure, `fd ${fd} was unregistered, but the kernel said`);
    }
  }

  supports(fd: number, interest: number): boolean {
    checkInterest(interest, "check support");
    this.#checkOpen();
    if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) return false;
    if ((interest & PRIORITY) && this.#platform.EVFILT_EXCEPT === null) return false;
    // Probe a scratch kqueue: the real one may already hold fd, and must not change.
    const scratch = this.#lib.kqueue();
    if (scratch < 0) throw this.#errnoError("kqueue");
    try {
      return this.#applyOn(scratch, fd, 0, interest, 0, false) === 0;
    } finally {
      this.#lib.close(scratch);
    }
  }

  wait(batch: EventBatch, timeoutMs: number): number {
    checkBatch(batch);
    const ms = normaliseTimeout(timeoutMs);
    this.#checkOpen();
    const buffers = this.#buffersFor(this.#sync, batch.capacity);
    let timespec: Uint8Array | null = null;
    if (ms >= 0) {
      writeTimespec(buffers.timespecWords, ms);
      timespec = buffers.timespec;
    }
    const n = this.#lib.kevent(this.#kq, null, 0, buffers.events, batch.capacity, timespec);
    if (n < 0) {
      const errno = this.#lib.errno();
      batch.length = 0;
      if (errno === EINTR) return 0;
      throw this.#codeError(errno);
    }
    return this.#decode(buffers, n, batch, true);
  }

  waitAsync(batch: EventBatch, timeoutMs: number): Promise<number> {
    let ms: number;
    try {
      checkBatch(batch);
      ms = normaliseTimeout(timeoutMs);
      this.#checkOpen();
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
    const buffers = this.#buffersFor(this.#async, batch.capacity);
    this.#async = buffers;
    let timespec: Uint8Array | null = null;
    if (ms >= 0) {
      writeTimespec(buffers.timespecWords, ms);
      timespec = buffers.timespec;
    }
    const parked = this.#lib.keventAsync(
      this.#kq,
      null,
      0,
      buffers.events,
      batch.capacity,
      timespec,
    ).then(
      (n) => {
        this.#parked = null;
        // errno of the pool thread is out of reach: a failed off-thread wait is a spurious wakeup.
        if (n < 0 || this.#closed) {
          batch.length = 0;
          return 0;
        }
        return this.#decode(buffers, n, batch, false);
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
    this.#trigger();
  }

  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closed = true;
      this.#closing = this.#release();
    }
    return this.#closing;
  }

  // --- internals -------------------------------------------------------------------------

  async #release(): Promise<void> {
    const parked = this.#parked;
    if (parked !== null) {
      this.wake();
      // Its result no longer matters; the thread must be out of kevent before the fds go.
      await parked.catch(() => {});
    }
    this.#released = true;
    this.#closeWakerFds();
    this.#lib.close(this.#kq);
    this.#lib.unload();
  }

  /** EVFILT_USER where the system has it (probed on OpenBSD/NetBSD), else a nonblocking pipe. */
  #setUpWaker(): void {
    const platform = this.#platform;
    const layout = platform.layout;
    if (platform.EVFILT_USER !== null) {
      const add = this.#scratch;
      add.ident = WAKER_IDENT;
      add.filter = platform.EVFILT_USER;
      add.flags = EV_ADD | EV_CLEAR | EV_RECEIPT;
      add.fflags = 0;
      add.data = 0;
      add.udataLow = WAKER_GEN;
      add.udataHigh = 0;
      encodeKevent(this.#changesView, 0, layout, add);
      const n = this.#lib.kevent(this.#kq, this.#changes, 1, this.#receipts, 1, this.#zeroTimeout);
      if (n < 0) throw this.#errnoError("kevent");
      const errno = this.#receiptErrno(0);
      if (errno === 0) {
        add.flags = 0;
        add.fflags = NOTE_TRIGGER;
        encodeKevent(new DataView(this.#wakeChange.buffer), 0, layout, add);
        return;
      }
      if (platform.userFilter === "always") throw this.#codeError(errno, "EVFILT_USER");
      // An older release without EVFILT_USER: fall back to the pipe.
    }
    const pipe2 = this.#lib.pipe2;
    if (pipe2 === null || platform.O_CLOEXEC === null) {
      throw this.#codeError(
        platform.EOPNOTSUPP,
        "no EVFILT_USER and no pipe2 for a waker",
        "EOPNOTSUPP",
      );
    }
    const fds = new Int32Array(2);
    if (pipe2(new Uint8Array(fds.buffer), O_NONBLOCK | platform.O_CLOEXEC) < 0) {
      throw this.#errnoError("pipe2");
    }
    this.#wakeRead = fds[0];
    this.#wakeWrite = fds[1];
    const failure = this.#applyOn(this.#kq, this.#wakeRead, WAKER_GEN, READABLE, 0, false);
    if (failure !== 0) throw this.#codeError(failure, "the waker pipe");
  }

  #closeWakerFds(): void {
    if (this.#wakeRead >= 0) this.#lib.close(this.#wakeRead);
    if (this.#wakeWrite >= 0) this.#lib.close(this.#wakeWrite);
    this.#wakeRead = this.#wakeWrite = -1;
  }

  #trigger(): void {
    if (this.#wakeWrite >= 0) {
      // EAGAIN means the pipe is full, i.e. a wake is pending anyway.
      this.#lib.write(this.#wakeWrite, this.#wakeByte, 1);
    } else {
      this.#lib.kevent(this.#kq, this.#wakeChange, 1, null, 0, this.#zeroTimeout);
    }
  }

  #checkPriority(interest: number): void {
    if ((interest & PRIORITY) && this.#platform.EVFILT_EXCEPT === null) {
      throw this.#codeError(
        this.#platform.EOPNOTSUPP,
        `PRIORITY needs EVFILT_EXCEPT, which ${this.#platform.os} lacks`,
        "EOPNOTSUPP",
      );
    }
  }

  /** Moves `fd` from the filters of `oldInterest` to those of `interest`; returns 0 or an errno. */
  #apply(fd: number, gen: number, interest: number, oldInterest: number): number {
    return this.#applyOn(this.#kq, fd, gen, interest, oldInterest, true);
  }

  /**
   * Adds the filters `interest` has and `oldInterest` lacks, then deletes the reverse, with one
   * receipt per change. If an add fails, every add that succeeded is undone and the first errno
   * returned. Delete failures are returned only when `reportDeletes` is set (unregistering a
   * closed fd fails with EBADF/ENOENT: its filters are gone already).
   */
  #applyOn(
    kq: number,
    fd: number,
    gen: number,
    interest: number,
    oldInterest: number,
    reportDeletes: boolean,
  ): number {
    const platform = this.#platform;
    const adds = filtersFor(interest & ~oldInterest, platform);
    const deletes = filtersFor(oldInterest & ~interest, platform);
    const added = this.#changeAll(kq, fd, gen, adds, EV_ADD | EV_ENABLE);
    if (added.errno !== 0) {
      const undo = adds.filter((_, i) => added.succeeded[i]);
      if (undo.length > 0) this.#changeAll(kq, fd, gen, undo, EV_DELETE);
      return added.errno;
    }
    if (deletes.length > 0) {
      const deleted = this.#changeAll(kq, fd, gen, deletes, EV_DELETE);
      if (deleted.errno !== 0 && reportDeletes) return deleted.errno;
    }
    return 0;
  }

  /**
   * Applies one change per filter with EV_RECEIPT (the kernel processes them all, each with its
   * own receipt); returns the first errno (0: none) and which changes succeeded.
   */
  #changeAll(
    kq: number,
    fd: number,
    gen: number,
    filters: { filter: number; fflags: number }[],
    flags: number,
  ): { errno: number; succeeded: boolean[] } {
    const succeeded = filters.map(() => false);
    if (filters.length === 0) return { errno: 0, succeeded };
    const layout = this.#platform.layout;
    const change = this.#scratch;
    for (let i = 0; i < filters.length; i++) {
      change.ident = fd;
      change.filter = filters[i].filter;
      change.flags = flags | EV_RECEIPT;
      change.fflags = filters[i].fflags;
      change.data = 0;
      change.udataLow = gen;
      change.udataHigh = 0;
      encodeKevent(this.#changesView, i, layout, change);
    }
    const n = this.#lib.kevent(
      kq,
      this.#changes,
      filters.length,
      this.#receipts,
      filters.length,
      this.#zeroTimeout,
    );
    if (n < 0) return { errno: this.#lib.errno(), succeeded };
    let first = 0;
    for (let i = 0; i < n; i++) {
      const errno = this.#receiptErrno(i);
      // Receipts come back in change order, one per change.
      if (errno === 0) succeeded[i] = true;
      else if (first === 0) first = errno;
    }
    return { errno: first, succeeded };
  }

  /** The errno a receipt carries (0: the change succeeded). */
  #receiptErrno(index: number): number {
    const layout = this.#platform.layout;
    const base = index * layout.size;
    const view = this.#receiptsView;
    const flags = layout.flagsBytes === 2
      ? view.getUint16(base + layout.flags, true)
      : view.getUint32(base + layout.flags, true);
    return flags & EV_ERROR ? view.getInt32(base + layout.data, true) : 0;
  }

  #decode(buffers: WaitBuffers, n: number, batch: EventBatch, sync: boolean): number {
    const platform = this.#platform;
    const layout = platform.layout;
    const view = buffers.view;
    const size = layout.size;
    const filterAt = layout.filter;
    const flagsAt = layout.flags;
    const shortFields = layout.filterBytes === 2;
    const interests = this.#interests;
    const gens = this.#gens;
    const tableSize = interests.length;
    const tokens = batch.tokens;
    const readiness = batch.readiness;
    const capacity = batch.capacity;
    const seenPass = this.#seenPass;
    const seenIndex = this.#seenIndex;
    const pass = this.#pass = this.#pass === 0xffffffff ? 1 : this.#pass + 1;
    let count = 0;
    let sawWaker = false;
    for (let i = 0, base = 0; i < n; i++, base += size) {
      const gen = view.getUint32(base + layout.udata, true);
      if (gen === WAKER_GEN) {
        sawWaker = true;
        continue;
      }
      const fd = view.getUint32(base + layout.ident, true);
      // Stale: unregistered (or unregistered and registered again) while this wait was parked.
      if (fd >= tableSize) continue;
      const interest = interests[fd];
      if (interest === 0 || gens[fd] !== gen) continue;
      const filter = shortFields ? view.getInt16(base + filterAt, true) : view.getUint32(
        base + filterAt,
        true,
      );
      const flags = shortFields ? view.getUint16(base + flagsAt, true) : view.getUint32(
        base + flagsAt,
        true,
      );
      const fflags = view.getUint32(base + layout.fflags, true);
      const ready = keventReadiness(filter, flags, fflags, platform) &
        (interest | HANGUP | ERROR);
      if (ready === 0) continue;
      if (seenPass[fd] === pass) {
        readiness[seenIndex[fd]] |= ready; // another filter of an fd already in the batch
        continue;
      }
      // Level-triggered: an event that does not fit is reported again by the next wait.
      if (count === capacity) continue;
      seenPass[fd] = pass;
      seenIndex[fd] = count;
      tokens[count] = this.#tokens[fd];
      readiness[count] = ready;
      count++;
    }
    if (sawWaker) this.#wakeSeen(sync);
    batch.length = count;
    return count;
  }

  /**
   * The waker fired. While an off-thread wait is parked a sync wait must not consume the wake
   * meant for it: re-arm the trigger (EVFILT_USER is EV_CLEAR) or leave the pipe undrained.
   */
  #wakeSeen(sync: boolean): void {
    if (sync && this.#parked !== null) {
      if (this.#wakeWrite < 0) this.#trigger();
      return;
    }
    this.#wakePending = false;
    if (this.#wakeRead >= 0) {
      while (this.#lib.read(this.#wakeRead, this.#drainBuffer, this.#drainBuffer.length) > 0) {
        // drain until EAGAIN
      }
    }
  }

  /**
   * The buffers for a batch of `capacity`, grown (once) to fit it. Never ask the kernel for more
   * events than the batch holds: kqueue moves every returned knote to the tail of its queue, so
   * dropping the surplus would drop the same knotes each time (starvation). Merging and the
   * waker only ever leave the batch short.
   */
  #buffersFor(buffers: WaitBuffers, capacity: number): WaitBuffers {
    const needed = capacity;
    if (buffers.capacity >= needed) return buffers;
    const grown = makeWaitBuffers(
      Math.max(needed, buffers.capacity * 2),
      this.#platform.layout.size,
    );
    if (buffers === this.#sync) this.#sync = grown;
    return grown;
  }

  #isRegistered(fd: number): boolean {
    return fd < this.#interests.length && this.#interests[fd] !== 0;
  }

  #ensureTable(fd: number): void {
    if (fd < this.#interests.length) return;
    let size = this.#interests.length * 2;
    while (size <= fd) size *= 2;
    const grow = <T extends Uint8Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old);
      return next;
    };
    this.#interests = grow(this.#interests, (n) => new Uint8Array(n));
    this.#tokens = grow(this.#tokens, (n) => new Uint32Array(n));
    this.#gens = grow(this.#gens, (n) => new Uint32Array(n));
    this.#seenPass = grow(this.#seenPass, (n) => new Uint32Array(n));
    this.#seenIndex = grow(this.#seenIndex, (n) => new Uint32Array(n));
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#codeError(POSIX_ERRNO.EBADF, "the poller is closed");
  }

  #errnoError(syscall: string, detail?: string): PollerError {
    const errno = this.#lib.errno();
    return new PollerError(syscall, errno, errnoName(errno, this.#platform.os), { detail });
  }

  #codeError(errno: number, detail?: string, code?: string): PollerError {
    return new PollerError("kevent", errno, code ?? errnoName(errno, this.#platform.os), {
      detail,
    });
  }
}
