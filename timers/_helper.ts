// Shared plumbing of sleep() and interval(): argument checks, float-safe delays, and the deferred
// untrack that keeps an explicit loop alive while a native promise's continuation is pending.
import { describe } from "../poller/_validate.ts";
import { Loop } from "../loop/loop.ts";
import { currentLoop } from "../loop/default_loop.ts";

// Captured at import: install() may replace the global with a loop's own queueMicrotask.
const nativeQueueMicrotask: (callback: () => void) => void = globalThis.queueMicrotask.bind(
  globalThis,
);

/** Runs `callback` as a native (Deno) microtask, whatever `install()` did to the global. */
export function queueNativeMicrotask(callback: () => void): void {
  nativeQueueMicrotask(callback);
}

/** Validates a helper's delay the loop's way (NaN and negative become 0); returns it. */
export function checkDelay(delayMs: unknown, what: string): number {
  if (typeof delayMs !== "number") {
    throw new TypeError(
      `Cannot ${what} as the delay must be a number of ms: current value is ${describe(delayMs)}`,
    );
  }
  if (delayMs > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(
      `Cannot ${what} as the delay must be finite and at most 2^53-1 ms: current value is ${delayMs}`,
    );
  }
  return delayMs > 0 ? delayMs : 0; // NaN, negative, zero
}

/** Validates the options object and the `loop` and `signal` in it; returns the loop to use. */
export function checkOptions(
  options: { loop?: Loop; signal?: AbortSignal } | undefined,
  what: string,
): Loop {
  if (options === undefined) return currentLoop();
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot ${what} as the options must be an object: current value is ${describe(options)}`,
    );
  }
  const { loop, signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot ${what} as the signal must be an AbortSignal: current value is ${describe(signal)}`,
    );
  }
  if (loop === undefined) return currentLoop();
  if (!(loop instanceof Loop)) {
    throw new TypeError(
      `Cannot ${what} as the loop must be a Loop: current value is ${describe(loop)}`,
    );
  }
  return loop;
}

/**
 * The delay from `nowMs` that reaches `deadlineMs`: `nowMs + delay` must not round below the
 * deadline, or the timer would fire an ulp early.
 */
export function delayUntil(nowMs: number, deadlineMs: number): number {
  let delayMs = deadlineMs - nowMs;
  if (!(delayMs > 0)) return 0;
  for (let i = 0; i < 8 && nowMs + delayMs < deadlineMs; i++) {
    delayMs += Math.max(deadlineMs - (nowMs + delayMs), delayMs * Number.EPSILON);
  }
  return delayMs;
}
