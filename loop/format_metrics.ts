/**
 * Renders a {@linkcode MetricsSnapshot} as an aligned plain-text table.
 *
 * @module
 */
import { describe } from "../poller/_validate.ts";
import type { DurationStats, MetricsSnapshot, QueueDepth } from "./metrics.ts";

/**
 * Renders a metrics snapshot as a compact, aligned plain-text report (ASCII apart from `µ`, no
 * colours, no trailing spaces: paste-able into an issue or a log). Durations carry their unit
 * (`ns`, `µs`, `ms`, `s`, three significant digits), rates are per second, fractions are in %, and
 * large counts are abbreviated (`12.3k`, `4.56M`). Sections: callback durations per kind, timer
 * lateness and loop lag; utilization and throughput; queue depths; phases; the slowest callbacks.
 *
 * @example
 * ```ts
 * import { Loop, VirtualClock } from "../mod.ts";
 * import { formatMetrics } from "./format_metrics.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock(), metrics: true });
 * loop.setTimeout(function tick() {}, 10);
 * await loop.run();
 * console.log(formatMetrics(loop.metrics()));
 * await loop.close();
 * ```
 *
 * @param snapshot What `loop.metrics()` returned (or its JSON round trip).
 * @returns The report: lines separated by `\n`, without a final newline.
 * @throws {TypeError} If `snapshot` does not have the shape of a {@linkcode MetricsSnapshot}.
 */
export function formatMetrics(snapshot: MetricsSnapshot): string {
  checkSnapshot(snapshot);
  const s = snapshot;
  const out: string[] = [];
  const sampling = s.sampling.mode === "every"
    ? "every callback timed"
    // The period is the one in force now (a slow phase at the end can make it 1 after a busy
    // run): the share timed over the whole run comes first.
    : `${s.sampling.mode} sampling, ${count(s.sampling.timed)} callbacks timed (${
      percent(s.sampling.rate)
    }; now 1 in ~${count(s.sampling.period)}), percentiles of the sample`;
  out.push(
    `loop metrics at ${duration(s.atMs)}: up ${duration(s.uptimeMs)}, ${
      count(s.iterations)
    } iterations, ${sampling}`,
  );
  out.push("");

  const distribution = (name: string, d: DurationStats): string[] => [
    name,
    count(d.count),
    count(d.samples),
    duration(d.meanMs),
    duration(d.p50Ms),
    duration(d.p90Ms),
    duration(d.p95Ms),
    duration(d.p99Ms),
    duration(d.maxMs),
  ];
  const kinds = s.callbacks.byKind;
  out.push(
    ...table([
      ["duration", "count", "timed", "mean", "p50", "p90", "p95", "p99", "max"],
      distribution("callbacks", s.callbacks),
      distribution("  task", kinds.task),
      distribution("  microtask", kinds.microtask),
      distribution("  timer", kinds.timer),
      distribution("  immediate", kinds.immediate),
      distribution("  fd", kinds.fd),
      distribution("timer lateness", s.timerLateness),
      distribution("loop lag", s.lag),
    ]),
  );
  out.push("");

  const u = s.utilization;
  out.push(
    ...table([
      [
        "utilization",
        `last ${percent(u.last)}`,
        `10 s ${percent(u.rolling)}`,
        `total ${percent(u.total)}`,
        `busy ${duration(u.busyMs)}`,
        `waiting ${duration(u.waitingMs)}`,
      ],
      [
        "throughput",
        `${count(s.throughput.callbacksPerSecond)}/s`,
        `over ${duration(s.throughput.windowMs)}`,
      ],
    ], true),
  );
  out.push("");

  const queue = (name: string, q: QueueDepth): string[] => [
    name,
    count(q.current),
    count(q.max),
    decimal(q.average),
  ];
  out.push(
    ...table([
      ["queue", "current", "max", "avg"],
      queue("tasks", s.queues.tasks),
      queue("microtasks", s.queues.microtasks),
      queue("timers", s.queues.timers),
      queue("immediates", s.queues.immediates),
      queue("watches", s.queues.watches),
    ]),
  );
  out.push("");

  const phaseRows: string[][] = [[
    `phase (${count(s.timedIterations)} timed)`,
    "mean",
    "max",
    "share",
  ]];
  for (const name of ["timers", "tasks", "poll", "check", "close"] as const) {
    const p = s.phases[name];
    phaseRows.push([name, duration(p.meanMs), duration(p.maxMs), percent(p.share)]);
  }
  out.push(...table(phaseRows));

  const slow = s.slowCallbackMs === null
    ? ""
    : `, ${count(s.slowCallbacks)} over ${duration(s.slowCallbackMs)}`;
  out.push("");
  if (s.slowest.length === 0) {
    out.push(`slowest callbacks: none yet${slow}`);
  } else {
    out.push(`slowest callbacks${slow}:`);
    out.push(
      ...table(
        s.slowest.map((e) => [
          `  ${duration(e.durationMs)}`,
          e.kind,
          truncate(e.label, 48),
          `at ${duration(e.atMs)}`,
        ]),
        true,
      ),
    );
  }
  return out.join("\n");
}

/**
 * Aligns rows into columns two spaces apart: the first column left-aligned, the others right-aligned
 * (or all left-aligned with `left`), trailing spaces trimmed.
 */
function table(rows: readonly string[][], left = false): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row.map((cell, i) => i === 0 || left ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join(
      "  ",
    ).trimEnd()
  );
}

/** Three significant digits, without exponent notation or trailing noise. */
function sig3(value: number): string {
  if (value >= 99.95) return Math.round(value).toString();
  if (value >= 9.995) return value.toFixed(1);
  return value.toFixed(2);
}

/** A duration in ms with a fitting unit. */
function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms === 0) return "0";
  const abs = Math.abs(ms);
  const sign = ms < 0 ? "-" : "";
  // Round first so that 999.6 µs shows as "1.00 ms", not "1000 µs".
  if (abs < 0.000_999_5) return `${sign}${sig3(abs * 1e6)} ns`;
  if (abs < 0.999_5) return `${sign}${sig3(abs * 1e3)} µs`;
  if (abs < 999.5) return `${sign}${sig3(abs)} ms`;
  return `${sign}${sig3(abs / 1e3)} s`;
}

/** A count, exact below 10 000, else abbreviated to three significant digits. */
function count(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (Number.isInteger(n) && Math.abs(n) < 10_000) return n.toString();
  const abs = Math.abs(n);
  if (abs < 1) return n.toFixed(3);
  if (abs < 10_000) return sig3(n);
  if (abs < 999_500) return `${sig3(n / 1e3)}k`;
  if (abs < 999_500_000) return `${sig3(n / 1e6)}M`;
  return `${sig3(n / 1e9)}G`;
}

/** A non-integer figure such as an average depth. */
function decimal(n: number): string {
  return Number.isInteger(n) ? count(n) : n < 10_000 ? n.toFixed(1) : count(n);
}

/** A fraction in [0, 1] as a percentage. */
function percent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(1)} %` : "-";
}

function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

/** The sections a snapshot must have: objects the report reads into. */
const SECTIONS = [
  "sampling",
  "callbacks",
  "timerLateness",
  "lag",
  "utilization",
  "queues",
  "throughput",
  "phases",
  "slowest",
] as const;

/** Throws a TypeError unless `snapshot` has the shape of `loop.metrics()` (or its JSON). */
function checkSnapshot(snapshot: unknown): void {
  let problem: string | undefined;
  if (snapshot === null || typeof snapshot !== "object") {
    problem = describe(snapshot);
  } else {
    const section = SECTIONS.find((name) => {
      const value = (snapshot as Record<string, unknown>)[name];
      return value === null || typeof value !== "object";
    });
    if (section !== undefined) problem = `an object without a ${section} section`;
  }
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot format metrics as the snapshot must be what loop.metrics() returns: current value is ${problem}`,
    );
  }
}
