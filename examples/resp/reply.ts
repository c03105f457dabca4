/**
 * Reading RESP2 replies (the client side): {@linkcode scanReply} finds where a complete reply
 * ends without allocating (the load generator counts replies with it), and
 * {@linkcode ReplyReader} decodes them into values (tests, small tools).
 *
 * @example
 * ```ts
 * import { ReplyReader } from "./reply.ts";
 * const reader = new ReplyReader();
 * reader.feed(new TextEncoder().encode("+OK\r\n$3\r\nabc\r\n:7\r\n*2\r\n$-1\r\n-ERR x\r\n"));
 * console.log(reader.readAll()); // ["OK", "abc", 7, [null, { error: "ERR x" }]]
 * ```
 *
 * @module
 */

/** A decoded reply: simple strings and bulk strings as text (bulk as bytes on request). */
export type RespValue =
  | string
  | number
  | bigint
  | null
  | Uint8Array
  | { error: string }
  | RespValue[];

/** Result slot of {@linkcode scanReply}: how many error replies (`-...`) it passed over. */
export interface ScanCounters {
  /** Incremented for every `-` reply seen, nested ones included. */
  errors: number;
}

function findLf(b: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) if (b[i] === 10) return i;
  return -1;
}

function lineInt(b: Uint8Array, start: number, crEnd: number): number {
  // start..crEnd excludes the trailing \r
  let i = start;
  let negative = false;
  if (b[i] === 45) {
    negative = true;
    i++;
  }
  let v = 0;
  for (; i < crEnd; i++) v = v * 10 + (b[i] - 48);
  return negative ? -v : v;
}

/**
 * Finds the end of the complete reply starting at `pos`.
 *
 * @returns The index just after it, or -1 when the reply is not complete in `[pos, end)`.
 */
export function scanReply(
  b: Uint8Array,
  pos: number,
  end: number,
  counters?: ScanCounters,
): number {
  let pending = 1;
  while (pending > 0) {
    if (pos >= end) return -1;
    const type = b[pos];
    const lf = findLf(b, pos + 1, end);
    if (lf < 0) return -1;
    pending--;
    if (type === 36) { // '$'
      const len = lineInt(b, pos + 1, lf - 1);
      if (len >= 0) {
        const next = lf + 1 + len + 2;
        if (next > end) return -1;
        pos = next;
      } else pos = lf + 1;
    } else if (type === 42) { // '*'
      const n = lineInt(b, pos + 1, lf - 1);
      if (n > 0) pending += n;
      pos = lf + 1;
    } else {
      if (type === 45 && counters !== undefined) counters.errors++;
      pos = lf + 1;
    }
  }
  return pos;
}

const decoder = new TextDecoder();

/** An incremental reply decoder (allocates; for tests and tools). */
export class ReplyReader {
  #buf = new Uint8Array(0);
  #pos = 0;
  #bulkAsBytes: boolean;

  /**
   * Makes a reader.
   *
   * @param options `bulkAsBytes`: return bulk strings as `Uint8Array` instead of text.
   */
  constructor(options: { bulkAsBytes?: boolean } = {}) {
    this.#bulkAsBytes = options.bulkAsBytes ?? false;
  }

  /** Bytes received but not yet decoded. */
  get bufferedBytes(): number {
    return this.#buf.length - this.#pos;
  }

  /** Adds received bytes. */
  feed(bytes: Uint8Array): void {
    const rest = this.#buf.subarray(this.#pos);
    const next = new Uint8Array(rest.length + bytes.length);
    next.set(rest);
    next.set(bytes, rest.length);
    this.#buf = next;
    this.#pos = 0;
  }

  /** The next complete reply, or `undefined` when more bytes are needed. */
  read(): { value: RespValue } | undefined {
    const end = scanReply(this.#buf, this.#pos, this.#buf.length);
    if (end < 0) return undefined;
    const [value] = this.#decode(this.#pos);
    this.#pos = end;
    return { value };
  }

  /** Every complete reply buffered now. */
  readAll(): RespValue[] {
    const out: RespValue[] = [];
    for (let r = this.read(); r !== undefined; r = this.read()) out.push(r.value);
    return out;
  }

  #decode(pos: number): [RespValue, number] {
    const b = this.#buf;
    const type = b[pos];
    const lf = findLf(b, pos + 1, b.length);
    const line = () => decoder.decode(b.subarray(pos + 1, lf - 1));
    switch (type) {
      case 43: // '+'
        return [line(), lf + 1];
      case 45: // '-'
        return [{ error: line() }, lf + 1];
      case 58: { // ':'
        const text = line();
        const n = Number(text);
        return [Number.isSafeInteger(n) ? n : BigInt(text), lf + 1];
      }
      case 36: { // '$'
        const len = lineInt(b, pos + 1, lf - 1);
        if (len < 0) return [null, lf + 1];
        const bytes = b.slice(lf + 1, lf + 1 + len);
        return [this.#bulkAsBytes ? bytes : decoder.decode(bytes), lf + 1 + len + 2];
      }
      case 42: { // '*'
        const n = lineInt(b, pos + 1, lf - 1);
        if (n < 0) return [null, lf + 1];
        const items: RespValue[] = [];
        let at = lf + 1;
        for (let i = 0; i < n; i++) {
          const [item, next] = this.#decode(at);
          items.push(item);
          at = next;
        }
        return [items, at];
      }
      default:
        throw new TypeError(
          `Cannot decode a reply as its type byte is unknown: current value is ${type}`,
        );
    }
  }
}

/**
 * Encodes a command as a RESP2 multibulk request.
 *
 * @param args The command and its arguments (text is UTF-8 encoded).
 * @returns The request bytes.
 */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Uint8Array {
  const encoder = new TextEncoder();
  const parts = args.map((a) => typeof a === "string" ? encoder.encode(a) : a);
  const head = (text: string) => encoder.encode(text);
  const chunks: Uint8Array[] = [head(`*${parts.length}\r\n`)];
  for (const part of parts) chunks.push(head(`$${part.length}\r\n`), part, head("\r\n"));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
