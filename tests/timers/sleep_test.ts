import assert from "node:assert/strict";
import { defaultLoop, Loop, LoopClosedError, VirtualClock } from "../../loop/mod.ts";
import { sleep } from "../../timers/mod.ts";

/** An AbortSignal that counts its abort listeners, to show none is left behind. */
function countingSignal(signal: AbortSignal): { signal: AbortSignal; listeners(): number } {
  let count = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  const listeners = new Set<unknown>();
  signal.addEventListener = ((type: string, listener: unknown, options?: unknown) => {
    if (type === "abort" && !listeners.has(listener)) {
      listeners.add(listener);
      count++;
    }
    add(type, listener as EventListener, options as AddEventListenerOptions);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, listener: unknown, options?: unknown) => {
    if (type === "abort" && listeners.delete(listener)) count--;
    remove(type, listener as EventListener, options as EventListenerOptions);
  }) as typeof signal.removeEventListener;
  return { signal, listeners: () => count };
}

Deno.test("sleep() resolves once the loop clock reaches the delay (floats honoured)", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const wokeAt: number[] = [];
  const sleeps = [2.5, 0.125, 1000, 0].map((delayMs) =>
    sleep(delayMs, { loop }).then(() => wokeAt.push(loop.now()))
  );
  await loop.run();
  await Promise.all(sleeps);
  assert.deepEqual(wokeAt, [0, 0.125, 2.5, 1000]);
  await loop.close();
});

Deno.test("sequential sleeps keep an explicit loop's run() alive across their continuations", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: number[] = [];
  const task = (async () => {
    for (let i = 0; i < 5; i++) {
      await sleep(10, { loop });
      log.push(loop.now());
    }
  })();
  await loop.run();
  await task;
  assert.deepEqual(log, [10, 20, 30, 40, 50]);
  await loop.close();
});

Deno.test("a sleep's continuation runs before the virtual clock moves on", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  loop.setTimeout(() => {}, 100); // something later on the loop
  const seen: number[] = [];
  const task = sleep(10, { loop }).then(() => seen.push(loop.now()));
  await loop.run();
  await task;
  assert.deepEqual(seen, [10]);
  await loop.close();
});

Deno.test("sleep() shows in aliveReasons() while pending", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const slept = sleep(42, { loop });
  assert.deepEqual(loop.aliveReasons(), [{ kind: "sleep", label: "sleep(42 ms)" }]);
  await loop.run();
  await slept;
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});

Deno.test("aborting a sleep rejects it with the reason, clears its timer and removes the listener", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const controller = new AbortController();
  const { signal, listeners } = countingSignal(controller.signal);
  const slept = sleep(1000, { loop, signal });
  assert.equal(listeners(), 1);
  const reason = new Error("cancelled by the user");
  loop.setTimeout(() => controller.abort(reason), 5);
  const outcome = assert.rejects(slept, (error) => error === reason);
  await loop.run();
  await outcome;
  assert.equal(clock.now(), 5, "the sleep's timer was cleared: the loop did not wait for it");
  assert.equal(listeners(), 0);
  await loop.close();
});

Deno.test("a sleep that completes removes its abort listener", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const controller = new AbortController();
  const { signal, listeners } = countingSignal(controller.signal);
  const slept = sleep(5, { loop, signal });
  await loop.run();
  await slept;
  assert.equal(listeners(), 0);
  controller.abort(); // too late: nothing happens
  await loop.close();
});

Deno.test("an already-aborted signal rejects at once and schedules nothing", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const signal = AbortSignal.abort("no time");
  await assert.rejects(sleep(10, { loop, signal }), (error) => error === "no time");
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});

Deno.test("a sleep pending when its loop closes rejects with LoopClosedError", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const controller = new AbortController();
  const { signal, listeners } = countingSignal(controller.signal);
  const outcome = assert.rejects(sleep(10, { loop, signal }), LoopClosedError);
  const report = await loop.close();
  await outcome;
  assert.equal(listeners(), 0);
  assert.deepEqual(
    report.items.filter((item) => item.kind === "sleep"),
    [{ kind: "sleep", label: "sleep(10 ms)", disposition: "rejected" }],
  );
  await assert.rejects(sleep(10, { loop }), LoopClosedError, "a closed loop refuses new sleeps");
});

Deno.test("sleep() never throws: bad arguments reject with TypeError or RangeError", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const cases: [unknown, unknown, ErrorConstructor][] = [
    ["10", { loop }, TypeError],
    [undefined, { loop }, TypeError],
    [10n, { loop }, TypeError],
    [Infinity, { loop }, RangeError],
    [2 ** 60, { loop }, RangeError],
    [10, { loop: {} }, TypeError],
    [10, { loop, signal: "abort" }, TypeError],
    [10, 42, TypeError],
    [10, null, TypeError],
  ];
  for (const [delayMs, options, type] of cases) {
    let promise: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      promise = sleep(delayMs as number, options as never);
    });
    await assert.rejects(promise!, type, `sleep(${String(delayMs)}, ${String(options)})`);
  }
  // A finite delay beyond 2^53-1 ms is refused with the limit in the message, not as "infinite".
  await assert.rejects(sleep(1e300, { loop }), {
    name: "RangeError",
    message: /at most 2\^53-1 ms: current value is 1e\+300/,
  });
  assert.deepEqual(loop.aliveReasons(), []);
  // NaN and negative delays mean 0.
  const zero = Promise.all([sleep(NaN, { loop }), sleep(-1, { loop })]);
  await loop.run();
  await zero;
  assert.equal(loop.now(), 0);
  await loop.close();
});

Deno.test("sleep() without a loop uses the default loop (real time)", async () => {
  const startMs = performance.now();
  await sleep(2);
  assert.ok(performance.now() - startMs >= 2, "never early");
  while (defaultLoop().state !== "idle") await new Promise((resolve) => setTimeout(resolve, 1));
});

Deno.test("sleep() honours delays beyond 2^31-1 ms exactly (no 1 ms footgun)", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const wokeAt: number[] = [];
  const delays = [2 ** 31 - 1, 2 ** 31 + 0.5, 2 ** 40];
  const sleeps = delays.map((delayMs) =>
    sleep(delayMs, { loop }).then(() => wokeAt.push(loop.now()))
  );
  await loop.run();
  await Promise.all(sleeps);
  assert.deepEqual(wokeAt, delays);
  await loop.close();
});

Deno.test("a sleep's continuation runs after the loop's current iteration, before its next one", async () => {
  // Work due at the same time runs first (the iteration goes on: a timer, then the immediate it
  // queued); the next iteration waits for the continuation.
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  const task = sleep(10, { loop }).then(() => log.push("woke"));
  let n = 0;
  loop.setTimeout(function step() {
    log.push(`step ${n}`);
    if (++n < 4) loop.setImmediate(step);
  }, 10);
  await loop.run();
  await task;
  assert.deepEqual(log, ["step 0", "step 1", "woke", "step 2", "step 3"]);
  await loop.close();
});
