// The behavioural suite against the epoll backend, over pipes and over AF_UNIX socketpairs.
import assert from "node:assert/strict";
import { createPoller, EventBatch, PollerError, READABLE } from "../../poller/mod.ts";
import { FdScope, write } from "../_fd.ts";
import { createEpollPoller } from "../../poller/_epoll/mod.ts";
import { pipePair, regularFile, socketPair } from "./_pairs.ts";
import { pollerSuite } from "./_suite.ts";

const linux = Deno.build.os === "linux";

pollerSuite({
  name: "epoll/pipe",
  createPoller: () => createPoller({ backend: "epoll" }),
  makePair: pipePair,
  makeUnsupported: regularFile,
  ignore: !linux,
});

pollerSuite({
  name: "epoll/socketpair",
  createPoller: () => createPoller({ backend: "epoll" }),
  makePair: socketPair,
  makeUnsupported: regularFile,
  ignore: !linux,
});

// Where glibc or the kernel lacks epoll_pwait2, the backend waits with epoll_wait and rounds the
// timeout up to whole ms. Force that path so it is tested here too.
pollerSuite({
  name: "epoll(epoll_wait fallback)/pipe",
  createPoller: () => createEpollPoller({ pwait2: false }),
  makePair: pipePair,
  makeUnsupported: regularFile,
  ignore: !linux,
});

Deno.test({
  name: "createPoller() picks epoll on Linux, and the poll(2) fallback on request",
  ignore: !linux,
  async fn() {
    const native = createPoller();
    const fallback = createPoller({ backend: "poll" });
    try {
      assert.equal(native.backend, "epoll");
      assert.equal(fallback.backend, "poll");
      assert.equal(native.closed, false);
    } finally {
      await native.close();
      await fallback.close();
    }
    assert.equal(native.closed, true);
  },
});

Deno.test({
  name: "fd -0 is fd 0 for epoll and poll(2): a PollerError or success, never the FFI's TypeError",
  ignore: !linux,
  async fn() {
    for (const backend of ["epoll", "poll"] as const) {
      const poller = createPoller({ backend });
      try {
        // Whatever fd 0 is here (a pipe, a tty, /dev/null), the answer is the kernel's.
        let registered = false;
        try {
          poller.register(-0, 1, READABLE);
          registered = true;
        } catch (error) {
          assert.ok(error instanceof PollerError, `${backend}: ${error}`);
        }
        if (registered) poller.unregister(0);
        assert.equal(typeof poller.supports(-0, READABLE), "boolean", backend);
      } finally {
        await poller.close();
      }
    }
  },
});

Deno.test({
  name:
    "an fd closed while registered, its file kept open by a dup: once unregistered, waits sleep again (epoll and poll(2))",
  ignore: !linux,
  async fn() {
    // epoll registers the open file, not the fd number: closing the fd while a dup keeps the file
    // open leaves the registration in the kernel, where EPOLL_CTL_DEL can no longer name it. If
    // the poller kept it, every wait would return at once (the file stays readable): a busy loop.
    const dup = Deno.dlopen("libc.so.6", { dup: { parameters: ["i32"], result: "i32" } });
    try {
      for (const backend of ["epoll", "poll"] as const) {
        using fds = new FdScope();
        const [readFd, writeFd] = fds.pipe();
        const copy = fds.track(dup.symbols.dup(readFd));
        assert.ok(copy >= 0, "dup");
        const poller = createPoller({ backend });
        const batch = new EventBatch(8);
        try {
          poller.register(readFd, 1, READABLE);
          write(writeFd, "x");
          fds.close(readFd);
          try {
            poller.unregister(readFd);
          } catch (error) {
            assert.ok(error instanceof PollerError, `${backend}: ${error}`);
          }
          // Spurious wakeups are allowed, but not for ever: after one, the waits sleep.
          poller.wait(batch, 0);
          for (const timeoutMs of [10, 10]) {
            const start = performance.now();
            assert.equal(poller.wait(batch, timeoutMs), 0, backend);
            const elapsed = performance.now() - start;
            assert.ok(
              elapsed >= timeoutMs,
              `${backend}: wait(${timeoutMs}) returned after ${elapsed} ms`,
            );
          }
          const start = performance.now();
          assert.equal(await poller.waitAsync(batch, 10), 0, backend);
          const elapsed = performance.now() - start;
          assert.ok(elapsed >= 10, `${backend}: waitAsync(10) returned after ${elapsed} ms`);
          // The poller still works for fds registered afterwards.
          const [r2, w2] = fds.pipe();
          poller.register(r2, 2, READABLE);
          write(w2, "y");
          assert.equal(poller.wait(batch, 5000), 1, backend);
          assert.equal(batch.tokens[0], 2);
        } finally {
          await poller.close();
        }
      }
    } finally {
      dup.close();
    }
  },
});

Deno.test({
  name:
    "supports(): epoll refuses a regular file, a directory and /dev/null, poll(2) accepts them; both take sockets (as the README says)",
  ignore: !linux,
  async fn() {
    using fds = new FdScope();
    const file = fds.openFile(new URL(import.meta.url).pathname);
    const directory = fds.openFile(new URL(".", import.meta.url).pathname);
    const devNull = fds.openFile("/dev/null");
    const [socket] = fds.socketpair();
    for (const backend of ["epoll", "poll"] as const) {
      const poller = createPoller({ backend });
      try {
        for (const fd of [file, directory, devNull]) {
          assert.equal(poller.supports(fd, READABLE), backend === "poll", `${backend}: fd ${fd}`);
        }
        assert.equal(poller.supports(socket, READABLE), true, backend);
      } finally {
        await poller.close();
      }
    }
  },
});
