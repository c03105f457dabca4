// LoopPromise against native Promise, same run. Every LoopPromise variant includes draining its
// loop (`loop.runOnce()` runs the queued loop microtasks to completion), as the native ones
// include V8 draining its microtask queue (`await`).
//
//   deno bench --allow-all bench/promise_bench.ts
//   deno run --allow-all --v8-flags=--expose-gc bench/promise_bench.ts   (heap bytes per promise)
import { Loop } from "../loop/mod.ts";
import { all, LoopPromise } from "../promise/mod.ts";

const loop = new Loop({ label: "bench" });
const inc = (n: number): number => n + 1;
const noop = (): void => {};

/** Runs `work` as a task of the bench loop and drains it (the task and every microtask it queues). */
function onLoop(work: () => void): void {
  loop.submit(work);
  loop.runOnce();
}

// (a) create + resolve + one then, 10k per iteration.
const CRT = 10_000;
Deno.bench({
  name: "native: new Promise + resolve + then (10k)",
  group: "create+resolve+then",
  baseline: true,
  async fn() {
    let last: Promise<number> | undefined;
    for (let i = 0; i < CRT; i++) last = new Promise<number>((resolve) => resolve(i)).then(inc);
    if (await last !== CRT) throw new Error("bad then");
  },
});
Deno.bench({
  name: "LoopPromise: new LoopPromise + resolve + then (10k)",
  group: "create+resolve+then",
  fn() {
    let last: LoopPromise<number> | undefined;
    onLoop(() => {
      for (let i = 0; i < CRT; i++) {
        last = new LoopPromise<number>((resolve) => resolve(i)).then(inc);
      }
    });
    if (last!.value !== CRT) throw new Error("bad then");
  },
});
Deno.bench({
  name: "LoopPromise: withResolvers + then + resolve (10k)",
  group: "create+resolve+then",
  fn() {
    let last: LoopPromise<number> | undefined;
    onLoop(() => {
      for (let i = 0; i < CRT; i++) {
        const { promise, resolve } = LoopPromise.withResolvers<number>();
        last = promise.then(inc);
        resolve(i);
      }
    });
    if (last!.value !== CRT) throw new Error("bad then");
  },
});
Deno.bench({
  name: "LoopPromise on the default loop, awaited natively (10k)",
  group: "create+resolve+then",
  async fn() {
    let last: LoopPromise<number> | undefined;
    for (let i = 0; i < CRT; i++) last = new LoopPromise<number>((resolve) => resolve(i)).then(inc);
    if (await last !== CRT) throw new Error("bad then");
  },
});

// (b) a 1M-link then chain.
const LINKS = 1_000_000;
Deno.bench({
  name: "native: 1M-link then chain",
  group: "1M-link chain",
  baseline: true,
  n: 20,
  async fn() {
    let resolve!: (n: number) => void;
    let p: Promise<number> = new Promise<number>((r) => resolve = r);
    for (let i = 0; i < LINKS; i++) p = p.then(inc);
    resolve(0);
    if (await p !== LINKS) throw new Error("bad chain");
  },
});
Deno.bench({
  name: "LoopPromise: 1M-link then chain",
  group: "1M-link chain",
  n: 20,
  fn() {
    let last: LoopPromise<number> | undefined;
    onLoop(() => {
      const { promise, resolve } = LoopPromise.withResolvers<number>();
      let p = promise;
      for (let i = 0; i < LINKS; i++) p = p.then(inc);
      resolve(0);
      last = p;
    });
    if (last!.value !== LINKS) throw new Error("bad chain");
  },
});

// (c) all over 1,000 promises.
const ALL_N = 1_000;
Deno.bench({
  name: "native: Promise.all over 1,000 promises",
  group: "all(1,000)",
  baseline: true,
  async fn() {
    const inputs: Promise<number>[] = [];
    for (let i = 0; i < ALL_N; i++) inputs.push(Promise.resolve(i));
    const values = await Promise.all(inputs);
    if (values.length !== ALL_N || values[ALL_N - 1] !== ALL_N - 1) throw new Error("bad all");
  },
});
Deno.bench({
  name: "LoopPromise: all() over 1,000 promises",
  group: "all(1,000)",
  fn() {
    let result: LoopPromise<number[]> | undefined;
    onLoop(() => {
      const inputs: LoopPromise<number>[] = [];
      for (let i = 0; i < ALL_N; i++) inputs.push(LoopPromise.resolve(i));
      result = all(inputs);
    });
    const values = result!.value!;
    if (values.length !== ALL_N || values[ALL_N - 1] !== ALL_N - 1) throw new Error("bad all");
  },
});

Deno.bench({
  name: "native: Promise.all over 1,000 pending promises, then resolved",
  group: "all(1,000 pending)",
  baseline: true,
  async fn() {
    const resolvers: ((n: number) => void)[] = [];
    const inputs: Promise<number>[] = [];
    for (let i = 0; i < ALL_N; i++) {
      const { promise, resolve } = Promise.withResolvers<number>();
      inputs.push(promise);
      resolvers.push(resolve);
    }
    const result = Promise.all(inputs);
    for (let i = 0; i < ALL_N; i++) resolvers[i](i);
    const values = await result;
    if (values.length !== ALL_N || values[ALL_N - 1] !== ALL_N - 1) throw new Error("bad all");
  },
});
Deno.bench({
  name: "LoopPromise: all() over 1,000 pending promises, then resolved",
  group: "all(1,000 pending)",
  fn() {
    let result: LoopPromise<number[]> | undefined;
    onLoop(() => {
      const resolvers: ((n: number) => void)[] = [];
      const inputs: LoopPromise<number>[] = [];
      for (let i = 0; i < ALL_N; i++) {
        const { promise, resolve } = LoopPromise.withResolvers<number>();
        inputs.push(promise);
        resolvers.push(resolve);
      }
      result = all(inputs);
      for (let i = 0; i < ALL_N; i++) resolvers[i](i);
    });
    const values = result!.value!;
    if (values.length !== ALL_N || values[ALL_N - 1] !== ALL_N - 1) throw new Error("bad all");
  },
});

// Heap bytes per pending promise (printed once; precise with --v8-flags=--expose-gc). Every
// measured set stays alive to the end, so freeing one cannot skew the next.
const retained: unknown[] = [];
function heapBytesPer(make: () => unknown, count: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  const keep: unknown[] = new Array(count).fill(undefined);
  retained.push(keep);
  gc?.();
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) keep[i] = make();
  gc?.();
  return (Deno.memoryUsage().heapUsed - before) / count;
}

if (import.meta.main) {
  const N = 1_000_000;
  const nativeBytes = heapBytesPer(() => new Promise(noop), N);
  const nativeRoot = new Promise<number>(noop);
  retained.push(nativeRoot);
  const nativeChainBytes = heapBytesPer(() => nativeRoot.then(inc), N);
  let loopBytes = 0;
  let chainBytes = 0;
  onLoop(() => {
    loopBytes = heapBytesPer(() => new LoopPromise(noop), N);
    const root = new LoopPromise<number>(noop);
    retained.push(root);
    chainBytes = heapBytesPer(() => root.then(inc), N);
  });
  const gcNote = "gc" in globalThis ? "" : " (run with --v8-flags=--expose-gc for exact figures)";
  console.log(
    `heap bytes per pending promise${gcNote}: LoopPromise ${loopBytes.toFixed(1)}, native ${
      nativeBytes.toFixed(1)
    }; per then() on a pending promise (promise + reaction): LoopPromise ${
      chainBytes.toFixed(1)
    }, native ${nativeChainBytes.toFixed(1)}`,
  );
}
