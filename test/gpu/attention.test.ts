/**
 * Scaled dot-product attention on the gpu (native/src/cuda/attention.cu) against the cpu backend:
 * grouped-query heads, no mask, causal masks with fewer and with more queries than keys (rows that
 * see no key), additive and bool masks that broadcast, strided operands, rows long enough for the
 * block-per-row kernel, float32 and float64 (float16 inputs run in float32); the backward pass
 * (attentionBwd: dq, dk, dv) through grad.
 */
import { describe, it } from "vitest";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import { rng } from "../helpers/reference.js";
import { HAS_GPU, bothDevices, expectClose } from "./util.js";

type A = mx.Array;
const next = rng(31);
function data(shape: number[], d: mx.DType): A {
  const n = shape.reduce((a, b) => a * b, 1);
  return mx.array(Array.from({ length: n }, () => 2 * next() - 1), "float64").astype(d).reshape(shape);
}
function close(pairs: [A, A][], tol: number, what: string): void {
  pairs.forEach(([c, g], k) => expectClose(g.astype("float64"), c.astype("float64").toTypedArray() as Float64Array, tol, tol, `${what} #${k}`));
}
const sdpa = mx.fast.scaledDotProductAttention;

describe.skipIf(!HAS_GPU)("gpu: attention against the cpu", () => {
  for (const d of ["float32", "float64"] as const) {
    const tol = d === "float64" ? 1e-12 : 3e-6;
    it(`${d}: no mask, causal (Lq < Lk and Lq > Lk), additive and bool masks, grouped heads`, () => {
      for (const [lq, lk] of [[5, 7], [9, 4], [6, 6]]) {
        const q = data([2, 4, lq, 8], d), k = data([2, 2, lk, 8], d), v = data([2, 2, lk, 5], d);
        close(bothDevices(() => sdpa(q, k, v)), tol, `no mask ${lq}x${lk}`);
        close(bothDevices(() => sdpa(q, k, v, { mask: "causal", scale: 0.7 })), tol, `causal ${lq}x${lk}`);
        const add = data([lq, lk], d);
        close(bothDevices(() => sdpa(q, k, v, { mask: add })), tol, `additive [Lq, Lk] mask ${lq}x${lk}`);
        const full = data([2, 4, lq, lk], d);
        close(bothDevices(() => sdpa(q, k, v, { mask: full })), tol, `additive full mask ${lq}x${lk}`);
        const keep = mx.greater(data([1, 4, 1, lk], "float32"), -0.3);
        close(bothDevices(() => sdpa(q, k, v, { mask: keep })), tol, `bool mask ${lq}x${lk}`);
      }
    });
    it(`${d}: strided operands and long rows (a block per row)`, () => {
      const q = mx.transpose(data([2, 6, 3, 16], d), [0, 2, 1, 3]); // [2, 3, 6, 16]
      const k = mx.transpose(data([2, 1500, 3, 16], d), [0, 2, 1, 3]);
      const v = mx.transpose(data([2, 3, 8, 1500], d), [0, 1, 3, 2]);
      close(bothDevices(() => sdpa(q, k, v)), tol, "strided, long rows");
      close(bothDevices(() => sdpa(q, k, v, { mask: "causal" })), tol, "strided, long rows, causal");
    });
  }
  it("float16 inputs (computed in float32)", () => {
    const q = data([1, 2, 5, 8], "float16"), k = data([1, 2, 6, 8], "float16"), v = data([1, 2, 6, 8], "float16");
    close(bothDevices(() => sdpa(q, k, v, { mask: "causal" })), 2e-3, "float16");
  });
  it("gradients (attentionBwd): dq, dk, dv with grouped heads and every mask kind", () => {
    for (const d of ["float64", "float32"] as const) {
      const tol = d === "float64" ? 1e-11 : 2e-5;
      for (const [lq, lk] of [[5, 7], [8, 3]]) {
        const q = data([2, 4, lq, 6], d), k = data([2, 2, lk, 6], d), v = data([2, 2, lk, 3], d);
        const c = data([2, 4, lq, 3], d), add = data([1, 4, lq, lk], d);
        for (const mask of [null, "causal", add] as (A | "causal" | null)[]) {
          const loss = (q: A, k: A, v: A) => mx.sum(mx.mul(sdpa(q, k, v, { mask, scale: 0.6 }), c));
          const what = `${d} ${lq}x${lk} mask ${mask === null ? "none" : mask === "causal" ? "causal" : "additive"}`;
          close(bothDevices(() => grad(loss, { argnums: [0, 1, 2] })(q, k, v) as unknown as A[]), tol, what);
        }
      }
    }
  });
});
