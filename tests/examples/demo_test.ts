// `deno task demo` and the newcomer-facing edges of the examples: the demo's command line and
// progress line, and what the demo and `deno task serve` say when --allow-ffi is missing.
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseDemoArgs, progressPrinter } from "../../examples/demo.ts";
import { parseServeArgs } from "../../examples/serve.ts";

const dec = new TextDecoder();

/** Runs an example script as a subprocess with the given permissions and arguments. */
async function runExample(
  script: string,
  permissions: readonly string[],
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...permissions,
      new URL(`../../examples/${script}`, import.meta.url).pathname,
      ...args,
    ],
    env: { NO_COLOR: "1" },
  }).output();
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
}

const NO_FFI = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys"];

Deno.test("demo without --allow-ffi: a one-line message naming the flag, exit 1, no stack trace", async () => {
  const { code, stderr } = await runExample("demo.ts", NO_FFI, ["--seconds", "0.5"]);
  assertEquals(code, 1, stderr);
  assert.match(stderr, /--allow-ffi/);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(stderr, /Uncaught/);
});

Deno.test("serve without --allow-ffi: says the FFI permission is missing, exit 1", async () => {
  const { code, stdout, stderr } = await runExample("serve.ts", NO_FFI, ["--port", "0"]);
  assertEquals(code, 1, stderr);
  assertEquals(stdout, "");
  assert.match(stderr, /^cannot listen on 127\.0\.0\.1:0: .*--allow-ffi.*\n$/);
});

Deno.test("demo: --help prints the usage and exits 0 without running", async () => {
  const { code, stdout } = await runExample("demo.ts", NO_FFI, ["--help"]);
  assertEquals(code, 0);
  assert.match(stdout, /^usage: deno task demo .*--seconds/);
});

Deno.test("demo: an unknown argument is an error (exit 2), not silently ignored", async () => {
  const { code, stdout, stderr } = await runExample("demo.ts", NO_FFI, ["--second", "1"]);
  assertEquals(code, 2, stdout);
  assert.match(stderr, /--second/);
});

Deno.test("parseDemoArgs: defaults, both flag forms, bounds", () => {
  assertEquals(parseDemoArgs([]), { seconds: 2.5, connections: 50, pipeline: 16 });
  assertEquals(parseDemoArgs(["--seconds=1", "--connections", "8", "--pipeline=4"]), {
    seconds: 1,
    connections: 8,
    pipeline: 4,
  });
  assert.throws(() => parseDemoArgs(["--seconds", "0.1"]), RangeError);
  assert.throws(() => parseDemoArgs(["--seconds=abc"]), RangeError);
  assert.throws(() => parseDemoArgs(["--connections", "1.5"]), RangeError);
  assert.throws(() => parseDemoArgs(["--pipeline"]), TypeError);
  assert.throws(() => parseDemoArgs(["--bogus"]), TypeError);
  assert.throws(() => parseDemoArgs(["3"]), TypeError);
});

Deno.test("progress line: piped output is plain lines, at most one a second", () => {
  const written: string[] = [];
  const progress = progressPrinter("loop server", {
    tty: false,
    columns: 80,
    write: (text) => written.push(text),
  });
  for (let ms = 250; ms <= 2500; ms += 250) progress.update({ elapsedMs: ms, requests: ms * 100 });
  progress.done();
  assertEquals(written.length, 2);
  for (const line of written) {
    assert.match(line, /^ {2}loop server: \d\.\d s, [\d,]+ requests, [\d,]+ req\/s\n$/);
    assert.ok(!line.includes("\r") && !line.includes("\x1b"), JSON.stringify(line));
  }
});

Deno.test("progress line: on a terminal it is rewritten in place and never wraps", () => {
  const written: string[] = [];
  const progress = progressPrinter("Deno.listen server, pipeline 16", {
    tty: true,
    columns: 40,
    write: (text) => written.push(text),
  });
  progress.update({ elapsedMs: 1200, requests: 1_790_064 });
  progress.update({ elapsedMs: 2200, requests: 3_284_960 });
  progress.done();
  assertEquals(written.length, 3);
  for (const text of written.slice(0, 2)) {
    assert.ok(text.startsWith("\r") && text.endsWith("\x1b[K"), JSON.stringify(text));
    const visible = text.slice(1, -3);
    assert.ok(visible.length < 40, `fits a 40-column terminal: ${JSON.stringify(visible)}`);
    assert.ok(!/[\r\n]/.test(visible) && !visible.includes("\x1b"), JSON.stringify(visible));
  }
  assertEquals(written[2], "\r\x1b[K");
});

Deno.test("parseServeArgs: defaults, both flag forms, bad values", () => {
  assertEquals(parseServeArgs([]), { host: "127.0.0.1", port: 6380, native: false });
  assertEquals(parseServeArgs(["--port=0", "-h", "127.0.0.2", "--native"]), {
    host: "127.0.0.2",
    port: 0,
    native: true,
  });
  for (const bad of ["abc", "99999", "-1", "1e3", "0x10", ""]) {
    assert.throws(() => parseServeArgs([`--port=${bad}`]), RangeError, bad);
  }
  assert.throws(() => parseServeArgs(["--port"]), TypeError);
  assert.throws(() => parseServeArgs(["--bogus"]), TypeError);
  // Everything after the first "=" is the value: nothing is silently dropped.
  assertEquals(parseServeArgs(["--host=127.0.0.1=x"]).host, "127.0.0.1=x");
  assert.throws(() => parseServeArgs(["--native=no"]), TypeError);
});

Deno.test("serve: a bad flag prints the problem and the usage, exit 2", async () => {
  const { code, stdout, stderr } = await runExample("serve.ts", NO_FFI, ["--port", "abc"]);
  assertEquals(code, 2);
  assertEquals(stdout, "");
  assert.match(stderr, /^Cannot use --port .*current value is abc\nusage: deno task serve /);
});
