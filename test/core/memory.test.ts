/**
 * @file Native memory: arrays dropped in a loop are freed by the collector (finalizers, with native
 * memory reported to V8), dispose() frees at once, setMemoryLimit fails an evaluation cleanly, and
 * evalAsync matches eval and rejects instead of crashing. Memory figures are per process; vitest's
 * forks pool gives this file its own.
 */
import { PerformanceObserver, constants } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { rng } from "../helpers/reference.js";

const MB = 1 << 20;
const ITERATIONS = 10_000;
// 64 KiB per input array: 10,000 leaked iterations would hold over 600 MiB, far beyond the
// external-memory growth (64 MiB) at which V8 starts a full collection by itself.
const N = 16_384;
const LEAKED = ITERATIONS * N * 4;
const BOUND = 200 * MB;

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One training-step-like iteration: data in, a few ops, a scalar out; returns the loss. */
function step(data: Float32Array): mx.Array {
  const x = mx.array(data);
  return x.mul(2).add(1).square().mean();
}

function filled(n: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => Math.round(next() * 8) / 4 - 1);
}

const resetLimit = () => mx.setMemoryLimit(Number.MAX_SAFE_INTEGER);
afterEach(resetLimit);

describe("dispose", () => {
  it("frees an array's memory at once", () => {
    const x = mx.array(filled(100_000, 3));
    const y = x.mul(2); // an evaluated result owns its buffer too
    mx.eval(y);
    const before = mx.getActiveMemory();
    y.dispose();
    const afterY = mx.getActiveMemory();
    expect(before - afterY).toBeGreaterThanOrEqual(y.nbytes);
    x.dispose();
    expect(afterY - mx.getActiveMemory()).toBeGreaterThanOrEqual(x.nbytes);
  });

  it("a disposed array throws a DisposedError (a ReferenceError) on every use", () => {
    const x = mx.array([[1, 2], [3, 4]]);
    const lazy = x.add(1); // recorded before x was disposed
    x.dispose();
    const uses: [string, () => unknown][] = [
      ["item", () => x.index(0, 0).item()],
      ["item", () => mx.sum(x).item()],
      ["tolist", () => x.tolist()],
      ["toTypedArray", () => x.toTypedArray()],
      ["add", () => mx.add(x, 1)],
      ["mul", () => x.mul(x)],
      ["sum", () => mx.sum(x)],
      ["matmul", () => mx.matmul(x, x)],
      ["reshape", () => x.reshape([4])],
      ["eval", () => mx.eval(lazy)],
      ["eval", () => mx.eval(x)],
    ];
    for (const [op, use] of uses) {
      let err: unknown;
      try {
        use();
      } catch (e) {
        err = e;
      }
      expect(err, `${op} did not throw`).toBeInstanceOf(mx.DisposedError);
      expect(err).toBeInstanceOf(ReferenceError);
      expect((err as Error).message).toContain("disposed");
      expect((err as Error).message).toContain("[2,2]");
    }
    expect(String(x)).toContain("disposed");
  });

  it("disposing twice, or disposing a lazy array, is harmless", () => {
    const x = mx.array(filled(10_000, 4));
    x.dispose();
    const after = mx.getActiveMemory();
    expect(() => x.dispose()).not.toThrow();
    expect(mx.getActiveMemory()).toBe(after);
    const lazy = mx.ones([3]).add(1);
    lazy.dispose();
    lazy.dispose();
    expect(() => lazy.tolist()).toThrow(mx.DisposedError);
  });

  it("`using` disposes at the end of the block", () => {
    const before = mx.getActiveMemory();
    let kept: mx.Array;
    {
      using a = mx.array(filled(50_000, 5));
      kept = a;
      expect(mx.getActiveMemory() - before).toBeGreaterThanOrEqual(a.nbytes);
      expect(a.toTypedArray()[0]).toBeTypeOf("number"); // a read that makes no view of a
    }
    expect(mx.getActiveMemory()).toBeLessThanOrEqual(before);
    expect(() => kept.item()).toThrow(mx.DisposedError);
  });

  it("Symbol.dispose is dispose", () => {
    const a = mx.array(filled(50_000, 6));
    const before = mx.getActiveMemory();
    a[Symbol.dispose]();
    expect(before - mx.getActiveMemory()).toBeGreaterThanOrEqual(a.nbytes);
    expect(() => a.tolist()).toThrow(mx.DisposedError);
  });
});

describe("setMemoryLimit", () => {
  it("an evaluation over the limit throws an Error naming the op, and everything stays usable", () => {
    const data = filled(1_000_000, 7);
    const big = mx.array(data);
    mx.eval(mx.array([1, 2]).mul(3).add(1)); // the chain met once: fused from now on, on every device
    const z = big.mul(3).add(1);
    const before = mx.getActiveMemory();
    const previous = mx.setMemoryLimit(before + MB); // room for less than one more 4 MB buffer
    expect(previous).toBeGreaterThan(before);
    let err: unknown;
    try {
      mx.eval(z);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(TypeError);
    // The chain runs as one fused instruction, named by the primitives it computes.
    expect((err as Error).message).toMatch(/^eval: fused\(mul, add\) failed/);
    expect((err as Error).message).toContain("memory limit");
    expect((err as Error).message).toContain("[1000000] float32");
    // Nothing leaked from the failed run, the output is still lazy, and the input still reads.
    expect(mx.getActiveMemory()).toBe(before);
    expect(z.handle).toBe(0);
    expect(z.node).not.toBeNull();
    expect(big.index(12345).item()).toBe(data[12345]);
    expect(() => z.tolist()).toThrow(/memory limit/);

    expect(mx.setMemoryLimit(previous)).toBe(before + MB);
    mx.eval(z);
    const got = z.toTypedArray() as Float32Array;
    for (const i of [0, 1, 999_999, 31_337]) expect(got[i]).toBe(Math.fround(Math.fround(3 * data[i]) + 1));
  });

  it("rejects a negative limit", () => {
    expect(() => mx.setMemoryLimit(-1)).toThrow(RangeError);
  });
});

describe("memory figures", () => {
  it("peak memory tracks the high-water mark and resets to the active memory", () => {
    globalThis.gc!(); // what earlier tests dropped is swept now, not in the middle of this one
    mx.getActiveMemory();
    mx.resetPeakMemory();
    const base = mx.getActiveMemory();
    expect(mx.getPeakMemory()).toBe(base);
    const t = mx.array(filled(500_000, 8));
    t.dispose();
    expect(mx.getActiveMemory()).toBe(base);
    expect(mx.getPeakMemory()).toBeGreaterThanOrEqual(base + t.nbytes);
    mx.resetPeakMemory();
    expect(mx.getPeakMemory()).toBe(base);
  });

  it("freed buffers are cached for reuse until clearCache", () => {
    mx.clearCache();
    expect(mx.getCacheMemory()).toBe(0);
    const t = mx.array(filled(250_000, 9));
    const active = mx.getActiveMemory();
    t.dispose();
    expect(mx.getCacheMemory()).toBeGreaterThanOrEqual(t.nbytes);
    expect(mx.getActiveMemory()).toBeLessThanOrEqual(active - t.nbytes);
    const u = mx.array(filled(250_000, 10)); // same size: served from the cache
    expect(mx.getCacheMemory()).toBeLessThan(t.nbytes);
    u.dispose();
    const activeNow = mx.getActiveMemory();
    mx.clearCache();
    expect(mx.getCacheMemory()).toBe(0);
    expect(mx.getActiveMemory()).toBe(activeNow);
  });
});

describe("evalAsync", () => {
  it("computes the same values as eval and resolves to undefined", async () => {
    const data = filled(4096, 11);
    const graph = () => {
      const x = mx.array(data).reshape([64, 64]);
      return { s: mx.softmax(x.matmul(x.T), -1), m: mx.max(x.exp(), 0) };
    };
    const a = graph(), b = graph();
    mx.eval(a);
    await expect(mx.evalAsync(b)).resolves.toBeUndefined();
    expect(b.s.node).toBeNull();
    expect(b.s.toTypedArray()).toEqual(a.s.toTypedArray());
    expect(b.m.toTypedArray()).toEqual(a.m.toTypedArray());
    // And they are right: column maxima of exp(x), in float64.
    const m = b.m.toTypedArray() as Float32Array;
    for (let j = 0; j < 64; j++) {
      let ref = -Infinity;
      for (let i = 0; i < 64; i++) ref = Math.max(ref, Math.exp(data[64 * i + j]));
      expect(m[j]).toBeCloseTo(ref, 5);
    }
  });

  it("several evaluations in flight, and a sync eval racing one, all finish right", async () => {
    const x = mx.array([1, 2, 3]);
    const ys = [1, 2, 3, 4].map((k) => x.mul(k));
    const pending = Promise.all(ys.map((y) => mx.evalAsync(y)));
    mx.eval(ys[0]); // computed here first; the async result must not replace or leak it
    await pending;
    ys.forEach((y, k) => expect(y.tolist()).toEqual([1, 2, 3].map((v) => v * (k + 1))));
  });

  it("rejects, not crashes, on a native error, and the arrays stay usable", async () => {
    const data = filled(1_000_000, 12);
    const big = mx.array(data);
    mx.eval(mx.array([1, 2]).add(1).mul(2)); // the chain met once: fused from now on, on every device
    const z = big.add(1).mul(2);
    const before = mx.getActiveMemory();
    // Below what is in use: no allocation fits, however much garbage is collected while awaiting.
    const previous = mx.setMemoryLimit(1);
    // The first allocation fails: that of the fused add and mul.
    await expect(mx.evalAsync(z)).rejects.toThrow(/^evalAsync: fused\(add, mul\) failed during evaluation.*memory limit/s);
    expect(mx.getActiveMemory()).toBeLessThanOrEqual(before); // the failed run kept nothing
    expect(z.handle).toBe(0);
    expect(big.index(7).item()).toBe(data[7]);
    mx.setMemoryLimit(previous);
    await mx.evalAsync(z);
    expect(z.index(7).item()).toBe(Math.fround(Math.fround(data[7] + 1) * 2));
  });

  it("rejects with a DisposedError for a disposed input", async () => {
    const x = mx.array([1, 2]);
    const y = x.add(1);
    x.dispose();
    await expect(mx.evalAsync(y)).rejects.toBeInstanceOf(mx.DisposedError);
  });
});

// Last in the file: the loops leave garbage that the collector frees at a time of its choosing.
describe("arrays dropped in a loop are freed without help", () => {
  it("an async loop (await evalAsync each step) stays bounded over 10,000 steps", async () => {
    const data = filled(N, 1);
    const expected = data.reduce((s, v) => s + (2 * v + 1) ** 2, 0) / N;
    const start = mx.getActiveMemory();
    let peak = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const loss = step(data);
      await mx.evalAsync(loss);
      if (i % 1000 === 0) expect(loss.item() as number).toBeCloseTo(expected, 4);
      peak = Math.max(peak, mx.getActiveMemory() - start);
    }
    expect(peak).toBeLessThan(BOUND);
    expect(BOUND).toBeLessThan(LEAKED / 3);
  });

  it("a synchronous loop (mx.eval each step, as API.md's training loop) stays bounded over 10,000 steps", async () => {
    await tick(); // let the previous test's garbage go first
    const data = filled(N, 2);
    const start = mx.getActiveMemory();
    let peak = 0;
    let steps = 0;
    for (; steps < ITERATIONS; steps++) {
      mx.eval(step(data));
      peak = Math.max(peak, mx.getActiveMemory() - start);
      if (peak >= BOUND) break; // no need to leak the rest to show it
    }
    // FinalizationRegistry callbacks would run only between event-loop tasks, which this loop
    // never reaches; the addon's sweep of weak references frees what the collector has dropped.
    expect(steps, `active memory grew by ${Math.round(peak / MB)} MiB in ${steps} synchronous steps`).toBe(ITERATIONS);
    expect(peak).toBeLessThan(BOUND);
  });
});

describe("native memory told to V8", () => {
  it("a loop that makes and disposes a 96 MiB result each step does not make V8 collect each step", async () => {
    // V8 collects once external memory rises 64 MiB past its level at its last collection; told
    // of each dispose, every step rose past that mark again (a full collection every step or two).
    const x = mx.random.normal([24 * MB]);
    mx.eval(x);
    await tick();
    let majors = 0;
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) majors += (e.detail as { kind: number }).kind === constants.NODE_PERFORMANCE_GC_MAJOR ? 1 : 0;
    });
    observer.observe({ entryTypes: ["gc"] });
    for (let i = 0; i < 24; i++) {
      const y = mx.add(x, i);
      mx.eval(y);
      y.dispose();
    }
    await tick();
    await tick();
    observer.disconnect();
    x.dispose();
    expect(majors, "full collections during 24 steps").toBeLessThanOrEqual(3);
  });
});
