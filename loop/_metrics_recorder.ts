// The metrics recorder a Loop calls from its hot paths (internal: the public face is
// `MetricsSnapshot` in ./metrics.ts).
//
// Designed for cost. A clock read costs ~100-200 ns here while dispatching a small callback costs
// ~10-20 ns and a whole idle-free iteration ~40 ns, so every callback and iteration is *counted*
// but only a sample is *timed*. Callbacks: adaptive by default, about one timed callback per 0.1 ms
// of loop time (at most ~10 000 per second: two clock reads each, <= ~0.3 % of a core whatever the
// rate). Iterations: about one sampled per ms (its start, its phases, and the start of the next one
// are read). Each sample is weighted by the number of events it stands for, so percentiles stay
// unbiased when the rate changes. Everything is timed when slowCallbackMs is set (asyncio's debug
// mode) or the clock is virtual (free reads, deterministic tests).
//
// How a loop drives it (m = the recorder, or null when metrics are off):
//   iteration start:  const startMs = m.beginIteration() // -1: run the plain (metrics-off) path
//                     if (startMs >= 0) {                 // a sampled iteration:
//                       m.depths(tasks, microtasks, timers, immediates, watches)
//                       after each phase: m.phase(PHASE_X, clock.now() - phaseStartMs)
//                     }
//   after a blocking poll / idle wait / virtual-clock jump:  m.waited(durationMs)
//   per callback:     const t0 = m.begin(); <run cb, catching>; m.end(KIND_X, t0, cb, label)
//     or, free for untimed callbacks, in the tight phases (tasks, microtasks, immediates):
//                     let k = m.skip(remaining)   // run k callbacks exactly as with metrics off,
//                     m.count(KIND_X, ran)        // count what ran, then one with begin()/end()
//                     m.unskip(k_left)            // before a nested checkpoint and at the phase's
//                                                 // end: what was reserved but did not run
//   per timer fire:   m.timerFired(t0 - deadlineMs)      // t0: the fire's begin() reading
//   microtask checkpoint start (optional): m.peak(QUEUE_MICROTASKS, queueLength)
//   run() starts:     m.started(clock.now())
//   run() returns / runOnce() ends: m.stopped(clock.now())
//   loop.metrics():   m.snapshot(clock.now())
import { describe } from "../poller/_validate.ts";
import type { Clock } from "./clock.ts";
import { LogHistogram, QUANTILES, RollingSum } from "./_histogram.ts";
import type {
  CallbackKind,
  DurationStats,
  MetricsOptions,
  MetricsSnapshot,
  PhaseTime,
  QueueDepth,
  SlowCallbackInfo,
} from "./metrics.ts";

/** Kind index of a macrotask (`submit`). */
export const KIND_TASK = 0;
/** Kind index of a loop microtask. */
export const KIND_MICROTASK = 1;
/** Kind index of a timer callback (timeout or interval). */
export const KIND_TIMER = 2;
/** Kind index of an immediate. */
export const KIND_IMMEDIATE = 3;
/** Kind index of an fd readiness callback. */
export const KIND_FD = 4;
const KIND_NAMES: readonly CallbackKind[] = Object.freeze(
  [
    "task",
    "microtask",
    "timer",
    "immediate",
    "fd",
  ] as const,
);

/** Phase index: expired timers. */
export const PHASE_TIMERS = 0;
/** Phase index: macrotasks. */
export const PHASE_TASKS = 1;
/** Phase index: poll (without the idle wait, which falls between iterations) and fd callbacks. */
export const PHASE_POLL = 2;
/** Phase index: immediates. */
export const PHASE_CHECK = 3;
/** Phase index: close callbacks. */
export const PHASE_CLOSE = 4;
const PHASE_NAMES = Object.freeze(["timers", "tasks", "poll", "check", "close"] as const);

/** Queue index for {@linkcode MetricsRecorder.peak}: macrotasks. */
export const QUEUE_TASKS = 0;
/** Queue index: loop microtasks. */
export const QUEUE_MICROTASKS = 1;
/** Queue index: pending timers. */
export const QUEUE_TIMERS = 2;
/** Queue index: immediates. */
export const QUEUE_IMMEDIATES = 3;
/** Queue index: fd watches. */
export const QUEUE_WATCHES = 4;
const QUEUE_NAMES = Object.freeze(
  ["tasks", "microtasks", "timers", "immediates", "watches"] as const,
);

/**
 * Adaptive sampling aims at one timed callback per this much loop time (ms): at most ~10 000 per
 * second, each costing two clock reads (~0.3 µs), so timing costs <= ~0.3 % of a core.
 */
export const SAMPLE_INTERVAL_MS = 0.1;
/** Largest gap between timed callbacks (adaptive or fixed). */
export const MAX_SAMPLE_PERIOD = 65536;
/**
 * Adaptive sampling: an iteration that starts this long (ms) after the last timed callback times the
 * next callback, so that callbacks that turn slow are seen within an iteration, not a whole gap.
 */
export const STALE_SAMPLE_MS = 1;
/**
 * Iterations are sampled (start, phases, lag) about once per this much loop time (ms), unless
 * everything is timed.
 */
export const ITERATION_SAMPLE_INTERVAL_MS = 1;
/** `slowCallbackMs` when only `onSlowCallback` is given (asyncio's `slow_callback_duration`). */
export const DEFAULT_SLOW_CALLBACK_MS = 100;
/** Default {@linkcode MetricsOptions.topN}. */
export const DEFAULT_TOP_N = 10;
/** EWMA weight of each queue-depth sample. */
export const DEPTH_EWMA_ALPHA = 1 / 16;

/** Options of the recorder: the public ones plus where errors thrown by `onSlowCallback` go. */
export interface MetricsRecorderOptions extends MetricsOptions {
  /**
   * Receives an error thrown by `onSlowCallback` (the loop passes its `onError` route). Without it
   * the error propagates out of {@linkcode MetricsRecorder.end}.
   */
  readonly onError?: (error: unknown) => void;
}

interface TopEntry {
  kind: CallbackKind;
  durationMs: number;
  label: string;
  atMs: number;
}

/** Sampling modes, as reported in the snapshot. */
const MODE_ADAPTIVE = 0;
const MODE_FIXED = 1;
const MODE_EVERY = 2;
const MODE_NAMES = Object.freeze(["adaptive", "fixed", "every"] as const);

/**
 * Collects a loop's metrics. Single-threaded; begin()/end() pairs do not nest (the loop never runs
 * a callback inside another). All times in ms of the loop's clock. Fields are plain (not `#private`)
 * where the hot path reads them: this class is internal and V8 inlines plain field access best.
 */
export class MetricsRecorder {
  // --- hot path state (begin/end) ---
  /** Callbacks to go until the next timed one (1: the next). */
  countdown = 1;
  /** Callbacks counted, per kind index. */
  readonly counts: Float64Array = new Float64Array(5);
  readonly clock: Clock;

  // --- sampling ---
  readonly mode: number;
  /** Mean gap in force (1: every callback). */
  meanGap = 1;
  /** The gap to the next timed callback, as drawn (the countdown counts it down). */
  gap = 1;
  /** How many callbacks the sample in progress stands for: the gap that led to it. */
  weight = 1;
  /** Start of the previous timed callback (-1: none yet). */
  lastSampleMs = -1;
  /** The callback gap of fixed mode. */
  readonly fixedPeriod: number;
  readonly timeAll: boolean;

  // --- configuration ---
  readonly slowCallbackMs: number | null;
  readonly onSlowCallback: ((info: SlowCallbackInfo) => void) | undefined;
  readonly onError: ((error: unknown) => void) | undefined;
  readonly topN: number;

  // --- distributions ---
  readonly durations: LogHistogram[] = [
    new LogHistogram(),
    new LogHistogram(),
    new LogHistogram(),
    new LogHistogram(),
    new LogHistogram(),
  ];
  readonly lateness: LogHistogram = new LogHistogram();
  readonly lag: LogHistogram = new LogHistogram();
  /** Scratch for the all-kinds distribution at snapshot time. */
  readonly #merged: LogHistogram = new LogHistogram();
  readonly #quantiles: Float64Array = new Float64Array(QUANTILES.length);

  // --- slow callbacks ---
  slowCount = 0;
  readonly top: TopEntry[] = [];
  /**
   * A timed callback must exceed this to enter `top`: 0 while `top` has room (a callback that took
   * no measurable time is nobody's slowest), then the fastest entry's duration.
   */
  topFloorMs = 0;

  // --- iterations, utilization, phases ---
  /** Iterations to go until the next clock read (1: the next). */
  iterationCountdown = 1;
  /** What iterationCountdown was set to at the last read: iterations since then = set - current. */
  iterationCountdownSet = 1;
  /** Iterations up to the last read. */
  iterationsCounted = 0;
  sampledIterations = 0;
  /** Mean gap between sampled iterations in force. */
  iterationMeanGap = 1;
  /** Iterations since the previous sampled one, at the last sampled one: its weight. */
  iterationWeight = 1;
  /** Iteration calls since the previous sampled iteration (for the weight). */
  iterationsSinceSample = 0;
  /** Start of the last sampled iteration, and of the one before (-1: none yet). */
  lastIterationSampleMs = -1;
  previousIterationSampleMs = -1;
  /** Whether a sampled iteration is open, to be closed at the next read. */
  sampleOpen = false;
  openStartMs = 0;
  openWaitMs = 0;
  lastBusyMs = 0;
  lastWaitMs = 0;
  /** Whether the loop is iterating (between an iteration() read and stopped()). */
  running = false;
  /** Time of the last accounting read, and the waiting reported since. */
  lastReadMs = 0;
  waitSinceReadMs = 0;
  busyMs = 0;
  waitingMs = 0;
  readonly phaseTotalMs: Float64Array = new Float64Array(5);
  readonly phaseMaxMs: Float64Array = new Float64Array(5);
  readonly phaseCount: Float64Array = new Float64Array(5);

  // --- queues ---
  readonly depthCurrent: Float64Array = new Float64Array(5);
  readonly depthMax: Float64Array = new Float64Array(5);
  readonly depthAverage: Float64Array = new Float64Array(5);
  /** Peaks reported since the last depths() sample. */
  readonly depthPeak: Float64Array = new Float64Array(5);
  depthSamples = 0;
  /** Whether depthPeak holds anything since the last sample. */
  peaked = false;

  // --- rolling windows ---
  readonly originMs: number;
  readonly callbacksWindow: RollingSum;
  readonly busyWindow: RollingSum;
  readonly waitWindow: RollingSum;
  /** Callbacks already added to `callbacksWindow`. */
  flushedCallbacks = 0;
  /** Busy and waiting time accounted but not yet added to the windows and totals. */
  pendingBusyMs = 0;
  pendingWaitMs = 0;
  /** End of the window slot the pending sums belong to. */
  slotEndMs: number;

  /** xorshift32 state for the sampling jitter (seeded: runs are reproducible). */
  #rng = 0x9e3779b9;

  /**
   * Makes a recorder reading `clock`, starting now.
   *
   * @param clock The loop's clock.
   * @param options Sampling, slow-callback reporting, top-N size, error route.
   */
  constructor(clock: Clock, options: MetricsRecorderOptions = {}) {
    const { samplePeriod, slowCallbackMs, onSlowCallback, topN, onError } = options;
    for (
      const [name, value] of [["samplePeriod", samplePeriod], ["slowCallbackMs", slowCallbackMs], [
        "topN",
        topN,
      ]] as const
    ) {
      if (value !== undefined && typeof value !== "number") {
        throw new TypeError(
          `Cannot enable metrics as ${name} must be a number: current value is ${describe(value)}`,
        );
      }
    }
    if (
      samplePeriod !== undefined &&
      !(Number.isInteger(samplePeriod) && samplePeriod >= 1 && samplePeriod <= MAX_SAMPLE_PERIOD)
    ) {
      throw new RangeError(
        `Cannot enable metrics as samplePeriod must be an integer in [1, ${MAX_SAMPLE_PERIOD}]: current value is ${
          describe(samplePeriod)
        }`,
      );
    }
    if (
      slowCallbackMs !== undefined &&
      !(typeof slowCallbackMs === "number" && Number.isFinite(slowCallbackMs) &&
        slowCallbackMs >= 0)
    ) {
      throw new RangeError(
        `Cannot enable metrics as slowCallbackMs must be a finite number >= 0: current value is ${
          describe(slowCallbackMs)
        }`,
      );
    }
    if (onSlowCallback !== undefined && typeof onSlowCallback !== "function") {
      throw new TypeError(
        `Cannot enable metrics as onSlowCallback must be a function: current value is ${
          describe(onSlowCallback)
        }`,
      );
    }
    if (topN !== undefined && !(Number.isInteger(topN) && topN >= 0 && topN <= 100)) {
      throw new RangeError(
        `Cannot enable metrics as topN must be an integer in [0, 100]: current value is ${
          describe(topN)
        }`,
      );
    }
    if (onError !== undefined && typeof onError !== "function") {
      throw new TypeError(
        `Cannot enable metrics as onError must be a function: current value is ${
          describe(onError)
        }`,
      );
    }
    this.clock = clock;
    // Asking for slow-callback reports without a threshold means asyncio's default, 100 ms.
    this.slowCallbackMs = slowCallbackMs ??
      (onSlowCallback !== undefined ? DEFAULT_SLOW_CALLBACK_MS : null);
    this.onSlowCallback = onSlowCallback;
    this.onError = onError;
    this.topN = topN ?? DEFAULT_TOP_N;
    this.timeAll = this.slowCallbackMs !== null || clock.virtual === true || samplePeriod === 1;
    this.mode = this.timeAll ? MODE_EVERY : samplePeriod !== undefined ? MODE_FIXED : MODE_ADAPTIVE;
    this.fixedPeriod = this.mode === MODE_FIXED ? samplePeriod! : 1;
    // Adaptive mode times the very first callback, then widens the gap as it learns the rate.
    this.meanGap = this.fixedPeriod;
    this.gap = this.countdown = this.#jitter(this.meanGap);
    this.originMs = clock.now();
    this.callbacksWindow = new RollingSum(this.originMs);
    this.busyWindow = new RollingSum(this.originMs);
    this.waitWindow = new RollingSum(this.originMs);
    this.slotEndMs = (Math.floor(this.originMs / 1000) + 1) * 1000;
  }

  /** xorshift32: a uniform 32-bit unsigned integer. */
  #random(): number {
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x;
    return x >>> 0;
  }

  /** A gap uniform in [mean - floor(mean / 2), mean + floor(mean / 2)]: mean `mean`, no aliasing. */
  #jitter(mean: number): number {
    const half = mean >>> 1;
    return half === 0 ? mean : mean - half + (this.#random() % (2 * half + 1));
  }

  // ------------------------------------------------------------------------------------------------
  // Per callback

  /**
   * Call just before running a callback. Returns its start time (ms) if this callback is to be
   * timed, else -1. Untimed: one decrement and a compare.
   */
  begin(): number {
    if (--this.countdown !== 0) return -1;
    return this.#sampleStart();
  }

  /** Reads the clock for a timed callback and picks the gap to the next one. */
  #sampleStart(): number {
    const nowMs = this.clock.now();
    let mean = this.meanGap;
    if (this.mode === MODE_ADAPTIVE) {
      // Loop time per callback over the last gap (clock reads, idle time and all) sets the next
      // gap to about SAMPLE_INTERVAL_MS; it at most doubles per sample so that one fast stretch
      // does not make the next slow one invisible, and it shrinks at once.
      const last = this.lastSampleMs;
      if (last >= 0) {
        const perCallbackMs = (nowMs - last) / this.gap;
        const target = perCallbackMs > 0 ? SAMPLE_INTERVAL_MS / perCallbackMs : MAX_SAMPLE_PERIOD;
        mean = target < 2 * mean ? Math.max(1, Math.round(target)) : 2 * mean;
        if (mean > MAX_SAMPLE_PERIOD) mean = MAX_SAMPLE_PERIOD;
        this.meanGap = mean;
      }
      this.lastSampleMs = nowMs;
    }
    // This sample stands for the `gap` callbacks since the previous one; end() reads it.
    this.weight = this.gap;
    this.gap = this.countdown = this.#jitter(mean);
    return nowMs;
  }

  /**
   * Call just after a callback ran (also when it threw), with what {@linkcode begin} returned.
   * Counts it; if timed, records its duration, reports it when slow, and ranks it for the top-N.
   *
   * @param kind KIND_TASK, KIND_MICROTASK, KIND_TIMER, KIND_IMMEDIATE or KIND_FD.
   * @param startMs What `begin()` returned.
   * @param callback The callback (its name labels it when `label` is undefined).
   * @param label The label given at scheduling time, if any.
   */
  end(
    kind: number,
    startMs: number,
    callback: { readonly name: string },
    label: string | undefined,
  ): void {
    this.counts[kind]++;
    if (startMs >= 0) this.timed(kind, startMs, callback, label);
  }

  /**
   * How many of the next `limit` callbacks are not to be timed: the loop may run that many with no
   * per-callback metrics work at all (its metrics-off loop), count them with {@linkcode count},
   * then run the next one with begin()/end() (it will be timed). Consumes them from the countdown.
   * 0 when every callback is timed.
   */
  skip(limit: number): number {
    let n = this.countdown - 1;
    if (n > limit) n = limit;
    if (n <= 0) return 0;
    this.countdown -= n;
    return n;
  }

  /**
   * Hands back `n` callbacks that {@linkcode skip} reserved but that did not run as reserved: the
   * phase ended early, or other callbacks (a microtask checkpoint) run before the rest of them.
   * Without it the next timed callback would come early yet stand for a whole gap, and a phase
   * that reserves more than it runs (the timers pass) would time what follows it instead.
   */
  unskip(n: number): void {
    this.countdown += n;
  }

  /** Counts `n` callbacks of `kind` that ran without end() (the loop's per-phase bulk count). */
  count(kind: number, n: number): void {
    this.counts[kind] += n;
  }

  /**
   * Records a timed callback without counting it (pair with {@linkcode count}): call only when
   * begin() returned `startMs >= 0`. Arguments as for {@linkcode end}.
   */
  timed(
    kind: number,
    startMs: number,
    callback: { readonly name: string },
    label: string | undefined,
  ): void {
    let durationMs = this.clock.now() - startMs;
    if (!(durationMs > 0)) durationMs = 0;
    this.durations[kind].record(durationMs, this.weight);
    const slowMs = this.slowCallbackMs;
    const isSlow = slowMs !== null && durationMs >= slowMs;
    if (!isSlow && !(durationMs > this.topFloorMs && this.topN > 0)) return;
    const name = label ?? (callback.name || "anonymous");
    const kindName = KIND_NAMES[kind];
    if (this.topN > 0 && durationMs > this.topFloorMs) {
      this.#rank(kindName, durationMs, name, startMs);
    }
    if (isSlow) {
      this.slowCount++;
      const report = this.onSlowCallback;
      if (report !== undefined) {
        const info: SlowCallbackInfo = { kind: kindName, durationMs, label: name, atMs: startMs };
        try {
          report(info);
        } catch (error) {
          if (this.onError === undefined) throw error;
          this.onError(error);
        }
      }
    }
  }

  /** Keeps the `topN` slowest, one entry per kind and label (its worst run). */
  #rank(kind: CallbackKind, durationMs: number, label: string, atMs: number): void {
    const top = this.top;
    let slot = -1;
    for (let i = 0; i < top.length; i++) {
      if (top[i].label === label && top[i].kind === kind) {
        slot = i;
        break;
      }
    }
    if (slot >= 0) {
      const entry = top[slot];
      if (durationMs <= entry.durationMs) return;
      entry.durationMs = durationMs;
      entry.atMs = atMs;
    } else if (top.length < this.topN) {
      top.push({ kind, durationMs, label, atMs });
    } else {
      // Full and new: replace the fastest entry (this one beat it: durationMs > topFloorMs).
      let min = 0;
      for (let i = 1; i < top.length; i++) if (top[i].durationMs < top[min].durationMs) min = i;
      top[min] = { kind, durationMs, label, atMs };
    }
    if (top.length < this.topN) return;
    let floor = top[0].durationMs;
    for (let i = 1; i < top.length; i++) if (top[i].durationMs < floor) floor = top[i].durationMs;
    this.topFloorMs = floor;
  }

  /**
   * Records a sampled timer fire: `latenessMs` = when its callback starts minus its deadline. Call
   * it after a `begin()` that returned a start time: the fire stands for the timers the sample
   * skipped (its weight), as durations do, so counts and percentiles stay unbiased.
   */
  timerFired(latenessMs: number): void {
    this.lateness.record(latenessMs, this.weight);
  }

  // ------------------------------------------------------------------------------------------------
  // Per iteration

  /**
   * Call at the start of every iteration. Returns -1 for most: run the iteration exactly as without
   * metrics. On a sampled iteration it returns the start time it read: call
   * {@linkcode depths} and time each phase with {@linkcode phase}. The clock is read only on
   * sampled iterations and on the one after each (to close it); every iteration on a virtual
   * clock or when everything is timed.
   */
  beginIteration(): number {
    if (--this.iterationCountdown !== 0) return -1;
    return this.#iterationRead(this.clock.now());
  }

  /**
   * {@linkcode beginIteration} for a loop that reads the clock at every iteration start anyway:
   * pass that reading. Returns true on a sampled iteration (call depths() and phase()).
   */
  iteration(startMs: number): boolean {
    if (--this.iterationCountdown !== 0) return false;
    return this.#iterationRead(startMs) !== -1;
  }

  #iterationRead(nowMs: number): number {
    const calls = this.iterationCountdownSet - this.iterationCountdown;
    this.iterationsCounted += calls;
    this.iterationsSinceSample += calls;
    this.#account(nowMs);
    this.running = true;
    if (
      nowMs - this.lastSampleMs > STALE_SAMPLE_MS && this.countdown > 1 &&
      this.mode === MODE_ADAPTIVE
    ) {
      // No timed callback for a while: callbacks got slower than the gap assumed. Time the next
      // one (it stands for the callbacks since the last sample).
      this.gap -= this.countdown - 1;
      this.countdown = 1;
    }
    if (this.sampleOpen) {
      // The read after a sampled iteration: close it. The next sample is `gap` iterations after
      // it, and this is the first of those.
      this.#closeSample(nowMs);
      const gap = this.#iterationGap(nowMs);
      if (gap > 1) {
        this.iterationCountdown = this.iterationCountdownSet = gap - 1;
        return -1;
      }
    }
    // A sampled iteration: read again at the next one to close it.
    this.#openSample(nowMs);
    this.iterationCountdown = this.iterationCountdownSet = 1;
    return nowMs;
  }

  /** Draws the gap from the last sampled iteration to the next, adapting it to the iteration rate. */
  #iterationGap(nowMs: number): number {
    if (this.timeAll) return 1;
    // Loop time per iteration from the previous sampled iteration's start to now (the gap before
    // the sample just closed, and that sample) sets the next gap to about
    // ITERATION_SAMPLE_INTERVAL_MS: it at most doubles per sample, and shrinks at once.
    const previous = this.previousIterationSampleMs;
    const perIterationMs = previous >= 0
      ? (nowMs - previous) / (this.iterationWeight + 1)
      : nowMs - this.lastIterationSampleMs;
    const mean = this.iterationMeanGap;
    const target = perIterationMs > 0
      ? ITERATION_SAMPLE_INTERVAL_MS / perIterationMs
      : MAX_SAMPLE_PERIOD;
    let next = target < 2 * mean ? Math.max(1, Math.round(target)) : 2 * mean;
    if (next > MAX_SAMPLE_PERIOD) next = MAX_SAMPLE_PERIOD;
    this.iterationMeanGap = next;
    return this.#jitter(next);
  }

  #openSample(nowMs: number): void {
    this.sampleOpen = true;
    this.openStartMs = nowMs;
    this.openWaitMs = 0;
    // It stands for the iterations since the previous sampled one (itself included).
    this.iterationWeight = this.iterationsSinceSample > 0 ? this.iterationsSinceSample : 1;
    this.iterationsSinceSample = 0;
    this.previousIterationSampleMs = this.lastIterationSampleMs;
    this.lastIterationSampleMs = nowMs;
    this.sampledIterations++;
  }

  #closeSample(endMs: number): void {
    this.sampleOpen = false;
    let spanMs = endMs - this.openStartMs;
    if (!(spanMs > 0)) spanMs = 0;
    const waitMs = this.openWaitMs < spanMs ? this.openWaitMs : spanMs;
    const busyMs = spanMs - waitMs;
    this.lag.record(busyMs, this.iterationWeight);
    this.lastBusyMs = busyMs;
    this.lastWaitMs = waitMs;
  }

  /**
   * Accounts the time since the last read as busy or waiting (waiting = what waited() reported,
   * capped at the span), into the slot of `nowMs`. Nothing while the loop is stopped.
   */
  #account(nowMs: number): void {
    if (nowMs >= this.slotEndMs) {
      this.#flushPending();
      this.slotEndMs = (Math.floor(nowMs / 1000) + 1) * 1000;
    }
    if (this.running) {
      let spanMs = nowMs - this.lastReadMs;
      if (!(spanMs > 0)) spanMs = 0;
      const waitMs = this.waitSinceReadMs < spanMs ? this.waitSinceReadMs : spanMs;
      this.pendingBusyMs += spanMs - waitMs;
      this.pendingWaitMs += waitMs;
    }
    this.waitSinceReadMs = 0;
    this.lastReadMs = nowMs;
  }

  /**
   * Call when run() starts, before its first iteration: from here the loop's time counts, so a
   * wait before that iteration (a virtual-clock jump to the first deadline) is waiting time.
   */
  started(nowMs: number): void {
    if (this.running) return;
    this.#account(nowMs);
    this.running = true;
  }

  /**
   * Call when the loop stops iterating (run() returns, runOnce() ends), so that the time until the
   * next iteration counts as neither busy nor waiting.
   */
  stopped(nowMs: number): void {
    if (!this.running) return;
    this.#account(nowMs);
    if (this.sampleOpen) this.#closeSample(nowMs);
    this.running = false;
    // Read at the next iteration, whatever the countdown said (keeping the iteration count).
    const calls = this.iterationCountdownSet - this.iterationCountdown;
    this.iterationCountdownSet = calls + 1;
    this.iterationCountdown = 1;
  }

  /**
   * Moves what was accounted since the last flush (the current slot's) into the rolling windows
   * and the totals. Runs once per slot (1 s) and per snapshot.
   */
  #flushPending(): void {
    const slotMs = this.slotEndMs - 1000;
    const c = this.counts;
    const total = c[0] + c[1] + c[2] + c[3] + c[4];
    this.callbacksWindow.add(slotMs, total - this.flushedCallbacks);
    this.flushedCallbacks = total;
    this.busyWindow.add(slotMs, this.pendingBusyMs);
    this.waitWindow.add(slotMs, this.pendingWaitMs);
    this.busyMs += this.pendingBusyMs;
    this.waitingMs += this.pendingWaitMs;
    this.pendingBusyMs = 0;
    this.pendingWaitMs = 0;
  }

  /** Records the duration of one phase of a sampled iteration (see {@linkcode iteration}). */
  phase(phase: number, durationMs: number): void {
    if (!(durationMs > 0)) durationMs = 0;
    this.phaseTotalMs[phase] += durationMs;
    this.phaseCount[phase]++;
    if (durationMs > this.phaseMaxMs[phase]) this.phaseMaxMs[phase] = durationMs;
  }

  /**
   * Adds time the loop spent parked (poller wait, idle, a virtual-clock jump) to the waiting time,
   * rather than the busy time. Any number of calls per iteration.
   */
  waited(durationMs: number): void {
    if (durationMs > 0) {
      this.waitSinceReadMs += durationMs;
      if (this.sampleOpen) this.openWaitMs += durationMs;
    }
  }

  /** Samples the queue depths, on sampled iterations (see {@linkcode iteration}). */
  depths(
    tasks: number,
    microtasks: number,
    timers: number,
    immediates: number,
    watches: number,
  ): void {
    if (this.peaked) {
      // Fold in the peaks reported since the last sample.
      const p = this.depthPeak;
      if (p[0] > tasks) tasks = p[0];
      if (p[1] > microtasks) microtasks = p[1];
      if (p[2] > timers) timers = p[2];
      if (p[3] > immediates) immediates = p[3];
      if (p[4] > watches) watches = p[4];
      p.fill(0);
      this.peaked = false;
    }
    const cur = this.depthCurrent;
    const max = this.depthMax;
    const avg = this.depthAverage;
    cur[0] = tasks;
    cur[1] = microtasks;
    cur[2] = timers;
    cur[3] = immediates;
    cur[4] = watches;
    if (tasks > max[0]) max[0] = tasks;
    if (microtasks > max[1]) max[1] = microtasks;
    if (timers > max[2]) max[2] = timers;
    if (immediates > max[3]) max[3] = immediates;
    if (watches > max[4]) max[4] = watches;
    if (this.depthSamples++ === 0) {
      avg.set(cur);
      return;
    }
    avg[0] += (tasks - avg[0]) * DEPTH_EWMA_ALPHA;
    avg[1] += (microtasks - avg[1]) * DEPTH_EWMA_ALPHA;
    avg[2] += (timers - avg[2]) * DEPTH_EWMA_ALPHA;
    avg[3] += (immediates - avg[3]) * DEPTH_EWMA_ALPHA;
    avg[4] += (watches - avg[4]) * DEPTH_EWMA_ALPHA;
  }

  /**
   * Reports a momentary depth of queue `q` between samples (e.g. the microtask queue at the start of
   * a large checkpoint): it raises the max at once, and the next depths() sample uses it if it is
   * larger.
   */
  peak(q: number, depth: number): void {
    if (depth > this.depthPeak[q]) {
      this.depthPeak[q] = depth;
      this.peaked = true;
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Snapshot

  /** A detached, JSON-safe picture of everything recorded, as of `nowMs`. */
  snapshot(nowMs: number): MetricsSnapshot {
    if (this.running) this.#account(nowMs);
    this.#flushPending();
    const merged = this.#merged;
    merged.reset();
    const byKind = {} as Record<CallbackKind, DurationStats>;
    let counted = 0;
    for (let k = 0; k < KIND_NAMES.length; k++) {
      merged.add(this.durations[k]);
      byKind[KIND_NAMES[k]] = this.#stats(this.durations[k], this.counts[k]);
      counted += this.counts[k];
    }
    const queues = {} as Record<(typeof QUEUE_NAMES)[number], QueueDepth>;
    for (let q = 0; q < QUEUE_NAMES.length; q++) {
      queues[QUEUE_NAMES[q]] = {
        current: this.depthCurrent[q],
        max: Math.max(this.depthMax[q], this.depthPeak[q]),
        average: this.depthAverage[q],
      };
    }
    let phaseSumMs = 0;
    for (let p = 0; p < PHASE_NAMES.length; p++) phaseSumMs += this.phaseTotalMs[p];
    const phases = {} as Record<(typeof PHASE_NAMES)[number], PhaseTime>;
    for (let p = 0; p < PHASE_NAMES.length; p++) {
      const n = this.phaseCount[p];
      phases[PHASE_NAMES[p]] = {
        meanMs: n === 0 ? 0 : this.phaseTotalMs[p] / n,
        maxMs: this.phaseMaxMs[p],
        share: phaseSumMs > 0 ? this.phaseTotalMs[p] / phaseSumMs : 0,
      };
    }
    const busyWindowMs = this.busyWindow.sum(nowMs);
    const waitWindowMs = this.waitWindow.sum(nowMs);
    const lastSpanMs = this.lastBusyMs + this.lastWaitMs;
    const totalSpanMs = this.busyMs + this.waitingMs;
    const iterations = this.iterationsCounted + this.iterationCountdownSet -
      this.iterationCountdown;
    const slowest = this.top
      .map((e): SlowCallbackInfo => ({
        kind: e.kind,
        durationMs: e.durationMs,
        label: e.label,
        atMs: e.atMs,
      }))
      .sort((a, b) => b.durationMs - a.durationMs || a.atMs - b.atMs);
    return {
      atMs: nowMs,
      uptimeMs: Math.max(0, nowMs - this.originMs),
      sampling: {
        mode: MODE_NAMES[this.mode],
        period: this.meanGap,
        timed: merged.samples,
        rate: counted > 0 ? Math.min(1, merged.samples / counted) : 0,
      },
      callbacks: { ...this.#stats(merged, counted), byKind },
      timerLateness: this.#stats(this.lateness, this.counts[KIND_TIMER]),
      lag: this.#stats(this.lag, iterations),
      utilization: {
        last: lastSpanMs > 0 ? this.lastBusyMs / lastSpanMs : 0,
        rolling: busyWindowMs + waitWindowMs > 0 ? busyWindowMs / (busyWindowMs + waitWindowMs) : 0,
        total: totalSpanMs > 0 ? this.busyMs / totalSpanMs : 0,
        busyMs: this.busyMs,
        waitingMs: this.waitingMs,
      },
      queues,
      throughput: {
        callbacksPerSecond: this.callbacksWindow.perSecond(nowMs),
        windowMs: this.callbacksWindow.coveredMs(nowMs),
      },
      iterations,
      timedIterations: this.sampledIterations,
      phases,
      slowCallbackMs: this.slowCallbackMs,
      slowCallbacks: this.slowCount,
      slowest,
    };
  }

  #stats(h: LogHistogram, count: number): DurationStats {
    const q = this.#quantiles;
    h.quantilesInto(QUANTILES, q);
    return {
      count,
      samples: h.samples,
      meanMs: h.meanMs(),
      p50Ms: q[0],
      p90Ms: q[1],
      p95Ms: q[2],
      p99Ms: q[3],
      maxMs: h.maxMs,
    };
  }
}
