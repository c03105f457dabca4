/**
 * `sleep()`: a promise that resolves after a delay on a loop's timers.
 *
 * @module
 */
import type { Loop } from "../loop/loop.ts";
import type { LoopClosedError } from "../loop/errors.ts";
import type { Timer } from "../loop/types.ts";
import { type Disposition, kTrack, kUntrack, type TrackedResource } from "../loop/_internal.ts";
import { requestHostTurn } from "../loop/_core.ts";
import { checkDelay, checkOptions, queueNativeMicrotask } from "./_helper.ts";

/** Options for {@linkcode sleep}. */
export interface SleepOptions {
  /** Aborting it rejects the sleep with `signal.reason` and clears its timer. */
  signal?: AbortSignal;
  /** The loop whose timers to use; default the current loop (the running one, else the default). */
  loop?: Loop;
}

/** One pending sleep: its timer, abort listener and tracking entry in one object. */
class Sleeper implements TrackedResource, EventListenerObject {
  readonly kind = "sleep";
  readonly label: string;
  /** Keeps `run()` alive while pending and until its continuation had a microtask to run. */
  refed = true;
  settled = false;
  timer: Timer | null = null;
  readonly loop: Loop;
  readonly signal: AbortSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;

  constructor(
    loop: Loop,
    delayMs: number,
    signal: AbortSignal | undefined,
    resolve: () => void,
    reject: (reason: unknown) => void,
  ) {
    this.loop = loop;
    this.label = `sleep(${delayMs} ms)`;
    this.signal = signal;
    this.resolve = resolve;
    this.reject = reject;
  }

  /** The abort listener. */
  handleEvent(): void {
    if (this.settled) return;
    this.release(true);
    this.reject(this.signal!.reason);
  }

  dispose(error: LoopClosedError): Disposition {
    if (this.settled) return "cancelled";
    this.release(false); // the closing loop already forgot it
    this.reject(error);
    return "rejected";
  }

  release(untrack: boolean): void {
    this.settled = true;
    this.timer?.close();
    this.timer = null;
    this.signal?.removeEventListener("abort", this);
    if (untrack) {
      // The continuation of `await sleep()` runs as a native microtask, after the loop's batch: stay
      // tracked until it has run, so an explicit loop's run() sees the work it schedules next.
      queueNativeMicrotask(() => this.loop[kUntrack](this));
    }
  }
}

function fireSleep(sleeper: Sleeper): void {
  if (sleeper.settled) return;
  requestHostTurn(sleeper.timer!); // the loop lets the continuation run before it goes on
  sleeper.timer = null; // fired: nothing to clear
  sleeper.release(true);
  sleeper.resolve();
}
// The name shows in close reports for the (unref'd) timer behind a sleep.
Object.defineProperty(fireSleep, "name", { value: "sleep" });

/**
 * Resolves after `delayMs` on a loop's timers (precise: see the module documentation), or rejects
 * with `signal.reason` when the signal aborts (at once if it already has; the timer is cleared and
 * the abort listener removed, so nothing is left behind). It never throws: bad arguments reject with
 * a `TypeError` or `RangeError`, and a sleep pending when its loop closes rejects with
 * `LoopClosedError`.
 *
 * The promise is a native one: code after `await sleep()` runs as a Deno microtask once the loop's
 * current batch has returned, not inside the loop, so `currentLoop()` there is the default loop (pass
 * `{ loop }` on). While a sleep is pending, and until its continuation has had a microtask to run,
 * it keeps `loop.run()` alive (`aliveReasons()` lists it as kind `"sleep"`).
 *
 * @param delayMs How long to sleep, in ms (floats honoured; `NaN` and negative mean 0).
 * @param options `signal` to abort, `loop` to sleep on.
 * @returns A promise that resolves to `undefined` after the delay.
 *
 * @example Sleeping on a virtual clock
 * ```ts
 * import { Loop, VirtualClock } from "../loop/mod.ts";
 * import { sleep } from "./sleep.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const done = sleep(60_000, { loop }).then(() => loop.now());
 * await loop.run(); // a minute of virtual time, at once
 * console.log(await done); // 60000
 * await loop.close();
 * ```
 *
 * @example Aborting
 * ```ts
 * import { sleep } from "./sleep.ts";
 *
 * const controller = new AbortController();
 * const slept = sleep(10_000, { signal: controller.signal });
 * controller.abort(new Error("gave up"));
 * await slept.catch((error) => console.log(error.message)); // "gave up"
 * ```
 */
export function sleep(delayMs: number, options?: SleepOptions): Promise<void> {
  let loop: Loop;
  let delay: number;
  try {
    delay = checkDelay(delayMs, "sleep");
    loop = checkOptions(options, "sleep");
  } catch (error) {
    return Promise.reject(error);
  }
  const signal = options?.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const sleeper = new Sleeper(loop, delay, signal, resolve, reject);
  try {
    // Unref'd: the tracked sleeper carries the liveness (and the label in aliveReasons()).
    sleeper.timer = loop.setTimeout(fireSleep, delay, sleeper).unref();
  } catch (error) {
    return Promise.reject(error); // LoopClosedError
  }
  loop[kTrack](sleeper);
  signal?.addEventListener("abort", sleeper, { once: true });
  return promise;
}
