// PLACEHOLDER written by the epoll/poll helper so createPoller type-checks; the kqueue helper
// replaces this file with the real backend.
import { PollerUnavailableError } from "../errors.ts";
import type { Poller } from "../types.ts";

/** Creates a kqueue poller (not yet available: placeholder). */
export function createKqueuePoller(): Poller {
  throw new PollerUnavailableError(
    "platform",
    "Cannot create a kqueue poller: the kqueue backend is not yet available",
  );
}
