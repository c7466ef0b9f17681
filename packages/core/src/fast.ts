/**
 * @file mx.fast: layerNorm, rmsNorm, rope and scaledDotProductAttention with MLX's semantics, each
 * one fused primitive (primitives/fast.ts) with a fused backward. Half-precision inputs are
 * computed in float32 and the result cast back, as MLX's kernels accumulate.
 */
import { Array, isArray } from "./array.js";
import { isFloating, promoteTypes, type DType } from "./dtype.js";
import { DTypeError, ShapeError, fmtShape } from "./errors.js";
import * as lax from "./lax.js";
import type { DeviceOptions } from "./device.js";
import { broadcastShapes, checkArray, checkBoolOption, checkFinite, checkInteger, fmtGot, withDevice } from "./ops/util.js";
import { LOWEST } from "./primitives/fast-plain.js";

/** The dtype arithmetic runs in: float32 for the half types, otherwise the dtype itself. */
const computeType = (t: DType): DType => (t === "float16" || t === "bfloat16" ? "float32" : t);

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
    const ct = computeType(t);
    const y = lax.layerNorm(lax.cast(x, ct), w && lax.cast(w, ct), b && lax.cast(b, ct), eps);
    return lax.cast(y, t);
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
    const ct = computeType(t);
    return lax.cast(lax.rmsNorm(lax.cast(x, ct), w && lax.cast(w, ct), eps), t);
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
    const off = isArray(offset) ? lax.cast(lax.reshape(offset, []), "float64") : null;
    const params = { dims, traditional, base, scale, offset: isArray(offset) ? 0 : offset, hasOffset: off !== null };
    return lax.cast(lax.rope(lax.cast(x, ct), off, params), t);
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
    const scoreShape = [b, h, lq, lk];
    let m: Array | null = null;
    if (mask !== null && mask !== "causal") {
      // A bool mask keeps where true: the others get the lowest finite score, as MLX.
      const add = mask.dtype === "bool"
        ? lax.where(mask, lax.full(mask.shape, 0, ct), lax.full(mask.shape, LOWEST[ct], ct))
        : lax.cast(mask, ct);
      m = lax.broadcastTo(lax.reshape(add, [...globalThis.Array(4 - add.ndim).fill(1), ...add.shape]), scoreShape);
    }
    const kind = mask === "causal" ? "causal" : m ? "additive" : "none";
    const [out] = lax.attention(lax.cast(q, ct), lax.cast(k, ct), lax.cast(v, ct), m, { scale, mask: kind });
    return lax.cast(out, t);
  }, ["scale", "mask"]);
}
