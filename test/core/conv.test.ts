/**
 * Convolutions (conv1d/2d/3d, convGeneral, convTranspose1d/2d/3d) and pooling (maxPool, avgPool)
 * against direct float64 loop references written here (the transposed convs by their scatter
 * definition, as PyTorch documents them) on random shapes: strides, padding, dilation, groups,
 * odd sizes, size-1 kernels, one channel, batch 1, non-contiguous inputs; float64, float32 and
 * float16. Gradients of input and weight against central finite differences in float64, and
 * argument errors naming the op.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import { expectClose, fromMx, randomRef, rng, sizeOf, strides, toMx, unravel, type Ref } from "../helpers/reference.js";
import { checkDerivatives } from "../transforms/checks.js";

interface General {
  stride: number[];
  padLo: number[];
  padHi: number[];
  kdil: number[];
  idil: number[];
  groups: number;
  flip: boolean;
}

/** out[n, o, co] = sum over taps k and group channels ci of x_dilated_padded[n, o*s + k*kd, ci] w[co, k (flipped?), ci]. */
function convRef(x: Ref, w: Ref, p: General): Ref {
  const D = x.shape.length - 2;
  const N = x.shape[0];
  const [Cout, Cg] = [w.shape[0], w.shape[D + 1]];
  const Og = Cout / p.groups;
  const ker = w.shape.slice(1, D + 1);
  const out = x.shape.slice(1, D + 1).map((n, d) => {
    const padded = (n - 1) * p.idil[d] + 1 + p.padLo[d] + p.padHi[d];
    return Math.floor((padded - ((ker[d] - 1) * p.kdil[d] + 1)) / p.stride[d]) + 1;
  });
  const shape = [N, ...out, Cout];
  const xs = strides(x.shape), ws = strides(w.shape);
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    const n = idx[0], o = idx.slice(1, D + 1), co = idx[D + 1], g = Math.floor(co / Og);
    let acc = 0;
    for (let kk = 0; kk < sizeOf(ker); kk++) {
      const k = unravel(kk, ker);
      let xoff = n * xs[0], woff = co * ws[0], inside = true;
      for (let d = 0; d < D; d++) {
        const q = o[d] * p.stride[d] + k[d] * p.kdil[d] - p.padLo[d];
        if (q < 0 || q % p.idil[d] !== 0 || q / p.idil[d] >= x.shape[1 + d]) inside = false;
        xoff += (q / p.idil[d]) * xs[1 + d];
        woff += (p.flip ? ker[d] - 1 - k[d] : k[d]) * ws[1 + d];
      }
      if (!inside) continue;
      for (let ci = 0; ci < Cg; ci++) acc += x.data[xoff + g * Cg + ci] * w.data[woff + ci];
    }
    data[i] = acc;
  }
  return { shape, data };
}

/** Transposed conv by scatter: out[n, i*s + k*d - p, co] += x[n, i, g*Cg + ci] * w[co, k, ci]. */
function convTransposeRef(x: Ref, w: Ref, s: number[], pad: number[], dil: number[], outPad: number[], groups: number): Ref {
  const D = x.shape.length - 2;
  const [Cout, Cg] = [w.shape[0], w.shape[D + 1]];
  const Og = Cout / groups;
  const ker = w.shape.slice(1, D + 1);
  const out = x.shape.slice(1, D + 1).map((n, d) => (n - 1) * s[d] - 2 * pad[d] + dil[d] * (ker[d] - 1) + outPad[d] + 1);
  const shape = [x.shape[0], ...out, Cout];
  const os = strides(shape), ws = strides(w.shape);
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape);
    const n = idx[0], pos = idx.slice(1, D + 1), c = idx[D + 1], g = Math.floor(c / Cg), ci = c % Cg;
    for (let kk = 0; kk < sizeOf(ker); kk++) {
      const k = unravel(kk, ker);
      let ooff = n * os[0], woff = ci, inside = true;
      for (let d = 0; d < D; d++) {
        const q = pos[d] * s[d] + k[d] * dil[d] - pad[d];
        if (q < 0 || q >= out[d]) inside = false;
        ooff += q * os[1 + d];
        woff += k[d] * ws[1 + d];
      }
      if (!inside) continue;
      for (let o = 0; o < Og; o++) data[ooff + g * Og + o] += x.data[i] * w.data[woff + (g * Og + o) * ws[0]];
    }
  }
  return { shape, data };
}

/** Pooling by loops: max (padding is -inf) or mean (padding counts as 0) of each window. */
function poolRef(x: Ref, kernel: number[], stride: number[], pad: number[], kind: "max" | "avg"): Ref {
  const D = x.shape.length - 2;
  const out = x.shape.slice(1, D + 1).map((n, d) => Math.floor((n + 2 * pad[d] - kernel[d]) / stride[d]) + 1);
  const shape = [x.shape[0], ...out, x.shape[D + 1]];
  const xs = strides(x.shape);
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    let acc = kind === "max" ? -Infinity : 0;
    for (let kk = 0; kk < sizeOf(kernel); kk++) {
      const k = unravel(kk, kernel);
      let off = idx[0] * xs[0] + idx[D + 1], inside = true;
      for (let d = 0; d < D; d++) {
        const q = idx[1 + d] * stride[d] + k[d] - pad[d];
        if (q < 0 || q >= x.shape[1 + d]) inside = false;
        off += q * xs[1 + d];
      }
      const v = inside ? x.data[off] : kind === "max" ? -Infinity : 0;
      acc = kind === "max" ? Math.max(acc, v) : acc + v;
    }
    data[i] = kind === "max" ? acc : acc / sizeOf(kernel);
  }
  return { shape, data };
}

const fill = (D: number, v: number | number[]) => (typeof v === "number" ? Array(D).fill(v) : v);
const TOL: Record<string, { atol: number; rtol: number }> = {
  float64: { atol: 1e-10, rtol: 1e-10 },
  float32: { atol: 1e-4, rtol: 1e-4 },
  float16: { atol: 3e-2, rtol: 3e-2 },
};
/** The float64 reference of a rounded input: what a lower-precision array actually holds. */
const rounded = (r: Ref, dtype: mx.DType): Ref => fromMx(toMx(r, dtype).astype("float64"));

interface ConvCase {
  x: number[];
  w: number[];
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
}
const CONV_CASES: ConvCase[] = [
  { x: [2, 7, 3], w: [4, 3, 3] },
  { x: [1, 9, 1], w: [1, 1, 1] },
  { x: [3, 10, 4], w: [6, 3, 2], stride: 2, padding: 1, dilation: 2, groups: 2 },
  { x: [1, 5, 2], w: [3, 5, 2], padding: 2 },
  { x: [2, 6, 5, 3], w: [4, 3, 2, 3], stride: [2, 1], padding: [1, 0] },
  { x: [1, 7, 8, 4], w: [8, 3, 3, 1], stride: [1, 3], padding: [2, 1], dilation: [2, 1], groups: 4 },
  { x: [2, 5, 5, 1], w: [2, 1, 1, 1], stride: 2 },
  { x: [1, 4, 5, 3, 2], w: [3, 2, 3, 1, 2], stride: [1, 2, 1], padding: [1, 0, 1] },
  { x: [2, 3, 4, 5, 4], w: [2, 1, 2, 3, 2], dilation: [1, 2, 1], groups: 2 },
  // Wide channels (float32 takes the indirect AVX-512 tiles where available): channel counts off the
  // vector width, more than one 64-column tile, a partial last 6-row tile, groups.
  { x: [2, 7, 5, 20], w: [70, 3, 3, 20], padding: 1 },
  { x: [1, 9, 7, 32], w: [18, 3, 2, 16], stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 },
  { x: [3, 11, 24], w: [39, 3, 8], stride: 2, padding: 2, dilation: 2, groups: 3 },
];
const convFns = [mx.conv1d, mx.conv2d, mx.conv3d];

describe("conv1d, conv2d, conv3d", () => {
  for (const dtype of ["float64", "float32", "float16"] as const) {
    it.each(CONV_CASES.map((c, i) => ({ ...c, i })))(`matches the loop reference in ${dtype} (case $i)`, (c) => {
      const D = c.x.length - 2;
      const r = rng(c.i + 1);
      const xr = rounded(randomRef(c.x, r), dtype), wr = rounded(randomRef(c.w, r), dtype);
      const pad = fill(D, c.padding ?? 0);
      const want = convRef(xr, wr, {
        stride: fill(D, c.stride ?? 1), padLo: pad, padHi: pad, kdil: fill(D, c.dilation ?? 1), idil: fill(D, 1), groups: c.groups ?? 1, flip: false,
      });
      const got = convFns[D - 1](toMx(xr, dtype), toMx(wr, dtype), { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups });
      expect(got.dtype).toBe(dtype);
      expectClose(got.astype("float64"), want, TOL[dtype]);
    });
  }

  it("reads non-contiguous inputs (transposed, reversed, stride-0)", () => {
    const r = rng(7);
    const x = mx.transpose(toMx(randomRef([5, 2, 3], r)), [1, 0, 2]).index(mx.slice(), mx.slice(null, null, -1)); // [2, 5, 3]
    const w = mx.transpose(toMx(randomRef([4, 3, 3], r)), [0, 2, 1]); // [4, 3, 3]
    const p = { stride: [1], padLo: [1], padHi: [1], kdil: [1], idil: [1], groups: 1, flip: false };
    expectClose(mx.conv1d(x, w, { padding: 1 }), convRef(fromMx(x), fromMx(w), p), TOL.float64);
    const b = mx.broadcastTo(toMx(randomRef([1, 5, 1], r)), [2, 5, 3]);
    expectClose(mx.conv1d(b, w, { padding: 1 }), convRef(fromMx(b), fromMx(w), p), TOL.float64);
  });

  it("promotes mixed float dtypes and handles a large im2col (several row chunks)", () => {
    const r = rng(3);
    const xr = randomRef([2, 40, 40, 8], r), wr = randomRef([5, 3, 3, 8], r);
    const got = mx.conv2d(toMx(xr, "float32"), toMx(wr), { padding: 1 });
    expect(got.dtype).toBe("float64");
    const want = convRef(rounded(xr, "float32"), wr, { stride: [1, 1], padLo: [1, 1], padHi: [1, 1], kdil: [1, 1], idil: [1, 1], groups: 1, flip: false });
    expectClose(got, want, TOL.float64);
  });
});

describe("convGeneral", () => {
  it.each([
    { x: [2, 5, 3], w: [2, 3, 3], o: { padding: [[2], [0]] as [number[], number[]], inputDilation: 2, flip: true } },
    { x: [1, 4, 5, 2], w: [4, 2, 3, 1], o: { stride: [2, 1], padding: [[1, 0], [2, 3]] as [number[], number[]], kernelDilation: [1, 2], inputDilation: [3, 1], groups: 2 } },
    { x: [2, 5, 4, 24], w: [34, 3, 2, 12], o: { stride: [1, 2], padding: [[2, 0], [1, 3]] as [number[], number[]], inputDilation: [2, 1], groups: 2, flip: true } },
  ].flatMap((c) => (["float64", "float32"] as const).map((dtype) => ({ ...c, dtype }))))("matches the loop reference with low/high padding, input dilation and flip (%#)", ({ x, w, o, dtype }) => {
    const r = rng(11);
    const xr = rounded(randomRef(x, r), dtype), wr = rounded(randomRef(w, r), dtype);
    const D = x.length - 2;
    const want = convRef(xr, wr, {
      stride: fill(D, (o as { stride?: number[] }).stride ?? 1), padLo: o.padding[0], padHi: o.padding[1],
      kdil: fill(D, (o as { kernelDilation?: number[] }).kernelDilation ?? 1), idil: fill(D, o.inputDilation), groups: o.groups ?? 1, flip: (o as { flip?: boolean }).flip ?? false,
    });
    expectClose(mx.convGeneral(toMx(xr, dtype), toMx(wr, dtype), o).astype("float64"), want, TOL[dtype]);
  });
});

interface TCase {
  x: number[];
  w: number[];
  stride?: number[];
  padding?: number[];
  dilation?: number[];
  outputPadding?: number[];
  groups?: number;
}
const T_CASES: TCase[] = [
  { x: [2, 5, 3], w: [4, 3, 3] },
  { x: [1, 4, 2], w: [3, 3, 2], stride: [2], padding: [1], outputPadding: [1] },
  { x: [2, 6, 4], w: [6, 2, 2], stride: [3], dilation: [2], groups: 2 },
  { x: [1, 3, 4, 2], w: [2, 3, 2, 2], stride: [2, 1], padding: [1, 0] },
  { x: [2, 3, 3, 4], w: [4, 3, 3, 1], stride: [2, 2], padding: [1, 1], outputPadding: [1, 0], groups: 4 },
  { x: [1, 2, 3, 2, 1], w: [2, 2, 2, 2, 1], stride: [2, 1, 2], outputPadding: [1, 0, 0] },
];
const tFns = [mx.convTranspose1d, mx.convTranspose2d, mx.convTranspose3d];

describe("convTranspose1d, convTranspose2d, convTranspose3d", () => {
  for (const dtype of ["float64", "float32"] as const) {
    it.each(T_CASES.map((c, i) => ({ ...c, i })))(`match the scatter reference in ${dtype} (case $i)`, (c) => {
      const D = c.x.length - 2;
      const r = rng(100 + c.i);
      const xr = rounded(randomRef(c.x, r), dtype), wr = rounded(randomRef(c.w, r), dtype);
      const want = convTransposeRef(xr, wr, c.stride ?? fill(D, 1), c.padding ?? fill(D, 0), c.dilation ?? fill(D, 1), c.outputPadding ?? fill(D, 0), c.groups ?? 1);
      const got = tFns[D - 1](toMx(xr, dtype), toMx(wr, dtype), { stride: c.stride, padding: c.padding, dilation: c.dilation, outputPadding: c.outputPadding, groups: c.groups });
      expectClose(got.astype("float64"), want, TOL[dtype]);
    });
  }
});

describe("gradients in float64 against finite differences", () => {
  const G: { name: string; fn: (x: mx.Array, w: mx.Array) => mx.Array; x: number[]; w: number[] }[] = [
    { name: "conv1d stride 2, padding 1, dilation 2", fn: (x, w) => mx.conv1d(x, w, { stride: 2, padding: 1, dilation: 2 }), x: [2, 7, 2], w: [3, 2, 2] },
    { name: "conv2d groups 2, stride [2, 1], padding [1, 2]", fn: (x, w) => mx.conv2d(x, w, { stride: [2, 1], padding: [1, 2], groups: 2 }), x: [1, 5, 4, 4], w: [4, 3, 2, 2] },
    { name: "conv2d dilation, odd sizes", fn: (x, w) => mx.conv2d(x, w, { dilation: [2, 1], stride: 3 }), x: [2, 7, 5, 1], w: [2, 2, 3, 1] },
    { name: "conv3d", fn: (x, w) => mx.conv3d(x, w, { padding: [1, 0, 0], stride: [1, 1, 2] }), x: [1, 3, 3, 4, 2], w: [2, 2, 2, 2, 2] },
    { name: "convTranspose1d outputPadding", fn: (x, w) => mx.convTranspose1d(x, w, { stride: 2, padding: 1, outputPadding: 1 }), x: [2, 4, 2], w: [3, 3, 2] },
    { name: "convTranspose2d groups, dilation", fn: (x, w) => mx.convTranspose2d(x, w, { stride: [1, 2], dilation: [2, 1], groups: 2 }), x: [1, 3, 3, 4], w: [2, 2, 3, 2] },
    { name: "convGeneral flip, input dilation", fn: (x, w) => mx.convGeneral(x, w, { flip: true, inputDilation: 2, padding: [[1], [2]] }), x: [2, 4, 2], w: [2, 3, 2] },
  ];
  it.each(G)("$name: input and weight", ({ fn, x, w }) => {
    const r = rng(5);
    checkDerivatives(fn, [toMx(randomRef(x, r)), toMx(randomRef(w, r))]);
  });

  it("second order: grad of a grad (conv of conv gradients)", () => {
    const r = rng(9);
    const x = toMx(randomRef([1, 5, 2], r)), w = toMx(randomRef([2, 3, 2], r));
    const g = (xx: mx.Array, ww: mx.Array) => grad((a: mx.Array) => mx.sum(mx.square(mx.conv1d(a, ww, { stride: 2, padding: 1 }))))(xx);
    checkDerivatives(g, [x, w]);
  });
});

/** Weight cotangent: dw[co, t, ci] = sum over n, o of ct[n, o, co] x_dilated_padded[n, o*s + k*kd, g*Cg + ci], k = t (flipped when flip). */
function weightGradRef(x: Ref, ct: Ref, wshape: number[], p: General): Ref {
  const D = x.shape.length - 2;
  const [Cout, Cg] = [wshape[0], wshape[D + 1]];
  const Og = Cout / p.groups;
  const ker = wshape.slice(1, D + 1), outSp = ct.shape.slice(1, D + 1);
  const xs = strides(x.shape), cs = strides(ct.shape);
  const data = new Float64Array(sizeOf(wshape));
  const perN = sizeOf(outSp);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, wshape);
    const co = idx[0], t = idx.slice(1, D + 1), ci = idx[D + 1], g = Math.floor(co / Og);
    let acc = 0;
    for (let n = 0; n < x.shape[0]; n++) {
      for (let j = 0; j < perN; j++) {
        const o = unravel(j, outSp);
        let xi = n * xs[0] + (g * Cg + ci) * xs[D + 1];
        let inside = true;
        for (let d = 0; d < D && inside; d++) {
          const k = p.flip ? ker[d] - 1 - t[d] : t[d];
          const q = o[d] * p.stride[d] + k * p.kdil[d] - p.padLo[d];
          if (q < 0 || q % p.idil[d] !== 0 || q / p.idil[d] >= x.shape[1 + d]) inside = false;
          else xi += (q / p.idil[d]) * xs[1 + d];
        }
        if (!inside) continue;
        let cti = n * cs[0] + co * cs[D + 1];
        for (let d = 0; d < D; d++) cti += o[d] * cs[1 + d];
        acc += ct.data[cti] * x.data[xi];
      }
    }
    data[i] = acc;
  }
  return { shape: wshape, data };
}

describe("the weight gradient (convWeightGrad) against its loop reference", () => {
  // Wide channels reach the float32 AVX-512 tiles: channel counts off the vector width, more than
  // 64 of either kind, several 2048-row items (their partial sums), groups, flip, input dilation.
  const W: { x: number[]; w: number[]; o: General }[] = [
    { x: [2, 9, 7, 20], w: [70, 3, 3, 20], o: { stride: [1, 1], padLo: [1, 1], padHi: [1, 1], kdil: [1, 1], idil: [1, 1], groups: 1, flip: false } },
    { x: [3, 11, 24], w: [39, 3, 8], o: { stride: [2], padLo: [2], padHi: [2], kdil: [2], idil: [1], groups: 3, flip: false } },
    { x: [1, 9, 7, 32], w: [18, 3, 2, 16], o: { stride: [2, 1], padLo: [1, 2], padHi: [1, 2], kdil: [1, 2], idil: [1, 1], groups: 2, flip: false } },
    { x: [2, 5, 4, 24], w: [34, 3, 2, 12], o: { stride: [1, 2], padLo: [2, 1], padHi: [0, 3], kdil: [1, 1], idil: [2, 1], groups: 2, flip: true } },
    { x: [3, 40, 30, 16], w: [8, 3, 3, 16], o: { stride: [1, 1], padLo: [1, 1], padHi: [1, 1], kdil: [1, 1], idil: [1, 1], groups: 1, flip: false } },
    { x: [1, 6, 5, 80], w: [5, 2, 2, 80], o: { stride: [1, 1], padLo: [0, 1], padHi: [1, 0], kdil: [1, 1], idil: [1, 1], groups: 1, flip: true } },
    { x: [2, 6, 5, 3], w: [4, 3, 2, 3], o: { stride: [2, 1], padLo: [1, 0], padHi: [1, 0], kdil: [1, 1], idil: [1, 1], groups: 1, flip: false } },
  ];
  for (const dtype of ["float64", "float32"] as const) {
    it.each(W.map((c, i) => ({ ...c, i })))(`matches in ${dtype}, through grad of convGeneral (case $i)`, (c) => {
      const r = rng(200 + c.i);
      const xr = rounded(randomRef(c.x, r), dtype);
      const x = toMx(xr, dtype), w0 = toMx(randomRef(c.w, r), dtype);
      const opts = { stride: c.o.stride, padding: [c.o.padLo, c.o.padHi] as [number[], number[]], kernelDilation: c.o.kdil, inputDilation: c.o.idil, groups: c.o.groups, flip: c.o.flip };
      const yshape = mx.convGeneral(x, w0, opts).shape;
      const ctr = rounded(randomRef(yshape, r), dtype);
      const ct = toMx(ctr, dtype);
      const got = grad((w: mx.Array) => mx.sum(mx.mul(mx.convGeneral(x, w, opts), ct)))(w0);
      expect(got.dtype).toBe(dtype);
      expectClose(got.astype("float64"), weightGradRef(xr, ctr, c.w, c.o), TOL[dtype]);
    });
  }
});

describe("maxPool and avgPool", () => {
  const P: { x: number[]; k: number | number[]; stride?: number | number[]; padding?: number | number[] }[] = [
    { x: [2, 7, 3], k: 2 },
    { x: [1, 8, 1], k: 3, stride: 1, padding: 1 },
    { x: [2, 5, 6, 2], k: [2, 3], stride: [1, 2], padding: [1, 1] },
    { x: [1, 4, 4, 3], k: 2 },
    { x: [1, 3, 4, 3, 2], k: [2, 2, 3], stride: 1 },
  ];
  for (const kind of ["max", "avg"] as const) {
    const fn = kind === "max" ? mx.maxPool : mx.avgPool;
    it.each(P.map((c, i) => ({ ...c, i })))(`${kind}Pool matches the loop reference (case $i)`, (c) => {
      const D = c.x.length - 2;
      const xr = randomRef(c.x, rng(c.i + 20));
      const kernel = fill(D, c.k);
      const want = poolRef(xr, kernel, fill(D, c.stride ?? kernel), fill(D, c.padding ?? 0), kind);
      for (const dtype of ["float64", "float32"] as const) {
        expectClose(fn(toMx(rounded(xr, dtype), dtype), c.k, { stride: c.stride, padding: c.padding }).astype("float64"), kind === "max" ? poolRef(rounded(xr, dtype), kernel, fill(D, c.stride ?? kernel), fill(D, c.padding ?? 0), kind) : want, TOL[dtype]);
      }
    });
    it(`${kind}Pool gradients match finite differences`, () => {
      checkDerivatives((x) => fn(x, [2, 3], { stride: [1, 2], padding: [1, 1] }), [toMx(randomRef([2, 5, 6, 2], rng(31)))]);
    });
  }

  it("maxPool on integers pads with the dtype's lowest value; avgPool averages them in float32", () => {
    const x = mx.array([[[-5], [-7], [-3]]], "int32");
    expect(mx.maxPool(x, 2, { stride: 1, padding: 1 }).reshape([-1]).tolist()).toEqual([-5, -5, -3, -3]);
    const y = mx.avgPool(x, 3);
    expect(y.dtype).toBe("float32");
    expect(y.reshape([-1]).tolist()).toEqual([-5]);
  });

  it("maxPool splits the gradient evenly among tied maxima", () => {
    const x = mx.array([[[1], [3], [3], [2]]], "float64");
    const g = grad((a: mx.Array) => mx.sum(mx.maxPool(a, 4)))(x);
    expect(g.reshape([-1]).tolist()).toEqual([0, 0.5, 0.5, 0]);
  });
});

describe("errors name the op, what it got and what was expected", () => {
  const x1 = () => mx.zeros([1, 5, 4]), w1 = () => mx.zeros([2, 3, 4]);
  it.each([
    ["conv1d", () => mx.conv1d(mx.zeros([5, 4]), w1()), TypeError, /^conv1d: input must have rank 3 .*got shape \[5,4\]/],
    ["conv2d", () => mx.conv2d(mx.zeros([1, 5, 5, 2]), mx.zeros([2, 3, 2])), TypeError, /^conv2d: weight must have rank 4/],
    ["conv1d", () => mx.conv1d(x1(), mx.zeros([2, 3, 3])), TypeError, /^conv1d: the weight's last axis must be input channels \/ groups .*\[1,5,4\].*\[2,3,3\]/],
    ["conv1d", () => mx.conv1d(x1(), mx.zeros([2, 3, 4]), { groups: 3 }), TypeError, /^conv1d: groups \(3\) must divide the input channels; got input shape \[1,5,4\]/],
    ["conv1d", () => mx.conv1d(x1(), mx.zeros([3, 3, 2]), { groups: 2 }), TypeError, /^conv1d: groups \(2\) must divide the output channels/],
    ["conv1d", () => mx.conv1d(x1(), mx.zeros([2, 7, 4]), { padding: 0 }), TypeError, /^conv1d: the \(dilated\) kernel size 7 exceeds the padded input size 5/],
    ["conv1d", () => mx.conv1d(x1(), w1(), { dilation: 3 }), TypeError, /kernel size 7 exceeds the padded input size 5/],
    ["conv1d", () => mx.conv1d(x1(), w1(), { stride: 0 }), RangeError, /^conv1d: stride must be at least 1; got 0/],
    ["conv1d", () => mx.conv1d(x1(), w1(), { padding: -1 }), RangeError, /^conv1d: padding must be non-negative; got -1/],
    ["conv2d", () => mx.conv2d(mx.zeros([1, 5, 5, 4]), mx.zeros([2, 3, 3, 4]), { stride: [1, 2, 3] }), TypeError, /^conv2d: stride must be an integer or a list of 2 integers/],
    ["conv1d", () => mx.conv1d(mx.zeros([1, 5, 4], "int32"), mx.zeros([2, 3, 4], "int32")), TypeError, /^conv1d: input and weight must be floating point; got int32 and int32/],
    ["conv1d", () => mx.conv1d(x1(), w1(), { group: 2 } as never), TypeError, /^conv1d: the options are/],
    ["convTranspose1d", () => mx.convTranspose1d(x1(), w1(), { outputPadding: 1 }), RangeError, /^convTranspose1d: outputPadding must be smaller than the stride or the dilation/],
    ["convTranspose2d", () => mx.convTranspose2d(x1(), w1()), TypeError, /^convTranspose2d: input must have rank 4/],
    ["maxPool", () => mx.maxPool(mx.zeros([5, 4]), 2), TypeError, /^maxPool: input must have rank at least 3/],
    ["maxPool", () => mx.maxPool(x1(), 6), TypeError, /^maxPool: kernel size \[6\] exceeds the padded input/],
    ["avgPool", () => mx.avgPool(x1(), 2, { padding: 2 }), RangeError, /^avgPool: padding must be at most half the kernel size/],
    ["avgPool", () => mx.avgPool(x1(), 0), RangeError, /^avgPool: kernelSize must be at least 1; got 0/],
  ] as const)("%s: %#", (_name, f, cls, re) => {
    expect(f).toThrow(cls);
    expect(f).toThrow(re);
  });
});
