import { Loop } from "../loop/loop.ts";
const N = 100_000;
const loop = new Loop();
const delays = new Float64Array(N);
for (let i = 0; i < N; i++) delays[i] = ((i * 7919) % 1000) / 1000;
let fired = 0;
const cb = () => { fired++; };
const handles: unknown[] = new Array(N);
async function time(label: string, fn: () => void | Promise<void>, reps = 40) {
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) { const t = performance.now(); await fn(); ts.push(performance.now() - t); }
  ts.sort((a, b) => a - b);
  console.log(label.padEnd(50), (ts[Math.floor(reps / 2)] * 1e6 / N).toFixed(0), "ns/timer (median)");
}
await time("outside: schedule+cancel", () => {
  for (let i = 0; i < N; i++) handles[i] = loop.setTimeout(cb, 1000 + delays[i]);
  for (let i = 0; i < N; i++) loop.clearTimeout(handles[i] as never);
});
await time("inside batch: schedule+cancel", () => {
  loop.submit(() => {
    for (let i = 0; i < N; i++) handles[i] = loop.setTimeout(cb, 1000 + delays[i]);
    for (let i = 0; i < N; i++) loop.clearTimeout(handles[i] as never);
  });
  loop.runOnce();
});
await time("inside batch: schedule only + clear all (reverse)", () => {
  loop.submit(() => {
    for (let i = 0; i < N; i++) handles[i] = loop.setTimeout(cb, 1000 + delays[i]);
    for (let i = N - 1; i >= 0; i--) loop.clearTimeout(handles[i] as never);
  });
  loop.runOnce();
});
await time("outside: schedule + run() fire", async () => {
  for (let i = 0; i < N; i++) loop.setTimeout(cb, delays[i]);
  await loop.run();
});
await time("inside batch: schedule + run() fire", async () => {
  loop.submit(() => { for (let i = 0; i < N; i++) loop.setTimeout(cb, delays[i]); });
  await loop.run();
});
await time("inside batch: schedule + run() fire, delay 0", async () => {
  loop.submit(() => { for (let i = 0; i < N; i++) loop.setTimeout(cb, 0); });
  await loop.run();
});
