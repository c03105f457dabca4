/**
 * Readiness polling for arbitrary file descriptors, over FFI: epoll on Linux, kqueue on macOS and
 * the BSDs, IOCP (AFD polling, sockets) on Windows, and a portable `poll(2)` fallback. Plus a
 * scripted {@linkcode FakePoller} for tests.
 *
 * Every backend is **level-triggered**: an fd that stays ready is reported by every wait until the
 * condition clears. Spurious wakeups are allowed (a wait may return 0 early); callers loop.
 * Nothing is loaded at import: {@linkcode createPoller} opens the system library when called and
 * needs `--allow-ffi`; without it, it throws a {@linkcode PollerUnavailableError} whose `reason` is
 * `"permission"`.
 *
 * Register before you close: an fd must be unregistered before it is closed (epoll forgets a
 * closed fd silently, poll reports it as ERROR, and a reused fd number would look registered).
 *
 * @example Waiting for a readable fd
 * ```ts
 * import { createPoller, EventBatch, READABLE } from "./mod.ts";
 *
 * const poller = createPoller(); // needs --allow-ffi
 * const batch = new EventBatch(64);
 * // poller.register(fd, token, READABLE) for the fds you care about, then:
 * const count = await poller.waitAsync(batch, 10); // parked off-thread for up to 10 ms
 * for (let i = 0; i < count; i++) {
 *   if (batch.readiness[i] & READABLE) console.log("token", batch.tokens[i], "is readable");
 * }
 * await poller.close();
 * ```
 *
 * @module
 */
export { createPoller } from "./create_poller.ts";
export { FakePoller, type FakePollerClock, type FakePollerOptions } from "./fake_poller.ts";
export { PollerError, PollerUnavailableError, type PollerUnavailableReason } from "./errors.ts";
export {
  type CreatePollerOptions,
  ERROR,
  EventBatch,
  HANGUP,
  INTEREST_MASK,
  type Poller,
  type PollerBackend,
  PRIORITY,
  READABLE,
  WRITABLE,
} from "./types.ts";
