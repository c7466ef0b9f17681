/**
 * @file Laziness and evaluation: ops only record nodes, `mx.eval` runs one native program per call
 * over the shared graph of every array in its argument trees, and evaluated arrays keep data and
 * drop their graph. Counted with mx.internal.evalStats.
 */
import { beforeEach, describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

const { evalStats } = mx.internal;

/** Executed instructions of one primitive since the last reset. */
const ran = (name: string): number => evalStats.ops.get(name) ?? 0;
const totalOps = (): number => [...evalStats.ops.values()].reduce((a, b) => a + b, 0);

beforeEach(() => evalStats.reset());

describe("ops record lazily", () => {
  it("a new array has no handle and a node; nothing runs until a read", () => {
    const x = mx.array([1, 2, 3]);
    expect(x.handle).toBeGreaterThan(0); // data from JS is stored at once
    expect(x.node).toBeNull();
    const y = x.mul(2).add(1);
    expect(y.handle).toBe(0);
    expect(y.node).not.toBeNull();
    expect(y.node!.prim.name).toBe("add");
    expect(y.shape).toEqual([3]);
    expect(y.dtype).toBe("float32");
    expect(evalStats.programs).toBe(0);
    expect(evalStats.instructions).toBe(0);

    expect(y.tolist()).toEqual([3, 5, 7]);
    expect(evalStats.programs).toBe(1);
    expect(ran("mul")).toBe(1);
    expect(ran("add")).toBe(1);
    expect(evalStats.instructions).toBe(totalOps());
  });

  it("creation ops are lazy too", () => {
    const z = mx.zeros([2, 3]);
    const r = mx.arange(5);
    const e = mx.eye(3);
    for (const a of [z, r, e]) {
      expect(a.handle).toBe(0);
      expect(a.node).not.toBeNull();
    }
    expect(evalStats.programs).toBe(0);
  });

  it("after eval an array has a handle and its node is dropped", () => {
    const x = mx.array([[1, 2], [3, 4]]);
    const y = mx.sum(x.T.mul(x), 0);
    mx.eval(y);
    expect(y.handle).toBeGreaterThan(0);
    expect(y.node).toBeNull();
    // x.T * x = [[1,6],[6,16]] elementwise; summed over axis 0.
    expect(y.tolist()).toEqual([7, 22]);
    expect(evalStats.programs).toBe(1); // the read after eval ran nothing
  });

  it("each read of a lazy array runs one program, later reads none", () => {
    const y = mx.array([1, 2]).add(1);
    expect(y.toTypedArray()).toEqual(new Float32Array([2, 3]));
    expect(y.tolist()).toEqual([2, 3]);
    expect(evalStats.programs).toBe(1);
    const s = mx.sum(y);
    expect(s.item()).toBe(5);
    expect(s.item()).toBe(5);
    expect(evalStats.programs).toBe(2);
  });
});

describe("one native program per mx.eval", () => {
  it("many roots in nested trees (arrays, JS arrays, plain objects) run as one program", () => {
    const x = mx.array([1, 2, 3, 4]);
    const out = Array.from({ length: 8 }, (_, k) => x.mul(k + 1).add(k));
    const tree = [out[0], [out[1], { a: out[2], b: [out[3], { c: out[4], d: [[out[5]]] }] }]];
    mx.eval(tree, { e: out[6], f: { g: [out[7]] } }, 3, "not an array", null);
    expect(evalStats.programs).toBe(1);
    expect(ran("mul")).toBe(8);
    expect(ran("add")).toBe(8);
    out.forEach((o) => {
      expect(o.handle).toBeGreaterThan(0);
      expect(o.node).toBeNull();
    });
    expect(evalStats.programs).toBe(1);
    out.forEach((o, k) => expect(o.tolist()).toEqual([1, 2, 3, 4].map((v) => v * (k + 1) + k)));
    expect(evalStats.programs).toBe(1); // reads of evaluated arrays run nothing
  });

  it("a root listed twice, or reachable from another root, is computed once", () => {
    const x = mx.array([1, 2]);
    const a = x.exp();
    const b = a.log();
    mx.eval(a, [a, b], { again: a, b });
    expect(evalStats.programs).toBe(1);
    expect(ran("exp")).toBe(1);
    expect(ran("log")).toBe(1);
    const got = b.tolist() as number[];
    [1, 2].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
  });

  it("a shared subgraph is evaluated once for all its consumers", () => {
    const x = mx.array([0.5, -1, 2]);
    const s = x.exp(); // shared by both roots
    const a = s.add(1);
    const b = s.mul(2);
    mx.eval(a, b);
    expect(evalStats.programs).toBe(1);
    expect(ran("exp")).toBe(1);
    const ea = a.tolist() as number[], eb = b.tolist() as number[];
    [0.5, -1, 2].forEach((v, i) => {
      expect(ea[i]).toBeCloseTo(Math.exp(v) + 1, 5);
      expect(eb[i]).toBeCloseTo(2 * Math.exp(v), 5);
    });
  });

  it("a diamond chain of depth 20 runs 20 adds, not 2^20", () => {
    let z = mx.array([1, 2, 3]);
    for (let i = 0; i < 20; i++) z = z.add(z);
    expect(evalStats.programs).toBe(0);
    expect(z.tolist()).toEqual([1, 2, 3].map((v) => v * 2 ** 20));
    expect(evalStats.programs).toBe(1);
    expect(ran("add")).toBe(20);
    expect(evalStats.instructions).toBe(20);
  });

  it("eval of already-evaluated arrays runs no program", () => {
    const x = mx.array([1, 2, 3]);
    const y = x.add(1);
    mx.eval(y);
    evalStats.reset();
    mx.eval(x, y, [y, { x }]);
    mx.eval();
    mx.eval({}, [], 1);
    expect(evalStats.programs).toBe(0);
    expect(evalStats.instructions).toBe(0);
  });

  it("mixing evaluated and lazy roots computes only the lazy part", () => {
    const x = mx.array([1, 2, 3]);
    const y = x.neg();
    mx.eval(y);
    evalStats.reset();
    const z = y.square();
    mx.eval(y, z, x);
    expect(evalStats.programs).toBe(1);
    expect(ran("neg")).toBe(0); // y's data is an input, not recomputed
    expect(totalOps()).toBe(evalStats.instructions);
    expect(z.tolist()).toEqual([1, 4, 9]);
  });

  it("evalAsync also runs one program for a whole tree", async () => {
    const x = mx.array([1, 2, 3]);
    const a = x.add(1), b = x.mul(3), c = mx.sum(a.mul(b));
    await mx.evalAsync([a, { b, more: [c] }]);
    expect(evalStats.programs).toBe(1);
    expect([a, b, c].every((t) => t.handle > 0 && t.node === null)).toBe(true);
    expect(c.item()).toBe(2 * 3 + 3 * 6 + 4 * 9);
    await mx.evalAsync(a, b, c);
    expect(evalStats.programs).toBe(1);
  });

  it("the counters reset", () => {
    mx.eval(mx.array([1]).add(1));
    expect(evalStats.programs).toBe(1);
    evalStats.reset();
    expect(evalStats.programs).toBe(0);
    expect(evalStats.instructions).toBe(0);
    expect(evalStats.ops.size).toBe(0);
  });
});
