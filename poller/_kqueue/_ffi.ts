/**
 * The only `Deno.dlopen` table of the kqueue backend, opened lazily by
 * {@linkcode openKqueueLibrary} with the names of the running BSD.
 *
 * @module
 */

import type { KqueuePlatform } from "./_layout.ts";

/**
 * `kevent`'s counts are `int` on macOS/FreeBSD/OpenBSD and `size_t` on NetBSD. Declaring them
 * `usize` fits both ABIs (x86_64 and aarch64 pass either in a full register; an `int` callee
 * reads the low half) and Deno accepts plain numbers for them, so no BigInt is made per call.
 */
function symbols(platform: KqueuePlatform) {
  return {
    kqueue: { parameters: [], result: "i32" },
    kevent: {
      name: platform.keventSymbol,
      parameters: ["i32", "buffer", "usize", "buffer", "usize", "buffer"],
      result: "i32",
    },
    kevent_async: {
      name: platform.keventSymbol,
      parameters: ["i32", "buffer", "usize", "buffer", "usize", "buffer"],
      result: "i32",
      nonblocking: true,
    },
    close: { parameters: ["i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    // Only for the pipe waker (OpenBSD < 7.8, NetBSD < 10); absent on macOS.
    pipe2: { parameters: ["buffer", "i32"], result: "i32", optional: true },
    errno_location: { name: platform.errnoSymbol, parameters: [], result: "pointer" },
  } as const;
}

type Symbols = Deno.DynamicLibrary<ReturnType<typeof symbols>>["symbols"];

/** The calls the backend makes, typed with plain numbers for the counts. */
export interface KqueueLibrary {
  kqueue(): number;
  kevent(
    kq: number,
    changes: Uint8Array | null,
    nchanges: number,
    events: Uint8Array | null,
    nevents: number,
    timeout: Uint8Array | null,
  ): number;
  keventAsync(
    kq: number,
    changes: Uint8Array | null,
    nchanges: number,
    events: Uint8Array | null,
    nevents: number,
    timeout: Uint8Array | null,
  ): Promise<number>;
  close(fd: number): number;
  read(fd: number, buffer: Uint8Array, length: number): number;
  write(fd: number, buffer: Uint8Array, length: number): number;
  /** `null` where the libc has no `pipe2`. */
  pipe2: ((fds: Uint8Array, flags: number) => number) | null;
  /** The calling thread's `errno`: read it right after a failed synchronous call only. */
  errno(): number;
  /** Unloads the library. */
  unload(): void;
}

/** Opens the C library of `platform` and wraps the symbols the backend uses. */
export function openKqueueLibrary(platform: KqueuePlatform): KqueueLibrary {
  const lib = Deno.dlopen(platform.libc, symbols(platform));
  const s: Symbols = lib.symbols;
  // Numbers are passed for usize counts (see symbols()); the casts only silence the typings.
  const n = (value: number) => value as unknown as bigint;
  return {
    kqueue: () => s.kqueue(),
    kevent: (kq, changes, nchanges, events, nevents, timeout) =>
      s.kevent(kq, changes, n(nchanges), events, n(nevents), timeout),
    keventAsync: (kq, changes, nchanges, events, nevents, timeout) =>
      s.kevent_async(kq, changes, n(nchanges), events, n(nevents), timeout),
    close: (fd) => s.close(fd),
    read: (fd, buffer, length) => Number(s.read(fd, buffer, n(length))),
    write: (fd, buffer, length) => Number(s.write(fd, buffer, n(length))),
    pipe2: s.pipe2 === null ? null : (fds, flags) => s.pipe2!(fds, flags),
    errno() {
      const location = s.errno_location();
      return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32(0);
    },
    unload: () => lib.close(),
  };
}
