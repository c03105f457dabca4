// The Linux epoll backend (private). Nothing here opens a library until createEpollPoller() runs.
export { createEpollPoller, EpollPoller, type EpollPollerOptions } from "./epoll_poller.ts";
export { EPOLL_EVENT_LAYOUTS, type EpollEventLayout, epollEventLayout } from "./_layout.ts";
