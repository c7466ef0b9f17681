/**
 * Adds folded into the products they follow on the gpu (packages/core/src/eval/epilogue.ts,
 * native/src/cuda/matmul_lt.cc): `matmul(a, b) + c` and `matmul(a, b) + broadcast(bias)` run as one
 * product whose epilogue adds, for the products of training steps (skinny, split over K, batched,
 * against a transposed weight, a [B, L, D] batch times a weight: a product over B * L rows,
 * reshaped). The results are the separate ops' (the fusion pass turned off runs them apart) up to
 * the product's summation order (cuBLASLt may pick another algorithm than cuBLAS does without an
 * epilogue), and compiled calls give the plain call's bits. A product whose own result is kept,
 * or an add of half types, is left alone. The cpu, which never folds, agrees within float
 * tolerance. A norm backward's dx plus a residual's gradient is folded into the norm backward,
 * with the separate add's bits.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { compile, grad } from "@tessera/transforms";
import { HAS_GPU, on } from "./util.js";

type A = mx.Array;
const { setFusion } = mx.internal;
const values = (a: A) => Array.from(a.astype("float64").toTypedArray() as Float64Array);

/** fn's results with the fusion pass on (adds folded) and off (each op apart). */
function foldedAndApart(fn: () => A[]): [A[], A[]] {
  const folded = fn();
  mx.eval(...folded);
  setFusion(false);
  try {
    const apart = fn();
    mx.eval(...apart);
    return [folded, apart];
  } finally {
    setFusion(true);
  }
}

// [batch..., M, K, N]: a layer's forward, a classifier head, a weight gradient split over K, a
// Transformer's projection, heads batched.
const SHAPES: number[][] = [[256, 784, 512], [256, 512, 10], [64, 4096, 64], [2048, 128, 59], [4, 128, 32, 128]];

describe.skipIf(!HAS_GPU)("gpu: adds folded into products", () => {
  for (const dims of SHAPES) {
    for (const dtype of dims.length === 3 && dims[2] === 10 ? (["float32", "float64"] as const) : (["float32"] as const)) {
      it(`${dims.join("x")} ${dtype}: addend, bias, a transposed weight and a sum of products, bit for bit`, () => {
        on(mx.gpu, () => {
          mx.random.seed(dims.reduce((s, d) => s + d, 0));
          const batch = dims.slice(0, -3), [M, K, N] = dims.slice(-3);
          const normal = (shape: number[]) => mx.random.normal(shape, { dtype });
          const a = normal([...batch, M, K]), b = normal([...batch, K, N]), wt = normal([...batch, N, K]);
          const c = normal([...batch, M, N]), bias = normal([N]), a2 = normal([...batch, M, K]);
          mx.eval(a, b, wt, c, bias, a2);
          const fn = () => [
            mx.add(mx.matmul(a, b), c),
            mx.add(c, mx.matmul(a, b)),
            mx.add(mx.matmul(a, b), mx.broadcastTo(bias, [...batch, M, N])),
            mx.add(mx.matmul(a, mx.swapaxes(wt, -1, -2)), c),
            mx.add(mx.matmul(a, b), mx.matmul(a2, b)),
          ];
          const [folded, apart] = foldedAndApart(fn);
          // A few roundings of the sum apart at most (the two products may sum in other orders).
          const ulp = dtype === "float32" ? 2 ** -23 : 2 ** -52;
          folded.forEach((y, i) => {
            const fv = values(y), av = values(apart[i]);
            fv.forEach((v, j) => expect(Math.abs(v - av[j]), `result ${i}`).toBeLessThanOrEqual(8 * ulp * Math.sqrt(K) * (1 + Math.abs(av[j]))));
          });
          const p = mx.profile(() => fn());
          expect(p.rows.find((r) => r.primitive === "add"), "no add runs apart").toBeUndefined();
          // Compiled: recorded and replayed, the same bits.
          const f = compile(() => fn());
          for (let r = 0; r < 4; r++) f().forEach((y, i) => expect(values(y), `compiled call ${r}, result ${i}`).toEqual(values(folded[i])));
          // The cpu never folds: within float32's accumulation bound of its result.
          const onCpu = on(mx.cpu, () => {
            const [ca, cb, cc, cbias] = [a, b, c, bias].map((x) => mx.copy(x, { device: mx.cpu }));
            return [mx.add(mx.matmul(ca, cb), cc), mx.add(mx.matmul(ca, cb), mx.broadcastTo(cbias, [...batch, M, N]))];
          });
          const tol = dtype === "float32" ? 2e-5 * Math.sqrt(K) : 1e-12 * Math.sqrt(K);
          for (const [g, cpu] of [[folded[0], onCpu[0]], [folded[2], onCpu[1]]] as const) {
            const gv = values(g), cv = values(cpu);
            gv.forEach((v, i) => expect(Math.abs(v - cv[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(cv[i]))));
          }
        });
      });
    }
  }

  it("a [B, L, D] batch times a weight (a product over B * L rows, reshaped): residual and bias folded", () => {
    on(mx.gpu, () => {
      mx.random.seed(4);
      const x = mx.random.normal([4, 64, 96]), w = mx.random.normal([96, 80]), h = mx.random.normal([4, 64, 80]);
      const bias = mx.random.normal([80]);
      mx.eval(x, w, h, bias);
      const fn = () => [mx.add(h, mx.matmul(x, w)), mx.add(mx.matmul(x, w), mx.broadcastTo(bias, [4, 64, 80]))];
      const [folded, apart] = foldedAndApart(fn);
      folded.forEach((y, i) => {
        expect(y.shape).toEqual([4, 64, 80]);
        const fv = values(y), av = values(apart[i]);
        fv.forEach((v, j) => expect(Math.abs(v - av[j]), `result ${i}`).toBeLessThanOrEqual(8 * 2 ** -23 * Math.sqrt(96) * (1 + Math.abs(av[j]))));
      });
      expect(mx.profile(() => fn()).rows.find((r) => r.primitive === "add"), "no add runs apart").toBeUndefined();
    });
  });

  it("a norm backward adds a residual's gradient to dx as it stores it: the separate add's bits", () => {
    on(mx.gpu, () => {
      mx.random.seed(6);
      for (const dtype of ["float32", "float64"] as const) {
        const h = mx.random.normal([8, 64, 96], { dtype }), c = mx.random.normal([8, 64, 96], { dtype });
        const w = mx.random.normal([96], { dtype }), b = mx.random.normal([96], { dtype });
        mx.eval(h, c, w, b);
        // d/dh of sum((norm(h) + h) * c): the norm's backward of c, plus c.
        const layer = grad((h: A) => mx.sum(mx.mul(mx.add(mx.fast.layerNorm(h, w, b, 1e-5), h), c)));
        const rms = grad((h: A) => mx.sum(mx.mul(mx.add(mx.fast.rmsNorm(h, w, 1e-5), h), c)));
        const fn = () => [layer(h), rms(h)];
        const [folded, apart] = foldedAndApart(fn);
        folded.forEach((y, i) => expect(values(y), `${dtype} result ${i}`).toEqual(values(apart[i])));
        expect(mx.profile(() => fn()).rows.find((r) => r.primitive === "add"), `${dtype}: no add runs apart`).toBeUndefined();
      }
    });
  });

  it("leaves a product whose result is kept, and half types, apart", () => {
    on(mx.gpu, () => {
      mx.random.seed(3);
      const a = mx.random.normal([64, 32]), b = mx.random.normal([32, 16]), c = mx.random.normal([64, 16]);
      mx.eval(a, b, c);
      const p = mx.profile(() => {
        const m = mx.matmul(a, b);
        return [m, mx.add(m, c)];
      });
      expect(p.rows.find((r) => r.primitive === "add")?.calls, "the add runs apart").toBe(1);
      const [m, y] = p.value;
      const mv = values(m), cv = values(c);
      expect(values(y)).toEqual(mv.map((v, i) => Math.fround(v + cv[i])));
      const [ah, bh, ch] = [a, b, c].map((x) => x.astype("bfloat16"));
      const q = mx.profile(() => mx.add(mx.matmul(ah, bh), ch));
      expect(q.rows.find((r) => r.primitive === "add")?.calls, "bfloat16: the add runs apart").toBe(1);
    });
  });
});
