// The one place that knows the Linux epoll ABI: struct layouts and flag values, by arch.
import { ERROR, HANGUP, PRIORITY, READABLE, WRITABLE } from "../types.ts";

/** Where the fields of `struct epoll_event { uint32_t events; epoll_data_t data; }` sit. */
export interface EpollEventLayout {
  /** `sizeof(struct epoll_event)` in bytes. */
  readonly size: number;
  /** Byte offset of `events` (u32). */
  readonly eventsOffset: number;
  /** Byte offset of `data` (u64). */
  readonly dataOffset: number;
}

/**
 * `struct epoll_event` per arch. On x86_64 the kernel declares it `__attribute__((packed))`
 * (12 bytes, data at 4); elsewhere it has natural alignment (16 bytes, data at 8). Both arches are
 * little-endian, and every field sits on a 4-byte boundary, so one Uint32Array view reads them.
 */
export const EPOLL_EVENT_LAYOUTS: Readonly<Record<"x86_64" | "aarch64", EpollEventLayout>> = Object
  .freeze({
    x86_64: Object.freeze({ size: 12, eventsOffset: 0, dataOffset: 4 }),
    aarch64: Object.freeze({ size: 16, eventsOffset: 0, dataOffset: 8 }),
  });

/** The layout for `arch` (a `Deno.build.arch` value), or `undefined` if unsupported. */
export function epollEventLayout(arch: string): EpollEventLayout | undefined {
  return arch === "x86_64" || arch === "aarch64" ? EPOLL_EVENT_LAYOUTS[arch] : undefined;
}

/** `struct timespec { time_t tv_sec; long tv_nsec; }` on 64-bit Linux: two i64, 16 bytes. */
export const TIMESPEC_SIZE = 16;

export const EPOLLIN = 0x001;
export const EPOLLPRI = 0x002;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;

export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;

/** `O_CLOEXEC` (generic Linux value, x86_64 and aarch64), also `EPOLL_CLOEXEC`/`EFD_CLOEXEC`. */
export const O_CLOEXEC = 0o2000000;
/** `O_NONBLOCK` (generic Linux value, x86_64 and aarch64), also `EFD_NONBLOCK`. */
export const O_NONBLOCK = 0o4000;

/** Maps interest bits to `epoll_event.events` (level-triggered: no EPOLLET). */
export function interestToEpoll(interest: number): number {
  let events = 0;
  // RDHUP lets a reader learn of a half-closed socket without reading first.
  if (interest & READABLE) events |= EPOLLIN | EPOLLRDHUP;
  if (interest & WRITABLE) events |= EPOLLOUT;
  if (interest & PRIORITY) events |= EPOLLPRI;
  return events;
}

/** Maps reported `epoll_event.events` to readiness bits. A hang-up is also READABLE (EOF). */
export function epollToReadiness(events: number): number {
  let ready = 0;
  if (events & EPOLLIN) ready |= READABLE;
  if (events & EPOLLOUT) ready |= WRITABLE;
  if (events & EPOLLPRI) ready |= PRIORITY;
  if (events & EPOLLRDHUP) ready |= HANGUP;
  if (events & EPOLLHUP) ready |= HANGUP | READABLE;
  if (events & EPOLLERR) ready |= ERROR;
  return ready;
}
