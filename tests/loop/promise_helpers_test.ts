import assert from "node:assert/strict";
import { Loop, VirtualClock } from "../../loop/mod.ts";
import { LoopPromise } from "../../promise/mod.ts";

Deno.test("loop.promise(executor) binds a LoopPromise to that loop", async (t) => {
  await t.step("runs the executor at once; reactions run as that loop's microtasks", async () => {
    await using loop = new Loop({ clock: new VirtualClock() });
    const log: string[] = [];
    const promise = loop.promise<number>((resolve) => {
      log.push("executor");
      loop.setTimeout(() => resolve(7), 30);
    });
    log.push("returned");
    assert.ok(promise instanceof LoopPromise);
    assert.equal(promise.loop, loop);
    promise.then((value) => log.push(`then ${value} at ${loop.now()}`));
    loop.setTimeout(() => loop.submit(() => log.push("task after the timer")), 30);
    await loop.run();
    assert.deepEqual(log, ["executor", "returned", "then 7 at 30", "task after the timer"]);
  });

  await t.step("binds to the loop it is called on, not the current one", async () => {
    await using outer = new Loop();
    await using inner = new Loop();
    let made: LoopPromise<void> | undefined;
    outer.submit(() => {
      made = inner.promise<void>((resolve) => resolve());
    });
    await outer.run();
    assert.equal(made?.loop, inner);
    assert.equal(made?.state, "fulfilled");
  });

  await t.step("an executor that throws rejects the promise", async () => {
    await using loop = new Loop();
    const failure = new Error("boom");
    const promise = loop.promise(() => {
      throw failure;
    });
    const reasons: unknown[] = [];
    promise.catch((reason) => reasons.push(reason));
    await loop.run();
    assert.deepEqual(reasons, [failure]);
  });

  await t.step("a non-function executor is a TypeError in the house format", async () => {
    await using loop = new Loop();
    assert.throws(
      () => loop.promise(42 as never),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          "Cannot construct a LoopPromise as the executor must be a function: current value is 42",
    );
  });
});

Deno.test("loop.withResolvers() gives a pending LoopPromise on that loop", async (t) => {
  await t.step("resolve settles it; its reactions run on the loop", async () => {
    await using loop = new Loop();
    const { promise, resolve, reject } = loop.withResolvers<string>();
    assert.equal(promise.loop, loop);
    assert.equal(promise.state, "pending");
    const log: string[] = [];
    promise.then((value) => log.push(value));
    loop.submit(() => {
      resolve("first");
      resolve("ignored");
      reject(new Error("ignored too"));
      log.push("task");
    });
    await loop.run();
    assert.deepEqual(log, ["task", "first"]);
    assert.equal(promise.value, "first");
  });

  await t.step("reject rejects it with the reason", async () => {
    await using loop = new Loop();
    const { promise, reject } = loop.withResolvers<never>();
    const reason = new RangeError("no");
    let caught: unknown;
    promise.catch((error) => caught = error);
    loop.submit(() => reject(reason));
    await loop.run();
    assert.equal(caught, reason);
    assert.equal(promise.state, "rejected");
  });

  await t.step("on a closed loop the promise still settles (on native microtasks)", async () => {
    const loop = new Loop();
    await loop.close();
    const { promise, resolve } = loop.withResolvers<number>();
    resolve(5);
    assert.equal(await promise.then((n) => n + 1), 6);
    assert.equal(await loop.promise<number>((ok) => ok(1)), 1);
  });
});

// loop/loop.ts and promise/loop_promise.ts import each other: check that every entry point works
// when it is the first module a process loads.
Deno.test("each entry point loads first in a fresh process and loop.promise() works", async (t) => {
  const root = new URL("../../", import.meta.url);
  const entries = [
    "mod.ts",
    "loop/mod.ts",
    "promise/mod.ts",
    "timers/mod.ts",
    "loop/loop.ts",
    "loop/default_loop.ts",
    "promise/loop_promise.ts",
    "promise/all.ts",
  ];
  for (const entry of entries) {
    await t.step(entry, async () => {
      const first = new URL(entry, root).href;
      const loopUrl = new URL("loop/mod.ts", root).href;
      const promiseUrl = new URL("promise/mod.ts", root).href;
      const script = `
        await import(${JSON.stringify(first)});
        const { Loop } = await import(${JSON.stringify(loopUrl)});
        const { LoopPromise, all } = await import(${JSON.stringify(promiseUrl)});
        const loop = new Loop();
        const a = loop.promise((resolve) => resolve(1));
        const { promise: b, resolve } = loop.withResolvers();
        loop.submit(() => resolve(2));
        const both = all([a, b, LoopPromise.resolve(3, { loop })], { loop });
        let values;
        both.then((v) => values = v);
        await loop.run();
        await loop.close();
        console.log(JSON.stringify({ values, isLoopPromise: a instanceof LoopPromise }));
      `;
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--no-check", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stdout)), {
        values: [1, 2, 3],
        isLoopPromise: true,
      });
    });
  }
});
