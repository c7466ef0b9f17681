/**
 * tile, repeat, pad and roll (composites of reshape, broadcastTo, slice, sliceUpdate and
 * concatenate) against plain-JS references with NumPy's semantics: every argument form, empty
 * arrays, size-1 axes, non-contiguous inputs, several dtypes, the Array methods and the errors;
 * then gradients (checkGrads, float64) and vmap against stacking per example.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { checkGrads } from "@tessera/transforms/testing";
import { rng, unravel } from "../helpers/reference.js";
import { VIEWS, hostAt, hostFrom, makeBroadcastable, viewOf, type Host } from "../helpers/host.js";
import { buildArray, expectMatches } from "../helpers/inputs.js";
import { checkVmap, toArray, uniform, type Val } from "../transforms/checks.js";

/** Distinct values 1, 2, 3, ... so any misplaced element shows. */
const iota = (shape: number[]): Host<number> => hostFrom(shape, (i) => i + 1);
const A = (h: Host<number>, d: mx.DType = "float32") => buildArray(h, d);
const mod = (a: number, n: number) => ((a % n) + n) % n;

// ---- references (NumPy semantics, element by element) ----

function tileRef<T>(h: Host<T>, reps: number | number[]): Host<T> {
  const r = typeof reps === "number" ? [reps] : reps;
  const nd = Math.max(r.length, h.shape.length);
  const rs = [...Array(nd - r.length).fill(1), ...r];
  const s = [...Array(nd - h.shape.length).fill(1), ...h.shape];
  const shape = s.map((d, i) => d * rs[i]);
  return hostFrom(shape, (i) => {
    const idx = unravel(i, shape).map((v, d) => v % s[d]);
    return hostAt(h, idx.slice(nd - h.shape.length));
  });
}

function repeatRef<T>(h: Host<T>, r: number, axis?: number): Host<T> {
  const src = axis === undefined ? { shape: [h.data.length], data: h.data } : h;
  const ax = axis === undefined ? 0 : mod(axis, h.shape.length);
  const shape = src.shape.map((d, i) => (i === ax ? d * r : d));
  return hostFrom(shape, (i) => hostAt(src, unravel(i, shape).map((v, d) => (d === ax ? Math.floor(v / r) : v))));
}

function padRef(h: Host<number>, pairs: [number, number][], mode: "constant" | "edge", value = 0): Host<number> {
  const shape = h.shape.map((d, i) => d + pairs[i][0] + pairs[i][1]);
  return hostFrom(shape, (i) => {
    const idx = unravel(i, shape).map((v, d) => v - pairs[d][0]);
    if (mode === "edge") return hostAt(h, idx.map((v, d) => Math.min(Math.max(v, 0), h.shape[d] - 1)));
    return idx.every((v, d) => v >= 0 && v < h.shape[d]) ? hostAt(h, idx) : value;
  });
}

/** shifts: one total shift per axis. */
function rollRef<T>(h: Host<T>, shifts: number[]): Host<T> {
  return hostFrom(h.shape, (i) => hostAt(h, unravel(i, h.shape).map((v, d) => mod(v - shifts[d], h.shape[d]))));
}
const rollFlatRef = <T>(h: Host<T>, s: number): Host<T> => ({ shape: h.shape, data: rollRef({ shape: [h.data.length], data: h.data }, [s]).data });

// ---- forward ----

describe("tile", () => {
  const cases: [number[], number | number[]][] = [
    [[3], 2], [[3], [2]], [[2, 3], 2], [[2, 3], [2, 1]], [[2, 3], [3, 2]], [[2, 3], [2, 1, 3]], [[2, 1, 3], [2, 2]],
    [[1], [4]], [[2, 3], []], [[2, 3], [1, 1]], [[], 3], [[], [2, 2]], [[2, 3], 0], [[2, 3], [0, 2]], [[0, 3], 2], [[2, 0], [3, 1, 1]],
  ];
  it.each(cases)("shape %j reps %j", (shape, reps) => {
    const h = iota(shape);
    expectMatches(mx.tile(A(h), reps), tileRef(h, reps), "float32");
  });
  it("non-contiguous inputs, other dtypes and the method", () => {
    const h = iota([3, 2]);
    for (const kind of VIEWS) {
      const x = kind === "broadcast" ? makeBroadcastable(h) : h;
      expectMatches(viewOf(x, kind, (b) => A(b), -1).tile([2, 1, 3]), tileRef(x, [2, 1, 3]), "float32", {}, kind);
    }
    for (const d of ["int32", "float64", "int64", "bool"] as mx.DType[]) {
      const g = d === "bool" ? hostFrom([2, 3], (i) => i % 2) : h;
      expectMatches(mx.tile(A(g, d), [2, 2]), tileRef(g, [2, 2]), d, {}, d);
    }
  });
  it("rejects bad reps", () => {
    const x = mx.zeros([2, 3]);
    expect(() => mx.tile(x, -1)).toThrow(RangeError);
    expect(() => mx.tile(x, [2, -1])).toThrow(/tile.*\[2,3\]/);
    expect(() => mx.tile(x, 1.5)).toThrow(TypeError);
    expect(() => mx.tile(x, "2" as any)).toThrow(/tile: reps/);
    expect(() => mx.tile([1, 2] as any, 2)).toThrow(TypeError);
  });
});

describe("repeat", () => {
  const cases: [number[], number, number | undefined][] = [
    [[4], 3, undefined], [[2, 3], 2, undefined], [[2, 3], 2, 0], [[2, 3], 3, 1], [[2, 3], 2, -1], [[2, 3, 2], 2, 1],
    [[1, 3], 4, 0], [[2, 3], 1, 1], [[2, 3], 0, 1], [[2, 3], 0, undefined], [[0, 3], 2, 0], [[0, 3], 2, 1], [[], 3, undefined],
  ];
  it.each(cases)("shape %j repeats %i axis %s", (shape, r, axis) => {
    const h = iota(shape);
    expectMatches(mx.repeat(A(h), r, axis), repeatRef(h, r, axis), "float32");
  });
  it("non-contiguous inputs, other dtypes and the method", () => {
    const h = iota([3, 2]);
    for (const kind of VIEWS) {
      const x = kind === "broadcast" ? makeBroadcastable(h) : h;
      expectMatches(viewOf(x, kind, (b) => A(b), -1).repeat(2, 1), repeatRef(x, 2, 1), "float32", {}, `${kind} axis 1`);
      expectMatches(viewOf(x, kind, (b) => A(b), -1).repeat(3), repeatRef(x, 3), "float32", {}, `${kind} flat`);
    }
    for (const d of ["int32", "uint8", "float64"] as mx.DType[]) expectMatches(mx.repeat(A(h, d), 2, 0), repeatRef(h, 2, 0), d, {}, d);
  });
  it("rejects bad repeats and axes", () => {
    const x = mx.zeros([2, 3]);
    expect(() => mx.repeat(x, [1, 2] as any)).toThrow(/repeat: .*per-element/);
    expect(() => mx.repeat(x, mx.array([1, 2]) as any, 0)).toThrow(TypeError);
    expect(() => mx.repeat(x, -1)).toThrow(RangeError);
    expect(() => mx.repeat(x, 1.5)).toThrow(TypeError);
    expect(() => mx.repeat(x, 2, 2)).toThrow(/repeat: axis 2 .*\[2,3\]/);
    expect(() => mx.repeat(mx.zeros([]), 2, 0)).toThrow(RangeError);
  });
});

describe("pad", () => {
  type W = number | [number, number] | [number, number][];
  /** [shape, widths as given, the per-axis pairs they mean]. */
  const forms: [number[], W, [number, number][]][] = [
    [[3], 2, [[2, 2]]], [[2, 3], 1, [[1, 1], [1, 1]]], [[2, 3], [1, 2], [[1, 2], [1, 2]]], [[2, 3], [[0, 1], [2, 0]], [[0, 1], [2, 0]]],
    [[2, 3], [[1, 2]], [[1, 2], [1, 2]]], [[2, 3], [2] as any, [[2, 2], [2, 2]]], [[3], [[1, 3]], [[1, 3]]],
    [[2, 1, 3], [[1, 0], [2, 2], [0, 1]], [[1, 0], [2, 2], [0, 1]]], [[2, 3], 0, [[0, 0], [0, 0]]], [[1, 1], [3, 1], [[3, 1], [3, 1]]],
    [[], 2, []], [[], [] as any, []], [[0, 3], 1, [[1, 1], [1, 1]]], [[0, 3], [[0, 0], [1, 2]], [[0, 0], [1, 2]]],
  ];
  it.each(forms)("constant: shape %j widths %j", (shape, w, pairs) => {
    const h = iota(shape);
    expectMatches(mx.pad(A(h), w), padRef(h, pairs, "constant"), "float32", {}, "default value");
    expectMatches(mx.pad(A(h), w, { mode: "constant", value: -2.5 }), padRef(h, pairs, "constant", -2.5), "float32", {}, "value -2.5");
  });
  it.each(forms.filter(([s, , p]) => s.every((d, i) => d > 0 || p[i][0] + p[i][1] === 0)))("edge: shape %j widths %j", (shape, w, pairs) => {
    const h = iota(shape);
    expectMatches(mx.pad(A(h), w, { mode: "edge" }), padRef(h, pairs, "edge"), "float32");
  });
  it("non-contiguous inputs, other dtypes and the method", () => {
    const h = iota([3, 2]);
    const pairs: [number, number][] = [[1, 2], [2, 1]];
    for (const kind of VIEWS) {
      const x = kind === "broadcast" ? makeBroadcastable(h) : h;
      for (const mode of ["constant", "edge"] as const) {
        expectMatches(viewOf(x, kind, (b) => A(b), -1).pad(pairs, { mode, value: mode === "edge" ? undefined : 7 }),
          padRef(x, pairs, mode, 7), "float32", {}, `${kind} ${mode}`);
      }
    }
    for (const d of ["int32", "int64", "float64", "float16"] as mx.DType[]) {
      expectMatches(mx.pad(A(h, d), 1, { value: 9 }), padRef(h, [[1, 1], [1, 1]], "constant", 9), d, {}, `${d} constant`);
      expectMatches(mx.pad(A(h, d), 2, { mode: "edge" }), padRef(h, [[2, 2], [2, 2]], "edge"), d, {}, `${d} edge`);
    }
    const b = hostFrom([2, 2], (i) => i % 2);
    expectMatches(mx.pad(A(b, "bool"), 1, { value: 1 }), padRef(b, [[1, 1], [1, 1]], "constant", 1), "bool");
  });
  it("rejects bad widths, modes and values", () => {
    const x = mx.zeros([2, 3]);
    expect(() => mx.pad(x, -1)).toThrow(RangeError);
    expect(() => mx.pad(x, [[1, 0], [0, -2]])).toThrow(/pad: .*non-negative.*\[2,3\]/);
    expect(() => mx.pad(x, [[1, 1], [1, 1], [1, 1]])).toThrow(/pad: got 3 .*ndim 2/);
    expect(() => mx.pad(x, [1, 2, 3] as any)).toThrow(TypeError);
    expect(() => mx.pad(x, 1.5)).toThrow(TypeError);
    expect(() => mx.pad(x, [[1, 1], 2] as any)).toThrow(/pad: widths .*\[2,3\]/);
    expect(() => mx.pad(x, "1" as any)).toThrow(TypeError);
    expect(() => mx.pad(x, 1, { mode: "reflect" as any })).toThrow(/pad: mode/);
    expect(() => mx.pad(x, 1, { value: "0" as any })).toThrow(TypeError);
    expect(() => mx.pad(x, 1, { mode: "edge", value: 1 })).toThrow(TypeError);
    expect(() => mx.pad(mx.zeros([0, 2]), 1, { mode: "edge" })).toThrow(/pad: .*size 0.*\[0,2\]/);
  });
});

describe("roll", () => {
  /** [shape, shift, axis, total shift per axis (null: flattened)]. */
  const cases: [number[], number | number[], number | number[] | undefined, number[] | null][] = [
    [[5], 2, undefined, null], [[5], -7, undefined, null], [[2, 3], 1, undefined, null], [[2, 3], 7, undefined, null],
    [[2, 3], 1, 0, [1, 0]], [[2, 3], -1, 1, [0, -1]], [[2, 3], 4, -1, [0, 4]], [[2, 3], [1, 2], [0, 1], [1, 2]],
    [[2, 3], 1, [0, 1], [1, 1]], [[2, 3, 4], [-3, 5], [2, 0], [5, 0, -3]], [[2, 3], [1, 1], [1, 1], [0, 2]],
    [[2, 3], 0, 1, [0, 0]], [[2, 3], 6, 1, [0, 6]], [[1, 3], 5, 0, [5, 0]], [[0, 3], 2, 0, [2, 0]], [[0, 3], 2, undefined, null],
    [[], 3, undefined, null],
  ];
  it.each(cases)("shape %j shift %j axis %j", (shape, shift, axis, total) => {
    const h = iota(shape);
    const want = total === null ? rollFlatRef(h, shift as number) : rollRef(h, total);
    expectMatches(mx.roll(A(h), shift, axis), want, "float32");
  });
  it("non-contiguous inputs, other dtypes and the method", () => {
    const h = iota([3, 4]);
    for (const kind of VIEWS) {
      const x = kind === "broadcast" ? makeBroadcastable(h) : h;
      expectMatches(viewOf(x, kind, (b) => A(b), -1).roll([1, -1], [0, 1]), rollRef(x, [1, -1]), "float32", {}, kind);
      expectMatches(viewOf(x, kind, (b) => A(b), -1).roll(5), rollFlatRef(x, 5), "float32", {}, `${kind} flat`);
    }
    for (const d of ["int32", "int64", "float64"] as mx.DType[]) expectMatches(mx.roll(A(h, d), 2, 1), rollRef(h, [0, 2]), d, {}, d);
  });
  it("rejects bad shifts and axes", () => {
    const x = mx.zeros([2, 3]);
    expect(() => mx.roll(x, [1, 2])).toThrow(/roll: shift .*axis is omitted/);
    expect(() => mx.roll(x, [1, 2], 0)).toThrow(/roll: got 2 shifts for 1 axes \(shape \[2,3\]\)/);
    expect(() => mx.roll(x, [1], [0, 1])).toThrow(RangeError);
    expect(() => mx.roll(x, 1.5, 0)).toThrow(TypeError);
    expect(() => mx.roll(x, 1, 2)).toThrow(/roll: axis 2 .*\[2,3\]/);
    expect(() => mx.roll(x, 1, "0" as any)).toThrow(TypeError);
  });
});

// ---- transforms: gradients (float64, finite differences) and vmap against stacking ----

type Op = (x: mx.Array) => mx.Array;
const OPS: [string, number[], Op][] = [
  ["tile", [2, 3], (x) => mx.tile(x, [2, 1, 2])],
  ["tile (size-1 axis)", [1, 3], (x) => mx.tile(x, 3)],
  ["repeat flat", [2, 3], (x) => mx.repeat(x, 2)],
  ["repeat axis 1", [2, 3], (x) => mx.repeat(x, 3, 1)],
  ["repeat axis -2", [2, 3], (x) => x.repeat(2, -2)],
  ["pad constant", [2, 3], (x) => mx.pad(x, [[1, 0], [2, 1]], { value: 1.5 })],
  ["pad edge", [2, 3], (x) => mx.pad(x, [[2, 1], [1, 3]], { mode: "edge" })],
  ["pad edge (size-1 axis)", [1, 3], (x) => x.pad(2, { mode: "edge" })],
  ["roll flat", [2, 3], (x) => mx.roll(x, 4)],
  ["roll axes", [2, 3], (x) => mx.roll(x, [1, -2], [0, 1])],
  ["roll axis -1", [3, 4], (x) => x.roll(3, -1)],
];

describe("gradients and vmap", () => {
  it.each(OPS)("%s: checkGrads in float64", (_name, shape, op) => {
    const r = rng(7);
    const x = toArray(uniform(shape, -2, 2)(r));
    // through a nonlinearity, and weighted by position so a misplaced cotangent shows
    checkGrads((v) => mx.sin(op(v)), [x]);
    checkGrads((v) => mx.sum(mx.mul(op(v), mx.arange(op(v).size).reshape(op(v).shape).astype("float64"))), [x]);
  });
  it.each(OPS)("%s: vmap equals stacking on axes 0, 1 and -1", (_name, shape, op) => {
    const r = rng(11);
    const examples: Val[][] = [0, 1, 2].map(() => [uniform(shape, -2, 2)(r)]);
    for (const ax of [0, 1, -1]) checkVmap(op, examples, [ax]);
  });
});
