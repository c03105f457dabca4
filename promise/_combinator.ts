// The machinery shared by all(), allSettled(), race() and any(): one aggregator class for the four
// (monomorphic element callback), spec-order iteration, task-factory mode and loop tracking.
import type { Loop } from "../loop/loop.ts";
import { currentLoop } from "../loop/default_loop.ts";
import type { LoopClosedError } from "../loop/errors.ts";
import { type Disposition, kTrack, kUntrack, type TrackedResource } from "../loop/_internal.ts";
import {
  type LoopPromise,
  makePromise,
  observe,
  queueCallback,
  runtimeOf,
  settlePromise,
} from "./loop_promise.ts";
import type { AbortLosersOptions, CombinatorOptions } from "./types.ts";

export type { CombinatorOptions, SettledOutcome } from "./types.ts";

export const ALL = 0;
export const ALL_SETTLED = 1;
export const RACE = 2;
export const ANY = 3;
const NAMES = ["all", "allSettled", "race", "any"] as const;

/** A DOMException named `AbortError`, with an optional `cause`. */
export function abortError(message: string, cause?: unknown): DOMException {
  const error = new DOMException(message, "AbortError");
  if (cause !== undefined) {
    Object.defineProperty(error, "cause", { value: cause, writable: true, configurable: true });
  }
  return error;
}

/** Validates an optional `signal` option. */
export function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new TypeError(
    `Cannot ${what} as the signal must be an AbortSignal: current value is ${
      signal === null ? "null" : typeof signal
    }`,
  );
}

/** Validates an options bag. */
export function checkOptions(options: unknown, what: string): void {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(
      `Cannot ${what} as the options must be an object: current value is ${
        options === null ? "null" : typeof options
      }`,
    );
  }
}

class Aggregator implements TrackedResource {
  readonly refed = false;
  readonly mode: number;
  readonly loop: Loop;
  readonly result: LoopPromise<unknown>;
  values: unknown[] | undefined = undefined;
  remaining = 1;
  count = 0;
  done = false;
  tracked = false;
  controllers: (AbortController | undefined)[] | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;

  constructor(mode: number, loop: Loop, result: LoopPromise<unknown>) {
    this.mode = mode;
    this.loop = loop;
    this.result = result;
  }

  get kind(): string {
    return `promise.${NAMES[this.mode]}`;
  }

  get label(): string {
    return `${NAMES[this.mode]}() of ${this.count} inputs`;
  }

  dispose(error: LoopClosedError): Disposition {
    if (this.done) return "cancelled";
    this.tracked = false; // the loop already forgot it
    finish(this, true, error, error);
    return "rejected";
  }
}

function finish(agg: Aggregator, rejected: boolean, value: unknown, abortReason?: unknown): void {
  agg.done = true;
  if (agg.tracked) {
    agg.tracked = false;
    agg.loop[kUntrack](agg);
  }
  if (agg.onAbort !== undefined) agg.signal!.removeEventListener("abort", agg.onAbort);
  settlePromise(agg.result, rejected, value);
  const controllers = agg.controllers;
  if (controllers === undefined) return;
  agg.controllers = undefined;
  let reason = abortReason;
  for (const controller of controllers) {
    if (controller === undefined) continue;
    reason ??= agg.mode === RACE
      ? abortError("Aborted: another input of race() settled first")
      : agg.mode === ANY
      ? abortError("Aborted: another input of any() fulfilled first")
      : abortError("Aborted: another input of all() rejected", value);
    controller.abort(reason);
  }
}

function onElement(agg: Aggregator, index: number, rejected: boolean, value: unknown): void {
  if (agg.done) return;
  const controllers = agg.controllers;
  if (controllers !== undefined) controllers[index] = undefined; // settled: not a loser
  switch (agg.mode) {
    case ALL:
      if (rejected) finish(agg, true, value);
      else {
        agg.values![index] = value;
        if (--agg.remaining === 0) finish(agg, false, agg.values);
      }
      return;
    case ALL_SETTLED:
      agg.values![index] = rejected
        ? { status: "rejected", reason: value }
        : { status: "fulfilled", value };
      if (--agg.remaining === 0) finish(agg, false, agg.values);
      return;
    case RACE:
      finish(agg, rejected, value);
      return;
    default: // ANY
      if (!rejected) finish(agg, false, value);
      else {
        agg.values![index] = value;
        if (--agg.remaining === 0) {
          finish(agg, true, new AggregateError(agg.values!, "All promises were rejected"));
        }
      }
  }
}

/** The four combinators: spec iteration order, a rejected result (never a throw) for bad input. */
export function combine(
  mode: number,
  input: Iterable<unknown>,
  options: CombinatorOptions | AbortLosersOptions | undefined,
): LoopPromise<unknown> {
  const what = `call ${NAMES[mode]}()`;
  checkOptions(options, what);
  const loop = options?.loop ?? currentLoop();
  const rt = runtimeOf(loop);
  const signal = checkSignal(options?.signal, what);
  const tasks = options?.abortLosers === true && mode !== ALL_SETTLED;
  const result = makePromise<unknown>(rt);
  if (signal?.aborted) {
    settlePromise(result, true, signal.reason);
    return result;
  }
  const agg = new Aggregator(mode, loop, result);
  if (mode !== RACE) agg.values = [];
  if (tasks) agg.controllers = [];
  if (signal !== undefined) {
    agg.signal = signal;
    agg.onAbort = () => {
      if (!agg.done) finish(agg, true, signal.reason, signal.reason);
    };
    signal.addEventListener("abort", agg.onAbort, { once: true });
  }
  let index = 0;
  try {
    for (const item of input) {
      const i = index++;
      agg.values?.push(undefined);
      agg.remaining++;
      let value = item;
      if (tasks) {
        if (agg.done) break; // aborted meanwhile: start nothing more
        if (typeof item === "function") {
          const controller = new AbortController();
          agg.controllers!.push(controller);
          try {
            value = item(controller.signal);
          } catch (error) {
            queueCallback(rt, onElement, agg, i, true, error);
            continue;
          }
        } else agg.controllers!.push(undefined);
      }
      observe(rt, value, onElement, agg, i);
    }
  } catch (error) {
    // GetIterator or IteratorStep failed: the result rejects (the iterator is not closed).
    agg.count = index;
    if (!agg.done) {
      const reason = tasks
        ? abortError(`Aborted: reading the inputs of ${NAMES[mode]}() threw`, error)
        : undefined;
      finish(agg, true, error, reason);
    }
    return result;
  }
  agg.count = index;
  if (agg.done) return result;
  if (--agg.remaining === 0 && mode !== RACE) {
    if (mode === ANY) {
      finish(agg, true, new AggregateError(agg.values!, "All promises were rejected"));
    } else finish(agg, false, agg.values);
    return result;
  }
  agg.tracked = true;
  loop[kTrack](agg);
  return result;
}
