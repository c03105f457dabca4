// The machinery shared by all(), allSettled(), race() and any(): one aggregator class for the four
// (monomorphic element callback), spec-order iteration, task-factory mode and loop tracking.
import { checkOptionalBoolean, describe } from "../poller/_validate.ts";
import type { Loop } from "../loop/loop.ts";
import { currentLoop } from "../loop/default_loop.ts";
import { LoopClosedError } from "../loop/errors.ts";
import { type Disposition, kTrack, kUntrack, type TrackedResource } from "../loop/_internal.ts";
import {
  type LoopPromise,
  makeObserver,
  makePromise,
  observeWith,
  queueCallback,
  type Runtime,
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

/**
 * Tracks a pending helper on its loop, so that close() rejects it. On a loop already closed,
 * nothing would ever reject it: it is disposed at once (rejected with `LoopClosedError`, as
 * `sleep()` is there) rather than left pending forever.
 */
export function trackOn(loop: Loop, resource: TrackedResource): void {
  if (loop.state !== "closed") {
    loop[kTrack](resource);
    return;
  }
  resource.dispose(
    new LoopClosedError(`Cannot settle ${resource.label} as its loop "${loop.label}" is closed`),
  );
}

/** Validates an optional `signal` option. */
export function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new TypeError(
    `Cannot ${what} as the signal must be an AbortSignal: current value is ${describe(signal)}`,
  );
}

/** Validates an options bag. */
export function checkOptions(options: unknown, what: string): void {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(
      `Cannot ${what} as the options must be an object: current value is ${describe(options)}`,
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

// One element callback per mode (small and monomorphic); task mode wraps them.
function onAll(agg: Aggregator, index: number, rejected: boolean, value: unknown): void {
  if (agg.done) return;
  if (rejected) finish(agg, true, value);
  else {
    agg.values![index] = value;
    if (--agg.remaining === 0) finish(agg, false, agg.values);
  }
}

function onAllSettled(agg: Aggregator, index: number, rejected: boolean, value: unknown): void {
  if (agg.done) return;
  agg.values![index] = rejected ? { status: "rejected", reason: value } : {
    status: "fulfilled",
    value,
  };
  if (--agg.remaining === 0) finish(agg, false, agg.values);
}

function onRace(agg: Aggregator, _index: number, rejected: boolean, value: unknown): void {
  if (!agg.done) finish(agg, rejected, value);
}

function onAny(agg: Aggregator, index: number, rejected: boolean, value: unknown): void {
  if (agg.done) return;
  if (!rejected) finish(agg, false, value);
  else {
    agg.values![index] = value;
    if (--agg.remaining === 0) {
      finish(agg, true, new AggregateError(agg.values!, "All promises were rejected"));
    }
  }
}

const CALLBACKS = [onAll, onAllSettled, onRace, onAny];

/** Task mode: a settled input is no loser (its signal is never aborted). */
function onTask(agg: Aggregator, index: number, rejected: boolean, value: unknown): void {
  if (agg.done) return;
  agg.controllers![index] = undefined;
  CALLBACKS[agg.mode](agg, index, rejected, value);
}

const arrayValues = Array.prototype[Symbol.iterator];
const arrayIteratorPrototype = Object.getPrototypeOf([][Symbol.iterator]());
const arrayIteratorNext = arrayIteratorPrototype.next;

/**
 * Whether iterating `input` with an index loop is unobservably the same as with its iterator: a
 * true array whose iteration protocol is untouched (the loop re-reads `length`, as the iterator
 * does, and reads holes as `undefined`).
 */
function isPlainArray(input: unknown): input is readonly unknown[] {
  return Array.isArray(input) && input[Symbol.iterator] === arrayValues &&
    arrayIteratorPrototype.next === arrayIteratorNext;
}

/** The four combinators: spec iteration order, a rejected result (never a throw) for bad input. */
export function combine(
  mode: number,
  input: Iterable<unknown>,
  options: CombinatorOptions | AbortLosersOptions | undefined,
): LoopPromise<unknown> {
  if (options !== undefined) {
    checkOptions(options, `call ${NAMES[mode]}()`);
    // A truthy 1 or "yes" would silently leave task-factory mode off: the factories themselves
    // would become the values.
    checkOptionalBoolean(options.abortLosers, `call ${NAMES[mode]}()`, "abortLosers");
  }
  const loop = options?.loop ?? currentLoop();
  const rt = runtimeOf(loop);
  const rawSignal = options?.signal;
  const signal = rawSignal === undefined
    ? undefined
    : checkSignal(rawSignal, `call ${NAMES[mode]}()`);
  const tasks = options?.abortLosers === true && mode !== ALL_SETTLED;
  const result = makePromise<unknown>(rt);
  if (signal?.aborted) {
    settlePromise(result, true, signal.reason);
    return result;
  }
  const agg = new Aggregator(mode, loop, result);
  if (mode !== RACE) agg.values = [];
  if (signal !== undefined) listen(agg, signal);
  try {
    if (!isIterable(input)) {
      throw new TypeError(
        `Cannot run ${NAMES[mode]}() as its input must be iterable: current value is ${
          describe(input)
        }`,
      );
    }
    if (tasks) {
      if (loop.state === "closed") {
        // Nothing could abort the tasks or settle the result: start none (the caller learns).
        finish(
          agg,
          true,
          new LoopClosedError(
            `Cannot start the tasks of ${
              NAMES[mode]
            }() as the loop "${loop.label}" is closed: current state is closed`,
          ),
        );
        return result;
      }
      readTasks(agg, rt, input);
    } else if (isPlainArray(input)) readArray(agg, makeObserver(rt, CALLBACKS[mode], agg), input);
    else readIterable(agg, makeObserver(rt, CALLBACKS[mode], agg), input);
  } catch (error) {
    // GetIterator or IteratorStep failed: the result rejects (the iterator is not closed).
    if (!agg.done) {
      const reason = tasks
        ? abortError(`Aborted: reading the inputs of ${NAMES[mode]}() threw`, error)
        : undefined;
      finish(agg, true, error, reason);
    }
    return result;
  }
  if (agg.done) return result;
  if (--agg.remaining === 0 && mode !== RACE) {
    if (mode === ANY) {
      finish(agg, true, new AggregateError(agg.values!, "All promises were rejected"));
    } else finish(agg, false, agg.values);
    return result;
  }
  agg.tracked = true;
  trackOn(loop, agg);
  return result;
}

function listen(agg: Aggregator, signal: AbortSignal): void {
  agg.signal = signal;
  agg.onAbort = () => {
    if (!agg.done) finish(agg, true, signal.reason, signal.reason);
  };
  signal.addEventListener("abort", agg.onAbort, { once: true });
}

function readArray(
  agg: Aggregator,
  observer: LoopPromise<unknown>,
  input: readonly unknown[],
): void {
  let values = agg.values;
  if (values !== undefined) values = agg.values = new Array(input.length).fill(undefined);
  for (let i = 0; i < input.length; i++) {
    // The length is re-read: the array may grow while its elements' `then` getters run.
    if (values !== undefined && i >= values.length) values.push(undefined);
    agg.remaining++;
    agg.count = i + 1;
    observeWith(observer, input[i], i);
  }
  // ...or shrink (then it holds exactly the elements read).
  if (values !== undefined && values.length > agg.count) values.length = agg.count;
}

/** Whether `value` has a callable `Symbol.iterator` (GetIterator would not throw at once). */
function isIterable(value: unknown): value is Iterable<unknown> {
  return value !== null && value !== undefined &&
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function";
}

function readIterable(
  agg: Aggregator,
  observer: LoopPromise<unknown>,
  input: Iterable<unknown>,
): void {
  const values = agg.values;
  let i = 0;
  for (const value of input) {
    values?.push(undefined);
    agg.remaining++;
    agg.count = i + 1;
    observeWith(observer, value, i++);
  }
}

/** Task-factory mode: function inputs are called with their own signal. */
function readTasks(agg: Aggregator, rt: Runtime, input: Iterable<unknown>): void {
  const controllers: (AbortController | undefined)[] = agg.controllers = [];
  const observer = makeObserver(rt, onTask, agg);
  let i = 0;
  for (const item of input) {
    if (agg.done) break; // aborted meanwhile: start nothing more
    const index = i++;
    agg.values?.push(undefined);
    agg.remaining++;
    agg.count = i;
    if (typeof item !== "function") {
      controllers.push(undefined);
      observeWith(observer, item, index);
      continue;
    }
    const controller = new AbortController();
    controllers.push(controller);
    let value: unknown;
    try {
      value = item(controller.signal);
    } catch (error) {
      queueCallback(rt, onTask, agg, index, true, error);
      continue;
    }
    observeWith(observer, value, index);
  }
}
