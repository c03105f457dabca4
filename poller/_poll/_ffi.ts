// The only dlopen table of the poll(2) backend, with the per-OS facts it needs. Opened lazily by
// the factory, never at import.
import { POLLRDHUP_LINUX } from "./_layout.ts";

/** What differs between the POSIX systems for this backend. */
export interface PollPlatform {
  /** The C library to open. */
  readonly libc: string;
  /** The function returning the calling thread's `&errno`. */
  readonly errnoSymbol: string;
  /** `O_NONBLOCK | O_CLOEXEC` for `pipe2`, or `null` where there is no `pipe2` (macOS). */
  readonly pipe2Flags: number | null;
  /** The POLLRDHUP bit, or 0 where the OS has none. */
  readonly rdhup: number;
}

/**
 * Per-OS facts. `nfds_t` is `unsigned long` on Linux and `unsigned int` elsewhere; it is passed as
 * a 64-bit `usize` everywhere, which is ABI-safe on x86_64 and aarch64 (a callee taking 32 bits
 * reads the low half of the same register).
 */
const PLATFORMS: Readonly<Record<string, PollPlatform>> = Object.freeze({
  linux: Object.freeze({
    libc: "libc.so.6",
    errnoSymbol: "__errno_location",
    pipe2Flags: 0o4000 | 0o2000000,
    rdhup: POLLRDHUP_LINUX,
  }),
  // No pipe2 on macOS: a plain pipe(). Making it non-blocking/close-on-exec would need fcntl(),
  // which is variadic (its third argument goes on the stack on Apple arm64, which Deno's FFI
  // cannot express), so the backend is written not to need O_NONBLOCK: at most one wake byte is
  // ever in flight and it is read only after poll() said it is there.
  darwin: Object.freeze({
    // An absolute path: dyld searches /usr/lib for a bare leaf name only on behalf of binaries
    // built before 2022 (dlopen's requestorNeedsFallbacks), and Deno is newer.
    libc: "/usr/lib/libSystem.B.dylib",
    errnoSymbol: "__error",
    pipe2Flags: null,
    rdhup: 0,
  }),
  freebsd: Object.freeze({
    libc: "libc.so.7",
    errnoSymbol: "__error",
    pipe2Flags: 0x4 | 0x100000,
    rdhup: 0,
  }),
  netbsd: Object.freeze({
    libc: "libc.so.12",
    errnoSymbol: "__errno",
    pipe2Flags: 0x4 | 0x400000,
    rdhup: 0,
  }),
  openbsd: Object.freeze({
    libc: "libc.so",
    errnoSymbol: "__errno",
    pipe2Flags: 0x4 | 0x10000,
    rdhup: 0,
  }),
});

/** The platform facts for `os` (a `Deno.build.os` value), or `undefined` without poll support. */
export function pollPlatform(os: string): PollPlatform | undefined {
  return Object.hasOwn(PLATFORMS, os) ? PLATFORMS[os] : undefined;
}

/** `fcntl(fd, F_GETFD)`: the same command number (1) everywhere; a cheap "is this fd open". */
export const F_GETFD = 1;

function symbolsFor(platform: PollPlatform) {
  return {
    poll: { parameters: ["buffer", "usize", "i32"], result: "i32" },
    poll_async: {
      name: "poll",
      parameters: ["buffer", "usize", "i32"],
      result: "i32",
      nonblocking: true,
    },
    pipe: { parameters: ["buffer"], result: "i32" },
    pipe2: { parameters: ["buffer", "i32"], result: "i32", optional: true },
    // Declared with two parameters: F_GETFD takes no variadic argument, so this is ABI-safe.
    fcntl: { parameters: ["i32", "i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    errno_location: { name: platform.errnoSymbol, parameters: [], result: "pointer" },
  } as const;
}

/** The opened poll library. */
export type PollLibrary = Deno.DynamicLibrary<ReturnType<typeof symbolsFor>>;

/** Opens the platform's C library with the poll symbols (throws what `Deno.dlopen` throws). */
export function openPollLibrary(platform: PollPlatform): PollLibrary {
  return Deno.dlopen(platform.libc, symbolsFor(platform));
}

/** Reads the calling thread's errno. Only meaningful right after a failed synchronous call. */
export function lastErrno(lib: PollLibrary): number {
  const location = lib.symbols.errno_location();
  return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32(0);
}
