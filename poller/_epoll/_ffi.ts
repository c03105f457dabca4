// The only dlopen table of the epoll backend. Opened lazily by the factory, never at import.

/** The glibc soname; epoll is Linux-only and Deno's Linux builds link glibc. */
export const LIBC_PATH = "libc.so.6";

const SYMBOLS = {
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // The sync wait and the off-thread wait are separate entries: the first runs on the calling
  // thread (fast call), the second on Deno's blocking pool and returns a Promise.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_wait_async: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // glibc >= 2.35 and Linux >= 5.11: a timespec timeout, so sub-ms waits do not round to 1 ms.
  epoll_pwait2: {
    parameters: ["i32", "buffer", "i32", "buffer", "pointer"],
    result: "i32",
    optional: true,
  },
  epoll_pwait2_async: {
    name: "epoll_pwait2",
    parameters: ["i32", "buffer", "i32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
    optional: true,
  },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  // PR_SET_TIMERSLACK: Linux pads a thread's timed waits by 50 µs by default; sub-ms waits want 1 ns.
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
} as const;

/** `prctl` option that sets the calling thread's timer slack (ns). */
export const PR_SET_TIMERSLACK = 29;

/** The opened epoll library. */
export type EpollLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Opens libc with the epoll symbols (throws what `Deno.dlopen` throws). */
export function openEpollLibrary(): EpollLibrary {
  return Deno.dlopen(LIBC_PATH, SYMBOLS);
}

/** Reads the calling thread's errno. Only meaningful right after a failed synchronous call. */
export function lastErrno(lib: EpollLibrary): number {
  const location = lib.symbols.__errno_location();
  return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32(0);
}
