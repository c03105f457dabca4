// End to end: a Loop on a VirtualClock with metrics on (everything timed, deterministic figures).
// Exercises the lead's wiring of the recorder as much as the recorder.
import assert from "node:assert/strict";
import { type Clock, Loop, VirtualClock } from "../../mod.ts";
import { formatMetrics } from "../../loop/format_metrics.ts";
import type { SlowCallbackInfo } from "../../loop/metrics.ts";

Deno.test("loop metrics on a virtual clock: counts, lateness, lag, slow callbacks", async () => {
  const clock = new VirtualClock();
  const slow: SlowCallbackInfo[] = [];
  const loop = new Loop({
    clock,
    metrics: true,
    slowCallbackMs: 20,
    onSlowCallback: (info) => slow.push(info),
  });
  try {
    let ticks = 0;
    loop.setTimeout(function firstTimer() {
      ticks++;
    }, 100);
    loop.setTimeout(() => ticks++, 200);
    for (let i = 0; i < 10; i++) loop.submit(() => loop.queueMicrotask(() => {}));
    loop.submit(function crunch() {
      clock.advance(50); // an injected 50 ms of blocking work
    });
    loop.setImmediate(() => {});
    await loop.run();
    assert.equal(ticks, 2);

    const s = loop.metrics();
    const kinds = s.callbacks.byKind;
    assert.equal(kinds.task.count, 11);
    assert.equal(kinds.microtask.count, 10);
    assert.equal(kinds.timer.count, 2);
    assert.equal(kinds.immediate.count, 1);
    assert.equal(s.callbacks.count, 24);
    assert.equal(s.sampling.mode, "every");
    assert.equal(s.callbacks.samples, 24, "a virtual clock times every callback");
    assert.equal(kinds.task.maxMs, 50);
    // The virtual clock jumps to each deadline: the timers are on time.
    assert.equal(s.timerLateness.count, 2);
    assert.equal(s.timerLateness.maxMs, 0);
    assert.equal(s.lag.maxMs, 50, "the 50 ms task delayed the next iteration by 50 ms");
    assert.ok(s.utilization.busyMs >= 50);
    assert.ok(s.utilization.waitingMs >= 150 - 50, "the jumps to the deadlines count as waiting");
    assert.ok(s.iterations >= 3);
    assert.deepEqual(slow, [{ kind: "task", durationMs: 50, label: "crunch", atMs: 0 }]);
    assert.deepEqual(s.slowest[0], slow[0]);
    assert.equal(s.slowCallbacks, 1);

    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
    const text = formatMetrics(s);
    assert.match(text, /^ {2}task\s+11\s+11\s+/m);
    assert.match(text, /crunch/);
  } finally {
    await loop.close();
  }
});

Deno.test("timer lateness is measured when each callback starts, not when its pass began", async () => {
  // Documented: "when a timer's callback started minus its deadline". Two timers due at 100 ms:
  // the first runs 50 ms, so the second starts 50 ms after its deadline.
  const clock = new VirtualClock();
  const loop = new Loop({ clock, metrics: true });
  try {
    let startedMs = -1;
    loop.setTimeout(function slow() {
      clock.advance(50);
    }, 100);
    loop.setTimeout(function second() {
      startedMs = loop.now();
    }, 100);
    await loop.run();
    assert.equal(startedMs, 100, "loop.now() is cached for the pass");
    const s = loop.metrics().timerLateness;
    assert.equal(s.count, 2);
    assert.equal(s.maxMs, 50, "the second timer started 50 ms after its deadline");
    assert.equal(s.meanMs, 25);
  } finally {
    await loop.close();
  }
});

Deno.test("timer lateness runs from each timer's own deadline when the pass itself starts late", async () => {
  // runOnce() after the clock went past both deadlines: due at 10 and 25, run at 40.
  const clock = new VirtualClock();
  const loop = new Loop({ clock, metrics: true });
  try {
    loop.setTimeout(() => {}, 10);
    loop.setTimeout(() => {}, 25);
    clock.advance(40);
    assert.equal(loop.runOnce(), false);
    const s = loop.metrics().timerLateness;
    assert.equal(s.count, 2);
    assert.equal(s.maxMs, 30);
    assert.equal(s.meanMs, (30 + 15) / 2);
  } finally {
    await loop.close();
  }
});

Deno.test("utilization: the time between two runOnce() calls is neither busy nor waiting", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, metrics: true });
  try {
    loop.submit(() => clock.advance(10));
    loop.runOnce();
    clock.advance(1_000); // the caller does something else
    loop.submit(() => clock.advance(10));
    loop.runOnce();
    const u = loop.metrics().utilization;
    assert.equal(u.busyMs, 20);
    assert.equal(u.waitingMs, 0);
  } finally {
    await loop.close();
  }
});

Deno.test("utilization counts the virtual-clock jump that starts a run() as waiting", async () => {
  // run() on a virtual clock with one timer due at 100 ms jumps there before its first iteration:
  // that is 100 ms of waiting (a real clock would park for it), then 10 ms of work.
  const clock = new VirtualClock();
  const loop = new Loop({ clock, metrics: true });
  try {
    loop.setTimeout(() => clock.advance(10), 100);
    await loop.run();
    let u = loop.metrics().utilization;
    assert.equal(u.busyMs, 10);
    assert.equal(u.waitingMs, 100);
    assert.equal(u.total, 10 / 110);
    // A second run() counts its own first jump the same way; the time between runs is neither.
    clock.advance(1_000);
    loop.setTimeout(() => clock.advance(10), 100);
    await loop.run();
    u = loop.metrics().utilization;
    assert.equal(u.busyMs, 20);
    assert.equal(u.waitingMs, 200);
  } finally {
    await loop.close();
  }
});

/** A clock the test moves by hand but that says it is not virtual, so the loop samples. */
class ManualClock implements Clock {
  nowMs = 0;
  readonly virtual = false;
  now(): number {
    return this.nowMs;
  }
}

Deno.test("sampled metrics: timers and the tasks and microtasks around them are timed at the same rate", async (t) => {
  // 1 µs callbacks (the clock moves only inside them): the adaptive sample times about one in
  // SAMPLE_INTERVAL_MS / 1 µs = 100, whatever their kind, and each sample stands for the
  // callbacks since the previous one. Driven by runOnce(), so nothing waits on the real time.
  const cases = [
    { name: "timers only", tasks: 0, microtasks: 0 },
    { name: "a timer and a task per iteration", tasks: 1, microtasks: 0 },
    { name: "a timer and 20 tasks per iteration", tasks: 20, microtasks: 0 },
    { name: "a timer and tasks queueing microtasks", tasks: 5, microtasks: 2 },
  ];
  for (const { name, tasks, microtasks } of cases) {
    await t.step(name, async () => {
      const clock = new ManualClock();
      const loop = new Loop({ clock, metrics: true });
      try {
        const microtask = () => {
          clock.nowMs += 0.001;
        };
        const task = () => {
          clock.nowMs += 0.001;
          for (let i = 0; i < microtasks; i++) loop.queueMicrotask(microtask);
        };
        const interval = loop.setInterval(() => {
          clock.nowMs += 0.001;
          for (let i = 0; i < tasks; i++) loop.submit(task);
        }, 0);
        for (let i = 0; i < 20_000; i++) loop.runOnce();
        loop.clearInterval(interval);
        loop.runOnce();
        const s = loop.metrics();
        const perKind = [
          s.callbacks.byKind.timer,
          s.callbacks.byKind.task,
          s.callbacks.byKind.microtask,
        ].filter((stats) => stats.count !== 0);
        assert.equal(s.sampling.mode, "adaptive");
        assert.ok(s.sampling.rate < 1 / 40, `about 1 in 100 timed: rate ${s.sampling.rate}`);
        for (const stats of perKind) {
          const rate = stats.samples / stats.count;
          assert.ok(
            rate > s.sampling.rate / 2 && rate < s.sampling.rate * 2,
            `each kind is timed at about the overall rate ${s.sampling.rate}: ${stats.samples} of ${stats.count}`,
          );
        }
        assert.equal(s.timerLateness.samples, s.callbacks.byKind.timer.samples);
      } finally {
        await loop.close();
      }
    });
  }
});
