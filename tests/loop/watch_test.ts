// loop.watch() on real fds made by the test (pipes, socketpairs, eventfd) and on a FakePoller.
import assert from "node:assert/strict";
import { type ErrorContext, Loop, VirtualClock, type WatchEvent } from "../../mod.ts";
import {
  createPoller,
  type EventBatch,
  FakePoller,
  HANGUP,
  PollerError,
  READABLE,
  WRITABLE,
} from "../../poller/mod.ts";
import { drain, FdScope, openFile, read, write } from "../_fd.ts";

function copy(event: WatchEvent): Omit<WatchEvent, "bits"> {
  const { readable, writable, priority, hangup, error } = event;
  return { readable, writable, priority, hangup, error };
}

Deno.test("a readable pipe calls back in the poll phase; closing the watch inside its callback stops it", async () => {
  using fds = new FdScope();
  const [readFd, writeFd] = fds.pipe();
  await using loop = new Loop();
  const events: Array<Omit<WatchEvent, "bits">> = [];
  const log: string[] = [];
  const watch = loop.watch(readFd, { readable: true }, (event) => {
    events.push(copy(event));
    log.push(`fd: ${new TextDecoder().decode(read(readFd)!)}`);
    watch.close();
  });
  loop.setImmediate(() => log.push("immediate (check phase, after poll)"));
  loop.submit(() => {
    log.push("task");
    write(writeFd, "ping");
  });
  await loop.run();
  assert.deepEqual(log, ["task", "fd: ping", "immediate (check phase, after poll)"]);
  assert.deepEqual(events, [{
    readable: true,
    writable: false,
    priority: false,
    hangup: false,
    error: false,
  }]);
  assert.equal(watch.closed, true);
});

Deno.test("an idle loop wakes for data written by Deno's own timer, and sees EOF as hangup", async () => {
  using fds = new FdScope();
  const [readFd, writeFd] = fds.socketpair();
  await using loop = new Loop();
  const received: string[] = [];
  let sawHangup = false;
  const watch = loop.watch(readFd, { readable: true }, (event) => {
    const bytes = read(readFd);
    if (bytes !== null && bytes.length > 0) received.push(new TextDecoder().decode(bytes));
    if (event.hangup || (bytes !== null && bytes.length === 0)) {
      sawHangup = event.hangup;
      watch.close();
    }
  });
  // Written from outside the loop while it is parked in the poller.
  setTimeout(() => write(writeFd, "hello"), 5);
  setTimeout(() => fds.close(writeFd), 15);
  await loop.run();
  assert.deepEqual(received, ["hello"]);
  assert.equal(sawHangup, true);
});

Deno.test("work submitted from outside wakes a parked loop", async () => {
  await using loop = new Loop();
  const log: string[] = [];
  const keepAlive = loop.setTimeout(() => log.push("keep-alive timer"), 10_000);
  setTimeout(() => {
    loop.submit(() => {
      log.push("submitted from a Deno timer");
      loop.clearTimeout(keepAlive);
    });
  }, 5);
  const startMs = performance.now();
  await loop.run();
  assert.deepEqual(log, ["submitted from a Deno timer"]);
  assert.ok(performance.now() - startMs < 5_000, "run() must return once the timer is cleared");
});

/**
 * Runs `loop` parked on a ref'd 60 s keep-alive timer and calls `act` from a Deno timer 5 ms in;
 * `act` must end the run (at once, through a wake). A guard stops the loop after 3 s (a wake that
 * never came). Returns the log: what the callbacks wrote, "not woken" from the guard.
 */
async function wakeParked(
  loop: Loop,
  act: (keepAlive: ReturnType<Loop["setTimeout"]>, log: string[]) => void,
): Promise<string[]> {
  const log: string[] = [];
  const keepAlive = loop.setTimeout(() => log.push("keep-alive timer"), 60_000);
  const outside = setTimeout(() => act(keepAlive, log), 5);
  const guard = setTimeout(() => {
    log.push("not woken");
    loop.clearTimeout(keepAlive);
    loop.stop();
  }, 3_000);
  try {
    await loop.run();
  } finally {
    clearTimeout(outside);
    clearTimeout(guard);
  }
  return log;
}

Deno.test("a parked loop wakes for an earlier timer, a microtask, an unref or a refresh from outside", async (t) => {
  await t.step("an earlier timer set from outside", async () => {
    await using loop = new Loop();
    const log = await wakeParked(loop, (keepAlive, log) => {
      loop.setTimeout(() => {
        log.push("earlier timer");
        loop.clearTimeout(keepAlive);
      }, 1);
    });
    assert.deepEqual(log, ["earlier timer"]);
  });
  await t.step("a microtask queued from outside", async () => {
    await using loop = new Loop();
    const log = await wakeParked(loop, (keepAlive, log) => {
      loop.queueMicrotask(() => {
        log.push("microtask");
        loop.clearTimeout(keepAlive);
      });
    });
    assert.deepEqual(log, ["microtask"]);
  });
  await t.step("the only ref'd timer unref'd from outside", async () => {
    await using loop = new Loop();
    const log = await wakeParked(loop, (keepAlive) => keepAlive.unref());
    assert.deepEqual(log, []);
  });
  await t.step("a fired timer refreshed from outside, due before the parked deadline", async () => {
    await using loop = new Loop();
    let fired = 0;
    let keepAliveTimer: ReturnType<Loop["setTimeout"]> | undefined;
    const short = loop.setTimeout(() => {
      if (++fired === 2) loop.clearTimeout(keepAliveTimer!);
    }, 1);
    const log = await wakeParked(loop, (keepAlive) => {
      keepAliveTimer = keepAlive;
      short.refresh();
    });
    assert.deepEqual(log, []);
    assert.equal(fired, 2);
  });
  await t.step("close() from outside", async () => {
    const loop = new Loop();
    let closing: Promise<unknown> | undefined;
    const log = await wakeParked(loop, () => {
      closing = loop.close();
    });
    assert.deepEqual(log, []);
    const report = await closing! as { disposed: { timers: number } };
    assert.equal(report.disposed.timers, 1);
    assert.equal(loop.state, "closed");
  });
});

Deno.test("a parked loop wakes when its only ref'd watch is unref'd from outside", async () => {
  using fds = new FdScope();
  const [readFd] = fds.pipe();
  await using loop = new Loop();
  const watch = loop.watch(readFd, { readable: true }, () => {});
  setTimeout(() => watch.unref(), 5);
  let woken = true;
  const guard = setTimeout(() => {
    woken = false;
    watch.close(); // wakes it another way
  }, 3_000);
  await loop.run();
  clearTimeout(guard);
  watch.close();
  assert.ok(woken, "run() must return once the unref leaves nothing ref'd");
});

Deno.test("modify() switches interest; level-triggered readiness repeats each pass, once per watch", async () => {
  using fds = new FdScope();
  const [a, b] = fds.socketpair();
  await using loop = new Loop();
  const seen: string[] = [];
  let passes = 0;
  const watch = loop.watch(a, { readable: true }, (event) => {
    passes++;
    if (event.readable) {
      seen.push("readable");
      if (passes === 2) {
        drain(a);
        watch.modify({ writable: true });
      }
    } else if (event.writable) {
      seen.push("writable");
      watch.close();
    }
  });
  write(b, "x");
  await loop.run();
  assert.deepEqual(seen, ["readable", "readable", "writable"]);
});

Deno.test("a watch closed by another callback in the same pass gets no callback", async () => {
  using fds = new FdScope();
  const [r1, w1] = fds.pipe();
  const [r2, w2] = fds.pipe();
  await using loop = new Loop();
  const calls: number[] = [];
  const watches: ReturnType<Loop["watch"]>[] = [];
  const onEither = (fd: number) => () => {
    calls.push(fd);
    for (const watch of watches) watch.close();
  };
  watches.push(loop.watch(r1, { readable: true }, onEither(r1)));
  watches.push(loop.watch(r2, { readable: true }, onEither(r2)));
  write(w1, "1");
  write(w2, "2");
  await loop.run();
  assert.equal(calls.length, 1);
});

Deno.test("watch errors: already watched, bad fd, regular file; the loop stays usable", async (t) => {
  using fds = new FdScope();
  const [readFd] = fds.pipe();
  await using loop = new Loop();
  const watch = loop.watch(readFd, { readable: true }, () => {});
  await t.step("watching an fd twice throws AlreadyExists", () => {
    assert.throws(
      () => loop.watch(readFd, { writable: true }, () => {}),
      Deno.errors.AlreadyExists,
    );
  });
  await t.step("a closed fd number is EBADF with the syscall named", () => {
    assert.throws(
      () => loop.watch(1_000_000, { readable: true }, () => {}),
      (error: unknown) =>
        error instanceof PollerError && error.code === "EBADF" && error.syscall.length > 0,
    );
  });
  await t.step("a regular file is EPERM on epoll", () => {
    const fileFd = fds.track(openFile(new URL(import.meta.url).pathname));
    assert.throws(
      () => loop.watch(fileFd, { readable: true }, () => {}),
      (error: unknown) => error instanceof PollerError && error.code === "EPERM",
    );
  });
  await t.step("the loop still works", async () => {
    const log: string[] = [];
    watch.close();
    loop.submit(() => log.push("still fine"));
    await loop.run();
    assert.deepEqual(log, ["still fine"]);
  });
});

Deno.test("an error thrown by a watch callback goes to onError with kind fd", async () => {
  using fds = new FdScope();
  const [readFd, writeFd] = fds.pipe();
  const seen: ErrorContext[] = [];
  await using loop = new Loop({ onError: (_error, context) => seen.push(context) });
  const watch = loop.watch(readFd, { readable: true }, () => {
    watch.close();
    throw new Error("callback failed");
  }, { label: "sensor" });
  write(writeFd, "!");
  await loop.run();
  assert.deepEqual(seen, [{ kind: "fd", label: "sensor" }]);
});

Deno.test("ref'd watches keep run() alive, unref'd ones do not; aliveReasons names them", async () => {
  using fds = new FdScope();
  const [readFd] = fds.pipe();
  await using loop = new Loop();
  const watch = loop.watch(readFd, { readable: true }, () => {}, { label: "gpio line 17" });
  assert.deepEqual(loop.aliveReasons(), [{ kind: "watch", label: "gpio line 17" }]);
  watch.unref();
  assert.equal(watch.hasRef(), false);
  assert.deepEqual(loop.aliveReasons(), []);
  await loop.run(); // returns: nothing ref'd
  watch.ref();
  setTimeout(() => watch.close(), 5);
  await loop.run(); // returns once the watch is closed from outside
  assert.equal(watch.closed, true);
});

Deno.test("onClose runs in the close phase; loop.close() closes open watches and reports them", async () => {
  using fds = new FdScope();
  const [r1] = fds.pipe();
  const [r2] = fds.pipe();
  const loop = new Loop();
  const log: string[] = [];
  const first = loop.watch(r1, { readable: true }, () => {}, {
    onClose: () => log.push("closed r1"),
  });
  loop.watch(r2, { readable: true }, () => {}, {
    label: "r2",
    onClose: () => log.push("closed r2"),
  });
  loop.setImmediate(() => {
    log.push("immediate");
    first.close();
    log.push("after close() call");
  });
  loop.runOnce();
  assert.deepEqual(log, ["immediate", "after close() call", "closed r1"]);
  const report = await loop.close();
  assert.deepEqual(log, ["immediate", "after close() call", "closed r1", "closed r2"]);
  assert.equal(report.disposed.watches, 1);
  assert.deepEqual(report.items, [{ kind: "watch", label: "r2", disposition: "cancelled" }]);
});

Deno.test("1,000 watched fds: only the ready ones call back", async () => {
  using fds = new FdScope();
  await using loop = new Loop();
  const pipes: Array<[number, number]> = [];
  const fired = new Set<number>();
  for (let i = 0; i < 500; i++) pipes.push(fds.pipe());
  for (const [readFd] of pipes) {
    loop.watch(readFd, { readable: true }, () => {
      fired.add(readFd);
      drain(readFd);
    });
  }
  for (let i = 0; i < 500; i++) {
    const [, writeFd] = pipes[i];
    loop.watch(writeFd, { writable: true }, () => fired.add(writeFd)).unref();
  }
  const ready = [7, 99, 250, 499];
  for (const i of ready) write(pipes[i][1], "x");
  fired.clear();
  loop.runOnce();
  const readers = [...fired].filter((fd) => pipes.some(([r]) => r === fd));
  assert.deepEqual(
    readers.sort((x, y) => x - y),
    ready.map((i) => pipes[i][0]).sort((x, y) => x - y),
  );
  assert.equal(fired.size - readers.length, 500, "every write end is writable");
  await loop.close();
});

Deno.test("a FakePoller on a virtual clock: fd 7 readable at 30 ms, hangup at 50 ms", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  poller.script(30, 7, READABLE).script(50, 7, READABLE | HANGUP);
  await using loop = new Loop({ clock, poller });
  const seen: Array<[number, boolean, boolean]> = [];
  const watch = loop.watch(7, { readable: true }, (event) => {
    seen.push([loop.now(), event.readable, event.hangup]);
    if (event.hangup) watch.close();
    else poller.setReadiness(7, 0); // the test "reads" the data
  });
  loop.setTimeout(() => seen.push([loop.now(), false, false]), 40);
  await loop.run();
  assert.deepEqual(seen, [[30, true, false], [40, false, false], [50, true, true]]);
  await poller.close();
});

Deno.test("a virtual-clock loop reports fds already ready before it jumps ahead to a timer", async () => {
  // The clock jumped to the next timer deadline before any poll: an fd ready at t=0 (set by the
  // test, scripted at 0, or a real pipe with data) was reported at t=100, after the timer.
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  poller.script(0, 8, READABLE).script(30, 9, READABLE);
  await using loop = new Loop({ clock, poller });
  const log: string[] = [];
  for (const fd of [7, 8, 9]) {
    const watch = loop.watch(fd, { readable: true }, () => {
      log.push(`fd ${fd} at ${loop.now()}`);
      watch.close();
    });
  }
  poller.setReadiness(7, READABLE);
  loop.setTimeout(() => log.push(`timer at ${loop.now()}`), 100);
  await loop.run();
  assert.deepEqual(log, ["fd 7 at 0", "fd 8 at 0", "fd 9 at 30", "timer at 100"]);
  await poller.close();

  using fds = new FdScope();
  const [readFd, writeFd] = fds.pipe();
  write(writeFd, "x");
  await using realFdLoop = new Loop({ clock: new VirtualClock() });
  const seen: string[] = [];
  const watch = realFdLoop.watch(readFd, { readable: true }, () => {
    seen.push(`pipe at ${realFdLoop.now()}`);
    watch.close();
  });
  realFdLoop.setTimeout(() => seen.push(`timer at ${realFdLoop.now()}`), 3_600_000);
  await realFdLoop.run();
  assert.deepEqual(seen, ["pipe at 0", "timer at 3600000"]);
});

Deno.test("one poller cannot serve two open loops: the second is refused, and may reuse it once the first closes", async () => {
  // Shared, every wait of one loop reported the other's fds under its own tokens: loop a's watch of
  // fd 7 was called (in a tight loop) for fd 8's readiness, which was meant for loop b.
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  const first = new Loop({ clock, poller, label: "a" });
  assert.throws(
    () => new Loop({ clock, poller, label: "b" }),
    (error: unknown) =>
      error instanceof Deno.errors.Busy &&
      error.message ===
        'Cannot create a loop as its poller is in use by the loop "a" until that loop closes: current value is a "fake" poller',
  );
  const shared = () => poller;
  const viaFactory = new Loop({ clock, poller: shared, label: "c" });
  assert.throws(() => viaFactory.watch(8, { readable: true }, () => {}), Deno.errors.Busy);
  await viaFactory.close();
  const log: string[] = [];
  const firstWatch = first.watch(7, { readable: true }, () => log.push("a: fd 7"));
  first.setTimeout(() => firstWatch.close(), 10);
  await first.run();
  await first.close();
  poller.script(20, 8, READABLE);
  await using second = new Loop({ clock, poller, label: "b" });
  const secondWatch = second.watch(8, { readable: true }, () => {
    log.push(`b: fd 8 at ${second.now()}`);
    secondWatch.close();
  });
  await second.run();
  assert.deepEqual(log, ["b: fd 8 at 20"]);
  await poller.close();
});

Deno.test("a FakePoller on another clock than its loop is refused, not left to fire at the wrong time", async () => {
  // A virtual loop with a real-time FakePoller (the default clock) applied a script at 30 ms at
  // virtual 0 or 30 depending on how long the process had been up; the reverse spun the CPU.
  const clock = new VirtualClock();
  const refused = (loopClock: VirtualClock | undefined, poller: FakePoller, current: string) =>
    assert.throws(
      () => new Loop({ clock: loopClock, poller }),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          `Cannot create a loop as its fake poller must read the loop's clock (new FakePoller({ clock })): current value is ${current}`,
    );
  const realTime = new FakePoller();
  refused(clock, realTime, "a real-time poller clock on a virtual loop clock");
  const virtual = new FakePoller({ clock });
  refused(undefined, virtual, "a virtual poller clock on a real-time loop clock");
  refused(new VirtualClock(), virtual, "a virtual poller clock other than the loop's");
  // Through a factory, when the loop first needs its poller.
  const viaFactory = new Loop({ clock, poller: () => realTime });
  assert.throws(() => viaFactory.watch(3, { readable: true }, () => {}), TypeError);
  await viaFactory.close();
  // Real time on both sides, or the same virtual clock, is fine; so is a frozen poller (untracked).
  await new Loop({ poller: realTime }).close();
  const frozen = Object.freeze(new FakePoller({ clock }));
  await using loop = new Loop({ clock, poller: frozen });
  virtual.script(30, 7, READABLE);
  await using scripted = new Loop({ clock, poller: virtual });
  const seen: number[] = [];
  const watch = scripted.watch(7, { readable: true }, () => {
    seen.push(scripted.now());
    watch.close();
  });
  await scripted.run();
  assert.deepEqual(seen, [30]);
  assert.equal(loop.state, "idle");
  await Promise.all([realTime.close(), virtual.close(), frozen.close()]);
});

Deno.test("busyPollMs: fd events, timers and the end of run() behave the same while busy-polling", async () => {
  using fds = new FdScope();
  const [ping, pong] = fds.socketpair();
  await using loop = new Loop({ busyPollMs: 5 });
  assert.throws(() => new Loop({ busyPollMs: -1 }), RangeError);
  const log: string[] = [];
  let left = 200;
  const pongWatch = loop.watch(pong, { readable: true }, () => {
    drain(pong);
    write(pong, "o");
  });
  const pingWatch = loop.watch(ping, { readable: true }, () => {
    drain(ping);
    if (--left === 0) {
      log.push("200 round trips");
      pingWatch.close();
      pongWatch.close();
    } else write(ping, "i");
  });
  const startMs = performance.now();
  loop.setTimeout(() => log.push(`timer after ${(performance.now() - startMs).toFixed(0)} ms`), 2);
  write(ping, "i");
  await loop.run();
  assert.equal(log.length, 2);
  assert.ok(log.includes("200 round trips"));
  const timerEntry = log.find((entry) => entry.startsWith("timer"))!;
  assert.ok(Number(timerEntry.match(/(\d+) ms/)![1]) >= 2, timerEntry);
});

Deno.test("back-to-back short loop timers still let Deno's own timers run", async () => {
  await using loop = new Loop();
  let loopTicks = 0;
  let denoFired = false;
  const interval = loop.setInterval(() => {
    loopTicks++;
    if (denoFired) loop.clearInterval(interval);
  }, 0.5);
  setTimeout(() => (denoFired = true), 5);
  await loop.run();
  assert.equal(denoFired, true);
  assert.ok(loopTicks >= 2, `loop ticks: ${loopTicks}`);
});

Deno.test("watch(-0) watches fd 0: the kernel's answer, never the FFI's TypeError", async () => {
  await using loop = new Loop();
  let watch;
  try {
    watch = loop.watch(-0, { readable: true }, () => {});
  } catch (error) {
    // fd 0 may be /dev/null here (EPERM): a PollerError, and the loop stays usable.
    assert.ok(error instanceof PollerError, `expected a PollerError, got ${error}`);
  }
  if (watch !== undefined) {
    assert.ok(Object.is(watch.fd, 0));
    watch.close();
  }
  const log: string[] = [];
  loop.submit(() => log.push("still fine"));
  await loop.run();
  assert.deepEqual(log, ["still fine"]);
});

Deno.test("a FakePoller script added while the virtual-clock loop is parked still fires", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  const seen: number[] = [];
  const watch = loop.watch(7, { readable: true }, () => {
    seen.push(loop.now());
    watch.close();
  });
  setTimeout(() => poller.script(100, 7, READABLE), 5); // from outside, while run() is parked
  await loop.run();
  assert.deepEqual(seen, [100]);
  await poller.close();
});

Deno.test("an interest flag that is not a boolean is a TypeError, never read as truthy", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  for (const interest of [{ readable: "false" }, { writable: 1 }, { priority: null }]) {
    assert.throws(
      () => loop.watch(3, interest as never, () => {}),
      (error: unknown) =>
        error instanceof TypeError &&
        /^Cannot watch fd 3 as interest\.\w+ must be a boolean: current value is /.test(
          error.message,
        ),
    );
  }
  assert.equal(poller.interestOf(3), 0, "nothing was registered");
  const watch = loop.watch(3, { readable: true, writable: undefined }, () => {});
  assert.throws(
    () => watch.modify({ writable: "yes" } as never),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        'Cannot modify the watch of fd 3 as interest.writable must be a boolean: current value is "yes"',
  );
  assert.throws(
    () => watch.modify({ readable: false }),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message.startsWith("Cannot modify the watch of fd 3 as the interest is empty"),
  );
  assert.equal(poller.interestOf(3), READABLE, "a refused modify changes nothing");
  watch.close();
  await poller.close();
});

Deno.test("a watch closed after its fd, the file kept open by a dup: the idle loop sleeps, no busy loop", async () => {
  // epoll registers the open file: with a dup keeping it open, closing the fd first left it in the
  // kernel's set after watch.close(), and every idle wait returned at once (1,000+ in 100 ms).
  const libc = Deno.dlopen("libc.so.6", { dup: { parameters: ["i32"], result: "i32" } });
  try {
    using fds = new FdScope();
    const [readFd, writeFd] = fds.pipe();
    fds.track(libc.symbols.dup(readFd));
    let waits = 0;
    await using loop = new Loop({
      poller: () => {
        const poller = createPoller();
        const waitAsync = poller.waitAsync.bind(poller);
        const wait = poller.wait.bind(poller);
        poller.waitAsync = (batch, timeoutMs) => {
          waits++;
          return waitAsync(batch, timeoutMs);
        };
        poller.wait = (batch, timeoutMs) => {
          if (timeoutMs !== 0) waits++;
          return wait(batch, timeoutMs);
        };
        return poller;
      },
    });
    const watch = loop.watch(readFd, { readable: true }, () => {});
    write(writeFd, "x");
    loop.submit(() => {
      fds.close(readFd); // the wrong order, which the README warns about
      watch.close();
      loop.setTimeout(() => {}, 50);
    });
    await loop.run();
    // A handful of waits (spurious wakeups are allowed), not one per spin.
    assert.ok(waits <= 10, `${waits} waits in 50 ms`);
  } finally {
    libc.close();
  }
});

Deno.test("a non-number fd is a TypeError that shows the value, not just its type", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  const cases: [unknown, string][] = [["3", '"3"'], [3n, "3n"], [null, "null"], [
    {},
    "[object Object]",
  ]];
  for (const [fd, shown] of cases) {
    assert.throws(
      () => loop.watch(fd as never, { readable: true }, () => {}),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message === `Cannot watch an fd as it must be a number: current value is ${shown}`,
    );
  }
  await poller.close();
});

Deno.test("an unknown interest key (a typo) is a TypeError, in watch() and modify()", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  const isUnknownKey = (error: unknown) =>
    error instanceof TypeError &&
    /as the interest's keys must be readable, writable or priority: current value is "writeable"$/
      .test(error.message);
  assert.throws(
    () => loop.watch(3, { readable: true, writeable: true } as never, () => {}),
    isUnknownKey,
  );
  assert.equal(poller.interestOf(3), 0, "nothing was registered");
  const watch = loop.watch(3, { readable: true }, () => {});
  assert.throws(() => watch.modify({ writeable: true } as never), isUnknownKey);
  assert.equal(poller.interestOf(3), READABLE, "a refused modify changes nothing");
  watch.close();
  await poller.close();
});

Deno.test("a label that is not a string is a TypeError, for a loop and for a watch", async () => {
  assert.throws(
    () => new Loop({ label: 42 as never }),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message === "Cannot create a loop as the label must be a string: current value is 42",
  );
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  assert.throws(
    () => loop.watch(3, { readable: true }, () => {}, { label: {} as never }),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        "Cannot watch fd 3 as the label must be a string: current value is [object Object]",
  );
  assert.equal(poller.interestOf(3), 0, "nothing was registered");
  await poller.close();
});

/**
 * A FakePoller that reports readiness the way kqueue does: one event per filter, so an fd both
 * readable and writable comes back as two entries with the same token in one batch.
 */
class SplitFilterPoller extends FakePoller {
  override wait(batch: EventBatch, timeoutMs: number): number {
    return split(batch, super.wait(batch, timeoutMs));
  }
  override async waitAsync(batch: EventBatch, timeoutMs: number): Promise<number> {
    return split(batch, await super.waitAsync(batch, timeoutMs));
  }
}

function split(batch: EventBatch, count: number): number {
  let n = count;
  for (let i = 0; i < count && n < batch.capacity; i++) {
    const bits = batch.readiness[i];
    if ((bits & READABLE) !== 0 && (bits & WRITABLE) !== 0) {
      batch.readiness[i] = bits & ~WRITABLE;
      batch.tokens[n] = batch.tokens[i];
      batch.readiness[n] = WRITABLE;
      n++;
    }
  }
  batch.length = n;
  return n;
}

Deno.test("one callback per watch per pass, even when the poller reports a token twice (kqueue filters)", async () => {
  const clock = new VirtualClock();
  const poller = new SplitFilterPoller({ clock });
  await using loop = new Loop({ clock, poller });
  const calls: Array<[boolean, boolean]> = [];
  const watch = loop.watch(5, { readable: true, writable: true }, (event) => {
    calls.push([event.readable, event.writable]);
    poller.setReadiness(5, 0); // the callback handles both conditions: nothing is left
  });
  poller.setReadiness(5, READABLE | WRITABLE);
  loop.setTimeout(() => watch.close(), 10);
  await loop.run();
  // The second entry of the same batch is not a second callback.
  assert.deepEqual(calls, [[true, false]]);
  await poller.close();
});

Deno.test("an event of a watch closed in this pass never reaches the watch that took over its slot", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  const log: string[] = [];
  // fd 2 is reported first (readiness set first), then fd 1 in the same batch.
  poller.setReadiness(2, READABLE);
  poller.setReadiness(1, READABLE);
  const first = loop.watch(1, { readable: true }, () => log.push("fd 1"));
  const second = loop.watch(2, { readable: true }, () => {
    log.push("fd 2");
    second.close();
    first.close();
    // Reuses the slot fd 1's watch had; its pending event in this batch is not fd 3's.
    const third = loop.watch(3, { readable: true }, () => log.push("fd 3"));
    loop.setTimeout(() => third.close(), 0);
  });
  await loop.run();
  assert.deepEqual(log, ["fd 2"]);
  await poller.close();
});

Deno.test("an interest narrowed by an earlier callback of the same pass is honoured at once", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  const events: Array<Omit<WatchEvent, "bits">> = [];
  poller.setReadiness(1, READABLE);
  poller.setReadiness(2, READABLE | WRITABLE);
  const narrowed = loop.watch(2, { readable: true, writable: true }, (event) => {
    events.push(copy(event));
    narrowed.close();
  });
  const first = loop.watch(1, { readable: true }, () => {
    narrowed.modify({ readable: true });
    first.close();
  });
  await loop.run();
  assert.deepEqual(events, [{
    readable: true,
    writable: false,
    priority: false,
    hangup: false,
    error: false,
  }]);
  await poller.close();
});

Deno.test("stop() in a watch callback ends the pass: the other ready watches wait for the next run()", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  const log: string[] = [];
  poller.setReadiness(1, READABLE);
  poller.setReadiness(2, READABLE);
  const first = loop.watch(1, { readable: true }, () => {
    log.push("fd 1");
    first.close();
    loop.stop();
  });
  const second = loop.watch(2, { readable: true }, () => {
    log.push("fd 2");
    second.close();
  });
  await loop.run();
  assert.deepEqual(log, ["fd 1"]);
  await loop.run();
  assert.deepEqual(log, ["fd 1", "fd 2"]);
  await poller.close();
});

Deno.test("unref() or ref() of a closed watch changes nothing: the loop is not kept alive", async () => {
  const clock = new VirtualClock();
  const poller = new FakePoller({ clock });
  await using loop = new Loop({ clock, poller });
  const watch = loop.watch(4, { readable: true }, () => {});
  watch.close();
  watch.unref();
  assert.equal(loop.runOnce(), false, "nothing is left to keep the loop alive");
  watch.ref();
  assert.equal(loop.runOnce(), false);
  assert.deepEqual(loop.aliveReasons(), []);
  await poller.close();
});

Deno.test("unref() of the last ref'd watch from outside ends a run() parked in the poller", async () => {
  using fds = new FdScope();
  const [readFd] = fds.pipe();
  await using loop = new Loop();
  const watch = loop.watch(readFd, { readable: true }, () => {});
  let fired = false;
  // An unref'd timer bounds the idle wait, so a lost wake-up shows as this timer firing.
  loop.setTimeout(() => (fired = true), 1000).unref();
  setTimeout(() => watch.unref(), 5);
  await loop.run();
  assert.equal(fired, false, "run() only returned when the 1 s timer woke the parked wait");
  watch.close();
});
