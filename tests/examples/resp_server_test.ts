// The example RESP2 servers over real loopback sockets: the loop server (FFI sockets +
// loop.watch) in-process, the same scenarios against the Deno.listen server, and `deno task
// serve` as a subprocess for signals. Clients are plain Deno.connect sockets.
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Loop } from "../../loop/mod.ts";
import { createPoller, PollerError } from "../../poller/mod.ts";
import { openNetLib, SocketError } from "../../examples/net/sockets.ts";
import {
  LoopServer,
  type LoopServerOptions,
  type LoopServerStats,
} from "../../examples/resp/server_loop.ts";
import { NativeServer } from "../../examples/resp/server_native.ts";
import { runLoad } from "../../examples/resp/load.ts";
import { encodeCommand, ReplyReader, type RespValue } from "../../examples/resp/reply.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const TIMEOUT_MS = 15_000;

interface ClientOptions {
  /** Return bulk strings as bytes. */
  bulkAsBytes?: boolean;
  /** Read buffer size (small means many partial reads). */
  readBytes?: number;
  /** Pause 1 ms every 16 reads, like a client slower than the server. */
  slow?: boolean;
}

class TestClient {
  readonly conn: Deno.TcpConn;
  readonly reader: ReplyReader;
  #buffer: Uint8Array;
  #slow: boolean;
  #reads = 0;
  #closed = false;

  private constructor(conn: Deno.TcpConn, options: ClientOptions) {
    this.conn = conn;
    this.reader = new ReplyReader({ bulkAsBytes: options.bulkAsBytes ?? false });
    this.#buffer = new Uint8Array(options.readBytes ?? 64 * 1024);
    this.#slow = options.slow ?? false;
  }

  static async connect(port: number, options: ClientOptions = {}): Promise<TestClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new TestClient(conn, options);
  }

  /** Reads one chunk into the reply reader; false at EOF. */
  async readOnce(): Promise<boolean> {
    const got = await this.#read();
    if (got === null) return false;
    this.reader.feed(this.#buffer.subarray(0, got));
    return true;
  }

  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  /** One read with a deadline; null at EOF. A timeout closes the client and throws. */
  async #read(): Promise<number | null> {
    if (this.#slow && ++this.#reads % 16 === 0) await new Promise((r) => setTimeout(r, 1));
    const read = this.conn.read(this.#buffer);
    read.catch(() => {}); // settles (rejects) later if we close on timeout
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), TIMEOUT_MS)
    );
    try {
      const n = await Promise.race([read, timeout]);
      if (n === "timeout") {
        this.close();
        throw new Error(`no data from the server within ${TIMEOUT_MS} ms`);
      }
      return n;
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return null;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads until `n` replies have arrived. */
  async replies(n: number): Promise<RespValue[]> {
    const out = this.reader.readAll();
    while (out.length < n) {
      const got = await this.#read();
      if (got === null) throw new Error(`EOF after ${out.length} of ${n} replies`);
      this.reader.feed(this.#buffer.subarray(0, got));
      out.push(...this.reader.readAll());
    }
    return out;
  }

  /** Reads until the server closes the connection; returns the replies that came first. */
  async untilClosed(): Promise<RespValue[]> {
    const out = this.reader.readAll();
    for (;;) {
      const got = await this.#read();
      if (got === null) return out;
      this.reader.feed(this.#buffer.subarray(0, got));
      out.push(...this.reader.readAll());
    }
  }

  async command(...args: (string | Uint8Array)[]): Promise<RespValue> {
    await this.send(encodeCommand(args));
    return (await this.replies(1))[0];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }
}

interface Harness {
  kind: "loop" | "native";
  port: number;
  /** Loop server counters (null for the native server). */
  stats(): LoopServerStats | null;
  stop(options?: { flushTimeoutMs?: number }): Promise<void>;
}

/**
 * Runs `body` against a fresh server of `kind`, then stops it and checks that it released every
 * fd it opened (the loop server's fds are FFI fds that Deno's sanitizer cannot see).
 */
async function withServer(
  kind: "loop" | "native",
  options: LoopServerOptions,
  body: (h: Harness) => Promise<void>,
): Promise<void> {
  if (kind === "native") {
    const server = new NativeServer({
      port: 0,
      outputSoftLimitBytes: options.outputSoftLimitBytes,
      outputHardLimitBytes: options.outputHardLimitBytes,
    });
    try {
      await body({ kind, port: server.port, stats: () => null, stop: (o) => server.stop(o) });
    } finally {
      await server.stop({ flushTimeoutMs: 1000 });
    }
    return;
  }
  using net = openNetLib();
  const fdsBefore = net.openFds();
  const loop = new Loop({ label: "resp-test" });
  const server = new LoopServer(loop, { port: 0, ...options });
  const running = loop.run();
  try {
    await body({
      kind,
      port: server.port,
      stats: () => server.stats(),
      stop: (o) => server.stop(o),
    });
  } finally {
    await server.stop({ flushTimeoutMs: 1000 });
    await running;
    await loop.close();
  }
  const stats = server.stats();
  assertEquals(stats.connectionsOpen, 0);
  assertEquals(stats.fdsClosed, stats.fdsOpened);
  const leaked = net.openFds().filter((fd) => !fdsBefore.includes(fd));
  assertEquals(leaked, [], "every fd opened by the server and the loop is closed");
}

const BOTH = ["loop", "native"] as const;

for (const kind of BOTH) {
  Deno.test(`${kind} server: pipelined commands in one write, replies in order`, async () => {
    await withServer(kind, {}, async ({ port }) => {
      const client = await TestClient.connect(port);
      let request = "";
      const expected: RespValue[] = [];
      for (let i = 0; i < 200; i++) {
        request += dec.decode(encodeCommand(["SET", `k${i}`, `v${i}`]));
        request += dec.decode(encodeCommand(["GET", `k${i}`]));
        request += "INCR counter\r\n"; // inline, mixed in
        expected.push("OK", `v${i}`, i + 1);
      }
      await client.send(request);
      assertEquals(await client.replies(600), expected);
      assertEquals(await client.command("DBSIZE"), 201);
      client.close();
    });
  });

  Deno.test(`${kind} server: a client sending one byte at a time`, async () => {
    await withServer(kind, {}, async ({ port }) => {
      const client = await TestClient.connect(port);
      client.conn.setNoDelay(true);
      const request = enc.encode(
        '*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$5\r\nhello\r\nGET "k\\r\\n"\r\nPING\r\n',
      );
      for (const b of request) await client.send(new Uint8Array([b]));
      assertEquals(await client.replies(3), ["OK", "hello", "PONG"]);
      client.close();
    });
  });

  Deno.test(`${kind} server: a 4 MiB reply to a client that reads slowly`, async () => {
    await withServer(kind, {}, async ({ port, stats }) => {
      const value = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 31) & 0xff);
      const writer = await TestClient.connect(port);
      assertEquals(await writer.command("SET", "big", value), "OK");
      // Small reads, with a pause now and then, keep the server's socket buffer full.
      const reader = await TestClient.connect(port, {
        bulkAsBytes: true,
        readBytes: 8 * 1024,
        slow: true,
      });
      await reader.send(encodeCommand(["GET", "big"]));
      await reader.send("PING\r\n");
      const got = await reader.replies(2);
      assertEquals(got[0], value);
      assertEquals(got[1], "PONG");
      if (kind === "loop") assert.ok(stats()!.writesBlocked >= 1, "the reply was written in parts");
      writer.close();
      reader.close();
    });
  });

  Deno.test(`${kind} server: a client that stops reading does not stall the others`, async () => {
    await withServer(kind, { outputSoftLimitBytes: 256 * 1024 }, async ({ port, stats }) => {
      const value = new Uint8Array(1024 * 1024).fill(120);
      const stuck = await TestClient.connect(port);
      assertEquals(await stuck.command("SET", "big", value), "OK");
      // 64 MiB of replies requested, none read.
      let request = "";
      for (let i = 0; i < 64; i++) request += "GET big\r\n";
      await stuck.send(request);
      const other = await TestClient.connect(port);
      for (let i = 0; i < 20; i++) assertEquals(await other.command("INCR", "n"), i + 1);
      if (kind === "loop") {
        const s = stats()!;
        assert.ok(s.readPauses >= 1, "the stuck client's reading was paused");
        assert.ok(
          s.maxPendingOutputBytes <= 256 * 1024 + value.length + 64,
          `its output stays bounded: ${s.maxPendingOutputBytes} bytes`,
        );
        assertEquals(s.connectionsOpen, 2);
      }
      stuck.close(); // with unread data: the server sees a reset
      assertEquals(await other.command("GET", "n"), "20");
      other.close();
    });
  });

  Deno.test(`${kind} server: malformed input gets an error reply and a clean close`, async () => {
    await withServer(kind, {}, async ({ port, stats }) => {
      const cases: [string, string][] = [
        ["*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length"],
        ["*1\r\n*1\r\n$4\r\nPING\r\n", "ERR Protocol error: expected '$', got '*'"],
        ["*9999999999\r\n", "ERR Protocol error: invalid multibulk length"],
        ["*1\r\n$4\r\nPINGxx", "ERR Protocol error: expected CRLF after bulk string"],
        [`SET "unterminated\r\n`, "ERR Protocol error: unbalanced quotes in request"],
      ];
      const healthy = await TestClient.connect(port);
      for (const [input, error] of cases) {
        const bad = await TestClient.connect(port);
        await bad.send("PING\r\n" + input + "PING\r\n");
        assertEquals(await bad.untilClosed(), ["PONG", { error }]);
        bad.close();
        assertEquals(await healthy.command("PING"), "PONG");
      }
      // Random garbage never crashes it either.
      for (let seed = 1; seed <= 20; seed++) {
        const garbage = new Uint8Array(512).map((_, i) => (i * 7919 * seed + seed) & 0xff);
        garbage[0] = 42; // '*': a multibulk header full of noise
        const bad = await TestClient.connect(port);
        await bad.send(garbage);
        const replies = await bad.untilClosed();
        assert.ok(replies.length >= 1, "an error reply before the close");
        bad.close();
      }
      assertEquals(await healthy.command("PING"), "PONG");
      if (kind === "loop") assertEquals(stats()!.protocolErrors, 25);
      healthy.close();
    });
  });

  Deno.test(`${kind} server: a client that half-closes still gets its replies`, async () => {
    await withServer(kind, {}, async ({ port }) => {
      const client = await TestClient.connect(port);
      await client.send("SET hc 1\r\nINCR hc\r\nGET hc\r\n");
      await client.conn.closeWrite(); // like `printf ... | nc`: EOF right after the requests
      assertEquals(await client.untilClosed(), ["OK", 2, "2"]);
      client.close();
    });
  });

  Deno.test(`${kind} server: QUIT replies, then closes without running what follows`, async () => {
    await withServer(kind, {}, async ({ port }) => {
      const client = await TestClient.connect(port);
      await client.send("SET a 1\r\nQUIT\r\nSET a 2\r\n");
      assertEquals(await client.untilClosed(), ["OK", "OK"]);
      client.close();
      const check = await TestClient.connect(port);
      assertEquals(await check.command("GET", "a"), "1");
      check.close();
    });
  });

  Deno.test(`${kind} server: graceful stop flushes computed replies and closes everyone`, async () => {
    await withServer(kind, {}, async ({ port, stop }) => {
      const value = new Uint8Array(2 * 1024 * 1024).fill(97);
      const setter = await TestClient.connect(port);
      assertEquals(await setter.command("SET", "big", value), "OK");
      const idle = await TestClient.connect(port);
      assertEquals(await idle.command("PING"), "PONG");
      const slow = await TestClient.connect(port, {
        bulkAsBytes: true,
        readBytes: 4096,
        slow: true,
      });
      await slow.send("GET big\r\n");
      assert.ok(await slow.readOnce(), "the reply is flowing");
      const stopped = stop({ flushTimeoutMs: 10_000 });
      const [replies] = await Promise.all([
        slow.untilClosed(),
        idle.untilClosed(),
        setter.untilClosed(),
      ]);
      await stopped;
      assertEquals(replies, [value], "the computed reply arrived whole before the close");
      for (const c of [setter, idle, slow]) c.close();
      await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }), "no longer accepting");
    });
  });
}

Deno.test("loop server: a reply beyond the hard output limit closes the client", async () => {
  await withServer("loop", { outputHardLimitBytes: 256 * 1024 }, async ({ port, stats }) => {
    const client = await TestClient.connect(port);
    assertEquals(await client.command("SET", "big", new Uint8Array(512 * 1024)), "OK");
    await client.send("GET big\r\n");
    assertEquals(await client.untilClosed(), []);
    client.close();
    assertEquals(stats()!.outputLimitCloses, 1);
  });
});

Deno.test("loop server: one command's reply stops growing at the hard output limit", async () => {
  // MGET of one large value many times: a request of a few KB asking for a reply of 64 MiB (or,
  // scaled up, of more memory than the machine has). It must not be built before the limit is
  // applied.
  const limit = 256 * 1024;
  await withServer("loop", { outputHardLimitBytes: limit }, async ({ port, stats }) => {
    const client = await TestClient.connect(port);
    assertEquals(await client.command("SET", "big", new Uint8Array(64 * 1024)), "OK");
    await client.send(encodeCommand(["MGET", ...new Array(1024).fill("big")]));
    assertEquals(await client.untilClosed(), []);
    client.close();
    assertEquals(stats()!.outputLimitCloses, 1);
    const max = stats()!.maxPendingOutputBytes;
    assert.ok(max <= limit, `reply bytes buffered before the close: ${max}`);
  });
});

Deno.test("loop server: clients beyond maxClients are turned away", async () => {
  await withServer("loop", { maxClients: 1 }, async ({ port, stats }) => {
    const first = await TestClient.connect(port);
    assertEquals(await first.command("PING"), "PONG");
    const second = await TestClient.connect(port);
    assertEquals(await second.untilClosed(), [{ error: "ERR max number of clients reached" }]);
    second.close();
    assertEquals(stats()!.rejected, 1);
    first.close();
  });
});

Deno.test("loop server: the load generator drives it with zero errors", async () => {
  await withServer("loop", {}, async ({ port }) => {
    const progress: number[] = [];
    const result = await runLoad(
      { port, connections: 4, pipeline: 8, durationMs: 300, progressIntervalMs: 50 },
      (p) => progress.push(p.requests),
    );
    assertEquals(result.errors, 0);
    assert.ok(result.requests >= 32, `requests: ${result.requests}`);
    assertEquals(result.requests % 8, 0, "whole batches only");
    assert.ok(
      result.latencyUs.p50 <= result.latencyUs.p99 && result.latencyUs.p99 <= result.latencyUs.max,
    );
    assert.ok(progress.length >= 1);
  });
});

Deno.test("load generator: bounded, loopback only", async () => {
  await assert.rejects(runLoad({ port: 1, host: "10.0.0.1" }), RangeError);
  await assert.rejects(runLoad({ port: 1, connections: 0 }), RangeError);
  await assert.rejects(runLoad({ port: 1, durationMs: 600_000 }), RangeError);
  await assert.rejects(runLoad({ port: 1, pipeline: 5000 }), RangeError);
});

Deno.test("net: errors carry the syscall and errno name", () => {
  using net = openNetLib();
  const fd = net.listen("127.0.0.1", 0);
  const port = net.localPort(fd);
  assert.ok(port > 0);
  assert.throws(
    () => net.listen("127.0.0.1", port),
    (error: unknown) =>
      error instanceof SocketError && error.code === "EADDRINUSE" && error.syscall === "bind",
  );
  assert.throws(() => net.listen("example.com", 0), TypeError);
  assert.throws(() => net.listen("127.0.0.1", 70000), RangeError);
  assertEquals(net.accept(fd), -net.errno.EAGAIN);
  assertEquals(net.close(fd), 0);
  assertEquals(net.close(fd), -net.errno.EBADF);
});

/** The command line of `deno task serve --port <port> ...extra`. */
function serveArgs(port: number, extra: readonly string[]): string[] {
  return [
    "run",
    "--allow-ffi",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-sys",
    new URL("../../examples/serve.ts", import.meta.url).pathname,
    "--port",
    String(port),
    ...extra,
  ];
}

// `deno task serve` as a subprocess: real signals.
async function serveProcess(extra: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: serveArgs(0, extra),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/:(\d+) /.test(text)) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
  }
  const port = Number(/127\.0\.0\.1:(\d+) /.exec(text)?.[1]);
  const rest = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return text;
      text += value;
    }
  })();
  return { child, port, rest };
}

for (
  const [signal, extra] of [["SIGTERM", []], ["SIGINT", []], ["SIGTERM", ["--native"]]] as const
) {
  Deno.test(`deno task serve ${extra.join(" ")}: serves clients, ${signal} stops it with exit 0`, async () => {
    const { child, port, rest } = await serveProcess([...extra]);
    assert.ok(port > 0, "printed its address");
    const client = await TestClient.connect(port);
    assertEquals(await client.command("SET", "greeting", "hello", "EX", "60"), "OK");
    assertEquals(await client.command("GET", "greeting"), "hello");
    assertEquals(await client.command("TTL", "greeting"), 60);
    child.kill(signal);
    assertEquals(await client.untilClosed(), []);
    client.close();
    const [status, stdout, stderr] = await Promise.all([
      child.status,
      rest,
      new Response(child.stderr).text(),
    ]);
    assertEquals(status.code, 0, stderr);
    assert.match(stdout, new RegExp(`${signal}: stopping`));
    assert.match(stdout, /stopped: 1 connections/);
  });
}

for (const extra of [[], ["--native"]]) {
  Deno.test(`deno task serve ${extra.join(" ")}: a port in use is a one-line error, exit 1`, async () => {
    using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: serveArgs(busy.addr.port, extra),
    }).output();
    assertEquals(code, 1);
    assertEquals(dec.decode(stdout), "");
    assert.match(
      dec.decode(stderr),
      new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${busy.addr.port}: .+\\n$`),
    );
  });
}

Deno.test("loop server: a client closed for its output limit runs nothing it sent after", async () => {
  await withServer("loop", { outputHardLimitBytes: 256 * 1024 }, async ({ port, stats }) => {
    const client = await TestClient.connect(port);
    assertEquals(await client.command("SET", "big", new Uint8Array(512 * 1024)), "OK");
    // The GET crosses the hard limit; far more than one read buffer (64 KiB) of INCRs follows in
    // the same burst. Only what was parsed with the GET may run; no reply may reach the client.
    const incrs = 40_000;
    await client.send("GET big\r\n" + "INCR after\r\n".repeat(incrs));
    assertEquals(await client.untilClosed(), []);
    client.close();
    assertEquals(stats()!.outputLimitCloses, 1);
    const check = await TestClient.connect(port);
    const ran = Number(await check.command("GET", "after"));
    assert.ok(ran < 64 * 1024 / "INCR after\r\n".length, `INCRs run after the close: ${ran}`);
    check.close();
  });
});

Deno.test("loop server: a client it cannot watch is turned away; the server goes on", async () => {
  // epoll_ctl can fail for a new client (ENOSPC: the user's epoll watch limit, ENOMEM): the
  // listener's callback threw, and with no onError that ended run() and the server with it.
  using net = openNetLib();
  const fdsBefore = net.openFds();
  const real = createPoller();
  let refuseNext = false;
  const poller = new Proxy(real, {
    get(target, key) {
      if (key === "register") {
        return (fd: number, token: number, interest: number): void => {
          if (refuseNext) {
            refuseNext = false;
            throw new PollerError("epoll_ctl", 28, "ENOSPC");
          }
          target.register(fd, token, interest);
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const loop = new Loop({ label: "resp-test", poller });
  const server = new LoopServer(loop, { port: 0 });
  const running = loop.run();
  try {
    refuseNext = true;
    const refused = await TestClient.connect(server.port);
    assertEquals(await refused.untilClosed(), [{
      error: "ERR server cannot watch this connection",
    }]);
    refused.close();
    const client = await TestClient.connect(server.port);
    assertEquals(await client.command("PING"), "PONG");
    client.close();
  } finally {
    await server.stop({ flushTimeoutMs: 1000 });
    await running;
    await loop.close();
    await real.close();
  }
  const stats = server.stats();
  assertEquals(stats.rejected, 1);
  assertEquals(stats.fdsClosed, stats.fdsOpened);
  assertEquals(net.openFds().filter((fd) => !fdsBefore.includes(fd)), []);
});
