/**
 * Types of the loop's metrics: what `loop.metrics()` returns and how metrics are configured.
 *
 * Conventions of every {@linkcode MetricsSnapshot}: times are in ms (fractional), fractions are in
 * [0, 1], and a figure with no data behind it is `0` (check the matching `samples` or `count`),
 * while a setting that is not in force is `null`. There is never `undefined`, `NaN` or `Infinity`,
 * so `JSON.parse(JSON.stringify(snapshot))` deep-equals the snapshot.
 *
 * @module
 */

/**
 * The kinds of callback a loop runs: macrotasks (`submit`), loop microtasks, timers (timeouts and
 * intervals), immediates, and fd readiness callbacks (`watch`).
 *
 * @example
 * ```ts
 * import type { CallbackKind } from "./metrics.ts";
 * const kinds: CallbackKind[] = ["task", "microtask", "timer", "immediate", "fd"];
 * console.log(kinds.length); // 5
 * ```
 */
export type CallbackKind = "task" | "microtask" | "timer" | "immediate" | "fd";

/**
 * One slow callback: reported to `onSlowCallback` when a callback runs for at least
 * `slowCallbackMs`, and listed in {@linkcode MetricsSnapshot.slowest}.
 *
 * @example
 * ```ts
 * import type { SlowCallbackInfo } from "./metrics.ts";
 * const onSlowCallback = (info: SlowCallbackInfo): void => {
 *   console.warn(`${info.kind} ${info.label} took ${info.durationMs.toFixed(1)} ms at ${info.atMs} ms`);
 * };
 * onSlowCallback({ kind: "task", durationMs: 120, label: "parse", atMs: 5000 });
 * ```
 */
export interface SlowCallbackInfo {
  /** What kind of callback it was. */
  readonly kind: CallbackKind;
  /** How long it ran, in ms. */
  readonly durationMs: number;
  /** The label given when it was scheduled, else the function's name, else `"anonymous"`. */
  readonly label: string;
  /** The loop clock time at which it started, in ms. */
  readonly atMs: number;
}

/**
 * How metrics are collected. The loop takes these with its own options (`metrics`,
 * `slowCallbackMs`, `onSlowCallback`).
 *
 * Cost: the loop counts every callback and iteration (integer increments) but reads the clock only
 * around a sample of them, because a clock read costs about ten times what dispatching a small
 * callback does. Iterations are sampled about once per ms of loop time (their lag, phases and
 * queue depths), whatever `samplePeriod` says. By default the sample adapts to the callback rate: about one timed callback per 0.1 ms of
 * loop time (so at most ~10 000 per second, ~0.3 % of a core, however small the callbacks; every
 * callback when they are sparse or slow), with randomised gaps so that periodic workloads cannot
 * alias with it. Each timed callback is weighted by the number of callbacks it stands for, so the
 * percentiles, mean and slowest list are estimates from the sample; counts are exact. Every callback
 * is timed when `slowCallbackMs` is set (two clock reads per callback, like asyncio's debug mode:
 * expect ~0.2-0.3 µs per callback), when `samplePeriod` is 1, or when the loop's clock is virtual
 * (reads are free and figures deterministic).
 *
 * @example
 * ```ts
 * import type { MetricsOptions } from "./metrics.ts";
 * const options: MetricsOptions = {
 *   slowCallbackMs: 50,
 *   onSlowCallback: (info) => console.warn(info.label, info.durationMs),
 *   topN: 5,
 * };
 * console.log(options.topN); // 5
 * ```
 */
export interface MetricsOptions {
  /**
   * Time one callback in this many instead of adapting: an integer in [1, 65536]; `1` times every
   * callback. Default: adaptive (see above). Ignored with `slowCallbackMs` or a virtual clock.
   */
  readonly samplePeriod?: number;
  /**
   * Time every callback and report each that runs at least this long (ms, finite, >= 0) to
   * `onSlowCallback` and in the snapshot's `slowCallbacks` count.
   */
  readonly slowCallbackMs?: number;
  /**
   * Called with each slow callback (see `slowCallbackMs`), after it has run. Given alone, it implies
   * `slowCallbackMs: 100` (asyncio's default).
   */
  readonly onSlowCallback?: (info: SlowCallbackInfo) => void;
  /** How many of the slowest labelled callbacks the snapshot lists: an integer in [0, 100], default 10. */
  readonly topN?: number;
}

/**
 * How callback durations were sampled.
 *
 * @example
 * ```ts
 * import type { SamplingInfo } from "./metrics.ts";
 * const describe = (s: SamplingInfo): string =>
 *   s.mode === "every" ? "every callback timed" : `1 in ~${s.period} timed (${s.timed} so far)`;
 * console.log(describe({ mode: "adaptive", period: 2048, timed: 900, rate: 0.0005 }));
 * ```
 */
export interface SamplingInfo {
  /**
   * `"adaptive"` (the default: the period follows the callback rate), `"fixed"` (`samplePeriod`)
   * or `"every"` (`slowCallbackMs`, `samplePeriod: 1` or a virtual clock).
   */
  readonly mode: "adaptive" | "fixed" | "every";
  /** The mean period in force: one callback in `period` is timed (1: every callback). */
  readonly period: number;
  /** How many callbacks were timed. */
  readonly timed: number;
  /** `timed` over callbacks counted, in [0, 1]. */
  readonly rate: number;
}

/**
 * A distribution of durations in ms: how many events, how many of them were measured, and the mean,
 * percentiles and maximum of the measured ones. Percentiles are nearest-rank estimates from a
 * log-linear histogram, within 0.79 % of the exact nearest-rank value of what was measured (below
 * 7.6 ns: within 7.6 ns); for sampled callback durations each measurement is weighted by the number
 * of callbacks it stands for. All zeros when nothing was measured.
 *
 * @example
 * ```ts
 * import type { DurationStats } from "./metrics.ts";
 * const tail = (stats: DurationStats): string =>
 *   stats.samples === 0 ? "no data" : `p99 ${stats.p99Ms} ms of ${stats.samples}/${stats.count}`;
 * console.log(tail({ count: 0, samples: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 }));
 * ```
 */
export interface DurationStats {
  /** Events counted (every callback of the kind, every timer fire, every iteration). */
  readonly count: number;
  /** Events measured: `count` when everything is timed, else the size of the sample. */
  readonly samples: number;
  /** Mean of the measured events (weighted), ms. */
  readonly meanMs: number;
  /** Median, ms. */
  readonly p50Ms: number;
  /** 90th percentile, ms. */
  readonly p90Ms: number;
  /** 95th percentile, ms. */
  readonly p95Ms: number;
  /** 99th percentile, ms. */
  readonly p99Ms: number;
  /** Exact maximum of the measured events, ms. */
  readonly maxMs: number;
}

/**
 * Callback durations for every kind together and for each kind.
 *
 * @example
 * ```ts
 * import type { CallbackStats } from "./metrics.ts";
 * const busiest = (stats: CallbackStats): string =>
 *   (["task", "microtask", "timer", "immediate", "fd"] as const)
 *     .reduce((a, b) => (stats.byKind[b].count > stats.byKind[a].count ? b : a));
 * ```
 */
export interface CallbackStats extends DurationStats {
  /** The same figures for each kind of callback. */
  readonly byKind: { readonly [kind in CallbackKind]: DurationStats };
}

/**
 * Busy versus waiting time. Waiting is time parked in the poller (or otherwise idle, as the loop
 * reports it); busy is the rest of the time between iteration starts. Time while the loop is not
 * running at all (between `run()`s) counts as neither.
 *
 * @example
 * ```ts
 * import type { UtilizationStats } from "./metrics.ts";
 * const percent = (u: UtilizationStats): string => `${(u.rolling * 100).toFixed(1)} %`;
 * console.log(percent({ last: 1, rolling: 0.25, total: 0.5, busyMs: 10, waitingMs: 10 })); // 25.0 %
 * ```
 */
export interface UtilizationStats {
  /** Busy fraction of the last sampled iteration, in [0, 1]. */
  readonly last: number;
  /** Busy fraction over the rolling window (the last 10 s), in [0, 1]. */
  readonly rolling: number;
  /** Busy fraction since metrics started, in [0, 1] (Node's `eventLoopUtilization().utilization`). */
  readonly total: number;
  /** Total busy time, ms. */
  readonly busyMs: number;
  /** Total waiting time, ms. */
  readonly waitingMs: number;
}

/**
 * One queue's depth: its value at the last sample (taken at sampled iterations, about once per ms,
 * every iteration on a virtual clock), the largest value sampled or reported as a peak, and an
 * exponentially weighted moving average of the samples (weight 1/16 each: roughly the last 16 to 32
 * samples).
 *
 * @example
 * ```ts
 * import type { QueueDepth } from "./metrics.ts";
 * const backlog = (d: QueueDepth): boolean => d.average > 1000;
 * console.log(backlog({ current: 3, max: 40, average: 2.5 })); // false
 * ```
 */
export interface QueueDepth {
  /** Depth at the last sample. */
  readonly current: number;
  /** Largest depth seen (at samples, or at the peaks the loop reports, such as checkpoint sizes). */
  readonly max: number;
  /** EWMA of the samples. */
  readonly average: number;
}

/**
 * Depths of the loop's queues.
 *
 * @example
 * ```ts
 * import type { QueueDepths } from "./metrics.ts";
 * const pending = (q: QueueDepths): number => q.tasks.current + q.immediates.current;
 * ```
 */
export interface QueueDepths {
  /** Macrotasks waiting to run. */
  readonly tasks: QueueDepth;
  /** Loop microtasks waiting to run (the largest checkpoint the loop reported since the last sample). */
  readonly microtasks: QueueDepth;
  /** Pending timers. */
  readonly timers: QueueDepth;
  /** Immediates waiting for the check phase. */
  readonly immediates: QueueDepth;
  /** Open fd watches. */
  readonly watches: QueueDepth;
}

/**
 * Time spent in one phase of an iteration. Phases are timed on a sample of iterations (about one
 * per ms of loop time, or every iteration when every callback is timed). Time parked waiting for
 * work (in the poller or otherwise) falls between iterations: it is in no phase, and shows as
 * `utilization.waitingMs`.
 *
 * @example
 * ```ts
 * import type { PhaseTime } from "./metrics.ts";
 * const describe = (p: PhaseTime): string =>
 *   `${p.meanMs} ms avg, ${p.maxMs} ms max, ${(p.share * 100).toFixed(0)} % of the time`;
 * console.log(describe({ meanMs: 0.5, maxMs: 2, share: 0.25 })); // 0.5 ms avg, 2 ms max, 25 % of the time
 * ```
 */
export interface PhaseTime {
  /** Mean time per sampled iteration, ms. */
  readonly meanMs: number;
  /** Longest, ms. */
  readonly maxMs: number;
  /** This phase's share of the sampled iterations' time, in [0, 1]. */
  readonly share: number;
}

/**
 * Time per phase, in the order an iteration runs them.
 *
 * @example
 * ```ts
 * import type { PhaseTimes } from "./metrics.ts";
 * const slowestPhase = (p: PhaseTimes): string =>
 *   (["timers", "tasks", "poll", "check", "close"] as const)
 *     .reduce((a, b) => (p[b].meanMs > p[a].meanMs ? b : a));
 * ```
 */
export interface PhaseTimes {
  /** Expired timers. */
  readonly timers: PhaseTime;
  /** Macrotasks. */
  readonly tasks: PhaseTime;
  /** Polling for fd readiness (a zero-timeout poll, or the events of the idle wait before it) and fd callbacks. */
  readonly poll: PhaseTime;
  /** Immediates. */
  readonly check: PhaseTime;
  /** Close callbacks. */
  readonly close: PhaseTime;
}

/**
 * A detached, plain-data picture of a loop's metrics (see the module docs for the conventions):
 * mutating it changes nothing in the loop or in later snapshots, and it survives a JSON round trip.
 *
 * @example
 * ```ts
 * import type { MetricsSnapshot } from "./metrics.ts";
 * const healthy = (s: MetricsSnapshot): boolean =>
 *   s.lag.p99Ms < 50 && s.timerLateness.p99Ms < 10 && s.utilization.rolling < 0.9;
 * ```
 */
export interface MetricsSnapshot {
  /** Loop clock time when the snapshot was taken, ms. */
  readonly atMs: number;
  /** Time since metrics started, ms. */
  readonly uptimeMs: number;
  /** How callback durations were sampled. */
  readonly sampling: SamplingInfo;
  /** Callback durations (percentiles are of the timed sample, see `sampling`). */
  readonly callbacks: CallbackStats;
  /**
   * Timer lateness: when a timer's callback started minus its deadline. `count` is every timer fire;
   * the percentiles come from the same sample as callback durations (`samples` of them, each
   * weighted by the fires it stands for; every fire on a virtual clock or with `slowCallbackMs`).
   */
  readonly timerLateness: DurationStats;
  /**
   * Loop lag, like Node's `monitorEventLoopDelay`: how late each iteration started versus when it
   * could have, i.e. the time since the previous iteration started minus the time the loop spent
   * waiting in between (the previous iteration's busy time: the longest a newly ready event went
   * unnoticed). `count` is every iteration; `samples` the sampled ones, each weighted by the
   * iterations it stands for. Timer slack in the poller shows in `timerLateness`, not here.
   */
  readonly lag: DurationStats;
  /** Busy versus waiting time. */
  readonly utilization: UtilizationStats;
  /** Queue depths. */
  readonly queues: QueueDepths;
  /** Callbacks per second. */
  readonly throughput: {
    /** Callbacks (all kinds) per second over the rolling window. */
    readonly callbacksPerSecond: number;
    /**
     * How much time the window spans, ms: the current partial second plus the nine before it
     * (9 000 to 10 000 ms once metrics have run that long).
     */
    readonly windowMs: number;
  };
  /** Iterations started. */
  readonly iterations: number;
  /** How many iterations were sampled (their lag measured and phases timed). */
  readonly timedIterations: number;
  /** Time per phase. */
  readonly phases: PhaseTimes;
  /** The `slowCallbackMs` in force, or `null`. */
  readonly slowCallbackMs: number | null;
  /** How many callbacks ran at least `slowCallbackMs` (0 when it is not set). */
  readonly slowCallbacks: number;
  /**
   * The slowest timed callbacks, slowest first, at most `topN`, one entry per kind and label (its
   * worst run); callbacks that took no measurable time are not listed.
   */
  readonly slowest: readonly SlowCallbackInfo[];
}
