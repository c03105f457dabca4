// The timer store (per-duration rings, a heap of runs, the intake, its sorted batches, an overflow
// heap) against a sorted array: random inserts (in order, out of order, far out of order,
// re-inserted with an old key), removes (head, middle, tail, absent) and pops, with limits small
// enough to reach every path (scan limits, the intake, batches, the overflow, relayouts,
// shrinking, sweeps, position rebasing). After every step the
// store's invariants are checked and each pop must return the model's minimum, with its payload
// when its run knows it (runs whose entries share one).
import assert from "node:assert/strict";
import fc from "fast-check";
import { type StoreLimits, type TimerRun, TimerStore } from "../../loop/_timer_store.ts";

// A fixed seed keeps runs reproducible; change it to explore other cases.
const SEED = 20_261_125;

/** Payloads entries share (a few, so that runs are often uniform), and none (undefined). */
const PAYLOADS = [{ payload: "a" }, { payload: "b" }, undefined] as const;

class Entry {
  run: TimerRun | null = null;
  slot = 0;
  readonly payload: (typeof PAYLOADS)[number];
  constructor(readonly name: number) {
    // Mostly "a": many runs stay uniform; some mix in "b" or none.
    this.payload = PAYLOADS[name % 7 === 3 ? 1 : name % 7 === 5 ? 2 : 0];
  }
}

interface Stored {
  entry: Entry;
  deadlineMs: number;
  sequence: number;
}

type Op =
  | { kind: "insert"; key: number; order: "append" | "jitter" | "early" | "old"; pick: number }
  | { kind: "remove"; pick: number }
  | { kind: "pop"; advanceMs: number }
  | { kind: "reinsert"; pick: number; key: number };

/** Operations over `keys` distinct durations. */
const opArb = (keys: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant("insert" as const),
        key: fc.integer({ min: 0, max: keys - 1 }),
        order: fc.constantFrom(
          "append" as const,
          "append" as const,
          "jitter" as const,
          "early" as const,
          "old" as const,
        ),
        pick: fc.nat(1000),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant("remove" as const), pick: fc.nat(1000) }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant("pop" as const),
        advanceMs: fc.integer({ min: 0, max: 8 }).map((quarters) => quarters / 4),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("reinsert" as const),
        pick: fc.nat(1000),
        key: fc.integer({ min: 0, max: keys - 1 }),
      }),
    },
  );

function before(a: Stored, b: Stored): boolean {
  return a.deadlineMs < b.deadlineMs || (a.deadlineMs === b.deadlineMs && a.sequence < b.sequence);
}

/** Every structural invariant of the store, against the model's entries. */
function check(store: TimerStore<Entry>, model: Stored[]): void {
  assert.equal(store.size, model.length, "size");
  let live = 0;
  // The heap of runs: positions, keys mirroring each run's first entry, heap order.
  for (let i = 0; i < store.heapLength; i++) {
    const id = store.heapIds[i];
    const run = store.runs[id]!;
    assert.equal(store.heapPositions[id], i, "heap position");
    assert.ok(run.live > 0, "runs in the heap are non-empty");
    if (i > 0) {
      const parent = (i - 1) >> 2;
      const k = store.heapKeys;
      // Ties only between stale keys: a cancelled first entry's key stays its run's, and the same
      // entry re-inserted with that key heads another run.
      assert.ok(
        k[parent * 2] < k[i * 2] ||
          (k[parent * 2] === k[i * 2] && k[parent * 2 + 1] <= k[i * 2 + 1]),
        "heap order",
      );
    }
    let first: Stored | undefined;
    if (run === store.overflow) {
      for (let j = 0; j < run.live; j++) {
        const entry = run.nodes[j] as Entry;
        assert.equal(entry.run, run);
        assert.equal(entry.slot, j);
        const here = { entry, deadlineMs: run.keys[2 * j], sequence: run.keys[2 * j + 1] };
        if (j > 0) {
          const p = (j - 1) >> 2;
          assert.ok(
            before({ entry, deadlineMs: run.keys[2 * p], sequence: run.keys[2 * p + 1] }, here),
            "overflow heap order",
          );
        }
        first ??= here;
      }
      for (let j = run.live; j <= run.mask; j++) assert.equal(run.nodes[j], undefined);
    } else if (run.indirect) {
      // A batch sorted by an index over the intake it was (see TimerRun.indirect).
      assert.ok(run.sorted && run !== store.intake && run.key !== run.key, "indirect: a batch");
      assert.ok(run.tail <= run.order.length && run.head < run.tail, "places within the order");
      assert.notEqual(run.nodes[run.order[run.head]], undefined, "the head place is an entry's");
      const indices = new Set<number>();
      let count = 0;
      let previous: Stored | undefined;
      for (let place = run.head; place < run.tail; place++) {
        const index = run.order[place];
        assert.ok(index >= 0 && index <= run.mask && !indices.has(index), "an index per place");
        indices.add(index);
        const entry = run.nodes[index] as Entry | undefined;
        if (entry === undefined) {
          assert.equal(run.payloads[index], undefined, "a hole keeps no payload");
          continue;
        }
        count++;
        assert.equal(entry.run, run);
        assert.equal(entry.slot & run.mask, index, "an entry stays where the intake put it");
        assert.equal(run.payloads[index], entry.payload, "its payload beside it");
        const here = {
          entry,
          deadlineMs: run.sortedDeadlines[place],
          sequence: run.sortedSequences[place],
        };
        assert.equal(run.keys[2 * index], here.deadlineMs, "sorted keys agree with the stored");
        assert.equal(run.keys[2 * index + 1], here.sequence);
        if (previous !== undefined) assert.ok(before(previous, here), "batch order");
        previous = here;
        first ??= here;
      }
      assert.equal(count, run.live, "live count");
      for (let index = 0; index <= run.mask; index++) {
        if (indices.has(index)) continue;
        assert.equal(run.nodes[index], undefined, "no entry outside the places left");
        assert.equal(run.payloads[index], undefined);
      }
    } else {
      assert.ok(run.tail - run.head <= run.mask + 1, "span within capacity");
      assert.ok(run.tail < store.positionLimit * 2 && run.head > -store.positionLimit * 2);
      let count = 0;
      let previous: Stored | undefined;
      for (let p = run.head; p < run.tail; p++) {
        const index = p & run.mask;
        const entry = run.nodes[index] as Entry | undefined;
        if (entry === undefined) {
          assert.ok(p !== run.head && p !== run.tail - 1, "head and tail are entries");
          assert.equal(run.payloads[index], undefined, "a hole keeps no payload");
          continue;
        }
        count++;
        assert.equal(entry.run, run);
        assert.equal(entry.slot, p);
        assert.equal(run.payloads[index], entry.payload, "its payload beside it");
        const here = { entry, deadlineMs: run.keys[2 * index], sequence: run.keys[2 * index + 1] };
        if (run.sorted) {
          if (previous !== undefined) assert.ok(before(previous, here), "run order");
          previous = here;
          first ??= here;
        } else if (first === undefined || before(here, first)) first = here; // its least
      }
      if (!run.sorted) {
        assert.equal(run, store.intake, "only the intake is unsorted");
        assert.ok(run.key !== run.key, "the intake is no duration's run");
      }
      assert.equal(count, run.live, "live count");
      // Positions outside [head, tail) are free.
      for (let p = run.tail; p < run.head + run.mask + 1; p++) {
        assert.equal(run.nodes[p & run.mask], undefined, "free slot");
        assert.equal(run.payloads[p & run.mask], undefined, "a free slot keeps no payload");
      }
    }
    live += run.live;
    // A run's heap key is a lower bound of its first entry's (exact for the overflow).
    const key = {
      entry: first!.entry,
      deadlineMs: store.heapKeys[2 * i],
      sequence: store.heapKeys[2 * i + 1],
    };
    if (run === store.overflow || (!run.sorted && run.exact)) {
      assert.deepEqual(
        key,
        first,
        "heap key mirrors the overflow's first (the intake's least) entry",
      );
    } else assert.ok(!before(first!, key), "heap key is a lower bound of the run's first entry");
  }
  assert.equal(live, model.length, "entries in runs");
  // The earliest deadline is exact (settling the top of the heap on the way).
  const earliestMs = model.reduce((ms, stored) => Math.min(ms, stored.deadlineMs), Infinity);
  assert.equal(store.firstDeadlineMs(), earliestMs, "first deadline");
  if (store.heapLength !== 0) {
    const top = store.runs[store.heapIds[0]]!;
    if (top.indirect) {
      assert.equal(store.heapKeys[0], top.sortedDeadlines[top.head], "the settled top mirrors");
      assert.equal(store.heapKeys[1], top.sortedSequences[top.head]);
    } else if (top.sorted) {
      const k = top === store.overflow ? 0 : 2 * (top.head & top.mask);
      assert.equal(store.heapKeys[0], top.keys[k], "the settled top mirrors its first entry");
      assert.equal(store.heapKeys[1], top.keys[k + 1]);
    } else assert.ok(top.exact, "the intake on top keys its least entry");
  }
  for (const stored of model) {
    assert.ok(store.holds(stored.entry), "holds every stored entry");
    assert.equal(store.deadlineOf(stored.entry), stored.deadlineMs);
    assert.equal(store.sequenceOf(stored.entry), stored.sequence);
  }
  // Empty runs are out of the heap; the table's counts add up.
  let tableRuns = 0;
  let emptyRuns = 0;
  for (let i = 0; i < store.slots.length; i++) {
    const run = store.slots[i];
    if (run === undefined) continue;
    tableRuns++;
    assert.equal(store.slotKeys[i], run.key);
    assert.equal(store.runs[run.id], run);
    if (run.live === 0) {
      emptyRuns++;
      assert.equal(store.heapPositions[run.id], -1);
    }
  }
  assert.equal(tableRuns, store.runCount, "run count");
  assert.ok(store.spareBatches.length <= store.batchesKept, "spare batches kept");
  let largeSpares = 0;
  for (const run of store.spareBatches) {
    assert.equal(run.live, 0, "spare batches are empty");
    assert.ok(!run.indirect && run !== store.intake);
    if (run.mask >= store.shrinkCapacity) largeSpares++;
    assert.equal(store.heapPositions[run.id], -1, "spare batches are out of the heap");
    assert.equal(store.runs[run.id], run);
  }
  assert.ok(largeSpares <= 1, "at most one spare keeps a large storage");
  assert.ok(
    largeSpares === 0 || store.spareBatches.at(-1)!.mask >= store.shrinkCapacity,
    "on top",
  );
  assert.ok(!store.intake.indirect && !store.intake.sorted, "the intake is unsorted");
  assert.equal(store.runs[store.intake.id], store.intake);
  assert.equal(emptyRuns, store.emptyRuns, "empty run count");
  assert.ok(store.runCount <= store.maxRuns, "at most maxRuns runs");
}

function runScript(ops: Op[], limits: Partial<StoreLimits>): void {
  const store = new TimerStore<Entry>(limits);
  const model: Stored[] = [];
  const removed: Stored[] = [];
  let nowMs = 100;
  let sequence = 0;
  let names = 0;
  const take = (list: Stored[], pick: number) => list.splice(pick % list.length, 1)[0];
  const insert = (stored: Stored, key: number) => {
    store.insert(stored.entry, key, stored.deadlineMs, stored.sequence);
    model.push(stored);
  };
  for (const op of ops) {
    if (op.kind === "insert") {
      const delayMs = op.key / 2;
      let deadlineMs = nowMs + delayMs;
      if (op.order === "jitter") deadlineMs -= (op.pick % 5) / 4; // slightly out of order
      else if (op.order === "early") deadlineMs = nowMs - 10 - op.pick / 100; // before everything
      const stored = { entry: new Entry(names++), deadlineMs, sequence: sequence++ };
      if (op.order === "old" && removed.length !== 0) {
        // A timer set aside during a pass and put back: its old key, an older sequence.
        const old = take(removed, op.pick);
        insert(old, op.key);
      } else insert(stored, op.key);
    } else if (op.kind === "reinsert") {
      // A refresh: out and back in with a new key.
      if (model.length === 0) continue;
      const stored = take(model, op.pick);
      store.remove(stored.entry);
      assert.ok(!store.holds(stored.entry));
      insert({ entry: stored.entry, deadlineMs: nowMs + op.key / 2, sequence: sequence++ }, op.key);
    } else if (op.kind === "remove") {
      if (model.length === 0 || op.pick % 7 === 0) {
        // Removing an entry that is not stored is a no-op.
        const stray = removed.length !== 0 ? removed[op.pick % removed.length] : undefined;
        if (stray !== undefined) store.remove(stray.entry);
      } else {
        const stored = take(model, op.pick);
        store.remove(stored.entry);
        assert.ok(!store.holds(stored.entry));
        removed.push(stored);
      }
    } else {
      nowMs += op.advanceMs;
      // Pops everything due, in order, as a timer pass does.
      for (;;) {
        let best = -1;
        for (let i = 0; i < model.length; i++) {
          if (model[i].deadlineMs <= nowMs && (best < 0 || before(model[i], model[best]))) best = i;
        }
        // Whether the minimum comes off the overflow heap, which keeps no payloads: it is there,
        // or in an intake small enough to be spilled there as it surfaces.
        const holder = best >= 0 ? model[best].entry.run : null;
        const fromOverflow = holder === store.overflow ||
          (holder === store.intake && store.intake.live <= store.sortLimit);
        const entry = store.shiftDue(nowMs);
        if (best < 0) {
          assert.equal(entry, null, "nothing due");
          break;
        }
        const expected = model.splice(best, 1)[0];
        assert.equal(entry, expected.entry, "pops the minimum");
        assert.equal(store.shiftedDeadlineMs, expected.deadlineMs);
        assert.equal(store.shiftedSequence, expected.sequence);
        // Its own payload, kept beside it (the overflow heap keeps none).
        assert.equal(store.shiftedPayload, fromOverflow ? undefined : expected.entry.payload);
        assert.ok(!store.holds(entry!), "a popped entry is no longer held");
        removed.push(expected);
        check(store, model);
      }
    }
    check(store, model);
  }
  const sorted = [...model].sort((a, b) => before(a, b) ? -1 : 1);
  assert.deepEqual(store.sorted().map((s) => s.entry), sorted.map((s) => s.entry));
  assert.equal(
    store.firstDeadlineMs(),
    sorted.length === 0 ? Infinity : sorted[0].deadlineMs,
  );
  // Drains in order.
  for (const expected of sorted) assert.equal(store.shiftDue(Infinity), expected.entry);
  assert.equal(store.shiftDue(Infinity), null);
  assert.equal(store.size, 0);
  check(store, []);
}

Deno.test("timer store: random inserts, removes and pops match a sorted array (tiny limits)", () => {
  fc.assert(
    fc.property(fc.array(opArb(8), { minLength: 20, maxLength: 300, size: "max" }), (ops) => {
      runScript(ops, {
        scanLimit: 2,
        maxRuns: 3,
        emptyRunsKept: 1,
        shrinkCapacity: 8,
        positionLimit: 1024,
        sortLimit: 2,
        batchesKept: 1,
      });
    }),
    { numRuns: 400, seed: SEED },
  );
});

Deno.test("timer store: random inserts, removes and pops match a sorted array (defaults)", () => {
  fc.assert(
    fc.property(
      fc.array(opArb(40), { minLength: 20, maxLength: 400, size: "max" }),
      (ops) => runScript(ops, {}),
    ),
    { numRuns: 200, seed: SEED },
  );
});

Deno.test("timer store: random inserts, removes and pops match a sorted array (many sweeps)", () => {
  fc.assert(
    fc.property(
      fc.array(opArb(40), { minLength: 20, maxLength: 400, size: "max" }),
      (ops) => runScript(ops, { emptyRunsKept: 2, maxRuns: 24, shrinkCapacity: 8, sortLimit: 4 }),
    ),
    { numRuns: 100, seed: SEED },
  );
});

Deno.test("timer store: an entry inserted before the tail fills a hole or moves the entries after it", () => {
  const store = new TimerStore<Entry>();
  const model: Stored[] = [];
  for (let i = 0; i < 10; i++) {
    const stored = { entry: new Entry(i), deadlineMs: i, sequence: i };
    store.insert(stored.entry, 1, i, i);
    model.push(stored);
  }
  store.remove(model.splice(8, 1)[0].entry); // a hole before the tail
  const intoHole = { entry: new Entry(10), deadlineMs: 7.5, sequence: 10 };
  store.insert(intoHole.entry, 1, 7.5, 10);
  model.splice(8, 0, intoHole);
  check(store, model);
  assert.equal(intoHole.entry.slot, 8, "the hole is reused");
  const moving = { entry: new Entry(11), deadlineMs: 6.5, sequence: 11 };
  store.insert(moving.entry, 1, 6.5, 11);
  model.splice(7, 0, moving);
  check(store, model);
  assert.equal(moving.entry.slot, 7, "the entries after it moved");
  for (const expected of model) assert.equal(store.shiftDue(Infinity), expected.entry);
});

Deno.test("timer store: positions are rebased before they leave the Smi range", () => {
  const store = new TimerStore<Entry>({ positionLimit: 64 });
  const model: Stored[] = [];
  // One run that never empties: appends at the tail, pops at the head, far past the limit.
  for (let i = 0; i < 1000; i++) {
    const stored = { entry: new Entry(i), deadlineMs: i, sequence: i };
    store.insert(stored.entry, 1, stored.deadlineMs, stored.sequence);
    model.push(stored);
    if (i >= 3) {
      assert.equal(store.shiftDue(Infinity), model.shift()!.entry);
    }
    check(store, model);
  }
  // Prepends (entries put back before the head) far below zero, the tail cancelled meanwhile.
  for (let i = 0; i < 1000; i++) {
    const stored = { entry: new Entry(-i), deadlineMs: -1 - i, sequence: -1 - i };
    store.insert(stored.entry, 1, stored.deadlineMs, stored.sequence);
    model.unshift(stored);
    if (i >= 3) store.remove(model.pop()!.entry);
    check(store, model);
  }
  for (const expected of model) assert.equal(store.shiftDue(Infinity), expected.entry);
});

Deno.test("timer store: durations beyond maxRuns share the intake and keep their order", () => {
  const store = new TimerStore<Entry>({ maxRuns: 4 });
  const model: Stored[] = [];
  for (let i = 0; i < 200; i++) {
    // 50 distinct durations, each timer armed a little later than the previous one.
    const key = (i * 37) % 50;
    const stored = { entry: new Entry(i), deadlineMs: i / 100 + key, sequence: i };
    store.insert(stored.entry, key, stored.deadlineMs, stored.sequence);
    model.push(stored);
  }
  check(store, model);
  assert.ok(store.intake.live > 0, "the intake holds the long tail");
  assert.equal(store.runCount, 4);
  // Cancel every third, in a scrambled order, then drain.
  const cancelled = model.filter((_, i) => i % 3 === 0);
  for (let i = 0; i < cancelled.length; i++) {
    store.remove(cancelled[(i * 17) % cancelled.length].entry);
  }
  const left = model.filter((_, i) => i % 3 !== 0).sort((a, b) => before(a, b) ? -1 : 1);
  check(store, left);
  for (const expected of left) assert.equal(store.shiftDue(Infinity), expected.entry);
  assert.equal(store.size, 0);
});

Deno.test("timer store: a run that grew gives memory back as it drains", () => {
  const store = new TimerStore<Entry>({ shrinkCapacity: 8 });
  const model: Stored[] = [];
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 64; i++) {
      const stored = {
        entry: new Entry(i),
        deadlineMs: round * 100 + i,
        sequence: round * 100 + i,
      };
      store.insert(stored.entry, 1, stored.deadlineMs, stored.sequence);
      model.push(stored);
    }
    const run = model[0].entry.run!;
    assert.ok(run.mask >= 63);
    // Cancel from the middle and the tail, pop from the head.
    while (model.length > 2) {
      store.remove(model.splice(model.length >> 1, 1)[0].entry);
      store.remove(model.pop()!.entry);
      assert.equal(store.shiftDue(Infinity), model.shift()!.entry);
      check(store, model);
    }
    assert.ok(run.mask < 63, "shrunk");
    while (model.length !== 0) assert.equal(store.shiftDue(Infinity), model.shift()!.entry);
    check(store, model);
    assert.ok(run.mask < 8, "emptied runs keep a small storage");
  }
  // Cancels alone shrink it too.
  for (let i = 0; i < 64; i++) {
    const stored = { entry: new Entry(i), deadlineMs: 1000 + i, sequence: 1000 + i };
    store.insert(stored.entry, 1, stored.deadlineMs, stored.sequence);
    model.push(stored);
  }
  const run = model[0].entry.run!;
  while (model.length > 4) {
    store.remove(model.splice(model.length >> 1, 1)[0].entry);
    check(store, model);
  }
  assert.ok(run.mask < 63, "shrunk");
});

Deno.test("timer store: removing from the middle of the overflow can move its last entry up", () => {
  const store = new TimerStore<Entry>({ maxRuns: 1 });
  const keep = new Entry(-1);
  store.insert(keep, 0, 1000, 1000); // the one run; every other duration goes to the intake
  const model: Stored[] = [{ entry: keep, deadlineMs: 1000, sequence: 1000 }];
  const entries = new Map<number, Entry>();
  // Its least entry, removed: settling the intake (a few entries) moves them to the overflow.
  const least = new Entry(-2);
  store.insert(least, 1, -1, -1);
  // A 4-ary heap shaped [0, 100, 1, 2, 3, 101, 102, 103, 104, 5]: 5 sits under 1.
  for (const deadlineMs of [0, 100, 1, 2, 3, 101, 102, 103, 104, 5]) {
    const entry = new Entry(deadlineMs);
    entries.set(deadlineMs, entry);
    store.insert(entry, 1 + deadlineMs, deadlineMs, deadlineMs);
    model.push({ entry, deadlineMs, sequence: deadlineMs });
  }
  store.remove(least);
  assert.equal(store.firstDeadlineMs(), 0);
  assert.equal(store.intake.live, 0, "spilled");
  assert.equal(entries.get(5)!.run, store.overflow);
  assert.equal(entries.get(5)!.slot, 9);
  store.remove(entries.get(101)!); // 5 takes its place, under 100: it must move up
  model.splice(model.findIndex((stored) => stored.deadlineMs === 101), 1);
  check(store, model);
  model.sort((a, b) => before(a, b) ? -1 : 1);
  for (const expected of model) assert.equal(store.shiftDue(Infinity), expected.entry);
});

Deno.test("timer store: extreme and colliding duration keys keep their own runs", () => {
  const store = new TimerStore<Entry>();
  const keys = [
    0,
    -0,
    1e-9,
    2e-9, // closer than the hash's resolution: same bucket, different runs
    0.25,
    -1,
    -1 - 0.25,
    2 ** 31,
    1e9,
    Number.MAX_SAFE_INTEGER,
    -1 - Number.MAX_SAFE_INTEGER,
  ];
  const model: Stored[] = [];
  let sequence = 0;
  for (let round = 0; round < 3; round++) {
    for (const key of keys) {
      const stored = { entry: new Entry(sequence), deadlineMs: round + Math.abs(key), sequence };
      sequence++;
      store.insert(stored.entry, key, stored.deadlineMs, stored.sequence);
      model.push(stored);
    }
  }
  check(store, model);
  // -0 and 0 share a run; every other key has its own.
  assert.equal(store.runCount, keys.length - 1);
  assert.equal(model[0].entry.run, model[1].entry.run);
  assert.notEqual(model[2].entry.run, model[3].entry.run);
  model.sort((a, b) => before(a, b) ? -1 : 1);
  for (const expected of model) assert.equal(store.shiftDue(Infinity), expected.entry);
});

Deno.test("timer store: each entry's payload is kept beside it; unshare forgets one", () => {
  const store = new TimerStore<{ run: TimerRun | null; slot: number; payload: unknown }>();
  const shared = { name: "shared" };
  const other = { name: "other" };
  const entries = [shared, other, undefined, shared].map((payload) => ({
    run: null,
    slot: 0,
    payload,
  }));
  entries.forEach((entry, i) => store.insert(entry, 5, 5, i));
  const payloads: unknown[] = [];
  while (store.shiftDue(Infinity) !== null) payloads.push(store.shiftedPayload);
  assert.deepEqual(payloads, [shared, other, undefined, shared]);
  // An entry whose own payload changed is unshared: the store forgets its payload, not others'.
  const first = { run: null, slot: 0, payload: shared };
  const second = { run: null, slot: 0, payload: shared };
  const third = { run: null, slot: 0, payload: shared };
  store.insert(first, 5, 30, 30);
  store.insert(second, 5, 31, 31);
  store.insert(third, 5, 32, 32);
  store.unshare(second);
  assert.equal(store.shiftDue(Infinity), first);
  assert.equal(store.shiftedPayload, shared);
  assert.equal(store.shiftDue(Infinity), second);
  assert.equal(store.shiftedPayload, undefined);
  assert.equal(store.shiftDue(Infinity), third);
  assert.equal(store.shiftedPayload, shared);
  store.unshare(second); // not stored: a no-op
  assert.ok(!store.holds(third), "taken off, not held, though it still names its run");
  assert.notEqual(third.run, null);
  // A cancelled entry's payload is dropped with it (the store keeps no callback alive).
  const cancelled = { run: null, slot: 0, payload: other };
  store.insert(cancelled, 5, 40, 40);
  const run = cancelled.run! as TimerRun;
  const index = cancelled.slot & run.mask;
  assert.equal(run.payloads[index], other);
  store.remove(cancelled);
  assert.equal(run.payloads[index], undefined);
});

Deno.test("timer store: a large batch from the intake drains in order (spread, clustered, tied)", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          shape: fc.constantFrom("spread" as const, "cluster" as const, "tie" as const),
          x: fc.nat(1_000_000),
        }),
        { minLength: 25, maxLength: 3000, size: "max" },
      ),
      fc.integer({ min: 2, max: 50 }),
      (specs, removeEvery) => {
        const store = new TimerStore<Entry>({ maxRuns: 1, sortLimit: 8 });
        const model: Stored[] = [];
        const count = specs.length;
        specs.forEach(({ shape, x }, i) => {
          // Spread over a range; clustered towards zero (buckets keep splitting one range); one
          // deadline, so that sequences (not in arrival order) decide.
          const deadlineMs = shape === "spread"
            ? x / 1000
            : shape === "cluster"
            ? 2 ** -(x % 60)
            : 5;
          // Sequences distinct but not in arrival order (7919 is prime, larger than any count).
          const stored = { entry: new Entry(i), deadlineMs, sequence: (i * 7919) % count };
          store.insert(stored.entry, i + 1, stored.deadlineMs, stored.sequence);
          model.push(stored);
        });
        // Cancel some, the least among them (the intake's key becomes a lower bound).
        const least = model.reduce((a, b) => before(a, b) ? a : b);
        store.remove(least.entry);
        const kept = model.filter((stored, i) => stored !== least && i % removeEvery !== 0);
        for (const stored of model) if (!kept.includes(stored)) store.remove(stored.entry);
        check(store, kept);
        const intakeBefore = store.intake.live;
        kept.sort((a, b) => before(a, b) ? -1 : 1);
        for (const expected of kept) {
          assert.equal(store.shiftDue(Infinity), expected.entry);
          assert.equal(store.shiftedDeadlineMs, expected.deadlineMs);
        }
        assert.equal(store.shiftDue(Infinity), null);
        check(store, []);
        if (intakeBefore > 8) assert.equal(store.spareBatches.length, 1, "drained through a batch");
      },
    ),
    { numRuns: 60, seed: SEED },
  );
});

Deno.test("timer store: the intake, its batches and the overflow give memory back", () => {
  const store = new TimerStore<Entry>({ maxRuns: 1, sortLimit: 2, shrinkCapacity: 8 });
  store.insert(new Entry(-1), 0, 1e9, 1e9); // the one run: every other duration goes to the intake
  const model: Stored[] = [];
  for (let i = 0; i < 40; i++) {
    const stored = { entry: new Entry(i), deadlineMs: 40 - i, sequence: i };
    store.insert(stored.entry, i + 1, stored.deadlineMs, stored.sequence);
    model.push(stored);
  }
  const first = store.intake;
  assert.ok(first.mask >= 63);
  // Down to 10 (the intake keeps its storage meanwhile), its least first: a lower bound.
  while (model.length > 10) store.remove(model.pop()!.entry);
  assert.ok(first.mask >= 63);
  assert.equal(first.exact, false);
  assert.equal(store.firstDeadlineMs(), 31, "settled: the intake became a batch");
  assert.ok(first.indirect && model[0].entry.run === first, "its entries stayed in place");
  assert.notEqual(store.intake, first, "a new run is the intake");
  assert.ok(store.intake.mask < 8);
  model.sort((a, b) => before(a, b) ? -1 : 1);
  for (const expected of model) assert.equal(store.shiftDue(100), expected.entry);
  assert.deepEqual(store.spareBatches, [first], "kept for reuse");
  assert.ok(first.mask < 8, "a quarter or less of it used by its batch: its storage went back");
  assert.equal(first.order.length, 0);

  // A batch that used its storage keeps it when emptied, and the next intake takes it.
  const fill = (count: number, fromMs: number): Entry[] => {
    const entries = Array.from({ length: count }, (_, i) => new Entry(i));
    entries.forEach((entry, i) => store.insert(entry, fromMs + i, fromMs + i, fromMs + i));
    return entries;
  };
  const many = fill(100, 200);
  const second = store.intake;
  assert.equal(store.shiftDue(1000), many[0], "settled when due: the intake became a batch");
  assert.ok(second.indirect && second.mask >= 127);
  assert.equal(store.intake, first, "the spare is the intake");
  assert.ok(store.scratch.buckets.length >= 100);
  while (store.shiftDue(1000) !== null);
  assert.ok(second.mask >= 127 && second.order.length >= 100, "kept whole");
  assert.equal(store.spareBatches.at(-1), second, "on top");
  const again = fill(100, 2000);
  assert.equal(store.shiftDue(5000), again[0]);
  assert.equal(first.indirect, true, "the intake before became a batch");
  assert.equal(store.intake, second, "the next intake took the kept storage");
  while (store.shiftDue(5000) !== null);

  // Storage far larger than its batch goes back, and so does the sort's scratch.
  const few = fill(10, 6000);
  assert.equal(store.intake, second);
  assert.equal(store.shiftDue(7000), few[0]);
  assert.ok(second.indirect);
  assert.ok(store.scratch.buckets.length < 64, "the scratch shrank to fit");
  while (store.shiftDue(7000) !== null);
  assert.ok(second.mask < 8, "a quarter or less of it used: its storage went back");

  // Two large batches at once: only one keeps its storage once emptied.
  const late = fill(100, 10_000);
  assert.equal(store.shiftDue(10_000), late[0]);
  const early = fill(100, 9_000); // due before most of the first batch
  assert.equal(store.shiftDue(10_000), early[0]);
  assert.ok(late[1].run!.indirect && early[1].run!.indirect && late[1].run !== early[1].run);
  while (store.shiftDue(20_000) !== null);
  const large = store.spareBatches.filter((run) => run.mask >= store.shrinkCapacity);
  assert.equal(large.length, 1, "one spare keeps a large storage");
  assert.equal(store.spareBatches.at(-1), large[0], "on top");

  // Every key the same (the store allows it): any order, all of them.
  const same = Array.from({ length: 30 }, (_, i) => new Entry(i));
  for (const entry of same) store.insert(entry, 2, 30_000, 30_000);
  const drained = new Set<Entry>();
  for (;;) {
    const entry = store.shiftDue(40_000);
    if (entry === null || entry.name === -1) break;
    drained.add(entry);
  }
  assert.equal(drained.size, 30);
  for (const entry of same) assert.ok(drained.has(entry));
});

Deno.test("timer store: a batch left mostly empty by removes is flattened, in order", () => {
  const store = new TimerStore<Entry>({ maxRuns: 1, sortLimit: 2, shrinkCapacity: 8 });
  const keep = { entry: new Entry(-1), deadlineMs: 1e9, sequence: 1e9 };
  store.insert(keep.entry, 0, keep.deadlineMs, keep.sequence);
  const model: Stored[] = [];
  for (let i = 0; i < 64; i++) {
    const stored = { entry: new Entry(i), deadlineMs: 100 + ((i * 37) % 64), sequence: i };
    store.insert(stored.entry, i + 1, stored.deadlineMs, stored.sequence);
    model.push(stored);
  }
  model.sort((a, b) => before(a, b) ? -1 : 1);
  assert.equal(store.shiftDue(100), model.shift()!.entry, "the intake became a batch");
  const batch = model[0].entry.run!;
  assert.ok(batch.indirect);
  // Remove all but every ninth: at an eighth of its storage it is rebuilt as a plain run.
  const kept = model.filter((_, i) => i % 9 === 0);
  for (const stored of model) if (!kept.includes(stored)) store.remove(stored.entry);
  assert.equal(batch.indirect, false, "flattened");
  assert.ok(batch.mask < 63, "into a storage that fits");
  check(store, [...kept, keep]);
  for (const expected of kept) assert.equal(store.shiftDue(1000), expected.entry);
  assert.equal(store.shiftDue(1000), null);
});

Deno.test("timer store: an overflow heap that grew gives memory back", () => {
  const store = new TimerStore<Entry>({ maxRuns: 1, sortLimit: 64, shrinkCapacity: 8 });
  const keep = { entry: new Entry(-1), deadlineMs: 1e9, sequence: 1e9 };
  store.insert(keep.entry, 0, keep.deadlineMs, keep.sequence);
  const model: Stored[] = [keep];
  for (let i = 0; i < 60; i++) {
    const stored = { entry: new Entry(i), deadlineMs: (i * 37) % 60, sequence: i };
    store.insert(stored.entry, i + 1, stored.deadlineMs, stored.sequence);
    model.push(stored);
  }
  assert.equal(store.firstDeadlineMs(), 0);
  // The intake surfaced with a few: spilled into the overflow.
  model.sort((a, b) => before(a, b) ? -1 : 1);
  assert.equal(store.shiftDue(0), model.shift()!.entry);
  assert.equal(store.overflow.live, 59);
  assert.ok(store.overflow.mask >= 63);
  while (model.length > 4) {
    assert.equal(store.shiftDue(100), model.shift()!.entry);
    check(store, model);
  }
  assert.ok(store.overflow.mask < 63, "shrunk");
});

Deno.test("timer store: a batch whose new run grows the heap's tables pops in order", () => {
  // Ids 0 and 1 are the overflow and the intake; 14 duration runs take ids 2-15, filling the
  // tables' first 16 places, so the run the batch needs (id 16) makes them grow mid-pop.
  const store = new TimerStore<Entry>({ maxRuns: 14, sortLimit: 2 });
  const model: Stored[] = [];
  let sequence = 0;
  for (let key = 0; key < 14; key++) {
    const stored = { entry: new Entry(sequence), deadlineMs: 500 + key, sequence: sequence++ };
    store.insert(stored.entry, key, stored.deadlineMs, stored.sequence);
    model.push(stored);
  }
  assert.equal(store.runs.length, 16);
  for (let i = 0; i < 10; i++) {
    const stored = { entry: new Entry(sequence), deadlineMs: 100 - i, sequence: sequence++ };
    store.insert(stored.entry, 1000 + i, stored.deadlineMs, stored.sequence);
    model.push(stored);
  }
  // Its least entry removed, the intake's heap key is a lower bound: the pop must see it change.
  store.remove(model.pop()!.entry);
  assert.equal(store.intake.exact, false);
  model.sort((a, b) => before(a, b) ? -1 : 1);
  for (const expected of model) {
    assert.equal(store.shiftDue(1e9), expected.entry);
    assert.equal(store.shiftedDeadlineMs, expected.deadlineMs);
  }
  assert.equal(store.shiftDue(1e9), null);
});
