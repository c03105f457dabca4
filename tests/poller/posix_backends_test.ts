// Linux-only checks run against epoll (both wait paths) and poll(2), for behaviour the shared
// suite does not pin down: waker draining, stale events across a re-registration, ERROR and
// RDHUP reporting, interest masking, table growth, swap-remove bookkeeping, fd leaks, and waits
// cut short by an internal wake.
import assert from "node:assert/strict";
import {
  createPoller,
  ERROR,
  EventBatch,
  HANGUP,
  type Poller,
  READABLE,
  WRITABLE,
} from "../../poller/mod.ts";
import { createEpollPoller } from "../../poller/_epoll/mod.ts";
import { close, drain, eventfd, FdScope, libc, shutdownWrite, write } from "../_fd.ts";

const linux = Deno.build.os === "linux";

const BACKENDS: ReadonlyArray<{ name: string; create(): Poller }> = [
  { name: "epoll", create: () => createPoller({ backend: "epoll" }) },
  { name: "epoll(epoll_wait fallback)", create: () => createEpollPoller({ pwait2: false }) },
  { name: "poll", create: () => createPoller({ backend: "poll" }) },
];

/** Blocks the calling thread, so an off-thread wait collects its events before we go on. */
function blockMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function tokensOf(batch: EventBatch): number[] {
  return Array.from(batch.tokens.subarray(0, batch.length)).sort((x, y) => x - y);
}

/** Runs `fn` once per backend with a fresh poller and fd scope, closing both afterwards. */
function eachBackend(
  name: string,
  fn: (poller: Poller, fds: FdScope, backend: string) => Promise<void> | void,
): void {
  Deno.test({
    name,
    ignore: !linux,
    async fn(t) {
      for (const backend of BACKENDS) {
        await t.step(backend.name, async () => {
          using fds = new FdScope();
          const poller = backend.create();
          try {
            await fn(poller, fds, backend.name);
          } finally {
            await poller.close();
          }
        });
      }
    },
  });
}

eachBackend("a wake() is consumed by one wait: the waits after it sleep their full timeout", async (
  poller,
  fds,
) => {
  const [readFd] = fds.pipe();
  poller.register(readFd, 1, READABLE);
  const batch = new EventBatch(8);
  poller.wake();
  assert.equal(poller.wait(batch, 0), 0);
  // The waker was drained: it must not keep every later wait from sleeping.
  for (const timeoutMs of [10, 10]) {
    const start = performance.now();
    assert.equal(poller.wait(batch, timeoutMs), 0);
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= timeoutMs, `wait(${timeoutMs}) returned after ${elapsed} ms`);
  }
  const start = performance.now();
  assert.equal(await poller.waitAsync(batch, 10), 0);
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 10, `waitAsync(10) returned after ${elapsed} ms`);
});

eachBackend(
  "an fd unregistered and registered again while a waitAsync was parked: the old event is not reported under the new token",
  async (poller, fds) => {
    const [readFd, writeFd] = fds.pipe();
    const batch = new EventBatch(8);
    poller.register(readFd, 1, READABLE);
    const parked = poller.waitAsync(batch, 50);
    write(writeFd, "x");
    // The parked thread collects the readable event while this thread is blocked.
    blockMs(30);
    poller.unregister(readFd);
    drain(readFd);
    poller.register(readFd, 2, READABLE);
    await parked;
    // The fd is empty now: neither the old token nor the new one may be reported.
    assert.deepEqual(tokensOf(batch), []);
    assert.equal(poller.wait(batch, 0), 0);
    write(writeFd, "y");
    assert.equal(poller.wait(batch, 5000), 1);
    assert.deepEqual(tokensOf(batch), [2]);
  },
);

eachBackend("ERROR is reported for a pipe whose reader is gone", (poller, fds) => {
  const [readFd, writeFd] = fds.pipe();
  poller.register(writeFd, 5, WRITABLE);
  fds.close(readFd);
  const batch = new EventBatch(8);
  assert.equal(poller.wait(batch, 5000), 1);
  assert.equal(batch.tokens[0], 5);
  assert.ok(batch.readiness[0] & ERROR, `readiness ${batch.readiness[0]} lacks ERROR`);
});

eachBackend(
  "readiness is masked by the interest: a hung-up fd watched for WRITABLE only is not READABLE",
  (
    poller,
    fds,
  ) => {
    const [readFd, writeFd] = fds.pipe();
    fds.close(writeFd);
    poller.register(readFd, 6, WRITABLE);
    const batch = new EventBatch(8);
    assert.equal(poller.wait(batch, 5000), 1);
    assert.ok(batch.readiness[0] & HANGUP);
    assert.equal(batch.readiness[0] & READABLE, 0, "READABLE was not asked for");
  },
);

eachBackend("a socket whose peer shut down its writing side reports HANGUP to a reader", (
  poller,
  fds,
) => {
  const [a, b] = fds.socketpair();
  poller.register(a, 7, READABLE);
  shutdownWrite(b);
  const batch = new EventBatch(8);
  assert.equal(poller.wait(batch, 5000), 1);
  assert.ok(batch.readiness[0] & READABLE);
  assert.ok(batch.readiness[0] & HANGUP, `readiness ${batch.readiness[0]} lacks HANGUP`);
});

eachBackend("fd 128, twice the initial fd table size, registers and reports", (poller, fds) => {
  const [readFd, writeFd] = fds.pipe();
  const F_DUPFD_CLOEXEC = 1030;
  const high = libc().fcntl(readFd, F_DUPFD_CLOEXEC, 128);
  assert.ok(high >= 0, "fcntl(F_DUPFD_CLOEXEC)");
  fds.track(high);
  assert.equal(high, 128, "fd 128 was taken: the test needs that exact number");
  // The fd-indexed tables start at 64 entries: fd 128 is exactly where one doubling is not enough.
  poller.register(high, 2, READABLE);
  write(writeFd, "x");
  const batch = new EventBatch(8);
  assert.equal(poller.wait(batch, 5000), 1);
  assert.deepEqual(tokensOf(batch), [2]);
  poller.unregister(high);
  assert.equal(poller.wait(batch, 0), 0);
});

eachBackend("the largest token (2^32 - 1) and token 0 are accepted and reported as given", (
  poller,
  fds,
) => {
  const [, w1] = fds.pipe();
  const [, w2] = fds.pipe();
  poller.register(w1, 0xffffffff, WRITABLE);
  poller.register(w2, 0, WRITABLE);
  const batch = new EventBatch(8);
  assert.equal(poller.wait(batch, 5000), 2);
  assert.deepEqual(tokensOf(batch), [0, 0xffffffff]);
});

eachBackend("after an unregister, the remaining fds can still be modified and unregistered", (
  poller,
  fds,
) => {
  const [r1] = fds.pipe();
  const [r2, w2] = fds.pipe();
  const [, w3] = fds.pipe();
  poller.register(r1, 1, READABLE);
  poller.register(r2, 2, READABLE);
  poller.register(w3, 3, READABLE); // a write end: never readable
  const batch = new EventBatch(8);
  poller.unregister(r1);
  poller.modify(w3, 4, WRITABLE);
  assert.equal(poller.wait(batch, 5000), 1);
  assert.deepEqual(tokensOf(batch), [4]);
  poller.unregister(w3);
  assert.equal(poller.wait(batch, 0), 0);
  write(w2, "x");
  assert.equal(poller.wait(batch, 5000), 1);
  assert.deepEqual(tokensOf(batch), [2]);
});

eachBackend("supports() leaves no fd behind", (poller, fds) => {
  const [readFd] = fds.pipe();
  // The lowest free fd number (a new fd takes it): fds leaked by supports() fill the free numbers
  // from there up, so 50 leaks move it by at least 49. (/proc/self/fd needs --allow-all.)
  const lowestFree = (): number => {
    const fd = eventfd();
    close(fd);
    return fd;
  };
  const before = lowestFree();
  for (let i = 0; i < 50; i++) assert.equal(poller.supports(readFd, READABLE), true);
  const after = lowestFree();
  assert.ok(after - before < 10, `the lowest free fd moved from ${before} to ${after}`);
});

eachBackend(
  "a parked waitAsync cut short by a registration change still waits out its timeout",
  async (poller, fds) => {
    const [r1] = fds.pipe();
    const [r2] = fds.pipe();
    poller.register(r1, 1, READABLE);
    const batch = new EventBatch(8);
    // A wake consumed by a sync wait must not count for the next waitAsync either.
    poller.wake();
    assert.equal(poller.wait(batch, 0), 0);
    const start = performance.now();
    const parked = poller.waitAsync(batch, 40);
    blockMs(5);
    poller.register(r2, 2, READABLE); // nothing ready: no reason to return before 40 ms
    assert.equal(await parked, 0);
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 40, `waitAsync(40) returned after ${elapsed} ms`);
  },
);

eachBackend("a malformed batch is a TypeError even when nothing is ready", async (poller) => {
  const noTokens = {
    readiness: new Uint8Array(8),
    capacity: 8,
    length: 0,
  } as unknown as EventBatch;
  assert.throws(() => poller.wait(noTokens, 0), TypeError);
  await assert.rejects(poller.waitAsync(noTokens, 0), TypeError);
  const noReadiness = {
    tokens: new Uint32Array(8),
    capacity: 8,
    length: 0,
  } as unknown as EventBatch;
  assert.throws(() => poller.wait(noReadiness, 0), TypeError);
});

Deno.test({
  name: "poll(2): an fd closed while registered is reported as ERROR (POLLNVAL), not ignored",
  ignore: !linux,
  async fn() {
    using fds = new FdScope();
    const poller = createPoller({ backend: "poll" });
    try {
      const [readFd] = fds.pipe();
      poller.register(readFd, 9, READABLE);
      fds.close(readFd);
      const batch = new EventBatch(8);
      assert.equal(poller.wait(batch, 0), 1);
      assert.equal(batch.tokens[0], 9);
      assert.ok(batch.readiness[0] & ERROR, `readiness ${batch.readiness[0]} lacks ERROR`);
      poller.unregister(readFd);
      assert.equal(poller.wait(batch, 0), 0);
    } finally {
      await poller.close();
    }
  },
});
