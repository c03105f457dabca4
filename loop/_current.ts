// The loop whose callback is running right now. Module-level by necessity: `currentLoop()` must
// answer from anywhere. Set on entry to every synchronous batch and restored on exit (batches of
// different loops may nest).
import type { Loop } from "./loop.ts";

let runningLoop: Loop | undefined;

/** The loop whose batch is executing, if any. */
export function runningLoopOrUndefined(): Loop | undefined {
  return runningLoop;
}

/** Marks `loop` as running; returns the previous one to restore. */
export function enterLoop(loop: Loop): Loop | undefined {
  const previous = runningLoop;
  runningLoop = loop;
  return previous;
}

/** Restores the loop returned by {@linkcode enterLoop}. */
export function leaveLoop(previous: Loop | undefined): void {
  runningLoop = previous;
}
