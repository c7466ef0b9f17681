/**
 * @file The fused primitives (native/src/cpu/fast.cc): layerNorm, rmsNorm, rope, softmax,
 * logsumexp and attention over the last axis, on float32/float64 (mx.fast and the softmax family
 * cast the half types). Each forward's vjp emits a fused backward primitive (layerNormBwd,
 * rmsNormBwd, attentionBwd) or a cheap closed form (rope rotates back, softmax and logsumexp
 * reuse their output); jvps and the backward primitives' own rules come from the plain-op
 * computation (fast-plain.ts through composite.ts). vmap moves every batch axis to the front:
 * the kernels take leading axes on x and on the weights (one weight row per group of x's rows).
 */
import type { Array, Aval } from "../array.js";
import { bind, defPrimitive, type PrimitiveDef, type Tangent } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";
import { compositeJvp, compositeVjp } from "./composite.js";
import {
  attentionBwdPlain, attentionPlain, layerNormBwdPlain, layerNormPlain, rmsNormBwdPlain, rmsNormPlain, type MaskKind,
} from "./fast-plain.js";

const MASK_CODES: Record<MaskKind, number> = { none: 0, additive: 1, causal: 2 };

/** Every input's batch axis to the front (broadcast where unbatched); the outputs batched at 0. */
function frontVmap<P>(def: () => PrimitiveDef<P>, params: (p: P, size: number) => P = (p) => p) {
  return (args: Array[], dims: (number | null)[], p: P, size: number): [Array[], (number | null)[]] => {
    const outs = bind(def(), args.map((x, i) => batchToFront(x, dims[i], size)), params(p, size));
    return [outs, outs.map(() => 0)];
  };
}
/** The optional inputs present, in order. */
const present = (xs: (Array | null)[]) => xs.filter((x): x is Array => x !== null);
/** Spreads the values of `xs` over the slots where `has` is true (null elsewhere). */
function spread<X>(has: boolean[], xs: X[]): (X | null)[] {
  let k = 0;
  return has.map((h) => (h ? xs[k++] : null));
}

// ---- layerNorm and rmsNorm ----

export interface LayerNormParams {
  eps: number;
  hasWeight: boolean;
  hasBias: boolean;
}
export interface NormBwdParams {
  eps: number;
  hasWeight: boolean;
  /** An addend follows g, added to dx (set by the fusion pass on the gpu: eval/epilogue.ts). */
  addend?: boolean;
  /** The leading axes of dw (and db): those of the weight and bias, [] for 1-D ones. */
  lead: number[];
}

const leadOf = (p: Array | undefined) => (p ? p.shape.slice(0, -1) : []);

/** layerNorm(x, [w], [b]) over the last axis; w and b are [...P, D], P a prefix of x's axes. */
export const layerNorm: PrimitiveDef<LayerNormParams> = defPrimitive({
  name: "layerNorm",
  opcode: opcode("layerNorm"),
  abstractEval: ([x]) => [x],
  encode: ({ eps, hasWeight, hasBias }) => ({ ints: [hasWeight ? 1 : 0, hasBias ? 1 : 0], scalars: [eps] }),
  jvp: (xs, ts, p) => {
    const [x, w, b] = spread([true, p.hasWeight, p.hasBias], xs);
    return compositeJvp((...a) => {
      const [xa, wa, ba] = spread([true, p.hasWeight, p.hasBias], a);
      return [layerNormPlain(xa!, wa, ba, p.eps)];
    }, present([x, w, b]), ts);
  },
  vjp: (xs, [ct], p) => {
    if (!ct) return xs.map(() => null);
    const [x, w] = spread([true, p.hasWeight], xs.slice(0, 1 + (p.hasWeight ? 1 : 0)));
    const [dx, dw, db] = lax.layerNormBwd(x!, w, ct, { eps: p.eps, hasWeight: p.hasWeight, lead: leadOf(xs[1]) });
    return [dx, ...(p.hasWeight ? [dw] : []), ...(p.hasBias ? [db] : [])];
  },
  vmap: frontVmap(() => layerNorm),
});

/** layerNormBwd(x, [w], g) = [dx, dw, db] for the output cotangent g. */
export const layerNormBwd: PrimitiveDef<NormBwdParams> = defPrimitive({
  name: "layerNormBwd",
  opcode: opcode("layerNormBwd"),
  abstractEval: ([x], { lead }) => {
    const pv = { shape: [...lead, x.shape[x.shape.length - 1]], dtype: x.dtype };
    return [x, pv, pv];
  },
  encode: encodeNormBwd,
  jvp: (xs, ts, p) => compositeJvp((...a) => normBwdPlain(true, a, p), xs, ts),
  vjp: (xs, cts, p) => compositeVjp((...a) => normBwdPlain(true, a, p), xs, cts),
  vmap: frontVmap(() => layerNormBwd, (p, size) => ({ ...p, lead: [size, ...p.lead] })),
});

function encodeNormBwd({ eps, hasWeight, addend }: NormBwdParams) {
  return { ints: addend ? [hasWeight ? 1 : 0, 1] : [hasWeight ? 1 : 0], scalars: [eps] };
}

function normBwdPlain(layer: boolean, a: Array[], p: NormBwdParams): Array[] {
  const [x, w, g] = p.hasWeight ? a : [a[0], null, a[1]];
  return layer ? layerNormBwdPlain(x, w, g, p.eps, p.lead) : rmsNormBwdPlain(x, w, g, p.eps, p.lead);
}

export interface RmsNormParams {
  eps: number;
  hasWeight: boolean;
}

/** rmsNorm(x, [w]) over the last axis; w is [...P, D]. */
export const rmsNorm: PrimitiveDef<RmsNormParams> = defPrimitive({
  name: "rmsNorm",
  opcode: opcode("rmsNorm"),
  abstractEval: ([x]) => [x],
  encode: ({ eps, hasWeight }) => ({ ints: [hasWeight ? 1 : 0], scalars: [eps] }),
  jvp: (xs, ts, p) => compositeJvp((x, w) => [rmsNormPlain(x, w ?? null, p.eps)], xs, ts),
  vjp: ([x, w], [ct], p) => {
    if (!ct) return [null, ...(w ? [null] : [])];
    const [dx, dw] = lax.rmsNormBwd(x, w ?? null, ct, { eps: p.eps, hasWeight: p.hasWeight, lead: leadOf(w) });
    return [dx, ...(w ? [dw] : [])];
  },
  vmap: frontVmap(() => rmsNorm),
});

/** rmsNormBwd(x, [w], g) = [dx, dw]. */
export const rmsNormBwd: PrimitiveDef<NormBwdParams> = defPrimitive({
  name: "rmsNormBwd",
  opcode: opcode("rmsNormBwd"),
  abstractEval: ([x], { lead }) => [x, { shape: [...lead, x.shape[x.shape.length - 1]], dtype: x.dtype }],
  encode: encodeNormBwd,
  jvp: (xs, ts, p) => compositeJvp((...a) => normBwdPlain(false, a, p), xs, ts),
  vjp: (xs, cts, p) => compositeVjp((...a) => normBwdPlain(false, a, p), xs, cts),
  vmap: frontVmap(() => rmsNormBwd, (p, size) => ({ ...p, lead: [size, ...p.lead] })),
});

// ---- rope ----

export interface RopeParams {
  dims: number;
  traditional: boolean;
  base: number;
  scale: number;
  /** The position of row 0 when there is no offset input. */
  offset: number;
  hasOffset: boolean;
}

/**
 * rope(x [..., L, D], [offset float64 [...P]]): the first `dims` features rotated in pairs by
 * (offset + l) * scale * base^(-2i/dims). Linear in x; its transpose rotates back (scale negated).
 */
export const rope: PrimitiveDef<RopeParams> = defPrimitive({
  name: "rope",
  opcode: opcode("rope"),
  abstractEval: ([x]) => [x],
  encode: (p) => ({ ints: [p.dims, p.traditional ? 1 : 0, p.hasOffset ? 1 : 0], scalars: [p.base, p.scale, p.offset] }),
  jvp: ([, off], [t], p) => [t ? bind(rope, [t, ...(off ? [off] : [])], p)[0] : null],
  vjp: ([, off], [ct], p) => [ct ? bind(rope, [ct, ...(off ? [off] : [])], { ...p, scale: -p.scale })[0] : null, ...(off ? [null] : [])],
  vmap: frontVmap(() => rope),
});

// ---- softmax and logsumexp ----

/** Where a batched operand's batch axis goes so that the last axis stays the reduced one. */
function lastAxisVmap(def: () => PrimitiveDef) {
  return ([x]: Array[], [d]: (number | null)[]): [Array[], (number | null)[]] => {
    const xb = d === x.ndim - 1 ? lax.moveaxis(x, d, 0) : x;
    const nd = d === x.ndim - 1 ? 0 : d!;
    return [bind(def(), [xb], {}), [nd]];
  };
}
const col = (r: Array, like: Array) => lax.broadcastTo(lax.reshape(r, [...r.shape, 1]), like.shape);
/** y (t - sum(t y)): the softmax's Jacobian (symmetric) applied to t. */
function softmaxLinear(y: Array, t: Array): Array {
  return lax.mul(y, lax.sub(t, col(lax.reduceSum(lax.mul(t, y), [y.ndim - 1]), y)));
}

/** softmax(x) over the last axis; its Jacobian is symmetric, so jvp and vjp are one fused softmaxBwd. */
export const softmax: PrimitiveDef = defPrimitive({
  name: "softmax",
  opcode: opcode("softmax"),
  abstractEval: ([x]) => [x],
  encode: () => ({}),
  jvp: (_x, [t], _p, [y]) => [t ? bind(softmaxBwd, [y, t], {})[0] : null],
  vjp: (_x, [ct], _p, [y]) => [ct ? bind(softmaxBwd, [y, ct], {})[0] : null],
  vmap: lastAxisVmap(() => softmax),
});

/** softmaxBwd(y, g) = y (g - sum(y g)) over the last axis. */
export const softmaxBwd: PrimitiveDef = defPrimitive({
  name: "softmaxBwd",
  opcode: opcode("softmaxBwd"),
  abstractEval: ([y]) => [y],
  encode: () => ({}),
  jvp: (xs, ts) => compositeJvp((y, g) => [softmaxLinear(y, g)], xs, ts),
  vjp: (xs, cts) => compositeVjp((y, g) => [softmaxLinear(y, g)], xs, cts),
  vmap: frontVmap(() => softmaxBwd),
});

/** logsumexp(x) over the last axis (removed). */
export const logsumexp: PrimitiveDef = defPrimitive({
  name: "logsumexp",
  opcode: opcode("logsumexp"),
  abstractEval: ([x]) => [{ shape: x.shape.slice(0, -1), dtype: x.dtype }],
  encode: () => ({}),
  jvp: ([x], [t], _p, [l]) => [t ? lax.reduceSum(lax.mul(t, lax.exp(lax.sub(x, col(l, x)))), [x.ndim - 1]) : null],
  vjp: ([x], [ct], _p, [l]) => [ct ? lax.mul(col(ct, x), lax.exp(lax.sub(x, col(l, x)))) : null],
  vmap: lastAxisVmap(() => logsumexp),
});

// ---- attention ----

export interface AttentionParams {
  scale: number;
  mask: MaskKind;
}

/**
 * attention(q [..., H, Lq, D], k [..., Hkv, Lk, D], v [..., Hkv, Lk, Dv], [mask [..., H, Lq, Lk]])
 * = [out [..., H, Lq, Dv], lse [..., H, Lq]]: softmax(scale q k^T + mask) v and the rows' logsumexp.
 */
export const attention: PrimitiveDef<AttentionParams> = defPrimitive({
  name: "attention",
  opcode: opcode("attention"),
  abstractEval: ([q, , v]) => {
    const lead = q.shape.slice(0, -1);
    return [{ shape: [...lead, v.shape[v.shape.length - 1]], dtype: q.dtype }, { shape: lead, dtype: q.dtype }] as Aval[];
  },
  encode: ({ scale, mask }) => ({ ints: [MASK_CODES[mask]], scalars: [scale] }),
  jvp: (xs, ts, p) => compositeJvp((...a) => plainOf(a, p), xs, ts),
  vjp: (xs, [ctOut, ctLse], p, [out, lse]) => {
    if (!ctOut && !ctLse) return xs.map(() => null);
    // The fused backward takes the output's cotangent; the lse's (only a transform of a
    // transform makes one) and the additive mask's come from the plain computation.
    if (ctLse || !ctOut) return compositeVjp((...a) => plainOf(a, p), xs, [ctOut, ctLse]);
    const [q, k, v, mask] = xs;
    const grads: Tangent[] = [...lax.attentionBwd(q, k, v, mask ?? null, out, lse, ctOut, p)];
    if (mask) grads.push(compositeVjp((...a) => plainOf(a, p), xs, [ctOut, null])[3]);
    return grads;
  },
  vmap: frontVmap(() => attention),
});

function plainOf(a: Array[], p: AttentionParams): Array[] {
  return attentionPlain(a[0], a[1], a[2], p.mask === "additive" ? a[3] : null, p.scale, p.mask);
}

/** attentionBwd(q, k, v, [mask], out, lse, dout) = [dq, dk, dv]. */
export const attentionBwd: PrimitiveDef<AttentionParams> = defPrimitive({
  name: "attentionBwd",
  opcode: opcode("attentionBwd"),
  abstractEval: ([q, k, v]) => [q, k, v],
  encode: ({ scale, mask }) => ({ ints: [MASK_CODES[mask]], scalars: [scale] }),
  jvp: (xs, ts, p) => compositeJvp((...a) => bwdPlainOf(a, p), xs, ts),
  vjp: (xs, cts, p) => compositeVjp((...a) => bwdPlainOf(a, p), xs, cts),
  vmap: frontVmap(() => attentionBwd),
});

function bwdPlainOf(a: Array[], p: AttentionParams): Array[] {
  const m = p.mask === "additive";
  const [q, k, v] = a, [out, lse, g] = a.slice(m ? 4 : 3);
  return attentionBwdPlain(q, k, v, m ? a[3] : null, out, lse, g, p.scale, p.mask);
}
