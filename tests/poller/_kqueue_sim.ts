// A simulated kqueue "kernel" for Linux tests: implements the KqueueLibrary the kqueue backend
// calls, speaking the `struct kevent` layout of a chosen BSD, over Linux poll(2). It lets the
// real KqueuePoller (registration bookkeeping, receipts and rollback, decoding, merging, stale
// masking, both wakers) run the shared suite here. It cannot tell whether the layouts match the
// real kernels: kqueue_layout_test.ts pins those against the BSD headers.
import * as fd from "../_fd.ts";
import type { KqueueLibrary } from "../../poller/_kqueue/_ffi.ts";
import {
  decodeKevent,
  encodeKevent,
  EV_ADD,
  EV_CLEAR,
  EV_DELETE,
  EV_EOF,
  EV_ERROR,
  EV_RECEIPT,
  type Kevent,
  type KqueuePlatform,
  NOTE_TRIGGER,
} from "../../poller/_kqueue/_layout.ts";

const POLLIN = 0x1;
const POLLPRI = 0x2;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
// BSD errno values the simulated kernel reports (EBADF, ENOENT, EINVAL match Linux too).
const ENOENT = 2;
const EBADF = 9;
const EINVAL = 22;

const POLL = {
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  poll_async: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const;

interface Knote {
  ident: number;
  filter: number;
  fflags: number;
  udataLow: number;
  udataHigh: number;
  clear: boolean;
  triggered: boolean;
}

interface SimQueue {
  /** An eventfd: the kq's fd number, and what wakes a wait to rescan after changes. */
  wake: number;
  knotes: Map<string, Knote>;
}

/** Options of the simulation. */
export interface SimOptions {
  /** Whether EVFILT_USER exists (false: an old OpenBSD/NetBSD, the pipe waker is used). */
  userFilter: boolean;
}

/** Counters a test can check. */
export interface SimStats {
  unloaded: boolean;
  openQueues: number;
  keventCalls: number;
}

/** A KqueueLibrary over Linux poll(2) for `platform`; close it with `dispose()`. */
export function simulatedKqueue(
  platform: KqueuePlatform,
  options: SimOptions,
): { lib: KqueueLibrary; stats: SimStats; dispose(): void } {
  const poll = Deno.dlopen("libc.so.6", POLL);
  const layout = platform.layout;
  const queues = new Map<number, SimQueue>();
  const stats: SimStats = { unloaded: false, openQueues: 0, keventCalls: 0 };
  let lastErrno = 0;
  const scratch: Kevent = {
    ident: 0,
    filter: 0,
    flags: 0,
    fflags: 0,
    data: 0,
    udataLow: 0,
    udataHigh: 0,
  };

  const isFdFilter = (filter: number) =>
    filter === platform.EVFILT_READ || filter === platform.EVFILT_WRITE ||
    (platform.EVFILT_EXCEPT !== null && filter === platform.EVFILT_EXCEPT);

  function fdIsOpen(number: number): boolean {
    const pfd = new Int32Array([number, 0]);
    poll.symbols.poll(new Uint8Array(pfd.buffer), 1n, 0);
    return (new Int16Array(pfd.buffer)[3] & POLLNVAL) === 0;
  }

  function poke(queue: SimQueue): void {
    fd.write(queue.wake, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
  }

  /** Applies one change; returns 0 or an errno. */
  function change(queue: SimQueue, ev: Kevent): number {
    const key = `${ev.ident}:${ev.filter}`;
    const isUser = platform.EVFILT_USER !== null && ev.filter === platform.EVFILT_USER;
    if (!isUser && !isFdFilter(ev.filter)) return EINVAL;
    if (isUser && !options.userFilter) return EINVAL;
    if (ev.flags & EV_DELETE) {
      if (!queue.knotes.delete(key)) return ENOENT;
      return 0;
    }
    if (ev.flags & EV_ADD) {
      if (!isUser && !fdIsOpen(ev.ident)) return EBADF;
      const knote = queue.knotes.get(key) ?? {
        ident: ev.ident,
        filter: ev.filter,
        fflags: 0,
        udataLow: 0,
        udataHigh: 0,
        clear: false,
        triggered: false,
      };
      knote.fflags = ev.fflags;
      knote.udataLow = ev.udataLow;
      knote.udataHigh = ev.udataHigh;
      knote.clear = (ev.flags & EV_CLEAR) !== 0;
      queue.knotes.set(key, knote);
      poke(queue);
      return 0;
    }
    const knote = queue.knotes.get(key);
    if (knote === undefined) return ENOENT;
    if (isUser && (ev.fflags & NOTE_TRIGGER)) {
      knote.triggered = true;
      poke(queue);
    }
    return 0;
  }

  /** The pollfd array for the queue's fd knotes plus its wake eventfd. */
  function pollSet(queue: SimQueue): { buffer: Uint8Array; count: number; fds: number[] } {
    const masks = new Map<number, number>();
    for (const knote of queue.knotes.values()) {
      if (!isFdFilter(knote.filter)) continue;
      let mask = masks.get(knote.ident) ?? 0;
      if (knote.filter === platform.EVFILT_READ) mask |= POLLIN;
      else if (knote.filter === platform.EVFILT_WRITE) mask |= POLLOUT;
      else mask |= POLLPRI;
      masks.set(knote.ident, mask);
    }
    const fds = [queue.wake, ...masks.keys()];
    const words = new Int32Array(fds.length * 2);
    const halves = new Int16Array(words.buffer);
    fds.forEach((number, i) => {
      words[2 * i] = number;
      halves[4 * i + 2] = i === 0 ? POLLIN : masks.get(number)!;
    });
    return { buffer: new Uint8Array(words.buffer), count: fds.length, fds };
  }

  /** Fills `events` from poll results (level-triggered); returns how many. */
  function collect(
    queue: SimQueue,
    set: { buffer: Uint8Array; fds: number[] },
    events: DataView,
    nevents: number,
  ): number {
    const halves = new Int16Array(set.buffer.buffer);
    const revents = new Map<number, number>();
    set.fds.forEach((number, i) => revents.set(number, halves[4 * i + 3]));
    fd.read(queue.wake, 8); // consume pokes
    let n = 0;
    for (const [key, knote] of [...queue.knotes]) {
      if (n === nevents) break;
      let flags = 0;
      let fflags = 0;
      let fire = false;
      if (!isFdFilter(knote.filter)) {
        fire = knote.triggered;
        if (fire && knote.clear) knote.triggered = false;
        if (knote.clear) flags |= EV_CLEAR;
      } else {
        const r = revents.get(knote.ident);
        if (r === undefined) continue; // added after this poll began: next round
        if (r & POLLNVAL) {
          queue.knotes.delete(key); // closed: BSD drops the knotes of a closed fd
          continue;
        }
        if (knote.filter === platform.EVFILT_READ) {
          fire = (r & (POLLIN | POLLHUP | POLLERR)) !== 0;
          if (r & (POLLHUP | POLLERR)) flags |= EV_EOF;
        } else if (knote.filter === platform.EVFILT_WRITE) {
          fire = (r & (POLLOUT | POLLHUP | POLLERR)) !== 0;
          if (r & (POLLHUP | POLLERR)) flags |= EV_EOF;
        } else if (r & POLLPRI) {
          fire = true; // EVFILT_EXCEPT: urgent data is reported with NOTE_OOB in fflags
          fflags = platform.NOTE_OOB;
        } else if (platform.os === "darwin" && (r & (POLLHUP | POLLERR))) {
          // xnu's EVFILT_EXCEPT is the socket read filter: it also fires on EOF, without NOTE_OOB.
          fire = true;
          flags |= EV_EOF;
        }
      }
      if (!fire) continue;
      // Like kqueue_scan: a returned level-triggered knote goes to the tail of the queue.
      queue.knotes.delete(key);
      queue.knotes.set(key, knote);
      scratch.ident = knote.ident;
      scratch.filter = knote.filter;
      scratch.flags = flags;
      scratch.fflags = fflags;
      scratch.data = 1;
      scratch.udataLow = knote.udataLow;
      scratch.udataHigh = knote.udataHigh;
      encodeKevent(events, n++, layout, scratch);
    }
    return n;
  }

  /** Applies the changelist; returns receipts written, or -1 (errno set). */
  function applyChanges(
    queue: SimQueue,
    changes: Uint8Array | null,
    nchanges: number,
    out: DataView | null,
    nevents: number,
  ): number {
    if (changes === null || nchanges === 0) return 0;
    const view = new DataView(changes.buffer, changes.byteOffset, changes.byteLength);
    let receipts = 0;
    for (let i = 0; i < nchanges; i++) {
      const ev = decodeKevent(view, i, layout, { ...scratch });
      const errno = change(queue, ev);
      if (errno !== 0 || (ev.flags & EV_RECEIPT)) {
        if (out !== null && receipts < nevents) {
          encodeKevent(out, receipts++, layout, { ...ev, flags: ev.flags | EV_ERROR, data: errno });
        } else if (errno !== 0) {
          lastErrno = errno;
          return -1;
        }
      }
    }
    return receipts;
  }

  function timeoutMs(timeout: Uint8Array | null): number {
    if (timeout === null) return -1;
    const words = new Int32Array(timeout.buffer, timeout.byteOffset, 4);
    return words[0] * 1000 + words[2] / 1e6;
  }

  function prepare(
    kq: number,
    changes: Uint8Array | null,
    nchanges: number,
    events: Uint8Array | null,
    nevents: number,
  ): { queue: SimQueue; out: DataView | null; receipts: number } | number {
    stats.keventCalls++;
    const queue = queues.get(kq);
    if (queue === undefined) {
      lastErrno = EBADF;
      return -1;
    }
    const out = events === null ? null : new DataView(events.buffer, events.byteOffset);
    const receipts = applyChanges(queue, changes, nchanges, out, nevents);
    return { queue, out, receipts };
  }

  const lib: KqueueLibrary = {
    kqueue() {
      const wake = fd.eventfd();
      queues.set(wake, { wake, knotes: new Map() });
      stats.openQueues++;
      return wake;
    },
    kevent(kq, changes, nchanges, events, nevents, timeout) {
      const ready = prepare(kq, changes, nchanges, events, nevents);
      if (typeof ready === "number") return ready;
      const { queue, out, receipts } = ready;
      if (receipts > 0 || out === null || nevents === 0) return receipts;
      const ms = timeoutMs(timeout);
      const deadline = performance.now() + ms;
      for (;;) {
        const set = pollSet(queue);
        const left = ms < 0 ? -1 : Math.max(0, Math.ceil(deadline - performance.now()));
        poll.symbols.poll(set.buffer, BigInt(set.count), left);
        const n = collect(queue, set, out, nevents);
        if (n > 0 || (ms >= 0 && performance.now() >= deadline)) return n;
      }
    },
    async keventAsync(kq, changes, nchanges, events, nevents, timeout) {
      const ready = prepare(kq, changes, nchanges, events, nevents);
      if (typeof ready === "number") return ready;
      const { queue, out, receipts } = ready;
      if (receipts > 0 || out === null || nevents === 0) return receipts;
      const ms = timeoutMs(timeout);
      const deadline = performance.now() + ms;
      for (;;) {
        const set = pollSet(queue);
        const left = ms < 0 ? -1 : Math.max(0, Math.ceil(deadline - performance.now()));
        await poll.symbols.poll_async(set.buffer, BigInt(set.count), left);
        if (!queues.has(kq)) return 0;
        const n = collect(queue, set, out, nevents);
        if (n > 0 || (ms >= 0 && performance.now() >= deadline)) return n;
      }
    },
    close(number) {
      const queue = queues.get(number);
      if (queue !== undefined) {
        queues.delete(number);
        stats.openQueues--;
      } else {
        for (const q of queues.values()) {
          for (const [key, knote] of q.knotes) {
            if (isFdFilter(knote.filter) && knote.ident === number) q.knotes.delete(key);
          }
        }
      }
      const result = fd.libc().close(number);
      if (result < 0) lastErrno = fd.errno();
      return result;
    },
    read(number, buffer, length) {
      return Number(fd.libc().read(number, buffer, BigInt(length)));
    },
    write(number, buffer, length) {
      return Number(fd.libc().write(number, buffer, BigInt(length)));
    },
    pipe2(fds) {
      const [r, w] = fd.pipe(); // Linux flags: nonblocking and close-on-exec, as asked
      new Int32Array(fds.buffer, fds.byteOffset, 2).set([r, w]);
      return 0;
    },
    errno: () => lastErrno,
    unload() {
      stats.unloaded = true;
    },
  };
  return { lib, stats, dispose: () => poll.close() };
}
