import assert from "node:assert/strict";
import { currentLoop, defaultLoop, Loop, type Timer, VirtualClock } from "../../loop/mod.ts";
import {
  clearImmediate,
  clearInterval,
  clearTimeout,
  setImmediate,
  setInterval,
  setTimeout,
} from "../../timers/mod.ts";

Deno.test("ids are positive safe integers, shared by all kinds and never reused", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const seen = new Set<number>();
  let last = 0;
  for (let round = 0; round < 3; round++) {
    const handles = [
      loop.setTimeout(() => {}, 1),
      loop.setInterval(() => {}, 1),
      loop.setImmediate(() => {}),
    ];
    for (const handle of handles) {
      assert.ok(Number.isSafeInteger(handle.id) && handle.id > last, `id ${handle.id}`);
      assert.equal(Number(handle), handle.id);
      assert.equal(+handle, handle.id);
      assert.ok(!seen.has(handle.id));
      seen.add(handle.id);
      last = handle.id;
      loop.clearTimeout(handle);
    }
    loop.setTimeout(() => {}, 0);
    await loop.run(); // fired and cleared timers free nothing that could be handed out again
  }
  await loop.close();
});

Deno.test("clearing by id, interchangeably, and unknown or stale ids as no-ops", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const timeout = loop.setTimeout(() => log.push("timeout"), 5);
  const interval = loop.setInterval(() => log.push("interval"), 5);
  const immediate = loop.setImmediate(() => log.push("immediate"));
  const keeper = loop.setTimeout(() => log.push("keeper"), 10);
  const fired = loop.setTimeout(() => log.push("fired"), 0);
  loop.runOnce();
  assert.deepEqual(log, ["fired", "immediate"]);
  log.length = 0;
  const staleId = Number(fired);
  loop.clearInterval(Number(timeout)); // a timeout through clearInterval, by id
  loop.clearTimeout(interval); // an interval through clearTimeout, by handle
  for (const junk of [staleId, 0, -1, 1e9, NaN, "nope", undefined, null, {}, Symbol("x")]) {
    loop.clearTimeout(junk as never);
    loop.clearInterval(junk as never);
    loop.clearImmediate(junk as never);
  }
  loop.clearTimeout(String(Number(keeper)) as never); // Node accepts the id as a string too
  const other = new Loop({ clock });
  const foreign = other.setTimeout(() => log.push("foreign"), 1);
  loop.clearTimeout(foreign); // another loop's handle: not ours to clear
  loop.clearTimeout(Number(foreign)); // nor its id (which means something else here, if anything)
  await loop.run();
  await other.run();
  assert.deepEqual(log, ["foreign"]);
  assert.equal(immediate.hasRef(), true);
  await loop.close();
  await other.close();
});

Deno.test("clearTimeout(Number(handle)) works after a fired timeout was refreshed", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  let fired = 0;
  const timer = loop.setTimeout(() => fired++, 5);
  const id = Number(timer);
  await loop.run();
  assert.equal(fired, 1);
  loop.clearTimeout(id); // stale: a no-op, and it must not stop refresh()
  timer.refresh();
  loop.clearTimeout(id);
  await loop.run();
  assert.equal(fired, 1);
  assert.equal(clock.now(), 5);
  await loop.close();
});

Deno.test("ref/unref: unref'd timers do not keep run() alive, ref'd again they do", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const interval = loop.setInterval(() => log.push(`tick@${clock.now()}`), 10).unref();
  const immediate = loop.setImmediate(() => log.push("immediate")).unref();
  assert.equal(interval.hasRef(), false);
  assert.equal(immediate.hasRef(), false);
  await loop.run();
  // Nothing ref'd: run() returns after one iteration (which runs the queued immediate anyway).
  assert.deepEqual(log, ["immediate"]);
  assert.equal(clock.now(), 0);
  loop.setTimeout(() => log.push(`timeout@${clock.now()}`), 35);
  await loop.run();
  assert.deepEqual(log, ["immediate", "tick@10", "tick@20", "tick@30", "timeout@35"]);
  assert.equal(interval.ref(), interval, "ref() returns the handle");
  assert.equal(interval.hasRef(), true);
  loop.setTimeout(() => loop.clearInterval(interval), 20); // at 55
  await loop.run();
  assert.deepEqual(log.slice(5), ["tick@40", "tick@50"]);
  // A fired timer's ref state is kept and does not disturb liveness.
  const done = loop.setTimeout(() => {}, 1);
  await loop.run();
  done.unref().ref();
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});

Deno.test("refresh(): a pending timer restarts, a fired one re-arms, a cleared one stays cleared", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const pending = loop.setTimeout(() => log.push(`pending@${clock.now()}`), 10);
  const fired = loop.setTimeout(() => log.push(`fired@${clock.now()}`), 2);
  const cleared = loop.setTimeout(() => log.push("cleared"), 3);
  const interval = loop.setInterval(() => {
    log.push(`interval@${clock.now()}`);
    if (clock.now() > 30) loop.clearInterval(interval);
  }, 10);
  loop.clearTimeout(cleared);
  loop.setTimeout(() => {
    assert.equal(pending.refresh(), pending, "refresh() returns the handle");
    fired.refresh();
    cleared.refresh();
    interval.refresh(); // restarts the period from now
  }, 6);
  await loop.run();
  assert.deepEqual(log, [
    "fired@2",
    "fired@8",
    "pending@16",
    "interval@16",
    "interval@26",
    "interval@36",
  ]);
  // After the interval was cleared, refresh() keeps it cleared.
  interval.refresh();
  await loop.run();
  assert.equal(log.length, 6);
  await loop.close();
});

Deno.test("refresh() of an unref'd fired timer does not make it keep the loop alive", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  let fired = 0;
  const timer = loop.setTimeout(() => fired++, 1);
  await loop.run();
  timer.unref().refresh();
  await loop.run();
  assert.equal(fired, 1, "unref'd: run() did not wait for it");
  timer.ref();
  await loop.run();
  assert.equal(fired, 2);
  await loop.close();
});

Deno.test("bad arguments: TypeError for callbacks, RangeError for Infinity; the policy for odd delays", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  for (const bad of ["console.log(1)", null, undefined, 42, {}]) {
    assert.throws(() => loop.setTimeout(bad as never, 1), TypeError);
    assert.throws(() => loop.setInterval(bad as never, 1), TypeError);
    assert.throws(() => loop.setImmediate(bad as never), TypeError);
    assert.throws(() => setTimeout(bad as never, 1), TypeError);
    assert.throws(() => setInterval(bad as never, 1), TypeError);
    assert.throws(() => setImmediate(bad as never), TypeError);
  }
  for (const delayMs of [Infinity, Number.MAX_VALUE, 2 ** 60]) {
    assert.throws(() => loop.setTimeout(() => {}, delayMs), RangeError);
    assert.throws(() => loop.setInterval(() => {}, delayMs), RangeError);
    assert.throws(() => setTimeout(() => {}, delayMs), RangeError);
  }
  assert.throws(() => loop.setTimeout(() => {}, Infinity), /current value is Infinity/);
  assert.deepEqual(loop.aliveReasons(), [], "nothing was scheduled by a failed call");
  const firedAt: Record<string, number> = {};
  const delays: [string, unknown][] = [
    ["-Infinity", -Infinity],
    ["NaN", NaN],
    ["missing", undefined],
    ["negative", -5],
    ["string", "7"],
    ["null", null],
    ["fraction", 0.25],
    ["2^31", 2 ** 31],
    ["2^31-1", 2 ** 31 - 1],
    ["2^40", 2 ** 40],
  ];
  for (const [label, delayMs] of delays) {
    loop.setTimeout(() => (firedAt[label] = clock.now()), delayMs as number);
  }
  await loop.run();
  assert.deepEqual(firedAt, {
    "-Infinity": 0,
    NaN: 0,
    missing: 0,
    negative: 0,
    string: 7,
    null: 0,
    fraction: 0.25,
    "2^31": 2 ** 31,
    "2^31-1": 2 ** 31 - 1,
    "2^40": 2 ** 40,
  });
  await loop.close();
});

Deno.test("callback arguments are passed through", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: unknown[] = [];
  loop.setTimeout((a: number, b: string) => log.push(["timeout", a, b]), 1, 1, "x");
  const interval = loop.setInterval(
    (a: number) => {
      log.push(["interval", a]);
      loop.clearInterval(interval);
    },
    1,
    2,
  );
  loop.setImmediate((a: boolean) => log.push(["immediate", a]), true);
  await loop.run();
  assert.deepEqual(log, [["immediate", true], ["timeout", 1, "x"], ["interval", 2]]);
  await loop.close();
});

Deno.test("arguments keep their count, explicit undefined included, on the loop and the free functions", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const seen: unknown[][] = [];
  const record = (...args: unknown[]) => seen.push(args);
  loop.submit(() => {
    setTimeout(record, 2);
    setTimeout(record, 2, undefined);
    setTimeout(record, 2, "a", undefined, 3);
    const interval = setInterval(
      (...args: unknown[]) => {
        record(...args);
        clearInterval(interval);
      },
      3,
      "i",
    );
    setImmediate(record);
    setImmediate(record, undefined, "b");
  });
  loop.setTimeout(record, 4, 1, 2, 3, 4, 5);
  loop.setTimeout(record);
  await loop.run();
  assert.deepEqual(seen, [
    [], // loop.setTimeout(record): due in the first timers phase, before the task runs
    [], // the immediates
    [undefined, "b"],
    [], // the timeouts at 2 ms
    [undefined],
    ["a", undefined, 3],
    ["i"],
    [1, 2, 3, 4, 5],
  ]);
  await loop.close();
});

Deno.test("the free functions schedule on the running loop; a handle is cleared on its own loop", async () => {
  const clock = new VirtualClock();
  const a = new Loop({ clock, label: "a" });
  const b = new Loop({ clock, label: "b" });
  const log: string[] = [];
  let fromA: Timer | undefined;
  let intervalFromA: Timer | undefined;
  let immediateFromA: Timer | undefined;
  a.submit(() => {
    assert.equal(currentLoop(), a);
    fromA = setTimeout(() => log.push("timeout on a"), 5);
    intervalFromA = setInterval(() => log.push("interval on a"), 5);
    setTimeout(() => log.push(`kept on a@${clock.now()}`), 1);
  });
  a.setImmediate(() => {
    // Queued from the check phase: it waits for the next iteration.
    immediateFromA = setImmediate(() => log.push("immediate on a"));
  });
  a.runOnce();
  assert.equal(a.aliveReasons().length, 4);
  assert.equal(b.aliveReasons().length, 0);
  b.submit(() => {
    assert.equal(currentLoop(), b);
    clearTimeout(fromA);
    clearInterval(intervalFromA);
    clearImmediate(immediateFromA);
    clearTimeout(12345); // an id means the current loop: b has none such, a no-op
    clearTimeout(undefined);
  });
  await b.run();
  await a.run();
  assert.deepEqual(log, ["kept on a@1"]);
  await a.close();
  await b.close();
});

Deno.test("the free functions use the default loop outside any loop callback", async () => {
  const fired = Promise.withResolvers<Loop>();
  const timer = setTimeout(() => fired.resolve(currentLoop()), 1);
  assert.ok(defaultLoop().aliveReasons().some((reason) => reason.label.includes(`id ${timer.id}`)));
  const cancelled = setTimeout(() => fired.reject(new Error("cleared by id")), 0);
  clearTimeout(Number(cancelled));
  assert.equal(await fired.promise, defaultLoop());
  // Let the default loop go dormant before the sanitizers look.
  while (defaultLoop().state !== "idle") {
    await new Promise((resolve) => globalThis.setTimeout(resolve, 1));
  }
});

// A pass runs most plain timeouts without touching them (their callback comes from the store),
// so a fired timer's handle learns it fired from the store, not from a flag the pass wrote.
Deno.test("timers fired by a pass that never touched them act fired: refresh, clear, ids", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const shared = () => log.push(`shared@${clock.now()}`);
  const first = loop.setTimeout(shared, 1);
  const second = loop.setTimeout(shared, 1);
  const third = loop.setTimeout(shared, 1);
  await loop.run();
  assert.deepEqual(log, ["shared@1", "shared@1", "shared@1"]);
  first.refresh(); // fired: re-armed
  loop.clearTimeout(second); // fired: a no-op that leaves it cleared
  second.refresh(); // cleared: stays cleared
  const id = Number(third); // a fired timer's id is not in the index...
  loop.clearTimeout(id); // ...so this is a no-op
  third.refresh(); // and it re-arms
  await loop.run();
  assert.deepEqual(log.slice(3), ["shared@2", "shared@2"]);
  await loop.close();
});

Deno.test("a timer fired from a run the store has since dropped can still be refreshed", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  let fired = 0;
  const handles: Timer[] = [];
  // 3000 durations: 3000 runs, all emptied by one pass, more than the store keeps for reuse.
  for (let i = 0; i < 3000; i++) handles.push(loop.setTimeout(() => fired++, 1 + i / 1000));
  await loop.run();
  assert.equal(fired, 3000);
  handles[0].refresh();
  handles[2999].refresh();
  loop.clearTimeout(handles[1]);
  handles[1].refresh();
  await loop.run();
  assert.equal(fired, 3002);
  assert.equal(clock.now(), 3.999 + 3.999, "the last one re-armed for its own delay");
  await loop.close();
});

Deno.test("the nesting level of a timer fired untouched still reaches the timers it sets", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock, clampNestedTimers: true });
  const firedAtMs: number[] = [];
  // A 0 ms chain: HTML clamps the delay to 4 ms once the nesting level passes 5.
  const step = () => {
    firedAtMs.push(clock.now());
    if (firedAtMs.length < 8) loop.setTimeout(step, 0);
  };
  loop.setTimeout(step, 0);
  await loop.run();
  assert.deepEqual(firedAtMs, [0, 0, 0, 0, 0, 4, 8, 12]);
  await loop.close();
});

/**
 * Runs `body` in a subprocess with `--expose-gc`, between a prelude that makes `loop` (on a
 * virtual clock) and an empty `refs` array of WeakRefs, and an epilogue that runs the loop, gives
 * the host a turn, collects garbage and closes the loop. Returns, per ref, whether its target
 * was collected.
 */
async function collectedInSubprocess(body: string): Promise<boolean[]> {
  const loopUrl = new URL("../../loop/mod.ts", import.meta.url).href;
  const script = `
    import { Loop, VirtualClock } from ${JSON.stringify(loopUrl)};
    const loop = new Loop({ clock: new VirtualClock() });
    const refs = [];
    ${body}
    await loop.run();
    await new Promise((resolve) => setTimeout(resolve, 0));
    globalThis.gc();
    console.log(JSON.stringify(refs.map((ref) => ref.deref() === undefined)));
    await loop.close();
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("fired timers leave the id index and can be collected (subprocess, --expose-gc)", async () => {
  const body = `
    // In a function: a suspended async function's registers would keep the last one alive.
    const refreshed = [];
    (() => {
      for (let i = 0; i < 4; i++) {
        const timer = loop.setTimeout(() => {}, i);
        if (i % 2 === 0) Number(timer); // indexed: clearTimeout(id) would find it while pending
        refs.push(new WeakRef(timer));
        if (i < 2) refreshed.push(timer);
      }
    })();
    await loop.run();
    // Fired, then re-armed while indexed (or not), then fired again (the epilogue's run).
    (() => {
      for (const timer of refreshed.splice(0)) timer.refresh();
    })();
  `;
  assert.deepEqual(await collectedInSubprocess(body), [true, true, true, true]);
});

Deno.test("cleared timers and fired or cleared immediates leave the id index too (subprocess, --expose-gc)", async () => {
  const body = `
    (() => {
      // All indexed (their ids handed out): cleared by handle or by id, or fired.
      const timeout = loop.setTimeout(() => {}, 5);
      const interval = loop.setInterval(() => {}, 5);
      const clearedImmediate = loop.setImmediate(() => {});
      const firedImmediate = loop.setImmediate(() => {});
      for (const handle of [timeout, interval, clearedImmediate, firedImmediate]) {
        Number(handle);
        refs.push(new WeakRef(handle));
      }
      loop.clearTimeout(timeout);
      loop.clearInterval(Number(interval));
      loop.clearImmediate(clearedImmediate);
    })();
  `;
  assert.deepEqual(await collectedInSubprocess(body), [true, true, true, true]);
});

Deno.test("an unref'd timer re-armed by refresh() fires without counting as ref'd", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  const shared = () => log.push(`shared@${clock.now()}`);
  const timer = loop.setTimeout(shared, 1);
  await loop.run();
  timer.unref().refresh(); // pending at 2, unref'd from the start
  loop.setTimeout(shared, 5); // ref'd: keeps run() alive to 6, past the unref'd one
  await loop.run();
  assert.deepEqual(log, ["shared@1", "shared@2", "shared@6"]);
  await loop.close();
});

Deno.test("a Symbol delay is a TypeError in the house format, and schedules nothing", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const delay = Symbol("soon") as never;
  for (
    const schedule of [
      () => loop.setTimeout(() => {}, delay),
      () => loop.setInterval(() => {}, delay),
    ]
  ) {
    assert.throws(
      schedule,
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          "Cannot schedule a timer as the delay must convert to a number: current value is Symbol(soon)",
    );
  }
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});

Deno.test("clearTimeout(handle.id) cancels as clearTimeout(Number(handle)) does, for every kind", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const log: string[] = [];
  const timeout = loop.setTimeout(() => log.push("timeout"), 5);
  const interval = loop.setInterval(() => log.push("interval"), 5);
  const immediate = loop.setImmediate(() => log.push("immediate"));
  // The id read as a property, never converted: it must still name the timer.
  const ids = [timeout.id, interval.id, immediate.id];
  loop.clearTimeout(ids[0]);
  loop.clearInterval(ids[1]);
  loop.clearImmediate(ids[2]);
  loop.setTimeout(() => {
    log.push("keeper");
    loop.clearInterval(interval); // a guard: a failing test must still end
  }, 20);
  await loop.run();
  assert.deepEqual(log, ["keeper"]);
  // Inside a callback, through the free functions, with a shared-callback run of timeouts.
  const shared = () => log.push("shared");
  await new Promise<void>((resolve, reject) => {
    loop.submit(() => {
      const first = setTimeout(shared, 1);
      const second = setTimeout(shared, 1);
      clearTimeout(second.id);
      assert.equal(first.hasRef(), true);
    });
    loop.run().then(resolve, reject);
  });
  assert.deepEqual(log, ["keeper", "shared"]);
  await loop.close();
});
