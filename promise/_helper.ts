// What the single-input helpers (abortable, deadline) share: picking the loop, and a tracked
// pending state that settles its result once, detaching its listeners.
import type { Loop } from "../loop/loop.ts";
import { currentLoop } from "../loop/default_loop.ts";
import type { LoopClosedError } from "../loop/errors.ts";
import { type Disposition, kUntrack, type TrackedResource } from "../loop/_internal.ts";
import {
  isLoopPromise,
  type LoopPromise,
  type Runtime,
  runtimeOf,
  runtimeOfPromise,
  settlePromise,
} from "./loop_promise.ts";

/** The runtime for a helper's result: `loop`, else the input's loop, else `currentLoop()`. */
export function helperRuntime(input: unknown, loop: Loop | undefined): Runtime {
  if (loop !== undefined) return runtimeOf(loop);
  if (isLoopPromise(input)) return runtimeOfPromise(input);
  return runtimeOf(currentLoop());
}

/** A pending helper result: settles once, then untracks and runs its cleanup. */
export abstract class PendingHelper implements TrackedResource {
  readonly refed = false;
  abstract readonly kind: string;
  abstract readonly label: string;
  readonly loop: Loop;
  readonly result: LoopPromise<unknown>;
  done = false;
  tracked = false;

  constructor(loop: Loop, result: LoopPromise<unknown>) {
    this.loop = loop;
    this.result = result;
  }

  /** Releases timers and listeners; called once, when the result settles. */
  abstract cleanup(): void;

  settle(rejected: boolean, value: unknown): void {
    if (this.done) return;
    this.done = true;
    if (this.tracked) {
      this.tracked = false;
      this.loop[kUntrack](this);
    }
    this.cleanup();
    settlePromise(this.result, rejected, value);
  }

  dispose(error: LoopClosedError): Disposition {
    if (this.done) return "cancelled";
    this.tracked = false; // the loop already forgot it
    this.settle(true, error);
    return "rejected";
  }
}
