/**
 * The fusion pass (packages/core/src/eval/fuse.ts, native/src/cpu/fused.cc): chains of elementwise
 * ops run as one instruction and give bit for bit what the separate instructions give. Random
 * chains over float32/float64 operands that broadcast, are transposed views, are constants, or are
 * bools (comparisons, where, casts) are evaluated with fusion on and off; the results must be
 * identical, and values read outside a chain or kept must come out of it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as mx from "@tessera/core";
import { compile } from "@tessera/transforms";

const { evalStats, setFusion, setFusionMinCpu } = mx.internal;

type Op = (xs: mx.Array[], pick: (k: number) => mx.Array) => mx.Array;
// Each op reads earlier values (pick) and returns a value of the chain's shape and dtype.
const OPS: Op[] = [
  (_, p) => mx.add(p(0), p(1)),
  (_, p) => mx.subtract(p(0), p(1)),
  (_, p) => mx.multiply(p(0), p(1)),
  (_, p) => mx.divide(p(0), mx.add(mx.abs(p(1)), 0.5)),
  (_, p) => mx.maximum(p(0), p(1)),
  (_, p) => mx.minimum(p(0), 0.25),
  (_, p) => mx.tanh(p(0)),
  (_, p) => mx.exp(mx.minimum(p(0), 10)),
  (_, p) => mx.sigmoid(p(0)),
  (_, p) => mx.sqrt(mx.abs(p(0))),
  (_, p) => mx.square(p(0)),
  (_, p) => mx.negative(p(0)),
  (_, p) => mx.where(mx.greater(p(0), p(1)), p(1), mx.multiply(p(0), 3)),
  (_, p) => mx.multiply(p(0), mx.astype(mx.less(p(1), 0), p(0).dtype)),
  (_, p) => mx.where(mx.logicalAnd(mx.isnan(p(0)), mx.greater(p(1), 0)), 0, p(1)),
  (_, p) => mx.logaddexp(p(0), p(1)),
];

function seeded(seed: number, shape: number[], dtype: "float32" | "float64"): mx.Array {
  return mx.random.normal(shape, { key: mx.random.key(seed), dtype });
}

/** Leaves of one chain: a full operand, a row that broadcasts, a transposed view, a scalar. */
function leaves(seed: number, dtype: "float32" | "float64"): mx.Array[] {
  const full = seeded(seed, [33, 70], dtype);
  const row = seeded(seed + 1, [70], dtype);
  const col = seeded(seed + 2, [33, 1], dtype);
  const t = mx.transpose(seeded(seed + 3, [70, 33], dtype));
  const xs = [full, row, col, t];
  mx.eval(xs);
  return [...xs.map((x) => mx.broadcastTo(x, [33, 70])), mx.full([33, 70], 1.5, dtype)];
}

function build(ops: number[], picks: number[][], seed: number, dtype: "float32" | "float64", kept: number[]) {
  const vals = leaves(seed, dtype);
  ops.forEach((o, i) => {
    const pick = (k: number) => vals[picks[i][k] % vals.length];
    vals.push(OPS[o](vals, pick));
  });
  const out = [vals[vals.length - 1], ...kept.map((k) => vals[5 + (k % ops.length)])];
  return out;
}

describe("fused elementwise chains", () => {
  // The pass groups cpu nodes only (docs/cuda.md), so these tests run on the cpu whatever the
  // default device (TESSERA_DEFAULT_DEVICE=gpu makes it the gpu). A plain evaluation fuses cpu
  // chains only from 8,192 elements up (fuse.ts eagerCpuMin): these tests fuse every size.
  let prev: mx.Device;
  let prevMin: number;
  beforeAll(() => {
    prev = mx.defaultDevice();
    mx.setDefaultDevice(mx.cpu);
    prevMin = setFusionMinCpu(0);
  });
  afterAll(() => {
    mx.setDefaultDevice(prev);
    setFusionMinCpu(prevMin);
  });
  it("give what the separate instructions give, bit for bit (random chains)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(OPS.length - 1), { minLength: 1, maxLength: 24 }),
        fc.array(fc.array(fc.nat(40), { minLength: 2, maxLength: 2 }), { minLength: 24, maxLength: 24 }),
        fc.nat(1000),
        fc.constantFrom("float32" as const, "float64" as const),
        fc.array(fc.nat(40), { maxLength: 3 }),
        (ops, picks, seed, dtype, kept) => {
          setFusion(false);
          const plain = build(ops, picks, seed, dtype, kept);
          mx.eval(plain);
          setFusion(true);
          const fused = build(ops, picks, seed, dtype, kept);
          mx.eval(fused);
          plain.forEach((p, i) => {
            const a = p.toTypedArray(), b = fused[i].toTypedArray();
            expect(b.length).toBe(a.length);
            for (let j = 0; j < a.length; j++) if (!Object.is(a[j], b[j])) expect([i, j, b[j]]).toEqual([i, j, a[j]]);
          });
        },
      ),
      { numRuns: 60, seed: 7 },
    );
    setFusion(true);
  });

  it("float32 exp, tanh and sigmoid with the ops around them folded into one pass give the separate instructions' bits", () => {
    // fused.cc runs such a function with its constant-operand ops before it and its reader after
    // it on registers (vchain_f32): random bit patterns (NaN, infinities, subnormals), the ends of
    // the functions' ranges, and lengths that leave vector tails.
    let s = 99;
    const n = 4099;
    const f = new Float32Array(n), g = new Float32Array(n);
    const bits = new Uint32Array(f.buffer);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      if (i % 2) bits[i] = s;
      else f[i] = Math.sin(i * 0.731) * 6;
      g[i] = Math.cos(i * 0.37) * 4;
    }
    [0, -0, 1e-45, -1e-45, 88.72, -104, 89, 0.17, -0.35, 9, -9, 1e30, Infinity, -Infinity, NaN].forEach((v, i) => (f[i] = v));
    const chains: ((x: mx.Array, y: mx.Array) => mx.Array)[] = [
      (x) => mx.multiply(mx.tanh(mx.add(mx.multiply(x, 0.5), 0.25)), mx.exp(x)),
      (x, y) => mx.add(mx.sigmoid(mx.subtract(2, mx.divide(x, 3))), y),
      (x, y) => mx.divide(y, mx.exp(mx.subtract(x, 1))),
      (x) => mx.subtract(mx.exp(x), mx.tanh(mx.multiply(3, x))),
      (x) => mx.sigmoid(mx.subtract(mx.multiply(mx.add(mx.multiply(x, 1.7), -0.3), 2), 1)),
      (x) => mx.exp(mx.multiply(mx.tanh(x), 2)),
      (x, y) => mx.multiply(mx.tanh(mx.add(x, mx.full([1], 0.125))), y),
    ];
    for (const len of [n, 7, 16, 31, 1029]) {
      for (const [c, chain] of chains.entries()) {
        const run = (on: boolean) => {
          setFusion(on);
          const out = chain(mx.array(f.subarray(0, len)), mx.array(g.subarray(0, len)));
          mx.eval(out);
          return new Uint32Array((out.toTypedArray() as Float32Array).buffer);
        };
        const plain = run(false), fused = run(true);
        for (let i = 0; i < len; i++) if (plain[i] !== fused[i]) expect([c, len, i, fused[i]]).toEqual([c, len, i, plain[i]]);
      }
    }
    setFusion(true);
  });

  it("stores a large chain's output around the caches with the same bits", () => {
    // fused.cc streams the stores of a chain's outputs from 32 MiB up (an odd length: a tail too).
    const n = (32 << 20) / 4 + 13;
    const x = mx.random.uniform(-3, 3, [n], { key: mx.random.key(5) });
    mx.eval(x);
    const chain = () => mx.multiply(mx.tanh(mx.add(mx.multiply(x, 0.5), 0.25)), mx.exp(x));
    setFusion(false);
    const plain = chain();
    mx.eval(plain);
    setFusion(true);
    evalStats.reset();
    const fused = chain();
    mx.eval(fused);
    expect(evalStats.fused).toBe(1);
    const a = new Uint32Array((plain.toTypedArray() as Float32Array).buffer), b = new Uint32Array((fused.toTypedArray() as Float32Array).buffer);
    let diff = -1;
    for (let i = 0; i < n && diff < 0; i++) if (a[i] !== b[i]) diff = i;
    expect(diff).toBe(-1);
    for (const t of [x, plain, fused]) t.dispose();
  });

  /** Adam's update of one parameter per shape, unfused then fused: one instruction, the same bits. */
  function adamUpdates(shapes: number[][]): void {
    const state = shapes.map((sh, k) => [1, 2, 3].map((s) => seeded(10 * k + s, sh, "float32")).concat(mx.abs(seeded(10 * k + 4, sh, "float32"))));
    mx.eval(state.flat());
    const step = () =>
      state.flatMap(([p, g, m, v]) => {
        const m2 = mx.add(mx.multiply(m, 0.9), mx.multiply(g, 0.1));
        const v2 = mx.add(mx.multiply(v, 0.999), mx.multiply(mx.square(g), 0.001));
        return [m2, v2, mx.subtract(p, mx.divide(mx.multiply(m2, 1e-3), mx.add(mx.sqrt(v2), 1e-8)))];
      });
    setFusion(false);
    const plain = step();
    mx.eval(plain);
    setFusion(true);
    mx.eval(step()); // met once: a gpu chain's kernel is compiled from its second evaluation on
    evalStats.reset();
    const fused = step();
    mx.eval(fused);
    expect(evalStats.fused).toBe(1);
    expect(evalStats.ops.get("mul")).toBe(6 * shapes.length);
    plain.forEach((a, i) => expect(fused[i].toTypedArray()).toEqual(a.toTypedArray()));
  }
  it("runs Adam's update as one instruction with three outputs", () => adamUpdates([[512, 300]]));
  it("batches one chain over parameters of several shapes into one instruction, bit for bit", () =>
    // the same steps and constants over other shapes (odd sizes too)
    adamUpdates([[512, 300], [300], [7, 3], [1], [64, 65]]));
  it("a batch's output never takes a buffer another member still reads", () => {
    // s dies in the batch and both members read it: neither may write its result over s.
    const a = seeded(1, [16, 16], "float64"), b = seeded(2, [16, 16], "float64");
    const x = seeded(3, [16, 16], "float64"), y = seeded(4, [16, 16], "float64");
    mx.eval(a, b, x, y);
    const s = mx.matmul(a, b);
    const outs = [mx.add(mx.multiply(x, s), 1), mx.add(mx.multiply(y, s), 1)];
    evalStats.reset();
    mx.eval(outs);
    expect(evalStats.fused).toBe(1);
    const [av, bv, xv, yv] = [a, b, x, y].map((t) => t.toTypedArray() as Float64Array);
    const want = (z: Float64Array) =>
      Array.from({ length: 256 }, (_, k) => {
        let acc = 0;
        for (let j = 0; j < 16; j++) acc += av[Math.floor(k / 16) * 16 + j] * bv[j * 16 + (k % 16)];
        return z[k] * acc + 1;
      });
    [xv, yv].forEach((z, i) =>
      (outs[i].toTypedArray() as Float64Array).forEach((v, k) => expect(Math.abs(v - want(z)[k])).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(want(z)[k])))),
    );
  });
  it("writes out a chain's value that a non-elementwise op reads", () => {
    const x = seeded(5, [64, 64], "float64");
    mx.eval(x);
    const chain = () => {
      const a = mx.tanh(mx.multiply(x, 2));
      const s = mx.sum(a, 1, { keepdims: true }); // reads a: a is written out
      return mx.subtract(mx.exp(a), s);
    };
    setFusion(false);
    const plain = chain();
    mx.eval(plain);
    setFusion(true);
    mx.eval(chain()); // met once (see above)
    evalStats.reset();
    const fused = chain();
    mx.eval(fused);
    // mul, tanh and exp are one instruction (the order runs exp before the sum), which writes out
    // tanh's value for the sum; sub reads the sum and runs after it.
    expect(evalStats.fused).toBe(1);
    expect(evalStats.instructions).toBe(7); // mul tanh exp | reduceSum reshape broadcastTo | sub
    expect(fused.toTypedArray()).toEqual(plain.toTypedArray());
  });

  it("leaves small cpu chains of a plain evaluation unfused, and fuses them when compiled", () => {
    // The default bound: below it the plan is skipped (it cost more than fusion saved there).
    const min = setFusionMinCpu(8192);
    try {
      const chain = (x: mx.Array) => mx.exp(mx.multiply(mx.add(x, 1), 2));
      for (const [n, fused] of [[8191, 0], [8192, 1]] as const) {
        const x = mx.ones([n]);
        mx.eval(x);
        evalStats.reset();
        const y = chain(x);
        mx.eval(y);
        expect([n, evalStats.fused]).toEqual([n, fused]);
        expect(y.index(n - 1).item()).toBeCloseTo(Math.exp(4), 4); // float32: an ulp is 4e-6 there
      }
      const small = mx.ones([16]);
      mx.eval(small);
      const compiled = compile(chain);
      mx.eval(compiled(small)); // the trace
      evalStats.reset();
      mx.eval(compiled(small));
      expect(evalStats.fused).toBe(1);
    } finally {
      setFusionMinCpu(min);
    }
  });

  it("leaves integer, half-precision and single ops alone", () => {
    setFusion(true);
    evalStats.reset();
    const i = mx.add(mx.multiply(mx.arange(10), 3), 1);
    const h = mx.add(mx.multiply(mx.ones([4], "float16"), 3), 1);
    mx.eval(i, h);
    expect(evalStats.fused).toBe(0);
    expect(i.tolist()).toEqual([1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
    expect(h.tolist()).toEqual([4, 4, 4, 4]);
  });
});
