/**
 * Scans (cumsum, cumprod, cummax, cummin, logcumsumexp) and sorting (sort, argsort, partition,
 * argpartition, topk) against loop references in float64 (BigInt for integers, which wrap):
 * every axis form (omitted, positive, negative), reverse and inclusive, empty and size-1 axes,
 * non-contiguous inputs, float, integer and bool dtypes, NaN placement, ties and stability; the
 * gradients against central finite differences in float64, and the tie rules; argument errors.
 * Float tolerances: floating scans accumulate in double, so the result is the reference rounded
 * once to the output dtype (two units of it, plus a double-rounding term scaled by the prefix).
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import { rng, sizeOf, strides } from "../helpers/reference.js";
import { VIEWS, hostFrom, makeBroadcastable, viewOf, type Host } from "../helpers/host.js";
import { buildArray, expectMatches, fillerFor, kindOf, randomHost, wrap } from "../helpers/inputs.js";
import { checkDerivatives, toArray, uniform } from "../transforms/checks.js";

type Kind = "sum" | "prod" | "max" | "min" | "logaddexp";
type ScanFn = (x: mx.Array, axis?: number | null, o?: { reverse?: boolean; inclusive?: boolean }) => mx.Array;
const SCANS: { name: string; fn: ScanFn; kind: Kind }[] = [
  { name: "cumsum", fn: mx.cumsum, kind: "sum" },
  { name: "cumprod", fn: mx.cumprod, kind: "prod" },
  { name: "cummax", fn: mx.cummax, kind: "max" },
  { name: "cummin", fn: mx.cummin, kind: "min" },
  { name: "logcumsumexp", fn: mx.logcumsumexp, kind: "logaddexp" },
];

const EPS: Partial<Record<mx.DType, number>> = { float64: 2 ** -52, float32: 2 ** -23, float16: 2 ** -10, bfloat16: 2 ** -7 };

/** The lines of a row-major shape along axis: the flat offsets of each, in axis order. */
function lines(shape: number[], axis: number): number[][] {
  const st = strides(shape);
  const n = shape[axis];
  const others = shape.map((d, i) => (i === axis ? 1 : d));
  const out: number[][] = [];
  for (let o = 0; o < sizeOf(others); o++) {
    let base = 0, rem = o;
    for (let d = shape.length - 1; d >= 0; d--) {
      base += (rem % others[d]) * st[d];
      rem = Math.floor(rem / others[d]);
    }
    out.push(Array.from({ length: n }, (_, k) => base + k * st[axis]));
  }
  return out;
}

/** The scan reference: floats in float64 (with a per-element error scale), integers exact with wrapping. */
function scanRef(h: Host<any>, axis: number, kind: Kind, reverse: boolean, inclusive: boolean, dtype: mx.DType): { out: Host<any>; scale: number[] } {
  const data: any[] = new Array(h.data.length);
  const scale: number[] = new Array(h.data.length).fill(0);
  const isInt = kindOf(dtype) === "int";
  for (const line of lines(h.shape, axis)) {
    const order = reverse ? [...line].reverse() : line;
    let acc: any, mag = 0;
    if (isInt) acc = kind === "sum" ? 0n : kind === "prod" ? 1n : null;
    else acc = { sum: 0, prod: 1, max: -Infinity, min: Infinity, logaddexp: -Infinity }[kind];
    if (dtype === "bool") acc = kind === "max" ? 0 : 1;
    for (const k of order) {
      const v = h.data[k];
      const step = () => {
        if (isInt) {
          const b = BigInt(v);
          if (kind === "sum") acc = wrap(acc + b, dtype);
          else if (kind === "prod") acc = wrap(acc * b, dtype);
          else if (kind === "max") acc = acc === null || b > acc ? b : acc;
          else acc = acc === null || b < acc ? b : acc;
        } else if (dtype === "bool") {
          acc = kind === "max" ? Math.max(acc, v) : Math.min(acc, v);
        } else {
          const x = Number(v);
          mag = kind === "sum" ? mag + Math.abs(x) : Math.abs(acc);
          if (Number.isNaN(x) || Number.isNaN(acc)) acc = NaN;
          else if (kind === "sum") acc += x;
          else if (kind === "prod") acc *= x;
          else if (kind === "max") acc = Math.max(acc, x);
          else if (kind === "min") acc = Math.min(acc, x);
          else { const m = Math.max(acc, x); acc = m === -Infinity || m === Infinity ? m : m + Math.log(Math.exp(acc - m) + Math.exp(x - m)); }
        }
      };
      if (inclusive) step();
      // an integer max/min before any element is the dtype's extreme (exclusive scans only)
      data[k] = acc === null ? (kind === "max" ? intExtreme(dtype, false) : intExtreme(dtype, true)) : acc;
      scale[k] = kind === "sum" ? mag : kind === "logaddexp" ? order.length + Math.abs(Number(acc)) : Math.abs(Number(acc));
      if (!inclusive) step();
    }
  }
  return { out: { shape: h.shape, data }, scale };
}
function intExtreme(d: mx.DType, max: boolean): bigint {
  const bits = BigInt(Number(d.replace(/\D/g, "")));
  if (d.startsWith("uint")) return max ? 2n ** bits - 1n : 0n;
  return max ? 2n ** (bits - 1n) - 1n : -(2n ** (bits - 1n));
}

const outType = (kind: Kind, d: mx.DType): mx.DType =>
  d === "bool" && (kind === "sum" || kind === "prod") ? "int32" : kind === "logaddexp" && !mx.isFloating(d) ? "float32" : d;

/** Random values in dtype d: small integers (so products stay exact), floats with ties and signs. */
function values(shape: number[], d: mx.DType, r: () => number, kind: Kind): Host<any> {
  if (kindOf(d) === "float") {
    const lo = kind === "prod" ? 0.5 : -3, hi = kind === "prod" ? 1.5 : 3;
    return hostFrom(shape, () => {
      const u = r();
      if (u < 0.15) return Math.round(r() * 4) - 2; // ties (and zeros)
      const v = lo + (hi - lo) * r();
      return (kind === "prod" && r() < 0.5 ? -v : v);
    });
  }
  if (kind === "prod" || kind === "logaddexp") return randomHost(shape, d, r, { domain: [0, 1] }, [-3, 3].map(BigInt) as any);
  return randomHost(shape, d, r, { domain: [0, 1] });
}

/** Rounds a host's floats to dtype d (so the reference sees exactly what tessera does). */
function rounded(h: Host<any>, d: mx.DType): Host<any> {
  if (kindOf(d) !== "float" || d === "float64") return h;
  const back = mx.array(Float64Array.from(h.data, Number), d).astype("float64").tolist() as number[];
  return { shape: h.shape, data: back };
}

const SHAPES: [number[], (number | undefined)[]][] = [
  [[0], [undefined, 0]],
  [[1], [undefined, -1]],
  [[7], [undefined, 0]],
  [[3, 5], [undefined, 0, 1, -1]],
  [[2, 0, 3], [1, 2, undefined]],
  [[2, 3, 4], [0, 1, -1, -2]],
  [[4, 1, 3], [1, 0]],
];
const FLAGS = [[false, true], [true, true], [false, false], [true, false]] as const;

describe.each(SCANS)("$name", ({ name, fn, kind }) => {
  const dtypes: mx.DType[] = ["float64", "float32", "float16", "int32", "int8", "uint8", "int64", "bool"];
  it.each(dtypes)("matches the reference in %s (every axis form, reverse/inclusive, views)", (d) => {
    if (kind === "logaddexp" && d === "bool") return; // bool is an integer here, covered by int32/int8
    const r = rng(7 + dtypes.indexOf(d));
    let v = 0;
    for (const [shape, axes] of SHAPES) {
      for (const axis of axes) {
        for (const [reverse, inclusive] of FLAGS) {
          const view = VIEWS[v++ % VIEWS.length];
          let h = rounded(values(shape, d, r, kind), d);
          if (view === "broadcast") h = makeBroadcastable(h);
          const x = viewOf(h, view, (b) => buildArray(b, d), fillerFor(d));
          const y = fn(x, axis, { reverse, inclusive });
          const flat = axis === undefined ? { shape: [sizeOf(shape)], data: h.data } : h;
          const a = axis === undefined ? 0 : axis < 0 ? axis + shape.length : axis;
          const od = outType(kind, d);
          const hin = kindOf(od) === "float" ? { shape: flat.shape, data: flat.data.map(Number) } : flat;
          const { out, scale } = scanRef(hin, a, kind, reverse, inclusive, od === "int32" && d === "bool" ? "int32" : od);
          const what = `${name} ${d} [${shape}] axis ${axis} reverse ${reverse} inclusive ${inclusive} ${view}`;
          if (kindOf(od) === "float") {
            const e = EPS[od]!;
            // one rounding to the output dtype, after double accumulation
            const tolOut = { shape: out.shape, data: out.data.map((x: number) => x) };
            expect(y.shape, what).toEqual(out.shape);
            expect(y.dtype, what).toBe(od);
            const got = y.astype("float64").tolist() as unknown;
            const g = (Array.isArray(got) ? (got as unknown[]).flat(Infinity) : [got]) as number[];
            g.forEach((gv, i) => {
              const want = tolOut.data[i];
              if (Number.isNaN(want)) return expect(gv, `${what} [${i}]`).toBeNaN();
              if (!Number.isFinite(want)) return expect(gv, `${what} [${i}]`).toBe(want);
              const tol = e * Math.abs(want) + 1e-14 * (scale[i] + 1) + (od === "float16" ? 6e-8 : 0);
              if (!(Math.abs(gv - want) <= tol)) expect.fail(`${what} [${i}]: expected ${want}, got ${gv}`);
            });
          } else {
            expectMatches(y, out, od, {}, what);
          }
        }
      }
    }
  });

  it("propagates NaN to the rest of the scan", () => {
    const x = mx.array([1, NaN, 2, 3]);
    const y = fn(x).tolist() as number[];
    expect(y[0]).not.toBeNaN();
    expect(y.slice(1).every(Number.isNaN)).toBe(true);
    const yr = fn(x, 0, { reverse: true }).tolist() as number[];
    expect(yr.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(yr[3]).not.toBeNaN();
  });

  it("is a method, and errors name the op", () => {
    const x = mx.array([[1, 2], [3, 4]]);
    expect((x as any)[name](1).tolist()).toEqual(fn(x, 1).tolist());
    expect(() => fn(x, 2)).toThrow(RangeError);
    expect(() => fn(x, 2)).toThrow(new RegExp(`^${name}: axis 2 is out of range`));
    expect(() => fn(x, 0.5)).toThrow(TypeError);
    expect(() => fn(x, 0, { reverse: 1 as any })).toThrow(new RegExp(`${name}: reverse must be a boolean`));
    expect(() => fn(x, 0, { inclusive: "no" as any })).toThrow(TypeError);
    expect(() => fn(x, 0, { bogus: 1 } as any)).toThrow(new RegExp(name));
    expect(() => fn(mx.array(2), 0)).toThrow(RangeError);
    expect(() => fn([1, 2] as any)).toThrow(TypeError);
  });
});

describe("scan dtypes and special cases", () => {
  it("sums and multiplies bool as int32; logcumsumexp of integers is float32", () => {
    expect(mx.cumsum(mx.array([true, false, true])).tolist()).toEqual([1, 1, 2]);
    expect(mx.cumsum(mx.array([true])).dtype).toBe("int32");
    expect(mx.cumprod(mx.array([true, true, false])).tolist()).toEqual([1, 1, 0]);
    expect(mx.cummax(mx.array([false, true, false])).tolist()).toEqual([false, true, true]);
    expect(mx.logcumsumexp(mx.array([0, 0], "int32")).dtype).toBe("float32");
  });
  it("wraps integers without overflow", () => {
    expect(mx.cumsum(mx.array([127, 1, 1], "int8")).tolist()).toEqual([127, -128, -127]);
    expect(mx.cumprod(mx.array([2n ** 62n, 2n, 2n], "int64")).tolist()).toEqual([2n ** 62n, -(2n ** 63n), 0n]);
  });
  it("exclusive scans start from the identity", () => {
    const o = { inclusive: false };
    expect(mx.cumsum(mx.array([1, 2, 3]), 0, o).tolist()).toEqual([0, 1, 3]);
    expect(mx.cumprod(mx.array([2, 3, 4]), 0, o).tolist()).toEqual([1, 2, 6]);
    expect(mx.cummax(mx.array([2, 3, 4]), 0, o).tolist()).toEqual([-Infinity, 2, 3]);
    expect(mx.cummin(mx.array([2, 3], "int32"), 0, o).tolist()).toEqual([2147483647, 2]);
    expect(mx.logcumsumexp(mx.array([0, 0]), 0, o).tolist()).toEqual([-Infinity, 0]);
  });
  it("logcumsumexp is stable for large and -inf inputs", () => {
    const y = mx.logcumsumexp(mx.array([1000, 1000, -Infinity], "float64")).tolist() as number[];
    expect(y[0]).toBe(1000);
    expect(y[1]).toBeCloseTo(1000 + Math.log(2), 10);
    expect(y[2]).toBeCloseTo(1000 + Math.log(2), 10);
    expect(mx.logcumsumexp(mx.array([-Infinity, -Infinity])).tolist()).toEqual([-Infinity, -Infinity]);
  });
});

// ---- sorting ----

function lessNanLast(a: number, b: number): number {
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}
/** Stable argsort of each line (JS's sort is stable), NaN last. */
function argsortRef(h: Host<number>, axis: number): { values: Host<number>; indices: Host<number> } {
  const vals: number[] = new Array(h.data.length), idx: number[] = new Array(h.data.length);
  for (const line of lines(h.shape, axis)) {
    const order = line.map((_, k) => k).sort((i, j) => lessNanLast(h.data[line[i]], h.data[line[j]]));
    order.forEach((src, k) => {
      vals[line[k]] = h.data[line[src]];
      idx[line[k]] = src;
    });
  }
  return { values: { shape: h.shape, data: vals }, indices: { shape: h.shape, data: idx } };
}

/** Values with many ties and some NaN (floats), or small integers. */
function tied(shape: number[], d: mx.DType, r: () => number): Host<number> {
  return hostFrom(shape, () => {
    if (mx.isFloating(d) && r() < 0.1) return NaN;
    if (d === "bool") return r() < 0.5 ? 0 : 1;
    const v = Math.floor(r() * 7) - 3;
    return d.startsWith("uint") ? v + 3 : mx.isFloating(d) && r() < 0.5 ? v + 0.5 : v;
  });
}

const SORT_SHAPES: [number[], (number | null | undefined)[]][] = [
  [[0], [undefined, 0, null]],
  [[1], [undefined, null]],
  [[9], [undefined, -1]],
  [[4, 6], [undefined, 0, 1, -2, null]],
  [[2, 0, 3], [1, 2, null]],
  [[3, 4, 5], [0, 1, 2, -1]],
];

describe("sort and argsort", () => {
  const dtypes: mx.DType[] = ["float64", "float32", "float16", "bfloat16", "int32", "uint8", "int64", "bool"];
  it.each(dtypes)("stable, NaN last, every axis form and view, in %s", (d) => {
    const r = rng(31 + dtypes.indexOf(d));
    let v = 0;
    for (const [shape, axes] of SORT_SHAPES) {
      for (const axis of axes) {
        const view = VIEWS[v++ % VIEWS.length];
        let h = tied(shape, d, r);
        if (view === "broadcast") h = makeBroadcastable(h);
        const x = viewOf(h, view, (b) => buildArray(b, d), fillerFor(d));
        const flat = axis === null ? { shape: [sizeOf(shape)], data: h.data } : h;
        const a = axis === null ? 0 : axis === undefined ? shape.length - 1 : axis < 0 ? axis + shape.length : axis;
        const ref = argsortRef(flat, a);
        const what = `${d} [${shape}] axis ${axis} ${view}`;
        expectMatches(mx.sort(x, axis as number), ref.values, d, {}, `sort ${what}`);
        expectMatches(mx.argsort(x, axis as number), ref.indices, "uint32", {}, `argsort ${what}`);
        if (axis !== null && axis !== undefined) expectMatches(x.sort(axis), ref.values, d, {}, `method sort ${what}`);
      }
    }
  });

  it("keeps -0 and 0 in their order, and infinities before NaN", () => {
    const x = mx.array([0, -0, NaN, Infinity, -Infinity, -0]);
    expect(mx.argsort(x).tolist()).toEqual([4, 0, 1, 5, 3, 2]);
    const s = mx.sort(x).tolist() as number[];
    expect(Object.is(s[1], 0) && Object.is(s[2], -0) && Object.is(s[3], -0)).toBe(true);
    expect(s[5]).toBeNaN();
  });

  it("sorts long rows with many ties stably", () => {
    const r = rng(5);
    const h = hostFrom([3, 2000], () => Math.floor(r() * 10));
    const ref = argsortRef(h, 1);
    expectMatches(mx.argsort(buildArray(h, "float32"), 1), ref.indices, "uint32", {}, "long rows");
  });
});

describe("partition, argpartition and topk", () => {
  it.each(["float64", "float32", "int32"] as mx.DType[])("partition around kth and topk's k largest, in %s", (d) => {
    const r = rng(77);
    for (const [shape, axis] of [[[9], -1], [[4, 6], 0], [[4, 6], 1], [[3, 4, 5], 1], [[1], 0]] as [number[], number][]) {
      const h = tied(shape, d, r);
      const x = viewOf(h, "transposed", (b) => buildArray(b, d), fillerFor(d));
      const a = axis < 0 ? axis + shape.length : axis;
      const ref = argsortRef(h, a);
      const n = shape[a];
      for (const kth of [0, n - 1, Math.floor(n / 2), -1]) {
        const p = mx.partition(x, kth, axis);
        const k = kth < 0 ? kth + n : kth;
        // the kth element is the sorted one; those before are not greater, those after not less
        const pv = p.astype("float64").tolist();
        const pl = lines(shape, a);
        const flatP = (Array.isArray(pv) ? (pv as unknown[]).flat(Infinity) : [pv]) as number[];
        for (const line of pl) {
          const sorted = line.map((o) => ref.values.data[o]);
          const got = line.map((o) => flatP[o]);
          expect(Object.is(got[k], sorted[k]) || got[k] === sorted[k]).toBe(true);
          for (let i = 0; i < n; i++) {
            if (i < k) expect(lessNanLast(got[i], got[k]) <= 0).toBe(true);
            if (i > k) expect(lessNanLast(got[i], got[k]) >= 0).toBe(true);
          }
        }
        // argpartition's indices pick the partition's values
        const ip = mx.argpartition(x, kth, axis).tolist();
        const flatI = (ip as unknown[]).flat(Infinity) as number[];
        for (const line of pl) line.forEach((o, i) => expect(Object.is(h.data[line[flatI[o]]], flatP[line[i]]) || h.data[line[flatI[o]]] === flatP[line[i]]).toBe(true));
      }
      for (const k of [0, 1, n]) {
        if (k > n) continue;
        const t = mx.topk(x, k, axis);
        expect(t.shape).toEqual(shape.map((s, i) => (i === a ? k : s)));
        const tv = (t.astype("float64").tolist() as unknown[]).flat(Infinity) as number[];
        // as multisets per line: the k largest (NaN largest)
        const tl = lines(t.shape, a);
        lines(shape, a).forEach((line, li) => {
          const want = line.map((o) => ref.values.data[o]).slice(n - k).map(String).sort();
          expect(tl[li].map((o) => String(tv[o])).sort()).toEqual(want);
        });
      }
    }
  });

  it("topk flattens for axis null and is a method", () => {
    const x = mx.array([[3, 9], [1, 7]]);
    expect((mx.topk(x, 2, null).tolist() as number[]).sort()).toEqual([7, 9]);
    expect((x.topk(1).tolist() as number[][]).map((r) => r[0])).toEqual([9, 7]);
  });

  /**
   * The selection's full contract on long lines (NaN, many ties, -0): with the stable order of a
   * sort (value, NaN last, ties by position) computed here by a plain JS sort, argpartition puts
   * that order's kth index at kth, the indices before it in that order on its left and the rest on
   * its right, each side ascending; topk is that order's last k values, ascending.
   */
  it.each([["float64", "spread"], ["float64", "ties and NaN"], ["float32", "ties and NaN"], ["int32", "ties"]] as [mx.DType, string][])(
    "long lines in %s (%s) against a sort-based reference",
    (d, kind) => {
      const r = rng(d.length * 31 + kind.length);
      for (const [rows, n, axis] of [[3, 1000, 1], [700, 2, 0], [2, 257, 1], [1, 1, 1]] as [number, number, number][]) {
        const shape = axis === 1 ? [rows, n] : [n, rows];
        const data = Array.from({ length: rows * n }, () => {
          if (kind === "spread") return (r() - 0.5) * 1e3;
          const u = r();
          if (d !== "int32" && u < 0.1) return NaN;
          if (d !== "int32" && u < 0.15) return -0;
          return Math.floor(r() * 7) - 3; // seven values: long runs of ties
        });
        const x = mx.array(data, d).reshape(shape);
        const at = (line: number, i: number) => (axis === 1 ? line * n + i : i * rows + line);
        // Orders of each line by the stable sort's rule, computed in JS (values are exact in d).
        const orders = Array.from({ length: rows }, (_, line) =>
          [...Array(n).keys()].sort((i, j) => lessNanLast(data[at(line, i)], data[at(line, j)]) || i - j));
        for (const kth of [...new Set([0, 1, n >> 1, n - 2, n - 1])].filter((k) => k >= 0 && k < n)) {
          const gotI = mx.argpartition(x, kth, axis).reshape([-1]).tolist() as number[];
          const gotV = mx.partition(x, kth, axis).astype("float64").reshape([-1]).tolist() as number[];
          for (let line = 0; line < rows; line++) {
            const order = orders[line];
            const want = [...order.slice(0, kth).sort((a, b) => a - b), order[kth], ...order.slice(kth + 1).sort((a, b) => a - b)];
            const got = want.map((_, i) => gotI[at(line, i)]);
            expect(got, `argpartition kth ${kth}, line ${line} of ${JSON.stringify(shape)} axis ${axis}`).toEqual(want);
            want.forEach((src, i) => expect(Object.is(gotV[at(line, i)], data[at(line, src)])).toBe(true));
          }
        }
        for (const k of [...new Set([0, 1, n >> 1, n - 1, n])].filter((k) => k >= 0 && k <= n)) {
          const t = mx.topk(x, k, axis);
          expect(t.shape).toEqual(shape.map((s, i) => (i === axis ? k : s)));
          const tv = t.astype("float64").reshape([-1]).tolist() as number[];
          const tAt = (line: number, i: number) => (axis === 1 ? line * k + i : i * rows + line);
          for (let line = 0; line < rows; line++) {
            const want = orders[line].slice(n - k).map((src) => data[at(line, src)]);
            // ties among the k are equal values, so the values (-0 and 0 aside) are exact
            const got = want.map((_, i) => tv[tAt(line, i)]);
            expect(got.map(String), `topk ${k}, line ${line}`).toEqual(want.map(String));
          }
        }
      }
    },
  );

  it("selection is deterministic and works on empty and non-contiguous axes", () => {
    const x = mx.array(Array.from({ length: 600 }, (_, i) => (i * 37) % 11), "float64").reshape([20, 30]);
    const a = mx.argpartition(x.T, 7, 1).tolist();
    expect(mx.argpartition(x.T, 7, 1).tolist()).toEqual(a);
    expect(mx.topk(mx.zeros([3, 0]), 0).shape).toEqual([3, 0]);
    expect(mx.topk(mx.zeros([0, 4]), 2).shape).toEqual([0, 2]);
    expect(mx.partition(mx.zeros([0, 4]), 3).shape).toEqual([0, 4]);
    expect(mx.topk(mx.array([2, NaN, 1]), 2).tolist()).toEqual([2, NaN]);
    expect(mx.argpartition(mx.array([3, 1, 3, 3, 0]), 2).tolist()).toEqual([1, 4, 0, 2, 3]);
  });

  it("errors name the op, what it got and what was expected", () => {
    const x = mx.array([[1, 2, 3], [4, 5, 6]]);
    expect(() => mx.topk(x, 4)).toThrow(/^topk: k 4 is larger than the axis \(length 3/);
    expect(() => mx.topk(x, -1)).toThrow(RangeError);
    expect(() => mx.topk(x, 1.5)).toThrow(TypeError);
    expect(() => mx.topk(x, 1, 2)).toThrow(/^topk: axis 2 is out of range/);
    expect(() => mx.partition(x, 3)).toThrow(/^partition: kth 3 is out of range for an axis of length 3/);
    expect(() => mx.partition(x, -4)).toThrow(RangeError);
    expect(() => mx.argpartition(x, "1" as any)).toThrow(TypeError);
    expect(() => mx.argpartition(x, 0, 5)).toThrow(/^argpartition: axis 5/);
    expect(() => mx.sort(x, 2)).toThrow(/^sort: axis 2 is out of range/);
    expect(() => mx.argsort(x, 0.5)).toThrow(/^argsort: axis must be an integer/);
    expect(() => mx.sort(mx.array(1))).toThrow(RangeError);
    expect(() => mx.sort(3 as any)).toThrow(TypeError);
    expect(() => mx.sort(x, 0, { bogus: 1 } as any)).toThrow(/sort/);
  });
});

// ---- gradients ----

const f64 = (shape: number[], lo = -2, hi = 2, seed = 1) => toArray(uniform(shape, lo, hi)(rng(seed)));

describe("gradients against finite differences (float64)", () => {
  const cases: [string, (x: mx.Array) => mx.Array, mx.Array][] = [];
  for (const { name, fn, kind } of SCANS) {
    for (const [reverse, inclusive] of FLAGS) {
      for (const [shape, axis] of [[[7], undefined], [[3, 4], 0], [[2, 3, 4], -1]] as [number[], number | undefined][]) {
        const x = kind === "prod" ? f64(shape, 0.5, 1.5, shape.length) : f64(shape, -2, 2, shape.length);
        // an exclusive max, min or logaddexp scan starts at an infinite identity, which finite differences can't take
        const finite = (y: mx.Array) => (inclusive || kind === "sum" || kind === "prod" ? y : mx.where(mx.isinf(y), 0, y));
        cases.push([`${name} [${shape}] axis ${axis} reverse ${reverse} inclusive ${inclusive}`, (a) => finite(fn(a, axis, { reverse, inclusive })), x]);
      }
    }
  }
  // cumprod through zeros: one zero and two zeros in a line, in every direction
  for (const zeros of [[2], [1, 4], [0]]) {
    for (const [reverse, inclusive] of FLAGS) {
      const data = [0.9, -1.3, 0.7, 1.2, -0.8, 1.1];
      for (const z of zeros) data[z] = 0;
      cases.push([`cumprod with zeros at ${zeros} reverse ${reverse} inclusive ${inclusive}`, (a) => mx.cumprod(a, 0, { reverse, inclusive }), mx.array(data, "float64")]);
    }
  }
  cases.push(
    ["sort axis 0", (a) => mx.sort(a, 0), f64([4, 3])],
    ["sort flattened", (a) => mx.sort(a, null), f64([3, 3])],
    ["topk", (a) => mx.topk(a, 2, -1), f64([3, 5])],
    ["partition", (a) => mx.partition(a, 1, 0), f64([4, 2])],
  );
  it.each(cases.map(([label, fn, x]) => [label, fn, x] as const))("%s", (_label, fn, x) => {
    checkDerivatives(fn, [x]);
  });
});

describe("tie rules", () => {
  it("cummax and cummin send the gradient to the latest tie", () => {
    const x = mx.array([1, 3, 2, 3, 0], "float64");
    // cummax = [1, 3, 3, 3, 3]: outputs 1 and 2 come from x[1], outputs 3 and 4 from x[3]
    expect(grad((a: mx.Array) => mx.sum(mx.cummax(a)))(x).tolist()).toEqual([1, 2, 0, 2, 0]);
    expect((grad((a: mx.Array) => mx.sum(mx.cummin(mx.neg(a))))(x).tolist() as number[]).map((v) => v + 0)).toEqual([-1, -2, 0, -2, 0]);
    // reverse: the latest tie in scan order is the one nearest the start
    expect(grad((a: mx.Array) => mx.sum(mx.cummax(a, 0, { reverse: true })))(x).tolist()).toEqual([0, 2, 0, 2, 1]);
  });
  it("sort sends each value's gradient to its source element", () => {
    const x = mx.array([2, 1, 2, 0], "float64");
    const w = mx.array([1, 10, 100, 1000], "float64");
    // sorted: [0 (x3), 1 (x1), 2 (x0), 2 (x2)]
    expect(grad((a: mx.Array) => mx.sum(mx.mul(mx.sort(a), w)))(x).tolist()).toEqual([100, 10, 1000, 1]);
  });
});
