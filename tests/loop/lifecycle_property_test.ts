// Model-based property test of the loop's life cycle (idle, running, closing, closed): random
// interleavings of every kind of work (tasks, microtasks, timeouts, intervals, immediates, watches
// on a FakePoller, LoopPromise reactions, sleep() and all()) with run(), runOnce(), stop() and
// close(), from outside and from inside callbacks (onClose callbacks included), with callbacks that
// throw, with and without onError. A simple model checks that nothing accepted is lost: every item
// is refused with a LoopClosedError when it is scheduled, or runs (the right number of times), or is
// cleared by the test, or is listed as disposed in the CloseReport, or (helpers) settles; that
// nothing runs once close() has resolved, that close() and run() always settle, and that every
// error a callback throws reaches onError, run(), runOnce() or close() exactly once.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Loop, LoopClosedError, LoopStateError, type Timer, VirtualClock } from "../../mod.ts";
import type { CloseReport, Watch } from "../../loop/mod.ts";
import { FakePoller, READABLE, WRITABLE } from "../../poller/mod.ts";
import { all, type LoopPromise } from "../../promise/mod.ts";
import { sleep } from "../../timers/mod.ts";

// ---------------------------------------------------------------- programs

/** What a callback does when it runs: some actions, then maybe a throw. */
interface Cb {
  throws: boolean;
  acts: Act[];
}

type Act =
  | { k: "submit" | "micro" | "immediate"; cb: Cb }
  | { k: "timeout" | "interval"; d: number; cb: Cb }
  | { k: "clear"; i: number }
  | { k: "watch"; fd: number; cb: Cb; onClose: Cb | null }
  | { k: "unwatch"; i: number }
  | { k: "ready"; fd: number; r: number }
  | { k: "script"; fd: number; dt: number; r: number }
  | { k: "promise" }
  | { k: "resolve"; i: number }
  | { k: "then"; i: number; cb: Cb }
  | { k: "sleep"; d: number }
  | { k: "all"; i: number }
  | { k: "stop" | "close" | "runOnce" }
  // Top level only:
  | { k: "run" | "awaitRun" | "turn" };

const FDS = [3, 4, 5];

function cbArb(depth: number, throwable = true): fc.Arbitrary<Cb> {
  return fc.record({
    // One callback in six throws.
    throws: throwable ? fc.nat(5).map((n) => n === 0) : fc.constant(false),
    acts: depth > 0 ? fc.array(actArb(depth - 1, false), { maxLength: 3 }) : fc.constant([]),
  });
}

function actArb(depth: number, topLevel: boolean): fc.Arbitrary<Act> {
  const cb = fc.constant(null).chain(() => cbArb(depth));
  const quietCb = fc.constant(null).chain(() => cbArb(depth, false));
  const delay = fc.constantFrom(0, 0, 1, 5, 10, 50);
  const index = fc.nat(20);
  const fd = fc.constantFrom(...FDS);
  const readiness = fc.constantFrom(0, READABLE, WRITABLE, READABLE | WRITABLE);
  const common: fc.Arbitrary<Act>[] = [
    fc.record({
      k: fc.constantFrom("submit" as const, "micro" as const, "immediate" as const),
      cb,
    }),
    fc.record({ k: fc.constantFrom("timeout" as const, "interval" as const), d: delay, cb }),
    fc.record({ k: fc.constant("clear" as const), i: index }),
    fc.record({
      k: fc.constant("watch" as const),
      fd,
      cb,
      onClose: fc.option(cb, { nil: null }),
    }),
    fc.record({ k: fc.constant("unwatch" as const), i: index }),
    fc.record({ k: fc.constant("ready" as const), fd, r: readiness }),
    fc.record({ k: fc.constant("script" as const), fd, dt: delay, r: readiness }),
    fc.constant({ k: "promise" as const }),
    fc.record({ k: fc.constant("resolve" as const), i: index }),
    // Reactions never throw: a throw would reject their derived promise, a separate story.
    fc.record({ k: fc.constant("then" as const), i: index, cb: quietCb }),
    fc.record({ k: fc.constant("sleep" as const), d: delay }),
    fc.record({ k: fc.constant("all" as const), i: index }),
    fc.constantFrom(
      { k: "stop" as const },
      { k: "close" as const },
      { k: "runOnce" as const },
    ),
  ];
  if (!topLevel) return fc.oneof(...common);
  return fc.oneof(
    ...common,
    fc.constantFrom({ k: "run" as const }, { k: "awaitRun" as const }, { k: "turn" as const }),
    fc.constantFrom({ k: "run" as const }, { k: "awaitRun" as const }),
  );
}

const programArb = fc.record({
  onError: fc.boolean(),
  acts: fc.array(actArb(2, true), { minLength: 1, maxLength: 14 }),
});

// ---------------------------------------------------------------- the model and its checks

type Kind = "task" | "micro" | "timeout" | "interval" | "immediate" | "watch" | "onClose" | "then";

interface Item {
  id: number;
  kind: Kind;
  runs: number;
  accepted: boolean;
  /** Cleared (timers, immediates) or closed (watches) by the test. */
  cleared: boolean;
  /** runs when cleared. */
  runsAtClear: number;
  /** Cleared while close() cancelled timers (which may have listed it already). */
  clearedClosing: boolean;
  deadlineMs: number;
  handle?: Timer | Watch;
  fd?: number;
  /** A watch's onClose item. */
  onClose?: Item;
  /** A reaction's promise index. */
  promise?: number;
}

interface Helper {
  kind: "sleep" | "all";
  /** loop.state when it was made. */
  madeIn: string;
  outcome: "pending" | "fulfilled" | "rejected";
  reason?: unknown;
}

const BUDGET = 40; // callbacks per run(): then the test calls stop() (intervals run forever)
const REAL_LIMIT_MS = 2_000; // run() or close() not settled after this long: a hang

/** Resolves after one turn of Deno's timers. */
function macroTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Awaits `promise`, failing if it has not settled within `REAL_LIMIT_MS`. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung`)), REAL_LIMIT_MS);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

class Tagged extends Error {}

async function check(program: { onError: boolean; acts: Act[] }): Promise<void> {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  const delivered: unknown[] = [];
  const loop = new Loop({
    clock,
    poller,
    ...(program.onError ? { onError: (error: unknown) => void delivered.push(error) } : {}),
  });
  const items: Item[] = [];
  const helpers: Helper[] = [];
  const promises: { promise: LoopPromise<number>; resolve: (n: number) => void }[] = [];
  const resolved: boolean[] = [];
  const thrown: Tagged[] = [];
  const violations: string[] = [];
  let closeCalled = false;
  let closePromise: Promise<CloseReport> | null = null;
  let closeResolved = false;
  let runP: Promise<void> | null = null;
  let runSettled = false;
  /** A run() is under way (its body starts synchronously, before it returns its promise). */
  let runActive = false;
  let runFailure: unknown = undefined;
  let steps = 0;
  let stopIssued = false;
  let depthInCallback = 0;

  const deliver = (error: unknown): void => {
    if (error instanceof AggregateError) {
      for (const each of error.errors) deliver(each);
      return;
    }
    delivered.push(error);
  };

  const wrap = (item: Item, cb: Cb): () => void => () => {
    if (closeResolved && item.kind !== "then") {
      violations.push(`${item.kind} #${item.id} ran after close() resolved`);
    }
    if (item.cleared && item.kind !== "then" && item.kind !== "onClose") {
      violations.push(`${item.kind} #${item.id} ran after it was cleared/closed`);
    }
    if (item.kind === "timeout" && loop.now() < item.deadlineMs) {
      violations.push(`timeout #${item.id} ran early (${loop.now()} < ${item.deadlineMs})`);
    }
    item.runs++;
    steps++;
    depthInCallback++;
    try {
      for (const act of cb.acts) doAct(act);
    } finally {
      depthInCallback--;
    }
    if (steps > BUDGET && runActive) {
      stopIssued = true;
      loop.stop();
    }
    if (cb.throws) {
      const error = new Tagged(`thrown by ${item.kind} #${item.id}`);
      thrown.push(error);
      throw error;
    }
  };

  const newItem = (kind: Kind, extra: Partial<Item> = {}): Item => {
    const item: Item = {
      id: items.length,
      kind,
      runs: 0,
      accepted: false,
      cleared: false,
      runsAtClear: 0,
      clearedClosing: false,
      deadlineMs: 0,
      ...extra,
    };
    items.push(item);
    return item;
  };

  /** Scheduling that the loop refuses once close() was called. */
  const schedule = (item: Item, accept: () => void, refusedFrom: boolean): void => {
    try {
      accept();
      item.accepted = true;
      if (refusedFrom) violations.push(`${item.kind} #${item.id} accepted after close()`);
    } catch (error) {
      if (!(error instanceof LoopClosedError)) throw error;
      if (!refusedFrom) violations.push(`${item.kind} #${item.id} refused before close()`);
    }
  };

  const pick = <T>(list: T[], i: number): T | undefined =>
    list.length === 0 ? undefined : list[i % list.length];

  const doAct = (act: Act): void => {
    switch (act.k) {
      case "submit": {
        const item = newItem("task");
        schedule(item, () => loop.submit(wrap(item, act.cb)), closeCalled);
        break;
      }
      case "micro": {
        const item = newItem("micro");
        schedule(item, () => loop.queueMicrotask(wrap(item, act.cb)), loop.state === "closed");
        break;
      }
      case "immediate": {
        const item = newItem("immediate");
        schedule(item, () => {
          item.handle = loop.setImmediate(wrap(item, act.cb));
        }, closeCalled);
        break;
      }
      case "timeout":
      case "interval": {
        const item = newItem(act.k === "timeout" ? "timeout" : "interval");
        schedule(item, () => {
          item.deadlineMs = loop.now() + act.d;
          const callback = wrap(item, act.cb);
          Object.defineProperty(callback, "name", { value: `m${item.id}` });
          item.handle = act.k === "timeout"
            ? loop.setTimeout(callback, act.d)
            : loop.setInterval(callback, act.d);
        }, closeCalled);
        break;
      }
      case "clear": {
        const timers = items.filter((item) =>
          item.accepted && (item.kind === "timeout" || item.kind === "interval" ||
            item.kind === "immediate")
        );
        const item = pick(timers, act.i);
        if (item === undefined) break;
        if (!item.cleared) {
          item.cleared = true;
          item.runsAtClear = item.runs;
          item.clearedClosing = closeCalled;
        }
        if (item.kind === "immediate") loop.clearImmediate(item.handle as Timer);
        else loop.clearTimeout(item.handle as Timer);
        break;
      }
      case "watch": {
        const open = items.find((item) =>
          item.kind === "watch" && item.accepted && !item.cleared && item.fd === act.fd &&
          !(item.handle as Watch).closed
        );
        const item = newItem("watch", { fd: act.fd });
        const onClose = act.onClose === null ? undefined : newItem("onClose");
        item.onClose = onClose;
        try {
          schedule(item, () => {
            item.handle = loop.watch(
              act.fd,
              { readable: true, writable: true },
              wrap(item, act.cb),
              onClose === undefined ? undefined : { onClose: wrap(onClose, act.onClose!) },
            );
            if (onClose !== undefined) onClose.accepted = true;
          }, closeCalled);
          if (open !== undefined && item.accepted) {
            violations.push(`fd ${act.fd} watched twice`);
          }
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists) || open === undefined) throw error;
        }
        break;
      }
      case "unwatch": {
        const item = pick(items.filter((item) => item.kind === "watch" && item.accepted), act.i);
        if (item === undefined) break;
        const watch = item.handle as Watch;
        if (!watch.closed) {
          item.cleared = true;
          item.runsAtClear = item.runs;
        }
        watch.close();
        break;
      }
      case "ready":
        poller.setReadiness(act.fd, act.r);
        break;
      case "script":
        poller.script(clock.now() + act.dt, act.fd, act.r);
        break;
      case "promise": {
        const { promise, resolve } = loop.withResolvers<number>();
        promises.push({ promise, resolve });
        resolved.push(false);
        break;
      }
      case "resolve": {
        if (promises.length === 0) break;
        const i = act.i % promises.length;
        promises[i].resolve(i);
        resolved[i] = true;
        break;
      }
      case "then": {
        if (promises.length === 0) break;
        const i = act.i % promises.length;
        const item = newItem("then", { promise: i, accepted: true });
        promises[i].promise.then(wrap(item, act.cb));
        break;
      }
      case "sleep": {
        const helper: Helper = { kind: "sleep", madeIn: loop.state, outcome: "pending" };
        helpers.push(helper);
        sleep(act.d, { loop }).then(
          () => void (helper.outcome = "fulfilled"),
          (reason) => {
            helper.outcome = "rejected";
            helper.reason = reason;
          },
        );
        break;
      }
      case "all": {
        if (promises.length === 0) break;
        const helper: Helper = { kind: "all", madeIn: loop.state, outcome: "pending" };
        helpers.push(helper);
        all([promises[act.i % promises.length].promise], { loop }).then(
          () => void (helper.outcome = "fulfilled"),
          (reason) => {
            helper.outcome = "rejected";
            helper.reason = reason;
          },
        );
        break;
      }
      case "stop":
        if (runActive) stopIssued = true;
        loop.stop();
        break;
      case "close": {
        closeCalled = true;
        if (runActive) stopIssued = true;
        const promise = loop.close();
        if (closePromise === null) {
          closePromise = promise;
          // Settled (and its rejection handled) whenever it settles.
          promise.then(() => void (closeResolved = true), () => void (closeResolved = true));
        } else if (promise !== closePromise) violations.push("close() returned a new promise");
        break;
      }
      case "runOnce": {
        const inCallback = depthInCallback > 0;
        const closedBefore = closeCalled;
        try {
          loop.runOnce();
          if (inCallback || closedBefore) {
            violations.push(`runOnce() ran (in callback: ${inCallback}, state ${loop.state})`);
          }
        } catch (error) {
          if (error instanceof LoopClosedError) {
            if (!closedBefore) violations.push("runOnce() refused as closed before close()");
          } else if (error instanceof LoopStateError) {
            if (!inCallback && !runActive) {
              violations.push("runOnce() refused as running while not running");
            }
          } else deliver(error);
        }
        break;
      }
      case "run": {
        if (runActive) {
          // A second run() rejects at once.
          loop.run().then(
            () => violations.push("a second run() resolved"),
            (error) => {
              if (!(error instanceof LoopStateError)) violations.push(`second run(): ${error}`);
            },
          );
          break;
        }
        steps = 0;
        stopIssued = false;
        runSettled = false;
        runActive = true;
        runFailure = undefined;
        const wasClosed = closeCalled && loop.state === "closed";
        const promise = loop.run();
        runP = promise;
        promise.then(
          () => {
            runSettled = true;
            runActive = false;
            if (wasClosed) violations.push("run() on a closed loop resolved");
            // run() ends early only when stopped, closed or failed.
            if (!stopIssued && !closeCalled && loop.aliveReasons().length !== 0) {
              violations.push(
                `run() returned with work left: ${JSON.stringify(loop.aliveReasons())}`,
              );
            }
          },
          (error) => {
            runSettled = true;
            runActive = false;
            if (error instanceof LoopClosedError) {
              if (!wasClosed && !closeCalled) violations.push("run() refused as closed");
            } else {
              runFailure = error;
              deliver(error);
            }
          },
        );
        break;
      }
      case "awaitRun":
        return void pendingAwaits.push(awaitRun());
      case "turn":
        return void pendingAwaits.push(macroTurn());
    }
  };

  /** Waits for run() to settle; a run() still parked after a turn (a ref'd watch nothing makes
   * ready) is stopped, and must then return. */
  const awaitRun = async (): Promise<void> => {
    const promise = runP;
    if (promise === null || runSettled) return;
    await macroTurn();
    if (!runSettled) {
      stopIssued = true;
      loop.stop();
    }
    await within(promise.catch(() => {}), "run() after stop()");
  };

  const pendingAwaits: Promise<void>[] = [];
  for (const act of program.acts) {
    doAct(act);
    // Top-level waits happen between commands.
    while (pendingAwaits.length !== 0) await pendingAwaits.shift();
    await null;
  }
  await awaitRun();
  assert.equal(runP === null || runSettled, true, "run() settled");
  void runFailure;

  // Close (again: the same promise), and wait for it.
  closeCalled = true;
  const finalClose = loop.close();
  if (closePromise !== null && finalClose !== closePromise) {
    violations.push("close() returned a new promise");
  }
  let report: CloseReport | null = null;
  try {
    report = await within(finalClose, "close()");
  } catch (error) {
    if (error instanceof Error && error.message === "close() hung") throw error;
    if (program.onError) violations.push(`close() rejected despite onError: ${error}`);
    deliver(error);
  }
  closeResolved = true;
  assert.equal(loop.state, "closed");
  // Native turns: sleep() results, reactions on the closed loop, untracking.
  await macroTurn();
  await macroTurn();

  // Every item: refused, ran, cleared, or disposed by close().
  const stillPending: string[] = [];
  const maybePending: string[] = [];
  for (const item of items) {
    if (!item.accepted) {
      if (item.runs !== 0) violations.push(`refused ${item.kind} #${item.id} ran`);
      continue;
    }
    switch (item.kind) {
      case "task":
      case "micro":
        if (item.runs !== 1) violations.push(`${item.kind} #${item.id} ran ${item.runs} times`);
        break;
      case "immediate":
        if (item.runs !== (item.cleared ? item.runsAtClear : 1)) {
          violations.push(`immediate #${item.id} ran ${item.runs} times (cleared ${item.cleared})`);
        }
        break;
      case "timeout":
        if (item.runs > 1) violations.push(`timeout #${item.id} ran ${item.runs} times`);
        if (item.runs === 0 && !item.cleared) stillPending.push(`m${item.id}`);
        if (item.runs === 0 && item.clearedClosing) maybePending.push(`m${item.id}`);
        break;
      case "interval":
        if (!item.cleared) stillPending.push(`m${item.id}`);
        if (item.clearedClosing) maybePending.push(`m${item.id}`);
        break;
      case "watch":
        if (item.onClose !== undefined && item.onClose.runs !== 1) {
          violations.push(`onClose of watch #${item.id} ran ${item.onClose.runs} times`);
        }
        if (!(item.handle as Watch).closed) violations.push(`watch #${item.id} still open`);
        break;
      case "then": {
        const expected = resolved[item.promise!] ? 1 : 0;
        if (item.runs !== expected) {
          violations.push(`reaction #${item.id} ran ${item.runs} times, expected ${expected}`);
        }
        break;
      }
    }
  }
  if (report !== null) {
    const cancelledTimers = report.items
      .filter((entry) =>
        (entry.kind === "timer" || entry.kind === "interval") && /^m\d+$/.test(entry.label)
      )
      .map((entry) => entry.label)
      .filter((label) => !maybePending.includes(label)).sort();
    assert.deepEqual(cancelledTimers, stillPending.sort(), "timers cancelled by close()");
    const openWatches = items.filter((item) =>
      item.kind === "watch" && item.accepted && !item.cleared
    ).length;
    assert.equal(report.disposed.watches, openWatches, "watches closed by close()");
    assert.equal(
      report.disposed.rejected,
      report.items.filter((entry) => entry.disposition === "rejected").length,
    );
  }
  for (const [i, helper] of helpers.entries()) {
    if (helper.outcome === "pending") {
      violations.push(`${helper.kind}() #${i} made while ${helper.madeIn} never settled`);
    } else if (helper.outcome === "rejected" && !(helper.reason instanceof LoopClosedError)) {
      violations.push(`${helper.kind}() #${i} rejected with ${helper.reason}`);
    }
  }
  // Every error thrown by a callback reached onError, run(), runOnce() or close() exactly once.
  const deliveredTagged = delivered.filter((error) => error instanceof Tagged);
  const unexpected = delivered.filter((error) => !(error instanceof Tagged));
  if (unexpected.length !== 0) violations.push(`unexpected errors: ${unexpected.join("; ")}`);
  for (const error of thrown) {
    const count = deliveredTagged.filter((each) => each === error).length;
    if (count !== 1) violations.push(`"${error.message}" delivered ${count} times`);
  }
  assert.deepEqual(violations, []);
}

Deno.test("life cycle: nothing accepted is lost, nothing runs after close(), nothing hangs", async () => {
  await fc.assert(fc.asyncProperty(programArb, check), {
    numRuns: 200,
    seed: 20240601,
  });
});
