// Clearing by handle or id for the free functions. A handle knows its own loop, so it is cleared
// there even when another loop is current; a bare id can only mean the current loop.
import { ImmediateNode, TimerNode } from "../loop/_core.ts";
import { currentLoop } from "../loop/default_loop.ts";

/** Clears a timeout, interval or immediate given by handle or id; anything else is a no-op. */
export function clearHandle(handle: unknown): void {
  if (handle instanceof TimerNode || handle instanceof ImmediateNode) {
    handle.close();
    return;
  }
  if (typeof handle === "number" || typeof handle === "string") {
    currentLoop().clearTimeout(handle as unknown as number);
  }
  // undefined, null, foreign objects: a no-op, as in browsers and Node.
}
