/**
 * An incremental RESP2 request parser: multibulk (`*N\r\n$len\r\n...`) and inline commands
 * (`PING\r\n`, as telnet and `redis-cli` in some modes send), any split of the input across
 * reads, many commands per read (pipelining), and hard limits against malformed or absurd input.
 *
 * Parsing allocates nothing: a parsed command is a {@linkcode Command} holding the buffer and the
 * start/end offsets of each argument. The bytes it refers to stay valid until the next
 * {@linkcode RequestParser.feed}, {@linkcode RequestParser.next} or {@linkcode RequestParser.retain}.
 *
 * @example
 * ```ts
 * import { RequestParser } from "./parser.ts";
 * const parser = new RequestParser();
 * parser.feed(new TextEncoder().encode("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n"));
 * while (parser.next() > 0) console.log(parser.command.strings());
 * // ["ECHO", "hi"], then ["PING"]
 * ```
 *
 * @module
 */

/** Limits applied while parsing (defaults follow Redis where it has one). */
export interface RequestParserOptions {
  /** Largest bulk string accepted, in bytes (default 64 MiB; Redis: 512 MiB). */
  maxBulkBytes?: number;
  /** Most arguments in one multibulk request (default 1,048,576, as Redis). */
  maxArrayLength?: number;
  /** Longest inline command line, in bytes (default 64 KiB, as Redis). */
  maxInlineBytes?: number;
  /** Most bytes one request may occupy while it is being received (default 128 MiB). */
  maxRequestBytes?: number;
}

const CR = 13;
const LF = 10;
const STAR = 42; // '*'
const DOLLAR = 36; // '$'
const MINUS = 45; // '-'
const ZERO = 48;

const EMPTY = new Uint8Array(0);
const OWN_KEEP_BYTES = 1024 * 1024;
const MAX_DIGITS = 16; // every limit is far below 10^16, so longer numbers are invalid anyway

/**
 * One parsed command: argument `i` is `buffer[starts[i], ends[i])`. Reused for every command;
 * read it before asking the parser for the next one.
 */
export class Command {
  /** The bytes the arguments refer to. */
  buffer: Uint8Array = EMPTY;
  /** How many arguments (the command name included). */
  argc = 0;
  /** Start offset of each argument in {@linkcode Command.buffer}. */
  starts: Int32Array = new Int32Array(16);
  /** End offset (exclusive) of each argument. */
  ends: Int32Array = new Int32Array(16);

  /** Length of argument `i` in bytes. */
  length(i: number): number {
    return this.ends[i] - this.starts[i];
  }

  /** A view of argument `i` (no copy; valid until the parser moves on). */
  view(i: number): Uint8Array {
    return this.buffer.subarray(this.starts[i], this.ends[i]);
  }

  /** A copy of argument `i`, safe to keep. */
  copy(i: number): Uint8Array {
    const start = this.starts[i];
    const n = this.ends[i] - start;
    if (n > 32) return this.buffer.slice(start, start + n);
    const b = this.buffer;
    const out = new Uint8Array(n); // short values: an inline copy beats the slice builtin's call
    for (let k = 0; k < n; k++) out[k] = b[start + k];
    return out;
  }

  /** Whether argument `i` equals `lowerAscii` ignoring ASCII case (`lowerAscii` is lower case). */
  is(i: number, lowerAscii: string): boolean {
    const start = this.starts[i];
    const n = this.ends[i] - start;
    if (n !== lowerAscii.length) return false;
    const b = this.buffer;
    for (let k = 0; k < n; k++) {
      let c = b[start + k];
      if (c >= 65 && c <= 90) c |= 0x20;
      if (c !== lowerAscii.charCodeAt(k)) return false;
    }
    return true;
  }

  /** Argument `i` lower-cased as an ASCII string (command names and options). */
  lower(i: number): string {
    const start = this.starts[i];
    const end = Math.min(this.ends[i], start + 64);
    const b = this.buffer;
    let s = "";
    for (let k = start; k < end; k++) {
      let c = b[k];
      if (c >= 65 && c <= 90) c |= 0x20;
      s += String.fromCharCode(c);
    }
    return s;
  }

  /**
   * Argument `i` as a binary-safe string key: one UTF-16 unit per byte (latin1), so distinct byte
   * strings give distinct keys and {@linkcode keyToBytes} inverts it.
   */
  key(i: number): string {
    return bytesToKey(this.buffer, this.starts[i], this.ends[i]);
  }

  /** Every argument decoded as UTF-8 (tests and diagnostics; allocates). */
  strings(): string[] {
    const decoder = new TextDecoder();
    const out: string[] = [];
    for (let i = 0; i < this.argc; i++) out.push(decoder.decode(this.view(i)));
    return out;
  }

  /** @internal Makes room for `n` arguments. */
  reserve(n: number): void {
    if (n <= this.starts.length) return;
    let size = this.starts.length * 2;
    while (size < n) size *= 2;
    const starts = new Int32Array(size);
    const ends = new Int32Array(size);
    starts.set(this.starts);
    ends.set(this.ends);
    this.starts = starts;
    this.ends = ends;
  }
}

const fromCharCode = String.fromCharCode;
const codes: number[] = []; // scratch for long keys (module-level but never observable)

/** Bytes `[start, end)` of `bytes` as a latin1 string (see {@linkcode Command.key}). */
export function bytesToKey(bytes: Uint8Array, start: number, end: number): string {
  const b = bytes;
  if (end - start <= 32) {
    // Eight bytes per fromCharCode call: a quarter of the string additions of a byte loop,
    // without the array or view that apply() needs (keys are usually short).
    let s = "";
    let k = start;
    for (; k + 8 <= end; k += 8) {
      s += fromCharCode(b[k], b[k + 1], b[k + 2], b[k + 3], b[k + 4], b[k + 5], b[k + 6], b[k + 7]);
    }
    for (; k + 2 <= end; k += 2) s += fromCharCode(b[k], b[k + 1]);
    if (k < end) s += fromCharCode(b[k]);
    return s;
  }
  let s = "";
  for (let k = start; k < end; k += 4096) {
    const chunkEnd = Math.min(end, k + 4096);
    codes.length = chunkEnd - k;
    for (let i = k; i < chunkEnd; i++) codes[i - k] = b[i];
    s += fromCharCode.apply(null, codes);
  }
  codes.length = 0;
  return s;
}

/** The bytes of a key made by {@linkcode bytesToKey}. */
export function keyToBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let k = 0; k < key.length; k++) out[k] = key.charCodeAt(k);
  return out;
}

// Multibulk progress, kept across feeds so a large request arriving in many reads is scanned once.
const ST_START = 0; // at the start of a request
const ST_ARGS = 1; // inside a multibulk: `#declared` args, `#command.argc` done, scanning at `#scan`

/**
 * The incremental request parser. Feed it bytes as they arrive; call
 * {@linkcode RequestParser.next} until it returns 0 (needs more input) or -1 (protocol error: send
 * `-ERR Protocol error: ${parser.error}` and close the connection).
 */
export class RequestParser {
  /** The command {@linkcode RequestParser.next} parsed last (reused). */
  readonly command: Command = new Command();
  /** Why parsing failed, once {@linkcode RequestParser.next} has returned -1. */
  error: string | null = null;

  #maxBulk: number;
  #maxArray: number;
  #maxInline: number;
  #maxRequest: number;

  // The bytes being parsed: either a caller's chunk (borrowed, not copied) or #own.
  #buf: Uint8Array = EMPTY;
  #pos = 0; // start of the request being parsed
  #end = 0;
  #borrowed = false;
  #own: Uint8Array = EMPTY;

  #state = ST_START;
  #declared = 0;
  #scan = 0;
  #inline: Uint8Array = EMPTY; // unescaped inline arguments

  /**
   * Makes a parser.
   *
   * @param options Size limits.
   */
  constructor(options: RequestParserOptions = {}) {
    this.#maxBulk = limit(options.maxBulkBytes, 64 * 1024 * 1024, "maxBulkBytes");
    this.#maxArray = limit(options.maxArrayLength, 1024 * 1024, "maxArrayLength");
    this.#maxInline = limit(options.maxInlineBytes, 64 * 1024, "maxInlineBytes");
    this.#maxRequest = limit(options.maxRequestBytes, 128 * 1024 * 1024, "maxRequestBytes");
  }

  /** Bytes received but not yet parsed into a command. */
  get bufferedBytes(): number {
    return this.#end - this.#pos;
  }

  /**
   * Adds the first `length` bytes of `chunk`. Without buffered input the chunk is parsed in place
   * (not copied), so the caller must either drain {@linkcode RequestParser.next} or call
   * {@linkcode RequestParser.retain} before it reuses the chunk's memory. Returns `false` (and sets
   * the error) if the buffered request would exceed `maxRequestBytes`.
   */
  feed(chunk: Uint8Array, length: number = chunk.length): boolean {
    if (this.error !== null) return false;
    if (length === 0) return true;
    if (this.#pos === this.#end) {
      // Nothing pending (so no multibulk in progress): parse the chunk where it is.
      if (this.#own.length > OWN_KEEP_BYTES) this.#own = EMPTY; // after a huge request
      this.#buf = chunk;
      this.#pos = 0;
      this.#end = length;
      this.#borrowed = true;
      return true;
    }
    const pending = this.#end - this.#pos;
    if (pending + length > this.#maxRequest) {
      this.error = `request exceeds ${this.#maxRequest} bytes`;
      return false;
    }
    // Append in place when there is room, so a large request arriving in many reads is not
    // re-copied on every read; otherwise compact or grow (doubling).
    if (this.#borrowed || this.#own.length - this.#end < length) this.#toOwn(pending + length);
    this.#own.set(length === chunk.length ? chunk : chunk.subarray(0, length), this.#end);
    this.#end += length;
    return true;
  }

  /**
   * Copies any unparsed bytes of a borrowed chunk into the parser's own storage, so the caller may
   * reuse its buffer. Cheap when nothing is pending.
   */
  retain(): void {
    if (!this.#borrowed) return;
    if (this.#pos === this.#end) {
      this.#buf = EMPTY;
      this.#pos = this.#end = 0;
      this.#scan = 0;
      this.#borrowed = false;
      return;
    }
    this.#toOwn(this.#end - this.#pos);
  }

  /** Forgets all buffered input and any error. */
  reset(): void {
    this.#buf = EMPTY;
    this.#own = EMPTY;
    this.#pos = this.#end = this.#scan = 0;
    this.#borrowed = false;
    this.#state = ST_START;
    this.error = null;
    this.command.argc = 0;
  }

  // Moves pending bytes to the front of #own (growing it to hold `needed` bytes), adjusting every
  // stored offset. Afterwards #buf is #own.
  #toOwn(needed: number): void {
    const pending = this.#end - this.#pos;
    let own = this.#own;
    if (own.length < needed) {
      let size = Math.max(4096, own.length * 2);
      while (size < needed) size *= 2;
      own = new Uint8Array(size);
    }
    if (this.#buf === own) own.copyWithin(0, this.#pos, this.#end);
    else own.set(this.#buf.subarray(this.#pos, this.#end), 0);
    this.#shift(this.#pos);
    this.#own = own;
    this.#buf = own;
    this.#pos = 0;
    this.#end = pending;
    this.#borrowed = false;
  }

  #shift(by: number): void {
    if (by === 0 || this.#state !== ST_ARGS) return;
    this.#scan -= by;
    const c = this.command;
    for (let i = 0; i < c.argc; i++) {
      c.starts[i] -= by;
      c.ends[i] -= by;
    }
  }

  /**
   * Parses the next complete command into {@linkcode RequestParser.command}.
   *
   * @returns Its argument count (> 0), 0 when more input is needed, -1 on a protocol error.
   */
  next(): number {
    if (this.error !== null) return -1;
    for (;;) {
      if (this.#state === ST_START) {
        if (this.#pos >= this.#end) return 0;
        if (this.#buf[this.#pos] === STAR) {
          const r = this.#startMultibulk();
          if (r <= 0) return r;
          if (this.#declared === 0) continue; // `*0` / `*-1`: an empty request, skipped
        } else {
          const r = this.#inlineCommand();
          if (r === -2) continue; // an empty line, skipped
          return r;
        }
      }
      return this.#args();
    }
  }

  #fail(message: string): number {
    this.error = message;
    this.#state = ST_START;
    this.command.argc = 0;
    return -1;
  }

  // Reads an integer line `<digits>\r\n` at `at`; returns the value, or -1 when incomplete, or -2
  // when malformed; the index after the line is left in #lineEnd.
  #lineEnd = 0;
  #number(at: number): number {
    const b = this.#buf;
    const end = this.#end;
    let i = at;
    let negative = false;
    if (i < end && b[i] === MINUS) {
      negative = true;
      i++;
    }
    let value = 0;
    let digits = 0;
    for (; i < end; i++) {
      const c = b[i];
      if (c >= ZERO && c <= ZERO + 9) {
        if (++digits > MAX_DIGITS || (digits === 2 && value === 0)) return -2; // "01": as Redis
        value = value * 10 + (c - ZERO);
        continue;
      }
      if (c !== CR || digits === 0) return -2;
      if (i + 1 >= end) return -1;
      if (b[i + 1] !== LF) return -2;
      this.#lineEnd = i + 2;
      return negative ? (value === 0 ? -2 : -3 - value) : value; // < -2: a negative number
    }
    return -1;
  }

  #startMultibulk(): number {
    const n = this.#number(this.#pos + 1);
    if (n === -1) return 0;
    if (n === -2) return this.#fail("invalid multibulk length");
    if (n > this.#maxArray) return this.#fail("invalid multibulk length");
    this.#declared = n < 0 ? 0 : n;
    this.command.argc = 0;
    if (this.#declared === 0) {
      this.#pos = this.#lineEnd;
      return 1;
    }
    this.#state = ST_ARGS;
    this.#scan = this.#lineEnd;
    return 1;
  }

  #args(): number {
    const b = this.#buf;
    const c = this.command;
    const end = this.#end;
    while (c.argc < this.#declared) {
      const at = this.#scan;
      if (at >= end) return 0;
      if (b[at] !== DOLLAR) {
        const got = b[at];
        const shown = got >= 32 && got < 127 ? String.fromCharCode(got) : `\\x${hex2(got)}`;
        return this.#fail(`expected '$', got '${shown}'`);
      }
      const len = this.#number(at + 1);
      if (len === -1) return 0;
      if (len < 0 || len > this.#maxBulk) return this.#fail("invalid bulk length");
      const start = this.#lineEnd;
      if (start - this.#pos + len + 2 > this.#maxRequest) {
        return this.#fail(`request exceeds ${this.#maxRequest} bytes`);
      }
      if (end - start < len + 2) return 0;
      if (b[start + len] !== CR || b[start + len + 1] !== LF) {
        return this.#fail("expected CRLF after bulk string");
      }
      c.reserve(c.argc + 1);
      c.starts[c.argc] = start;
      c.ends[c.argc] = start + len;
      c.argc++;
      this.#scan = start + len + 2;
    }
    c.buffer = b;
    this.#pos = this.#scan;
    this.#state = ST_START;
    return c.argc;
  }

  #inlineCommand(): number {
    const b = this.#buf;
    const start = this.#pos;
    const limitEnd = Math.min(this.#end, start + this.#maxInline + 2);
    let nl = -1;
    for (let i = start; i < limitEnd; i++) {
      if (b[i] === LF) {
        nl = i;
        break;
      }
    }
    if (nl < 0) {
      if (this.#end - start > this.#maxInline) return this.#fail("too big inline request");
      return 0;
    }
    let lineEnd = nl;
    if (lineEnd > start && b[lineEnd - 1] === CR) lineEnd--;
    if (lineEnd - start > this.#maxInline) return this.#fail("too big inline request");
    this.#pos = nl + 1;
    const r = this.#splitInline(b, start, lineEnd);
    return r === 0 ? -2 : r;
  }

  // Splits an inline line into arguments the way Redis does (sdssplitargs): whitespace separated,
  // "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single quotes' with \'. Unescaped
  // bytes go to #inline, which the command then refers to.
  #splitInline(b: Uint8Array, start: number, end: number): number {
    if (this.#inline.length < end - start) {
      this.#inline = new Uint8Array(Math.max(256, (end - start) * 2));
    }
    const out = this.#inline;
    const c = this.command;
    c.argc = 0;
    let o = 0;
    let i = start;
    for (;;) {
      while (i < end && isSpace(b[i])) i++;
      if (i >= end) break;
      const argStart = o;
      let inDouble = false;
      let inSingle = false;
      for (;;) {
        if (inDouble) {
          if (i >= end) return this.#fail("unbalanced quotes in request");
          const ch = b[i];
          if (
            ch === 92 /* \ */ && i + 3 < end && b[i + 1] === 120 /* x */ && isHex(b[i + 2]) &&
            isHex(b[i + 3])
          ) {
            out[o++] = (hexValue(b[i + 2]) << 4) | hexValue(b[i + 3]);
            i += 4;
          } else if (ch === 92 && i + 1 < end) {
            const e = b[i + 1];
            out[o++] = e === 110
              ? 10
              : e === 114
              ? 13
              : e === 116
              ? 9
              : e === 98
              ? 8
              : e === 97
              ? 7
              : e;
            i += 2;
          } else if (ch === 34 /* " */) {
            i++;
            if (i < end && !isSpace(b[i])) return this.#fail("unbalanced quotes in request");
            break;
          } else {
            out[o++] = ch;
            i++;
          }
        } else if (inSingle) {
          if (i >= end) return this.#fail("unbalanced quotes in request");
          const ch = b[i];
          if (ch === 92 && i + 1 < end && b[i + 1] === 39) {
            out[o++] = 39;
            i += 2;
          } else if (ch === 39) {
            i++;
            if (i < end && !isSpace(b[i])) return this.#fail("unbalanced quotes in request");
            break;
          } else {
            out[o++] = ch;
            i++;
          }
        } else {
          if (i >= end) break;
          const ch = b[i];
          if (ch === 32 || ch === 9 || ch === 13 || ch === 10) break; // not \v or \f, as Redis
          if (ch === 34) inDouble = true; // a quote opens anywhere in an argument
          else if (ch === 39) inSingle = true;
          else out[o++] = ch;
          i++;
        }
      }
      c.reserve(c.argc + 1);
      c.starts[c.argc] = argStart;
      c.ends[c.argc] = o;
      c.argc++;
    }
    c.buffer = out;
    return c.argc;
  }
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10 || c === 11 || c === 12;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function hexValue(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function limit(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot use ${name} as it must be a positive integer: current value is ${value}`,
    );
  }
  return value;
}
