import assert from "node:assert/strict";
import { Loop, LoopClosedError, type MissedTickBehavior, VirtualClock } from "../../loop/mod.ts";
import { interval, sleep } from "../../timers/mod.ts";

Deno.test("setInterval runs on absolute deadlines: late passes and slow callbacks cause no drift", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const firedAt: number[] = [];
  const timer = loop.setInterval(() => {
    firedAt.push(loop.now());
    clock.advance(3); // the callback itself takes 3 ms
  }, 10);
  // Each pass comes up to 6 ms late (always less than a period).
  for (let k = 1; k <= 50; k++) {
    const lateMs = (k * 7) % 7 === 0 ? (k % 3) * 3 : 0;
    if (k * 10 + lateMs > clock.now()) clock.set(k * 10 + lateMs);
    loop.runOnce();
  }
  loop.clearInterval(timer);
  assert.equal(firedAt.length, 50);
  firedAt.forEach((atMs, i) => {
    const deadlineMs = (i + 1) * 10;
    assert.ok(atMs >= deadlineMs && atMs < deadlineMs + 10, `tick ${i + 1} at ${atMs}`);
  });
  await loop.close();
});

Deno.test("setInterval with a fractional period: tick k runs at k * period, exactly", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const firedAt: number[] = [];
  const timer = loop.setInterval(() => {
    firedAt.push(clock.now());
    if (firedAt.length === 1000) loop.clearInterval(timer);
  }, 0.25); // exact in binary floating point, so sums stay exact
  await loop.run();
  assert.deepEqual(firedAt, Array.from({ length: 1000 }, (_, i) => (i + 1) * 0.25));
  await loop.close();
});

// A stall injected inside the second tick's callback: the clock jumps from 20 to 57.
const STALL_EXPECTATIONS: Record<MissedTickBehavior, number[]> = {
  skip: [10, 20, 57, 60, 70, 80],
  delay: [10, 20, 57, 67, 77, 87],
  burst: [10, 20, 57, 57, 57, 60],
};

for (const missed of ["skip", "delay", "burst"] as const) {
  Deno.test(`setInterval after a stall, missed: "${missed}"`, async () => {
    const clock = new VirtualClock();
    const loop = new Loop({ clock, missed });
    const firedAt: number[] = [];
    const timer = loop.setInterval(() => {
      firedAt.push(loop.now());
      if (firedAt.length === 2) clock.advance(37);
      if (firedAt.length === 6) loop.clearInterval(timer);
    }, 10);
    await loop.run();
    assert.deepEqual(firedAt, STALL_EXPECTATIONS[missed]);
    await loop.close();
  });
}

Deno.test("the default missed behaviour is skip", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const firedAt: number[] = [];
  const timer = loop.setInterval(() => {
    firedAt.push(loop.now());
    if (firedAt.length === 2) clock.advance(37);
    if (firedAt.length === 6) loop.clearInterval(timer);
  }, 10);
  await loop.run();
  assert.deepEqual(firedAt, STALL_EXPECTATIONS.skip);
  await loop.close();
});

/** Collects `count` ticks of an interval() as [tick, deliveredAt] pairs. */
async function collect(
  loop: Loop,
  count: number,
  options: Parameters<typeof interval>[1],
  onTick?: (index: number) => Promise<void> | void,
): Promise<[number, number][]> {
  const ticks: [number, number][] = [];
  for await (const tickMs of interval(10, { loop, ...options })) {
    ticks.push([tickMs, loop.now()]);
    await onTick?.(ticks.length);
    if (ticks.length === count) break;
  }
  return ticks;
}

Deno.test("interval() yields scheduled tick times, first one period after the call", async () => {
  const clock = new VirtualClock(1000);
  const loop = new Loop({ clock });
  const ticks = collect(loop, 4, {});
  await loop.run();
  assert.deepEqual(await ticks, [[1010, 1010], [1020, 1020], [1030, 1030], [1040, 1040]]);
  assert.deepEqual(loop.aliveReasons(), [], "break cleared the timer");
  await loop.close();
});

// The consumer is slow once: after the first tick it sleeps 35 ms (until 45).
const SLOW_CONSUMER: Record<MissedTickBehavior, [number, number][]> = {
  skip: [[10, 10], [20, 45], [50, 50], [60, 60], [70, 70]],
  delay: [[10, 10], [20, 45], [55, 55], [65, 65], [75, 75]],
  burst: [[10, 10], [20, 45], [30, 45], [40, 45], [50, 50]],
};

// The loop stalls while the consumer waits: a callback at 15 jumps the clock to 52.
const STALLED_LOOP: Record<MissedTickBehavior, [number, number][]> = {
  skip: [[10, 10], [20, 52], [60, 60], [70, 70]],
  delay: [[10, 10], [20, 52], [62, 62], [72, 72]],
  burst: [[10, 10], [20, 52], [30, 52], [40, 52], [50, 52], [60, 60]],
};

for (const missed of ["skip", "delay", "burst"] as const) {
  Deno.test(`interval() with a slow consumer, missed: "${missed}"`, async () => {
    const loop = new Loop({ clock: new VirtualClock() });
    const ticks = collect(loop, 5, { missed }, async (index) => {
      if (index === 1) await sleep(35, { loop });
    });
    await loop.run();
    assert.deepEqual(await ticks, SLOW_CONSUMER[missed]);
    await loop.close();
  });

  Deno.test(`interval() on a stalled loop, missed: "${missed}"`, async () => {
    const clock = new VirtualClock();
    const loop = new Loop({ clock });
    loop.setTimeout(() => clock.advance(37), 15);
    const ticks = collect(loop, STALLED_LOOP[missed].length, { missed });
    await loop.run();
    assert.deepEqual(await ticks, STALLED_LOOP[missed]);
    await loop.close();
  });
}

Deno.test("interval(): no drift when the consumer is slower than nothing but faster than a period", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const ticks = collect(loop, 20, {}, () => sleep(7, { loop }));
  await loop.run();
  assert.deepEqual(
    (await ticks).map(([tickMs]) => tickMs),
    Array.from({ length: 20 }, (_, i) => (i + 1) * 10),
  );
  await loop.close();
});

Deno.test("interval(): concurrent next() calls get consecutive ticks", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const iterator = interval(5, { loop });
  const results = Promise.all([iterator.next(), iterator.next(), iterator.next()]);
  await loop.run();
  assert.deepEqual((await results).map((result) => result.value), [5, 10, 15]);
  assert.deepEqual(await iterator.return!(), { done: true, value: undefined });
  assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  await loop.close();
});

Deno.test("interval(): return() while waiting settles the waiting next() as done and clears the timer", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const iterator = interval(5, { loop });
  const pending = iterator.next();
  assert.equal(loop.aliveReasons()[0].kind, "interval");
  await iterator.return!();
  assert.deepEqual(await pending, { done: true, value: undefined });
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.run();
  assert.equal(loop.now(), 0);
  await loop.close();
});

Deno.test("interval(): aborting rejects the waiting next() with the reason, then it is done", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const controller = new AbortController();
  const iterator = interval(5, { loop, signal: controller.signal });
  const first = await Promise.all([iterator.next(), loop.run()]);
  assert.deepEqual(first[0], { done: false, value: 5 });
  const pending = iterator.next();
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(pending, (error) => error === reason);
  assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  await loop.run();
  assert.equal(loop.now(), 5, "the timer was cleared");
  await loop.close();
});

Deno.test("interval(): an abort between ticks rejects the next next(); an aborted signal the first", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const controller = new AbortController();
  const iterator = interval(5, { loop, signal: controller.signal });
  const [first] = await Promise.all([iterator.next(), loop.run()]);
  assert.equal(first.value, 5);
  controller.abort();
  await assert.rejects(iterator.next(), (error) => error === controller.signal.reason);
  assert.deepEqual(await iterator.next(), { done: true, value: undefined });

  const aborted = AbortSignal.abort("already");
  const early = interval(5, { loop, signal: aborted });
  await assert.rejects(early.next(), (error) => error === "already");
  assert.deepEqual(await early.next(), { done: true, value: undefined });
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});

Deno.test("interval(): for await ends with the abort reason", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const controller = new AbortController();
  loop.setTimeout(() => controller.abort(new RangeError("enough")), 32);
  const ticks: number[] = [];
  const consumer = assert.rejects(async () => {
    for await (const tickMs of interval(10, { loop, signal: controller.signal })) {
      ticks.push(tickMs);
    }
  }, RangeError);
  await loop.run();
  await consumer;
  assert.deepEqual(ticks, [10, 20, 30]);
  await loop.close();
});

Deno.test("interval(): a next() waiting when the loop closes rejects with LoopClosedError", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const iterator = interval(5, { loop });
  const rejected = assert.rejects(iterator.next(), LoopClosedError);
  const report = await loop.close();
  await rejected;
  assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  assert.deepEqual(
    report.items.filter((item) => item.kind === "interval" && item.disposition === "rejected")
      .length,
    1,
  );
  const late = interval(5, { loop });
  await assert.rejects(late.next(), LoopClosedError, "a closed loop refuses new ticks");
});

Deno.test("interval(): bad arguments throw at once", () => {
  const loop = new Loop({ clock: new VirtualClock() });
  assert.throws(() => interval("10" as never, { loop }), TypeError);
  assert.throws(() => interval(Infinity, { loop }), RangeError);
  assert.throws(() => interval(10, { loop, missed: "catch-up" as never }), RangeError);
  assert.throws(() => interval(10, { loop: {} as never }), TypeError);
  assert.throws(() => interval(10, { signal: {} as never }), TypeError);
  assert.throws(() => interval(10, 5 as never), TypeError);
  assert.deepEqual(loop.aliveReasons(), []);
});

Deno.test("interval(): NaN and negative periods mean 0: one tick per loop pass", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  for (const delayMs of [NaN, -3, 0]) {
    const iterator = interval(delayMs, { loop });
    const ticks = Promise.all([iterator.next(), iterator.next(), iterator.next()]);
    await loop.run();
    assert.deepEqual((await ticks).map((result) => result.value), [0, 0, 0]);
    await iterator.return!();
  }
  await loop.close();
});

Deno.test(`setInterval, missed: "skip": a stall ending on a tick of the grid fires once, not twice`, async () => {
  // (5.6 - 1.4) / 0.7 rounds to one tick short of 6: the next tick after a stall to 5.6 must
  // still come after 5.6.
  const clock = new VirtualClock();
  const loop = new Loop({ clock, missed: "skip" });
  const firedAt: number[] = [];
  const timer = loop.setInterval(() => firedAt.push(clock.now()), 0.7);
  clock.set(0.7);
  loop.runOnce(); // tick 1; the next is due at 1.4
  clock.set(1.4 + 6 * 0.7); // a stall: five ticks are missed
  loop.runOnce();
  loop.runOnce(); // the same instant again: nothing more is due
  assert.deepEqual(firedAt, [0.7, 5.6]);
  clock.set(6.4); // past the next tick of the grid (6.3)
  loop.runOnce();
  assert.equal(firedAt.length, 3);
  loop.clearInterval(timer);
  await loop.close();
});

Deno.test("interval() never ticks early on a clock far from zero, where adding the period rounds", async () => {
  // At 1e12 ms a float step is ~1.2e-4 ms: 1e12 + 1e-5 is 1e12 itself.
  for (const periodMs of [1e-5, 0.1]) {
    const loop = new Loop({ clock: new VirtualClock(1e12) });
    const startMs = loop.now();
    const elapsed: number[] = [];
    const ticks: number[] = [];
    const consumer = (async () => {
      for await (const tickMs of interval(periodMs, { loop })) {
        elapsed.push(loop.now() - startMs);
        ticks.push(tickMs);
        if (ticks.length === 3) break;
      }
    })();
    await loop.run();
    await consumer;
    elapsed.forEach((elapsedMs, i) => {
      assert.ok(
        elapsedMs >= (i + 1) * periodMs,
        `tick ${i + 1} of ${periodMs} ms after ${elapsedMs}`,
      );
      assert.ok(
        ticks[i] - startMs >= (i + 1) * periodMs,
        `tick ${i + 1} of ${periodMs} ms at ${ticks[i]}`,
      );
    });
    await loop.close();
  }
});

Deno.test("interval() honours periods beyond 2^31-1 ms exactly", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const iterator = interval(2 ** 32, { loop });
  const ticks = Promise.all([iterator.next(), iterator.next()]);
  await loop.run();
  assert.deepEqual((await ticks).map((result) => result.value), [2 ** 32, 2 ** 33]);
  assert.equal(loop.now(), 2 ** 33);
  await iterator.return!();
  await loop.close();
});

Deno.test("interval(): a first next() made late in the period still never ticks early", async () => {
  // 445.434 - 126.535 rounds down: added back to 126.535 it falls one float short of the tick.
  const loop = new Loop({ clock: new VirtualClock() });
  const iterator = interval(445.434, { loop });
  let delivered: [number | undefined, number] | undefined;
  loop.setTimeout(() => {
    iterator.next().then((result) => delivered = [result.value, loop.now()]);
  }, 126.535);
  await loop.run();
  await iterator.return!();
  assert.ok(delivered !== undefined);
  assert.equal(delivered[0], 445.434);
  assert.ok(delivered[1] >= 445.434, `delivered at ${delivered[1]}`);
  await loop.close();
});

Deno.test("interval(): concurrent next() calls are each delivered at their own tick, not before", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const iterator = interval(5, { loop });
  const delivered = [iterator.next(), iterator.next(), iterator.next()].map((next) =>
    next.then((result) => [result.value, loop.now()])
  );
  await loop.run();
  assert.deepEqual(await Promise.all(delivered), [[5, 5], [10, 10], [15, 15]]);
  await iterator.return!();
  await loop.close();
});

// The loop stalls for exactly one period (a callback at 15 jumps the clock to 30, a tick of the
// grid): the late tick stands for the one due then, none is delivered twice at 30.
const STALL_ON_THE_GRID: Record<MissedTickBehavior, [number, number][]> = {
  skip: [[10, 10], [20, 30], [40, 40]],
  delay: [[10, 10], [20, 30], [40, 40]],
  burst: [[10, 10], [20, 30], [30, 30], [40, 40]],
};

for (const missed of ["skip", "delay", "burst"] as const) {
  Deno.test(`interval() on a loop stalled until a tick of the grid, missed: "${missed}"`, async () => {
    const clock = new VirtualClock();
    const loop = new Loop({ clock });
    loop.setTimeout(() => clock.advance(15), 15);
    const ticks = collect(loop, STALL_ON_THE_GRID[missed].length, { missed });
    await loop.run();
    assert.deepEqual(await ticks, STALL_ON_THE_GRID[missed]);
    await loop.close();
  });
}

Deno.test("interval(): return() after an abort between ticks ends it without the abort's rejection", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const controller = new AbortController();
  const iterator = interval(5, { loop, signal: controller.signal });
  const [first] = await Promise.all([iterator.next(), loop.run()]);
  assert.equal(first.value, 5);
  controller.abort(new Error("stop")); // no next() waiting: the next one would reject
  assert.deepEqual(await iterator.return!(), { done: true, value: undefined });
  assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  await loop.close();
});

Deno.test("interval(): a tick's continuation runs after the loop's current iteration, before its next one", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  const iterator = interval(10, { loop });
  const tick = iterator.next().then((result) => log.push(`tick ${result.value}`));
  let n = 0;
  loop.setTimeout(function step() {
    log.push(`step ${n}`);
    if (++n < 4) loop.setImmediate(step);
  }, 10);
  await loop.run();
  await tick;
  await iterator.return!();
  assert.deepEqual(log, ["step 0", "step 1", "tick 10", "step 2", "step 3"]);
  await loop.close();
});
