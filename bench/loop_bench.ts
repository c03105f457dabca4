// Task and microtask dispatch against Deno's native queueMicrotask, in the same run.
// Target (issue 2): submit + dispatch of 1M tasks at least 5x faster than native queueMicrotask.
import { Loop } from "../mod.ts";

const COUNT = 1_000_000;
let sink = 0;
const work = (): void => {
  sink++;
};
/** A queue that dropped callbacks must not look fast: every one of them has to have run. */
function assertRan(before: number, count: number): void {
  if (sink - before !== count) throw new Error(`${sink - before} of ${count} callbacks ran`);
}

// Each 1M loop is a function of its own, native entries too: in a bench function, V8 compiled
// the first call's loop on the stack (OSR) before the code after it had run, and that code then
// bailed out of the compiled function on every later call (a deopt loop), which the figures
// would measure. (timers_bench.ts says more.)
function queueNative(count: number): void {
  for (let i = 0; i < count; i++) queueMicrotask(work);
}
function submitAll(loop: Loop): void {
  for (let i = 0; i < COUNT; i++) loop.submit(work);
}
function queueAll(loop: Loop): void {
  for (let i = 0; i < COUNT; i++) loop.queueMicrotask(work);
}

Deno.bench({
  name: "native queueMicrotask x 1M",
  group: "tasks",
  baseline: true,
  async fn() {
    const before = sink;
    const { promise, resolve } = Promise.withResolvers<void>();
    queueNative(COUNT - 1);
    queueMicrotask(() => resolve());
    await promise;
    assertRan(before, COUNT - 1);
  },
});

const taskLoop = new Loop();
Deno.bench({
  name: "loop.submit + dispatch x 1M",
  group: "tasks",
  async fn() {
    const before = sink;
    submitAll(taskLoop);
    await taskLoop.run();
    assertRan(before, COUNT);
  },
});

Deno.bench({
  name: "native queueMicrotask x 1M",
  group: "microtasks",
  baseline: true,
  async fn() {
    const before = sink;
    const { promise, resolve } = Promise.withResolvers<void>();
    queueNative(COUNT - 1);
    queueMicrotask(() => resolve());
    await promise;
    assertRan(before, COUNT - 1);
  },
});

const batchMicroLoop = new Loop();
Deno.bench({
  name: "loop.queueMicrotask x 1M",
  group: "microtasks",
  fn() {
    const before = sink;
    queueAll(batchMicroLoop);
    batchMicroLoop.runOnce();
    assertRan(before, COUNT);
  },
});

Deno.bench({
  name: "native queueMicrotask chain x 1M (each queues the next)",
  group: "microtask chains",
  baseline: true,
  async fn() {
    const { promise, resolve } = Promise.withResolvers<void>();
    let left = COUNT;
    const step = (): void => {
      if (--left === 0) resolve();
      else queueMicrotask(step);
    };
    queueMicrotask(step);
    await promise;
  },
});

const microLoop = new Loop();
Deno.bench({
  name: "loop.queueMicrotask chain x 1M (each queues the next)",
  group: "microtask chains",
  fn() {
    let left = COUNT;
    const step = (): void => {
      if (--left !== 0) microLoop.queueMicrotask(step);
    };
    microLoop.queueMicrotask(step);
    microLoop.runOnce();
    if (left !== 0) throw new Error(`${left} links of the chain did not run`);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
