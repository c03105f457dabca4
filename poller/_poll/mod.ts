// The portable poll(2) backend (private). Nothing here opens a library until createPollPoller() runs.
export { createPollPoller, PollPoller } from "./poll_poller.ts";
export { POLLFD_LAYOUT } from "./_layout.ts";
export { type PollPlatform, pollPlatform } from "./_ffi.ts";
