/**
 * Contractions: einsum (NumPy's subscripts: explicit and implicit output, ellipsis broadcasting,
 * diagonals and traces, several operands), tensordot, inner, outer and addmm, each against a
 * float64 reference written here with plain loops over every label; gradients by central finite
 * differences (checkGrads); errors at the call, naming the op.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { vmap } from "@tessera/transforms";
import { checkGrads } from "@tessera/transforms/testing";
import { at, expectClose, randomRef, rng, sizeOf, unravel, type Ref } from "../helpers/reference.js";

type A = mx.Array;

/**
 * NumPy's einsum in float64 by brute force: every label (ellipsis axes named by their position
 * from the right) loops over its full size, products of the operands' elements (size-1 axes
 * broadcast) accumulate into the output element the output labels select.
 */
function einsumRef(subscripts: string, xs: Ref[]): Ref {
  const s = subscripts.replace(/\s+/g, "");
  const [lhs, rhs] = s.split("->");
  const ell = (k: number) => `#${k}`; // k-th ellipsis axis from the right
  const expand = (term: string, nd: number): string[] => {
    const [pre, post] = term.includes("...") ? term.split("...") : [term, null];
    if (post === null) return [...pre];
    const ne = nd - pre.length - post.length;
    return [...pre, ...Array.from({ length: ne }, (_, i) => ell(ne - 1 - i)), ...post];
  };
  const ins = lhs.split(",").map((t, i) => expand(t, xs[i].shape.length));
  const ne = Math.max(0, ...ins.map((l) => l.filter((c) => c.startsWith("#")).length));
  const ellOut = Array.from({ length: ne }, (_, i) => ell(ne - 1 - i));
  let out: string[];
  if (rhs === undefined) {
    const letters = ins.flat().filter((c) => !c.startsWith("#"));
    out = [...ellOut, ...[...new Set(letters)].filter((c) => letters.indexOf(c) === letters.lastIndexOf(c)).sort()];
  } else {
    const [pre, post] = rhs.includes("...") ? rhs.split("...") : [rhs, ""];
    out = [...pre, ...(rhs.includes("...") ? ellOut : []), ...post];
  }
  const size = new Map<string, number>();
  ins.forEach((labels, i) => labels.forEach((l, ax) => {
    const d = xs[i].shape[ax];
    if (!size.has(l) || size.get(l) === 1) size.set(l, d);
  }));
  const all = [...size.keys()];
  const outShape = out.map((l) => size.get(l)!);
  const data = new Float64Array(sizeOf(outShape));
  const loopShape = all.map((l) => size.get(l)!);
  for (let p = 0; p < sizeOf(loopShape); p++) {
    const idx = unravel(p, loopShape);
    const val = (l: string) => idx[all.indexOf(l)];
    let prod = 1;
    xs.forEach((x, i) => {
      let off = 0;
      ins[i].forEach((l, ax) => { off = off * x.shape[ax] + (x.shape[ax] === 1 ? 0 : val(l)); });
      prod *= x.data[off];
    });
    let o = 0;
    out.forEach((l, ax) => { o = o * outShape[ax] + val(l); });
    data[o] += prod;
  }
  return { shape: outShape, data };
}

/** A float64 tessera array of a reference. */
const toMx64 = (r: Ref) => mx.reshape(mx.array(r.data), r.shape);

const EINSUM_CASES: [string, number[][]][] = [
  ["ij,jk->ik", [[2, 3], [3, 4]]],
  ["bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]],
  ["ii", [[3, 3]]],
  ["ii->i", [[4, 4]]],
  ["i,j->ij", [[3], [4]]],
  ["ij->ji", [[2, 3]]],
  ["ij,jk", [[2, 3], [3, 4]]],
  ["...ij,...jk->...ik", [[2, 1, 3, 4], [3, 4, 2]]],
  ["ij->", [[3, 4]]],
  ["ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]]],
  ["i,i,i->", [[5], [5], [5]]],
  // more of NumPy's forms
  ["i,i", [[4], [4]]],
  ["ji,kj", [[3, 2], [4, 3]]],
  ["ij,ij->ij", [[2, 3], [2, 3]]],
  ["iij->ji", [[3, 3, 2]]],
  ["iii->i", [[3, 3, 3]]],
  ["ijji->", [[2, 3, 3, 2]]],
  ["bhqd,bhkd->bhqk", [[2, 2, 3, 4], [2, 2, 5, 4]]],
  ["i...j->j...i", [[2, 3, 4, 5]]],
  ["...", [[2, 3]]],
  ["...i,...i->...", [[3, 4], [2, 1, 4]]],
  ["Ab,bC->AC", [[2, 3], [3, 4]]],
  [" ij , jk -> ik ", [[2, 3], [3, 4]]],
  [",i->i", [[], [3]]],
  ["ij,j->i", [[3, 1], [4]]],
  ["abc,cd,dea->be", [[2, 3, 4], [4, 3], [3, 5, 2]]],
  ["ab,bc,cd,de->ae", [[2, 3], [3, 4], [4, 2], [2, 3]]],
  ["ab,cd,bc->ad", [[2, 3], [4, 5], [3, 4]]],
  ["ij,jk->ik", [[2, 0], [0, 3]]],
  ["ij,jk->", [[0, 2], [2, 3]]],
  ["i,j,k->kji", [[2], [3], [2]]],
];

describe("einsum", () => {
  it.each(EINSUM_CASES.map(([s, shapes]) => [`"${s}" on ${shapes.map((sh) => `[${sh}]`).join(", ")}`, s, shapes] as const))(
    "%s matches the float64 reference",
    (_name, subscripts, shapes) => {
      const next = rng(shapes.flat().reduce((a, b) => a * 7 + b, 3));
      const refs = shapes.map((sh) => randomRef(sh, next));
      const y = mx.einsum(subscripts, ...refs.map(toMx64));
      expect(y.dtype).toBe("float64");
      expectClose(y, einsumRef(subscripts, refs), { atol: 1e-12, rtol: 1e-12 });
    },
  );

  it("float32 and int32 operands: float32 within rounding, int32 exact, mixed promotes", () => {
    const next = rng(5);
    const a = randomRef([3, 4], next), b = randomRef([4, 2], next);
    const y = mx.einsum("ij,jk->ik", mx.array(a.data, "float32").reshape([3, 4]), mx.array(b.data, "float32").reshape([4, 2]));
    expect(y.dtype).toBe("float32");
    expectClose(y, einsumRef("ij,jk->ik", [a, b]), { atol: 1e-5, rtol: 1e-5 });
    const ia = mx.array([[1, 2, 3], [4, 5, 6]], "int32"), ib = mx.array([[1, -1], [2, 0], [0, 3]], "int32");
    const iy = mx.einsum("ij,jk->ik", ia, ib);
    expect(iy.dtype).toBe("int32");
    expect(iy.tolist()).toEqual([[5, 8], [14, 14]]);
    expect(mx.einsum("ii", mx.array([[1, 2], [3, 4]], "int32")).tolist()).toBe(5);
    expect(mx.einsum("i,i->", mx.array([1, 2], "int32"), mx.array([0.5, 0.25], "float64")).dtype).toBe("float64");
  });

  it("a single operand with nothing to do is returned as is, and the trailing { device } is the options", () => {
    const x = mx.array([[1, 2], [3, 4]]);
    expect(mx.einsum("ij->ij", x)).toBe(x);
    expect(mx.einsum("ij,jk->ik", x, x, { device: mx.cpu }).tolist()).toEqual([[7, 10], [15, 22]]);
  });

  it("contracts pairs in a greedy order: no outer product of unrelated operands", () => {
    // "ab,cd,bc->ad": contracting left to right would first build the [10,10,10,10] outer product.
    const next = rng(11);
    const refs = [[10, 10], [10, 10], [10, 10]].map((s) => randomRef(s, next));
    const y = mx.einsum("ab,cd,bc->ad", ...refs.map(toMx64));
    const seen = new Set<mx.Node>();
    const stack = [y.node!];
    for (let n = stack.pop(); n; n = stack.pop()) {
      if (seen.has(n)) continue;
      seen.add(n);
      for (const x of n.inputs) if (x.node) stack.push(x.node);
    }
    const products = [...seen].filter((n) => n.prim.name === "matmul");
    expect(products.length).toBe(2);
    for (const n of products) expect(n.inputs.map((x) => x.size)).toEqual([100, 100]);
    expectClose(y, einsumRef("ab,cd,bc->ad", refs), { atol: 1e-11, rtol: 1e-11 });
  });

  it("gradients match finite differences", () => {
    const cases: [string, number[][]][] = [
      ["ij,jk->ik", [[2, 3], [3, 4]]],
      ["bij,bjk->bik", [[2, 2, 3], [2, 3, 2]]],
      ["ii", [[3, 3]]],
      ["ii->i", [[3, 3]]],
      ["iij->ji", [[2, 2, 3]]],
      ["...ij,...jk->...ik", [[2, 1, 2, 3], [3, 3, 2]]],
      ["ij,jk,kl->il", [[2, 3], [3, 2], [2, 2]]],
      ["i,i,i->", [[4], [4], [4]]],
      ["i,j->ij", [[3], [2]]],
      ["ij,j->i", [[3, 1], [4]]],
    ];
    for (const [s, shapes] of cases) {
      const next = rng(17);
      const xs = shapes.map((sh) => toMx64(randomRef(sh, next)));
      checkGrads((...ys) => mx.einsum(s, ...ys), xs);
    }
  });

  it("vmap of einsum equals stacking einsum over the batch", () => {
    const next = rng(23);
    const a = toMx64(randomRef([3, 2, 4], next)), b = toMx64(randomRef([4, 5], next));
    const f = (x: A) => mx.einsum("ij,jk->ik", x, b);
    const batched = vmap(f)(a) as A;
    const stacked = mx.stack([0, 1, 2].map((i) => f(mx.index(a, i))));
    expectClose(batched, { shape: stacked.shape, data: Float64Array.from((stacked.reshape([-1]).tolist() as number[])) }, { atol: 1e-12 });
  });

  it("bad subscripts and shapes throw at the call, naming einsum", () => {
    const m = mx.ones([2, 3]), v = mx.ones([3]), sq = mx.ones([3, 3]);
    const bad: [() => unknown, ErrorConstructor | typeof mx.ShapeError, RegExp][] = [
      [() => mx.einsum("ij,jk->ik", m), TypeError, /^einsum: subscripts "ij,jk->ik" name 2 operand\(s\); got 1/],
      [() => mx.einsum("ij->ik", m), TypeError, /^einsum: invalid subscripts "ij->ik": output label "k" is not in any operand/],
      [() => mx.einsum("ij->ii", m), TypeError, /^einsum: invalid subscripts .*"i" appears more than once in the output/],
      [() => mx.einsum("i1", m), TypeError, /^einsum: invalid subscripts .*"1" in operand 1 is not a letter/],
      [() => mx.einsum("ij->j->i", m), TypeError, /^einsum: invalid subscripts .*"->" appears more than once/],
      [() => mx.einsum("i-j", m), TypeError, /^einsum: invalid subscripts .*"-" and ">" may appear only as "->"/],
      [() => mx.einsum("......", m), TypeError, /^einsum: invalid subscripts .*"\.\.\." appears more than once in operand 1/],
      [() => mx.einsum("...j->j", m), TypeError, /^einsum: invalid subscripts .*no "\.\.\." to keep them/],
      [() => mx.einsum("i.j", m), TypeError, /^einsum: invalid subscripts .*"\." in operand 1 is not a letter/],
      [() => mx.einsum("ijk", m), mx.ShapeError, /^einsum: operand 1 "ijk" has 3 label\(s\) but the operand has shape \[2,3\]/],
      [() => mx.einsum("ijk...", m), mx.ShapeError, /^einsum: operand 1 "ijk\.\.\." has 3 label\(s\) besides "\.\.\."/],
      [() => mx.einsum("ij,j->i", m, mx.ones([2])), mx.ShapeError, /^einsum: label "j" has size 2 in operand 2 but 3/],
      [() => mx.einsum("ii", m), mx.ShapeError, /^einsum: label "i" is repeated in operand 1 with different sizes/],
      [() => mx.einsum(42 as unknown as string, v), TypeError, /^einsum: subscripts must be a string .*got a number \(42\)/],
      [() => mx.einsum("i"), TypeError, /^einsum: at least one operand is required/],
      [() => mx.einsum("i,i", v, [1, 2, 3] as unknown as A), TypeError, /^einsum: argument 3 must be an Array; got a JS array/],
      [() => mx.einsum("ii", sq, { device: { type: "gpu", index: 7 } }), Error, /^einsum: device gpu:7 is not available/],
    ];
    for (const [f, cls, re] of bad) expect(f).toThrow(re), expect(f).toThrow(cls);
  });
});

/** tensordot by loops: axes pairs summed, a's free axes then b's. */
function tensordotRef(a: Ref, b: Ref, axA: number[], axB: number[]): Ref {
  const freeA = a.shape.map((_, i) => i).filter((i) => !axA.includes(i));
  const freeB = b.shape.map((_, i) => i).filter((i) => !axB.includes(i));
  const kShape = axA.map((i) => a.shape[i]);
  const shape = [...freeA.map((i) => a.shape[i]), ...freeB.map((i) => b.shape[i])];
  const data = new Float64Array(sizeOf(shape));
  for (let o = 0; o < data.length; o++) {
    const idx = unravel(o, shape);
    let s = 0;
    for (let p = 0; p < sizeOf(kShape); p++) {
      const kk = unravel(p, kShape);
      const ia = new Array(a.shape.length), ib = new Array(b.shape.length);
      freeA.forEach((ax, j) => (ia[ax] = idx[j]));
      freeB.forEach((ax, j) => (ib[ax] = idx[freeA.length + j]));
      axA.forEach((ax, j) => (ia[ax] = kk[j]));
      axB.forEach((ax, j) => (ib[ax] = kk[j]));
      s += at(a, ia) * at(b, ib);
    }
    data[o] = s;
  }
  return { shape, data };
}

describe("tensordot, inner, outer", () => {
  const next = rng(31);
  const r = (shape: number[]) => randomRef(shape, next);

  it("tensordot with a count (default 2) and with axis lists", () => {
    const a = r([2, 3, 4]), b = r([3, 4, 5]), c = r([4, 3]), d = r([5, 2, 3]);
    expectClose(mx.tensordot(toMx64(a), toMx64(b)), tensordotRef(a, b, [1, 2], [0, 1]), { atol: 1e-12 });
    const b1 = r([4, 5]);
    expectClose(mx.tensordot(toMx64(a), toMx64(b1), 1), tensordotRef(a, b1, [2], [0]), { atol: 1e-12 });
    expectClose(mx.tensordot(toMx64(a), toMx64(c), [[1, 2], [1, 0]]), tensordotRef(a, c, [1, 2], [1, 0]), { atol: 1e-12 });
    expectClose(mx.tensordot(toMx64(a), toMx64(d), [1, -1]), tensordotRef(a, d, [1], [2]), { atol: 1e-12 });
    expectClose(mx.tensordot(toMx64(a), toMx64(d), 0), tensordotRef(a, d, [], []), { atol: 1e-12 });
    const i = mx.tensordot(mx.array([[1, 2], [3, 4]], "int32"), mx.array([[1, 0], [0, 1]], "int32"));
    expect([i.dtype, i.item()]).toEqual(["int32", 5]);
  });

  it("inner over the last axes, 0-d operands multiplying", () => {
    const a = r([2, 3, 4]), b = r([5, 4]), v = r([4]);
    expectClose(mx.inner(toMx64(a), toMx64(b)), tensordotRef(a, b, [2], [1]), { atol: 1e-12 });
    expectClose(mx.inner(toMx64(v), toMx64(v)), tensordotRef(v, v, [0], [0]), { atol: 1e-12 });
    expect(mx.inner(mx.array([1, 2, 3]), mx.array([4, 5, 6])).item()).toBe(32);
    expect(mx.inner(mx.array(2), mx.array([1, 2])).tolist()).toEqual([2, 4]);
  });

  it("outer of the flattened operands", () => {
    const a = r([2, 2]), b = r([3]);
    const want = { shape: [4, 3], data: Float64Array.from({ length: 12 }, (_, i) => a.data[Math.floor(i / 3)] * b.data[i % 3]) };
    expectClose(mx.outer(toMx64(a), toMx64(b)), want, { atol: 1e-15 });
    expect(mx.outer(mx.array([1, 2]), mx.array([3, 4, 5])).tolist()).toEqual([[3, 4, 5], [6, 8, 10]]);
    expect(mx.outer(mx.array([1, 2], "int32"), mx.array(3, "int32")).tolist()).toEqual([[3], [6]]);
  });

  it("gradients match finite differences", () => {
    checkGrads((a, b) => mx.tensordot(a, b), [toMx64(r([2, 3, 2])), toMx64(r([3, 2, 2]))]);
    checkGrads((a, b) => mx.tensordot(a, b, [[0, 2], [2, 0]]), [toMx64(r([2, 3, 4])), toMx64(r([4, 2, 2]))]);
    checkGrads((a, b) => mx.inner(a, b), [toMx64(r([2, 3])), toMx64(r([4, 3]))]);
    checkGrads((a, b) => mx.outer(a, b), [toMx64(r([2, 2])), toMx64(r([3]))]);
  });

  it("errors name the op", () => {
    const a = mx.ones([2, 3]), b = mx.ones([4, 5]);
    expect(() => mx.tensordot(a, b)).toThrow(/^tensordot: contracted axes must have equal sizes; got axis 0 of \[2,3\] \(size 2\) with axis 0 of \[4,5\] \(size 4\)/);
    expect(() => mx.tensordot(a, b, 3)).toThrow(RangeError);
    expect(() => mx.tensordot(a, b, 3)).toThrow(/^tensordot: axes 3 exceeds the rank of an operand/);
    expect(() => mx.tensordot(a, b, -1)).toThrow(/^tensordot: axes must be non-negative; got -1/);
    expect(() => mx.tensordot(a, b, [[0], [0, 1]])).toThrow(/^tensordot: the axis lists must have equal lengths/);
    expect(() => mx.tensordot(a, b, [[5], [0]])).toThrow(/^tensordot: axis 5 is out of range/);
    expect(() => mx.tensordot(a, b, [[0, 0], [0, 1]])).toThrow(/^tensordot: axes for a \[0,0\] repeats an axis/);
    expect(() => mx.tensordot(a, b, "x" as unknown as number)).toThrow(/^tensordot: axes must be a non-negative integer or a pair/);
    expect(() => mx.inner(a, b)).toThrow(/^inner: the last dimensions must match; got \[2,3\] and \[4,5\]/);
    expect(() => mx.inner(a, b)).toThrow(mx.ShapeError);
    expect(() => mx.outer(a, 2 as unknown as A)).toThrow(/^outer: argument 2 must be an Array; got number/);
  });
});

/** alpha * (a @ b) + beta * c with broadcasting c, by loops (2-D a, b). */
function addmmRef(c: Ref, a: Ref, b: Ref, alpha: number, beta: number): Ref {
  const [m, k] = a.shape, n = b.shape[1];
  const data = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a.data[i * k + p] * b.data[p * n + j];
    data[i * n + j] = alpha * s + beta * at(c, [i, j]);
  }
  return { shape: [m, n], data };
}

describe("addmm", () => {
  const next = rng(41);
  const r = (shape: number[]) => randomRef(shape, next);

  it("alpha * (a @ b) + beta * c, c broadcast", () => {
    const a = r([3, 4]), b = r([4, 2]);
    for (const cs of [[3, 2], [2], [1, 2], [3, 1], []]) {
      const c = r(cs);
      for (const [alpha, beta] of [[1, 1], [0.5, 2], [-1.5, 0]]) {
        const y = mx.addmm(toMx64(c), toMx64(a), toMx64(b), { alpha, beta });
        expectClose(y, addmmRef(c, a, b, alpha, beta), { atol: 1e-12, rtol: 1e-12 });
      }
    }
    const c = r([3, 2]);
    expectClose(mx.addmm(toMx64(c), toMx64(a), toMx64(b)), addmmRef(c, a, b, 1, 1), { atol: 1e-12 });
  });

  it("batched and 1-D operands follow matmul's rules", () => {
    const a = r([2, 3, 4]), b = r([4, 2]), c = r([2]);
    const y = mx.addmm(toMx64(c), toMx64(a), toMx64(b), { alpha: 2, beta: 3 });
    expect(y.shape).toEqual([2, 3, 2]);
    const y0 = mx.index(y, 0), a0 = { shape: [3, 4], data: a.data.slice(0, 12) };
    expectClose(y0, addmmRef(c, a0, b, 2, 3), { atol: 1e-12 });
    const v = r([4]);
    const yv = mx.addmm(toMx64(c), toMx64(v), toMx64(b));
    expectClose(yv, { shape: [2], data: addmmRef(c, { shape: [1, 4], data: v.data }, b, 1, 1).data }, { atol: 1e-12 });
    expect(mx.addmm(mx.array([1], "int32"), mx.array([[1, 2]], "int32"), mx.array([[3], [4]], "int32")).tolist()).toEqual([[12]]);
  });

  it("gradients match finite differences", () => {
    checkGrads((c, a, b) => mx.addmm(c, a, b, { alpha: 0.7, beta: -1.3 }), [toMx64(r([2])), toMx64(r([3, 4])), toMx64(r([4, 2]))]);
  });

  it("errors name addmm", () => {
    const a = mx.ones([2, 3]), b = mx.ones([3, 4]);
    expect(() => mx.addmm(mx.ones([3, 4]), a, b)).toThrow(/^addmm: c of shape \[3,4\] cannot be broadcast to the product's shape \[2,4\]/);
    expect(() => mx.addmm(mx.ones([2, 2, 4]), a, b)).toThrow(mx.ShapeError);
    expect(() => mx.addmm(mx.ones([4]), a, a)).toThrow(/^addmm: inner dimensions must match; got \[2,3\] @ \[2,3\]/);
    expect(() => mx.addmm(mx.ones([4]), a, 1 as unknown as A)).toThrow(/^addmm: argument 3 must be an Array/);
    expect(() => mx.addmm(mx.ones([4]), a, b, { alpha: "2" as unknown as number })).toThrow(/^addmm: alpha must be a number; got a string/);
    expect(() => mx.addmm(mx.ones([4]), a, b, { beta: Infinity })).toThrow(RangeError);
    expect(() => mx.addmm(mx.ones([4]), a, b, { gamma: 1 } as unknown as mx.AddmmOptions)).toThrow(/^addmm: .*unknown option "gamma"/);
  });
});
