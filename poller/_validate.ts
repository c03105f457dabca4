// Argument checks shared by every backend, so they all reject bad input the same way.
import { INTEREST_MASK } from "./types.ts";

/** Largest fd a C `int` can hold; larger numbers cannot name an open file. */
export const MAX_FD = 0x7fffffff;
/** Largest token (u32). */
export const MAX_TOKEN = 0xffffffff;
/** The longest finite timeout handed to the kernel, in ms (C `int` milliseconds, ~24.8 days). */
export const MAX_TIMEOUT_MS = 0x7fffffff;

/**
 * Throws a TypeError unless `fd` is an integer. Returns whether it is in `[0, MAX_FD]`: callers
 * turn an out-of-range integer into the `EBADF` the kernel would report.
 */
export function checkFd(fd: unknown, action: string): boolean {
  if (typeof fd !== "number" || !Number.isInteger(fd)) {
    throw new TypeError(
      `Cannot ${action} as the fd must be an integer: current value is ${describe(fd)}`,
    );
  }
  return fd >= 0 && fd <= MAX_FD;
}

/** Throws unless `token` is an integer in `[0, 2^32)`. */
export function checkToken(token: unknown, action: string): void {
  if (typeof token !== "number" || !Number.isInteger(token)) {
    throw new TypeError(
      `Cannot ${action} as the token must be an integer: current value is ${describe(token)}`,
    );
  }
  if (token < 0 || token > MAX_TOKEN) {
    throw new RangeError(
      `Cannot ${action} as the token must be in [0, 4294967295]: current value is ${token}`,
    );
  }
}

/** Throws unless `interest` is a non-zero combination of READABLE, WRITABLE and PRIORITY. */
export function checkInterest(interest: unknown, action: string): void {
  if (typeof interest !== "number" || !Number.isInteger(interest)) {
    throw new TypeError(
      `Cannot ${action} as the interest must be an integer: current value is ${describe(interest)}`,
    );
  }
  if (interest === 0 || (interest & ~INTEREST_MASK) !== 0 || interest < 0) {
    throw new RangeError(
      `Cannot ${action} as the interest must be a non-zero combination of READABLE (1), WRITABLE (2) and PRIORITY (4): current value is ${interest}`,
    );
  }
}

/**
 * Validates a wait timeout and normalises it: `-1` for "forever" (negative or `Infinity`),
 * otherwise the finite, non-negative ms value (fractional kept; `-0` becomes `0`).
 */
export function normaliseTimeout(timeoutMs: unknown): number {
  if (typeof timeoutMs !== "number") {
    throw new TypeError(
      `Cannot wait as the timeout must be a number of ms: current value is ${describe(timeoutMs)}`,
    );
  }
  if (timeoutMs !== timeoutMs) {
    throw new RangeError("Cannot wait as the timeout must not be NaN: current value is NaN");
  }
  if (timeoutMs < 0 || timeoutMs === Infinity) return -1;
  // `+ 0` turns -0 into 0: Deno's FFI refuses -0 as an i32 (the ms of poll and epoll_wait).
  return timeoutMs + 0;
}

/** Throws unless `batch` looks like an EventBatch (cheap: hot path). */
export function checkBatch(batch: unknown): void {
  const b = batch as { tokens?: unknown; readiness?: unknown; capacity?: unknown } | null;
  if (
    b === null || typeof b !== "object" || !(b.tokens instanceof Uint32Array) ||
    !(b.readiness instanceof Uint8Array) || typeof b.capacity !== "number"
  ) {
    throw new TypeError(
      `Cannot wait as the batch must be an EventBatch: current value is ${describe(batch)}`,
    );
  }
}

/** The longest string an error message shows whole; longer ones are cut (their length is given). */
const SHOWN_STRING_CHARS = 64;

/**
 * A value as error messages show it ("Cannot X as Y: current value is Z"): strings quoted (long ones
 * cut), `5n` for a BigInt, `Symbol(s)`, `function f`, `[object Array]`. Never throws, whatever the
 * value (a revoked Proxy, a throwing `Symbol.toStringTag` getter).
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value.length <= SHOWN_STRING_CHARS
        ? JSON.stringify(value)
        : `${JSON.stringify(value.slice(0, SHOWN_STRING_CHARS))}... (${value.length} characters)`;
    case "function": {
      let name: unknown;
      try {
        name = value.name;
      } catch {
        // a revoked Proxy of a function, or a throwing static `name` getter
      }
      return typeof name === "string" && name !== "" ? `function ${name}` : "a function";
    }
    case "bigint":
      return `${value}n`;
    case "symbol":
      return value.toString();
    case "object":
      if (value === null) return "null";
      try {
        return Object.prototype.toString.call(value);
      } catch {
        return "an object that cannot be inspected (a revoked Proxy?)";
      }
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    default:
      return String(value); // undefined, boolean
  }
}

/** A whole-ms timeout (`poll`, `epoll_wait`): fractions round up, so a wait never ends early. */
export function wholeMsTimeout(ms: number): number {
  return ms < 0 ? -1 : Math.min(Math.ceil(ms), MAX_TIMEOUT_MS);
}

/**
 * Writes `ms` (finite, >= 0) into a 64-bit `struct timespec` viewed as four little-endian i32
 * words, rounding the nanoseconds up so a wait never ends early.
 */
export function writeTimespec(words: Int32Array, ms: number): void {
  let sec = Math.floor(ms / 1000);
  let nsec = Math.ceil((ms - sec * 1000) * 1e6);
  if (nsec >= 1e9) {
    sec += 1;
    nsec -= 1e9;
  }
  if (sec > 0x7fffffff) {
    sec = 0x7fffffff;
    nsec = 0;
  }
  words[0] = sec;
  words[1] = 0;
  words[2] = nsec;
  words[3] = 0;
}

/**
 * Throws a `TypeError` in the house format unless `value` is undefined or a boolean: a truthy `1`
 * or `"false"` must not silently mean true (or false).
 */
export function checkOptionalBoolean(value: unknown, what: string, name: string): void {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(
      `Cannot ${what} as ${name} must be a boolean: current value is ${describe(value)}`,
    );
  }
}
