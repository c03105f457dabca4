// The behavioural suite against the epoll backend, over pipes and over AF_UNIX socketpairs.
import assert from "node:assert/strict";
import { createPoller, PollerError, READABLE } from "../../poller/mod.ts";
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
