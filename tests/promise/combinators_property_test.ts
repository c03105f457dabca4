// Differential property test: all/allSettled/race/any on the loop agree with native
// Promise.all/allSettled/race/any on the very same inputs (plain values, native promises,
// LoopPromises and thenables of several behaviours), for arbitrary settle orders: values,
// settlement, error identity and AggregateError.errors order.
//
// Settle order is driven with explicit resolvers: every settle event is followed by a full drain
// (loop iterations alternating with native macrotask turns), so each event's effects propagate
// through both systems before the next one. Inputs that are available at once (plain values,
// thenables that answer synchronously) are "settled" at time 0, in iteration order.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Loop } from "../../loop/mod.ts";
import { all, allSettled, any, LoopPromise, race } from "../../promise/mod.ts";

// A fixed seed keeps runs reproducible; change it to explore other cases.
const SEED = 20_261_122;

type Kind =
  | "value"
  | "native"
  | "loop"
  | "thenableAsync"
  | "thenableSync"
  | "thenableSyncThenThrows"
  | "thenThrows"
  | "thenGetterThrows";

interface Spec {
  kind: Kind;
  outcome: "fulfil" | "reject" | "never";
  priority: number;
  primitive: fc.JsonValue;
  boxed: boolean;
}

const specArb: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom<Kind>(
    "value",
    "native",
    "loop",
    "thenableAsync",
    "thenableSync",
    "thenableSyncThenThrows",
    "thenThrows",
    "thenGetterThrows",
  ),
  outcome: fc.constantFrom<Spec["outcome"]>("fulfil", "reject", "never"),
  priority: fc.integer({ min: 0, max: 1000 }),
  primitive: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.boolean()),
  boxed: fc.boolean(),
});

interface Built {
  inputs: unknown[];
  /** Settle events, in the order to apply them. */
  events: (() => void)[];
}

/** Makes the inputs of one run; both systems get the very same objects. */
function build(specs: Spec[], loop: Loop): Built {
  const inputs: unknown[] = [];
  const timed: { priority: number; index: number; settle: () => void }[] = [];
  specs.forEach((spec, index) => {
    const value = spec.boxed ? { index, primitive: spec.primitive } : spec.primitive;
    const reason = new Error(`reason ${index}`);
    switch (spec.kind) {
      case "value":
        inputs.push(value);
        return;
      case "native": {
        const { promise, resolve, reject } = Promise.withResolvers<unknown>();
        inputs.push(promise);
        if (spec.outcome === "fulfil") timed.push({ ...spec, index, settle: () => resolve(value) });
        if (spec.outcome === "reject") timed.push({ ...spec, index, settle: () => reject(reason) });
        return;
      }
      case "loop": {
        const { promise, resolve, reject } = LoopPromise.withResolvers<unknown>({ loop });
        inputs.push(promise);
        if (spec.outcome === "fulfil") timed.push({ ...spec, index, settle: () => resolve(value) });
        if (spec.outcome === "reject") timed.push({ ...spec, index, settle: () => reject(reason) });
        return;
      }
      case "thenableAsync": {
        // Answers every subscriber when its event fires (and later subscribers at once).
        let settledAs: [boolean, unknown] | undefined;
        const subscribers: [(v: unknown) => void, (r: unknown) => void][] = [];
        inputs.push({
          then(onFulfilled: (v: unknown) => void, onRejected: (r: unknown) => void) {
            if (settledAs === undefined) subscribers.push([onFulfilled, onRejected]);
            else if (settledAs[0]) onRejected(settledAs[1]);
            else onFulfilled(settledAs[1]);
          },
        });
        if (spec.outcome !== "never") {
          const rejected = spec.outcome === "reject";
          timed.push({
            ...spec,
            index,
            settle: () => {
              settledAs = [rejected, rejected ? reason : value];
              for (const [f, r] of subscribers.splice(0)) rejected ? r(reason) : f(value);
            },
          });
        }
        return;
      }
      case "thenableSync":
        inputs.push({
          then(onFulfilled: (v: unknown) => void, onRejected: (r: unknown) => void) {
            if (spec.outcome === "fulfil") onFulfilled(value);
            if (spec.outcome === "reject") onRejected(reason);
          },
        });
        return;
      case "thenableSyncThenThrows":
        // Answers, answers again the other way, then throws: only the first answer counts.
        inputs.push({
          then(onFulfilled: (v: unknown) => void, onRejected: (r: unknown) => void) {
            if (spec.outcome === "reject") onRejected(reason);
            else onFulfilled(value);
            onRejected(new Error("ignored"));
            onFulfilled("ignored");
            throw new Error("ignored too");
          },
        });
        return;
      case "thenThrows":
        inputs.push({
          then() {
            throw reason;
          },
        });
        return;
      case "thenGetterThrows":
        inputs.push({
          get then() {
            throw reason;
          },
        });
        return;
    }
  });
  timed.sort((a, b) => a.priority - b.priority || a.index - b.index);
  return { inputs, events: timed.map((t) => t.settle) };
}

interface Outcome {
  state: "pending" | "fulfilled" | "rejected";
  value?: unknown;
}

function observeNative(promise: Promise<unknown>): Outcome {
  const outcome: Outcome = { state: "pending" };
  promise.then(
    (value) => Object.assign(outcome, { state: "fulfilled", value }),
    (value) => Object.assign(outcome, { state: "rejected", value }),
  );
  return outcome;
}

function outcomeOf(promise: LoopPromise<unknown>): Outcome {
  if (promise.state === "pending") return { state: "pending" };
  return {
    state: promise.state,
    value: promise.state === "fulfilled" ? promise.value : promise.reason,
  };
}

/** Element-wise identity for arrays (values, allSettled records, AggregateError.errors). */
function assertSameValue(actual: unknown, expected: unknown, path: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((item, i) => assertSameValue(actual[i], item, `${path}[${i}]`));
    return;
  }
  if (expected instanceof AggregateError) {
    assert.ok(actual instanceof AggregateError, `${path}: expected an AggregateError`);
    assert.equal(actual.message, expected.message, `${path}: message`);
    assertSameValue(actual.errors, expected.errors, `${path}.errors`);
    return;
  }
  if (
    expected !== null && typeof expected === "object" && "status" in expected &&
    Object.getPrototypeOf(expected) === Object.prototype
  ) {
    // An allSettled record: same keys in the same order, identical values.
    assert.deepEqual(Object.keys(actual as object), Object.keys(expected), `${path}: keys`);
    for (const key of Object.keys(expected)) {
      assertSameValue(
        (actual as Record<string, unknown>)[key],
        (expected as Record<string, unknown>)[key],
        `${path}.${key}`,
      );
    }
    return;
  }
  assert.ok(Object.is(actual, expected), `${path}: ${String(actual)} is not ${String(expected)}`);
}

function macrotasks(): { next: () => Promise<void>; close: () => void } {
  const channel = new MessageChannel();
  let wake: (() => void) | undefined;
  channel.port1.onmessage = () => wake?.();
  return {
    next: () =>
      new Promise<void>((resolve) => {
        wake = resolve;
        channel.port2.postMessage(0);
      }),
    close: () => {
      channel.port1.close();
      channel.port2.close();
    },
  };
}

type Ours = (values: Iterable<unknown>, options: { loop: Loop }) => LoopPromise<unknown>;
const combinators: { name: string; native: (xs: unknown[]) => Promise<unknown>; ours: Ours }[] = [
  { name: "all", native: (xs) => Promise.all(xs), ours: all as Ours },
  { name: "allSettled", native: (xs) => Promise.allSettled(xs), ours: allSettled as Ours },
  { name: "race", native: (xs) => Promise.race(xs), ours: race as Ours },
  { name: "any", native: (xs) => Promise.any(xs), ours: any as Ours },
];

Deno.test("combinators agree with native on values, settlement and identity for any settle order", async (t) => {
  for (const combinator of combinators) {
    await t.step(combinator.name, async () => {
      const turns = macrotasks();
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(specArb, { maxLength: 7 }), async (specs) => {
            const loop = new Loop({ onUnhandledRejection: () => {} });
            try {
              const { inputs, events } = build(specs, loop);
              const drain = async () => {
                for (let i = 0; i < 8; i++) {
                  loop.runOnce();
                  await turns.next();
                }
              };
              const expected = observeNative(combinator.native(inputs));
              const actual = combinator.ours(inputs, { loop });
              await drain();
              for (const event of events) {
                event();
                await drain();
              }
              const ours = outcomeOf(actual);
              assert.equal(ours.state, expected.state, "settlement");
              assertSameValue(ours.value, expected.value, "outcome");
            } finally {
              await loop.close();
            }
          }),
          { numRuns: 150, seed: SEED },
        );
      } finally {
        turns.close();
      }
    });
  }
});

Deno.test("combinators agree with native on iterables: generators, strings, empty and throwing iterators", async () => {
  const loop = new Loop({ onUnhandledRejection: () => {} });
  const turns = macrotasks();
  try {
    const boom = new Error("iterator broke");
    const sources: [string, () => Iterable<unknown>][] = [
      ["empty array", () => []],
      ["generator", function* () {
        yield 1;
        yield Promise.resolve(2);
        yield LoopPromise.resolve(3, { loop });
      }],
      ["array with its own iterator", () => {
        // The iterator is what the language reads, not the indices.
        const array: unknown[] = [1, 2];
        array[Symbol.iterator] = function* (): ArrayIterator<unknown> {
          yield "from the iterator";
          return undefined;
        };
        return array;
      }],
      ["array shrunk by a then getter", () => {
        // The result holds exactly the elements read: no trailing slots for the dropped ones.
        const array: unknown[] = [];
        array.push(
          {
            get then() {
              array.length = 1;
              return (resolve: (value: unknown) => void) => resolve("t");
            },
          },
          2,
          3,
        );
        return array;
      }],
      ["string", () => "abc"],
      ["set", () => new Set([1, 2])],
      ["throwing iterator", () => ({
        [Symbol.iterator]: () => ({
          next: () => {
            throw boom;
          },
        }),
      })],
      ["throwing after one value", function* () {
        yield 1;
        throw boom;
      }],
      ["not iterable", () => 42 as unknown as Iterable<unknown>],
      ["non-object iterator result", () =>
        ({
          [Symbol.iterator]: () => ({ next: () => 1 }),
        }) as unknown as Iterable<unknown>],
    ];
    for (const [label, make] of sources) {
      for (const combinator of combinators) {
        const expected = observeNative(combinator.native(make() as unknown[]));
        const actual = combinator.ours(make(), { loop });
        for (let i = 0; i < 8; i++) {
          loop.runOnce();
          await turns.next();
        }
        const ours = outcomeOf(actual);
        assert.equal(ours.state, expected.state, `${combinator.name} over ${label}: settlement`);
        if (expected.value instanceof TypeError) {
          assert.ok(ours.value instanceof TypeError, `${combinator.name} over ${label}: TypeError`);
        } else assertSameValue(ours.value, expected.value, `${combinator.name} over ${label}`);
      }
    }
  } finally {
    turns.close();
    await loop.close();
  }
});
