import { PollerUnavailableError } from "./errors.ts";
import type { CreatePollerOptions, Poller, PollerBackend } from "./types.ts";
import { describe } from "./_validate.ts";
import { createEpollPoller } from "./_epoll/mod.ts";
import { createPollPoller } from "./_poll/mod.ts";
import { createKqueuePoller } from "./_kqueue/mod.ts";
import { createIocpPoller } from "./_iocp/mod.ts";

type RealBackend = Exclude<PollerBackend, "fake">;

const BACKENDS: readonly RealBackend[] = Object.freeze(["epoll", "poll", "kqueue", "iocp"]);
const KQUEUE_OSES: readonly string[] = Object.freeze(["darwin", "freebsd", "openbsd", "netbsd"]);

/** Which backend `os` supports natively, if any. */
function nativeBackend(os: string): RealBackend | undefined {
  if (os === "linux") return "epoll";
  if (KQUEUE_OSES.includes(os)) return "kqueue";
  if (os === "windows") return "iocp";
  return undefined;
}

/** Whether `backend` can run on `os`. */
function runsOn(backend: RealBackend, os: string): boolean {
  switch (backend) {
    case "epoll":
      return os === "linux";
    case "kqueue":
      return KQUEUE_OSES.includes(os);
    case "iocp":
      return os === "windows";
    case "poll":
      return os === "linux" || KQUEUE_OSES.includes(os);
  }
}

/**
 * Creates the best readiness poller for the running platform, chosen from `Deno.build.os` and
 * `Deno.build.arch` when called: epoll on Linux, kqueue on macOS/FreeBSD/OpenBSD/NetBSD, IOCP
 * (AFD polling, sockets only) on Windows, or the portable `poll(2)` fallback when
 * `options.backend` is `"poll"`. Nothing is loaded before this is called.
 *
 * Every backend is level-triggered and may wake spuriously (see {@linkcode Poller}).
 *
 * @param options `backend` forces a backend instead of the platform's best one.
 * @returns A new poller; close it with {@linkcode Poller.close}.
 * @throws {PollerUnavailableError} With reason `"permission"` when `--allow-ffi` is not granted,
 * or `"platform"` when this OS/arch has no backend (or not the one asked for).
 * @throws {TypeError} When `options` is not an object or `options.backend` is not a backend name.
 * @throws {PollerError} When the kernel refuses to create the poller (e.g. `EMFILE`).
 *
 * @example Polling once
 * ```ts
 * import { createPoller, EventBatch } from "./mod.ts";
 *
 * const poller = createPoller(); // needs --allow-ffi
 * const batch = new EventBatch(64);
 * // Register fds with poller.register(fd, token, READABLE), then wait:
 * const count = poller.wait(batch, 0); // 0 ms: do not block
 * for (let i = 0; i < count; i++) console.log("token", batch.tokens[i], "is ready");
 * await poller.close();
 * ```
 */
export function createPoller(options: CreatePollerOptions = {}): Poller {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot create a poller as the options must be an object: current value is ${
        describe(options)
      }`,
    );
  }
  const requested = options.backend;
  if (requested !== undefined && !BACKENDS.includes(requested)) {
    throw new TypeError(
      `Cannot create a poller as the backend must be one of ${
        BACKENDS.map((b) => `"${b}"`).join(", ")
      } or undefined: current value is ${describe(requested)}`,
    );
  }
  const state = Deno.permissions.querySync({ name: "ffi" }).state;
  if (state !== "granted") {
    throw new PollerUnavailableError(
      "permission",
      `Cannot create a poller: watching file descriptors requires the FFI permission: run with --allow-ffi (the permission is currently "${state}")`,
    );
  }
  const { os, arch } = Deno.build;
  if (arch !== "x86_64" && arch !== "aarch64") {
    throw new PollerUnavailableError(
      "platform",
      `Cannot create a poller as there is no backend for this platform: current value is ${os}/${arch} (supported: x86_64 and aarch64)`,
    );
  }
  const backend = requested ?? nativeBackend(os);
  if (backend === undefined || !runsOn(backend, os)) {
    throw new PollerUnavailableError(
      "platform",
      `Cannot create a${backend === undefined ? "" : ` ${backend}`} poller as there is no ${
        backend ?? "polling"
      } backend for this platform: current value is ${os}/${arch}`,
    );
  }
  switch (backend) {
    case "epoll":
      return load("epoll", os, arch, createEpollPoller);
    case "poll":
      return load("poll", os, arch, createPollPoller);
    case "kqueue":
      return load("kqueue", os, arch, createKqueuePoller);
    case "iocp":
      return load("iocp", os, arch, createIocpPoller);
  }
}

/** Runs a backend factory, turning a failure to load its system library into a platform error. */
function load(backend: RealBackend, os: string, arch: string, factory: () => Poller): Poller {
  try {
    return factory();
  } catch (error) {
    // dlopen failures are plain Errors from Deno; kernel refusals are PollerErrors and the
    // backend's own PollerUnavailableErrors already say why: pass those through.
    if (error instanceof Error && error.name !== "Error") throw error;
    throw new PollerUnavailableError(
      "platform",
      `Cannot create a ${backend} poller as its system library could not be loaded on ${os}/${arch}: ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  }
}
