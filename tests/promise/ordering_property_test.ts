// Differential property test of ordering: random programs of then/catch/finally chains, nested
// microtasks and late settlements log the very same sequence with LoopPromise + loop microtasks
// as with native Promise + native microtasks. (Adopting a LoopPromise is excluded: it is
// documented to take fewer microtasks than native adoption.)
import assert from "node:assert/strict";
import fc from "fast-check";
import { Loop } from "../../loop/mod.ts";
import { LoopPromise } from "../../promise/mod.ts";

// A fixed seed keeps runs reproducible; change it to explore other cases.
const SEED = 20_261_121;

type Op =
  | { kind: "then" | "catch" | "finally" | "then2"; src: number; result: number; nested: Op[] }
  | { kind: "micro"; nested: Op[] }
  | { kind: "settle"; target: number; reject: boolean };

/** Ops nested at most `depth` levels (handlers and microtasks run nested ops). */
function opArb(depth: number): fc.Arbitrary<Op> {
  const nested: fc.Arbitrary<Op[]> = depth > 0
    ? fc.array(fc.constant(null).chain(() => opArb(depth - 1)), { maxLength: 3 })
    : fc.constant([]);
  return fc.oneof(
    fc.record({
      kind: fc.constantFrom(
        "then" as const,
        "catch" as const,
        "finally" as const,
        "then2" as const,
      ),
      src: fc.nat(20),
      // 0: return a value, 1: throw, 2: return undefined.
      result: fc.nat(2),
      nested,
    }),
    fc.record({ kind: fc.constant("micro" as const), nested }),
    fc.record({ kind: fc.constant("settle" as const), target: fc.nat(1), reject: fc.boolean() }),
  );
}

interface Host {
  resolve(value: unknown): PromiseLike<unknown>;
  reject(reason: unknown): PromiseLike<unknown>;
  deferred(): {
    promise: PromiseLike<unknown>;
    resolve(v: unknown): void;
    reject(r: unknown): void;
  };
  microtask(fn: () => void): void;
}

/** Runs a program; returns its log once `drain` resolves. */
function interpret(program: Op[], host: Host, log: string[]): void {
  const deferreds = [host.deferred(), host.deferred()];
  const promises: PromiseLike<unknown>[] = [];
  let counter = 0;
  const track = (p: PromiseLike<unknown>) => {
    promises.push(p);
    // Handled at once (in both hosts alike), so no host reports an unhandled rejection.
    (p as Promise<unknown>).then(undefined, () => {});
  };
  track(host.resolve("r0"));
  track(host.reject("e0"));
  track(deferreds[0].promise);
  track(deferreds[1].promise);
  const run = (ops: Op[]): void => {
    for (const op of ops) {
      const id = counter++;
      switch (op.kind) {
        case "micro":
          host.microtask(() => {
            log.push(`micro ${id}`);
            run(op.nested);
          });
          break;
        case "settle": {
          const d = deferreds[op.target];
          log.push(`settle ${id}`);
          if (op.reject) d.reject(`e${id}`);
          else d.resolve(`v${id}`);
          break;
        }
        default: {
          const src = promises[op.src % promises.length] as Promise<unknown>;
          const handler = (value: unknown) => {
            log.push(`${op.kind} ${id}: ${String(value)}`);
            run(op.nested);
            if (op.result === 1) throw `t${id}`;
            return op.result === 0 ? `h${id}` : undefined;
          };
          if (op.kind === "then") track(src.then(handler));
          else if (op.kind === "then2") track(src.then(handler, handler));
          else if (op.kind === "catch") track(src.catch(handler));
          else track(src.finally(() => handler("finally")));
        }
      }
    }
  };
  run(program);
}

Deno.test("random promise programs log the same sequence as with native promises", async () => {
  const loop = new Loop();
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(2), { minLength: 1, maxLength: 8 }), async (program) => {
        const nativeLog: string[] = [];
        interpret(program, {
          resolve: (v) => Promise.resolve(v),
          reject: (r) => Promise.reject(r),
          deferred: () => Promise.withResolvers<unknown>(),
          microtask: (fn) => queueMicrotask(fn),
        }, nativeLog);
        await new Promise((resolve) => setTimeout(resolve, 0));
        const loopLog: string[] = [];
        loop.submit(() =>
          interpret(program, {
            resolve: (v) => LoopPromise.resolve(v),
            reject: (r) => LoopPromise.reject(r),
            deferred: () => LoopPromise.withResolvers<unknown>(),
            microtask: (fn) => loop.queueMicrotask(fn),
          }, loopLog)
        );
        await loop.run();
        assert.deepEqual(loopLog, nativeLog);
      }),
      { numRuns: 300, seed: SEED },
    );
  } finally {
    await loop.close();
  }
});
