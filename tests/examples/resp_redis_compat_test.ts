// Replies compared byte for byte with a real Redis. Every expected reply below is what
// redis-server 7.0.15 (Debian 12's package) sent for the same request bytes; the tests run the
// requests through the example's parser and engine on a virtual clock, so they need no Redis.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Loop, VirtualClock } from "../../loop/mod.ts";
import { Engine } from "../../examples/resp/commands.ts";
import { loopExpiryTimers } from "../../examples/resp/keyspace.ts";
import { OutputBuffer } from "../../examples/resp/output.ts";
import { RequestParser } from "../../examples/resp/parser.ts";
import { encodeCommand } from "../../examples/resp/reply.ts";

const enc = new TextEncoder();

/**
 * An engine on a virtual-clock loop; `send` runs raw request bytes and returns the reply bytes
 * (a protocol error's reply included).
 */
function setup() {
  const loop = new Loop({ clock: new VirtualClock() });
  const engine = new Engine({ timers: loopExpiryTimers(loop), ioLayer: "test" });
  const session = engine.openSession();
  const parser = new RequestParser();
  const out = new OutputBuffer();
  /** Runs every complete command in `input`; the replies as latin1 text (one char per byte). */
  const send = (input: string | Uint8Array): string => {
    parser.feed(typeof input === "string" ? enc.encode(input) : input);
    let argc = parser.next();
    for (; argc > 0; argc = parser.next()) engine.execute(parser.command, out, session);
    // What both servers send before closing the connection.
    if (argc < 0) out.error(`ERR Protocol error: ${parser.error}`);
    parser.retain();
    const bytes = out.pending();
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    out.clear();
    return text;
  };
  /** A multibulk command. */
  const cmd = (...args: string[]) => encodeCommand(args);
  const close = async () => {
    engine.close();
    await loop.close();
  };
  return { send, cmd, close };
}

Deno.test("redis compat: large expire times within int64 milliseconds are accepted", async () => {
  const { send, cmd, close } = setup();
  const INVALID = (name: string) => `-ERR invalid expire time in '${name}' command\r\n`;
  // SET EX/PX, SETEX, PSETEX: positive, and the absolute deadline must fit in int64 ms.
  assertEquals(send(cmd("SET", "k", "v", "EX", "922337203685477")), "+OK\r\n");
  assertEquals(send(cmd("TTL", "k")), ":922337203685477\r\n");
  assertEquals(send(cmd("SET", "k", "v", "PX", "100000000000000000")), "+OK\r\n");
  assertEquals(send(cmd("TTL", "k")), ":100000000000000\r\n");
  assertEquals(send(cmd("SET", "k", "v", "PX", "9007199254740993")), "+OK\r\n");
  assertEquals(send(cmd("SETEX", "k", "922337203685477", "v")), "+OK\r\n");
  assertEquals(send(cmd("PSETEX", "k", "922337203685477000", "v")), "+OK\r\n");
  assertEquals(send(cmd("SET", "k", "v", "EX", "9223372036854775")), INVALID("set"));
  assertEquals(send(cmd("SET", "k", "v", "EX", "9223372036854776")), INVALID("set"));
  assertEquals(send(cmd("SET", "k", "v", "PX", "9223372036854775807")), INVALID("set"));
  assertEquals(send(cmd("SETEX", "k", "9223372036854775807", "v")), INVALID("setex"));
  // EXPIRE/PEXPIRE: any value whose deadline fits; a past deadline deletes the key.
  send(cmd("SET", "k", "v"));
  assertEquals(send(cmd("EXPIRE", "k", "922337203685477")), ":1\r\n");
  assertEquals(send(cmd("EXISTS", "k")), ":1\r\n");
  assertEquals(send(cmd("PEXPIRE", "k", "100000000000000000")), ":1\r\n");
  assertEquals(send(cmd("TTL", "k")), ":100000000000000\r\n");
  assertEquals(send(cmd("EXPIRE", "k", "-922337203685477")), ":1\r\n");
  assertEquals(send(cmd("EXISTS", "k")), ":0\r\n");
  send(cmd("SET", "k", "v"));
  assertEquals(send(cmd("EXPIRE", "k", "-9223372036854775")), ":1\r\n");
  assertEquals(send(cmd("EXISTS", "k")), ":0\r\n");
  send(cmd("SET", "k", "v"));
  assertEquals(send(cmd("PEXPIRE", "k", "-9223372036854775808")), ":1\r\n");
  assertEquals(send(cmd("EXISTS", "k")), ":0\r\n");
  send(cmd("SET", "k", "v"));
  assertEquals(send(cmd("EXPIRE", "k", "9223372036854775")), INVALID("expire"));
  assertEquals(send(cmd("EXPIRE", "k", "-9223372036854776")), INVALID("expire"));
  assertEquals(send(cmd("EXPIRE", "k", "9223372036854775807")), INVALID("expire"));
  assertEquals(send(cmd("PEXPIRE", "k", "9223372036854775807")), INVALID("pexpire"));
  assertEquals(send(cmd("TTL", "k")), ":-1\r\n");
  await close();
});

Deno.test("redis compat: SET reads all its options before it checks the expire time", async () => {
  const { send, cmd, close } = setup();
  // A repeated EX, PX or KEEPTTL is allowed, and the last expire time wins.
  assertEquals(send(cmd("SET", "k", "v", "PX", "5000", "PX", "20000")), "+OK\r\n");
  assertEquals(send(cmd("PTTL", "k")), ":20000\r\n");
  assertEquals(send(cmd("SET", "k", "v", "EX", "abc", "EX", "10")), "+OK\r\n");
  assertEquals(send(cmd("TTL", "k")), ":10\r\n");
  assertEquals(send(cmd("SET", "k", "v", "KEEPTTL", "KEEPTTL")), "+OK\r\n");
  assertEquals(send(cmd("TTL", "k")), ":10\r\n");
  // A syntax error anywhere comes before a bad expire time.
  assertEquals(send(cmd("SET", "k", "v", "EX", "abc", "FOO")), "-ERR syntax error\r\n");
  assertEquals(send(cmd("SET", "k", "v", "EX", "0", "NX", "XX")), "-ERR syntax error\r\n");
  assertEquals(send(cmd("SET", "k", "v", "EX", "10", "PX", "10")), "-ERR syntax error\r\n");
  assertEquals(send(cmd("SET", "k", "v", "EX", "10", "KEEPTTL")), "-ERR syntax error\r\n");
  assertEquals(
    send(cmd("SET", "k", "v", "EX", "-1", "GET")),
    "-ERR invalid expire time in 'set' command\r\n",
  );
  assertEquals(send(cmd("TTL", "k")), ":10\r\n");
  await close();
});

Deno.test("redis compat: FLUSHDB/FLUSHALL take only ASYNC or SYNC, and flush nothing otherwise", async () => {
  const { send, cmd, close } = setup();
  send(cmd("SET", "k", "v"));
  for (const name of ["FLUSHDB", "FLUSHALL"]) {
    assertEquals(send(cmd(name, "FOO")), "-ERR syntax error\r\n");
    assertEquals(send(cmd(name, "ASYNC", "SYNC")), "-ERR syntax error\r\n");
    assertEquals(send(cmd("DBSIZE")), ":1\r\n");
  }
  assertEquals(send(cmd("FLUSHDB", "async")), "+OK\r\n");
  send(cmd("SET", "k", "v"));
  assertEquals(send(cmd("FLUSHALL", "SYNC")), "+OK\r\n");
  assertEquals(send(cmd("DBSIZE")), ":0\r\n");
  await close();
});

Deno.test("redis compat: inline commands split arguments as Redis's sdssplitargs", async () => {
  const { send, close } = setup();
  // A quote opens a quoted part anywhere in an argument, not only at its start.
  assertEquals(send('ECHO ab"c d"\r\n'), "$5\r\nabc d\r\n");
  assertEquals(send("ECHO a'b c'\r\n"), "$4\r\nab c\r\n");
  // Only space, tab, CR and LF end an argument; leading \v and \f are skipped as blanks.
  assertEquals(send("ECHO a\x0bb\r\n"), "$3\r\na\x0bb\r\n");
  assertEquals(send("ECHO a\x0cb\r\n"), "$3\r\na\x0cb\r\n");
  assertEquals(send("\x0b\x0cPING\r\n"), "+PONG\r\n");
  // The closing quote must still end the argument.
  assertEquals(
    send('ECHO a"b"\r\nECHO x"y"z\r\n'),
    "$2\r\nab\r\n-ERR Protocol error: unbalanced quotes in request\r\n",
  );
  await close();
});

Deno.test("redis compat: HELLO checks its version and options, and SETNAME names the client", async () => {
  const { send, cmd, close } = setup();
  // Only the RESP2 reply is ours to check; Redis's shows its version and the connection id.
  const hello2 = /^\*14\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n.*\$7\r\nmodules\r\n\*0\r\n$/s;
  assertEquals(hello2.test(send(cmd("HELLO"))), true);
  assertEquals(hello2.test(send(cmd("hello", "2", "setname", "x"))), true);
  assertEquals(send(cmd("CLIENT", "GETNAME")), "$1\r\nx\r\n");
  assertEquals(hello2.test(send(cmd("HELLO", "2", "AUTH", "default", "any", "SETNAME", ""))), true);
  assertEquals(send(cmd("CLIENT", "GETNAME")), "$-1\r\n");
  assertEquals(
    send(cmd("HELLO", "x")),
    "-ERR Protocol version is not an integer or out of range\r\n",
  );
  assertEquals(send(cmd("HELLO", "2", "JUNK")), "-ERR Syntax error in HELLO option 'JUNK'\r\n");
  assertEquals(send(cmd("HELLO", "3", "JUNK")), "-ERR Syntax error in HELLO option 'JUNK'\r\n");
  assertEquals(
    send(cmd("HELLO", "2", "SETNAME")),
    "-ERR Syntax error in HELLO option 'SETNAME'\r\n",
  );
  assertEquals(
    send(cmd("HELLO", "2", "AUTH", "default")),
    "-ERR Syntax error in HELLO option 'AUTH'\r\n",
  );
  assertEquals(
    send(cmd("HELLO", "2", "SETNAME", "a b")),
    "-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
  );
  assertEquals(
    send(cmd("HELLO", "2", "AUTH", "a", "b")),
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
  );
  // RESP3 is not served (Redis would switch); the NOPROTO prefix is Redis's for other versions.
  assertEquals(send(cmd("HELLO", "4")).startsWith("-NOPROTO "), true);
  assertEquals(send(cmd("HELLO", "3")).startsWith("-NOPROTO "), true);
  await close();
});

Deno.test("redis compat: CLIENT and COMMAND subcommands check their arguments", async () => {
  const { send, cmd, close } = setup();
  const wrong = (name: string) => `-ERR wrong number of arguments for '${name}' command\r\n`;
  assertEquals(send(cmd("CLIENT", "SETNAME")), wrong("client|setname"));
  assertEquals(send(cmd("CLIENT", "SETNAME", "a", "b")), wrong("client|setname"));
  assertEquals(send(cmd("CLIENT", "GETNAME")), "$-1\r\n"); // nothing was named
  assertEquals(send(cmd("CLIENT", "GETNAME", "x")), wrong("client|getname"));
  assertEquals(send(cmd("CLIENT", "ID", "x")), wrong("client|id"));
  assertEquals(send(cmd("CLIENT", "INFO", "x")), wrong("client|info"));
  assertEquals(send(cmd("command", "count", "x")), wrong("command|count"));
  assertEquals(send(cmd("COMMAND", "FOO")), "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n");
  assertEquals(send(cmd("COMMAND", "DOCS", "nosuchcmd")), "*0\r\n");
  await close();
});

Deno.test("redis compat: lengths with leading zeros are protocol errors", async () => {
  const { send, close } = setup();
  assertEquals(send("*01\r\n$4\r\nPING\r\n"), "-ERR Protocol error: invalid multibulk length\r\n");
  await close();
  const second = setup();
  assertEquals(second.send("*00\r\nPING\r\n"), "-ERR Protocol error: invalid multibulk length\r\n");
  await second.close();
  const third = setup();
  assertEquals(third.send("*1\r\n$04\r\nPING\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
  await third.close();
  const fourth = setup(); // a lone zero is fine
  assertEquals(
    fourth.send("*0\r\n*1\r\n$0\r\n\r\nPING\r\n"),
    "-ERR unknown command '', with args beginning with: \r\n+PONG\r\n",
  );
  await fourth.close();
});
