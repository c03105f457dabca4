import assert from "node:assert/strict";
import { currentLoop, defaultLoop, Loop, type Timer, VirtualClock } from "../../loop/mod.ts";
import { install } from "../../timers/mod.ts";
import { LoopPromise } from "../../promise/mod.ts";
import { FakePoller, READABLE } from "../../poller/mod.ts";

const NAMES = [
  "setTimeout",
  "clearTimeout",
  "setInterval",
  "clearInterval",
  "setImmediate",
  "clearImmediate",
  "queueMicrotask",
] as const;

function descriptors(target: object): (PropertyDescriptor | undefined)[] {
  return NAMES.map((name) => Object.getOwnPropertyDescriptor(target, name));
}

// Code under test: it only knows the global timers.
function debounce(callback: () => void, waitMs: number): () => void {
  let id: ReturnType<typeof setTimeout> | undefined;
  return () => {
    clearTimeout(id);
    id = setTimeout(callback, waitMs);
  };
}

Deno.test("install(): code calling the global timers runs on a virtual clock: an hour passes at once", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const startMs = performance.now();
  {
    using _timers = install(loop);
    const save = debounce(() => log.push(`saved at ${clock.now()}`), 500);
    setTimeout(save, 0);
    setTimeout(save, 200); // restarts the debounce: saves at 700
    setTimeout(() => log.push(`an hour later: ${clock.now()}`), 3_600_000);
    const interval = setInterval(() => {
      log.push(`tick ${clock.now()}`);
      if (clock.now() >= 2_000) clearInterval(interval);
    }, 1_000);
    queueMicrotask(() => log.push(`microtask on the loop: ${currentLoop() === loop}`));
    await loop.run();
  }
  assert.deepEqual(log, [
    "microtask on the loop: true",
    "saved at 700",
    "tick 1000",
    "tick 2000",
    "an hour later: 3600000",
  ]);
  assert.equal(clock.now(), 3_600_000);
  assert.ok(performance.now() - startMs < 3_600_000); // (it took milliseconds)
  await loop.close();
});

Deno.test("install() restores globalThis's originals exactly (Deno's accessors included)", async () => {
  const before = descriptors(globalThis);
  const loop = new Loop({ clock: new VirtualClock() });
  const installation = install(loop);
  for (const name of NAMES) assert.notEqual(globalThis[name], before[NAMES.indexOf(name)]?.value);
  assert.equal(typeof globalThis.setTimeout(() => {}, 1), "number", "web mode returns ids");
  installation[Symbol.dispose]();
  assert.deepEqual(descriptors(globalThis), before);
  installation[Symbol.dispose](); // idempotent
  assert.deepEqual(descriptors(globalThis), before);
  // Deno's own timers work again.
  await new Promise((resolve) => setTimeout(resolve, 0));
  await loop.close();
});

Deno.test("install() on another target: absent properties are removed again, flags kept", () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const originalSetTimeout = () => 0;
  const target: Record<string, unknown> = {};
  Object.defineProperty(target, "setTimeout", {
    value: originalSetTimeout,
    writable: true,
    enumerable: false,
    configurable: true,
  });
  Object.defineProperty(target, "clearTimeout", {
    get: () => "getter",
    enumerable: true,
    configurable: true,
  });
  Object.defineProperty(target, "queueMicrotask", {
    value: "non-configurable but writable",
    writable: true,
    enumerable: true,
    configurable: false,
  });
  const before = descriptors(target);
  {
    using _timers = install(loop, target);
    for (const name of NAMES) assert.equal(typeof target[name], "function", name);
    assert.equal(Object.getOwnPropertyDescriptor(target, "setTimeout")!.enumerable, false);
  }
  assert.deepEqual(descriptors(target), before);
  assert.ok(!("setImmediate" in target));
  assert.deepEqual(Object.keys(target), ["clearTimeout", "queueMicrotask"]);
});

Deno.test("install() refuses a read-only property or a sealed target, changing nothing", () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const readOnly = Object.defineProperty({}, "clearInterval", { value: 1, writable: false });
  const before = descriptors(readOnly);
  assert.throws(() => install(loop, readOnly), TypeError);
  assert.deepEqual(descriptors(readOnly), before);
  const sealed = Object.seal({ setTimeout: () => 0 });
  assert.throws(() => install(loop, sealed), /absent on a non-extensible object/);
  assert.equal(Object.keys(sealed).length, 1);
  assert.throws(() => install({} as never), TypeError);
  assert.throws(() => install(loop, 5 as never), TypeError);
  assert.throws(() => install(loop, {}, { mode: "deno" as never }), RangeError);
  assert.throws(() => install(loop, {}, "web" as never), TypeError);
});

type Timers = {
  setTimeout(callback: () => void, delayMs?: number): unknown;
  clearTimeout(id?: unknown): void;
  setInterval(callback: () => void, delayMs?: number): unknown;
  clearInterval(id?: unknown): void;
  setImmediate(callback: () => void): unknown;
  clearImmediate(id?: unknown): void;
};

Deno.test("web mode: numeric ids that clear interchangeably; the loop's delay policy", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const target = {} as Timers;
  using _timers = install(loop, target, { mode: "web" });
  const log: string[] = [];
  const ids = [
    target.setTimeout(() => log.push("timeout"), 5),
    target.setInterval(() => log.push("interval"), 5),
    target.setImmediate(() => log.push("immediate")),
  ];
  for (const id of ids) assert.ok(typeof id === "number" && Number.isSafeInteger(id) && id > 0);
  target.clearInterval(ids[0]);
  target.clearTimeout(ids[1]);
  target.clearImmediate(ids[2]);
  target.clearTimeout(12345);
  target.setTimeout(() => log.push(`2^31 at ${clock.now()}`), 2 ** 31);
  target.setTimeout(() => log.push(`fraction at ${clock.now()}`), 0.5);
  assert.throws(() => target.setTimeout(() => {}, Infinity), RangeError);
  assert.throws(() => target.setTimeout("alert(1)" as never, 1), TypeError);
  await loop.run();
  assert.deepEqual(log, ["fraction at 0.5", `2^31 at ${2 ** 31}`]);
  await loop.close();
});

/** The virtual times at which a chain of `count` nested zero-delay timeouts fires. */
async function nestedChain(mode: "web" | "node" | undefined, clampLoop = false): Promise<number[]> {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, clampNestedTimers: clampLoop });
  const firedAt: number[] = [];
  const target = {} as Timers;
  const schedule = mode === undefined
    ? (callback: () => void) => loop.setTimeout(callback, 0)
    : (callback: () => void) => target.setTimeout(callback, 0);
  using _timers = install(loop, target, { mode: mode ?? "web" });
  const step = () => {
    firedAt.push(clock.now());
    if (firedAt.length < 9) schedule(step);
  };
  schedule(step);
  await loop.run();
  await loop.close();
  return firedAt;
}

Deno.test("web mode clamps nested timers from the sixth on, as browsers do (HTML's text says the seventh); node mode and plain loops do not", async () => {
  // The sixth nested timer onwards waits at least 4 ms.
  assert.deepEqual(await nestedChain("web"), [0, 0, 0, 0, 0, 4, 8, 12, 16]);
  assert.deepEqual(await nestedChain(undefined, true), [0, 0, 0, 0, 0, 4, 8, 12, 16]);
  assert.deepEqual(await nestedChain("node"), [1, 2, 3, 4, 5, 6, 7, 8, 9]); // Node's 1 ms minimum
  assert.deepEqual(await nestedChain(undefined), [0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("web mode clamps a fast interval after five ticks", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const target = {} as Timers;
  using _timers = install(loop, target);
  const firedAt: number[] = [];
  const id = target.setInterval(() => {
    firedAt.push(clock.now());
    if (firedAt.length === 8) target.clearInterval(id);
  }, 1);
  await loop.run();
  assert.deepEqual(firedAt, [1, 2, 3, 4, 5, 9, 13, 17]);
  await loop.close();
});

// Start times and delays where `deadline + 4 - delayMs` or `now + 4` rounds an ulp below 4 ms
// after the base (found by search): a clamped timer must still wait the whole 4 ms.
Deno.test("a clamped timer or interval never fires an ulp before its 4 ms", async () => {
  for (const [startMs, delayMs] of [[5.296875, 3.158], [10.7626953125, 3.472]]) {
    const clock = new VirtualClock(startMs);
    const loop = new Loop({ clock });
    const target = {} as Timers;
    using _timers = install(loop, target);
    const waitedMs: number[] = [];
    let setAtMs = clock.now();
    const step = () => {
      waitedMs.push(clock.now() - setAtMs);
      setAtMs = clock.now();
      if (waitedMs.length < 8) target.setTimeout(step, delayMs);
    };
    target.setTimeout(step, delayMs);
    await loop.run();
    await loop.close();
    assert.equal(waitedMs.length, 8);
    // The first five wait their delay, the clamped ones (nesting level above 5) 4 ms.
    waitedMs.forEach((ms, i) => assert.ok(ms >= (i < 5 ? delayMs : 4), `timer ${i}: ${ms} ms`));
  }
  // An interval clamped by install()'s web mode, then by the loop's own option.
  for (const clampedBy of ["install", "loop"] as const) {
    const clock = new VirtualClock(499.25436002960856);
    const loop = new Loop({ clock, clampNestedTimers: clampedBy === "loop" });
    const target = {} as Timers;
    using _timers = install(loop, target);
    const timers = clampedBy === "install" ? target : loop;
    const firedAt: number[] = [];
    const id = timers.setInterval(() => {
      firedAt.push(clock.now());
      if (firedAt.length === 8) timers.clearInterval(id as never);
    }, 1);
    await loop.run();
    await loop.close();
    assert.equal(firedAt.length, 8);
    for (let i = 5; i < 8; i++) {
      const gapMs = firedAt[i] - firedAt[i - 1];
      assert.ok(gapMs >= 4, `${clampedBy}: tick ${i} came ${gapMs} ms after the one before`);
    }
  }
});

Deno.test("node mode: handles, and Node's delay coercion (out of [1, 2^31-1] becomes 1 ms)", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const target = {} as Timers;
  using _timers = install(loop, target, { mode: "node" });
  const firedAt: Record<string, number> = {};
  const cases: [string, unknown][] = [
    ["2^31", 2 ** 31],
    ["Infinity", Infinity],
    ["NaN", NaN],
    ["0", 0],
    ["negative", -10],
    ["0.5", 0.5],
    ["1.5", 1.5],
    ["2^31-1", 2 ** 31 - 1],
  ];
  for (const [label, delayMs] of cases) {
    target.setTimeout(() => (firedAt[label] = clock.now()), delayMs as number);
  }
  const handle = target.setTimeout(() => {}, 10) as Timer;
  assert.equal(typeof handle, "object");
  assert.equal(handle.hasRef(), true);
  assert.equal(handle.unref(), handle);
  target.clearTimeout(Number(handle));
  const immediate = target.setImmediate(() => {}) as Timer;
  assert.equal(typeof immediate.ref, "function");
  target.clearImmediate(immediate);
  await loop.run();
  assert.deepEqual(firedAt, {
    "2^31": 1,
    Infinity: 1,
    NaN: 1,
    "0": 1,
    negative: 1,
    "0.5": 1,
    "1.5": 1.5,
    "2^31-1": 2 ** 31 - 1,
  });
  await loop.close();
});

Deno.test("install() without a loop binds the current loop at the time of the call", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const inside = {} as Timers;
  const outside = {} as Timers;
  loop.submit(() => {
    using _timers = install(undefined, inside);
    inside.setTimeout(() => {}, 10);
  });
  await loop.run();
  assert.equal(loop.now(), 10, "the timer ran on `loop`");
  {
    using _timers = install(undefined, outside, { mode: "node" });
    const handle = outside.setTimeout(() => {}, 5) as Timer;
    assert.ok(
      defaultLoop().aliveReasons().some((reason) => reason.label.includes(`id ${handle.id}`)),
    );
    outside.clearTimeout(handle);
  }
  await loop.close();
});

Deno.test("nested installs restore the originals whatever order they are disposed in", async () => {
  const loops = [0, 1, 2].map(() => new Loop({ clock: new VirtualClock() }));
  const [a, b, c] = loops;
  const target: Record<string, unknown> = { setTimeout: () => 0, queueMicrotask: () => {} };
  const before = descriptors(target);
  // Which loop the target's setTimeout schedules on.
  const installed = () => {
    const counts = loops.map((loop) => loop.aliveReasons().length);
    (target.setTimeout as (callback: () => void, delayMs: number) => number)(() => {}, 1);
    return loops.find((loop, i) => loop.aliveReasons().length !== counts[i]);
  };
  // Disposed bottom first: the one on top stays in place, and its disposal restores the originals.
  const first = install(a, target);
  const second = install(b, target);
  first[Symbol.dispose]();
  assert.equal(installed(), b, "the later installation is still in place");
  second[Symbol.dispose]();
  assert.deepEqual(descriptors(target), before);
  // Three deep, the middle one first, then the bottom, then the top.
  const bottom = install(a, target);
  const middle = install(b, target);
  const top = install(c, target);
  middle[Symbol.dispose]();
  assert.equal(installed(), c);
  bottom[Symbol.dispose]();
  assert.equal(installed(), c);
  top[Symbol.dispose]();
  assert.deepEqual(descriptors(target), before);
  // Three deep, the top one first, then the bottom, then the middle.
  const low = install(a, target);
  const mid = install(b, target);
  const high = install(c, target);
  high[Symbol.dispose]();
  assert.equal(installed(), b);
  low[Symbol.dispose]();
  assert.equal(installed(), b);
  mid[Symbol.dispose]();
  assert.deepEqual(descriptors(target), before);
  for (const loop of loops) await loop.close();
});

Deno.test("install() does not divert the native microtasks loop promises fall back to", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const closed = new Loop({ clock: new VirtualClock() });
  await closed.close();
  const got: number[] = [];
  {
    using _timers = install(loop);
    // A closed loop's promises run their reactions on native microtasks: not on the installed
    // loop (where nothing runs them until it runs), and not refused by a closed installed loop.
    LoopPromise.resolve(1, { loop: closed }).then((value) => got.push(value));
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(got, [1]);
    assert.deepEqual(loop.aliveReasons(), []);
    await loop.close();
    LoopPromise.resolve(2, { loop }).then((value) => got.push(value)); // must not throw
    await Promise.resolve();
    await Promise.resolve();
  }
  assert.deepEqual(got, [1, 2]);
});

Deno.test("install() does not divert the Deno timers a real-clock FakePoller waits with", async () => {
  const installed = new Loop({ clock: new VirtualClock() });
  const poller = new FakePoller();
  const loop = new Loop({ poller });
  poller.script(performance.now() + 20, 7, READABLE);
  let events = 0;
  const watch = loop.watch(7, { readable: true }, () => {
    events++;
    watch.close();
  });
  {
    using _timers = install(installed);
    // Its wait must end at the scripted time, not wait for a timer on the installed loop.
    await loop.run();
  }
  assert.equal(events, 1);
  assert.deepEqual(installed.aliveReasons(), []);
  await loop.close();
  await installed.close();
});

Deno.test("the installed clear functions still clear the timers that were there before install()", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const other = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  // A real Deno timer, and a timer of another loop, both set before the installation.
  const native = setTimeout(() => log.push("native timer"), 0);
  const foreign = other.setTimeout(() => log.push("other loop's timer"), 1);
  for (const mode of ["web", "node"] as const) {
    using _timers = install(loop, globalThis, { mode });
    const id = setTimeout(() => log.push(`${mode}: loop timer`), 5);
    clearTimeout(native);
    clearInterval(foreign as unknown as number);
    clearTimeout(12345); // neither the loop's nor Deno's: a no-op
    await loop.run();
    clearTimeout(id); // stale: a no-op
  }
  await other.run();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(log, ["web: loop timer", "node: loop timer"]);
  await loop.close();
  await other.close();
});

Deno.test("node mode: a Symbol delay is a TypeError in the house format, as on the loop", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const target = {} as Timers;
  using _timers = install(loop, target, { mode: "node" });
  const delay = Symbol("soon") as never;
  for (const schedule of [target.setTimeout, target.setInterval]) {
    assert.throws(
      () => schedule(() => {}, delay),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          "Cannot schedule a timer as the delay must convert to a number: current value is Symbol(soon)",
    );
  }
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});

Deno.test("ids never collide with Deno's: an installed clear clears a Deno id, a restored one no loop id", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  // Two Deno timers, one cleared by id under install(), one the restored clearTimeout is handed a
  // loop id for. If the loop issued the same numbers (as counters from 1 would), both go wrong.
  const nativeCleared = setTimeout(() => log.push("native timer cleared by id"), 0);
  const nativeKept = setTimeout(() => log.push("native timer"), 0);
  const nativeIds = [Number(nativeCleared), Number(nativeKept)];
  const loopTimers: Timer[] = [];
  const loopIds = new Set<number>();
  do {
    const timer = loop.setTimeout(() => log.push(`loop timer ${timer.id}`), 1);
    loopTimers.push(timer);
    loopIds.add(timer.id);
  } while (loopTimers.at(-1)!.id < Math.max(...nativeIds));
  assert.ok(nativeIds.every((id) => !loopIds.has(id)), "the loop issued one of Deno's ids");
  for (const mode of ["web", "node"] as const) {
    using _timers = install(loop, globalThis, { mode });
    clearTimeout(Number(nativeCleared)); // Deno's id: goes to Deno's clearTimeout
  }
  for (const id of loopIds) clearTimeout(id); // Deno's own clearTimeout: none of these is Deno's
  await loop.run();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(log, [...loopTimers.map((timer) => `loop timer ${timer.id}`), "native timer"]);
  await loop.close();
});

Deno.test("each loop counts its own ids from 2^52 + 1; an installed clear forwards ids that are not its pending timers", async () => {
  const lower = new Loop({ clock: new VirtualClock() });
  const upper = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  const target = {} as Timers;
  // Ids do not depend on what other loops did: both loops' first ids are the same.
  for (let i = 0; i < 3; i++) lower.setImmediate(() => {});
  assert.equal(Number(upper.setTimeout(() => log.push("upper first"), 1)), 2 ** 52 + 1);
  {
    using _lower = install(lower, target);
    const lowerId = target.setTimeout(() => log.push("lower"), 1) as number;
    assert.equal(lowerId, 2 ** 52 + 4);
    using _upper = install(upper, target);
    const upperId = target.setTimeout(() => log.push("upper"), 1) as number;
    assert.equal(upperId, 2 ** 52 + 2);
    target.clearTimeout(lowerId); // not one of upper's pending timers: forwarded to lower's clear
  }
  for (const loop of [lower, upper]) await loop.run();
  assert.deepEqual(log, ["upper first", "upper"]);
  for (const loop of [lower, upper]) await loop.close();
});

Deno.test("`this` in a callback: the handle in node mode (as Node), the target in web mode (as browsers), undefined on a plain loop", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const seen: [string, unknown, unknown[]][] = [];
  // A module is strict code: `this` is exactly the receiver the callback was called with.
  const record = (label: string) =>
    function (this: unknown, ...args: unknown[]) {
      seen.push([label, this, args]);
    };
  const web = {} as Timers;
  const node = {} as Timers;
  {
    using _web = install(loop, web, { mode: "web" });
    using _node = install(loop, node, { mode: "node" });
    type Set = (callback: () => void, ...rest: unknown[]) => unknown;
    (web.setTimeout as Set)(record("web timeout"), 1, "a", 1);
    const webInterval = (web.setInterval as Set)(record("web interval"), 2, "b");
    (web.setImmediate as Set)(record("web immediate"), "c");
    const nodeTimeout = (node.setTimeout as Set)(record("node timeout"), 1, "d", 2);
    let ticks = 0;
    const nodeInterval = (node.setInterval as Set)(function (this: Timer) {
      seen.push(["node interval", this, []]);
      node.clearInterval(this); // Node's idiom: an interval that stops itself
      if (++ticks === 3) node.clearInterval(nodeInterval); // (if it did not)
    }, 2);
    const nodeImmediate = (node.setImmediate as Set)(record("node immediate"), "e");
    (loop.setTimeout as Set)(record("plain timeout"), 1, "f");
    (loop.setImmediate as Set)(record("plain immediate"));
    loop.setTimeout(() => web.clearInterval(webInterval), 3);
    await loop.run();
    assert.deepEqual(seen, [
      ["web immediate", web, ["c"]],
      ["node immediate", nodeImmediate, ["e"]],
      ["plain immediate", undefined, []],
      ["web timeout", web, ["a", 1]],
      ["node timeout", nodeTimeout, ["d", 2]],
      ["plain timeout", undefined, ["f"]],
      ["web interval", web, ["b"]],
      ["node interval", nodeInterval, []],
    ]);
    // Wrapping the callback changes nothing else: a non-function is still refused as before.
    for (const target of [web, node]) {
      assert.throws(
        () => target.setTimeout("code" as never, 1),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message.startsWith("Cannot set a timeout as the callback must be a function"),
      );
    }
  }
  await loop.close();
});

Deno.test("installs on different targets are independent, even when one target holds the other's functions", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const a: Record<string, unknown> = {};
  const onA = install(loop, a);
  // Another target made from the first one's (installed) timers, then installed on itself.
  const b: Record<string, unknown> = { setTimeout: a.setTimeout, clearTimeout: a.clearTimeout };
  const bBefore = descriptors(b);
  const onB = install(loop, b);
  onA[Symbol.dispose](); // b's installation is not above a's: a gets its (absent) originals back
  assert.deepEqual(descriptors(a), NAMES.map(() => undefined));
  onB[Symbol.dispose]();
  assert.deepEqual(descriptors(b), bBefore);
  await loop.close();
});
