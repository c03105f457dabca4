// Random schedules, cancels, refreshes, unref()/ref() and id reads, from outside the loop and from
// inside timer callbacks (a timer clearing one due later in the same pass, say), at random virtual
// times: the loop must fire exactly what a simple reference model fires, in the same passes and
// order, with the callback and arguments each timer was given, never before a deadline, and count
// the same timers as keeping it alive. Each timer has its own callback; a pass fires the plainest
// timeouts from the store's copy of it without reading the timer (see TimerNode.payload), which
// unref(), an id read (it indexes the timer) or arguments must each turn off.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Loop, type Timer, VirtualClock } from "../../loop/mod.ts";
import { livenessCheck, TimerModel } from "./_timer_model.ts";

/** What a timer does when it fires: schedule a new timer, or cancel / refresh an existing one. */
type Action =
  | { kind: "schedule"; delayMs: number; withArgs: boolean }
  | { kind: "cancel"; target: number }
  | { kind: "refresh"; target: number }
  | { kind: "unref"; target: number }
  | { kind: "ref"; target: number }
  | { kind: "id"; target: number };

/** A step of the script: at `atMs`, apply `action` from outside the loop. */
interface Step {
  atMs: number;
  action: Action;
  /** Actions of the timer this step schedules (for "schedule"), applied when it fires. */
  onFire: Action[];
}

// Quarter-millisecond grid with few distinct values: fractional delays and many equal deadlines.
const delayArb = fc.integer({ min: 0, max: 24 }).map((quarters) => quarters / 4);
const targetArb = fc.nat(40);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("schedule" as const),
      delayMs: delayArb,
      withArgs: fc.nat(3).map((n) => n === 0),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("cancel" as const), target: targetArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("refresh" as const), target: targetArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unref" as const), target: targetArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("ref" as const), target: targetArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("id" as const), target: targetArb }) },
);
// Fixed, so that every run checks the same schedules (change it to explore others).
const SEED = 20_260_503;
const stepArb: fc.Arbitrary<Step> = fc.record({
  atMs: fc.integer({ min: 0, max: 40 }).map((quarters) => quarters / 4),
  action: actionArb,
  onFire: fc.array(actionArb, { maxLength: 3 }),
});

/** The reference model, driven by this test's actions. */
class Model extends TimerModel<Action> {
  constructor() {
    super((actions, passMs) => {
      for (const action of actions) this.apply(action, passMs);
    });
  }

  apply(action: Action, nowMs: number, onFire: Action[] = []): void {
    if (action.kind === "schedule") this.arm(nowMs, action.delayMs, false, onFire);
    else if (action.kind === "unref" || action.kind === "ref") {
      this.setRef(action.target, action.kind === "ref");
    } else if (action.kind !== "id") this.cancelOrRefresh(action.kind, action.target, nowMs);
  }
}

/** The system under test, driven through the same actions. */
class Real {
  clock = new VirtualClock();
  loop = new Loop({ clock: this.clock });
  handles: Timer[] = [];
  log: string[] = [];
  early: string[] = [];
  /** Callbacks called with arguments they were not given, ids that do not match their handle. */
  wrong: string[] = [];

  apply(action: Action, onFire: Action[] = []): void {
    if (action.kind === "schedule") {
      const index = this.handles.length;
      const deadlineMs = this.loop.now() + action.delayMs;
      let armedAtMs = deadlineMs;
      const callback = (...args: unknown[]) => {
        const nowMs = this.loop.now();
        if (nowMs < armedAtMs) this.early.push(`${index}@${nowMs} < ${armedAtMs}`);
        const expected = action.withArgs ? [index, "arg"] : [];
        if (JSON.stringify(args) !== JSON.stringify(expected)) {
          this.wrong.push(`${index} called with ${JSON.stringify(args)}`);
        }
        this.log.push(`${index}@${nowMs}`);
        for (const next of onFire) this.apply(next);
      };
      const handle = action.withArgs
        ? this.loop.setTimeout(callback, action.delayMs, index, "arg")
        : this.loop.setTimeout(callback, action.delayMs);
      // refresh() moves the deadline: keep the latest for the never-early check.
      const refresh = handle.refresh.bind(handle);
      handle.refresh = () => {
        armedAtMs = this.loop.now() + action.delayMs;
        return refresh();
      };
      this.handles.push(handle);
      return;
    }
    const handle = this.handles[action.target % Math.max(1, this.handles.length)];
    if (handle === undefined) return;
    if (action.kind === "cancel") {
      // Alternate between the handle and its id: both must work.
      if (action.target % 2 === 0) this.loop.clearTimeout(handle);
      else this.loop.clearTimeout(Number(handle));
    } else if (action.kind === "refresh") handle.refresh();
    else if (action.kind === "unref") handle.unref();
    else if (action.kind === "ref") handle.ref();
    else if (Number(handle) !== handle.id) this.wrong.push(`${Number(handle)} !== ${handle.id}`);
  }

  /** The timers `aliveReasons()` lists: the pending, ref'd ones. */
  refedPending(): number {
    return this.loop.aliveReasons().filter((reason) => reason.kind === "timer").length;
  }
}

Deno.test("random schedules, cancels and refreshes fire exactly like the reference model", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 40, size: "max" }), (unsorted) => {
      const steps = [...unsorted].sort((a, b) => a.atMs - b.atMs);
      const model = new Model();
      const real = new Real();
      // Runs passes at each deadline up to `untilMs` (both sides see the same pass times). A timer
      // that refreshes itself when it fires never ends: passes are budgeted.
      let passes = 0;
      // Liveness after each pass and step: what runOnce() reports (the loop's count of ref'd
      // timers) and what aliveReasons() lists (the store, read) must both match the model.
      const liveness: string[] = [];
      const checkLiveness = livenessCheck(liveness, model, real);
      const pass = (passMs: number) => {
        real.clock.set(passMs);
        const alive = real.loop.runOnce();
        model.pass(passMs);
        checkLiveness(`pass at ${passMs}`, alive);
      };
      const advance = (untilMs: number) => {
        for (;;) {
          const nextMs = model.nextDeadline();
          if (nextMs === Infinity || nextMs > untilMs || ++passes > 400) break;
          pass(Math.max(nextMs, real.clock.now()));
        }
        if (untilMs !== Infinity && untilMs > real.clock.now()) real.clock.set(untilMs);
      };
      for (const step of steps) {
        advance(step.atMs);
        const nowMs = real.clock.now();
        model.apply(step.action, nowMs, step.onFire);
        real.apply(step.action, step.onFire);
        checkLiveness(`after ${JSON.stringify(step.action)} at ${nowMs}`);
        // Sometimes a pass at an arbitrary time, due timers or not.
        if (step.onFire.length === 1) pass(nowMs);
      }
      advance(Infinity);
      assert.deepEqual(real.log, model.log);
      assert.deepEqual(real.early, []);
      assert.deepEqual(real.wrong, []);
      assert.deepEqual(liveness, []);
      if (passes <= 400) assert.equal(real.loop.aliveReasons().length, 0);
      void real.loop.close();
    }),
    { numRuns: 300, seed: SEED },
  );
});
