/**
 * RESP2 reply encoding straight into a growable output buffer: replies are written once, into the
 * bytes the socket write takes them from; integers and lengths are formatted without strings.
 *
 * @example
 * ```ts
 * import { OutputBuffer } from "./output.ts";
 * const out = new OutputBuffer();
 * out.arrayHeader(2);
 * out.bulk(new TextEncoder().encode("hi"));
 * out.integer(42);
 * console.log(new TextDecoder().decode(out.pending())); // "*2\r\n$2\r\nhi\r\n:42\r\n"
 * ```
 *
 * @module
 */

const CRLF0 = 13;
const CRLF1 = 10;

const encoder = new TextEncoder();

/** Replies used so often that they are kept pre-encoded. */
export const REPLY_OK: Uint8Array = encoder.encode("+OK\r\n");
/** `+PONG`. */
export const REPLY_PONG: Uint8Array = encoder.encode("+PONG\r\n");
/** The RESP2 null bulk string. */
export const REPLY_NIL: Uint8Array = encoder.encode("$-1\r\n");
/** The RESP2 null array. */
export const REPLY_NIL_ARRAY: Uint8Array = encoder.encode("*-1\r\n");
/** `*0`. */
export const REPLY_EMPTY_ARRAY: Uint8Array = encoder.encode("*0\r\n");
/** `:0`. */
export const REPLY_ZERO: Uint8Array = encoder.encode(":0\r\n");
/** `:1`. */
export const REPLY_ONE: Uint8Array = encoder.encode(":1\r\n");

/** Options for {@linkcode OutputBuffer}. */
export interface OutputBufferOptions {
  /** Initial capacity, and what the buffer shrinks back to once drained (default 16 KiB). */
  initialBytes?: number;
  /**
   * Most pending bytes the buffer grows to hold (default: no limit). A write that would need more
   * throws a `RangeError` and sets {@linkcode OutputBuffer.exceeded}: one command cannot make a
   * reply larger than the memory it is allowed.
   */
  limitBytes?: number;
}

/**
 * Pending output: bytes in `[start, end)` of {@linkcode OutputBuffer.bytes} wait to be written.
 * Writers append at the end; the socket layer consumes from the start.
 */
export class OutputBuffer {
  /** The storage (replaced when it grows; see {@linkcode OutputBuffer.generation}). */
  bytes: Uint8Array;
  /** First pending byte. */
  start = 0;
  /** One past the last pending byte. */
  end = 0;
  /** Bumped whenever {@linkcode OutputBuffer.bytes} is replaced, so callers can cache its address. */
  generation = 0;
  /** Set (for good) once a write was refused for passing `limitBytes`; the reply is incomplete. */
  exceeded = false;
  #initial: number;
  #limit: number;

  /**
   * Makes an empty buffer.
   *
   * @param options Sizing.
   */
  constructor(options: OutputBufferOptions = {}) {
    this.#initial = options.initialBytes ?? 16 * 1024;
    this.#limit = options.limitBytes ?? Infinity;
    this.bytes = new Uint8Array(this.#initial);
  }

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.end - this.start;
  }

  /** A view of the pending bytes (allocates a view; the servers use start/end directly). */
  pending(): Uint8Array {
    return this.bytes.subarray(this.start, this.end);
  }

  /** Marks `n` pending bytes as written. Resets (and shrinks a grown buffer) once drained. */
  consume(n: number): void {
    this.start += n;
    if (this.start >= this.end) this.clear();
  }

  /** Drops all pending bytes. */
  clear(): void {
    this.start = this.end = 0;
    if (this.bytes.length > this.#initial * 64) {
      // A huge reply grew it: give the memory back rather than keeping it per connection.
      this.bytes = new Uint8Array(this.#initial);
      this.generation++;
    }
  }

  /** Makes room for `n` more bytes at the end (compacting or growing). */
  reserve(n: number): void {
    if (this.bytes.length - this.end >= n) return;
    const pending = this.end - this.start;
    if (pending + n > this.#limit) {
      this.exceeded = true;
      throw new RangeError(
        `Cannot grow the output buffer as it would pass its limit of ${this.#limit} bytes: current value is ${
          pending + n
        }`,
      );
    }
    if (this.start > 0 && this.bytes.length - pending >= n && this.start >= pending) {
      // Enough room once the written prefix is dropped, and the copy is no bigger than the gap.
      this.bytes.copyWithin(0, this.start, this.end);
      this.start = 0;
      this.end = pending;
      return;
    }
    let size = this.bytes.length * 2;
    while (size - pending < n) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.bytes.subarray(this.start, this.end));
    this.bytes = bytes;
    this.start = 0;
    this.end = pending;
    this.generation++;
  }

  /** Appends bytes as they are (pre-encoded replies). */
  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.end);
    this.end += bytes.length;
  }

  #ascii(text: string): void {
    // Callers reserve first. Non-ASCII and CR/LF are replaced so a reply can never be split.
    const b = this.bytes;
    let e = this.end;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      b[e++] = c === 13 || c === 10 ? 32 : c < 128 ? c : 63;
    }
    this.end = e;
  }

  #crlf(): void {
    this.bytes[this.end++] = CRLF0;
    this.bytes[this.end++] = CRLF1;
  }

  #digits(n: number): void {
    // n is a non-negative safe integer
    const b = this.bytes;
    if (n < 10) {
      b[this.end++] = 48 + n;
      return;
    }
    let len = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) len++;
    let e = this.end + len;
    this.end = e;
    for (let m = n; len > 0; len--) {
      const q = Math.floor(m / 10);
      b[--e] = 48 + (m - q * 10);
      m = q;
    }
  }

  /** `+text` (CR/LF in `text` become spaces). */
  simple(text: string): void {
    this.reserve(text.length + 3);
    this.bytes[this.end++] = 43; // '+'
    this.#ascii(text);
    this.#crlf();
  }

  /** `-text`: an error reply such as `ERR syntax error` (CR/LF become spaces). */
  error(text: string): void {
    this.reserve(text.length + 3);
    this.bytes[this.end++] = 45; // '-'
    this.#ascii(text);
    this.#crlf();
  }

  /** `:n` for a safe integer or a bigint. */
  integer(n: number | bigint): void {
    if (typeof n === "bigint" || !Number.isSafeInteger(n)) {
      const text = String(typeof n === "bigint" ? n : Math.trunc(n));
      this.reserve(text.length + 3);
      this.bytes[this.end++] = 58; // ':'
      this.#ascii(text);
      this.#crlf();
      return;
    }
    this.reserve(24);
    this.bytes[this.end++] = 58;
    if (n < 0) {
      this.bytes[this.end++] = 45;
      n = -n;
    }
    this.#digits(n);
    this.#crlf();
  }

  #header(type: number, n: number): void {
    this.bytes[this.end++] = type;
    this.#digits(n);
    this.#crlf();
  }

  /** `$len\r\n<bytes>\r\n`, or the null bulk string for `null`. */
  bulk(bytes: Uint8Array | null): void {
    if (bytes === null) return this.raw(REPLY_NIL);
    this.reserve(bytes.length + 24);
    this.#header(36, bytes.length);
    this.bytes.set(bytes, this.end);
    this.end += bytes.length;
    this.#crlf();
  }

  /** A bulk string of `source[start, end)`: echoes an argument without making a view of it. */
  bulkRange(source: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.reserve(n + 24);
    this.#header(36, n);
    const b = this.bytes;
    const e = this.end;
    if (n <= 64) { for (let k = 0; k < n; k++) b[e + k] = source[start + k]; // no view for short ones
     } else b.set(source.subarray(start, end), e);
    this.end = e + n;
    this.#crlf();
  }

  /** A bulk string holding `text` encoded as UTF-8. */
  bulkText(text: string): void {
    this.bulk(encoder.encode(text));
  }

  /** `*n` (the caller then writes n elements). */
  arrayHeader(n: number): void {
    this.reserve(24);
    this.#header(42, n);
  }
}
