/**
 * Test-only Winsock helpers (Windows, or Windows Deno under Wine): connected pairs of nonblocking
 * TCP sockets on 127.0.0.1, send/recv, shutdown, reset, close. Every socket is a `number` (the
 * SOCKET handle value), as the IOCP poller takes it.
 *
 * @module
 */

const WS2_32 = {
  WSAStartup: { parameters: ["u16", "buffer"], result: "i32" },
  WSACleanup: { parameters: [], result: "i32" },
  WSAGetLastError: { parameters: [], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "usize" },
  bind: { parameters: ["usize", "buffer", "i32"], result: "i32" },
  listen: { parameters: ["usize", "i32"], result: "i32" },
  getsockname: { parameters: ["usize", "buffer", "buffer"], result: "i32" },
  connect: { parameters: ["usize", "buffer", "i32"], result: "i32" },
  accept: { parameters: ["usize", "pointer", "pointer"], result: "usize" },
  send: { parameters: ["usize", "buffer", "i32", "i32"], result: "i32" },
  recv: { parameters: ["usize", "buffer", "i32", "i32"], result: "i32" },
  shutdown: { parameters: ["usize", "i32"], result: "i32" },
  closesocket: { parameters: ["usize"], result: "i32" },
  ioctlsocket: { parameters: ["usize", "u32", "buffer"], result: "i32" },
  setsockopt: { parameters: ["usize", "i32", "i32", "buffer", "i32"], result: "i32" },
} as const;

const KERNEL32 = {
  CreateEventW: { parameters: ["pointer", "i32", "i32", "pointer"], result: "usize" },
  CloseHandle: { parameters: ["usize"], result: "i32" },
} as const;

const AF_INET = 2;
const SOCK_STREAM = 1;
const IPPROTO_TCP = 6;
const FIONBIO = 0x8004667e;
const SOL_SOCKET = 0xffff;
const SO_LINGER = 0x0080;
const INVALID_SOCKET = 0xffffffffffffffffn;
/** `recv`/`send` flag for out-of-band data. */
export const MSG_OOB = 1;
/** `shutdown` how: stop sending (the peer sees EOF). */
export const SD_SEND = 1;
/** `WSAEWOULDBLOCK`: a nonblocking call found nothing to do. */
export const WSAEWOULDBLOCK = 10035;

/** A connected pair of nonblocking TCP sockets. */
export interface SocketPair {
  /** The connecting side. */
  readonly a: number;
  /** The accepted side. */
  readonly b: number;
}

/** Winsock through FFI, for tests. Close it (or `using` it) at the end of each test. */
export class WinNet implements Disposable {
  #ws2: Deno.DynamicLibrary<typeof WS2_32>;
  #kernel32: Deno.DynamicLibrary<typeof KERNEL32>;
  #open = new Set<number>();
  #closed = false;

  /** Loads ws2_32 and kernel32 and starts Winsock 2.2. */
  constructor() {
    this.#ws2 = Deno.dlopen("ws2_32.dll", WS2_32);
    this.#kernel32 = Deno.dlopen("kernel32.dll", KERNEL32);
    const result = this.#ws2.symbols.WSAStartup(0x0202, new Uint8Array(512));
    if (result !== 0) throw new Error(`WSAStartup failed: ${result}`);
  }

  #fail(call: string): never {
    throw new Error(`${call} failed: WSA error ${this.#ws2.symbols.WSAGetLastError()}`);
  }

  #socket(): bigint {
    const s = this.#ws2.symbols.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s === INVALID_SOCKET) this.#fail("socket");
    this.#open.add(Number(s));
    return s;
  }

  /** Makes a nonblocking socket listening on an ephemeral port of 127.0.0.1. */
  listener(): { socket: number; address: Uint8Array<ArrayBuffer> } {
    const ws2 = this.#ws2.symbols;
    const s = this.#socket();
    const address = new Uint8Array(16); // sockaddr_in
    address[0] = AF_INET;
    address.set([127, 0, 0, 1], 4);
    if (ws2.bind(s, address, 16) !== 0) this.#fail("bind");
    if (ws2.listen(s, 16) !== 0) this.#fail("listen");
    const length = new Int32Array([16]);
    if (ws2.getsockname(s, address, new Uint8Array(length.buffer)) !== 0) {
      this.#fail("getsockname");
    }
    this.setNonblocking(Number(s));
    return { socket: Number(s), address };
  }

  /** Starts a blocking connect to `address` (loopback completes at once) from a new socket. */
  connectTo(address: Uint8Array<ArrayBuffer>): number {
    const s = this.#socket();
    if (this.#ws2.symbols.connect(s, address, 16) !== 0) this.#fail("connect");
    this.setNonblocking(Number(s));
    return Number(s);
  }

  /** Accepts one pending connection; returns the socket, or -1 when none is pending. */
  accept(listener: number): number {
    const s = this.#ws2.symbols.accept(BigInt(listener), null, null);
    if (s === INVALID_SOCKET) {
      if (this.#ws2.symbols.WSAGetLastError() === WSAEWOULDBLOCK) return -1;
      this.#fail("accept");
    }
    this.#open.add(Number(s));
    this.setNonblocking(Number(s));
    return Number(s);
  }

  /** A connected pair of nonblocking TCP sockets over 127.0.0.1 (listen, connect, accept). */
  pair(): SocketPair {
    const { socket: listener, address } = this.listener();
    try {
      const a = this.connectTo(address);
      let b = -1;
      // The connection is queued by the time connect returns; a few retries cover slow stacks.
      for (let i = 0; i < 1000 && b < 0; i++) b = this.accept(listener);
      if (b < 0) throw new Error("accept found no connection");
      return { a, b };
    } finally {
      this.close(listener);
    }
  }

  /** Sets FIONBIO on a socket. */
  setNonblocking(socket: number): void {
    const on = new Uint32Array([1]);
    if (this.#ws2.symbols.ioctlsocket(BigInt(socket), FIONBIO, new Uint8Array(on.buffer)) !== 0) {
      this.#fail("ioctlsocket");
    }
  }

  /** Sends bytes; returns how many were sent, or -1 on WSAEWOULDBLOCK. */
  send(socket: number, data: Uint8Array<ArrayBuffer>, flags = 0): number {
    const n = this.#ws2.symbols.send(BigInt(socket), data, data.byteLength, flags);
    if (n < 0) {
      if (this.#ws2.symbols.WSAGetLastError() === WSAEWOULDBLOCK) return -1;
      this.#fail("send");
    }
    return n;
  }

  /** Receives into `buffer`; returns the count (0 at EOF), or -1 on WSAEWOULDBLOCK. */
  recv(socket: number, buffer: Uint8Array<ArrayBuffer>, flags = 0): number {
    const n = this.#ws2.symbols.recv(BigInt(socket), buffer, buffer.byteLength, flags);
    if (n < 0) {
      if (this.#ws2.symbols.WSAGetLastError() === WSAEWOULDBLOCK) return -1;
      this.#fail("recv");
    }
    return n;
  }

  /** Reads until the socket would block; returns the bytes read (stops at EOF too). */
  drain(socket: number): number {
    const buffer = new Uint8Array(65536);
    let total = 0;
    for (;;) {
      const n = this.recv(socket, buffer);
      if (n <= 0) return total;
      total += n;
    }
  }

  /** Sends until the send buffer is full; returns the bytes sent. */
  fill(socket: number): number {
    const chunk = new Uint8Array(65536);
    let total = 0;
    for (let i = 0; i < 100_000; i++) {
      const n = this.send(socket, chunk);
      if (n < 0) return total;
      total += n;
    }
    throw new Error("the send buffer never filled");
  }

  /** Shuts down the sending side: the peer reads EOF. */
  shutdownSend(socket: number): void {
    if (this.#ws2.symbols.shutdown(BigInt(socket), SD_SEND) !== 0) this.#fail("shutdown");
  }

  /** Closes with SO_LINGER {1, 0}: the peer gets a reset instead of a FIN. */
  reset(socket: number): void {
    const linger = new Uint16Array([1, 0]);
    const bytes = new Uint8Array(linger.buffer);
    if (this.#ws2.symbols.setsockopt(BigInt(socket), SOL_SOCKET, SO_LINGER, bytes, 4) !== 0) {
      this.#fail("setsockopt");
    }
    this.close(socket);
  }

  /** Closes a socket made here. */
  close(socket: number): void {
    if (!this.#open.delete(socket)) return;
    this.#ws2.symbols.closesocket(BigInt(socket));
  }

  /** A handle that is not a socket (an event object); close it with {@linkcode closeHandle}. */
  eventHandle(): number {
    const handle = this.#kernel32.symbols.CreateEventW(null, 1, 0, null);
    if (handle === 0n) throw new Error("CreateEventW failed");
    return Number(handle);
  }

  /** Closes a handle from {@linkcode eventHandle}. */
  closeHandle(handle: number): void {
    this.#kernel32.symbols.CloseHandle(BigInt(handle));
  }

  /** Closes every socket still open, stops Winsock and unloads the libraries. */
  closeAll(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#open) this.#ws2.symbols.closesocket(BigInt(s));
    this.#open.clear();
    this.#ws2.symbols.WSACleanup();
    this.#ws2.close();
    this.#kernel32.close();
  }

  /** Same as {@linkcode closeAll}. */
  [Symbol.dispose](): void {
    this.closeAll();
  }
}
