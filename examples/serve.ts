/**
 * `deno task serve [--port N] [--host H] [--native]`: the RESP2 key-value server on the event
 * loop, for real Redis clients (`redis-cli`, `redis-benchmark`). SIGINT/SIGTERM stop it
 * gracefully: stop accepting, flush replies already computed, close every fd, exit 0.
 *
 * `--native` serves the same commands with `Deno.listen` instead (the baseline for benchmarks).
 *
 * ```sh
 * deno task serve --port 6380
 * redis-cli -p 6380 set greeting hello ex 60
 * redis-benchmark -p 6380 -t ping,set,get,incr,mset -q
 * ```
 *
 * @module
 */
import { Loop } from "../loop/mod.ts";
import { LoopServer } from "./resp/server_loop.ts";
import { NativeServer } from "./resp/server_native.ts";

const USAGE = "usage: deno task serve [--port 6380] [--host 127.0.0.1] [--native]";

/** Parsed command line. */
export interface ServeArgs {
  /** The IPv4 address to bind. */
  host: string;
  /** The port (0: a free one). */
  port: number;
  /** Serve with `Deno.listen` instead of the loop. */
  native: boolean;
}

/**
 * Parses `--port N`, `--host H` (also `--port=N`), `--native`.
 *
 * @param args The command-line arguments.
 * @returns The settings, defaults filled in.
 */
export function parseServeArgs(args: readonly string[]): ServeArgs {
  const result: ServeArgs = { host: "127.0.0.1", port: 6380, native: false };
  for (let i = 0; i < args.length; i++) {
    const eq = args[i].indexOf("=");
    const flag = eq < 0 ? args[i] : args[i].slice(0, eq);
    const inline = eq < 0 ? undefined : args[i].slice(eq + 1);
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new TypeError(`Cannot parse ${flag} as it has no value`);
      return v;
    };
    if (flag === "--port" || flag === "-p") {
      const text = value();
      const port = Number(text);
      if (!/^\d+$/.test(text) || port > 65535) {
        throw new RangeError(
          `Cannot use --port as it must be an integer in [0, 65535]: current value is ${text}`,
        );
      }
      result.port = port;
    } else if (flag === "--host" || flag === "-h") result.host = value();
    else if (flag === "--native" && inline === undefined) result.native = true;
    else if (flag === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else {throw new TypeError(
        `Cannot parse the argument as an option: current value is ${args[i]}`,
      );}
  }
  return result;
}

async function main(): Promise<void> {
  let args: ServeArgs;
  try {
    args = parseServeArgs(Deno.args);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n${USAGE}`);
    Deno.exit(2);
  }
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let stop: (signal: Deno.Signal) => void = () => {};
  const handlers = signals.map((signal) => {
    const handler = () => stop(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const removeSignals = () => handlers.forEach(([s, h]) => Deno.removeSignalListener(s, h));

  const cannotListen = (error: unknown) => {
    removeSignals();
    console.error(
      `cannot listen on ${args.host}:${args.port}: ${
        error instanceof Error ? error.message : error
      }`,
    );
  };

  if (args.native) {
    let server: NativeServer;
    try {
      server = new NativeServer({ host: args.host, port: args.port });
    } catch (error) {
      cannotListen(error);
      Deno.exit(1);
    }
    console.log(`resp server (Deno.listen) on ${server.host}:${server.port} — Ctrl-C to stop`);
    const done = new Promise<void>((resolve) => {
      stop = (signal) => {
        console.log(`\n${signal}: stopping (flushing replies, closing every connection)`);
        server.stop().then(resolve);
      };
    });
    await done;
    removeSignals();
    console.log(
      `stopped: ${server.engine.stats.connectionsTotal} connections, ${server.engine.stats.commands} commands`,
    );
    return;
  }

  const loop = new Loop({ label: "resp-server", busyPollMs: 1 });
  let server: LoopServer;
  try {
    server = new LoopServer(loop, { host: args.host, port: args.port });
  } catch (error) {
    cannotListen(error);
    await loop.close();
    Deno.exit(1);
  }
  console.log(
    `resp server (eventloop: FFI sockets + loop.watch) on ${server.host}:${server.port} — Ctrl-C to stop`,
  );
  stop = (signal) => {
    console.log(`\n${signal}: stopping (flushing replies, closing every connection)`);
    void server.stop();
  };
  await loop.run(); // returns once the server has stopped and closed its last fd
  removeSignals();
  await loop.close();
  const s = server.stats();
  console.log(
    `stopped: ${s.connectionsTotal} connections, ${s.commands} commands, ${s.fdsClosed} fds closed`,
  );
}

if (import.meta.main) await main();
