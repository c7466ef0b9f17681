/**
 * @file The fused primitives' computations written with plain lax ops, on float32/float64
 * operands: what the fused kernels compute, and where their derivative rules come from
 * (primitives/composite.ts). Parameters with leading axes ([...P, D], P a prefix of x's axes)
 * broadcast over the rows of their group, as the kernels read them.
 */
import type { Array } from "../array.js";
import * as lax from "../lax.js";

/** The most negative finite value of each float dtype: a masked score, as MLX's finfo(t).min. */
export const LOWEST: Record<string, number> = {
  float16: -65504, bfloat16: -3.3895313892515355e38, float32: -3.4028234663852886e38, float64: -Number.MAX_VALUE,
};

const last = (x: Array) => x.shape[x.ndim - 1];
/** Reduces the last axis, keeping it (size 1) and broadcasting back to x's shape. */
function sumLast(x: Array): Array {
  const s = lax.reduceSum(x, [x.ndim - 1]);
  return lax.broadcastTo(lax.reshape(s, [...s.shape, 1]), x.shape);
}
const meanLast = (x: Array) => lax.div(sumLast(x), lax.constLike(x, last(x)));
/** A [...P, D] parameter broadcast over x [...P, ..., D]. */
export function overRows(p: Array, x: Array): Array {
  const lead = p.ndim - 1;
  return lax.broadcastTo(lax.reshape(p, [...p.shape.slice(0, lead), ...globalThis.Array(x.ndim - 1 - lead).fill(1), last(p)]), x.shape);
}
/** Sums a [..., D] array down to [...P, D] (the rows of each group). */
function sumToParam(g: Array, lead: number[]): Array {
  const axes = [...globalThis.Array(g.ndim - 1 - lead.length).keys()].map((a) => a + lead.length);
  return axes.length ? lax.reduceSum(g, axes) : g;
}

export function layerNormPlain(x: Array, w: Array | null, b: Array | null, eps: number): Array {
  const xc = lax.sub(x, meanLast(x));
  const v = meanLast(lax.mul(xc, xc));
  let y = lax.mul(xc, lax.rsqrt(lax.add(v, lax.constLike(v, eps))));
  if (w) y = lax.mul(y, overRows(w, y));
  if (b) y = lax.add(y, overRows(b, y));
  return y;
}

/** [dx, dw, db] of layerNorm at x for the output cotangent g; dw and db are [...lead, D]. */
export function layerNormBwdPlain(x: Array, w: Array | null, g: Array, eps: number, lead: number[]): Array[] {
  const xc = lax.sub(x, meanLast(x));
  const v = meanLast(lax.mul(xc, xc));
  const r = lax.rsqrt(lax.add(v, lax.constLike(v, eps)));
  const xh = lax.mul(xc, r);
  const gh = w ? lax.mul(g, overRows(w, g)) : g;
  const dx = lax.mul(r, lax.sub(lax.sub(gh, meanLast(gh)), lax.mul(xh, meanLast(lax.mul(gh, xh)))));
  return [dx, sumToParam(lax.mul(g, xh), lead), sumToParam(g, lead)];
}

export function rmsNormPlain(x: Array, w: Array | null, eps: number): Array {
  const ms = meanLast(lax.mul(x, x));
  const y = lax.mul(x, lax.rsqrt(lax.add(ms, lax.constLike(ms, eps))));
  return w ? lax.mul(y, overRows(w, y)) : y;
}

/** [dx, dw] of rmsNorm at x for the output cotangent g; dw is [...lead, D]. */
export function rmsNormBwdPlain(x: Array, w: Array | null, g: Array, eps: number, lead: number[]): Array[] {
  const ms = meanLast(lax.mul(x, x));
  const r = lax.rsqrt(lax.add(ms, lax.constLike(ms, eps)));
  const xh = lax.mul(x, r);
  const gh = w ? lax.mul(g, overRows(w, g)) : g;
  const dx = lax.mul(r, lax.sub(gh, lax.mul(xh, meanLast(lax.mul(gh, xh)))));
  return [dx, sumToParam(lax.mul(g, xh), lead)];
}

export type MaskKind = "none" | "additive" | "causal";

/** The geometry of q [...B, H, Lq, D] against k [...B, Hkv, Lk, D] and v [...B, Hkv, Lk, Dv]. */
function geometry(q: Array, k: Array, v: Array) {
  const nd = q.ndim, batch = q.shape.slice(0, nd - 3);
  const [h, lq, d] = q.shape.slice(nd - 3), [hkv, lk] = k.shape.slice(nd - 3), dv = last(v);
  return { nd, batch, h, lq, d, hkv, lk, dv, rep: h / hkv };
}
type Geo = ReturnType<typeof geometry>;

/** [...B, H, L, X] viewed as [...B, Hkv, rep, L, X]. */
const grouped = (x: Array, g: Geo) => lax.reshape(x, [...g.batch, g.hkv, g.rep, ...x.shape.slice(g.nd - 2)]);
/** A key/value head [...B, Hkv, L, X] repeated for its query heads: [...B, Hkv, rep, L, X]. */
const repeated = (x: Array, g: Geo) => {
  const s = [...g.batch, g.hkv, 1, ...x.shape.slice(g.nd - 2)];
  return lax.broadcastTo(lax.reshape(x, s), [...g.batch, g.hkv, g.rep, ...x.shape.slice(g.nd - 2)]);
};
const ungroup = (x: Array, g: Geo) => lax.reshape(x, [...g.batch, g.h, ...x.shape.slice(g.nd - 1)]);
const T = (x: Array) => lax.moveaxis(x, x.ndim - 1, x.ndim - 2);

/** Causal masking: [keep [Lq, Lk] (key j visible to query i), rows that see no key [Lq, Lk]], broadcast to `shape`. */
function causal(g: Geo, shape: number[]): [Array, Array] {
  const rows = lax.broadcastTo(lax.reshape(lax.arange(g.lk - g.lq, 1, g.lq, "int32"), [g.lq, 1]), [g.lq, g.lk]);
  const cols = lax.broadcastTo(lax.reshape(lax.arange(0, 1, g.lk, "int32"), [1, g.lk]), [g.lq, g.lk]);
  const none = lax.less(rows, lax.constLike(rows, 0));
  return [lax.broadcastTo(lax.greaterEqual(rows, cols), shape), lax.broadcastTo(none, shape)];
}

/** scale q k^T plus the mask: [...B, H, Lq, Lk]. */
function scores(q: Array, k: Array, mask: Array | null, scale: number, kind: MaskKind, g: Geo): Array {
  let s = ungroup(lax.matmul(grouped(q, g), T(repeated(k, g))), g);
  s = lax.mul(s, lax.constLike(s, scale));
  if (kind === "additive") s = lax.add(s, mask!);
  if (kind === "causal") s = lax.where(causal(g, s.shape)[0], s, lax.constLike(s, LOWEST[s.dtype]));
  return s;
}

/** [out, lse] of attention (lse the rows' logsumexp of the scores). */
export function attentionPlain(q: Array, k: Array, v: Array, mask: Array | null, scale: number, kind: MaskKind): Array[] {
  const g = geometry(q, k, v);
  const s = scores(q, k, mask, scale, kind, g);
  const rowShape = [...g.batch, g.h, g.lq];
  const m = g.lk > 0 ? lax.stopGradient(lax.reduceMax(s, [g.nd - 1])) : lax.full(rowShape, 0, s.dtype);
  const e = lax.exp(lax.sub(s, lax.broadcastTo(lax.reshape(m, [...rowShape, 1]), s.shape)));
  const sum = lax.reduceSum(e, [g.nd - 1]);
  const p = lax.div(e, lax.broadcastTo(lax.reshape(sum, [...rowShape, 1]), s.shape));
  const out = ungroup(lax.matmul(grouped(p, g), repeated(v, g)), g);
  return [out, lax.add(m, lax.log(sum))];
}

/** [dq, dk, dv] of attention for the output cotangent dout, from the forward's out and lse. */
export function attentionBwdPlain(
  q: Array, k: Array, v: Array, mask: Array | null, out: Array, lse: Array, dout: Array, scale: number, kind: MaskKind,
): Array[] {
  const g = geometry(q, k, v);
  const s = scores(q, k, mask, scale, kind, g);
  const col = (r: Array) => lax.broadcastTo(lax.reshape(r, [...r.shape, 1]), s.shape);
  let p = lax.exp(lax.sub(s, col(lse)));
  let none: Array | null = null;
  if (kind === "causal") {
    const [keep, n] = causal(g, s.shape);
    none = n;
    // A row that sees no key weighs every value equally (its scores are all the lowest value).
    p = lax.where(none, lax.constLike(p, 1 / g.lk), lax.where(keep, p, lax.zerosLike(p)));
  }
  const dp = ungroup(lax.matmul(grouped(dout, g), T(repeated(v, g))), g);
  const di = lax.reduceSum(lax.mul(dout, out), [g.nd - 1]);
  let ds = lax.mul(lax.mul(p, lax.sub(dp, col(di))), lax.constLike(p, scale));
  if (none) ds = lax.where(none, lax.zerosLike(ds), ds);
  const sumRep = (x: Array) => lax.reduceSum(x, [g.nd - 2]);
  const dv = sumRep(lax.matmul(T(grouped(p, g)), grouped(dout, g)));
  const dq = ungroup(lax.matmul(grouped(ds, g), repeated(k, g)), g);
  const dk = sumRep(lax.matmul(T(grouped(ds, g)), grouped(q, g)));
  return [dq, dk, dv];
}
