// Unhandled-rejection reporting compared with what Deno does for native promises: reported at the
// end of the checkpoint whatever the loop does next, the handled report carrying the reason.
import assert from "node:assert/strict";
import { Loop, VirtualClock } from "../../loop/mod.ts";
import { LoopPromise } from "../../promise/mod.ts";
import { FakePoller } from "../../poller/mod.ts";

/** Runs `count` loop tasks, each submitting the next, then calls `last`. */
function chainTasks(loop: Loop, count: number, last: () => void): void {
  let left = count;
  const step = (): void => {
    if (--left === 0) last();
    else loop.submit(step);
  };
  loop.submit(step);
}

Deno.test("a rejection handled in a later loop task is reported, then reported handled", async () => {
  // As natively (rejected in one macrotask, caught in the next): reported at the end of the
  // checkpoint, whether the next task runs in the same batch or after a host turn. It used to depend
  // on how many tasks fit in one batch (wall time): 1,000 chained tasks were never reported.
  for (const count of [1, 1000]) {
    const log: string[] = [];
    const error = new Error(`caught ${count} tasks later`);
    let rejected!: LoopPromise<never>;
    const loop = new Loop({
      clock: new VirtualClock(),
      onUnhandledRejection: (reason, promise) => {
        assert.equal(reason, error);
        assert.equal(promise, rejected);
        log.push("unhandled");
      },
      onRejectionHandled: (promise) => {
        assert.equal(promise, rejected);
        log.push("handled");
      },
    });
    loop.submit(() => {
      rejected = LoopPromise.reject(error);
      chainTasks(loop, count, () => {
        log.push("catch");
        rejected.catch(() => {});
      });
    });
    await loop.run();
    await loop.close();
    assert.deepEqual(log, ["unhandled", "catch", "handled"], `with ${count} tasks`);
  }
});

Deno.test("awaiting a rejected LoopPromise from an async function is not reported", async () => {
  // `await` attaches its handler from a native microtask: that still counts as handling, also
  // when the loop has more tasks to run in the same batch.
  const reported: unknown[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    onUnhandledRejection: (reason) => reported.push(reason),
  });
  const caught: unknown[] = [];
  const error = new Error("awaited");
  loop.submit(() => {
    (async () => {
      try {
        await LoopPromise.reject(error);
      } catch (e) {
        caught.push(e);
      }
    })();
    chainTasks(loop, 100, () => {});
  });
  await loop.run();
  await loop.close();
  assert.deepEqual(reported, []);
  assert.deepEqual(caught, [error]);
});

Deno.test("an explicit loop fails fast: no later task runs after an unhandled rejection", async () => {
  // As a Deno process ends after the macrotask that left a rejection unhandled.
  const loop = new Loop({ clock: new VirtualClock() });
  const error = new Error("fail fast");
  let ran = 0;
  const step = (): void => {
    ran++;
    if (loop.state === "running") loop.submit(step); // close() runs what is queued, once
  };
  loop.submit(() => {
    LoopPromise.reject(error);
    loop.submit(step);
  });
  await assert.rejects(loop.run(), (e) => e === error);
  assert.equal(ran, 0);
  await loop.close();
});

Deno.test("the default loop's rejectionhandled event carries the reason, as Deno's does", async () => {
  const events: { type: string; reason: unknown; promise: unknown }[] = [];
  const listener = (event: Event) => {
    const e = event as PromiseRejectionEvent;
    events.push({ type: e.type, reason: e.reason, promise: e.promise });
    event.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", listener);
  globalThis.addEventListener("rejectionhandled", listener);
  try {
    const error = new Error("handled late");
    const p = LoopPromise.reject(error); // on the default loop
    await new Promise((resolve) => setTimeout(resolve, 10));
    p.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(events.filter((e) => e.promise === p), [
      { type: "unhandledrejection", reason: error, promise: p },
      { type: "rejectionhandled", reason: error, promise: p },
    ]);
  } finally {
    globalThis.removeEventListener("unhandledrejection", listener);
    globalThis.removeEventListener("rejectionhandled", listener);
  }
});

Deno.test("onRejectionHandled runs after the catch() that handled the rejection returns, not inside it", async () => {
  const log: string[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    onUnhandledRejection: () => log.push("unhandled"),
    onRejectionHandled: () => log.push("handled"),
  });
  let rejected!: LoopPromise<never>;
  loop.submit(() => {
    rejected = LoopPromise.reject(new Error("late"));
  });
  await loop.run();
  assert.deepEqual(log, ["unhandled"]);
  loop.submit(() => {
    rejected.catch(() => log.push("caught"));
    log.push("catch() returned");
  });
  await loop.run();
  // As natively: the reaction runs in this checkpoint, the handled report after it.
  assert.deepEqual(log, ["unhandled", "catch() returned", "caught", "handled"]);
  await loop.close();
});

Deno.test("close(): a pending rejection check is judged at once; one made by an onClose callback reports after the close", async () => {
  const clock = new VirtualClock();
  const log: string[] = [];
  const loop: Loop = new Loop({
    clock,
    poller: new FakePoller({ clock }),
    onUnhandledRejection: (reason) => void log.push(`unhandled ${reason} while ${loop.state}`),
  });
  loop.watch(5, { readable: true }, () => {}, {
    onClose: () => void LoopPromise.reject("late", { loop }),
  });
  LoopPromise.reject("early", { loop });
  const report = await loop.close();
  log.push("close() resolved");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(log, [
    "unhandled early while closing",
    "close() resolved",
    "unhandled late while closed",
  ]);
  // Only the check pending when close() began was disposed of (judged at once).
  assert.deepEqual(report.items.filter((item) => item.kind === "promise.rejectionCheck"), [
    {
      kind: "promise.rejectionCheck",
      label: "pending unhandled-rejection check",
      disposition: "cancelled",
    },
  ]);
});

Deno.test("a reported rejection adopted by another LoopPromise is reported handled", async () => {
  // Resolving a promise with a rejected one hands the rejection over: the source is handled.
  const log: string[] = [];
  const error = new Error("adopted later");
  let source!: LoopPromise<never>;
  let adopter!: LoopPromise<never>;
  const loop = new Loop({
    clock: new VirtualClock(),
    onUnhandledRejection: (reason, promise) => {
      assert.equal(reason, error);
      log.push(promise === source ? "unhandled source" : "unhandled other");
    },
    onRejectionHandled: (promise) =>
      log.push(promise === source ? "handled source" : "handled other"),
  });
  loop.submit(() => {
    source = LoopPromise.reject(error);
    loop.setTimeout(() => {
      log.push("adopt");
      adopter = new LoopPromise<never>((resolve) => resolve(source), { loop });
      adopter.catch(() => {});
    }, 10);
  });
  await loop.run();
  await loop.close();
  assert.equal(adopter.reason, error);
  assert.deepEqual(log, ["unhandled source", "adopt", "handled source"]);
});
