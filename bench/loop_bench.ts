// Task and microtask dispatch against Deno's native queueMicrotask, in the same run.
// Target (issue 2): submit + dispatch of 1M tasks at least 5x faster than native queueMicrotask.
import { Loop } from "../mod.ts";

const COUNT = 1_000_000;
let sink = 0;
const work = (): void => {
  sink++;
};

Deno.bench({
  name: "native queueMicrotask x 1M",
  group: "tasks",
  baseline: true,
  async fn() {
    const { promise, resolve } = Promise.withResolvers<void>();
    for (let i = 0; i < COUNT - 1; i++) queueMicrotask(work);
    queueMicrotask(() => resolve());
    await promise;
  },
});

const taskLoop = new Loop();
Deno.bench({
  name: "loop.submit + dispatch x 1M",
  group: "tasks",
  async fn() {
    for (let i = 0; i < COUNT; i++) taskLoop.submit(work);
    await taskLoop.run();
  },
});

const metricsLoop = new Loop({ metrics: true });
Deno.bench({
  name: "loop.submit + dispatch x 1M, metrics on",
  group: "tasks",
  async fn() {
    for (let i = 0; i < COUNT; i++) metricsLoop.submit(work);
    await metricsLoop.run();
  },
});

Deno.bench({
  name: "native queueMicrotask x 1M",
  group: "microtasks",
  baseline: true,
  async fn() {
    const { promise, resolve } = Promise.withResolvers<void>();
    for (let i = 0; i < COUNT - 1; i++) queueMicrotask(work);
    queueMicrotask(() => resolve());
    await promise;
  },
});

const batchMicroLoop = new Loop();
Deno.bench({
  name: "loop.queueMicrotask x 1M",
  group: "microtasks",
  fn() {
    for (let i = 0; i < COUNT; i++) batchMicroLoop.queueMicrotask(work);
    batchMicroLoop.runOnce();
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
  },
});

// Metrics cost (issue 7): the same timer and task-chain workloads with metrics off and on.
const TIMERS = 100_000;
const timerDelays = new Float64Array(TIMERS);
for (let i = 0; i < TIMERS; i++) timerDelays[i] = ((i * 7919) % 1000) / 1000;
const timersOff = new Loop();
const timersOn = new Loop({ metrics: true });
function timerWorkload(loop: Loop): Promise<void> {
  loop.submit(() => {
    for (let i = 0; i < TIMERS; i++) loop.setTimeout(work, timerDelays[i]);
  });
  return loop.run();
}
Deno.bench({
  name: "100k timers, metrics off",
  group: "metrics cost: timers",
  baseline: true,
  async fn() {
    await timerWorkload(timersOff);
  },
});
Deno.bench({
  name: "100k timers, metrics on",
  group: "metrics cost: timers",
  async fn() {
    await timerWorkload(timersOn);
  },
});

const CHAIN = 100_000;
const chainOff = new Loop();
const chainOn = new Loop({ metrics: true });
function chainWorkload(loop: Loop): Promise<void> {
  let left = CHAIN;
  const step = (): void => {
    if (--left !== 0) loop.submit(step);
  };
  loop.submit(step);
  return loop.run();
}
Deno.bench({
  name: "100k-task chain (one task per iteration), metrics off",
  group: "metrics cost: iterations",
  baseline: true,
  async fn() {
    await chainWorkload(chainOff);
  },
});
Deno.bench({
  name: "100k-task chain (one task per iteration), metrics on",
  group: "metrics cost: iterations",
  async fn() {
    await chainWorkload(chainOn);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
