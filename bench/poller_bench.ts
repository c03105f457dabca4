// Backend-level poller benchmarks (Linux). Run: deno bench --allow-all bench/poller_bench.ts
//
// (a) "poll pass": one wait(batch, 0) with 10 watched fds, all ready (baseline), against 10,000
//     watched fds of which 10 are ready. epoll should stay close to its baseline (O(ready));
//     poll(2) is shown for contrast (O(watched)).
// (b) "wake latency": a write to a FIFO from ANOTHER process wakes us. Each iteration is a full
//     round trip (we ask a child Deno over its stdin; it writes to a FIFO; we wake), against the
//     same round trip where we wait with Deno's own async FsFile.read (baseline). Woken are a
//     parked backend waitAsync (epoll, poll(2)) and, what issue 5 targets, a loop.watch callback
//     on an idle loop (run() parked in its idle wait when the child writes; the callback stops
//     it, so each iteration also pays a run() start). The child stamps each write with
//     CLOCK_MONOTONIC; the one-way latency from that write to our promise resolving (for the
//     loop: to its callback) is printed at the end (p50/p90/p99 over the measured iterations).
//
// Fd budget: 5,000 pipes with both ends watched = 10,000 watched fds (write ends are never
// readable), plus 10 small pipes. The soft RLIMIT_NOFILE is raised towards the hard limit when
// needed.
import { Loop } from "../loop/mod.ts";
import { createPoller, EventBatch, type Poller, READABLE } from "../poller/mod.ts";
import * as fd from "../tests/_fd.ts";

const LARGE_PIPES = 5_000; // x2 ends = 10,000 watched fds
const SMALL_PIPES = 10;
const READY = 10;
const linux = Deno.build.os === "linux";

const EXTRA = {
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  // The FIFOs live in a private temp dir made and removed through libc, so the bench needs no
  // --allow-write (deno task bench does not grant it).
  mkdtemp: { parameters: ["buffer"], result: "pointer" },
  unlink: { parameters: ["buffer"], result: "i32" },
  rmdir: { parameters: ["buffer"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
} as const;
const RLIMIT_NOFILE = 7;
const CLOCK_MONOTONIC = 1;

const cleanups: (() => void)[] = [];
addEventListener("unload", () => {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {
      // best effort at exit
    }
  }
});

function cString(text: string): Uint8Array {
  return new TextEncoder().encode(text + "\0");
}

function setUpPollPass() {
  const lib = Deno.dlopen("libc.so.6", EXTRA);
  cleanups.push(() => lib.close());
  const limit = new BigUint64Array(2);
  lib.symbols.getrlimit(RLIMIT_NOFILE, new Uint8Array(limit.buffer));
  const needed = BigInt(2 * (LARGE_PIPES + SMALL_PIPES) + 256);
  if (limit[0] < needed) {
    limit[0] = limit[1] < needed ? limit[1] : needed;
    lib.symbols.setrlimit(RLIMIT_NOFILE, new Uint8Array(limit.buffer));
    console.error(`raised RLIMIT_NOFILE soft limit to ${limit[0]}`);
  }

  const fds: number[] = [];
  cleanups.push(() => fds.forEach((n) => fd.close(n)));
  const small: number[] = [];
  for (let i = 0; i < SMALL_PIPES; i++) {
    const [r, w] = fd.pipe();
    fds.push(r, w);
    small.push(r);
    fd.write(w, "x"); // every small read end is ready
  }
  const large: number[] = [];
  for (let i = 0; i < LARGE_PIPES; i++) {
    const [r, w] = fd.pipe();
    fds.push(r, w);
    large.push(r, w);
    if (i < READY) fd.write(w, "x"); // 10 of the 10,000 are ready
  }

  const make = (backend: "epoll" | "poll", watched: number[]): Poller => {
    const poller = createPoller({ backend });
    cleanups.push(() => void poller.close());
    watched.forEach((n, i) => poller.register(n, i, READABLE));
    return poller;
  };
  return {
    epollSmall: make("epoll", small),
    epollLarge: make("epoll", large),
    pollSmall: make("poll", small),
    pollLarge: make("poll", large),
    monotonicMs(): number {
      const ts = new BigInt64Array(2);
      lib.symbols.clock_gettime(CLOCK_MONOTONIC, new Uint8Array(ts.buffer));
      return Number(ts[0]) * 1e3 + Number(ts[1]) / 1e6;
    },
    mkfifo(path: string): void {
      const rc = lib.symbols.mkfifo(cString(path), 0o600);
      if (rc !== 0) throw new Error(`mkfifo(${path}) failed: errno ${fd.errno()}`);
      cleanups.push(() => void lib.symbols.unlink(cString(path)));
    },
    makeTempDir(): string {
      const template = cString("/tmp/poller_bench_XXXXXX");
      if (lib.symbols.mkdtemp(template) === null) {
        throw new Error(`mkdtemp failed: errno ${fd.errno()}`);
      }
      const path = new TextDecoder().decode(template.subarray(0, template.length - 1));
      cleanups.push(() => void lib.symbols.rmdir(cString(path)));
      return path;
    },
  };
}

if (linux) {
  const setup = setUpPollPass();
  const batch = new EventBatch(64);

  for (
    const [name, small, large] of [
      ["epoll", setup.epollSmall, setup.epollLarge],
      ["poll(2)", setup.pollSmall, setup.pollLarge],
    ] as const
  ) {
    // Sanity: both report exactly 10 ready fds.
    if (small.wait(batch, 0) !== READY || large.wait(batch, 0) !== READY) {
      throw new Error(`${name}: expected ${READY} ready fds`);
    }
    Deno.bench({
      name: `${name}: 10 watched, 10 ready`,
      group: `poll pass (${name})`,
      baseline: true,
      fn() {
        small.wait(batch, 0);
      },
    });
    Deno.bench({
      name: `${name}: 10,000 watched, 10 ready`,
      group: `poll pass (${name})`,
      fn() {
        large.wait(batch, 0);
      },
    });
  }

  // ---- wake latency from another process ----
  const dir = setup.makeTempDir();
  const fifoA = `${dir}/a.fifo`; // watched by our pollers (raw, non-blocking fd)
  const fifoB = `${dir}/b.fifo`; // read with Deno's own FsFile (baseline)
  const fifoC = `${dir}/c.fifo`; // watched by a loop (raw, non-blocking fd)
  setup.mkfifo(fifoA);
  setup.mkfifo(fifoB);
  setup.mkfifo(fifoC);
  const rawA = fd.openFile(fifoA, { nonblocking: true });
  cleanups.push(() => fd.close(rawA));
  const rawC = fd.openFile(fifoC, { nonblocking: true });
  cleanups.push(() => fd.close(rawC));

  // The child: on each command byte from stdin ('a', 'b' or 'c'), stamp CLOCK_MONOTONIC and write
  // the 8-byte stamp to that FIFO. `deno eval` runs with all permissions.
  const CHILD = `
    const lib = Deno.dlopen("libc.so.6", { clock_gettime: { parameters: ["i32", "buffer"], result: "i32" } });
    const ts = new BigInt64Array(2);
    const a = Deno.openSync(${JSON.stringify(fifoA)}, { write: true });
    const b = Deno.openSync(${JSON.stringify(fifoB)}, { write: true });
    const c = Deno.openSync(${JSON.stringify(fifoC)}, { write: true });
    const out = new Float64Array(1);
    const bytes = new Uint8Array(out.buffer);
    const command = new Uint8Array(64);
    for (;;) {
      const n = await Deno.stdin.read(command);
      if (n === null) break;
      for (let i = 0; i < n; i++) {
        lib.symbols.clock_gettime(1, new Uint8Array(ts.buffer));
        out[0] = Number(ts[0]) * 1e3 + Number(ts[1]) / 1e6;
        (command[i] === 97 ? a : command[i] === 98 ? b : c).writeSync(bytes);
      }
    }
    a.close(); b.close(); c.close(); lib.close();
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", CHILD],
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  child.unref();
  const fileB = await Deno.open(fifoB, { read: true }); // returns once the child opened it
  const writer = child.stdin.getWriter();
  cleanups.push(() => {
    fileB.close();
    // The child exits on stdin EOF; do not leave it behind if it does not.
    try {
      child.kill();
    } catch {
      // already gone
    }
  });

  const CMD_A = new Uint8Array([97]);
  const CMD_B = new Uint8Array([98]);
  const CMD_C = new Uint8Array([99]);
  const stamp = new Float64Array(1);
  const stampBytes = new Uint8Array(stamp.buffer);
  const oneWay = new Map<string, number[]>();
  const WARMUP = 100;
  // Deno.bench runs an entry until a 10 ms budget is spent AND then `warmup` more times, and
  // measures it the same way with `n`: the last MEASURED samples of each entry are measured ones.
  const MEASURED = 2000;

  const viaPoller = async (label: string, poller: Poller): Promise<void> => {
    const parked = poller.waitAsync(batch, 5000); // parked before the child is even asked
    await writer.write(CMD_A);
    let count = await parked;
    while (count === 0) count = await poller.waitAsync(batch, 5000); // spurious: wait again
    const nowMs = setup.monotonicMs();
    const got = fd.libc().read(rawA, stampBytes, 8n);
    if (Number(got) !== 8) throw new Error(`short read from the FIFO: ${got}`);
    record(label, nowMs - stamp[0]);
  };

  const record = (label: string, ms: number): void => {
    let list = oneWay.get(label);
    if (list === undefined) oneWay.set(label, list = []);
    list.push(ms);
  };

  const epoll = createPoller({ backend: "epoll" });
  const poll = createPoller({ backend: "poll" });
  cleanups.push(() => void epoll.close());
  cleanups.push(() => void poll.close());
  epoll.register(rawA, 1, READABLE);
  poll.register(rawA, 1, READABLE);
  cleanups.push(() => {
    epoll.unregister(rawA);
    poll.unregister(rawA);
  });

  Deno.bench({
    name: "Deno FsFile.read on a FIFO (round trip via child)",
    group: "wake latency (another process writes)",
    baseline: true,
    n: MEASURED,
    warmup: WARMUP,
    async fn() {
      const reading = fileB.read(stampBytes);
      await writer.write(CMD_B);
      const n = await reading;
      const nowMs = setup.monotonicMs();
      if (n !== 8) throw new Error(`short read from the FIFO: ${n}`);
      record("Deno FsFile.read", nowMs - stamp[0]);
    },
  });
  Deno.bench({
    name: "epoll waitAsync on a FIFO (round trip via child)",
    group: "wake latency (another process writes)",
    n: MEASURED,
    warmup: WARMUP,
    async fn() {
      await viaPoller("epoll waitAsync", epoll);
    },
  });
  Deno.bench({
    name: "poll(2) waitAsync on a FIFO (round trip via child)",
    group: "wake latency (another process writes)",
    n: MEASURED,
    warmup: WARMUP,
    async fn() {
      await viaPoller("poll(2) waitAsync", poll);
    },
  });

  // The loop variant: one watch, on an idle loop that its callback stops.
  const loop = new Loop({ label: "wake latency" });
  let woken = 0;
  const watch = loop.watch(rawC, { readable: true }, () => {
    const nowMs = setup.monotonicMs();
    const got = fd.libc().read(rawC, stampBytes, 8n);
    if (Number(got) !== 8) throw new Error(`short read from the FIFO: ${got}`);
    record("loop.watch callback", nowMs - stamp[0]);
    woken++;
    loop.stop();
  });
  cleanups.push(() => {
    watch.close();
    void loop.close();
  });
  Deno.bench({
    name: "loop.watch callback on a FIFO, loop idle (round trip via child)",
    group: "wake latency (another process writes)",
    n: MEASURED,
    warmup: WARMUP,
    async fn() {
      const before = woken;
      const running = loop.run(); // parks in the idle wait: nothing is ready yet
      await writer.write(CMD_C);
      await running;
      if (woken !== before + 1) throw new Error(`run() ended after ${woken - before} wakes`);
    },
  });

  cleanups.push(() => {
    const rows = [...oneWay].map(([label, all]) => {
      const list = all.slice(-MEASURED); // the earlier samples are the entry's warm-up
      const sorted = list.sort((x, y) => x - y);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
      const us = (ms: number) => `${(ms * 1000).toFixed(1)} us`;
      return `  ${label.padEnd(20)} n=${sorted.length}  p50 ${us(at(0.5))}  p90 ${
        us(at(0.9))
      }  p99 ${us(at(0.99))}`;
    });
    if (rows.length > 0) {
      console.log(
        `\none-way wake latency (child's write -> our promise resolves; each entry's last ${MEASURED}, warm-up left out):`,
      );
      console.log(rows.join("\n"));
    }
  });
  // Registered last, so it runs first at unload: EOF tells the child to exit.
  cleanups.push(() => void writer.close().catch(() => {}));
}
