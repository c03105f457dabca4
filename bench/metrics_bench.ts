// Cost of the metrics recorder's hot path per callback: a tight simulated dispatch loop of 1M
// trivial callbacks without a recorder (baseline) and with one, called the way the Loop calls it.
// Divide the time per iteration by 1e6 for ns per callback. The loop-level with/without comparison
// (tasks, timers, iterations) is bench/loop_metrics_bench.ts.
//
//   deno bench --allow-all bench/metrics_bench.ts
import { systemClock } from "../loop/clock.ts";
import { KIND_TASK, MetricsRecorder } from "../loop/_metrics_recorder.ts";

const N = 1_000_000;
/** A ring of distinct trivial callbacks, so that the call site is as polymorphic as a loop's. */
const RING = 1024;
let sink = 0;
const callbacks: (() => void)[] = [];
const labels: (string | undefined)[] = [];
for (let i = 0; i < RING; i++) {
  callbacks.push(i % 2 === 0 ? () => void sink++ : () => void (sink += 2));
  labels.push(i % 3 === 0 ? `cb${i}` : undefined);
}

function dispatchBare(): void {
  for (let i = 0; i < N; i++) {
    const cb = callbacks[i & (RING - 1)];
    try {
      cb();
    } catch (_) {
      sink--;
    }
  }
}

/** begin() and end() around every callback. */
function dispatchEnd(m: MetricsRecorder): void {
  for (let i = 0; i < N; i++) {
    const cb = callbacks[i & (RING - 1)];
    const t0 = m.begin();
    try {
      cb();
    } catch (_) {
      sink--;
    }
    m.end(KIND_TASK, t0, cb, labels[i & (RING - 1)]);
  }
}

/** begin() around every callback, timed() only for the timed ones, one count() per phase. */
function dispatchBulk(m: MetricsRecorder): void {
  for (let i = 0; i < N; i++) {
    const cb = callbacks[i & (RING - 1)];
    const t0 = m.begin();
    try {
      cb();
    } catch (_) {
      sink--;
    }
    if (t0 >= 0) m.timed(KIND_TASK, t0, cb, labels[i & (RING - 1)]);
  }
  m.count(KIND_TASK, N);
}

/**
 * skip(): runs of untimed callbacks go through the same loop as without a recorder; only the timed
 * one pays begin()/end(). The recommended shape for the loop's tight phases.
 */
function dispatchSkip(m: MetricsRecorder): void {
  let i = 0;
  while (i < N) {
    const end = i + m.skip(N - i);
    const untimed = end - i;
    for (; i < end; i++) {
      const cb = callbacks[i & (RING - 1)];
      try {
        cb();
      } catch (_) {
        sink--;
      }
    }
    m.count(KIND_TASK, untimed);
    if (i < N) {
      const cb = callbacks[i & (RING - 1)];
      const t0 = m.begin();
      try {
        cb();
      } catch (_) {
        sink--;
      }
      m.end(KIND_TASK, t0, cb, labels[i & (RING - 1)]);
      i++;
    }
  }
}

/** What timing every callback naively costs: two clock reads per callback. */
function dispatchNaive(): void {
  let totalMs = 0;
  for (let i = 0; i < N; i++) {
    const cb = callbacks[i & (RING - 1)];
    const t0 = performance.now();
    try {
      cb();
    } catch (_) {
      sink--;
    }
    totalMs += performance.now() - t0;
  }
  if (totalMs < 0) sink--;
}

const adaptiveEnd = new MetricsRecorder(systemClock);
const adaptiveBulk = new MetricsRecorder(systemClock);
const adaptiveSkip = new MetricsRecorder(systemClock);
const fixed128 = new MetricsRecorder(systemClock, { samplePeriod: 128 });
const every = new MetricsRecorder(systemClock, { slowCallbackMs: 1000 });
const other = new MetricsRecorder(systemClock);

Deno.bench("1M callbacks: no recorder", { group: "dispatch", baseline: true }, () => {
  dispatchBare();
});
Deno.bench("1M callbacks: begin/end, adaptive sampling (default)", { group: "dispatch" }, () => {
  dispatchEnd(adaptiveEnd);
});
Deno.bench("1M callbacks: begin/timed+count, adaptive (default)", { group: "dispatch" }, () => {
  dispatchBulk(adaptiveBulk);
});
Deno.bench(
  "1M callbacks: skip() runs + begin/end, adaptive (default)",
  { group: "dispatch" },
  () => {
    dispatchSkip(adaptiveSkip);
  },
);
Deno.bench("1M callbacks: begin/end, fixed 1 in 128", { group: "dispatch" }, () => {
  dispatchEnd(fixed128);
});
Deno.bench(
  "1M callbacks: begin/end, every callback (slowCallbackMs)",
  { group: "dispatch" },
  () => {
    dispatchEnd(every);
  },
);
Deno.bench("1M callbacks: naive performance.now() around each", { group: "dispatch" }, () => {
  dispatchNaive();
});
Deno.bench("1M timerFired() (a histogram record)", { group: "per event" }, () => {
  for (let i = 0; i < N; i++) other.timerFired((i & 1023) * 0.001);
});
Deno.bench("1M iteration() (per-iteration bookkeeping, ~1 sampled per ms)", {
  group: "per event",
}, () => {
  for (let i = 0; i < N; i++) {
    if (other.beginIteration() >= 0) other.depths(i & 7, 0, 3, 0, 1);
  }
});
Deno.bench("snapshot()", { group: "snapshot" }, () => {
  sink += adaptiveEnd.snapshot(performance.now()).iterations;
});

// Keeps `sink` observable so that the callbacks are not dead code.
globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
