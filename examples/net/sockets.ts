/**
 * A minimal nonblocking TCP socket layer over FFI, for the examples and tests only (the library
 * itself never opens sockets). It has its own `Deno.dlopen` of libc, opened on demand, never at
 * import time. Linux is implemented; other POSIX systems need a sibling of `_linux.ts`.
 *
 * Hot-path calls ({@linkcode NetLib.recvAt}, {@linkcode NetLib.sendAt}, {@linkcode NetLib.accept})
 * never throw and never allocate: they return a byte count or fd, or a negative errno
 * (`-lib.errno.EAGAIN` when the call would block).
 *
 * @example Echo one message over loopback
 * ```ts ignore
 * import { openNetLib } from "./sockets.ts";
 * using net = openNetLib();
 * const listenFd = net.listen("127.0.0.1", 0);
 * console.log("listening on", net.localPort(listenFd));
 * net.close(listenFd);
 * ```
 *
 * @module
 */
import { LINUX, LINUX_SYMBOLS } from "./_linux.ts";
import type { ErrnoName, Platform } from "./_platform.ts";

export type { ErrnoName };

/** A socket call failed. */
export class SocketError extends Error {
  /** The failed call, e.g. `"bind"`. */
  readonly syscall: string;
  /** The errno it left. */
  readonly errno: number;
  /** The errno's name when known (`"EADDRINUSE"`), else `"E<number>"`. */
  readonly code: string;

  /**
   * Makes the error.
   *
   * @param syscall The failed call.
   * @param errno The errno it left.
   * @param code The errno's name.
   * @param detail Extra context appended to the message.
   */
  constructor(syscall: string, errno: number, code: string, detail?: string) {
    super(`${syscall} failed: ${code} (errno ${errno})${detail ? `: ${detail}` : ""}`);
    this.name = "SocketError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

/** Options for {@linkcode NetLib.listen}. */
export interface ListenOptions {
  /** The accept backlog (default 511, what Redis uses). */
  backlog?: number;
}

/** The nonblocking socket calls the examples use. */
export interface NetLib extends Disposable {
  /** errno numbers by name, for comparing against negative results. */
  readonly errno: Readonly<Record<ErrnoName, number>>;
  /** Creates a nonblocking, close-on-exec TCP listening socket bound to `host:port` (0: any). */
  listen(host: string, port: number, options?: ListenOptions): number;
  /** Starts a nonblocking connect; wait for writable, then check {@linkcode NetLib.socketError}. */
  connect(host: string, port: number): number;
  /** The local port a socket is bound to (learns the port chosen for port 0). */
  localPort(fd: number): number;
  /** Accepts one connection (nonblocking, close-on-exec); the new fd, or a negative errno. */
  accept(listenFd: number): number;
  /** The pending error of a socket (`SO_ERROR`), 0 when none. */
  socketError(fd: number): number;
  /** Disables Nagle's algorithm on a connected socket. */
  setNoDelay(fd: number): void;
  /** Sets `SO_SNDBUF` (the kernel doubles it); tests use small buffers to force partial writes. */
  setSendBufferBytes(fd: number, bytes: number): void;
  /** Sets `SO_RCVBUF`. */
  setReceiveBufferBytes(fd: number, bytes: number): void;
  /** The address of a buffer's first byte, for {@linkcode NetLib.recvAt}/{@linkcode NetLib.sendAt}. */
  addressOf(buffer: Uint8Array): number;
  /**
   * Reads up to `length` bytes into memory at `address` (from {@linkcode NetLib.addressOf}; the
   * caller keeps the buffer alive). Returns the count (0 at end of stream) or a negative errno.
   */
  recvAt(fd: number, address: number, length: number): number;
  /** Writes `length` bytes from `address` without raising SIGPIPE; the count or a negative errno. */
  sendAt(fd: number, address: number, length: number): number;
  /** Convenience (allocates): reads into `buffer`; see {@linkcode NetLib.recvAt}. */
  recv(fd: number, buffer: Uint8Array): number;
  /** Convenience (allocates): writes `buffer`; see {@linkcode NetLib.sendAt}. */
  send(fd: number, buffer: Uint8Array): number;
  /** `shutdown(2)`: `"read"`, `"write"` or `"both"`. 0 or a negative errno. */
  shutdown(fd: number, how: "read" | "write" | "both"): number;
  /** Closes an fd. 0 or a negative errno (an `EINTR` from close still released the fd). */
  close(fd: number): number;
  /** The name of an errno number (`"EAGAIN"`), or `"E<n>"`. */
  errnoName(errno: number): string;
  /**
   * The open fds of this process below `limit` (default 4096), probed with `fcntl(F_GETFD)`:
   * tests and the demo check that every fd is released (Deno's own sanitizers cannot see FFI fds).
   */
  openFds(limit?: number): number[];
  /** Unloads libc's handle. Every other method throws afterwards. */
  unload(): void;
}

/**
 * Opens the socket layer for this platform.
 *
 * @returns The socket calls; call {@linkcode NetLib.unload} (or `using`) when done.
 * @throws {Deno.errors.NotCapable} Without the FFI permission (`--allow-ffi`).
 * @throws {Error} On a platform that has no implementation yet.
 */
export function openNetLib(): NetLib {
  if (Deno.build.os === "linux") return new PosixNetLib(LINUX, openLinuxLibc());
  throw new Error(
    `Cannot open the example socket layer as the platform is unsupported: current value is ${Deno.build.os}`,
  );
}

type LinuxLibc = Deno.DynamicLibrary<typeof LINUX_SYMBOLS>;
const TWO_32 = 2 ** 32;

function openLinuxLibc(): LinuxLibc {
  let lastError: unknown;
  for (const path of LINUX.libraryPaths) {
    try {
      return Deno.dlopen(path, LINUX_SYMBOLS);
    } catch (error) {
      if (
        error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ) {
        // The other candidates would fail (or prompt) the same way: say what is missing.
        throw new Deno.errors.NotCapable(
          "Cannot open the example socket layer as it calls libc through FFI, which requires the FFI permission: run with --allow-ffi",
          { cause: error },
        );
      }
      lastError = error;
    }
  }
  throw new Error("Cannot open libc for the example socket layer", { cause: lastError });
}

function parseIpv4(host: string): number {
  const text = host === "localhost" ? "127.0.0.1" : host;
  const parts = text.split(".");
  if (parts.length !== 4) {
    throw new TypeError(`Cannot use the host as an IPv4 address: current value is ${host}`);
  }
  let address = 0;
  for (const part of parts) {
    const byte = /^\d{1,3}$/.test(part) ? Number(part) : NaN;
    if (!(byte >= 0 && byte <= 255)) {
      throw new TypeError(`Cannot use the host as an IPv4 address: current value is ${host}`);
    }
    address = address * 256 + byte;
  }
  return address;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot use the port as it must be an integer in [0, 65535]: current value is ${port}`,
    );
  }
}

class PosixNetLib implements NetLib {
  readonly errno: Readonly<Record<ErrnoName, number>>;
  #p: Platform;
  #lib: LinuxLibc;
  #sym: LinuxLibc["symbols"];
  #errnoView: Deno.UnsafePointerView | null = null;
  #names = new Map<number, string>();
  #int = new Int32Array(1);
  #len = new Uint32Array(1);
  #sockaddr = new Uint8Array(16);
  #nosignal: number;
  // One msghdr with one iovec, reused by every recvAt/sendAt (calls are synchronous).
  #msghdr: Uint8Array;
  #iov: Uint32Array; // [base low, base high, length low, length high]

  constructor(platform: Platform, lib: LinuxLibc) {
    this.#p = platform;
    this.#lib = lib;
    this.#sym = lib.symbols;
    this.#msghdr = new Uint8Array(platform.MSGHDR_BYTES);
    this.#iov = new Uint32Array(new ArrayBuffer(16)); // an explicit ArrayBuffer lives off-heap

    const iovAddress = this.addressOf(new Uint8Array(this.#iov.buffer));
    const header = new DataView(this.#msghdr.buffer);
    header.setUint32(platform.MSGHDR_IOV_OFFSET, iovAddress % TWO_32, true);
    header.setUint32(platform.MSGHDR_IOV_OFFSET + 4, Math.floor(iovAddress / TWO_32), true);
    header.setUint32(platform.MSGHDR_IOVLEN_OFFSET, 1, true);
    this.errno = platform.errno;
    this.#nosignal = platform.MSG_NOSIGNAL;
    for (const [name, value] of Object.entries(platform.errno)) {
      if (!this.#names.has(value)) this.#names.set(value, name);
    }
  }

  #lastErrno(): number {
    // errno lives in thread-local storage; every call here runs on the calling JS thread, so the
    // location is fixed for this object's lifetime and is read through one cached view.
    if (this.#errnoView === null) {
      const pointer = this.#sym.__errno_location();
      if (pointer === null) return 0;
      this.#errnoView = new Deno.UnsafePointerView(pointer);
    }
    return this.#errnoView.getInt32(0);
  }

  #fail(syscall: string, fd: number, detail?: string): never {
    const errno = this.#lastErrno();
    if (fd >= 0) this.#sym.close(fd);
    throw new SocketError(syscall, errno, this.errnoName(errno), detail);
  }

  #fillSockaddr(host: string, port: number): Uint8Array {
    checkPort(port);
    const address = parseIpv4(host);
    const sa = this.#sockaddr;
    sa.fill(0);
    const view = new DataView(sa.buffer);
    if (this.#p.sockaddrInFamilyIs16) view.setUint16(0, this.#p.AF_INET, true);
    else {
      sa[0] = 16;
      sa[1] = this.#p.AF_INET;
    }
    view.setUint16(2, port, false); // network byte order
    view.setUint32(4, address, false);
    return sa;
  }

  #setInt(fd: number, level: number, option: number, value: number, name: string): void {
    this.#int[0] = value;
    const bytes = new Uint8Array(this.#int.buffer);
    if (this.#sym.setsockopt(fd, level, option, bytes, 4) !== 0) {
      const errno = this.#lastErrno();
      throw new SocketError("setsockopt", errno, this.errnoName(errno), name);
    }
  }

  #newSocket(): number {
    const p = this.#p;
    const fd = this.#sym.socket(p.AF_INET, p.SOCK_STREAM | p.SOCK_NONBLOCK | p.SOCK_CLOEXEC, 0);
    if (fd < 0) this.#fail("socket", -1);
    return fd;
  }

  listen(host: string, port: number, options?: ListenOptions): number {
    const backlog = options?.backlog ?? 511;
    const sa = this.#fillSockaddr(host, port);
    const fd = this.#newSocket();
    try {
      this.#setInt(fd, this.#p.SOL_SOCKET, this.#p.SO_REUSEADDR, 1, "SO_REUSEADDR");
    } catch (error) {
      this.#sym.close(fd);
      throw error;
    }
    if (this.#sym.bind(fd, sa, 16) !== 0) this.#fail("bind", fd, `${host}:${port}`);
    if (this.#sym.listen(fd, backlog) !== 0) this.#fail("listen", fd);
    return fd;
  }

  connect(host: string, port: number): number {
    const sa = this.#fillSockaddr(host, port);
    const fd = this.#newSocket();
    if (this.#sym.connect(fd, sa, 16) !== 0) {
      const errno = this.#lastErrno();
      if (errno !== this.errno.EINPROGRESS && errno !== this.errno.EINTR) {
        this.#sym.close(fd);
        throw new SocketError("connect", errno, this.errnoName(errno), `${host}:${port}`);
      }
    }
    return fd;
  }

  localPort(fd: number): number {
    const sa = new Uint8Array(16);
    this.#len[0] = 16;
    if (this.#sym.getsockname(fd, sa, new Uint8Array(this.#len.buffer)) !== 0) {
      const errno = this.#lastErrno();
      throw new SocketError("getsockname", errno, this.errnoName(errno));
    }
    return (sa[2] << 8) | sa[3];
  }

  accept(listenFd: number): number {
    const p = this.#p;
    const fd = this.#sym.accept4(listenFd, null, null, p.SOCK_NONBLOCK | p.SOCK_CLOEXEC);
    return fd >= 0 ? fd : -this.#lastErrno();
  }

  socketError(fd: number): number {
    this.#int[0] = 0;
    this.#len[0] = 4;
    const result = this.#sym.getsockopt(
      fd,
      this.#p.SOL_SOCKET,
      this.#p.SO_ERROR,
      new Uint8Array(this.#int.buffer),
      new Uint8Array(this.#len.buffer),
    );
    return result === 0 ? this.#int[0] : this.#lastErrno();
  }

  setNoDelay(fd: number): void {
    this.#setInt(fd, this.#p.IPPROTO_TCP, this.#p.TCP_NODELAY, 1, "TCP_NODELAY");
  }

  setSendBufferBytes(fd: number, bytes: number): void {
    this.#setInt(fd, this.#p.SOL_SOCKET, this.#p.SO_SNDBUF, bytes, "SO_SNDBUF");
  }

  setReceiveBufferBytes(fd: number, bytes: number): void {
    this.#setInt(fd, this.#p.SOL_SOCKET, this.#p.SO_RCVBUF, bytes, "SO_RCVBUF");
  }

  addressOf(buffer: Uint8Array): number {
    // Off-heap backing stores never move (taking the pointer of a small on-heap typed array moves
    // it off-heap for good); callers keep the buffer alive while they use the address.
    return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
  }

  #setIov(address: number, length: number): void {
    const iov = this.#iov;
    iov[0] = address % TWO_32;
    iov[1] = Math.floor(address / TWO_32);
    iov[2] = length; // callers never pass 4 GiB or more
    iov[3] = 0;
  }

  recvAt(fd: number, address: number, length: number): number {
    this.#setIov(address, length);
    const n = this.#sym.recvmsg(fd, this.#msghdr, 0);
    return n >= 0 ? n : -this.#lastErrno();
  }

  sendAt(fd: number, address: number, length: number): number {
    this.#setIov(address, length);
    const n = this.#sym.sendmsg(fd, this.#msghdr, this.#nosignal);
    return n >= 0 ? n : -this.#lastErrno();
  }

  recv(fd: number, buffer: Uint8Array): number {
    if (buffer.length === 0) return 0;
    return this.recvAt(fd, this.addressOf(buffer), buffer.length);
  }

  send(fd: number, buffer: Uint8Array): number {
    if (buffer.length === 0) return 0;
    return this.sendAt(fd, this.addressOf(buffer), buffer.length);
  }

  shutdown(fd: number, how: "read" | "write" | "both"): number {
    const p = this.#p;
    const mode = how === "read" ? p.SHUT_RD : how === "write" ? p.SHUT_WR : p.SHUT_RDWR;
    return this.#sym.shutdown(fd, mode) === 0 ? 0 : -this.#lastErrno();
  }

  close(fd: number): number {
    return this.#sym.close(fd) === 0 ? 0 : -this.#lastErrno();
  }

  errnoName(errno: number): string {
    return this.#names.get(errno) ?? `E${errno}`;
  }

  openFds(limit = 4096): number[] {
    const fds: number[] = [];
    for (let fd = 0; fd < limit; fd++) {
      if (this.#sym.fcntl(fd, this.#p.F_GETFD, 0) >= 0) fds.push(fd);
    }
    return fds;
  }

  unload(): void {
    this.#errnoView = null;
    this.#lib.close();
  }

  [Symbol.dispose](): void {
    this.unload();
  }
}
