// Bad input on every public export: each call either succeeds (the documented coercions: delays,
// handles to clear, promise values) or throws (or rejects with) a TypeError, RangeError or domain
// error in the house format "Cannot X as Y: current value is Z", never a crash while building the
// message (a Symbol in a template literal, a BigInt in JSON.stringify) and never a value shown
// wrongly (null as "object", a Symbol as "undefined"). After every bad call the loop still works.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Loop, LoopClosedError, LoopPromise, VirtualClock } from "../mod.ts";
import { formatMetrics } from "../loop/mod.ts";
import {
  abortable,
  all,
  allSettled,
  any,
  deadline,
  race,
  settled,
  TaskScope,
} from "../promise/mod.ts";
import { install, interval, sleep } from "../timers/mod.ts";
import { createPoller, EventBatch, FakePoller, PollerError } from "../poller/mod.ts";

// A fixed seed keeps runs reproducible; change it to explore other cases.
const SEED = 20_261_124;

const FORMAT = /^Cannot .+: current value is .+/s;

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** Values no argument of the API accepts everywhere: each one has broken some message builder. */
const weird = fc.oneof(
  fc.constantFrom<unknown>(
    undefined,
    null,
    true,
    false,
    NaN,
    Infinity,
    -Infinity,
    -0,
    -1,
    1.5,
    2 ** 60,
    "5",
    "",
    "x".repeat(500),
    5n,
    -3n,
    [],
    [1, 2],
    {},
    () => {},
    function named() {},
  ),
  fc.string().map((s) => Symbol(s)),
  fc.bigInt(),
  fc.double(),
  fc.string(),
  fc.constant(null).map(() => Object.create(null)),
  // String(value) and `${value}` throw on these.
  fc.constant(null).map(() => ({
    toString() {
      throw new Error("toString must not be called");
    },
  })),
  fc.constant(null).map(() => ({
    [Symbol.toPrimitive]() {
      throw new Error("toPrimitive must not be called");
    },
  })),
  fc.constant(null).map(() => new AbortController().signal),
);

type Call = (value: unknown, loop: Loop) => unknown;

/** Every call takes the bad value in one argument or option; the rest is valid. */
const CALLS: Record<string, Call> = {
  "new Loop(options)": (v) => new Loop(v as never),
  "Loop clock": (v) => new Loop({ clock: v as never }),
  "Loop onError": (v) => new Loop({ onError: v as never }),
  "Loop missed": (v) => new Loop({ missed: v as never }),
  "Loop yieldIntervalMs": (v) => new Loop({ yieldIntervalMs: v as never }),
  "Loop busyPollMs": (v) => new Loop({ busyPollMs: v as never }),
  "Loop timerPrecision": (v) => new Loop({ timerPrecision: v as never }),
  "Loop poller": (v) => new Loop({ poller: v as never }),
  "Loop label": (v) => new Loop({ label: v as never }),
  "Loop metrics": (v) => new Loop({ metrics: v as never }),
  "Loop slowCallbackMs": (v) => new Loop({ slowCallbackMs: v as never }),
  "Loop onSlowCallback": (v) => new Loop({ onSlowCallback: v as never }),
  "Loop metrics.samplePeriod": (v) => new Loop({ metrics: { samplePeriod: v as never } }),
  "Loop metrics.topN": (v) => new Loop({ metrics: { topN: v as never } }),
  "loop.submit": (v, loop) => loop.submit(v as never),
  "loop.queueMicrotask": (v, loop) => loop.queueMicrotask(v as never),
  "loop.promise": (v, loop) => loop.promise(v as never),
  "loop.setTimeout callback": (v, loop) => loop.setTimeout(v as never, 1),
  "loop.setTimeout delay": (v, loop) => loop.clearTimeout(loop.setTimeout(() => {}, v as never)),
  "loop.setInterval delay": (v, loop) => loop.clearInterval(loop.setInterval(() => {}, v as never)),
  "loop.setImmediate": (v, loop) => loop.setImmediate(v as never),
  "loop.clearTimeout": (v, loop) => loop.clearTimeout(v as never),
  "loop.clearImmediate": (v, loop) => loop.clearImmediate(v as never),
  "loop.watch fd": (v, loop) => loop.watch(v as never, { readable: true }, () => {}).close(),
  "loop.watch interest": (v, loop) => loop.watch(3, v as never, () => {}).close(),
  "loop.watch interest flag": (v, loop) =>
    loop.watch(3, { readable: v as never }, () => {}).close(),
  "loop.watch callback": (v, loop) => loop.watch(3, { readable: true }, v as never).close(),
  "loop.watch options": (v, loop) =>
    loop.watch(3, { readable: true }, () => {}, v as never).close(),
  "loop.watch onClose": (v, loop) =>
    loop.watch(3, { readable: true }, () => {}, { onClose: v as never }).close(),
  "loop.watch label": (v, loop) =>
    loop.watch(3, { readable: true }, () => {}, { label: v as never }).close(),
  "watch.modify": (v, loop) => {
    const watch = loop.watch(3, { readable: true }, () => {});
    try {
      watch.modify(v as never);
    } finally {
      watch.close();
    }
  },
  "new VirtualClock": (v) => new VirtualClock(v as never),
  "VirtualClock.advance": (v) => new VirtualClock().advance(v as never),
  "VirtualClock.set": (v) => new VirtualClock().set(v as never),
  "formatMetrics": (v) => formatMetrics(v as never),
  "new LoopPromise": (v, loop) => new LoopPromise(v as never, { loop }),
  "LoopPromise loop option": (v) => new LoopPromise(() => {}, { loop: v as never }),
  "all options": (v, loop) => all([], v === undefined ? { loop } : v as never),
  "all signal": (v, loop) => all([1], { loop, signal: v as never }),
  "allSettled signal": (v, loop) => allSettled([1], { loop, signal: v as never }),
  "race signal": (v, loop) => race([1], { loop, signal: v as never }),
  "any signal": (v, loop) => any([1], { loop, signal: v as never }),
  "abortable signal": (v, loop) => abortable(1, v as never, { loop }),
  "abortable options": (v) => abortable(1, new AbortController().signal, v as never),
  "deadline delayMs": (v, loop) => deadline(1, v as never, { loop }),
  "deadline options": (v) => deadline(1, 5, v as never),
  "settled values": (v, loop) => settled(v as never, { loop }).return(),
  "settled options": (v) => settled([], v as never).return(),
  "TaskScope options": (v) => new TaskScope(v as never),
  "TaskScope signal": (v, loop) => new TaskScope({ loop, signal: v as never }),
  "TaskScope label": (v, loop) => new TaskScope({ loop, label: v as never }),
  "TaskScope failFast": (v, loop) => new TaskScope({ loop, failFast: v as never }),
  "TaskScope.spawn": (v, loop) => new TaskScope({ loop }).spawn(v as never),
  "sleep delayMs": (v, loop) => sleep(v as never, { loop, signal: AbortSignal.abort() }),
  "sleep options": (v) => sleep(0, v as never),
  "sleep signal": (v, loop) => sleep(0, { loop, signal: v as never }),
  "interval delayMs": (v, loop) => interval(v as never, { loop }).return!(),
  "interval options": (v) => interval(1, v as never).return!(),
  "interval missed": (v, loop) => interval(1, { loop, missed: v as never }).return!(),
  "install loop": (v) => install(v as never, {})[Symbol.dispose](),
  "install target": (v, loop) => install(loop, v as never)[Symbol.dispose](),
  "install options": (v, loop) => install(loop, {}, v as never)[Symbol.dispose](),
  "install mode": (v, loop) => install(loop, {}, { mode: v as never })[Symbol.dispose](),
  "createPoller options": (v) => createPoller(v as never).close(),
  "createPoller backend": (v) => createPoller({ backend: v as never }).close(),
  "new EventBatch": (v) => new EventBatch(v as never),
  "new FakePoller": (v) => new FakePoller(v as never).close(),
  "FakePoller clock": (v) => new FakePoller({ clock: v as never }).close(),
  "FakePoller supports": (v) => new FakePoller({ supports: v as never }).close(),
  "FakePoller.script time": (v) => new FakePoller().script(v as never, 3, 1),
  "FakePoller.script fd": (v) => new FakePoller().script(1, v as never, 1),
  "FakePoller.script readiness": (v) => new FakePoller().script(1, 3, v as never),
  "FakePoller.setReadiness": (v) => new FakePoller().setReadiness(3, v as never),
  "FakePoller.register fd": (v) => new FakePoller().register(v as never, 1, 1),
  "FakePoller.register token": (v) => new FakePoller().register(3, v as never, 1),
  "FakePoller.register interest": (v) => new FakePoller().register(3, 1, v as never),
  "FakePoller.wait batch": (v) => new FakePoller().wait(v as never, 0),
  "FakePoller.wait timeout": (v) => new FakePoller().wait(new EventBatch(4), v as never),
};

/** What a bad call may end with: its outcome, or the error it threw or rejected with. */
function checkError(name: string, value: unknown, error: unknown): void {
  const shown = `${name} with ${describeForTest(value)}`;
  if (error instanceof DOMException && error.name === "AbortError") return; // an aborted signal
  assert.ok(
    error instanceof TypeError || error instanceof RangeError || error instanceof PollerError ||
      error instanceof LoopClosedError,
    `${shown} threw a ${(error as Error)?.name}: ${(error as Error)?.message}`,
  );
  if (error instanceof PollerError) return; // the errno's own format (EBADF for fd -1)
  assert.match(error.message, FORMAT, `${shown}: "${error.message}" is not in the house format`);
}

function describeForTest(value: unknown): string {
  try {
    return typeof value === "symbol" ? value.toString() : String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The loop still takes and runs work after the bad call. */
async function assertUsable(loop: Loop): Promise<void> {
  let ran = false;
  loop.submit(() => {
    ran = true;
  });
  await loop.run();
  assert.ok(ran, "the loop no longer runs tasks after a bad call");
}

Deno.test("every public call refuses bad input with a typed error in the house format", async () => {
  for (const [name, call] of Object.entries(CALLS)) {
    await fc.assert(
      fc.asyncProperty(weird, async (value) => {
        const loop = new Loop({ clock: new VirtualClock(), poller: () => new FakePoller() });
        try {
          let outcome: unknown;
          try {
            outcome = call(value, loop);
          } catch (error) {
            checkError(name, value, error);
          }
          if (outcome instanceof LoopPromise || outcome instanceof Promise) {
            // A rejection is an argument error too (sleep() and the combinators reject).
            // (Those left pending, like a promise whose executor never resolves, are dropped.)
            let failure: unknown = undefined;
            LoopPromise.resolve(outcome, { loop }).then(undefined, (error) => {
              try {
                checkError(name, value, error);
              } catch (assertion) {
                failure = assertion;
              }
            });
            await loop.run();
            if (failure !== undefined) throw failure;
          }
          await assertUsable(loop);
        } finally {
          await loop.close();
        }
      }),
      { numRuns: 40, seed: SEED },
    );
  }
});

Deno.test("error messages show the value as given, never a wrong one", () => {
  const cases: [() => unknown, RegExp][] = [
    // A Symbol in a template literal threw "Cannot convert a Symbol value to a string".
    [() => new Loop({ yieldIntervalMs: Symbol("y") as never }), /current value is Symbol\(y\)$/],
    [() => new Loop({ busyPollMs: Symbol("b") as never }), /current value is Symbol\(b\)$/],
    [() => new Loop({ slowCallbackMs: Symbol("s") as never }), /current value is Symbol\(s\)$/],
    [() => new EventBatch(Symbol("c") as never), /current value is Symbol\(c\)$/],
    [() => new FakePoller({ clock: Symbol("k") as never }), /current value is Symbol\(k\)$/],
    // JSON.stringify threw on a BigInt and showed a Symbol or a function as "undefined".
    [() => createPoller({ backend: 5n as never }), /current value is 5n$/],
    [() => createPoller({ backend: Symbol("e") as never }), /current value is Symbol\(e\)$/],
    [() => createPoller({ backend: (() => {}) as never }), /current value is function backend$/],
    // typeof showed null as "object" and every number as "number".
    [() => new Loop({ onError: null as never }), /current value is null$/],
    [() => new Loop().setTimeout(42 as never), /current value is 42$/],
    [() => all([], 7 as never), /current value is 7$/],
    // String() showed [] as nothing, "5" as 5 and a function as its source.
    [() => new Loop({ timerPrecision: [] as never }), /current value is \[object Array\]$/],
    [() => new Loop({ missed: "5" as never }), /current value is "5"$/],
    [() => new Loop({ missed: function cb() {} as never }), /current value is function cb$/],
    // Number() threw its own "Cannot convert object to primitive value".
    [
      () => new Loop().setTimeout(() => {}, Object.create(null)),
      /current value is \[object Object\]$/,
    ],
    // String() threw on an object without a prototype.
    [() => new Loop({ clock: Object.create(null) }), /current value is \[object Object\]$/],
    // A revoked Proxy made the message builder throw its own TypeError.
    [() => new VirtualClock(revokedProxy() as never), /current value is an object that cannot/],
    // A long string is cut.
    [() => new Loop({ missed: "x".repeat(500) as never }), /"x{64}"\.\.\. \(500 characters\)$/],
  ];
  for (const [call, expected] of cases) {
    assert.throws(call, (error: unknown) => {
      assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
      assert.match(error.message, FORMAT);
      assert.match(error.message, expected);
      return true;
    });
  }
});

Deno.test("a numeric option given a non-number is a TypeError, not a RangeError showing it as a number", () => {
  // These were RangeErrors reading "must be in (0, 1000]: current value is 5" for the string "5".
  const cases: [() => unknown, string][] = [
    [() => new Loop({ yieldIntervalMs: "5" as never }), "yieldIntervalMs"],
    [() => new Loop({ busyPollMs: "5" as never }), "busyPollMs"],
    [() => new Loop({ slowCallbackMs: "5" as never }), "slowCallbackMs"],
    [() => new Loop({ metrics: { samplePeriod: "5" as never } }), "samplePeriod"],
    [() => new Loop({ metrics: { topN: "5" as never } }), "topN"],
    [() => new EventBatch("5" as never), "capacity"],
    [() => deadline(1, "5" as never), "delayMs"],
  ];
  for (const [call, name] of cases) {
    assert.throws(call, (error: unknown) => {
      assert.ok(error instanceof TypeError, `${name}: ${error}`);
      assert.match(error.message, new RegExp(`${name} must be a number: current value is "5"$`));
      return true;
    });
  }
  // Numbers out of range stay RangeErrors.
  assert.throws(() => new Loop({ yieldIntervalMs: 0 }), RangeError);
  assert.throws(() => new EventBatch(0), RangeError);
  assert.throws(() => deadline(1, -1), RangeError);
});

Deno.test("a boolean option given a non-boolean is a TypeError, not a silent false", () => {
  // any([factory], { abortLosers: 1 }) resolved with the factory itself (task mode was off).
  const cases: [() => unknown, RegExp][] = [
    [
      () => any([() => 1], { abortLosers: 1 as never }),
      /abortLosers must be a boolean: current value is 1$/,
    ],
    [
      () => race([() => 1], { abortLosers: "yes" as never }),
      /abortLosers must be a boolean: current value is "yes"$/,
    ],
    [
      () => new Loop({ clampNestedTimers: "true" as never }),
      /clampNestedTimers must be a boolean: current value is "true"$/,
    ],
    [
      () => deadline(1, 5, { ref: "false" as never }),
      /ref must be a boolean: current value is "false"$/,
    ],
  ];
  for (const [call, expected] of cases) {
    assert.throws(call, (error: unknown) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, FORMAT);
      assert.match(error.message, expected);
      return true;
    });
  }
});

Deno.test("a Loop passed where LoopPromise options go is a TypeError, not a binding to another loop", async () => {
  // LoopPromise.resolve(1, loop) bound the promise to the current (default) loop: loop.run()
  // never ran its reactions.
  await using loop = new Loop({ clock: new VirtualClock(), label: "mine" });
  const calls: [string, () => unknown][] = [
    ["resolve", () => LoopPromise.resolve(1, loop as never)],
    ["reject", () => LoopPromise.reject(1, loop as never)],
    ["from", () => LoopPromise.from(1, loop as never)],
    ["withResolvers", () => LoopPromise.withResolvers(loop as never)],
    ["constructor", () => new LoopPromise(() => {}, loop as never)],
  ];
  for (const [name, call] of calls) {
    assert.throws(call, (error: unknown) => {
      assert.ok(error instanceof TypeError, `${name}: ${error}`);
      assert.equal(
        error.message,
        'Cannot bind a LoopPromise as the options must be an object like { loop }: current value is the Loop "mine"',
      );
      return true;
    });
  }
  assert.equal(LoopPromise.resolve(1, { loop }).loop, loop);
});

Deno.test("the engine's own messages are replaced by house-format ones: try, combinator inputs, onClose", async () => {
  const clock = new VirtualClock();
  await using loop = new Loop({ clock, poller: new FakePoller({ clock }) });
  const tried = LoopPromise.try(42 as never);
  const combined = [all, allSettled, race, any].map((combinator) =>
    (combinator as (input: unknown, options: { loop: Loop }) => PromiseLike<unknown>)(5, { loop })
  );
  const reasons: unknown[] = [];
  // try() binds to the current loop (the default one here): its reaction comes last.
  for (const promise of [...combined, tried]) {
    promise.then(() => reasons.push("fulfilled"), (reason) => reasons.push(reason));
  }
  await loop.run();
  await tried.then(undefined, () => {});
  const messages = reasons.map((reason) => reason instanceof TypeError ? reason.message : reason);
  assert.deepEqual(messages, [
    "Cannot run all() as its input must be iterable: current value is 5",
    "Cannot run allSettled() as its input must be iterable: current value is 5",
    "Cannot run race() as its input must be iterable: current value is 5",
    "Cannot run any() as its input must be iterable: current value is 5",
    "Cannot call LoopPromise.try as fn must be a function: current value is 42",
  ]);
  assert.throws(
    () => loop.watch(3, { readable: true }, () => {}, { onClose: "no" } as never),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message === 'Cannot watch fd 3 as onClose must be a function: current value is "no"',
  );
});
