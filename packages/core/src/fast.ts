/**
 * @file mx.fast: layerNorm, rmsNorm, rope and scaledDotProductAttention with MLX's semantics, as
 * composites of existing ops (so grad and vmap come for free). Half-precision inputs are computed
 * in float32 and the result cast back, as MLX's kernels accumulate.
 */
import { Array, isArray } from "./array.js";
import { isFloating, promoteTypes, type DType } from "./dtype.js";
import { DTypeError, ShapeError, fmtShape } from "./errors.js";
import * as lax from "./lax.js";
import type { DeviceOptions } from "./device.js";
import { broadcastShapes, checkArray, checkBoolOption, checkFinite, checkInteger, fmtGot, withDevice } from "./ops/util.js";
import { matmulOf } from "./ops/linalg.js";
import { sliceAxis } from "./ops/shape.js";

/** The dtype arithmetic runs in: float32 for the half types, otherwise the dtype itself. */
const computeType = (t: DType): DType => (t === "float16" || t === "bfloat16" ? "float32" : t);
const lastAxis = (x: Array) => [x.ndim - 1];

/** The floating dtype of the operands (null ones skipped), or a DTypeError naming the op. */
function floatType(op: string, xs: [string, Array | null][]): DType {
  const t = xs.filter(([, x]) => x !== null).map(([, x]) => x!.dtype).reduce(promoteTypes);
  if (!isFloating(t)) {
    const got = xs.filter(([, x]) => x !== null).map(([n, x]) => `${n} ${x!.dtype}`).join(", ");
    throw new DTypeError(`${op}: inputs must be floating point (float16, bfloat16, float32, float64); got ${got}`);
  }
  return t;
}

/** An optional per-feature parameter (weight, bias): null, or a 1-D array of the last axis's size. */
function checkFeature(op: string, name: string, p: unknown, x: Array, position: number): Array | null {
  if (p === null || p === undefined) return null;
  checkArray(op, p, position);
  const d = x.shape[x.ndim - 1];
  if (p.ndim !== 1 || p.shape[0] !== d) {
    throw new ShapeError(`${op}: ${name} must have shape [${d}] (the last axis of x ${fmtShape(x.shape)}); got ${fmtShape(p.shape)}`);
  }
  return p;
}

/** Checks x (at least 1-D) and eps (a non-negative number). */
function checkNormArgs(op: string, x: unknown, eps: unknown, epsPosition: string): asserts x is Array {
  checkArray(op, x, 1);
  if (x.ndim === 0) throw new ShapeError(`${op}: x must have at least 1 dimension; got shape []`);
  if (typeof eps !== "number") throw new TypeError(`${op}: eps (${epsPosition}) must be a number; got ${fmtGot(eps)}`);
  checkFinite(op, "eps", eps);
  if (eps < 0) throw new RangeError(`${op}: eps must be non-negative; got ${eps}`);
}

/** Multiplies by weight and adds bias (each optional), broadcast along the last axis. */
function affine(y: Array, weight: Array | null, bias: Array | null): Array {
  if (weight) y = lax.mul(y, lax.broadcastTo(lax.cast(weight, y.dtype), y.shape));
  if (bias) y = lax.add(y, lax.broadcastTo(lax.cast(bias, y.dtype), y.shape));
  return y;
}

/** The mean over the last axis, kept as a size-1 axis and broadcast back to x's shape. */
function meanLast(x: Array): Array {
  const d = x.shape[x.ndim - 1];
  const s = lax.reduceSum(x, lastAxis(x));
  const m = lax.div(s, lax.constLike(s, d));
  return lax.broadcastTo(lax.reshape(m, [...x.shape.slice(0, -1), 1]), x.shape);
}

/**
 * Layer normalization over the last axis: `(x - mean) / sqrt(var + eps) * weight + bias`, the
 * variance biased; `weight` and `bias` are 1-D of the last axis's size, or null to skip them.
 * @example
 * const y = mx.fast.layerNorm(x, gamma, beta, 1e-5);
 * mx.fast.layerNorm(x, null, null, 1e-5); // normalization only
 */
export function layerNorm(x: Array, weight: Array | null, bias: Array | null, eps: number, options: DeviceOptions = {}): Array {
  return withDevice("fast.layerNorm", options, () => {
    checkNormArgs("fast.layerNorm", x, eps, "argument 4");
    const w = checkFeature("fast.layerNorm", "weight", weight, x, 2);
    const b = checkFeature("fast.layerNorm", "bias", bias, x, 3);
    const t = floatType("fast.layerNorm", [["x", x], ["weight", w], ["bias", b]]);
    const xf = lax.cast(x, computeType(t));
    const xc = lax.sub(xf, meanLast(xf));
    const v = meanLast(lax.mul(xc, xc));
    const y = lax.mul(xc, lax.rsqrt(lax.add(v, lax.constLike(v, eps))));
    return lax.cast(affine(y, w, b), t);
  });
}

/**
 * Root-mean-square normalization over the last axis: `x / sqrt(mean(x^2) + eps) * weight`;
 * `weight` is 1-D of the last axis's size, or null to skip it.
 * @example
 * const y = mx.fast.rmsNorm(x, weight, 1e-5);
 * mx.fast.rmsNorm(x, null, 1e-6);
 */
export function rmsNorm(x: Array, weight: Array | null, eps: number, options: DeviceOptions = {}): Array {
  return withDevice("fast.rmsNorm", options, () => {
    checkNormArgs("fast.rmsNorm", x, eps, "argument 3");
    const w = checkFeature("fast.rmsNorm", "weight", weight, x, 2);
    const t = floatType("fast.rmsNorm", [["x", x], ["weight", w]]);
    const xf = lax.cast(x, computeType(t));
    const ms = meanLast(lax.mul(xf, xf));
    const y = lax.mul(xf, lax.rsqrt(lax.add(ms, lax.constLike(ms, eps))));
    return lax.cast(affine(y, w, null), t);
  });
}

/** Options of rope. */
export interface RopeOptions extends DeviceOptions {
  /** Rotate interleaved pairs (x[2i], x[2i+1]) instead of the halves (x[i], x[i + dims/2]) (default false). */
  traditional?: boolean;
  /** The base of the frequencies base^(-2i/dims) (default 10000). */
  base?: number;
  /** Scale of the positions (default 1). */
  scale?: number;
  /** Position of the first row: row l is at position offset + l (default 0); a number or a size-1 array. */
  offset?: number | Array;
}

/**
 * Rotary positional encoding (MLX's fast.rope). The positions run along the second-to-last axis
 * (row l at `(offset + l) * scale`) and the first `dims` features of the last axis are rotated in
 * pairs by angle `position * base^(-2i/dims)`, pair i being `(x[2i], x[2i+1])` when `traditional`
 * and `(x[i], x[i + dims/2])` otherwise; the remaining features pass through unchanged.
 * @example
 * const q = mx.fast.rope(queries, 64, { traditional: false, base: 10000, offset: cacheLength });
 * mx.fast.rope(x, 32, { traditional: true }).shape; // x.shape
 */
export function rope(x: Array, dims: number, options: RopeOptions = {}): Array {
  return withDevice("fast.rope", options, () => {
    checkArray("fast.rope", x, 1);
    if (x.ndim < 2) throw new ShapeError(`fast.rope: x must have at least 2 dimensions ([..., L, D]); got ${fmtShape(x.shape)}`);
    const d = x.shape[x.ndim - 1], len = x.shape[x.ndim - 2];
    checkInteger("fast.rope", "dims", dims, 1);
    if (dims % 2 !== 0 || dims > d) {
      throw new RangeError(`fast.rope: dims must be even and at most the last axis of x (${d}); got ${dims}`);
    }
    const o = options ?? {};
    const traditional = checkBoolOption("fast.rope", "traditional", o.traditional) ?? false;
    const base = o.base === undefined ? 10000 : checkFinite("fast.rope", "base", o.base);
    if (base <= 0) throw new RangeError(`fast.rope: base must be positive; got ${base}`);
    const scale = o.scale === undefined ? 1 : checkFinite("fast.rope", "scale", o.scale);
    const offset = o.offset ?? 0;
    if (isArray(offset)) {
      checkArray("fast.rope", offset, 1);
      if (offset.size !== 1) throw new ShapeError(`fast.rope: offset must be a number or a size-1 array; got shape ${fmtShape(offset.shape)}`);
    } else {
      checkFinite("fast.rope", "offset", offset);
    }
    const t = floatType("fast.rope", [["x", x]]), ct = computeType(t);
    const half = dims / 2;
    // positions (offset + l) * scale, frequencies exp(-i ln(base) / half) = base^(-2i/dims)
    let pos = lax.arange(0, 1, len, ct);
    const off = isArray(offset) ? lax.reshape(lax.cast(offset, ct), []) : lax.full([], offset, ct);
    pos = lax.mul(lax.add(pos, lax.broadcastTo(off, [len])), lax.full([len], scale, ct));
    const idx = lax.arange(0, 1, half, ct);
    const freqs = lax.exp(lax.mul(idx, lax.full([half], -Math.log(base) / half, ct)));
    const theta = lax.mul(lax.broadcastTo(lax.reshape(pos, [len, 1]), [len, half]), lax.broadcastTo(lax.reshape(freqs, [1, half]), [len, half]));
    const xf = lax.cast(x, ct);
    const lead = x.shape.slice(0, -1);
    const ax = x.ndim - 1;
    const rotate = (x1: Array, x2: Array): [Array, Array] => {
      const cos = lax.broadcastTo(lax.cos(theta), x1.shape), sin = lax.broadcastTo(lax.sin(theta), x1.shape);
      return [lax.sub(lax.mul(x1, cos), lax.mul(x2, sin)), lax.add(lax.mul(x1, sin), lax.mul(x2, cos))];
    };
    let rotated: Array;
    if (traditional) {
      const pairs = lax.reshape(sliceAxis(xf, ax, 0, dims), [...lead, half, 2]);
      const x1 = lax.reshape(sliceAxis(pairs, ax + 1, 0, 1), [...lead, half]);
      const x2 = lax.reshape(sliceAxis(pairs, ax + 1, 1, 2), [...lead, half]);
      const [y1, y2] = rotate(x1, x2);
      const ys = [y1, y2].map((y) => lax.reshape(y, [...lead, half, 1]));
      rotated = lax.reshape(lax.concatenate(ys, ax + 1), [...lead, dims]);
    } else {
      const [y1, y2] = rotate(sliceAxis(xf, ax, 0, half), sliceAxis(xf, ax, half, dims));
      rotated = lax.concatenate([y1, y2], ax);
    }
    const out = dims < d ? lax.concatenate([rotated, sliceAxis(xf, ax, dims, d)], ax) : rotated;
    return lax.cast(out, t);
  }, ["traditional", "base", "scale", "offset"]);
}

/** Options of scaledDotProductAttention. */
export interface AttentionOptions extends DeviceOptions {
  /** Factor of q k^T (default 1 / sqrt(D)). */
  scale?: number;
  /**
   * An additive mask broadcastable to [B, H, Lq, Lk] (a bool mask keeps where true), or "causal":
   * query i sees keys j <= i + Lk - Lq, so the last query aligns with the last key.
   */
  mask?: Array | "causal" | null;
}

/** The most negative finite value of each float dtype: masked scores, as MLX's finfo(t).min. */
const LOWEST: Record<string, number> = {
  float16: -65504, bfloat16: -3.3895313892515355e38, float32: -3.4028234663852886e38, float64: -Number.MAX_VALUE,
};

/**
 * Attention `softmax(scale * q k^T + mask) v` with q `[B, H, Lq, D]`, k `[B, Hkv, Lk, D]` and
 * v `[B, Hkv, Lk, Dv]`; H a multiple of Hkv (grouped-query heads: query head h reads key/value
 * head floor(h / (H / Hkv))). The result is `[B, H, Lq, Dv]`. The softmax runs in float32 for
 * half-precision inputs.
 * @example
 * const o = mx.fast.scaledDotProductAttention(q, k, v, { scale: 1 / Math.sqrt(64), mask: "causal" });
 * mx.fast.scaledDotProductAttention(q, k, v, { mask: additiveMask }).shape; // [B, H, Lq, Dv]
 */
export function scaledDotProductAttention(q: Array, k: Array, v: Array, options: AttentionOptions = {}): Array {
  const op = "fast.scaledDotProductAttention";
  return withDevice(op, options, () => {
    [q, k, v].forEach((x, i) => checkArray(op, x, i + 1));
    const shapes = `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
    if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new ShapeError(`${op}: q, k and v must be 4-D [B, heads, L, D]; got ${shapes}`);
    const [b, h, lq, d] = q.shape, [bk, hkv, lk, dk] = k.shape, [bv, hv, lv] = v.shape;
    if (bk !== b || bv !== b) throw new ShapeError(`${op}: q, k and v must have the same batch size; got ${shapes}`);
    if (dk !== d) throw new ShapeError(`${op}: q and k must have the same feature size D; got ${shapes}`);
    if (hv !== hkv || lv !== lk) throw new ShapeError(`${op}: k and v must have the same heads and length; got ${shapes}`);
    if (hkv === 0 || h % hkv !== 0) throw new ShapeError(`${op}: the query heads (${h}) must be a multiple of the key/value heads (${hkv}); got ${shapes}`);
    const o = options ?? {};
    const scale = o.scale === undefined ? 1 / Math.sqrt(d) : checkFinite(op, "scale", o.scale);
    const mask = o.mask ?? null;
    if (mask !== null && mask !== "causal") {
      if (!isArray(mask)) throw new TypeError(`${op}: mask must be an array or "causal"; got ${fmtGot(mask)}`);
      checkArray(op, mask, 4);
      let fits = false;
      try {
        fits = fmtShape(broadcastShapes(op, [mask.shape, [b, h, lq, lk]])) === fmtShape([b, h, lq, lk]);
      } catch {
        fits = false;
      }
      if (!fits) throw new ShapeError(`${op}: mask of shape ${fmtShape(mask.shape)} cannot be broadcast to the scores' shape ${fmtShape([b, h, lq, lk])}`);
    }
    const t = floatType(op, [["q", q], ["k", k], ["v", v]]), ct = computeType(t);
    const rep = h / hkv;
    // Query heads grouped by their key/value head: [B, Hkv, rep, Lq, D] against [B, Hkv, 1, Lk, D].
    const qs = lax.reshape(lax.mul(lax.cast(q, t), lax.full(q.shape, scale, t)), [b, hkv, rep, lq, d]);
    const kt = lax.reshape(lax.transpose(lax.cast(k, t), [0, 1, 3, 2]), [b, hkv, 1, d, lk]);
    const scoreShape = [b, h, lq, lk];
    let s = lax.cast(lax.reshape(matmulOf(qs, kt, op), scoreShape), ct);
    if (mask === "causal") {
      const rows = lax.broadcastTo(lax.reshape(lax.arange(lk - lq, 1, lq, "int32"), [lq, 1]), [lq, lk]);
      const cols = lax.broadcastTo(lax.reshape(lax.arange(0, 1, lk, "int32"), [1, lk]), [lq, lk]);
      const keep = lax.broadcastTo(lax.greaterEqual(rows, cols), scoreShape);
      s = lax.where(keep, s, lax.full(scoreShape, LOWEST[ct], ct));
    } else if (mask !== null && mask.dtype === "bool") {
      s = lax.where(lax.broadcastTo(mask, scoreShape), s, lax.full(scoreShape, LOWEST[ct], ct));
    } else if (mask !== null) {
      s = lax.add(s, lax.broadcastTo(lax.cast(mask, ct), scoreShape));
    }
    // softmax over the keys, shifted by the (constant) row maximum
    const m = lk > 0 ? lax.stopGradient(lax.reduceMax(s, [3])) : lax.full([b, h, lq], 0, ct);
    const e = lax.exp(lax.sub(s, lax.broadcastTo(lax.reshape(m, [b, h, lq, 1]), scoreShape)));
    const p = lax.div(e, lax.broadcastTo(lax.reshape(lax.reduceSum(e, [3]), [b, h, lq, 1]), scoreShape));
    const pg = lax.reshape(lax.cast(p, t), [b, hkv, rep, lq, lk]);
    const vs = lax.reshape(lax.cast(v, t), [b, hkv, 1, lk, v.shape[3]]);
    return lax.reshape(matmulOf(pg, vs, op), [b, h, lq, v.shape[3]]);
  }, ["scale", "mask"]);
}
