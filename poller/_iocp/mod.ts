/**
 * The Windows backend: readiness of sockets over an I/O completion port through the AFD poll
 * mechanism (as wepoll and mio do). Only sockets can be polled; `fd` is the `SOCKET` handle value.
 * Level-triggered like every backend. Nothing is loaded until {@linkcode createIocpPoller} runs.
 *
 * @module
 */

import type { Poller } from "../types.ts";

export type { EventBatch, Poller, PollerBackend } from "../types.ts";
import { IocpPoller } from "./poller.ts";

/**
 * Creates an IOCP poller (Windows only): opens kernel32, ntdll and ws2_32, starts Winsock and
 * creates the completion port. Throws `PollerUnavailableError` without `--allow-ffi`.
 *
 * @example Waiting on a socket
 * ```ts ignore
 * import { createIocpPoller } from "./mod.ts";
 * import { EventBatch, READABLE } from "../types.ts";
 * const poller = createIocpPoller();
 * const socket = 0x1a4; // a SOCKET handle from a native library
 * poller.register(socket, 1, READABLE);
 * const batch = new EventBatch(64);
 * const n = poller.wait(batch, 100);
 * console.log(n, batch.tokens[0]);
 * await poller.close();
 * ```
 *
 * @returns A new poller whose `backend` is `"iocp"`.
 */
export function createIocpPoller(): Poller {
  return new IocpPoller();
}
