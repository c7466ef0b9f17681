/**
 * take, takeAlongAxis, putAlongAxis, advanced `index` and `at(...)` updates against a float64
 * reference written here from NumPy's rules (independent of the op layer's linearization): many
 * index combinations, both placements of the advanced axes, negative, repeated and empty
 * indices, bool/int/float data, non-contiguous operands; errors at the call and at evaluation;
 * gradients against finite differences.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad, vmap } from "@tessera/transforms";
import { rng, sizeOf, strides, unravel, type Ref } from "../helpers/reference.js";
import { checkDerivatives } from "../transforms/checks.js";

type Spec = (number | mx.Slice | null | "..." | Ref)[];

const flat = (x: mx.Array) => (x.ndim === 0 ? [x.item()] : (x.reshape([-1]).tolist() as unknown[])).map(Number);
const ref = (shape: number[], f: (i: number) => number): Ref => ({ shape, data: Float64Array.from({ length: sizeOf(shape) }, (_, i) => f(i)) });
const ints = (shape: number[], lo: number, hi: number, r: () => number) => ref(shape, () => lo + Math.floor(r() * (hi - lo)));
const idx = (r: Ref) => mx.reshape(mx.array(Int32Array.from(r.data)), r.shape);
const arr = (r: Ref, dtype: mx.DType = "float64") => mx.reshape(mx.array(Float64Array.from(r.data), dtype), r.shape);
const bshape = (...shapes: number[][]) => {
  const nd = Math.max(0, ...shapes.map((s) => s.length));
  return [...Array(nd).keys()].map((i) => shapes.map((s) => s[i - nd + s.length] ?? 1).find((d) => d !== 1) ?? 1);
};
/** Element of r at a multi-index of a shape r broadcasts to. */
const atB = (r: Ref, pos: number[]) => {
  const st = strides(r.shape), lead = pos.length - r.shape.length;
  return r.data[r.shape.reduce((o, d, i) => o + (d === 1 ? 0 : pos[lead + i]) * st[i], 0)];
};
const sliceIdx = (s: mx.Slice, n: number): number[] => {
  const step = s.step ?? 1, out: number[] = [];
  const norm = (v: number) => (v < 0 ? v + n : v);
  if (step > 0) {
    const a = Math.min(Math.max(s.start === null ? 0 : norm(s.start), 0), n), b = Math.min(Math.max(s.stop === null ? n : norm(s.stop), 0), n);
    for (let i = a; i < b; i += step) out.push(i);
  } else {
    const a = Math.min(Math.max(s.start === null ? n - 1 : norm(s.start), -1), n - 1), b = Math.min(Math.max(s.stop === null ? -1 : norm(s.stop), -1), n - 1);
    for (let i = a; i > b; i += step) out.push(i);
  }
  return out;
};

/**
 * NumPy's x[spec] as a list of flat positions of x (one per result element, row-major) and the
 * result shape: the reference for index and at.
 */
function npIndex(shape: number[], spec: Spec): { shape: number[]; pos: number[] } {
  const consuming = spec.filter((s) => s !== null && s !== "...").length;
  const full = [...spec];
  const e = full.indexOf("...");
  if (e >= 0) full.splice(e, 1, ...Array(shape.length - consuming).fill(mx.slice()));
  else full.push(...Array(shape.length - consuming).fill(mx.slice()));
  const hasAdv = full.some((s) => typeof s === "object" && s !== null && !(s instanceof mx.Slice));
  const isAdv = (s: Spec[number]) => hasAdv && (typeof s === "number" || (typeof s === "object" && s !== null && !(s instanceof mx.Slice)));
  const advRefs = full.filter(isAdv).map((s) => (typeof s === "number" ? { shape: [], data: Float64Array.of(s) } : (s as Ref)));
  const B = bshape(...advRefs.map((a) => a.shape));
  const advAt = full.map((s, i) => (isAdv(s) ? i : -1)).filter((i) => i >= 0);
  const adjacent = advAt.length === 0 || advAt[advAt.length - 1] - advAt[0] === advAt.length - 1;
  // The result's axes: "B" (the broadcast index shape) or one per slice/new entry.
  const dims: ({ k: "B" } | { k: "slice"; axis: number; list: number[] } | { k: "new" })[] = [];
  let axis = 0;
  for (const s of full) {
    if (s === null) dims.push({ k: "new" });
    else if (s instanceof mx.Slice) dims.push({ k: "slice", axis, list: sliceIdx(s, shape[axis]) });
    else if (isAdv(s) && dims.every((d) => d.k !== "B")) dims.push({ k: "B" });
    if (s !== null) axis++;
  }
  if (!adjacent) dims.sort((a, b) => (a.k === "B" ? -1 : b.k === "B" ? 1 : 0));
  const outShape = dims.flatMap((d) => (d.k === "B" ? B : d.k === "new" ? [1] : [d.list.length]));
  const st = strides(shape), pos: number[] = [];
  for (let i = 0; i < sizeOf(outShape); i++) {
    const o = unravel(i, outShape);
    let k = 0, p = 0, bpos: number[] = [];
    const sliceAt = new Map<number, number>();
    for (const d of dims) {
      if (d.k === "B") bpos = o.slice(k, (k += B.length));
      else if (d.k === "new") k++;
      else sliceAt.set(d.axis, d.list[o[k++]]);
    }
    let a = 0, advK = 0;
    for (const s of full) {
      if (s === null) continue;
      let v: number;
      if (s instanceof mx.Slice) v = sliceAt.get(a)!;
      else if (typeof s === "number" && !hasAdv) v = s;
      else v = atB(advRefs[advK++], bpos);
      if (v < -shape[a] || v >= shape[a]) throw new Error(`reference: index ${v} out of range`);
      p += (v < 0 ? v + shape[a] : v) * st[a];
      a++;
    }
    pos.push(p);
  }
  return { shape: outShape, pos };
}

const toSpec = (spec: Spec): mx.IndexEntry[] => spec.map((s) => (typeof s === "object" && s !== null && !(s instanceof mx.Slice) ? idx(s) : s));

describe("index with integer arrays", () => {
  const r = rng(7);
  const X = ref([3, 4, 5], () => Math.round((r() * 4 - 2) * 8) / 8);
  const I = (shape: number[], n: number) => ints(shape, -n, n, r);
  const cases: [string, Spec][] = [
    ["one array", [I([4], 3)]],
    ["2-d array on the middle axis", [mx.slice(), I([2, 3], 4)]],
    ["two adjacent arrays (broadcast)", [I([2, 1], 3), I([3], 4)]],
    ["adjacent, after a slice", [mx.slice(null, null, -1), I([2], 4), I([2], 5)]],
    ["separated by a slice: to the front", [I([2], 3), mx.slice(1, 3), I([2], 5)]],
    ["int and array separated: to the front", [0, mx.slice(), I([3], 5)]],
    ["int and array adjacent: in place", [mx.slice(), 1, I([3], 5)]],
    ["array, null, array: to the front", [I([2], 3), null, I([2], 4)]],
    ["with an ellipsis", ["...", I([2, 2], 5)]],
    ["three arrays", [I([2], 3), I([1, 2], 4), I([3, 1], 5)]],
    ["empty index array", [mx.slice(), I([0], 4)]],
    ["empty among others", [I([0], 3), I([1], 4)]],
    ["0-d index array", [I([], 3), mx.slice(null, 2)]],
    ["repeated indices", [{ shape: [4], data: Float64Array.of(1, 1, -2, 1) }]],
    ["new axes around", [null, I([2], 3), mx.slice(), null, 2]],
  ];
  for (const dtype of ["float32", "int32", "bool"] as const) {
    it.each(cases)(`%s (${dtype})`, (_name, spec) => {
      const want = npIndex(X.shape, spec);
      const x = arr(X, dtype);
      const got = x.index(...toSpec(spec));
      expect(got.shape).toEqual(want.shape);
      const cast = (v: number) => (dtype === "int32" ? Math.trunc(v) | 0 : dtype === "bool" ? Number(v !== 0) : v);
      expect(flat(got)).toEqual(want.pos.map((p) => cast(X.data[p])));
    });
  }

  it("reads non-contiguous operands (transposed data, broadcast and strided indices)", () => {
    const x = arr(X).transpose([2, 0, 1]); // [5, 3, 4]
    const XT = ref([5, 3, 4], (i) => { const [a, b, c] = unravel(i, [5, 3, 4]); return X.data[b * 20 + c * 5 + a]; });
    const i1 = mx.broadcastTo(idx({ shape: [1, 2], data: Float64Array.of(4, -1) }), [3, 2]);
    const i2 = idx(ref([2, 3], (i) => (i % 3) - 1)).T; // [3, 2], transposed
    const got = x.index(i1, mx.slice(), i2);
    const want = npIndex(XT.shape, [{ shape: [3, 2], data: Float64Array.from(flat(i1)) }, mx.slice(), { shape: [3, 2], data: Float64Array.from(flat(i2)) }]);
    expect(got.shape).toEqual(want.shape);
    expect(flat(got)).toEqual(want.pos.map((p) => XT.data[p]));
  });
});

describe("take, takeAlongAxis, putAlongAxis", () => {
  const r = rng(11);
  const X = ref([3, 4], (i) => i * 1.5 - 4);
  it.each([
    [[5], 0], [[2, 3], 1], [[2, 3], -1], [[], 0], [[0], 1], [[1], -2], [[2, 2], undefined],
  ] as [number[], number | undefined][])("take indices %j along axis %s", (ishape, axis) => {
    const n = axis === undefined ? 12 : X.shape[axis < 0 ? axis + 2 : axis];
    const I = ints(ishape, -n, n, r);
    const got = mx.take(arr(X), idx(I), axis);
    const spec: Spec = axis === undefined ? [I] : (axis < 0 ? axis + 2 : axis) === 0 ? [I] : [mx.slice(), I];
    const want = npIndex(axis === undefined ? [12] : X.shape, spec);
    expect(got.shape).toEqual(want.shape);
    expect(flat(got)).toEqual(want.pos.map((p) => X.data[p]));
  });

  it("take with a JS integer drops the axis; as a method; uint8 and int64 indices", () => {
    expect(mx.take(arr(X), -1, 1).tolist()).toEqual([X.data[3], X.data[7], X.data[11]]);
    expect(arr(X).take(mx.array([11, 0], "uint8")).tolist()).toEqual([X.data[11], X.data[0]]);
    expect(arr(X).take(mx.array([-1], "int64"), 0).tolist()).toEqual([[...X.data.slice(8)]]);
  });

  it("takeAlongAxis broadcasts x and indices off the axis", () => {
    const x = arr(ref([3, 1, 4], (i) => i)), I = ints([1, 2, 5], -4, 4, r);
    const got = mx.takeAlongAxis(x, idx(I), 2);
    expect(got.shape).toEqual([3, 2, 5]);
    const want = [...Array(30).keys()].map((k) => { const [a, b, c] = unravel(k, [3, 2, 5]); const v = I.data[b * 5 + c]; return a * 4 + (v < 0 ? v + 4 : v); });
    expect(flat(got)).toEqual(want);
    expect(mx.takeAlongAxis(x, idx({ shape: [2], data: Float64Array.of(11, -12) }), null).tolist()).toEqual([11, 0]);
  });

  it("putAlongAxis writes values (broadcast) and keeps x's dtype; the last repeat wins", () => {
    const x = mx.zeros([2, 3], "int32");
    expect(mx.putAlongAxis(x, mx.array([[2, -3]], "int32"), mx.array([[7], [8]]), 1).tolist()).toEqual([[7, 0, 7], [8, 0, 8]]);
    expect(mx.putAlongAxis(x, mx.array([[1, 1]], "int32"), mx.array([[5, 6]], "int32"), 1).tolist()).toEqual([[0, 6, 0], [0, 6, 0]]);
    expect(mx.putAlongAxis(x, mx.array([[0, 1, 0]], "int32"), 4, 0).tolist()).toEqual([[4, 0, 4], [0, 4, 0]]);
  });
});

describe("at(...) updates", () => {
  const r = rng(3);
  const X = ref([3, 4, 2], () => Math.round((r() * 4 - 2) * 4) / 4 || 0.5);
  const ops: Record<string, (a: number, v: number) => number> = {
    set: (_a, v) => v, add: (a, v) => a + v, subtract: (a, v) => a - v, multiply: (a, v) => a * v,
    divide: (a, v) => a * (1 / v), maximum: Math.max, minimum: Math.min,
  };
  const specs: [string, Spec][] = [
    ["basic: int and slice", [1, mx.slice(null, null, 2)]],
    ["basic: new axis and ellipsis", [null, "...", -1]],
    ["repeated indices", [{ shape: [5], data: Float64Array.of(0, 2, 0, -3, 0) }]],
    ["adjacent arrays, repeats", [mx.slice(), { shape: [3], data: Float64Array.of(1, 1, -3) }, { shape: [1], data: Float64Array.of(0) }]],
    ["separated arrays", [{ shape: [2, 1], data: Float64Array.of(2, 2) }, mx.slice(1, 3), { shape: [3], data: Float64Array.of(0, 1, 1) }]],
    ["int with array, separated", [0, mx.slice(), { shape: [2], data: Float64Array.of(1, 1) }]],
    ["empty", [{ shape: [0], data: new Float64Array(0) }]],
  ];
  for (const [op, f] of Object.entries(ops)) {
    it.each(specs)(`${op}: %s`, (_name, spec) => {
      const { shape, pos } = npIndex(X.shape, spec);
      const V = ref(shape.slice(1), () => Math.round((r() * 2 + 0.5) * 4) / 4); // broadcast over the first axis
      const want = Float64Array.from(X.data);
      pos.forEach((p, i) => (want[p] = f(want[p], atB(V, unravel(i, shape)))));
      const got = (arr(X).at(...toSpec(spec)) as unknown as Record<string, (v: mx.Array) => mx.Array>)[op](arr(V));
      expect(got.shape).toEqual(X.shape);
      const g = flat(got);
      g.forEach((v, i) => expect(v).toBeCloseTo(want[i], 12));
    });
  }

  it("works on int and bool arrays (values cast to x's dtype)", () => {
    const i = mx.array([0, 0, 2], "int32");
    expect(mx.zeros([3], "int32").at(i).add(mx.array(2.7)).tolist()).toEqual([4, 0, 2]);
    expect(mx.ones([3], "int32").at(i).multiply(3).tolist()).toEqual([9, 1, 3]);
    expect(mx.zeros([3], "bool").at(i).set(true).tolist()).toEqual([true, false, true]);
    expect(mx.array([5, 5, 5], "int32").at(i).minimum(mx.array([4, 1, 7], "int32")).tolist()).toEqual([1, 5, 5]);
  });
});

describe("errors", () => {
  const x = mx.arange(12).reshape([3, 4]);
  it("out-of-range indices fail at evaluation, naming the op, the index and the axis size", () => {
    for (const [make, re] of [
      [() => mx.take(x, mx.array([4], "int32"), 1), /gather.*index 4 is out of bounds for an axis of size 4/],
      [() => mx.take(x, mx.array([-13], "int32")), /gather.*index -13 .*size 12/],
      [() => x.index(mx.slice(), mx.array([0, -5], "int32")), /gather.*index -5 .*size 4/],
      [() => x.index(mx.array([3], "int32"), mx.array([0], "int32")), /gather.*index 3 .*size 3/],
      [() => x.at(mx.array([1, 7], "int32")).add(1), /scatter.*index 7 .*size 3/],
      [() => mx.putAlongAxis(x, mx.array([[-4]], "int32"), 1, 0), /scatter.*index -4 .*size 3/],
      [() => mx.take(mx.zeros([0]), mx.array([0], "int32")), /index 0 .*size 0/],
    ] as [() => mx.Array, RegExp][]) {
      const y = make();
      expect(() => mx.eval(y)).toThrow(re);
      expect(() => mx.eval(y)).toThrow(Error);
    }
    expect(x.index(mx.array([-3], "int32")).tolist()).toEqual([[0, 1, 2, 3]]); // still usable
  });

  it("an index out of range is an error wherever it is read: wide and long index arrays, int64 and uint64 values", () => {
    const big = mx.zeros([64, 300]);
    const bad = Int32Array.from({ length: 64 * 300 }, (_, i) => i % 300);
    bad[64 * 300 - 1] = 300; // the very last index of the last line (a worker thread reads it)
    const idx = mx.array(bad).reshape([64, 300]);
    expect(() => mx.eval(mx.takeAlongAxis(big, idx, 1))).toThrow(/gather.*index 300 is out of bounds for an axis of size 300/);
    expect(() => mx.eval(mx.putAlongAxis(big, idx, 1, 1))).toThrow(/scatter.*index 300 is out of bounds for an axis of size 300/);
    expect(() => mx.eval(big.at(mx.slice(), idx.index(-1)).add(1))).toThrow(/scatter.*index 300 .*size 300/);
    expect(() => mx.eval(mx.take(x, mx.array([2n ** 62n], "int64")))).toThrow(/gather.*index 4611686018427387904 .*size 12/);
    expect(() => mx.eval(mx.take(x, mx.array([2n ** 64n - 1n], "uint64")))).toThrow(/gather.*index 18446744073709551615 .*size 12/);
    expect(() => mx.eval(mx.take(x, mx.array([-(2n ** 63n)], "int64")))).toThrow(/gather.*index -9223372036854775808 .*size 12/);
    expect(mx.takeAlongAxis(big, mx.zeros([64, 2], "int32"), 1).shape).toEqual([64, 2]); // still usable
  });

  it("an empty gather or scatter reads no index, so none is out of range (NumPy's take)", () => {
    const I = (data: number[], shape = [data.length]) => mx.reshape(mx.array(Int32Array.from(data)), shape);
    // no indices at all
    expect(mx.take(x, I([]), 1).shape).toEqual([3, 0]);
    expect(mx.take(x, I([])).shape).toEqual([0]);
    expect(x.index(I([]), I([])).shape).toEqual([0]);
    expect(x.at(I([])).add(1).tolist()).toEqual(x.tolist());
    expect(mx.putAlongAxis(x, I([], [3, 0]), 5, 1).tolist()).toEqual(x.tolist());
    // gathering nothing from an empty axis
    expect(mx.take(mx.zeros([0]), I([])).shape).toEqual([0]);
    expect(mx.take(mx.zeros([2, 0]), I([], [0, 3]), 1).shape).toEqual([2, 0, 3]);
    expect(mx.takeAlongAxis(mx.zeros([2, 0]), I([], [2, 0]), 1).shape).toEqual([2, 0]);
    expect(mx.zeros([0]).at(I([])).set(1).shape).toEqual([0]);
    expect(mx.zeros([0, 2]).index(I([])).shape).toEqual([0, 2]);
    // a zero-size result: the indices (even ones out of range) are never applied to an element
    expect(mx.take(mx.zeros([0, 3]), I([5, 9]), 1).shape).toEqual([0, 2]);
    expect(mx.takeAlongAxis(mx.zeros([0, 3]), I([7], [1, 1]), 1).shape).toEqual([0, 1]);
    expect(mx.putAlongAxis(mx.zeros([0, 3]), I([7], [1, 1]), 1, 1).shape).toEqual([0, 3]);
    expect(mx.zeros([3, 0]).index(I([8])).shape).toEqual([1, 0]);
    expect(mx.zeros([0, 3]).at(mx.slice(), I([9])).add(1).shape).toEqual([0, 3]);
    expect(mx.zeros([3, 0]).at(I([9])).add(1).shape).toEqual([3, 0]);
    // but an index that is read is checked, even against an empty axis
    expect(() => mx.eval(mx.takeAlongAxis(mx.zeros([0, 3]), I([0], [1, 1]), 0))).toThrow(/gather.*index 0 .*size 0/);
    expect(() => mx.eval(mx.zeros([0]).at(I([0])).add(1))).toThrow(/scatter.*index 0 .*size 0/);
  });

  it("bad arguments throw at the call, naming the op", () => {
    expect(() => mx.take(x, mx.array([1.5]), 0)).toThrow(/take: indices must have an integer dtype; got float32/);
    expect(() => mx.take(x, 1.5 as number)).toThrow(TypeError);
    expect(() => mx.take(x, mx.array([0], "int32"), 2)).toThrow(/take: axis 2 is out of range/);
    expect(() => x.index(mx.array([true, false, true]))).toThrow(/index: .*integer dtype; got bool \(boolean masks/);
    expect(() => x.index(mx.array([0, 1], "int32"), mx.array([0, 1, 2], "int32"))).toThrow(/index: shapes \[2\] and \[3\] cannot be broadcast/);
    expect(() => x.index(0, 0, mx.array([0], "int32"))).toThrow(/index: too many indices/);
    expect(() => x.index(5, mx.array([0], "int32"))).toThrow(RangeError);
    expect(() => x.at(mx.array([0], "int32")).divide(2)).toThrow(/at\(\.\.\.\)\.divide: needs a floating-point array; got float32|int32/);
    expect(() => mx.zeros([2], "int32").at(0).divide(2)).toThrow(TypeError);
    expect(() => x.at(mx.array([0, 1], "int32")).set(mx.zeros([3]))).toThrow(/at\(\.\.\.\)\.set: values of shape \[3\] cannot be broadcast to the indexed shape \[2,4\]/);
    expect(() => mx.takeAlongAxis(x, mx.array([0], "int32"), 0)).toThrow(/takeAlongAxis: indices must have as many axes as x/);
    expect(() => mx.putAlongAxis(x, mx.array([[0], [1]], "int32"), 1, 1)).toThrow(/putAlongAxis: indices of shape \[2,1\] cannot be broadcast to \[3,1\]/);
  });
});

describe("gradients (float64, finite differences)", () => {
  const r = rng(5);
  const X = () => arr(ref([3, 4], () => r() * 4 - 2));
  const I = (data: number[], shape = [data.length]) => mx.reshape(mx.array(Int32Array.from(data)), shape);
  it("take, index, takeAlongAxis", () => {
    checkDerivatives((x) => mx.take(x, I([0, 2, 2, -1]), 1), [X()]);
    checkDerivatives((x) => mx.take(x, I([11, 0, 11])), [X()]);
    checkDerivatives((x) => x.index(I([1, 1, -1], [3, 1]), mx.slice(), null), [X()]);
    checkDerivatives((x) => x.index(I([2, 0, 2]), I([1, -1, 1])), [X()]);
    checkDerivatives((x) => mx.takeAlongAxis(x, I([0, 3, 3, 1, 2, 2], [3, 2]), 1), [X()]);
  });
  it("at(...) updates, with repeated indices where they accumulate", () => {
    const rep = I([0, 2, 0]);
    const v = () => arr(ref([3, 4], () => r() * 2 + 0.5));
    for (const op of ["add", "subtract", "multiply", "divide", "maximum", "minimum"]) {
      checkDerivatives((x, u) => (x.at(rep) as unknown as Record<string, (u: mx.Array) => mx.Array>)[op](u), [X(), v()]);
    }
    checkDerivatives((x, u) => x.at(I([2, 0])).set(u.index(mx.slice(0, 2))), [X(), v()]);
    checkDerivatives((x, u) => x.at(mx.slice(), I([3, 1, 3])).multiply(u.index(mx.slice(), mx.slice(0, 3))), [X(), v()]);
    checkDerivatives((x, u) => mx.putAlongAxis(x, I([3, 0, 1], [3, 1]), u.index(mx.slice(), mx.slice(0, 1)), 1), [X(), v()]);
  });
  it("multiply with zeros among repeated updates", () => {
    const x = arr(ref([4], (i) => i + 1)), u = arr({ shape: [3], data: Float64Array.of(0, 2, 0) });
    const g = grad((u: mx.Array) => mx.sum(x.at(I([1, 1, 2])).multiply(u)), { argnums: 0 });
    // out[1] = 2 * u0 * u1, out[2] = 3 * u2: d/du0 = 2 * u1 = 4, d/du1 = 2 * u0 = 0, d/du2 = 3.
    expect(g(u).tolist()).toEqual([4, 0, 3]);
  });
  it("vmap of index and at with batched indices", () => {
    const xs = mx.arange(24, "float64").reshape([2, 3, 4]);
    const is = mx.array([[0, -1], [2, 2]], "int32");
    const got = vmap((x: mx.Array, i: mx.Array) => x.index(i, mx.slice(0, 2)))(xs, is);
    expect(got.tolist()).toEqual([[[0, 1], [8, 9]], [[20, 21], [20, 21]]]);
    const added = vmap((x: mx.Array, i: mx.Array) => x.at(i).add(1))(xs, is);
    expect(flat(added.sum([1, 2]))).toEqual([66 + 8, 210 + 8]);
  });
});
