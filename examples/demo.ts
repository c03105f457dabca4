/**
 * `deno task demo`: the module on real sockets, side by side with what Deno offers natively.
 *
 * 1. starts a RESP2 (Redis protocol) key-value server on the loop: FFI sockets, one `loop.watch`
 *    per connection, on 127.0.0.1 and a free port;
 * 2. drives it with a load generator (a worker thread: concurrent connections, pipelined
 *    PING/SET/GET) and measures requests/s and latency;
 * 3. does the same against the same server written with `Deno.listen`;
 * 4. times 1 ms timers on the loop and with Deno's `setTimeout`;
 * 5. prints the loop's metrics, closes everything and exits 0.
 *
 * Options: `--seconds N` per load run (default 2.5), `--connections N` (50), `--pipeline N` (16),
 * also as `--name=N`; `--help`.
 *
 * @module
 */
import { formatMetrics, Loop } from "../loop/mod.ts";
import {
  type LoadOptions,
  type LoadProgress,
  type LoadResult,
  runLoadInWorker,
} from "./resp/load.ts";
import { SocketError } from "./net/sockets.ts";
import { LoopServer } from "./resp/server_loop.ts";
import { NativeServer } from "./resp/server_native.ts";

const HOST = "127.0.0.1";
const TIMER_SAMPLES = 500;
const encoder = new TextEncoder();

const USAGE = [
  "usage: deno task demo [--seconds 2.5] [--connections 50] [--pipeline 16]",
  "  per load run: --seconds in [0.5, 10], --connections in [1, 500], --pipeline in [2, 256]",
].join("\n");

/** Parsed command line of the demo. */
export interface DemoArgs {
  /** Length of each load run, in seconds. */
  seconds: number;
  /** Concurrent client connections. */
  connections: number;
  /** Commands in flight per connection in the pipelined runs. */
  pipeline: number;
}

const BOUNDS: Record<keyof DemoArgs, { min: number; max: number; integer: boolean }> = {
  seconds: { min: 0.5, max: 10, integer: false },
  connections: { min: 1, max: 500, integer: true },
  pipeline: { min: 2, max: 256, integer: true },
};

/**
 * Parses `--seconds N`, `--connections N`, `--pipeline N` (also `--name=N`).
 *
 * @param args The command-line arguments (`--help` is handled before).
 * @returns The settings, defaults filled in.
 * @throws {TypeError} For an unknown argument or a flag without a value.
 * @throws {RangeError} For a value that is not a number in the flag's range.
 */
export function parseDemoArgs(args: readonly string[]): DemoArgs {
  const result: DemoArgs = { seconds: 2.5, connections: 50, pipeline: 16 };
  for (let i = 0; i < args.length; i++) {
    const eq = args[i].indexOf("=");
    const flag = eq < 0 ? args[i] : args[i].slice(0, eq);
    const name = flag.slice(2) as keyof DemoArgs;
    if (!flag.startsWith("--") || !Object.hasOwn(BOUNDS, name)) {
      throw new TypeError(`Cannot parse the argument as an option: current value is ${args[i]}`);
    }
    const text = eq < 0 ? args[++i] : args[i].slice(eq + 1);
    if (text === undefined) throw new TypeError(`Cannot parse ${flag} as it has no value`);
    const { min, max, integer } = BOUNDS[name];
    const value = text.trim() === "" ? NaN : Number(text);
    if (!(value >= min && value <= max) || (integer && !Number.isInteger(value))) {
      throw new RangeError(
        `Cannot use ${flag} as it must be ${
          integer ? "an integer" : "a number"
        } in [${min}, ${max}]: current value is ${text}`,
      );
    }
    result[name] = value;
  }
  return result;
}

const group = (n: number): string => Math.round(n).toLocaleString("en-US");
const us = (n: number): string => `${group(n)} µs`;

/** Where {@linkcode progressPrinter} writes. */
export interface ProgressOutput {
  /** Whether the output is a terminal (the line is then rewritten in place). */
  tty: boolean;
  /** The terminal's width (default: asked for at each update); the line is cut to fit. */
  columns?: number;
  /** Writes text as is. */
  write(text: string): void;
}

function writeStdout(text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error; // `| head`: as console.log does
  }
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}

/**
 * A live progress line: rewritten in place on a terminal (cut to its width, so that it never
 * wraps), one plain line a second otherwise (no control codes when piped).
 *
 * @param label What is being measured.
 * @param out Where to write (default: stdout).
 * @returns `update` for each progress report, `done` once the run ends.
 */
export function progressPrinter(
  label: string,
  out: ProgressOutput = { tty: Deno.stdout.isTerminal(), write: writeStdout },
): { update(p: LoadProgress): void; done(): void } {
  let lastPrintedMs = 0;
  return {
    update(p) {
      const rate = p.elapsedMs > 0 ? p.requests / (p.elapsedMs / 1000) : 0;
      const line = `  ${label}: ${(p.elapsedMs / 1000).toFixed(1)} s, ${
        group(p.requests)
      } requests, ${group(rate)} req/s`;
      if (out.tty) {
        const width = Math.max(1, (out.columns ?? terminalColumns()) - 1);
        out.write(`\r${line.slice(0, width)}\x1b[K`);
      } else if (p.elapsedMs - lastPrintedMs >= 1000) {
        lastPrintedMs = p.elapsedMs;
        out.write(`${line}\n`);
      }
    },
    done() {
      if (out.tty) out.write("\r\x1b[K");
    },
  };
}

async function loadAgainst(
  label: string,
  port: number,
  load: Omit<LoadOptions, "port">,
): Promise<LoadResult> {
  const progress = progressPrinter(label);
  try {
    return await runLoadInWorker({ ...load, host: HOST, port }, progress.update);
  } finally {
    progress.done();
  }
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Lateness (µs) of `count` sequential 1 ms timers. */
async function timerLateness(
  schedule: (callback: () => void) => void,
  count: number,
): Promise<Float64Array> {
  const samples = new Float64Array(count);
  await new Promise<void>((resolve) => {
    let i = 0;
    let startMs = performance.now();
    const tick = () => {
      samples[i++] = (performance.now() - startMs - 1) * 1000;
      if (i === count) return resolve();
      startMs = performance.now();
      schedule(tick);
    };
    schedule(tick);
  });
  return samples.sort();
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("   ")
      .trimEnd()
  ).map((line) => `  ${line}`).join("\n");
}

interface Shape {
  label: string;
  pipeline: number;
}

/** Runs every load shape against a server, in order. */
async function measure(
  label: string,
  port: number,
  shapes: readonly Shape[],
  base: { connections: number; durationMs: number },
): Promise<LoadResult[]> {
  // A short unreported run first, so that neither server is measured while V8 still compiles the
  // parser and engine they share.
  await runLoadInWorker({
    host: HOST,
    port,
    connections: base.connections,
    pipeline: 4,
    durationMs: 400,
  });
  const results: LoadResult[] = [];
  for (const shape of shapes) {
    const result = await loadAgainst(`${label}, ${shape.label}`, port, {
      ...base,
      pipeline: shape.pipeline,
    });
    console.log(
      `    ${shape.label.padEnd(16)} ${group(result.requestsPerSec).padStart(9)} req/s, p50 ${
        us(result.latencyUs.p50)
      }, p99 ${us(result.latencyUs.p99)}`,
    );
    results.push(result);
  }
  return results;
}

async function main(): Promise<void> {
  if (Deno.args.includes("--help")) {
    console.log(USAGE);
    return;
  }
  let parsed: DemoArgs;
  try {
    parsed = parseDemoArgs(Deno.args);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n${USAGE}`);
    Deno.exit(2);
  }
  const { seconds, pipeline } = parsed;
  const base = { connections: parsed.connections, durationMs: Math.round(seconds * 1000) };
  const shapes: Shape[] = [
    { label: "no pipelining", pipeline: 1 },
    { label: `pipeline ${pipeline}`, pipeline },
  ];
  const cpus = navigator.hardwareConcurrency;
  console.log(
    `eventloop demo: Deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}, ${cpus} CPU${
      cpus === 1 ? "" : "s"
    }`,
  );
  console.log(
    `load: ${base.connections} connections, PING/SET/GET, ${seconds} s per run, from a worker thread, loopback`,
  );

  const loop = new Loop({ label: "demo", metrics: true, busyPollMs: 1 });

  // 1-2. The server on the loop.
  const loopServer = new LoopServer(loop, { host: HOST, port: 0 });
  console.log(
    `\n[1] RESP2 server on the loop (FFI sockets + loop.watch) on ${HOST}:${loopServer.port}`,
  );
  const running = loop.run();
  let loopResults: LoadResult[];
  try {
    loopResults = await measure("loop server", loopServer.port, shapes, base);
  } finally {
    await loopServer.stop();
    await running;
  }

  // 3. The same server on Deno.listen.
  const nativeServer = new NativeServer({ host: HOST, port: 0 });
  console.log(
    `[2] the same server on Deno.listen (conn.read/conn.write) on ${HOST}:${nativeServer.port}`,
  );
  let nativeResults: LoadResult[];
  try {
    nativeResults = await measure("Deno.listen server", nativeServer.port, shapes, base);
  } finally {
    await nativeServer.stop();
  }

  // 4. 1 ms timers.
  console.log(
    `[3] ${TIMER_SAMPLES} sequential 1 ms timers: loop.setTimeout, then Deno's setTimeout`,
  );
  const loopTimersDone = timerLateness((cb) => loop.setTimeout(cb, 1), TIMER_SAMPLES);
  await loop.run();
  const loopLateness = await loopTimersDone;
  const denoLateness = await timerLateness((cb) => setTimeout(cb, 1), TIMER_SAMPLES);

  const ratio = (a: number, b: number) =>
    b <= 0 ? "-" : a / b >= 100 ? "> 100x" : `${(a / b).toFixed(2)}x`;
  const all = [...loopResults, ...nativeResults];
  const requests = all.reduce((n, r) => n + r.requests, 0);
  const errors = all.reduce((n, r) => n + r.errors, 0);
  console.log(`\nResults (${group(requests)} requests, ${errors} error replies)`);
  const rows: string[][] = [[
    `RESP2 server, ${base.connections} connections`,
    "eventloop",
    "Deno.listen",
    "ratio",
  ]];
  shapes.forEach((shape, i) => {
    const l = loopResults[i];
    const n = nativeResults[i];
    rows.push(
      [
        `${shape.label}: throughput`,
        `${group(l.requestsPerSec)} req/s`,
        `${group(n.requestsPerSec)} req/s`,
        ratio(l.requestsPerSec, n.requestsPerSec),
      ],
      [
        "  latency p50",
        us(l.latencyUs.p50),
        us(n.latencyUs.p50),
        ratio(n.latencyUs.p50, l.latencyUs.p50),
      ],
      [
        "  latency p99",
        us(l.latencyUs.p99),
        us(n.latencyUs.p99),
        ratio(n.latencyUs.p99, l.latencyUs.p99),
      ],
      ["  latency max", us(l.latencyUs.max), us(n.latencyUs.max), ""],
    );
  });
  console.log(table(rows));
  console.log("  (ratios > 1x favour the loop; latency is from a batch's send to each reply)");
  console.log("");
  console.log(table([
    ["1 ms timer lateness", "loop.setTimeout", "setTimeout", "ratio"],
    [
      "p50",
      us(percentile(loopLateness, 0.5)),
      us(percentile(denoLateness, 0.5)),
      ratio(percentile(denoLateness, 0.5), percentile(loopLateness, 0.5)),
    ],
    [
      "p99",
      us(percentile(loopLateness, 0.99)),
      us(percentile(denoLateness, 0.99)),
      ratio(percentile(denoLateness, 0.99), percentile(loopLateness, 0.99)),
    ],
    ["max", us(loopLateness[TIMER_SAMPLES - 1]), us(denoLateness[TIMER_SAMPLES - 1]), ""],
  ]));
  console.log("  (ratios > 1x favour the loop; lateness is how long after its deadline each ran)");

  // 5. Metrics.
  console.log(
    `\nLoop metrics (the demo's loop: server, then timers)\n${formatMetrics(loop.metrics())}`,
  );

  const report = await loop.close();
  const fds = loopServer.stats();
  console.log(
    `\nreleased: ${fds.fdsClosed} of ${fds.fdsOpened} server fds closed, Deno.listen server stopped, loop closed (${report.disposed.watches} watches, ${report.disposed.timers} timers left)`,
  );
  console.log(
    `reproduce with real clients: deno task serve --port 6380, then redis-benchmark -p 6380 -t ping,set,get,incr,mset -q`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    // What a newcomer can fix (a missing permission, a socket the system refuses): one line.
    if (!(error instanceof Deno.errors.NotCapable || error instanceof SocketError)) throw error;
    console.error(`\neventloop demo: ${error.message}`);
    Deno.exit(1);
  }
}
