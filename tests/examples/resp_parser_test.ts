import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { Engine } from "../../examples/resp/commands.ts";
import { RequestParser } from "../../examples/resp/parser.ts";
import { OutputBuffer } from "../../examples/resp/output.ts";
import { encodeCommand, ReplyReader, scanReply } from "../../examples/resp/reply.ts";

// A fixed seed keeps runs reproducible; change it to explore other cases.
const SEED = 20_261_123;

const enc = new TextEncoder();

/** Parses everything fed so far; returns the commands as strings and the final status. */
function drain(parser: RequestParser): { commands: string[][]; status: number } {
  const commands: string[][] = [];
  for (;;) {
    const argc = parser.next();
    if (argc <= 0) return { commands, status: argc };
    assertEquals(parser.command.argc, argc);
    commands.push(parser.command.strings());
  }
}

function parseAll(text: string | Uint8Array, parser = new RequestParser()) {
  parser.feed(typeof text === "string" ? enc.encode(text) : text);
  const result = drain(parser);
  return { ...result, error: parser.error };
}

Deno.test("parser: pipelined multibulk and inline commands in one read", () => {
  const input = "*1\r\n$4\r\nPING\r\n" +
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n" +
    "GET k\r\n" +
    "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
  const { commands, status, error } = parseAll(input);
  assertEquals(status, 0);
  assertEquals(error, null);
  assertEquals(commands, [["PING"], ["SET", "k", "hello"], ["GET", "k"], ["ECHO", ""]]);
});

Deno.test("parser: a thousand pipelined commands", () => {
  let input = "";
  for (let i = 0; i < 1000; i++) input += `*2\r\n$3\r\nGET\r\n$${String(i).length}\r\n${i}\r\n`;
  const { commands, status } = parseAll(input);
  assertEquals(status, 0);
  assertEquals(commands.length, 1000);
  assertEquals(commands[999], ["GET", "999"]);
});

Deno.test("parser: input arriving one byte at a time through a reused buffer", () => {
  const input = enc.encode(
    '*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\nv1\r\nPING\r\n\r\n*0\r\nECHO "a b"\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n',
  );
  const parser = new RequestParser();
  const byte = new Uint8Array(1); // reused like a socket read buffer
  const commands: string[][] = [];
  for (const b of input) {
    byte[0] = b;
    parser.feed(byte);
    const r = drain(parser);
    assertEquals(r.status, 0);
    commands.push(...r.commands);
    parser.retain();
    byte[0] = 0xff; // anything still referring to the old byte would now see garbage
  }
  assertEquals(commands, [["SET", "k\r\n", "v1"], ["PING"], ["ECHO", "a b"], ["ECHO", "x"]]);
  assertEquals(parser.bufferedBytes, 0);
});

Deno.test("parser: a large bulk string split over many reads is assembled once", () => {
  const value = new Uint8Array(300_000).map((_, i) => i & 0xff);
  const request = encodeCommand(["SET", "big", value]);
  const parser = new RequestParser();
  let parsed = 0;
  for (let at = 0; at < request.length; at += 4096) {
    parser.feed(request.slice(at, at + 4096));
    const argc = parser.next();
    if (argc > 0) {
      parsed++;
      assertEquals(parser.command.copy(2), value);
    } else assertEquals(argc, 0);
    parser.retain();
  }
  assertEquals(parsed, 1);
});

Deno.test("parser: inline commands (telnet, redis-cli)", async (t) => {
  await t.step("LF or CRLF, extra spaces, empty lines skipped", () => {
    const { commands } = parseAll("PING\n  SET  a   b \r\n\r\n\n  \r\nGET a\r\n");
    assertEquals(commands, [["PING"], ["SET", "a", "b"], ["GET", "a"]]);
  });
  await t.step("quoted arguments with escapes", () => {
    const { commands } = parseAll(`SET "a b" "x\\ty\\x41\\"" 'it\\'s'\r\n`);
    assertEquals(commands, [["SET", "a b", 'x\tyA"', "it's"]]);
  });
  await t.step("unbalanced quotes", () => {
    const r = parseAll(`SET "abc\r\n`);
    assertEquals(r.status, -1);
    assertEquals(r.error, "unbalanced quotes in request");
  });
  await t.step("a closing quote must end the argument", () => {
    const r = parseAll(`SET "a"b c\r\n`);
    assertEquals(r.error, "unbalanced quotes in request");
  });
  await t.step("an inline line beyond the limit", () => {
    const parser = new RequestParser({ maxInlineBytes: 100 });
    const r = parseAll("A".repeat(150), parser); // no newline yet: already too big
    assertEquals(r.status, -1);
    assertEquals(r.error, "too big inline request");
  });
  await t.step("an inline line of exactly the limit is accepted (its CRLF does not count)", () => {
    const parser = new RequestParser({ maxInlineBytes: 100 });
    const r = parseAll("A".repeat(100) + "\r\n", parser);
    assertEquals(r.error, null);
    assertEquals(r.commands, [["A".repeat(100)]]);
  });
  await t.step("an incomplete inline line waits", () => {
    const parser = new RequestParser();
    const r = parseAll("GET ke", parser);
    assertEquals([r.status, r.commands.length], [0, 0]);
    assertEquals(parseAll("y\r\n", parser).commands, [["GET", "key"]]);
  });
});

Deno.test("parser: malformed input is a protocol error, and stays one", async (t) => {
  const cases: [string, string, string][] = [
    ["a non-$ element", "*1\r\n+PING\r\n", "expected '$', got '+'"],
    ["a nested array", "*1\r\n*1\r\n$4\r\nPING\r\n", "expected '$', got '*'"],
    ["a control byte where $ belongs", "*1\r\n\x00", "expected '$', got '\\x00'"],
    ["a negative bulk length", "*1\r\n$-5\r\n", "invalid bulk length"],
    ["a null bulk string in a request", "*1\r\n$-1\r\n", "invalid bulk length"],
    ["a non-numeric bulk length", "*1\r\n$abc\r\n", "invalid bulk length"],
    ["an empty bulk length", "*1\r\n$\r\n", "invalid bulk length"],
    ["a huge bulk length", "*1\r\n$99999999999999999999\r\n", "invalid bulk length"],
    ["a bulk length over the limit", `*1\r\n$${64 * 1024 * 1024 + 1}\r\n`, "invalid bulk length"],
    ["a non-numeric array length", "*x\r\n", "invalid multibulk length"],
    ["an array length with a sign", "*+1\r\n", "invalid multibulk length"],
    ["an array length over the limit", "*1048577\r\n", "invalid multibulk length"],
    ["LF without CR after a length", "*1\n$4\r\nPING\r\n", "invalid multibulk length"],
    ["a missing CRLF after the bulk data", "*1\r\n$4\r\nPINGxx", "expected CRLF after bulk string"],
    ["CR without LF after a length", "*1\r$4", "invalid multibulk length"],
  ];
  for (const [name, input, error] of cases) {
    await t.step(name, () => {
      const parser = new RequestParser();
      const r = parseAll(input, parser);
      assertEquals(r.status, -1);
      assertEquals(r.error, error);
      // Poisoned: more input changes nothing.
      assertEquals(parser.feed(enc.encode("PING\r\n")), false);
      assertEquals(parser.next(), -1);
    });
  }
  await t.step("commands before the error are still parsed", () => {
    const r = parseAll("PING\r\n*1\r\n$x\r\n");
    assertEquals(r.commands, [["PING"]]);
    assertEquals(r.status, -1);
  });
  await t.step("a request over maxRequestBytes, declared", () => {
    const parser = new RequestParser({ maxRequestBytes: 1000 });
    const r = parseAll("*2\r\n$3\r\nSET\r\n$2000\r\n", parser);
    assertEquals(r.error, "request exceeds 1000 bytes");
  });
  await t.step("a request over maxRequestBytes, accumulated", () => {
    const parser = new RequestParser({ maxRequestBytes: 1000 });
    parseAll("*1000\r\n", parser);
    let status = 0;
    for (let i = 0; i < 200 && status === 0; i++) {
      if (!parser.feed(enc.encode("$1\r\nx\r\n"))) status = -1;
      else status = drain(parser).status;
      parser.retain();
    }
    assertEquals(status, -1);
    assertEquals(parser.error, "request exceeds 1000 bytes");
  });
  await t.step("feed() itself refuses input that would buffer more than maxRequestBytes", () => {
    // Fed in pieces without parsing in between (as the docs of feed() allow): the limit holds at
    // the feed, not only once next() looks at the request.
    const parser = new RequestParser({ maxRequestBytes: 64 });
    assertEquals(parser.feed(enc.encode("*1\r\n$100\r\n")), true);
    parser.retain();
    assertEquals(parser.feed(enc.encode("x".repeat(60))), false);
    assertEquals(parser.error, "request exceeds 64 bytes");
    assertEquals(parser.next(), -1);
  });
  await t.step("empty multibulk requests are skipped", () => {
    assertEquals(parseAll("*0\r\n*-1\r\nPING\r\n").commands, [["PING"]]);
  });
  await t.step("limits must be positive integers", () => {
    assert.throws(() => new RequestParser({ maxBulkBytes: 0 }), RangeError);
    assert.throws(() => new RequestParser({ maxArrayLength: 1.5 }), RangeError);
  });
});

Deno.test("parser: binary-safe arguments and keys", () => {
  const value = new Uint8Array([0, 13, 10, 255, 128, 36, 42]);
  const parser = new RequestParser();
  parser.feed(encodeCommand(["SET", value, value]));
  assertEquals(parser.next(), 3);
  assertEquals(parser.command.copy(2), value);
  const key = parser.command.key(1);
  assertEquals(key.length, value.length);
  assertEquals([...key].map((c) => c.charCodeAt(0)), [...value]);
  assert.ok(parser.command.is(0, "set"));
  assertEquals(parser.command.lower(0), "set");
});

Deno.test("parser: property: encode, split anywhere, parse gives the commands back", () => {
  const arg = fc.uint8Array({ minLength: 0, maxLength: 40 });
  const command = fc.array(arg, { minLength: 1, maxLength: 6 });
  fc.assert(
    fc.property(
      fc.array(command, { minLength: 1, maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (commands, cutSeeds) => {
        const parts = commands.map((c) => encodeCommand(c));
        const total = parts.reduce((n, p) => n + p.length, 0);
        const stream = new Uint8Array(total);
        let at = 0;
        for (const p of parts) {
          stream.set(p, at);
          at += p.length;
        }
        const cuts = [...new Set(cutSeeds.map((s) => s % (total + 1)))].sort((a, b) => a - b);
        const bounds = [0, ...cuts, total];
        const parser = new RequestParser();
        const scratch = new Uint8Array(total); // one reused read buffer, as a server has
        const got: Uint8Array[][] = [];
        for (let i = 0; i + 1 < bounds.length; i++) {
          const n = bounds[i + 1] - bounds[i];
          scratch.set(stream.subarray(bounds[i], bounds[i + 1]));
          parser.feed(scratch, n);
          for (let argc = parser.next(); argc > 0; argc = parser.next()) {
            const c: Uint8Array[] = [];
            for (let k = 0; k < argc; k++) c.push(parser.command.copy(k));
            got.push(c);
          }
          assertEquals(parser.error, null);
          parser.retain();
          scratch.fill(0xee);
        }
        assertEquals(got, commands);
        assertEquals(parser.bufferedBytes, 0);
      },
    ),
    { numRuns: 300, seed: SEED },
  );
});

Deno.test("output buffer: encodes every reply type and grows without losing bytes", () => {
  const out = new OutputBuffer({ initialBytes: 16 });
  out.simple("OK");
  out.error("ERR bad\r\ninjected");
  out.integer(0);
  out.integer(-42);
  out.integer(9007199254740993n);
  out.bulk(enc.encode("hello world, longer than sixteen bytes"));
  out.bulk(null);
  out.arrayHeader(2);
  out.bulkRange(enc.encode("xabcx"), 1, 4);
  out.bulkText("é");
  const reader = new ReplyReader();
  reader.feed(out.pending());
  assertEquals(reader.readAll(), [
    "OK",
    { error: "ERR bad  injected" },
    0,
    -42,
    9007199254740993n,
    "hello world, longer than sixteen bytes",
    null,
    ["abc", "é"],
  ]);
  const before = out.pendingBytes;
  out.consume(5);
  assertEquals(out.pendingBytes, before - 5);
  out.consume(out.pendingBytes);
  assertEquals([out.start, out.end], [0, 0]);
});

Deno.test("reply scanner: finds reply ends and waits for incomplete ones", () => {
  const bytes = enc.encode("*3\r\n:1\r\n$3\r\nabc\r\n*1\r\n-ERR x\r\n+OK\r\n");
  const counters = { errors: 0 };
  const first = scanReply(bytes, 0, bytes.length, counters);
  assertEquals(first, bytes.length - 5);
  assertEquals(counters.errors, 1);
  assertEquals(scanReply(bytes, first, bytes.length), bytes.length);
  for (let end = 0; end < first; end++) assertEquals(scanReply(bytes, 0, end), -1);
});

Deno.test("output buffer: a limit refuses growth past it, and the engine then adds nothing", () => {
  const out = new OutputBuffer({ initialBytes: 64, limitBytes: 1024 });
  out.raw(new Uint8Array(1000));
  assert.throws(() => out.raw(new Uint8Array(100)), RangeError);
  assertEquals([out.exceeded, out.pendingBytes], [true, 1000]);
  // An MGET whose reply would be 64 MiB stops at the limit, with no error reply after it.
  const engine = new Engine({ timers: { now: () => 0, schedule: () => 0, cancel: () => {} } });
  const session = engine.openSession();
  const parser = new RequestParser();
  const limited = new OutputBuffer({ limitBytes: 256 * 1024 });
  parser.feed(encodeCommand(["SET", "big", new Uint8Array(64 * 1024)]));
  parser.feed(encodeCommand(["MGET", ...new Array(1024).fill("big")]));
  assert.ok(parser.next() > 0);
  engine.execute(parser.command, limited, session);
  limited.clear();
  assert.ok(parser.next() > 0);
  engine.execute(parser.command, limited, session);
  assertEquals(limited.exceeded, true);
  assert.ok(limited.pendingBytes <= 256 * 1024);
  assert.ok(!new TextDecoder().decode(limited.pending()).includes("-ERR"), "no error reply added");
  engine.close();
});
