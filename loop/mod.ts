/**
 * The event loop: {@linkcode Loop}, its clocks ({@linkcode VirtualClock} for tests), the default and
 * current loop, errors and metrics formatting.
 *
 * ```ts
 * import { Loop, VirtualClock } from "./mod.ts";
 * const loop = new Loop({ clock: new VirtualClock() });
 * loop.setTimeout(() => console.log("an hour later, at once"), 3_600_000);
 * await loop.run();
 * ```
 *
 * @module
 */
export * from "./loop.ts";
export * from "./clock.ts";
export * from "./errors.ts";
export * from "./default_loop.ts";
export * from "./types.ts";
export * from "./metrics.ts";
export * from "./format_metrics.ts";
