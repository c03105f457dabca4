// Without --allow-ffi the module must load and createPoller must say what is missing. The probe
// runs in a child Deno. Note `deno eval` always runs with every permission (even with
// --deny-ffi), so the child is `deno run` with its script on stdin.
import assert from "node:assert/strict";

const pollerModule = new URL("../../poller/mod.ts", import.meta.url).href;

const PROBE = `
import { createPoller, FakePoller, PollerUnavailableError } from ${JSON.stringify(pollerModule)};
const result = { imported: true, ffi: Deno.permissions.querySync({ name: "ffi" }).state };
try {
  createPoller();
  result.threw = false;
} catch (error) {
  result.threw = true;
  result.isUnavailable = error instanceof PollerUnavailableError;
  result.reason = error.reason;
  result.message = error.message;
}
// The pure-TypeScript parts still work.
const fake = new FakePoller();
fake.register(3, 1, 1);
await fake.close();
result.fakeWorks = true;
console.log(JSON.stringify(result));
`;

async function probe(flags: string[]): Promise<Record<string, unknown>> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-config", ...flags, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(PROBE));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 0, `child failed: ${err}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

for (
  const [label, flags, state] of [
    ["without --allow-ffi", [], "prompt"],
    ["with --deny-ffi", ["--deny-ffi"], "denied"],
  ] as const
) {
  Deno.test(`poller/mod.ts loads ${label}; createPoller throws a permission error`, async () => {
    const result = await probe([...flags]);
    assert.equal(result.imported, true);
    assert.equal(result.ffi, state);
    assert.equal(result.threw, true);
    assert.equal(result.isUnavailable, true);
    assert.equal(result.reason, "permission");
    assert.match(String(result.message), /--allow-ffi/);
    assert.equal(result.fakeWorks, true);
  });
}

Deno.test("createPoller rejects an unknown backend name", async () => {
  const { createPoller } = await import("../../poller/mod.ts");
  assert.throws(
    () => createPoller({ backend: "select" as unknown as "poll" }),
    TypeError,
  );
});

Deno.test("createPoller refuses options that are not an object (a backend name alone, null)", async () => {
  const { createPoller } = await import("../../poller/mod.ts");
  for (const options of ["epoll", null, 1]) {
    assert.throws(
      () => createPoller(options as never),
      (error: unknown) =>
        error instanceof TypeError && /options must be an object/.test(error.message),
    );
  }
});

Deno.test("createPoller refuses a backend this platform cannot run", async () => {
  const { createPoller, PollerUnavailableError } = await import("../../poller/mod.ts");
  const foreign = Deno.build.os === "windows" ? "epoll" : "iocp";
  assert.throws(() => createPoller({ backend: foreign }), (error: unknown) => {
    assert.ok(error instanceof PollerUnavailableError);
    assert.equal(error.reason, "platform");
    assert.match(error.message, new RegExp(`${Deno.build.os}/${Deno.build.arch}`));
    return true;
  });
});
