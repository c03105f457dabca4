import assert from "node:assert/strict";
import { Loop, VirtualClock } from "../../mod.ts";

Deno.test("VirtualClock moves only when told and never backwards", () => {
  const clock = new VirtualClock(5);
  assert.equal(clock.now(), 5);
  assert.equal(clock.advance(2.5), 7.5);
  clock.set(10);
  assert.equal(clock.now(), 10);
  assert.throws(() => clock.set(9), RangeError);
  assert.throws(() => clock.advance(-1), RangeError);
  assert.throws(() => clock.advance(NaN), RangeError);
  assert.throws(() => clock.set(Infinity), RangeError);
  assert.throws(() => new VirtualClock(-1), RangeError);
  assert.equal(clock.now(), 10);
});

Deno.test("a loop on a virtual clock jumps to the next deadline when idle: an hour passes at once", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const firedAt: number[] = [];
  loop.setTimeout(() => firedAt.push(clock.now()), 3_600_000);
  loop.setTimeout(() => firedAt.push(clock.now()), 1.5);
  const startMs = performance.now();
  await loop.run();
  assert.deepEqual(firedAt, [1.5, 3_600_000]);
  assert.ok(performance.now() - startMs < 5_000, "virtual time must not wait in real time");
  await loop.close();
});

Deno.test("intervals tick on absolute deadlines (no drift) on a virtual clock", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const ticks: number[] = [];
  const interval = loop.setInterval(() => {
    ticks.push(clock.now());
    clock.advance(3); // each tick's callback takes 3 ms
    if (ticks.length === 5) loop.clearInterval(interval);
  }, 10);
  await loop.run();
  assert.deepEqual(ticks, [10, 20, 30, 40, 50]);
  await loop.close();
});

Deno.test("delays beyond 2^31-1 ms are honoured exactly", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const delayMs = 2 ** 31 + 12345;
  let firedAt = -1;
  loop.setTimeout(() => (firedAt = clock.now()), delayMs);
  await loop.run();
  assert.equal(firedAt, delayMs);
  await loop.close();
});

Deno.test("native promise continuations run before virtual time jumps ahead", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const delay = (ms: number) => new Promise<void>((resolve) => loop.setTimeout(resolve, ms));
  const worker = (async () => {
    await delay(10);
    log.push(`after first delay at ${clock.now()}`);
    await delay(10);
    log.push(`after second delay at ${clock.now()}`);
  })();
  // Keeps the loop alive past both delays; without the host turn the clock would jump to 100 first.
  loop.setTimeout(() => log.push(`keep-alive at ${clock.now()}`), 100);
  await loop.run();
  await worker;
  assert.deepEqual(log, [
    "after first delay at 10",
    "after second delay at 20",
    "keep-alive at 100",
  ]);
  await loop.close();
});

Deno.test("a VirtualClock given a non-number is a TypeError that shows the value as given", () => {
  // A string was a RangeError reading "must be a finite number >= 0: current value is 5".
  const clock = new VirtualClock();
  const cases: [() => unknown, string][] = [
    [
      () => new VirtualClock("5" as never),
      'Cannot create a virtual clock as the start time must be a number: current value is "5"',
    ],
    [
      () => clock.advance("5" as never),
      'Cannot advance a virtual clock as the step must be a number: current value is "5"',
    ],
    [
      () => clock.set(5n as never),
      "Cannot set a virtual clock as the time must be a number: current value is 5n",
    ],
  ];
  for (const [call, message] of cases) {
    assert.throws(
      call,
      (error: unknown) => error instanceof TypeError && error.message === message,
    );
  }
  assert.throws(
    () => clock.set(NaN),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message ===
        "Cannot set a virtual clock backwards or to a non-finite time: current value is NaN, clock is at 0",
  );
  assert.equal(clock.now(), 0);
});
