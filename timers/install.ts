/**
 * `install()`: puts a loop's timers in place of a global object's `setTimeout` family.
 *
 * @module
 */
import { describe } from "../poller/_validate.ts";
import { Loop } from "../loop/loop.ts";
import { currentLoop } from "../loop/default_loop.ts";
import { clampNestedTimer } from "../loop/_core.ts";
import { kClearOwn } from "../loop/_internal.ts";
import type { Timer } from "../loop/types.ts";

/** Options for {@linkcode install}. */
export interface InstallOptions {
  /**
   * `"web"` (default): browser-like. The set functions return numeric ids (a safe integer, as
   * `typeof id === "number"` code expects), callbacks run with the target (the global object) as
   * `this`, and HTML's nesting clamp applies to timers scheduled through them: from the sixth
   * nested level on, a delay under 4 ms becomes 4 ms.
   *
   * `"node"`: Node-like. The set functions return the handles (`ref`, `unref`, `hasRef`,
   * `refresh`, `close`, `[Symbol.toPrimitive]`), callbacks run with their handle as `this` (so
   * `clearInterval(this)` works), and delays are coerced as Node does: anything not in
   * [1, 2^31-1] ms (`NaN`, 0, negative, `Infinity`, beyond 2^31-1) becomes 1 ms.
   */
  mode?: "web" | "node";
}

/** The globals `install()` replaces, in the order it replaces them. */
const NAMES = [
  "setTimeout",
  "clearTimeout",
  "setInterval",
  "clearInterval",
  "setImmediate",
  "clearImmediate",
  "queueMicrotask",
] as const;

type Name = typeof NAMES[number];
// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => any;

/** Node's TIMEOUT_MAX. */
const NODE_TIMEOUT_MAX_MS = 2 ** 31 - 1;

function nodeDelay(delayMs: unknown): number {
  // A Symbol goes on to the loop, which refuses it in the house format.
  if (typeof delayMs === "symbol") return delayMs as unknown as number;
  let value: number;
  try {
    value = Number(delayMs);
  } catch {
    return delayMs as number; // likewise what Number() cannot convert (an object without a prototype)
  }
  return value >= 1 && value <= NODE_TIMEOUT_MAX_MS ? value : 1;
}

/**
 * The installed `clearTimeout`, `clearInterval` or `clearImmediate`: the loop's timers, else (a
 * Deno timer, say, set before the installation) the function it replaced, through `forward`.
 */
function clearFunction(loop: Loop, name: Name, forward: Forward): AnyFunction {
  return (timer?: unknown): void => {
    if (!loop[kClearOwn](timer)) forward(name, timer);
  };
}

/** Hands a clear call the loop does not know to the function the installation replaced. */
type Forward = (name: Name, timer: unknown) => void;

/**
 * `callback` bound to `receiver`, as browsers call timer callbacks with the global object as
 * `this` (a non-function is left for the loop to refuse). Once per timer, when it is scheduled.
 */
function boundTo(callback: AnyFunction, receiver: object): AnyFunction {
  return typeof callback === "function" ? callback.bind(receiver) : callback;
}

function webTimers(loop: Loop, target: object, forward: Forward): Record<Name, AnyFunction> {
  return {
    setTimeout(callback: AnyFunction, delayMs?: number, ...args: unknown[]): number {
      const timer = loop.setTimeout(boundTo(callback, target), delayMs, ...args);
      clampNestedTimer(timer);
      return Number(timer);
    },
    clearTimeout: clearFunction(loop, "clearTimeout", forward),
    setInterval(callback: AnyFunction, delayMs?: number, ...args: unknown[]): number {
      const timer = loop.setInterval(boundTo(callback, target), delayMs, ...args);
      clampNestedTimer(timer);
      return Number(timer);
    },
    clearInterval: clearFunction(loop, "clearInterval", forward),
    setImmediate(callback: AnyFunction, ...args: unknown[]): number {
      return Number(loop.setImmediate(boundTo(callback, target), ...args));
    },
    clearImmediate: clearFunction(loop, "clearImmediate", forward),
    queueMicrotask(callback: () => void): void {
      loop.queueMicrotask(callback);
    },
  };
}

// Node calls a timer's callback with its handle as `this` (`clearInterval(this)` is an idiom). The
// handle is made by the loop, so the callback is wrapped in a closure that reads it when it runs,
// holding the arguments too (the loop then has none to keep: one allocation per timer, and none
// in the loop's timer pass). A non-function goes to the loop as it is, to be refused there.
function nodeTimers(loop: Loop, forward: Forward): Record<Name, AnyFunction> {
  return {
    setTimeout(callback: AnyFunction, delayMs?: number, ...args: unknown[]): Timer {
      if (typeof callback !== "function") return loop.setTimeout(callback, nodeDelay(delayMs));
      const timer = loop.setTimeout(() => Reflect.apply(callback, timer, args), nodeDelay(delayMs));
      return timer;
    },
    clearTimeout: clearFunction(loop, "clearTimeout", forward),
    setInterval(callback: AnyFunction, delayMs?: number, ...args: unknown[]): Timer {
      if (typeof callback !== "function") return loop.setInterval(callback, nodeDelay(delayMs));
      const timer = loop.setInterval(
        () => Reflect.apply(callback, timer, args),
        nodeDelay(delayMs),
      );
      return timer;
    },
    clearInterval: clearFunction(loop, "clearInterval", forward),
    setImmediate(callback: AnyFunction, ...args: unknown[]): Timer {
      if (typeof callback !== "function") return loop.setImmediate(callback);
      const immediate = loop.setImmediate(() => Reflect.apply(callback, immediate, args));
      return immediate;
    },
    clearImmediate: clearFunction(loop, "clearImmediate", forward),
    queueMicrotask(callback: () => void): void {
      loop.queueMicrotask(callback);
    },
  };
}

/** On every function `install()` puts on a target: the {@linkcode Installation} it belongs to. */
const kInstallation: unique symbol = Symbol("eventloop.installation");

/** The installation whose function `value` is, if it is one. */
function installationOf(value: unknown): Installation | undefined {
  if (typeof value !== "function") return undefined;
  return (value as { [kInstallation]?: Installation })[kInstallation];
}

/**
 * Restores what `install()` replaced, exactly: the same descriptors, or absence. Installations on
 * one target are linked (found through their functions, no registry): one disposed while a later
 * one is still in place hands what it found to that one instead.
 */
class Installation implements Disposable {
  #target: object;
  #saved: (PropertyDescriptor | undefined)[] | null;
  #replacements: Record<Name, AnyFunction>;
  /** The installation this one replaced, and the one that replaced this one (both in force). */
  #below: Installation | null = null;
  #above: Installation | null = null;

  constructor(
    target: object,
    saved: (PropertyDescriptor | undefined)[],
    replacements: Record<Name, AnyFunction>,
  ) {
    this.#target = target;
    this.#saved = saved;
    this.#replacements = replacements;
    for (const name of NAMES) {
      Object.defineProperty(replacements[name], kInstallation, { value: this });
    }
    for (const descriptor of saved) {
      const below = installationOf(descriptor?.value);
      if (below !== undefined && below.#saved !== null && below.#target === target) {
        this.#below = below;
        below.#above = this;
        break;
      }
    }
  }

  /** Calls the function this installation replaced as `name` (if any) with `timer`. */
  forward(name: Name, timer: unknown): void {
    const descriptor = this.#saved?.[NAMES.indexOf(name)];
    if (descriptor === undefined) return; // none, or disposed
    const original = "value" in descriptor ? descriptor.value : descriptor.get?.call(this.#target);
    if (typeof original === "function") original.call(this.#target, timer);
  }

  [Symbol.dispose](): void {
    const saved = this.#saved;
    if (saved === null) return;
    this.#saved = null;
    const below = this.#below;
    const above = this.#above;
    if (below !== null) below.#above = above;
    if (above !== null) {
      // A later installation is still in place: it keeps the target, and will restore what this
      // one found wherever it found this one's functions.
      above.#below = below;
      const aboveSaved = above.#saved!;
      NAMES.forEach((name, i) => {
        if (aboveSaved[i]?.value === this.#replacements[name]) aboveSaved[i] = saved[i];
      });
      return;
    }
    const target = this.#target as Record<string, unknown>;
    for (let i = NAMES.length - 1; i >= 0; i--) {
      const name = NAMES[i];
      const descriptor = saved[i];
      if (descriptor === undefined) delete target[name];
      else if (descriptor.configurable) Object.defineProperty(target, name, descriptor);
      else target[name] = descriptor.value; // non-configurable but writable
    }
  }
}

/**
 * Replaces `target`'s `setTimeout`, `clearTimeout`, `setInterval`, `clearInterval`,
 * `setImmediate`, `clearImmediate` and `queueMicrotask` with `loop`'s (all seven, whether or not
 * the target had them), returning a `Disposable` that restores exactly what was there: the same
 * property descriptors (Deno's globals are accessors), or no property at all.
 *
 * With a `VirtualClock` loop this is a deterministic fake time for code that calls the global
 * timers, the job of `@std/testing`'s `FakeTime`: the loop jumps to each deadline when idle. The
 * loop's own idle waits keep using Deno's timers, captured at import. Unlike `FakeTime`, `Date` is
 * not replaced: `Date.now()` keeps real time while `loop.now()` follows the virtual clock.
 *
 * The installed clear functions clear the loop's handles, and the ids of the loop's pending timers;
 * anything else (a Deno timer or id from before the installation or from code that captured
 * Deno's functions, an earlier installation's id, a stale or unknown id) goes to the function they
 * replaced, so timers started earlier can still be cleared. Deno's timers and a loop's are never
 * confused: loop ids count up from 2^52 + 1 while Deno's count from 1, so an id clears only the
 * timer it was issued for, through the installed functions or Deno's (also once restored); a
 * stale or unknown id is a no-op everywhere. Each loop counts its own ids, so with installations
 * nested on one target, an id of the one underneath that equals a pending timer's id of the one
 * on top clears that timer instead (give nested installations their own targets to avoid it).
 *
 * Modes (see {@linkcode InstallOptions.mode}): `"web"` (default) returns numeric ids, calls back
 * with the target as `this` and applies HTML's nesting clamp to the timers it schedules, whatever
 * the loop's `clampNestedTimers` option; `"node"` returns handles, calls back with the handle as
 * `this` and coerces delays as Node does. Other delays follow the module's policy. (To give the
 * callback its `this`, each timer's callback is wrapped once, when it is scheduled: a bound
 * function in web mode, a closure in node mode. The loop's own functions call back with `this`
 * undefined.) `queueMicrotask` callbacks run with `this` undefined in both modes, as on the web
 * and in Node.
 *
 * Installations on one target nest: disposing the latest restores what it found; disposing an
 * earlier one first leaves the later one in place, which then restores what the earlier one found.
 *
 * @param loop The loop to schedule on; default the current loop at the time of the call.
 * @param target The object to patch; default `globalThis`.
 * @param options `mode`.
 * @returns A `Disposable` restoring the originals (idempotent).
 * @throws {TypeError} If `loop` is not a `Loop`, `target` not an object, or a property cannot be
 * replaced (read-only, or the target is not extensible); nothing is changed then.
 * @throws {RangeError} If `mode` is neither `"web"` nor `"node"`.
 *
 * @example Fake time for code that uses the global timers
 * ```ts
 * import { Loop, VirtualClock } from "../loop/mod.ts";
 * import { install } from "./install.ts";
 *
 * function remindLater(log: string[]) {
 *   globalThis.setTimeout(() => log.push("an hour later"), 3_600_000);
 * }
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const log: string[] = [];
 * {
 *   using _timers = install(loop);
 *   remindLater(log);
 *   await loop.run(); // returns at once: virtual time jumps to the deadline
 * }
 * console.log(log, loop.now()); // [ "an hour later" ] 3600000
 * await loop.close();
 * ```
 */
export function install(
  loop?: Loop,
  target: object = globalThis,
  options?: InstallOptions,
): Disposable {
  if (loop !== undefined && !(loop instanceof Loop)) {
    throw new TypeError(
      `Cannot install timers as the loop must be a Loop: current value is ${describe(loop)}`,
    );
  }
  if (target === null || (typeof target !== "object" && typeof target !== "function")) {
    throw new TypeError(
      `Cannot install timers as the target must be an object: current value is ${describe(target)}`,
    );
  }
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(
      `Cannot install timers as the options must be an object: current value is ${
        describe(options)
      }`,
    );
  }
  const mode = options?.mode ?? "web";
  if (mode !== "web" && mode !== "node") {
    throw new RangeError(
      `Cannot install timers as the mode must be "web" or "node": current value is ${
        describe(mode)
      }`,
    );
  }
  const theLoop = loop ?? currentLoop();
  const made: { installation?: Installation } = {};
  const forward: Forward = (name, timer) => made.installation?.forward(name, timer);
  const replacements = mode === "web"
    ? webTimers(theLoop, target, forward)
    : nodeTimers(theLoop, forward);
  const saved = NAMES.map((name) => Object.getOwnPropertyDescriptor(target, name));
  // Check everything first, so a refusal changes nothing.
  const extensible = Object.isExtensible(target);
  NAMES.forEach((name, i) => {
    const descriptor = saved[i];
    const writable = descriptor === undefined
      ? extensible
      : descriptor.configurable === true || descriptor.writable === true;
    if (!writable) {
      throw new TypeError(
        `Cannot install timers as the target's ${name} cannot be replaced: current value is ${
          descriptor === undefined ? "absent on a non-extensible object" : "read-only"
        }`,
      );
    }
  });
  NAMES.forEach((name, i) => {
    const descriptor = saved[i];
    const value = replacements[name];
    if (descriptor === undefined || descriptor.configurable) {
      Object.defineProperty(target, name, {
        value,
        writable: true,
        enumerable: descriptor?.enumerable ?? true,
        configurable: true,
      });
    } else (target as Record<string, unknown>)[name] = value;
  });
  return made.installation = new Installation(target, saved, replacements);
}
