/**
 * Reductions and the softmax family against float64 loop references: every axis form (none,
 * number, negative, lists, empty list), keepdims, size-1 and empty axes, non-contiguous inputs,
 * float and integer dtypes, NaN propagation and first-occurrence argmax/argmin.
 * Float tolerances are error bounds: accumulation unit roundoff times a per-element magnitude
 * (n * sum|x| for a sum), plus two units of the output dtype.
 */
import { describe, expect, it } from "vitest";
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
