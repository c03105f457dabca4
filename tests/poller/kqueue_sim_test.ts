// The kqueue backend's logic on Linux: the real KqueuePoller over a simulated kqueue kernel
// (./_kqueue_sim.ts) speaking each BSD's struct kevent layout, through the shared suite. What
// this cannot show (real layouts, real BSD semantics) is listed in the kqueue module docs.
import assert from "node:assert/strict";
import * as fd from "../_fd.ts";
import { KqueuePoller } from "../../poller/_kqueue/kqueue_poller.ts";
import { KQUEUE_PLATFORMS, type KqueuePlatform } from "../../poller/_kqueue/_layout.ts";
import { EventBatch, HANGUP, PollerError, PRIORITY, READABLE, WRITABLE } from "../../poller/mod.ts";
import { type Endpoint, type Pair, pollerSuite } from "./_suite.ts";
import { simulatedKqueue } from "./_kqueue_sim.ts";

const linux = Deno.build.os === "linux";

function endpoint(number: number): Endpoint {
  let open = true;
  return {
    fd: number,
    write: (bytes) => fd.write(number, bytes),
    read: () => fd.read(number),
    close() {
      if (open) {
        open = false;
        fd.close(number);
      }
    },
  };
}

function pipePair(): Pair {
  const [r, w] = fd.pipe();
  return { a: endpoint(r), b: endpoint(w) };
}

function socketPair(): Pair {
  const [x, y] = fd.socketpair();
  return { a: endpoint(x), b: endpoint(y) };
}

/** A poller over a fresh simulation; the simulation's own handle goes when the poller closes. */
function simPoller(platform: KqueuePlatform, userFilter: boolean): KqueuePoller {
  const sim = simulatedKqueue(platform, { userFilter });
  const poller = new KqueuePoller(sim.lib, platform);
  const close = poller.close.bind(poller);
  let disposed: Promise<void> | undefined;
  poller.close = () => disposed ??= close().then(() => sim.dispose());
  return poller;
}

const TARGETS: { name: string; platform: KqueuePlatform; userFilter: boolean }[] = [
  { name: "kqueue-sim/darwin", platform: KQUEUE_PLATFORMS.darwin, userFilter: true },
  { name: "kqueue-sim/freebsd", platform: KQUEUE_PLATFORMS.freebsd, userFilter: true },
  { name: "kqueue-sim/netbsd", platform: KQUEUE_PLATFORMS.netbsd, userFilter: true },
  // OpenBSD before 7.8 has no EVFILT_USER: the probe fails and the pipe waker takes over.
  { name: "kqueue-sim/openbsd-pipe-waker", platform: KQUEUE_PLATFORMS.openbsd, userFilter: false },
];

for (const target of TARGETS) {
  pollerSuite({
    name: `${target.name}/pipe`,
    createPoller: () => simPoller(target.platform, target.userFilter),
    makePair: pipePair,
    ignore: !linux,
  });
  pollerSuite({
    name: `${target.name}/socketpair`,
    createPoller: () => simPoller(target.platform, target.userFilter),
    makePair: socketPair,
    ignore: !linux,
  });
}

Deno.test({
  name: "kqueue-sim: one fd's READ and WRITE events merge into one batch entry",
  ignore: !linux,
  async fn() {
    const poller = simPoller(KQUEUE_PLATFORMS.freebsd, true);
    const [x, y] = fd.socketpair();
    try {
      const batch = new EventBatch(4);
      poller.register(x, 5, READABLE | WRITABLE);
      fd.write(y, "hi");
      assert.equal(poller.wait(batch, 1000), 1);
      assert.equal(batch.tokens[0], 5);
      assert.equal(batch.readiness[0], READABLE | WRITABLE);
      poller.modify(x, 6, READABLE);
      assert.equal(poller.wait(batch, 1000), 1);
      assert.deepEqual([batch.tokens[0], batch.readiness[0]], [6, READABLE]);
    } finally {
      await poller.close();
      fd.close(x);
      fd.close(y);
    }
  },
});

Deno.test({
  name: "kqueue-sim: PRIORITY needs EVFILT_EXCEPT (macOS/OpenBSD yes, FreeBSD/NetBSD no)",
  ignore: !linux,
  async fn() {
    const [x, y] = fd.socketpair();
    const freebsd = simPoller(KQUEUE_PLATFORMS.freebsd, true);
    const darwin = simPoller(KQUEUE_PLATFORMS.darwin, true);
    try {
      assert.equal(freebsd.supports(x, PRIORITY), false);
      assert.throws(
        () => freebsd.register(x, 1, READABLE | PRIORITY),
        (e: unknown) => e instanceof PollerError && e.code === "EOPNOTSUPP" && e.errno === 45,
      );
      freebsd.register(x, 1, READABLE); // nothing half-registered
      assert.equal(darwin.supports(x, PRIORITY), true);
      darwin.register(x, 2, PRIORITY | READABLE);
      darwin.modify(x, 3, WRITABLE);
      assert.equal(darwin.wait(new EventBatch(2), 1000), 1);
    } finally {
      await freebsd.close();
      await darwin.close();
      fd.close(x);
      fd.close(y);
    }
  },
});

Deno.test({
  name: "kqueue-sim: a macOS EVFILT_EXCEPT fired by EOF is HANGUP, not PRIORITY",
  ignore: !linux,
  async fn() {
    const [x, y] = fd.socketpair();
    const darwin = simPoller(KQUEUE_PLATFORMS.darwin, true);
    try {
      darwin.register(x, 7, PRIORITY);
      const batch = new EventBatch(4);
      assert.equal(darwin.wait(batch, 0), 0, "no urgent data yet");
      fd.close(y);
      assert.equal(darwin.wait(batch, 1000), 1);
      assert.equal(batch.tokens[0], 7);
      assert.equal(batch.readiness[0], HANGUP, "the peer left; no out-of-band data arrived");
    } finally {
      await darwin.close();
      fd.close(x);
    }
  },
});

Deno.test({
  name: "kqueue-sim: a failed add rolls back the filters added before it",
  ignore: !linux,
  async fn() {
    const platform = KQUEUE_PLATFORMS.darwin;
    const sim = simulatedKqueue(platform, { userFilter: true });
    const poller = new KqueuePoller(sim.lib, platform);
    try {
      // READ is accepted, then EXCEPT is refused (EINVAL) by a kernel that has no such filter.
      const refusing = { ...platform, EVFILT_EXCEPT: -99 };
      const strictSim = simulatedKqueue(platform, { userFilter: true });
      const strict = new KqueuePoller(strictSim.lib, refusing);
      const [x, y] = fd.socketpair();
      try {
        assert.throws(() => strict.register(x, 1, READABLE | PRIORITY), PollerError);
        strict.register(x, 1, READABLE); // READ was rolled back, so this is no EEXIST
        fd.write(y, "z");
        const batch = new EventBatch(2);
        assert.equal(strict.wait(batch, 1000), 1);
        assert.equal(batch.tokens[0], 1);
      } finally {
        await strict.close();
        strictSim.dispose();
        fd.close(x);
        fd.close(y);
      }
    } finally {
      await poller.close();
      sim.dispose();
    }
    assert.equal(sim.stats.unloaded, true);
    assert.equal(sim.stats.openQueues, 0);
  },
});
