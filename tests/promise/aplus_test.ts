// The Promises/A+ compliance suite (promises-aplus-tests, 872 tests), against LoopPromise on the
// default loop. The suite's own timing uses Deno's native timers.
import assert from "node:assert/strict";
import aplus from "promises-aplus-tests";
import { defaultLoop } from "../../loop/mod.ts";
import { LoopPromise } from "../../promise/mod.ts";
import { collectMochaSuite, replayMochaSuite } from "./_mocha_shim.ts";

const loop = defaultLoop();
const adapter = {
  resolved: (value: unknown) => LoopPromise.resolve(value, { loop }),
  rejected: (reason: unknown) => LoopPromise.reject(reason, { loop }),
  deferred: () => {
    const { promise, resolve, reject } = LoopPromise.withResolvers<unknown>({ loop });
    return { promise, resolve, reject };
  },
};

Deno.test("Promises/A+ compliance suite (promises-aplus-tests 2.1.2) on the default loop", async (t) => {
  // The suite leaves rejected promises unhandled on purpose; an assertion that fails inside a
  // reaction shows up here as an unhandled AssertionError and fails the run.
  const unhandledAssertions: unknown[] = [];
  const onUnhandled = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    if (event.reason instanceof Error && event.reason.name === "AssertionError") {
      unhandledAssertions.push(event.reason);
    }
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  let stats;
  try {
    const suite = collectMochaSuite(() =>
      (aplus as { mocha(adapter: unknown): void }).mocha(adapter)
    );
    stats = await replayMochaSuite(t, suite, { timeoutMs: 2000 });
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
  console.log(`Promises/A+: ${stats.passed}/${stats.registered} passed`);
  assert.deepEqual(stats.failed, []);
  assert.deepEqual(unhandledAssertions, []);
  assert.equal(stats.registered, 872);
  assert.equal(stats.passed, 872);
});
