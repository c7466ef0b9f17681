/**
 * mx.linalg: every decomposition checked by its identities in float64 JS (A inv(A) = I within a
 * tolerance scaled by the condition number, Q R = A, U S Vt = A, A V = V diag(w), L L^T = A, with
 * orthonormality and triangularity) on random, ill-conditioned (cond 1e8) and rank-deficient
 * inputs built with known spectra, batched, in float32 and float64; solve against Gaussian
 * elimination in JS; norms against their formulas; gradients by finite differences; errors at the
 * call and at evaluation naming the op.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { checkGrads } from "@tessera/transforms/testing";
import { vmap } from "@tessera/transforms";
import { rng } from "../helpers/reference.js";

type M = number[][];
const EPS64 = 2 ** -52, EPS32 = 2 ** -23;

// ---- float64 matrix helpers (plain JS) ----
const zeros = (m: number, n: number): M => [...Array(m)].map(() => new Array(n).fill(0));
const eye = (n: number): M => zeros(n, n).map((r, i) => r.map((_, j) => (i === j ? 1 : 0)));
const T = (a: M): M => (a.length === 0 ? [] : a[0].map((_, j) => a.map((r) => r[j])));
const mul = (a: M, b: M): M => a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const sub = (a: M, b: M): M => a.map((r, i) => r.map((v, j) => v - b[i][j]));
const maxAbs = (a: M) => Math.max(0, ...a.flat().map(Math.abs));
const fro = (a: M) => Math.sqrt(a.flat().reduce((s, v) => s + v * v, 0));
const diag = (v: number[]): M => v.map((x, i) => v.map((_, j) => (i === j ? x : 0)));
const randM = (r: () => number, m: number, n: number): M => [...Array(m)].map(() => [...Array(n)].map(() => r() * 2 - 1));

/** A random m x k matrix with orthonormal columns (Gram-Schmidt, twice). */
function orth(r: () => number, m: number, k: number): M {
  const cols: number[][] = [];
  while (cols.length < k) {
    let v = [...Array(m)].map(() => r() * 2 - 1);
    for (let pass = 0; pass < 2; pass++)
      for (const c of cols) {
        const d = c.reduce((s, x, i) => s + x * v[i], 0);
        v = v.map((x, i) => x - d * c[i]);
      }
    const nv = Math.hypot(...v);
    if (nv > 1e-3) cols.push(v.map((x) => x / nv));
  }
  return T(cols);
}
/** U diag(s) V^T with random orthonormal U (m x k) and V (n x k): singular values s (k = s.length). */
const withSpectrum = (r: () => number, m: number, n: number, s: number[]) => mul(mul(orth(r, m, s.length), diag(s)), T(orth(r, n, s.length)));
/** Q diag(w) Q^T: a symmetric matrix with eigenvalues w. */
function symmetric(r: () => number, w: number[]): M {
  const q = orth(r, w.length, w.length);
  const a = mul(mul(q, diag(w)), T(q));
  return a.map((row, i) => row.map((_, j) => (i >= j ? a[i][j] : a[j][i]))); // exactly symmetric
}
/** Singular values log-spaced from 1 down to 1/cond. */
const logSpaced = (k: number, cond: number) => [...Array(k)].map((_, i) => cond ** (-i / Math.max(1, k - 1)));

const toArr = (ms: M[], batch: number[], dtype: mx.DType = "float64") => {
  const [m, n] = [ms[0].length, ms[0][0]?.length ?? 0];
  return mx.reshape(mx.array(ms.flatMap((a) => a.flat()), dtype), [...batch, m, n]);
};
/** The matrices of x (its last two axes), as float64 JS. */
function fromArr(x: mx.Array): M[] {
  const [m, n] = x.shape.slice(-2);
  const flat = Array.from(mx.astype(x, "float64").reshape([-1]).tolist() as number[]);
  const out: M[] = [];
  for (let b = 0; b < flat.length / (m * n || 1); b++) out.push([...Array(m)].map((_, i) => flat.slice(b * m * n + i * n, b * m * n + (i + 1) * n)));
  return out;
}
const vecs = (x: mx.Array): number[][] => fromArr(mx.expandDims(x, -2)).map((r) => r[0]);
const expectBelow = (v: number, tol: number, what: string) => expect(v, `${what}: ${v} > ${tol}`).toBeLessThanOrEqual(tol);
const orthoErr = (q: M) => maxAbs(sub(mul(T(q), q), eye(q[0].length)));

const DTYPES = [["float64", EPS64], ["float32", EPS32]] as const;

describe("linalg.inv", () => {
  it.each(DTYPES)("A inv(A) = I on random batched matrices (%s)", (dtype, eps) => {
    const r = rng(1);
    const ms = [...Array(6)].map(() => randM(r, 4, 4));
    const x = mx.linalg.inv(toArr(ms, [2, 3], dtype));
    expect(x.shape).toEqual([2, 3, 4, 4]);
    expect(x.dtype).toBe(dtype);
    fromArr(x).forEach((xi, b) => {
      const cond = fro(ms[b]) * fro(xi);
      expectBelow(maxAbs(sub(mul(ms[b], xi), eye(4))), 50 * eps * cond, `entry ${b}`);
    });
  });

  it("is accurate to eps * cond on ill-conditioned matrices (cond 1e8, float64)", () => {
    const r = rng(2);
    for (const n of [3, 6]) {
      const a = withSpectrum(r, n, n, logSpaced(n, 1e8));
      const [x] = fromArr(mx.linalg.inv(toArr([a], [])));
      expectBelow(maxAbs(sub(mul(a, x), eye(n))), 100 * n * EPS64 * 1e8, `n=${n}`);
    }
  });

  it("keeps half dtypes (computed in float32) and handles 1x1 and empty batches", () => {
    expect(mx.linalg.inv(mx.array([[2, 0], [0, 4]], "float16")).dtype).toBe("float16");
    expect(mx.linalg.inv(mx.array([[4]], "float64")).tolist()).toEqual([[0.25]]);
    expect(mx.linalg.inv(mx.zeros([0, 3, 3])).shape).toEqual([0, 3, 3]);
  });

  it("a singular matrix is an Error at evaluation naming inv", () => {
    const x = mx.linalg.inv(mx.array([[[1, 0], [0, 1]], [[1, 2], [2, 4]]], "float64"));
    expect(() => x.tolist()).toThrow(/inv.*singular.*batch entry 1/);
  });
});

/** Gaussian elimination with partial pivoting, in JS: the reference for solve. */
function gaussSolve(a: M, b: M): M {
  const n = a.length, k = b[0].length;
  const aug = a.map((row, i) => [...row, ...b[i]]);
  for (let j = 0; j < n; j++) {
    let p = j;
    for (let i = j + 1; i < n; i++) if (Math.abs(aug[i][j]) > Math.abs(aug[p][j])) p = i;
    [aug[j], aug[p]] = [aug[p], aug[j]];
    for (let i = 0; i < n; i++) {
      if (i === j) continue;
      const f = aug[i][j] / aug[j][j];
      for (let c = j; c < n + k; c++) aug[i][c] -= f * aug[j][c];
    }
  }
  return aug.map((row, i) => row.slice(n).map((v) => v / aug[i][i]));
}

describe("linalg.solve", () => {
  it.each(DTYPES)("matches Gaussian elimination for matrix right-hand sides, batched (%s)", (dtype, eps) => {
    const r = rng(3);
    const as = [...Array(3)].map(() => randM(r, 4, 4)), bs = [...Array(3)].map(() => randM(r, 4, 2));
    const x = fromArr(mx.linalg.solve(toArr(as, [3], dtype), toArr(bs, [3], dtype)));
    x.forEach((xi, b) => {
      const want = gaussSolve(as[b], bs[b]);
      expectBelow(maxAbs(sub(xi, want)), 1e3 * eps * (1 + maxAbs(want)), `entry ${b}`);
    });
  });

  it("takes a vector b (NumPy: only when 1-D) and broadcasts batch axes", () => {
    const r = rng(4);
    const as = [...Array(2)].map(() => randM(r, 3, 3));
    const b = [0.5, -1, 2];
    const x = mx.linalg.solve(toArr(as, [2]), mx.array(b));
    expect(x.shape).toEqual([2, 3]);
    vecs(x).forEach((xi, k) => expectBelow(maxAbs(sub(T([xi]), gaussSolve(as[k], T([b])))), 1e-12, `vector ${k}`));
    // a [2, 1, 3, 3] and b [4, 3, 2]: batch [2, 4]
    const bs = [...Array(4)].map(() => randM(r, 3, 2));
    const y = mx.linalg.solve(toArr(as, [2, 1]), toArr(bs, [4]));
    expect(y.shape).toEqual([2, 4, 3, 2]);
    fromArr(y).forEach((yi, k) => expectBelow(maxAbs(sub(yi, gaussSolve(as[Math.floor(k / 4)], bs[k % 4]))), 1e-12, `entry ${k}`));
    expect(mx.linalg.solve(mx.array([[2, 0], [0, 4]], "float32"), mx.array([2, 2], "float64")).dtype).toBe("float64");
  });

  it("has a small backward error on ill-conditioned matrices (cond 1e8, float64)", () => {
    const r = rng(5);
    const a = withSpectrum(r, 5, 5, logSpaced(5, 1e8));
    const b = randM(r, 5, 1);
    const [x] = fromArr(mx.linalg.solve(toArr([a], []), toArr([b], [])));
    expectBelow(maxAbs(sub(mul(a, x), b)), 100 * EPS64 * fro(a) * fro(x), "residual");
  });

  it("errors: mismatched shapes at the call, singular at evaluation", () => {
    const a = mx.ones([3, 3]);
    expect(() => mx.linalg.solve(a, mx.ones([2]))).toThrow(TypeError);
    expect(() => mx.linalg.solve(a, mx.ones([2]))).toThrow(/linalg\.solve: b must have 3 rows .*got b \[2\]/);
    expect(() => mx.linalg.solve(a, mx.ones([4, 2]))).toThrow(/linalg\.solve: b must have 3 rows/);
    expect(() => mx.linalg.solve(mx.ones([2, 3, 3]), mx.ones([5, 3, 1]))).toThrow(/linalg\.solve: the batch axes .*cannot be broadcast/);
    expect(() => mx.linalg.solve(mx.ones([2, 3]), mx.ones([2]))).toThrow(/linalg\.solve: a must be square/);
    expect(() => mx.linalg.solve(a, mx.array(1))).toThrow(/linalg\.solve: b must be a vector/);
    expect(() => mx.linalg.solve(mx.ones([2, 2]), mx.ones([2])).tolist()).toThrow(/solve.*singular/);
  });
});

describe("linalg.cholesky", () => {
  it.each(DTYPES)("L L^T = A with L lower, batched (%s)", (dtype, eps) => {
    const r = rng(6);
    const as = [...Array(4)].map(() => symmetric(r, [0.5, 1, 2, 3, 4]));
    const ls = fromArr(mx.linalg.cholesky(toArr(as, [2, 2], dtype)));
    ls.forEach((l, b) => {
      l.forEach((row, i) => row.forEach((v, j) => j > i && expect(v).toBe(0)));
      l.forEach((row, i) => expect(row[i]).toBeGreaterThan(0));
      expectBelow(maxAbs(sub(mul(l, T(l)), as[b])), 20 * eps * maxAbs(as[b]), `entry ${b}`);
    });
  });

  it("reads only the lower triangle, and is accurate at cond 1e8 (float64)", () => {
    const r = rng(7);
    const a = symmetric(r, logSpaced(6, 1e8));
    const garbage = a.map((row, i) => row.map((v, j) => (j > i ? 1e3 : v)));
    const [l] = fromArr(mx.linalg.cholesky(toArr([garbage], [])));
    expectBelow(maxAbs(sub(mul(l, T(l)), a)), 50 * EPS64 * maxAbs(a), "L L^T - A");
  });

  it("a matrix that is not positive definite is an Error at evaluation naming cholesky", () => {
    expect(() => mx.linalg.cholesky(mx.array([[1, 2], [2, 1]])).tolist()).toThrow(/cholesky.*not positive definite/);
    expect(() => mx.linalg.cholesky(mx.array([[1, 0], [0, 0]], "float64")).tolist()).toThrow(/cholesky.*not positive definite/);
  });
});

describe("linalg.qr", () => {
  const check = (a: M, q: M, rr: M, eps: number, what: string) => {
    const [m, n] = [a.length, a[0].length], k = Math.min(m, n);
    expect([q.length, q[0].length, rr.length, rr[0].length]).toEqual([m, k, k, n]);
    expectBelow(orthoErr(q), 20 * m * eps, `${what}: Q^T Q - I`);
    rr.forEach((row, i) => {
      row.forEach((v, j) => j < i && expect(v).toBe(0));
      expect(row[i]).toBeGreaterThanOrEqual(0);
    });
    expectBelow(maxAbs(sub(mul(q, rr), a)), 20 * m * eps * Math.max(1, maxAbs(a)), `${what}: Q R - A`);
  };
  it.each(DTYPES)("Q orthonormal, R upper with diag >= 0, Q R = A: tall, square, wide, batched (%s)", (dtype, eps) => {
    const r = rng(8);
    for (const [m, n] of [[5,3], [4, 4], [3, 5], [1, 3], [3, 1]]) {
      const as = [...Array(3)].map(() => randM(r, m, n));
      const [q, rr] = mx.linalg.qr(toArr(as, [3], dtype));
      expect(q.dtype).toBe(dtype);
      const qs = fromArr(q), rs = fromArr(rr);
      as.forEach((a, b) => check(a, qs[b], rs[b], eps, `[${m},${n}] entry ${b}`));
    }
  });
  it("ill-conditioned (cond 1e8) and rank-deficient inputs (float64)", () => {
    const r = rng(9);
    const cases = [withSpectrum(r, 6, 4, logSpaced(4, 1e8)), withSpectrum(r, 6, 4, [3, 1, 0.5]), withSpectrum(r, 4, 6, [2, 1]), zeros(3, 3)];
    for (const a of cases) {
      const [q, rr] = mx.linalg.qr(toArr([a], []));
      check(a, fromArr(q)[0], fromArr(rr)[0], EPS64, `[${a.length},${a[0].length}]`);
    }
  });
});

describe("linalg.eigh", () => {
  const check = (a: M, w: number[], v: M, eps: number, what: string) => {
    for (let i = 1; i < w.length; i++) expect(w[i]).toBeGreaterThanOrEqual(w[i - 1]);
    expectBelow(orthoErr(v), 20 * a.length * eps, `${what}: V^T V - I`);
    expectBelow(maxAbs(sub(mul(a, v), mul(v, diag(w)))), 20 * a.length * eps * Math.max(1e-300, maxAbs(a)), `${what}: A V - V diag(w)`);
  };
  it.each(DTYPES)("A V = V diag(w), ascending, orthonormal, batched (%s)", (dtype, eps) => {
    const r = rng(10);
    const want = [[-2, -0.5, 0.25, 1, 3], [0.1, 0.2, 0.3, 0.4, 0.5], [-1, -1, 2, 2, 2]];
    const as = want.map((w) => symmetric(r, w));
    const [w, v] = mx.linalg.eigh(toArr(as, [3], dtype));
    expect(w.shape).toEqual([3, 5]);
    const ws = vecs(w), vs = fromArr(v);
    as.forEach((a, b) => {
      check(a, ws[b], vs[b], eps, `entry ${b}`);
      expectBelow(Math.max(...ws[b].map((x, i) => Math.abs(x - want[b][i]))), 50 * eps * 3, `entry ${b}: eigenvalues`);
    });
  });
  it("ill-conditioned (cond 1e8), rank-deficient and lower-triangle-only inputs (float64)", () => {
    const r = rng(11);
    for (const w of [logSpaced(6, 1e8), [0, 0, 0, 1, 2], [0, 0, 0]]) {
      const a = symmetric(r, w);
      const garbage = a.map((row, i) => row.map((x, j) => (j > i ? -7 : x)));
      const [wv, vv] = mx.linalg.eigh(toArr([garbage], []));
      const got = vecs(wv)[0];
      check(a, got, fromArr(vv)[0], EPS64, `w=${w}`);
      const sorted = [...w].sort((x, y) => x - y);
      expectBelow(Math.max(...got.map((x, i) => Math.abs(x - sorted[i]))), 50 * EPS64 * Math.max(...w.map(Math.abs), 1), "eigenvalues");
    }
  });
  it("each eigenvector's largest-magnitude entry is positive", () => {
    const [, v] = mx.linalg.eigh(toArr([symmetric(rng(12), [1, 2, 3, 4])], []));
    for (const col of T(fromArr(v)[0])) expect(col.reduce((b, x) => (Math.abs(x) > Math.abs(b) ? x : b), 0)).toBeGreaterThan(0);
  });
});

describe("linalg.svd", () => {
  const check = (a: M, u: M, s: number[], vt: M, eps: number, what: string) => {
    const [m, n] = [a.length, a[0].length], k = Math.min(m, n);
    expect([u.length, u[0].length, s.length, vt.length, vt[0].length]).toEqual([m, k, k, k, n]);
    for (let i = 0; i < k; i++) expect(s[i]).toBeGreaterThanOrEqual(i + 1 < k ? s[i + 1] : 0);
    expectBelow(orthoErr(u), 30 * Math.max(m, n) * eps, `${what}: U^T U - I`);
    expectBelow(orthoErr(T(vt)), 30 * Math.max(m, n) * eps, `${what}: V^T V - I`);
    expectBelow(maxAbs(sub(mul(mul(u, diag(s)), vt), a)), 30 * Math.max(m, n) * eps * Math.max(1e-300, maxAbs(a)), `${what}: U S Vt - A`);
    for (const col of T(u)) expect(col.reduce((b, x) => (Math.abs(x) > Math.abs(b) ? x : b), 0)).toBeGreaterThan(0);
  };
  it.each(DTYPES)("U S Vt = A with known singular values: tall, square, wide, batched (%s)", (dtype, eps) => {
    const r = rng(13);
    for (const [m, n] of [[5, 3], [4, 4], [3, 5], [1, 4], [4, 1]]) {
      const k = Math.min(m, n);
      const spectra = [...Array(2)].map((_, b) => [...Array(k)].map((_, i) => 3 - i * 0.5 - b * 0.1));
      const as = spectra.map((s) => withSpectrum(r, m, n, s));
      const [u, s, vt] = mx.linalg.svd(toArr(as, [2], dtype));
      expect(s.dtype).toBe(dtype);
      const us = fromArr(u), ss = vecs(s), vts = fromArr(vt);
      as.forEach((a, b) => {
        check(a, us[b], ss[b], vts[b], eps, `[${m},${n}] entry ${b}`);
        expectBelow(Math.max(...ss[b].map((x, i) => Math.abs(x - spectra[b][i]))), 50 * eps * 3, "singular values");
      });
    }
  });
  it("ill-conditioned (cond 1e8) and rank-deficient inputs (float64)", () => {
    const r = rng(14);
    const cases: [M, number[]][] = [
      [withSpectrum(r, 6, 5, logSpaced(5, 1e8)), logSpaced(5, 1e8)],
      [withSpectrum(r, 6, 4, [2, 1]), [2, 1, 0, 0]],
      [withSpectrum(r, 3, 6, [1.5]), [1.5, 0, 0]],
      [zeros(3, 2), [0, 0]],
    ];
    for (const [a, want] of cases) {
      const [u, s, vt] = mx.linalg.svd(toArr([a], []));
      const got = vecs(s)[0];
      check(a, fromArr(u)[0], got, fromArr(vt)[0], EPS64, `[${a.length},${a[0].length}]`);
      expectBelow(Math.max(...got.map((x, i) => Math.abs(x - want[i]))), 50 * EPS64 * 2, "singular values");
    }
  });
});

describe("linalg.norm", () => {
  const r = rng(15);
  const x = randM(r, 3, 4);
  const X = toArr([x], []);
  const flat = x.flat();
  const close = (got: mx.Array, want: number, tol = 1e-12) => expect(Math.abs((got.item() as number) - want)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want)));

  it("vector norms of every order, against their formulas", () => {
    const v = mx.array(flat, "float64");
    const abs = flat.map(Math.abs);
    close(mx.linalg.norm(v), Math.hypot(...flat));
    close(mx.linalg.norm(v, Infinity), Math.max(...abs));
    close(mx.linalg.norm(v, -Infinity), Math.min(...abs));
    close(mx.linalg.norm(mx.array([0, 3, 0, -2], "float64"), 0), 2);
    close(mx.linalg.norm(v, 1), abs.reduce((s, a) => s + a, 0));
    for (const p of [3, 0.5, -1, -2.5]) close(mx.linalg.norm(v, p), abs.reduce((s, a) => s + a ** p, 0) ** (1 / p));
  });

  it("along an axis, with keepdims; flattened by default for any rank", () => {
    const n1 = mx.linalg.norm(X, 1, 1);
    expect(n1.shape).toEqual([3]);
    (n1.tolist() as number[]).forEach((v, i) => expect(v).toBeCloseTo(x[i].reduce((s, a) => s + Math.abs(a), 0), 12));
    const k = mx.linalg.norm(X, 2, -2, { keepdims: true });
    expect(k.shape).toEqual([1, 4]);
    ((k.tolist() as number[][])[0]).forEach((v, j) => expect(v).toBeCloseTo(Math.hypot(...x.map((row) => row[j])), 12));
    const x3 = mx.reshape(mx.array(flat, "float64"), [2, 3, 2]);
    close(mx.linalg.norm(x3), Math.hypot(...flat));
    expect(mx.linalg.norm(x3, null, null, { keepdims: true }).shape).toEqual([1, 1, 1]);
    expect(mx.linalg.norm(mx.array([3, 4], "int32")).tolist()).toBe(5);
  });

  it("matrix norms: fro, nuc, +-inf, +-1, +-2 (batched over the other axis)", () => {
    const abs = x.map((row) => row.map(Math.abs));
    const rowSums = abs.map((row) => row.reduce((s, a) => s + a, 0));
    const colSums = T(abs).map((c) => c.reduce((s, a) => s + a, 0));
    close(mx.linalg.norm(X, "fro"), Math.hypot(...flat));
    close(mx.linalg.norm(X, Infinity), Math.max(...rowSums));
    close(mx.linalg.norm(X, -Infinity), Math.min(...rowSums));
    close(mx.linalg.norm(X, 1), Math.max(...colSums));
    close(mx.linalg.norm(X, -1), Math.min(...colSums));
    close(mx.linalg.norm(X, 1, [1, 0]), Math.max(...rowSums)); // axes swapped: the transpose's 1-norm
    const s = [2.5, 1.25, 0.5];
    const a = withSpectrum(r, 4, 3, s);
    const A = toArr([a, a.map((row) => row.map((v) => 2 * v))], [2]);
    for (const [ord, want] of [[2, 2.5], [-2, 0.5], ["nuc", 4.25]] as const) {
      const got = mx.linalg.norm(A, ord, [-2, -1]).tolist() as number[];
      expect(got[0]).toBeCloseTo(want, 12);
      expect(got[1]).toBeCloseTo(2 * want, 12);
    }
    // axes (0, 2) of a [4, 2, 3] array: a matrix per index of axis 1
    const B = mx.transpose(A, [1, 0, 2]);
    expect(mx.linalg.norm(B, "nuc", [0, 2], { keepdims: true }).shape).toEqual([1, 2, 1]);
    expect(mx.linalg.norm(mx.astype(A, "float32"), 2, [1, 2]).dtype).toBe("float32");
  });

  it("errors at the call naming linalg.norm", () => {
    expect(() => mx.linalg.norm(X, "fro", 0)).toThrow(RangeError);
    expect(() => mx.linalg.norm(X, "fro", 0)).toThrow(/linalg\.norm: .*vector norm/);
    expect(() => mx.linalg.norm(X, 3, [0, 1])).toThrow(/linalg\.norm: a matrix norm .*got 3/);
    expect(() => mx.linalg.norm(X, "max" as never)).toThrow(/linalg\.norm: ord must be a number, "fro" or "nuc"; got a string/);
    expect(() => mx.linalg.norm(mx.ones([2, 2, 2]), 2)).toThrow(/linalg\.norm: with ord and no axis, x must be 1-D or 2-D/);
    expect(() => mx.linalg.norm(X, 2, [0, 0])).toThrow(/linalg\.norm: axis repeats/);
    expect(() => mx.linalg.norm(X, 2, [0, 1, 2] as never)).toThrow(/linalg\.norm: axis must be/);
    expect(() => mx.linalg.norm(X, 2, 5)).toThrow(RangeError);
    expect(() => mx.linalg.norm(X, 2, 0, { keepdims: 1 } as never)).toThrow(/keepdims must be a boolean/);
  });
});

describe("shape and dtype errors at the call", () => {
  const ops = [
    ["linalg.inv", (a: mx.Array) => mx.linalg.inv(a)],
    ["linalg.cholesky", (a: mx.Array) => mx.linalg.cholesky(a)],
    ["linalg.eigh", (a: mx.Array) => mx.linalg.eigh(a)],
    ["linalg.qr", (a: mx.Array) => mx.linalg.qr(a)],
    ["linalg.svd", (a: mx.Array) => mx.linalg.svd(a)],
  ] as const;
  it.each(ops)("%s", (name, f) => {
    const re = (s: string) => new RegExp(`^${name.replace(".", "\\.")}: ${s}`);
    expect(() => f(mx.ones([3]))).toThrow(TypeError);
    expect(() => f(mx.ones([3]))).toThrow(re("a must have at least 2 dimensions .*got shape \\[3\\]"));
    if (name !== "linalg.qr" && name !== "linalg.svd") expect(() => f(mx.ones([2, 3]))).toThrow(re("a must be square .*got shape \\[2,3\\]"));
    expect(() => f(mx.ones([2, 2], "int32"))).toThrow(re("a must be floating point .*got int32"));
    expect(() => f([[1, 2], [3, 4]] as never)).toThrow(re("argument 1 must be an Array"));
  });
});

describe("gradients (float64, finite differences)", () => {
  const r = rng(16);
  const wellConditioned = (n: number) => toArr([withSpectrum(r, n, n, [2, 1.5, 1, 0.7].slice(0, n))], []);
  it("inv and solve", () => {
    checkGrads((a) => mx.linalg.inv(a), [wellConditioned(3)]);
    checkGrads((a, b) => mx.linalg.solve(a, b), [wellConditioned(3), toArr([randM(r, 3, 2)], [])]);
    checkGrads((a, b) => mx.linalg.solve(a, b), [wellConditioned(3), mx.array([1, -2, 0.5])]);
  });
  it("cholesky (the lower triangle)", () => {
    checkGrads((a) => mx.linalg.cholesky(a), [toArr([symmetric(r, [0.5, 1, 2])], [])]);
  });
  it("qr (m >= n)", () => {
    checkGrads((a) => mx.linalg.qr(a), [toArr([randM(r, 4, 3)], [])]);
    checkGrads((a) => mx.linalg.qr(a), [toArr([randM(r, 3, 3)], [])]);
  });
  it("eigh and svd (distinct values)", () => {
    checkGrads((a) => mx.linalg.eigh(a), [toArr([symmetric(r, [-1, 0.5, 2])], [])]);
    for (const [m, n] of [[3, 3], [4, 2], [2, 4]]) checkGrads((a) => mx.linalg.svd(a), [toArr([withSpectrum(r, m, n, [2, 1, 0.5].slice(0, Math.min(m, n)))], [])]);
  });
  it("norms through their composites", () => {
    const x = toArr([randM(r, 3, 3)], []);
    for (const ord of [undefined, 1, -1, Infinity, "fro", "nuc", 2, -2] as const) checkGrads((a) => mx.linalg.norm(a, ord), [x]);
    for (const ord of [2, 3, 0.5, Infinity]) checkGrads((a) => mx.linalg.norm(a, ord, 1), [x]);
  });
  it("vmap of a decomposition equals the batched one", () => {
    const as = toArr([symmetric(r, [1, 2, 3]), symmetric(r, [0.5, 4, 5])], [2]);
    const [w] = vmap((a: mx.Array) => mx.linalg.eigh(a))(as) as mx.Array[];
    expect(w.tolist()).toEqual(mx.linalg.eigh(as)[0].tolist());
  });
});
