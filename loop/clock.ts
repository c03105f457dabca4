/**
 * Clocks: where a loop reads its time from.
 *
 * @module
 */
import { describe } from "../poller/_validate.ts";

/**
 * A source of monotonic time in milliseconds (fractional). A loop reads it once per iteration and
 * before it checks timers.
 */
export interface Clock {
  /** The current time in ms. Never decreases. */
  now(): number;
  /** `true` for clocks that move only when told (a loop then advances them when it is idle). */
  readonly virtual?: boolean;
}

/**
 * The monotonic system clock (`performance.now()`), the default of every loop.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const startMs = systemClock.now();
 * console.log(systemClock.now() >= startMs); // true
 * ```
 */
export const systemClock: Clock = Object.freeze({
  now: (): number => performance.now(),
  virtual: false,
});

/**
 * A {@linkcode Clock} whose time moves only when told, for deterministic tests. A loop on a virtual
 * clock advances it to the next timer deadline (or the next change a `FakePoller` has scripted)
 * whenever it has nothing else to do (tokio's paused time), so a test that sleeps for an hour
 * finishes at once. It never advances while work is runnable, and a watched fd that stays ready
 * (polling is level-triggered) counts as runnable: a test must read, modify or close such an fd, or
 * a timer meant to time it out never comes. Only the loop's time is virtual: `Date.now()` and
 * `performance.now()` keep real time, so code under test should read {@linkcode Loop.now}.
 *
 * @example Advancing by hand
 * ```ts
 * import { VirtualClock } from "./clock.ts";
 * const clock = new VirtualClock();
 * clock.advance(1500);
 * console.log(clock.now()); // 1500
 * ```
 */
export class VirtualClock implements Clock {
  #nowMs: number;
  /** Always `true`: this clock moves only when told. */
  readonly virtual = true;

  /**
   * Makes a virtual clock.
   *
   * @param startMs The initial time in ms (default 0), finite and non-negative.
   * @throws {TypeError} If `startMs` is not a number.
   * @throws {RangeError} If it is negative, `NaN` or infinite.
   */
  constructor(startMs = 0) {
    checkNumber(startMs, "create a virtual clock as the start time");
    if (!Number.isFinite(startMs) || startMs < 0) {
      throw new RangeError(
        `Cannot create a virtual clock as the start time must be a finite number >= 0: current value is ${startMs}`,
      );
    }
    this.#nowMs = startMs;
  }

  /** The current virtual time in ms. */
  now(): number {
    return this.#nowMs;
  }

  /**
   * Moves the clock forward by `deltaMs`.
   *
   * @param deltaMs How far to move, finite and non-negative.
   * @returns The new time in ms.
   * @throws {TypeError} If `deltaMs` is not a number.
   * @throws {RangeError} If it is negative, `NaN` or infinite.
   */
  advance(deltaMs: number): number {
    checkNumber(deltaMs, "advance a virtual clock as the step");
    if (!Number.isFinite(deltaMs) || deltaMs < 0) {
      throw new RangeError(
        `Cannot advance a virtual clock as the step must be a finite number >= 0: current value is ${deltaMs}`,
      );
    }
    this.#nowMs += deltaMs;
    return this.#nowMs;
  }

  /**
   * Sets the clock to `timeMs`, which must not be earlier than the current time.
   *
   * @param timeMs The new time in ms.
   * @throws {TypeError} If `timeMs` is not a number.
   * @throws {RangeError} If it is earlier than the current time, `NaN` or infinite.
   */
  set(timeMs: number): void {
    checkNumber(timeMs, "set a virtual clock as the time");
    if (!Number.isFinite(timeMs) || timeMs < this.#nowMs) {
      throw new RangeError(
        `Cannot set a virtual clock backwards or to a non-finite time: current value is ${timeMs}, clock is at ${this.#nowMs}`,
      );
    }
    this.#nowMs = timeMs;
  }
}

/** Throws a `TypeError` showing `value` unless it is a number (`what` says which one). */
function checkNumber(value: unknown, what: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${what} must be a number: current value is ${describe(value)}`);
  }
}
