import assert from "node:assert/strict";

Deno.test("without --allow-ffi the module loads, tasks and timers work, and watch() says what is missing", async () => {
  const modUrl = new URL("../../mod.ts", import.meta.url).href;
  const script = `
    import { Loop } from ${JSON.stringify(modUrl)};
    const loop = new Loop();
    const log = [];
    loop.submit(() => log.push("task"));
    loop.setTimeout(() => log.push("timer"), 3);
    await loop.run();
    let failure;
    try {
      loop.watch(0, { readable: true }, () => {});
    } catch (error) {
      failure = { name: error.name, reason: error.reason, message: error.message };
    }
    await loop.close();
    console.log(JSON.stringify({ log, failure }));
  `;
  // `deno eval` grants every permission; `deno run -` reads the script from stdin and grants none.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-read", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const output = await child.output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  const result = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.deepEqual(result.log, ["task", "timer"]);
  assert.equal(result.failure.name, "PollerUnavailableError");
  assert.equal(result.failure.reason, "permission");
  assert.match(result.failure.message, /--allow-ffi/);
});
