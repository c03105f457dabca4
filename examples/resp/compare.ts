/**
 * Alternating rounds of the same load against the loop server and the `Deno.listen` server (and,
 * with `--external-port`, any other RESP server such as a real `redis-server`), reporting the
 * median of each: on a shared or noisy machine one run proves little, alternation and medians do.
 *
 * ```sh
 * deno run --allow-ffi --allow-net --allow-read --allow-env --allow-sys examples/resp/compare.ts \
 *   --rounds 5 --pipeline 1 --connections 50 --seconds 2 [--external-port 6379]
 * ```
 *
 * @module
 */
import { Loop } from "../../loop/mod.ts";
import { type LoadResult, runLoadInWorker } from "./load.ts";
import { LoopServer } from "./server_loop.ts";
import { NativeServer } from "./server_native.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(Deno.args[i + 1]);
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `Cannot use --${name} as it must be a number >= 0: current value is ${Deno.args[i + 1]}`,
    );
  }
  return value;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function main(): Promise<void> {
  const rounds = Math.min(20, Math.max(1, Math.round(flag("rounds", 5))));
  const externalPort = flag("external-port", 0);
  const load = {
    connections: flag("connections", 50),
    pipeline: flag("pipeline", 1),
    durationMs: Math.round(flag("seconds", 2) * 1000),
  };
  const results = new Map<string, LoadResult[]>([["eventloop", []], ["Deno.listen", []]]);
  if (externalPort > 0) results.set(`external :${externalPort}`, []);
  console.log(
    `${rounds} rounds, ${load.connections} connections x pipeline ${load.pipeline}, ${load.durationMs} ms each`,
  );
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    {
      const loop = new Loop({ label: "compare" });
      const server = new LoopServer(loop, { port: 0 });
      const running = loop.run();
      try {
        if (round === 1) await runLoadInWorker({ ...load, port: server.port, durationMs: 400 }); // warm-up
        const r = await runLoadInWorker({ ...load, port: server.port });
        results.get("eventloop")!.push(r);
        line.push(`eventloop ${Math.round(r.requestsPerSec)}`);
      } finally {
        await server.stop();
        await running;
        await loop.close();
      }
    }
    {
      const server = new NativeServer({ port: 0 });
      try {
        if (round === 1) await runLoadInWorker({ ...load, port: server.port, durationMs: 400 });
        const r = await runLoadInWorker({ ...load, port: server.port });
        results.get("Deno.listen")!.push(r);
        line.push(`Deno.listen ${Math.round(r.requestsPerSec)}`);
      } finally {
        await server.stop();
      }
    }
    if (externalPort > 0) {
      const r = await runLoadInWorker({ ...load, port: externalPort });
      results.get(`external :${externalPort}`)!.push(r);
      line.push(`external ${Math.round(r.requestsPerSec)}`);
    }
    console.log(`  round ${round}: ${line.join(", ")} req/s`);
  }
  const native = median(results.get("Deno.listen")!.map((r) => r.requestsPerSec));
  console.log("\nmedian of rounds          req/s    p50 µs    p99 µs   vs Deno.listen");
  for (const [name, list] of results) {
    const rps = median(list.map((r) => r.requestsPerSec));
    const p50 = median(list.map((r) => r.latencyUs.p50));
    const p99 = median(list.map((r) => r.latencyUs.p99));
    console.log(
      `  ${name.padEnd(18)} ${Math.round(rps).toLocaleString("en-US").padStart(10)} ${
        String(p50).padStart(9)
      } ${String(p99).padStart(9)}   ${(rps / native).toFixed(2)}x`,
    );
  }
}

if (import.meta.main) await main();
