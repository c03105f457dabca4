// What differs between POSIX systems for the example socket layer. Adding macOS or a BSD means a
// sibling of _linux.ts (accept + fcntl instead of accept4, SO_NOSIGPIPE instead of MSG_NOSIGNAL,
// a sin_len byte in sockaddr_in, other errno numbers) and a branch in sockets.ts.

/** Platform constants (numbers from the system headers). */
export interface Platform {
  /** Candidate names for Deno.dlopen, tried in order. */
  readonly libraryPaths: readonly string[];
  /** Byte offset of the address family inside sockaddr_in. */
  readonly sockaddrInFamilyOffset: number;
  /** Whether the family is a u16 (Linux) or a u8 after a length byte (BSD). */
  readonly sockaddrInFamilyIs16: boolean;
  readonly AF_INET: number;
  readonly SOCK_STREAM: number;
  readonly SOCK_NONBLOCK: number;
  readonly SOCK_CLOEXEC: number;
  readonly SOL_SOCKET: number;
  readonly SO_REUSEADDR: number;
  readonly SO_ERROR: number;
  readonly SO_SNDBUF: number;
  readonly SO_RCVBUF: number;
  readonly IPPROTO_TCP: number;
  readonly TCP_NODELAY: number;
  readonly MSG_NOSIGNAL: number;
  readonly SHUT_RD: number;
  readonly SHUT_WR: number;
  readonly SHUT_RDWR: number;
  readonly F_GETFD: number;
  /** sizeof(struct msghdr). */
  readonly MSGHDR_BYTES: number;
  /** offsetof(struct msghdr, msg_iov). */
  readonly MSGHDR_IOV_OFFSET: number;
  /** offsetof(struct msghdr, msg_iovlen). */
  readonly MSGHDR_IOVLEN_OFFSET: number;
  /** errno numbers by name. */
  readonly errno: Readonly<Record<ErrnoName, number>>;
}

/** The errno names the socket layer reports by name. */
export type ErrnoName =
  | "EINTR"
  | "EAGAIN"
  | "EWOULDBLOCK"
  | "EBADF"
  | "EPIPE"
  | "EINPROGRESS"
  | "ECONNRESET"
  | "ECONNREFUSED"
  | "ECONNABORTED"
  | "EADDRINUSE"
  | "EMFILE"
  | "ENFILE"
  | "ENOBUFS"
  | "ENOMEM"
  | "ENOTCONN"
  | "ETIMEDOUT";
