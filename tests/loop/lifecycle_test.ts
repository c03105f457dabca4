import assert from "node:assert/strict";
import { Loop, LoopClosedError, LoopPromise, LoopStateError, VirtualClock } from "../../mod.ts";
import { FakePoller } from "../../poller/mod.ts";
import { all, race } from "../../promise/mod.ts";

Deno.test("run() returns when nothing ref'd is left and can be called again", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  assert.equal(loop.state, "idle");
  const log: number[] = [];
  loop.submit(() => {
    assert.equal(loop.state, "running");
    log.push(1);
  });
  await loop.run();
  loop.setTimeout(() => log.push(2), 50);
  await loop.run();
  assert.deepEqual(log, [1, 2]);
  assert.equal(loop.state, "idle");
  await loop.close();
});

Deno.test("a second concurrent run() and run() from a callback reject with LoopStateError", async () => {
  const loop = new Loop(); // real time: the first run() must still be waiting for its timer
  let inner: Promise<unknown> | undefined;
  loop.submit(() => {
    inner = loop.run().then(() => "resolved", (error) => error);
  });
  loop.setTimeout(() => {}, 5);
  const first = loop.run();
  assert.equal(loop.state, "running");
  await assert.rejects(loop.run(), LoopStateError);
  await first;
  assert.ok((await inner) instanceof LoopStateError);
  assert.throws(() => {
    loop.submit(() => loop.runOnce());
    loop.runOnce();
  }, LoopStateError);
  await loop.close();
});

Deno.test("stop() ends run() after the current callback; queued work stays for the next run()", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  loop.submit(() => {
    log.push("a");
    loop.stop();
  });
  loop.submit(() => log.push("b"));
  await loop.run();
  assert.deepEqual(log, ["a"]);
  assert.deepEqual(loop.aliveReasons(), [{ kind: "task", label: "1 queued" }]);
  await loop.run();
  assert.deepEqual(log, ["a", "b"]);
  await loop.close();
});

Deno.test("close() runs queued work, cancels timers, refuses new work and is idempotent", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  loop.submit(() => {
    log.push("task");
    loop.queueMicrotask(() => log.push("microtask"));
  });
  loop.setImmediate(() => log.push("immediate"));
  loop.setTimeout(function heartbeat() {
    log.push("never");
  }, 1000);
  loop.setInterval(function poll() {}, 10).unref();
  const first = loop.close();
  assert.equal(loop.close(), first);
  const report = await first;
  assert.deepEqual(log, ["task", "microtask", "immediate"]);
  assert.deepEqual(report.ran, { tasks: 1, microtasks: 1, immediates: 1 });
  assert.deepEqual(report.disposed, { timers: 2, watches: 0, rejected: 0 });
  assert.deepEqual(report.items.map((item) => [item.kind, item.label, item.disposition]).sort(), [
    ["interval", "poll", "cancelled"],
    ["timer", "heartbeat", "cancelled"],
  ]);
  assert.equal(loop.state, "closed");
  assert.throws(() => loop.submit(() => {}), LoopClosedError);
  assert.throws(() => loop.setTimeout(() => {}), LoopClosedError);
  assert.throws(() => loop.setInterval(() => {}), LoopClosedError);
  assert.throws(() => loop.setImmediate(() => {}), LoopClosedError);
  assert.throws(() => loop.queueMicrotask(() => {}), LoopClosedError);
  assert.throws(() => loop.watch(0, { readable: true }, () => {}), LoopClosedError);
  await assert.rejects(loop.run(), LoopClosedError);
  assert.throws(() => loop.runOnce(), LoopClosedError);
});

Deno.test("close() from inside a callback finishes once that callback returns, and run() resolves", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  let closing: Promise<unknown> | undefined;
  loop.submit(() => {
    closing = loop.close();
    log.push("after close() call");
    assert.throws(() => loop.submit(() => {}), LoopClosedError);
  });
  loop.submit(() => log.push("queued before close: runs"));
  loop.setTimeout(() => log.push("timer: cancelled"), 5);
  await loop.run();
  const report = await closing!;
  assert.deepEqual(log, ["after close() call", "queued before close: runs"]);
  assert.equal(loop.state, "closed");
  assert.equal((report as { disposed: { timers: number } }).disposed.timers, 1);
});

Deno.test("await using closes the loop", async () => {
  let captured: Loop | undefined;
  {
    await using loop = new Loop();
    captured = loop;
    loop.setTimeout(() => {}, 60_000);
  }
  assert.equal(captured.state, "closed");
});

Deno.test("runOnce() runs one iteration and says whether ref'd work remains", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  loop.submit(() => log.push("task"));
  const timer = loop.setTimeout(() => log.push("timer"), 10);
  assert.equal(loop.runOnce(), true);
  assert.deepEqual(log, ["task"]);
  clock.advance(10);
  assert.equal(loop.runOnce(), false);
  assert.deepEqual(log, ["task", "timer"]);
  assert.equal(timer.hasRef(), true);
  await loop.close();
});

Deno.test("constructor options are validated", () => {
  assert.throws(() => new Loop(null as never), TypeError);
  assert.throws(() => new Loop({ clock: {} as never }), TypeError);
  assert.throws(() => new Loop({ onError: 5 as never }), TypeError);
  assert.throws(() => new Loop({ missed: "never" as never }), RangeError);
  assert.throws(() => new Loop({ yieldIntervalMs: 0 }), RangeError);
  assert.throws(() => new Loop({ clock: { now: () => 0, virtual: true } }), TypeError);
});

Deno.test("run() gives native continuations a turn before deciding it is done", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  loop.submit(async () => {
    await Promise.resolve();
    loop.setTimeout(() => log.push("scheduled after an await"), 5);
  });
  await loop.run();
  assert.deepEqual(log, ["scheduled after an await"]);
  await loop.close();
});

Deno.test("a 1 ms interval waiting on Deno's thread still gives Deno's own timers their turn", async () => {
  // High precision waits the last ~1.2 ms before each deadline on Deno's thread; back to back,
  // those waits once kept Deno's event loop from running for about a second.
  const loop = new Loop({ timerPrecision: "high", yieldIntervalMs: 4 });
  let ticks = 0;
  const interval = loop.setInterval(() => ticks++, 1);
  let ticksWhenNativeFired = -1;
  setTimeout(() => {
    ticksWhenNativeFired = ticks;
    interval.unref();
  }, 5);
  await loop.run();
  await loop.close();
  assert.ok(
    ticksWhenNativeFired >= 0 && ticksWhenNativeFired < 100,
    `Deno's 5 ms timer fired after ${ticksWhenNativeFired} ticks of the 1 ms interval`,
  );
});

/** Keeps `loop` busy with `kind` until `done()` says so or `giveUpMs` pass; true if `done()` did. */
function keepBusy(
  loop: Loop,
  kind: "task" | "immediate" | "0 ms timeout",
  done: () => boolean,
  giveUpMs: number,
): Promise<boolean> {
  const startMs = performance.now();
  let satisfied = false;
  const again = () => {
    if (done()) satisfied = true;
    else if (performance.now() - startMs < giveUpMs) {
      if (kind === "task") loop.submit(again);
      else if (kind === "immediate") loop.setImmediate(again);
      else loop.setTimeout(again, 0);
    }
  };
  again();
  return loop.run().then(() => satisfied);
}

Deno.test("a loop that always has work still gives Deno's own timers their turn", async () => {
  // Deno runs its timers only about every 129th MessageChannel message: yields through messages
  // alone, one per 4 ms batch, held Deno's timers back for half a second.
  for (const kind of ["task", "immediate", "0 ms timeout"] as const) {
    const loop = new Loop();
    const fired = Promise.withResolvers<void>();
    let nativeFired = false;
    setTimeout(() => {
      nativeFired = true;
      fired.resolve();
    }, 5);
    const firedWhileBusy = await keepBusy(loop, kind, () => nativeFired, 150);
    await fired.promise;
    await loop.close();
    assert.ok(firedWhileBusy, `Deno's 5 ms timer waited out 150 ms of ${kind}s`);
  }
});

Deno.test("a phase of slow callbacks yields to Deno within a few of them", async () => {
  // Tasks and immediates queued up front run in one phase: one that looked at the clock only
  // every 1,024 callbacks held Deno's timers for all 40 slow ones here (200 ms).
  const spin = (ms: number) => {
    const endMs = performance.now() + ms;
    while (performance.now() < endMs) { /* busy */ }
  };
  for (const kind of ["task", "immediate"] as const) {
    const loop = new Loop({ yieldIntervalMs: 4 });
    let ran = 0;
    for (let i = 0; i < 40; i++) {
      const slow = () => {
        spin(5);
        ran++;
      };
      if (kind === "task") loop.submit(slow);
      else loop.setImmediate(slow);
    }
    let ranWhenNativeFired = -1;
    setTimeout(() => ranWhenNativeFired = ran, 0);
    await loop.run();
    await loop.close();
    assert.equal(ran, 40);
    assert.ok(
      ranWhenNativeFired >= 0 && ranWhenNativeFired <= 16,
      `Deno's 0 ms timer fired after ${ranWhenNativeFired} slow ${kind}s of 5 ms`,
    );
  }
});

Deno.test("a loop that always has work still gives Deno's own I/O its turn", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  const loop = new Loop();
  let roundTrips = 0;
  const echo = (async () => {
    const buffer = new Uint8Array(1);
    for (let i = 0; i < 3; i++) {
      await client.write(buffer);
      await server.read(buffer);
      roundTrips++;
    }
  })();
  try {
    // Without a real turn of Deno's event loop, one round trip took seconds.
    const doneWhileBusy = await keepBusy(loop, "task", () => roundTrips === 3, 150);
    await echo;
    assert.ok(doneWhileBusy, "3 TCP round trips waited out 150 ms of tasks");
  } finally {
    await loop.close();
    client.close();
    server.close();
    listener.close();
  }
});

Deno.test("a poller option that is not a Poller is a TypeError up front, not a crash later", async () => {
  for (const poller of [5, "epoll", {}, { register() {} }]) {
    assert.throws(
      () => new Loop({ poller: poller as never }),
      (error: unknown) =>
        error instanceof TypeError &&
        /^Cannot create a loop as the poller must be a Poller .*: current value is /.test(
          error.message,
        ),
      `poller: ${JSON.stringify(poller)}`,
    );
  }
  // A factory is called on first use: what it returns is checked then, and the loop stays usable.
  const loop = new Loop({ clock: new VirtualClock(), poller: () => null as never });
  assert.throws(
    () => loop.watch(3, { readable: true }, () => {}),
    (error: unknown) =>
      error instanceof TypeError &&
      /^Cannot use the loop's poller factory as the poller must be a Poller .*: current value is null$/
        .test(error.message),
  );
  let ran = false;
  loop.setTimeout(() => (ran = true), 10);
  await loop.run();
  assert.equal(ran, true);
  await loop.close();
});

Deno.test("nothing is accepted and lost while close() releases the poller", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, poller: () => new FakePoller({ clock }) });
  using _watch = loop.watch(5, { readable: true }, () => {});
  const closing = loop.close(); // drains at once, then waits for the poller to close
  // Refused (LoopClosedError) rather than queued where nothing will ever run it.
  let ran = false;
  assert.throws(() => loop.queueMicrotask(() => ran = true), LoopClosedError);
  // A loop promise settled meanwhile still runs its reaction (on native microtasks).
  const { promise, resolve } = LoopPromise.withResolvers<number>({ loop });
  let got = 0;
  promise.then((value) => got = value);
  resolve(7);
  await closing;
  await new Promise((done) => setTimeout(done, 0));
  assert.equal(ran, false);
  assert.equal(got, 7);
  assert.equal(loop.state, "closed");
});

Deno.test("an error thrown by the callback that called close() rejects run(), with or without a poller", async () => {
  for (const withPoller of [false, true]) {
    const clock = new VirtualClock();
    const loop = new Loop({
      clock,
      ...(withPoller ? { poller: () => new FakePoller({ clock }) } : {}),
    });
    if (withPoller) loop.watch(5, { readable: true }, () => {}).unref();
    const boom = new Error("boom");
    loop.setTimeout(() => {
      void loop.close();
      throw boom;
    }, 1);
    await assert.rejects(loop.run(), (error) => error === boom, `withPoller: ${withPoller}`);
    const report = await loop.close(); // the close itself went well
    assert.equal(report.disposed.watches, withPoller ? 1 : 0);
    assert.equal(loop.state, "closed");
  }
  // runOnce() too.
  const loop = new Loop({ clock: new VirtualClock() });
  const boom = new Error("boom");
  loop.submit(() => {
    void loop.close();
    throw boom;
  });
  assert.throws(() => loop.runOnce(), (error) => error === boom);
  await loop.close();
  assert.equal(loop.state, "closed");
});

Deno.test("helpers made while close() finishes (onClose callbacks, reactions to its rejections) are rejected too", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, poller: new FakePoller({ clock }) });
  const never = loop.withResolvers<number>().promise;
  const outcomes: string[] = [];
  const note = (name: string, promise: PromiseLike<unknown>) =>
    promise.then(
      () => outcomes.push(`${name} fulfilled`),
      (error) => outcomes.push(`${name} ${error instanceof LoopClosedError ? "closed" : error}`),
    );
  // close() closes the watch, then runs its onClose: the helpers made there are tracked after
  // close() disposed of the pending ones.
  loop.watch(7, { readable: true }, () => {}, {
    onClose: () => {
      note("all", all([never], { loop }));
      note("race", race([never], { loop }));
      note("adoption", LoopPromise.resolve(new Promise<never>(() => {}), { loop }));
    },
  });
  // A reaction to a rejection close() makes: it runs in close()'s last drain too.
  all([never], { loop }).catch(() => note("all in a reaction", all([never], { loop })));
  const report = await loop.close();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(outcomes.sort(), [
    "adoption closed",
    "all closed",
    "all in a reaction closed",
    "race closed",
  ]);
  assert.equal(report.disposed.rejected, 5);
  assert.equal(loop.state, "closed");
});

Deno.test("stop() in a timer callback ends run() there: no later timer of the pass, no tasks phase", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  loop.setTimeout(() => {
    log.push("timer 1");
    loop.submit(() => log.push("task")); // queued before the tasks phase of this iteration
  }, 10);
  loop.setTimeout(() => {
    log.push("timer 2");
    loop.stop();
  }, 10);
  loop.setTimeout(() => log.push("timer 3"), 10);
  await loop.run();
  assert.deepEqual(log, ["timer 1", "timer 2"]);
  await loop.run();
  assert.deepEqual(log, ["timer 1", "timer 2", "timer 3", "task"]);
  await loop.close();
});

Deno.test("stop() in an onClose callback ends run() before the next close callback", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, poller: new FakePoller({ clock }) });
  const log: string[] = [];
  const first = loop.watch(3, { readable: true }, () => {}, {
    onClose: () => {
      log.push("onClose 3");
      loop.stop();
    },
  });
  const second = loop.watch(4, { readable: true }, () => {}, {
    onClose: () => log.push("onClose 4"),
  });
  first.close();
  second.close();
  await loop.run();
  assert.deepEqual(log, ["onClose 3"]);
  await loop.run();
  assert.deepEqual(log, ["onClose 3", "onClose 4"]);
  await loop.close();
});

Deno.test("stop() outside a run is a no-op; a runOnce() stopped by its callback leaves the next one whole", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  loop.stop(); // nothing running: it must not stop a later runOnce()
  loop.submit(() => log.push("task 1"));
  loop.setImmediate(() => log.push("immediate 1"));
  assert.equal(loop.runOnce(), false);
  assert.deepEqual(log, ["task 1", "immediate 1"]);
  loop.submit(() => {
    log.push("task 2");
    loop.stop(); // stops this iteration only
  });
  loop.setImmediate(() => log.push("immediate 2"));
  assert.equal(loop.runOnce(), true);
  assert.deepEqual(log.slice(2), ["task 2"]);
  loop.submit(() => log.push("task 3"));
  assert.equal(loop.runOnce(), false);
  assert.deepEqual(log.slice(3), ["task 3", "immediate 2"]);
  await loop.close();
});

Deno.test("run() and runOnce() from a callback that close() drains throw LoopClosedError", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const errors: unknown[] = [];
  loop.submit(() => {
    try {
      loop.runOnce();
    } catch (error) {
      errors.push(error);
    }
    loop.run().catch((error) => errors.push(error));
  });
  await loop.close();
  await Promise.resolve();
  assert.equal(errors.length, 2);
  for (const error of errors) assert.ok(error instanceof LoopClosedError, String(error));
});

Deno.test("after close() nothing is left pending: no alive reasons, refresh() of a timer it cancelled is a no-op", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const fired = loop.setTimeout(() => {}, 1);
  await loop.run();
  const cancelled = loop.setTimeout(() => {}, 100);
  const interval = loop.setInterval(() => {}, 10);
  await loop.close();
  assert.deepEqual(loop.aliveReasons(), []);
  cancelled.refresh(); // cleared by close(): stays cleared, as any cleared timer
  interval.refresh();
  assert.deepEqual(loop.aliveReasons(), []);
  // A fired timer refreshed on a closed loop would be new work: refused.
  assert.throws(() => fired.refresh(), LoopClosedError);
});

Deno.test("an onClose callback queued while run() gives Deno its last turn keeps run() going until it ran", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, poller: new FakePoller({ clock }) });
  const log: string[] = [];
  const watch = loop.watch(3, { readable: true }, () => {}, {
    onClose: () => log.push("onClose"),
  }).unref();
  loop.submit(async () => {
    await Promise.resolve(); // a native continuation: runs while run() yields before it returns
    watch.close();
  });
  await loop.run();
  assert.deepEqual(log, ["onClose"]);
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});
