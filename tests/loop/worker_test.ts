import assert from "node:assert/strict";
import { Loop } from "../../mod.ts";

Deno.test("tasks from another thread: a Worker's message submitted from onmessage wakes a parked loop", async () => {
  const loop = new Loop();
  const log: string[] = [];
  // Parks the loop (in the poller, off Deno's thread, FFI permitting) until long after the test.
  const keepAlive = loop.setTimeout(() => log.push("keep-alive timer"), 60_000);
  const source = `self.postMessage("from the worker");`;
  const worker = new Worker(`data:application/javascript,${encodeURIComponent(source)}`, {
    type: "module",
  });
  worker.onmessage = (event: MessageEvent<string>) => {
    loop.submit(() => {
      log.push(`task: ${event.data}`);
      loop.clearTimeout(keepAlive);
    });
  };
  // If the message failed to wake the parked loop, fail in 10 s rather than hang for 60.
  const guard = setTimeout(() => {
    log.push("not woken");
    loop.stop();
  }, 10_000);
  await loop.run(); // ends once the task has cleared the only ref'd timer
  clearTimeout(guard);
  worker.terminate();
  assert.deepEqual(log, ["task: from the worker"]);
  await loop.close();
});
