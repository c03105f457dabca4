/**
 * Names of the Win32 and Winsock error codes the IOCP backend can meet, for `PollerError.code`.
 *
 * @module
 */

import { PollerError } from "../errors.ts";

const NAMES: Record<number, string> = {
  1: "ERROR_INVALID_FUNCTION",
  2: "ERROR_FILE_NOT_FOUND",
  3: "ERROR_PATH_NOT_FOUND",
  4: "ERROR_TOO_MANY_OPEN_FILES",
  5: "ERROR_ACCESS_DENIED",
  6: "ERROR_INVALID_HANDLE",
  8: "ERROR_NOT_ENOUGH_MEMORY",
  14: "ERROR_OUTOFMEMORY",
  50: "ERROR_NOT_SUPPORTED",
  87: "ERROR_INVALID_PARAMETER",
  122: "ERROR_INSUFFICIENT_BUFFER",
  183: "ERROR_ALREADY_EXISTS",
  258: "WAIT_TIMEOUT",
  735: "ERROR_ABANDONED_WAIT_0",
  995: "ERROR_OPERATION_ABORTED",
  997: "ERROR_IO_PENDING",
  1168: "ERROR_NOT_FOUND",
  1450: "ERROR_NO_SYSTEM_RESOURCES",
  10004: "WSAEINTR",
  10009: "WSAEBADF",
  10013: "WSAEACCES",
  10014: "WSAEFAULT",
  10022: "WSAEINVAL",
  10024: "WSAEMFILE",
  10035: "WSAEWOULDBLOCK",
  10038: "WSAENOTSOCK",
  10045: "WSAEOPNOTSUPP",
  10050: "WSAENETDOWN",
  10055: "WSAENOBUFS",
  10091: "WSASYSNOTREADY",
  10092: "WSAVERNOTSUPPORTED",
  10093: "WSANOTINITIALISED",
  10107: "WSASYSCALLFAILURE",
};

/**
 * Errors the backend raises itself (bookkeeping, not a failed call) use the C runtime's errno
 * values, which Windows shares with POSIX, so every backend reports them alike.
 */
export const CRT_ERRNO = Object.freeze({ ENOENT: 2, EBADF: 9, EEXIST: 17 });

/** A `PollerError` with a C runtime errno (`EBADF`, `ENOENT`, `EEXIST`). */
export function crtError(
  syscall: string,
  code: keyof typeof CRT_ERRNO,
  detail?: string,
): PollerError {
  return new PollerError(syscall, CRT_ERRNO[code], code, detail ? { detail } : undefined);
}

/** The symbolic name of a Win32/Winsock error code, or `E<code>` when unknown. */
export function winErrorName(code: number): string {
  return NAMES[code] ?? `E${code}`;
}

/** A `PollerError` for a failed Win32/Winsock call. */
export function winError(syscall: string, code: number, detail?: string): PollerError {
  return new PollerError(syscall, code, winErrorName(code), detail ? { detail } : undefined);
}

/** The NTSTATUS as the usual 8-digit hex text, for error details. */
export function ntStatusText(status: number): string {
  return `NTSTATUS 0x${(status >>> 0).toString(16).padStart(8, "0").toUpperCase()}`;
}
