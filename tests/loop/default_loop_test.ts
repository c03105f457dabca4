import assert from "node:assert/strict";
import { currentLoop, defaultLoop, Loop, LoopStateError } from "../../mod.ts";
import { FdScope, read, write } from "../_fd.ts";

Deno.test("defaultLoop() is one loop; currentLoop() is the running loop, else the default", async () => {
  assert.equal(defaultLoop(), defaultLoop());
  assert.equal(defaultLoop().label, "default");
  assert.equal(currentLoop(), defaultLoop());
  const loop = new Loop();
  const seen: Loop[] = [];
  loop.submit(() => {
    seen.push(currentLoop());
    const nested = new Loop();
    nested.submit(() => seen.push(currentLoop()));
    nested.runOnce();
    seen.push(currentLoop());
  });
  await loop.run();
  assert.equal(seen[0], loop);
  assert.notEqual(seen[1], loop);
  assert.equal(seen[2], loop);
  assert.equal(currentLoop(), defaultLoop());
  await loop.close();
});

Deno.test("the default loop starts itself when work arrives and goes dormant when idle", async () => {
  const loop = defaultLoop();
  const log: string[] = [];
  const done = Promise.withResolvers<void>();
  loop.submit(() => log.push("task"));
  loop.setTimeout(() => {
    log.push("timer");
    done.resolve();
  }, 2);
  assert.deepEqual(log, [], "nothing runs synchronously");
  await done.promise;
  assert.deepEqual(log, ["task", "timer"]);
  // Dormant again soon after (run() gives Deno one turn before it decides nothing is left); the
  // test's op sanitizer would fail if it kept a timer or message port alive.
  for (let turn = 0; turn < 50 && loop.state !== "idle"; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.equal(loop.state, "idle");
});

Deno.test("an unref'd timer on the dormant default loop fires while the process lives on", async (t) => {
  const loop = defaultLoop();
  await t.step("it fires at its deadline, never before", async () => {
    const log: string[] = [];
    const startMs = performance.now();
    let firedAfterMs = -1;
    loop.setTimeout(() => {
      firedAfterMs = performance.now() - startMs;
      log.push("unref'd");
    }, 20).unref();
    // Something else keeps the process alive meanwhile: Deno's own timer, as a server would.
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(log, ["unref'd"]);
    assert.ok(firedAfterMs >= 20, `fired after ${firedAfterMs} ms`);
    assert.equal(loop.state, "idle");
  });
  await t.step("a cleared one does not fire, and leaves no Deno timer behind", async () => {
    const log: string[] = [];
    const timer = loop.setTimeout(() => log.push("cleared"), 20).unref();
    loop.setTimeout(() => log.push("kept"), 30).unref();
    await new Promise((resolve) => setTimeout(resolve, 5));
    loop.clearTimeout(timer);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(log, ["kept"]);
  });
});

/** Waits in Deno's own 1 ms timers until `done()` or `limitMs` pass; returns `done()`. */
async function waitFor(done: () => boolean, limitMs: number): Promise<boolean> {
  const startMs = performance.now();
  while (!done() && performance.now() - startMs < limitMs) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return done();
}

Deno.test("ref() on a timer of the dormant default loop keeps the process alive until it fires", async () => {
  const timersUrl = new URL("../../timers/mod.ts", import.meta.url).href;
  const script = `
    import { setTimeout as loopSetTimeout } from ${JSON.stringify(timersUrl)};
    const timer = loopSetTimeout(() => console.log("fired"), 40).unref();
    // By then the default loop is dormant, and this Deno timer is all that keeps the process alive.
    setTimeout(() => timer.ref(), 5);
  `;
  // With FFI (idle waits in the poller) and without (waits in Deno's timers).
  for (const args of [["eval", script], ["run", "--no-check", "--allow-read", "-"]]) {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    if (args[0] === "run") await writer.write(new TextEncoder().encode(script));
    await writer.close();
    const output = await child.output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.equal(new TextDecoder().decode(output.stdout), "fired\n", `deno ${args[0]}`);
  }
});

Deno.test("refresh() on a fired timer of the dormant default loop arms it again", async () => {
  const loop = defaultLoop();
  let fired = 0;
  const timer = loop.setTimeout(() => fired++, 1);
  assert.ok(await waitFor(() => fired === 1 && loop.state === "idle", 150));
  timer.refresh();
  assert.ok(await waitFor(() => fired === 2, 150), `fired ${fired} times, not 2`);
  assert.ok(await waitFor(() => loop.state === "idle", 150));
});

Deno.test("a watch on the dormant default loop starts it", async () => {
  using fds = new FdScope();
  const [readFd, writeFd] = fds.pipe();
  const loop = defaultLoop();
  const log: string[] = [];
  const watch = loop.watch(readFd, { readable: true }, () => {
    log.push(new TextDecoder().decode(read(readFd)!));
    watch.close();
  });
  setTimeout(() => write(writeFd, "ping"), 5);
  const called = await waitFor(() => log.length !== 0, 150);
  watch.close();
  assert.ok(called, "the watch was not called back within 150 ms");
  assert.deepEqual(log, ["ping"]);
  assert.ok(await waitFor(() => loop.state === "idle", 150));
});

Deno.test("a default-loop callback's error is reported as Deno reports a timer callback's: an error event, then the loop goes on or the process ends", async () => {
  const modUrl = new URL("../../mod.ts", import.meta.url).href;
  const script = (keepAlive: boolean) => `
    import { defaultLoop } from ${JSON.stringify(modUrl)};
    ${
    keepAlive
      ? `globalThis.addEventListener("error", (event) => {
      console.log("caught " + event.error.message);
      event.preventDefault();
    });`
      : ""
  }
    defaultLoop().submit(() => { throw new Error("boom"); });
    defaultLoop().submit(() => console.log("second task"));
  `;
  for (const keepAlive of [true, false]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", script(keepAlive)],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    if (keepAlive) {
      // Prevented: the loop goes on with the queued task, as Deno's timers do.
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.equal(stdout, "caught boom\nsecond task\n");
    } else {
      // As in Deno: "Uncaught Error", ending the process before anything else runs.
      assert.notEqual(output.code, 0);
      assert.match(new TextDecoder().decode(output.stderr), /Uncaught Error: boom/);
      assert.equal(stdout, "");
    }
  }
});

Deno.test("the default loop refuses close(): the free functions use it for the rest of the process", async () => {
  const loop = defaultLoop();
  await assert.rejects(
    loop.close(),
    (error: unknown) =>
      error instanceof LoopStateError &&
      /^Cannot close the default loop as it lives as long as the process/.test(error.message),
  );
  assert.notEqual(loop.state, "closed");
  const fired = Promise.withResolvers<void>();
  loop.setTimeout(() => fired.resolve(), 0); // still usable
  await fired.promise;
});

Deno.test("stop() on the default loop does not leave its queued work behind: it starts again", async () => {
  const loop = defaultLoop();
  const log: string[] = [];
  const done = Promise.withResolvers<void>();
  loop.submit(() => {
    log.push("stops");
    loop.stop();
  });
  loop.submit(() => log.push("queued task"));
  loop.setImmediate(() => {
    log.push("immediate");
    done.resolve();
  });
  // Nobody calls the default loop's run(): without a restart the work would wait for more work
  // to arrive, and the process could end first.
  const limit = setTimeout(() => done.reject(new Error(`lost: ${log.join(", ")}`)), 1_000);
  try {
    await done.promise;
  } finally {
    clearTimeout(limit);
  }
  assert.deepEqual(log, ["stops", "queued task", "immediate"]);
  for (let turn = 0; turn < 50 && loop.state !== "idle"; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.equal(loop.state, "idle");
});
