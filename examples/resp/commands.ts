/**
 * The command set of the example servers, shared by the loop server and the `Deno.listen` one so
 * that only their I/O differs. {@linkcode Engine.execute} runs one parsed command and appends its
 * reply to an {@linkcode OutputBuffer}.
 *
 * @example
 * ```ts
 * import { Engine } from "./commands.ts";
 * import { OutputBuffer } from "./output.ts";
 * import { RequestParser } from "./parser.ts";
 * const engine = new Engine({ timers: { now: () => 0, schedule: () => 0, cancel: () => {} } });
 * const parser = new RequestParser();
 * const out = new OutputBuffer();
 * const session = engine.openSession();
 * parser.feed(new TextEncoder().encode("SET k v\r\nGET k\r\n"));
 * while (parser.next() > 0) engine.execute(parser.command, out, session);
 * console.log(new TextDecoder().decode(out.pending())); // "+OK\r\n$1\r\nv\r\n"
 * ```
 *
 * @module
 */
import { type ExpiryTimers, KEEP_TTL, Keyspace } from "./keyspace.ts";
import {
  type OutputBuffer,
  REPLY_EMPTY_ARRAY,
  REPLY_NIL,
  REPLY_OK,
  REPLY_ONE,
  REPLY_PONG,
  REPLY_ZERO,
} from "./output.ts";
import { bytesToKey, type Command, keyToBytes } from "./parser.ts";

/** One client connection's state. */
export interface Session {
  /** Connection id (CLIENT ID). */
  readonly id: number;
  /** CLIENT SETNAME. */
  name: string | null;
  /** Set by QUIT: flush the replies, then close. */
  closeAfterReplies: boolean;
}

/** Options for {@linkcode Engine}. */
export interface EngineOptions {
  /** Time and timers for key expiry. */
  timers: ExpiryTimers;
  /** Shown in INFO (`io_layer:`), e.g. `"eventloop"` or `"deno-listen"`. */
  ioLayer?: string;
}

/** Counters kept by the engine; the servers update the connection ones. */
export interface EngineStats {
  /** Commands executed. */
  commands: number;
  /** Connections accepted since start. */
  connectionsTotal: number;
  /** Connections open now. */
  connectionsOpen: number;
}

type Handler = (engine: Engine, c: Command, out: OutputBuffer, session: Session) => void;
interface Spec {
  /** Redis arity: n > 0 exactly n arguments (name included), n < 0 at least -n. */
  arity: number;
  run: Handler;
}

const ERR_INT = "ERR value is not an integer or out of range";
const ERR_SYNTAX = "ERR syntax error";
const ERR_OVERFLOW = "ERR increment or decrement would overflow";
const ERR_CLIENT_NAME = "ERR Client names cannot contain spaces, newlines or special characters.";
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * Parses bytes as a 64-bit signed integer the way Redis does (`string2ll`: no sign but `-`, no
 * leading zeros, no spaces, at most 20 characters). Returns a number when it is a safe integer, a
 * bigint beyond that, `null` when invalid or out of range.
 */
export function parseInt64(b: Uint8Array, start: number, end: number): number | bigint | null {
  const n = end - start;
  if (n === 0 || n > 20) return null;
  let i = start;
  const negative = b[i] === 45;
  if (negative) {
    i++;
    if (i === end) return null;
  }
  if (b[i] === 48 && (end - i > 1 || negative)) return null; // "01", "-0"
  let value = 0;
  for (let k = i; k < end; k++) {
    const c = b[k] - 48;
    if (c < 0 || c > 9) return null;
    value = value * 10 + c;
  }
  if (end - i <= 15) return negative ? -value : value;
  let big = 0n;
  for (let k = i; k < end; k++) big = big * 10n + BigInt(b[k] - 48);
  if (negative) big = -big;
  if (big > INT64_MAX || big < INT64_MIN) return null;
  return Number.isSafeInteger(Number(big)) ? Number(big) : big;
}

const digits = new Uint8Array(24); // scratch: INCR's result before the keyspace copies it

/** Writes the decimal digits of an integer into `digits`; returns their count. */
function formatInt(n: number | bigint): number {
  if (typeof n === "bigint" || !Number.isSafeInteger(n)) {
    const text = String(n);
    for (let i = 0; i < text.length; i++) digits[i] = text.charCodeAt(i);
    return text.length;
  }
  const negative = n < 0;
  let m = negative ? -n : n;
  let len = negative ? 2 : 1;
  for (let t = m; t >= 10; t = Math.floor(t / 10)) len++;
  if (negative) digits[0] = 45;
  for (let i = len - 1; i >= (negative ? 1 : 0); i--) {
    const q = Math.floor(m / 10);
    digits[i] = 48 + (m - q * 10);
    m = q;
  }
  return len;
}

function argInt(c: Command, i: number): number | bigint | null {
  return parseInt64(c.buffer, c.starts[i], c.ends[i]);
}

function wrongArgs(out: OutputBuffer, name: string): void {
  out.error(`ERR wrong number of arguments for '${name}' command`);
}

function shown(c: Command, i: number): string {
  return bytesToKey(c.buffer, c.starts[i], Math.min(c.ends[i], c.starts[i] + 128));
}

function add(a: number | bigint, b: number | bigint): number | bigint | null {
  if (typeof a === "number" && typeof b === "number") {
    const sum = a + b;
    if (Number.isSafeInteger(sum)) return sum;
  }
  const big = BigInt(a) + BigInt(b);
  if (big > INT64_MAX || big < INT64_MIN) return null;
  return Number.isSafeInteger(Number(big)) ? Number(big) : big;
}

// Shared by INCR/DECR/INCRBY/DECRBY.
function incrementBy(engine: Engine, c: Command, out: OutputBuffer, delta: number | bigint): void {
  const key = c.key(1);
  const ks = engine.keyspace;
  const current = ks.get(key);
  let base: number | bigint = 0;
  if (current !== null) {
    const parsed = parseInt64(current, 0, current.length);
    if (parsed === null) return out.error(ERR_INT);
    base = parsed;
  }
  const result = add(base, delta);
  if (result === null) return out.error(ERR_OVERFLOW);
  ks.store(key, digits, 0, formatInt(result), KEEP_TTL); // INCR keeps the TTL
  out.integer(result);
}

// Converts an expire argument to an absolute deadline; null (after replying) on error.
function deadline(
  engine: Engine,
  c: Command,
  i: number,
  unitMs: number,
  commandName: string,
  allowNonPositive: boolean,
  out: OutputBuffer,
): number | null {
  const value = argInt(c, i);
  if (value === null) {
    out.error(ERR_INT);
    return null;
  }
  // As Redis: the value times the unit, and the absolute Unix deadline in ms, must fit in an
  // int64 (SET/SETEX/PSETEX also want it positive). Beyond 2^53 the deadline is approximate.
  let valid = allowNonPositive || value > 0;
  if (valid && (typeof value === "bigint" || !Number.isSafeInteger(value * unitMs))) {
    const ms = BigInt(value) * BigInt(unitMs);
    valid = ms <= INT64_MAX - BigInt(Date.now()) && ms >= INT64_MIN;
  }
  if (!valid) {
    out.error(`ERR invalid expire time in '${commandName}' command`);
    return null;
  }
  return engine.keyspace.now() + Number(value) * unitMs;
}

function set(engine: Engine, c: Command, out: OutputBuffer): void {
  let nx = false;
  let xx = false;
  let get = false;
  let keepTtl = false;
  let expiryArg = 0; // the index of the last EX/PX value (0: none)
  let unitMs = 0; // 1000 after EX, 1 after PX
  // As Redis: every option is read first (EX, PX and KEEPTTL may repeat, the last value wins, but
  // not mix), then the expire time is checked.
  for (let i = 3; i < c.argc; i++) {
    if (c.is(i, "nx") && !xx) nx = true;
    else if (c.is(i, "xx") && !nx) xx = true;
    else if (c.is(i, "get")) get = true;
    else if (c.is(i, "keepttl") && unitMs === 0) keepTtl = true;
    else if (c.is(i, "ex") && !keepTtl && unitMs !== 1 && i + 1 < c.argc) {
      expiryArg = ++i;
      unitMs = 1000;
    } else if (c.is(i, "px") && !keepTtl && unitMs !== 1000 && i + 1 < c.argc) {
      expiryArg = ++i;
      unitMs = 1;
    } else return out.error(ERR_SYNTAX);
  }
  let expiresAtMs = Infinity;
  if (expiryArg !== 0) {
    const at = deadline(engine, c, expiryArg, unitMs, "set", false, out);
    if (at === null) return;
    expiresAtMs = at;
  }
  const key = c.key(1);
  const ks = engine.keyspace;
  const old = get || nx || xx ? ks.get(key) : null;
  const exists = old !== null;
  if ((nx && exists) || (xx && !exists)) {
    out.bulk(get ? old : null);
    return;
  }
  // The reply first: storing may overwrite the old value's bytes in place.
  if (get) out.bulk(old);
  else out.raw(REPLY_OK);
  ks.store(key, c.buffer, c.starts[2], c.ends[2], keepTtl ? KEEP_TTL : expiresAtMs);
}

function expire(engine: Engine, c: Command, out: OutputBuffer, unitMs: number, name: string): void {
  let nx = false, xx = false, gt = false, lt = false;
  for (let i = 3; i < c.argc; i++) {
    if (c.is(i, "nx")) nx = true;
    else if (c.is(i, "xx")) xx = true;
    else if (c.is(i, "gt")) gt = true;
    else if (c.is(i, "lt")) lt = true;
    else return out.error(`ERR Unsupported option ${shown(c, i)}`);
  }
  if (nx && (xx || gt || lt)) {
    return out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt) return out.error("ERR GT and LT options at the same time are not compatible");
  const at = deadline(engine, c, 2, unitMs, name, true, out);
  if (at === null) return;
  const key = c.key(1);
  const ks = engine.keyspace;
  const current = ks.expiresAt(key);
  if (current === undefined) return out.raw(REPLY_ZERO);
  const hasTtl = current !== Infinity;
  if ((nx && hasTtl) || (xx && !hasTtl) || (gt && !(at > current)) || (lt && !(at < current))) {
    return out.raw(REPLY_ZERO);
  }
  ks.expireAt(key, at);
  out.raw(REPLY_ONE);
}

function ttl(engine: Engine, c: Command, out: OutputBuffer, inMs: boolean): void {
  const ks = engine.keyspace;
  const at = ks.expiresAt(c.key(1));
  if (at === undefined) return out.integer(-2);
  if (at === Infinity) return out.integer(-1);
  const remainingMs = Math.max(0, Math.round(at - ks.now()));
  out.integer(inMs ? remainingMs : Math.floor((remainingMs + 500) / 1000));
}

// FLUSHDB/FLUSHALL [ASYNC|SYNC]: both modes flush at once here.
function flush(engine: Engine, c: Command, out: OutputBuffer): void {
  if (c.argc > 2 || (c.argc === 2 && !c.is(1, "async") && !c.is(1, "sync"))) {
    return out.error(ERR_SYNTAX);
  }
  engine.keyspace.clear();
  out.raw(REPLY_OK);
}

function configGet(c: Command, out: OutputBuffer): void {
  // Clients (redis-benchmark) read "save" and "appendonly"; answer those plausibly, nothing else.
  const pairs: [string, string][] = [];
  for (let i = 2; i < c.argc; i++) {
    const pattern = c.lower(i);
    for (const [name, value] of [["save", ""], ["appendonly", "no"], ["databases", "1"]]) {
      if ((pattern === name || pattern === "*") && !pairs.some((p) => p[0] === name)) {
        pairs.push([name, value]);
      }
    }
  }
  out.arrayHeader(pairs.length * 2);
  for (const [name, value] of pairs) {
    out.bulkText(name);
    out.bulkText(value);
  }
}

function wrongSubArgs(out: OutputBuffer, c: Command, container: string): void {
  out.error(`ERR wrong number of arguments for '${container}|${c.lower(1)}' command`);
}

function clientInfo(session: Session): string {
  return `id=${session.id} name=${session.name ?? ""} db=0\n`;
}

function isValidClientName(c: Command, i: number): boolean {
  for (let k = c.starts[i]; k < c.ends[i]; k++) {
    const b = c.buffer[k];
    if (b < 33 || b > 126) return false;
  }
  return true;
}

const COMMANDS: Record<string, Spec> = {
  ping: {
    arity: -1,
    run: (_e, c, out) => {
      if (c.argc > 2) return wrongArgs(out, "ping");
      if (c.argc === 2) out.bulkRange(c.buffer, c.starts[1], c.ends[1]);
      else out.raw(REPLY_PONG);
    },
  },
  echo: { arity: 2, run: (_e, c, out) => out.bulkRange(c.buffer, c.starts[1], c.ends[1]) },
  get: { arity: 2, run: (e, c, out) => out.bulk(e.keyspace.get(c.key(1))) },
  set: { arity: -3, run: (e, c, out) => set(e, c, out) },
  setnx: {
    arity: 3,
    run: (e, c, out) => {
      const key = c.key(1);
      if (e.keyspace.has(key)) return out.raw(REPLY_ZERO);
      e.keyspace.store(key, c.buffer, c.starts[2], c.ends[2]);
      out.raw(REPLY_ONE);
    },
  },
  setex: {
    arity: 4,
    run: (e, c, out) => {
      const at = deadline(e, c, 2, 1000, "setex", false, out);
      if (at === null) return;
      e.keyspace.store(c.key(1), c.buffer, c.starts[3], c.ends[3], at);
      out.raw(REPLY_OK);
    },
  },
  psetex: {
    arity: 4,
    run: (e, c, out) => {
      const at = deadline(e, c, 2, 1, "psetex", false, out);
      if (at === null) return;
      e.keyspace.store(c.key(1), c.buffer, c.starts[3], c.ends[3], at);
      out.raw(REPLY_OK);
    },
  },
  getdel: {
    arity: 2,
    run: (e, c, out) => {
      const key = c.key(1);
      const value = e.keyspace.get(key);
      if (value !== null) e.keyspace.delete(key);
      out.bulk(value);
    },
  },
  getset: {
    arity: 3,
    run: (e, c, out) => {
      const key = c.key(1);
      out.bulk(e.keyspace.get(key)); // before the store, which may overwrite it in place
      e.keyspace.store(key, c.buffer, c.starts[2], c.ends[2]);
    },
  },
  append: {
    arity: 3,
    run: (e, c, out) => {
      const key = c.key(1);
      const old = e.keyspace.get(key);
      const add = c.view(2);
      const value = new Uint8Array((old?.length ?? 0) + add.length);
      if (old !== null) value.set(old);
      value.set(add, old?.length ?? 0);
      e.keyspace.setKeepTtl(key, value);
      out.integer(value.length);
    },
  },
  strlen: { arity: 2, run: (e, c, out) => out.integer(e.keyspace.get(c.key(1))?.length ?? 0) },
  del: {
    arity: -2,
    run: (e, c, out) => {
      let n = 0;
      for (let i = 1; i < c.argc; i++) if (e.keyspace.delete(c.key(i))) n++;
      out.integer(n);
    },
  },
  exists: {
    arity: -2,
    run: (e, c, out) => {
      let n = 0;
      for (let i = 1; i < c.argc; i++) if (e.keyspace.has(c.key(i))) n++;
      out.integer(n);
    },
  },
  type: {
    arity: 2,
    run: (e, c, out) => out.simple(e.keyspace.has(c.key(1)) ? "string" : "none"),
  },
  incr: { arity: 2, run: (e, c, out) => incrementBy(e, c, out, 1) },
  decr: { arity: 2, run: (e, c, out) => incrementBy(e, c, out, -1) },
  incrby: {
    arity: 3,
    run: (e, c, out) => {
      const delta = argInt(c, 2);
      if (delta === null) return out.error(ERR_INT);
      incrementBy(e, c, out, delta);
    },
  },
  decrby: {
    arity: 3,
    run: (e, c, out) => {
      const delta = argInt(c, 2);
      if (delta === null) return out.error(ERR_INT);
      if (delta === INT64_MIN) return out.error("ERR decrement would overflow");
      incrementBy(e, c, out, -delta);
    },
  },
  mget: {
    arity: -2,
    run: (e, c, out) => {
      out.arrayHeader(c.argc - 1);
      for (let i = 1; i < c.argc; i++) out.bulk(e.keyspace.get(c.key(i)));
    },
  },
  mset: {
    arity: -3,
    run: (e, c, out) => {
      if ((c.argc - 1) % 2 !== 0) return wrongArgs(out, "mset");
      for (let i = 1; i < c.argc; i += 2) {
        e.keyspace.store(c.key(i), c.buffer, c.starts[i + 1], c.ends[i + 1]);
      }
      out.raw(REPLY_OK);
    },
  },
  msetnx: {
    arity: -3,
    run: (e, c, out) => {
      if ((c.argc - 1) % 2 !== 0) return wrongArgs(out, "msetnx");
      for (let i = 1; i < c.argc; i += 2) if (e.keyspace.has(c.key(i))) return out.raw(REPLY_ZERO);
      for (let i = 1; i < c.argc; i += 2) {
        e.keyspace.store(c.key(i), c.buffer, c.starts[i + 1], c.ends[i + 1]);
      }
      out.raw(REPLY_ONE);
    },
  },
  expire: { arity: -3, run: (e, c, out) => expire(e, c, out, 1000, "expire") },
  pexpire: { arity: -3, run: (e, c, out) => expire(e, c, out, 1, "pexpire") },
  ttl: { arity: 2, run: (e, c, out) => ttl(e, c, out, false) },
  pttl: { arity: 2, run: (e, c, out) => ttl(e, c, out, true) },
  persist: {
    arity: 2,
    run: (e, c, out) => out.raw(e.keyspace.persist(c.key(1)) ? REPLY_ONE : REPLY_ZERO),
  },
  dbsize: { arity: 1, run: (e, _c, out) => out.integer(e.keyspace.size) },
  flushdb: { arity: -1, run: (e, c, out) => flush(e, c, out) },
  flushall: { arity: -1, run: (e, c, out) => flush(e, c, out) },
  select: {
    arity: 2,
    run: (_e, c, out) => {
      if (argInt(c, 1) === 0) out.raw(REPLY_OK);
      else out.error("ERR DB index is out of range");
    },
  },
  quit: {
    arity: -1,
    run: (_e, _c, out, session) => {
      out.raw(REPLY_OK);
      session.closeAfterReplies = true;
    },
  },
  time: {
    arity: 1,
    run: (_e, _c, out) => {
      const nowUs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
      out.arrayHeader(2);
      out.bulkText(String(nowUs / 1_000_000n));
      out.bulkText(String(nowUs % 1_000_000n));
    },
  },
  client: {
    arity: -2,
    run: (_e, c, out, session) => {
      if (c.is(1, "setname")) {
        if (c.argc !== 3) return wrongSubArgs(out, c, "client");
        if (!isValidClientName(c, 2)) return out.error(ERR_CLIENT_NAME);
        session.name = c.length(2) === 0 ? null : c.key(2);
        return out.raw(REPLY_OK);
      }
      if (c.is(1, "getname") || c.is(1, "id") || c.is(1, "info")) {
        if (c.argc !== 2) return wrongSubArgs(out, c, "client");
        if (c.is(1, "id")) return out.integer(session.id);
        if (c.is(1, "info")) return out.bulkText(clientInfo(session));
        return out.bulk(session.name === null ? null : keyToBytes(session.name));
      }
      if (c.is(1, "list")) return out.bulkText(clientInfo(session));
      // SETINFO, NO-EVICT, NO-TOUCH, TRACKING off, ...: accepted without effect.
      out.raw(REPLY_OK);
    },
  },
  config: {
    arity: -2,
    run: (_e, c, out) => {
      if (c.is(1, "get") && c.argc >= 3) return configGet(c, out);
      if (c.is(1, "resetstat")) return out.raw(REPLY_OK);
      out.error(`ERR unknown subcommand '${shown(c, 1)}'. Try CONFIG HELP.`);
    },
  },
  command: {
    arity: -1,
    run: (_e, c, out) => {
      // Client handshakes (redis-cli asks for COMMAND DOCS): no command table is advertised.
      if (c.argc >= 2 && c.is(1, "count")) {
        return c.argc === 2 ? out.integer(COMMAND_COUNT) : wrongSubArgs(out, c, "command");
      }
      if (c.argc >= 2 && c.is(1, "info")) {
        out.arrayHeader(c.argc - 2);
        for (let i = 2; i < c.argc; i++) out.raw(REPLY_NIL);
        return;
      }
      if (c.argc >= 2 && !c.is(1, "docs") && !c.is(1, "list")) {
        return out.error(`ERR unknown subcommand '${shown(c, 1)}'. Try COMMAND HELP.`);
      }
      out.raw(REPLY_EMPTY_ARRAY);
    },
  },
  hello: {
    arity: -1,
    run: (_e, c, out, session) => {
      // As Redis: HELLO [protover [AUTH username password] [SETNAME clientname]], the version
      // checked first, then the options; RESP3 is refused once the options are known valid.
      const version = c.argc >= 2 ? argInt(c, 1) : 2;
      if (version === null) {
        return out.error("ERR Protocol version is not an integer or out of range");
      }
      const unsupported = "NOPROTO sorry, this protocol version is not supported";
      if (version !== 2 && version !== 3) return out.error(unsupported);
      let name = -1;
      for (let i = 2; i < c.argc; i++) {
        const more = c.argc - 1 - i;
        if (c.is(i, "auth") && more >= 2) {
          // No password is configured: the default user takes any password, as Redis's.
          if (!c.is(i + 1, "default")) {
            return out.error("WRONGPASS invalid username-password pair or user is disabled.");
          }
          i += 2;
        } else if (c.is(i, "setname") && more >= 1) {
          if (!isValidClientName(c, i + 1)) return out.error(ERR_CLIENT_NAME);
          name = ++i;
        } else return out.error(`ERR Syntax error in HELLO option '${shown(c, i)}'`);
      }
      if (version !== 2) return out.error(unsupported);
      if (name >= 0) session.name = c.length(name) === 0 ? null : c.key(name);
      const fields: [string, string | number][] = [
        ["server", "redis"],
        ["version", "7.0.0"],
        ["proto", 2],
        ["id", session.id],
        ["mode", "standalone"],
        ["role", "master"],
      ];
      out.arrayHeader(fields.length * 2 + 2);
      for (const [k, v] of fields) {
        out.bulkText(k);
        if (typeof v === "number") out.integer(v);
        else out.bulkText(v);
      }
      out.bulkText("modules");
      out.raw(REPLY_EMPTY_ARRAY);
    },
  },
  info: {
    arity: -1,
    run: (e, _c, out) => out.bulkText(e.info()),
  },
};

const COMMAND_COUNT = Object.keys(COMMANDS).length;

interface NamedSpec extends Spec {
  name: string;
}

const MAX_NAME = 16;

// Commands by name length and first letter: a lookup compares bytes and allocates nothing.
function slot(length: number, firstByte: number): number {
  return length * 32 + (firstByte & 31);
}

function buildTable(): NamedSpec[][] {
  const table: NamedSpec[][] = Array.from({ length: (MAX_NAME + 1) * 32 }, () => []);
  for (const [name, spec] of Object.entries(COMMANDS)) {
    table[slot(name.length, name.charCodeAt(0))].push({ name, ...spec });
  }
  return table;
}

/** Executes commands against one shared keyspace. */
export class Engine {
  /** The data. */
  readonly keyspace: Keyspace;
  /** Counters (the servers maintain the connection ones). */
  readonly stats: EngineStats = { commands: 0, connectionsTotal: 0, connectionsOpen: 0 };
  #table: NamedSpec[][] = buildTable();
  #nextId = 1;
  #startedMs = performance.now();
  #ioLayer: string;

  /**
   * Makes an engine with an empty keyspace.
   *
   * @param options Timers for expiry, and the name of the I/O layer for INFO.
   */
  constructor(options: EngineOptions) {
    this.keyspace = new Keyspace(options.timers);
    this.#ioLayer = options.ioLayer ?? "unknown";
  }

  /** State for a new connection. */
  openSession(): Session {
    this.stats.connectionsTotal++;
    this.stats.connectionsOpen++;
    return { id: this.#nextId++, name: null, closeAfterReplies: false };
  }

  /** Forgets a closed connection. */
  closeSession(_session: Session): void {
    this.stats.connectionsOpen--;
  }

  /** The INFO text. */
  info(): string {
    const s = this.stats;
    const ks = this.keyspace;
    return [
      "# Server",
      "redis_version:7.0.0",
      "redis_mode:standalone",
      "server_name:eventloop-example",
      `io_layer:${this.#ioLayer}`,
      `process_id:${Deno.pid}`,
      `uptime_in_seconds:${Math.floor((performance.now() - this.#startedMs) / 1000)}`,
      "",
      "# Clients",
      `connected_clients:${s.connectionsOpen}`,
      "",
      "# Stats",
      `total_connections_received:${s.connectionsTotal}`,
      `total_commands_processed:${s.commands}`,
      "",
      "# Keyspace",
      ks.size > 0 ? `db0:keys=${ks.size},expires=${ks.expiringCount},avg_ttl=0` : "",
      "",
    ].join("\r\n");
  }

  /**
   * Runs one command and appends its reply to `out`. Never throws for any input: an unexpected
   * failure becomes an `-ERR` reply, except a reply refused by `out`'s limit, which leaves
   * {@linkcode OutputBuffer.exceeded} set and the reply incomplete (the client must be closed).
   */
  execute(c: Command, out: OutputBuffer, session: Session): void {
    this.stats.commands++;
    const length = c.length(0);
    let spec: NamedSpec | undefined;
    if (length > 0 && length <= MAX_NAME) {
      for (const candidate of this.#table[slot(length, c.buffer[c.starts[0]])]) {
        if (c.is(0, candidate.name)) {
          spec = candidate;
          break;
        }
      }
    }
    if (spec === undefined) return this.#unknown(c, out);
    if ((spec.arity > 0 && c.argc !== spec.arity) || (spec.arity < 0 && c.argc < -spec.arity)) {
      return wrongArgs(out, spec.name);
    }
    try {
      spec.run(this, c, out, session);
    } catch (error) {
      if (out.exceeded) return; // the reply passed the output limit: the server closes the client
      out.error(`ERR internal error: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #unknown(c: Command, out: OutputBuffer): void {
    let args = "";
    for (let i = 1; i < c.argc && args.length < 128; i++) args += `'${shown(c, i)}' `;
    out.error(`ERR unknown command '${shown(c, 0)}', with args beginning with: ${args}`);
  }

  /** Cancels every expiry timer and drops the data. */
  close(): void {
    this.keyspace.clear();
  }
}
