// The behavioural suite against the portable poll(2) backend, over pipes and socketpairs.
import { createPoller } from "../../poller/mod.ts";
import { pipePair, socketPair } from "./_pairs.ts";
import { pollerSuite } from "./_suite.ts";

const linux = Deno.build.os === "linux";

pollerSuite({
  name: "poll/pipe",
  createPoller: () => createPoller({ backend: "poll" }),
  makePair: pipePair,
  // poll(2) accepts every open fd (a regular file is simply always ready): nothing unsupported.
  ignore: !linux,
});

pollerSuite({
  name: "poll/socketpair",
  createPoller: () => createPoller({ backend: "poll" }),
  makePair: socketPair,
  ignore: !linux,
});
