import assert from "node:assert/strict";
import { Loop, LoopPromise, VirtualClock } from "../../mod.ts";

Deno.test("one iteration runs timers, tasks, check, with a microtask checkpoint after every callback", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  loop.setImmediate(() => {
    log.push("immediate 1");
    loop.queueMicrotask(() => log.push("micro after immediate 1"));
  });
  loop.setImmediate(() => log.push("immediate 2"));
  loop.submit(() => {
    log.push("task 1");
    loop.queueMicrotask(() => {
      log.push("micro 1");
      loop.queueMicrotask(() => log.push("micro 1.1"));
    });
  });
  loop.submit(() => log.push("task 2"));
  loop.setTimeout(() => {
    log.push("timer");
    loop.queueMicrotask(() => log.push("micro after timer"));
  }, 0);
  loop.queueMicrotask(() => log.push("micro queued before run"));
  await loop.run();
  assert.deepEqual(log, [
    "micro queued before run",
    "timer",
    "micro after timer",
    "task 1",
    "micro 1",
    "micro 1.1",
    "task 2",
    "immediate 1",
    "micro after immediate 1",
    "immediate 2",
  ]);
  await loop.close();
});

Deno.test("each phase runs only the work queued when it began", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  loop.submit(() => {
    log.push("task A");
    loop.submit(() => log.push("task B (next iteration)"));
    loop.setImmediate(() => log.push("immediate from task"));
  });
  loop.setImmediate(() => {
    log.push("immediate 1");
    loop.setImmediate(() => log.push("immediate 2 (next iteration)"));
  });
  loop.setTimeout(() => {
    log.push("timer 1");
    loop.setTimeout(() => log.push("timer 2 (next pass)"), 0);
  }, 0);
  await loop.run();
  assert.deepEqual(log, [
    "timer 1",
    "task A",
    "immediate 1",
    "immediate from task",
    "timer 2 (next pass)",
    "task B (next iteration)",
    "immediate 2 (next iteration)",
  ]);
  await loop.close();
});

Deno.test("due timers run by deadline, ties in scheduling order; cancelling a later one in the same pass prevents it", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  loop.setTimeout(() => log.push("c@5"), 5);
  loop.setTimeout(() => log.push("a@2"), 2);
  const victim = loop.setTimeout(() => log.push("victim@5"), 5);
  loop.setTimeout(() => {
    log.push("b@5 cancels victim? no: victim is earlier in FIFO");
  }, 5);
  loop.setTimeout(() => {
    log.push("d@3 cancels e");
    loop.clearTimeout(e);
  }, 3);
  const e = loop.setTimeout(() => log.push("e@5"), 5);
  clock.advance(10); // all due in one pass
  loop.runOnce();
  assert.deepEqual(log, [
    "a@2",
    "d@3 cancels e",
    "c@5",
    "victim@5",
    "b@5 cancels victim? no: victim is earlier in FIFO",
  ]);
  assert.equal(victim.hasRef(), true);
  await loop.close();
});

Deno.test("a timer scheduled by a timer callback never runs in the same pass, even when already due", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  loop.setTimeout(() => {
    log.push("outer");
    loop.setTimeout(() => log.push("inner"), 0);
  }, 1);
  clock.advance(5);
  loop.runOnce();
  assert.deepEqual(log, ["outer"]);
  loop.runOnce();
  assert.deepEqual(log, ["outer", "inner"]);
  await loop.close();
});

Deno.test("loop.now() is cached within an iteration and refreshed before timers", async () => {
  const clock = new VirtualClock(100);
  const loop = new Loop({ clock });
  const seen: number[] = [];
  loop.submit(() => {
    seen.push(loop.now());
    clock.advance(7); // a slow callback
    seen.push(loop.now()); // still the iteration's time
    loop.setTimeout(() => seen.push(loop.now()), 10); // measured from the cached time
  });
  await loop.run();
  assert.deepEqual(seen, [100, 100, 110]);
  await loop.close();
});

Deno.test("timers never fire before the clock reaches their deadline (fractional delays)", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const fired: Array<[number, number]> = [];
  for (const delayMs of [0.25, 0.5, 0.999, 1, 1.0001, 2.5]) {
    const deadline = clock.now() + delayMs;
    loop.setTimeout(() => fired.push([deadline, clock.now()]), delayMs);
  }
  for (let step = 0; step < 40; step++) {
    clock.advance(0.1);
    loop.runOnce();
  }
  assert.equal(fired.length, 6);
  for (const [deadline, firedAt] of fired) {
    assert.ok(firedAt >= deadline, `${firedAt} < ${deadline}`);
  }
  await loop.close();
});

Deno.test("microtasks queued by a checkpoint's rejection report run in that checkpoint, before the next task", async () => {
  const log: string[] = [];
  const loop: Loop = new Loop({
    clock: new VirtualClock(),
    onUnhandledRejection: () => log.push("unhandled"),
    onRejectionHandled: () => {
      log.push("handled");
      loop.queueMicrotask(() => log.push("microtask queued by the report"));
    },
  });
  let rejected!: LoopPromise<never>;
  loop.submit(() => {
    rejected = LoopPromise.reject(new Error("late"), { loop });
  });
  await loop.run();
  assert.deepEqual(log, ["unhandled"]);
  loop.submit(() => {
    rejected.catch(() => log.push("caught"));
  });
  loop.submit(() => log.push("next task"));
  await loop.run();
  // The report runs after the checkpoint's microtasks; what it queues runs before the checkpoint ends.
  assert.deepEqual(log, [
    "unhandled",
    "caught",
    "handled",
    "microtask queued by the report",
    "next task",
  ]);
  await loop.close();
});
