// Snapshots are detached plain data: mutating one changes nothing, and they survive JSON.
import assert from "node:assert/strict";
import { type Clock, VirtualClock } from "../../loop/clock.ts";
import {
  KIND_FD,
  KIND_TASK,
  KIND_TIMER,
  MetricsRecorder,
  PHASE_POLL,
  QUEUE_MICROTASKS,
} from "../../loop/_metrics_recorder.ts";
import type { MetricsSnapshot } from "../../loop/metrics.ts";

/** A timer fire as the loop records it: lateness with the fire's (timed) callback. */
function fireTimer(m: MetricsRecorder, latenessMs: number): void {
  const startMs = m.begin();
  m.timerFired(latenessMs);
  m.end(KIND_TIMER, startMs, () => {}, undefined);
}

/** Drives a recorder through every kind of event, including hostile values. */
function populate(m: MetricsRecorder, clock: VirtualClock): void {
  for (let i = 0; i < 50; i++) {
    if (m.beginIteration() >= 0) m.phase(PHASE_POLL, i % 3);
    m.depths(i, 0, 50 - i, i % 2, 3);
    m.peak(QUEUE_MICROTASKS, i * 2);
    const t0 = m.begin();
    clock.advance(i % 5);
    m.end(i % 2 === 0 ? KIND_TASK : KIND_FD, t0, function named() {}, i % 4 ? undefined : "lbl");
    fireTimer(m, i % 7);
    clock.advance(10);
    m.waited(10);
  }
  fireTimer(m, NaN);
  fireTimer(m, Infinity);
  fireTimer(m, -1);
  m.waited(NaN);
  m.phase(PHASE_POLL, NaN);
  const t0 = m.begin();
  m.end(KIND_TIMER, t0, () => {}, undefined);
}

/** Every leaf is a finite number, a string, a boolean or null: nothing JSON would change. */
function assertJsonSafe(value: unknown, path = "snapshot"): void {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    assert.ok(Number.isFinite(value), `${path} is ${value}`);
    return;
  }
  assert.equal(typeof value, "object", `${path} is ${typeof value}`);
  const proto = Object.getPrototypeOf(value);
  assert.ok(proto === Object.prototype || proto === Array.prototype, `${path} is not plain`);
  for (const [key, child] of Object.entries(value as object)) {
    assert.notEqual(child, undefined, `${path}.${key} is undefined`);
    assertJsonSafe(child, `${path}.${key}`);
  }
}

Deno.test("snapshot: JSON round trip deep-equals the snapshot", async (t) => {
  await t.step("empty recorder: zeros, not NaN", () => {
    const clock = new VirtualClock();
    const s = new MetricsRecorder(clock).snapshot(clock.now());
    assertJsonSafe(s);
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
    assert.equal(s.callbacks.meanMs, 0);
    assert.equal(s.callbacks.p99Ms, 0);
    assert.equal(s.utilization.rolling, 0);
    assert.equal(s.throughput.callbacksPerSecond, 0);
    assert.equal(s.slowCallbackMs, null, "a setting not in force is null");
    assert.deepEqual(s.slowest, []);
  });
  await t.step("populated, with hostile inputs", () => {
    const clock = new VirtualClock(123.25);
    const m = new MetricsRecorder(clock, { slowCallbackMs: 2 });
    populate(m, clock);
    const s = m.snapshot(clock.now());
    assertJsonSafe(s);
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
    assert.ok(s.slowest.length > 0);
    assert.ok(s.timerLateness.maxMs > 0);
  });
  await t.step("sampling recorder on a real-time clock", () => {
    let nowMs = 0;
    const clock: Clock = { now: () => nowMs, virtual: false };
    const m = new MetricsRecorder(clock);
    for (let i = 0; i < 10_000; i++) {
      if (i % 100 === 0) m.beginIteration();
      const t0 = m.begin();
      nowMs += 0.003;
      m.end(KIND_TASK, t0, () => {}, undefined);
    }
    const s = m.snapshot(nowMs);
    assert.equal(s.sampling.mode, "adaptive");
    assertJsonSafe(s);
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });
});

Deno.test("snapshot: mutating a snapshot changes nothing in the next one", () => {
  const clock = new VirtualClock();
  const m = new MetricsRecorder(clock, { slowCallbackMs: 1 });
  populate(m, clock);
  const first = m.snapshot(clock.now());
  const pristine = structuredClone(first);
  // Vandalise every nested object and array of the first snapshot.
  const vandalise = (o: Record<string, unknown>): void => {
    for (const [key, child] of Object.entries(o)) {
      if (child !== null && typeof child === "object") vandalise(child as Record<string, unknown>);
      else o[key] = typeof child === "number" ? -999 : "vandalised";
    }
    if (Array.isArray(o)) o.push({ label: "intruder" });
  };
  vandalise(first as unknown as Record<string, unknown>);
  (first.slowest as unknown[]).length = 0;
  const second = m.snapshot(clock.now());
  assert.deepEqual(second, pristine);
  // And the snapshot does not move with the recorder either.
  const before: MetricsSnapshot = m.snapshot(clock.now());
  const copy = structuredClone(before);
  const t0 = m.begin();
  clock.advance(100);
  m.end(KIND_TASK, t0, () => {}, "later");
  m.depths(1e6, 0, 0, 0, 0);
  assert.deepEqual(before, copy);
  assert.equal(m.snapshot(clock.now()).queues.tasks.max, 1e6);
});

Deno.test("snapshot: two snapshots in a row are equal (taking one changes nothing)", () => {
  const clock = new VirtualClock(5000);
  const m = new MetricsRecorder(clock);
  populate(m, clock);
  assert.deepEqual(m.snapshot(clock.now()), m.snapshot(clock.now()));
});
