/**
 * mx.profile: every instruction an evaluation runs is counted once under its primitive, times are
 * positive and sum to the kernel total, the result comes back evaluated, and misuse is an error.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

describe("mx.profile", () => {
  it("counts each primitive's instructions and returns the evaluated result", () => {
    const a = mx.random.normal([64, 64]), b = mx.random.normal([64, 64]);
    mx.eval(a, b);
    const p = mx.profile(() => {
      const c = mx.matmul(a, b);
      return { c, s: mx.sum(mx.exp(c)) };
    });
    expect(p.value.c.shape).toEqual([64, 64]);
    const names = new Map(p.rows.map((r) => [r.primitive, r]));
    expect(names.get("matmul")?.calls).toBe(1);
    expect(names.get("exp")?.calls).toBe(1);
    for (const r of p.rows) expect(r.ms).toBeGreaterThan(0);
    expect(p.kernelMs).toBeCloseTo(p.rows.reduce((s, r) => s + r.ms, 0), 9);
    expect(p.wallMs).toBeGreaterThanOrEqual(p.kernelMs);
    expect(p.rows.map((r) => r.ms)).toEqual([...p.rows.map((r) => r.ms)].sort((x, y) => y - x));
    expect(p.toString()).toMatch(/^primitive\s+calls\s+ms\s+%/);
    // The values are the same as without profiling.
    const ref = mx.matmul(a, b);
    expect(p.value.c.toTypedArray()).toEqual(ref.toTypedArray());
  });

  it("sees evaluations inside fn and nothing after it", () => {
    const x = mx.ones([8]);
    mx.eval(x);
    const p = mx.profile(() => {
      mx.eval(mx.sin(x));
      return mx.cos(x);
    });
    expect(p.rows.find((r) => r.primitive === "sin")?.calls).toBe(1);
    expect(p.rows.find((r) => r.primitive === "cos")?.calls).toBe(1);
    const q = mx.profile(() => 1);
    expect(q.rows).toEqual([]);
    expect(q.value).toBe(1);
  });

  it("names a fused chain by the primitives it computes", () => {
    // Chains are fused on the cpu only (docs/cuda.md): pinned there whatever the default device.
    const prev = mx.defaultDevice();
    mx.setDefaultDevice(mx.cpu);
    try {
      const a = mx.random.normal([40000]); // a plain evaluation fuses cpu chains from 8,192 elements
      mx.eval(a);
      const p = mx.profile(() => mx.exp(mx.multiply(a, 2)));
      expect(p.rows.map((r) => r.primitive)).toEqual(["fused(mul, exp)"]);
      expect(p.rows[0].calls).toBe(1);
    } finally {
      mx.setDefaultDevice(prev);
    }
  });

  it("rejects a non-function and nesting, and closes on a throw", () => {
    expect(() => mx.profile(3 as never)).toThrow(/profile: fn must be a function/);
    expect(() => mx.profile(() => mx.profile(() => 1))).toThrow(/already open/);
    expect(() => mx.profile(() => { throw new Error("boom"); })).toThrow("boom");
    expect(mx.profile(() => mx.add(mx.ones([2]), 1)).rows.length).toBeGreaterThan(0);
  });
});
