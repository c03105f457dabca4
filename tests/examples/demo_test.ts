// `deno task demo` and the newcomer-facing edges of the examples: what the demo and
// `deno task serve` say when --allow-ffi is missing.
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";

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
