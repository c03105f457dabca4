// Random schedules, cancels and refreshes, from outside the loop and from inside timer callbacks,
// at random virtual times: the loop must fire exactly what a simple reference model fires, in the
// same passes and order, and never before a deadline.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Loop, type Timer, VirtualClock } from "../../loop/mod.ts";
import { TimerModel } from "./_timer_model.ts";

/** What a timer does when it fires: schedule a new timer, or cancel / refresh an existing one. */
type Action =
  | { kind: "schedule"; delayMs: number }
  | { kind: "cancel"; target: number }
  | { kind: "refresh"; target: number };

/** A step of the script: at `atMs`, apply `action` from outside the loop. */
interface Step {
  atMs: number;
  action: Action;
  /** Actions of the timer this step schedules (for "schedule"), applied when it fires. */
  onFire: Action[];
}

// Quarter-millisecond grid with few distinct values: fractional delays and many equal deadlines.
const delayArb = fc.integer({ min: 0, max: 24 }).map((quarters) => quarters / 4);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant("schedule" as const), delayMs: delayArb }),
  fc.record({ kind: fc.constant("cancel" as const), target: fc.nat(40) }),
  fc.record({ kind: fc.constant("refresh" as const), target: fc.nat(40) }),
);
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
    else this.cancelOrRefresh(action.kind, action.target, nowMs);
  }
}

/** The system under test, driven through the same actions. */
class Real {
  clock = new VirtualClock();
  loop = new Loop({ clock: this.clock });
  handles: Timer[] = [];
  log: string[] = [];
  early: string[] = [];

  apply(action: Action, onFire: Action[] = []): void {
    if (action.kind === "schedule") {
      const index = this.handles.length;
      const deadlineMs = this.loop.now() + action.delayMs;
      let armedAtMs = deadlineMs;
      const handle = this.loop.setTimeout(() => {
        const nowMs = this.loop.now();
        if (nowMs < armedAtMs) this.early.push(`${index}@${nowMs} < ${armedAtMs}`);
        this.log.push(`${index}@${nowMs}`);
        for (const next of onFire) this.apply(next);
      }, action.delayMs);
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
    } else handle.refresh();
  }
}

Deno.test("random schedules, cancels and refreshes fire exactly like the reference model", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 40 }), (unsorted) => {
      const steps = [...unsorted].sort((a, b) => a.atMs - b.atMs);
      const model = new Model();
      const real = new Real();
      // Runs passes at each deadline up to `untilMs` (both sides see the same pass times). A timer
      // that refreshes itself when it fires never ends: passes are budgeted.
      let passes = 0;
      const advance = (untilMs: number) => {
        for (;;) {
          const nextMs = model.nextDeadline();
          if (nextMs === Infinity || nextMs > untilMs || ++passes > 400) break;
          const passMs = Math.max(nextMs, real.clock.now());
          real.clock.set(passMs);
          real.loop.runOnce();
          model.pass(passMs);
        }
        if (untilMs !== Infinity && untilMs > real.clock.now()) real.clock.set(untilMs);
      };
      for (const step of steps) {
        advance(step.atMs);
        const nowMs = real.clock.now();
        model.apply(step.action, nowMs, step.onFire);
        real.apply(step.action, step.onFire);
        // Sometimes a pass at an arbitrary time, due timers or not.
        if (step.onFire.length === 1) {
          real.loop.runOnce();
          model.pass(nowMs);
        }
      }
      advance(Infinity);
      assert.deepEqual(real.log, model.log);
      assert.deepEqual(real.early, []);
      if (passes <= 400) assert.equal(real.loop.aliveReasons().length, 0);
      void real.loop.close();
    }),
    { numRuns: 300 },
  );
});
