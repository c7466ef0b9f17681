/**
 * mx.fast: layerNorm and rmsNorm against their formulas, rope in both layouts against MLX's
 * documented formula, scaledDotProductAttention (no mask, additive and bool masks, "causal" with
 * Lq != Lk aligned at the last key, grouped-query heads) against float64 loops; gradients by
 * finite differences; errors at the call naming the op. Then the fused kernels themselves: one
 * node each (and one backward node), against the same computation written with plain ops and
 * against float64 loops for the gradients (dx, dw, db; dq, dk, dv), on the vectorized row sizes
 * and their tails, non-contiguous operands, empty and size-1 axes, the half types and float64,
 * rows that see no key, and under vmap (batched weights and rope offsets).
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { checkGrads } from "@tessera/transforms/testing";
import { vjp, vmap } from "@tessera/transforms";
import { at, expectClose, fromMx, randomRef, rng, sizeOf, unravel, type Ref } from "../helpers/reference.js";

type A = mx.Array;
const toMx64 = (r: Ref) => mx.reshape(mx.array(r.data), r.shape);
const toMx32 = (r: Ref) => mx.reshape(mx.array(r.data, "float32"), r.shape);

/** Applies f to each row (last axis) of x. */
function rows(x: Ref, f: (row: number[], rowIndex: number[]) => number[]): Ref {
  const d = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const data = new Float64Array(x.data.length);
  for (let r = 0; r < sizeOf(lead); r++) {
    const y = f(Array.from(x.data.subarray(r * d, r * d + d)), unravel(r, lead));
    data.set(y, r * d);
  }
  return { shape: x.shape, data };
}

function layerNormRef(x: Ref, w: Ref | null, b: Ref | null, eps: number): Ref {
  return rows(x, (row) => {
    const mean = row.reduce((s, v) => s + v, 0) / row.length;
    const v = row.reduce((s, u) => s + (u - mean) ** 2, 0) / row.length;
    return row.map((u, i) => ((u - mean) / Math.sqrt(v + eps)) * (w ? w.data[i] : 1) + (b ? b.data[i] : 0));
  });
}

function rmsNormRef(x: Ref, w: Ref | null, eps: number): Ref {
  return rows(x, (row) => {
    const ms = row.reduce((s, v) => s + v * v, 0) / row.length;
    return row.map((u, i) => (u / Math.sqrt(ms + eps)) * (w ? w.data[i] : 1));
  });
}

describe("fast.layerNorm and fast.rmsNorm", () => {
  const next = rng(3);
  const r = (shape: number[], lo = -2, hi = 2) => randomRef(shape, next, lo, hi);

  it("layerNorm matches (x - mean) / sqrt(var + eps) * w + b, with and without weight and bias", () => {
    for (const shape of [[5], [3, 4], [2, 3, 7]]) {
      const x = r(shape), d = shape[shape.length - 1], w = r([d]), b = r([d]);
      for (const [ww, bb] of [[w, b], [null, null], [w, null], [null, b]] as [Ref | null, Ref | null][]) {
        const y = mx.fast.layerNorm(toMx64(x), ww && toMx64(ww), bb && toMx64(bb), 1e-5);
        expect(y.dtype).toBe("float64");
        expectClose(y, layerNormRef(x, ww, bb, 1e-5), { atol: 1e-12, rtol: 1e-12 });
      }
    }
    const x = r([4, 6]), w = r([6]), b = r([6]);
    const y = mx.fast.layerNorm(toMx32(x), toMx32(w), toMx32(b), 1e-3);
    expect(y.dtype).toBe("float32");
    expectClose(y, layerNormRef(x, w, b, 1e-3), { atol: 1e-5, rtol: 1e-5 });
    const h = mx.fast.layerNorm(toMx32(x).astype("float16"), null, null, 1e-5);
    expect(h.dtype).toBe("float16");
    expectClose(h.astype("float64"), layerNormRef(fromHalf(x), null, null, 1e-5), { atol: 5e-3, rtol: 5e-3 });
  });

  it("rmsNorm matches x / sqrt(mean(x^2) + eps) * w", () => {
    for (const shape of [[5], [3, 4], [2, 3, 7]]) {
      const x = r(shape), w = r([shape[shape.length - 1]]);
      expectClose(mx.fast.rmsNorm(toMx64(x), toMx64(w), 1e-6), rmsNormRef(x, w, 1e-6), { atol: 1e-12, rtol: 1e-12 });
      expectClose(mx.fast.rmsNorm(toMx64(x), null, 1e-6), rmsNormRef(x, null, 1e-6), { atol: 1e-12, rtol: 1e-12 });
    }
    const x = r([4, 6]), w = r([6]);
    const y = mx.fast.rmsNorm(toMx32(x), toMx32(w), 1e-5);
    expect(y.dtype).toBe("float32");
    expectClose(y, rmsNormRef(x, w, 1e-5), { atol: 1e-5, rtol: 1e-5 });
    // a float64 weight promotes a float32 input
    expect(mx.fast.rmsNorm(toMx32(x), toMx64(w), 1e-5).dtype).toBe("float64");
  });

  it("gradients match finite differences", () => {
    const x = toMx64(r([2, 5])), w = toMx64(r([5])), b = toMx64(r([5]));
    checkGrads((x, w, b) => mx.fast.layerNorm(x, w, b, 1e-5), [x, w, b]);
    checkGrads((x) => mx.fast.layerNorm(x, null, null, 1e-5), [x]);
    checkGrads((x, w) => mx.fast.rmsNorm(x, w, 1e-5), [x, w]);
    checkGrads((x) => mx.fast.rmsNorm(x, null, 1e-5), [x]);
  });

  it("errors name the op", () => {
    const x = mx.ones([2, 3]);
    expect(() => mx.fast.layerNorm(x, mx.ones([2]), null, 1e-5)).toThrow(/^fast\.layerNorm: weight must have shape \[3\] \(the last axis of x \[2,3\]\); got \[2\]/);
    expect(() => mx.fast.layerNorm(x, null, mx.ones([1, 3]), 1e-5)).toThrow(/^fast\.layerNorm: bias must have shape \[3\]/);
    expect(() => mx.fast.layerNorm(x, null, null, undefined as unknown as number)).toThrow(/^fast\.layerNorm: eps \(argument 4\) must be a number; got undefined/);
    expect(() => mx.fast.layerNorm(x, null, null, -1)).toThrow(RangeError);
    expect(() => mx.fast.layerNorm(mx.ones([2], "int32"), null, null, 1e-5)).toThrow(/^fast\.layerNorm: inputs must be floating point .*got x int32/);
    expect(() => mx.fast.layerNorm(mx.array(1), null, null, 1e-5)).toThrow(/^fast\.layerNorm: x must have at least 1 dimension/);
    expect(() => mx.fast.rmsNorm(x, mx.ones([4]), 1e-5)).toThrow(/^fast\.rmsNorm: weight must have shape \[3\]/);
    expect(() => mx.fast.rmsNorm([1, 2] as unknown as A, null, 1e-5)).toThrow(/^fast\.rmsNorm: argument 1 must be an Array/);
    expect(() => mx.fast.rmsNorm(x, null, 1e-5, { device: { type: "gpu", index: 7 } })).toThrow(/^fast\.rmsNorm: device gpu:7 is not available/);
  });
});

/** float32 -> float16 rounding of a reference, so half-precision results compare to their inputs. */
function fromHalf(x: Ref): Ref {
  const h = mx.reshape(mx.array(x.data, "float16"), x.shape).astype("float64");
  return { shape: x.shape, data: Float64Array.from(h.reshape([-1]).tolist() as number[]) };
}

/**
 * MLX's fast.rope: row l (axis -2) is at position p = (offset + l) * scale; pair i (of dims / 2)
 * turns by p * base^(-2i / dims); the pair is (x[2i], x[2i+1]) when traditional, else
 * (x[i], x[i + dims/2]); features from dims on are unchanged.
 */
function ropeRef(x: Ref, dims: number, o: { traditional: boolean; base: number; scale: number; offset: number }): Ref {
  const len = x.shape[x.shape.length - 2];
  return rows(x, (row, idx) => {
    const l = idx[idx.length - 1];
    const p = (o.offset + l) * o.scale;
    const y = [...row];
    for (let i = 0; i < dims / 2; i++) {
      const theta = p * o.base ** ((-2 * i) / dims);
      const [j1, j2] = o.traditional ? [2 * i, 2 * i + 1] : [i, i + dims / 2];
      y[j1] = row[j1] * Math.cos(theta) - row[j2] * Math.sin(theta);
      y[j2] = row[j1] * Math.sin(theta) + row[j2] * Math.cos(theta);
    }
    void len;
    return y;
  });
}

describe("fast.rope", () => {
  const next = rng(7);

  it.each([false, true])("traditional %s: full and partial dims, offset, scale, base", (traditional) => {
    const cases: [number[], number, { base: number; scale: number; offset: number }][] = [
      [[2, 3, 5, 8], 8, { base: 10000, scale: 1, offset: 0 }],
      [[1, 2, 4, 10], 6, { base: 10000, scale: 1, offset: 3 }],
      [[3, 6], 4, { base: 500, scale: 0.5, offset: 7 }],
      [[2, 1, 4], 2, { base: 10, scale: 2, offset: 1 }],
    ];
    for (const [shape, dims, o] of cases) {
      const x = randomRef(shape, next);
      const y = mx.fast.rope(toMx64(x), dims, { traditional, ...o });
      expect(y.dtype).toBe("float64");
      expectClose(y, ropeRef(x, dims, { traditional, ...o }), { atol: 1e-12, rtol: 1e-12 });
      const y32 = mx.fast.rope(toMx32(x), dims, { traditional, ...o });
      expect(y32.dtype).toBe("float32");
      expectClose(y32, ropeRef(x, dims, { traditional, ...o }), { atol: 2e-5, rtol: 2e-5 });
    }
  });

  it("defaults (not traditional, base 10000, scale 1, offset 0) and an array offset", () => {
    const x = randomRef([2, 4, 6], next);
    const want = ropeRef(x, 6, { traditional: false, base: 10000, scale: 1, offset: 0 });
    expectClose(mx.fast.rope(toMx64(x), 6), want, { atol: 1e-12 });
    const shifted = ropeRef(x, 4, { traditional: true, base: 10000, scale: 1, offset: 5 });
    expectClose(mx.fast.rope(toMx64(x), 4, { traditional: true, offset: mx.array(5, "int32") }), shifted, { atol: 1e-12 });
  });

  it("gradients match finite differences", () => {
    const x = toMx64(randomRef([2, 3, 6], next));
    checkGrads((x) => mx.fast.rope(x, 4, { traditional: false, offset: 2 }), [x]);
    checkGrads((x) => mx.fast.rope(x, 6, { traditional: true, base: 100 }), [x]);
  });

  it("errors name fast.rope", () => {
    const x = mx.ones([2, 3, 8]);
    expect(() => mx.fast.rope(x, 5)).toThrow(/^fast\.rope: dims must be even and at most the last axis of x \(8\); got 5/);
    expect(() => mx.fast.rope(x, 10)).toThrow(RangeError);
    expect(() => mx.fast.rope(x, 0)).toThrow(/^fast\.rope: dims must be at least 1; got 0/);
    expect(() => mx.fast.rope(mx.ones([8]), 8)).toThrow(/^fast\.rope: x must have at least 2 dimensions/);
    expect(() => mx.fast.rope(x, 8, { traditional: 1 as unknown as boolean })).toThrow(/^fast\.rope: traditional must be a boolean/);
    expect(() => mx.fast.rope(x, 8, { base: -2 })).toThrow(/^fast\.rope: base must be positive; got -2/);
    expect(() => mx.fast.rope(x, 8, { offset: mx.ones([2]) })).toThrow(/^fast\.rope: offset must be a number or a size-1 array/);
    expect(() => mx.fast.rope(mx.ones([2, 8], "int32"), 8)).toThrow(/^fast\.rope: inputs must be floating point/);
    expect(() => mx.fast.rope(x, 8, { freqs: 1 } as unknown as mx.fast.RopeOptions)).toThrow(/^fast\.rope: .*unknown option "freqs"/);
  });
});

type Mask = Ref | "causal" | { bool: boolean[]; shape: number[] } | null;

/**
 * softmax(scale q k^T + mask) v by loops, query head h reading key/value head floor(h / (H / Hkv));
 * "causal" keeps key j for query i when j <= i + Lk - Lq; a bool mask keeps where true.
 */
function attentionRef(q: Ref, k: Ref, v: Ref, scale: number, mask: Mask): Ref {
  const [b, h, lq, d] = q.shape, [, hkv, lk] = k.shape, dv = v.shape[3];
  const rep = h / hkv;
  const shape = [b, h, lq, dv];
  const data = new Float64Array(sizeOf(shape));
  for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let i = 0; i < lq; i++) {
    const kh = Math.floor(hi / rep);
    const s: number[] = [];
    for (let j = 0; j < lk; j++) {
      let dot = 0;
      for (let e = 0; e < d; e++) dot += at(q, [bi, hi, i, e]) * at(k, [bi, kh, j, e]);
      let sc = scale * dot;
      if (mask === "causal") sc = j <= i + lk - lq ? sc : -Infinity;
      else if (mask && "bool" in mask) {
        const lead = 4 - mask.shape.length, idx = [bi, hi, i, j].slice(lead);
        let off = 0;
        mask.shape.forEach((n, ax) => (off = off * n + (n === 1 ? 0 : idx[ax])));
        sc = mask.bool[off] ? sc : -Infinity;
      } else if (mask) sc += at(mask, [bi, hi, i, j]);
      s.push(sc);
    }
    const m = Math.max(...s);
    const p = s.map((u) => Math.exp(u - m));
    const z = p.reduce((a, u) => a + u, 0);
    for (let e = 0; e < dv; e++) {
      let acc = 0;
      for (let j = 0; j < lk; j++) acc += (p[j] / z) * at(v, [bi, kh, j, e]);
      data[((bi * h + hi) * lq + i) * dv + e] = acc;
    }
  }
  return { shape, data };
}

describe("fast.scaledDotProductAttention", () => {
  const next = rng(13);
  const r = (shape: number[]) => randomRef(shape, next);
  const sdpa = mx.fast.scaledDotProductAttention;

  it("no mask, with the default scale 1/sqrt(D) and a given one", () => {
    const q = r([2, 3, 4, 5]), k = r([2, 3, 6, 5]), v = r([2, 3, 6, 7]);
    const y = sdpa(toMx64(q), toMx64(k), toMx64(v));
    expect(y.shape).toEqual([2, 3, 4, 7]);
    expectClose(y, attentionRef(q, k, v, 1 / Math.sqrt(5), null), { atol: 1e-12, rtol: 1e-12 });
    expectClose(sdpa(toMx64(q), toMx64(k), toMx64(v), { scale: 0.3 }), attentionRef(q, k, v, 0.3, null), { atol: 1e-12, rtol: 1e-12 });
    const y32 = sdpa(toMx32(q), toMx32(k), toMx32(v), { scale: 0.3 });
    expect(y32.dtype).toBe("float32");
    expectClose(y32, attentionRef(q, k, v, 0.3, null), { atol: 1e-5, rtol: 1e-5 });
  });

  it("additive masks broadcast to [B, H, Lq, Lk], and bool masks keep where true", () => {
    const q = r([2, 2, 3, 4]), k = r([2, 2, 5, 4]), v = r([2, 2, 5, 3]);
    for (const ms of [[3, 5], [2, 1, 3, 5], [1, 2, 1, 5]]) {
      const m = r(ms);
      const y = sdpa(toMx64(q), toMx64(k), toMx64(v), { scale: 0.5, mask: toMx64(m) });
      expectClose(y, attentionRef(q, k, v, 0.5, m), { atol: 1e-12, rtol: 1e-12 });
    }
    const bool = Array.from({ length: 15 }, (_, i) => i % 3 !== 1 || i % 5 === 0);
    const bm = mx.reshape(mx.array(bool), [3, 5]);
    const y = sdpa(toMx64(q), toMx64(k), toMx64(v), { scale: 0.5, mask: bm });
    expectClose(y, attentionRef(q, k, v, 0.5, { bool, shape: [3, 5] }), { atol: 1e-12, rtol: 1e-12 });
  });

  it('"causal" aligns the last query with the last key (Lq < Lk, Lq == Lk)', () => {
    for (const [lq, lk] of [[3, 3], [2, 5], [1, 4]]) {
      const q = r([1, 2, lq, 4]), k = r([1, 2, lk, 4]), v = r([1, 2, lk, 3]);
      const y = sdpa(toMx64(q), toMx64(k), toMx64(v), { scale: 0.5, mask: "causal" });
      expectClose(y, attentionRef(q, k, v, 0.5, "causal"), { atol: 1e-12, rtol: 1e-12 });
    }
    // the first query of a square causal attention sees only the first key: its output is v[0]
    const v = r([1, 1, 3, 2]);
    const y = sdpa(toMx64(r([1, 1, 3, 2])), toMx64(r([1, 1, 3, 2])), toMx64(v), { mask: "causal" });
    expect((mx.index(y, 0, 0, 0).tolist() as number[])).toEqual([v.data[0], v.data[1]]);
  });

  it("grouped-query heads: H a multiple of Hkv", () => {
    for (const [h, hkv] of [[4, 2], [6, 1], [4, 4]]) {
      const q = r([2, h, 3, 4]), k = r([2, hkv, 5, 4]), v = r([2, hkv, 5, 2]);
      expectClose(sdpa(toMx64(q), toMx64(k), toMx64(v), { scale: 0.4 }), attentionRef(q, k, v, 0.4, null), { atol: 1e-12, rtol: 1e-12 });
      const m = r([2, h, 3, 5]);
      expectClose(sdpa(toMx64(q), toMx64(k), toMx64(v), { scale: 0.4, mask: toMx64(m) }), attentionRef(q, k, v, 0.4, m), { atol: 1e-12, rtol: 1e-12 });
      expectClose(sdpa(toMx64(q), toMx64(k), toMx64(v), { mask: "causal" }), attentionRef(q, k, v, 0.5, "causal"), { atol: 1e-12, rtol: 1e-12 });
    }
  });

  it("gradients match finite differences", () => {
    const q = toMx64(r([1, 4, 3, 2])), k = toMx64(r([1, 2, 4, 2])), v = toMx64(r([1, 2, 4, 3])), m = toMx64(r([3, 4]));
    checkGrads((q, k, v) => sdpa(q, k, v, { scale: 0.7 }), [q, k, v]);
    checkGrads((q, k, v, m) => sdpa(q, k, v, { mask: m }), [q, k, v, m]);
    checkGrads((q, k, v) => sdpa(q, k, v, { mask: "causal" }), [q, k, v]);
  });

  it("errors name fast.scaledDotProductAttention", () => {
    const q = mx.ones([1, 4, 3, 2]), k = mx.ones([1, 2, 5, 2]), v = mx.ones([1, 2, 5, 3]);
    const re = (s: string) => new RegExp(`^fast\\.scaledDotProductAttention: ${s}`);
    expect(() => sdpa(mx.ones([4, 3, 2]), k, v)).toThrow(re("q, k and v must be 4-D"));
    expect(() => sdpa(q, mx.ones([1, 3, 5, 2]), mx.ones([1, 3, 5, 3]))).toThrow(re("the query heads \\(4\\) must be a multiple of the key/value heads \\(3\\)"));
    expect(() => sdpa(q, mx.ones([1, 2, 5, 3]), v)).toThrow(re("q and k must have the same feature size D"));
    expect(() => sdpa(q, k, mx.ones([1, 2, 4, 3]))).toThrow(re("k and v must have the same heads and length"));
    expect(() => sdpa(q, mx.ones([2, 2, 5, 2]), v)).toThrow(re("q, k and v must have the same batch size"));
    expect(() => sdpa(q, k, v, { mask: mx.ones([4, 5]) })).toThrow(re("mask of shape \\[4,5\\] cannot be broadcast to the scores' shape \\[1,4,3,5\\]"));
    expect(() => sdpa(q, k, v, { mask: "upper" as "causal" })).toThrow(re('mask must be an array or "causal"; got a string'));
    expect(() => sdpa(q, k, v, { scale: NaN })).toThrow(RangeError);
    expect(() => sdpa(q.astype("int32"), k.astype("int32"), v.astype("int32"))).toThrow(re("inputs must be floating point"));
    expect(() => sdpa(q, k, v, { device: { type: "gpu", index: 7 } })).toThrow(re("device gpu:7 is not available"));
  });
});

// ---- the fused kernels ----

/** The primitive that computed x (through a final cast, if any), by name. */
const primOf = (x: A) => x.node?.prim.name;
/** The names of every node the arrays depend on (pending ones). */
function primsUnder(xs: A[]): Set<string> {
  const seen = new Set<unknown>(), names = new Set<string>();
  const stack = xs.map((x) => x.node).filter((n) => n);
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    names.add(n.prim.name);
    for (const x of n.inputs) if (x.node) stack.push(x.node);
  }
  return names;
}

/** Plain-op compositions (public ops only) of the fused ops, to compare the kernels with. */
const plain = {
  layerNorm(x: A, w: A | null, b: A | null, eps: number): A {
    const xc = mx.subtract(x, mx.mean(x, -1, { keepdims: true }));
    let y = mx.multiply(xc, mx.rsqrt(mx.add(mx.mean(mx.square(xc), -1, { keepdims: true }), eps)));
    if (w) y = mx.multiply(y, w);
    return b ? mx.add(y, b) : y;
  },
  rmsNorm(x: A, w: A | null, eps: number): A {
    const y = mx.multiply(x, mx.rsqrt(mx.add(mx.mean(mx.square(x), -1, { keepdims: true }), eps)));
    return w ? mx.multiply(y, w) : y;
  },
  softmax(x: A, axis: number): A {
    const e = mx.exp(mx.subtract(x, mx.stopGradient(mx.max(x, axis, { keepdims: true }))));
    return mx.divide(e, mx.sum(e, axis, { keepdims: true }));
  },
  attention(q: A, k: A, v: A, scale: number, mask: A | "causal" | null): A {
    const rep = q.shape[1] / k.shape[1];
    const kk = mx.repeat(k, rep, 1), vv = mx.repeat(v, rep, 1);
    let s = mx.multiply(mx.matmul(q, mx.swapaxes(kk, -1, -2)), scale);
    const [lq, lk] = [q.shape[2], k.shape[2]];
    if (mask === "causal") {
      const keep = mx.greaterEqual(mx.add(mx.expandDims(mx.arange(lq), 1), lk - lq), mx.expandDims(mx.arange(lk), 0));
      s = mx.where(keep, s, s.dtype === "float64" ? -Number.MAX_VALUE : -3.4028234663852886e38);
    } else if (mask) s = mx.add(s, mask);
    return mx.matmul(plain.softmax(s, -1), vv);
  },
};

/** float64 loops: layerNorm's (or rmsNorm's) [dx, dw, db] for the output cotangent g. */
function normGradRef(kind: "layer" | "rms", x: Ref, w: Ref | null, g: Ref, eps: number): [Ref, Ref, Ref] {
  const d = x.shape[x.shape.length - 1], n = x.data.length / d;
  const dx = new Float64Array(x.data.length), dw = new Float64Array(d), db = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    const row = x.data.subarray(r * d, r * d + d), gr = g.data.subarray(r * d, r * d + d);
    const mean = kind === "layer" ? row.reduce((a, u) => a + u, 0) / d : 0;
    const v = row.reduce((a, u) => a + (u - mean) ** 2, 0) / d;
    const rs = 1 / Math.sqrt(v + eps);
    const xh = Array.from(row, (u) => (u - mean) * rs);
    const gh = Array.from(gr, (u, i) => u * (w ? w.data[i] : 1));
    const m1 = kind === "layer" ? gh.reduce((a, u) => a + u, 0) / d : 0;
    const m2 = gh.reduce((a, u, i) => a + u * xh[i], 0) / d;
    for (let i = 0; i < d; i++) {
      dx[r * d + i] = rs * (gh[i] - m1 - xh[i] * m2);
      dw[i] += gr[i] * xh[i];
      db[i] += gr[i];
    }
  }
  return [{ shape: x.shape, data: dx }, { shape: [d], data: dw }, { shape: [d], data: db }];
}

/** float64 loops: attention's [dq, dk, dv] for the output cotangent g (Hkv = H). */
function attentionGradRef(q: Ref, k: Ref, v: Ref, scale: number, mask: Ref | "causal" | null, g: Ref): [Ref, Ref, Ref] {
  const [b, h, lq, d] = q.shape, lk = k.shape[2], dv = v.shape[3];
  const dq = new Float64Array(q.data.length), dk = new Float64Array(k.data.length), dvv = new Float64Array(v.data.length);
  const ix = (x: Ref, i: number[]) => i.reduce((o, u, a) => o * x.shape[a] + u, 0);
  for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let i = 0; i < lq; i++) {
    const s: number[] = [];
    const none = mask === "causal" && i + lk - lq < 0;
    for (let j = 0; j < lk; j++) {
      let dot = 0;
      for (let e = 0; e < d; e++) dot += at(q, [bi, hi, i, e]) * at(k, [bi, hi, j, e]);
      let sc = scale * dot;
      if (mask === "causal") sc = none ? 0 : j <= i + lk - lq ? sc : -Infinity;
      else if (mask) sc += at(mask, [bi, hi, i, j]);
      s.push(sc);
    }
    const m = Math.max(...s), e0 = s.map((u) => Math.exp(u - m)), z = e0.reduce((a, u) => a + u, 0);
    const p = e0.map((u) => u / z);
    const dp = p.map((_, j) => {
      let acc = 0;
      for (let e = 0; e < dv; e++) acc += at(g, [bi, hi, i, e]) * at(v, [bi, hi, j, e]);
      return acc;
    });
    const dsum = p.reduce((a, u, j) => a + u * dp[j], 0);
    for (let j = 0; j < lk; j++) {
      const ds = none ? 0 : scale * p[j] * (dp[j] - dsum);
      for (let e = 0; e < d; e++) {
        dq[ix(q, [bi, hi, i, e])] += ds * at(k, [bi, hi, j, e]);
        dk[ix(k, [bi, hi, j, e])] += ds * at(q, [bi, hi, i, e]);
      }
      for (let e = 0; e < dv; e++) dvv[ix(v, [bi, hi, j, e])] += p[j] * at(g, [bi, hi, i, e]);
    }
  }
  return [{ shape: q.shape, data: dq }, { shape: k.shape, data: dk }, { shape: v.shape, data: dvv }];
}

describe("the fused kernels", () => {
  const next = rng(21);
  const r = (shape: number[], lo = -2, hi = 2) => randomRef(shape, next, lo, hi);
  const sdpa = mx.fast.scaledDotProductAttention;

  it("each op is one fused node, and its gradient one fused backward node", () => {
    const x = toMx32(r([3, 8])), w = toMx32(r([8])), b = toMx32(r([8]));
    expect(primOf(mx.fast.layerNorm(x, w, b, 1e-5))).toBe("layerNorm");
    expect(primOf(mx.fast.rmsNorm(x, w, 1e-5))).toBe("rmsNorm");
    expect(primOf(mx.fast.rope(mx.reshape(x, [3, 2, 4]), 4))).toBe("rope");
    expect(primOf(mx.softmax(x))).toBe("softmax");
    expect(primOf(mx.logsumexp(x, -1))).toBe("logsumexp");
    const q = toMx32(r([1, 2, 3, 4]));
    expect(primOf(sdpa(q, q, q, { mask: "causal" }))).toBe("attention");
    const [, ln] = vjp((x, w, b) => mx.fast.layerNorm(x, w, b, 1e-5), [x, w, b], [mx.onesLike(x)]);
    expect(primsUnder(ln)).toContain("layerNormBwd");
    const [, rn] = vjp((x, w) => mx.fast.rmsNorm(x, w, 1e-5), [x, w], [mx.onesLike(x)]);
    expect(primsUnder(rn)).toContain("rmsNormBwd");
    const [, sm] = vjp((x) => mx.softmax(x), [x], [mx.onesLike(x)]);
    expect(primsUnder(sm)).toContain("softmaxBwd");
    const [, at3] = vjp((q, k, v) => sdpa(q, k, v), [q, q, q], [mx.onesLike(q)]);
    expect(primsUnder(at3)).toContain("attentionBwd");
    expect(primsUnder(at3)).not.toContain("matmul");
  });

  // 1..17 and 33: below, at and past one AVX-512 / AVX2 vector; 1000 and 4096: long rows
  const widths = [1, 2, 7, 8, 15, 16, 17, 33, 1000, 4096];

  it.each(widths)("layerNorm and rmsNorm, row width %i: fused = plain ops (float32), gradients = float64 loops", (d) => {
    const n = d > 100 ? 3 : 5;
    const x = r([n, d]), w = r([d]), b = r([d]), g = r([n, d]);
    const [xm, wm, bm, gm] = [x, w, b, g].map(toMx32);
    expectClose(mx.fast.layerNorm(xm, wm, bm, 1e-5), fromMx(plain.layerNorm(toMx64(x), toMx64(w), toMx64(b), 1e-5)), { atol: 2e-5, rtol: 2e-5 });
    expectClose(mx.fast.rmsNorm(xm, wm, 1e-5), fromMx(plain.rmsNorm(toMx64(x), toMx64(w), 1e-5)), { atol: 2e-5, rtol: 2e-5 });
    for (const [ww, bb] of [[w, b], [null, null]] as const) {
      const args = [xm, ...(ww ? [wm, bm] : [])];
      const [, cts] = vjp((x, w, b) => mx.fast.layerNorm(x, w ?? null, b ?? null, 1e-5), args, [gm]);
      const want = normGradRef("layer", x, ww, g, 1e-5);
      cts.forEach((c, i) => expectClose(c, want[i], { atol: 1e-4 * Math.sqrt(n), rtol: 1e-4 }));
      const [, rc] = vjp((x, w) => mx.fast.rmsNorm(x, w ?? null, 1e-5), args.slice(0, ww ? 2 : 1), [gm]);
      const wantR = normGradRef("rms", x, ww, g, 1e-5);
      rc.forEach((c, i) => expectClose(c, wantR[i], { atol: 1e-4 * Math.sqrt(n), rtol: 1e-4 }));
    }
    // float64 runs the portable loop: tight
    const [, c64] = vjp((x, w, b) => mx.fast.layerNorm(x, w, b, 1e-5), [toMx64(x), toMx64(w), toMx64(b)], [toMx64(g)]);
    const want64 = normGradRef("layer", x, w, g, 1e-5);
    c64.forEach((c, i) => expectClose(c, want64[i], { atol: 1e-10, rtol: 1e-10 }));
  });

  it.each(widths)("softmax and logsumexp, row width %i: fused = plain ops", (d) => {
    const x = r([4, d], -20, 20);
    const xm = toMx32(x), x64 = toMx64(x);
    expectClose(mx.softmax(xm, -1), fromMx(plain.softmax(x64, -1)), { atol: 1e-6, rtol: 2e-5 });
    expectClose(mx.logsumexp(xm, -1), fromMx(mx.log(mx.sum(mx.exp(x64), -1))), { atol: 1e-5, rtol: 1e-6 });
    expectClose(mx.softmax(x64, -1), fromMx(plain.softmax(x64, -1)), { atol: 1e-15, rtol: 1e-13 });
    const g = toMx32(r([4, d]));
    const [, [c]] = vjp((x) => mx.softmax(x, -1), [xm], [g]);
    const [, [c2]] = vjp((x) => plain.softmax(x, -1), [x64], [toMx64(fromMx(g))]);
    expectClose(c, fromMx(c2), { atol: 1e-6, rtol: 1e-4 });
  });

  it("softmax over other axes and several, logsumexp's infinite rows, empty and size-1 axes", () => {
    const x = r([3, 4, 5]), x64 = toMx64(x);
    for (const axis of [0, 1]) expectClose(mx.softmax(x64, axis), fromMx(plain.softmax(x64, axis)), { atol: 1e-14 });
    const both = mx.divide(mx.exp(x64), mx.sum(mx.exp(x64), [0, 2], { keepdims: true }));
    expectClose(mx.softmax(x64, [0, 2]), fromMx(both), { atol: 1e-14 });
    expectClose(mx.logsumexp(x64, [0, 2]), fromMx(mx.log(mx.sum(mx.exp(x64), [0, 2]))), { atol: 1e-13 });
    const inf = mx.array([[-Infinity, -Infinity], [Infinity, 1], [0, -Infinity]], "float32");
    expect(mx.logsumexp(inf, 1).tolist()).toEqual([-Infinity, Infinity, 0]);
    expect(mx.logsumexp(mx.zeros([2, 0]), 1).tolist()).toEqual([-Infinity, -Infinity]);
    expect(mx.softmax(mx.zeros([0, 3])).shape).toEqual([0, 3]);
    expect(mx.softmax(mx.array([[3], [-2]])).tolist()).toEqual([[1], [1]]);
    // float16 and bfloat16 compute in float32 and round once
    for (const t of ["float16", "bfloat16"] as const) {
      const h = toMx32(r([3, 9])).astype(t);
      const y = mx.softmax(h);
      expect(y.dtype).toBe(t);
      expectClose(y.astype("float64"), fromMx(plain.softmax(h.astype("float64"), -1)), { atol: 1e-2, rtol: 1e-2 });
    }
  });

  it("norms: non-contiguous rows, weights and biases; empty and size-1 axes; half types", () => {
    const xt = r([6, 4]);  // transposed: rows of stride 4
    const x = mx.transpose(toMx64(xt)), w = mx.index(mx.transpose(toMx64(r([6, 2]))), 0), b = toMx64(r([6]));
    expectClose(mx.fast.layerNorm(x, w, b, 1e-5), fromMx(plain.layerNorm(mx.copy(x), mx.copy(w), b, 1e-5)), { atol: 1e-12 });
    expectClose(mx.fast.rmsNorm(x, w, 1e-5), fromMx(plain.rmsNorm(mx.copy(x), mx.copy(w), 1e-5)), { atol: 1e-12 });
    const [, cts] = vjp((x, w, b) => mx.fast.layerNorm(x, w, b, 1e-5), [x, w, b], [mx.onesLike(x)]);
    const want = normGradRef("layer", fromMx(x), fromMx(w), fromMx(mx.onesLike(x)), 1e-5);
    cts.forEach((c, i) => expectClose(c, want[i], { atol: 1e-10 }));
    // a broadcast (stride-0) input
    const bx = mx.broadcastTo(toMx64(r([1, 5])), [3, 5]);
    expectClose(mx.fast.layerNorm(bx, null, null, 1e-5), fromMx(plain.layerNorm(mx.copy(bx), null, null, 1e-5)), { atol: 1e-12 });
    // empty and size-1: a one-feature row normalizes to 0 (then the bias)
    expect(mx.fast.layerNorm(mx.zeros([0, 4]), null, null, 1e-5).shape).toEqual([0, 4]);
    const [, e] = vjp((x, w) => mx.fast.layerNorm(x, w, null, 1e-5), [mx.zeros([0, 4]), mx.ones([4])], [mx.zeros([0, 4])]);
    expect(e[1].tolist()).toEqual([0, 0, 0, 0]);
    expect(mx.fast.layerNorm(mx.array([[3], [5]]), null, mx.array([2]), 1e-5).tolist()).toEqual([[2], [2]]);
    expect(mx.fast.rmsNorm(mx.zeros([2, 0, 3]), null, 1e-5).shape).toEqual([2, 0, 3]);
    for (const t of ["float16", "bfloat16"] as const) {
      const h = toMx32(r([3, 20])).astype(t), hw = toMx32(r([20])).astype(t);
      const y = mx.fast.layerNorm(h, hw, null, 1e-5);
      expect(y.dtype).toBe(t);
      expectClose(y.astype("float64"), fromMx(plain.layerNorm(h.astype("float64"), hw.astype("float64"), null, 1e-5)), { atol: 3e-2, rtol: 2e-2 });
      const [, [gx]] = vjp((x) => mx.fast.rmsNorm(x, hw, 1e-5), [h], [mx.onesLike(h)]);
      expect(gx.dtype).toBe(t);
    }
  });

  it("vmap folds the batch into leading axes: batched weights and biases, batched rope offsets", () => {
    const x = toMx64(r([3, 2, 5])), w = toMx64(r([3, 5])), b = toMx64(r([5]));
    const y = vmap((x: A, w: A) => mx.fast.layerNorm(x, w, b, 1e-5))(x, w);
    const want = mx.stack([0, 1, 2].map((i) => plain.layerNorm(mx.index(x, i), mx.index(w, i), b, 1e-5)));
    expectClose(y, fromMx(want), { atol: 1e-12 });
    const yr = vmap((w: A) => mx.fast.rmsNorm(mx.index(x, 0), w, 1e-5))(w);
    expectClose(yr, fromMx(mx.stack([0, 1, 2].map((i) => plain.rmsNorm(mx.index(x, 0), mx.index(w, i), 1e-5)))), { atol: 1e-12 });
    // per-example rope offsets
    const xr = r([3, 4]), offs = mx.array([0, 2, 5], "int32");
    const ys = vmap((o: A) => mx.fast.rope(toMx64(xr), 4, { offset: o }))(offs);
    [0, 2, 5].forEach((o, i) => expectClose(mx.index(ys, i), ropeRef(xr, 4, { traditional: false, base: 10000, scale: 1, offset: o }), { atol: 1e-12 }));
    // attention with a batch of queries against shared keys
    const q = toMx64(r([2, 1, 2, 3, 4])), k = toMx64(r([1, 2, 5, 4])), v = toMx64(r([1, 2, 5, 3]));
    const ya = vmap((q: A) => sdpa(q, k, v, { mask: "causal" }))(q);
    const wantA = mx.stack([0, 1].map((i) => plain.attention(mx.index(q, i), k, v, 0.5, "causal")));
    expectClose(ya, fromMx(wantA), { atol: 1e-12 });
  });

  it.each([
    [1, 1, 128, 128, 16], [2, 2, 70, 70, 8], [1, 2, 5, 9, 3], [1, 2, 9, 5, 3], [1, 1, 130, 3, 5],
  ])("attention B %i H %i Lq %i Lk %i D %i: fused = plain ops, gradients = float64 loops, every mask", (bs, h, lq, lk, d) => {
    const q = r([bs, h, lq, d], -1, 1), k = r([bs, h, lk, d], -1, 1), v = r([bs, h, lk, d + 1], -1, 1), g = r([bs, h, lq, d + 1]);
    const m = r([lq, lk]);
    const scale = 0.4;
    for (const mask of [null, "causal", m] as const) {
      const mk = (t: "float32" | "float64") => (mask === null || mask === "causal" ? mask : t === "float32" ? toMx32(mask) : toMx64(mask));
      const y32 = sdpa(toMx32(q), toMx32(k), toMx32(v), { scale, mask: mk("float32") });
      expectClose(y32, fromMx(plain.attention(toMx64(q), toMx64(k), toMx64(v), scale, mk("float64"))), { atol: 2e-5, rtol: 2e-5 });
      const [, cts] = vjp((q, k, v) => sdpa(q, k, v, { scale, mask: mk("float64") }), [toMx64(q), toMx64(k), toMx64(v)], [toMx64(g)]);
      const want = attentionGradRef(q, k, v, scale, mask === null || mask === "causal" ? mask : { shape: [bs, h, lq, lk], data: Float64Array.from({ length: bs * h * lq * lk }, (_, i) => m.data[i % (lq * lk)]) }, g);
      cts.forEach((c, i) => expectClose(c, want[i], { atol: 1e-10, rtol: 1e-10 }));
      const [, c32] = vjp((q, k, v) => sdpa(q, k, v, { scale, mask: mk("float32") }), [toMx32(q), toMx32(k), toMx32(v)], [toMx32(g)]);
      c32.forEach((c, i) => expectClose(c, want[i], { atol: 1e-4, rtol: 1e-3 }));
    }
  });

  it("attention: non-contiguous q, k, v ([B, L, H, D] transposed), grouped heads, half types, empty axes", () => {
    const [b, l, h, d] = [2, 6, 4, 8];
    const qs = toMx64(r([b, l, h, d])), ks = toMx64(r([b, l, 2, d])), vs = toMx64(r([b, l, 2, d]));
    const [q, k, v] = [qs, ks, vs].map((x) => mx.transpose(x, [0, 2, 1, 3]));
    for (const mask of [null, "causal"] as const) {
      expectClose(sdpa(q, k, v, { mask }), fromMx(plain.attention(q, k, v, 1 / Math.sqrt(d), mask)), { atol: 1e-12 });
      const g = toMx64(r([b, h, l, d]));
      const [, c1] = vjp((q, k, v) => sdpa(q, k, v, { mask }), [q, k, v], [g]);
      const [, c2] = vjp((q, k, v) => plain.attention(q, k, v, 1 / Math.sqrt(d), mask), [mx.copy(q), mx.copy(k), mx.copy(v)], [g]);
      c1.forEach((c, i) => expectClose(c, fromMx(c2[i]), { atol: 1e-12 }));
    }
    for (const t of ["float16", "bfloat16"] as const) {
      const y = sdpa(q.astype(t), k.astype(t), v.astype(t), { mask: "causal" });
      expect(y.dtype).toBe(t);
      const want = plain.attention(q.astype(t).astype("float64"), k.astype(t).astype("float64"), v.astype(t).astype("float64"), 1 / Math.sqrt(d), "causal");
      expectClose(y.astype("float64"), fromMx(want), { atol: 2e-2, rtol: 2e-2 });
    }
    // no queries, no keys (then zeros, as an empty sum), no batch
    expect(sdpa(mx.zeros([1, 2, 0, 3]), mx.zeros([1, 2, 4, 3]), mx.zeros([1, 2, 4, 5])).shape).toEqual([1, 2, 0, 5]);
    expect(sdpa(mx.ones([1, 1, 2, 3]), mx.zeros([1, 1, 0, 3]), mx.zeros([1, 1, 0, 2])).tolist()).toEqual([[[[0, 0], [0, 0]]]]);
    expect(sdpa(mx.zeros([0, 2, 3, 3]), mx.zeros([0, 2, 4, 3]), mx.zeros([0, 2, 4, 5])).shape).toEqual([0, 2, 3, 5]);
  });
});
