/**
 * Reductions and the softmax family against float64 loop references: every axis form (none,
 * number, negative, lists, empty list), keepdims, size-1 and empty axes, non-contiguous inputs,
 * float and integer dtypes, NaN propagation and first-occurrence argmax/argmin.
 * Float tolerances are error bounds: accumulation unit roundoff times a per-element magnitude
 * (n * sum|x| for a sum), plus two units of the output dtype.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as mx from "@tessera/core";
import { rng, sizeOf, strides, unravel } from "../helpers/reference.js";
import { VIEWS, hostFrom, makeBroadcastable, readFlat, viewOf, type Host } from "../helpers/host.js";
import { buildArray, expectMatches } from "../helpers/inputs.js";
import { roundTo } from "../helpers/special.js";

type Axis = number | number[] | undefined;
/** A reduced group's value and the magnitude its rounding error scales with. */
type Est = { value: number; scale: number };

/** The groups of x reduced over `axes` (row-major inside each group), one per kept index. */
function groups(h: Host<number>, axes: number[]): { outShape: number[]; members: number[][] } {
  const keptAxes = h.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const outShape = keptAxes.map((a) => h.shape[a]);
  const redShape = axes.map((a) => h.shape[a]);
  const st = strides(h.shape);
  const members = Array.from({ length: sizeOf(outShape) }, (_, o) => {
    const oi = unravel(o, outShape);
    return Array.from({ length: sizeOf(redShape) }, (_, r) => {
      const ri = unravel(r, redShape);
      let off = 0;
      keptAxes.forEach((a, k) => (off += oi[k] * st[a]));
      axes.forEach((a, k) => (off += ri[k] * st[a]));
      return off;
    });
  });
  return { outShape, members };
}

const normAxes = (axis: Axis, nd: number) =>
  axis === undefined ? [...Array(nd).keys()] : (typeof axis === "number" ? [axis] : axis).map((a) => (a < 0 ? a + nd : a)).sort((a, b) => a - b);

function reduceRef(h: Host<number>, axis: Axis, keepdims: boolean, f: (v: number[]) => Est): Host<Est> {
  const axes = normAxes(axis, h.shape.length);
  const { outShape, members } = groups(h, axes);
  const shape = keepdims ? h.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : outShape;
  return { shape, data: members.map((m) => f(m.map((i) => h.data[i]))) };
}

/** Same-shape ops over groups (softmax): f maps a group to one estimate per member. */
function groupwiseRef(h: Host<number>, axis: Axis, f: (v: number[]) => Est[]): Host<Est> {
  const { members } = groups(h, normAxes(axis, h.shape.length));
  const data: Est[] = new Array(h.data.length);
  for (const m of members) f(m.map((i) => h.data[i])).forEach((e, k) => (data[m[k]] = e));
  return { shape: h.shape, data };
}

const sumAbs = (v: number[]) => v.reduce((s, x) => s + Math.abs(x), 0);
const maxAbs = (v: number[]) => v.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
function varEst(v: number[], ddof: number): Est {
  const n = v.length, m = v.reduce((s, x) => s + x, 0) / n;
  const ss = v.reduce((s, x) => s + (x - m) ** 2, 0);
  const err = v.reduce((s, x) => s + (x - m) ** 2 + 2 * Math.abs(x - m) * (Math.abs(x) + Math.abs(m)), 0);
  return { value: ss / (n - ddof), scale: ((n + 4) * err) / Math.abs(n - ddof) };
}
function lseEst(v: number[]): Est {
  if (v.length === 0) return { value: -Infinity, scale: 0 };
  const m = Math.max(...v);
  const value = m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  return { value, scale: Math.abs(m) + v.length + 2 * maxAbs(v) + 2 };
}

interface Reduction {
  name: string;
  fn: (x: mx.Array, axis?: Axis, o?: { keepdims?: boolean }) => mx.Array;
  ref: (v: number[]) => Est;
  /** Defined on empty groups (max/min are not; var with ddof 1 has no agreed value there). */
  empty: boolean;
}
const REDUCTIONS: Reduction[] = [
  { name: "sum", fn: mx.sum, ref: (v) => ({ value: v.reduce((s, x) => s + x, 0), scale: v.length * sumAbs(v) }), empty: true },
  { name: "prod", fn: mx.prod, ref: (v) => { const p = v.reduce((s, x) => s * x, 1); return { value: p, scale: (v.length + 1) * Math.abs(p) }; }, empty: true },
  { name: "mean", fn: mx.mean, ref: (v) => ({ value: v.reduce((s, x) => s + x, 0) / v.length, scale: 2 * sumAbs(v) }), empty: true },
  { name: "max", fn: mx.max, ref: (v) => ({ value: Math.max(...v), scale: 0 }), empty: false },
  { name: "min", fn: mx.min, ref: (v) => ({ value: Math.min(...v), scale: 0 }), empty: false },
  { name: "var", fn: mx.var, ref: (v) => varEst(v, 0), empty: true },
  { name: "var(ddof=1)", fn: (x, a, o) => mx.var(x, a, { ...o, ddof: 1 }), ref: (v) => varEst(v, 1), empty: false },
  { name: "std", fn: mx.std, ref: (v) => sqrtEst(varEst(v, 0)), empty: true },
  { name: "std(ddof=1)", fn: (x, a, o) => mx.std(x, a, { ...o, ddof: 1 }), ref: (v) => sqrtEst(varEst(v, 1)), empty: false },
  { name: "logsumexp", fn: mx.logsumexp, ref: lseEst, empty: true },
];
function sqrtEst(e: Est): Est {
  const value = Math.sqrt(e.value);
  return { value, scale: value > 0 ? e.scale / (2 * value) : Math.sqrt(e.scale) };
}

/**
 * Unit roundoff of the accumulation and of the output. Primitive reductions of halves accumulate
 * in float32; composites (var, std, logsumexp, softmax, logSoftmax) round every step to the
 * dtype, as MLX's do.
 */
const UNIT: Record<string, number> = { float64: 2 ** -53, float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };
const COMPOSITE = /^(var|std|logsumexp|softmax|logSoftmax)/;
const accUnit = (d: mx.DType, what: string) => (d === "float64" ? UNIT.float64 : COMPOSITE.test(what) ? UNIT[d] : UNIT.float32);

function expectEst(actual: mx.Array, exp: Host<Est>, d: mx.DType, what: string): void {
  expect(actual.shape, what).toEqual(exp.shape);
  expect(actual.dtype, what).toBe(d);
  const got = readFlat(actual).map(Number);
  got.forEach((a, i) => {
    const { value, scale } = exp.data[i];
    const e = roundTo(d, value);
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e
      : Math.abs(a - e) <= 2 * accUnit(d, what) * scale + 2 * UNIT[d] * Math.abs(e);
    if (!ok) expect.fail(`${what}: element ${i} of [${exp.shape}] expected ${e} (scale ${scale}), got ${a}`);
  });
}

const AXES: Axis[] = [undefined, 0, 1, -1, 2, [0, 2], [-1, -2], [], [0, 1, 2], [2, 0]];
const FLOATS: mx.DType[] = ["float64", "float32", "float16", "bfloat16"];

function randomFloat(shape: number[], d: mx.DType, next: () => number, lo = -2, hi = 2): Host<number> {
  return hostFrom(shape, () => roundTo(d, lo + (hi - lo) * next()));
}

describe.each(REDUCTIONS.map((r) => [r.name, r] as const))("%s", (name, r) => {
  // prod of 24 values in [-2, 2] is tiny or huge; keep magnitudes near 1 for it
  const [lo, hi] = name === "prod" ? [0.5, 1.5] : [-2, 2];

  it.each(FLOATS)("reduces %s over every axis form, with and without keepdims", (d) => {
    const next = rng(11);
    const x = randomFloat([2, 3, 4], d, next, lo, hi);
    for (const axis of AXES) {
      for (const keepdims of [false, true]) {
        const y = r.fn(buildArray(x, d), axis, { keepdims });
        expectEst(y, reduceRef(x, axis, keepdims, r.ref), d, `${name} axis ${JSON.stringify(axis)} keepdims ${keepdims}`);
      }
    }
  });

  it("reduces size-1 axes, 0-d arrays and (where defined) empty axes", () => {
    const next = rng(12);
    const cases: [number[], Axis][] = [[[1, 5, 1], 0], [[1, 5, 1], 2], [[1, 5, 1], [0, 2]], [[1], undefined], [[], undefined], [[], []]];
    const empty: [number[], Axis][] = [[[3, 0], 1], [[3, 0], 0], [[0], undefined], [[2, 0, 3], [1, 2]]];
    for (const [shape, axis] of [...cases, ...(r.empty ? empty : [])]) {
      const x = randomFloat(shape, "float32", next, lo, hi);
      for (const keepdims of [false, true]) {
        const what = `${name} shape [${shape}] axis ${JSON.stringify(axis)} keepdims ${keepdims}`;
        expectEst(r.fn(buildArray(x, "float32"), axis, { keepdims }), reduceRef(x, axis, keepdims, r.ref), "float32", what);
      }
    }
    if (name === "max" || name === "min") expect(() => r.fn(mx.zeros([3, 0]), 1)).toThrow(RangeError);
  });

  it("reads non-contiguous inputs", () => {
    const next = rng(13);
    for (const kind of VIEWS) {
      let x = randomFloat([4, 3, 2], "float64", next, lo, hi);
      if (kind === "broadcast") x = makeBroadcastable(x);
      const view = viewOf(x, kind, (b) => buildArray(b, "float64"), 1e300);
      for (const axis of [undefined, 0, [1, 2]] as Axis[]) {
        expectEst(r.fn(view, axis), reduceRef(x, axis, false, r.ref), "float64", `${name} ${kind} view, axis ${JSON.stringify(axis)}`);
      }
    }
  });
});

describe("softmax and logSoftmax", () => {
  const softmaxRef = (v: number[]): Est[] => {
    const m = Math.max(...v), e = v.map((x) => Math.exp(x - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => ({ value: x / s, scale: (x / s) * (v.length + 2 * maxAbs(v) + 4) }));
  };
  const logSoftmaxRef = (v: number[]): Est[] => {
    const l = lseEst(v);
    return v.map((x) => ({ value: x - l.value, scale: Math.abs(x) + l.scale }));
  };
  const CASES = [["softmax", mx.softmax, softmaxRef], ["logSoftmax", mx.logSoftmax, logSoftmaxRef]] as const;

  it.each(CASES)("%s over the last axis by default, a given axis, negative axes and lists", (n, fn, ref) => {
    for (const d of FLOATS) {
      const next = rng(21);
      const x = randomFloat([2, 3, 4], d, next, -4, 4);
      const xa = buildArray(x, d);
      expectEst(fn(xa), groupwiseRef(x, -1, ref), d, `${n} ${d} default axis`);
      for (const axis of [0, 1, -2, [0, 2], [0, 1, 2]]) {
        expectEst(fn(xa, axis), groupwiseRef(x, axis, ref), d, `${n} ${d} axis ${JSON.stringify(axis)}`);
      }
    }
  });
  it.each(CASES)("%s handles size-1 axes, empty arrays, large logits and views", (_n, fn, ref) => {
    const next = rng(22);
    const one = randomFloat([3, 1], "float32", next);
    expectEst(fn(buildArray(one, "float32")), groupwiseRef(one, -1, ref), "float32", "size-1 axis");
    expect(fn(mx.zeros([2, 0])).shape).toEqual([2, 0]);
    // no overflow for large logits: the max is subtracted first
    const big: Host<number> = { shape: [1, 3], data: [1000, 999, -1000] };
    expectEst(fn(buildArray(big, "float32")), groupwiseRef(big, -1, ref), "float32", "large logits");
    const x = randomFloat([3, 4], "float64", next, -4, 4);
    for (const kind of VIEWS) {
      const h = kind === "broadcast" ? makeBroadcastable(x) : x;
      expectEst(fn(viewOf(h, kind, (b) => buildArray(b, "float64"), 1e300)), groupwiseRef(h, -1, ref), "float64", `${kind} view`);
    }
  });
  it("logsumexp of all -inf is -inf; with +inf it is +inf", () => {
    expect(mx.logsumexp(mx.array([-Infinity, -Infinity])).item()).toBe(-Infinity);
    expect(mx.logsumexp(mx.array([1, Infinity])).item()).toBe(Infinity);
  });
});

describe("integer and bool reductions", () => {
  const ints: Host<number> = { shape: [2, 3], data: [3, -7, 2, 0, 5, -1] };
  it("sum, prod, max and min of int32 stay int32 and are exact", () => {
    const x = buildArray(ints, "int32");
    expect([mx.sum(x).dtype, mx.sum(x).item()]).toEqual(["int32", 2]);
    expect(mx.sum(x, 0).tolist()).toEqual([3, -2, 1]);
    expect(mx.prod(x, 1).tolist()).toEqual([-42, 0]);
    expect(mx.max(x, 1).tolist()).toEqual([3, 5]);
    expect(mx.min(x, 0, { keepdims: true }).tolist()).toEqual([[0, -7, -1]]);
    expect(mx.max(mx.array([200, 7, 255], "uint8")).item()).toBe(255);
    expect(mx.sum(mx.array(new BigInt64Array([2n ** 40n, 3n]))).item()).toBe(2n ** 40n + 3n);
  });
  it("sums bools as int32 and averages integers in float32", () => {
    const b = mx.array([[true, false, true], [true, true, true]]);
    expect([mx.sum(b).dtype, mx.sum(b).item(), mx.sum(b, 1).tolist()]).toEqual(["int32", 5, [2, 3]]);
    const m = mx.mean(buildArray(ints, "int32"), 1);
    expect(m.dtype).toBe("float32");
    expect(m.tolist()).toEqual([Math.fround(-2 / 3), Math.fround(4 / 3)]);
  });
  it("all and any read any dtype as truthy (NaN is true), with empty reductions true / false", () => {
    const x = mx.array([[1, 0, NaN], [2, 3, -1]]);
    expect(mx.all(x, 1).tolist()).toEqual([false, true]);
    expect(mx.any(x, 0).tolist()).toEqual([true, true, true]);
    expect(mx.any(mx.array([[0, 0], [0, 1]], "int32"), -1, { keepdims: true }).tolist()).toEqual([[false], [true]]);
    expect([mx.all(mx.zeros([0])).item(), mx.any(mx.zeros([0])).item()]).toEqual([true, false]);
    expect(mx.all(mx.ones([2, 0, 3]), 1).tolist()).toEqual([[true, true, true], [true, true, true]]);
    expect(mx.all(x).dtype).toBe("bool");
  });
});

describe("NaN propagation and arg reductions", () => {
  it("max and min propagate NaN", () => {
    const x = mx.array([[1, NaN, 3], [4, 5, 6], [NaN, -1, 2]], "float64");
    expect(mx.max(x, 1).tolist()).toEqual([NaN, 6, NaN]);
    expect(mx.min(x, 0).tolist()).toEqual([NaN, NaN, 2]);
    expect(mx.max(mx.array([NaN, 1, 2], "float32")).item()).toBeNaN();
    expect(mx.min(mx.array([1, 2, NaN], "float16")).item()).toBeNaN();
  });

  const argRef = (h: Host<number>, axis: number | undefined, pick: (a: number, b: number) => boolean): number[] => {
    const flat = axis === undefined;
    const g = groups(h, flat ? [...h.shape.keys()] : [axis < 0 ? axis + h.shape.length : axis]);
    return g.members.map((m) => m.reduce((best, i, k) => (pick(h.data[i], h.data[m[best]]) ? k : best), 0));
  };
  it.each([["argmax", mx.argmax, (a: number, b: number) => a > b], ["argmin", mx.argmin, (a: number, b: number) => a < b]] as const)(
    "%s returns the first of tied extremes, per axis or over the flattened array, as uint32",
    (_n, fn, pick) => {
      const next = rng(31);
      for (const d of ["float32", "float64", "int32", "uint8", "float16"] as mx.DType[]) {
        const x = hostFrom([3, 4, 5], () => Math.floor(next() * 4)); // many ties
        for (const axis of [undefined, 0, 1, 2, -1]) {
          for (const keepdims of [false, true]) {
            const y = fn(buildArray(x, d), axis, { keepdims });
            const ref = argRef(x, axis, pick);
            const shape = axis === undefined ? (keepdims ? [1, 1, 1] : [])
              : x.shape.map((s, i) => (i === (axis + 3) % 3 ? (keepdims ? 1 : -1) : s)).filter((s) => s >= 0);
            expectMatches(y, { shape, data: ref.map(BigInt) }, "uint32", {}, `${d} axis ${axis} keepdims ${keepdims}`);
          }
        }
      }
      const v = hostFrom([4, 3], () => Math.floor(next() * 3));
      for (const kind of ["transposed", "reversed", "negStrided"] as const) {
        const view = viewOf(v, kind, (b) => buildArray(b, "float32"), 9);
        expectMatches(fn(view, 1), { shape: [4], data: argRef(v, 1, pick).map(BigInt) }, "uint32", {}, `${kind} view`);
      }
      expect(() => fn(mx.zeros([0]))).toThrow(RangeError);
      expect(() => fn(mx.zeros([2, 0]), 1)).toThrow(RangeError);
    },
  );
});

describe("method forms and errors", () => {
  it("x.sum(...) etc. equal the functions", () => {
    const next = rng(41);
    const h = randomFloat([3, 4], "float64", next);
    const x = buildArray(h, "float64");
    expectEst(x.sum(1, { keepdims: true }), reduceRef(h, 1, true, REDUCTIONS[0].ref), "float64", "x.sum");
    expectEst(x.var(0, { ddof: 1 }), reduceRef(h, 0, false, (v) => varEst(v, 1)), "float64", "x.var");
    expectEst(x.logsumexp(), reduceRef(h, undefined, false, lseEst), "float64", "x.logsumexp");
  });
  it("rejects out-of-range and repeated axes at the call", () => {
    expect(() => mx.sum(mx.zeros([2, 3]), 2)).toThrow(RangeError);
    expect(() => mx.sum(mx.zeros([2, 3]), [0, -2])).toThrow(/repeated/);
    expect(() => mx.max(mx.zeros([0]))).toThrow(/max/);
  });
});

describe("half types average in float32", () => {
  it("mean, var and std of float16 do not overflow through a float16 intermediate", () => {
    expect(mx.mean(mx.full([600], 1000, "float16")).item()).toBe(1000);
    const s = mx.std(mx.array([-947.5, -124.5], "float16"));
    expect(s.dtype).toBe("float16");
    expect(s.item()).toBe(411.5);
    expect(mx.var(mx.array([-947.5, -124.5], "bfloat16")).dtype).toBe("bfloat16");
    expect(mx.var(mx.array([-947.5, -124.5], "float16")).item()).toBe(Infinity); // 169332.25 is past float16's range
  });
});

/**
 * The vectorized float32/float64 path (native/src/cpu/reduce_simd.h) on large arrays of every
 * layout it takes, against float64 loops, within the error bounds that header states:
 * float64 sums (log2(n) + 32) u sum|x|; float32 sums 3.01 u_f sum|x| + u_f |S| (+ a float64
 * term far below). max/min/argmax/argmin are exact; NaN propagates.
 */
describe("large reductions on the vector path", () => {
  const U32 = 2 ** -24, U64 = 2 ** -53;
  /** Deterministic values in [lo, hi), exact in float32 (so both dtypes see the same data). */
  function values(seed: number, count: number, lo = -1, hi = 1): Float64Array {
    let s = seed >>> 0;
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = Math.fround(lo + ((hi - lo) * s) / 2 ** 32);
    }
    return out;
  }
  const make = (v: Float64Array, shape: number[], d: "float32" | "float64") =>
    mx.reshape(mx.array(d === "float32" ? new Float32Array(v) : v), shape);
  /** Groups of a row-major [..shape] array over `axes`, as index lists (like groups() above, faster). */
  function refReduce(v: Float64Array, shape: number[], axes: number[]) {
    const st = strides(shape);
    const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
    const outShape = kept.map((a) => shape[a]), redShape = axes.map((a) => shape[a]);
    const nOut = sizeOf(outShape), nRed = sizeOf(redShape);
    const res = [];
    for (let o = 0; o < nOut; o++) {
      const oi = unravel(o, outShape);
      let base = 0;
      kept.forEach((a, k) => (base += oi[k] * st[a]));
      let sum = 0, abs = 0, max = -Infinity, min = Infinity, amax = 0, amin = 0;
      for (let r = 0; r < nRed; r++) {
        let off = base, rem = r;
        for (let k = axes.length - 1; k >= 0; k--) {
          off += (rem % redShape[k]) * st[axes[k]];
          rem = Math.floor(rem / redShape[k]);
        }
        const x = v[off];
        sum += x; // float64 serial: its own error is far below the bounds checked
        abs += Math.abs(x);
        if (x > max) [max, amax] = [x, r];
        if (x < min) [min, amin] = [x, r];
      }
      res.push({ sum, abs, max, min, amax, amin, n: nRed });
    }
    return res;
  }
  const sumBound = (d: string, r: { sum: number; abs: number; n: number }) =>
    d === "float32" ? 3.01 * U32 * r.abs + U32 * Math.abs(r.sum) + (Math.log2(r.n) + 260) * U64 * r.abs
      : (Math.log2(r.n) + 33) * U64 * r.abs;

  type Layout = { name: string; shape: number[]; axes: number[]; view?: (x: mx.Array) => mx.Array; refShape?: number[]; refPerm?: number[] };
  const LAYOUTS: Layout[] = [
    { name: "full", shape: [(1 << 20) + 37], axes: [0] },
    { name: "last axis", shape: [1029, 1031], axes: [1] },
    { name: "first axis", shape: [1031, 1029], axes: [0] },
    { name: "middle axis", shape: [17, 259, 241], axes: [1] },
    { name: "leading axes", shape: [33, 31, 1030], axes: [0, 1] },
    { name: "two separated axes (general path)", shape: [129, 65, 131], axes: [0, 2] },
  ];
  for (const d of ["float32", "float64"] as const) {
    for (const L of LAYOUTS) {
      it(`${d} ${L.name} ${JSON.stringify(L.shape)} axes ${JSON.stringify(L.axes)}: sum, max, min within bounds`, () => {
        const v = values(7, sizeOf(L.shape));
        const x = make(v, L.shape, d);
        const ref = refReduce(v, L.shape, L.axes);
        const got = { sum: mx.sum(x, L.axes), max: mx.max(x, L.axes), min: mx.min(x, L.axes) };
        const s = got.sum.toTypedArray(), mxv = got.max.toTypedArray(), mnv = got.min.toTypedArray();
        expect(s.length).toBe(ref.length);
        ref.forEach((r, i) => {
          if (!(Math.abs(Number(s[i]) - r.sum) <= sumBound(d, r))) expect.fail(`${d} ${L.name} sum[${i}] = ${s[i]}, expected ${r.sum} within ${sumBound(d, r)}`);
          if (mxv[i] !== r.max || mnv[i] !== r.min) expect.fail(`${d} ${L.name} max/min[${i}] = ${mxv[i]}/${mnv[i]}, expected ${r.max}/${r.min}`);
        });
      }, 30_000);
    }
    it(`${d} non-contiguous views: transposed and strided, over either axis`, () => {
      const v = values(8, 1030 * 1031);
      const base = make(v, [1030, 1031], d);
      // t[i, j] = base[j, i]; strided s[i, j] = base[i, 2j]
      const t = mx.transpose(base), st = base.index(mx.slice(), mx.slice(null, null, 2));
      const tv = new Float64Array(1031 * 1030), sv = new Float64Array(1030 * 516);
      for (let i = 0; i < 1030; i++) for (let j = 0; j < 1031; j++) tv[j * 1030 + i] = v[i * 1031 + j];
      for (let i = 0; i < 1030; i++) for (let j = 0; j < 516; j++) sv[i * 516 + j] = v[i * 1031 + 2 * j];
      for (const [view, hv, shape] of [[t, tv, [1031, 1030]], [st, sv, [1030, 516]]] as const) {
        for (const axes of [[0], [1], [0, 1]]) {
          const ref = refReduce(hv, [...shape], axes);
          const s = mx.sum(view, axes).toTypedArray(), m = mx.max(view, axes).toTypedArray();
          const am = axes.length === 1 ? mx.argmin(view, axes[0]).toTypedArray() : null;
          ref.forEach((r, i) => {
            if (!(Math.abs(Number(s[i]) - r.sum) <= sumBound(d, r))) expect.fail(`${d} view ${shape} axes ${axes}: sum[${i}] = ${s[i]}, expected ${r.sum}`);
            if (m[i] !== r.max) expect.fail(`${d} view ${shape} axes ${axes}: max[${i}] = ${m[i]}, expected ${r.max}`);
            if (am && am[i] !== r.amin) expect.fail(`${d} view ${shape} axes ${axes}: argmin[${i}] = ${am[i]}, expected ${r.amin}`);
          });
        }
      }
    }, 30_000);
    it(`${d} argmax/argmin over long rows, columns and the flattened array return the first extreme`, () => {
      // few distinct values: many ties, so "first" matters
      const v = values(9, 517 * 2053).map((x) => Math.round(x * 3));
      for (const [shape, axis] of [[[517, 2053], 1], [[517, 2053], 0], [[517 * 2053], 0]] as const) {
        const x = make(v, [...shape], d);
        const ref = refReduce(v, [...shape], [axis]);
        const amax = mx.argmax(x, axis).toTypedArray(), amin = mx.argmin(x, axis).toTypedArray();
        ref.forEach((r, i) => {
          if (amax[i] !== r.amax || amin[i] !== r.amin) expect.fail(`${d} ${shape} axis ${axis}: arg[${i}] = ${amax[i]}/${amin[i]}, expected ${r.amax}/${r.amin}`);
        });
      }
    }, 30_000);
    it(`${d} prod of a long run stays within (n + 1) u |p| of the float64 product`, () => {
      const n = 100_003;
      const v = values(10, n, 0.999, 1.001);
      let p = 1;
      for (const x of v) p *= x;
      const got = mx.prod(make(v, [n], d)).item() as number;
      const u = d === "float32" ? U32 : U64;
      // products accumulate in double: n u_64 |p| (+ one float32 rounding)
      expect(Math.abs(got - p)).toBeLessThanOrEqual((n + 1) * U64 * Math.abs(p) + u * Math.abs(p));
    });
  }

  it("adversarial sums: huge cancellation and one huge value among many small ones", () => {
    const n = (1 << 20) + 5;
    for (const d of ["float32", "float64"] as const) {
      // 1e8 (or 1e16), a million ones, then its negation: exact sum n - 2
      const big = d === "float32" ? 1e8 : 1e16;
      const v = new Float64Array(n).fill(1);
      v[0] = big;
      v[n - 1] = -big;
      const got = mx.sum(make(v, [n], d)).item() as number;
      const r = { sum: n - 2, abs: 2 * big + n - 2, n };
      expect(Math.abs(got - r.sum), `${d} 1e8 + ones - 1e8`).toBeLessThanOrEqual(sumBound(d, r));
      // many 0.1s: a float32 running sum would drift by percent; the bound is ~3 ulps
      const tenth = new Float64Array(n).fill(Math.fround(0.1));
      const s = mx.sum(make(tenth, [n], d)).item() as number;
      const exact = n * Math.fround(0.1);
      expect(Math.abs(s - exact), `${d} sum of 0.1s`).toBeLessThanOrEqual(sumBound(d, { sum: exact, abs: exact, n }));
      // alternating +-(1 + tiny): cancellation everywhere, exact sum known
      const alt = values(11, n, 1, 2).map((x, i) => (i % 2 ? -x : x));
      let exactAlt = 0, absAlt = 0;
      for (const x of alt) { exactAlt += x; absAlt += Math.abs(x); }
      const a = mx.sum(make(alt, [n], d)).item() as number;
      expect(Math.abs(a - exactAlt), `${d} alternating`).toBeLessThanOrEqual(sumBound(d, { sum: exactAlt, abs: absAlt, n }));
    }
  });

  it("NaN and infinities propagate through long runs, rows and columns", () => {
    const n = 70_001;
    for (const d of ["float32", "float64"] as const) {
      for (const at of [0, 5, 1000, 65_536, n - 1]) {
        const v = values(12, n);
        v[at] = NaN;
        const x = make(v, [n], d);
        expect(mx.sum(x).item(), `${d} sum NaN at ${at}`).toBeNaN();
        expect(mx.max(x).item(), `${d} max NaN at ${at}`).toBeNaN();
        expect(mx.min(x).item(), `${d} min NaN at ${at}`).toBeNaN();
        expect(mx.prod(x).item(), `${d} prod NaN at ${at}`).toBeNaN();
        expect(mx.argmax(x).item(), `${d} argmax NaN at ${at}`).toBe(at);
        expect(mx.argmin(x).item(), `${d} argmin NaN at ${at}`).toBe(at);
        // the same as a column of a [n, 3] matrix (kept-inner path) and a row of [3, n]
        const cols = mx.sum(make(new Float64Array(3 * n).map((_, i) => (i === 3 * at + 1 ? NaN : 1)), [n, 3], d), 0).tolist() as number[];
        expect(cols.map(Number.isNaN), `${d} column NaN at ${at}`).toEqual([false, true, false]);
        const mcols = mx.max(make(new Float64Array(3 * n).map((_, i) => (i === 3 * at + 2 ? NaN : i)), [n, 3], d), 0).tolist() as number[];
        expect(mcols.map(Number.isNaN), `${d} column max NaN at ${at}`).toEqual([false, false, true]);
      }
      const inf = values(13, n);
      inf[100] = Infinity;
      expect(mx.sum(make(inf, [n], d)).item()).toBe(Infinity);
      expect(mx.max(make(inf, [n], d)).item()).toBe(Infinity);
      expect(mx.argmax(make(inf, [n], d)).item()).toBe(100);
      inf[40_000] = -Infinity;
      expect(mx.sum(make(inf, [n], d)).item()).toBeNaN();
      expect(mx.min(make(inf, [n], d)).item()).toBe(-Infinity);
      expect(mx.max(make(new Float64Array(n).fill(-Infinity), [n], d)).item()).toBe(-Infinity);
      expect(mx.argmax(make(new Float64Array(n).fill(-Infinity), [n], d)).item()).toBe(0);
    }
  });
});

/**
 * The vector path's results depend on the shape only: the same bits with one thread or two
 * (fixed blocks combined in a fixed tree) and on every SIMD path the CPU has (one logical vector
 * width everywhere). Each case runs in a child process with TESSERA_NUM_THREADS and
 * TESSERA_CPU_ISA set, since both are read once per process.
 */
describe("reductions are deterministic across thread counts and SIMD paths", () => {
  const CHILD = `
import * as mx from "@tessera/core";
function values(seed, count) {
  let s = seed >>> 0;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = Math.fround(s / 2 ** 31 - 1); }
  return out;
}
const out = [];
for (const d of ["float32", "float64"]) {
  const v = values(5, 3 * 1024 * 1024 + 11);
  const x = mx.array(d === "float32" ? new Float32Array(v) : v);
  const m = mx.reshape(x.index(mx.slice(0, 2048 * 1536)), [2048, 1536]);
  for (const y of [mx.sum(x), mx.prod(mx.add(mx.multiply(x, 1e-6), 1)), mx.sum(m, 1), mx.sum(m, 0), mx.mean(m, 0), mx.sum(mx.transpose(m), 0), mx.max(m, 0), mx.argmin(m, 1)])
    out.push(Array.from(y.astype("float64").toTypedArray()));
}
console.log(JSON.stringify({ isa: mx.internal.native.cpuIsa(), out }));
`;
  function runChild(isa: string, threads: number): { isa: string; out: number[][] } {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const stdout = execFileSync(process.execPath, ["--input-type=module", "-e", CHILD], {
      cwd: root,
      env: { ...process.env, TESSERA_CPU_ISA: isa, TESSERA_NUM_THREADS: String(threads) },
      maxBuffer: 256 << 20,
    });
    return JSON.parse(stdout.toString());
  }
  const RANK = ["generic", "avx2", "avx512"];
  const best = mx.internal.native.cpuIsa();
  it("gives the same bits with 1 or 2 threads on each SIMD path, and across paths", () => {
    const reference = runChild(best, 2);
    for (const isa of RANK.slice(0, RANK.indexOf(best) + 1)) {
      for (const threads of [1, 2]) {
        const r = runChild(isa, threads);
        expect(r.isa).toBe(isa);
        r.out.forEach((vals, k) => expect(vals, `${isa} threads ${threads} result ${k}`).toEqual(reference.out[k]));
      }
    }
  }, 120_000);
});
