/**
 * The same RESP2 server written the way a Deno user would write it today: `Deno.listen`, one
 * async task per connection, `await conn.read()` / `await conn.write()`. It shares the parser,
 * engine and keyspace with the loop server, so a benchmark of the two compares only the I/O layer.
 *
 * @example
 * ```ts ignore
 * import { NativeServer } from "./server_native.ts";
 * const server = new NativeServer({ port: 0 });
 * console.log(`listening on ${server.host}:${server.port}`);
 * await server.stop();
 * ```
 *
 * @module
 */
import { Engine, type Session } from "./commands.ts";
import { nativeExpiryTimers } from "./keyspace.ts";
import { OutputBuffer } from "./output.ts";
import { RequestParser, type RequestParserOptions } from "./parser.ts";

/** Options for {@linkcode NativeServer}. */
export interface NativeServerOptions {
  /** Address to bind (default `127.0.0.1`). */
  host?: string;
  /** Port (default 0: a free one). */
  port?: number;
  /** The command engine (default: a new one with expiry on Deno's timers). */
  engine?: Engine;
  /** Unsent reply bytes after which execution waits for the write (1 MiB). */
  outputSoftLimitBytes?: number;
  /** A single reply beyond this closes the client (256 MiB). */
  outputHardLimitBytes?: number;
  /** Per-connection read buffer (64 KiB). */
  readBufferBytes?: number;
  /** Parser limits. */
  parser?: RequestParserOptions;
}

interface Client {
  conn: Deno.TcpConn;
  writing: boolean;
  closed: boolean;
}

/** A RESP2 server on `Deno.listen`. */
export class NativeServer {
  /** The bound address. */
  readonly host: string;
  /** The bound port. */
  readonly port: number;
  /** The command engine. */
  readonly engine: Engine;
  #listener: Deno.TcpListener;
  #clients = new Set<Client>();
  #tasks = new Set<Promise<void>>();
  #acceptLoop: Promise<void>;
  #stopping: Promise<void> | null = null;
  #ownsEngine: boolean;
  #softLimit: number;
  #hardLimit: number;
  #readBufferBytes: number;
  #parserOptions: RequestParserOptions;

  /**
   * Listens and starts accepting.
   *
   * @param options Address and limits.
   */
  constructor(options: NativeServerOptions = {}) {
    this.#ownsEngine = options.engine === undefined;
    this.engine = options.engine ??
      new Engine({
        timers: nativeExpiryTimers(),
        ioLayer: "deno-listen (Deno.listen + conn.read/write)",
      });
    this.#softLimit = options.outputSoftLimitBytes ?? 1024 * 1024;
    this.#hardLimit = options.outputHardLimitBytes ?? 256 * 1024 * 1024;
    this.#readBufferBytes = options.readBufferBytes ?? 64 * 1024;
    this.#parserOptions = options.parser ?? {};
    this.#listener = Deno.listen({
      hostname: options.host ?? "127.0.0.1",
      port: options.port ?? 0,
    });
    this.host = this.#listener.addr.hostname;
    this.port = this.#listener.addr.port;
    this.#acceptLoop = this.#accept();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        const client: Client = { conn, writing: false, closed: false };
        this.#clients.add(client);
        const task = this.#serve(client).finally(() => {
          this.#tasks.delete(task);
          this.#clients.delete(client);
        });
        this.#tasks.add(task);
      }
    } catch {
      // The listener was closed by stop().
    }
  }

  async #serve(client: Client): Promise<void> {
    const { conn } = client;
    const session: Session = this.engine.openSession();
    const parser = new RequestParser(this.#parserOptions);
    const out = new OutputBuffer({ limitBytes: this.#hardLimit });
    const buffer = new Uint8Array(this.#readBufferBytes);
    try {
      conn.setNoDelay(true);
      let closing = false;
      while (!closing && this.#stopping === null) {
        const n = await conn.read(buffer);
        if (n === null) break;
        if (!parser.feed(buffer, n)) {
          out.error(`ERR Protocol error: ${parser.error}`);
          closing = true;
        }
        while (!closing) {
          const argc = parser.next();
          if (argc === 0) break;
          if (argc < 0) {
            out.error(`ERR Protocol error: ${parser.error}`);
            closing = true;
            break;
          }
          this.engine.execute(parser.command, out, session);
          if (session.closeAfterReplies) closing = true;
          if (out.pendingBytes > this.#hardLimit || out.exceeded) {
            throw new Error("output limit exceeded");
          }
          if (out.pendingBytes >= this.#softLimit) {
            parser.retain(); // the write awaits: the read buffer must not be needed meanwhile
            await this.#write(client, out);
          }
        }
        parser.retain();
        await this.#write(client, out);
      }
    } catch {
      // Reset by the peer, closed by stop(), or over the limit: the connection ends.
    } finally {
      this.engine.closeSession(session);
      if (!client.closed) {
        client.closed = true;
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    }
  }

  async #write(client: Client, out: OutputBuffer): Promise<void> {
    client.writing = true;
    try {
      while (out.pendingBytes > 0) {
        const n = await client.conn.write(out.bytes.subarray(out.start, out.end));
        out.consume(n);
      }
    } finally {
      client.writing = false;
    }
  }

  /**
   * Graceful stop: stops accepting; idle clients are closed at once, clients being written to get
   * up to `flushTimeoutMs` to finish. Resolves when every connection is closed.
   */
  stop(options: { flushTimeoutMs?: number } = {}): Promise<void> {
    if (this.#stopping !== null) return this.#stopping;
    const flushTimeoutMs = options.flushTimeoutMs ?? 2000;
    this.#stopping = (async () => {
      this.#listener.close();
      await this.#acceptLoop;
      const closeIdle = () => {
        for (const client of this.#clients) {
          if (!client.writing && !client.closed) {
            client.closed = true;
            client.conn.close(); // a pending read rejects and its task ends
          }
        }
      };
      closeIdle();
      const deadline = Date.now() + flushTimeoutMs;
      while (this.#tasks.size > 0 && Date.now() < deadline) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          Promise.all(this.#tasks),
          new Promise((resolve) => timer = setTimeout(resolve, 10)),
        ]);
        clearTimeout(timer);
        closeIdle();
      }
      for (const client of this.#clients) {
        if (!client.closed) {
          client.closed = true;
          client.conn.close();
        }
      }
      await Promise.all(this.#tasks);
      if (this.#ownsEngine) this.engine.close();
    })();
    return this.#stopping;
  }
}
