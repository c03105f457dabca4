// TaskScope: structured concurrency on a VirtualClock loop.
import assert from "node:assert/strict";
import { Loop, LoopClosedError, VirtualClock } from "../../loop/mod.ts";
import {
  LoopPromise,
  type TaskOutcome,
  TaskScope,
  TaskScopeClosedError,
} from "../../promise/mod.ts";

function virtualLoop(): Loop {
  return new Loop({ clock: new VirtualClock(), onUnhandledRejection: () => {} });
}

/** A cancellable virtual sleep that resolves with `value` (or rejects with it when `fail`). */
function work<T>(loop: Loop, log: string[], name: string, ms: number, value: T, fail = false) {
  return (signal: AbortSignal): LoopPromise<T> =>
    new LoopPromise<T>((resolve, reject) => {
      const timer = loop.setTimeout(() => {
        log.push(`${fail ? "fail" : "done"} ${name} at ${loop.now()}`);
        fail ? reject(value) : resolve(value);
      }, ms);
      signal.addEventListener("abort", () => {
        loop.clearTimeout(timer);
        log.push(`abort ${name} at ${loop.now()}`);
        reject(signal.reason);
      });
    }, { loop });
}

/** Runs `body` as a loop task and the loop to completion. */
async function onLoop(loop: Loop, body: () => void): Promise<void> {
  loop.submit(body);
  await loop.run();
}

Deno.test("TaskScope waits for all tasks on dispose and reports nothing without failures", async () => {
  const loop = virtualLoop();
  const log: string[] = [];
  let disposed!: LoopPromise<void>;
  let scope!: TaskScope<number>;
  let sizeAfterSpawn = -1;
  await onLoop(loop, () => {
    scope = new TaskScope<number>({ loop });
    scope.spawn(work(loop, log, "a", 30, 1));
    scope.spawn(work(loop, log, "b", 10, 2));
    scope.spawn(() => 3);
    sizeAfterSpawn = scope.size;
    disposed = scope[Symbol.asyncDispose]();
    disposed.then(() => log.push(`disposed at ${loop.now()}`));
  });
  assert.equal(sizeAfterSpawn, 3);
  assert.equal(scope.size, 0);
  assert.equal(disposed.state, "fulfilled");
  assert.deepEqual(log, ["done b at 10", "done a at 30", "disposed at 30"]);
  assert.throws(() => scope.spawn(() => 4), TaskScopeClosedError);
  await loop.close();
});

Deno.test("TaskScope: the first failure aborts the siblings; dispose rejects with AggregateError", async () => {
  const loop = virtualLoop();
  const log: string[] = [];
  const failure = new Error("task b failed");
  let disposed!: LoopPromise<void>;
  let slow!: LoopPromise<number>;
  let scope!: TaskScope<number>;
  await onLoop(loop, () => {
    scope = new TaskScope<number>({ loop, label: "fan-out" });
    slow = scope.spawn(work(loop, log, "slow", 1_000, 1));
    scope.spawn(work(loop, log, "b", 20, failure as never, true));
    scope.spawn(work(loop, log, "c", 5, 3));
    disposed = scope[Symbol.asyncDispose]();
  });
  assert.deepEqual(log, ["done c at 5", "fail b at 20", "abort slow at 20"]);
  assert.equal(loop.now(), 20);
  const error = disposed.reason as AggregateError;
  assert.ok(error instanceof AggregateError);
  assert.deepEqual(error.errors, [failure]); // the cancellation is not a failure
  assert.match(error.message, /1 task of the scope "fan-out" failed/);
  assert.equal(slow.state, "rejected");
  assert.equal((scope.signal.reason as Error & { cause?: unknown }).cause, failure);
  assert.throws(() => scope.spawn(() => 1), TaskScopeClosedError); // disposed
  // Spawning into an aborted scope starts nothing.
  const aborted = new TaskScope({ loop });
  aborted.abort();
  let started = false;
  const late = aborted.spawn(() => {
    started = true;
    return 1;
  });
  assert.equal(started, false);
  assert.equal(late.state, "rejected");
  await loop.close();
});

Deno.test("TaskScope: failFast: false collects failures without aborting", async () => {
  const loop = virtualLoop();
  const log: string[] = [];
  const e1 = new Error("e1");
  const e2 = new Error("e2");
  let disposed!: LoopPromise<void>;
  await onLoop(loop, () => {
    const scope = new TaskScope({ loop, failFast: false });
    scope.spawn(work(loop, log, "x", 10, e1, true));
    scope.spawn(work(loop, log, "y", 50, "ok"));
    scope.spawn(() => {
      throw e2;
    });
    disposed = scope[Symbol.asyncDispose]();
  });
  assert.deepEqual(log, ["fail x at 10", "done y at 50"]);
  assert.deepEqual((disposed.reason as AggregateError).errors, [e2, e1]);
  await loop.close();
});

Deno.test("TaskScope: next() yields outcomes as tasks finish; taken failures are not repeated", async () => {
  const loop = virtualLoop();
  const log: string[] = [];
  const failure = new Error("taken");
  const outcomes: (TaskOutcome<string> | undefined)[] = [];
  let disposed!: LoopPromise<void>;
  await onLoop(loop, () => {
    const scope = new TaskScope<string>({ loop, failFast: false });
    scope.spawn(work(loop, log, "late", 30, "late"));
    scope.spawn(work(loop, log, "early", 10, "early"));
    scope.spawn(work(loop, log, "broken", 20, failure as never, true));
    const pump = (): void => {
      scope.next().then((outcome) => {
        outcomes.push(outcome);
        if (outcome !== undefined) pump();
        else disposed = scope[Symbol.asyncDispose]();
      });
    };
    pump();
  });
  assert.deepEqual(outcomes, [
    { status: "fulfilled", value: "early", id: 1 },
    { status: "rejected", reason: failure, id: 2 },
    { status: "fulfilled", value: "late", id: 0 },
    undefined,
  ]);
  assert.equal(disposed.state, "fulfilled");
  await loop.close();
});

Deno.test("TaskScope: await using and for await on the default loop", async () => {
  const finished: string[] = [];
  const wait = (ms: number, v: string, signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => resolve(v), ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    });
  {
    await using scope = new TaskScope<string>();
    scope.spawn((signal) => wait(5, "five", signal)).then((v) => finished.push(v));
    scope.spawn((signal) => wait(1, "one", signal)).then((v) => finished.push(v));
    const seen: string[] = [];
    for await (const outcome of scope) {
      if (outcome.status === "fulfilled") seen.push(outcome.value);
    }
    assert.deepEqual(seen, ["one", "five"]);
  }
  assert.deepEqual(finished, ["one", "five"]);
});

Deno.test("TaskScope: abort() cancels without failing; the outer signal cancels and rejects", async () => {
  const loop = virtualLoop();
  const log: string[] = [];
  let byUser!: LoopPromise<void>;
  let byOuter!: LoopPromise<void>;
  const controller = new AbortController();
  const outerReason = new Error("request cancelled");
  await onLoop(loop, () => {
    const scope = new TaskScope({ loop });
    scope.spawn(work(loop, log, "u", 100, 1));
    loop.setTimeout(() => scope.abort(), 10);
    byUser = scope[Symbol.asyncDispose]();
    const outer = new TaskScope({ loop, signal: controller.signal });
    outer.spawn(work(loop, log, "o", 100, 1));
    loop.setTimeout(() => controller.abort(outerReason), 20);
    byOuter = outer[Symbol.asyncDispose]();
  });
  assert.deepEqual(log, ["abort u at 10", "abort o at 20"]);
  assert.equal(byUser.state, "fulfilled");
  assert.equal(byOuter.reason, outerReason);
  await loop.close();
});

Deno.test("TaskScope: closing the loop aborts the tasks and rejects the waiters", async () => {
  const loop = virtualLoop();
  const log: string[] = [];
  const scope = new TaskScope({ loop });
  const task = scope.spawn(work(loop, log, "pending", 1_000_000, 1));
  const next = scope.next();
  const disposed = scope[Symbol.asyncDispose]();
  loop.runOnce();
  const report = await loop.close();
  assert.ok(next.reason instanceof LoopClosedError);
  assert.ok(disposed.reason instanceof LoopClosedError);
  assert.ok(scope.signal.reason instanceof LoopClosedError);
  assert.equal(task.state, "rejected");
  assert.deepEqual(log, ["abort pending at 0"]);
  assert.ok(
    report.items.some((i) => i.kind === "promise.TaskScope" && i.disposition === "rejected"),
  );
  // The aborted task has finished: it no longer counts as running.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(scope.size, 0);
});

Deno.test("TaskScope validates its arguments", () => {
  const loop = virtualLoop();
  assert.throws(() => new TaskScope({ loop, signal: "no" as never }), TypeError);
  assert.throws(() => new TaskScope(42 as never), TypeError);
  const scope = new TaskScope({ loop });
  assert.throws(() => scope.spawn(42 as never), TypeError);
  return loop.close().then(() => {});
});

Deno.test("a TaskScope on a closed loop starts no task: spawn() rejects with LoopClosedError, disposal too", async () => {
  const loop = virtualLoop();
  await loop.close();
  const scope = new TaskScope({ loop, label: "late" });
  let called = false;
  const spawned = scope.spawn(() => {
    called = true;
    return new LoopPromise(() => {}, { loop });
  });
  assert.equal(called, false);
  assert.equal(scope.size, 0);
  const outcome = await toNativeOutcome(spawned);
  assert.ok(outcome instanceof LoopClosedError, String(outcome));
  assert.equal(
    (outcome as Error).message,
    'Cannot spawn a task as the loop "loop" of the scope "late" is closed: current state is closed',
  );
  assert.ok(scope.signal.reason instanceof LoopClosedError, String(scope.signal.reason));
  const disposed = await toNativeOutcome(scope[Symbol.asyncDispose]());
  assert.ok(disposed instanceof LoopClosedError, String(disposed));
});

Deno.test("TaskScope: a scope idle when its loop closed refuses later tasks (never runs them)", async () => {
  const loop = virtualLoop();
  const scope = new TaskScope<number>({ loop });
  const first = scope.spawn(() => 1);
  await loop.run(); // the first task finished: the scope is idle (untracked) when the loop closes
  assert.equal(first.state, "fulfilled");
  assert.deepEqual(scope.next().value, { status: "fulfilled", value: 1, id: 0 });
  await loop.close();
  let called = false;
  const late = scope.spawn(() => {
    called = true;
    return 2;
  });
  const lateOutcome = await toNativeOutcome(late);
  assert.equal(called, false);
  assert.ok(lateOutcome instanceof LoopClosedError, String(lateOutcome));
  // The refusal is not lost if the spawn's promise is ignored: next() and disposal report it.
  const next = await toNativeOutcome(scope.next());
  assert.ok(next instanceof LoopClosedError, String(next));
  const disposed = await toNativeOutcome(scope[Symbol.asyncDispose]());
  assert.ok(disposed instanceof LoopClosedError, String(disposed));
  // Later spawns are refused the same way (the scope's signal carries the reason).
  let calledAgain = false;
  const again = await toNativeOutcome(
    new TaskScope({ loop }).spawn(() => {
      calledAgain = true;
    }),
  );
  assert.equal(calledAgain, false);
  assert.ok(again instanceof LoopClosedError, String(again));
});

Deno.test("TaskScope: next() and disposal settle after the loop closed (idle scope, or made after)", async () => {
  const loop = virtualLoop();
  const idle = new TaskScope({ loop });
  await loop.close();
  const made = new TaskScope({ loop }); // a closed loop is no bad argument: nothing is refused yet
  for (const scope of [idle, made]) {
    assert.equal(await toNativeOutcome(scope.next()), "fulfilled");
    assert.equal(scope.next().state, "fulfilled");
    assert.equal(scope[Symbol.asyncDispose]().state, "fulfilled");
  }
  {
    await using scope = new TaskScope({ loop });
    assert.equal(scope.size, 0);
  } // resolves: nothing was spawned
});

function toNativeOutcome(p: LoopPromise<unknown>): Promise<unknown> {
  return new Promise((resolve) => p.then(() => resolve("fulfilled"), resolve));
}

/** Counts the listeners added to `signal` and not removed since; returns the counter. */
function countListeners(signal: AbortSignal): () => number {
  let listeners = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<AbortSignal["addEventListener"]>) => {
    listeners++;
    add(...args);
  }) as AbortSignal["addEventListener"];
  signal.removeEventListener = ((...args: Parameters<AbortSignal["removeEventListener"]>) => {
    listeners--;
    remove(...args);
  }) as AbortSignal["removeEventListener"];
  return () => listeners;
}

Deno.test("TaskScope: disposal detaches from the outer signal, even with no task running", async () => {
  // A long-lived outer signal (a server's shutdown signal, say) must not collect one listener per
  // scope that ever used it.
  const loop = virtualLoop();
  const controller = new AbortController();
  const outer = controller.signal;
  const listeners = countListeners(outer);
  const idle = new TaskScope({ loop, signal: outer });
  assert.equal(idle[Symbol.asyncDispose]().state, "fulfilled");
  const done = new TaskScope({ loop, signal: outer });
  done.spawn(() => 1);
  loop.runOnce(); // the task finishes before disposal
  assert.equal(done.size, 0);
  assert.equal(done[Symbol.asyncDispose]().state, "fulfilled");
  assert.equal(listeners(), 0);
  controller.abort();
  assert.equal(idle.signal.aborted, false);
  assert.equal(done.signal.aborted, false);
  await loop.close();
});

Deno.test("TaskScope: a failFast that is not a boolean, or a label that is not a string, is a TypeError", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  assert.throws(
    () => new TaskScope({ loop, failFast: "false" as never }),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        'Cannot create a TaskScope as failFast must be a boolean: current value is "false"',
  );
  assert.throws(
    () => new TaskScope({ loop, label: 7 as never }),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        "Cannot create a TaskScope as the label must be a string: current value is 7",
  );
  await loop.close();
});

Deno.test("TaskScope.spawn on a disposed scope throws TaskScopeClosedError (a state error, as loop.submit() on a closed loop), not TypeError", async () => {
  const loop = virtualLoop();
  const scope = new TaskScope({ loop, label: "workers" });
  await disposeIdle(loop, scope);
  let called = false;
  assert.throws(
    () =>
      scope.spawn(() => {
        called = true;
      }),
    (error: unknown) =>
      error instanceof TaskScopeClosedError && !(error instanceof TypeError) &&
      error.name === "TaskScopeClosedError" &&
      error.message ===
        'Cannot spawn a task as the scope "workers" is disposed: current state is closed',
  );
  assert.equal(called, false);
  // A bad argument is still a TypeError first.
  assert.throws(() => scope.spawn(42 as never), TypeError);
  const cause = new Error("why");
  assert.equal(new TaskScopeClosedError("closed", { cause }).cause, cause);
  assert.equal(new TaskScopeClosedError().message, "The TaskScope is closed");
  await loop.close();
});

/** Disposes of an idle scope on a loop that is not running. */
async function disposeIdle(loop: Loop, scope: TaskScope): Promise<void> {
  const disposal = scope[Symbol.asyncDispose]();
  await loop.run();
  assert.equal(disposal.state, "fulfilled");
}

Deno.test("TaskScope: after an explicit abort(), a later outer abort does not make disposal reject", async () => {
  // The scope was cancelled by its owner first; the outer signal aborted nothing left to abort.
  const loop = virtualLoop();
  const controller = new AbortController();
  let disposed!: LoopPromise<void>;
  let stubborn!: LoopPromise<number>;
  await onLoop(loop, () => {
    const scope = new TaskScope<number>({ loop, signal: controller.signal });
    // Ignores its signal: still running when the outer signal aborts.
    stubborn = scope.spawn(() =>
      new LoopPromise<number>((r) => loop.setTimeout(r, 100, 7), { loop })
    );
    loop.setTimeout(() => scope.abort(), 10);
    loop.setTimeout(() => controller.abort(new Error("outer")), 20);
    disposed = scope[Symbol.asyncDispose]();
  });
  assert.equal(stubborn.value, 7);
  assert.equal(disposed.state, "fulfilled");
  await loop.close();
});

Deno.test("TaskScope: a disposed scope detaches from the outer signal once its last task ends", async () => {
  const loop = virtualLoop();
  const controller = new AbortController();
  let scope!: TaskScope<number>;
  let disposed!: LoopPromise<void>;
  await onLoop(loop, () => {
    scope = new TaskScope<number>({ loop, signal: controller.signal });
    scope.spawn(work(loop, [], "t", 10, 1));
    disposed = scope[Symbol.asyncDispose](); // a task still runs: detached when it ends
  });
  assert.equal(disposed.state, "fulfilled");
  controller.abort(new Error("later"));
  assert.equal(scope.signal.aborted, false);
  await loop.close();
});

Deno.test("TaskScope: spawn() on a closed loop detaches from the outer signal", async () => {
  const loop = virtualLoop();
  await loop.close();
  const controller = new AbortController();
  const outer = controller.signal;
  const listeners = countListeners(outer);
  const scope = new TaskScope({ loop, signal: outer });
  assert.equal(listeners(), 1);
  const refused = scope.spawn(() => 1);
  assert.ok(refused.reason instanceof LoopClosedError);
  assert.equal(listeners(), 0);
});

Deno.test("TaskScope: the promise of a task refused by an aborted scope raises no unhandled rejection", async () => {
  const reported: unknown[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    onUnhandledRejection: (reason) => reported.push(reason),
  });
  let refused!: LoopPromise<number>;
  let started = false;
  await onLoop(loop, () => {
    const scope = new TaskScope<number>({ loop });
    scope.abort(new Error("cancelled"));
    refused = scope.spawn(() => {
      started = true;
      return 1;
    }); // left alone, as spawn()'s documentation allows
  });
  assert.equal(started, false);
  assert.equal((refused.reason as Error).message, "cancelled");
  assert.deepEqual(reported, []);
  await loop.close();
});
