// Test-only Linux fd helpers over FFI (their own libc handle, opened on first use): pipes,
// socketpairs, eventfd, timerfd, regular files, raw read/write/close. Plain fd numbers in and
// out; an FdScope closes whatever a test opened, even when the test fails.

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const O_RDONLY = 0;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const CLOCK_MONOTONIC = 1;
const F_GETFL = 3;
const F_SETFL = 4;
/** Linux EAGAIN (== EWOULDBLOCK). */
export const EAGAIN = 11;

const SYMBOLS = {
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  timerfd_create: { parameters: ["i32", "i32"], result: "i32" },
  timerfd_settime: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // fcntl is variadic; on x86_64/aarch64 Linux an int third argument travels in a register either way.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/** The test libc handle (opened once per test process; Deno does not track it as a resource). */
export function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  library ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return library.symbols;
}

/** errno of the calling thread, right after a failed call. */
export function errno(): number {
  const location = libc().__errno_location();
  return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32(0);
}

function check(result: number | bigint, what: string): number {
  const n = Number(result);
  if (n < 0) throw new Error(`${what} failed: errno ${errno()}`);
  return n;
}

/** A non-blocking, close-on-exec pipe: `[readFd, writeFd]`. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check(libc().pipe2(new Uint8Array(fds.buffer), O_NONBLOCK | O_CLOEXEC), "pipe2");
  return [fds[0], fds[1]];
}

/** A connected, non-blocking AF_UNIX stream socketpair: `[a, b]`. */
export function socketpair(): [number, number] {
  const fds = new Int32Array(2);
  check(
    libc().socketpair(AF_UNIX, SOCK_STREAM | O_NONBLOCK | O_CLOEXEC, 0, new Uint8Array(fds.buffer)),
    "socketpair",
  );
  return [fds[0], fds[1]];
}

/** A non-blocking eventfd with counter `initial`. */
export function eventfd(initial = 0): number {
  return check(libc().eventfd(initial, O_NONBLOCK | O_CLOEXEC), "eventfd");
}

/** A non-blocking CLOCK_MONOTONIC timerfd (disarmed). */
export function timerfd(): number {
  return check(libc().timerfd_create(CLOCK_MONOTONIC, O_NONBLOCK | O_CLOEXEC), "timerfd_create");
}

/** Arms a timerfd to expire after `valueMs` (then every `intervalMs`; 0 = once). */
export function timerfdSet(fd: number, valueMs: number, intervalMs = 0): void {
  const spec = new BigInt64Array(4); // struct itimerspec { it_interval, it_value }
  spec[0] = BigInt(Math.floor(intervalMs / 1000));
  spec[1] = BigInt(Math.round((intervalMs % 1000) * 1e6));
  spec[2] = BigInt(Math.floor(valueMs / 1000));
  spec[3] = BigInt(Math.round((valueMs % 1000) * 1e6));
  check(libc().timerfd_settime(fd, 0, new Uint8Array(spec.buffer), null), "timerfd_settime");
}

/** Reads up to `max` bytes: the bytes (empty at EOF), or `null` when it would block. */
export function read(fd: number, max = 4096): Uint8Array | null {
  const buffer = new Uint8Array(max);
  const n = Number(libc().read(fd, buffer, BigInt(max)));
  if (n < 0) {
    const code = errno();
    if (code === EAGAIN) return null;
    throw new Error(`read(${fd}) failed: errno ${code}`);
  }
  return buffer.subarray(0, n);
}

/** Reads until it would block (or EOF); returns how many bytes were read. */
export function drain(fd: number): number {
  let total = 0;
  for (;;) {
    const chunk = read(fd, 65536);
    if (chunk === null || chunk.length === 0) return total;
    total += chunk.length;
  }
}

/** Writes `bytes`; returns the count written, or -1 when it would block. */
export function write(fd: number, bytes: Uint8Array | string): number {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const n = Number(libc().write(fd, data, BigInt(data.length)));
  if (n < 0) {
    const code = errno();
    if (code === EAGAIN) return -1;
    throw new Error(`write(${fd}) failed: errno ${code}`);
  }
  return n;
}

/** Closes `fd` (throws on failure, e.g. EBADF for an fd already closed). */
export function close(fd: number): void {
  check(libc().close(fd), `close(${fd})`);
}

/**
 * Opens `path` read-only (a regular file, for "epoll refuses regular files"; or a FIFO, where
 * `nonblocking` keeps open() from waiting for a writer).
 */
export function openFile(path: string, options: { nonblocking?: boolean } = {}): number {
  const cPath = new TextEncoder().encode(path + "\0");
  const flags = O_RDONLY | O_CLOEXEC | (options.nonblocking ? O_NONBLOCK : 0);
  return check(libc().open(cPath, flags, 0), `open(${path})`);
}

/** Sets O_NONBLOCK on `fd`. */
export function setNonblocking(fd: number): void {
  const flags = check(libc().fcntl(fd, F_GETFL, 0), "fcntl(F_GETFL)");
  check(libc().fcntl(fd, F_SETFL, flags | O_NONBLOCK), "fcntl(F_SETFL)");
}

/** `shutdown(fd, SHUT_WR)`: half-closes a socket (the peer sees EOF/RDHUP). */
export function shutdownWrite(fd: number): void {
  check(libc().shutdown(fd, 1), "shutdown");
}

/**
 * Tracks the fds a test opens and closes the ones still open at the end (`using scope = new
 * FdScope()`), so a failing assertion does not leak fds into the next test.
 */
export class FdScope {
  #open = new Set<number>();

  /** Starts tracking `fd`; returns it. */
  track(fd: number): number {
    this.#open.add(fd);
    return fd;
  }

  /** A tracked pipe `[readFd, writeFd]`. */
  pipe(): [number, number] {
    const [r, w] = pipe();
    this.track(r);
    this.track(w);
    return [r, w];
  }

  /** A tracked socketpair. */
  socketpair(): [number, number] {
    const [a, b] = socketpair();
    this.track(a);
    this.track(b);
    return [a, b];
  }

  /** A tracked eventfd. */
  eventfd(initial = 0): number {
    return this.track(eventfd(initial));
  }

  /** A tracked timerfd. */
  timerfd(): number {
    return this.track(timerfd());
  }

  /** A tracked read-only regular file. */
  openFile(path: string): number {
    return this.track(openFile(path));
  }

  /** Closes a tracked fd now. */
  close(fd: number): void {
    if (!this.#open.delete(fd)) throw new Error(`fd ${fd} is not open in this scope`);
    close(fd);
  }

  /** Whether `fd` is still open in this scope. */
  isOpen(fd: number): boolean {
    return this.#open.has(fd);
  }

  /** Closes every fd still open. */
  [Symbol.dispose](): void {
    for (const fd of this.#open) libc().close(fd);
    this.#open.clear();
  }
}
