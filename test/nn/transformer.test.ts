/** @file Attention and transformer layers against float64 references computed with plain loops. */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { checkGrads } from "@tessera/transforms/testing";
import { describe, expect, it } from "vitest";
import { flat, maxError, seededData } from "../helpers/nn.js";

const { data, float64Params } = seededData(11);
function close(a: mx.Array, ref: number[], tol = 1e-9) {
  expect(maxError(a, ref)).toBeLessThanOrEqual(tol);
}

/** Rows of x [n, din] (flat) times W^T (W [dout, din], flat) plus b. */
function linearRef(x: Float64Array | number[], n: number, din: number, w: Float64Array, dout: number, b?: Float64Array): number[] {
  const y: number[] = [];
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < dout; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < din; i++) s += x[r * din + i] * w[o * din + i];
      y.push(s);
    }
  }
  return y;
}

/**
 * MultiHeadAttention by loops: per batch and head, softmax(Q K^T / sqrt(d) + mask) V, heads merged,
 * then the output projection. mask is [Lq, Lk] flat, or null.
 */
function mhaRef(
  p: Map<string, Float64Array>, heads: number,
  q: Float64Array, k: Float64Array, v: Float64Array,
  [B, Lq, Lk]: number[], [dq, dk, dv]: number[], [dims, vdims, odims]: number[],
  mask: Float64Array | number[] | null,
): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    const Q = linearRef(q.subarray(b * Lq * dq, (b + 1) * Lq * dq), Lq, dq, p.get("queryProj.weight")!, dims, p.get("queryProj.bias"));
    const K = linearRef(k.subarray(b * Lk * dk, (b + 1) * Lk * dk), Lk, dk, p.get("keyProj.weight")!, dims, p.get("keyProj.bias"));
    const V = linearRef(v.subarray(b * Lk * dv, (b + 1) * Lk * dv), Lk, dv, p.get("valueProj.weight")!, vdims, p.get("valueProj.bias"));
    const hd = dims / heads, hv = vdims / heads;
    const merged = new Array<number>(Lq * vdims).fill(0);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < Lq; i++) {
        const s: number[] = [];
        for (let j = 0; j < Lk; j++) {
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += Q[i * dims + h * hd + c] * K[j * dims + h * hd + c];
          s.push(dot / Math.sqrt(hd) + (mask ? mask[i * Lk + j] : 0));
        }
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < hv; c++) {
          let acc = 0;
          for (let j = 0; j < Lk; j++) acc += (e[j] / z) * V[j * vdims + h * hv + c];
          merged[i * vdims + h * hv + c] = acc;
        }
      }
    }
    out.push(...linearRef(merged, Lq, vdims, p.get("outProj.weight")!, odims, p.get("outProj.bias")));
  }
  return out;
}

describe("MultiHeadAttention", () => {
  it("parameter paths and shapes as MLX (no bias by default)", () => {
    const attn = new nn.MultiHeadAttention(8, 2, { queryInputDims: 6, keyInputDims: 5, valueDims: 4, valueOutputDims: 3 });
    const shapes = Object.fromEntries((mx.treeFlatten(attn.parameters()) as [string, mx.Array][]).map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      "queryProj.weight": [8, 6], "keyProj.weight": [8, 5], "valueProj.weight": [4, 5], "outProj.weight": [3, 4],
    });
    const withBias = new nn.MultiHeadAttention(8, 2, { bias: true });
    expect((mx.treeFlatten(withBias.parameters()) as [string, mx.Array][]).map(([k]) => k).sort()).toEqual([
      "keyProj.bias", "keyProj.weight", "outProj.bias", "outProj.weight",
      "queryProj.bias", "queryProj.weight", "valueProj.bias", "valueProj.weight",
    ]);
    expect(attn.numHeads).toBe(2);
    expect(() => new nn.MultiHeadAttention(6, 4)).toThrow(RangeError);
  });

  it("matches the loop reference without a mask, query and key lengths differing", () => {
    const attn = new nn.MultiHeadAttention(8, 2, { bias: true });
    const p = float64Params(attn);
    const [q, qv] = data([2, 3, 8]), [k, kv] = data([2, 5, 8]), [v, vv] = data([2, 5, 8]);
    const y = attn.forward(q, k, v);
    expect(y.shape).toEqual([2, 3, 8]);
    expect(y.dtype).toBe("float64");
    close(y, mhaRef(p, 2, qv, kv, vv, [2, 3, 5], [8, 8, 8], [8, 8, 8], null));
  });

  it("matches the loop reference with an additive causal mask", () => {
    const attn = new nn.MultiHeadAttention(8, 4);
    const p = float64Params(attn);
    const [x, xv] = data([2, 4, 8]);
    const mask = nn.MultiHeadAttention.createAdditiveCausalMask(4, "float64");
    const y = attn.forward(x, x, x, mask);
    close(y, mhaRef(p, 4, xv, xv, xv, [2, 4, 4], [8, 8, 8], [8, 8, 8], flat(mask)));
    // Each query sees only the keys up to it: the first output row depends only on x[:, 0].
    const causal = mhaRef(p, 4, xv, xv, xv, [2, 4, 4], [8, 8, 8], [8, 8, 8],
      Array.from({ length: 16 }, (_, i) => (i % 4 > Math.floor(i / 4) ? -Infinity : 0)));
    close(y, causal);
    close(attn.forward(x, x, x, "causal"), causal);
  });

  it("matches the loop reference with a general additive mask and distinct input sizes", () => {
    const attn = new nn.MultiHeadAttention(6, 3, { queryInputDims: 4, keyInputDims: 5, valueInputDims: 7, valueDims: 9, valueOutputDims: 2, bias: true });
    const p = float64Params(attn);
    const [q, qv] = data([1, 2, 4]), [k, kv] = data([1, 3, 5]), [v, vv] = data([1, 3, 7]);
    const [mask, mv] = data([2, 3]);
    const y = attn.forward(q, k, v, mask);
    expect(y.shape).toEqual([1, 2, 2]);
    close(y, mhaRef(p, 3, qv, kv, vv, [1, 2, 3], [4, 5, 7], [6, 9, 2], mv));
  });

  it("createAdditiveCausalMask as MLX", () => {
    const m = nn.MultiHeadAttention.createAdditiveCausalMask(3);
    expect(m.dtype).toBe("float32");
    expect(m.shape).toEqual([3, 3]);
    const low = -3.4028234663852886e38;
    expect(flat(m)).toEqual([0, low, low, 0, 0, low, 0, 0, 0]);
    const m64 = nn.MultiHeadAttention.createAdditiveCausalMask(2, "float64");
    expect(m64.dtype).toBe("float64");
    expect(flat(m64)).toEqual([0, -Number.MAX_VALUE, 0, 0]);
  });

  it("gradients (checkGrads, float64) with respect to the inputs and every projection", () => {
    const attn = new nn.MultiHeadAttention(4, 2, { bias: true, keyInputDims: 3 });
    float64Params(attn);
    const pairs = mx.treeFlatten(attn.trainableParameters()) as [string, mx.Array][];
    const [q] = data([1, 2, 4]), [k] = data([1, 3, 3]), [v] = data([1, 3, 3]);
    const [mask] = data([2, 3]);
    const [c] = data([1, 2, 4]);
    checkGrads((qi: mx.Array, ki: mx.Array, vi: mx.Array, ...ps: mx.Array[]) => {
      attn.update(mx.treeUnflatten(pairs.map(([name], i): [string, mx.Array] => [name, ps[i]])));
      return mx.sum(mx.mul(attn.forward(qi, ki, vi, mask), c));
    }, [q, k, v, ...pairs.map(([, p]) => p)], { atol: 1e-6, rtol: 1e-5 });
    attn.update(mx.treeUnflatten(pairs));
  });
});

describe("RoPE", () => {
  it("equals mx.fast.rope with the same options, and has no parameters", () => {
    const [x] = data([1, 2, 5, 8]);
    const cases: [number, nn.RoPEOptions, number][] = [
      [8, {}, 0], [6, { traditional: true }, 3], [4, { base: 500, scale: 0.5 }, 7],
    ];
    for (const [dims, opts, offset] of cases) {
      const rope = new nn.RoPE(dims, opts);
      close(rope.forward(x, offset), flat(mx.fast.rope(x, dims, { ...opts, offset })), 0);
      expect(mx.treeFlatten(rope.parameters())).toEqual([]);
    }
    close(new nn.RoPE(8).forward(x), flat(mx.fast.rope(x, 8, { traditional: false, base: 10000, scale: 1, offset: 0 })), 0);
  });
});

describe("TransformerEncoderLayer and TransformerEncoder", () => {
  /** LayerNorm over the last axis with weight and bias, by mx ops in float64. */
  const ln = (x: mx.Array, w: mx.Array, b: mx.Array) => {
    const c = mx.sub(x, mx.mean(x, -1, { keepdims: true }));
    const v = mx.mean(mx.mul(c, c), -1, { keepdims: true });
    return mx.add(mx.mul(mx.div(c, mx.sqrt(mx.add(v, 1e-5))), w), b);
  };
  const lin = (x: mx.Array, w: mx.Array, b: mx.Array) => mx.add(mx.matmul(x, mx.transpose(w)), b);

  for (const normFirst of [true, false]) {
    it(`encoder layer equals its pieces composed by hand (normFirst ${normFirst})`, () => {
      const layer = new nn.TransformerEncoderLayer(8, 2, { mlpDims: 12, normFirst, activation: nn.gelu });
      const p = float64Params(layer);
      const P = (k: string) => mx.reshape(mx.array(p.get(k)!), (mx.treeFlatten(layer.parameters()) as [string, mx.Array][]).find(([n]) => n === k)![1].shape);
      const [x, xv] = data([2, 4, 8]);
      const mask = nn.MultiHeadAttention.createAdditiveCausalMask(4, "float64");
      const maskv = flat(mask);
      const attnRef = (z: mx.Array) => {
        const zv = Float64Array.from(flat(z));
        return mx.reshape(mx.array(Float64Array.from(mhaRef(p, 2, zv, zv, zv, [2, 4, 4], [8, 8, 8], [8, 8, 8], maskv))), [2, 4, 8]);
      };
      // the attention's parameters are under "attention."; mhaRef reads them without the prefix
      for (const name of ["queryProj", "keyProj", "valueProj", "outProj"]) p.set(`${name}.weight`, p.get(`attention.${name}.weight`)!);
      const mlp = (z: mx.Array) => lin(nn.gelu(lin(z, P("linear1.weight"), P("linear1.bias"))), P("linear2.weight"), P("linear2.bias"));
      const ln1 = (z: mx.Array) => ln(z, P("ln1.weight"), P("ln1.bias"));
      const ln2 = (z: mx.Array) => ln(z, P("ln2.weight"), P("ln2.bias"));
      let ref: mx.Array;
      if (normFirst) {
        const h = mx.add(x, attnRef(ln1(x)));
        ref = mx.add(h, mlp(ln2(h)));
      } else {
        const h = ln1(mx.add(x, attnRef(x)));
        ref = ln2(mx.add(h, mlp(h)));
      }
      expect(xv.length).toBe(64);
      close(layer.forward(x, mask), flat(ref), 1e-9);
    });
  }

  it("encoder layer: defaults, parameter paths, dropout off in eval", () => {
    const layer = new nn.TransformerEncoderLayer(8, 2);
    expect(layer.normFirst).toBe(true);
    expect(layer.activation).toBe(nn.relu);
    const shapes = Object.fromEntries((mx.treeFlatten(layer.parameters()) as [string, mx.Array][]).map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      "attention.queryProj.weight": [8, 8], "attention.keyProj.weight": [8, 8],
      "attention.valueProj.weight": [8, 8], "attention.outProj.weight": [8, 8],
      "ln1.weight": [8], "ln1.bias": [8], "ln2.weight": [8], "ln2.bias": [8],
      "linear1.weight": [32, 8], "linear1.bias": [32], "linear2.weight": [8, 32], "linear2.bias": [8],
    });
    const drop = new nn.TransformerEncoderLayer(8, 2, { dropout: 0.5 });
    expect(drop.dropout1.p).toBe(0.5);
    drop.eval();
    const [x] = data([1, 3, 8]);
    close(drop.forward(x, null), flat(drop.forward(x, null)), 0);
  });

  it("TransformerEncoder: layers then a final LayerNorm; parameter count", () => {
    const enc = new nn.TransformerEncoder(2, 8, 2, { mlpDims: 16 });
    expect(enc.layers.length).toBe(2);
    const leaves = mx.treeFlatten(enc.parameters()) as [string, mx.Array][];
    // per layer: attention 4*8*8, two LayerNorms 2*2*8, linear1 8*16+16, linear2 16*8+8; then ln 2*8
    const perLayer = 4 * 64 + 32 + (8 * 16 + 16) + (16 * 8 + 8);
    expect(leaves.reduce((n, [, v]) => n + v.size, 0)).toBe(2 * perLayer + 16);
    expect(leaves.map(([k]) => k)).toContain("layers.1.attention.outProj.weight");
    expect(leaves.map(([k]) => k)).toContain("ln.bias");
    float64Params(enc);
    const [x] = data([2, 3, 8]);
    const mask = nn.MultiHeadAttention.createAdditiveCausalMask(3, "float64");
    const ref = enc.ln.forward(enc.layers[1].forward(enc.layers[0].forward(x, mask), mask));
    close(enc.forward(x, mask), flat(ref), 0);
    expect(new nn.TransformerEncoder(1, 8, 2, { normFirst: false }).layers[0].normFirst).toBe(false);
  });
});
