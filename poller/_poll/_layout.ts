// The poll(2) ABI: struct pollfd and the POLL* bits, identical on Linux, macOS and the BSDs
// (only POLLRDHUP is Linux-specific, see _ffi.ts).
import { ERROR, HANGUP, PRIORITY, READABLE, WRITABLE } from "../types.ts";

/** `struct pollfd { int fd; short events; short revents; }`: 8 bytes everywhere. */
export const POLLFD_LAYOUT = Object.freeze({
  size: 8,
  fdOffset: 0,
  eventsOffset: 4,
  reventsOffset: 6,
});

export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
/** Linux only (a peer shut down its writing side); 0 where the OS has no such bit. */
export const POLLRDHUP_LINUX = 0x2000;

/** Maps interest bits to `pollfd.events`; `rdhup` is the OS's POLLRDHUP bit or 0. */
export function interestToPoll(interest: number, rdhup: number): number {
  let events = 0;
  if (interest & READABLE) events |= POLLIN | rdhup;
  if (interest & WRITABLE) events |= POLLOUT;
  if (interest & PRIORITY) events |= POLLPRI;
  return events;
}

/**
 * Maps `pollfd.revents` to readiness bits. A hang-up is also READABLE (EOF); POLLNVAL (the fd was
 * closed while registered) is reported as ERROR so the caller notices instead of spinning.
 */
export function pollToReadiness(revents: number, rdhup: number): number {
  let ready = 0;
  if (revents & POLLIN) ready |= READABLE;
  if (revents & POLLOUT) ready |= WRITABLE;
  if (revents & POLLPRI) ready |= PRIORITY;
  if (revents & rdhup) ready |= HANGUP;
  if (revents & POLLHUP) ready |= HANGUP | READABLE;
  if (revents & (POLLERR | POLLNVAL)) ready |= ERROR;
  return ready;
}
