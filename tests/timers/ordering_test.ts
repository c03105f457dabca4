import assert from "node:assert/strict";
import { Loop, VirtualClock } from "../../loop/mod.ts";

Deno.test("due timers run by deadline; equal deadlines (fractional too) in scheduling order", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const schedule: [string, number][] = [
    ["c1", 2.5],
    ["a", 1],
    ["c2", 2.5],
    ["b", 2.25],
    ["z1", 0],
    ["c3", 2.5],
    ["z2 (negative is 0)", -5],
    ["z3 (NaN is 0)", NaN],
  ];
  for (const [label, delayMs] of schedule) {
    loop.setTimeout(() => log.push(`${label}@${clock.now()}`), delayMs);
  }
  await loop.run();
  assert.deepEqual(log, [
    "z1@0",
    "z2 (negative is 0)@0",
    "z3 (NaN is 0)@0",
    "a@1",
    "b@2.25",
    "c1@2.5",
    "c2@2.5",
    "c3@2.5",
  ]);
  await loop.close();
});

Deno.test("all due timers are collected first: one pass runs them all, in order, before other phases", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  loop.setTimeout(() => log.push("t@5"), 5);
  loop.setTimeout(() => {
    log.push("t@1");
    loop.submit(() => log.push("task from t@1"));
    loop.setImmediate(() => log.push("immediate from t@1"));
  }, 1);
  loop.setTimeout(() => log.push("t@3"), 3);
  loop.setTimeout(() => log.push("t@7 (not due)"), 7);
  clock.set(6); // a stall: three timers are due in the first pass
  loop.runOnce();
  assert.deepEqual(log, ["t@1", "t@3", "t@5", "task from t@1", "immediate from t@1"]);
  await loop.run();
  assert.equal(log.at(-1), "t@7 (not due)");
  await loop.close();
});

Deno.test("cancelling a timer due later in the same pass prevents it", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const victims: { id: number }[] = [];
  loop.setTimeout(() => {
    log.push("first");
    loop.clearTimeout(victims[0] as never); // by handle
    loop.clearTimeout(Number(victims[1])); // by id
    loop.clearInterval(victims[2] as never); // an interval, by clearInterval
  }, 1);
  victims.push(loop.setTimeout(() => log.push("victim 1 (same deadline)"), 1));
  victims.push(loop.setTimeout(() => log.push("victim 2 (later deadline)"), 2));
  victims.push(loop.setInterval(() => log.push("victim 3 (interval)"), 2));
  loop.setTimeout(() => log.push("survivor"), 2);
  clock.set(10);
  await loop.run();
  assert.deepEqual(log, ["first", "survivor"]);
  await loop.close();
});

Deno.test("a timer scheduled or refreshed by a timer callback never runs in the same pass", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const refreshed: { timer?: { refresh(): unknown } } = {};
  loop.setTimeout(() => {
    log.push("a");
    loop.setTimeout(() => log.push("nested 0 ms"), 0);
    loop.setTimeout(() => log.push("nested -1 ms"), -1);
    refreshed.timer!.refresh(); // due later in this pass; now re-armed 0 ms from the pass time
    loop.setImmediate(() => log.push("immediate from a"));
  }, 0);
  refreshed.timer = loop.setTimeout(() => log.push("refreshed"), 0);
  loop.setTimeout(() => log.push("b"), 0);
  loop.runOnce();
  assert.deepEqual(log, ["a", "b", "immediate from a"]);
  loop.runOnce();
  assert.deepEqual(log.slice(3), ["nested 0 ms", "nested -1 ms", "refreshed"]);
  assert.equal(clock.now(), 0, "all at the same virtual time");
  await loop.close();
});

Deno.test("a zero-delay interval ticks once per pass", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  let ticks = 0;
  const interval = loop.setInterval(() => ticks++, 0);
  loop.runOnce();
  assert.equal(ticks, 1);
  loop.runOnce();
  assert.equal(ticks, 2);
  loop.clearInterval(interval);
  await loop.close();
});

Deno.test("the clock moving inside a callback does not make more timers due in the same pass", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  loop.setTimeout(() => {
    log.push("a@1");
    clock.advance(100); // a stall inside a callback
    loop.setImmediate(() => log.push("immediate"));
  }, 1);
  loop.setTimeout(() => log.push("b@50"), 50);
  clock.set(1);
  loop.runOnce();
  assert.deepEqual(log, ["a@1", "immediate"]);
  loop.runOnce();
  assert.deepEqual(log, ["a@1", "immediate", "b@50"]);
  await loop.close();
});

Deno.test("a bursting interval catching up does not hold back other timers due in the same pass", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, missed: "burst" });
  const log: string[] = [];
  const interval = loop.setInterval(() => log.push(`tick@${loop.now()}`), 10);
  loop.setTimeout(() => log.push("timeout@15"), 15);
  loop.setTimeout(() => log.push("timeout@25"), 25);
  clock.set(30); // ticks at 10, 20 and 30 are all due, and both timeouts
  loop.runOnce();
  // One tick per pass while catching up, but the timeouts due at the pass start run in it.
  assert.deepEqual(log, ["tick@30", "timeout@15", "timeout@25"]);
  loop.runOnce();
  loop.runOnce();
  assert.deepEqual(log.slice(3), ["tick@30", "tick@30"]);
  loop.clearInterval(interval);
  await loop.close();
});

Deno.test("timers never fire before the clock reaches their deadline", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const firedAt: number[] = [];
  const deadlines = [0.1, 0.3, 0.7, 1, 1.0000001, 2 / 3, 1e-9];
  for (const delayMs of deadlines) loop.setTimeout(() => firedAt.push(loop.now()), delayMs);
  // Step the clock just short of each deadline, then onto it.
  for (const deadlineMs of [...deadlines].sort((a, b) => a - b)) {
    const before = firedAt.length;
    const justBefore = deadlineMs - deadlineMs * 1e-12;
    if (justBefore > clock.now()) clock.set(justBefore);
    loop.runOnce();
    assert.equal(firedAt.length, before, `nothing fires at ${justBefore} < ${deadlineMs}`);
    clock.set(deadlineMs);
    loop.runOnce();
    assert.equal(firedAt.length, before + 1, `the ${deadlineMs} ms timer fires at ${deadlineMs}`);
  }
  assert.deepEqual(firedAt, [...deadlines].sort((a, b) => a - b));
  await loop.close();
});

/** Spins on the real clock: these tests are about what a synchronous stretch does to deadlines. */
function spinMs(durationMs: number): void {
  const untilMs = performance.now() + durationMs;
  while (performance.now() < untilMs) { /* spin */ }
}

/**
 * Sets a 1 ms timer, runs `between` (awaited only if it returns a promise, which ends the turn),
 * spins 3 ms, sets a 0.5 ms timer, and returns the order they fired in.
 */
async function orderAfterSpin(between: (loop: Loop) => void | Promise<void>): Promise<string[]> {
  const loop = new Loop();
  const log: string[] = [];
  loop.setTimeout(() => log.push("1 ms"), 1);
  const pending = between(loop);
  if (pending !== undefined) await pending;
  spinMs(3);
  loop.setTimeout(() => log.push("0.5 ms, set 3 ms later"), 0.5);
  await loop.run();
  await loop.close();
  return log;
}

Deno.test("outside callbacks, timers set in one synchronous turn share one clock reading", async (t) => {
  await t.step("a later timer with a shorter delay runs first", async () => {
    assert.deepEqual(await orderAfterSpin(() => {}), ["0.5 ms, set 3 ms later", "1 ms"]);
  });
  await t.step("now() takes a fresh reading for the timers after it", async () => {
    let firstMs = 0;
    const log = await orderAfterSpin((loop) => {
      firstMs = loop.now();
      spinMs(3);
      assert.ok(loop.now() >= firstMs + 3, "now() outside callbacks reads the clock");
    });
    assert.deepEqual(log, ["1 ms", "0.5 ms, set 3 ms later"]);
  });
  await t.step("the next turn takes a fresh reading", async () => {
    const log = await orderAfterSpin(async () => {
      await null; // the turn ends at the microtask checkpoint
    });
    assert.deepEqual(log, ["1 ms", "0.5 ms, set 3 ms later"]);
  });
  await t.step("an injected clock is read at every call", async () => {
    const clock = new VirtualClock();
    const loop = new Loop({ clock });
    const log: string[] = [];
    loop.setTimeout(() => log.push(`10 ms @${clock.now()}`), 10);
    clock.set(5);
    loop.setTimeout(() => log.push(`10 ms, set at 5 @${clock.now()}`), 10);
    await loop.run();
    assert.deepEqual(log, ["10 ms @10", "10 ms, set at 5 @15"]);
    await loop.close();
  });
});

Deno.test("timers never fire early on a clock far from zero, where adding the delay rounds", async () => {
  // At 1e12 ms a float step is ~1.2e-4 ms: 1e12 + 0.1 rounds down, 1e12 + 1e-5 to 1e12 itself.
  const clock = new VirtualClock(1e12);
  const loop = new Loop({ clock });
  const startMs = loop.now();
  const early: string[] = [];
  let fired = 0;
  const check = (delayMs: number) => () => {
    fired++;
    const elapsedMs = loop.now() - startMs;
    if (elapsedMs < delayMs) early.push(`${delayMs} ms fired after ${elapsedMs} ms`);
  };
  for (const delayMs of [1e-5, 0.1, 0.3, 0.7, 1.1, 2.3]) loop.setTimeout(check(delayMs), delayMs);
  const refreshed = loop.setTimeout(check(0.1), 0.1);
  refreshed.refresh();
  const interval = loop.setInterval(() => {
    const elapsedMs = loop.now() - startMs;
    if (elapsedMs < 0.1 * ++ticks) early.push(`interval tick ${ticks} after ${elapsedMs} ms`);
    if (ticks === 3) loop.clearInterval(interval);
  }, 0.1);
  let ticks = 0;
  await loop.run();
  assert.equal(fired, 7);
  assert.equal(ticks, 3);
  assert.deepEqual(early, []);
  await loop.close();
});
