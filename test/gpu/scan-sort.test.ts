/**
 * Scans and sorting on the gpu (native/src/cuda/scan.cu, sort.cu): cumsum, cumprod, cummax, cummin
 * and logcumsumexp along every axis, both directions, inclusive and exclusive, on several dtypes,
 * equal to the cpu's (same order of operations, double accumulation); sort, argsort, partition,
 * argpartition and topk equal to the cpu's (stable, NaN last, -0 and +0 tied, the elements
 * themselves), plus plain-loop references for a cumsum and a sort.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { rng } from "../helpers/reference.js";
import { HAS_GPU, bothDevices, expectClose, expectSame } from "./util.js";

type A = mx.Array;
const next = rng(77);
/** Values with many ties (integers in [-6, 6], halved for floats) and, for floats, NaN, -0 and infinities. */
function data(shape: number[], d: mx.DType, specials = true): A {
  const n = shape.reduce((a, b) => a * b, 1);
  const float = d.startsWith("float") || d === "bfloat16";
  const pool = [NaN, -0, 0, Infinity, -Infinity];
  const v = Array.from({ length: n }, () => {
    if (float && specials && next() < 0.1) return pool[Math.floor(next() * pool.length)];
    const k = Math.floor(next() * 13) - 6;
    return float ? k / 2 : k;
  });
  if (d === "bool") return mx.array(v.map((x) => x > 0), "bool").reshape(shape);
  if (float) return mx.astype(mx.array(v, "float64"), d).reshape(shape);
  return mx.array(v, "int64").astype(d).reshape(shape);
}

describe.skipIf(!HAS_GPU)("gpu: scans", () => {
  const OPTIONS = [{}, { reverse: true }, { inclusive: false }, { reverse: true, inclusive: false }];
  it("cumsum, cumprod, cummax and cummin equal the cpu's on every axis and direction", () => {
    for (const d of ["float32", "float64", "int32", "uint8", "int64", "float16", "bool"] as mx.DType[]) {
      const x = data([3, 4, 5], d, false), xt = mx.transpose(data([5, 4, 3], d, false));
      for (const [label, a] of [["contiguous", x], ["transposed", xt]] as const)
        for (const axis of [0, 1, 2, null])
          for (const o of OPTIONS) {
            const what = `${d} ${label} axis ${axis} ${JSON.stringify(o)}`;
            if (d !== "bool") expectSame(bothDevices(() => [mx.cumsum(a, axis, o), mx.cumprod(a, axis, o)]), `cumsum/cumprod ${what}`);
            expectSame(bothDevices(() => [mx.cummax(a, axis, o), mx.cummin(a, axis, o)]), `cummax/cummin ${what}`);
          }
    }
  });
  it("NaN propagates through cummax and cummin as on the cpu; logcumsumexp matches within rounding", () => {
    for (const d of ["float32", "float64"] as mx.DType[]) {
      const x = data([6, 50], d);
      for (const o of OPTIONS) {
        expectSame(bothDevices(() => [mx.cummax(x, 1, o), mx.cummin(x, 0, o)]), `${d} ${JSON.stringify(o)}`);
        // the double steps differ by an ulp or so each (the gpu's exp and log1p): at most 50 of them
        for (const [c, g] of bothDevices(() => [mx.logcumsumexp(x, 1, o), mx.logcumsumexp(x, 0, o)]))
          expectClose(g, c.astype("float64").toTypedArray() as Float64Array, d === "float32" ? 2 ** -23 : 51 * 2 ** -52, 0, `logcumsumexp ${d}`);
      }
    }
  });
  it("a long float32 cumsum matches a float64 loop (accumulated in double, rounded once)", () => {
    const v = Array.from({ length: 100000 }, () => next() - 0.5);
    const x = mx.array(v, "float32");
    const held = x.toTypedArray() as Float32Array;
    let s = 0;
    const want = Float64Array.from(held, (h) => (s += h));
    // One line this long is scanned a chunk per block (scan.cu): its double sums are grouped
    // otherwise than the loop's, so each may differ from the loop's by twice the bound of a
    // double sum of these terms, besides the float32 rounding of the result (half an ulp).
    const bound = 2 * held.length * 2 ** -53 * held.reduce((a, h) => a + Math.abs(h), 0);
    const [[, g]] = bothDevices(() => mx.cumsum(x));
    expectClose(g, want, 2 ** -24, bound, "cumsum of 100000");
  });
  it("few long lines, a block per chunk of 4,096: the cpu's results on every direction and layout", () => {
    // Half-integers sum exactly in double, and powers of two multiply exactly, in any grouping
    // (integers wrap the same in any grouping), so sums and products too must equal the cpu's
    // loop bit for bit. No specials (a NaN early on would hide every later chunk), but one NaN
    // in the last chunk of float lines.
    const n = 9000;  // two full chunks and a partial one
    const twos = (shape: number[], d: mx.DType) =>
      mx.array(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => [-2, -1, -0.5, 0.5, 1, 2][Math.floor(next() * 6)]), "float64").astype(d).reshape(shape);
    for (const d of ["float32", "float64", "int32", "uint8", "int64", "float16"] as mx.DType[]) {
      const float = d.startsWith("float");
      const nanLate = (x: A, axis: number) => (float ? mx.where(mx.equal(mx.arange(x.shape[axis]).reshape(axis === 0 ? [-1, 1] : [-1]), 8500), NaN, x).astype(d) : x);
      const rows = data([2, n], d, false), cols = data([n, 3], d, false), strided = mx.transpose(data([n, 2], d, false));
      const middle = data([2, n, 3], d, false);
      const factors = float ? [twos([2, n], d), twos([n, 3], d), mx.transpose(twos([n, 2], d)), twos([2, n], d), twos([2, n, 3], d)] : [rows, cols, strided, rows, middle];
      const layouts = [["rows", rows, 1], ["columns", cols, 0], ["strided rows", strided, 1], ["flattened", rows, null], ["a middle axis", middle, 1]] as const;
      for (const o of OPTIONS)
        layouts.forEach(([label, x, axis], i) => {
          const what = `${d} ${label} ${JSON.stringify(o)}`;
          const withNaN = axis === 0 || axis === 1 && x.ndim === 2 ? nanLate(x, axis) : x;
          expectSame(bothDevices(() => [mx.cummax(withNaN, axis, o), mx.cummin(withNaN, axis, o), mx.cummax(x, axis, o)]), `cummax/cummin ${what}`);
          expectSame(bothDevices(() => [mx.cumsum(x, axis, o), mx.cumprod(factors[i], axis, o)]), `cumsum/cumprod ${what}`);
        });
    }
    // int64 sums and products that wrap around 2^64 (the same in any grouping).
    const big = mx.array(BigInt64Array.from({ length: 2 * n }, () => BigInt(Math.floor(next() * 8) - 4) << 60n)).reshape([2, n]);
    const small = mx.array(BigInt64Array.from({ length: 2 * n }, () => [-1n, 1n, 2n, 3n][Math.floor(next() * 4)])).reshape([2, n]);
    for (const o of OPTIONS) expectSame(bothDevices(() => [mx.cumsum(big, 1, o), mx.cumprod(small, 1, o)]), `int64 wrapping ${JSON.stringify(o)}`);
    const x = data([2, n], "float32", false);
    for (const o of OPTIONS)
      for (const [c, g] of bothDevices(() => mx.logcumsumexp(x, 1, o)))
        expectClose(g, c.astype("float64").toTypedArray() as Float64Array, 2 ** -23, 0, `logcumsumexp ${JSON.stringify(o)}`);
  });
});

describe.skipIf(!HAS_GPU)("gpu: sort", () => {
  it("sort and argsort equal the cpu's on every axis and many dtypes (NaN last, stable ties)", () => {
    for (const d of ["float32", "float64", "float16", "bfloat16", "int8", "uint16", "int32", "int64", "uint64", "bool"] as mx.DType[]) {
      const x = data([4, 9, 6], d), xt = mx.transpose(data([6, 9, 4], d));
      for (const [label, a] of [["contiguous", x], ["transposed", xt]] as const)
        for (const axis of [0, 1, 2, null])
          expectSame(bothDevices(() => [mx.sort(a, axis), mx.argsort(a, axis)]), `${d} ${label} axis ${axis}`);
    }
  });
  it("matches a stable plain-loop sort with NaN last, on a long line and many short ones", () => {
    const v = Array.from({ length: 20000 }, () => (next() < 0.01 ? NaN : Math.floor(next() * 500) - 250));
    const x = mx.array(v, "float32");
    const order = v.map((_, i) => i).sort((a, b) => {
      const [p, q] = [v[a], v[b]];
      if (Number.isNaN(p) || Number.isNaN(q)) return Number.isNaN(p) === Number.isNaN(q) ? a - b : Number.isNaN(p) ? 1 : -1;
      return p - q || a - b;
    });
    const [[, gs], [, gi]] = bothDevices(() => [mx.sort(x), mx.argsort(x)]);
    expect(Array.from(gi.toTypedArray() as Uint32Array)).toEqual(order);
    expect(Array.from(gs.toTypedArray() as Float32Array)).toEqual(order.map((i) => v[i]));
    const many = data([3000, 17], "int32");
    expectSame(bothDevices(() => [mx.sort(many, 1), mx.argsort(many, 0)]), "3000 lines of 17, and 17 of 3000");
  });
  it("partition, argpartition and topk equal the cpu's", () => {
    for (const d of ["float32", "int32", "float64"] as mx.DType[]) {
      const x = data([5, 40], d), xt = mx.transpose(data([40, 5], d));
      for (const kth of [0, 7, 39])
        expectSame(bothDevices(() => [mx.partition(x, kth, 1), mx.argpartition(x, kth, 1), mx.argpartition(xt, kth % 5, 1)]), `${d} kth ${kth}`);
      for (const k of [1, 5, 40]) expectSame(bothDevices(() => mx.topk(x, k, 1)), `${d} topk ${k}`);
    }
    // Long lines, and long lines down the columns (each element placed by its own thread).
    const long = data([2, 20000], "float32"), cols = data([20000, 3], "int32");
    for (const kth of [0, 123, 19999])
      expectSame(bothDevices(() => [mx.partition(long, kth, 1), mx.argpartition(long, kth, 1), mx.argpartition(cols, kth, 0)]), `long lines, kth ${kth}`);
    expectSame(bothDevices(() => [mx.topk(long, 10, 1), mx.topk(cols, 3, 0)]), "topk of long lines");
  });
});
