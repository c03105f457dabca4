// A 1-byte ping-pong over a socketpair with both ends watched by the loop, against the same
// ping-pong over Deno's own unix sockets (Deno.listen/Deno.connect), in the same run.
// Target (issue 5): at least 3x faster than Deno. A third entry runs the same six syscalls a round
// trip takes (two writes, two epoll_waits, two reads) in a bare loop, no event loop at all: the
// floor any readiness loop pays on this machine.
import { Loop } from "../mod.ts";

const ROUND_TRIPS = 10_000;

// Bench-only libc access (the library's own FFI lives in poller/ backends).
const libc = Deno.dlopen(Deno.build.os === "darwin" ? "libSystem.B.dylib" : "libc.so.6", {
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  read: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ...(Deno.build.os === "linux"
    ? {
      epoll_create1: { parameters: ["i32"], result: "i32" },
      epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
      epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
    } as const
    : {}),
});
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const byte = new Uint8Array(1);

function socketpair(): [number, number] {
  const fds = new Int32Array(2);
  const flags = Deno.build.os === "linux" ? SOCK_STREAM | SOCK_NONBLOCK : SOCK_STREAM;
  if (libc.symbols.socketpair(AF_UNIX, flags, 0, fds) !== 0) throw new Error("socketpair failed");
  return [fds[0], fds[1]];
}

const loop = new Loop();

Deno.bench({
  name: `Deno unix sockets: ${ROUND_TRIPS} ping-pongs`,
  group: "ping-pong",
  baseline: true,
  async fn(b) {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/pingpong.sock`;
    const listener = Deno.listen({ transport: "unix", path });
    const client = await Deno.connect({ transport: "unix", path });
    const server = await listener.accept();
    const serverBuffer = new Uint8Array(1);
    const clientBuffer = new Uint8Array(1);
    const echo = (async () => {
      while ((await server.read(serverBuffer)) !== null) await server.write(serverBuffer);
    })();
    b.start();
    for (let i = 0; i < ROUND_TRIPS; i++) {
      await client.write(clientBuffer);
      if (await client.read(clientBuffer) !== 1) throw new Error("pong lost");
    }
    b.end();
    client.close();
    await echo;
    server.close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.bench({
  name: `loop.watch socketpair: ${ROUND_TRIPS} ping-pongs`,
  group: "ping-pong",
  async fn(b) {
    const [ping, pong] = socketpair();
    let left = ROUND_TRIPS;
    // A callback without a byte to read (a spurious or misrouted event) must not count as a round
    // trip, nor answer with a byte that was never received.
    const pongWatch = loop.watch(pong, { readable: true }, () => {
      if (libc.symbols.read(pong, byte, 1) !== 1) throw new Error("pong woken without a ping");
      libc.symbols.write(pong, byte, 1);
    });
    const pingWatch = loop.watch(ping, { readable: true }, () => {
      if (libc.symbols.read(ping, byte, 1) !== 1) throw new Error("ping woken without a pong");
      if (--left === 0) {
        pingWatch.close();
        pongWatch.close();
      } else libc.symbols.write(ping, byte, 1);
    });
    b.start();
    libc.symbols.write(ping, byte, 1);
    await loop.run();
    b.end();
    if (left !== 0) throw new Error(`run() returned with ${left} round trips left`);
    libc.symbols.close(ping);
    libc.symbols.close(pong);
  },
});

if (Deno.build.os === "linux") {
  const { epoll_create1, epoll_ctl, epoll_wait } = libc.symbols as unknown as Record<
    "epoll_create1" | "epoll_ctl" | "epoll_wait",
    // deno-lint-ignore no-explicit-any
    (...args: any[]) => number
  >;
  /**
   * The floor's round trips, in a function of its own: a long loop in the bench function was
   * compiled on the stack (OSR) before the code after it had run, and that code then bailed out
   * of the compiled function on every later call (see timers_bench.ts).
   */
  const bareRoundTrips = (ping: number, pong: number, epfd: number, events: Uint8Array) => {
    for (let i = 0; i < ROUND_TRIPS; i++) {
      libc.symbols.write(ping, byte, 1);
      if (epoll_wait(epfd, events, 8, 0) !== 1) throw new Error("pong not readable");
      if (libc.symbols.read(pong, byte, 1) !== 1) throw new Error("no ping");
      libc.symbols.write(pong, byte, 1);
      if (epoll_wait(epfd, events, 8, 0) !== 1) throw new Error("ping not readable");
      if (libc.symbols.read(ping, byte, 1) !== 1) throw new Error("no pong");
    }
  };
  Deno.bench({
    name: `floor: the same syscalls, no loop (epoll_wait, read, write): ${ROUND_TRIPS} ping-pongs`,
    group: "ping-pong",
    fn(b) {
      const [ping, pong] = socketpair();
      const epfd = epoll_create1(0);
      const events = new Uint8Array(16 * 8); // room for 8 events in either epoll_event layout
      const view = new DataView(events.buffer);
      for (const fd of [ping, pong]) {
        view.setUint32(0, 1, true); // EPOLLIN
        view.setUint32(4, fd, true);
        if (epoll_ctl(epfd, 1, fd, events) !== 0) throw new Error("epoll_ctl failed");
      }
      b.start();
      bareRoundTrips(ping, pong, epfd, events);
      b.end();
      libc.symbols.close(epfd);
      libc.symbols.close(ping);
      libc.symbols.close(pong);
    },
  });
}

globalThis.addEventListener("unload", () => {
  void loop.close();
  libc.close();
});
