/**
 * Fused elementwise chains on the gpu (native/src/cuda/fused.cu, kernels generated and compiled
 * with NVRTC): random chains over float32/float64 operands that broadcast, are transposed views,
 * are scalars, start at an unaligned offset, or are bools (comparisons, where, casts) give bit
 * for bit what the separate gpu kernels give (fusion off), long arrays run the 16-byte pack loop
 * and its tail, and the benchmark's chain matches a float64 loop.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as mx from "@tessera/core";
import { compile } from "@tessera/transforms";
import { rng } from "../helpers/reference.js";
import { HAS_GPU, GPU_INDEX, expectClose } from "./util.js";

const { evalStats, setFusion, native } = mx.internal;
type A = mx.Array;
type F = "float32" | "float64";

type Op = (p: (k: number) => A) => A;
// Each op reads earlier values (p) and returns a value of the chain's shape and dtype.
const OPS: Op[] = [
  (p) => mx.add(p(0), p(1)),
  (p) => mx.subtract(p(0), p(1)),
  (p) => mx.multiply(p(0), p(1)),
  (p) => mx.divide(p(0), mx.add(mx.abs(p(1)), 0.5)),
  (p) => mx.maximum(p(0), p(1)),
  (p) => mx.minimum(p(0), 0.25),
  (p) => mx.tanh(p(0)),
  (p) => mx.exp(mx.minimum(p(0), 10)),
  (p) => mx.sigmoid(p(0)),
  (p) => mx.sqrt(mx.abs(p(0))),
  (p) => mx.square(p(0)),
  (p) => mx.negative(p(0)),
  (p) => mx.where(mx.greater(p(0), p(1)), p(1), mx.multiply(p(0), 3)),
  (p) => mx.multiply(p(0), mx.astype(mx.less(p(1), 0), p(0).dtype)),
  (p) => mx.where(mx.logicalAnd(mx.isnan(p(0)), mx.greater(p(1), 0)), 0, p(1)),
  (p) => mx.logaddexp(p(0), p(1)),
  (p) => mx.add(mx.multiply(p(0), p(1)), 0.125), // a multiply then an add: no FMA across steps
  (p) => mx.remainder(p(0), mx.add(mx.abs(p(1)), 1)),
  (p) => mx.erf(mx.log1p(mx.abs(p(0)))),
];

function seeded(seed: number, shape: number[], dtype: F): A {
  return mx.random.normal(shape, { key: mx.random.key(seed), dtype });
}

/** Leaves of one chain [R, C]: contiguous, a broadcast row and column, a transposed view, an
 * unaligned slice (offset 1 element), a scalar constant. */
function leaves(seed: number, dtype: F, R: number, C: number): A[] {
  const full = seeded(seed, [R, C], dtype);
  const row = seeded(seed + 1, [C], dtype);
  const col = seeded(seed + 2, [R, 1], dtype);
  const t = mx.transpose(seeded(seed + 3, [C, R], dtype));
  const flat = seeded(seed + 4, [R * C + 1], dtype);
  const xs = [full, row, col, t, flat];
  mx.eval(xs);
  const shifted = mx.reshape(flat.index(mx.slice(1, null)), [R, C]);
  return [...xs.slice(0, 4).map((x) => mx.broadcastTo(x, [R, C])), shifted, mx.full([R, C], 1.5, dtype)];
}

function build(ops: number[], picks: number[][], seed: number, dtype: F, kept: number[], R: number, C: number): A[] {
  const vals = leaves(seed, dtype, R, C);
  const base = vals.length;
  ops.forEach((o, i) => vals.push(OPS[o]((k) => vals[picks[i][k] % vals.length])));
  return [vals[vals.length - 1], ...kept.map((k) => vals[base + (k % ops.length)])];
}

/** Bit for bit (NaN equals NaN; -0 differs from +0). */
function expectIdentical(plain: A[], fused: A[]): void {
  plain.forEach((p, i) => {
    const a = p.toTypedArray(), b = fused[i].toTypedArray();
    expect(b.length).toBe(a.length);
    for (let j = 0; j < a.length; j++) if (!Object.is(a[j], b[j])) expect([i, j, b[j]]).toEqual([i, j, a[j]]);
  });
}

/**
 * Evaluates make() with fusion off, then on (twice: an evaluation runs a chain fused from the
 * second time it meets it); returns both results and the fused run's stats.
 */
function bothWays(make: () => A[]): { plain: A[]; fused: A[]; fusedCount: number } {
  setFusion(false);
  const plain = make();
  mx.eval(plain);
  setFusion(true);
  mx.eval(make());
  evalStats.reset();
  const fused = make();
  mx.eval(fused);
  return { plain, fused, fusedCount: evalStats.fused };
}

// Each new chain layout is compiled once by NVRTC (~0.1 s): generous timeouts.
const SLOW = 180_000;

describe.skipIf(!HAS_GPU)("gpu: fused elementwise chains (NVRTC)", () => {
  let prev: mx.Device;
  beforeAll(() => {
    prev = mx.defaultDevice();
    mx.setDefaultDevice(mx.gpu);
  });
  afterAll(() => {
    setFusion(true);
    mx.setDefaultDevice(prev);
  });

  it("the gpu runs fused instructions (NVRTC found)", () => {
    expect(native.supports(GPU_INDEX, native.opTable().indexOf("fused"))).toBe(true);
    const x = seeded(1, [1000], "float32");
    mx.eval(x);
    const { plain, fused, fusedCount } = bothWays(() => [mx.multiply(mx.tanh(mx.add(mx.multiply(x, 0.5), 0.25)), mx.exp(x))]);
    expect(fusedCount).toBe(1);
    expect(native.describe(fused[0].handle).device).toBe(GPU_INDEX);
    expectIdentical(plain, fused);
  }, SLOW);

  it("an evaluation runs a new chain unfused once, then fused; a compiled function fuses it at once", () => {
    const x = seeded(7, [333], "float32");
    mx.eval(x);
    const chain = (x: A) => mx.multiply(mx.sigmoid(mx.subtract(mx.multiply(x, 1.75), 0.125)), mx.abs(x));
    const fusedIn = (run: () => A) => {
      evalStats.reset();
      const y = run();
      mx.eval(y);
      return [evalStats.fused, y] as const;
    };
    const [first, a] = fusedIn(() => chain(x));
    const [second, b] = fusedIn(() => chain(x));
    expect([first, second]).toEqual([0, 1]);
    expectIdentical([a], [b]);
    const g = compile((x: A) => mx.divide(chain(x), 3));
    const [traced, c] = fusedIn(() => g(x));
    expect(traced).toBe(1);
    expectIdentical([mx.divide(a, 3)], [c]);
  }, SLOW);

  it("give what the separate gpu kernels give, bit for bit (random chains)", () => {
    let fusedTotal = 0;
    fc.assert(
      fc.property(
        fc.array(fc.nat(OPS.length - 1), { minLength: 1, maxLength: 24 }),
        fc.array(fc.array(fc.nat(40), { minLength: 2, maxLength: 2 }), { minLength: 24, maxLength: 24 }),
        fc.nat(1000),
        fc.constantFrom("float32" as const, "float64" as const),
        fc.array(fc.nat(40), { maxLength: 3 }),
        fc.constantFrom([33, 70], [1, 1], [3, 5], [64, 129]),
        (ops, picks, seed, dtype, kept, [R, C]) => {
          const { plain, fused, fusedCount } = bothWays(() => build(ops, picks, seed, dtype, kept, R, C));
          fusedTotal += fusedCount;
          expectIdentical(plain, fused);
        },
      ),
      { numRuns: 80, seed: 11 },
    );
    expect(fusedTotal).toBeGreaterThan(40);
  }, SLOW);

  it("long arrays: the pack loop, its tail and bool outputs, float32 and float64", () => {
    for (const dtype of ["float32", "float64"] as F[]) {
      for (const n of [1 << 20, (1 << 20) + 3]) {
        const [x, y] = [seeded(7, [n], dtype), seeded(8, [n], dtype)];
        mx.eval(x, y);
        const { plain, fused, fusedCount } = bothWays(() => {
          const m = mx.greater(x, y); // kept: a bool output of the chain
          const z = mx.where(m, mx.sigmoid(x), mx.multiply(mx.exp(y), 0.5));
          return [mx.add(mx.multiply(z, x), y), m];
        });
        expect(fusedCount).toBe(1);
        expectIdentical(plain, fused);
      }
    }
  }, SLOW);

  it("runs Adam's update as one instruction with three outputs", () => {
    const [p, g, m] = [1, 2, 3].map((s) => seeded(s, [512, 300], "float32"));
    const v = mx.abs(seeded(4, [512, 300], "float32"));
    mx.eval(p, g, m, v);
    const { plain, fused, fusedCount } = bothWays(() => {
      const m2 = mx.add(mx.multiply(m, 0.9), mx.multiply(g, 0.1));
      const v2 = mx.add(mx.multiply(v, 0.999), mx.multiply(mx.square(g), 0.001));
      return [m2, v2, mx.subtract(p, mx.divide(mx.multiply(m2, 1e-3), mx.add(mx.sqrt(v2), 1e-8)))];
    });
    expect(fusedCount).toBe(1);
    expect(evalStats.ops.get("mul")).toBe(6);
    expectIdentical(plain, fused);
  }, SLOW);

  it("batches one chain over parameters of several sizes into one kernel, bit for bit", () => {
    // Sizes around the pack width and the block size, a scalar, and more members than one launch holds.
    const sizes = [[512, 300], [300], [7, 3], [1], [64, 65], [4097], ...Array.from({ length: 70 }, (_, k) => [k + 2])];
    const state = sizes.map((sh, k) => [1, 2, 3].map((s) => seeded(10 * k + s, sh, "float32")).concat(mx.abs(seeded(10 * k + 4, sh, "float32"))));
    mx.eval(state.flat());
    const { plain, fused, fusedCount } = bothWays(() =>
      state.flatMap(([p, g, m, v]) => {
        const m2 = mx.add(mx.multiply(m, 0.9), mx.multiply(g, 0.1));
        const v2 = mx.add(mx.multiply(v, 0.999), mx.multiply(mx.square(g), 0.001));
        return [m2, v2, mx.subtract(p, mx.divide(mx.multiply(m2, 1e-3), mx.add(mx.sqrt(v2), 1e-8)))];
      }),
    );
    expect(fusedCount).toBe(1);
    expectIdentical(plain, fused);
    // An unaligned member (a view at an odd offset) runs the batch member by member.
    const [a, b] = [seeded(90, [1001], "float32"), seeded(91, [1000], "float32")];
    mx.eval(a, b);
    const odd = a.index(mx.slice(1));
    const r = bothWays(() => [mx.add(mx.multiply(odd, 3), 1), mx.add(mx.multiply(b, 3), 1)]);
    expect(r.fusedCount).toBe(1);
    expectIdentical(r.plain, r.fused);
  }, SLOW);

  it("one generated kernel serves new sizes and constants", () => {
    const run = (n: number, a: number) => {
      const x = seeded(n, [n], "float64");
      mx.eval(x);
      return bothWays(() => [mx.subtract(mx.multiply(mx.cos(x), a), mx.abs(x))]);
    };
    for (const [n, a] of [[100, 2], [5000, -3], [7, 0.5]] as const) {
      const { plain, fused, fusedCount } = run(n, a);
      expect(fusedCount).toBe(1);
      expectIdentical(plain, fused);
    }
  }, SLOW);

  it("tanh(x * a + b) * exp(x) matches a float64 loop", () => {
    const next = rng(3);
    const n = 4099;
    const xs = Float64Array.from({ length: n }, () => 4 * next() - 2);
    for (const dtype of ["float32", "float64"] as F[]) {
      const x = mx.array(xs, dtype);
      const xv = Float64Array.from(x.astype("float64").toTypedArray() as Float64Array);
      const chain = () => mx.multiply(mx.tanh(mx.add(mx.multiply(x, 0.5), 0.25)), mx.exp(x));
      mx.eval(chain()); // fused from the second evaluation on
      evalStats.reset();
      const y = chain();
      mx.eval(y);
      expect(evalStats.fused).toBe(1);
      const ref = Float64Array.from(xv, (v) => Math.tanh(v * 0.5 + 0.25) * Math.exp(v));
      const tol = dtype === "float32" ? 1e-6 : 1e-14;
      expectClose(y, ref, tol, tol, `${dtype} chain`);
    }
  }, SLOW);
});
