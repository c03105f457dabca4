/**
 * A RESP2 load generator: `connections` clients, each sending `pipeline` commands (a PING/SET/GET
 * mix) at a time and waiting for all their replies before sending the next batch, for
 * `durationMs`. Measures requests/s and per-request latency (from the batch's send to the reply's
 * arrival) p50/p99/max.
 *
 * It runs on its own eventloop `Loop` with FFI sockets, the cheapest client I/O available, and is
 * meant to run in a worker ({@linkcode runLoadInWorker}) so that it does not share a thread with
 * the server it measures. Bounded: at most 1,000 connections, a pipeline of 1,024, 60 s, and
 * loopback addresses only.
 *
 * CLI: `deno run --allow-ffi --allow-read examples/resp/load.ts --port 6380 [--connections 50]
 * [--pipeline 16] [--seconds 3]`.
 *
 * @example
 * ```ts ignore
 * import { runLoadInWorker } from "./load.ts";
 * const result = await runLoadInWorker({ port: 6380, durationMs: 2000 });
 * console.log(`${result.requestsPerSec.toFixed(0)} req/s, p99 ${result.latencyUs.p99} µs`);
 * ```
 *
 * @module
 */
import { Loop, type Watch, type WatchEvent, type WatchInterest } from "../../loop/mod.ts";
import { openNetLib } from "../net/sockets.ts";
import { LatencyHistogram } from "./latency.ts";
import { type ScanCounters, scanReply } from "./reply.ts";

/** The commands the generator can mix. */
export type LoadCommand = "ping" | "set" | "get";

/** Options for {@linkcode runLoad}. */
export interface LoadOptions {
  /** Loopback address of the server (default `127.0.0.1`). */
  host?: string;
  /** The server's port. */
  port: number;
  /** Concurrent connections (default 50, at most 1,000). */
  connections?: number;
  /** Commands in flight per connection (default 16, at most 1,024). */
  pipeline?: number;
  /** How long to send for, in ms (default 3000, at most 60,000). */
  durationMs?: number;
  /** The command mix, cycled through (default PING, SET, GET). */
  mix?: readonly LoadCommand[];
  /** SET value size in bytes (default 3, as redis-benchmark). */
  valueBytes?: number;
  /** How many distinct keys (default 10,000). */
  keys?: number;
  /** Progress callback period, in ms (default 250). */
  progressIntervalMs?: number;
}

/** Progress of a running load. */
export interface LoadProgress {
  /** Time since the first request, in ms. */
  elapsedMs: number;
  /** Replies received so far. */
  requests: number;
}

/** What a load run measured. */
export interface LoadResult {
  /** Replies received. */
  requests: number;
  /** Error replies among them (a correct server gives none for this mix). */
  errors: number;
  /** From the first request to the last reply, in ms. */
  elapsedMs: number;
  /** `requests / elapsed`. */
  requestsPerSec: number;
  /** Latency per request, in µs. */
  latencyUs: { p50: number; p99: number; max: number; mean: number };
  /** The settings used. */
  connections: number;
  /** The settings used. */
  pipeline: number;
}

const READ: WatchInterest = Object.freeze({ readable: true });
const WRITE: WatchInterest = Object.freeze({ writable: true });
const DRAIN_TIMEOUT_MS = 5000;

function bounded(value: number | undefined, fallback: number, max: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new RangeError(
      `Cannot run the load as ${name} must be an integer in [1, ${max}]: current value is ${v}`,
    );
  }
  return v;
}

function checkLoopback(host: string): void {
  if (host !== "localhost" && !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    throw new RangeError(
      `Cannot run the load against a non-loopback host: current value is ${host}`,
    );
  }
}

function buildBatch(
  connIndex: number,
  pipeline: number,
  mix: readonly LoadCommand[],
  value: string,
  keys: number,
): Uint8Array {
  let text = "";
  for (let i = 0; i < pipeline; i++) {
    const key = `key:${(connIndex * 7919 + i * 104729) % keys}`;
    switch (mix[(connIndex + i) % mix.length]) {
      case "ping":
        text += "*1\r\n$4\r\nPING\r\n";
        break;
      case "set":
        text += `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
        break;
      case "get":
        text += `*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`;
        break;
    }
  }
  const bytes = new TextEncoder().encode(text);
  const stable = new Uint8Array(new ArrayBuffer(bytes.length)); // off-heap: its address is fixed
  stable.set(bytes);
  return stable;
}

interface Client {
  fd: number;
  watch: Watch | null;
  batch: Uint8Array;
  batchAddress: number;
  sent: number;
  awaiting: number;
  sentAtMs: number;
  buffer: Uint8Array;
  bufferAddress: number;
  filled: number;
  connected: boolean;
  done: boolean;
}

/**
 * Runs the load on the calling thread (prefer {@linkcode runLoadInWorker} when the server runs
 * in this process).
 *
 * @param options Target and shape of the load.
 * @param onProgress Called every `progressIntervalMs` while it runs.
 * @returns The measurements.
 */
export async function runLoad(
  options: LoadOptions,
  onProgress?: (progress: LoadProgress) => void,
): Promise<LoadResult> {
  const host = options.host ?? "127.0.0.1";
  checkLoopback(host);
  const connections = bounded(options.connections, 50, 1000, "connections");
  const pipeline = bounded(options.pipeline, 16, 1024, "pipeline");
  const durationMs = bounded(options.durationMs, 3000, 60_000, "durationMs");
  const valueBytes = bounded(options.valueBytes, 3, 1024 * 1024, "valueBytes");
  const keys = bounded(options.keys, 10_000, 1_000_000, "keys");
  const mix = options.mix ?? ["ping", "set", "get"];
  if (mix.length === 0) throw new RangeError("Cannot run the load as the command mix is empty");
  const value = "x".repeat(valueBytes);

  const net = openNetLib();
  const loop = new Loop({ label: "resp-load" });
  const histogram = new LatencyHistogram();
  const counters: ScanCounters = { errors: 0 };
  const clients: Client[] = [];
  let requests = 0;
  let sending = true;
  let startMs = 0;
  let lastReplyMs = 0;
  let open = 0;
  let failure: unknown = null;

  const finishClient = (c: Client) => {
    if (c.done) return;
    c.done = true;
    if (c.watch !== null) c.watch.close();
    else net.close(c.fd);
  };
  const fail = (error: unknown) => {
    if (failure === null) failure = error;
    sending = false;
    for (const c of clients) finishClient(c);
  };

  const send = (c: Client): boolean => {
    while (c.sent < c.batch.length) {
      const n = net.sendAt(c.fd, c.batchAddress + c.sent, c.batch.length - c.sent);
      if (n > 0) c.sent += n;
      else if (n === -net.errno.EAGAIN) return false;
      else if (n !== -net.errno.EINTR) {
        fail(new Error(`send failed: ${net.errnoName(-n)}`));
        return false;
      }
    }
    return true;
  };

  const startBatch = (c: Client) => {
    c.sent = 0;
    c.awaiting = pipeline;
    c.sentAtMs = performance.now();
    if (!send(c) && !c.done) c.watch!.modify(WRITE);
  };

  const onEvent = (c: Client, event: WatchEvent) => {
    if (c.done) return;
    if (!c.connected) {
      const error = net.socketError(c.fd);
      if (error !== 0) {
        return fail(
          new Error(`connect to ${host}:${options.port} failed: ${net.errnoName(error)}`),
        );
      }
      c.connected = true;
      try {
        net.setNoDelay(c.fd);
      } catch { /* latency only */ }
      if (startMs === 0) startMs = performance.now();
      c.watch!.modify(READ);
      startBatch(c);
      return;
    }
    if (event.writable && c.sent < c.batch.length) {
      if (send(c)) c.watch!.modify(READ);
      if (c.done) return;
    }
    if (!event.readable && !event.hangup && !event.error) return;
    for (;;) {
      if (c.filled === c.buffer.length) {
        return fail(new Error("a reply is larger than the load generator's buffer"));
      }
      const want = c.buffer.length - c.filled;
      const n = net.recvAt(c.fd, c.bufferAddress + c.filled, want);
      if (n === -net.errno.EAGAIN) return;
      if (n === -net.errno.EINTR) continue;
      if (n <= 0) {
        return fail(
          new Error(`the server closed a connection (${n === 0 ? "EOF" : net.errnoName(-n)})`),
        );
      }
      c.filled += n;
      const now = performance.now();
      let pos = 0;
      let replies = 0;
      for (;;) {
        const next = scanReply(c.buffer, pos, c.filled, counters);
        if (next < 0) break;
        pos = next;
        replies++;
      }
      if (pos > 0) {
        c.buffer.copyWithin(0, pos, c.filled);
        c.filled -= pos;
      }
      if (replies > 0) {
        histogram.record((now - c.sentAtMs) * 1000, replies);
        requests += replies;
        lastReplyMs = now;
        c.awaiting -= replies;
        if (c.awaiting <= 0) {
          if (sending) startBatch(c);
          else return finishClient(c);
        }
      }
      if (n < want) return; // a short read drained the socket (the poller is level-triggered)
    }
  };

  try {
    for (let i = 0; i < connections; i++) {
      const batch = buildBatch(i, pipeline, mix, value, keys);
      const buffer = new Uint8Array(Math.max(64 * 1024, pipeline * (valueBytes + 64)));
      const c: Client = {
        fd: -1,
        watch: null,
        batch,
        batchAddress: net.addressOf(batch),
        sent: 0,
        awaiting: 0,
        sentAtMs: 0,
        buffer,
        bufferAddress: net.addressOf(buffer),
        filled: 0,
        connected: false,
        done: false,
      };
      c.fd = net.connect(host, options.port);
      clients.push(c);
      open++;
      c.watch = loop.watch(c.fd, WRITE, (event) => onEvent(c, event), {
        label: `load client ${i}`,
        onClose: () => {
          net.close(c.fd);
          open--;
        },
      });
    }
    const progress = loop.setInterval(() => {
      onProgress?.({ elapsedMs: startMs === 0 ? 0 : performance.now() - startMs, requests });
    }, options.progressIntervalMs ?? 250);
    progress.unref();
    const stopSending = loop.setTimeout(() => {
      sending = false;
      // Clients stop after their batch in flight; a server that never answers is given up on.
      loop.setTimeout(() => {
        if (open > 0) {
          fail(new Error(`${open} connections got no reply within ${DRAIN_TIMEOUT_MS} ms`));
        }
      }, DRAIN_TIMEOUT_MS).unref();
    }, durationMs);
    stopSending.unref();
    await loop.run(); // until every client has finished (watches are the only ref'd work)
    loop.clearInterval(progress);
    loop.clearTimeout(stopSending);
  } catch (error) {
    fail(error);
  } finally {
    for (const c of clients) finishClient(c);
    await loop.close();
    net.unload();
  }
  if (failure !== null) throw failure;
  const elapsedMs = Math.max(1e-3, lastReplyMs - startMs);
  return {
    requests,
    errors: counters.errors,
    elapsedMs,
    requestsPerSec: requests / (elapsedMs / 1000),
    latencyUs: {
      p50: histogram.percentile(0.5),
      p99: histogram.percentile(0.99),
      max: histogram.max,
      mean: histogram.mean,
    },
    connections,
    pipeline,
  };
}

/** Messages from the load worker. */
export type LoadWorkerMessage =
  | { type: "progress"; progress: LoadProgress }
  | { type: "result"; result: LoadResult }
  | { type: "error"; message: string };

/**
 * Runs {@linkcode runLoad} in a worker thread (same permissions), so the generator and a server
 * in this process do not share a thread.
 *
 * @param options Target and shape of the load.
 * @param onProgress Progress, as reported by the worker.
 * @returns The measurements.
 */
export function runLoadInWorker(
  options: LoadOptions,
  onProgress?: (progress: LoadProgress) => void,
): Promise<LoadResult> {
  const worker = new Worker(new URL("./load_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise<LoadResult>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<LoadWorkerMessage>) => {
      const message = event.data;
      if (message.type === "progress") onProgress?.(message.progress);
      else {
        worker.terminate();
        if (message.type === "result") resolve(message.result);
        else reject(new Error(`load generator failed: ${message.message}`));
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(`load generator crashed: ${event.message}`));
    };
    worker.postMessage(options);
  });
}

function parseCli(args: readonly string[]): LoadOptions {
  const options: LoadOptions = { port: 6380 };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const v = inline ?? args[++i];
    const n = Number(v);
    if (flag === "--host") options.host = v;
    else if (flag === "--port") options.port = n;
    else if (flag === "--connections" || flag === "-c") options.connections = n;
    else if (flag === "--pipeline" || flag === "-P") options.pipeline = n;
    else if (flag === "--seconds") options.durationMs = Math.round(n * 1000);
    else if (flag === "--value-bytes") options.valueBytes = n;
    else if (flag === "--mix") options.mix = v.split(",") as LoadCommand[];
    else throw new TypeError(`Cannot parse the argument as an option: current value is ${args[i]}`);
  }
  return options;
}

if (import.meta.main) {
  const options = parseCli(Deno.args);
  const tty = Deno.stdout.isTerminal();
  const result = await runLoad(options, (p) => {
    const line = `${(p.elapsedMs / 1000).toFixed(1)} s  ${p.requests} requests`;
    if (tty) Deno.stdout.writeSync(new TextEncoder().encode(`\r${line}   `));
  });
  if (tty) console.log();
  console.log(
    `${
      result.requestsPerSec.toFixed(0)
    } req/s  p50 ${result.latencyUs.p50} µs  p99 ${result.latencyUs.p99} µs  max ${result.latencyUs.max} µs  (${result.requests} requests, ${result.connections} connections x pipeline ${result.pipeline}, ${result.errors} errors)`,
  );
}
