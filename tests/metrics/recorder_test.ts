// The metrics recorder driven the way the Loop drives it, on a VirtualClock (everything timed,
// deterministic) and on a hand-moved non-virtual clock (sampling, deterministic too: the sampling
// jitter comes from a seeded generator).
import assert from "node:assert/strict";
import { type Clock, VirtualClock } from "../../loop/clock.ts";
import {
  KIND_FD,
  KIND_IMMEDIATE,
  KIND_MICROTASK,
  KIND_TASK,
  KIND_TIMER,
  MetricsRecorder,
  PHASE_CHECK,
  PHASE_CLOSE,
  PHASE_POLL,
  PHASE_TASKS,
  PHASE_TIMERS,
  QUEUE_MICROTASKS,
  QUEUE_TASKS,
  SAMPLE_INTERVAL_MS,
} from "../../loop/_metrics_recorder.ts";
import type { SlowCallbackInfo } from "../../loop/metrics.ts";
import { HISTOGRAM_RELATIVE_ERROR } from "../../loop/_histogram.ts";

/** A timer fire as the loop records it: lateness with the fire's (timed) callback. */
function fireTimer(m: MetricsRecorder, latenessMs: number): void {
  const startMs = m.begin();
  m.timerFired(latenessMs);
  m.end(KIND_TIMER, startMs, () => {}, undefined);
}

/** Asserts `got` is within the histogram's documented relative error (2^-7) of `want`. */
function near(got: number, want: number, message?: string): void {
  assert.ok(
    Math.abs(got - want) <= want * HISTOGRAM_RELATIVE_ERROR,
    `${message ?? "estimate"}: ${got} vs ${want}`,
  );
}

/** A clock the test moves by hand but that says it is not virtual, so the recorder samples. */
class ManualClock implements Clock {
  nowMs = 0;
  readonly virtual = false;
  now(): number {
    return this.nowMs;
  }
}

/** Runs `callback` as the loop would, with the clock advancing by `durationMs` while it runs. */
function run(
  m: MetricsRecorder,
  clock: VirtualClock | ManualClock,
  kind: number,
  durationMs: number,
  callback: () => void = () => {},
  label?: string,
): void {
  const t0 = m.begin();
  callback();
  if (clock instanceof VirtualClock) clock.advance(durationMs);
  else clock.nowMs += durationMs;
  m.end(kind, t0, callback, label);
}

Deno.test("recorder: callback durations per kind on a virtual clock", () => {
  const clock = new VirtualClock(1000);
  const m = new MetricsRecorder(clock);
  m.beginIteration();
  for (let i = 1; i <= 100; i++) run(m, clock, KIND_TASK, i * 0.01); // 0.01 .. 1 ms
  for (let i = 0; i < 10; i++) run(m, clock, KIND_MICROTASK, 0);
  run(m, clock, KIND_TIMER, 2);
  run(m, clock, KIND_IMMEDIATE, 3);
  run(m, clock, KIND_FD, 4);
  const s = m.snapshot(clock.now());
  assert.equal(s.sampling.mode, "every");
  assert.equal(s.sampling.period, 1);
  assert.equal(s.sampling.rate, 1);
  assert.equal(s.sampling.timed, 113);
  const task = s.callbacks.byKind.task;
  assert.equal(task.count, 100);
  assert.equal(task.samples, 100);
  assert.ok(Math.abs(task.meanMs - 0.505) < 1e-9, String(task.meanMs));
  // Exact nearest-rank p50 = 0.5 ms, p90 = 0.9, p99 = 0.99; estimates within 2^-7.
  near(task.p50Ms, 0.5);
  near(task.p90Ms, 0.9);
  near(task.p95Ms, 0.95);
  near(task.p99Ms, 0.99);
  assert.equal(task.maxMs, 1);
  assert.deepEqual(
    [s.callbacks.byKind.microtask.count, s.callbacks.byKind.microtask.maxMs],
    [10, 0],
  );
  assert.equal(s.callbacks.byKind.timer.maxMs, 2);
  assert.equal(s.callbacks.byKind.immediate.maxMs, 3);
  assert.equal(s.callbacks.byKind.fd.maxMs, 4);
  assert.equal(s.callbacks.count, 113);
  assert.equal(s.callbacks.samples, 113);
  assert.equal(s.callbacks.maxMs, 4, "the all-kinds figures merge every kind");
  assert.equal(s.atMs, clock.now());
  assert.equal(s.uptimeMs, clock.now() - 1000);
});

Deno.test("recorder: lag and utilization with an injected slow callback", () => {
  const clock = new VirtualClock();
  const m = new MetricsRecorder(clock);
  // Iteration 1: a 50 ms callback (injected by advancing the clock inside it).
  m.beginIteration();
  run(m, clock, KIND_TASK, 50);
  // Iteration 2: idle, parked 100 ms in the poller, then a 1 ms timer callback, 2 ms late.
  m.beginIteration();
  clock.advance(100);
  m.waited(100);
  m.timerFired(2);
  run(m, clock, KIND_TIMER, 1);
  // Iteration 3 closes iteration 2.
  m.beginIteration();
  let s = m.snapshot(clock.now());
  assert.equal(s.iterations, 3);
  assert.equal(s.lag.count, 3, "lag counts iterations");
  assert.equal(s.lag.samples, 2, "one lag sample per closed iteration");
  assert.equal(s.lag.maxMs, 50, "the slow callback delayed the next iteration by 50 ms");
  near(s.lag.p50Ms, 1, "waiting in the poller is not lag");
  assert.equal(s.utilization.last, 1 / 101);
  assert.equal(s.utilization.busyMs, 51);
  assert.equal(s.utilization.waitingMs, 100);
  assert.equal(s.utilization.total, 51 / 151);
  assert.equal(s.utilization.rolling, 51 / 151);
  assert.equal(s.timerLateness.count, 1);
  assert.equal(s.timerLateness.p99Ms, 2);

  // The time between a stop and the next run counts as neither busy nor waiting, nor lag.
  m.stopped(clock.now());
  clock.advance(10_000);
  m.beginIteration();
  m.stopped(clock.now());
  s = m.snapshot(clock.now());
  assert.equal(s.utilization.busyMs, 51);
  assert.equal(s.utilization.waitingMs, 100);
  assert.equal(s.lag.maxMs, 50);
  assert.equal(s.lag.count, 4);

  // Waiting longer than the iteration (a caller's rounding) is capped: never negative busy time.
  m.beginIteration();
  m.waited(5);
  clock.advance(3);
  m.beginIteration();
  s = m.snapshot(clock.now());
  assert.equal(s.utilization.waitingMs, 103);
  assert.equal(s.utilization.last, 0);
});

Deno.test("recorder: timer lateness percentiles", () => {
  const m = new MetricsRecorder(new VirtualClock());
  for (let i = 0; i < 1000; i++) fireTimer(m, i % 100 === 99 ? 40 : 0.5);
  fireTimer(m, -3); // a loop may compute a tiny negative lateness from rounding: counts as 0
  const s = m.snapshot(0).timerLateness;
  assert.equal(s.count, 1001);
  near(s.p50Ms, 0.5);
  near(s.p95Ms, 0.5);
  near(s.p99Ms, 0.5, "10 of 1001 are late: just beyond the 99th percentile");
  assert.equal(s.maxMs, 40);
  assert.ok(Math.abs(s.meanMs - (990 * 0.5 + 10 * 40) / 1001) < 1e-12);
});

Deno.test("recorder: slow callbacks are reported with labels, counted, and ranked", () => {
  const clock = new VirtualClock();
  const reports: SlowCallbackInfo[] = [];
  const m = new MetricsRecorder(clock, {
    slowCallbackMs: 10,
    onSlowCallback: (info) => reports.push(info),
    topN: 3,
  });
  m.beginIteration();
  function parseRequest(): void {}
  run(m, clock, KIND_TASK, 5, () => {}, "fast"); // not slow
  run(m, clock, KIND_TASK, 15, parseRequest); // labelled by its name
  run(m, clock, KIND_FD, 30, () => {}, "socket 7"); // labelled at scheduling time
  run(m, clock, KIND_TIMER, 12, () => {}); // anonymous
  run(m, clock, KIND_TASK, 10, parseRequest); // exactly the threshold: slow, not its worst
  assert.deepEqual(reports, [
    { kind: "task", durationMs: 15, label: "parseRequest", atMs: 5 },
    { kind: "fd", durationMs: 30, label: "socket 7", atMs: 20 },
    { kind: "timer", durationMs: 12, label: "anonymous", atMs: 50 },
    { kind: "task", durationMs: 10, label: "parseRequest", atMs: 62 },
  ]);
  let s = m.snapshot(clock.now());
  assert.equal(s.slowCallbackMs, 10);
  assert.equal(s.slowCallbacks, 4);
  assert.deepEqual(s.slowest, [
    { kind: "fd", durationMs: 30, label: "socket 7", atMs: 20 },
    { kind: "task", durationMs: 15, label: "parseRequest", atMs: 5 },
    { kind: "timer", durationMs: 12, label: "anonymous", atMs: 50 },
  ]);
  // A new worst run of a listed label replaces its entry; a slower newcomer evicts the fastest.
  run(m, clock, KIND_TASK, 40, parseRequest);
  run(m, clock, KIND_IMMEDIATE, 20, () => {}, "flush");
  run(m, clock, KIND_IMMEDIATE, 11, () => {}, "too fast to rank");
  s = m.snapshot(clock.now());
  assert.deepEqual(
    s.slowest.map((e) => [e.label, e.durationMs]),
    [["parseRequest", 40], ["socket 7", 30], ["flush", 20]],
  );
  assert.equal(s.slowCallbacks, 7);
});

Deno.test("recorder: onSlowCallback alone implies asyncio's 100 ms threshold", () => {
  const clock = new ManualClock();
  const reports: number[] = [];
  const m = new MetricsRecorder(clock, { onSlowCallback: (info) => reports.push(info.durationMs) });
  for (const ms of [99, 100, 250]) run(m, clock, KIND_TASK, ms);
  const s = m.snapshot(clock.now());
  assert.deepEqual(reports, [100, 250]);
  assert.equal(s.slowCallbackMs, 100);
  assert.equal(s.sampling.mode, "every", "slow-callback reporting times every callback");
});

Deno.test("recorder: an onSlowCallback that throws goes to onError, or out of end()", () => {
  const clock = new VirtualClock();
  const errors: unknown[] = [];
  const boom = new Error("boom");
  const routed = new MetricsRecorder(clock, {
    slowCallbackMs: 0,
    onSlowCallback: () => {
      throw boom;
    },
    onError: (error) => errors.push(error),
  });
  run(routed, clock, KIND_TASK, 1);
  assert.deepEqual(errors, [boom]);
  assert.equal(routed.snapshot(clock.now()).callbacks.count, 1, "still counted");

  const unrouted = new MetricsRecorder(clock, {
    slowCallbackMs: 0,
    onSlowCallback: () => {
      throw boom;
    },
  });
  assert.throws(() => run(unrouted, clock, KIND_TASK, 1), (e) => e === boom);
  assert.equal(unrouted.snapshot(clock.now()).slowCallbacks, 1);
});

Deno.test("recorder: top-N ranks timed callbacks even without slowCallbackMs", () => {
  const clock = new VirtualClock();
  const m = new MetricsRecorder(clock, { topN: 2 });
  for (let i = 0; i < 10; i++) run(m, clock, KIND_TASK, i, () => {}, `job${i}`);
  const s = m.snapshot(clock.now());
  assert.equal(s.slowCallbackMs, null);
  assert.equal(s.slowCallbacks, 0);
  assert.deepEqual(s.slowest.map((e) => e.label), ["job9", "job8"]);
  // Callbacks that took no measurable time are nobody's slowest.
  const instant = new MetricsRecorder(clock);
  run(instant, clock, KIND_TASK, 0, () => {}, "instant");
  assert.deepEqual(instant.snapshot(clock.now()).slowest, []);
  const none = new MetricsRecorder(clock, { topN: 0 });
  run(none, clock, KIND_TASK, 5);
  assert.deepEqual(none.snapshot(clock.now()).slowest, []);
});

Deno.test("recorder: queue depths keep current, max and an EWMA", () => {
  const m = new MetricsRecorder(new VirtualClock());
  m.depths(4, 0, 10, 1, 2);
  let q = m.snapshot(0).queues;
  assert.deepEqual(
    q.tasks,
    { current: 4, max: 4, average: 4 },
    "the first sample seeds the average",
  );
  m.depths(20, 0, 10, 0, 2);
  m.depths(0, 0, 9, 0, 2);
  q = m.snapshot(0).queues;
  const avg1 = 4 + (20 - 4) / 16;
  const avg2 = avg1 + (0 - avg1) / 16;
  assert.deepEqual(q.tasks, { current: 0, max: 20, average: avg2 });
  assert.deepEqual(q.timers.max, 10);
  assert.deepEqual(q.watches, { current: 2, max: 2, average: 2 });
  assert.equal(q.immediates.max, 1);
  // Peaks between samples raise the max at once and feed the next sample.
  m.peak(QUEUE_MICROTASKS, 500);
  m.peak(QUEUE_MICROTASKS, 300);
  assert.equal(m.snapshot(0).queues.microtasks.max, 500);
  m.depths(0, 0, 9, 0, 2);
  q = m.snapshot(0).queues;
  assert.equal(q.microtasks.current, 500, "the largest checkpoint of the iteration");
  assert.equal(q.microtasks.average, 500 / 16);
  m.peak(QUEUE_TASKS, 3); // smaller than the sampled value: ignored by the sample
  m.depths(7, 0, 9, 0, 2);
  q = m.snapshot(0).queues;
  assert.equal(q.tasks.current, 7);
  assert.equal(q.microtasks.current, 0, "peaks are consumed by the sample");
});

Deno.test("recorder: throughput over a rolling 10 s window", () => {
  const clock = new VirtualClock();
  const m = new MetricsRecorder(clock);
  // 20 s at 100 callbacks per 100 ms iteration: 1000/s.
  for (let i = 0; i < 200; i++) {
    m.beginIteration();
    for (let k = 0; k < 100; k++) run(m, clock, KIND_TASK, 0);
    clock.advance(100);
    m.waited(100);
  }
  let s = m.snapshot(clock.now());
  assert.equal(s.callbacks.count, 20_000);
  assert.equal(s.throughput.windowMs, 9_000, "at a slot boundary: nine full seconds");
  assert.ok(
    Math.abs(s.throughput.callbacksPerSecond - 1000) < 1e-9,
    String(s.throughput.callbacksPerSecond),
  );
  // 5 s idle (one long parked iteration): the window still holds 4 s of traffic.
  m.beginIteration();
  clock.advance(5000);
  m.waited(5000);
  m.beginIteration();
  s = m.snapshot(clock.now());
  assert.ok(Math.abs(s.throughput.callbacksPerSecond - 4000 / 9) < 1e-9);
  assert.equal(s.utilization.rolling, 0, "nothing but waiting in the window");
  // Bulk counts (the loop's per-phase path) count as well.
  m.count(KIND_MICROTASK, 900);
  s = m.snapshot(clock.now() + 500);
  assert.ok(Math.abs(s.throughput.callbacksPerSecond - 4900 / 9.5) < 1e-9);
  assert.equal(s.callbacks.byKind.microtask.count, 900);
  // After 10 idle seconds more, the window is empty.
  clock.advance(10_000);
  s = m.snapshot(clock.now());
  assert.equal(s.throughput.callbacksPerSecond, 0);
});

Deno.test("recorder: phases are timed on every iteration of a virtual clock", () => {
  const clock = new VirtualClock();
  const m = new MetricsRecorder(clock);
  for (let i = 0; i < 4; i++) {
    assert.ok(m.beginIteration() >= 0, "sampled");
    m.phase(PHASE_TIMERS, 1);
    m.phase(PHASE_TASKS, 2 + i); // 2, 3, 4, 5
    m.phase(PHASE_POLL, 3);
    m.phase(PHASE_CHECK, 0);
    m.phase(PHASE_CLOSE, -1); // clamped to 0
    clock.advance(6 + i);
  }
  const s = m.snapshot(clock.now());
  assert.equal(s.timedIterations, 4);
  assert.deepEqual(s.phases.tasks, { meanMs: 3.5, maxMs: 5, share: 14 / 30 });
  assert.deepEqual(s.phases.timers, { meanMs: 1, maxMs: 1, share: 4 / 30 });
  assert.deepEqual(s.phases.check, { meanMs: 0, maxMs: 0, share: 0 });
  assert.deepEqual(s.phases.close, { meanMs: 0, maxMs: 0, share: 0 });
});

Deno.test("recorder: sampling on a real-time clock counts everything, times a weighted sample", async (t) => {
  await t.step("fixed period: about one in N timed, weights keep the mean unbiased", () => {
    const clock = new ManualClock();
    const m = new MetricsRecorder(clock, { samplePeriod: 16 });
    for (let i = 0; i < 64_000; i++) run(m, clock, KIND_TASK, i % 4 === 0 ? 0.4 : 0.1);
    const s = m.snapshot(clock.now());
    assert.equal(s.sampling.mode, "fixed");
    assert.equal(s.sampling.period, 16);
    assert.equal(s.callbacks.count, 64_000, "every callback is counted");
    const task = s.callbacks.byKind.task;
    assert.ok(task.samples > 3_500 && task.samples < 4_500, `about 4000 timed: ${task.samples}`);
    assert.ok(Math.abs(s.sampling.rate - task.samples / 64_000) < 1e-12);
    // True mean 0.175 ms, true p50 0.1, true p90 0.4.
    assert.ok(Math.abs(task.meanMs - 0.175) < 0.01, `mean ${task.meanMs}`);
    near(task.p50Ms, 0.1);
    near(task.p90Ms, 0.4);
  });

  await t.step("randomised gaps do not alias with a periodic workload", () => {
    const clock = new ManualClock();
    const m = new MetricsRecorder(clock, { samplePeriod: 16 });
    // Every 16th callback is slow: a fixed stride of 16 would see all or none of them.
    for (let i = 0; i < 64_000; i++) run(m, clock, KIND_TASK, i % 16 === 0 ? 1 : 0.001);
    const task = m.snapshot(clock.now()).callbacks.byKind.task;
    assert.ok(Math.abs(task.meanMs - (1 + 15 * 0.001) / 16) < 0.01, `mean ${task.meanMs}`);
    assert.equal(task.maxMs, 1);
    assert.ok(task.p90Ms < 0.002, "p90 is a fast one");
  });

  await t.step("adaptive: the gap follows the callback rate", () => {
    const clock = new ManualClock();
    const m = new MetricsRecorder(clock);
    // 1 µs callbacks: about SAMPLE_INTERVAL_MS / 1 µs = 100 callbacks per sample.
    for (let i = 0; i < 200_000; i++) run(m, clock, KIND_TASK, 0.001);
    let s = m.snapshot(clock.now());
    assert.equal(s.sampling.mode, "adaptive");
    const expected = SAMPLE_INTERVAL_MS / 0.001;
    assert.ok(
      s.sampling.period > expected / 2 && s.sampling.period < expected * 2,
      `period ${s.sampling.period}`,
    );
    assert.equal(s.callbacks.count, 200_000);
    assert.ok(s.callbacks.samples < 200_000 / 40, `samples ${s.callbacks.samples}`);
    assert.ok(Math.abs(s.callbacks.p50Ms - 0.001) <= 0.001 / 128);
    // Slow callbacks (1 ms each, one per iteration): noticed at the next iteration, then every
    // one is timed.
    for (let i = 0; i < 50; i++) {
      m.beginIteration();
      run(m, clock, KIND_FD, 1);
    }
    s = m.snapshot(clock.now());
    assert.equal(s.sampling.period, 1);
    assert.ok(s.callbacks.byKind.fd.samples >= 45, `fd samples ${s.callbacks.byKind.fd.samples}`);
    near(s.callbacks.byKind.fd.p50Ms, 1);
  });

  await t.step("slowCallbackMs and samplePeriod 1 time every callback", () => {
    for (const options of [{ slowCallbackMs: 100 }, { samplePeriod: 1 }]) {
      const clock = new ManualClock();
      const m = new MetricsRecorder(clock, options);
      for (let i = 0; i < 1000; i++) run(m, clock, KIND_TASK, 0.001);
      const s = m.snapshot(clock.now());
      assert.equal(s.sampling.mode, "every");
      assert.equal(s.callbacks.samples, 1000);
    }
  });

  await t.step("phases are timed about once per ms", () => {
    const clock = new ManualClock();
    const m = new MetricsRecorder(clock);
    let timed = 0;
    for (let i = 0; i < 10_000; i++) {
      if (m.beginIteration() >= 0) timed++;
      clock.nowMs += 0.01; // 100 iterations per ms
    }
    const s = m.snapshot(clock.now());
    assert.equal(s.timedIterations, timed);
    assert.ok(timed > 60 && timed < 160, `~100 timed iterations in 100 ms: ${timed}`);
    assert.equal(s.iterations, 10_000, "every iteration is counted");
    assert.equal(s.lag.count, 10_000);
    assert.equal(s.lag.samples, timed);
    near(s.lag.p50Ms, 0.01);
    assert.equal(s.utilization.waitingMs, 0);
    assert.ok(Math.abs(s.utilization.busyMs - 100) < 1e-6, "busy time is exact, not sampled");
  });

  await t.step("iteration(startMs) samples the same iterations with the loop's own reading", () => {
    const a = new ManualClock();
    const b = new ManualClock();
    const viaBegin = new MetricsRecorder(a);
    const viaTime = new MetricsRecorder(b);
    for (let i = 0; i < 5_000; i++) {
      const sampled = viaBegin.beginIteration() >= 0;
      assert.equal(viaTime.iteration(b.now()), sampled);
      if (sampled) {
        viaBegin.phase(PHASE_TASKS, 0.01);
        viaTime.phase(PHASE_TASKS, 0.01);
      }
      a.nowMs += 0.01 + (i % 3) * 0.01;
      b.nowMs += 0.01 + (i % 3) * 0.01;
    }
    assert.deepEqual(viaTime.snapshot(b.now()), viaBegin.snapshot(a.now()));
  });

  await t.step("iteration sampling: utilization and weighted lag with mixed iterations", () => {
    const clock = new ManualClock();
    const m = new MetricsRecorder(clock);
    // Per 10.1 ms: 1000 busy 0.01 ms iterations, then one that waits 0.1 ms and is busy 0.09 ms.
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 1000; i++) {
        m.beginIteration();
        clock.nowMs += 0.01;
      }
      m.beginIteration();
      clock.nowMs += 0.1;
      m.waited(0.1);
      clock.nowMs += 0.09;
    }
    m.stopped(clock.now());
    const s = m.snapshot(clock.now());
    assert.equal(s.iterations, 100_100);
    assert.ok(Math.abs(s.utilization.waitingMs - 10) < 1e-6, String(s.utilization.waitingMs));
    assert.ok(Math.abs(s.utilization.busyMs - (1000 + 9)) < 1e-6, String(s.utilization.busyMs));
    assert.ok(Math.abs(s.utilization.total - 1009 / 1019) < 1e-9);
    near(s.lag.p50Ms, 0.01);
    near(s.lag.p99Ms, 0.01, "1 iteration in 1001 is longer: beyond p99");
    assert.ok(s.lag.samples < 5_000, `lag is sampled: ${s.lag.samples}`);
  });
});

Deno.test("recorder: bulk counting with timed() matches begin/end", () => {
  const clock = new VirtualClock();
  const a = new MetricsRecorder(clock);
  const b = new MetricsRecorder(clock);
  for (let i = 0; i < 100; i++) {
    const cb = (): void => {};
    const t0 = a.begin();
    const u0 = b.begin();
    clock.advance(i % 7);
    a.end(KIND_IMMEDIATE, t0, cb, "x");
    if (u0 >= 0) b.timed(KIND_IMMEDIATE, u0, cb, "x");
  }
  b.count(KIND_IMMEDIATE, 100);
  assert.deepEqual(a.snapshot(clock.now()), b.snapshot(clock.now()));
});

Deno.test("recorder: skip() runs plus begin/end time the same callbacks as begin/end alone", () => {
  const durationOf = (i: number): number => (i % 10) * 0.001 + (i % 997 === 0 ? 5 : 0);
  const drive = (useSkip: boolean): MetricsRecorder => {
    const clock = new ManualClock();
    const m = new MetricsRecorder(clock, { samplePeriod: 50 });
    const cb = (): void => {};
    let i = 0;
    const n = 20_000;
    while (i < n) {
      if (useSkip) {
        const k = m.skip(Math.min(700, n - i)); // phases of up to 700 callbacks
        for (let j = 0; j < k; j++) clock.nowMs += durationOf(i++);
        m.count(KIND_TASK, k);
        if (i === n) break;
      }
      const t0 = m.begin();
      clock.nowMs += durationOf(i++);
      m.end(KIND_TASK, t0, cb, "job");
    }
    return m;
  };
  const viaSkip = drive(true);
  const viaEnd = drive(false);
  const a = viaSkip.snapshot(0);
  assert.ok(a.callbacks.samples > 300 && a.callbacks.samples < 500, String(a.callbacks.samples));
  assert.equal(a.callbacks.count, 20_000);
  assert.deepEqual(a, viaEnd.snapshot(0));
  // Everything timed: skip() never skips.
  assert.equal(new MetricsRecorder(new VirtualClock()).skip(100), 0);
});

Deno.test("recorder: rejects bad options with RangeError/TypeError", () => {
  const clock = new VirtualClock();
  const bad: [Record<string, unknown>, ErrorConstructor, RegExp][] = [
    [{ samplePeriod: 0 }, RangeError, /samplePeriod .*current value is 0/],
    [{ samplePeriod: 1.5 }, RangeError, /samplePeriod/],
    [{ samplePeriod: 70_000 }, RangeError, /samplePeriod/],
    [{ slowCallbackMs: -1 }, RangeError, /slowCallbackMs .*current value is -1/],
    [{ slowCallbackMs: NaN }, RangeError, /slowCallbackMs/],
    [{ slowCallbackMs: "5" }, TypeError, /slowCallbackMs must be a number: current value is "5"/],
    [{ onSlowCallback: 5 }, TypeError, /onSlowCallback .*current value is 5/],
    [{ topN: 101 }, RangeError, /topN .*current value is 101/],
    [{ onError: "x" }, TypeError, /onError/],
  ];
  for (const [options, type, message] of bad) {
    assert.throws(() => new MetricsRecorder(clock, options), (e: unknown) => {
      assert.ok(e instanceof type, `${JSON.stringify(options)}: ${e}`);
      assert.match((e as Error).message, /^Cannot enable metrics as /);
      assert.match((e as Error).message, message);
      return true;
    });
  }
});
