/**
 * The macOS/BSD backend: kqueue (level-triggered EVFILT_READ/EVFILT_WRITE, EVFILT_EXCEPT for
 * PRIORITY where the system has it), woken by EVFILT_USER or a pipe. Nothing is loaded until
 * {@linkcode createKqueuePoller} runs.
 *
 * @module
 */

import { PollerUnavailableError } from "../errors.ts";
import type { Poller } from "../types.ts";

export type { EventBatch, Poller, PollerBackend } from "../types.ts";
import { openKqueueLibrary } from "./_ffi.ts";
import { kqueuePlatform } from "./_layout.ts";
import { KqueuePoller } from "./kqueue_poller.ts";

/**
 * Creates a kqueue poller for the running system (macOS, FreeBSD, OpenBSD or NetBSD on x86_64 or
 * aarch64), choosing the `struct kevent` layout and libc names from `Deno.build`.
 *
 * @example Waiting on stdin
 * ```ts ignore
 * import { createKqueuePoller } from "./mod.ts";
 * import { EventBatch, READABLE } from "../types.ts";
 * const poller = createKqueuePoller();
 * poller.register(0, 1, READABLE);
 * const batch = new EventBatch(16);
 * console.log(poller.wait(batch, 1000));
 * await poller.close();
 * ```
 *
 * @returns A new poller whose `backend` is `"kqueue"`.
 * @throws {PollerUnavailableError} Off the kqueue systems, or without `--allow-ffi`.
 */
export function createKqueuePoller(): Poller {
  const { os, arch } = Deno.build;
  const platform = kqueuePlatform(os, arch);
  if (platform === undefined) {
    throw new PollerUnavailableError(
      "platform",
      `Cannot create a kqueue poller as this platform has no kqueue layout: current value is ${os}/${arch}`,
    );
  }
  let lib;
  try {
    lib = openKqueueLibrary(platform);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new PollerUnavailableError(
        "permission",
        "Cannot create a kqueue poller as the FFI permission is missing: run with --allow-ffi",
        { cause: error },
      );
    }
    throw error;
  }
  return new KqueuePoller(lib, platform);
}
