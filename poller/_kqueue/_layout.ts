/**
 * The one place that knows the kqueue ABI of each BSD: `struct kevent` layouts, filter and flag
 * values, libc names. Pure data and pure functions (no dlopen), so it is unit-tested on Linux.
 *
 * Sources: the `sys/event.h` of each system (xnu, FreeBSD 12+, OpenBSD 7.x, NetBSD 9/10).
 *
 * @module
 */

import { ERROR, HANGUP, PRIORITY, READABLE, WRITABLE } from "../types.ts";

/** Where the fields of `struct kevent` sit, in bytes (all targets are 64-bit little-endian). */
export interface KeventLayout {
  /** `sizeof(struct kevent)`. */
  readonly size: number;
  /** `uintptr_t ident` (8 bytes). */
  readonly ident: number;
  /** `filter`: `int16_t` on macOS/FreeBSD/OpenBSD, `uint32_t` on NetBSD. */
  readonly filter: number;
  /** Width of `filter` in bytes (2 = signed 16-bit, 4 = unsigned 32-bit). */
  readonly filterBytes: 2 | 4;
  /** `flags`: `uint16_t`, or `uint32_t` on NetBSD. */
  readonly flags: number;
  /** Width of `flags` in bytes. */
  readonly flagsBytes: 2 | 4;
  /** `uint32_t fflags`. */
  readonly fflags: number;
  /** `data` (`intptr_t`/`int64_t`, 8 bytes). */
  readonly data: number;
  /** `void *udata` (8 bytes). */
  readonly udata: number;
}

/** macOS (x86_64 and arm64) and OpenBSD: 32 bytes. */
const LAYOUT_32: KeventLayout = Object.freeze({
  size: 32,
  ident: 0,
  filter: 8,
  filterBytes: 2,
  flags: 10,
  flagsBytes: 2,
  fflags: 12,
  data: 16,
  udata: 24,
});

/** FreeBSD 12+: the 32-byte head of {@linkcode LAYOUT_32} plus `uint64_t ext[4]`: 64 bytes. */
const LAYOUT_FREEBSD: KeventLayout = Object.freeze({ ...LAYOUT_32, size: 64 });

/**
 * NetBSD (`__kevent50`, the layout NetBSD 6 to 10 all accept): `uint32_t filter, flags, fflags`,
 * 4 bytes of padding, then `int64_t data` and `udata`: 40 bytes. NetBSD 11 grew `ext[4]` (72 bytes)
 * behind a new `__kevent100`, and keeps `__kevent50` with this layout (`struct kevent100` in its
 * sys/compat/sys/event.h) for binary compatibility.
 */
const LAYOUT_NETBSD: KeventLayout = Object.freeze({
  size: 40,
  ident: 0,
  filter: 8,
  filterBytes: 4,
  flags: 12,
  flagsBytes: 4,
  fflags: 16,
  data: 24,
  udata: 32,
});

/** `EV_*` flags: the same values on every BSD. */
export const EV_ADD = 0x0001;
/** Remove the filter. */
export const EV_DELETE = 0x0002;
/** Enable the filter (implied by EV_ADD). */
export const EV_ENABLE = 0x0004;
/** Reset the state after delivery (used by the EVFILT_USER waker only: fd filters are level). */
export const EV_CLEAR = 0x0020;
/** Return a receipt (EV_ERROR, data = errno or 0) for every change instead of pending events. */
export const EV_RECEIPT = 0x0040;
/** Returned: `data` holds an errno. */
export const EV_ERROR = 0x4000;
/** Returned: end of file / peer gone; `fflags` may hold a socket error. */
export const EV_EOF = 0x8000;
/** `fflags` of an EVFILT_USER change that triggers it. */
export const NOTE_TRIGGER = 0x01000000;
/** `O_NONBLOCK`: the same on every BSD. */
export const O_NONBLOCK = 0x0004;

/** Everything OS-specific the kqueue backend needs. */
export interface KqueuePlatform {
  /** `Deno.build.os`. */
  readonly os: string;
  /** `struct kevent`. */
  readonly layout: KeventLayout;
  /** The C library to dlopen. */
  readonly libc: string;
  /** The `kevent` symbol (NetBSD renames it). */
  readonly keventSymbol: string;
  /** The function returning `&errno`. */
  readonly errnoSymbol: string;
  /** `EVFILT_READ`. */
  readonly EVFILT_READ: number;
  /** `EVFILT_WRITE`. */
  readonly EVFILT_WRITE: number;
  /** `EVFILT_EXCEPT` (out-of-band data, with `NOTE_OOB`), or `null` where there is none. */
  readonly EVFILT_EXCEPT: number | null;
  /** `NOTE_OOB` for EVFILT_EXCEPT. */
  readonly NOTE_OOB: number;
  /** `EVFILT_USER`, or `null` where there is none. */
  readonly EVFILT_USER: number | null;
  /**
   * `"always"`: EVFILT_USER exists on every supported release. `"probe"`: only on recent ones
   * (OpenBSD 7.8+, NetBSD 10+): try it at creation and fall back to a pipe.
   */
  readonly userFilter: "always" | "probe";
  /** `O_CLOEXEC` for `pipe2` (the pipe waker), `null` where no pipe waker is needed. */
  readonly O_CLOEXEC: number | null;
  /** `EOPNOTSUPP` (PRIORITY where there is no EVFILT_EXCEPT). */
  readonly EOPNOTSUPP: number;
}

/** The platforms, by `Deno.build.os`. */
export const KQUEUE_PLATFORMS: Readonly<Record<string, KqueuePlatform>> = Object.freeze({
  darwin: Object.freeze({
    os: "darwin",
    layout: LAYOUT_32,
    libc: "/usr/lib/libSystem.B.dylib",
    keventSymbol: "kevent",
    errnoSymbol: "__error",
    EVFILT_READ: -1,
    EVFILT_WRITE: -2,
    EVFILT_EXCEPT: -15,
    NOTE_OOB: 0x0002,
    EVFILT_USER: -10,
    userFilter: "always",
    O_CLOEXEC: null,
    EOPNOTSUPP: 102,
  }),
  freebsd: Object.freeze({
    os: "freebsd",
    layout: LAYOUT_FREEBSD,
    libc: "libc.so.7",
    keventSymbol: "kevent", // the default version is the 64-byte FBSD_1.5 one
    errnoSymbol: "__error",
    EVFILT_READ: -1,
    EVFILT_WRITE: -2,
    EVFILT_EXCEPT: null,
    NOTE_OOB: 0,
    EVFILT_USER: -11,
    userFilter: "always",
    O_CLOEXEC: 0x00100000,
    EOPNOTSUPP: 45,
  }),
  openbsd: Object.freeze({
    os: "openbsd",
    layout: LAYOUT_32,
    libc: "libc.so", // ld.so picks the installed libc.so.MAJOR.MINOR
    keventSymbol: "kevent",
    errnoSymbol: "__errno",
    EVFILT_READ: -1,
    EVFILT_WRITE: -2,
    EVFILT_EXCEPT: -9,
    NOTE_OOB: 0x0004,
    EVFILT_USER: -10,
    userFilter: "probe",
    O_CLOEXEC: 0x10000,
    EOPNOTSUPP: 45,
  }),
  netbsd: Object.freeze({
    os: "netbsd",
    layout: LAYOUT_NETBSD,
    libc: "libc.so.12",
    keventSymbol: "__kevent50",
    errnoSymbol: "__errno",
    EVFILT_READ: 0,
    EVFILT_WRITE: 1,
    EVFILT_EXCEPT: null,
    NOTE_OOB: 0,
    EVFILT_USER: 8,
    userFilter: "probe",
    O_CLOEXEC: 0x00400000,
    EOPNOTSUPP: 45,
  }),
});

/** The platform for `os`/`arch`, or `undefined` when kqueue is not supported there. */
export function kqueuePlatform(os: string, arch: string): KqueuePlatform | undefined {
  if (arch !== "x86_64" && arch !== "aarch64") return undefined;
  return Object.hasOwn(KQUEUE_PLATFORMS, os) ? KQUEUE_PLATFORMS[os] : undefined;
}

/** The fields of one `struct kevent`, as plain numbers (ident and udata as 32-bit halves). */
export interface Kevent {
  /** The fd (or EVFILT_USER id); fds fit in 32 bits. */
  ident: number;
  /** Filter value (negative on macOS/FreeBSD/OpenBSD). */
  filter: number;
  /** `EV_*` flags. */
  flags: number;
  /** Filter flags. */
  fflags: number;
  /** Low 32 bits of `data`, signed (an errno for EV_ERROR). */
  data: number;
  /** Low 32 bits of `udata`: the registration generation. */
  udataLow: number;
  /** High 32 bits of `udata`. */
  udataHigh: number;
}

/** Writes `event` as entry `index` of `view`, zeroing the whole entry first (FreeBSD's `ext`). */
export function encodeKevent(
  view: DataView,
  index: number,
  layout: KeventLayout,
  event: Kevent,
): void {
  const base = index * layout.size;
  for (let i = 0; i < layout.size; i += 4) view.setUint32(base + i, 0, true);
  view.setUint32(base + layout.ident, event.ident >>> 0, true);
  if (layout.filterBytes === 2) view.setInt16(base + layout.filter, event.filter, true);
  else view.setUint32(base + layout.filter, event.filter >>> 0, true);
  if (layout.flagsBytes === 2) view.setUint16(base + layout.flags, event.flags, true);
  else view.setUint32(base + layout.flags, event.flags >>> 0, true);
  view.setUint32(base + layout.fflags, event.fflags >>> 0, true);
  view.setInt32(base + layout.data, event.data, true);
  view.setInt32(base + layout.data + 4, event.data < 0 ? -1 : 0, true);
  view.setUint32(base + layout.udata, event.udataLow >>> 0, true);
  view.setUint32(base + layout.udata + 4, event.udataHigh >>> 0, true);
}

/** Reads the filter of entry `index`. */
export function keventFilter(view: DataView, index: number, layout: KeventLayout): number {
  const at = index * layout.size + layout.filter;
  return layout.filterBytes === 2 ? view.getInt16(at, true) : view.getUint32(at, true);
}

/** Reads the flags of entry `index`. */
export function keventFlags(view: DataView, index: number, layout: KeventLayout): number {
  const at = index * layout.size + layout.flags;
  return layout.flagsBytes === 2 ? view.getUint16(at, true) : view.getUint32(at, true);
}

/** Reads entry `index` into `out` (reused by callers: no allocation). */
export function decodeKevent(
  view: DataView,
  index: number,
  layout: KeventLayout,
  out: Kevent,
): Kevent {
  const base = index * layout.size;
  out.ident = view.getUint32(base + layout.ident, true);
  out.filter = keventFilter(view, index, layout);
  out.flags = keventFlags(view, index, layout);
  out.fflags = view.getUint32(base + layout.fflags, true);
  out.data = view.getInt32(base + layout.data, true);
  out.udataLow = view.getUint32(base + layout.udata, true);
  out.udataHigh = view.getUint32(base + layout.udata + 4, true);
  return out;
}

/** The filters (with their `fflags`) that implement an interest, in a fixed order. */
export function filtersFor(
  interest: number,
  platform: KqueuePlatform,
): { filter: number; fflags: number; bit: number }[] {
  const filters = [];
  if (interest & READABLE) filters.push({ filter: platform.EVFILT_READ, fflags: 0, bit: READABLE });
  if (interest & WRITABLE) {
    filters.push({ filter: platform.EVFILT_WRITE, fflags: 0, bit: WRITABLE });
  }
  if ((interest & PRIORITY) && platform.EVFILT_EXCEPT !== null) {
    filters.push({ filter: platform.EVFILT_EXCEPT, fflags: platform.NOTE_OOB, bit: PRIORITY });
  }
  return filters;
}

/**
 * The readiness one returned event means: its filter's bit, HANGUP on EV_EOF (plus ERROR when
 * `fflags` carries a socket error), ERROR on EV_ERROR. Unknown filters give 0.
 *
 * EVFILT_EXCEPT gives PRIORITY only when the kernel returned NOTE_OOB in `fflags`: macOS runs it
 * through the socket read filter, which also fires it on EOF (then `fflags` is `so_error`), for a
 * listener's pending connections and for a pending socket error, none of which is urgent data.
 */
export function keventReadiness(
  filter: number,
  flags: number,
  fflags: number,
  platform: KqueuePlatform,
): number {
  let readiness: number;
  if (filter === platform.EVFILT_READ) readiness = READABLE;
  else if (filter === platform.EVFILT_WRITE) readiness = WRITABLE;
  else if (filter === platform.EVFILT_EXCEPT) {
    readiness = !(flags & EV_EOF) && (fflags & platform.NOTE_OOB) ? PRIORITY : 0;
  } else return 0;
  if (flags & EV_EOF) {
    readiness |= HANGUP;
    if (fflags !== 0) readiness |= ERROR;
  }
  if (flags & EV_ERROR) readiness |= ERROR;
  return readiness;
}

/** `struct timespec` on 64-bit BSDs: `time_t tv_sec; long tv_nsec;`, 16 bytes. */
export const TIMESPEC_SIZE = 16;

// The timespec encoding is shared by every backend with timespec timeouts.
export { writeTimespec } from "../_validate.ts";
