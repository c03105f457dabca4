// The one behavioural suite every real backend runs (epoll and poll here, IOCP under Wine). It
// sees only the Poller contract and a minimal pair abstraction, so it needs no OS helpers itself.
import assert from "node:assert/strict";
import {
  ERROR,
  EventBatch,
  HANGUP,
  type Poller,
  PollerError,
  READABLE,
  WRITABLE,
} from "../../poller/mod.ts";

/** One end of a connected pair. */
export interface Endpoint {
  /** The fd (or SOCKET handle) number to register. */
  readonly fd: number;
  /** Writes bytes; returns how many were written (-1 when it would block). */
  write(bytes: Uint8Array): number;
  /** Reads what is there: the bytes, an empty array at EOF, or `null` when it would block. */
  read(): Uint8Array | null;
  /** Closes this end (idempotent). */
  close(): void;
}

/**
 * Two connected endpoints. Bytes written to `b` become readable at `a`; `b` is writable while its
 * buffer has room; closing `b` makes `a` report a hang-up (EOF). For a pipe, `a` is the read end.
 */
export interface Pair {
  readonly a: Endpoint;
  readonly b: Endpoint;
}

/** What the suite runs against. */
export interface PollerSuiteTarget {
  /** Prefix of every test name, e.g. `"epoll/pipe"`. */
  name: string;
  /** A fresh poller (the suite closes it). */
  createPoller(): Poller;
  /** A fresh connected pair (the suite closes both ends). */
  makePair(): Pair;
  /**
   * An open fd this backend cannot poll (epoll: a regular file), if there is such a thing; the
   * suite checks `supports()` says false and `register` throws a PollerError with `code`.
   */
  makeUnsupported?(): { fd: number; code: string; close(): void };
  /** A number that is no open fd (default 1,000,000, above any fd limit here). */
  invalidFd?: number;
  /** Skip the whole suite (e.g. the platform cannot run it). */
  ignore?: boolean;
}

const BYTE = new Uint8Array([0x2a]);
const WATCHDOG_MS = 10_000;

/** Rejects if `promise` has not settled within a generous bound: a hang guard, not a timing test. */
async function settles<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${WATCHDOG_MS} ms`)),
      WATCHDOG_MS,
    );
  });
  try {
    return await Promise.race([promise, watchdog]);
  } finally {
    clearTimeout(timer);
  }
}

/** Blocks the calling thread (lets an off-thread wait run ahead of us deterministically enough). */
function blockMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function tokensOf(batch: EventBatch): number[] {
  return Array.from(batch.tokens.subarray(0, batch.length)).sort((x, y) => x - y);
}

function assertPollerError(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof PollerError, `expected a PollerError, got ${error}`);
    assert.equal(error.code, code);
    assert.equal(typeof error.syscall, "string");
    assert.ok(error.errno > 0);
    return true;
  });
}

/** Registers the behavioural suite for `target` with `Deno.test`. */
export function pollerSuite(target: PollerSuiteTarget): void {
  const invalidFd = target.invalidFd ?? 1_000_000;

  /** Runs `fn` with a fresh poller and pairs, closing all of them afterwards whatever happens. */
  function test(name: string, fn: (poller: Poller, pair: () => Pair) => Promise<void> | void) {
    Deno.test({
      name: `${target.name}: ${name}`,
      ignore: target.ignore ?? false,
      async fn() {
        const pairs: Pair[] = [];
        const poller = target.createPoller();
        try {
          await fn(poller, () => {
            const pair = target.makePair();
            pairs.push(pair);
            return pair;
          });
        } finally {
          await poller.close();
          for (const pair of pairs) {
            pair.a.close();
            pair.b.close();
          }
        }
      },
    });
  }

  test("readable after a write", (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    assert.equal(poller.wait(batch, 0), 0);
    assert.equal(b.write(BYTE), 1);
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(batch.length, 1);
    assert.equal(batch.tokens[0], 1);
    assert.ok(batch.readiness[0] & READABLE);
    assert.equal(batch.readiness[0] & WRITABLE, 0, "WRITABLE was not asked for");
    assert.deepEqual(a.read(), BYTE);
  });

  test("writable when the buffer is empty", (poller, pair) => {
    const { b } = pair();
    const batch = new EventBatch(8);
    poller.register(b.fd, 2, WRITABLE);
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(batch.tokens[0], 2);
    assert.ok(batch.readiness[0] & WRITABLE);
    assert.equal(batch.readiness[0] & READABLE, 0);
  });

  test("not readable when empty", async (poller, pair) => {
    const { a } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    assert.equal(poller.wait(batch, 0), 0);
    assert.equal(batch.length, 0);
    assert.equal(await poller.waitAsync(batch, 0), 0);
    assert.equal(batch.length, 0);
  });

  test("hang-up and EOF when the peer closes", (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 3, READABLE);
    b.close();
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(batch.tokens[0], 3);
    assert.ok(batch.readiness[0] & HANGUP, `readiness ${batch.readiness[0]} lacks HANGUP`);
    assert.ok(batch.readiness[0] & READABLE, "a hang-up is reported readable so readers see EOF");
    assert.equal(a.read()?.length, 0, "EOF");
  });

  test("hang-up is reported even without READABLE interest", (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    b.close();
    poller.register(a.fd, 4, WRITABLE);
    // A pipe's read end is never writable; a socket may be. Either way HANGUP must be there.
    assert.equal(poller.wait(batch, 5000), 1);
    assert.ok(batch.readiness[0] & HANGUP);
  });

  test("modify changes interest and token", (poller, pair) => {
    const { b } = pair();
    const batch = new EventBatch(8);
    poller.register(b.fd, 1, READABLE);
    assert.equal(poller.wait(batch, 0), 0, "nothing was written towards b");
    poller.modify(b.fd, 7, WRITABLE);
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(batch.tokens[0], 7);
    assert.ok(batch.readiness[0] & WRITABLE);
    poller.modify(b.fd, 8, READABLE);
    assert.equal(poller.wait(batch, 0), 0);
    poller.unregister(b.fd);
  });

  test("unregister stops events", (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    b.write(BYTE);
    assert.equal(poller.wait(batch, 5000), 1);
    poller.unregister(a.fd);
    assert.equal(poller.wait(batch, 0), 0);
    // And it can be registered again.
    poller.register(a.fd, 9, READABLE);
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(batch.tokens[0], 9);
  });

  test("unregister stops events of an already-parked waitAsync", async (poller, pair) => {
    const one = pair();
    const two = pair();
    const batch = new EventBatch(8);
    poller.register(one.a.fd, 1, READABLE);
    poller.register(two.a.fd, 2, READABLE);
    const parked = poller.waitAsync(batch, Infinity);
    one.b.write(BYTE);
    // Give the parked thread time to collect fd one's event before we unregister it: the
    // contract says the token must still not come out.
    blockMs(30);
    poller.unregister(one.a.fd);
    two.b.write(BYTE);
    await settles(parked, "the parked waitAsync");
    const seen = tokensOf(batch);
    assert.ok(!seen.includes(1), `token 1 reported after unregister: ${seen}`);
    if (!seen.includes(2)) {
      // A spurious (empty) return is allowed; the next wait must see fd two.
      assert.equal(poller.wait(batch, 5000), 1);
    }
    assert.deepEqual(tokensOf(batch), [2]);
    assert.equal(poller.wait(batch, 0), 1, "fd two is still ready (level-triggered)");
    assert.deepEqual(tokensOf(batch), [2]);
  });

  test("level-triggered: reported again until drained", (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 5, READABLE);
    b.write(new Uint8Array([1, 2, 3]));
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(poller.wait(batch, 0), 1);
    assert.equal(poller.wait(batch, 0), 1);
    assert.deepEqual(a.read(), new Uint8Array([1, 2, 3]));
    assert.equal(poller.wait(batch, 0), 0);
  });

  test("double register throws EEXIST and leaves the poller usable", (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    assertPollerError(() => poller.register(a.fd, 2, READABLE), "EEXIST");
    b.write(BYTE);
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(batch.tokens[0], 1, "the first registration stands");
  });

  test("unregister and modify of an unknown fd throw ENOENT", (poller, pair) => {
    const { a } = pair();
    assertPollerError(() => poller.unregister(a.fd), "ENOENT");
    assertPollerError(() => poller.modify(a.fd, 1, READABLE), "ENOENT");
    poller.register(a.fd, 1, READABLE);
    poller.unregister(a.fd);
    assertPollerError(() => poller.unregister(a.fd), "ENOENT");
  });

  test("bad fds throw EBADF, bad arguments TypeError/RangeError", async (poller, pair) => {
    const { a } = pair();
    const batch = new EventBatch(8);
    assertPollerError(() => poller.register(-1, 1, READABLE), "EBADF");
    assertPollerError(() => poller.register(invalidFd, 1, READABLE), "EBADF");
    assert.throws(() => poller.register(1.5, 1, READABLE), TypeError);
    assert.throws(() => poller.register("3" as unknown as number, 1, READABLE), TypeError);
    assert.throws(() => poller.register(a.fd, -1, READABLE), RangeError);
    assert.throws(() => poller.register(a.fd, 2 ** 32, READABLE), RangeError);
    assert.throws(() => poller.register(a.fd, 1, 0), RangeError);
    assert.throws(() => poller.register(a.fd, 1, HANGUP), RangeError);
    assert.throws(() => poller.register(a.fd, 1, ERROR | READABLE), RangeError);
    assert.throws(() => poller.wait(batch, NaN), RangeError);
    assert.throws(() => poller.wait({} as EventBatch, 0), TypeError);
    await assert.rejects(poller.waitAsync(batch, NaN), RangeError);
    // None of that registered anything.
    poller.register(a.fd, 1, READABLE);
    poller.unregister(a.fd);
  });

  test("a timeout of -0 ms polls like 0, never the FFI's TypeError", async (poller, pair) => {
    // -0 comes out of ordinary arithmetic (Math.ceil(-0.5), Math.round(-0.2)); Deno's FFI
    // refuses it as an i32.
    const { a, b } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    assert.equal(poller.wait(batch, -0), 0);
    assert.equal(await poller.waitAsync(batch, -0), 0);
    assert.equal(b.write(BYTE), 1);
    assert.equal(poller.wait(batch, 5000), 1);
    assert.equal(poller.wait(batch, -0), 1);
    assert.equal(await settles(poller.waitAsync(batch, -0), "waitAsync(-0)"), 1);
  });

  test("1,000 registered fds with a few ready", (poller, pair) => {
    const pairs: Pair[] = [];
    for (let i = 0; i < 1000; i++) {
      const p = pair();
      pairs.push(p);
      poller.register(p.a.fd, i, READABLE);
    }
    const ready = [17, 500, 999];
    for (const i of ready) pairs[i].b.write(BYTE);
    const batch = new EventBatch(64);
    assert.equal(poller.wait(batch, 5000) > 0, true);
    // All three are written already; a wait returns all ready fds it sees at once.
    assert.equal(poller.wait(batch, 0), 3);
    assert.deepEqual(tokensOf(batch), ready);
    // A batch smaller than the ready set: the rest come in later waits (no starvation).
    const small = new EventBatch(2);
    const union = new Set<number>();
    for (let i = 0; i < 3; i++) {
      assert.equal(poller.wait(small, 0), 2);
      for (const token of tokensOf(small)) union.add(token);
    }
    assert.deepEqual([...union].sort((x, y) => x - y), ready);
    for (const p of pairs) poller.unregister(p.a.fd);
    assert.equal(poller.wait(batch, 0), 0);
  });

  test("a parked waitAsync resolves on readiness", async (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 11, READABLE);
    const parked = poller.waitAsync(batch, Infinity);
    b.write(BYTE);
    assert.equal(await settles(parked, "waitAsync"), 1);
    assert.equal(batch.tokens[0], 11);
    assert.ok(batch.readiness[0] & READABLE);
  });

  test("register while a waitAsync is parked takes effect", async (poller, pair) => {
    const { a, b } = pair();
    const batch = new EventBatch(8);
    const parked = poller.waitAsync(batch, Infinity);
    blockMs(5);
    poller.register(a.fd, 12, READABLE);
    b.write(BYTE);
    let count = await settles(parked, "waitAsync");
    // No later than the next wait (a spurious empty return is allowed).
    if (count === 0) count = poller.wait(batch, 5000);
    assert.equal(count, 1);
    assert.equal(batch.tokens[0], 12);
  });

  test("a sync wait runs while a waitAsync is parked; a second waitAsync is refused", async (
    poller,
    pair,
  ) => {
    const { a, b } = pair();
    const parkedBatch = new EventBatch(8);
    const syncBatch = new EventBatch(8);
    poller.register(a.fd, 14, READABLE);
    const parked = poller.waitAsync(parkedBatch, Infinity);
    await assert.rejects(
      poller.waitAsync(syncBatch, 0),
      (error: unknown) =>
        error instanceof Deno.errors.Busy && /another waitAsync/.test(error.message),
    );
    poller.register(b.fd, 13, WRITABLE);
    assert.equal(poller.wait(syncBatch, 5000) >= 1, true);
    assert.ok(tokensOf(syncBatch).includes(13));
    poller.wake();
    await settles(parked, "waitAsync");
  });

  test("wake() ends a parked waitAsync", async (poller, pair) => {
    const { a } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    const parked = poller.waitAsync(batch, Infinity);
    blockMs(5);
    poller.wake();
    poller.wake(); // repeated wakes are harmless
    assert.equal(await settles(parked, "woken waitAsync"), 0);
    assert.equal(batch.length, 0);
    // A wake with nothing parked makes the next wait return promptly, once.
    poller.wake();
    assert.equal(await settles(poller.waitAsync(batch, Infinity), "pre-woken waitAsync"), 0);
    assert.equal(poller.wait(batch, 0), 0);
  });

  test("close() settles a parked waitAsync and makes the poller unusable", async (
    poller,
    pair,
  ) => {
    const { a } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    const parked = poller.waitAsync(batch, Infinity);
    blockMs(5);
    assert.equal(poller.closed, false);
    const closing = poller.close();
    assert.equal(poller.closed, true);
    await settles(closing, "close()");
    assert.equal(typeof await parked, "number");
    assert.throws(() => poller.register(a.fd, 2, READABLE), PollerError);
    assert.throws(() => poller.wait(batch, 0), PollerError);
    await assert.rejects(poller.waitAsync(batch, 0), PollerError);
    poller.wake(); // a no-op now
    await poller.close(); // idempotent
  });

  test("fractional timeouts never return early", async (poller, pair) => {
    const { a } = pair();
    const batch = new EventBatch(8);
    poller.register(a.fd, 1, READABLE);
    // Correctness bound (the wait's own timeout), not a performance assertion.
    for (const timeoutMs of [0.05, 0.3, 1.5, 2.25]) {
      let start = performance.now();
      assert.equal(poller.wait(batch, timeoutMs), 0);
      let elapsed = performance.now() - start;
      assert.ok(elapsed >= timeoutMs, `wait(${timeoutMs}) returned after ${elapsed} ms`);
      start = performance.now();
      assert.equal(await poller.waitAsync(batch, timeoutMs), 0);
      elapsed = performance.now() - start;
      assert.ok(elapsed >= timeoutMs, `waitAsync(${timeoutMs}) returned after ${elapsed} ms`);
    }
  });

  test("supports() accepts connected endpoints and refuses bad fds", (poller, pair) => {
    const { a, b } = pair();
    assert.equal(poller.supports(a.fd, READABLE), true);
    assert.equal(poller.supports(b.fd, WRITABLE), true);
    assert.equal(poller.supports(-1, READABLE), false);
    assert.equal(poller.supports(invalidFd, READABLE), false);
    assert.equal(poller.supports(0.5, READABLE), false);
    // supports() changes nothing: the fd can still be registered.
    poller.register(a.fd, 1, READABLE);
    assert.equal(poller.supports(a.fd, READABLE), true);
    if (target.makeUnsupported !== undefined) {
      const unsupported = target.makeUnsupported();
      try {
        assert.equal(poller.supports(unsupported.fd, READABLE), false);
        assertPollerError(() => poller.register(unsupported.fd, 2, READABLE), unsupported.code);
      } finally {
        unsupported.close();
      }
    }
  });
}
