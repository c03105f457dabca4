// LoopPromise: API, ordering against loop tasks and microtasks, unhandled/handled rejection
// reporting, async/await and native promise interplay, behaviour on close.
import assert from "node:assert/strict";
import { Loop, LoopClosedError, VirtualClock } from "../../loop/mod.ts";
import { all, LoopPromise, race, toNative } from "../../promise/mod.ts";
import { queueCallback, runtimeOf } from "../../promise/loop_promise.ts";

/** A loop that records unhandled and handled reports. */
function reportingLoop(): {
  loop: Loop;
  unhandled: [unknown, PromiseLike<unknown>][];
  handled: PromiseLike<unknown>[];
} {
  const unhandled: [unknown, PromiseLike<unknown>][] = [];
  const handled: PromiseLike<unknown>[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    onUnhandledRejection: (reason, promise) => unhandled.push([reason, promise]),
    onRejectionHandled: (promise) => handled.push(promise),
  });
  return { loop, unhandled, handled };
}

Deno.test("LoopPromise basics: construction, inspection, statics", async (t) => {
  const loop = new Loop({ clock: new VirtualClock() });
  try {
    await t.step("executor runs synchronously; reactions wait for the loop", () => {
      const log: string[] = [];
      const p = new LoopPromise<number>((resolve) => {
        log.push("executor");
        resolve(1);
      }, { loop });
      p.then((v) => log.push(`then ${v}`));
      log.push("after");
      assert.deepEqual(log, ["executor", "after"]);
      assert.equal(p.state, "fulfilled");
      assert.equal(p.value, 1);
      assert.equal(p.reason, undefined);
      assert.equal(p.loop, loop);
      loop.runOnce();
      assert.deepEqual(log, ["executor", "after", "then 1"]);
    });

    await t.step("inspection of pending and rejected promises", () => {
      const pending = new LoopPromise(() => {}, { loop });
      assert.equal(pending.state, "pending");
      assert.equal(pending.value, undefined);
      const error = new Error("no");
      const rejected = LoopPromise.reject(error, { loop });
      assert.equal(rejected.state, "rejected");
      assert.equal(rejected.reason, error);
      assert.equal(rejected.value, undefined);
      rejected.catch(() => {});
      assert.equal(Object.prototype.toString.call(pending), "[object LoopPromise]");
      assert.equal(Deno.inspect(pending), "LoopPromise { <pending> }");
      assert.equal(Deno.inspect(LoopPromise.resolve("x", { loop })), 'LoopPromise { "x" }');
      assert.match(Deno.inspect(rejected), /^LoopPromise \{ <rejected> Error: no/);
      loop.runOnce();
    });

    await t.step("the first resolve/reject call wins; a throw after resolving is ignored", () => {
      const p = new LoopPromise((resolve, reject) => {
        resolve("first");
        reject(new Error("ignored"));
        resolve("ignored");
        throw new Error("ignored too");
      }, { loop });
      assert.equal(p.value, "first");
    });

    await t.step("an executor that throws rejects", () => {
      const error = new Error("thrown");
      const p = new LoopPromise(() => {
        throw error;
      }, { loop });
      assert.equal(p.reason, error);
      p.catch(() => {});
      loop.runOnce();
    });

    await t.step("bad arguments throw TypeError", () => {
      assert.throws(() => new LoopPromise(42 as never, { loop }), {
        name: "TypeError",
        message:
          /Cannot construct a LoopPromise as the executor must be a function: current value is 42/,
      });
      assert.throws(() => new LoopPromise(() => {}, { loop: {} as Loop }), {
        name: "TypeError",
        message: /the loop must be a Loop/,
      });
    });

    await t.step("resolve returns LoopPromises as they are; from re-homes them", () => {
      const other = new Loop();
      const p = LoopPromise.resolve(1, { loop });
      assert.equal(LoopPromise.resolve(p), p);
      assert.equal(LoopPromise.resolve(p, { loop }), p);
      const moved = LoopPromise.from(p, { loop: other });
      assert.notEqual(moved, p);
      assert.equal(moved.loop, other);
      assert.equal(LoopPromise.from(moved, { loop: other }), moved);
      // Adopting a settled LoopPromise is synchronous (no extra microtasks).
      assert.equal(moved.value, 1);
      const viaResolve = LoopPromise.resolve(p, { loop: other });
      assert.equal(viaResolve.loop, other);
      return other.close().then(() => {});
    });

    await t.step("withResolvers and try", async () => {
      const { promise, resolve, reject } = LoopPromise.withResolvers<string>({ loop });
      resolve("ok");
      reject(new Error("ignored"));
      assert.equal(promise.value, "ok");
      let ran!: LoopPromise<number>;
      loop.submit(() => {
        ran = LoopPromise.try((a: number, b: number) => a + b, 2, 3);
      });
      loop.runOnce();
      assert.equal(ran.value, 5);
      const error = new Error("try threw");
      const threw = LoopPromise.try(() => {
        throw error;
      });
      assert.equal(threw.reason, error);
      threw.catch(() => {});
      const notFn = LoopPromise.try(42 as never);
      assert.ok(notFn.reason instanceof TypeError);
      notFn.catch(() => {});
      await Promise.resolve(); // the default loop drains these
    });
  } finally {
    await loop.close();
  }
});

Deno.test("then/catch/finally semantics", async (t) => {
  const { loop, unhandled } = reportingLoop();
  // Runs make() in a task and the loop to completion. Returns the promise boxed: returning a
  // LoopPromise from an async function would adopt it, which needs its (stopped) loop to run.
  const run = async <T>(make: () => LoopPromise<T>): Promise<[LoopPromise<T>]> => {
    let p!: LoopPromise<T>;
    loop.submit(() => {
      p = make();
    });
    await loop.run();
    return [p];
  };
  try {
    await t.step("non-function arguments pass the outcome through", async () => {
      const [p] = await run(() => LoopPromise.resolve(7).then(null, undefined).then(5 as never));
      assert.equal(p.value, 7);
      const error = new Error("passes");
      const [q] = await run(() =>
        LoopPromise.reject(error).then((v) => v).catch("nope" as never).catch((e) => e)
      );
      assert.equal(q.value, error);
    });

    await t.step("handlers are called as functions, once, in then order", async () => {
      const log: unknown[] = [];
      await run(() => {
        const p = LoopPromise.resolve("v");
        p.then(function (this: unknown) {
          log.push(this);
        });
        p.then(() => log.push(1));
        p.then(() => log.push(2));
        return p;
      });
      assert.deepEqual(log, [undefined, 1, 2]);
    });

    await t.step("self-resolution rejects with TypeError", async () => {
      let self!: LoopPromise<unknown>;
      const [p] = await run(() => {
        self = LoopPromise.resolve().then(() => self);
        return self.catch((e) => e);
      });
      assert.ok(p.value instanceof TypeError);
      assert.match((p.value as Error).message, /chaining cycle/);
    });

    await t.step("finally passes outcomes through, waits for thenables, can override", async () => {
      const log: string[] = [];
      const [kept] = await run(() => LoopPromise.resolve("kept").finally(() => log.push("f1")));
      assert.equal(kept.value, "kept");
      const error = new Error("kept reason");
      const [rejected] = await run(() =>
        LoopPromise.reject(error).finally(() => log.push("f2")).catch((e) => e)
      );
      assert.equal(rejected.value, error);
      const [waited] = await run(() =>
        LoopPromise.resolve("value").finally(() =>
          new LoopPromise((resolve) => loop.setTimeout(() => resolve("ignored"), 50))
        )
      );
      assert.equal(waited.value, "value");
      assert.equal(loop.now(), 50);
      const override = new Error("override");
      const [overridden] = await run(() =>
        LoopPromise.resolve(1).finally(() => {
          throw override;
        }).catch((e) => e)
      );
      assert.equal(overridden.value, override);
      const [rejectedThenable] = await run(() =>
        LoopPromise.resolve(1).finally(() => LoopPromise.reject(override)).catch((e) => e)
      );
      assert.equal(rejectedThenable.value, override);
      assert.deepEqual(log, ["f1", "f2"]);
    });
    assert.deepEqual(unhandled, []);
  } finally {
    await loop.close();
  }
});

Deno.test("ordering: reactions are loop microtasks, interleaved in FIFO order", async (t) => {
  await t.step("with loop microtasks, tasks and timers", async () => {
    const loop = new Loop({ clock: new VirtualClock() });
    const log: string[] = [];
    loop.setTimeout(() => {
      log.push("timer 1");
      LoopPromise.resolve().then(() => log.push("timer 1 reaction"));
    }, 10);
    loop.setTimeout(() => log.push("timer 2"), 10);
    loop.submit(() => {
      log.push("task 1");
      const p = LoopPromise.resolve("a");
      p.then(() => log.push("reaction a1")).then(() => log.push("reaction a2"));
      loop.queueMicrotask(() => log.push("microtask m1"));
      LoopPromise.resolve("b").then(() => log.push("reaction b1"));
      loop.queueMicrotask(() => {
        log.push("microtask m2");
        LoopPromise.resolve().then(() => log.push("reaction from m2"));
      });
    });
    loop.submit(() => log.push("task 2"));
    loop.setImmediate(() => log.push("immediate"));
    await loop.run();
    assert.deepEqual(log, [
      "task 1",
      "reaction a1",
      "microtask m1",
      "reaction b1",
      "microtask m2",
      "reaction a2",
      "reaction from m2",
      "task 2",
      "immediate",
      "timer 1",
      "timer 1 reaction",
      "timer 2",
    ]);
    await loop.close();
  });

  await t.step("a pure-promise program logs exactly as with native promises", async () => {
    const program = (P: {
      resolve(v?: unknown): PromiseLike<unknown>;
      reject(r: unknown): PromiseLike<unknown>;
    }, log: string[]) => {
      const a = P.resolve(1);
      a.then(() => log.push("a1")).then(() => log.push("a2")).then(() => log.push("a3"));
      P.resolve(2).then(() => log.push("b1")).then(() => log.push("b2"));
      const r = P.reject(new Error("r"));
      r.then(() => log.push("never")).then(undefined, () => log.push("r2"));
      a.then(() => log.push("a1'"));
      P.resolve(3).then(() => {
        log.push("c1");
        return 5; // not a thenable: no extra ticks
      }).then((v) => log.push(`c2 ${v}`));
    };
    const nativeLog: string[] = [];
    program(Promise, nativeLog);
    await new Promise((resolve) => setTimeout(resolve, 0));
    const loop = new Loop();
    const loopLog: string[] = [];
    loop.submit(() =>
      program({
        resolve: (v) => LoopPromise.resolve(v),
        reject: (r) => LoopPromise.reject(r),
      }, loopLog)
    );
    await loop.run();
    await loop.close();
    assert.deepEqual(loopLog, nativeLog);
  });

  await t.step("thenables: then is read once, called in a later microtask", async () => {
    const loop = new Loop();
    const log: string[] = [];
    let reads = 0;
    const thenable = {
      get then() {
        reads++;
        log.push("read then");
        return (resolve: (v: string) => void) => {
          log.push("then called");
          resolve("from thenable");
        };
      },
    };
    loop.submit(() => {
      const p = LoopPromise.resolve(thenable);
      log.push("after resolve");
      loop.queueMicrotask(() => log.push("microtask queued before the then call"));
      p.then((v) => log.push(v));
    });
    await loop.run();
    assert.equal(reads, 1);
    assert.deepEqual(log, [
      "read then",
      "after resolve",
      "then called",
      "microtask queued before the then call",
      "from thenable",
    ]);
    await loop.close();
  });

  await t.step("adopting a LoopPromise costs no extra microtasks (unlike native)", async () => {
    const loop = new Loop();
    const log: string[] = [];
    loop.submit(() => {
      const inner = LoopPromise.resolve("inner");
      LoopPromise.resolve().then(() => inner).then(() => log.push("adopted"));
      LoopPromise.resolve().then(() => log.push("x1")).then(() => log.push("x2")).then(() =>
        log.push("x3")
      );
    });
    await loop.run();
    assert.deepEqual(log, ["x1", "adopted", "x2", "x3"]);
    await loop.close();
  });

  await t.step("reactions run on the promise's loop; currentLoop() is that loop", async () => {
    const a = new Loop({ label: "a" });
    const b = new Loop({ label: "b" });
    const seen: string[] = [];
    const { currentLoop } = await import("../../loop/mod.ts");
    const pa = LoopPromise.resolve("x", { loop: a });
    // A promise of loop b following one of loop a: a's loop runs the hand-over, b's the reaction.
    const pb = LoopPromise.from(new LoopPromise((r) => a.setTimeout(() => r(1), 1), { loop: a }), {
      loop: b,
    });
    pa.then(() => seen.push(`pa on ${currentLoop().label}`));
    pb.then(() => seen.push(`pb on ${currentLoop().label}`));
    await a.run();
    assert.deepEqual(seen, ["pa on a"]);
    await b.run();
    assert.deepEqual(seen, ["pa on a", "pb on b"]);
    await a.close();
    await b.close();
  });
});

Deno.test("unhandled rejections are reported once, per loop, and later handling is reported", async (t) => {
  await t.step("reported once with the promise; a later handler reports it handled", async () => {
    const { loop, unhandled, handled } = reportingLoop();
    const error = new Error("nobody listens");
    let p!: LoopPromise<never>;
    loop.submit(() => {
      p = LoopPromise.reject(error);
    });
    await loop.run();
    assert.equal(unhandled.length, 1);
    assert.equal(unhandled[0][0], error);
    assert.equal(unhandled[0][1], p);
    assert.deepEqual(handled, []);
    loop.submit(() => p.catch(() => {}));
    await loop.run();
    assert.equal(unhandled.length, 1);
    assert.deepEqual(handled, [p]);
    loop.submit(() => p.catch(() => {})); // handled already: no second report
    await loop.run();
    assert.deepEqual(handled, [p]);
    await loop.close();
  });

  await t.step("handled within the same checkpoint: never reported", async () => {
    const { loop, unhandled } = reportingLoop();
    loop.submit(() => {
      const p = LoopPromise.reject(new Error("caught soon"));
      loop.queueMicrotask(() => p.catch(() => {}));
    });
    await loop.run();
    assert.deepEqual(unhandled, []);
    await loop.close();
  });

  await t.step("then(f) without a rejection handler: only the child is reported", async () => {
    const { loop, unhandled } = reportingLoop();
    const error = new Error("propagates");
    let root!: LoopPromise<never>;
    let leaf!: LoopPromise<unknown>;
    loop.submit(() => {
      root = LoopPromise.reject(error);
      leaf = root.then((v) => v).then((v) => v).then((v) => v);
    });
    await loop.run();
    assert.equal(unhandled.length, 1);
    assert.equal(unhandled[0][0], error);
    assert.equal(unhandled[0][1], leaf);
    await loop.close();
  });

  await t.step("combinator inputs are handled; their result is what gets reported", async () => {
    const { loop, unhandled } = reportingLoop();
    const error = new Error("input failed");
    let result!: LoopPromise<unknown>;
    loop.submit(() => {
      result = all([LoopPromise.reject(error), LoopPromise.reject(new Error("second"))]);
    });
    await loop.run();
    assert.equal(unhandled.length, 1);
    assert.equal(unhandled[0][1], result);
    assert.equal(unhandled[0][0], error);
    await loop.close();
  });

  await t.step(
    "an explicit loop without onUnhandledRejection fails fast: run() rejects",
    async () => {
      const loop = new Loop();
      const error = new Error("fail fast");
      loop.submit(() => {
        LoopPromise.reject(error);
      });
      await assert.rejects(loop.run(), (e) => e === error);
      await loop.close();
    },
  );

  await t.step("the default loop dispatches cancelable events on globalThis", async () => {
    const events: { type: string; reason?: unknown; promise: unknown; cancelable: boolean }[] = [];
    const onUnhandled = (event: Event) => {
      const e = event as PromiseRejectionEvent;
      events.push({ type: e.type, reason: e.reason, promise: e.promise, cancelable: e.cancelable });
      event.preventDefault();
    };
    const onHandled = (event: Event) => {
      const e = event as PromiseRejectionEvent;
      events.push({ type: e.type, promise: e.promise, cancelable: e.cancelable });
    };
    globalThis.addEventListener("unhandledrejection", onUnhandled);
    globalThis.addEventListener("rejectionhandled", onHandled);
    try {
      const error = new Error("default loop rejection");
      const p = LoopPromise.reject(error); // on the default loop (no loop is running)
      await new Promise((resolve) => setTimeout(resolve, 10));
      const ours = events.filter((e) => e.promise === p);
      assert.deepEqual(ours, [{
        type: "unhandledrejection",
        reason: error,
        promise: p,
        cancelable: true,
      }]);
      p.catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(events.filter((e) => e.promise === p).map((e) => e.type), [
        "unhandledrejection",
        "rejectionhandled",
      ]);
    } finally {
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
      globalThis.removeEventListener("rejectionhandled", onHandled);
    }
  });
});

Deno.test("async/await and native promise interplay", async (t) => {
  await t.step("await a LoopPromise (default loop), async functions returning one", async () => {
    const p = new LoopPromise<number>((resolve) => setTimeout(() => resolve(41), 1));
    assert.equal(await p, 41);
    const f = async () => {
      await null;
      return LoopPromise.resolve(1).then((v) => v + 1); // adopted by the async function's promise
    };
    assert.equal(await f(), 2);
    const error = new Error("awaited rejection");
    await assert.rejects(async () => await LoopPromise.reject(error), (e) => e === error);
  });

  await t.step("adopting native promises, and native promises adopting LoopPromises", async () => {
    const loop = new Loop();
    const fromNative = LoopPromise.resolve(Promise.resolve("native"), { loop });
    const nativeFromLoop = Promise.resolve(LoopPromise.resolve("loop", { loop }));
    const error = new Error("native rejection");
    const rejectedFromNative = LoopPromise.resolve(Promise.reject(error), { loop }).catch((e) => e);
    // Observed before run(): reactions of an explicit loop run only while it runs, and run() waits
    // for the native promises its promises adopt.
    const observed = Promise.all([
      toNative(fromNative),
      nativeFromLoop,
      toNative(rejectedFromNative),
    ]);
    await loop.run();
    assert.deepEqual(await observed, ["native", "loop", error]);
    await loop.close();
  });

  await t.step(
    "a rejected native promise adopted while its loop is not in a batch is not reported by Deno",
    async () => {
      // The adopting promise calls `then` only in a loop microtask; until then Deno must not see
      // the native promise as unhandled (as with `Promise.resolve(rejected).catch(...)`).
      const reported: unknown[] = [];
      const onUnhandled = (event: PromiseRejectionEvent) => {
        reported.push(event.reason);
        event.preventDefault();
      };
      globalThis.addEventListener("unhandledrejection", onUnhandled);
      try {
        // An explicit loop that is not running yet.
        const loop = new Loop();
        const idleError = new Error("adopted while idle");
        const idle = LoopPromise.from(Promise.reject(idleError), { loop }).catch((e) => e);
        await new Promise((resolve) => setTimeout(resolve, 5));
        // A running loop parked on a timer, adopting from a native callback.
        const parkedError = new Error("adopted while parked");
        let parked!: LoopPromise<unknown>;
        loop.setTimeout(() => {}, 30);
        setTimeout(() => {
          parked = LoopPromise.from(Promise.reject(parkedError), { loop }).catch((e) => e);
        }, 5);
        await loop.run();
        assert.deepEqual(reported, []);
        assert.equal(idle.value, idleError);
        assert.equal(parked.value, parkedError);
        await loop.close();
      } finally {
        globalThis.removeEventListener("unhandledrejection", onUnhandled);
      }
    },
  );

  await t.step("run() waits for adopted native promises; close rejects them", async () => {
    const loop = new Loop({ onUnhandledRejection: () => {} });
    let resolveLater!: (v: string) => void;
    const later = LoopPromise.resolve(new Promise<string>((r) => resolveLater = r), { loop });
    const log: string[] = [];
    later.then((v) => log.push(v));
    const running = loop.run();
    assert.deepEqual(loop.aliveReasons().map((r) => r.kind), ["promise.adopt"]);
    setTimeout(() => resolveLater("answered"), 5);
    await running;
    assert.deepEqual(log, ["answered"]);
    const never = LoopPromise.resolve(new Promise(() => {}), { loop });
    loop.runOnce();
    const report = await loop.close();
    assert.deepEqual(report.items.map((i) => [i.kind, i.disposition]), [[
      "promise.adopt",
      "rejected",
    ]]);
    assert.ok(never.reason instanceof LoopClosedError);
  });

  await t.step(
    "async functions on an explicit loop: adopt their promise to keep it alive",
    async () => {
      const loop = new Loop({ clock: new VirtualClock() });
      const log: string[] = [];
      const sleep = (ms: number) => new LoopPromise<void>((r) => loop.setTimeout(r, ms), { loop });
      const body = async () => {
        log.push(`start ${loop.now()}`);
        await sleep(100);
        log.push(`after 100 at ${loop.now()}`);
        const values = await all([sleep(50).then(() => "a"), "b", Promise.resolve("c")], { loop });
        log.push(`${values.join("")} at ${loop.now()}`);
        return "body done";
      };
      // `await` continues on native microtasks, which the loop cannot see: adopting the async
      // function's promise keeps run() going until it settles.
      let done!: LoopPromise<string>;
      loop.submit(() => {
        done = LoopPromise.from(body(), { loop });
      });
      await loop.run();
      assert.deepEqual(log, ["start 0", "after 100 at 100", "abc at 150"]);
      assert.equal(done.value, "body done");
      await loop.close();
    },
  );
});

Deno.test("closing the loop", async (t) => {
  await t.step("pending combinators reject with LoopClosedError and are reported", async () => {
    const loop = new Loop({ onUnhandledRejection: () => {} });
    const forever = new LoopPromise(() => {}, { loop });
    const pendingAll = all([forever, 1], { loop });
    const emptyRace = race([], { loop });
    const caught = [pendingAll.catch((e) => e), emptyRace.catch((e) => e)];
    const report = await loop.close();
    assert.equal(report.disposed.rejected, 2);
    assert.deepEqual(
      report.items.filter((i) => i.kind.startsWith("promise.")).map((i) => [i.kind, i.disposition]),
      [["promise.all", "rejected"], ["promise.race", "rejected"]],
    );
    for (const p of caught) {
      const error = await p;
      assert.ok(error instanceof LoopClosedError, String(error));
    }
    assert.equal(forever.state, "pending"); // a bare promise cannot be known to be abandoned
  });

  await t.step("after close, reactions still run (on native microtasks)", async () => {
    const loop = new Loop();
    await loop.close();
    const p = LoopPromise.resolve(20, { loop }).then((v) => v + 1);
    assert.equal(await p, 21);
    const chained = await new LoopPromise<number>((r) => setTimeout(() => r(1), 1), { loop })
      .then((v) => v * 2).then((v) => v * 3);
    assert.equal(chained, 6);
  });

  await t.step(
    "without onUnhandledRejection, a rejection nobody handles after close is not lost",
    async () => {
      // run() can no longer reject: it surfaces as a native unhandled rejection, as in Deno.
      const seen: unknown[] = [];
      const onUnhandled = (event: PromiseRejectionEvent) => {
        seen.push(event.reason);
        event.preventDefault();
      };
      globalThis.addEventListener("unhandledrejection", onUnhandled);
      try {
        const loop = new Loop();
        let pendingRace!: LoopPromise<unknown>;
        loop.submit(() => {
          pendingRace = race([]);
        });
        await loop.run();
        await loop.close(); // rejects pendingRace with LoopClosedError; nobody handles it
        const late = new Error("rejected after close");
        LoopPromise.reject(late, { loop });
        await new Promise((resolve) => setTimeout(resolve, 10));
        assert.equal(seen.length, 2, String(seen));
        assert.ok(seen[0] instanceof LoopClosedError, String(seen[0]));
        assert.equal(pendingRace.reason, seen[0]);
        assert.equal(seen[1], late);
      } finally {
        globalThis.removeEventListener("unhandledrejection", onUnhandled);
      }
    },
  );

  await t.step("reactions queued before close run during the close", async () => {
    const loop = new Loop();
    const log: string[] = [];
    LoopPromise.resolve(1, { loop }).then(() => log.push("ran"));
    const report = await loop.close();
    assert.deepEqual(log, ["ran"]);
    assert.ok(report.ran.microtasks >= 1);
  });
});

Deno.test("an internal callback that throws is reported; later reactions still run in order", async () => {
  const errors: unknown[] = [];
  const loop = new Loop({ onError: (error) => errors.push(error) });
  const log: string[] = [];
  const boom = new Error("internal");
  loop.submit(() => {
    const p = LoopPromise.resolve();
    p.then(() => log.push("a"));
    queueCallback(
      runtimeOf(loop),
      () => {
        log.push("boom");
        throw boom;
      },
      undefined,
      0,
      false,
      undefined,
    );
    p.then(() => log.push("b"));
    loop.queueMicrotask(() => log.push("m"));
    p.then(() => log.push("c"));
  });
  await loop.run();
  assert.deepEqual(errors, [boom]);
  assert.deepEqual(log.slice(0, 2), ["a", "boom"]);
  assert.deepEqual(log.filter((x) => x !== "m"), ["a", "boom", "b", "c"]);
  assert.ok(log.includes("m"));
  await loop.close();
});
