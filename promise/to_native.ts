/**
 * {@linkcode toNative}: a native `Promise` that follows a `LoopPromise`.
 *
 * @module
 */
import { isLoopPromise, observe, runtimeOfPromise } from "./loop_promise.ts";

interface Resolvers {
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

function forward(ctx: Resolvers, _index: number, rejected: boolean, value: unknown): void {
  if (rejected) ctx.reject(value);
  else ctx.resolve(value);
}

/**
 * A native `Promise` settled like `promise`: for APIs that insist on a real `Promise` (or
 * `instanceof Promise`). A `LoopPromise` is observed with a loop microtask of its loop (and marked
 * handled; the native promise carries the rejection on), so it settles once that loop runs; any
 * other value goes through `Promise.resolve`.
 *
 * @typeParam T The value's type.
 * @param promise A `LoopPromise`, another thenable, or a value.
 * @returns The native promise.
 *
 * @example
 * ```ts
 * import { LoopPromise } from "./loop_promise.ts";
 * import { toNative } from "./to_native.ts";
 * const native = toNative(LoopPromise.resolve(42));
 * console.log(native instanceof Promise, await native); // true 42
 * ```
 */
export function toNative<T>(promise: T | PromiseLike<T>): Promise<Awaited<T>> {
  if (!isLoopPromise(promise)) return Promise.resolve(promise) as Promise<Awaited<T>>;
  return new Promise<Awaited<T>>((resolve, reject) => {
    observe(runtimeOfPromise(promise), promise, forward, { resolve, reject } as Resolvers, 0);
  });
}
