import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Loop, VirtualClock } from "../../loop/mod.ts";
import { Engine, parseInt64, type Session } from "../../examples/resp/commands.ts";
import { Keyspace, loopExpiryTimers } from "../../examples/resp/keyspace.ts";
import { OutputBuffer } from "../../examples/resp/output.ts";
import { RequestParser } from "../../examples/resp/parser.ts";
import { encodeCommand, ReplyReader, type RespValue } from "../../examples/resp/reply.ts";

/** An engine on a virtual-clock loop, and a way to run commands through the real parser. */
function setup() {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const engine = new Engine({ timers: loopExpiryTimers(loop), ioLayer: "test" });
  const session = engine.openSession();
  const parser = new RequestParser();
  const out = new OutputBuffer();
  const run = (...args: (string | Uint8Array)[]): RespValue => {
    parser.feed(encodeCommand(args));
    assert.ok(parser.next() > 0);
    engine.execute(parser.command, out, session);
    parser.retain();
    const reader = new ReplyReader();
    reader.feed(out.pending());
    out.clear();
    const replies = reader.readAll();
    assertEquals(replies.length, 1);
    return replies[0];
  };
  /** Runs the loop until `ms` of virtual time have passed (expiry timers fire on the way). */
  const advance = async (ms: number) => {
    loop.setTimeout(() => {}, ms);
    await loop.run();
  };
  const close = async () => {
    engine.close();
    await loop.close();
  };
  return { clock, loop, engine, session, run, advance, close };
}

const ERR_INT = { error: "ERR value is not an integer or out of range" };

Deno.test("keyspace: SET/GET and the SET options", async (t) => {
  const s = setup();
  await t.step("plain SET and GET, binary values", () => {
    assertEquals(s.run("SET", "k", "v"), "OK");
    assertEquals(s.run("GET", "k"), "v");
    assertEquals(s.run("GET", "missing"), null);
    const bytes = new Uint8Array([0, 255, 13, 10]);
    assertEquals(s.run("SET", bytes, bytes), "OK");
    assertEquals(s.run("STRLEN", bytes), 4);
  });
  await t.step("NX and XX", () => {
    assertEquals(s.run("SET", "nx", "1", "NX"), "OK");
    assertEquals(s.run("SET", "nx", "2", "nx"), null);
    assertEquals(s.run("GET", "nx"), "1");
    assertEquals(s.run("SET", "xx", "1", "XX"), null);
    assertEquals(s.run("EXISTS", "xx"), 0);
    assertEquals(s.run("SET", "nx", "3", "XX"), "OK");
    assertEquals(s.run("GET", "nx"), "3");
    assertEquals(s.run("SET", "a", "1", "NX", "XX"), { error: "ERR syntax error" });
  });
  await t.step("GET option returns the old value", () => {
    assertEquals(s.run("SET", "g", "old"), "OK");
    assertEquals(s.run("SET", "g", "new", "GET"), "old");
    assertEquals(s.run("SET", "g2", "x", "GET"), null);
  });
  await t.step("EX/PX validation", () => {
    assertEquals(s.run("SET", "e", "v", "EX", "0"), {
      error: "ERR invalid expire time in 'set' command",
    });
    assertEquals(s.run("SET", "e", "v", "PX", "-5"), {
      error: "ERR invalid expire time in 'set' command",
    });
    assertEquals(s.run("SET", "e", "v", "EX", "ten"), ERR_INT);
    assertEquals(s.run("SET", "e", "v", "EX", "10", "PX", "100"), { error: "ERR syntax error" });
    assertEquals(s.run("SET", "e", "v", "EX"), { error: "ERR syntax error" });
    assertEquals(s.run("SET", "e", "v", "BOGUS"), { error: "ERR syntax error" });
    assertEquals(s.run("EXISTS", "e"), 0);
  });
  await s.close();
});

Deno.test("keyspace: EX/PX expire on the loop's virtual clock", async () => {
  const s = setup();
  assertEquals(s.run("SET", "ex", "v", "EX", "10"), "OK");
  assertEquals(s.run("SET", "px", "v", "PX", "1500"), "OK");
  assertEquals(s.run("TTL", "ex"), 10);
  assertEquals(s.run("PTTL", "px"), 1500);
  assertEquals(s.engine.keyspace.expiringCount, 2);
  await s.advance(1000);
  assertEquals(s.clock.now(), 1000);
  assertEquals(s.run("PTTL", "px"), 500);
  assertEquals(s.run("TTL", "ex"), 9);
  await s.advance(600);
  // Reclaimed by its timer, not just hidden by the lazy check: DBSIZE counts stored keys.
  assertEquals(s.run("DBSIZE"), 1);
  assertEquals(s.run("GET", "px"), null);
  assertEquals(s.run("PTTL", "px"), -2);
  await s.advance(8400);
  assertEquals(s.clock.now(), 10_000);
  assertEquals(s.run("DBSIZE"), 0);
  assertEquals(s.engine.keyspace.expiringCount, 0);
  await s.close();
});

Deno.test("keyspace: expiry timers are unref'd: they never keep the loop alive", async () => {
  const s = setup();
  s.run("SET", "k", "v", "EX", "3600");
  await s.loop.run(); // returns at once: only an unref'd timer is pending
  assertEquals(s.clock.now(), 0);
  assertEquals(s.run("TTL", "k"), 3600);
  assertEquals(s.loop.aliveReasons(), []);
  await s.close();
});

Deno.test("keyspace: overwriting, PERSIST and DEL clear or keep the TTL as Redis does", async () => {
  const s = setup();
  s.run("SET", "k", "v", "EX", "10");
  assertEquals(s.run("SET", "k", "v2"), "OK"); // a plain SET drops the TTL
  assertEquals(s.run("TTL", "k"), -1);
  s.run("SET", "kt", "v", "EX", "10");
  assertEquals(s.run("SET", "kt", "v2", "KEEPTTL"), "OK");
  assertEquals(s.run("TTL", "kt"), 10);
  s.run("SET", "n", "1", "EX", "10");
  assertEquals(s.run("INCR", "n"), 2); // INCR keeps it
  assertEquals(s.run("TTL", "n"), 10);
  s.run("SET", "p", "v", "PX", "100");
  assertEquals(s.run("PERSIST", "p"), 1);
  assertEquals(s.run("PERSIST", "p"), 0);
  s.run("SET", "d", "v", "PX", "100");
  assertEquals(s.run("DEL", "d"), 1);
  s.run("SET", "d", "again"); // a new key under the old name must not be hit by the old timer
  await s.advance(20_000);
  assertEquals(s.run("GET", "k"), "v2");
  assertEquals(s.run("GET", "kt"), null);
  assertEquals(s.run("GET", "n"), null);
  assertEquals(s.run("GET", "p"), "v");
  assertEquals(s.run("GET", "d"), "again");
  await s.close();
});

Deno.test("keyspace: EXPIRE/PEXPIRE/TTL/PTTL and their options", async (t) => {
  const s = setup();
  await t.step("missing keys and keys without a TTL", () => {
    assertEquals(s.run("EXPIRE", "missing", "10"), 0);
    assertEquals(s.run("TTL", "missing"), -2);
    s.run("SET", "k", "v");
    assertEquals(s.run("TTL", "k"), -1);
    assertEquals(s.run("PTTL", "k"), -1);
  });
  await t.step("NX/XX/GT/LT", () => {
    assertEquals(s.run("EXPIRE", "k", "100", "XX"), 0);
    assertEquals(s.run("EXPIRE", "k", "100", "GT"), 0); // no TTL counts as infinite
    assertEquals(s.run("EXPIRE", "k", "100", "NX"), 1);
    assertEquals(s.run("EXPIRE", "k", "50", "NX"), 0);
    assertEquals(s.run("EXPIRE", "k", "50", "GT"), 0);
    assertEquals(s.run("EXPIRE", "k", "200", "GT"), 1);
    assertEquals(s.run("EXPIRE", "k", "300", "LT"), 0);
    assertEquals(s.run("PEXPIRE", "k", "5000", "LT"), 1);
    assertEquals(s.run("PTTL", "k"), 5000);
    assertEquals(s.run("TTL", "k"), 5);
    assertEquals(s.run("EXPIRE", "k", "1", "NX", "XX"), {
      error: "ERR NX and XX, GT or LT options at the same time are not compatible",
    });
    assertEquals(s.run("EXPIRE", "k", "1", "GT", "LT"), {
      error: "ERR GT and LT options at the same time are not compatible",
    });
    assertEquals(s.run("EXPIRE", "k", "x"), ERR_INT);
  });
  await t.step("a deadline in the past deletes the key", () => {
    assertEquals(s.run("EXPIRE", "k", "-1"), 1);
    assertEquals(s.run("EXISTS", "k"), 0);
  });
  await t.step("TTL rounds like Redis", () => {
    s.run("SET", "r", "v", "PX", "1499");
    assertEquals(s.run("TTL", "r"), 1);
    s.run("PEXPIRE", "r", "1500");
    assertEquals(s.run("TTL", "r"), 2);
  });
  await t.step("expire times that overflow are refused", () => {
    s.run("SET", "o", "v");
    assertEquals(s.run("EXPIRE", "o", "9223372036854775807"), {
      error: "ERR invalid expire time in 'expire' command",
    });
  });
  await s.close();
});

Deno.test("keyspace: INCR/DECR family", async (t) => {
  const s = setup();
  await t.step("counting from a missing key", () => {
    assertEquals(s.run("INCR", "c"), 1);
    assertEquals(s.run("INCRBY", "c", "41"), 42);
    assertEquals(s.run("DECR", "c"), 41);
    assertEquals(s.run("DECRBY", "c", "50"), -9);
    assertEquals(s.run("GET", "c"), "-9");
  });
  await t.step("non-integer values and arguments", () => {
    s.run("SET", "s", "abc");
    assertEquals(s.run("INCR", "s"), ERR_INT);
    for (const bad of ["1.5", " 1", "01", "-0", "+1", "", "1e3", "99999999999999999999"]) {
      s.run("SET", "b", bad);
      assertEquals(s.run("INCR", "b"), ERR_INT, `value ${JSON.stringify(bad)}`);
    }
    assertEquals(s.run("INCRBY", "c", "x"), ERR_INT);
    assertEquals(s.run("GET", "s"), "abc"); // untouched
  });
  await t.step("64-bit range and overflow", () => {
    s.run("SET", "big", "9223372036854775806");
    assertEquals(s.run("INCR", "big"), 9223372036854775807n);
    assertEquals(s.run("INCR", "big"), { error: "ERR increment or decrement would overflow" });
    s.run("SET", "small", "-9223372036854775808");
    assertEquals(s.run("DECR", "small"), { error: "ERR increment or decrement would overflow" });
    assertEquals(s.run("DECRBY", "c", "-9223372036854775808"), {
      error: "ERR decrement would overflow",
    });
    s.run("SET", "safe", "9007199254740991");
    assertEquals(s.run("INCR", "safe"), 9007199254740992n);
    assertEquals(s.run("INCRBY", "safe", "-2"), 9007199254740990);
  });
  await s.close();
});

Deno.test("keyspace: parseInt64 follows Redis's string2ll", () => {
  const p = (text: string) => {
    const bytes = new TextEncoder().encode(text);
    return parseInt64(bytes, 0, bytes.length);
  };
  assertEquals(p("0"), 0);
  assertEquals(p("-1"), -1);
  assertEquals(p("9223372036854775807"), 9223372036854775807n);
  assertEquals(p("-9223372036854775808"), -9223372036854775808n);
  assertEquals(p("9223372036854775808"), null);
  assertEquals(p("-"), null);
  assertEquals(p("00"), null);
});

Deno.test("keyspace: multi-key and server commands", async (t) => {
  const s = setup();
  await t.step("MSET/MGET/DEL/EXISTS/DBSIZE/FLUSHDB", () => {
    assertEquals(s.run("MSET", "a", "1", "b", "2", "c", "3"), "OK");
    assertEquals(s.run("MGET", "a", "nope", "c"), ["1", null, "3"]);
    assertEquals(s.run("MSET", "a", "1", "b"), {
      error: "ERR wrong number of arguments for 'mset' command",
    });
    assertEquals(s.run("EXISTS", "a", "a", "nope"), 2);
    assertEquals(s.run("DEL", "a", "nope", "b"), 2);
    assertEquals(s.run("DBSIZE"), 1);
    assertEquals(s.run("FLUSHDB"), "OK");
    assertEquals(s.run("DBSIZE"), 0);
  });
  await t.step("GETSET/GETDEL/APPEND/STRLEN/SETNX/SETEX/PSETEX/MSETNX", () => {
    s.run("SET", "gs", "one");
    assertEquals(s.run("GETSET", "gs", "two"), "one"); // same length: stored in place
    assertEquals(s.run("GETSET", "gs", "three"), "two");
    assertEquals(s.run("GET", "gs"), "three");
    assertEquals(s.run("GETDEL", "gs"), "three");
    assertEquals(s.run("GETDEL", "gs"), null);
    assertEquals(s.run("APPEND", "ap", "ab"), 2);
    assertEquals(s.run("APPEND", "ap", "cd"), 4);
    assertEquals(s.run("GET", "ap"), "abcd");
    assertEquals(s.run("STRLEN", "ap"), 4);
    assertEquals(s.run("STRLEN", "nope"), 0);
    assertEquals(s.run("SETNX", "sn", "1"), 1);
    assertEquals(s.run("SETNX", "sn", "2"), 0);
    assertEquals(s.run("SETEX", "se", "10", "v"), "OK");
    assertEquals(s.run("TTL", "se"), 10);
    assertEquals(s.run("PSETEX", "pe", "1500", "v"), "OK");
    assertEquals(s.run("PTTL", "pe"), 1500);
    assertEquals(s.run("SETEX", "se", "0", "v"), {
      error: "ERR invalid expire time in 'setex' command",
    });
    assertEquals(s.run("MSETNX", "m1", "a", "m2", "b"), 1);
    assertEquals(s.run("MSETNX", "m2", "x", "m3", "c"), 0);
    assertEquals(s.run("MGET", "m1", "m2", "m3"), ["a", "b", null]);
    assertEquals(s.run("MSET", "dup", "1", "dup", "22"), "OK");
    assertEquals(s.run("GET", "dup"), "22");
  });
  await t.step("values of many sizes survive neighbours being overwritten", () => {
    for (let i = 0; i < 2000; i++) s.run("SET", `v${i}`, "x".repeat(i % 300));
    for (let i = 0; i < 2000; i += 3) s.run("SET", `v${i}`, "y".repeat(i % 300));
    for (let i = 0; i < 2000; i++) {
      assertEquals(s.run("GET", `v${i}`), (i % 3 === 0 ? "y" : "x").repeat(i % 300));
    }
  });
  await t.step("PING/ECHO/SELECT/TYPE", () => {
    assertEquals(s.run("PING"), "PONG");
    assertEquals(s.run("ping", "hi"), "hi");
    assertEquals(s.run("ECHO", "a\r\nb"), "a\r\nb");
    assertEquals(s.run("SELECT", "0"), "OK");
    assertEquals(s.run("SELECT", "1"), { error: "ERR DB index is out of range" });
    s.run("SET", "t", "v");
    assertEquals(s.run("TYPE", "t"), "string");
    assertEquals(s.run("TYPE", "nope"), "none");
  });
  await t.step("client handshakes: COMMAND, CONFIG GET, CLIENT, HELLO, INFO", () => {
    assertEquals(s.run("COMMAND", "DOCS"), []);
    assertEquals(s.run("COMMAND"), []);
    assert.ok(typeof s.run("COMMAND", "COUNT") === "number");
    assertEquals(s.run("CONFIG", "GET", "save"), ["save", ""]);
    assertEquals(s.run("CONFIG", "GET", "appendonly"), ["appendonly", "no"]);
    assertEquals(s.run("CONFIG", "GET", "maxmemory"), []);
    assertEquals(s.run("CLIENT", "SETNAME", "worker-1"), "OK");
    assertEquals(s.run("CLIENT", "GETNAME"), "worker-1");
    assertEquals(s.run("CLIENT", "SETNAME", "a b"), {
      error: "ERR Client names cannot contain spaces, newlines or special characters.",
    });
    assertEquals(s.run("CLIENT", "ID"), s.session.id);
    assertEquals(s.run("HELLO", "3"), {
      error: "NOPROTO sorry, this protocol version is not supported",
    });
    const info = s.run("INFO");
    assert.ok(
      typeof info === "string" && info.includes("redis_version:") && info.includes("io_layer:test"),
    );
  });
  await t.step("errors: unknown commands, arity, no reply injection", () => {
    assertEquals(s.run("NOPE", "x", "y"), {
      error: "ERR unknown command 'NOPE', with args beginning with: 'x' 'y' ",
    });
    assertEquals(s.run("BAD\r\n+OK"), {
      error: "ERR unknown command 'BAD  +OK', with args beginning with: ",
    });
    assertEquals(s.run("GET"), { error: "ERR wrong number of arguments for 'get' command" });
    assertEquals(s.run("GET", "a", "b"), {
      error: "ERR wrong number of arguments for 'get' command",
    });
  });
  await t.step("QUIT asks the server to close after the reply", () => {
    const session: Session = s.session;
    assertEquals(session.closeAfterReplies, false);
    assertEquals(s.run("QUIT"), "OK");
    assertEquals(session.closeAfterReplies, true);
  });
  await s.close();
});

Deno.test("keyspace: clear() cancels every expiry timer", async () => {
  const clock = new VirtualClock();
  const loop = new Loop({ clock });
  const keyspace = new Keyspace(loopExpiryTimers(loop));
  for (let i = 0; i < 100; i++) keyspace.set(`k${i}`, new Uint8Array(1), 1000 + i);
  assertEquals(keyspace.expiringCount, 100);
  keyspace.clear();
  assertEquals([keyspace.size, keyspace.expiringCount], [0, 0]);
  const report = await loop.close();
  assertEquals(report.disposed.timers, 0);
});

Deno.test("keyspace: conflicting options in either order, and deadlines at their boundary", async (t) => {
  const s = setup();
  const syntax = { error: "ERR syntax error" };
  await t.step("SET: XX before NX and PX before EX are syntax errors too", () => {
    assertEquals(s.run("SET", "c", "v", "XX", "NX"), syntax);
    assertEquals(s.run("SET", "c", "v", "PX", "100", "EX", "10"), syntax);
    assertEquals(s.run("EXISTS", "c"), 0);
  });
  await t.step("EXPIRE: NX with GT or LT is refused", () => {
    s.run("SET", "e", "v");
    const error = {
      error: "ERR NX and XX, GT or LT options at the same time are not compatible",
    };
    assertEquals(s.run("EXPIRE", "e", "10", "NX", "GT"), error);
    assertEquals(s.run("EXPIRE", "e", "10", "LT", "NX"), error);
    assertEquals(s.run("TTL", "e"), -1);
  });
  await t.step("EXPIRE GT/LT with the same deadline change nothing", () => {
    s.run("SET", "g", "v", "EX", "100");
    assertEquals(s.run("EXPIRE", "g", "100", "GT"), 0);
    assertEquals(s.run("EXPIRE", "g", "100", "LT"), 0);
    assertEquals(s.run("TTL", "g"), 100);
  });
  await t.step(
    "EXPIRE with a deadline of now deletes the key at once (DBSIZE counts it gone)",
    () => {
      s.run("FLUSHDB");
      s.run("SET", "z", "v");
      assertEquals(s.run("EXPIRE", "z", "0"), 1);
      assertEquals(s.run("DBSIZE"), 0);
    },
  );
  await t.step("at its deadline a key is gone, whether or not its timer has run yet", () => {
    s.run("SET", "d", "v", "PX", "100");
    s.clock.set(s.clock.now() + 100); // time moves, the loop does not run: no timer fires
    assertEquals(s.run("GET", "d"), null);
    assertEquals(s.run("PTTL", "d"), -2);
  });
  await s.close();
});
