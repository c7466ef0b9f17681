/** @file Layers: forward against direct float64 computations, gradients via checkGrads in float64. */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { checkGrads } from "@tessera/transforms/testing";
import { describe, expect, it } from "vitest";
import { flat, maxError, prod, seededData } from "../helpers/nn.js";
import { expectGradsMatchReference } from "../helpers/finite-diff.js";

const { data, float64Params } = seededData(7);
function close(a: mx.Array, ref: number[], tol = 1e-9) {
  expect(maxError(a, ref)).toBeLessThan(tol);
}
/** checkGrads of sum(forward(x) * fixed weights) with respect to x and every parameter. */
function gradCheck(m: nn.Module, x: mx.Array) {
  const pairs = mx.treeFlatten(m.trainableParameters()) as [string, mx.Array][];
  const y0 = m.forward(x) as mx.Array;
  const [c] = data(y0.shape);
  checkGrads((xi: mx.Array, ...ps: mx.Array[]) => {
    m.update(mx.treeUnflatten(pairs.map(([k], i): [string, mx.Array] => [k, ps[i]])));
    return mx.sum(mx.mul(m.forward(xi) as mx.Array, c));
  }, [x, ...pairs.map(([, p]) => p)], { atol: 1e-6, rtol: 1e-5 });
  m.update(mx.treeUnflatten(pairs));
}

/** Channels-last conv in 1 or 2 spatial dims, on flat data (the reference). */
function convRef(x: Float64Array, xs: number[], w: Float64Array, ws: number[], b: Float64Array | null, o: { stride: number; padding: number; dilation: number; groups: number }) {
  const D = xs.length - 2;
  const [N, C] = [xs[0], xs[xs.length - 1]];
  const [O, K] = [ws[0], ws.slice(1, -1)];
  const cg = ws[ws.length - 1];
  const S = xs.slice(1, -1);
  const outS = S.map((s, d) => Math.floor((s + 2 * o.padding - o.dilation * (K[d] - 1) - 1) / o.stride) + 1);
  const out: number[] = [];
  const og = O / o.groups;
  const idx = (pos: number[], sz: number[]) => pos.reduce((a, p, d) => a * sz[d] + p, 0);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < prod(outS); p++) {
      const op = D === 1 ? [p] : [Math.floor(p / outS[1]), p % outS[1]];
      for (let oc = 0; oc < O; oc++) {
        let s = b ? b[oc] : 0;
        const g = Math.floor(oc / og);
        for (let k = 0; k < prod(K); k++) {
          const kp = D === 1 ? [k] : [Math.floor(k / K[1]), k % K[1]];
          const ip = op.map((q, d) => q * o.stride + kp[d] * o.dilation - o.padding);
          if (ip.some((q, d) => q < 0 || q >= S[d])) continue;
          for (let ci = 0; ci < cg; ci++) {
            s += x[(n * prod(S) + idx(ip, S)) * C + g * cg + ci] * w[(oc * prod(K) + k) * cg + ci];
          }
        }
        out.push(s);
      }
    }
  }
  return out;
}

describe("Linear", () => {
  it("initialises as MLX and computes x W^T + b", () => {
    const l = new nn.Linear(16, 300);
    expect(l.weight.shape).toEqual([300, 16]);
    expect(l.bias!.shape).toEqual([300]);
    const w = flat(l.weight);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(0.25);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.24);
    expect(new nn.Linear(2, 3, { bias: false }).bias).toBeUndefined();
    const p = float64Params(l);
    const [x, xv] = data([3, 16]);
    const ref: number[] = [];
    for (let n = 0; n < 3; n++) for (let o = 0; o < 300; o++) {
      let s = p.get("bias")![o];
      for (let i = 0; i < 16; i++) s += xv[n * 16 + i] * p.get("weight")![o * 16 + i];
      ref.push(s);
    }
    close(l.forward(x), ref);
    const small = new nn.Linear(3, 2);
    float64Params(small);
    gradCheck(small, data([2, 3])[0]);
  });
});

describe("Conv1d and Conv2d", () => {
  it("Conv1d (stride, padding, dilation, groups) matches a direct loop", () => {
    const conv = new nn.Conv1d(4, 6, 3, { stride: 2, padding: 1, dilation: 1, groups: 2 });
    expect(conv.weight.shape).toEqual([6, 3, 2]);
    expect(Math.max(...flat(conv.weight).map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(1 / 6));
    expect(flat(conv.bias!)).toEqual([0, 0, 0, 0, 0, 0]);
    const p = float64Params(conv);
    const [x, xv] = data([2, 7, 4]);
    close(conv.forward(x), convRef(xv, [2, 7, 4], p.get("weight")!, [6, 3, 2], p.get("bias")!, { stride: 2, padding: 1, dilation: 1, groups: 2 }));
    const c2 = new nn.Conv1d(2, 3, 2, { dilation: 2 });
    const p2 = float64Params(c2);
    const [x2, xv2] = data([1, 6, 2]);
    close(c2.forward(x2), convRef(xv2, [1, 6, 2], p2.get("weight")!, [3, 2, 2], p2.get("bias")!, { stride: 1, padding: 0, dilation: 2, groups: 1 }));
    gradCheck(c2, x2);
  });
  it("Conv2d matches a direct loop", () => {
    const conv = new nn.Conv2d(3, 4, [2, 3], { stride: 1, padding: 1, bias: true });
    expect(conv.weight.shape).toEqual([4, 2, 3, 3]);
    const p = float64Params(conv);
    const [x, xv] = data([2, 4, 5, 3]);
    const y = conv.forward(x);
    expect(y.shape).toEqual([2, 5, 5, 4]);
    close(y, convRef(xv, [2, 4, 5, 3], p.get("weight")!, [4, 2, 3, 3], p.get("bias")!, { stride: 1, padding: 1, dilation: 1, groups: 1 }));
    const small = new nn.Conv2d(2, 2, 2, { stride: 2 });
    float64Params(small);
    gradCheck(small, data([1, 4, 4, 2])[0]);
  });
});

type ConvTOptions = { stride: number[]; padding: number[]; dilation: number[]; outputPadding: number[] };
/** Channels-last transposed conv in 1 or 2 spatial dims, on flat data, by scattering each input tap (the reference). */
function convTransposeRef(x: Float64Array, xs: number[], w: Float64Array, ws: number[], b: Float64Array | undefined, o: ConvTOptions) {
  const D = xs.length - 2;
  const [N, C, O] = [xs[0], xs[xs.length - 1], ws[0]];
  const [S, K] = [xs.slice(1, -1), ws.slice(1, -1)];
  const outS = S.map((s, d) => (s - 1) * o.stride[d] - 2 * o.padding[d] + o.dilation[d] * (K[d] - 1) + o.outputPadding[d] + 1);
  const pos = (i: number, sz: number[]) => (D === 1 ? [i] : [Math.floor(i / sz[1]), i % sz[1]]);
  const idx = (p: number[], sz: number[]) => p.reduce((a, q, d) => a * sz[d] + q, 0);
  const y = new Float64Array(N * prod(outS) * O);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < prod(outS); i++) for (let oc = 0; oc < O; oc++) y[(n * prod(outS) + i) * O + oc] = b ? b[oc] : 0;
    for (let i = 0; i < prod(S); i++) {
      for (let k = 0; k < prod(K); k++) {
        const op = pos(i, S).map((q, d) => q * o.stride[d] + pos(k, K)[d] * o.dilation[d] - o.padding[d]);
        if (op.some((q, d) => q < 0 || q >= outS[d])) continue;
        for (let oc = 0; oc < O; oc++) {
          let s = 0;
          for (let ci = 0; ci < C; ci++) s += x[(n * prod(S) + i) * C + ci] * w[(oc * prod(K) + k) * C + ci];
          y[(n * prod(outS) + idx(op, outS)) * O + oc] += s;
        }
      }
    }
  }
  return { y: Array.from(y), shape: [N, ...outS, O] };
}

describe("ConvTranspose1d and ConvTranspose2d", () => {
  /** Forward against the loop, then gradients (input, weight, bias) against central differences of it. */
  function check(m: nn.ConvTranspose1d | nn.ConvTranspose2d, xs: number[], o: ConvTOptions) {
    const p = float64Params(m);
    const [x, xv] = data(xs);
    const ref = (v: Float64Array, q: Map<string, Float64Array>) => convTransposeRef(v, xs, q.get("weight")!, m.weight.shape, q.get("bias"), o);
    const y = m.forward(x);
    expect(y.shape).toEqual(ref(xv, p).shape);
    close(y, ref(xv, p).y, 1e-12);
    expectGradsMatchReference(m, p, [[x, xv]], (a) => m.forward(a), ([v], q) => ref(v, q).y);
  }
  it("ConvTranspose1d initialises as MLX and matches a scatter loop (stride, padding, dilation, outputPadding)", () => {
    const up = new nn.ConvTranspose1d(4, 6, 3, { stride: 2, padding: 1, dilation: 2, outputPadding: 1 });
    expect(up.weight.shape).toEqual([6, 3, 4]);
    expect(Math.max(...flat(up.weight).map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(1 / 12));
    expect(flat(up.bias!)).toEqual([0, 0, 0, 0, 0, 0]);
    check(up, [2, 5, 4], { stride: [2], padding: [1], dilation: [2], outputPadding: [1] });
    const plain = new nn.ConvTranspose1d(2, 3, 2, { bias: false });
    expect(plain.bias).toBeUndefined();
    check(plain, [1, 4, 2], { stride: [1], padding: [0], dilation: [1], outputPadding: [0] });
  });
  it("ConvTranspose2d matches a scatter loop (per-axis settings; bias: false)", () => {
    const up = new nn.ConvTranspose2d(3, 2, [2, 3], { stride: [2, 1], padding: [0, 1], outputPadding: [1, 0] });
    expect(up.weight.shape).toEqual([2, 2, 3, 3]);
    expect(Math.max(...flat(up.weight).map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(1 / 18));
    check(up, [2, 3, 4, 3], { stride: [2, 1], padding: [0, 1], dilation: [1, 1], outputPadding: [1, 0] });
    const plain = new nn.ConvTranspose2d(2, 2, 2, { stride: 2, bias: false });
    check(plain, [1, 2, 3, 2], { stride: [2, 2], padding: [0, 0], dilation: [1, 1], outputPadding: [0, 0] });
  });
  it("rejects a wrong input rank or channel count, naming the layer and the shapes", () => {
    const up1 = new nn.ConvTranspose1d(4, 6, 3);
    expect(() => up1.forward(mx.zeros([5, 4]))).toThrow(/^ConvTranspose1d: input must have shape \[N, L, inChannels\] with inChannels = 4; got shape \[5,4\]/);
    expect(() => up1.forward(mx.zeros([2, 5, 3]))).toThrow(/^ConvTranspose1d: .*got shape \[2,5,3\]/);
    const up2 = new nn.ConvTranspose2d(3, 2, 2);
    expect(() => up2.forward(mx.zeros([2, 4, 3]))).toThrow(/^ConvTranspose2d: input must have shape \[N, H, W, inChannels\] with inChannels = 3; got shape \[2,4,3\]/);
    expect(() => new nn.ConvTranspose2d(3, 0, 2)).toThrow(/^ConvTranspose2d: outChannels must be a positive integer/);
  });
});

describe("Embedding", () => {
  it("looks up rows; asLinear multiplies by W^T", () => {
    const e = new nn.Embedding(5, 3);
    const p = float64Params(e).get("weight")!;
    const y = e.forward(mx.array([[4, 0], [2, 2]], "int32"));
    expect(y.shape).toEqual([2, 2, 3]);
    close(y, [4, 0, 2, 2].flatMap((r) => [...p.slice(r * 3, r * 3 + 3)]));
    const [x, xv] = data([1, 3]);
    close(e.asLinear(x), [0, 1, 2, 3, 4].map((r) => xv[0] * p[r * 3] + xv[1] * p[r * 3 + 1] + xv[2] * p[r * 3 + 2]));
  });
});

function normRef(xv: Float64Array, rows: number, n: number, w: Float64Array | null, b: Float64Array | null, eps: number, rms = false) {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const v = Array.from(xv.slice(r * n, r * n + n));
    const mean = rms ? 0 : v.reduce((a, c) => a + c, 0) / n;
    const variance = v.reduce((a, c) => a + (c - mean) ** 2, 0) / n;
    v.forEach((c, i) => out.push(((c - mean) / Math.sqrt(variance + eps)) * (w ? w[i] : 1) + (b ? b[i] : 0)));
  }
  return out;
}

describe("normalization", () => {
  it("LayerNorm and RMSNorm", () => {
    const ln = new nn.LayerNorm(5, { eps: 1e-5 });
    expect(flat(ln.weight!)).toEqual([1, 1, 1, 1, 1]);
    const p = float64Params(ln);
    const [x, xv] = data([3, 5]);
    close(ln.forward(x), normRef(xv, 3, 5, p.get("weight")!, p.get("bias")!, 1e-5));
    gradCheck(ln, x);
    const rms = new nn.RMSNorm(5);
    const pr = float64Params(rms);
    close(rms.forward(x), normRef(xv, 3, 5, pr.get("weight")!, null, 1e-5, true));
    gradCheck(rms, x);
  });
  it("GroupNorm groups contiguous channels (PyTorch)", () => {
    const gn = new nn.GroupNorm(2, 6);
    const p = float64Params(gn);
    const [x, xv] = data([2, 3, 6]);
    const ref = new Array<number>(36);
    for (let n = 0; n < 2; n++) for (let g = 0; g < 2; g++) {
      const ids: number[] = [];
      for (let s = 0; s < 3; s++) for (let c = g * 3; c < g * 3 + 3; c++) ids.push(n * 18 + s * 6 + c);
      const m = ids.reduce((a, i) => a + xv[i], 0) / ids.length;
      const v = ids.reduce((a, i) => a + (xv[i] - m) ** 2, 0) / ids.length;
      for (const i of ids) ref[i] = ((xv[i] - m) / Math.sqrt(v + 1e-5)) * p.get("weight")![i % 6] + p.get("bias")![i % 6];
    }
    close(gn.forward(x), ref);
    gradCheck(gn, x);
  });
  it("BatchNorm: batch statistics, running statistics over steps, eval mode", () => {
    const bn = new nn.BatchNorm(3);
    expect(mx.treeFlatten(bn.parameters()).map(([k]) => k)).toEqual(["weight", "bias", "runningMean", "runningVar"]);
    expect(mx.treeFlatten(bn.trainableParameters()).map(([k]) => k)).toEqual(["weight", "bias"]);
    bn.unfreeze();
    expect(mx.treeFlatten(bn.trainableParameters()).map(([k]) => k)).toEqual(["weight", "bias"]);
    bn.update({ runningMean: mx.zeros([3], "float64"), runningVar: mx.ones([3], "float64") });
    let rm = [0, 0, 0];
    let rv = [1, 1, 1];
    for (let step = 0; step < 4; step++) {
      const [x, xv] = data([4, 2, 3]); // stats over 8 rows
      const rows = 8;
      const mean = [0, 1, 2].map((c) => Array.from({ length: rows }, (_, r) => xv[r * 3 + c]).reduce((a, b) => a + b) / rows);
      const bvar = [0, 1, 2].map((c) => Array.from({ length: rows }, (_, r) => (xv[r * 3 + c] - mean[c]) ** 2).reduce((a, b) => a + b) / rows);
      const y = bn.forward(x);
      const ref = Array.from(xv, (v, i) => (v - mean[i % 3]) / Math.sqrt(bvar[i % 3] + 1e-5));
      close(y, ref);
      rm = rm.map((r, c) => 0.9 * r + 0.1 * mean[c]);
      rv = rv.map((r, c) => 0.9 * r + 0.1 * bvar[c] * rows / (rows - 1));
      mx.eval(y, bn.parameters());
    }
    close(bn.runningMean!, rm, 1e-12);
    close(bn.runningVar!, rv, 1e-12);
    bn.eval();
    const [x, xv] = data([2, 3]);
    close(bn.forward(x), Array.from(xv, (v, i) => (v - rm[i % 3]) / Math.sqrt(rv[i % 3] + 1e-5)));
    const train = new nn.BatchNorm(2, { trackRunningStats: false });
    float64Params(train);
    gradCheck(train, data([5, 2])[0]);
  });
});

describe("Dropout", () => {
  it("drops about p of the elements and rescales the rest; identity in eval mode", () => {
    mx.random.seed(3);
    const d = new nn.Dropout(0.25);
    const y = flat(d.forward(mx.ones([20000])));
    const zeros = y.filter((v) => v === 0).length / y.length;
    expect(Math.abs(zeros - 0.25)).toBeLessThan(0.02);
    expect(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
    expect(Math.abs(y.reduce((a, b) => a + b) / y.length - 1)).toBeLessThan(0.03);
    expect(new nn.Dropout().p).toBe(0.5);
    const x = mx.ones([4]);
    expect(d.eval().forward(x)).toBe(x);
    expect(() => new nn.Dropout(1)).toThrow(/p must be in/);
  });
});

describe("pooling", () => {
  it("MaxPool1d/2d and AvgPool1d/2d", () => {
    const [x, xv] = data([1, 6, 2]);
    const ref = (f: (a: number[]) => number, k: number, s: number) => {
      const out: number[] = [];
      for (let i = 0; i + k <= 6; i += s) for (let c = 0; c < 2; c++) out.push(f(Array.from({ length: k }, (_, j) => xv[(i + j) * 2 + c])));
      return out;
    };
    close(new nn.MaxPool1d(2).forward(x), ref((a) => Math.max(...a), 2, 2));
    close(new nn.AvgPool1d(3, { stride: 1 }).forward(x), ref((a) => a.reduce((p, q) => p + q) / a.length, 3, 1));
    const [x2, v2] = data([1, 4, 4, 1]);
    const y = new nn.MaxPool2d(2, { stride: 2 }).forward(x2);
    expect(y.shape).toEqual([1, 2, 2, 1]);
    close(y, [[0, 0], [0, 2], [2, 0], [2, 2]].map(([i, j]) => Math.max(v2[i * 4 + j], v2[i * 4 + j + 1], v2[(i + 1) * 4 + j], v2[(i + 1) * 4 + j + 1])));
    const a = new nn.AvgPool2d(2, { padding: 1 }).forward(x2);
    expect(a.shape).toEqual([1, 3, 3, 1]);
    expect(flat(a)[0]).toBeCloseTo(v2[0] / 4, 12);
    expect(mx.treeFlatten(new nn.MaxPool2d(2).parameters())).toEqual([]);
  });
});

describe("Sequential and activations", () => {
  const cases: [string, (x: mx.Array) => mx.Array, nn.Module, (v: number) => number][] = [
    ["relu", nn.relu, new nn.ReLU(), (v) => Math.max(v, 0)],
    ["leakyRelu", (x) => nn.leakyRelu(x), new nn.LeakyReLU(), (v) => (v > 0 ? v : 0.01 * v)],
    ["elu", (x) => nn.elu(x), new nn.ELU(), (v) => (v > 0 ? v : Math.expm1(v))],
    ["selu", nn.selu, new nn.SELU(), (v) => 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * Math.expm1(v))],
    ["gelu", nn.gelu, new nn.GELU(), (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))],
    ["geluApprox", nn.geluApprox, new nn.GELU({ approx: "tanh" }), (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))],
    ["silu", nn.silu, new nn.SiLU(), (v) => v / (1 + Math.exp(-v))],
    ["mish", nn.mish, new nn.Mish(), (v) => v * Math.tanh(Math.log1p(Math.exp(v)))],
    ["sigmoid", nn.sigmoid, new nn.Sigmoid(), (v) => 1 / (1 + Math.exp(-v))],
    ["tanh", nn.tanh, new nn.Tanh(), Math.tanh],
    ["softplus", nn.softplus, new nn.Softplus(), (v) => Math.log1p(Math.exp(v))],
    ["hardSwish", nn.hardSwish, new nn.HardSwish(), (v) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6],
  ];
  const xs = [-4, -2.5, -1, -0.3, 0.2, 0.9, 2, 3.5];
  for (const [name, fn, mod, ref] of cases) {
    it(name, () => {
      const x = mx.array(Float64Array.from(xs));
      close(fn(x), xs.map(ref), 1e-7);
      close(mod.forward(x), xs.map(ref), 1e-7);
      checkGrads(fn, [x]);
    });
  }
  it("softmax and logSoftmax", () => {
    const [x, xv] = data([2, 3]);
    const ref = [0, 1].flatMap((r) => {
      const row = Array.from(xv.slice(r * 3, r * 3 + 3));
      const z = row.reduce((a, v) => a + Math.exp(v), 0);
      return row.map((v) => Math.exp(v) / z);
    });
    close(nn.softmax(x), ref, 1e-12);
    close(new nn.Softmax().forward(x), ref, 1e-12);
    close(nn.logSoftmax(x), ref.map(Math.log), 1e-12);
    close(new nn.LogSoftmax().forward(x), ref.map(Math.log), 1e-12);
    checkGrads((a) => nn.logSoftmax(a), [x]);
  });
  it("Sequential chains modules and functions with paths layers.i", () => {
    const s = new nn.Sequential(new nn.Linear(2, 3), new nn.ReLU(), (x: mx.Array) => x.mul(2), new nn.Linear(3, 1));
    expect(mx.treeFlatten(s.parameters()).map(([k]) => k)).toEqual(["layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias"]);
    const x = mx.random.normal([4, 2]);
    const l = s.layers as [nn.Linear, nn.ReLU, unknown, nn.Linear];
    const ref = l[3].forward(nn.relu(l[0].forward(x)).mul(2));
    close(s.forward(x), flat(ref), 1e-6);
  });
});

// Abramowitz-Stegun 7.1.26 is too coarse; use the series/continued fraction via erfc identities.
function erf(x: number): number {
  const t = Math.abs(x);
  let sum = t, term = t;
  for (let n = 1; n < 100; n++) {
    term *= (-t * t) / n;
    sum += term / (2 * n + 1);
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
}
