/**
 * Shape ops and basic indexing against plain-JS references: reshape, flatten, transpose,
 * swapaxes, moveaxis, expandDims, squeeze, broadcastTo, concatenate, stack, split, flip, astype,
 * and x.index(...) (integers, negative integers, slices with negative steps and clamping, null,
 * "..."), including chains of views read back and computed on, in several dtypes.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as mx from "@tessera/core";
import { sizeOf, unravel } from "../helpers/reference.js";
import {
  VIEWS, broadcastHost, flipHost, hostAt, hostFrom, makeBroadcastable, permuteHost, viewOf, type Host,
} from "../helpers/host.js";
import { buildArray, expectMatches } from "../helpers/inputs.js";
import { roundToFloat16, roundToFloat32 } from "../helpers/special.js";

/** Distinct values 1, 2, 3, ... so any misplaced element shows. */
const iota = (shape: number[]): Host<number> => hostFrom(shape, (i) => i + 1);
const A = (h: Host<number>, d: mx.DType = "float32") => buildArray(h, d);
const reshapeHost = <T>(h: Host<T>, shape: number[]): Host<T> => ({ shape, data: h.data });

// ---- a reference for NumPy basic indexing ----
type Spec = number | mx.Slice | null | "...";
interface SliceSpec { start: number | null; stop: number | null; step: number | null }

/** The indices a Python slice selects from an axis of size n (by iterating, as Python does). */
function sliceIndices(s: SliceSpec, n: number): number[] {
  const step = s.step ?? 1;
  const norm = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
  const out: number[] = [];
  if (step > 0) {
    const start = s.start === null ? 0 : norm(s.start, 0, n);
    const stop = s.stop === null ? n : norm(s.stop, 0, n);
    for (let i = start; i < stop; i += step) out.push(i);
  } else {
    const start = s.start === null ? n - 1 : norm(s.start, -1, n - 1);
    const stop = s.stop === null ? -1 : norm(s.stop, -1, n - 1);
    for (let i = start; i > stop; i += step) out.push(i);
  }
  return out;
}

function indexRef<T>(h: Host<T>, spec: (Spec | SliceSpec)[]): Host<T> {
  const consuming = spec.filter((s) => s !== null && s !== "...").length;
  const full: (Spec | SliceSpec)[] = [];
  let sawEllipsis = false;
  for (const s of spec) {
    if (s === "...") {
      sawEllipsis = true;
      for (let k = 0; k < h.shape.length - consuming; k++) full.push({ start: null, stop: null, step: null });
    } else full.push(s);
  }
  if (!sawEllipsis) for (let k = consuming; k < h.shape.length; k++) full.push({ start: null, stop: null, step: null });
  // per output axis: the source axis it walks and the indices; fixed source indices for integers
  const outAxes: { src: number | null; idx: number[] }[] = [];
  const fixed: (number | null)[] = [];
  let axis = 0;
  for (const s of full) {
    if (s === null) outAxes.push({ src: null, idx: [0] });
    else if (typeof s === "number") fixed[axis++] = s < 0 ? s + h.shape[axis - 1] : s;
    else {
      outAxes.push({ src: axis, idx: sliceIndices(s as SliceSpec, h.shape[axis]) });
      fixed[axis++] = null;
    }
  }
  const shape = outAxes.map((a) => a.idx.length);
  return hostFrom(shape, (i) => {
    const o = unravel(i, shape);
    const src = fixed.map((f) => f ?? 0);
    outAxes.forEach((a, k) => { if (a.src !== null) src[a.src] = a.idx[o[k]]; });
    return hostAt(h, src);
  });
}
const sl = (start: number | null = null, stop: number | null = null, step: number | null = null) => mx.slice(start, stop, step);

describe("reshape, flatten, expandDims, squeeze", () => {
  it("reshape keeps row-major order, infers one -1, and handles empty and 0-d arrays", () => {
    const h = iota([2, 3, 4]);
    for (const s of [[24], [4, 6], [2, -1], [-1, 3, 2], [1, 24, 1], [2, 3, 4]]) {
      const shape = s.includes(-1) ? s.map((d) => (d === -1 ? 24 / -s.reduce((a, b) => a * b, 1) : d)) : s;
      expectMatches(mx.reshape(A(h), s), reshapeHost(h, shape), "float32", {}, `reshape to [${s}]`);
    }
    expectMatches(mx.reshape(A(iota([1])), []), { shape: [], data: [1] }, "float32");
    expect(mx.reshape(mx.zeros([3, 0]), [0, 5]).shape).toEqual([0, 5]);
    expect(mx.reshape(mx.zeros([3, 0]), [-1, 3]).shape).toEqual([0, 3]);
    expect(() => mx.reshape(A(h), [5, -1])).toThrow(RangeError);
    expect(() => mx.reshape(A(h), [-1, -1])).toThrow(RangeError);
  });
  it("reshape of non-contiguous views reads their logical order", () => {
    const h = iota([3, 4]);
    for (const kind of VIEWS) {
      const x = kind === "broadcast" ? makeBroadcastable(h) : h;
      expectMatches(viewOf(x, kind, (b) => A(b), -1).reshape([2, 6]), reshapeHost(x, [2, 6]), "float32", {}, kind);
      expectMatches(viewOf(x, kind, (b) => A(b), -1).reshape([12]), reshapeHost(x, [12]), "float32", {}, kind);
    }
  });
  it("flatten merges startAxis..endAxis", () => {
    const h = iota([2, 3, 4, 5]);
    const cases: [number | undefined, number | undefined, number[]][] = [
      [undefined, undefined, [120]], [1, undefined, [2, 60]], [1, 2, [2, 12, 5]], [-2, -1, [2, 3, 20]], [0, 0, [2, 3, 4, 5]],
    ];
    for (const [a, b, shape] of cases) expectMatches(mx.flatten(A(h), a, b), reshapeHost(h, shape), "float32", {}, `flatten(${a}, ${b})`);
    expectMatches(mx.flatten(A(iota([1])).reshape([])), { shape: [1], data: [1] }, "float32");
    expectMatches(A(iota([3, 2])).T.flatten(), reshapeHost(permuteHost(iota([3, 2]), [1, 0]), [6]), "float32");
  });
  it("expandDims and squeeze insert and remove size-1 axes", () => {
    const h = iota([2, 3]);
    const cases: [number | number[], number[]][] = [[0, [1, 2, 3]], [2, [2, 3, 1]], [-1, [2, 3, 1]], [[0, 3], [1, 2, 3, 1]], [[-1, 1], [2, 1, 3, 1]]];
    for (const [ax, shape] of cases) expectMatches(mx.expandDims(A(h), ax), reshapeHost(h, shape), "float32", {}, `expandDims ${ax}`);
    const g = iota([1, 3, 1, 2]);
    expectMatches(mx.squeeze(A(g)), reshapeHost(g, [3, 2]), "float32");
    expectMatches(mx.squeeze(A(g), 2), reshapeHost(g, [1, 3, 2]), "float32");
    expectMatches(mx.squeeze(A(g), [0, -2]), reshapeHost(g, [3, 2]), "float32");
    expect(() => mx.squeeze(A(g), 1)).toThrow(RangeError);
  });
});

describe("transpose, swapaxes, moveaxis, flip, broadcastTo", () => {
  const h = iota([2, 3, 4]);
  it("transpose reverses axes by default and applies any permutation (negative entries allowed)", () => {
    expectMatches(mx.transpose(A(h)), permuteHost(h, [2, 1, 0]), "float32");
    expectMatches(A(h).T, permuteHost(h, [2, 1, 0]), "float32");
    for (const p of [[0, 1, 2], [1, 0, 2], [2, 0, 1], [0, 2, 1], [1, 2, 0]]) {
      expectMatches(mx.transpose(A(h), p), permuteHost(h, p), "float32", {}, `perm ${p}`);
    }
    expectMatches(mx.transpose(A(h), [-1, 0, 1]), permuteHost(h, [2, 0, 1]), "float32");
    expectMatches(mx.transpose(A(iota([1])).reshape([])), { shape: [], data: [1] }, "float32");
    expect(mx.transpose(mx.zeros([2, 0, 3])).shape).toEqual([3, 0, 2]);
    expect(() => mx.transpose(A(h), [0, 0, 1])).toThrow(RangeError);
  });
  it("swapaxes and moveaxis", () => {
    expectMatches(mx.swapaxes(A(h), 0, 2), permuteHost(h, [2, 1, 0]), "float32");
    expectMatches(mx.swapaxes(A(h), -1, 1), permuteHost(h, [0, 2, 1]), "float32");
    expectMatches(mx.moveaxis(A(h), 0, 2), permuteHost(h, [1, 2, 0]), "float32");
    expectMatches(mx.moveaxis(A(h), -1, 0), permuteHost(h, [2, 0, 1]), "float32");
    expectMatches(mx.moveaxis(A(h), 1, 1), h, "float32");
  });
  it("flip reverses every axis by default, or the given ones", () => {
    expectMatches(mx.flip(A(h)), flipHost(h), "float32");
    for (const ax of [0, 1, -1, [0, 2]]) {
      const axes = (typeof ax === "number" ? [ax] : ax).map((a) => (a + 3) % 3);
      expectMatches(mx.flip(A(h), ax), flipHost(h, axes), "float32", {}, `flip ${ax}`);
    }
    expect(mx.flip(mx.zeros([0, 2])).shape).toEqual([0, 2]);
  });
  it("broadcastTo adds leading axes and stretches size-1 axes", () => {
    const g = iota([3, 1]);
    for (const s of [[3, 1], [3, 4], [2, 3, 4], [0, 3, 1], [3, 0]]) expectMatches(mx.broadcastTo(A(g), s), broadcastHost(g, s), "float32", {}, `to [${s}]`);
    expectMatches(mx.broadcastTo(A(iota([1])).reshape([]), [2, 2]), broadcastHost({ shape: [], data: [1] }, [2, 2]), "float32");
    expect(() => mx.broadcastTo(A(g), [3, 4, 2])).toThrow(TypeError);
    expect(() => mx.broadcastTo(A(g), [4])).toThrow(/broadcastTo/);
  });
});

describe("concatenate, stack, split", () => {
  const concatRef = (xs: Host<number>[], axis: number): Host<number> => {
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((n, x) => n + x.shape[axis], 0);
    return hostFrom(shape, (i) => {
      const idx = unravel(i, shape);
      let k = 0, j = idx[axis];
      while (j >= xs[k].shape[axis]) j -= xs[k++].shape[axis];
      return hostAt(xs[k], idx.map((v, d) => (d === axis ? j : v)));
    });
  };
  it("concatenate joins along any axis (including empty pieces) and promotes dtypes", () => {
    const a = iota([2, 3]), b = hostFrom([2, 1], (i) => 100 + i), c = hostFrom([2, 0], () => 0);
    expectMatches(mx.concatenate([A(a), A(b), A(c)], 1), concatRef([a, b, c], 1), "float32");
    expectMatches(mx.concatenate([A(a), A(b)], -1), concatRef([a, b], 1), "float32");
    const r = hostFrom([1, 3], (i) => -i);
    expectMatches(mx.concatenate([A(a), A(r)]), concatRef([a, r], 0), "float32");
    expectMatches(mx.concatenate([A(a, "int32"), A(r, "float16")]), concatRef([a, r], 0), "float16");
    expectMatches(mx.concatenate([A(a).T, A(b).T]), concatRef([permuteHost(a, [1, 0]), permuteHost(b, [1, 0])], 0), "float32");
    expectMatches(mx.concatenate([A(a)]), a, "float32");
    expect(() => mx.concatenate([A(a), A(b)], 0)).toThrow(TypeError);
  });
  it("stack adds a new axis at any position", () => {
    const xs = [iota([2, 3]), hostFrom([2, 3], (i) => 50 + i), hostFrom([2, 3], (i) => -i)];
    for (const axis of [0, 1, 2, -1, -3]) {
      const ax = axis < 0 ? axis + 3 : axis;
      const ref = concatRef(xs.map((x) => reshapeHost(x, [...x.shape.slice(0, ax), 1, ...x.shape.slice(ax)])), ax);
      expectMatches(mx.stack(xs.map((x) => A(x)), axis), ref, "float32", {}, `axis ${axis}`);
    }
    expect(() => mx.stack([A(iota([2])), A(iota([3]))])).toThrow(TypeError);
  });
  it("split into equal sections or at indices (negative, out of range, decreasing)", () => {
    const h = iota([6, 4]);
    const rows = (a: number, b: number) => indexRef(h, [{ start: a, stop: b, step: null }]);
    const parts = mx.split(A(h), 3);
    expect(parts.length).toBe(3);
    parts.forEach((p, i) => expectMatches(p, rows(2 * i, 2 * i + 2), "float32"));
    const cases: [number[], [number, number][]][] = [
      [[1, 4], [[0, 1], [1, 4], [4, 6]]], [[-2], [[0, 4], [4, 6]]], [[2, 10], [[0, 2], [2, 6], [6, 6]]], [[4, 2], [[0, 4], [4, 4], [2, 6]]],
    ];
    for (const [idx, bounds] of cases) {
      const ps = mx.split(A(h), idx);
      expect(ps.length).toBe(bounds.length);
      ps.forEach((p, i) => expectMatches(p, rows(bounds[i][0], Math.max(bounds[i][0], bounds[i][1])), "float32", {}, `split ${idx} part ${i}`));
    }
    const cols = mx.split(A(h), [1], -1);
    expectMatches(cols[1], indexRef(h, ["...", { start: 1, stop: null, step: null }]), "float32");
    expect(() => mx.split(A(h), 4)).toThrow(RangeError);
  });
});

describe("astype", () => {
  const cases: [mx.DType, mx.DType, number[], (number | bigint | boolean)[]][] = [
    ["float32", "int32", [1.9, -1.9, 0.5, -0.5, 7], [1, -1, 0, 0, 7]], // truncation toward zero
    ["float64", "int64", [3.99, -3.99, 2 ** 40 + 0.5], [3n, -3n, 2n ** 40n]],
    ["float32", "uint8", [0, 1.5, 255], [0, 1, 255]],
    ["float32", "bool", [0, -0, 0.1, -2, NaN], [false, false, true, true, true]],
    ["bool", "float32", [1, 0], [1, 0]],
    ["bool", "int32", [1, 0], [1, 0]],
    ["int32", "int8", [127, 128, -129, 300], [127, -128, 127, 44]], // two's-complement wrap
    ["uint8", "int8", [200, 5], [-56, 5]],
    ["int32", "float16", [2049, 2051, 70000, -3], [2048, 2052, Infinity, -3]], // ties to even, overflow
    ["float64", "float32", [0.1, 1e-50, 1e50], [roundToFloat32(0.1), 0, Infinity]],
    ["float32", "float16", [0.1, 1e-8, 65519], [roundToFloat16(roundToFloat32(0.1)), 0, 65504]],
    ["int64", "float64", [2 ** 40 + 1, -5], [2 ** 40 + 1, -5]],
    ["float16", "float32", [0.5, -1024], [0.5, -1024]],
    ["int8", "uint32", [5, 0], [5, 0]],
  ];
  it.each(cases)("%s -> %s", (from, to, vals, expected) => {
    const x = buildArray({ shape: [vals.length], data: from === "int64" ? vals.map(BigInt) : vals }, from);
    const y = x.astype(to);
    expectMatches(y, { shape: [vals.length], data: expected }, to, {}, `${from} -> ${to}`);
    const t = mx.astype(x.reshape([vals.length, 1]).T, to); // also from a view
    expectMatches(t, { shape: [1, vals.length], data: expected }, to, {}, "transposed view");
  });
});

describe("index", () => {
  const h = iota([4, 5, 6]);
  it("integers, negative integers, slices, null and ellipsis", () => {
    const specs: Spec[][] = [
      [0], [-1], [1, 2], [-2, -1, -6], [sl(1, 3)], [sl(null, null, 2)], [sl(null, null, -1)], [sl(3, 0, -2)],
      [sl(-3, null)], [sl(-100, 100)], [sl(10, null)], [sl(null, -10)], [sl(100, -100, -1)], [sl(2, 2)], [sl(3, 1)],
      [0, sl(1, null, 2), null], [null, 1], ["...", 0], ["...", sl(null, null, -2)], [0, "...", null, 2], [null, "...", null],
      ["..."], [], [sl(), sl(1, 4), sl(-1, -7, -3)], [1, null, sl(0, 5, 4), null],
    ];
    for (const spec of specs) {
      const ref = indexRef(h, spec);
      expectMatches(A(h).index(...spec), ref, "float32", {}, `index ${JSON.stringify(spec)}`);
    }
  });
  it("matches the reference on random specs (fast-check)", () => {
    const sliceArb = fc.record({
      start: fc.option(fc.integer({ min: -7, max: 7 })),
      stop: fc.option(fc.integer({ min: -7, max: 7 })),
      step: fc.option(fc.integer({ min: -3, max: 3 }).filter((s) => s !== 0)),
    });
    const arb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 }).chain((shape) =>
      fc.tuple(fc.constant(shape), fc.array(fc.oneof(sliceArb, fc.constant(null)), { maxLength: shape.length }),
        fc.array(fc.integer({ min: -1, max: 0 }), { maxLength: shape.length })));
    fc.assert(fc.property(arb, ([shape, slices, ints]) => {
      const x = iota(shape);
      // integer entries only where the axis is non-empty; slices everywhere else
      const spec: Spec[] = [];
      let axis = 0;
      slices.forEach((s, k) => {
        if (s === null) spec.push(null);
        else if (axis < shape.length) {
          const n = shape[axis];
          spec.push(k < ints.length && n > 0 ? (ints[k] === 0 ? 0 : -1) : sl(s.start, s.stop, s.step));
          axis++;
        }
      });
      expectMatches(A(x).index(...spec), indexRef(x, spec), "float32", {}, `shape [${shape}] spec ${JSON.stringify(spec)}`);
    }), { seed: 42, numRuns: 300 });
  });
  it("rejects out-of-range integers, too many indices and two ellipses", () => {
    expect(() => A(h).index(4)).toThrow(RangeError);
    expect(() => A(h).index(0, -6)).toThrow(RangeError);
    expect(() => A(h).index(0, 0, 0, 0)).toThrow(RangeError);
    expect(() => A(h).index("...", 0, "...")).toThrow(RangeError);
    expect(() => mx.slice(0, 3, 0)).toThrow(RangeError);
  });
});

describe("chains of views", () => {
  it("slice of transpose of broadcast, read back, computed on and reshaped", () => {
    for (const d of ["float32", "float64", "int64", "bool", "float16", "uint8"] as mx.DType[]) {
      const base = hostFrom([1, 4, 3], (i) => (d === "bool" ? i % 2 : d === "int64" ? BigInt(i * 7 - 20) : i * 3 + 1));
      let ref: Host<any> = broadcastHost(base, [5, 4, 3]);
      ref = permuteHost(ref, [2, 1, 0]); // [3, 4, 5]
      const spec: Spec[] = [sl(null, null, -2), 1, sl(1, 5)];
      ref = indexRef(ref, spec); // [2, 4]
      const x = buildArray(base, d).broadcastTo([5, 4, 3]).transpose().index(...spec);
      expectMatches(x, ref, d, {}, `${d} chain`);
      expectMatches(x.T.reshape([8]), reshapeHost(permuteHost(ref, [1, 0]), [8]), d, {}, `${d} chain, transposed and flattened`);
      expectMatches(mx.flip(x, 0).index(null, "...", sl(null, null, 3)), indexRef(flipHost(ref, [0]), [null, "...", { start: null, stop: null, step: 3 }]), d, {}, `${d} chain 2`);
    }
    // computing on a chained view
    const base = hostFrom([3, 4], (i) => i - 5.5);
    const v = A(base, "float64").T.index(sl(null, null, -1), sl(1, null)).broadcastTo([2, 4, 2]);
    const vr = broadcastHost(indexRef(permuteHost(base, [1, 0]), [{ start: null, stop: null, step: -1 }, { start: 1, stop: null, step: null }]), [2, 4, 2]);
    expectMatches(mx.mul(v, v.index(sl(null, null, -1))).add(1), hostFrom(vr.shape, (i) => vr.data[i] * vr.data[(i + 8) % 16] + 1), "float64");
    expect(sizeOf(v.shape)).toBe(16);
  });
});
