// The IOCP/AFD backend. The layout and mapping tests are pure and run everywhere; the rest needs
// Windows (or the Windows build of Deno under Wine: ../shared/windows/wine-deno test -A <this>).
import assert from "node:assert/strict";
import { createIocpPoller } from "../../poller/_iocp/mod.ts";
import * as afd from "../../poller/_iocp/_layout.ts";
import {
  AFD_POLL_ABORT,
  AFD_POLL_ACCEPT,
  AFD_POLL_CONNECT_FAIL,
  AFD_POLL_DISCONNECT,
  AFD_POLL_INFO,
  AFD_POLL_LOCAL_CLOSE,
  AFD_POLL_RECEIVE,
  AFD_POLL_RECEIVE_EXPEDITED,
  AFD_POLL_SEND,
  afdEventsFor,
  INFINITE,
  IO_STATUS_BLOCK,
  OBJECT_ATTRIBUTES,
  OVERLAPPED_ENTRY,
  readinessFromAfd,
  SLOT,
  timeoutToDword,
  UNICODE_STRING,
  utf16le,
} from "../../poller/_iocp/_layout.ts";
import { winErrorName } from "../../poller/_iocp/_errors.ts";
import { PollerError } from "../../poller/errors.ts";
import {
  ERROR,
  EventBatch,
  HANGUP,
  type Poller,
  PRIORITY,
  READABLE,
  WRITABLE,
} from "../../poller/types.ts";
import { MSG_OOB, WinNet } from "../_win_net.ts";
import { type Endpoint, type Pair, pollerSuite } from "./_suite.ts";

const ignore = Deno.build.os !== "windows";

function assertEquals(actual: unknown, expected: unknown, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E> = new (...args: any[]) => E;

function assertThrows<E extends Error>(fn: () => unknown, type: ErrorClass<E>): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    return error;
  }
  assert.fail(`expected ${type.name} to be thrown`);
}

async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: ErrorClass<E>,
  includes = "",
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    assert.ok(error.message.includes(includes), error.message);
    return error;
  }
  assert.fail(`expected ${type.name} to be rejected`);
}
const ALL = READABLE | WRITABLE | PRIORITY;

// --- pure: runs on every OS ------------------------------------------------------------------

Deno.test("iocp layout: x64 structs are pinned", () => {
  assertEquals(OVERLAPPED_ENTRY, {
    size: 32,
    completionKey: 0,
    overlapped: 8,
    internal: 16,
    bytesTransferred: 24,
  });
  assertEquals(IO_STATUS_BLOCK, { size: 16, status: 0, information: 8 });
  assertEquals(AFD_POLL_INFO, {
    size: 32,
    timeout: 0,
    numberOfHandles: 8,
    exclusive: 12,
    handle: 16,
    events: 24,
    status: 28,
  });
  assertEquals(UNICODE_STRING, { size: 16, length: 0, maximumLength: 2, buffer: 8 });
  assertEquals(OBJECT_ATTRIBUTES.size, 48);
  assertEquals(OBJECT_ATTRIBUTES.objectName, 16);
  // A slot holds the IO_STATUS_BLOCK then the AFD_POLL_INFO, both 8-aligned.
  assertEquals(SLOT, { size: 48, iosb: 0, info: 16 });
  assertEquals(SLOT.info % 8, 0);
  assertEquals(SLOT.size % 8, 0);
});

Deno.test("iocp constants: AFD, NTSTATUS, Winsock and Win32 values are pinned", () => {
  // AFD_POLL_* bits: piscisaureus/wepoll src/afd.h (also mio's src/sys/windows/afd.rs).
  assertEquals(
    [
      afd.AFD_POLL_RECEIVE,
      afd.AFD_POLL_RECEIVE_EXPEDITED,
      afd.AFD_POLL_SEND,
      afd.AFD_POLL_DISCONNECT,
      afd.AFD_POLL_ABORT,
      afd.AFD_POLL_LOCAL_CLOSE,
      afd.AFD_POLL_ACCEPT,
      afd.AFD_POLL_CONNECT_FAIL,
    ],
    [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x80, 0x100],
  );
  // IOCTL_AFD_POLL and the NtCreateFile arguments: wepoll src/afd.c.
  assertEquals(afd.IOCTL_AFD_POLL, 0x00012024);
  assertEquals([afd.SYNCHRONIZE, afd.FILE_SHARE_READ_WRITE, afd.FILE_OPEN], [0x00100000, 3, 1]);
  assertEquals(afd.FILE_SKIP_SET_EVENT_ON_HANDLE, 0x2);
  // NTSTATUS (ntstatus.h): STATUS_PENDING, STATUS_CANCELLED, STATUS_NOT_FOUND, STATUS_INVALID_HANDLE.
  assertEquals(
    [afd.STATUS_SUCCESS, afd.STATUS_PENDING, afd.STATUS_CANCELLED, afd.STATUS_NOT_FOUND],
    [0, 0x103, 0xc0000120, 0xc0000225],
  );
  assertEquals(afd.STATUS_INVALID_HANDLE, 0xc0000008);
  // Winsock (mswsock.h / ws2def.h): SIO_BASE_HANDLE, SIO_BSP_HANDLE_POLL, SIO_BSP_HANDLE;
  // SOL_SOCKET and SO_TYPE (winsock2.h).
  assertEquals(
    [afd.SIO_BASE_HANDLE, afd.SIO_BSP_HANDLE_POLL, afd.SIO_BSP_HANDLE],
    [0x48000022, 0x4800001d, 0x4800001b],
  );
  assertEquals([afd.SOL_SOCKET, afd.SO_TYPE], [0xffff, 0x1008]);
  assertEquals([afd.WAIT_TIMEOUT, afd.INFINITE], [258, 0xffffffff]);
  // OBJECT_ATTRIBUTES on x64: ULONG Length, then pointer-aligned members.
  assertEquals({ ...afd.OBJECT_ATTRIBUTES }, {
    size: 48,
    length: 0,
    rootDirectory: 8,
    objectName: 16,
    attributes: 24,
    securityDescriptor: 32,
    securityQualityOfService: 40,
  });
  assertEquals(afd.AFD_DEVICE_NAME.startsWith("\\Device\\Afd\\"), true);
});

Deno.test("iocp mapping: interest to AFD events always includes the hangup/error conditions", () => {
  const always = AFD_POLL_DISCONNECT | AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL |
    AFD_POLL_LOCAL_CLOSE;
  assertEquals(afdEventsFor(READABLE), always | AFD_POLL_RECEIVE | AFD_POLL_ACCEPT);
  assertEquals(afdEventsFor(WRITABLE), always | AFD_POLL_SEND);
  assertEquals(afdEventsFor(PRIORITY), always | AFD_POLL_RECEIVE_EXPEDITED);
  assertEquals(
    afdEventsFor(ALL),
    always | AFD_POLL_RECEIVE | AFD_POLL_ACCEPT | AFD_POLL_SEND | AFD_POLL_RECEIVE_EXPEDITED,
  );
});

Deno.test("iocp mapping: AFD events to readiness, filtered by interest", () => {
  assertEquals(readinessFromAfd(AFD_POLL_RECEIVE, ALL), READABLE);
  assertEquals(readinessFromAfd(AFD_POLL_ACCEPT, READABLE), READABLE);
  assertEquals(readinessFromAfd(AFD_POLL_SEND, ALL), WRITABLE);
  assertEquals(readinessFromAfd(AFD_POLL_RECEIVE_EXPEDITED, ALL), PRIORITY);
  assertEquals(readinessFromAfd(AFD_POLL_DISCONNECT, READABLE), READABLE | HANGUP);
  assertEquals(readinessFromAfd(AFD_POLL_DISCONNECT, WRITABLE), HANGUP);
  assertEquals(readinessFromAfd(AFD_POLL_ABORT, WRITABLE), WRITABLE | HANGUP | ERROR);
  assertEquals(readinessFromAfd(AFD_POLL_CONNECT_FAIL, ALL), READABLE | WRITABLE | HANGUP | ERROR);
  // Events outside the interest are not reported.
  assertEquals(readinessFromAfd(AFD_POLL_RECEIVE | AFD_POLL_SEND, WRITABLE), WRITABLE);
  assertEquals(readinessFromAfd(AFD_POLL_RECEIVE_EXPEDITED, READABLE), 0);
  assertEquals(readinessFromAfd(0, ALL), 0);
});

Deno.test("iocp timeouts: whole ms rounded up, forever as INFINITE", () => {
  assertEquals(timeoutToDword(0), 0);
  assertEquals(timeoutToDword(0.001), 1);
  assertEquals(timeoutToDword(1), 1);
  assertEquals(timeoutToDword(1.5), 2);
  assertEquals(timeoutToDword(-1), INFINITE);
  assertEquals(timeoutToDword(Infinity), INFINITE);
  assertEquals(timeoutToDword(2 ** 40), INFINITE - 1);
});

Deno.test("iocp helpers: UTF-16LE names and error names", () => {
  assertEquals([...utf16le("\\A")], [0x5c, 0, 0x41, 0]);
  assertEquals(winErrorName(10038), "WSAENOTSOCK");
  assertEquals(winErrorName(6), "ERROR_INVALID_HANDLE");
  assertEquals(winErrorName(123456), "E123456");
});

// --- Windows ---------------------------------------------------------------------------------

/** Waits until `token` is reported (up to `tries` waits of up to 1 s); returns its readiness. */
function waitFor(poller: Poller, batch: EventBatch, token: number, tries = 20): number {
  for (let i = 0; i < tries; i++) {
    const n = poller.wait(batch, 1000);
    for (let j = 0; j < n; j++) if (batch.tokens[j] === token) return batch.readiness[j];
  }
  return 0;
}

/** The readiness of `token` in one wait (0 when not reported). */
function readinessIn(poller: Poller, batch: EventBatch, token: number, timeoutMs: number): number {
  const n = poller.wait(batch, timeoutMs);
  let found = 0;
  for (let j = 0; j < n; j++) if (batch.tokens[j] === token) found |= batch.readiness[j];
  return found;
}

/** Tokens seen in `waits` waits of `timeoutMs`. */
function tokensSeen(poller: Poller, batch: EventBatch, waits: number, timeoutMs: number) {
  const seen = new Set<number>();
  for (let i = 0; i < waits; i++) {
    const n = poller.wait(batch, timeoutMs);
    for (let j = 0; j < n; j++) seen.add(batch.tokens[j]);
  }
  return seen;
}

async function withPoller(fn: (poller: Poller, net: WinNet) => void | Promise<void>) {
  using net = new WinNet();
  const poller = createIocpPoller();
  try {
    await fn(poller, net);
  } finally {
    await poller.close();
  }
}

Deno.test({
  name: "iocp: readable is level-triggered until drained",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const { a, b } = net.pair();
      const batch = new EventBatch(8);
      poller.register(b, 7, READABLE);
      assertEquals(readinessIn(poller, batch, 7, 50), 0);
      net.send(a, new Uint8Array([1, 2, 3]));
      assertEquals(waitFor(poller, batch, 7), READABLE);
      assertEquals(waitFor(poller, batch, 7), READABLE, "still ready: reported again");
      assertEquals(net.drain(b), 3);
      assertEquals(readinessIn(poller, batch, 7, 50), 0);
      assertEquals(readinessIn(poller, batch, 7, 50), 0);
    }),
});

Deno.test({
  name: "iocp: writable, and modify changes interest and token",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const { a } = net.pair();
      const batch = new EventBatch(8);
      poller.register(a, 1, READABLE);
      assertEquals(readinessIn(poller, batch, 1, 50), 0);
      poller.modify(a, 2, WRITABLE);
      assertEquals(waitFor(poller, batch, 2), WRITABLE);
      poller.modify(a, 3, READABLE | WRITABLE);
      assertEquals(waitFor(poller, batch, 3), WRITABLE);
      // Back to readable only while the writable request may be outstanding: it is cancelled.
      poller.modify(a, 4, READABLE);
      const seen = tokensSeen(poller, batch, 3, 30);
      assertEquals([...seen], []);
    }),
});

Deno.test({
  name: "iocp: modify while a request is outstanding takes effect at once",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const { a, b } = net.pair();
      const batch = new EventBatch(8);
      poller.register(b, 1, READABLE); // outstanding: nothing to read yet
      poller.modify(b, 2, READABLE | WRITABLE);
      assertEquals(waitFor(poller, batch, 2), WRITABLE);
      net.send(a, new Uint8Array([9]));
      assertEquals(waitFor(poller, batch, 2) & READABLE, READABLE);
      assertEquals(tokensSeen(poller, batch, 2, 20).has(1), false, "the old token is gone");
    }),
});

Deno.test({
  name: "iocp: peer shutdown is READABLE|HANGUP, reset adds ERROR",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const batch = new EventBatch(8);
      const first = net.pair();
      poller.register(first.b, 1, READABLE);
      net.shutdownSend(first.a);
      assertEquals(waitFor(poller, batch, 1), READABLE | HANGUP);
      assertEquals(net.recv(first.b, new Uint8Array(4)), 0, "EOF");
      assertEquals(waitFor(poller, batch, 1), READABLE | HANGUP, "level-triggered");

      const second = net.pair();
      poller.register(second.b, 2, WRITABLE);
      net.reset(second.a);
      let readiness = 0;
      for (let i = 0; i < 20 && !(readiness & HANGUP); i++) {
        readiness = waitFor(poller, batch, 2);
      }
      assertEquals(readiness & (HANGUP | ERROR), HANGUP | ERROR);
    }),
});

Deno.test({
  name: "iocp: a listening socket is readable when a connection is pending",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const batch = new EventBatch(8);
      const { socket: listener, address } = net.listener();
      poller.register(listener, 5, READABLE);
      assertEquals(readinessIn(poller, batch, 5, 30), 0);
      net.connectTo(address);
      assertEquals(waitFor(poller, batch, 5), READABLE);
      const accepted = net.accept(listener);
      assertEquals(accepted >= 0, true);
      assertEquals(readinessIn(poller, batch, 5, 30), 0);
    }),
});

Deno.test({
  name: "iocp: out-of-band data is PRIORITY",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const batch = new EventBatch(8);
      const { a, b } = net.pair();
      poller.register(b, 3, PRIORITY);
      assertEquals(readinessIn(poller, batch, 3, 30), 0);
      net.send(a, new Uint8Array([42]), MSG_OOB);
      assertEquals(waitFor(poller, batch, 3), PRIORITY);
    }),
});

Deno.test({
  name: "iocp: unregister stops reports, even for a request completed before it",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const batch = new EventBatch(8);
      const { a, b } = net.pair();
      poller.register(b, 1, READABLE);
      poller.register(a, 2, WRITABLE); // completes at once: its packet is queued
      net.send(a, new Uint8Array([1]));
      // Give the completions time to queue, then unregister before any wait dequeues them.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // no wait may run here
      poller.unregister(a);
      poller.unregister(b);
      assertEquals([...tokensSeen(poller, batch, 3, 30)], []);
      // Registering again works and reports under the new token.
      poller.register(b, 9, READABLE);
      assertEquals(waitFor(poller, batch, 9), READABLE);
    }),
});

Deno.test({
  name: "iocp: unregister while waitAsync is parked; the parked wait never reports it",
  ignore,
  fn: () =>
    withPoller(async (poller, net) => {
      const batch = new EventBatch(8);
      const { a, b } = net.pair();
      poller.register(b, 1, READABLE);
      const parked = poller.waitAsync(batch, 2000);
      poller.unregister(b);
      net.send(a, new Uint8Array([1]));
      const n = await parked;
      for (let i = 0; i < n; i++) assertEquals(batch.tokens[i] !== 1, true);
      assertEquals([...tokensSeen(poller, batch, 2, 30)], []);
    }),
});

Deno.test({
  name: "iocp: register and modify while waitAsync is parked are seen by it",
  ignore,
  fn: () =>
    withPoller(async (poller, net) => {
      const batch = new EventBatch(8);
      const { a, b } = net.pair();
      const parked = poller.waitAsync(batch, 5000);
      poller.register(a, 4, WRITABLE);
      let n = await parked;
      assertEquals(n, 1);
      assertEquals([batch.tokens[0], batch.readiness[0]], [4, WRITABLE]);
      poller.register(b, 5, WRITABLE);
      poller.modify(b, 5, READABLE);
      const again = poller.waitAsync(batch, 5000);
      poller.unregister(a);
      net.send(a, new Uint8Array([1]));
      n = await again;
      // The unregister's cancellation may end the wait first: a spurious, empty wakeup.
      if (n === 0) n = await poller.waitAsync(batch, 5000);
      assertEquals([batch.tokens[0], batch.readiness[0]], [5, READABLE]);
    }),
});

Deno.test({
  name: "iocp: wake ends a parked waitAsync; close settles a parked one",
  ignore,
  fn: async () => {
    const poller = createIocpPoller();
    const batch = new EventBatch(4);
    const parked = poller.waitAsync(batch, -1);
    poller.wake();
    assertEquals(await parked, 0);
    poller.wake();
    poller.wake(); // coalesced
    assertEquals(poller.wait(batch, 0), 0);
    assertEquals(poller.wait(batch, 0), 0);
    const second = poller.waitAsync(batch, -1);
    await assertRejects(() => poller.waitAsync(batch, 0), Deno.errors.Busy, "outstanding");
    const closing = poller.close();
    assertEquals(poller.closed, true);
    assertEquals(await second, 0);
    await closing;
    await poller.close(); // idempotent
    poller.wake(); // harmless after close
  },
});

Deno.test({
  name: "iocp: supports() is true for sockets only and never throws for a bad fd",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const { a } = net.pair();
      assertEquals(poller.supports(a, READABLE), true);
      assertEquals(poller.supports(a, ALL), true);
      const event = net.eventHandle();
      try {
        assertEquals(poller.supports(event, READABLE), false);
      } finally {
        net.closeHandle(event);
      }
      assertEquals(poller.supports(0x7ffffff0, READABLE), false);
      assertEquals(poller.supports(-1, READABLE), false);
      assertEquals(poller.supports(1.5, READABLE), false);
    }),
});

Deno.test({
  name: "iocp: errors carry the Windows code and name; the poller stays usable",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const event = net.eventHandle();
      try {
        const error = assertThrows(() => poller.register(event, 1, READABLE), PollerError);
        assertEquals([error.syscall, error.code, error.errno], [
          "getsockopt",
          "WSAENOTSOCK",
          10038,
        ]);
      } finally {
        net.closeHandle(event);
      }
      const { a } = net.pair();
      poller.register(a, 1, WRITABLE);
      const dup = assertThrows(() => poller.register(a, 2, READABLE), PollerError);
      assertEquals(dup.code, "EEXIST");
      const missing = assertThrows(() => poller.unregister(a + 4000), PollerError);
      assertEquals(missing.code, "ENOENT");
      assertThrows(() => poller.modify(a + 4000, 1, READABLE), PollerError);
      assertThrows(() => poller.register(-4, 1, READABLE), PollerError);
      assertThrows(() => poller.register("4" as unknown as number, 1, READABLE), TypeError);
      assertThrows(() => poller.register(a, 1, 0), RangeError);
      assertThrows(() => poller.register(a, 1, 8), RangeError);
      assertThrows(() => poller.register(a, -1, READABLE), RangeError);
      assertThrows(() => poller.wait(new EventBatch(1), NaN), RangeError);
      const batch = new EventBatch(4);
      assertEquals(waitFor(poller, batch, 1), WRITABLE, "still usable");
    }),
});

Deno.test({
  name: "iocp: a socket closed while registered drops out; its handle can be registered again",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const batch = new EventBatch(8);
      const { a, b } = net.pair();
      poller.register(b, 1, READABLE);
      net.close(b);
      assertEquals([...tokensSeen(poller, batch, 3, 30)].includes(1), false);
      net.close(a);
      // Unregistering the closed socket is allowed (it is gone already).
      poller.unregister(b);
      const next = net.pair();
      poller.register(next.a, 2, WRITABLE);
      assertEquals(waitFor(poller, batch, 2), WRITABLE);
    }),
});

Deno.test({
  name: "iocp: 160 sockets over several AFD helper handles; small batches",
  ignore,
  fn: () =>
    withPoller((poller, net) => {
      const pairs = Array.from({ length: 80 }, () => net.pair());
      pairs.forEach(({ b }, i) => poller.register(b, 1000 + i, READABLE));
      const ready = [3, 17, 33, 64, 79];
      for (const i of ready) net.send(pairs[i].a, new Uint8Array([i]));
      const batch = new EventBatch(2); // fewer slots than ready sockets
      const seen = new Set<number>();
      for (let i = 0; i < 40 && seen.size < ready.length; i++) {
        const n = poller.wait(batch, 200);
        assertEquals(n <= 2, true);
        for (let j = 0; j < n; j++) {
          assertEquals(batch.readiness[j], READABLE);
          seen.add(batch.tokens[j]);
        }
      }
      assertEquals([...seen].sort((x, y) => x - y), ready.map((i) => 1000 + i));
      for (const { b } of pairs) poller.unregister(b);
    }),
});

Deno.test({
  name: "iocp: close cancels outstanding requests and rejects later calls",
  ignore,
  fn: async () => {
    using net = new WinNet();
    const poller = createIocpPoller();
    const pairs = Array.from({ length: 40 }, () => net.pair());
    pairs.forEach(({ a }, i) => poller.register(a, i, READABLE));
    await poller.close();
    assertEquals(poller.closed, true);
    const error = assertThrows(() => poller.register(pairs[0].b, 1, READABLE), PollerError);
    assertEquals(error.code, "EBADF");
    assertThrows(() => poller.wait(new EventBatch(1), 0), PollerError);
    await assertRejects(() => poller.waitAsync(new EventBatch(1), 0), PollerError);
  },
});

// --- the shared behavioural suite, over TCP socket pairs on 127.0.0.1 -------------------------

/** One Winsock for every pair the suite makes (made on first use, Windows only). */
let suiteNet: WinNet | undefined;

function socketEndpoint(net: WinNet, socket: number): Endpoint {
  let open = true;
  const buffer = new Uint8Array(65536);
  return {
    fd: socket,
    write: (bytes) => net.send(socket, bytes.slice()),
    read() {
      const n = net.recv(socket, buffer);
      return n < 0 ? null : buffer.slice(0, n);
    },
    close() {
      if (open) {
        open = false;
        net.close(socket);
      }
    },
  };
}

pollerSuite({
  name: "iocp/tcp",
  createPoller: createIocpPoller,
  makePair(): Pair {
    suiteNet ??= new WinNet();
    const { a, b } = suiteNet.pair();
    return { a: socketEndpoint(suiteNet, a), b: socketEndpoint(suiteNet, b) };
  },
  makeUnsupported() {
    suiteNet ??= new WinNet();
    const net = suiteNet;
    const handle = net.eventHandle();
    return { fd: handle, code: "WSAENOTSOCK", close: () => net.closeHandle(handle) };
  },
  ignore,
});
