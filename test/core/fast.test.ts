/**
 * mx.fast: layerNorm and rmsNorm against their formulas, rope in both layouts against MLX's
 * documented formula, scaledDotProductAttention (no mask, additive and bool masks, "causal" with
 * Lq != Lk aligned at the last key, grouped-query heads) against float64 loops; gradients by
 * finite differences; errors at the call naming the op.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { checkGrads } from "@tessera/transforms/testing";
import { at, expectClose, randomRef, rng, sizeOf, unravel, type Ref } from "../helpers/reference.js";

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
    expect(() => mx.fast.rmsNorm(x, null, 1e-5, { device: mx.gpu })).toThrow(/^fast\.rmsNorm: device gpu is not available/);
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
    expect(() => sdpa(q, k, v, { device: mx.gpu })).toThrow(re("device gpu is not available"));
  });
});
