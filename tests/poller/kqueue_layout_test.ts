// The kqueue ABI pinned per BSD, with no dlopen (runs on every OS). Values come from each
// system's sys/event.h: xnu (macOS; apple-oss-distributions/xnu bsd/sys/event.h), FreeBSD 12+
// (freebsd/freebsd-src sys/sys/event.h), OpenBSD 7.x (openbsd/src sys/sys/event.h, 1.74), NetBSD
// 9/10 (NetBSD/src sys/sys/event.h; __kevent50, still exported by NetBSD 11 for this layout).
import assert from "node:assert/strict";
import {
  decodeKevent,
  encodeKevent,
  EV_ADD,
  EV_CLEAR,
  EV_DELETE,
  EV_ENABLE,
  EV_EOF,
  EV_ERROR,
  EV_RECEIPT,
  filtersFor,
  type Kevent,
  keventFilter,
  keventFlags,
  keventReadiness,
  KQUEUE_PLATFORMS,
  kqueuePlatform,
  NOTE_TRIGGER,
  O_NONBLOCK,
  TIMESPEC_SIZE,
  writeTimespec,
} from "../../poller/_kqueue/_layout.ts";
import { ERROR, HANGUP, PRIORITY, READABLE, WRITABLE } from "../../poller/types.ts";

const { darwin, freebsd, openbsd, netbsd } = KQUEUE_PLATFORMS;

Deno.test("kqueue layout: struct kevent per OS", () => {
  // macOS (x86_64 and arm64): ident u64, filter i16, flags u16, fflags u32, data i64, udata.
  assert.deepEqual(darwin.layout, {
    size: 32,
    ident: 0,
    filter: 8,
    filterBytes: 2,
    flags: 10,
    flagsBytes: 2,
    fflags: 12,
    data: 16,
    udata: 24,
  });
  // OpenBSD: the same 32 bytes (data is __int64_t since 5.x).
  assert.deepEqual(openbsd.layout, darwin.layout);
  // FreeBSD 12+: the same head plus uint64_t ext[4].
  assert.deepEqual(freebsd.layout, { ...darwin.layout, size: 64 });
  // NetBSD: uint32_t filter/flags/fflags, padding, int64_t data, udata.
  assert.deepEqual(netbsd.layout, {
    size: 40,
    ident: 0,
    filter: 8,
    filterBytes: 4,
    flags: 12,
    flagsBytes: 4,
    fflags: 16,
    data: 24,
    udata: 32,
  });
  for (const platform of Object.values(KQUEUE_PLATFORMS)) {
    assert.equal(platform.layout.size % 8, 0, `${platform.os}: arrays of it stay aligned`);
    assert.equal(platform.layout.data % 8, 0);
    assert.equal(platform.layout.udata % 8, 0);
  }
  assert.equal(TIMESPEC_SIZE, 16);
});

Deno.test("kqueue layout: filters, flags, libc names per OS", () => {
  assert.deepEqual(
    Object.values(KQUEUE_PLATFORMS).map((p) => [
      p.os,
      p.EVFILT_READ,
      p.EVFILT_WRITE,
      p.EVFILT_EXCEPT,
      p.NOTE_OOB,
      p.EVFILT_USER,
      p.userFilter,
    ]),
    [
      ["darwin", -1, -2, -15, 0x2, -10, "always"],
      ["freebsd", -1, -2, null, 0, -11, "always"],
      ["openbsd", -1, -2, -9, 0x4, -10, "probe"],
      ["netbsd", 0, 1, null, 0, 8, "probe"],
    ],
  );
  assert.deepEqual(
    Object.values(KQUEUE_PLATFORMS).map((p) => [p.libc, p.keventSymbol, p.errnoSymbol]),
    [
      ["/usr/lib/libSystem.B.dylib", "kevent", "__error"],
      ["libc.so.7", "kevent", "__error"],
      ["libc.so", "kevent", "__errno"],
      ["libc.so.12", "__kevent50", "__errno"],
    ],
  );
  assert.deepEqual([freebsd.O_CLOEXEC, openbsd.O_CLOEXEC, netbsd.O_CLOEXEC], [
    0x100000,
    0x10000,
    0x400000,
  ]);
  // EOPNOTSUPP: 102 in xnu's sys/errno.h (45 is ENOTSUP there), 45 on the three BSDs.
  assert.deepEqual(
    [darwin.EOPNOTSUPP, freebsd.EOPNOTSUPP, openbsd.EOPNOTSUPP, netbsd.EOPNOTSUPP],
    [102, 45, 45, 45],
  );
  assert.deepEqual(
    [
      EV_ADD,
      EV_DELETE,
      EV_ENABLE,
      EV_CLEAR,
      EV_RECEIPT,
      EV_ERROR,
      EV_EOF,
      NOTE_TRIGGER,
      O_NONBLOCK,
    ],
    [0x1, 0x2, 0x4, 0x20, 0x40, 0x4000, 0x8000, 0x01000000, 0x4],
  );
});

Deno.test("kqueue layout: the platform is chosen by os and arch", () => {
  assert.equal(kqueuePlatform("darwin", "aarch64"), darwin);
  assert.equal(kqueuePlatform("darwin", "x86_64"), darwin);
  assert.equal(kqueuePlatform("freebsd", "x86_64"), freebsd);
  assert.equal(kqueuePlatform("netbsd", "aarch64"), netbsd);
  assert.equal(kqueuePlatform("openbsd", "x86_64"), openbsd);
  assert.equal(kqueuePlatform("linux", "x86_64"), undefined);
  assert.equal(kqueuePlatform("darwin", "riscv64"), undefined);
  assert.equal(kqueuePlatform("toString", "x86_64"), undefined);
});

const SAMPLE: Kevent = {
  ident: 0x1234,
  filter: -2,
  flags: EV_ADD | EV_RECEIPT,
  fflags: 0x01000000,
  data: -22,
  udataLow: 0xdeadbeef,
  udataHigh: 7,
};

Deno.test("kqueue layout: encoding writes the bytes each kernel reads", () => {
  // 32-byte layout (macOS, OpenBSD), little-endian.
  const bytes = new Uint8Array(64).fill(0xff);
  encodeKevent(new DataView(bytes.buffer), 1, darwin.layout, SAMPLE);
  assert.deepEqual([...bytes.subarray(0, 32)], new Array(32).fill(0xff), "entry 0 untouched");
  assert.deepEqual(
    [...bytes.subarray(32)],
    [
      ...[0x34, 0x12, 0, 0, 0, 0, 0, 0], // ident
      ...[0xfe, 0xff], // filter -2 as int16
      ...[0x41, 0x00], // flags
      ...[0, 0, 0, 1], // fflags
      ...[0xea, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // data -22 as int64
      ...[0xef, 0xbe, 0xad, 0xde, 7, 0, 0, 0], // udata
    ],
  );
  // FreeBSD: ext[4] zeroed.
  const fb = new Uint8Array(64).fill(0xff);
  encodeKevent(new DataView(fb.buffer), 0, freebsd.layout, SAMPLE);
  assert.deepEqual([...fb.subarray(0, 32)], [...bytes.subarray(32)]);
  assert.deepEqual([...fb.subarray(32)], new Array(32).fill(0));
  // NetBSD: 32-bit filter and flags, 4 bytes of padding before data.
  const nb = new Uint8Array(40).fill(0xff);
  encodeKevent(new DataView(nb.buffer), 0, netbsd.layout, { ...SAMPLE, filter: 1 });
  assert.deepEqual([...nb], [
    ...[0x34, 0x12, 0, 0, 0, 0, 0, 0],
    ...[1, 0, 0, 0], // filter
    ...[0x41, 0, 0, 0], // flags
    ...[0, 0, 0, 1], // fflags
    ...[0, 0, 0, 0], // padding
    ...[0xea, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ...[0xef, 0xbe, 0xad, 0xde, 7, 0, 0, 0],
  ]);
});

Deno.test("kqueue layout: decode inverts encode on every layout", () => {
  for (const platform of Object.values(KQUEUE_PLATFORMS)) {
    const layout = platform.layout;
    const view = new DataView(new ArrayBuffer(layout.size * 3));
    const event = { ...SAMPLE, filter: platform.EVFILT_WRITE, flags: EV_EOF | EV_ERROR };
    encodeKevent(view, 2, layout, event);
    const out = decodeKevent(view, 2, layout, { ...SAMPLE, ident: 0 });
    assert.deepEqual(out, event, platform.os);
    assert.equal(keventFilter(view, 2, layout), platform.EVFILT_WRITE);
    assert.equal(keventFlags(view, 2, layout), EV_EOF | EV_ERROR);
  }
});

Deno.test("kqueue mapping: interest to filters", () => {
  assert.deepEqual(filtersFor(READABLE | WRITABLE, darwin), [
    { filter: -1, fflags: 0, bit: READABLE },
    { filter: -2, fflags: 0, bit: WRITABLE },
  ]);
  assert.deepEqual(filtersFor(PRIORITY, darwin), [{ filter: -15, fflags: 2, bit: PRIORITY }]);
  assert.deepEqual(filtersFor(PRIORITY, openbsd), [{ filter: -9, fflags: 4, bit: PRIORITY }]);
  assert.deepEqual(filtersFor(PRIORITY, freebsd), [], "no EVFILT_EXCEPT on FreeBSD");
  assert.deepEqual(filtersFor(READABLE, netbsd), [{ filter: 0, fflags: 0, bit: READABLE }]);
});

Deno.test("kqueue mapping: returned events to readiness", () => {
  assert.equal(keventReadiness(-1, 0, 0, darwin), READABLE);
  assert.equal(keventReadiness(-2, 0, 0, darwin), WRITABLE);
  assert.equal(keventReadiness(-15, 0, 0x2, darwin), PRIORITY, "NOTE_OOB returned");
  assert.equal(keventReadiness(-1, EV_EOF, 0, darwin), READABLE | HANGUP);
  assert.equal(keventReadiness(-2, EV_EOF, 54, darwin), WRITABLE | HANGUP | ERROR);
  assert.equal(keventReadiness(-1, EV_ERROR, 0, darwin), READABLE | ERROR);
  assert.equal(keventReadiness(0, 0, 0, netbsd), READABLE);
  assert.equal(keventReadiness(1, EV_EOF, 0, netbsd), WRITABLE | HANGUP);
  assert.equal(keventReadiness(-10, 0, 0, darwin), 0, "EVFILT_USER is the waker's");
});

Deno.test("kqueue mapping: EVFILT_EXCEPT means PRIORITY only when fflags has NOTE_OOB", () => {
  // xnu (apple-oss-distributions/xnu, bsd/kern/uipc_socket.c) runs EVFILT_EXCEPT through the
  // read filter (soexcept_filtops.f_event = filt_soread): filt_soread_common sets NOTE_OOB in
  // kn_fflags for out-of-band data, but also fires with EV_EOF (fflags = so_error) when the peer
  // shuts down, and fires for a listener's pending connections or a pending so_error with no
  // NOTE_OOB at all. OpenBSD's filt_soexcept (sys/kern/uipc_socket.c) sets NOTE_OOB likewise.
  assert.equal(keventReadiness(-15, EV_EOF, 0, darwin), HANGUP, "peer shut down: no OOB data");
  assert.equal(keventReadiness(-15, EV_EOF, 54, darwin), HANGUP | ERROR, "ECONNRESET");
  assert.equal(keventReadiness(-15, EV_EOF, 0x2, darwin), HANGUP | ERROR, "fflags is so_error");
  assert.equal(keventReadiness(-15, 0, 0, darwin), 0, "listener or so_error: no OOB data");
  assert.equal(keventReadiness(-9, 0, 0x4, openbsd), PRIORITY);
  assert.equal(keventReadiness(-9, 0, 0x2, openbsd), 0, "0x2 is NOTE_EOF on OpenBSD, not OOB");
});

Deno.test("kqueue timespec: sub-ms precision, never short", () => {
  const words = new Int32Array(4);
  writeTimespec(words, 0);
  assert.deepEqual([...words], [0, 0, 0, 0]);
  writeTimespec(words, 0.05);
  assert.deepEqual([...words], [0, 0, 50_000, 0]);
  writeTimespec(words, 1500.0000001);
  assert.deepEqual([...words], [1, 0, 500_000_001, 0]);
  writeTimespec(words, 999.9999999999);
  assert.deepEqual([...words], [1, 0, 0, 0]);
  writeTimespec(words, 2 ** 60);
  assert.deepEqual([...words], [0x7fffffff, 0, 0, 0]);
});
