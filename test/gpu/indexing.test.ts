/**
 * gather and scatter on the gpu (native/src/cuda/indexing.cu): take, takeAlongAxis, putAlongAxis,
 * advanced indexing and `at(...)` updates give the cpu's results exactly (every index dtype,
 * negative indices, repeated indices combining in the cpu's order, strided operands, several
 * element dtypes), one case is also checked against a plain loop, out-of-range indices are the
 * cpu's error (and the gpu keeps working after it), and a gradient through take (a scatter-add).
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import { rng } from "../helpers/reference.js";
import { HAS_GPU, bothDevices, expectSame, on } from "./util.js";

type A = mx.Array;
const next = rng(2024);
/** A [shape] array of dtype d with small values (integers, halves of them for floats). */
function data(shape: number[], d: mx.DType): A {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => Math.floor(next() * 41) - 20);
  if (d === "bool") return mx.array(v.map((x) => x > 0), "bool").reshape(shape);
  return mx.astype(mx.array(v.map((x) => (d.startsWith("float") || d === "bfloat16" ? x / 2 : x)), "float64"), d).reshape(shape);
}
/** Indices in [-n, n) of dtype d (non-negative for unsigned dtypes). */
function indices(shape: number[], n: number, d: mx.DType): A {
  const count = shape.reduce((a, b) => a * b, 1);
  const signed = !d.startsWith("uint");
  const v = Array.from({ length: count }, () => Math.floor(next() * (signed ? 2 * n : n)) - (signed ? n : 0));
  return mx.array(v, "int64").astype(d).reshape(shape);
}

describe.skipIf(!HAS_GPU)("gpu: gather", () => {
  it("take and takeAlongAxis equal the cpu's, on every index dtype and several element dtypes", () => {
    for (const d of ["float32", "float64", "int32", "uint8", "float16", "bool", "int64"] as mx.DType[]) {
      const x = data([5, 6, 7], d);
      for (const id of ["int32", "int64", "uint8", "int8", "uint32", "int16", "uint16", "uint64"] as mx.DType[]) {
        const flat = indices([13], 5 * 6 * 7, id);
        expectSame(bothDevices(() => mx.take(x, flat)), `take ${d} by ${id} (flattened)`);
        for (const axis of [0, 1, 2]) {
          const i = indices([4, 3], x.shape[axis], id);
          expectSame(bothDevices(() => mx.take(x, i, axis)), `take ${d} by ${id}, axis ${axis}`);
          const shape = [...x.shape];
          shape[axis] = 9;
          const along = indices(shape, x.shape[axis], id);
          expectSame(bothDevices(() => mx.takeAlongAxis(x, along, axis)), `takeAlongAxis ${d} by ${id}, axis ${axis}`);
        }
      }
    }
  });
  it("reads strided and broadcast operands, and matches a plain loop", () => {
    const x = mx.transpose(data([7, 6, 5], "float32"), [2, 1, 0]); // [5, 6, 7], strided
    const idx = mx.broadcastTo(indices([1, 6, 1], 5, "int32"), [3, 6, 7]);
    const [[c, g]] = bothDevices(() => mx.takeAlongAxis(x, idx, 0));
    expectSame([[c, g]], "strided takeAlongAxis");
    const xv = x.tolist() as number[][][], iv = idx.tolist() as number[][][];
    const want = iv.map((p, i) => p.map((q, j) => q.map((k, l) => xv[k < 0 ? k + 5 : k][j][l])));
    expect(g.tolist()).toEqual(want);
    expectSame(bothDevices(() => x.index(mx.array([4, -1, 0], "int32"), mx.array([[1], [2]], "int32"))), "advanced index");
  });
  it("an index out of range is the cpu's error, and the gpu works on afterwards", () => {
    const x = data([5, 4], "float32"), g = { device: mx.gpu };
    expect(() => mx.eval(mx.take(x, mx.array([1, 9], "int32"), 0, g))).toThrow(/index 9 is out of bounds for an axis of size 5/);
    expect(() => mx.eval(mx.take(x, mx.array([-6], "int32"), 0, g))).toThrow(/index -6 is out of bounds for an axis of size 5/);
    expect(() => mx.eval(mx.take(x, mx.array([70000], "uint32"), 1, g))).toThrow(/index 70000 is out of bounds for an axis of size 4/);
    expect(() => mx.eval(mx.at(x, mx.array([0, 5], "int32")).add(1, g))).toThrow(/index 5 is out of bounds for an axis of size 5/);
    expect(mx.take(mx.arange(10, g), mx.array([3, -1], "int32"), 0, g).tolist()).toEqual([3, 9]);
  });
});

describe.skipIf(!HAS_GPU)("gpu: scatter", () => {
  it("at(...) updates with repeated indices equal the cpu's for every mode", () => {
    for (const d of ["float32", "float64", "int32", "int8", "float16", "bool"] as mx.DType[]) {
      const x = data([6, 5], d);
      const i = mx.array([0, 2, 2, -1, 0, 2, 3], "int32");
      const v = data([7, 5], d);
      const modes = d === "bool" ? ["set", "add", "maximum", "minimum"] : ["set", "add", "multiply", "maximum", "minimum"];
      for (const m of modes)
        expectSame(bothDevices(() => (mx.at(x, i) as unknown as Record<string, (v: A) => A>)[m](v)), `at ${d} ${m}`);
    }
  });
  it("long shared index lines (the sorted path) equal the cpu's for every mode, and report a bad index", () => {
    for (const d of ["float32", "float64", "int32", "float16", "bfloat16", "bool"] as mx.DType[]) {
      const x = data([9, 5], d);
      const i = indices([150], 9, "int32"); // 150 updates onto 9 rows: runs of ~17, negative indices too
      const v = data([150, 5], d);
      const modes = d === "bool" ? ["set", "add", "maximum", "minimum"] : ["set", "add", "multiply", "maximum", "minimum"];
      for (const m of modes)
        expectSame(bothDevices(() => (mx.at(x, i) as unknown as Record<string, (v: A) => A>)[m](v)), `at ${d} ${m} (sorted)`);
    }
    const strided = mx.transpose(data([5, 9], "float32"), [1, 0]), many = indices([500], 9, "int64"), u = data([500, 5], "float32");
    expectSame(bothDevices(() => mx.at(strided, many).add(u)), "sorted scatter onto a strided table");
    const bad = mx.array([...Array.from({ length: 99 }, (_, k) => k % 4), 4], "int32");
    expect(() => mx.eval(mx.at(mx.zeros([4, 3], "float32"), bad).add(1, { device: mx.gpu }))).toThrow(
      /index 4 is out of bounds for an axis of size 4/,
    );
  });
  it("putAlongAxis and scatter on strided operands and inner axes equal the cpu's", () => {
    const x = mx.transpose(data([6, 4, 5], "float32"), [1, 0, 2]); // [4, 6, 5], strided
    for (const axis of [0, 1, 2]) {
      const shape = [...x.shape];
      shape[axis] = 8;
      const idx = indices(shape, x.shape[axis], "int64"), v = data(shape, "float32");
      expectSame(bothDevices(() => mx.putAlongAxis(x, idx, v, axis)), `putAlongAxis axis ${axis}`);
    }
    // many float additions onto few elements: the same order as the cpu, so the same rounding
    const acc = mx.zeros([3], "float32"), many = mx.array(Array.from({ length: 3000 }, (_, k) => k % 3), "int32");
    const vals = mx.random.normal([3000], { key: mx.random.key(5) });
    expectSame(bothDevices(() => mx.at(acc, many).add(vals)), "3000 float32 additions");
  });
  it("an embedding's gradient (few lines, many repeated indices, a table split among threads) equals the cpu's", () => {
    for (const [rows, cols, count] of [[65, 128, 2048], [300, 64, 4000], [5000, 8, 3000], [7, 3, 50]]) {
      // Skewed: half the indices fall on the first few rows (a text's spaces and vowels).
      const ids = Array.from({ length: count }, (_, k) => (k % 2 ? k % 5 : Math.floor(next() * rows)));
      const i = mx.array(ids, "int32");
      const table = mx.zeros([rows, cols], "float32");
      const g = mx.random.normal([count, cols], { key: mx.random.key(rows) });
      expectSame(bothDevices(() => mx.at(table, i).add(g)), `scatter-add of ${count} rows of ${cols} onto ${rows}`);
    }
  });
  it("the gradient of take (a scatter-add) equals the cpu's", () => {
    const x = data([8, 3], "float64"), i = mx.array([1, 1, 7, 0, 1, -1], "int32"), w = data([6, 3], "float64");
    const f = (a: A) => mx.sum(mx.mul(mx.take(a, i, 0), w));
    expectSame(bothDevices(() => grad(f)(x)), "grad of take");
    const wv = w.tolist() as number[][]; // row 1 of x is taken at positions 0, 1 and 4
    expect((on(mx.gpu, () => grad(f)(x)).tolist() as number[][])[1]).toEqual(wv[0].map((s, j) => s + wv[1][j] + wv[4][j]));
  });
});
