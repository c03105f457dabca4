import assert from "node:assert/strict";
import { Loop, VirtualClock } from "../../mod.ts";

Deno.test("aliveReasons() names every ref'd source", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  assert.deepEqual(loop.aliveReasons(), []);
  loop.submit(() => {});
  loop.setTimeout(function retryConnect() {}, 250);
  loop.setInterval(function heartbeat() {}, 1000);
  loop.setImmediate(function flush() {});
  loop.setTimeout(function background() {}, 5).unref();
  const reasons = loop.aliveReasons();
  assert.deepEqual(reasons.map((reason) => reason.kind), [
    "task",
    "timer",
    "interval",
    "immediate",
  ]);
  assert.match(reasons[1].label, /^retryConnect \(id \d+, due in 250\.000 ms\)$/);
  assert.match(reasons[2].label, /^heartbeat/);
  assert.match(reasons[3].label, /^flush/);
  await loop.close();
});

Deno.test("unref'd timers do not keep run() alive; ref'd again they do", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  let fired = 0;
  const timer = loop.setTimeout(() => fired++, 100).unref();
  assert.equal(timer.hasRef(), false);
  await loop.run();
  assert.equal(fired, 0);
  assert.equal(clock.now(), 0);
  timer.ref();
  assert.equal(timer.hasRef(), true);
  await loop.run();
  assert.equal(fired, 1);
  assert.equal(clock.now(), 100);
  await loop.close();
});

Deno.test("an unref'd timer still fires while something else keeps the loop alive", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const log: string[] = [];
  loop.setTimeout(() => log.push("unref'd @10"), 10).unref();
  loop.setTimeout(() => log.push("ref'd @20"), 20);
  await loop.run();
  assert.deepEqual(log, ["unref'd @10", "ref'd @20"]);
  await loop.close();
});

Deno.test("a cleared or fired immediate is no alive reason, and its ref()/unref() changes nothing", async () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const cleared = loop.setImmediate(function cleared() {});
  loop.clearImmediate(cleared);
  assert.deepEqual(loop.aliveReasons(), []);
  const fired = loop.setImmediate(function fired() {});
  assert.equal(loop.runOnce(), false);
  for (const immediate of [cleared, fired]) {
    immediate.unref();
    assert.equal(immediate.hasRef(), false);
    immediate.ref();
    immediate.unref();
  }
  assert.equal(loop.runOnce(), false, "nothing ref'd is left");
  // Liveness is untouched: run() still waits for a ref'd timer, and returns once it fired.
  let ran = 0;
  loop.setTimeout(() => ran++, 10);
  await loop.run();
  assert.equal(ran, 1);
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.close();
});
