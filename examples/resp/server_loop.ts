/**
 * The RESP2 server on the event loop: a listening socket made through FFI, every connection a
 * `loop.watch`, reads and writes as nonblocking syscalls straight from and into reused buffers.
 *
 * Per readiness event a connection reads until the socket is drained, parses and executes every
 * complete command, and writes the replies at once; only when the socket buffer is full does it
 * ask for writability. Backpressure: above `outputSoftLimitBytes` of unsent replies it stops
 * executing and reading (its input waits in the kernel) until the client has read them; a single
 * reply beyond `outputHardLimitBytes` closes the client. Protocol errors get an
 * `-ERR Protocol error: ...` reply, then the connection is closed once the reply is flushed.
 *
 * @example
 * ```ts ignore
 * import { Loop } from "../../loop/mod.ts";
 * import { LoopServer } from "./server_loop.ts";
 * const loop = new Loop();
 * const server = new LoopServer(loop, { port: 0 });
 * console.log(`listening on ${server.host}:${server.port}`);
 * const running = loop.run();
 * await server.stop(); // stop accepting, flush, close every fd
 * await running;
 * ```
 *
 * @module
 */
import type { Loop, Timer, Watch, WatchEvent, WatchInterest } from "../../loop/mod.ts";
import { type NetLib, openNetLib } from "../net/sockets.ts";
import { Engine, type Session } from "./commands.ts";
import { loopExpiryTimers } from "./keyspace.ts";
import { OutputBuffer } from "./output.ts";
import { RequestParser, type RequestParserOptions } from "./parser.ts";

/** Options for {@linkcode LoopServer}. */
export interface LoopServerOptions {
  /** IPv4 address to bind (default `127.0.0.1`). */
  host?: string;
  /** Port (default 0: a free one, see {@linkcode LoopServer.port}). */
  port?: number;
  /** The command engine (default: a new one with expiry on this loop's timers). */
  engine?: Engine;
  /** The socket layer (default: opened here, unloaded on stop). */
  net?: NetLib;
  /** Most simultaneous clients; more get `-ERR max number of clients reached` (default 10,000). */
  maxClients?: number;
  /** Unsent reply bytes above which a client is not read from until it catches up (1 MiB). */
  outputSoftLimitBytes?: number;
  /** Unsent reply bytes above which a client is closed (256 MiB). */
  outputHardLimitBytes?: number;
  /** Size of the shared read buffer (64 KiB). */
  readBufferBytes?: number;
  /** Parser limits. */
  parser?: RequestParserOptions;
}

/** Options for {@linkcode LoopServer.stop}. */
export interface StopOptions {
  /** How long to wait for clients to take replies already computed before closing them (2000). */
  flushTimeoutMs?: number;
}

/** Counters of a {@linkcode LoopServer}. */
export interface LoopServerStats {
  /** Connections open now. */
  connectionsOpen: number;
  /** Connections accepted since start. */
  connectionsTotal: number;
  /** Commands executed. */
  commands: number;
  /** Connections turned away: at `maxClients`, or because the kernel refused to watch them. */
  rejected: number;
  /** Connections closed for a protocol error. */
  protocolErrors: number;
  /** Connections closed for exceeding the hard output limit. */
  outputLimitCloses: number;
  /** Times a client's reading was paused because its replies piled up. */
  readPauses: number;
  /** The most unsent reply bytes any client had. */
  maxPendingOutputBytes: number;
  /** Writes that found the socket buffer full (partial writes; the client reads slower). */
  writesBlocked: number;
  /** File descriptors opened (listening socket included). */
  fdsOpened: number;
  /** File descriptors closed (listening socket included). */
  fdsClosed: number;
}

// Interest objects are reused rather than built per modify().
const READ: WatchInterest = Object.freeze({ readable: true });
const WRITE: WatchInterest = Object.freeze({ writable: true });
const READ_WRITE: WatchInterest = Object.freeze({ readable: true, writable: true });

const MAX_READS_PER_EVENT = 16; // fairness: one busy client cannot starve the others
const MAX_ACCEPTS_PER_EVENT = 128;
const ACCEPT_RETRY_MS = 100;

const TOO_MANY_CLIENTS = new TextEncoder().encode("-ERR max number of clients reached\r\n");
const CANNOT_WATCH = new TextEncoder().encode("-ERR server cannot watch this connection\r\n");

class Connection {
  readonly fd: number;
  readonly parser: RequestParser;
  readonly out: OutputBuffer;
  readonly session: Session;
  watch: Watch | null = null;
  /** The address of out.bytes, valid while outGeneration === out.generation. */
  outAddress = 0;
  outGeneration = -1;
  interest: WatchInterest = READ;
  readPaused = false;
  readClosed = false;
  /** Flush what is computed, then close (QUIT, protocol error, server stop). */
  closing = false;
  closed = false;

  constructor(fd: number, parser: RequestParser, session: Session, outputLimitBytes: number) {
    this.fd = fd;
    this.parser = parser;
    this.session = session;
    this.out = new OutputBuffer({ limitBytes: outputLimitBytes });
  }
}

/** A RESP2 server whose sockets are FFI file descriptors watched by an eventloop `Loop`. */
export class LoopServer {
  /** The bound address. */
  readonly host: string;
  /** The bound port (the free port chosen when 0 was asked for). */
  readonly port: number;
  /** The command engine (shared keyspace). */
  readonly engine: Engine;

  #loop: Loop;
  #net: NetLib;
  #ownsNet: boolean;
  #ownsEngine: boolean;
  #listenFd: number;
  #listenWatch: Watch | null = null;
  #acceptTimer: Timer | null = null;
  #connections = new Set<Connection>();
  #readBuffer: Uint8Array;
  #readAddress: number;
  #maxClients: number;
  #softLimit: number;
  #hardLimit: number;
  #parserOptions: RequestParserOptions;
  #stopping: Promise<void> | null = null;
  #drained: (() => void) | null = null;
  #stats: Omit<LoopServerStats, "connectionsOpen" | "connectionsTotal" | "commands"> = {
    rejected: 0,
    protocolErrors: 0,
    outputLimitCloses: 0,
    readPauses: 0,
    maxPendingOutputBytes: 0,
    writesBlocked: 0,
    fdsOpened: 0,
    fdsClosed: 0,
  };

  /**
   * Binds, listens and starts accepting on `loop` (the loop must be running, or run later, for
   * anything to happen).
   *
   * @param loop The loop to watch the sockets on.
   * @param options Address, limits, engine.
   */
  constructor(loop: Loop, options: LoopServerOptions = {}) {
    this.#loop = loop;
    this.#ownsNet = options.net === undefined;
    this.#net = options.net ?? openNetLib();
    this.#ownsEngine = options.engine === undefined;
    this.engine = options.engine ??
      new Engine({
        timers: loopExpiryTimers(loop),
        ioLayer: "eventloop (FFI sockets + loop.watch)",
      });
    this.#maxClients = options.maxClients ?? 10_000;
    this.#softLimit = options.outputSoftLimitBytes ?? 1024 * 1024;
    this.#hardLimit = options.outputHardLimitBytes ?? 256 * 1024 * 1024;
    this.#parserOptions = options.parser ?? {};
    this.#readBuffer = new Uint8Array(options.readBufferBytes ?? 64 * 1024);
    this.#readAddress = this.#net.addressOf(this.#readBuffer);
    this.host = options.host ?? "127.0.0.1";
    try {
      this.#listenFd = this.#net.listen(this.host, options.port ?? 0);
    } catch (error) {
      if (this.#ownsNet) this.#net.unload();
      throw error;
    }
    this.#stats.fdsOpened++;
    this.port = this.#net.localPort(this.#listenFd);
    this.#watchListener();
  }

  /** Current counters. */
  stats(): LoopServerStats {
    const s = this.engine.stats;
    return {
      connectionsOpen: this.#connections.size,
      connectionsTotal: s.connectionsTotal,
      commands: s.commands,
      ...this.#stats,
    };
  }

  /** Whether {@linkcode LoopServer.stop} has been called. */
  get stopping(): boolean {
    return this.#stopping !== null;
  }

  #watchListener(): void {
    this.#listenWatch = this.#loop.watch(this.#listenFd, READ, () => this.#accept(), {
      label: `resp listener ${this.host}:${this.port}`,
    });
  }

  #accept(): void {
    const net = this.#net;
    for (let i = 0; i < MAX_ACCEPTS_PER_EVENT && this.#listenWatch !== null; i++) {
      const fd = net.accept(this.#listenFd);
      if (fd >= 0) {
        this.#stats.fdsOpened++;
        this.#open(fd);
        continue;
      }
      const errno = -fd;
      if (errno === net.errno.EAGAIN) return;
      if (errno === net.errno.EINTR || errno === net.errno.ECONNABORTED) continue;
      // Out of fds or memory: a level-triggered listener would spin, so pause accepting briefly.
      this.#listenWatch.close();
      this.#listenWatch = null;
      const timer = this.#loop.setTimeout(() => {
        this.#acceptTimer = null;
        if (this.#stopping === null) this.#watchListener();
      }, ACCEPT_RETRY_MS);
      this.#acceptTimer = timer;
      return;
    }
  }

  #open(fd: number): void {
    const net = this.#net;
    if (this.#connections.size >= this.#maxClients) {
      this.#stats.rejected++;
      net.send(fd, TOO_MANY_CLIENTS);
      this.#closeFd(fd);
      return;
    }
    try {
      net.setNoDelay(fd); // replies go out at once, as Redis does
    } catch {
      // not fatal: only latency suffers
    }
    const conn = new Connection(
      fd,
      new RequestParser(this.#parserOptions),
      this.engine.openSession(),
      this.#hardLimit,
    );
    this.#connections.add(conn);
    try {
      conn.watch = this.#loop.watch(fd, READ, (event) => this.#onEvent(conn, event), {
        label: `resp client fd ${fd}`,
        onClose: () => this.#release(conn),
      });
    } catch {
      // The kernel refused to watch it (epoll's watch limit, ENOMEM): turn this client away and
      // go on serving the others, as when there are too many clients.
      this.#connections.delete(conn);
      this.engine.closeSession(conn.session);
      this.#stats.rejected++;
      net.send(fd, CANNOT_WATCH);
      this.#closeFd(fd);
    }
  }

  #closeFd(fd: number): void {
    this.#net.close(fd);
    this.#stats.fdsClosed++;
  }

  #onEvent(conn: Connection, event: WatchEvent): void {
    if (conn.closed) return;
    try {
      if (event.error) return this.#closeNow(conn);
      if (event.writable && conn.out.pendingBytes > 0) this.#flush(conn);
      if ((event.readable || event.hangup) && !conn.closed) this.#read(conn);
      if (!conn.closed) this.#settle(conn);
    } catch {
      // A bug here must cost one connection, never the server.
      this.#closeNow(conn);
    }
  }

  #read(conn: Connection): void {
    const net = this.#net;
    const buffer = this.#readBuffer;
    for (let i = 0; i < MAX_READS_PER_EVENT; i++) {
      // closed: #execute closed it (output limit); nothing more may be read, run or sent.
      if (conn.closed || conn.readPaused || conn.closing || conn.readClosed) break;
      const n = net.recvAt(conn.fd, this.#readAddress, buffer.length);
      if (n > 0) {
        if (!conn.parser.feed(buffer, n)) {
          this.#protocolError(conn);
          break;
        }
        this.#execute(conn);
        conn.parser.retain(); // the read buffer is shared: keep any partial request
        // A short read drained the socket; the level-triggered poller reports any later data.
        if (n < buffer.length) break;
      } else if (n === 0) {
        conn.readClosed = true;
      } else if (n !== -net.errno.EINTR) {
        if (n !== -net.errno.EAGAIN) return this.#closeNow(conn);
        break;
      }
    }
    if (conn.out.pendingBytes > 0) this.#flush(conn);
  }

  /** Runs every complete buffered command until the output passes the soft limit. */
  #execute(conn: Connection): void {
    const parser = conn.parser;
    const out = conn.out;
    const engine = this.engine;
    while (out.end - out.start < this.#softLimit) {
      const argc = parser.next();
      if (argc > 0) {
        engine.execute(parser.command, out, conn.session);
        if (out.exceeded) break;
        if (conn.session.closeAfterReplies) {
          conn.closing = true;
          break;
        }
      } else if (argc === 0) break;
      else return this.#protocolError(conn);
    }
    const pending = out.end - out.start;
    if (pending > this.#stats.maxPendingOutputBytes) this.#stats.maxPendingOutputBytes = pending;
    if (pending > this.#hardLimit || out.exceeded) {
      this.#stats.outputLimitCloses++;
      return this.#closeNow(conn);
    }
    if (pending >= this.#softLimit && !conn.closing) {
      conn.readPaused = true;
      this.#stats.readPauses++;
    }
  }

  #protocolError(conn: Connection): void {
    this.#stats.protocolErrors++;
    conn.out.error(`ERR Protocol error: ${conn.parser.error ?? "invalid request"}`);
    conn.closing = true;
  }

  /** Writes pending replies until drained or the socket is full; resumes a paused reader. */
  #flush(conn: Connection): void {
    const net = this.#net;
    const out = conn.out;
    for (;;) {
      while (out.end > out.start) {
        if (conn.outGeneration !== out.generation) {
          conn.outAddress = net.addressOf(out.bytes);
          conn.outGeneration = out.generation;
        }
        const n = net.sendAt(conn.fd, conn.outAddress + out.start, out.end - out.start);
        if (n > 0) out.consume(n);
        else if (n === -net.errno.EAGAIN) {
          this.#stats.writesBlocked++;
          return;
        } else if (n !== -net.errno.EINTR) return this.#closeNow(conn);
      }
      if (!conn.readPaused || conn.closing) return;
      // Caught up: run the commands that waited, then (via #settle) read again.
      conn.readPaused = false;
      this.#execute(conn);
      if (out.end === out.start) return;
    }
  }

  /** Closes a finished connection or sets its interest from its state. */
  #settle(conn: Connection): void {
    const pending = conn.out.end > conn.out.start;
    if (!pending && (conn.closing || conn.readClosed)) return this.#closeNow(conn);
    const wantRead = !conn.readPaused && !conn.closing && !conn.readClosed;
    const interest = wantRead ? (pending ? READ_WRITE : READ) : WRITE;
    if (interest !== conn.interest) {
      conn.interest = interest;
      conn.watch!.modify(interest);
    }
  }

  #closeNow(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.out.clear();
    // The fd itself is closed in the watch's onClose (#release), once the poller has let go of it.
    if (conn.watch !== null) conn.watch.close();
    else this.#release(conn);
  }

  #release(conn: Connection): void {
    if (!this.#connections.delete(conn)) return;
    conn.closed = true;
    this.#closeFd(conn.fd);
    this.engine.closeSession(conn.session);
    conn.parser.reset();
    if (this.#connections.size === 0 && this.#drained !== null) this.#drained();
  }

  /**
   * Graceful stop: stops accepting, stops reading, gives every client up to `flushTimeoutMs` to
   * take the replies already computed, then closes every connection and the listening socket.
   * Resolves once every fd is closed. Idempotent.
   */
  stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping !== null) return this.#stopping;
    const flushTimeoutMs = options.flushTimeoutMs ?? 2000;
    this.#stopping = new Promise<void>((resolve) => {
      this.#listenWatch?.close();
      this.#listenWatch = null;
      if (this.#acceptTimer !== null) this.#loop.clearTimeout(this.#acceptTimer);
      this.#acceptTimer = null;
      this.#closeFd(this.#listenFd);
      const finish = () => {
        this.#drained = null;
        this.#loop.clearTimeout(timer);
        if (this.#ownsEngine) this.engine.close();
        if (this.#ownsNet) this.#net.unload();
        resolve();
      };
      const timer = this.#loop.setTimeout(() => {
        for (const conn of [...this.#connections]) this.#closeNow(conn);
      }, flushTimeoutMs);
      this.#drained = finish;
      for (const conn of [...this.#connections]) {
        conn.closing = true;
        conn.readPaused = false;
        if (!conn.closed) this.#settle(conn);
      }
      if (this.#connections.size === 0) finish();
    });
    return this.#stopping;
  }
}
