// Linux (glibc or musl) constants and the libc symbol table for the example socket layer.
// Values from <sys/socket.h>, <netinet/in.h>, <netinet/tcp.h> and <asm-generic/errno.h>
// (x86_64 and aarch64 agree on all of them).
import type { Platform } from "./_platform.ts";

/** The libc symbols the socket layer needs. */
export const LINUX_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  // Reads and writes go through recvmsg/sendmsg with one iovec, so that every argument is an
  // i32 or a buffer: V8's fast FFI path takes 64-bit integer arguments ("usize") only as BigInt
  // and deoptimizes on every call given a Number, while the iovec's 64-bit base and length are
  // written into memory as 32-bit halves without allocating. ssize_t results are declared i32:
  // the count comes back in a 64-bit register whose low half is exact for transfers below 2 GiB
  // (never asked for), and a 32-bit result avoids a BigInt per call.
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // fcntl is variadic; an int third argument is passed like a fixed one on x86_64 and aarch64.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** Linux constants. */
export const LINUX: Platform = {
  libraryPaths: ["libc.so.6", "libc.so", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"],
  sockaddrInFamilyOffset: 0, // sa_family_t (u16) first; BSDs put a length byte before a u8 family
  sockaddrInFamilyIs16: true,
  AF_INET: 2,
  SOCK_STREAM: 1,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  IPPROTO_TCP: 6,
  TCP_NODELAY: 1,
  MSG_NOSIGNAL: 0x4000,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  F_GETFD: 1,
  // struct msghdr on LP64: name(8) namelen(4)+pad(4) iov(8) iovlen(8) control(8) controllen(8)
  // flags(4)+pad(4); struct iovec: base(8) len(8).
  MSGHDR_BYTES: 56,
  MSGHDR_IOV_OFFSET: 16,
  MSGHDR_IOVLEN_OFFSET: 24,
  errno: {
    EINTR: 4,
    EAGAIN: 11,
    EWOULDBLOCK: 11,
    EBADF: 9,
    EPIPE: 32,
    EINPROGRESS: 115,
    ECONNRESET: 104,
    ECONNREFUSED: 111,
    ECONNABORTED: 103,
    EADDRINUSE: 98,
    EMFILE: 24,
    ENFILE: 23,
    ENOBUFS: 105,
    ENOMEM: 12,
    ENOTCONN: 107,
    ETIMEDOUT: 110,
  },
};
