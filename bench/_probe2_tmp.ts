import { Loop } from "../loop/loop.ts";
const N = 100_000;
const loop = new Loop();
const delays = new Float64Array(N);
for (let i = 0; i < N; i++) delays[i] = ((i * 7919) % 1000) / 1000;
let fired = 0;
const cb = () => { fired++; };
for (let r = 0; r < 60; r++) {
  loop.submit(() => { for (let i = 0; i < N; i++) loop.setTimeout(cb, delays[i]); });
  await loop.run();
}
