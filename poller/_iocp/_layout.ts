/**
 * Pure parts of the IOCP/AFD backend: constants, Windows x64 struct layouts and the mapping between
 * readiness bits and AFD poll events. Nothing here touches FFI, so it is unit-tested on every OS.
 *
 * @module
 */

import { ERROR, HANGUP, PRIORITY, READABLE, WRITABLE } from "../types.ts";

/** `IOCTL_AFD_POLL`: the device control code of the AFD poll request (wepoll, mio). */
export const IOCTL_AFD_POLL = 0x12024;

/** AFD poll event bits (`AFD_POLL_*`, from the undocumented `afd.h` that wepoll documents). */
export const AFD_POLL_RECEIVE = 0x0001;
/** Out-of-band (urgent) data is available. */
export const AFD_POLL_RECEIVE_EXPEDITED = 0x0002;
/** The send buffer has room. */
export const AFD_POLL_SEND = 0x0004;
/** The peer shut down its sending side (FIN): reads hit EOF. */
export const AFD_POLL_DISCONNECT = 0x0008;
/** The connection was reset or aborted. */
export const AFD_POLL_ABORT = 0x0010;
/** The socket was closed locally (`closesocket`) while the poll was pending. */
export const AFD_POLL_LOCAL_CLOSE = 0x0020;
/** A listening socket has a connection to accept. */
export const AFD_POLL_ACCEPT = 0x0080;
/** A nonblocking `connect` failed. */
export const AFD_POLL_CONNECT_FAIL = 0x0100;

/** NTSTATUS values the backend tests for. */
export const STATUS_SUCCESS = 0;
/** The request was queued; its completion packet comes later. */
export const STATUS_PENDING = 0x103;
/** The request was cancelled (`NtCancelIoFileEx`). */
export const STATUS_CANCELLED = 0xc0000120;
/** `NtCancelIoFileEx` found nothing to cancel: the request had already completed. */
export const STATUS_NOT_FOUND = 0xc0000225;
/** The handle passed to a call is not open. */
export const STATUS_INVALID_HANDLE = 0xc0000008;

/** `GetQueuedCompletionStatusEx` timed out (`WAIT_TIMEOUT`). */
export const WAIT_TIMEOUT = 258;
/** The "wait forever" timeout of Win32 waits. */
export const INFINITE = 0xffffffff;

/** `WSAIoctl` control codes that return the base (kernel) socket handle behind layered providers. */
export const SIO_BASE_HANDLE = 0x48000022;
/** Fallback for providers that intercept `SIO_BASE_HANDLE`, the handle to use for polling. */
export const SIO_BSP_HANDLE_POLL = 0x4800001d;
/** Last fallback: the base service provider's handle. */
export const SIO_BSP_HANDLE = 0x4800001b;

/** `getsockopt(SOL_SOCKET, SO_TYPE)`: succeeds only on sockets (Wine answers SIO_BASE_HANDLE for
 * any handle, so this is the socket test). */
export const SOL_SOCKET = 0xffff;
/** See {@linkcode SOL_SOCKET}. */
export const SO_TYPE = 0x1008;

/** `NtCreateFile` arguments for the AFD helper handle. */
export const SYNCHRONIZE = 0x00100000;
/** `FILE_SHARE_READ | FILE_SHARE_WRITE`. */
export const FILE_SHARE_READ_WRITE = 0x1 | 0x2;
/** `FILE_OPEN`: open an existing object. */
export const FILE_OPEN = 1;
/** `SetFileCompletionNotificationModes` flag: do not signal the handle itself on completion. */
export const FILE_SKIP_SET_EVENT_ON_HANDLE = 0x2;

/** The object name of the AFD helper handles (any name under `\Device\Afd\` works). */
export const AFD_DEVICE_NAME = "\\Device\\Afd\\eventloop";

/** `OVERLAPPED_ENTRY` on x64: what `GetQueuedCompletionStatusEx` fills. */
export const OVERLAPPED_ENTRY = {
  size: 32,
  completionKey: 0,
  overlapped: 8,
  internal: 16,
  bytesTransferred: 24,
} as const;

/** `IO_STATUS_BLOCK` on x64: `Status` (NTSTATUS, unioned with a pointer) and `Information`. */
export const IO_STATUS_BLOCK = { size: 16, status: 0, information: 8 } as const;

/** `AFD_POLL_INFO` with exactly one `AFD_POLL_HANDLE_INFO`, on x64. */
export const AFD_POLL_INFO = {
  size: 32,
  timeout: 0,
  numberOfHandles: 8,
  exclusive: 12,
  handle: 16,
  events: 24,
  status: 28,
} as const;

/** `UNICODE_STRING` on x64. */
export const UNICODE_STRING = { size: 16, length: 0, maximumLength: 2, buffer: 8 } as const;

/** `OBJECT_ATTRIBUTES` on x64. */
export const OBJECT_ATTRIBUTES = {
  size: 48,
  length: 0,
  rootDirectory: 8,
  objectName: 16,
  attributes: 24,
  securityDescriptor: 32,
  securityQualityOfService: 40,
} as const;

/**
 * One poll slot in the arena: the `IO_STATUS_BLOCK` the kernel completes, followed by the
 * `AFD_POLL_INFO` used as both input and output of the ioctl. 48 bytes keep both 8-aligned.
 */
export const SLOT = { size: 48, iosb: 0, info: IO_STATUS_BLOCK.size } as const;

/** Completion key of AFD poll completions (every helper handle is associated with it). */
export const KEY_AFD = 0x41fd;
/** Completion key reserved for the waker's `PostQueuedCompletionStatus` packets. */
export const KEY_WAKE = 0x3a4e;

/** AFD events always polled, whatever the interest: the conditions reported as HANGUP/ERROR. */
const AFD_ALWAYS = AFD_POLL_DISCONNECT | AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL |
  AFD_POLL_LOCAL_CLOSE;

/**
 * The AFD event mask to poll for an interest. HANGUP and ERROR conditions (disconnect, abort,
 * connect failure) and local close are always included.
 */
export function afdEventsFor(interest: number): number {
  let events = AFD_ALWAYS;
  if (interest & READABLE) events |= AFD_POLL_RECEIVE | AFD_POLL_ACCEPT;
  if (interest & WRITABLE) events |= AFD_POLL_SEND;
  if (interest & PRIORITY) events |= AFD_POLL_RECEIVE_EXPEDITED;
  return events;
}

/**
 * The readiness bits for the AFD events a poll reported, restricted to `interest` plus the
 * always-reported HANGUP and ERROR. Like Linux, a disconnect also makes the socket readable (a
 * read returns EOF) and a reset or failed connect makes it readable and writable (the call fails).
 * `AFD_POLL_LOCAL_CLOSE` is not a readiness: callers handle it before mapping.
 */
export function readinessFromAfd(afdEvents: number, interest: number): number {
  let readiness = 0;
  if (afdEvents & (AFD_POLL_RECEIVE | AFD_POLL_ACCEPT)) readiness |= READABLE;
  if (afdEvents & AFD_POLL_SEND) readiness |= WRITABLE;
  if (afdEvents & AFD_POLL_RECEIVE_EXPEDITED) readiness |= PRIORITY;
  if (afdEvents & AFD_POLL_DISCONNECT) readiness |= HANGUP | READABLE;
  if (afdEvents & AFD_POLL_ABORT) readiness |= HANGUP | ERROR | READABLE | WRITABLE;
  if (afdEvents & AFD_POLL_CONNECT_FAIL) readiness |= HANGUP | ERROR | READABLE | WRITABLE;
  return readiness & (interest | HANGUP | ERROR);
}

/**
 * A wait timeout in ms as the `DWORD` that `GetQueuedCompletionStatusEx` takes: fractions round
 * UP (a wait never ends early), negative and infinite mean `INFINITE`, and huge finite values are
 * clamped just below it.
 */
export function timeoutToDword(timeoutMs: number): number {
  if (timeoutMs < 0 || timeoutMs === Infinity) return INFINITE;
  if (timeoutMs === 0) return 0;
  return Math.min(Math.ceil(timeoutMs), INFINITE - 1);
}

/** Whether an NTSTATUS is an error (severity bits `11`). */
export function ntError(status: number): boolean {
  return (status >>> 0) >= 0xc0000000;
}

/** The UTF-16LE bytes of a string, for `UNICODE_STRING` buffers. */
export function utf16le(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(text.length * 2));
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    bytes[2 * i] = unit & 0xff;
    bytes[2 * i + 1] = unit >>> 8;
  }
  return bytes;
}
