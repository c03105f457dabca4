/**
 * Worker entry of the load generator: receives {@linkcode LoadOptions}, posts progress and then
 * the result (or an error) as {@linkcode LoadWorkerMessage}s.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type LoadOptions, type LoadWorkerMessage, runLoad } from "./load.ts";

self.onmessage = async (event: MessageEvent<LoadOptions>) => {
  const post = (message: LoadWorkerMessage) => self.postMessage(message);
  try {
    const result = await runLoad(event.data, (progress) => post({ type: "progress", progress }));
    post({ type: "result", result });
  } catch (error) {
    post({ type: "error", message: error instanceof Error ? error.message : String(error) });
  }
};
