import assert from "node:assert/strict";
import { currentLoop, defaultLoop, Loop } from "../../mod.ts";

Deno.test("defaultLoop() is one loop; currentLoop() is the running loop, else the default", async () => {
  assert.equal(defaultLoop(), defaultLoop());
  assert.equal(defaultLoop().label, "default");
  assert.equal(currentLoop(), defaultLoop());
  const loop = new Loop();
  const seen: Loop[] = [];
  loop.submit(() => {
    seen.push(currentLoop());
    const nested = new Loop();
    nested.submit(() => seen.push(currentLoop()));
    nested.runOnce();
    seen.push(currentLoop());
  });
  await loop.run();
  assert.equal(seen[0], loop);
  assert.notEqual(seen[1], loop);
  assert.equal(seen[2], loop);
  assert.equal(currentLoop(), defaultLoop());
  await loop.close();
});

Deno.test("the default loop starts itself when work arrives and goes dormant when idle", async () => {
  const loop = defaultLoop();
  const log: string[] = [];
  const done = Promise.withResolvers<void>();
  loop.submit(() => log.push("task"));
  loop.setTimeout(() => {
    log.push("timer");
    done.resolve();
  }, 2);
  assert.deepEqual(log, [], "nothing runs synchronously");
  await done.promise;
  assert.deepEqual(log, ["task", "timer"]);
  // Dormant again soon after (run() gives Deno one turn before it decides nothing is left); the
  // test's op sanitizer would fail if it kept a timer or message port alive.
  for (let turn = 0; turn < 50 && loop.state !== "idle"; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.equal(loop.state, "idle");
});

Deno.test("an unref'd timer on the dormant default loop fires while the process lives on", async (t) => {
  const loop = defaultLoop();
  await t.step("it fires at its deadline, never before", async () => {
    const log: string[] = [];
    const startMs = performance.now();
    let firedAfterMs = -1;
    loop.setTimeout(() => {
      firedAfterMs = performance.now() - startMs;
      log.push("unref'd");
    }, 20).unref();
    // Something else keeps the process alive meanwhile: Deno's own timer, as a server would.
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(log, ["unref'd"]);
    assert.ok(firedAfterMs >= 20, `fired after ${firedAfterMs} ms`);
    assert.equal(loop.state, "idle");
  });
  await t.step("a cleared one does not fire, and leaves no Deno timer behind", async () => {
    const log: string[] = [];
    const timer = loop.setTimeout(() => log.push("cleared"), 20).unref();
    loop.setTimeout(() => log.push("kept"), 30).unref();
    await new Promise((resolve) => setTimeout(resolve, 5));
    loop.clearTimeout(timer);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(log, ["kept"]);
  });
});
