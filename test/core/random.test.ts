/**
 * mx.random: Threefry-2x32 against Random123's known-answer vectors (through an independent JS
 * reference written here), the word layout of randomBits, keys and the global key, distributions
 * (Kolmogorov–Smirnov and chi-square at the 0.999 level, with fixed keys), bounds, dtypes,
 * shapes, permutations, vmap over keys, and argument errors.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { vmap, grad } from "@tessera/transforms";
import { erf } from "../helpers/special.js";

const { lax } = mx.internal;
const R = mx.random;

// ---- an independent Threefry-2x32-20 (Random123's threefry.h, one round at a time) ----
const ROTATIONS = [13, 15, 26, 6, 17, 29, 16, 24];
function threefryRef(key: [number, number], ctr: [number, number]): [number, number] {
  const ks2 = (0x1bd11bda ^ key[0] ^ key[1]) >>> 0;
  const ks = [key[0] >>> 0, key[1] >>> 0, ks2];
  let x0 = (ctr[0] + ks[0]) >>> 0;
  let x1 = (ctr[1] + ks[1]) >>> 0;
  for (let round = 0; round < 20; round++) {
    const r = ROTATIONS[round % 8];
    x0 = (x0 + x1) >>> 0;
    x1 = ((x1 << r) | (x1 >>> (32 - r))) >>> 0;
    x1 = (x1 ^ x0) >>> 0;
    if (round % 4 === 3) {
      const s = (round + 1) / 4;
      x0 = (x0 + ks[s % 3]) >>> 0;
      x1 = (x1 + ks[(s + 1) % 3] + s) >>> 0;
    }
  }
  return [x0, x1];
}
/** Word i of randomBits for a key: word (i & 1) of the block with counter i >> 1. */
const wordRef = (key: [number, number], i: number) => threefryRef(key, [Math.floor(i / 2) >>> 0, Math.floor(i / 2 / 2 ** 32)])[i % 2];

const keyWords = (k: mx.Array) => k.tolist() as [number, number];
const values = (x: mx.Array) => [...(x.astype("float64").toTypedArray() as Float64Array)];

/** The Kolmogorov–Smirnov statistic of samples against a continuous CDF. */
function ksStatistic(xs: number[], cdf: (x: number) => number): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  let d = 0;
  s.forEach((x, i) => {
    const f = cdf(x);
    d = Math.max(d, f - i / n, (i + 1) / n - f);
  });
  return d;
}
/** The KS critical value at the 0.999 level (asymptotic). */
const ksCritical = (n: number) => 1.9495 / Math.sqrt(n);

/** Pearson's chi-square of counts against expected probabilities. */
function chiSquare(counts: number[], probs: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((s, c, i) => s + (c - n * probs[i]) ** 2 / (n * probs[i]), 0);
}
/** The chi-square 0.999 quantile with df degrees of freedom (Wilson–Hilferty; z = 3.0902). */
function chiCritical(df: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + 3.0902 * Math.sqrt(a)) ** 3;
}
const histogram = (xs: number[], k: number, offset = 0) => {
  const h = new globalThis.Array(k).fill(0);
  for (const x of xs) h[x - offset]++;
  return h;
};

const normalCdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
const N = 20000;
const FLOATS: mx.DType[] = ["float32", "float64", "float16", "bfloat16"];

describe("Threefry-2x32 (20 rounds)", () => {
  it("the reference matches Random123's known-answer vectors", () => {
    expect(threefryRef([0, 0], [0, 0])).toEqual([0x6b200159, 0x99ba4efe]);
    expect(threefryRef([0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([0x1cb996fc, 0xbb002be7]);
    expect(threefryRef([0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3])).toEqual([0xc4923a9c, 0x483df7a0]);
  });

  it("randomBits gives, per key, word i of the block with counter i >> 1", () => {
    const kat = lax.randomBits(mx.array([0, 0], "uint32"), [2]);
    expect(kat.tolist()).toEqual([0x6b200159, 0x99ba4efe]);
    const allOnes = lax.randomBits(mx.array([0xffffffff, 0xffffffff], "uint32"), [3]);
    expect(allOnes.tolist()).toEqual([wordRef([0xffffffff, 0xffffffff], 0), wordRef([0xffffffff, 0xffffffff], 1), wordRef([0xffffffff, 0xffffffff], 2)]);
    // Many chunks of the thread pool, an odd count per key, and three keys in one call.
    const keys: [number, number][] = [[1, 2], [0xdeadbeef, 7], [123456789, 0x80000000]];
    const n = 20001;
    const bits = lax.randomBits(mx.array(keys, "uint32"), [n]);
    expect(bits.shape).toEqual([3, n]);
    const got = bits.toTypedArray() as Uint32Array;
    keys.forEach((k, j) => {
      for (let i = 0; i < n; i += i < 50 ? 1 : 997) expect(got[j * n + i], `key ${j} word ${i}`).toBe(wordRef(k, i));
      expect(got[j * n + n - 1]).toBe(wordRef(k, n - 1));
    });
  });

  it("a strided key (a transposed view) reads the right words", () => {
    const kt = mx.transpose(mx.array([[5, 6], [7, 8]], "uint32")); // keys (5, 7) and (6, 8)
    const bits = lax.randomBits(kt, [3]).tolist() as number[][];
    expect(bits).toEqual([[5, 7], [6, 8]].map((k) => [0, 1, 2].map((i) => wordRef(k as [number, number], i))));
  });

  it("is not differentiable and has zero tangents (sentinels)", () => {
    const def = mx.internal.registry.get("randomBits")!;
    expect(def.vjp).toBe(mx.internal.noGradient);
    expect(def.jvp).toBe(mx.internal.zeroTangent);
    // A gradient through a sampler reaches only the parameters: d/dloc sum(loc + z) = 1.
    const key = R.key(3);
    const g = grad((loc: mx.Array) => mx.sum(R.normal([4], { loc, key, dtype: "float64" })))(mx.array([1, 2, 3, 4], "float64"));
    expect(g.tolist()).toEqual([1, 1, 1, 1]);
  });
});

describe("keys", () => {
  it("key(n) holds the seed's high and low words, deterministically", () => {
    expect(R.key(0).tolist()).toEqual([0, 0]);
    expect(R.key(42).tolist()).toEqual([0, 42]);
    expect(R.key(2 ** 32 + 5).tolist()).toEqual([1, 5]);
    expect(R.key(-1).tolist()).toEqual([0xffffffff, 0xffffffff]);
    expect(R.key(2n ** 64n - 2n).tolist()).toEqual([0xffffffff, 0xfffffffe]);
    expect(R.key(7).dtype).toBe("uint32");
    expect(R.key(7).shape).toEqual([2]);
  });

  it("split(key, num) gives key j = threefry(key, (j, 0)), as a JS array", () => {
    const k = R.key(1234);
    const parts = R.split(k, 3);
    expect(parts.length).toBe(3);
    parts.forEach((p, j) => {
      expect(p.shape).toEqual([2]);
      expect(keyWords(p)).toEqual(threefryRef([0, 1234], [j, 0]));
    });
    expect(R.split(k).length).toBe(2);
  });

  it("same key, same numbers; different and split keys, different numbers", () => {
    const k = R.key(5);
    const a = values(R.uniform(0, 1, [64], { key: k }));
    expect(values(R.uniform(0, 1, [64], { key: k }))).toEqual(a);
    expect(values(R.uniform(0, 1, [64], { key: R.key(5) }))).toEqual(a);
    const b = values(R.uniform(0, 1, [64], { key: R.key(6) }));
    expect(b).not.toEqual(a);
    const [k1, k2] = R.split(k);
    const u1 = values(R.uniform(0, 1, [N], { key: k1, dtype: "float64" }));
    const u2 = values(R.uniform(0, 1, [N], { key: k2, dtype: "float64" }));
    expect(u1).not.toEqual(u2);
    // Independent streams: their correlation is within 4 standard errors of 0.
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const m1 = mean(u1), m2 = mean(u2);
    const cov = mean(u1.map((x, i) => (x - m1) * (u2[i] - m2)));
    expect(Math.abs(cov / (1 / 12))).toBeLessThan(4 / Math.sqrt(N));
  });

  it("seed(n) sets the global key; each call without a key splits it", () => {
    R.seed(11);
    const a = R.uniform(0, 1, [8]).tolist();
    const b = R.uniform(0, 1, [8]).tolist();
    expect(a).not.toEqual(b);
    R.seed(11);
    expect(R.uniform(0, 1, [8]).tolist()).toEqual(a);
    expect(R.uniform(0, 1, [8]).tolist()).toEqual(b);
    // The first call draws with the second half of split(key(11)), and keeps the first half.
    const [keep, use] = R.split(R.key(11));
    expect(R.uniform(0, 1, [8], { key: use }).tolist()).toEqual(a);
    expect(R.uniform(0, 1, [8], { key: R.split(keep)[1] }).tolist()).toEqual(b);
    R.seed(11n);
    expect(R.uniform(0, 1, [8]).tolist()).toEqual(a);
  });

  it("vmap over a batch of keys gives each key's own numbers", () => {
    const keys = R.split(R.key(9), 4);
    const f = (k: mx.Array) => R.normal([5], { key: k });
    const batched = vmap(f)(mx.stack(keys));
    expect(batched.shape).toEqual([4, 5]);
    expect(batched.tolist()).toEqual(keys.map((k) => f(k).tolist()));
    // The batch axis last.
    const g = (k: mx.Array) => R.randint(0, 100, [3], { key: k });
    const last = vmap(g, { inAxes: 1 })(mx.transpose(mx.stack(keys)));
    expect(last.tolist()).toEqual(keys.map((k) => g(k).tolist()));
  });
});

describe("distributions (fixed keys)", () => {
  it("uniform: KS against U(low, high) in every float dtype", () => {
    FLOATS.forEach((dtype, i) => {
      const x = R.uniform(-2, 3, [N], { dtype, key: R.key(100 + i) });
      expect(x.dtype).toBe(dtype);
      const d = ksStatistic(values(x), (v) => Math.min(1, Math.max(0, (v + 2) / 5)));
      expect(d, dtype).toBeLessThan(ksCritical(N));
    });
  });

  it("normal: KS against N(loc, scale²) in every float dtype", () => {
    FLOATS.forEach((dtype, i) => {
      const x = R.normal([N], { dtype, loc: 1, scale: 2, key: R.key(200 + i) });
      expect(x.dtype).toBe(dtype);
      const d = ksStatistic(values(x), (v) => normalCdf((v - 1) / 2));
      expect(d, dtype).toBeLessThan(ksCritical(N));
    });
    const z = values(R.normal([N], { key: R.key(7) }));
    expect(z.every(Number.isFinite)).toBe(true);
  });

  it("gumbel: KS against exp(-exp(-x))", () => {
    FLOATS.forEach((dtype, i) => {
      const x = R.gumbel([N], { dtype, key: R.key(300 + i) });
      expect(x.dtype).toBe(dtype);
      const xs = values(x);
      expect(xs.every(Number.isFinite)).toBe(true);
      expect(ksStatistic(xs, (v) => Math.exp(-Math.exp(-v))), dtype).toBeLessThan(ksCritical(N));
    });
  });

  it("truncatedNormal: KS against the truncated normal, every sample within bounds", () => {
    const cases: [number, number][] = [[-1, 2], [0.5, 4], [-3, -2.5]];
    cases.forEach(([a, b], i) => {
      for (const dtype of ["float32", "float64"] as mx.DType[]) {
        const xs = values(R.truncatedNormal(a, b, [N], { dtype, key: R.key(400 + i) }));
        expect(Math.min(...xs)).toBeGreaterThanOrEqual(a);
        expect(Math.max(...xs)).toBeLessThanOrEqual(b);
        const za = normalCdf(a), zb = normalCdf(b);
        const d = ksStatistic(xs, (v) => (normalCdf(Math.min(b, Math.max(a, v))) - za) / (zb - za));
        expect(d, `[${a}, ${b}] ${dtype}`).toBeLessThan(ksCritical(N));
      }
    });
    for (const dtype of ["float16", "bfloat16"] as mx.DType[]) {
      const xs = values(R.truncatedNormal(-1, 0.5, [N], { dtype, key: R.key(410) }));
      expect(Math.min(...xs)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...xs)).toBeLessThanOrEqual(0.5);
    }
  });

  it("randint: chi-square over the values, every sample in [low, high)", () => {
    const x = R.randint(-3, 7, [N], { key: R.key(500) });
    expect(x.dtype).toBe("int32");
    const xs = x.tolist() as number[];
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(-3);
    expect(Math.max(...xs)).toBeLessThan(7);
    expect(chiSquare(histogram(xs, 10, -3), new globalThis.Array(10).fill(0.1))).toBeLessThan(chiCritical(9));
    // A span that does not divide 2^32 (bias would show with one word and mod).
    const y = R.randint(0, 6, [N], { dtype: "uint8", key: R.key(501) });
    expect(y.dtype).toBe("uint8");
    expect(chiSquare(histogram(y.tolist() as number[], 6), new globalThis.Array(6).fill(1 / 6))).toBeLessThan(chiCritical(5));
  });

  it("bernoulli: chi-square of the counts", () => {
    for (const [p, k] of [[0.3, 600], [0.9, 601]] as const) {
      const x = R.bernoulli(p, [N], { key: R.key(k) });
      expect(x.dtype).toBe("bool");
      const ones = (x.tolist() as boolean[]).filter(Boolean).length;
      expect(chiSquare([N - ones, ones], [1 - p, p])).toBeLessThan(chiCritical(1));
    }
    expect((R.bernoulli(0, [100], { key: R.key(1) }).tolist() as boolean[]).some(Boolean)).toBe(false);
    expect((R.bernoulli(1, [100], { key: R.key(1) }).tolist() as boolean[]).every(Boolean)).toBe(true);
    // p as an array: one probability per element.
    const p = mx.array([0, 1, 0, 1]);
    expect(R.bernoulli(p, undefined, { key: R.key(2) }).tolist()).toEqual([false, true, false, true]);
  });

  it("categorical: chi-square against softmax(logits), along any axis", () => {
    const probs = [0.1, 0.2, 0.3, 0.4];
    const logits = mx.log(mx.array([probs, [0.25, 0.25, 0.25, 0.25]]));
    const s = R.categorical(logits, { numSamples: N, key: R.key(700) });
    expect(s.shape).toEqual([2, N]);
    expect(s.dtype).toBe("uint32");
    const [first, second] = s.tolist() as number[][];
    expect(chiSquare(histogram(first, 4), probs)).toBeLessThan(chiCritical(3));
    expect(chiSquare(histogram(second, 4), [0.25, 0.25, 0.25, 0.25])).toBeLessThan(chiCritical(3));
    // Categories along axis 0 of a transposed copy: the same distribution.
    const t = R.categorical(mx.transpose(logits), { axis: 0, numSamples: N, key: R.key(701) });
    expect(t.shape).toEqual([2, N]);
    expect(chiSquare(histogram((t.tolist() as number[][])[0], 4), probs)).toBeLessThan(chiCritical(3));
    expect(R.categorical(logits, { key: R.key(1) }).shape).toEqual([2]);
    // A category of probability 0 is never drawn.
    const never = R.categorical(mx.array([0, -Infinity, 0]), { numSamples: 1000, key: R.key(3) });
    expect((never.tolist() as number[]).includes(1)).toBe(false);
  });
});

describe("permutation", () => {
  it("permutation(n) is a permutation of 0..n-1 (int32), uniform over positions", () => {
    const p = R.permutation(1000, { key: R.key(900) });
    expect(p.dtype).toBe("int32");
    const xs = p.tolist() as number[];
    expect([...xs].sort((a, b) => a - b)).toEqual([...globalThis.Array(1000).keys()]);
    expect(xs).not.toEqual([...globalThis.Array(1000).keys()]);
    // Where element 0 lands, over many keys: chi-square against uniform over 5 positions.
    const keys = R.split(R.key(901), 1500);
    const perms = keys.map((k) => R.permutation(5, { key: k }));
    mx.eval(perms);
    const where0 = perms.map((q) => (q.tolist() as number[]).indexOf(0));
    expect(chiSquare(histogram(where0, 5), [0.2, 0.2, 0.2, 0.2, 0.2])).toBeLessThan(chiCritical(4));
    expect(R.permutation(0, { key: R.key(1) }).shape).toEqual([0]);
  });

  it("an array is shuffled along its axis by the permutation of the same key", () => {
    const k = R.key(902);
    const x = mx.reshape(mx.arange(12, "float32"), [3, 4]);
    const perm = R.permutation(4, { key: k }).tolist() as number[];
    const rows = x.tolist() as number[][];
    expect(R.permutation(x, { axis: 1, key: k }).tolist()).toEqual(rows.map((r) => perm.map((j) => r[j])));
    expect(R.permutation(x, { axis: -1, key: k }).tolist()).toEqual(rows.map((r) => perm.map((j) => r[j])));
    const perm3 = R.permutation(3, { key: k }).tolist() as number[];
    expect(R.permutation(x, { key: k }).tolist()).toEqual(perm3.map((i) => rows[i]));
  });
});

describe("bounds, dtypes and shapes", () => {
  it("uniform stays below high even where rounding would reach it", () => {
    // Spacing near 1000 in float16 is 0.5 > 1000 * 2^-11: low + u (high - low) rounds up to high.
    for (const [dtype, high] of [["float16", 1000], ["bfloat16", 1000], ["float32", 1], ["float16", -0.5], ["bfloat16", 0]] as const) {
      const low = high - 1000;
      const xs = values(R.uniform(low, high, [N], { dtype, key: R.key(800) }));
      expect(Math.max(...xs), `${dtype} [${low}, ${high})`).toBeLessThan(high);
      expect(Math.min(...xs)).toBeGreaterThanOrEqual(low);
    }
    // Array bounds, one interval per element.
    const lo = mx.array([0, 10, -5]), hi = mx.array([1, 20, -4]);
    const x = R.uniform(lo, hi, [1000, 3], { key: R.key(801) }).tolist() as number[][];
    for (const row of x) row.forEach((v, j) => expect(v >= [0, 10, -5][j] && v < [1, 20, -4][j]).toBe(true));
  });

  it("uniform with the defaults lies in [0, 1)", () => {
    const xs = values(R.uniform(undefined, undefined, [N], { key: R.key(3) }));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it("randint takes every integer dtype and the full span of 2^32", () => {
    for (const dtype of ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"] as mx.DType[]) {
      const x = R.randint(0, 100, [50], { dtype, key: R.key(9) });
      expect(x.dtype).toBe(dtype);
      expect((x.tolist() as (number | bigint)[]).every((v) => Number(v) >= 0 && Number(v) < 100)).toBe(true);
    }
    const full = R.randint(-(2 ** 31), 2 ** 31, [N], { key: R.key(10) }).tolist() as number[];
    expect(full.some((v) => v < -(2 ** 30)) && full.some((v) => v > 2 ** 30)).toBe(true);
    const u8 = R.randint(0, 256, [N], { dtype: "uint8", key: R.key(11) }).tolist() as number[];
    expect(new Set(u8).size).toBe(256);
    const lo = 2n ** 62n;
    const big = R.randint(lo, lo + 2n ** 32n, [1000], { dtype: "int64", key: R.key(12) }).tolist() as bigint[];
    expect(big.every((v) => v >= lo && v < lo + 2n ** 32n)).toBe(true);
    const arr = R.randint(mx.array([0, 100], "int32"), mx.array([1, 103], "uint8"), [500, 2], { key: R.key(13) }).tolist() as number[][];
    expect(arr.every(([a, b]) => a === 0 && b >= 100 && b < 103)).toBe(true);
  });

  it("shapes: 0-d, empty and broadcast", () => {
    const k = R.key(0);
    expect(R.normal(undefined, { key: k }).shape).toEqual([]);
    expect(R.uniform(0, 1, [], { key: k }).shape).toEqual([]);
    expect(R.gumbel([2, 0, 3], { key: k }).shape).toEqual([2, 0, 3]);
    expect(R.uniform(0, 1, [0], { key: k }).tolist()).toEqual([]);
    expect(R.randint(0, 5, [3, 0], { key: k }).shape).toEqual([3, 0]);
    expect(R.bernoulli(0.5, [0], { key: k }).shape).toEqual([0]);
    expect(R.truncatedNormal(mx.array([-1, 0]), 1, undefined, { key: k }).shape).toEqual([2]);
    expect(R.uniform(mx.zeros([3, 1]), mx.ones([4]), undefined, { key: k }).shape).toEqual([3, 4]);
    expect(R.categorical(mx.zeros([2, 3]), { numSamples: 0, key: k }).shape).toEqual([2, 0]);
    expect(R.split(k, 1).length).toBe(1);
    // A 0-d sample is the first element of the same key's longer draw.
    expect(R.uniform(0, 1, [], { key: k }).item()).toBe((R.uniform(0, 1, [5], { key: k }).tolist() as number[])[0]);
  });
});

describe("errors at the call", () => {
  it("throws TypeError or RangeError naming the op, what it got and what it expected", () => {
    const k = R.key(0);
    expect(() => R.uniform(0, 1, [2], { dtype: "int32" })).toThrow(/^random\.uniform: dtype must be a floating type .*; got int32/);
    expect(() => R.uniform(0, 1, [2], { key: mx.array([1, 2]) })).toThrow(/^random\.uniform: key must be a uint32 array .*; got dtype float32/);
    expect(() => R.normal([2], { key: mx.array([1, 2, 3], "uint32") })).toThrow(/^random\.normal: key must have shape \[2\]; got \[3\]/);
    expect(() => R.uniform(mx.zeros([3]), 1, [2], { key: k })).toThrow(/^random\.uniform: .*\[3\].*/);
    expect(() => R.randint(5, 5, [2], { key: k })).toThrow(RangeError);
    expect(() => R.randint(5, 5, [2], { key: k })).toThrow(/^random\.randint: high must be above low; got low 5, high 5/);
    expect(() => R.randint(0, 2 ** 33, [2], { dtype: "int64", key: k })).toThrow(/^random\.randint: high - low must be at most 2\^32/);
    expect(() => R.randint(0, 300, [2], { dtype: "uint8", key: k })).toThrow(/^random\.randint: high 300 is out of range for uint8/);
    expect(() => R.randint(0, 1.5, [2])).toThrow(TypeError);
    expect(() => R.randint(0, 5, [2], { dtype: "float32" })).toThrow(/^random\.randint: dtype must be an integer type; got float32/);
    expect(() => R.randint(mx.array([0.5]), 5, [2])).toThrow(/^random\.randint: low must have an integer dtype; got float32/);
    expect(() => R.randint(mx.array([0], "int32"), 5, [2], { dtype: "int64" })).toThrow(/^random\.randint: Array bounds need a dtype of at most 32 bits/);
    expect(() => R.bernoulli(1.5, [2])).toThrow(/^random\.bernoulli: p must be in \[0, 1\]; got 1.5/);
    expect(() => R.truncatedNormal(2, 1, [2])).toThrow(/^random\.truncatedNormal: lower must be below upper; got lower 2, upper 1/);
    expect(() => R.categorical(mx.zeros([2, 0]))).toThrow(/^random\.categorical: axis 1 of logits \[2,0\] has no categories/);
    expect(() => R.categorical(mx.zeros([2, 3]), { axis: 2 })).toThrow(RangeError);
    expect(() => R.permutation(-1)).toThrow(/^random\.permutation: n must be non-negative; got -1/);
    expect(() => R.permutation(mx.zeros([2, 3]), { axis: 2 })).toThrow(/^random\.permutation: axis 2 is out of range/);
    expect(() => R.permutation("3" as never)).toThrow(/^random\.permutation: xOrN must be an integer or an Array; got a string/);
    expect(() => R.split(k, 0)).toThrow(/^random\.split: num must be at least 1; got 0/);
    expect(() => R.key(1.5)).toThrow(/^random\.key: seed must be an integer .*; got a number \(1.5\)/);
    expect(() => R.key(2 ** 60)).toThrow(RangeError);
    expect(() => R.seed("1" as unknown as number)).toThrow(TypeError);
    expect(() => R.gumbel([-1])).toThrow(/^random\.gumbel: shape must be a list of non-negative integers/);
    expect(() => R.normal([2], { mean: 1 } as never)).toThrow(/^random\.normal: .*unknown option "mean"/);
  });
});
