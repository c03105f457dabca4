import assert from "node:assert/strict";
import {
  type CloseReport,
  type ErrorContext,
  Loop,
  LoopShutdownError,
  VirtualClock,
} from "../../mod.ts";
import { FakePoller } from "../../poller/mod.ts";

Deno.test("without onError the loop fails fast: run() rejects with the error, queued work stays", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const boom = new Error("boom");
  const log: string[] = [];
  loop.submit(() => {
    throw boom;
  });
  loop.submit(() => log.push("second"));
  await assert.rejects(loop.run(), (error) => error === boom);
  assert.deepEqual(log, []);
  assert.equal(loop.state, "idle");
  await loop.run();
  assert.deepEqual(log, ["second"]);
  await loop.close();
});

Deno.test("a microtask error fails fast too, after the checkpoint finishes", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  loop.submit(() => {
    loop.queueMicrotask(() => {
      throw new RangeError("in microtask");
    });
    loop.queueMicrotask(() => log.push("sibling microtask still runs"));
  });
  await assert.rejects(loop.run(), RangeError);
  assert.deepEqual(log, ["sibling microtask still runs"]);
  await loop.close();
});

Deno.test("errors sibling microtasks throw after the first are not dropped: run() rejects with all of them, in order", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const first = new RangeError("first");
  const second = new TypeError("second");
  loop.submit(() => {
    loop.queueMicrotask(() => {
      throw first;
    });
    loop.queueMicrotask(() => {
      throw second;
    });
  });
  await assert.rejects(loop.run(), (error: unknown) => {
    assert.ok(error instanceof AggregateError);
    assert.deepEqual(error.errors, [first, second]);
    assert.match(error.message, /^2 callbacks threw before the loop could stop; the first: first$/);
    return true;
  });
  // A single error is still thrown as itself, by runOnce() too.
  loop.submit(() => {
    throw first;
  });
  assert.throws(() => loop.runOnce(), (error: unknown) => error === first);
  await loop.close();
});

Deno.test("onError receives every error with its context and the loop goes on", async () => {
  const seen: Array<[unknown, ErrorContext]> = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    onError: (error, context) => seen.push([error, context]),
  });
  const errors = [new Error("t"), new Error("m"), new Error("timer"), new Error("i")];
  loop.submit(function failingTask() {
    throw errors[0];
  });
  loop.submit(() =>
    loop.queueMicrotask(function failingMicrotask() {
      throw errors[1];
    })
  );
  loop.setTimeout(function failingTimer() {
    throw errors[2];
  }, 5);
  loop.setImmediate(function failingImmediate() {
    throw errors[3];
  });
  await loop.run();
  assert.deepEqual(seen, [
    [errors[0], { kind: "task", label: "failingTask" }],
    [errors[1], { kind: "microtask", label: "failingMicrotask" }],
    [errors[3], { kind: "immediate", label: "failingImmediate" }],
    [errors[2], { kind: "timer", label: "failingTimer" }],
  ]);
  await loop.close();
});

Deno.test("an error thrown by onError fails the loop", async () => {
  const handlerError = new Error("handler");
  const loop = new Loop({
    clock: new VirtualClock(),
    onError: () => {
      throw handlerError;
    },
  });
  loop.submit(() => {
    throw new Error("task");
  });
  await assert.rejects(loop.run(), (error) => error === handlerError);
  await loop.close();
});

Deno.test("an onError that throws fails the loop as a callback would: the checkpoint still finishes", async () => {
  const handlerError = new Error("handler");
  const log: string[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    onError: (error) => {
      log.push(`onError: ${(error as Error).message}`);
      throw handlerError;
    },
  });
  loop.submit(() => {
    loop.queueMicrotask(() => log.push("microtask of the failing task"));
    throw new Error("task");
  });
  loop.submit(() => log.push("next task"));
  await assert.rejects(loop.run(), (error) => error === handlerError);
  assert.deepEqual(log, ["onError: task", "microtask of the failing task"]);
  assert.equal(loop.state, "idle");
  await loop.run();
  assert.deepEqual(log.slice(2), ["next task"]);
  await loop.close();
});

Deno.test("runOnce() throws the error of a failing callback", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  loop.submit(() => {
    throw new SyntaxError("bad");
  });
  assert.throws(() => loop.runOnce(), SyntaxError);
  await loop.close();
});

Deno.test("bad arguments are typed errors", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  assert.throws(() => loop.submit(null as never), TypeError);
  assert.throws(() => loop.queueMicrotask("x" as never), TypeError);
  assert.throws(() => loop.setTimeout(undefined as never, 1), TypeError);
  assert.throws(() => loop.setTimeout(() => {}, Infinity), RangeError);
  assert.throws(() => loop.setInterval(() => {}, Infinity), RangeError);
  assert.throws(() => loop.setImmediate({} as never), TypeError);
  assert.throws(() => loop.watch(-1, { readable: true }, () => {}), RangeError);
  assert.throws(() => loop.watch(1.5, { readable: true }, () => {}), RangeError);
  assert.throws(() => loop.watch("3" as never, { readable: true }, () => {}), TypeError);
  assert.throws(() => loop.watch(3, {}, () => {}), RangeError);
  assert.throws(() => loop.watch(3, { readable: true }, 5 as never), TypeError);
  await loop.close();
});

Deno.test("close() that callbacks threw in (no onError) rejects with LoopShutdownError, which carries the CloseReport", async (t) => {
  await t.step("one error", async () => {
    const loop = new Loop({ clock: new VirtualClock(), label: "shutting" });
    const boom = new Error("boom");
    loop.submit(() => {
      throw boom;
    });
    loop.setTimeout(function pendingTimer() {}, 1000);
    const closing = loop.close();
    const error = await closing.then(() => assert.fail("close() resolved"), (e: unknown) => e);
    assert.ok(error instanceof LoopShutdownError, String(error));
    assert.ok(error instanceof AggregateError);
    assert.equal(error.name, "LoopShutdownError");
    assert.deepEqual(error.errors, [boom]);
    assert.equal(error.cause, boom);
    assert.equal(
      error.message,
      'The loop "shutting" closed, but an error was raised while closing it: boom',
    );
    const report: CloseReport = error.report;
    assert.deepEqual(report, {
      ran: { tasks: 1, microtasks: 0, immediates: 0 },
      disposed: { timers: 1, watches: 0, rejected: 0 },
      items: [{ kind: "timer", label: "pendingTimer", disposition: "cancelled" }],
    });
    assert.equal(loop.state, "closed");
    assert.equal(loop.close(), closing, "idempotent: the same rejected promise");
  });
  await t.step("several errors, with a poller: the watch's onClose threw too", async () => {
    const clock = new VirtualClock();
    const loop = new Loop({ clock, poller: new FakePoller({ clock }) });
    const first = new RangeError("task");
    const second = "onClose threw a string";
    loop.submit(() => {
      throw first;
    });
    loop.watch(5, { readable: true }, () => {}, {
      label: "socket",
      onClose: () => {
        throw second;
      },
    });
    const error = await loop.close().then(() => assert.fail("close() resolved"), (e) => e);
    assert.ok(error instanceof LoopShutdownError);
    assert.deepEqual(error.errors, [first, second]);
    assert.match(error.message, /, but 2 errors were raised while closing it; the first: task$/);
    assert.equal(error.report.disposed.watches, 1);
    assert.deepEqual(error.report.items, [
      { kind: "watch", label: "socket", disposition: "cancelled" },
    ]);
  });
  await t.step("without errors close() still resolves with the report itself", async () => {
    const loop = new Loop({ clock: new VirtualClock() });
    loop.submit(() => {});
    const report = await loop.close();
    assert.ok(!(report instanceof Error));
    assert.equal(report.ran.tasks, 1);
  });
});
