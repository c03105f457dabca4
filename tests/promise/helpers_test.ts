// abortable, deadline, settled, toNative and the combinators' task-factory mode, under a
// VirtualClock loop (deterministic: no sleeps).
import assert from "node:assert/strict";
import { Loop, LoopClosedError, VirtualClock } from "../../loop/mod.ts";
import {
  abortable,
  all,
  allSettled,
  any,
  deadline,
  LoopPromise,
  race,
  settled,
  type SettledResult,
  toNative,
} from "../../promise/mod.ts";

function virtualLoop(): Loop {
  return new Loop({ clock: new VirtualClock(), onUnhandledRejection: () => {} });
}

/** A LoopPromise settled by a virtual timer. */
function after<T>(loop: Loop, ms: number, value: T, fail = false): LoopPromise<T> {
  return new LoopPromise<T>((resolve, reject) => {
    loop.setTimeout(() => (fail ? reject(value) : resolve(value)), ms);
  }, { loop });
}

/** A task factory settled by a virtual timer that records its abort. */
function task<T>(loop: Loop, log: string[], name: string, ms: number, value: T, fail = false) {
  return (signal: AbortSignal): LoopPromise<T> =>
    new LoopPromise<T>((resolve, reject) => {
      log.push(`start ${name}`);
      const timer = loop.setTimeout(() => (fail ? reject(value) : resolve(value)), ms);
      signal.addEventListener("abort", () => {
        loop.clearTimeout(timer);
        log.push(`abort ${name} at ${loop.now()}: ${(signal.reason as Error).name}`);
        reject(signal.reason);
      });
    }, { loop });
}

Deno.test("deadline", async (t) => {
  await t.step("rejects with TimeoutError at the deadline, in virtual time", async () => {
    const loop = virtualLoop();
    const slow = after(loop, 60_000, "slow");
    const result = deadline(slow, 5_000);
    let rejectedAt = -1;
    result.catch(() => rejectedAt = loop.now());
    await loop.run();
    assert.equal(rejectedAt, 5_000);
    assert.ok(result.reason instanceof DOMException);
    assert.equal((result.reason as DOMException).name, "TimeoutError");
    assert.equal(loop.now(), 60_000); // the input still ran to completion; it was not cancelled
    await loop.close();
  });

  await t.step("follows the input when it settles first, and clears its timer", async () => {
    const loop = virtualLoop();
    const result = deadline(after(loop, 10, "fast"), 5_000);
    await loop.run();
    assert.equal(result.value, "fast");
    assert.equal(loop.now(), 10); // the deadline timer did not keep the loop alive
    const error = new Error("input failed");
    const failed = deadline(after(loop, 10, error, true), 5_000);
    await loop.run();
    assert.equal(failed.reason, error);
    await loop.close();
  });

  await t.step("aborts with the signal's reason; validates its arguments", async () => {
    const loop = virtualLoop();
    const controller = new AbortController();
    const result = deadline(after(loop, 1_000, "x"), 5_000, { signal: controller.signal, loop });
    loop.setTimeout(() => controller.abort(new Error("stop")), 100);
    await loop.run();
    assert.equal((result.reason as Error).message, "stop");
    const aborted = AbortSignal.abort(new Error("already"));
    const early = deadline(after(loop, 1, 1), 10, { signal: aborted, loop });
    assert.equal((early.reason as Error).message, "already");
    assert.throws(() => deadline(Promise.resolve(), -1), RangeError);
    assert.throws(() => deadline(Promise.resolve(), NaN), RangeError);
    assert.throws(() => deadline(Promise.resolve(), "5" as never), TypeError);
    assert.throws(() => deadline(Promise.resolve(), 5, { signal: {} as AbortSignal }), TypeError);
    await loop.run();
    await loop.close();
  });

  await t.step("Infinity means no deadline; ref: false lets the loop finish first", async () => {
    const loop = virtualLoop();
    const noDeadline = deadline(after(loop, 1e9, "late"), Infinity);
    await loop.run();
    assert.equal(noDeadline.value, "late");
    const never = new LoopPromise(() => {}, { loop });
    const unrefed = deadline(never, 1_000, { ref: false });
    await loop.run(); // nothing ref'd: returns at once, the deadline has not passed
    assert.equal(unrefed.state, "pending");
    assert.equal(loop.now(), 1e9);
    const report = await loop.close();
    assert.ok(unrefed.reason instanceof LoopClosedError);
    assert.ok(
      report.items.some((i) => i.kind === "promise.deadline" && i.disposition === "rejected"),
    );
  });

  await t.step("on a closed loop, rejects with LoopClosedError", async () => {
    const loop = virtualLoop();
    await loop.close();
    const result = deadline(Promise.resolve(1), 10, { loop });
    await assert.rejects(toNative(result), LoopClosedError);
  });
});

Deno.test("abortable", async (t) => {
  await t.step("rejects with the abort reason; otherwise follows the input", async () => {
    const loop = virtualLoop();
    const controller = new AbortController();
    const input = after(loop, 1_000, "late");
    const result = abortable(input, controller.signal);
    const reason = new Error("gave up");
    loop.setTimeout(() => controller.abort(reason), 10);
    let rejectedAt = -1;
    result.catch(() => rejectedAt = loop.now());
    await loop.run();
    assert.equal(result.reason, reason);
    assert.equal(rejectedAt, 10);
    const kept = abortable(after(loop, 5, "kept"), new AbortController().signal);
    await loop.run();
    assert.equal(kept.value, "kept");
    await loop.close();
  });

  await t.step("an already-aborted signal rejects at once; the input is handled", async () => {
    const unhandled: unknown[] = [];
    const loop = new Loop({ onUnhandledRejection: (r) => unhandled.push(r) });
    const reason = new Error("already aborted");
    const input = LoopPromise.reject(new Error("input"), { loop });
    const result = abortable(input, AbortSignal.abort(reason));
    assert.equal(result.reason, reason);
    result.catch(() => {});
    await loop.run();
    assert.deepEqual(unhandled, []);
    assert.throws(() => abortable(input, undefined as never), TypeError);
    await loop.close();
  });

  await t.step("is tracked: closing the loop rejects it", async () => {
    const loop = virtualLoop();
    const result = abortable(new LoopPromise(() => {}, { loop }), new AbortController().signal);
    await loop.close();
    assert.ok(result.reason instanceof LoopClosedError);
  });
});

Deno.test("settled yields outcomes in settlement order", async (t) => {
  await t.step("mixed inputs, with indices", async () => {
    const loop = virtualLoop();
    const error = new Error("third");
    const results: SettledResult<unknown>[] = [];
    loop.submit(() => {
      const iterator = settled([after(loop, 30, "a"), "b", after(loop, 10, error, true)]);
      const pump = (): void => {
        iterator.next().then((r) => {
          if (r.done) return;
          results.push(r.value);
          pump();
        });
      };
      pump();
    });
    await loop.run();
    assert.deepEqual(results, [
      { status: "fulfilled", value: "b", index: 1 },
      { status: "rejected", reason: error, index: 2 },
      { status: "fulfilled", value: "a", index: 0 },
    ]);
    await loop.close();
  });

  await t.step("for await on the default loop, and return() stops early", async () => {
    const order: number[] = [];
    const wait = (ms: number, v: number) => new Promise<number>((r) => setTimeout(r, ms, v));
    for await (const result of settled([wait(20, 0), wait(1, 1), 2])) {
      order.push(result.index);
    }
    assert.deepEqual(order, [2, 1, 0]);
    const iterator = settled([wait(5, 0), 1]);
    const first = await iterator.next();
    assert.equal(first.done, false);
    assert.deepEqual(await iterator.return(), { value: undefined, done: true });
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
    await wait(10, 0); // let the abandoned input finish (timer sanitizer)
  });

  await t.step("empty input, abort and close", async () => {
    const loop = virtualLoop();
    const empty = settled([], { loop });
    const controller = new AbortController();
    const aborted = settled([new LoopPromise(() => {}, { loop })], {
      loop,
      signal: controller.signal,
    });
    const waiting = aborted.next();
    const closing = settled([new LoopPromise(() => {}, { loop })], { loop });
    const closingNext = closing.next();
    controller.abort(new Error("stop"));
    loop.runOnce();
    assert.deepEqual(await toNativeOn(loop, empty.next()), { value: undefined, done: true });
    assert.equal((waiting.reason as Error).message, "stop");
    assert.equal(closing.pending, 1);
    await loop.close();
    assert.ok(closingNext.reason instanceof LoopClosedError);
    assert.throws(() => settled(42 as never, { loop }), TypeError);
  });
});

/** Reads a LoopPromise of a loop that is not running by running one iteration. */
function toNativeOn<T>(loop: Loop, promise: LoopPromise<T>): Promise<T> {
  const native = toNative(promise);
  if (loop.state !== "closed") loop.runOnce();
  return native;
}

Deno.test("toNative", async () => {
  const loop = virtualLoop();
  const native = toNative(after(loop, 10, "v"));
  assert.ok(native instanceof Promise);
  const error = new Error("rejected");
  const nativeRejected = toNative(after(loop, 20, error, true));
  await loop.run();
  assert.equal(await native, "v");
  await assert.rejects(nativeRejected, (e) => e === error);
  assert.equal(await toNative(7), 7);
  await loop.close();
});

Deno.test("task-factory mode aborts the losers", async (t) => {
  await t.step(
    "race: first settlement wins, the others are aborted, the winner is not",
    async () => {
      const loop = virtualLoop();
      const log: string[] = [];
      const winnerSignals: AbortSignal[] = [];
      const result = race([
        task(loop, log, "slow", 100, "slow"),
        (signal: AbortSignal) => {
          winnerSignals.push(signal);
          return task(loop, log, "fast", 10, "fast")(signal);
        },
        task(loop, log, "slower", 200, "slower"),
      ], { abortLosers: true, loop });
      await loop.run();
      assert.equal(result.value, "fast");
      assert.deepEqual(log, [
        "start slow",
        "start fast",
        "start slower",
        "abort slow at 10: AbortError",
        "abort slower at 10: AbortError",
      ]);
      assert.equal(winnerSignals[0].aborted, false);
      await loop.close();
    },
  );

  await t.step(
    "any: aborts on the first fulfilment; all failing gives AggregateError",
    async () => {
      const loop = virtualLoop();
      const log: string[] = [];
      const e1 = new Error("e1");
      const result = any([
        task(loop, log, "fails", 5, e1, true),
        task(loop, log, "wins", 10, "ok"),
        task(loop, log, "loses", 50, "late"),
      ], { abortLosers: true, loop });
      await loop.run();
      assert.equal(result.value, "ok");
      assert.deepEqual(log.filter((l) => l.startsWith("abort")), ["abort loses at 10: AbortError"]);
      const e2 = new Error("e2");
      const none = any([task(loop, [], "a", 5, e1, true), () => Promise.reject(e2)], {
        abortLosers: true,
        loop,
      });
      await loop.run();
      assert.ok(none.reason instanceof AggregateError);
      assert.deepEqual((none.reason as AggregateError).errors, [e1, e2]);
      await loop.close();
    },
  );

  await t.step("all: aborts the rest on the first rejection, with its cause", async () => {
    const loop = virtualLoop();
    const log: string[] = [];
    const failure = new Error("broken");
    const signals: AbortSignal[] = [];
    const result = all([
      (signal: AbortSignal) => {
        signals.push(signal);
        return task(loop, log, "long", 1_000, 1)(signal);
      },
      task(loop, log, "broken", 20, failure, true),
      "plain value",
    ], { abortLosers: true, loop });
    await loop.run();
    assert.equal(result.reason, failure);
    assert.deepEqual(log.filter((l) => l.startsWith("abort")), ["abort long at 20: AbortError"]);
    assert.equal((signals[0].reason as Error & { cause?: unknown }).cause, failure);
    assert.equal(loop.now(), 20);
    const ok = all([() => 1, (s: AbortSignal) => after(loop, 5, s.aborted)], {
      abortLosers: true,
      loop,
    });
    await loop.run();
    assert.deepEqual(ok.value, [1, false]);
    await loop.close();
  });

  await t.step(
    "the outer signal aborts every task and rejects; a throwing factory rejects",
    async () => {
      const loop = virtualLoop();
      const log: string[] = [];
      const controller = new AbortController();
      const result = all([task(loop, log, "x", 100, 1), task(loop, log, "y", 200, 2)], {
        abortLosers: true,
        loop,
        signal: controller.signal,
      });
      const reason = new Error("outer");
      loop.setTimeout(() => controller.abort(reason), 50);
      await loop.run();
      assert.equal(result.reason, reason);
      assert.deepEqual(log.filter((l) => l.startsWith("abort")), [
        "abort x at 50: Error",
        "abort y at 50: Error",
      ]);
      const thrown = new Error("factory threw");
      const threw = race([() => {
        throw thrown;
      }, task(loop, [], "z", 10, 3)], { abortLosers: true, loop });
      await loop.run();
      assert.equal(threw.reason, thrown);
      const preAborted = race([() => {
        throw new Error("never called");
      }], { abortLosers: true, loop, signal: AbortSignal.abort(reason) });
      assert.equal(preAborted.reason, reason);
      await loop.run();
      await loop.close();
    },
  );

  await t.step("without abortLosers, functions are plain values (as in the language)", async () => {
    const loop = virtualLoop();
    const fn = () => "not called";
    const result = race([fn], { loop });
    await loop.run();
    assert.equal(result.value, fn);
    await loop.close();
  });
});

Deno.test("argument errors of the helpers name the value actually passed", async (t) => {
  await t.step(
    "deadline: a finite delay beyond 2^53-1 ms is a RangeError at the call",
    async () => {
      const loop = virtualLoop();
      for (const delayMs of [2 ** 53, 1e300]) {
        assert.throws(
          () => deadline(LoopPromise.resolve(1, { loop }), delayMs, { loop }),
          (error: unknown) =>
            error instanceof RangeError &&
            error.message ===
              `Cannot set a deadline as delayMs must be at most 2^53-1 ms, or Infinity for none: current value is ${delayMs}`,
        );
      }
      await loop.close();
    },
  );

  await t.step("abortable: a missing signal is reported as undefined, not null", () => {
    assert.throws(
      () => abortable(1, undefined as never),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          "Cannot make a promise abortable as the signal must be an AbortSignal: current value is undefined",
    );
    assert.throws(
      () => abortable(1, null as never),
      (error: unknown) =>
        error instanceof TypeError && error.message.endsWith("current value is null"),
    );
  });

  await t.step("settled: a non-iterable input is a TypeError in the house format", () => {
    for (
      const [values, described] of [[undefined, "undefined"], [null, "null"], [5, "5"], [
        {},
        "[object Object]",
      ]]
    ) {
      assert.throws(
        () => settled(values as never),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message ===
            `Cannot iterate settled promises as the values must be iterable: current value is ${described}`,
      );
    }
  });
});

Deno.test("deadline and abortable let run() end once they settle, whatever a native input does", async (t) => {
  // A native input that never settles: adopting it would keep an explicit loop's run() alive,
  // but these helpers track their own result, and are done with the input once it settles.
  const never = new Promise<string>(() => {});
  await t.step("deadline", async () => {
    const loop = virtualLoop();
    const result = deadline(never, 10, { loop });
    assert.equal(result.state, "pending");
    result.catch(() => {});
    await loop.run(); // hung here before: "promise.adopt" kept it alive
    assert.equal((result.reason as DOMException).name, "TimeoutError");
    assert.equal(loop.now(), 10);
    await loop.close();
  });
  await t.step("abortable", async () => {
    const loop = virtualLoop();
    const controller = new AbortController();
    const result = abortable(never, controller.signal, { loop });
    loop.setTimeout(() => controller.abort(new Error("gave up")), 5);
    result.catch(() => {});
    await loop.run();
    assert.equal((result.reason as Error).message, "gave up");
    await loop.close();
  });
  await t.step("a native input that settles in time still wins", async () => {
    const loop = new Loop(); // real time: the native promise settles in Deno's own turn
    const { promise, resolve } = Promise.withResolvers<string>();
    const result = deadline(promise, 60_000, { loop });
    setTimeout(() => resolve("native"), 1);
    await loop.run(); // ends with the outcome, not at the deadline (the timer is cleared)
    assert.equal(result.value, "native");
    await loop.close();
  });
});

Deno.test("helpers made on a closed loop reject with LoopClosedError instead of hanging", async () => {
  // close() rejects what is pending on the loop; nothing would ever reject what is made after.
  const loop = virtualLoop();
  await loop.close();
  const never = () => new LoopPromise(() => {}, { loop });
  const iterator = settled([never()], { loop });
  const results: LoopPromise<unknown>[] = [
    all([never()], { loop }),
    allSettled([never()], { loop }),
    race([], { loop }),
    any([never()], { loop }),
    race([(signal: AbortSignal) => new LoopPromise(() => {}, { loop }).then(() => signal)], {
      loop,
      abortLosers: true,
    }),
    abortable(never(), new AbortController().signal, { loop }),
    deadline(never(), 10, { loop }),
    deadline(never(), Infinity, { loop }),
    iterator.next(),
  ];
  const outcomes = await Promise.all(
    results.map((p) => toNative(p).then(() => "fulfilled", (e) => e)),
  );
  for (const outcome of outcomes) assert.ok(outcome instanceof LoopClosedError, String(outcome));
});

Deno.test("all/race/any with abortLosers on a closed loop start no task and reject with LoopClosedError", async () => {
  const loop = virtualLoop();
  await loop.close();
  let started = 0;
  const task = () => {
    started++;
    return 1;
  };
  const outcomes = await Promise.all(
    [all, race, any].map((combinator) =>
      toNative(combinator([task, task], { loop, abortLosers: true })).then(
        (value) => value,
        (error) => error,
      )
    ),
  );
  assert.equal(started, 0, "no task started: the caller learns it was refused");
  for (const outcome of outcomes) {
    assert.ok(outcome instanceof LoopClosedError, String(outcome));
    assert.match(
      outcome.message,
      /Cannot start the tasks of (all|race|any)\(\) as the loop ".*" is closed/,
    );
  }
  // Bad input is still a TypeError first.
  const bad = await toNative(all(5 as never, { loop, abortLosers: true })).catch((e) => e);
  assert.ok(bad instanceof TypeError);
});

Deno.test("settled(): pending counts the inputs not settled yet, also after return() and an abort", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const a = LoopPromise.withResolvers<number>({ loop });
  const b = LoopPromise.withResolvers<number>({ loop });
  const iterator = settled([a.promise, b.promise], { loop });
  assert.equal(iterator.pending, 2);
  let returned = false;
  iterator.return().then(() => returned = true);
  await loop.run();
  assert.ok(returned);
  a.resolve(1);
  await loop.run();
  assert.equal(iterator.pending, 1, "a settled after return()");
  b.resolve(2);
  await loop.run();
  assert.equal(iterator.pending, 0);

  const controller = new AbortController();
  controller.abort(new Error("stop"));
  const c = LoopPromise.withResolvers<number>({ loop });
  const aborted = settled([c.promise, 3], { loop, signal: controller.signal });
  let reason: unknown;
  aborted.next().then(undefined, (error) => reason = error);
  await loop.run();
  assert.equal((reason as Error).message, "stop");
  assert.equal(aborted.pending, 1, "the plain value settled, c has not");
  c.resolve(4);
  await loop.run();
  assert.equal(aborted.pending, 0);
  await loop.close();
});

Deno.test("settled(): a throwing iterator rejects the first next() (as a for await sees it), not the call", async (t) => {
  const boom = new Error("iterator broke");
  await t.step(
    "the iterator throws after some inputs: they are read, handled, and dropped",
    async () => {
      const unhandled: unknown[] = [];
      const loop = new Loop({
        clock: new VirtualClock(),
        onUnhandledRejection: (reason) => void unhandled.push(reason),
      });
      const never = new LoopPromise<number>(() => {}, { loop });
      function* inputs(): Generator<unknown> {
        yield LoopPromise.reject(new Error("read before the throw"), { loop });
        yield never;
        throw boom;
      }
      let iterator: ReturnType<typeof settled> | undefined;
      assert.doesNotThrow(() => iterator = settled(inputs(), { loop }));
      const seen: unknown[] = [];
      loop.submit(async () => {
        try {
          for await (const result of iterator!) seen.push(result);
          seen.push("ended");
        } catch (error) {
          seen.push(error);
        }
      });
      await loop.run(); // not kept alive by `never`: the failed iterator is not tracked
      assert.deepEqual(seen, [boom]);
      assert.deepEqual(await toNativeOn(loop, iterator!.next()), { value: undefined, done: true });
      assert.deepEqual(unhandled, []);
      await loop.close();
    },
  );
  await t.step("a throwing Symbol.iterator getter, too", async () => {
    const loop = virtualLoop();
    const values = {
      get [Symbol.iterator]() {
        throw boom;
      },
    };
    const iterator = settled(values as never, { loop });
    assert.equal(await toNativeOn(loop, iterator.next()).catch((error) => error), boom);
    await loop.close();
  });
  await t.step("bad arguments still throw at the call; an aborted signal wins", async () => {
    const loop = virtualLoop();
    const throwing = (): Iterable<unknown> => ({
      [Symbol.iterator]: () => ({
        next: () => {
          throw boom;
        },
      }),
    });
    assert.throws(() => settled(throwing(), { loop, signal: "no" as never }), TypeError);
    const stop = new Error("stop");
    const aborted = settled(throwing(), { loop, signal: AbortSignal.abort(stop) });
    assert.equal(await toNativeOn(loop, aborted.next()).catch((error) => error), stop);
    await loop.close();
  });
});

/** A signal that counts its live listeners (added, not yet removed). */
function countingSignal(): { controller: AbortController; listeners: () => number } {
  const controller = new AbortController();
  const signal = controller.signal;
  const live = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<AbortSignal["addEventListener"]>) => {
    live.add(args[1]);
    add(...args);
  }) as AbortSignal["addEventListener"];
  signal.removeEventListener = ((...args: Parameters<AbortSignal["removeEventListener"]>) => {
    live.delete(args[1]);
    remove(...args);
  }) as AbortSignal["removeEventListener"];
  return { controller, listeners: () => live.size };
}

Deno.test("helpers detach from a long-lived signal once they settle", async () => {
  // A server's shutdown signal, say, passed to every call: it must not collect a listener (holding
  // the helper's state) per call that ever used it.
  const loop = virtualLoop();
  const { controller, listeners } = countingSignal();
  const signal = controller.signal;
  const results = [
    all([after(loop, 10, 1)], { loop, signal }),
    race([after(loop, 10, 1)], { loop, signal }),
    abortable(after(loop, 10, 1), signal, { loop }),
    deadline(after(loop, 10, 1), 100, { loop, signal }),
  ];
  const iterator = settled([after(loop, 10, 1)], { loop, signal });
  assert.equal(listeners(), 5);
  await loop.run();
  assert.deepEqual(results.map((p) => p.value), [[1], 1, 1, 1]);
  assert.equal(iterator.pending, 0);
  assert.equal(listeners(), 0);
  controller.abort(new Error("shutdown"));
  await loop.close();
});

Deno.test("task-factory mode: what happens while the inputs are read", async (t) => {
  await t.step("a reading failure aborts the started tasks with it as the cause", async () => {
    const loop = virtualLoop();
    const log: string[] = [];
    const boom = new Error("iterator broke");
    const signals: AbortSignal[] = [];
    const result = race(
      (function* () {
        yield (signal: AbortSignal) => {
          signals.push(signal);
          return task(loop, log, "started", 100, 1)(signal);
        };
        throw boom;
      })(),
      { abortLosers: true, loop },
    );
    assert.equal(result.reason, boom);
    assert.equal(signals[0].aborted, true);
    const reason = signals[0].reason as DOMException;
    assert.equal(reason.name, "AbortError");
    assert.equal((reason as DOMException & { cause?: unknown }).cause, boom);
    await loop.run();
    await loop.close();
  });

  await t.step("once the outer signal aborts, no further factory is called", async () => {
    const loop = virtualLoop();
    const log: string[] = [];
    const controller = new AbortController();
    const stop = new Error("stop");
    const result = all([
      task(loop, log, "first", 100, 1),
      () => {
        log.push("start aborter");
        controller.abort(stop);
        return 2;
      },
      task(loop, log, "never", 100, 3),
    ], { abortLosers: true, loop, signal: controller.signal });
    assert.equal(result.reason, stop);
    assert.deepEqual(log, ["start first", "start aborter", "abort first at 0: Error"]);
    await loop.run();
    await loop.close();
  });

  await t.step("allSettled has no losers: abortLosers leaves functions as values", async () => {
    const loop = virtualLoop();
    let called = false;
    const fn = () => called = true;
    const result = allSettled([fn], { loop, abortLosers: true } as never);
    await loop.run();
    assert.equal(called, false);
    assert.deepEqual(result.value, [{ status: "fulfilled", value: fn }]);
    await loop.close();
  });
});

Deno.test("settled(): outcomes already buffered", async (t) => {
  await t.step("survive an abort that comes after every input settled", async () => {
    const loop = virtualLoop();
    const controller = new AbortController();
    const iterator = settled([after(loop, 10, "a"), after(loop, 20, "b")], {
      loop,
      signal: controller.signal,
    });
    await loop.run();
    assert.equal(iterator.pending, 0);
    controller.abort(new Error("too late"));
    const seen: unknown[] = [];
    const pump = (): void => {
      iterator.next().then((r) => {
        seen.push(r.done ? "done" : r.value.status === "fulfilled" ? r.value.value : r.value);
        if (!r.done) pump();
      }, (error) => seen.push(error));
    };
    loop.submit(pump);
    await loop.run();
    assert.deepEqual(seen, ["a", "b", "done"]);
    await loop.close();
  });

  await t.step("are dropped by return()", async () => {
    const loop = virtualLoop();
    const iterator = settled([after(loop, 10, "a"), after(loop, 20, "b")], { loop });
    await loop.run();
    assert.equal(iterator.pending, 0);
    let returned: unknown;
    let next: unknown;
    loop.submit(() => {
      iterator.return().then((r) => returned = r);
      iterator.next().then((r) => next = r);
    });
    await loop.run();
    assert.deepEqual(returned, { value: undefined, done: true });
    assert.deepEqual(next, { value: undefined, done: true });
    await loop.close();
  });
});
