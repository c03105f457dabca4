// Pins the Linux ABI facts the backends depend on: struct epoll_event per arch, struct pollfd,
// errno names; checks them against the running kernel; and checks eventfd/timerfd readiness
// through both Linux backends.
import assert from "node:assert/strict";
import { createPoller, EventBatch, READABLE, WRITABLE } from "../../poller/mod.ts";
import { EPOLL_EVENT_LAYOUTS, epollEventLayout } from "../../poller/_epoll/mod.ts";
import { EPOLLIN, EPOLLOUT } from "../../poller/_epoll/_layout.ts";
import { POLLFD_LAYOUT, pollPlatform } from "../../poller/_poll/mod.ts";
import {
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLPRI,
  POLLRDHUP_LINUX,
} from "../../poller/_poll/_layout.ts";
import { errnoName, POSIX_ERRNO } from "../../poller/_errno.ts";
import { FdScope, read, timerfdSet, write } from "../_fd.ts";

const linux = Deno.build.os === "linux";

Deno.test("epoll_event layout is pinned per arch", () => {
  // x86_64: the kernel declares the struct packed (12 bytes, data unaligned at 4).
  assert.deepEqual({ ...EPOLL_EVENT_LAYOUTS.x86_64 }, { size: 12, eventsOffset: 0, dataOffset: 4 });
  // aarch64 (and every other arch): natural alignment, data at 8, 16 bytes.
  assert.deepEqual({ ...EPOLL_EVENT_LAYOUTS.aarch64 }, {
    size: 16,
    eventsOffset: 0,
    dataOffset: 8,
  });
  assert.equal(epollEventLayout("x86_64"), EPOLL_EVENT_LAYOUTS.x86_64);
  assert.equal(epollEventLayout("aarch64"), EPOLL_EVENT_LAYOUTS.aarch64);
  assert.equal(epollEventLayout("riscv64"), undefined);
  // Every field must sit on a 4-byte boundary for the backend's Uint32Array decoding.
  for (const layout of Object.values(EPOLL_EVENT_LAYOUTS)) {
    assert.equal(layout.size % 4, 0);
    assert.equal(layout.dataOffset % 4, 0);
  }
});

Deno.test("pollfd layout is pinned", () => {
  assert.deepEqual({ ...POLLFD_LAYOUT }, {
    size: 8,
    fdOffset: 0,
    eventsOffset: 4,
    reventsOffset: 6,
  });
});

Deno.test("poll(2) facts per OS: libc, errno function, pipe2 flags, POLL* bits", () => {
  // The POLL* bits are the same in Linux's asm-generic/poll.h and in sys/poll.h of xnu, FreeBSD,
  // OpenBSD and NetBSD; POLLRDHUP (0x2000) is Linux-only and left unused elsewhere.
  assert.deepEqual(
    [POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, POLLRDHUP_LINUX],
    [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x2000],
  );
  const facts = (os: string) => {
    const p = pollPlatform(os)!;
    return [p.libc, p.errnoSymbol, p.pipe2Flags, p.rdhup];
  };
  assert.deepEqual(facts("linux"), ["libc.so.6", "__errno_location", 0o4000 | 0o2000000, 0x2000]);
  // macOS: an absolute path. A bare leaf name is searched for in /usr/lib only by binaries built
  // before 2022: dyld's dlopen sets requestorNeedsFallbacks from the caller's pre2022Binary
  // (apple-oss-distributions/dyld, dyld/DyldAPIs.cpp; the /usr/lib fallback is in
  // forEachDylibFallback, dyld/DyldProcessConfig.cpp), and Deno is newer, so
  // dlopen("libSystem.B.dylib") fails there. libSystem lives in the shared cache at this path.
  assert.deepEqual(facts("darwin"), ["/usr/lib/libSystem.B.dylib", "__error", null, 0]);
  // O_NONBLOCK is 0x4 on the BSDs; O_CLOEXEC is 0x100000 (FreeBSD), 0x400000 (NetBSD),
  // 0x10000 (OpenBSD), as in each system's sys/fcntl.h.
  assert.deepEqual(facts("freebsd"), ["libc.so.7", "__error", 0x100004, 0]);
  assert.deepEqual(facts("netbsd"), ["libc.so.12", "__errno", 0x400004, 0]);
  assert.deepEqual(facts("openbsd"), ["libc.so", "__errno", 0x10004, 0]);
  assert.equal(pollPlatform("windows"), undefined);
  assert.equal(pollPlatform("toString"), undefined);
});

Deno.test("errno names per OS family", () => {
  assert.equal(errnoName(9), "EBADF");
  assert.equal(errnoName(17, "linux"), "EEXIST");
  assert.equal(errnoName(2, "linux"), "ENOENT");
  assert.equal(errnoName(1, "linux"), "EPERM");
  assert.equal(errnoName(11, "linux"), "EAGAIN");
  assert.equal(errnoName(40, "linux"), "ELOOP");
  assert.equal(errnoName(28, "linux"), "ENOSPC");
  assert.equal(errnoName(24, "linux"), "EMFILE");
  assert.equal(errnoName(11, "darwin"), "EDEADLK");
  assert.equal(errnoName(35, "darwin"), "EAGAIN");
  assert.equal(errnoName(62, "freebsd"), "ELOOP");
  assert.equal(errnoName(9999, "linux"), "E9999");
  // 45 is EOPNOTSUPP on the other BSDs (sys/errno.h) but ENOTSUP on macOS, whose EOPNOTSUPP is 102
  // (xnu bsd/sys/errno.h).
  for (const os of ["freebsd", "openbsd", "netbsd"]) assert.equal(errnoName(45, os), "EOPNOTSUPP");
  assert.equal(errnoName(45, "darwin"), "ENOTSUP");
  assert.equal(errnoName(102, "darwin"), "EOPNOTSUPP");
  // Above 34 the families differ: Linux asm-generic/errno.h vs the BSDs' and xnu's sys/errno.h.
  for (const os of ["darwin", "freebsd", "openbsd", "netbsd"]) {
    assert.deepEqual(
      [35, 55, 60, 62, 78, 11].map((n) => errnoName(n, os)),
      ["EAGAIN", "ENOBUFS", "ETIMEDOUT", "ELOOP", "ENOSYS", "EDEADLK"],
      os,
    );
  }
  assert.deepEqual(
    [38, 95, 105, 110].map((n) => errnoName(n, "linux")),
    ["ENOSYS", "EOPNOTSUPP", "ENOBUFS", "ETIMEDOUT"],
  );
  // The shared low numbers the backends raise themselves, the same on every family.
  assert.deepEqual(
    { ...POSIX_ERRNO },
    {
      EPERM: 1,
      ENOENT: 2,
      EINTR: 4,
      EBADF: 9,
      ENOMEM: 12,
      EBUSY: 16,
      EEXIST: 17,
      EINVAL: 22,
      EMFILE: 24,
    },
  );
});

const RAW = {
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

Deno.test({
  name: "the running kernel agrees with this arch's epoll_event layout",
  ignore: !linux,
  fn() {
    using scope = new FdScope();
    const layout = epollEventLayout(Deno.build.arch)!;
    const lib = Deno.dlopen("libc.so.6", RAW);
    const epfd = lib.symbols.epoll_create1(0o2000000);
    assert.ok(epfd >= 0);
    try {
      // Two ready eventfds with distinctive 64-bit data values.
      const datas = [0x1122334455667788n, 0x0102030405060708n];
      for (const data of datas) {
        const fd = scope.eventfd(1);
        const event = new DataView(new ArrayBuffer(layout.size));
        event.setUint32(layout.eventsOffset, EPOLLIN, true);
        event.setBigUint64(layout.dataOffset, data, true);
        assert.equal(lib.symbols.epoll_ctl(epfd, 1, fd, new Uint8Array(event.buffer)), 0);
      }
      const out = new Uint8Array(layout.size * 3).fill(0xaa);
      assert.equal(lib.symbols.epoll_wait(epfd, out, 2, 1000), 2);
      const view = new DataView(out.buffer);
      const seen = [0, 1].map((i) => {
        assert.equal(
          view.getUint32(i * layout.size + layout.eventsOffset, true) & EPOLLIN,
          EPOLLIN,
        );
        return view.getBigUint64(i * layout.size + layout.dataOffset, true);
      });
      assert.deepEqual(seen.sort(), [...datas].sort());
      // The kernel wrote exactly two structs of `size` bytes: the third slot is untouched.
      assert.ok(out.subarray(layout.size * 2).every((byte) => byte === 0xaa));
    } finally {
      lib.symbols.close(epfd);
      lib.close();
    }
  },
});

Deno.test({
  name: "the running kernel agrees with the pollfd layout",
  ignore: !linux,
  fn() {
    using scope = new FdScope();
    const [r, w] = scope.pipe();
    const lib = Deno.dlopen("libc.so.6", RAW);
    try {
      const fds = new DataView(new ArrayBuffer(POLLFD_LAYOUT.size * 2));
      fds.setInt32(POLLFD_LAYOUT.fdOffset, r, true);
      fds.setInt16(POLLFD_LAYOUT.eventsOffset, POLLIN, true);
      fds.setInt32(POLLFD_LAYOUT.size + POLLFD_LAYOUT.fdOffset, w, true);
      fds.setInt16(POLLFD_LAYOUT.size + POLLFD_LAYOUT.eventsOffset, POLLOUT, true);
      assert.equal(lib.symbols.poll(new Uint8Array(fds.buffer), 2n, 0), 1, "only w is ready");
      assert.equal(fds.getInt16(POLLFD_LAYOUT.reventsOffset, true), 0);
      assert.equal(fds.getInt16(POLLFD_LAYOUT.size + POLLFD_LAYOUT.reventsOffset, true), POLLOUT);
      write(w, "x");
      assert.equal(lib.symbols.poll(new Uint8Array(fds.buffer), 2n, 0), 2);
      assert.equal(fds.getInt16(POLLFD_LAYOUT.reventsOffset, true), POLLIN);
    } finally {
      lib.close();
    }
    // Keep the EPOLLOUT import honest: it is the same bit as POLLOUT on Linux.
    assert.equal(EPOLLOUT, POLLOUT);
  },
});

const U64_ONE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

for (const backend of ["epoll", "poll"] as const) {
  Deno.test({
    name: `${backend}: eventfd readiness follows its counter`,
    ignore: !linux,
    async fn() {
      using scope = new FdScope();
      const poller = createPoller({ backend });
      try {
        const fd = scope.eventfd(0);
        const batch = new EventBatch(4);
        poller.register(fd, 42, READABLE | WRITABLE);
        assert.equal(poller.wait(batch, 0), 1);
        assert.equal(batch.readiness[0], WRITABLE, "counter 0: writable, not readable");
        assert.equal(write(fd, U64_ONE), 8);
        assert.equal(poller.wait(batch, 0), 1);
        assert.equal(batch.tokens[0], 42);
        assert.equal(batch.readiness[0], READABLE | WRITABLE);
        assert.deepEqual(read(fd, 8), U64_ONE);
        assert.equal(poller.wait(batch, 0), 1);
        assert.equal(batch.readiness[0], WRITABLE);
        poller.unregister(fd);
      } finally {
        await poller.close();
      }
    },
  });

  Deno.test({
    name: `${backend}: timerfd becomes readable when it expires`,
    ignore: !linux,
    async fn() {
      using scope = new FdScope();
      const poller = createPoller({ backend });
      try {
        const fd = scope.timerfd();
        const batch = new EventBatch(4);
        poller.register(fd, 7, READABLE);
        assert.equal(poller.wait(batch, 0), 0, "disarmed");
        timerfdSet(fd, 2);
        // Parked off-thread until the kernel timer fires.
        let count = await poller.waitAsync(batch, 5000);
        if (count === 0) count = poller.wait(batch, 5000); // a spurious return is allowed
        assert.equal(count, 1);
        assert.equal(batch.tokens[0], 7);
        assert.equal(batch.readiness[0], READABLE);
        const expirations = new DataView(read(fd, 8)!.slice().buffer).getBigUint64(0, true);
        assert.ok(expirations >= 1n);
        assert.equal(poller.wait(batch, 0), 0, "read resets it");
        poller.unregister(fd);
      } finally {
        await poller.close();
      }
    },
  });
}
