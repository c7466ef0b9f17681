/**
 * @file mx.random: keys, the global key, and every distribution as a composite over the one
 * random primitive, randomBits (Threefry-2x32 words; primitives/random.ts).
 */
import { Array, isArray } from "./array.js";
import { isFloating, isInteger, type DType } from "./dtype.js";
import { DTypeError, ShapeError, fmtShape } from "./errors.js";
import { intRange } from "./convert.js";
import * as lax from "./lax.js";
import type { DeviceOptions } from "./device.js";
import { dynamicScalars } from "./eval/tracing.js";
import { argsort } from "./ops/scan.js";
import { take } from "./ops/indexing.js";
import {
  broadcastShapes, checkArray, checkDType, checkInteger, checkShape, fmtGot, normalizeAxis, withDevice,
} from "./ops/util.js";

type Num = number | Array;

/** The `key` option every sampler takes. */
export interface KeyOptions extends DeviceOptions {
  /** A key from `key` or `split` (a uint32 array of shape [2]); default: the next global key. */
  key?: Array;
}
/** Options of the samplers that take a dtype. */
export interface SampleOptions extends KeyOptions {
  /** The result dtype: floating (default float32), or integer for randint (default int32). */
  dtype?: DType;
}

// ---- Threefry-2x32 in JS, for the global key (the same function as native/src/cpu/random.cc) ----

const ROT = [13, 15, 26, 6, 17, 29, 16, 24];
const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;

/** Threefry-2x32 with 20 rounds of counter (c0, c1) under key (k0, k1). */
function threefry(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (0x1bd11bda ^ k0 ^ k1) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0, x1 = (c1 + ks[1]) >>> 0;
  for (let block = 0; block < 5; block++) {
    for (let r = 0; r < 4; r++) {
      x0 = (x0 + x1) >>> 0;
      x1 = rotl(x1, ROT[(block % 2) * 4 + r]);
      x1 = (x1 ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(block + 1) % 3]) >>> 0;
    x1 = (x1 + ks[(block + 2) % 3] + block + 1) >>> 0;
  }
  return [x0, x1];
}

/** A seed's key words: the seed as 64-bit two's complement, high word first (as JAX and MLX). */
function seedWords(op: string, seed: unknown): [number, number] {
  let v: bigint;
  if (typeof seed === "bigint") {
    if (seed < -(2n ** 63n) || seed >= 2n ** 64n) throw new RangeError(`${op}: seed must fit in 64 bits; got ${seed}n`);
    v = BigInt.asUintN(64, seed);
  } else if (typeof seed === "number" && Number.isInteger(seed)) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`${op}: seed must be a safe integer (or a BigInt); got ${seed}`);
    v = BigInt.asUintN(64, BigInt(seed));
  } else {
    throw new TypeError(`${op}: seed must be an integer (a number or a BigInt); got ${fmtGot(seed)}`);
  }
  return [Number(v >> 32n), Number(v & 0xffffffffn)];
}

/** A key array holding two words, recorded as constants (no upload, no native call). */
function keyArray(w0: number, w1: number): Array {
  return lax.concatenate([lax.full([1], w0, "uint32"), lax.full([1], w1, "uint32")], 0);
}

/** The global key's words; null until seeded (then seeded from the clock, as MLX does). */
let globalKey: [number, number] | null = null;

/** Splits the global key in two, keeps the first half and returns the second's words. */
function nextKeyWords(): [number, number] {
  const [k0, k1] = globalKey ?? seedWords("random.seed", Date.now());
  globalKey = threefry(k0, k1, 0, 0);
  return threefry(k0, k1, 1, 0);
}

/**
 * The next key from the global key. While compile traces, its words are dynamic scalars: each
 * call of the compiled function draws its own key, as the function would uncompiled.
 */
function nextKey(): Array {
  const dynamic = dynamicScalars(nextKeyWords);
  if (!dynamic) return keyArray(...nextKeyWords());
  return lax.concatenate([lax.reshape(dynamic.scalar(0, "uint32"), [1]), lax.reshape(dynamic.scalar(1, "uint32"), [1])], 0);
}

function checkKey(op: string, key: unknown): Array {
  checkArray(op, key);
  if (key.dtype !== "uint32") throw new DTypeError(`${op}: key must be a uint32 array (from mx.random.key or split); got dtype ${key.dtype}`);
  if (key.shape.length !== 1 || key.shape[0] !== 2) throw new ShapeError(`${op}: key must have shape [2]; got ${fmtShape(key.shape)}`);
  return key;
}
const keyOf = (op: string, key: unknown) => (key === undefined ? nextKey() : checkKey(op, key));

/**
 * Seeds the global key, from which samplers called without a `key` draw (each call splits it).
 * @example
 * mx.random.seed(0);
 * const a = mx.random.uniform();
 * mx.random.seed(0);
 * mx.random.uniform().item() === a.item(); // true
 */
export function seed(n: number | bigint): void {
  globalKey = seedWords("random.seed", n);
}

/**
 * A key for seed `n`: a uint32 array of shape [2] (the seed's high and low 32 bits).
 * @example
 * const k = mx.random.key(42);
 * mx.random.normal([3], { key: k }); // the same numbers on every call with k
 */
export function key(n: number | bigint, options: DeviceOptions = {}): Array {
  return withDevice("random.key", options, () => keyArray(...seedWords("random.key", n)));
}

/**
 * Splits a key into `num` new, independent keys (a JS array).
 * @example
 * const [k1, k2] = mx.random.split(mx.random.key(0));
 * const keys = mx.random.split(k1, 4); // four keys
 */
export function split(key: Array, num = 2, options: DeviceOptions = {}): Array[] {
  return withDevice("random.split", options, () => {
    checkKey("random.split", key);
    checkInteger("random.split", "num", num, 1);
    const words = lax.randomBits(key, [num, 2]);
    return [...globalThis.Array(num).keys()].map((i) =>
      lax.reshape(lax.slice(words, { start: [i, 0], step: [1, 1], shape: [1, 2] }), [2]));
  });
}

// ---- building blocks ----

/** Significand bits (with the implicit one) of each float dtype. */
const PRECISION: Partial<Record<DType, number>> = { float16: 11, bfloat16: 8, float32: 24, float64: 53 };
/** The smallest positive (subnormal) value of each float dtype. */
const TINY: Partial<Record<DType, number>> = { float16: 2 ** -24, bfloat16: 2 ** -133, float32: 2 ** -149, float64: 2 ** -1074 };

/** The dtype a float sampler computes in: float32 for the half types. */
const computeType = (t: DType): DType => (t === "float64" ? "float64" : "float32");
const c = (x: Array, v: number) => lax.constLike(x, v);

/** Word j (0 or 1) of the last axis of a [...shape, 2] array, as [...shape]. */
function word(w: Array, j: number): Array {
  const shape = w.shape.slice(0, -1);
  const sl = lax.slice(w, { start: [...shape.map(() => 0), j], step: w.shape.map(() => 1), shape: [...shape, 1] });
  return lax.reshape(sl, shape);
}

/**
 * Uniform values k * 2^-p in [0, 1) of dtype t, with k the top p bits of random words (p the
 * dtype's significand bits, so every value is exact: mantissa construction at full precision).
 */
function unitUniform(key: Array, shape: number[], t: DType): Array {
  const p = PRECISION[t]!;
  if (t === "float64") {
    const w = lax.randomBits(key, [...shape, 2]);
    const hi = lax.cast(lax.rightShift(word(w, 0), c(word(w, 0), 5)), "float64"); // 27 bits
    const lo = lax.cast(lax.rightShift(word(w, 1), c(word(w, 1), 6)), "float64"); // 26 bits
    return lax.mul(lax.add(lax.mul(hi, c(hi, 2 ** 26)), lo), c(hi, 2 ** -53));
  }
  const bits = lax.randomBits(key, shape);
  const k = lax.cast(lax.rightShift(bits, c(bits, 32 - p)), "float32");
  return lax.cast(lax.mul(k, c(k, 2 ** -p)), t);
}

/**
 * The largest value of float dtype t below each h, computed in float64: h - delta rounds to it
 * when delta is in (s/2, 3s/2) for the spacing s below h (|h| 2^-p does that for h > 0, 1.5 |h|
 * 2^-p for h < 0, and the smallest subnormal for subnormal h and 0).
 */
function nextBelow(h: Array, t: DType): Array {
  const h64 = lax.cast(h, "float64");
  const factor = lax.where(lax.greater(h64, c(h64, 0)), c(h64, 2 ** -PRECISION[t]!), c(h64, 1.5 * 2 ** -PRECISION[t]!));
  const delta = lax.maximum(lax.mul(lax.abs(h64), factor), c(h64, TINY[t]!));
  return lax.cast(lax.sub(h64, delta), t);
}

/** A bound (number or Array) as an Array of dtype t. */
function asBound(op: string, name: string, v: unknown, t: DType): Array {
  if (typeof v === "number") return lax.full([], v, t);
  if (isArray(v)) {
    checkArray(op, v);
    return lax.cast(v, t);
  }
  throw new TypeError(`${op}: ${name} must be a number or an Array; got ${fmtGot(v)}`);
}

/**
 * The sample shape: `shape` if given (every operand must broadcast to it), else the operands'
 * broadcast shape.
 */
function sampleShape(op: string, shape: unknown, operands: Array[]): number[] {
  const joint = broadcastShapes(op, operands.map((a) => a.shape));
  if (shape === undefined || shape === null) return joint;
  const s = checkShape(op, shape);
  const all = broadcastShapes(op, [s, joint]);
  if (all.length !== s.length || all.some((d, i) => d !== s[i])) {
    throw new ShapeError(`${op}: parameters of shape ${operands.map((a) => fmtShape(a.shape)).join(" and ")} do not broadcast to shape ${fmtShape(s)}`);
  }
  return s;
}
const to = (x: Array, shape: number[]) => lax.broadcastTo(lax.reshape(x, [...globalThis.Array(shape.length - x.ndim).fill(1), ...x.shape]), shape);

function floatDType(op: string, dtype: unknown): DType {
  const t = dtype === undefined ? "float32" : checkDType(op, dtype);
  if (!isFloating(t)) throw new DTypeError(`${op}: dtype must be a floating type (float16, bfloat16, float32, float64); got ${t}`);
  return t;
}

/** Standard normal samples in dtype t (float32 or float64) via erfinv of a uniform on (-1, 1), as MLX. */
function standardNormal(key: Array, shape: number[], t: DType): Array {
  const u01 = unitUniform(key, shape, t);
  const u = lax.maximum(lax.sub(lax.mul(u01, c(u01, 2)), c(u01, 1)), c(u01, -1 + 2 ** -PRECISION[t]!)); // exact, > -1
  return lax.mul(lax.erfinv(u), c(u, Math.SQRT2));
}

/** Standard Gumbel samples in dtype t: -log(-log(u)) with u in [smallest normal, 1). */
function standardGumbel(key: Array, shape: number[], t: DType): Array {
  const u = unitUniform(key, shape, t);
  const floor = t === "float64" ? 2 ** -1022 : 2 ** -126;
  return lax.neg(lax.log(lax.neg(lax.log(lax.maximum(u, c(u, floor))))));
}

// ---- samplers ----

/**
 * Samples uniformly from [low, high) (defaults 0 and 1; numbers or Arrays that broadcast to
 * `shape`, whose default is their broadcast shape). Every value is strictly below `high`.
 * @example
 * const k = mx.random.key(0);
 * mx.random.uniform(-1, 1, [2, 3], { key: k });              // float32 in [-1, 1)
 * mx.random.uniform(0, 1, [4], { dtype: "float64", key: k });
 */
export function uniform(low: Num = 0, high: Num = 1, shape?: number[], options: SampleOptions = {}): Array {
  const op = "random.uniform";
  return withDevice(op, options, () => {
    const t = floatDType(op, options?.dtype);
    const lo = asBound(op, "low", low, t), hi = asBound(op, "high", high, t);
    const s = sampleShape(op, shape, [lo, hi]);
    const k = keyOf(op, options?.key);
    const [l, h] = [to(lo, s), to(hi, s)];
    const r = lax.add(l, lax.mul(unitUniform(k, s, t), lax.sub(h, l)));
    // Rounding can reach high; those values become the largest one below it.
    return lax.where(lax.less(r, h), r, nextBelow(h, t));
  }, ["dtype", "key"]);
}

/** Options of normal. */
export interface NormalOptions extends SampleOptions {
  /** The mean (default 0): a number or an Array that broadcasts to the shape. */
  loc?: Num;
  /** The standard deviation (default 1): a number or an Array that broadcasts to the shape. */
  scale?: Num;
}

/**
 * Samples from a normal distribution with mean `loc` and standard deviation `scale` (half
 * types are computed in float32 and rounded).
 * @example
 * const x = mx.random.normal([2, 3], { key: mx.random.key(0) });
 * const y = mx.random.normal([100], { loc: 5, scale: 2, dtype: "float64" });
 */
export function normal(shape: number[] = [], options: NormalOptions = {}): Array {
  const op = "random.normal";
  return withDevice(op, options, () => {
    const t = floatDType(op, options?.dtype), ct = computeType(t);
    const loc = asBound(op, "loc", options?.loc ?? 0, ct), scale = asBound(op, "scale", options?.scale ?? 1, ct);
    const s = sampleShape(op, shape, [loc, scale]);
    const z = standardNormal(keyOf(op, options?.key), s, ct);
    return lax.cast(lax.add(to(loc, s), lax.mul(to(scale, s), z)), t);
  }, ["dtype", "loc", "scale", "key"]);
}

/**
 * Samples from a standard Gumbel distribution (CDF exp(-exp(-x))).
 * @example
 * const g = mx.random.gumbel([3], { key: mx.random.key(1) });
 */
export function gumbel(shape: number[] = [], options: SampleOptions = {}): Array {
  const op = "random.gumbel";
  return withDevice(op, options, () => {
    const t = floatDType(op, options?.dtype);
    const s = checkShape(op, shape);
    return lax.cast(standardGumbel(keyOf(op, options?.key), s, computeType(t)), t);
  }, ["dtype", "key"]);
}

/**
 * Samples from a standard normal truncated to [lower, upper] (numbers or Arrays that broadcast
 * to `shape`, whose default is their broadcast shape), by erfinv of a uniform on [erf(lower/√2),
 * erf(upper/√2)).
 * @example
 * const x = mx.random.truncatedNormal(-2, 2, [5], { key: mx.random.key(0) }); // all in [-2, 2]
 */
export function truncatedNormal(lower: Num, upper: Num, shape?: number[], options: SampleOptions = {}): Array {
  const op = "random.truncatedNormal";
  return withDevice(op, options, () => {
    const t = floatDType(op, options?.dtype), ct = computeType(t);
    if (typeof lower === "number" && typeof upper === "number" && !(lower < upper)) {
      throw new RangeError(`${op}: lower must be below upper; got lower ${lower}, upper ${upper}`);
    }
    // The bounds as dtype t represents them, so the samples lie within those.
    const lo = lax.cast(asBound(op, "lower", lower, t), ct), hi = lax.cast(asBound(op, "upper", upper, t), ct);
    const s = sampleShape(op, shape, [lo, hi]);
    const [l, h] = [to(lo, s), to(hi, s)];
    const a = lax.erf(lax.mul(l, c(l, Math.SQRT1_2))), b = lax.erf(lax.mul(h, c(h, Math.SQRT1_2)));
    const u01 = unitUniform(keyOf(op, options?.key), s, ct);
    const u = lax.maximum(lax.add(a, lax.mul(u01, lax.sub(b, a))), c(a, -1 + 2 ** -PRECISION[ct]!));
    const z = lax.mul(lax.erfinv(u), c(u, Math.SQRT2));
    return lax.cast(lax.minimum(lax.maximum(z, l), h), t);
  }, ["dtype", "key"]);
}

/**
 * Samples true with probability `p` (default 0.5; a number in [0, 1] or an Array that broadcasts
 * to `shape`, whose default is p's shape). Returns a bool array.
 * @example
 * const mask = mx.random.bernoulli(0.9, [4, 4], { key: mx.random.key(0) });
 */
export function bernoulli(p: Num = 0.5, shape?: number[], options: KeyOptions = {}): Array {
  const op = "random.bernoulli";
  return withDevice(op, options, () => {
    if (typeof p === "number" && !(p >= 0 && p <= 1)) throw new RangeError(`${op}: p must be in [0, 1]; got ${p}`);
    const t = isArray(p) && p.dtype === "float64" ? "float64" : "float32";
    const pa = asBound(op, "p", p, t);
    const s = sampleShape(op, shape, [pa]);
    return lax.less(unitUniform(keyOf(op, options?.key), s, t), to(pa, s));
  }, ["key"]);
}

/** A randint bound as a BigInt, or the Array it is. */
function intBound(op: string, name: string, v: unknown): bigint | Array {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new TypeError(`${op}: ${name} must be an integer (a safe integer or a BigInt); got ${v}`);
    return BigInt(v);
  }
  if (isArray(v)) {
    checkArray(op, v);
    if (!isInteger(v.dtype)) throw new DTypeError(`${op}: ${name} must have an integer dtype; got ${v.dtype}`);
    return v;
  }
  throw new TypeError(`${op}: ${name} must be an integer or an integer Array; got ${fmtGot(v)}`);
}

/**
 * Samples integers uniformly from [low, high) (integers or integer Arrays that broadcast to
 * `shape`, whose default is their broadcast shape). The span high - low may be up to 2^32; the
 * bias is below span / 2^64 (two random words per sample, as JAX). With Array bounds, where
 * high <= low the result is low.
 * @example
 * const dice = mx.random.randint(1, 7, [10], { key: mx.random.key(0) }); // int32 in 1..6
 * const idx = mx.random.randint(0, 1000, [4], { dtype: "uint32" });
 */
export function randint(low: number | bigint | Array, high: number | bigint | Array, shape?: number[], options: SampleOptions = {}): Array {
  const op = "random.randint";
  return withDevice(op, options, () => {
    const t = options?.dtype === undefined ? "int32" : checkDType(op, options.dtype);
    if (!isInteger(t)) throw new DTypeError(`${op}: dtype must be an integer type; got ${t}`);
    const lb = intBound(op, "low", low), hb = intBound(op, "high", high);
    const wide: DType = t === "uint64" ? "uint64" : "int64";
    const [min, max] = intRange(t);
    if (typeof lb === "bigint" && (lb < min || lb > max)) throw new RangeError(`${op}: low ${lb} is out of range for ${t}`);
    if (typeof hb === "bigint" && (hb < min + 1n || hb > max + 1n)) throw new RangeError(`${op}: high ${hb} is out of range for ${t} (at most ${max + 1n})`);
    if (typeof lb === "bigint" && typeof hb === "bigint") {
      if (hb <= lb) throw new RangeError(`${op}: high must be above low; got low ${lb}, high ${hb}`);
      if (hb - lb > 2n ** 32n) throw new RangeError(`${op}: high - low must be at most 2^32; got ${hb - lb}`);
    } else if (wide === "uint64" || t === "int64") {
      throw new TypeError(`${op}: Array bounds need a dtype of at most 32 bits (their span must stay within 2^32); got dtype ${t}`);
    }
    const asWide = (b: bigint | Array) => (typeof b === "bigint" ? lax.full([], b, wide) : lax.cast(b, wide));
    const lo = asWide(lb), hi = asWide(hb);
    const s = sampleShape(op, shape, [lo, hi]);
    const [l, h] = [to(lo, s), to(hi, s)];
    const diff = lax.sub(h, l);
    const span = lax.cast(wide === "int64" ? lax.maximum(diff, c(diff, 1)) : diff, "uint64");
    const w = lax.randomBits(keyOf(op, options?.key), [...s, 2]);
    const [w0, w1] = [lax.cast(word(w, 0), "uint64"), lax.cast(word(w, 1), "uint64")];
    // offset = (w0 * 2^32 + w1) mod span, without overflow: 2^32 mod span squared, mod span.
    const t32 = lax.remainder(c(span, 2 ** 32), span);
    const mult = lax.remainder(lax.mul(t32, t32), span);
    const offset = lax.remainder(lax.add(lax.mul(lax.remainder(w0, span), mult), lax.remainder(w1, span)), span);
    return lax.cast(lax.add(l, lax.cast(offset, wide)), t);
  }, ["dtype", "key"]);
}

/** Options of categorical. */
export interface CategoricalOptions extends KeyOptions {
  /** The axis of the categories (default -1). */
  axis?: number;
  /** Samples per distribution, on a new last axis (default: one, with no axis). */
  numSamples?: number;
}

/**
 * Samples category indices from unnormalized log-probabilities `logits` along `axis`, by the
 * Gumbel-max trick. The result (uint32) has logits' shape without `axis`, with `numSamples` as a
 * new last axis if given.
 * @example
 * const logits = mx.log(mx.array([[0.1, 0.9], [0.5, 0.5]]));
 * mx.random.categorical(logits, { key: mx.random.key(0) });                 // shape [2]
 * mx.random.categorical(logits, { numSamples: 8, key: mx.random.key(1) });  // shape [2, 8]
 */
export function categorical(logits: Array, options: CategoricalOptions = {}): Array {
  const op = "random.categorical";
  return withDevice(op, options, () => {
    checkArray(op, logits);
    const axis = normalizeAxis(op, options?.axis ?? -1, logits.ndim, logits.shape);
    if (logits.shape[axis] === 0) throw new RangeError(`${op}: axis ${axis} of logits ${fmtShape(logits.shape)} has no categories`);
    const n = options?.numSamples;
    if (n !== undefined) checkInteger(op, "numSamples", n, 0);
    const ct = computeType(isFloating(logits.dtype) ? logits.dtype : "float32");
    let x = lax.moveaxis(lax.cast(logits, ct), axis, logits.ndim - 1);
    if (n !== undefined) {
      const batch = x.shape.slice(0, -1), k = x.shape[x.ndim - 1];
      x = lax.broadcastTo(lax.reshape(x, [...batch, 1, k]), [...batch, n, k]);
    }
    const g = standardGumbel(keyOf(op, options?.key), x.shape, ct);
    return lax.argmax(lax.add(x, g), x.ndim - 1);
  }, ["axis", "numSamples", "key"]);
}

/** Options of permutation. */
export interface PermutationOptions extends KeyOptions {
  /** The axis to shuffle (default 0). */
  axis?: number;
}

/**
 * A random permutation of 0..n-1 (int32) for a number `n`, or `x` shuffled along `axis`: the
 * order that sorts one random 64-bit word per position (stable, so ties, of probability below
 * n^2 / 2^65, keep their order).
 * @example
 * mx.random.permutation(5, { key: mx.random.key(0) });                // e.g. [3, 0, 4, 1, 2]
 * mx.random.permutation(mx.arange(6).reshape([2, 3]), { axis: 1 });    // columns shuffled
 */
export function permutation(xOrN: number | Array, options: PermutationOptions = {}): Array {
  const op = "random.permutation";
  return withDevice(op, options, () => {
    let n: number, axis = 0;
    if (typeof xOrN === "number") {
      n = checkInteger(op, "n", xOrN, 0);
      if (options?.axis !== undefined) checkInteger(op, "axis", options.axis);
    } else if (isArray(xOrN)) {
      checkArray(op, xOrN);
      axis = normalizeAxis(op, options?.axis ?? 0, xOrN.ndim, xOrN.shape);
      n = xOrN.shape[axis];
    } else {
      throw new TypeError(`${op}: xOrN must be an integer or an Array; got ${fmtGot(xOrN)}`);
    }
    const w = lax.randomBits(keyOf(op, options?.key), [n, 2]);
    const [hi, lo] = [lax.cast(word(w, 0), "uint64"), lax.cast(word(w, 1), "uint64")];
    const perm = argsort(lax.bitwiseOr(lax.leftShift(hi, c(hi, 32)), lo), 0);
    return typeof xOrN === "number" ? lax.cast(perm, "int32") : take(xOrN, perm, axis);
  }, ["axis", "key"]);
}
