/**
 * The fused row kernels on the gpu (native/src/cuda/fast.cu): layerNorm, rmsNorm, rope, softmax
 * and logsumexp against float64 loops (rows short enough for a warp and long enough for a block,
 * strided inputs, with and without weights), and their backward kernels (layerNormBwd,
 * rmsNormBwd, softmaxBwd, rope's transpose) against the cpu's gradients.
 */
import { describe, it } from "vitest";
import * as mx from "@tessera/core";
import { grad, vmap } from "@tessera/transforms";
import { rng } from "../helpers/reference.js";
import { HAS_GPU, bothDevices, expectClose } from "./util.js";

type A = mx.Array;
const next = rng(9);
const TOL = { float32: [2e-6, 2e-6], float64: [1e-13, 1e-13] } as const;
type F = keyof typeof TOL;
/** A float64 host copy and the array of dtype d holding the same (rounded) values. */
function data(shape: number[], d: F): [Float64Array, A] {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = mx.array(Array.from({ length: n }, () => 4 * next() - 2), d).reshape(shape);
  return [Float64Array.from(x.astype("float64").toTypedArray() as Float64Array), x];
}
/** Applies f to each row (last axis n) of v, concatenating the results. */
function rows(v: Float64Array, n: number, f: (r: Float64Array, i: number) => number[]): Float64Array {
  const out: number[] = [];
  for (let i = 0; i * n < v.length; i++) out.push(...f(v.subarray(i * n, (i + 1) * n), i));
  return Float64Array.from(out);
}
const mean = (r: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i];
  return s / r.length;
};

describe.skipIf(!HAS_GPU)("gpu: fused row kernels against float64 loops", () => {
  for (const d of ["float32", "float64"] as F[]) {
    const [rtol, atol] = TOL[d];
    it(`${d}: layerNorm and rmsNorm, warp and block rows, with and without parameters`, () => {
      for (const n of [7, 300, 3000]) {
        const [xv, x] = data([5, n], d), [wv, w] = data([n], d), [bv, b] = data([n], d);
        const ln = (hasW: boolean, hasB: boolean) => rows(xv, n, (r) => {
          const m = mean(r), s = 1 / Math.sqrt(mean(Array.from(r, (v) => (v - m) ** 2)) + 1e-5);
          return Array.from(r, (v, j) => (v - m) * s * (hasW ? wv[j] : 1) + (hasB ? bv[j] : 0));
        });
        const rms = rows(xv, n, (r) => {
          const s = 1 / Math.sqrt(mean(Array.from(r, (v) => v * v)) + 1e-6);
          return Array.from(r, (v, j) => v * s * wv[j]);
        });
        const g = { device: mx.gpu };
        expectClose(mx.fast.layerNorm(x, w, b, 1e-5, g), ln(true, true), rtol * 4, atol * 4, `layerNorm n ${n}`);
        expectClose(mx.fast.layerNorm(x, null, null, 1e-5, g), ln(false, false), rtol * 4, atol * 4, `layerNorm n ${n}, no params`);
        expectClose(mx.fast.rmsNorm(x, w, 1e-6, g), rms, rtol * 4, atol * 4, `rmsNorm n ${n}`);
      }
      // a strided x: the transpose of a [n, rows] array
      const [tv, t] = data([6, 4], d);
      const xt = mx.transpose(t);
      const cols = Float64Array.from({ length: 24 }, (_, i) => tv[(i % 6) * 4 + Math.floor(i / 6)]);
      const want = rows(cols, 6, (r) => {
        const s = 1 / Math.sqrt(mean(Array.from(r, (v) => v * v)) + 1e-6);
        return Array.from(r, (v) => v * s);
      });
      expectClose(mx.fast.rmsNorm(xt, null, 1e-6, { device: mx.gpu }), want, rtol * 4, atol * 4, "rmsNorm of a transposed x");
    });
    it(`${d}: rope, halves and interleaved pairs, partial dims and offsets`, () => {
      const [L, D] = [9, 16];
      const [xv, x] = data([2, 3, L, D], d);
      for (const traditional of [false, true])
        for (const dims of [16, 8])
          for (const offset of [0, 5]) {
            const want = rows(xv, D, (r, i) => {
              const pos = (offset + (i % L)) * 0.5, half = dims / 2, y = Array.from(r);
              for (let p = 0; p < half; p++) {
                const th = pos * Math.exp(-p * Math.log(10000) / half), c = Math.cos(th), s = Math.sin(th);
                const [ia, ib] = traditional ? [2 * p, 2 * p + 1] : [p, p + half];
                y[ia] = r[ia] * c - r[ib] * s;
                y[ib] = r[ia] * s + r[ib] * c;
              }
              return y;
            });
            const got = mx.fast.rope(x, dims, { traditional, base: 10000, scale: 0.5, offset, device: mx.gpu });
            expectClose(got, want, rtol * 8, atol * 8, `rope traditional ${traditional} dims ${dims} offset ${offset}`);
          }
    });
    it(`${d}: softmax and logsumexp, with -inf entries, warp and block rows`, () => {
      for (const n of [1, 33, 2500]) {
        const [xv0, x0] = data([4, n], d);
        const x = mx.where(mx.greater(x0, 1.8), -Infinity, x0);
        const xv = xv0.map((v) => (v > 1.8 ? -Infinity : v));
        const lse = (r: Float64Array) => {
          const m = Math.max(...r), mm = Number.isFinite(m) ? m : 0;
          return mm + Math.log(r.reduce((a, v) => a + Math.exp(v - mm), 0));
        };
        const g = { device: mx.gpu };
        expectClose(mx.softmax(x, -1, g), rows(xv, n, (r) => { const l = lse(r); return Array.from(r, (v) => Math.exp(v - l)); }), rtol * 8, atol, `softmax n ${n}`);
        expectClose(mx.logsumexp(x, -1, g), rows(xv, n, (r) => [lse(r)]), rtol * 4, atol * 4, `logsumexp n ${n}`);
      }
      expectClose(mx.logsumexp(mx.zeros([3, 0], d), -1, { device: mx.gpu }), [-Infinity, -Infinity, -Infinity], 0, 0, "logsumexp of empty rows");
    });
  }
});

describe.skipIf(!HAS_GPU)("gpu: backward kernels against the cpu's gradients", () => {
  /** Gradients of sum(f(args) * c) on both devices, compared with tolerance (float64 operands). */
  function compare(f: (...a: A[]) => A, args: A[], what: string): void {
    const c = mx.random.normal(f(...args).shape, { dtype: "float64", key: mx.random.key(3) });
    const loss = (...a: A[]) => mx.sum(mx.mul(f(...a), c));
    const argnums = args.map((_, i) => i);
    for (const [cg, gg] of bothDevices(() => grad(loss, { argnums })(...args) as unknown as A[]))
      expectClose(gg, cg.toTypedArray() as Float64Array, 1e-12, 1e-12, what);
  }
  it("layerNorm and rmsNorm: dx, dw, db, warp and block rows, grouped weights", () => {
    for (const n of [5, 1500]) {
      const [, x] = data([6, n], "float64"), [, w] = data([n], "float64"), [, b] = data([n], "float64");
      compare((x, w, b) => mx.fast.layerNorm(x, w, b, 1e-5), [x, w, b], `layerNorm n ${n}`);
      compare((x, w) => mx.fast.rmsNorm(x, w, 1e-6), [x, w], `rmsNorm n ${n}`);
      compare((x) => mx.fast.layerNorm(x, null, null, 1e-5), [x], `layerNorm n ${n}, no params`);
    }
    // vmap over weights: one weight row per group of rows
    const [, xs] = data([3, 4, 10], "float64"), [, ws] = data([3, 10], "float64");
    compare((x, w) => vmap((a: A, b: A) => mx.fast.rmsNorm(a, b, 1e-6))(x, w) as A, [xs, ws], "vmapped rmsNorm");
  });
  it("softmax, logsumexp and rope", () => {
    const [, x] = data([7, 40], "float64");
    compare((x) => mx.softmax(x, -1), [x], "softmax");
    compare((x) => mx.logsumexp(x, -1), [x], "logsumexp");
    const [, q] = data([2, 5, 8], "float64");
    compare((q) => mx.fast.rope(q, 8, { offset: 3 }), [q], "rope");
  });
});
