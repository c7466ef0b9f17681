/**
 * The cpu kernels pick their SIMD path at run time (native/src/cpu/isa.h). This runs the GEMM in a
 * child process on the cpu (whatever the suite's default device) per path (TESSERA_CPU_ISA=generic|avx2|avx512, each only where the CPU has it) on
 * shapes that hit every edge of the blocking (partial tiles, K past one KC block, N past one NC
 * block, transposed operands), and checks each product against a float64 triple loop within the
 * dot-product error bound (K + 2) u sum_k |a_ik b_kj|.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as mx from "@tessera/core";

interface Case { m: number; n: number; k: number; dtype: "float32" | "float64"; transA: boolean; transB: boolean }
const CASES: Case[] = [
  { m: 1, n: 1, k: 1, dtype: "float32", transA: false, transB: false },
  { m: 13, n: 37, k: 29, dtype: "float32", transA: false, transB: false },
  { m: 300, n: 70, k: 600, dtype: "float32", transA: false, transB: true },
  { m: 150, n: 4100, k: 20, dtype: "float32", transA: true, transB: false },
  { m: 400, n: 64, k: 300, dtype: "float32", transA: true, transB: true },
  { m: 13, n: 37, k: 29, dtype: "float64", transA: false, transB: false },
  { m: 200, n: 90, k: 530, dtype: "float64", transA: true, transB: false },
  { m: 77, n: 300, k: 260, dtype: "float64", transA: false, transB: true },
  // narrow products of a transposed B (x @ W^T with few outputs: AVX-512 and AVX2 take them as
  // dot products): full column groups and a remainder, a remainder alone, an odd row count, k not
  // a multiple of the vector width
  { m: 257, n: 10, k: 515, dtype: "float32", transA: false, transB: true },
  { m: 31, n: 3, k: 16, dtype: "float32", transA: false, transB: true },
  { m: 5, n: 15, k: 100, dtype: "float32", transA: false, transB: true },
];

/** Deterministic inputs in [-1, 1), the same in parent and child. */
function values(seed: number, count: number): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

// The child: builds each product (transposed operands as transposed views, so the packers see
// rs == 1 strides) and prints the ISA it ran and the results as float64 lists.
const CHILD = `
import * as mx from "@tessera/core";
const cases = JSON.parse(process.env.CASES);
${values.toString()}
const out = cases.map((c, i) => {
  const av = values(2 * i + 1, c.m * c.k), bv = values(2 * i + 2, c.k * c.n);
  let a = mx.array(Array.from(av), c.dtype), b = mx.array(Array.from(bv), c.dtype);
  a = c.transA ? mx.transpose(mx.reshape(a, [c.k, c.m])) : mx.reshape(a, [c.m, c.k]);
  b = c.transB ? mx.transpose(mx.reshape(b, [c.n, c.k])) : mx.reshape(b, [c.k, c.n]);
  return Array.from(mx.matmul(a, b).astype("float64").toTypedArray());
});
console.log(JSON.stringify({ isa: mx.internal.native.cpuIsa(), out }));
`;

function runChild(isa: string): { isa: string; out: number[][] } {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const stdout = execFileSync(process.execPath, ["--input-type=module", "-e", CHILD], {
    cwd: root,
    env: { ...process.env, TESSERA_DEFAULT_DEVICE: "cpu", TESSERA_CPU_ISA: isa, CASES: JSON.stringify(CASES) },
    maxBuffer: 256 << 20,
  });
  return JSON.parse(stdout.toString());
}

const RANK = ["generic", "avx2", "avx512"];
const best = mx.internal.native.cpuIsa();

describe("GEMM on every SIMD path the CPU has", () => {
  it("reports a known instruction set", () => {
    expect(RANK).toContain(best);
  });
  for (const isa of RANK) {
    it.skipIf(RANK.indexOf(isa) > RANK.indexOf(best))(`${isa}: products match a float64 triple loop`, () => {
      const { isa: ran, out } = runChild(isa);
      expect(ran).toBe(isa);
      CASES.forEach((c, i) => {
        const av = values(2 * i + 1, c.m * c.k), bv = values(2 * i + 2, c.k * c.n);
        const A = (r: number, p: number) => (c.transA ? av[p * c.m + r] : av[r * c.k + p]);
        const B = (p: number, j: number) => (c.transB ? bv[j * c.k + p] : bv[p * c.n + j]);
        const u = c.dtype === "float32" ? 2 ** -24 : 2 ** -53;
        const got = out[i];
        expect(got.length).toBe(c.m * c.n);
        let worst = 0;
        for (let r = 0; r < c.m; r++) {
          for (let j = 0; j < c.n; j++) {
            let s = 0, t = 0;
            for (let p = 0; p < c.k; p++) {
              const x = A(r, p) * B(p, j);
              s += x;
              t += Math.abs(x);
            }
            const err = Math.abs(got[r * c.n + j] - s) / ((c.k + 2) * u * t + Number.MIN_VALUE);
            worst = Math.max(worst, err);
          }
        }
        expect(worst, `${isa} ${JSON.stringify(c)}`).toBeLessThanOrEqual(1);
      });
    }, 60_000);
  }
});

/**
 * The vectorized float32 exp, tanh and sigmoid (native/src/cpu/vmath.cc, 16 lanes on AVX-512, 8 on
 * AVX2, the scalar functions otherwise) give the same bits on every path: random bit patterns
 * (NaN, infinities, subnormals included), the ends of their ranges and lengths that leave tails.
 * Fused chains use the same functions (fusion.test.ts), so the same holds for them.
 */
const ELEMENTWISE_CHILD = `
import * as mx from "@tessera/core";
let s = 12345;
const bits = new Uint32Array(40013);
for (let i = 0; i < bits.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; bits[i] = s; }
const f = new Float32Array(bits.buffer);
const special = [0, -0, 1e-45, -1e-45, 88.72, 88.73, -103.97, -104, 89, -87.3, 0.625, -0.625, 9, -9, 1e30, -1e30, Infinity, -Infinity, NaN];
special.forEach((v, i) => (f[i] = v));
const out = {};
for (const n of [7, 16, 31, 1000, f.length]) {
  const x = mx.array(f.subarray(0, n));
  for (const op of ["exp", "tanh", "sigmoid"]) {
    const y = new Uint32Array(mx[op](x).toTypedArray().buffer);
    let h = 2166136261;
    for (const w of y) h = Math.imul(h ^ w, 16777619) >>> 0;
    out[op + n] = h;
  }
}
console.log(JSON.stringify({ isa: mx.internal.native.cpuIsa(), out }));
`;

describe("vectorized exp, tanh and sigmoid on every SIMD path the CPU has", () => {
  it("give the same bits on each path", () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const run = (isa: string) =>
      JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", ELEMENTWISE_CHILD], { cwd: root, env: { ...process.env, TESSERA_DEFAULT_DEVICE: "cpu", TESSERA_CPU_ISA: isa } }).toString());
    const paths = RANK.slice(0, RANK.indexOf(best) + 1).map(run);
    paths.forEach((p, i) => expect(p.isa).toBe(RANK[i]));
    for (const p of paths.slice(1)) expect(p.out).toEqual(paths[0].out);
  });
});

/**
 * bfloat16 products run on AMX tiles or as AVX-512 BF16 dot products where the CPU has them
 * (native/src/cpu/gemm_bf16.cc) and on the float32 GEMM otherwise; TESSERA_CPU_BF16=dot|float32
 * forces the lower paths. Each path the CPU has, in a child process, to the dot-product bound of
 * float32 accumulation on every operand layout, and the documented difference between them: the
 * tiles and the dot instruction flush subnormal inputs and results to zero.
 */
const BF16_CHILD = `
import * as mx from "@tessera/core";
${values.toString()}
// [100, 100, 100]: packed operand panels whose sizes are not multiples of 64 bytes
const shapes = [[96, 200, 64], [64, 600, 100], [50, 71, 40], [100, 100, 100]];
const out = [];
shapes.forEach(([m, k, n], i) => {
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
    const a0 = mx.array(Array.from(values(3 * i + 1, m * k))).astype("bfloat16");
    const b0 = mx.array(Array.from(values(3 * i + 2, k * n))).astype("bfloat16");
    const a = ta ? mx.transpose(mx.reshape(a0, [k, m])) : mx.reshape(a0, [m, k]);
    const b = tb ? mx.transpose(mx.reshape(b0, [n, k])) : mx.reshape(b0, [k, n]);
    out.push({ a: Array.from(a.astype("float64").toTypedArray()), b: Array.from(b.astype("float64").toTypedArray()),
      m, k, n, c: Array.from(mx.matmul(a, b).astype("float64").toTypedArray()) });
  }
  // strided rows of a and columns of b (the packers' general paths)
  const a2 = mx.reshape(mx.array(Array.from(values(3 * i + 3, 2 * m * k))).astype("bfloat16"), [2 * m, k]).index(mx.slice(null, null, 2));
  const b2 = mx.reshape(mx.array(Array.from(values(3 * i + 4, 2 * k * n))).astype("bfloat16"), [k, 2 * n]).index(mx.slice(), mx.slice(null, null, 2));
  out.push({ a: Array.from(a2.astype("float64").toTypedArray()), b: Array.from(b2.astype("float64").toTypedArray()),
    m, k, n, c: Array.from(mx.matmul(a2, b2).astype("float64").toTypedArray()) });
});
// one nonzero product per output: 2^-70 * 2^-60 (a subnormal result) and 2^-130 * 2^10 (a subnormal input)
const one = (x, y) => {
  const at = (v) => mx.where(mx.equal(mx.arange(64 * 64).reshape([64, 64]), 0), mx.array(v), mx.array(0)).astype("bfloat16");
  return mx.matmul(at(x), at(y)).astype("float64").index(0, 0).item();
};
console.log(JSON.stringify({ path: mx.internal.native.bf16Path(), out, tiny: [one(2 ** -70, 2 ** -60), one(2 ** -130, 2 ** 10)] }));
`;

describe("bfloat16 products on every path the CPU has", () => {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const run = (path: string) =>
    JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", BF16_CHILD], { cwd: root, env: { ...process.env, TESSERA_DEFAULT_DEVICE: "cpu", TESSERA_CPU_BF16: path }, maxBuffer: 256 << 20 }).toString());
  const bestPath = mx.internal.native.bf16Path();
  it("reports a known path", () => expect(["amx", "dot", "float32"]).toContain(bestPath));
  it.each(["best", "dot", "float32"])("%s: within the float32 dot-product bound of the exact product, rounded once", (want) => {
    const r = run(want === "best" ? "" : want);
    if (want === "best") expect(r.path).toBe(bestPath);
    else if (want === "float32" || bestPath !== "float32") expect(r.path).toBe(want); // tiles imply the dot instruction
    else expect(["dot", "float32"]).toContain(r.path);
    for (const p of r.out) {
      for (let i = 0; i < p.m; i++) {
        for (let j = 0; j < p.n; j++) {
          let s = 0, t = 0;
          for (let q = 0; q < p.k; q++) {
            const x = p.a[i * p.k + q] * p.b[q * p.n + j];
            s += x;
            t += Math.abs(x);
          }
          const got = p.c[i * p.n + j];
          // float32 accumulation, then one rounding to bfloat16 (8 bits: half an ulp is 2^-9 relative)
          const tol = (p.k + 2) * 2 ** -24 * t + 2 ** -8 * Math.abs(s);
          if (!(Math.abs(got - s) <= tol)) expect.fail(`${r.path} [${p.m},${p.k}]@[${p.k},${p.n}] (${i},${j}): ${got} vs ${s}`);
        }
      }
    }
    // subnormals: kept by the float32 path, flushed to zero by the tiles and the dot instruction
    expect(r.tiny).toEqual(r.path === "float32" ? [2 ** -130, 2 ** -120] : [0, 0]);
  }, 120_000);
});
