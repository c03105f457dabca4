// The reference model both timer property tests check the loop against: a plain list scanned for
// the minimum, with the loop's rules spelled out (FIFO ties, a pass fires only timers armed before
// it began, intervals re-armed by their `missed` mode).
import type { MissedTickBehavior } from "../../loop/mod.ts";

interface ModelTimer<A> {
  deadlineMs: number;
  sequence: number;
  delayMs: number;
  repeat: boolean;
  status: "pending" | "fired" | "cleared";
  /** ref()'d (the default) or unref()'d: kept whatever the status, counted only while pending. */
  refed: boolean;
  onFire: A[];
}

/** Timers carrying test-defined actions (`A`) to apply when they fire. */
export class TimerModel<A> {
  timers: ModelTimer<A>[] = [];
  nextSequence = 0;
  /** `index@passMs` for every firing, in order. */
  log: string[] = [];
  readonly missed: MissedTickBehavior;
  /** Applies a fired timer's actions, at the pass time (the loop's cached time). */
  readonly onFired: (actions: A[], passMs: number) => void;

  constructor(
    onFired: (actions: A[], passMs: number) => void,
    missed: MissedTickBehavior = "skip",
  ) {
    this.onFired = onFired;
    this.missed = missed;
  }

  arm(baseMs: number, delayMs: number, repeat: boolean, onFire: A[]): void {
    this.timers.push({
      deadlineMs: baseMs + delayMs,
      sequence: this.nextSequence++,
      delayMs,
      repeat,
      status: "pending",
      refed: true,
      onFire,
    });
  }

  /**
   * Cancels or refreshes timer `target` (modulo the count). By handle (even targets) a fired timer
   * is cleared too, so refresh() leaves it alone; by id (odd targets) only a pending one: a fired
   * timer's id is stale, and clearing it a no-op.
   */
  cancelOrRefresh(kind: "cancel" | "refresh", target: number, baseMs: number): void {
    const timer = this.timers[target % Math.max(1, this.timers.length)];
    if (timer === undefined) return;
    if (kind === "cancel") {
      if (target % 2 === 0 || timer.status === "pending") timer.status = "cleared";
    } else if (timer.status !== "cleared") {
      timer.status = "pending";
      timer.deadlineMs = baseMs + timer.delayMs;
      timer.sequence = this.nextSequence++;
    }
  }

  /** ref() (`refed`) or unref() on timer `target` (modulo the count), whatever its status. */
  setRef(target: number, refed: boolean): void {
    const timer = this.timers[target % Math.max(1, this.timers.length)];
    if (timer !== undefined) timer.refed = refed;
  }

  /** How many timers keep the loop alive: the pending, ref'd ones. */
  refedPending(): number {
    return this.timers.filter((timer) => timer.status === "pending" && timer.refed).length;
  }

  nextDeadline(): number {
    let best = Infinity;
    for (const timer of this.timers) {
      if (timer.status === "pending" && timer.deadlineMs < best) best = timer.deadlineMs;
    }
    return best;
  }

  /** One timers phase at `passMs`. */
  pass(passMs: number): void {
    const limit = this.nextSequence;
    for (;;) {
      let best: ModelTimer<A> | undefined;
      for (const timer of this.timers) {
        if (timer.status !== "pending" || timer.deadlineMs > passMs || timer.sequence >= limit) {
          continue;
        }
        if (
          best === undefined || timer.deadlineMs < best.deadlineMs ||
          (timer.deadlineMs === best.deadlineMs && timer.sequence < best.sequence)
        ) best = timer;
      }
      if (best === undefined) return;
      if (best.repeat) {
        let nextMs = best.deadlineMs + best.delayMs;
        if (nextMs <= passMs) {
          if (this.missed === "delay") nextMs = passMs + best.delayMs;
          else if (this.missed === "skip") {
            nextMs = best.deadlineMs +
              (Math.floor((passMs - best.deadlineMs) / best.delayMs) + 1) * best.delayMs;
          }
        }
        best.deadlineMs = nextMs;
        best.sequence = this.nextSequence++;
      } else best.status = "fired";
      this.log.push(`${this.timers.indexOf(best)}@${passMs}`);
      this.onFired(best.onFire, passMs);
    }
  }
}

/** Anything that counts its ref'd pending timers (the model, and the loop under test). */
interface CountsRefed {
  refedPending(): number;
}

/**
 * A check that notes in `log` where the loop's liveness disagrees with the model's: the ref'd
 * pending timers `real` lists (aliveReasons()) against the model's count, and runOnce()'s answer
 * (`alive`, if given).
 */
export function livenessCheck(
  log: string[],
  model: CountsRefed,
  real: CountsRefed,
): (when: string, alive?: boolean) => void {
  return (when, alive) => {
    const expected = model.refedPending();
    const listed = real.refedPending();
    if (listed !== expected) log.push(`${when}: ${listed} listed, ${expected} expected`);
    if (alive !== undefined && alive !== (expected !== 0)) {
      log.push(`${when}: runOnce() said ${alive}, ${expected} ref'd pending`);
    }
  };
}
