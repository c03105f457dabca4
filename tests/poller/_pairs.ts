// Linux Pair factories for the behavioural suite, over raw fds from tests/_fd.ts.
import * as fd from "../_fd.ts";
import type { Endpoint, Pair } from "./_suite.ts";

/** An Endpoint over a raw fd. */
export function endpoint(number: number): Endpoint {
  let open = true;
  return {
    fd: number,
    write: (bytes) => fd.write(number, bytes),
    read: () => fd.read(number),
    close() {
      if (open) {
        open = false;
        fd.close(number);
      }
    },
  };
}

/** A pipe as a Pair: `a` is the read end, `b` the write end. */
export function pipePair(): Pair {
  const [r, w] = fd.pipe();
  return { a: endpoint(r), b: endpoint(w) };
}

/** An AF_UNIX stream socketpair as a Pair. */
export function socketPair(): Pair {
  const [x, y] = fd.socketpair();
  return { a: endpoint(x), b: endpoint(y) };
}

/** A regular file (this source file): epoll refuses it with EPERM. */
export function regularFile(): { fd: number; code: string; close(): void } {
  const number = fd.openFile(new URL(import.meta.url).pathname);
  return { fd: number, code: "EPERM", close: () => fd.close(number) };
}
