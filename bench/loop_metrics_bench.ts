// What metrics cost a loop (issue 7; target: at most +15%): the same workloads on a loop with
// metrics off (baseline) and on. In a file of its own, so nothing else runs in its isolate, and
// every loop runs its workload before any is measured: the phase code is shared by loops with and
// without metrics, and measured one after the other, the metrics-off loop would run code V8
// compiled for it alone while the metrics-on one paid for the recompilation for both (that alone
// read as +20% here, where interleaved runs show none).
//
//   deno bench --allow-all bench/loop_metrics_bench.ts
import { Loop } from "../mod.ts";

let sink = 0;
const work = (): void => {
  sink++;
};

const TASKS = 1_000_000;
async function taskWorkload(loop: Loop): Promise<void> {
  const before = sink;
  for (let i = 0; i < TASKS; i++) loop.submit(work);
  await loop.run();
  if (sink - before !== TASKS) throw new Error(`${sink - before} of ${TASKS} tasks ran`);
}

const TIMERS = 100_000;
const timerDelays = new Float64Array(TIMERS);
for (let i = 0; i < TIMERS; i++) timerDelays[i] = ((i * 7919) % 1000) / 1000;
async function timerWorkload(loop: Loop): Promise<void> {
  const before = sink;
  loop.submit(() => {
    for (let i = 0; i < TIMERS; i++) loop.setTimeout(work, timerDelays[i]);
  });
  await loop.run();
  if (sink - before !== TIMERS) throw new Error(`${sink - before} of ${TIMERS} timers fired`);
}

const CHAIN = 100_000;
async function chainWorkload(loop: Loop): Promise<void> {
  let left = CHAIN;
  const step = (): void => {
    if (--left !== 0) loop.submit(step);
  };
  loop.submit(step);
  await loop.run();
  if (left !== 0) throw new Error(`${left} links of the chain did not run`);
}

const workloads = [
  { what: "1M tasks", run: taskWorkload },
  { what: "100k timers", run: timerWorkload },
  { what: "100k-task chain (one task per iteration)", run: chainWorkload },
];
const loops = workloads.map(() => ({ off: new Loop(), on: new Loop({ metrics: true }) }));

for (let round = 0; round < 3; round++) {
  for (const [i, { run }] of workloads.entries()) {
    await run(loops[i].off);
    await run(loops[i].on);
  }
}

for (const [i, { what, run }] of workloads.entries()) {
  Deno.bench({
    name: `${what}, metrics off`,
    group: `metrics cost: ${what}`,
    baseline: true,
    async fn() {
      await run(loops[i].off);
    },
  });
  Deno.bench({
    name: `${what}, metrics on`,
    group: `metrics cost: ${what}`,
    async fn() {
      await run(loops[i].on);
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
  for (const { off, on } of loops) {
    void off.close();
    void on.close();
  }
});
