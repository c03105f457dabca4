// Without FFI the loop waits in Deno's own timers (plus short yields): with the globals replaced by
// install(), those waits must still reach Deno's, not the loop's. Permissions are per test module,
// so revoking FFI here affects only this file.
import assert from "node:assert/strict";
import { defaultLoop, Loop } from "../../loop/mod.ts";
import { install, setTimeout as loopSetTimeout, sleep } from "../../timers/mod.ts";

await Deno.permissions.revoke({ name: "ffi" });

Deno.test("a real-clock loop still waits correctly while install() replaced the globals", async () => {
  const loop = new Loop();
  const firedAfter: number[] = [];
  {
    using _timers = install(loop);
    const startMs = performance.now();
    setTimeout(() => firedAfter.push(performance.now() - startMs), 5);
    setTimeout(() => firedAfter.push(performance.now() - startMs), 0.5);
    await loop.run();
  }
  assert.equal(firedAfter.length, 2);
  assert.ok(firedAfter[0] >= 0.5 && firedAfter[1] >= 5, `never early: ${firedAfter}`);
  await loop.close();
});

Deno.test("the default loop still starts itself while install() replaced queueMicrotask", async () => {
  const log: string[] = [];
  {
    using _timers = install(defaultLoop());
    const done = Promise.withResolvers<void>();
    loopSetTimeout(() => {
      log.push("timer");
      done.resolve();
    }, 1);
    queueMicrotask(() => log.push("microtask on the default loop"));
    await done.promise;
  }
  assert.deepEqual(log, ["microtask on the default loop", "timer"]);
  await sleep(1);
  while (defaultLoop().state !== "idle") await new Promise((resolve) => setTimeout(resolve, 1));
});

Deno.test("waiting for a timer beyond 2^31-1 ms sleeps in Deno's timers rather than spinning", async () => {
  // Deno's setTimeout fires a longer delay after 1 ms: the loop must cap its own, not spin on
  // MessageChannel yields until the deadline (counted here) for the 24 days it is away.
  const postMessage = MessagePort.prototype.postMessage;
  let posted = 0;
  MessagePort.prototype.postMessage = function (this: MessagePort, ...args: [unknown]) {
    posted++;
    return postMessage.apply(this, args);
  };
  try {
    const loop = new Loop();
    let fired = false;
    const far = loop.setTimeout(() => fired = true, 2 ** 31 + 5);
    setTimeout(() => loop.clearTimeout(far), 100);
    await loop.run();
    assert.equal(fired, false);
    assert.ok(posted < 20, `${posted} yields while waiting`);
    await loop.close();
  } finally {
    MessagePort.prototype.postMessage = postMessage;
  }
});
