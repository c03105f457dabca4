import assert from "node:assert/strict";
import {
  ERROR,
  EventBatch,
  FakePoller,
  HANGUP,
  PollerError,
  PRIORITY,
  READABLE,
  WRITABLE,
} from "../../poller/mod.ts";
import { VirtualClock } from "../../loop/clock.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof PollerError, `expected a PollerError, got ${error}`);
    return error.code;
  }
  assert.fail("expected a PollerError");
}

Deno.test("FakePoller replays 'fd 7 readable at 30 ms, hang-up at 50 ms'", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  assert.equal(poller.backend, "fake");
  poller.script(50, 7, READABLE | HANGUP).script(30, 7, READABLE); // any order
  poller.register(7, 70, READABLE);
  const batch = new EventBatch(8);

  assert.equal(poller.wait(batch, 0), 0);
  assert.equal(poller.nextEventTimeMs(), 30);
  clock.set(29.999);
  assert.equal(poller.wait(batch, 0), 0, "not before its time");
  clock.set(30);
  assert.equal(poller.wait(batch, 0), 1);
  assert.equal(batch.tokens[0], 70);
  assert.equal(batch.readiness[0], READABLE);
  assert.equal(poller.nextEventTimeMs(), 50);
  assert.equal(poller.wait(batch, 0), 1, "level-triggered: still readable");

  clock.set(poller.nextEventTimeMs());
  assert.equal(poller.wait(batch, 0), 1);
  assert.equal(batch.readiness[0], READABLE | HANGUP);
  assert.equal(poller.nextEventTimeMs(), Infinity);
  await poller.close();
});

Deno.test("FakePoller reports only interest | HANGUP | ERROR, for registered fds", async () => {
  const poller = new FakePoller({ clock: new VirtualClock() });
  const batch = new EventBatch(8);
  poller.setReadiness(3, READABLE | WRITABLE | PRIORITY);
  poller.setReadiness(4, READABLE); // not registered: never reported
  poller.register(3, 1, WRITABLE);
  assert.equal(poller.wait(batch, 0), 1);
  assert.equal(batch.readiness[0], WRITABLE);
  poller.modify(3, 2, READABLE | PRIORITY);
  assert.equal(poller.wait(batch, 0), 1);
  assert.equal(batch.tokens[0], 2);
  assert.equal(batch.readiness[0], READABLE | PRIORITY);
  poller.setReadiness(3, ERROR);
  assert.equal(poller.wait(batch, 0), 1);
  assert.equal(batch.readiness[0], ERROR, "ERROR is reported without interest");
  poller.setReadiness(3, 0);
  assert.equal(poller.wait(batch, 0), 0);
  assert.equal(poller.readiness(4), READABLE);
  assert.equal(poller.interestOf(3), READABLE | PRIORITY);
  assert.equal(poller.interestOf(4), 0);
  await poller.close();
});

Deno.test("FakePoller validates like a real backend", async () => {
  const poller = new FakePoller({
    clock: new VirtualClock(),
    supports: (fd) => fd !== 99, // pretend fd 99 is a regular file
  });
  poller.register(5, 1, READABLE);
  assert.equal(codeOf(() => poller.register(5, 2, READABLE)), "EEXIST");
  assert.equal(codeOf(() => poller.unregister(6)), "ENOENT");
  assert.equal(codeOf(() => poller.modify(6, 1, READABLE)), "ENOENT");
  assert.equal(codeOf(() => poller.register(-1, 1, READABLE)), "EBADF");
  assert.equal(codeOf(() => poller.register(99, 1, READABLE)), "EPERM");
  assert.equal(poller.supports(99, READABLE), false);
  assert.equal(poller.supports(5, READABLE), true);
  assert.equal(poller.supports(-3, READABLE), false);
  // Beyond a C int: no real backend accepts it, so supports() must not promise it either.
  assert.equal(codeOf(() => poller.register(2 ** 31, 1, READABLE)), "EBADF");
  assert.equal(poller.supports(2 ** 31, READABLE), false);
  assert.throws(
    () => poller.setReadiness(2 ** 31, READABLE),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message ===
        "Cannot set readiness as the fd must be in [0, 2147483647]: current value is 2147483648",
  );
  assert.throws(() => poller.register(1.5, 1, READABLE), TypeError);
  assert.throws(() => poller.register(8, -1, READABLE), RangeError);
  assert.throws(() => poller.register(8, 1, 0), RangeError);
  assert.throws(() => poller.register(8, 1, HANGUP), RangeError);
  assert.throws(() => poller.script(NaN, 1, READABLE), RangeError);
  assert.throws(() => poller.script(1, 1, 64), RangeError);
  assert.throws(() => poller.setReadiness(-1, READABLE), RangeError);
  assert.throws(() => poller.wait(new EventBatch(1), NaN), RangeError);
  assert.throws(() => new FakePoller({ clock: {} as VirtualClock }), TypeError);
  poller.unregister(5);
  await poller.close();
  assert.equal(poller.closed, true);
  assert.equal(codeOf(() => poller.register(5, 1, READABLE)), "EBADF");
  await assert.rejects(poller.waitAsync(new EventBatch(1), 0), PollerError);
});

Deno.test("FakePoller waitAsync parks until setReadiness, wake() or close()", async () => {
  const poller = new FakePoller({ clock: new VirtualClock() });
  const batch = new EventBatch(8);
  poller.register(9, 90, READABLE);

  // Nothing due, no script, no timeout: parks; a readiness change resolves it.
  let parked = poller.waitAsync(batch, Infinity);
  await assert.rejects(poller.waitAsync(batch, Infinity), Error, "one at a time");
  poller.setReadiness(9, WRITABLE); // not of interest: stays parked
  let settled = false;
  parked.then(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false);
  poller.setReadiness(9, READABLE);
  assert.equal(await parked, 1);
  assert.equal(batch.tokens[0], 90);

  // wake() ends a parked wait with 0.
  poller.setReadiness(9, 0);
  parked = poller.waitAsync(batch, -1);
  poller.wake();
  assert.equal(await parked, 0);
  assert.equal(batch.length, 0);

  // A wake with nothing parked makes the next waitAsync return at once.
  poller.wake();
  assert.equal(await poller.waitAsync(batch, Infinity), 0);

  // close() settles a parked wait.
  parked = poller.waitAsync(batch, Infinity);
  await poller.close();
  assert.equal(await parked, 0);
});

Deno.test("FakePoller on a virtual clock hands control back instead of sleeping", async () => {
  const clock = new VirtualClock(100);
  const poller = new FakePoller({ clock });
  const batch = new EventBatch(8);
  poller.register(1, 10, READABLE);
  poller.script(130, 1, READABLE);
  // A scripted change is ahead: resolve 0 at once so the loop can advance the clock to it.
  assert.equal(await poller.waitAsync(batch, Infinity), 0);
  assert.equal(await poller.waitAsync(batch, 5), 0, "finite timeouts never sleep on virtual time");
  assert.equal(clock.now(), 100);
  clock.set(poller.nextEventTimeMs());
  assert.equal(await poller.waitAsync(batch, Infinity), 1);
  assert.equal(batch.tokens[0], 10);
  await poller.close();
});

Deno.test("FakePoller applies a past-time script at the next wait, in script order", async () => {
  const clock = new VirtualClock(1000);
  const poller = new FakePoller({ clock });
  const batch = new EventBatch(8);
  poller.register(2, 20, READABLE | WRITABLE);
  poller.script(10, 2, READABLE).script(10, 2, WRITABLE); // same time: later one wins
  assert.equal(poller.wait(batch, 0), 1);
  assert.equal(batch.readiness[0], WRITABLE);
  await poller.close();
});

Deno.test("FakePoller unregister stops events, including for a parked wait", async () => {
  const poller = new FakePoller({ clock: new VirtualClock() });
  const batch = new EventBatch(8);
  poller.register(1, 1, READABLE);
  poller.register(2, 2, READABLE);
  const parked = poller.waitAsync(batch, Infinity);
  poller.unregister(1);
  poller.setReadiness(1, READABLE); // fd 1 no longer registered: stays parked
  poller.setReadiness(2, READABLE);
  assert.equal(await parked, 1);
  assert.equal(batch.tokens[0], 2);
  assert.equal(poller.wait(batch, 0), 1);
  assert.equal(batch.tokens[0], 2);
  await poller.close();
});

Deno.test("FakePoller: a small batch does not starve later fds", async () => {
  const poller = new FakePoller({ clock: new VirtualClock() });
  for (let fd = 0; fd < 5; fd++) {
    poller.register(fd, fd, READABLE);
    poller.setReadiness(fd, READABLE);
  }
  const batch = new EventBatch(2);
  const seen = new Set<number>();
  for (let i = 0; i < 3; i++) {
    assert.equal(poller.wait(batch, 0), 2);
    seen.add(batch.tokens[0]);
    seen.add(batch.tokens[1]);
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4]);
  await poller.close();
});

Deno.test("FakePoller on a real clock wakes a parked wait at the scripted time", async () => {
  const poller = new FakePoller(); // performance.now()
  const batch = new EventBatch(8);
  poller.register(4, 40, READABLE);
  const startMs = performance.now();
  poller.script(startMs + 5, 4, READABLE);
  assert.equal(await poller.waitAsync(batch, Infinity), 1);
  assert.equal(batch.tokens[0], 40);
  assert.ok(performance.now() >= startMs + 5, "not before its scripted time");
  // A finite timeout with nothing scripted resolves 0, no earlier than asked.
  poller.setReadiness(4, 0);
  const waitStart = performance.now();
  assert.equal(await poller.waitAsync(batch, 3.5), 0);
  assert.ok(performance.now() - waitStart >= 3.5);
  await poller.close();
});

Deno.test("FakePoller options of the wrong type are TypeErrors at construction", async () => {
  for (const options of [null, 5, "fake"]) {
    assert.throws(
      () => new FakePoller(options as never),
      (error: unknown) =>
        error instanceof TypeError &&
        /^Cannot create a fake poller as the options must be an object: current value is /.test(
          error.message,
        ),
    );
  }
  assert.throws(
    () => new FakePoller({ supports: true as never }),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        "Cannot create a fake poller as supports must be a function: current value is true",
  );
  const poller = new FakePoller({ supports: (fd) => fd === 3 });
  assert.equal(poller.supports(3, READABLE), true);
  await poller.close();
});

Deno.test("FakePoller: a change scripted while a wait is parked wakes it at its time", async () => {
  // Real clock: the parked wait (200 ms timeout) must wake at the new script's time, not at
  // its timeout; a script already due resolves it at once.
  const poller = new FakePoller();
  const batch = new EventBatch(8);
  poller.register(4, 40, READABLE);
  let startMs = performance.now();
  let parked = poller.waitAsync(batch, 200);
  poller.script(startMs + 5, 4, READABLE);
  assert.equal(await parked, 1);
  let waitedMs = performance.now() - startMs;
  assert.ok(waitedMs >= 5 && waitedMs < 150, `woke after ${waitedMs} ms`);
  poller.setReadiness(4, 0);
  startMs = performance.now();
  parked = poller.waitAsync(batch, 200);
  poller.script(0, 4, READABLE); // already past
  assert.equal(await parked, 1);
  waitedMs = performance.now() - startMs;
  assert.ok(waitedMs < 150, `woke after ${waitedMs} ms`);
  await poller.close();

  // Virtual clock: a wait parked with nothing ahead hands control back once a script is added,
  // so the caller can advance the clock to it.
  const clock = new VirtualClock();
  const fake = new FakePoller({ clock });
  fake.register(7, 70, READABLE);
  const virtualParked = fake.waitAsync(batch, Infinity);
  fake.script(100, 7, READABLE);
  assert.equal(await virtualParked, 0);
  assert.equal(fake.nextEventTimeMs(), 100);
  await fake.close();
});

Deno.test("FakePoller: a non-number time or readiness is a TypeError that shows the value as given", async () => {
  // Strings were RangeErrors reading "must be a finite number of ms: current value is 30".
  const poller = new FakePoller({ clock: new VirtualClock() });
  assert.throws(
    () => poller.script("30" as never, 7, READABLE),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        'Cannot script a readiness change as the time must be a number of ms: current value is "30"',
  );
  assert.throws(
    () => poller.setReadiness(7, "1" as never),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        'Cannot set readiness as the readiness must be a number: current value is "1"',
  );
  assert.throws(() => poller.script(NaN, 7, READABLE), RangeError);
  assert.throws(() => poller.setReadiness(7, 64), RangeError);
  assert.equal(poller.nextEventTimeMs(), Infinity, "nothing was scripted");
  await poller.close();
});

Deno.test("FakePoller: register() or modify() that makes a ready fd reportable resolves a parked waitAsync", async () => {
  const poller = new FakePoller({ clock: new VirtualClock() });
  const batch = new EventBatch(8);
  const settledSoon = async (promise: Promise<number>): Promise<number | "parked"> => {
    let result: number | "parked" = "parked";
    promise.then((count) => (result = count));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return result;
  };

  // fd 3 is ready before anyone watches it: registering it must end the parked wait.
  poller.setReadiness(3, READABLE);
  let parked = poller.waitAsync(batch, Infinity);
  assert.equal(await settledSoon(parked), "parked");
  poller.register(3, 30, READABLE);
  assert.equal(await settledSoon(parked), 1);
  assert.equal(batch.tokens[0], 30);

  // fd 4 is readable but watched for WRITABLE: a modify to READABLE must end the parked wait.
  poller.unregister(3);
  poller.setReadiness(4, READABLE);
  poller.register(4, 40, WRITABLE);
  parked = poller.waitAsync(batch, Infinity);
  assert.equal(await settledSoon(parked), "parked");
  poller.modify(4, 41, READABLE);
  assert.equal(await settledSoon(parked), 1);
  assert.equal(batch.tokens[0], 41);
  await poller.close();
});
