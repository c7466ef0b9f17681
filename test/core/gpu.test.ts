/**
 * The CUDA backend ("gpu", native/src/cuda, docs/cuda.md). Without a GPU (CI, most machines) only
 * the first block runs: the gpu is not available and asking for it is an error naming the op and
 * the device. With one, the ported primitives are checked against independent float64 (or exact
 * integer) references, as test/core/elementwise.test.ts does on the cpu: every elementwise row of
 * the op table on every dtype it takes, over contiguous, broadcast and strided operands; casts
 * between all dtypes; reductions; float32/float64 matmul through cuBLAS; transfers both ways with
 * `mx.copy`, graphs that mix devices, and a gradient across them. An op not ported is refused
 * with an error naming it and the device, never run elsewhere.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import { rng, sizeOf, unravel } from "../helpers/reference.js";
import { VIEWS, hostFrom, makeBroadcastable, mapHost, viewOf, type Host } from "../helpers/host.js";
import { buildArray, expectMatches, fillerFor, kindOf, randomHost, wrap, type FloatSampling } from "../helpers/inputs.js";
import { roundTo } from "../helpers/special.js";
import { DEFAULT_RTOL, INT_DTYPES, OPS, labelOf, type OpCase } from "./op-table.js";

type A = mx.Array;
const HAS_GPU = mx.isAvailable(mx.gpu);
const { native } = mx.internal;
const GPU_INDEX = native.devices().indexOf("gpu");
/** The native device index of an evaluated array's data. */
const dataDevice = (a: A) => native.describe(a.handle).device;

describe("without a gpu", () => {
  it.skipIf(HAS_GPU)("is not available, and an op asked to run there names itself and the device", () => {
    expect(native.devices()).not.toContain("gpu");
    const x = mx.array([1, 2, 3]);
    expect(() => mx.add(x, x, { device: mx.gpu })).toThrow(/add: device gpu is not available/);
    expect(() => mx.copy(x, { device: mx.gpu })).toThrow(/copy: device gpu is not available/);
  });
});

// ---- the elementwise op table, run with the gpu as the default device ----

function outDtype(op: OpCase, d: mx.DType): mx.DType {
  if (op.out === "bool") return "bool";
  if (op.out === "float" && kindOf(d) !== "float") return "float32";
  return d;
}
const dtypesOf = (op: OpCase): mx.DType[] => [...op.dtypes, ...(op.intRef ? INT_DTYPES : []), ...(op.bool ? ["bool" as mx.DType] : [])];
function inputHost(op: OpCase, i: number, d: mx.DType, shape: number[], next: () => number): Host<any> {
  const f: FloatSampling = { domain: op.domain[i], grid: op.grid, specials: op.specials };
  return randomHost(shape, d, next, f, op.intDomain?.[i]);
}
function expected(op: OpCase, d: mx.DType, xs: Host<any>[]): Host<any> {
  const od = outDtype(op, d);
  switch (kindOf(d)) {
    case "int": return mapHost((...v: bigint[]) => { const r = op.intRef!(...v); return od === "bool" ? r !== 0n : wrap(r, d); }, ...xs);
    case "bool": return mapHost((...v: number[]) => op.ref(...v) !== 0, ...xs);
    case "float": return mapHost((...v: number[]) => { const r = op.ref(...v); return od === "bool" ? r !== 0 : roundTo(od, r); }, ...xs);
  }
}
function check(op: OpCase, d: mx.DType, xs: Host<any>[], args: A[], what: string): void {
  const y = op.fn(...args);
  mx.eval(y);
  expect(dataDevice(y), `${what}: result device`).toBe(GPU_INDEX);
  const od = outDtype(op, d);
  expectMatches(y, expected(op, d, xs), od, { rtol: op.rtol?.[od] ?? DEFAULT_RTOL[od] ?? 0, atol: op.atol?.[od] ?? 0 }, what);
}

describe.skipIf(!HAS_GPU)("gpu: elementwise ops against their references", () => {
  beforeAll(() => mx.setDefaultDevice(mx.gpu));
  afterAll(() => mx.setDefaultDevice(mx.cpu));
  // [3, 37]: 111 elements, so the 16-byte packs leave a tail; [2, 3, 4] and 0-d; broadcasts.
  const SHAPES = [[], [2, 3, 4], [3, 37], [0, 3]];
  const BCAST: Record<number, number[][][]> = {
    2: [[[3, 1], [1, 4]], [[2, 3, 4], [4]], [[], [2, 3]], [[5, 33], [1]]],
    3: [[[3, 1], [1, 4], [4]], [[2, 3, 4], [4], [3, 1]]],
  };
  describe.each(OPS.map((op) => [labelOf(op), op] as const))("%s", (_label, op) => {
    it.each(dtypesOf(op))("%s: contiguous, broadcast and strided operands", (d) => {
      const next = rng([...labelOf(op) + d].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 11));
      for (const shape of SHAPES) {
        const xs = op.domain.map((_, i) => inputHost(op, i, d, shape, next));
        check(op, d, xs, xs.map((x) => buildArray(x, d)), `shape [${shape}]`);
      }
      if (op.arity > 1) for (const shapes of BCAST[op.arity]) {
        const xs = shapes.map((s, i) => inputHost(op, i, d, s, next));
        check(op, d, xs, xs.map((x) => buildArray(x, d)), `shapes ${JSON.stringify(shapes)}`);
      }
      for (let v = 0; v < VIEWS.length; v++) {
        const kinds = op.domain.map((_, i) => VIEWS[(v + i) % VIEWS.length]);
        const xs = op.domain.map((_, i) => {
          const h = inputHost(op, i, d, [3, 4], next);
          return kinds[i] === "broadcast" ? makeBroadcastable(h) : h;
        });
        check(op, d, xs, xs.map((x, i) => viewOf(x, kinds[i], (b) => buildArray(b, d), fillerFor(d))), `views ${kinds.join(",")}`);
      }
    });
  });
});

// ---- casts ----

const ALL: mx.DType[] = ["bool", ...INT_DTYPES, "float16", "bfloat16", "float32", "float64"];
/**
 * The cpu's conversion rules: integers wrap into integer dtypes; floats truncate and saturate into
 * them (NaN -> 0); anything becomes bool by comparing with 0, and a float dtype by one rounding.
 */
function castRef(v: number | bigint, from: mx.DType, to: mx.DType): number | bigint | boolean {
  if (typeof v === "bigint") return to === "bool" ? v !== 0n : kindOf(to) === "float" ? roundTo(to, Number(v)) : wrap(v, to);
  if (to === "bool") return v !== 0;
  if (kindOf(to) === "float") return roundTo(to, v);
  if (kindOf(from) !== "float") return wrap(BigInt(v), to);
  if (Number.isNaN(v)) return 0n;
  const bits = BigInt(Number(to.replace(/^u?int/, "")));
  const [lo, hi] = to.startsWith("uint") ? [0n, 2n ** bits - 1n] : [-(2n ** (bits - 1n)), 2n ** (bits - 1n) - 1n];
  if (v >= Number(hi)) return hi;
  if (v <= Number(lo)) return lo;
  return BigInt(Math.trunc(v));
}

describe.skipIf(!HAS_GPU)("gpu: casts", () => {
  const FLOAT_VALUES = [0, -0, 1, -1, 2.5, -3.75, 100.25, 300, -200, 70000.5, 1e10, -1e10, 0.1, NaN, Infinity, -Infinity];
  const INT_VALUES = [0, 1, -1, 2, 127, -128, 255, 1000, -30000, 65535];
  it.each(ALL)("from %s to every dtype, contiguous and transposed", (from) => {
    const values = from === "bool" ? [0, 1, 1, 0] : kindOf(from) === "float" ? FLOAT_VALUES : INT_VALUES;
    // the values as the source dtype holds them (integers wrap on the way in, floats round)
    // the values as the source dtype holds them: integers wrap on the way in (exact, as BigInt), floats round
    const held: (number | bigint)[] = values.map((v) => (from === "bool" ? Number(v !== 0) : kindOf(from) === "float" ? roundTo(from, v) : wrap(BigInt(v), from)));
    const src = buildArray({ shape: [2, values.length / 2], data: held }, from);
    const onGpu = mx.copy(src, { device: mx.gpu });
    for (const to of ALL) {
      const transposed = mx.swapaxes(onGpu, 0, 1, { device: mx.gpu }); // a strided view on the gpu
      for (const [label, x, order] of [["contiguous", onGpu, held], ["transposed", transposed, transposeFlat(held, 2)]] as const) {
        const y = mx.astype(x, to, { device: mx.gpu });
        mx.eval(y);
        expect(dataDevice(y)).toBe(GPU_INDEX);
        const want = { shape: [...x.shape], data: order.map((v) => castRef(v, from, to)) };
        expectMatches(y, want, to, {}, `${from} -> ${to}, ${label}`);
      }
    }
  });
});
function transposeFlat<T>(v: T[], rows: number): T[] {
  const cols = v.length / rows;
  return Array.from({ length: v.length }, (_, i) => v[(i % rows) * cols + Math.floor(i / rows)]);
}

// ---- reductions ----

describe.skipIf(!HAS_GPU)("gpu: reductions against float64 loops", () => {
  const g = { device: mx.gpu };
  /** Reduces host h over `axes` with f from init; returns the kept-axes result. */
  function reduceRef(h: Host<number>, axes: number[], init: number, f: (a: number, v: number) => number): Host<number> {
    const kept = h.shape.map((n, d) => (axes.includes(d) ? 1 : n));
    const out = new Array(sizeOf(kept)).fill(init);
    h.data.forEach((v, i) => {
      const idx = unravel(i, h.shape).map((x, d) => (axes.includes(d) ? 0 : x));
      const o = idx.reduce((acc, x, d) => acc * kept[d] + x, 0);
      out[o] = f(out[o], v);
    });
    return { shape: h.shape.filter((_, d) => !axes.includes(d)), data: out };
  }
  const CASES: [number[], number[]][] = [
    [[64, 300], [0]], [[64, 300], [1]], [[64, 300], [0, 1]], [[4, 5, 6], [1]], [[4, 5, 6], [0, 2]], [[7], [0]],
    [[5000, 3], [0]], [[3, 5000], [1]],
    // a bias's gradient: columns over up to 512 rows in one pass ([500, 70]: two rounds of loads,
    // the last partial; three column blocks, the last partial), over more rows split into segments
    [[500, 70], [0]], [[2048, 128], [0]], [[16, 64, 96], [0, 1]],
    // few outputs over many elements: each output's elements split over several blocks
    [[1 << 18], [0]], [[3, 100000], [1]], [[(1 << 18) + 5 * 4096], [0]],
  ];
  for (const dtype of ["float32", "float64"] as const) {
    it(`${dtype}: sum, prod, max and min over axes, on contiguous and transposed inputs`, () => {
      const next = rng(dtype === "float32" ? 3 : 4);
      for (const [shape, axes] of CASES) {
        // values near 1 in magnitude keep long products finite; every third one negative
        const signed = hostFrom(shape, (i) => (i % 3 === 0 ? -1 : 1) * roundTo(dtype, 0.9 + 0.2 * next()));
        const n = sizeOf(axes.map((a) => shape[a]));
        for (const transposed of [false, true]) {
          // the same logical values, through a transposed view of the reversed layout
          const x = transposed
            ? mx.transpose(mx.copy(buildArray({ shape: [...shape].reverse(), data: transposeAll(signed) }, dtype), g), undefined, g)
            : mx.copy(buildArray(signed, dtype), g);
          const what = `[${shape}] over ${axes}${transposed ? " (transposed)" : ""}`;
          // Accumulated in double (any order: (n + 1) units of double on the sum of |v|), rounded once to dtype.
          const abs = reduceRef(signed, axes, 0, (a, v) => a + Math.abs(v));
          const sumTol = { rtol: dtype === "float32" ? 2 ** -24 : 0, atol: (n + 1) * 2 ** -53 * Math.max(...abs.data) };
          expectMatches(mx.sum(x, axes, g), reduceRef(signed, axes, 0, (a, v) => a + v), dtype, sumTol, `sum ${what}`);
          // The double product (n units of double) rounded once: within an ulp of the rounded exact one.
          const prod = mapHost((v: number) => roundTo(dtype, v), reduceRef(signed, axes, 1, (a, v) => a * Math.abs(v)));
          expectMatches(mx.prod(mx.abs(x, g), axes, g), prod, dtype, { rtol: (dtype === "float32" ? 2 ** -23 : 0) + n * 2 ** -52 }, `prod ${what}`);
          expectMatches(mx.max(x, axes, g), reduceRef(signed, axes, -Infinity, Math.max), dtype, {}, `max ${what}`);
          expectMatches(mx.min(x, axes, g), reduceRef(signed, axes, Infinity, Math.min), dtype, {}, `min ${what}`);
        }
      }
    });
  }
  it("int32 and bool: exact sums, max and any", () => {
    const next = rng(8);
    const h = hostFrom([40, 50], () => Math.floor(next() * 2001) - 1000);
    const x = mx.copy(buildArray({ shape: h.shape, data: h.data.map(BigInt) }, "int32"), g);
    for (const axes of [[0], [1], [0, 1]]) {
      expectMatches(mx.sum(x, axes, g), mapHost(BigInt, reduceRef(h, axes, 0, (a, v) => a + v)), "int32", {}, `int32 sum over ${axes}`);
      expectMatches(mx.max(x, axes, g), mapHost(BigInt, reduceRef(h, axes, -Infinity, Math.max)), "int32", {}, `int32 max over ${axes}`);
    }
    // Long integer sums, in one pass ([500, 70]) or split into 24, 32, 64 and 69 segments:
    // exact, so a partial lost or added twice shows.
    for (const [shape, axes] of [[[3, 100000], [1]], [[500, 70], [0]], [[2048, 128], [0]], [[1 << 18], [0]], [[(1 << 18) + 5 * 4096], [0]]] as [number[], number[]][]) {
      const long = hostFrom(shape, () => Math.floor(next() * 201) - 100);
      const y = mx.copy(buildArray({ shape, data: long.data.map(BigInt) }, "int32"), g);
      expectMatches(mx.sum(y, axes, g), mapHost(BigInt, reduceRef(long, axes, 0, (a, v) => a + v)), "int32", {}, `int32 sum of [${shape}] over ${axes}`);
    }
    const b = mx.greater(x, 990, g);
    expectMatches(mx.any(b, 1, g), mapHost((v: number) => v > 0, reduceRef(h, [1], 0, (a, v) => a + Number(v > 990))), "bool", {}, "any");
  });
  it("an empty reduction gives the identity", () => {
    const x = mx.zeros([3, 0], "float32", g);
    expect(mx.sum(x, 1, g).tolist()).toEqual([0, 0, 0]);
    expect(mx.prod(x, 1, g).tolist()).toEqual([1, 1, 1]);
  });
});
function transposeAll(h: Host<number>): number[] {
  const rshape = [...h.shape].reverse();
  return Array.from({ length: h.data.length }, (_, i) => {
    const idx = unravel(i, rshape).reverse();
    return h.data[idx.reduce((acc, x, d) => acc * h.shape[d] + x, 0)];
  });
}

// ---- arg-reductions and the copies behind concatenate and pad ----

describe.skipIf(!HAS_GPU)("gpu: argmax, argmin, concatenate and sliceUpdate", () => {
  beforeAll(() => mx.setDefaultDevice(mx.gpu));
  afterAll(() => mx.setDefaultDevice(mx.cpu));
  /** The index of the first extreme along `axis` of a row-major [R, C] host matrix. */
  function argRef(v: number[], [R, C]: number[], axis: number, max: boolean): number[] {
    const [n, m] = axis === 1 ? [R, C] : [C, R];
    return Array.from({ length: n }, (_, o) => {
      let best = 0;
      const at = (i: number) => (axis === 1 ? v[o * C + i] : v[i * C + o]);
      for (let i = 1; i < m; i++) if (max ? at(i) > at(best) : at(i) < at(best)) best = i;
      return best;
    });
  }
  it("argmax and argmin: the first extreme wins, and a NaN is the extreme", () => {
    const x = mx.array([[3, 1, 3, -2], [0, 0, -5, 7], [NaN, 2, NaN, 1]], "float32");
    expect(mx.argmax(x, 1).tolist()).toEqual([0, 3, 0]);
    expect(mx.argmin(x, 1).tolist()).toEqual([3, 2, 0]);
    expect(mx.argmax(x, 0).tolist()).toEqual([2, 2, 2, 1]);
    expect(mx.argmin(x, 0).tolist()).toEqual([2, 1, 2, 0]);
    const am = mx.argmax(x, 1);
    mx.eval(am);
    expect(dataDevice(am)).toBe(GPU_INDEX);
    // ties everywhere: int32 values in 0..9, contiguous and through a transposed view
    const next = rng(31);
    const shape = [50, 70], v = Array.from({ length: 3500 }, () => Math.floor(next() * 10));
    const xi = buildArray({ shape, data: v.map(BigInt) }, "int32");
    const xt = mx.transpose(buildArray({ shape: [70, 50], data: transposeFlat(v, 50).map(BigInt) }, "int32"));
    for (const [label, a] of [["contiguous", xi], ["transposed", xt]] as const)
      for (const axis of [0, 1])
        for (const max of [true, false]) {
          const got = (max ? mx.argmax : mx.argmin)(a, axis).tolist();
          expect(got, `${label} ${max ? "argmax" : "argmin"} over ${axis}`).toEqual(argRef(v, shape, axis, max));
        }
  });
  it("concatenate copies each input into its slab; pad writes x over a filled base (sliceUpdate)", () => {
    const a = mx.array([[1, 2, 3], [4, 5, 6]], "float64"), b = mx.array([[7, 8], [9, 10]], "float64");
    expect(mx.concatenate([a, b], 1).tolist()).toEqual([[1, 2, 3, 7, 8], [4, 5, 6, 9, 10]]);
    expect(mx.concatenate([mx.transpose(a), mx.transpose(b)], 0).tolist()).toEqual([[1, 4], [2, 5], [3, 6], [7, 9], [8, 10]]);
    const p = mx.pad(a, [[1, 0], [0, 2]], { value: -1 });
    expect(p.tolist()).toEqual([[-1, -1, -1, -1, -1], [1, 2, 3, -1, -1], [4, 5, 6, -1, -1]]);
    expect(dataDevice(p)).toBe(GPU_INDEX);
  });
});

// ---- matmul ----

describe.skipIf(!HAS_GPU)("gpu: matmul through cuBLAS against a float64 triple loop", () => {
  const g = { device: mx.gpu };
  /** C = A @ B for row-major A [.., M, K] and B [.., K, N] with equal batch; plus sum |a b| per element. */
  function mm(a: Host<number>, b: Host<number>): { c: Host<number>; abs: number[] } {
    const [M, K] = a.shape.slice(-2), N = b.shape[b.shape.length - 1];
    const batch = sizeOf(a.shape.slice(0, -2));
    const c: number[] = [], abs: number[] = [];
    for (let t = 0; t < batch; t++)
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0, s2 = 0;
          for (let k = 0; k < K; k++) {
            const p = a.data[t * M * K + i * K + k] * b.data[t * K * N + k * N + j];
            s += p;
            s2 += Math.abs(p);
          }
          c.push(s);
          abs.push(s2);
        }
    return { c: { shape: [...a.shape.slice(0, -1), N], data: c }, abs };
  }
  const SIZES: [number[], number[]][] = [[[33, 65], [65, 17]], [[3, 20, 30], [3, 30, 10]], [[1, 7], [7, 1]], [[128, 256], [256, 96]], [[4, 0], [0, 5]]];
  for (const dtype of ["float32", "float64"] as const) {
    it(`${dtype}: plain, batched and transposed operands (TF32 off)`, () => {
      const next = rng(dtype === "float32" ? 21 : 22);
      const u = dtype === "float32" ? 2 ** -24 : 2 ** -53;
      for (const [sa, sb] of SIZES) {
        const a = hostFrom(sa, () => roundTo(dtype, 2 * next() - 1)), b = hostFrom(sb, () => roundTo(dtype, 2 * next() - 1));
        const { c, abs } = mm(a, b);
        const K = sa[sa.length - 1];
        for (const [label, x, y] of [
          ["contiguous", mx.copy(buildArray(a, dtype), g), mx.copy(buildArray(b, dtype), g)],
          // the same values through transposed views on the gpu: each operand's other unit stride
          ["transposed", mx.swapaxes(mx.copy(buildArray(swapLast(a), dtype), g), -1, -2, g), mx.swapaxes(mx.copy(buildArray(swapLast(b), dtype), g), -1, -2, g)],
        ] as const) {
          const got = mx.matmul(x, y, g);
          mx.eval(got);
          expect(dataDevice(got)).toBe(GPU_INDEX);
          const vals = got.reshape([-1]).tolist() as number[];
          expect(got.shape).toEqual(c.shape);
          vals.forEach((v, i) => {
            const tol = (K + 2) * u * abs[i] + 2 * u * Math.abs(c.data[i]);
            if (!(Math.abs(v - c.data[i]) <= tol)) expect.fail(`${label} [${sa}]@[${sb}] element ${i}: ${v} vs ${c.data[i]} (tol ${tol})`);
          });
        }
      }
    });
  }
  it("broadcasts a batch operand, and multiplies integers exactly (the cpu's loop, test/gpu/linalg.test.ts)", () => {
    const a = hostFrom([2, 3, 4], (i) => (i % 7) - 3), b = hostFrom([4, 5], (i) => (i % 5) - 2);
    const got = mx.matmul(mx.copy(buildArray(a, "float64"), g), mx.copy(buildArray(b, "float64"), g), g);
    const bb = { shape: [2, 4, 5], data: [...b.data, ...b.data] };
    expect(got.reshape([-1]).tolist()).toEqual(mm(a, bb).c.data);
    const xi = mx.array([[1, 2], [3, 4]], "int32", g);
    const yi = mx.matmul(xi, xi, g);
    expect([yi.dtype, yi.device, yi.tolist()]).toEqual(["int32", mx.gpu, [[7, 10], [15, 22]]]);
  });
});
function swapLast(h: Host<number>): Host<number> {
  const s = h.shape, nd = s.length, [R, C] = s.slice(-2);
  const out = new Array(h.data.length);
  h.data.forEach((v, i) => {
    const base = Math.floor(i / (R * C)) * R * C, r = Math.floor((i % (R * C)) / C), c = i % C;
    out[base + c * R + r] = v;
  });
  return { shape: [...s.slice(0, nd - 2), C, R], data: out };
}

// ---- moving data and mixing devices ----

describe.skipIf(!HAS_GPU)("gpu: transfers and graphs across devices", () => {
  it("copies every dtype to the gpu and back exactly, through views and past the staging chunk", () => {
    const cases: A[] = [
      mx.array(new Float32Array([0.1, -0, NaN, Infinity, -3.4028234663852886e38, 1e-45])),
      mx.array([2n ** 53n + 1n, -(2n ** 62n) - 7n, 2n ** 63n - 1n, -(2n ** 63n)]),
      mx.array([true, false, false, true]),
      mx.array([1.5, -2.25, 65504], "float16"),
      mx.array([1.5, -2.25, 3e38], "bfloat16"),
      mx.array([0, 255, 7], "uint8"),
    ];
    for (const x of cases) {
      const y = mx.copy(x, { device: mx.gpu });
      const z = mx.copy(y, { device: mx.cpu });
      mx.eval(y, z);
      expect([y.device, dataDevice(y), z.device, dataDevice(z)]).toEqual([mx.gpu, GPU_INDEX, mx.cpu, 0]);
      expect(y.tolist(), x.dtype).toEqual(x.tolist());
      expect(z.tolist(), x.dtype).toEqual(x.tolist());
    }
    // 3 * 2^21 float32 = 24 MiB: six 4 MiB chunks each way; the read of a transposed view goes
    // through a device-side copy first.
    const n = 3 * 2 ** 21, data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (i % 1000) - 500 + i / n;
    const big = mx.array(data).reshape([3 * 2 ** 10, 2 ** 11]);
    const onGpu = mx.copy(big, { device: mx.gpu });
    const back = mx.copy(onGpu, { device: mx.cpu }).toTypedArray() as Float32Array;
    expect(back.every((v, i) => Object.is(v, data[i]))).toBe(true);
    const t = mx.swapaxes(onGpu, 0, 1, { device: mx.gpu }).toTypedArray() as Float32Array; // a strided read from the gpu
    const [R, C] = [3 * 2 ** 10, 2 ** 11];
    let ok = true;
    for (let i = 0; i < n && ok; i += 997) ok = t[i] === data[(i % R) * C + Math.floor(i / R)];
    expect(ok).toBe(true);
  });

  it("one graph mixes cpu and gpu nodes, transferring where an op reads another device", () => {
    const x = mx.array([1, 2, 3, 4], "float32"); // cpu
    const a = mx.add(x, 1); // cpu
    const b = mx.mul(a, mx.array([10, 20, 30, 40], "float32", { device: mx.gpu }), { device: mx.gpu });
    const c = mx.sub(b, x); // cpu, reads b from the gpu
    const d = mx.sum(mx.matmul(mx.reshape(b, [2, 2]), mx.reshape(a, [2, 2]), { device: mx.gpu }), undefined, { device: mx.gpu });
    mx.eval(c, d);
    expect([a.device, b.device, c.device, d.device]).toEqual([mx.cpu, mx.gpu, mx.cpu, mx.gpu]);
    expect([dataDevice(c), dataDevice(d)]).toEqual([0, GPU_INDEX]);
    expect(c.tolist()).toEqual([19, 58, 117, 196]);
    // [[20, 60], [120, 200]] @ [[2, 3], [4, 5]] = [[280, 360], [1040, 1360]]
    expect(d.item()).toBe(3040);
  });

  it("a gradient flows through gpu ops and transfers back to a cpu parameter", () => {
    const xs = [[0.5, -1], [0.25, 2], [-0.75, 0.1]]; // [3, 2], on the gpu
    const ws = [[0.3, -0.2, 0.1], [0.7, 0.05, -0.4]]; // [2, 3], on the cpu
    const x = mx.array(xs, "float64", { device: mx.gpu });
    const s = mx.array([1, 2, 3], "float64"); // cpu weights of the columns
    const loss = (w: A) => {
      const h = mx.tanh(mx.matmul(x, w, { device: mx.gpu }), { device: mx.gpu });
      return mx.sum(mx.mul(h, s)); // cpu
    };
    const gw = grad(loss)(mx.array(ws, "float64"));
    mx.eval(gw);
    expect(gw.device).toEqual(mx.cpu);
    // d/dw_kj = sum_i x_ik (1 - tanh(z_ij)^2) s_j with z = x w
    const want = ws.map((row, k) => row.map((_, j) => xs.reduce((acc, xi) => {
      const z = xi[0] * ws[0][j] + xi[1] * ws[1][j];
      return acc + xi[k] * (1 - Math.tanh(z) ** 2) * [1, 2, 3][j];
    }, 0)));
    (gw.tolist() as number[][]).forEach((row, k) => row.forEach((v, j) => expect(v).toBeCloseTo(want[k][j], 12)));
  });

  it("runs linalg on the gpu itself (no cpu fallback; refusals of unported ops: devices.test.ts)", () => {
    const x = mx.array([[3, 1], [1, 2]], "float32", { device: mx.gpu });
    const inv = mx.linalg.inv(x, { device: mx.gpu }), l = mx.linalg.cholesky(x, { device: mx.gpu });
    expect([inv.device, l.device]).toEqual([mx.gpu, mx.gpu]);
    [[0.4, -0.2], [-0.2, 0.6]].flat().forEach((v, i) => expect((inv.reshape([-1]).tolist() as number[])[i]).toBeCloseTo(v, 6));
    [[Math.sqrt(3), 0], [1 / Math.sqrt(3), Math.sqrt(5 / 3)]].flat().forEach((v, i) => expect((l.reshape([-1]).tolist() as number[])[i]).toBeCloseTo(v, 6));
  });
});
