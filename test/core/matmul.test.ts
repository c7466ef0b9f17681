/**
 * matmul against a float64 triple loop with NumPy's shape rules (1-D operands, batched and
 * broadcast batch axes), on sizes that are not multiples of any tile, K = 0, non-contiguous
 * operands, and float64 / float32 / float16 / bfloat16 / int32. The float tolerance is the
 * standard dot-product bound: (K + 2) u sum_k |a_ik b_kj| plus two units of the output dtype.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { broadcastShape, rng, sizeOf, unravel } from "../helpers/reference.js";
import { VIEWS, hostAt, hostFrom, makeBroadcastable, readFlat, viewOf, type Host } from "../helpers/host.js";
import { buildArray } from "../helpers/inputs.js";
import { roundTo } from "../helpers/special.js";

interface Product { shape: number[]; value: number[]; absSum: number[]; k: number }

/** NumPy matmul in float64, with sum_k |a b| per element for the error bound. */
function matmulRef(a: Host<number>, b: Host<number>): Product {
  const a2 = a.shape.length === 1 ? { shape: [1, a.shape[0]], data: a.data } : a;
  const b2 = b.shape.length === 1 ? { shape: [b.shape[0], 1], data: b.data } : b;
  const [m, k] = a2.shape.slice(-2), [k2, n] = b2.shape.slice(-2);
  expect(k2).toBe(k);
  const batch = broadcastShape(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const full = [...batch, m, n];
  const value: number[] = [], absSum: number[] = [];
  for (let o = 0; o < sizeOf(full); o++) {
    const idx = unravel(o, full);
    const bi = idx.slice(0, -2), [i, j] = idx.slice(-2);
    let s = 0, t = 0;
    for (let p = 0; p < k; p++) {
      const x = hostAt(a2, [...bi, i, p]) * hostAt(b2, [...bi, p, j]);
      s += x;
      t += Math.abs(x);
    }
    value.push(s);
    absSum.push(t);
  }
  const shape = [...batch];
  if (a.shape.length !== 1) shape.push(m);
  if (b.shape.length !== 1) shape.push(n);
  return { shape, value, absSum, k };
}

const UNIT: Record<string, number> = { float64: 2 ** -53, float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };

function expectProduct(y: mx.Array, r: Product, d: mx.DType, what: string): void {
  expect(y.shape, what).toEqual(r.shape);
  expect(y.dtype, what).toBe(d);
  const got = readFlat(y).map(Number);
  const acc = d === "float64" ? UNIT.float64 : UNIT.float32; // halves accumulate in float32
  got.forEach((v, i) => {
    if (!mx.isFloating(d)) {
      if (v !== r.value[i]) expect.fail(`${what}: element ${i} expected ${r.value[i]}, got ${v}`);
      return;
    }
    const e = roundTo(d, r.value[i]);
    const tol = (r.k + 2) * acc * r.absSum[i] + 2 * UNIT[d] * Math.abs(e);
    if (!(Math.abs(v - e) <= tol)) expect.fail(`${what}: element ${i} of [${r.shape}] expected ${e}, got ${v} (tol ${tol})`);
  });
}

function randomOperand(shape: number[], d: mx.DType, next: () => number): Host<number> {
  return hostFrom(shape, () => (mx.isFloating(d) ? roundTo(d, 2 * next() - 1) : Math.floor(next() * 11) - 5));
}

const SHAPES: [number[], number[]][] = [
  [[5], [5]], [[4], [4, 3]], [[3, 4], [4]], [[2, 3], [3, 5]], [[2, 3, 4, 5], [5, 6]], [[5], [2, 5, 3]],
  [[2, 5, 3], [3]], [[1, 3, 4], [2, 4, 5]], [[2, 1, 3, 4], [5, 4, 2]], [[3, 0], [0, 4]], [[0, 3], [3, 4]],
  [[3, 4], [4, 0]], [[2, 0, 3], [3, 2]], [[0], [0]], [[1, 1], [1, 1]], [[17, 33], [33, 65]], [[129, 1], [1, 257]],
  [[1, 300], [300, 1]], [[65, 127], [127, 63]], [[3, 2, 19, 31], [1, 31, 9]],
];

describe("matmul", () => {
  describe.each(["float32", "float64", "float16", "bfloat16", "int32"] as mx.DType[])("%s", (d) => {
    it.each(SHAPES.map(([a, b]) => [`[${a}] @ [${b}]`, a, b] as const))("%s", (_name, sa, sb) => {
      const next = rng(sizeOf(sa) * 31 + sizeOf(sb));
      const a = randomOperand(sa, d, next), b = randomOperand(sb, d, next);
      const y = mx.matmul(buildArray(a, d), buildArray(b, d));
      expectProduct(y, matmulRef(a, b), d, `${d} [${sa}] @ [${sb}]`);
    });
  });

  it("K = 0 gives zeros of the output shape", () => {
    const y = mx.matmul(mx.zeros([3, 0]), mx.zeros([0, 4]));
    expect(y.shape).toEqual([3, 4]);
    expect(readFlat(y).every((v) => v === 0)).toBe(true);
    expect(mx.matmul(mx.zeros([2, 5, 0], "float64"), mx.zeros([0, 1], "float64")).tolist()).toEqual([[[0], [0], [0], [0], [0]], [[0], [0], [0], [0], [0]]]);
  });

  it("reads transposed, strided, reversed and broadcast operands", () => {
    const next = rng(77);
    for (const d of ["float32", "float64"] as mx.DType[]) {
      for (let v = 0; v < VIEWS.length; v++) {
        const [ka, kb] = [VIEWS[v], VIEWS[(v + 2) % VIEWS.length]];
        let a = randomOperand([2, 7, 9], d, next), b = randomOperand([2, 9, 5], d, next);
        if (ka === "broadcast") a = makeBroadcastable(a);
        if (kb === "broadcast") b = makeBroadcastable(b);
        const y = mx.matmul(viewOf(a, ka, (h) => buildArray(h, d), 1e30), viewOf(b, kb, (h) => buildArray(h, d), -1e30));
        expectProduct(y, matmulRef(a, b), d, `${d} ${ka} @ ${kb}`);
      }
      // the common case: a.T and a row slice
      const a = randomOperand([33, 17], d, next), b = randomOperand([34, 8], d, next);
      const at = hostFrom([17, 33], (i) => a.data[(i % 33) * 17 + Math.floor(i / 33)]);
      const bs = hostFrom([33, 8], (i) => b.data[i + 8]);
      const y = mx.matmul(buildArray(a, d).T, buildArray(b, d).index(mx.slice(1)));
      expectProduct(y, matmulRef(at, bs), d, `${d} a.T @ b[1:]`);
    }
  });

  it("a narrow product with a transposed left operand (a weight gradient of few outputs) is exact to the bound", () => {
    // cpu/gemm.cc runs N < (tile width) / 2 with a k-major A as its transpose, writing C through
    // a column stride: 10 and 7 columns (float32's and float64's AVX-512 tiles are 32 and 16
    // wide), rows not a multiple of any tile, and a strided B.
    const next = rng(91);
    for (const [d, n] of [["float32", 10], ["float64", 7], ["float32", 3]] as [mx.DType, number][]) {
      const a = randomOperand([45, 70], d, next), b = randomOperand([45, 2 * n], d, next);
      const at = hostFrom([70, 45], (i) => a.data[(i % 45) * 70 + Math.floor(i / 45)]);
      const bs = hostFrom([45, n], (i) => b.data[Math.floor(i / n) * 2 * n + 2 * (i % n)]);
      const y = mx.matmul(buildArray(a, d).T, buildArray(b, d).index(mx.slice(), mx.slice(0, null, 2)));
      expectProduct(y, matmulRef(at, bs), d, `${d} a.T @ b[:, ::2], ${n} columns`);
    }
  });

  it("bfloat16 products of the sizes AMX tiles take: every operand layout, edges, views and batches, to the bound", () => {
    // cpu/gemm_bf16.cc where the CPU has AMX (isa.test.ts runs the other paths on these layouts): row
    // and column counts that fill no tile or every tile (rows a multiple of 32 are read in place),
    // k with a partial last step of 32, k past one and two steps of 512 (partial sums kept between
    // them), more columns than rows (the transposed product), every transposed layout, strided and
    // reversed views (the packers' general paths), and batches.
    const next = rng(93);
    const d: mx.DType = "bfloat16";
    const build = (h: Host<number>) => buildArray(h, d);
    const transposedOf = (h: Host<number>) => {
      const [r, c] = h.shape;
      return buildArray(hostFrom([c, r], (i) => h.data[(i % r) * c + Math.floor(i / r)]), d).T;
    };
    for (const [m, k, n] of [[64, 64, 64], [96, 70, 160], [45, 100, 70], [160, 33, 48], [32, 600, 32], [64, 1100, 40]]) {
      const a = randomOperand([m, k], d, next), b = randomOperand([k, n], d, next);
      const r = matmulRef(a, b);
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
        const y = mx.matmul(ta ? transposedOf(a) : build(a), tb ? transposedOf(b) : build(b));
        expectProduct(y, r, d, `[${m},${k}] @ [${k},${n}]${ta ? ", a transposed" : ""}${tb ? ", b transposed" : ""}`);
      }
    }
    for (const [ka, kb] of [["strided", "negStrided"], ["reversed", "strided"], ["negStrided", "reversed"]] as const) {
      const a = randomOperand([40, 70], d, next), b = randomOperand([70, 64], d, next);
      const y = mx.matmul(viewOf(a, ka, build, 1e30), viewOf(b, kb, build, -1e30));
      expectProduct(y, matmulRef(a, b), d, `${ka} @ ${kb}`);
    }
    const xa = randomOperand([3, 40, 64], d, next), w = randomOperand([64, 48], d, next);
    expectProduct(mx.matmul(build(xa), build(w)), matmulRef(xa, w), d, "[3,40,64] @ [64,48]");
    const qa = randomOperand([2, 64, 96], d, next), ka = randomOperand([2, 96, 32], d, next);
    expectProduct(mx.matmul(build(qa), build(ka)), matmulRef(qa, ka), d, "[2,64,96] @ [2,96,32]");
  });

  it("bfloat16 products of AMX sizes carry infinities and NaNs as float64 does", () => {
    const next = rng(94);
    const a = randomOperand([64, 64], "bfloat16", next), b = randomOperand([64, 64], "bfloat16", next);
    a.data[3 * 64 + 5] = Infinity; // row 3: +-inf where b's row 5 is nonzero
    a.data[7 * 64 + 1] = NaN; // row 7: NaN everywhere
    a.data[9 * 64 + 2] = Infinity; // row 9: inf - inf = NaN where column j has b[2][j] and b[4][j] of opposite signs
    a.data[9 * 64 + 4] = Infinity;
    const got = readFlat(mx.matmul(buildArray(a, "bfloat16"), buildArray(b, "bfloat16"))).map(Number);
    const r = matmulRef(a, b);
    got.forEach((v, i) => {
      const e = r.value[i];
      if (Number.isFinite(e)) return; // finite elements are checked against the bound above
      if (Number.isNaN(e) ? !Number.isNaN(v) : v !== e) expect.fail(`element ${i}: expected ${e}, got ${v}`);
    });
    expect(r.value.filter((v) => Number.isNaN(v)).length).toBeGreaterThan(64);
  });

  it("promotes mixed dtypes and has a method form", () => {
    const next = rng(78);
    const a = randomOperand([3, 4], "int32", next), b = randomOperand([4, 2], "float32", next);
    expectProduct(mx.matmul(buildArray(a, "int32"), buildArray(b, "float32")), matmulRef(a, b), "float32", "int32 @ float32");
    expectProduct(buildArray(a, "float16").matmul(buildArray(b, "float64")), matmulRef(a, b), "float64", "float16 @ float64");
  });

  it("rejects mismatched inner dimensions, unbroadcastable batches and 0-d operands at the call", () => {
    expect(() => mx.matmul(mx.zeros([2, 3]), mx.zeros([4, 5]))).toThrow(/matmul.*\[2,3\].*\[4,5\]/);
    expect(() => mx.matmul(mx.zeros([2, 2, 3]), mx.zeros([3, 3, 4]))).toThrow(TypeError);
    expect(() => mx.matmul(mx.zeros([]), mx.zeros([3]))).toThrow(TypeError);
    expect(() => mx.matmul(mx.zeros([3]), mx.zeros([4]))).toThrow(TypeError);
  });
});

describe("an unbatched operand folds into one GEMM", () => {
  const { evalStats } = mx.internal;
  it("[B, T, D] @ [D, E]: the product and the weight's gradient are one GEMM each, with no batch reduction", async () => {
    const { grad } = await import("@tessera/transforms");
    const next = rng(91);
    const x = randomOperand([3, 5, 4], "float64", next), w = randomOperand([4, 6], "float64", next);
    const xa = buildArray(x, "float64"), wa = buildArray(w, "float64");
    expectProduct(mx.matmul(xa, wa), matmulRef(x, w), "float64", "[3,5,4] @ [4,6]");
    const g = grad((v: mx.Array) => mx.sum(mx.matmul(xa, v)))(wa);
    evalStats.reset();
    mx.eval(g);
    expect(evalStats.ops.get("matmul")).toBe(1);
    expect(evalStats.ops.get("reduceSum") ?? 0).toBeLessThanOrEqual(1); // the ones of sum's cotangent, not a batch reduction
    // d/dW sum(x W) = sum over rows of x, repeated across the columns
    const rowSum = [0, 1, 2, 3].map((d) => x.data.filter((_, i) => i % 4 === d).reduce((a, b) => a + b, 0));
    const got = g.tolist() as number[][];
    got.forEach((row, d) => row.forEach((v) => expect(v).toBeCloseTo(rowSum[d], 12)));
  });

  it("vmap over the rows' batch with an unmapped weight runs one GEMM", async () => {
    const { vmap } = await import("@tessera/transforms");
    const next = rng(92);
    const x = randomOperand([4, 3, 5], "float64", next), w = randomOperand([5, 2], "float64", next);
    const xa = buildArray(x, "float64"), wa = buildArray(w, "float64");
    for (const [inAxes, xs] of [[0, xa], [2, mx.transpose(xa, [1, 2, 0])]] as const) {
      const y = vmap((r: mx.Array) => mx.matmul(r, wa), { inAxes })(xs);
      evalStats.reset();
      mx.eval(y);
      expect(evalStats.ops.get("matmul")).toBe(1);
      expectProduct(y, matmulRef(x, w), "float64", `vmap inAxes ${inAxes}`);
    }
    // unmapped left operand: the batch folds into the columns
    const cols = mx.transpose(xa.index(0), [1, 0]); // [5, 3]: three mapped columns
    const yw = vmap((v: mx.Array) => mx.matmul(wa.T, v.reshape([5, 1])), { inAxes: 1, outAxes: 0 })(cols);
    evalStats.reset();
    mx.eval(yw);
    expect(evalStats.ops.get("matmul")).toBe(1);
    const stacked = mx.stack([0, 1, 2].map((j) => mx.matmul(wa.T, cols.index(mx.slice(), mx.slice(j, j + 1)))));
    expect(yw.shape).toEqual([3, 2, 1]);
    expect(yw.tolist()).toEqual(stacked.tolist());
  });
});
