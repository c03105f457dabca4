// errno numbers to names, per OS family. Pure data: no dlopen here (the backends read errno).
//
// Numbers 1-34 are the historical Unix values, shared by Linux, macOS and the BSDs, with one
// exception (11 is EAGAIN on Linux but EDEADLK elsewhere). Above 34 the families diverge.

const COMMON: ReadonlyArray<string | undefined> = Object.freeze([
  undefined,
  "EPERM", // 1
  "ENOENT", // 2
  "ESRCH", // 3
  "EINTR", // 4
  "EIO", // 5
  "ENXIO", // 6
  "E2BIG", // 7
  "ENOEXEC", // 8
  "EBADF", // 9
  "ECHILD", // 10
  undefined, // 11: differs, see below
  "ENOMEM", // 12
  "EACCES", // 13
  "EFAULT", // 14
  "ENOTBLK", // 15
  "EBUSY", // 16
  "EEXIST", // 17
  "EXDEV", // 18
  "ENODEV", // 19
  "ENOTDIR", // 20
  "EISDIR", // 21
  "EINVAL", // 22
  "ENFILE", // 23
  "EMFILE", // 24
  "ENOTTY", // 25
  "ETXTBSY", // 26
  "EFBIG", // 27
  "ENOSPC", // 28
  "ESPIPE", // 29
  "EROFS", // 30
  "EMLINK", // 31
  "EPIPE", // 32
  "EDOM", // 33
  "ERANGE", // 34
]);

const LINUX_EXTRA: Readonly<Record<number, string>> = Object.freeze({
  11: "EAGAIN",
  38: "ENOSYS",
  40: "ELOOP",
  95: "EOPNOTSUPP",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
});

const BSD_EXTRA: Readonly<Record<number, string>> = Object.freeze({
  11: "EDEADLK",
  35: "EAGAIN",
  55: "ENOBUFS",
  60: "ETIMEDOUT",
  62: "ELOOP",
  78: "ENOSYS",
});

/** FreeBSD, OpenBSD and NetBSD (sys/errno.h): 45 is EOPNOTSUPP there. */
const OTHER_BSD_EXTRA: Readonly<Record<number, string>> = Object.freeze({
  ...BSD_EXTRA,
  45: "EOPNOTSUPP",
});

/** macOS (xnu bsd/sys/errno.h): 45 is ENOTSUP, and EOPNOTSUPP is 102. */
const DARWIN_EXTRA: Readonly<Record<number, string>> = Object.freeze({
  ...BSD_EXTRA,
  45: "ENOTSUP",
  102: "EOPNOTSUPP",
});

/** Well-known Linux errno values the pollers produce themselves (validation mirrors the kernel). */
export const LINUX_ERRNO = Object.freeze({
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  EMFILE: 24,
  ENOSPC: 28,
  ELOOP: 40,
});

/**
 * Values shared by every POSIX family we target (so portable code may use them on any OS).
 * EAGAIN is deliberately absent: it differs (11 on Linux, 35 elsewhere).
 */
export const POSIX_ERRNO = Object.freeze({
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EBADF: 9,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  EMFILE: 24,
});

/**
 * The symbolic name of `errno` on `os` (`"EBADF"`), or `"E<number>"` when unknown.
 *
 * @param errno The error number.
 * @param os A `Deno.build.os` value; Linux (and Android) use the Linux table, the rest the BSD one.
 */
export function errnoName(errno: number, os: string = "linux"): string {
  const extra = os === "linux" || os === "android"
    ? LINUX_EXTRA
    : os === "darwin"
    ? DARWIN_EXTRA
    : OTHER_BSD_EXTRA;
  return extra[errno] ?? COMMON[errno] ?? `E${errno}`;
}
