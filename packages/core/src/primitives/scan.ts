/**
 * @file Scans along one axis (cumulative sum, product, max, min and logaddexp; inclusive or
 * exclusive; forward or reverse) and the stable sort, whose values and uint32 indices come from
 * one node. The derivative rules work on the canonical form, an inclusive forward scan: a reverse
 * scan is one of the flipped operand, and an exclusive scan is the inclusive one shifted by one.
 */
import type { Array } from "../array.js";
import { isFloating } from "../dtype.js";
import { defPrimitive, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";

export type ScanKind = "sum" | "prod" | "max" | "min" | "logaddexp";
const KIND_CODES: Record<ScanKind, number> = { sum: 0, prod: 1, max: 2, min: 3, logaddexp: 4 };

export interface ScanParams {
  kind: ScanKind;
  axis: number;
  reverse: boolean;
  inclusive: boolean;
}

/** The inclusive forward scan of x along axis. */
const cum = (x: Array, kind: ScanKind, axis: number, reverse = false) =>
  lax.scan(x, { kind, axis, reverse, inclusive: true });

/** x reversed along axis (a view); the axis must not be empty. */
function flip(x: Array, axis: number): Array {
  return lax.slice(x, {
    start: x.shape.map((d, i) => (i === axis ? d - 1 : 0)),
    step: x.shape.map((_, i) => (i === axis ? -1 : 1)),
    shape: x.shape,
  });
}

/** x moved one place along axis, to higher indices (by 1) or lower ones (by -1), filled with 0. */
function shift(x: Array, axis: number, by: 1 | -1): Array {
  const kept = x.shape.map((d, i) => (i === axis ? d - 1 : d));
  const part = lax.slice(x, { start: x.shape.map((_, i) => (i === axis && by === -1 ? 1 : 0)), step: x.shape.map(() => 1), shape: kept });
  const zero = lax.broadcastTo(lax.full([], 0, x.dtype), x.shape.map((d, i) => (i === axis ? 1 : d)));
  return lax.concatenate(by === 1 ? [zero, part] : [part, zero], axis);
}

/** Positions 0..n-1 along axis, broadcast to `shape` (int32 or uint32). */
function positions(shape: number[], axis: number, dtype: "int32" | "uint32"): Array {
  const n = shape[axis];
  return lax.broadcastTo(lax.reshape(lax.arange(0, 1, n, dtype), shape.map((d, i) => (i === axis ? n : 1))), shape);
}

/** out[..., i, ...] = x[..., idx[..., i, ...], ...] along axis. */
function takeAlong(x: Array, idx: Array, axis: number): Array {
  return lax.gather(x, idx, axis);
}
/** out[..., k, ...] = sum of g[..., i, ...] over the i with idx[..., i, ...] == k, along axis (size n). */
function scatterAddAlong(g: Array, idx: Array, axis: number, n: number): Array {
  const shape = g.shape.map((d, i) => (i === axis ? n : d));
  return lax.scatter(lax.broadcastTo(lax.full([], 0, g.dtype), shape), idx, g, axis, "add");
}

/**
 * cummax/cummin: the position each output came from, the latest tie (MLX's rule). That is the
 * last k <= i where x_k equals the running extreme y_k (or is NaN, which the extreme then is).
 */
function sources(x: Array, y: Array, axis: number): Array {
  let hit = lax.equal(x, y);
  if (isFloating(x.dtype)) hit = lax.logicalOr(hit, lax.isnan(x));
  const pos = positions(x.shape, axis, "int32");
  return cum(lax.where(hit, pos, lax.constLike(pos, -1)), "max", axis);
}

/**
 * Where the zeros of x are, for cumprod's derivatives: with c_i the number of zeros in x_0..x_i,
 * dy_i/dx_j is y_i / x_j while c_i = 0; with c_i = 1 only the first zero z has a derivative,
 * the product of the other elements (a cumprod of x with its zeros replaced by 1); with c_i >= 2
 * every derivative is zero.
 */
function zeroSplit(x: Array, axis: number) {
  const isZero = lax.equal(x, lax.constLike(x, 0));
  const c = cum(lax.cast(isZero, "int32"), "sum", axis);
  const one = lax.equal(c, lax.constLike(c, 1));
  const safe = lax.where(isZero, lax.constLike(x, 1), x);
  return { none: lax.equal(c, lax.constLike(c, 0)), one, first: lax.logicalAnd(isZero, one), safe, prodOthers: cum(safe, "prod", axis) };
}

/** log(max(t, 0)) and log(max(-t, 0)): t as a difference of two exponentials (-inf where 0). */
function logParts(t: Array): [Array, Array] {
  const zero = lax.zerosLike(t);
  return [lax.log(lax.maximum(t, zero)), lax.log(lax.maximum(lax.neg(t), zero))];
}

/** The tangent of the inclusive forward scan y of x along axis, for the tangent t of x. */
function canonicalJvp(kind: ScanKind, x: Array, t: Array, y: Array, axis: number): Array {
  switch (kind) {
    case "sum":
      return cum(t, "sum", axis);
    case "prod": {
      const z = zeroSplit(x, axis);
      const noZero = lax.mul(y, cum(lax.div(t, z.safe), "sum", axis));
      const atZero = lax.mul(cum(lax.where(z.first, t, lax.zerosLike(t)), "sum", axis), z.prodOthers);
      return lax.where(z.none, noZero, lax.where(z.one, atZero, lax.zerosLike(t)));
    }
    case "max":
    case "min":
      return takeAlong(t, sources(x, y, axis), axis);
    case "logaddexp": {
      // dy_i = sum_{j<=i} t_j exp(x_j - y_i), in log space for each sign of t.
      const [lp, ln] = logParts(t);
      const part = (l: Array) => lax.exp(lax.sub(cum(lax.add(x, l), "logaddexp", axis), y));
      return lax.sub(part(lp), part(ln));
    }
  }
}

/** The cotangent of x for the inclusive forward scan y of x along axis, given y's cotangent g. */
function canonicalVjp(kind: ScanKind, x: Array, g: Array, y: Array, axis: number): Array {
  switch (kind) {
    case "sum":
      return cum(g, "sum", axis, true);
    case "prod": {
      const z = zeroSplit(x, axis);
      const noZero = lax.div(cum(lax.mul(g, y), "sum", axis, true), z.safe);
      const atZero = cum(lax.where(z.one, lax.mul(g, z.prodOthers), lax.zerosLike(g)), "sum", axis, true);
      return lax.where(z.none, noZero, lax.where(z.first, atZero, lax.zerosLike(g)));
    }
    case "max":
    case "min":
      return scatterAddAlong(g, sources(x, y, axis), axis, x.shape[axis]);
    case "logaddexp": {
      // dx_j = sum_{i>=j} g_i exp(x_j - y_i), in log space for each sign of g.
      const [lp, ln] = logParts(g);
      const part = (l: Array) => lax.exp(lax.add(x, cum(lax.sub(l, y), "logaddexp", axis, true)));
      return lax.sub(part(lp), part(ln));
    }
  }
}

export const scan: PrimitiveDef<ScanParams> = defPrimitive({
  name: "scan",
  opcode: opcode("scan"),
  abstractEval: ([x]) => [x],
  encode: ({ kind, axis, reverse, inclusive }) => ({ ints: [KIND_CODES[kind], axis, reverse ? 1 : 0, inclusive ? 1 : 0] }),
  jvp: ([x], [t], p, [y]) => {
    if (!t) return [null];
    if (p.kind === "sum") return [lax.scan(t, p)];
    if (x.size === 0) return [lax.zerosLike(y)];
    const orient = (a: Array) => (p.reverse ? flip(a, p.axis) : a);
    const xc = orient(x);
    const yc = p.inclusive ? orient(y) : cum(xc, p.kind, p.axis);
    const d = canonicalJvp(p.kind, xc, orient(t), yc, p.axis);
    return [orient(p.inclusive ? d : shift(d, p.axis, 1))];
  },
  vjp: ([x], [ct], p, [y]) => {
    if (!ct) return [null];
    if (p.kind === "sum") return [lax.scan(ct, { ...p, reverse: !p.reverse })];
    if (x.size === 0) return [lax.zerosLike(x)];
    const orient = (a: Array) => (p.reverse ? flip(a, p.axis) : a);
    const xc = orient(x);
    const yc = p.inclusive ? orient(y) : cum(xc, p.kind, p.axis);
    const g = p.inclusive ? orient(ct) : shift(orient(ct), p.axis, -1);
    return [orient(canonicalVjp(p.kind, xc, g, yc, p.axis))];
  },
  // The batch axis stays where it is; the scanned axis moves past it if it comes after.
  vmap: ([x], [d], p) => [[lax.scan(x, { ...p, axis: d! <= p.axis ? p.axis + 1 : p.axis })], [d]],
});

export interface SortParams {
  axis: number;
  /**
   * A selection instead of a full sort (partition, argpartition, topk): only position kth holds
   * what a stable sort puts there; the elements before it in that order come first and the rest
   * after it, each side in its original order, in O(n). With `sortTail`, the side after kth is
   * sorted too (topk: O(n + k log k)).
   */
  kth?: number;
  sortTail?: boolean;
}

/**
 * sort(x) = [values, indices]: ascending along axis, stable, NaN last; indices uint32. With
 * `kth`, a partition around it (see SortParams). Either way the values are x permuted by the
 * indices, which the derivative rules rely on.
 */
export const sort: PrimitiveDef<SortParams> = defPrimitive({
  name: "sort",
  opcode: opcode("sort"),
  abstractEval: ([x]) => [x, { shape: x.shape, dtype: "uint32" }],
  encode: ({ axis, kth, sortTail }) => ({ ints: kth === undefined ? [axis] : [axis, kth, sortTail ? 1 : 0] }),
  // The values are x permuted by the indices: their tangents are t permuted the same way.
  jvp: (_p, [t], { axis }, [, idx]) => [t ? takeAlong(t, idx, axis) : null, null],
  vjp: ([x], [ct], { axis }, [, idx]) => [ct ? scatterAddAlong(ct, idx, axis, x.shape[axis]) : null],
  vmap: ([x], [d], p) => {
    const outs = lax.sort(x, d! <= p.axis ? p.axis + 1 : p.axis, p);
    return [outs, [d, d]];
  },
});
