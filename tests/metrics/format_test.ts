// formatMetrics: the shape of the report (sections, alignment, units), not exact spacing.
import assert from "node:assert/strict";
import { VirtualClock } from "../../loop/clock.ts";
import {
  KIND_FD,
  KIND_MICROTASK,
  KIND_TASK,
  KIND_TIMER,
  MetricsRecorder,
  PHASE_POLL,
  PHASE_TASKS,
  QUEUE_MICROTASKS,
} from "../../loop/_metrics_recorder.ts";
import { formatMetrics } from "../../loop/format_metrics.ts";
import type { MetricsSnapshot } from "../../loop/metrics.ts";

/** A timer fire as the loop records it: lateness with the fire's (timed) callback. */
function fireTimer(m: MetricsRecorder, latenessMs: number): void {
  const startMs = m.begin();
  m.timerFired(latenessMs);
  m.end(KIND_TIMER, startMs, () => {}, undefined);
}

function busySnapshot(): MetricsSnapshot {
  const clock = new VirtualClock();
  const m = new MetricsRecorder(clock, { slowCallbackMs: 20, topN: 3 });
  for (let i = 0; i < 3000; i++) {
    if (m.beginIteration() >= 0) {
      m.phase(PHASE_TASKS, 0.3);
      m.phase(PHASE_POLL, 2);
    }
    m.depths(i % 40, 0, 12, 0, 3);
    m.peak(QUEUE_MICROTASKS, i % 9);
    for (let k = 0; k < 5; k++) {
      const t0 = m.begin();
      clock.advance(0.0003 * (k + 1));
      m.end(k % 2 ? KIND_MICROTASK : KIND_TASK, t0, function handleRequest() {}, undefined);
    }
    if (i % 500 === 0) {
      const t0 = m.begin();
      clock.advance(25 + i / 100);
      m.end(KIND_FD, t0, () => {}, i === 2500 ? "a very\nlong label ".repeat(10) : `socket ${i}`);
    }
    fireTimer(m, 0.05 + (i % 10) * 0.1);
    clock.advance(3);
    m.waited(3);
  }
  return m.snapshot(clock.now());
}

/** The lines of the block that starts with a line beginning with `first`, up to a blank line. */
function block(text: string, first: string): string[] {
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.startsWith(first));
  assert.ok(start >= 0, `no block starting with ${JSON.stringify(first)}`);
  const end = lines.indexOf("", start);
  return lines.slice(start, end < 0 ? undefined : end);
}

Deno.test("formatMetrics renders every section, aligned, with units", () => {
  const text = formatMetrics(busySnapshot());
  assert.doesNotMatch(text, /NaN|undefined|Infinity|null|\[object/);
  for (const line of text.split("\n")) assert.equal(line, line.trimEnd(), "no trailing spaces");
  assert.match(text.split("\n")[0], /^loop metrics at 9\.2\d s: up 9\.2\d s, 3000 iterations, /);
  assert.match(text.split("\n")[0], /every callback timed/);

  const durations = block(text, "duration");
  assert.deepEqual(durations.map((line) => line.trim().split(/\s{2,}/)[0]), [
    "duration",
    "callbacks",
    "task",
    "microtask",
    "timer",
    "immediate",
    "fd",
    "timer lateness",
    "loop lag",
  ]);
  assert.deepEqual(durations[0].split(/\s+/), [
    "duration",
    "count",
    "timed",
    "mean",
    "p50",
    "p90",
    "p95",
    "p99",
    "max",
  ]);
  // Right-aligned numeric columns: every row ends at the same column.
  assert.equal(new Set(durations.map((line) => line.length)).size, 1, durations.join("\n"));
  assert.match(durations[1], /^callbacks\s+18\.0k\s+18\.0k\s+/, "large counts abbreviated");
  assert.match(durations[2], /\d µs/, "µs for microsecond durations");
  assert.match(durations[6], /^ {2}fd\s+6\s+6\s+37\.5 ms\s+.*50\.0 ms$/, "ms, max exact");
  assert.match(durations[7], /^timer lateness\s+3000\s+3000\s+500 µs/);

  const util = block(text, "utilization");
  assert.match(
    util[0],
    /last \d+\.\d %\s+10 s \d+\.\d %\s+total \d+\.\d %\s+busy .+ms\s+waiting 9\.00 s/,
  );
  assert.match(util[1], /^throughput\s+\d+\/s\s+over 9\.2\d s$/);

  const queues = block(text, "queue");
  assert.equal(queues.length, 6);
  assert.match(queues[1], /^tasks\s+39\s+39\s+\d+\.\d$/);
  assert.match(queues[2], /^microtasks\s+\d\s+8\s+/, "peaks raise the max");
  assert.equal(new Set(queues.map((line) => line.length)).size, 1);

  const phases = block(text, "phase");
  assert.match(phases[0], /^phase \(3000 timed\)\s+mean\s+max\s+share$/);
  assert.match(phases.find((line) => line.startsWith("poll"))!, /2\.00 ms\s+2\.00 ms\s+87\.0 %$/);

  const slowest = block(text, "slowest callbacks");
  assert.equal(slowest[0], "slowest callbacks, 6 over 20.0 ms:");
  assert.equal(slowest.length, 4, "topN: 3 entries");
  assert.match(slowest[1], /^ {2}50\.0 ms\s+fd\s+a very long label a very.*…\s+at 7\.69 s$/);
  assert.ok(slowest[1].length < 100, "long labels are truncated to one short line");
  assert.match(slowest[2], /^ {2}45\.0 ms\s+fd\s+socket 2000\s+at 6\.14 s$/);
});

Deno.test("formatMetrics renders an empty snapshot and a JSON round trip the same", () => {
  const clock = new VirtualClock();
  const empty = new MetricsRecorder(clock).snapshot(clock.now());
  const text = formatMetrics(empty);
  assert.doesNotMatch(text, /NaN|undefined|Infinity|null/);
  assert.match(text, /^loop metrics at 0: up 0, 0 iterations, every callback timed$/m);
  assert.match(text, /^slowest callbacks: none yet$/m);
  assert.match(text, /^throughput\s+0\/s\s+over 0$/m);
  const busy = busySnapshot();
  assert.equal(formatMetrics(JSON.parse(JSON.stringify(busy))), formatMetrics(busy));
});

Deno.test("formatMetrics describes sampling and picks units across magnitudes", () => {
  let nowMs = 0;
  const m = new MetricsRecorder({ now: () => nowMs, virtual: false });
  m.beginIteration();
  for (let i = 0; i < 2_000_000; i++) {
    const t0 = m.begin();
    nowMs += 0.000_05; // 50 ns callbacks
    m.end(KIND_TASK, t0, () => {}, undefined);
  }
  fireTimer(m, 1500); // 1.5 s late
  const text = formatMetrics(m.snapshot(nowMs));
  assert.match(
    text.split("\n")[0],
    /adaptive sampling, \d+ callbacks timed \(0\.\d %; now 1 in ~\d+(\.\d+)?k?\), percentiles of the sample$/,
  );
  assert.match(text, /^callbacks\s+2\.00M\s+\d+\s+50\.0 ns\s+/m, "ns and M");
  assert.match(text, /^timer lateness\s+1\s+1\s+1\.50 s\s+/m, "seconds");
});

Deno.test("formatMetrics of something that is not a snapshot is a TypeError naming what is wrong", () => {
  const cases: [unknown, string][] = [
    [undefined, "undefined"],
    [null, "null"],
    [5, "5"],
    [{}, "an object without a sampling section"],
    [{ sampling: { mode: "every" } }, "an object without a callbacks section"],
  ];
  for (const [snapshot, described] of cases) {
    assert.throws(
      () => formatMetrics(snapshot as MetricsSnapshot),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          `Cannot format metrics as the snapshot must be what loop.metrics() returns: current value is ${described}`,
    );
  }
});
