// A tiny mocha-compatible describe/it/specify/hooks shim that replays a mocha suite as Deno.test
// steps, one step per suite and per test, so every test is run and counted by `deno test`.

type Done = (error?: unknown) => void;
type TestFn = ((done: Done) => void) | (() => unknown);

interface TestNode {
  readonly kind: "test";
  readonly name: string;
  readonly fn: TestFn;
}

interface SuiteNode {
  readonly kind: "suite";
  readonly name: string;
  readonly children: (SuiteNode | TestNode)[];
  readonly beforeEach: TestFn[];
  readonly afterEach: TestFn[];
  readonly before: TestFn[];
  readonly after: TestFn[];
}

/** Counts of a replayed suite. */
export interface MochaRunStats {
  registered: number;
  passed: number;
  failed: string[];
}

function suite(name: string): SuiteNode {
  return {
    kind: "suite",
    name,
    children: [],
    beforeEach: [],
    afterEach: [],
    before: [],
    after: [],
  };
}

/**
 * Collects the suite that `load()` declares through global describe/it/specify/hooks, then
 * restores the globals.
 */
export function collectMochaSuite(load: () => void): SuiteNode {
  const root = suite("root");
  const stack: SuiteNode[] = [root];
  const top = () => stack[stack.length - 1];
  const g = globalThis as Record<string, unknown>;
  const names = [
    "describe",
    "context",
    "it",
    "specify",
    "before",
    "after",
    "beforeEach",
    "afterEach",
  ];
  const saved = names.map((name) => g[name]);
  const describe = (name: string, fn: () => void) => {
    const node = suite(name);
    top().children.push(node);
    stack.push(node);
    try {
      fn.call({});
    } finally {
      stack.pop();
    }
  };
  const it = (name: string, fn: TestFn) => top().children.push({ kind: "test", name, fn });
  g.describe = g.context = describe;
  g.it = g.specify = it;
  g.before = (fn: TestFn) => top().before.push(fn);
  g.after = (fn: TestFn) => top().after.push(fn);
  g.beforeEach = (fn: TestFn) => top().beforeEach.push(fn);
  g.afterEach = (fn: TestFn) => top().afterEach.push(fn);
  try {
    load();
  } finally {
    names.forEach((name, i) => {
      if (saved[i] === undefined) delete g[name];
      else g[name] = saved[i];
    });
  }
  return root;
}

/** Counts the tests of a suite. */
export function countTests(node: SuiteNode): number {
  let count = 0;
  for (const child of node.children) count += child.kind === "test" ? 1 : countTests(child);
  return count;
}

/**
 * Runs `fn` mocha-style: with a `done` callback if it declares one, else awaiting what it returns.
 * Uncaught errors reported through `uncaught` while it runs fail it, as mocha's do.
 */
function runMochaFn(
  fn: TestFn,
  timeoutMs: number,
  uncaught: { current: ((error: unknown) => void) | null },
  onLateDone: (error: unknown) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    const finish = (error?: unknown) => {
      if (finished) {
        onLateDone(error ?? new Error("done() called multiple times"));
        return;
      }
      finished = true;
      clearTimeout(timer);
      uncaught.current = null;
      if (error !== undefined && error !== null) reject(error);
      else resolve();
    };
    const timer = setTimeout(
      () => finish(new Error(`Timeout of ${timeoutMs} ms exceeded`)),
      timeoutMs,
    );
    uncaught.current = (error) => finish(error);
    try {
      if (fn.length >= 1) {
        (fn as (done: Done) => void).call({}, finish);
      } else {
        const result = (fn as () => unknown).call({});
        if (result !== null && typeof result === "object" && "then" in result) {
          (result as PromiseLike<unknown>).then(
            () => finish(),
            (error) => finish(error ?? "rejected"),
          );
        } else finish();
      }
    } catch (error) {
      finish(error);
    }
  });
}

/**
 * Replays a collected suite as nested steps of `t`. Every test is its own step; a failing test
 * fails its step (and so the Deno test). Returns the counts.
 */
export async function replayMochaSuite(
  t: Deno.TestContext,
  root: SuiteNode,
  options: { timeoutMs: number },
): Promise<MochaRunStats> {
  const stats: MochaRunStats = { registered: countTests(root), passed: 0, failed: [] };
  const uncaught: { current: ((error: unknown) => void) | null } = { current: null };
  const lateErrors: unknown[] = [];
  // Errors thrown by the suite's native timer callbacks (its assertions) fail the running test.
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    if (uncaught.current !== null) uncaught.current(event.error);
    else lateErrors.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const runSuite = async (
      ctx: Deno.TestContext,
      node: SuiteNode,
      chain: SuiteNode[],
    ): Promise<void> => {
      for (const hook of node.before) {
        await runMochaFn(hook, options.timeoutMs, uncaught, lateErrors.push.bind(lateErrors));
      }
      for (const child of node.children) {
        if (child.kind === "suite") {
          await ctx.step({
            name: child.name,
            fn: (inner) => runSuite(inner, child, [...chain, child]),
          });
          continue;
        }
        const ok = await ctx.step({
          name: child.name,
          fn: async () => {
            const late = lateErrors.push.bind(lateErrors);
            for (const s of chain) {
              for (const hook of s.beforeEach) {
                await runMochaFn(hook, options.timeoutMs, uncaught, late);
              }
            }
            try {
              await runMochaFn(child.fn, options.timeoutMs, uncaught, late);
            } finally {
              for (const s of [...chain].reverse()) {
                for (const hook of s.afterEach) {
                  await runMochaFn(hook, options.timeoutMs, uncaught, late);
                }
              }
            }
          },
        });
        if (ok) stats.passed++;
        else stats.failed.push([...chain.map((s) => s.name), child.name].join(" > "));
      }
      for (const hook of node.after) {
        await runMochaFn(hook, options.timeoutMs, uncaught, lateErrors.push.bind(lateErrors));
      }
    };
    await runSuite(t, root, [root]);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  if (lateErrors.length !== 0) {
    stats.failed.push(
      `late errors (done() twice or errors after a test ended): ${
        lateErrors.map(String).join("; ")
      }`,
    );
  }
  return stats;
}
