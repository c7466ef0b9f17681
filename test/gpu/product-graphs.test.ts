/**
 * @file Products replayed from recorded graphs (native/src/cuda/matmul_lt.cc): a product called
 * again with the same plan and the same buffers launches a CUDA graph recorded from an earlier
 * call instead of calling cuBLASLt. The buffers hold new values on each call (the allocator hands
 * the same blocks back), so a replay that reused anything but the pointers would give the previous
 * call's result. Each result is checked against a float64 product computed here, and the
 * counters show that replays did serve the calls.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { HAS_GPU, on } from "./util.js";

type A = mx.Array;
const { native } = mx.internal;
const replayed = () => native.counters()["gpu.productGraphsReplayed"] ?? 0;
// The unit roundoff of the products' inputs: TF32 keeps 10 bits of mantissa where it is allowed.
const U = process.env.TESSERA_ALLOW_TF32 === "1" ? 2 ** -11 : 2 ** -24;

/** a [M, K] @ b [K, N] (+ bias [N]) in float64, with the bound of a float32 dot product per entry. */
function reference(a: A, b: A, bias: A | null, M: number, K: number, N: number): { value: Float64Array; bound: Float64Array } {
  const av = a.astype("float64").toTypedArray() as Float64Array, bv = b.astype("float64").toTypedArray() as Float64Array;
  const cv = bias ? (bias.astype("float64").toTypedArray() as Float64Array) : null;
  const value = new Float64Array(M * N), bound = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = cv ? cv[j] : 0, m = cv ? Math.abs(cv[j]) : 0;
      for (let k = 0; k < K; k++) {
        s += av[i * K + k] * bv[k * N + j];
        m += Math.abs(av[i * K + k] * bv[k * N + j]);
      }
      value[i * N + j] = s;
      bound[i * N + j] = (K + 2) * U * m;
    }
  return { value, bound };
}

function expectWithin(got: A, ref: { value: Float64Array; bound: Float64Array }, what: string): void {
  const g = got.toTypedArray() as Float32Array;
  expect(g.length, what).toBe(ref.value.length);
  for (let i = 0; i < g.length; i++)
    if (!(Math.abs(g[i] - ref.value[i]) <= ref.bound[i]))
      expect.fail(`${what}: element ${i} is ${g[i]}, expected ${ref.value[i]} within ${ref.bound[i]}`);
}

describe.skipIf(!HAS_GPU)("gpu: products replayed from recorded graphs", () => {
  for (const [M, K, N] of [[64, 96, 48], [256, 512, 10], [33, 1000, 17]]) {
    it(`${M}x${K}x${N}: new values in the same buffers, call after call`, () => {
      on(mx.gpu, () => {
        const b = mx.random.normal([K, N], { key: mx.random.key(K) });
        mx.eval(b);
        const before = replayed();
        for (let step = 0; step < 8; step++) {
          // A fresh operand per step, freed with the result: the next step gets the same blocks.
          const a = mx.random.normal([M, K], { key: mx.random.key(step) });
          mx.eval(a);
          const c = mx.matmul(a, b);
          mx.eval(c);
          expectWithin(c, reference(a, b, null, M, K, N), `step ${step}`);
          c.dispose();
          a.dispose();
        }
        expect(replayed() - before, "calls served by a recorded graph").toBeGreaterThan(0);
        b.dispose();
      });
    });
  }

  it("a product with a bias folded in: new biases in the same buffer", () => {
    on(mx.gpu, () => {
      const [M, K, N] = [128, 64, 32];
      const a = mx.random.normal([M, K], { key: mx.random.key(1) }), b = mx.random.normal([K, N], { key: mx.random.key(2) });
      mx.eval(a, b);
      const before = replayed();
      for (let step = 0; step < 8; step++) {
        const bias = mx.random.normal([N], { key: mx.random.key(100 + step) });
        mx.eval(bias);
        const c = mx.add(mx.matmul(a, b), bias);  // one product with a bias epilogue (epilogue.ts)
        mx.eval(c);
        expectWithin(c, reference(a, b, bias, M, K, N), `step ${step}`);
        c.dispose();
        bias.dispose();
      }
      expect(replayed() - before, "calls served by a recorded graph").toBeGreaterThan(0);
    });
  });

  it("calls that differ in one operand only: each gets its own operands", () => {
    on(mx.gpu, () => {
      // Two live arrays per role take turns while everything else stays put (the output gets the
      // same block each step), so a replay keyed without that operand would read the other one.
      const [M, K, N] = [96, 80, 40];
      const normal = (shape: number[], k: number) => mx.random.normal(shape, { key: mx.random.key(k) });
      const as = [normal([M, K], 1), normal([M, K], 2)], bs = [normal([K, N], 3), normal([K, N], 4)];
      const biases = [normal([N], 5), normal([N], 6)];
      mx.eval(...as, ...bs, ...biases);
      const before = replayed();
      for (const role of ["a", "b", "bias"] as const) {
        for (let step = 0; step < 8; step++) {
          const a = as[role === "a" ? step % 2 : 0], b = bs[role === "b" ? step % 2 : 0];
          const bias = role === "bias" ? biases[step % 2] : null;
          const c = bias ? mx.add(mx.matmul(a, b), bias) : mx.matmul(a, b);
          mx.eval(c);
          expectWithin(c, reference(a, b, bias, M, K, N), `${role} alternating, step ${step}`);
          c.dispose();
        }
      }
      expect(replayed() - before, "calls served by a recorded graph").toBeGreaterThan(0);
    });
  });

  it("products queued back to back, each reading the one before, then read once", () => {
    on(mx.gpu, () => {
      // x <- x @ w, 20 times, one evaluation each with the previous result freed: two blocks take
      // turns, so the same calls repeat while earlier ones may still be running. w is a signed
      // permutation and x holds small integers, so every product is exact (TF32 or not).
      const n = 64;
      const perm = mx.random.permutation(n, { key: mx.random.key(7) });
      const signs = mx.subtract(mx.multiply(mx.random.bernoulli(0.5, [n], { key: mx.random.key(8) }).astype("float32"), 2), 1);
      const w = mx.multiply(mx.equal(mx.expandDims(mx.arange(n), 1), mx.expandDims(perm, 0)).astype("float32"), signs);
      let x = mx.random.randint(-100, 100, [n, n], { key: mx.random.key(9) }).astype("float32");
      mx.eval(w, x);
      const wc = mx.copy(w, { device: mx.cpu });
      let ref = mx.copy(x, { device: mx.cpu });
      mx.eval(wc, ref);  // (before x is freed)
      const before = replayed();
      for (let step = 0; step < 20; step++) {
        const next = mx.matmul(x, w);
        mx.eval(next);
        x.dispose();
        x = next;
        ref = on(mx.cpu, () => mx.matmul(ref, wc));
      }
      expect(Array.from(x.toTypedArray() as Float32Array)).toEqual(Array.from(ref.toTypedArray() as Float32Array));
      expect(replayed() - before, "calls served by a recorded graph").toBeGreaterThan(0);
    });
  });
});
