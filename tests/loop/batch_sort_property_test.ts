// The timer store's batch sort (loop/_batch_sort.ts) against Array.prototype.sort: deadlines
// drawn so that every path is reached (ties, one deadline for a whole range, outliers that keep a
// range from spreading until the comparison sort takes over, ranges just over the insertion sort
// limit), with sequences given in order (the intake's usual case) or shuffled (ties are then
// settled by sortTiesBySequence).
import assert from "node:assert/strict";
import fc from "fast-check";
import { sortByDeadline, sortTiesBySequence } from "../../loop/_batch_sort.ts";

const SEED = 20261121;

interface Item {
  deadlineMs: number;
  sequence: number;
  index: number;
}

/** Sorts `items` as the store does; returns them in the order the sort put them. */
function batchSort(items: Item[], sequencesInOrder: boolean): Item[] {
  const count = items.length;
  const from = { deadlines: new Float64Array(count), indices: new Int32Array(count) };
  const to = { deadlines: new Float64Array(count), indices: new Int32Array(count) };
  items.forEach((item, i) => {
    from.deadlines[i] = item.deadlineMs;
    from.indices[i] = item.index;
  });
  sortByDeadline(from, to, new Int32Array(count), count);
  const byIndex = new Map(items.map((item) => [item.index, item]));
  const sequences = Float64Array.from(to.indices, (index) => byIndex.get(index)!.sequence);
  if (!sequencesInOrder) sortTiesBySequence(to, sequences, count);
  return Array.from(to.indices, (index, k) => {
    const item = byIndex.get(index)!;
    assert.equal(to.deadlines[k], item.deadlineMs, "a deadline parted from its index");
    assert.equal(sequences[k], item.sequence, "a sequence parted from its index");
    return item;
  });
}

/** Deadlines from a few shapes that reach the sort's different paths. */
const deadlineArbitrary = fc.oneof(
  { weight: 4, arbitrary: fc.double({ min: 0, max: 1000, noNaN: true }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 8 }) }, // ties
  { weight: 1, arbitrary: fc.constantFrom(1e12, -1e12, 1e-9) }, // outliers: ranges that cluster
);

Deno.test("batch sort: orders by (deadline, sequence) like a comparison sort", () => {
  fc.assert(
    fc.property(
      fc.array(deadlineArbitrary, { maxLength: 600 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (deadlines, sequencesInOrder, shuffleSeed) => {
        const items = deadlines.map((deadlineMs, i) => ({ deadlineMs, sequence: i, index: i * 3 }));
        if (!sequencesInOrder) {
          // A deterministic shuffle of the input order (sequences then arrive out of order).
          let state = shuffleSeed | 1;
          for (let i = items.length - 1; i > 0; i--) {
            state = (Math.imul(state, 48271) >>> 0) % 2147483647 || 1;
            const j = state % (i + 1);
            [items[i], items[j]] = [items[j], items[i]];
          }
        }
        const expected = [...items].sort((a, b) =>
          a.deadlineMs - b.deadlineMs || a.sequence - b.sequence
        );
        assert.deepEqual(batchSort(items, sequencesInOrder), expected);
      },
    ),
    { seed: SEED, numRuns: 400 },
  );
});

Deno.test("batch sort: large batches of spread, tied and clustered deadlines", async (t) => {
  const count = 5000;
  const cases: [string, (i: number) => number][] = [
    ["spread", (i) => ((i * 7919) % count) / 7],
    ["all tied", () => 42],
    ["two values", (i) => i % 2],
    ["one outlier", (i) => (i === 17 ? 1e15 : ((i * 31) % 97) * 1e-6)],
    ["geometric", (i) => 2 ** ((i * 13) % 60)],
  ];
  for (const [name, deadlineOf] of cases) {
    await t.step(name, () => {
      for (const sequencesInOrder of [true, false]) {
        const items = Array.from({ length: count }, (_, i) => ({
          deadlineMs: deadlineOf(i),
          sequence: sequencesInOrder ? i : (i * 4099) % count,
          index: i,
        }));
        const expected = [...items].sort((a, b) =>
          a.deadlineMs - b.deadlineMs || a.sequence - b.sequence
        );
        assert.deepEqual(batchSort(items, sequencesInOrder), expected);
      }
    });
  }
});
