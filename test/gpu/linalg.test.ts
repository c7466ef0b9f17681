/**
 * Linear algebra and non-float matmul on the gpu (native/src/cuda/linalg.cu, matmul_generic.cu):
 * cholesky, inv, solve, qr, eigh and svd (tall and wide) against the cpu backend on batched and
 * strided float32/float64 matrices (the same algorithms in double, so results agree to rounding),
 * the cpu's errors for singular and indefinite matrices naming the batch entry, and integer, bool
 * and half matmul bit for bit.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { rng } from "../helpers/reference.js";
import { HAS_GPU, bothDevices, expectClose, expectSame, on } from "./util.js";

type A = mx.Array;
const next = rng(5);
function data(shape: number[], d: mx.DType): A {
  const n = shape.reduce((a, b) => a * b, 1);
  return mx.array(Array.from({ length: n }, () => 2 * next() - 1), "float64").astype(d).reshape(shape);
}
function close(pairs: [A, A][], tol: number, what: string): void {
  pairs.forEach(([c, g], k) => expectClose(g.astype("float64"), c.astype("float64").toTypedArray() as Float64Array, tol, tol, `${what} #${k}`));
}
/** Symmetric positive definite [..., n, n]: a a^T + n I. */
const spd = (a: A) => mx.add(mx.matmul(a, mx.swapaxes(a, -1, -2)), mx.multiply(mx.eye(a.shape[a.ndim - 1], undefined, undefined, a.dtype), a.shape[a.ndim - 1]));

describe.skipIf(!HAS_GPU)("gpu: linalg against the cpu", () => {
  for (const d of ["float64", "float32"] as const) {
    const tol = d === "float64" ? 1e-10 : 2e-5;
    it(`${d}: cholesky, inv, solve, qr, eigh, svd on batched and strided matrices`, () => {
      const a = data([3, 5, 5], d), s = spd(data([2, 3, 4, 4], d)), b = data([3, 5, 2], d);
      const t = mx.swapaxes(data([3, 5, 5], d), -1, -2);
      close(bothDevices(() => mx.linalg.cholesky(s)), tol, "cholesky");
      close(bothDevices(() => mx.linalg.inv(a)), tol * 10, "inv");
      close(bothDevices(() => mx.linalg.inv(t)), tol * 10, "inv of a transposed matrix");
      close(bothDevices(() => mx.linalg.solve(a, b)), tol * 10, "solve");
      for (const shape of [[2, 6, 4], [2, 4, 6], [3, 3]]) {
        const x = data(shape, d);
        close(bothDevices(() => mx.linalg.qr(x)), tol, `qr ${shape}`);
        close(bothDevices(() => mx.linalg.svd(x)), tol, `svd ${shape}`);
      }
      close(bothDevices(() => mx.linalg.eigh(s)), tol * 10, "eigh");
      close(bothDevices(() => mx.linalg.svd(mx.zeros([2, 3, 2], d))), tol, "svd of zeros (null directions)");
    });
  }
  // Matrices of 32 rows or more take a block of threads each for cholesky, inv, solve and qr
  // (linalg.cu's Team): the same algorithm in the same order per element, so the cpu's results
  // to rounding, and the residuals of float64 products small.
  for (const [n, batch] of [[32, 3], [100, 2], [257, 1]] as const) {
    it(`float64 ${batch} x ${n} x ${n}: cholesky, inv, solve and qr by a block of threads per matrix`, () => {
      const a = data([batch, n, n], "float64"), s = spd(data([batch, n, n], "float64")), b = data([batch, n, 3], "float64");
      const tol = 1e-9;
      close(bothDevices(() => mx.linalg.cholesky(s)), tol, "cholesky");
      close(bothDevices(() => mx.linalg.inv(a)), tol * 100, "inv");
      close(bothDevices(() => mx.linalg.solve(a, b)), tol * 100, "solve");
      close(bothDevices(() => mx.linalg.qr(a)), tol, "qr");
      const tall = data([n + 5, n], "float64"), wide = data([n, n + 7], "float64");
      close(bothDevices(() => mx.linalg.qr(tall)), tol, "qr, tall");
      close(bothDevices(() => mx.linalg.qr(wide)), tol, "qr, wide");
      on(mx.gpu, () => {
        const eye = mx.broadcastTo(mx.eye(n, undefined, undefined, "float64"), [batch, n, n]);
        const residual = (x: A, y: A) => mx.max(mx.abs(mx.subtract(x, y))).item() as number;
        const l = mx.linalg.cholesky(s), [q, r] = mx.linalg.qr(a);
        expect(residual(mx.matmul(l, mx.swapaxes(l, -1, -2)), s), "L L^T - A").toBeLessThan(1e-10 * n);
        expect(residual(mx.matmul(a, mx.linalg.inv(a)), eye), "A inv(A) - I").toBeLessThan(1e-8 * n);
        expect(residual(mx.matmul(a, mx.linalg.solve(a, b)), b), "A solve(A, b) - b").toBeLessThan(1e-8 * n);
        expect(residual(mx.matmul(q, r), a), "Q R - A").toBeLessThan(1e-12 * n);
        expect(residual(mx.matmul(mx.swapaxes(q, -1, -2), q), eye), "Q^T Q - I").toBeLessThan(1e-12 * n);
      });
    });
  }
  it("float32, and more matrices than blocks (each block takes several in turn)", () => {
    const a = data([1500, 32, 32], "float32"), s = spd(data([1500, 32, 32], "float32")), b = data([1500, 32, 2], "float32");
    close(bothDevices(() => [mx.linalg.cholesky(s), mx.linalg.inv(a), mx.linalg.solve(a, b), ...mx.linalg.qr(a)]), 1e-3, "float32 x 1500");
    const x = data([2, 70, 40], "float32");
    close(bothDevices(() => mx.linalg.qr(x)), 2e-5, "float32 qr 70 x 40");
  });
  it("a singular matrix of 64 rows: the cpu's error, from the block of threads", () => {
    const rows = data([64, 64], "float64");  // row 20 zero: exactly rank 63, so the last pivot is 0
    const sing = mx.where(mx.equal(mx.arange(64).reshape([-1, 1]), 20), 0, rows);
    for (const d of [mx.cpu, mx.gpu]) expect(() => on(d, () => mx.linalg.inv(sing)).tolist(), `inv on ${d.type}`).toThrow(/singular \(pivot 64 is zero\)/);
    const indef = mx.multiply(mx.eye(64, undefined, undefined, "float64"), mx.where(mx.equal(mx.arange(64), 50), -1, 1));
    for (const d of [mx.cpu, mx.gpu]) expect(() => on(d, () => mx.linalg.cholesky(indef)).tolist(), `cholesky on ${d.type}`).toThrow(/leading minor 51 is not positive/);
  });

  it("singular and indefinite matrices are the cpu's errors, naming the batch entry", () => {
    const sing = mx.array([[[1, 0], [0, 1]], [[1, 2], [2, 4]]], "float64");
    const indef = mx.array([[[4, 0], [0, 1]], [[1, 0], [0, -1]]], "float64");
    for (const d of [mx.cpu, mx.gpu]) {
      expect(() => on(d, () => mx.linalg.inv(sing)).tolist(), `inv on ${d.type}`).toThrow(/inv.*singular \(pivot 2 is zero\) \(batch entry 1\)/);
      expect(() => on(d, () => mx.linalg.cholesky(indef)).tolist(), `cholesky on ${d.type}`).toThrow(/not positive definite \(leading minor 2 is not positive\) \(batch entry 1\)/);
    }
    close(bothDevices(() => mx.linalg.inv(mx.array([[2, 1], [1, 3]], "float64"))), 1e-14, "the gpu keeps working after an error");
  });
});

describe.skipIf(!HAS_GPU)("gpu: matmul of integers, bools and half types", () => {
  it("equals the cpu's bit for bit (integers wrap; halves accumulate in double and round once)", () => {
    for (const d of ["int32", "int64", "uint8", "int8", "uint16", "float16", "bfloat16"] as mx.DType[]) {
      const a = mx.array(Array.from({ length: 2 * 3 * 7 }, (_, i) => ((i * 37) % 23) - 11), "float64").astype(d).reshape([2, 3, 7]);
      const b = mx.array(Array.from({ length: 7 * 5 }, (_, i) => ((i * 13) % 19) - 9), "float64").astype(d).reshape([7, 5]);
      expectSame(bothDevices(() => mx.matmul(a, b)), `matmul ${d}`);
      expectSame(bothDevices(() => mx.matmul(mx.swapaxes(a, -1, -2), a)), `matmul ${d}, transposed operand`);
    }
    const p = mx.greater(data([4, 6], "float32"), 0), q = mx.greater(data([6, 3], "float32"), 0.5);
    expectSame(bothDevices(() => mx.matmul(p, q)), "matmul bool");
    const big = mx.full([2, 300], 70000, "int32");
    expectSame(bothDevices(() => mx.matmul(big, mx.swapaxes(big, 0, 1))), "matmul int32 wrapping");
  });
});
