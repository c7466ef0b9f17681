/**
 * @file The dense linear algebra primitives on the last two axes, batched over the leading ones:
 * cholesky, inv, solve, qr, eigh and svd (float32 and float64; native/src/cpu/linalg.cc). cholesky
 * and eigh read only the lower triangle, so their rules differentiate the symmetric matrix that
 * triangle defines (the upper triangle gets zero cotangents). Rules follow JAX's.
 */
import type { Array, Aval } from "../array.js";
import { TransformError, fmtShape } from "../errors.js";
import { bind, defPrimitive, noParams, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";

// ---- matrix helpers for the rules (all operands share their batch axes) ----

const mm = (a: Array, b: Array) => lax.matmul(a, b);
/** The transpose of the last two axes. */
const T = (x: Array) => lax.moveaxis(x, x.ndim - 1, x.ndim - 2);

/** Where column - row <= k for an [m, n] matrix, broadcast to `shape` (bool). */
function lowerMask(shape: number[], k: number): Array {
  const m = shape[shape.length - 2], n = shape[shape.length - 1];
  const rows = lax.broadcastTo(lax.reshape(lax.arange(0, 1, m, "int32"), [m, 1]), [m, n]);
  const cols = lax.broadcastTo(lax.reshape(lax.arange(0, 1, n, "int32"), [1, n]), [m, n]);
  const diff = lax.sub(cols, rows);
  return lax.broadcastTo(lax.lessEqual(diff, lax.constLike(diff, k)), shape);
}
/** The lower triangle of x (diagonals up to k above the main one), zeros elsewhere. */
const tril = (x: Array, k = 0) => lax.where(lowerMask(x.shape, k), x, lax.zerosLike(x));
/** The identity of x's last two axes, broadcast to x's shape and dtype. */
const eyeLike = (x: Array) => lax.cast(lax.logicalAnd(lowerMask(x.shape, 0), lax.logicalNot(lowerMask(x.shape, -1))), x.dtype);
/** The diagonal of square matrices: [..., n, n] -> [..., n]. */
const diagPart = (x: Array) => lax.reduceSum(lax.mul(x, eyeLike(x)), [x.ndim - 1]);
/** [..., n] -> [..., n] along a row, broadcast over the rows of `like` ([..., r, n]). */
const asRow = (v: Array, like: Array) => lax.broadcastTo(lax.reshape(v, [...v.shape.slice(0, -1), 1, v.shape[v.ndim - 1]]), like.shape);
/** [..., n] -> [..., n] down a column, broadcast over the columns of `like` ([..., n, c]). */
const asCol = (v: Array, like: Array) => lax.broadcastTo(lax.reshape(v, [...v.shape, 1]), like.shape);
/** A diagonal matrix of v. */
function diagEmbed(v: Array): Array {
  const n = v.shape[v.ndim - 1];
  const sq = lax.broadcastTo(lax.reshape(v, [...v.shape.slice(0, -1), 1, n]), [...v.shape.slice(0, -1), n, n]);
  return lax.mul(sq, eyeLike(sq));
}
/** The symmetric matrix a lower triangle defines: tril(x) + tril(x, -1)^T. */
const symLower = (x: Array) => lax.add(tril(x), T(tril(x, -1)));
/** The adjoint of symLower: the cotangent of x for a cotangent g of symLower(x). */
const symLowerT = (g: Array) => lax.add(tril(g), tril(T(g), -1));
/** 1 / (v_j - v_i) off the diagonal, 0 on it ([..., n] -> [..., n, n]). */
function gapInverse(v: Array): Array {
  const n = v.shape[v.ndim - 1];
  const shape = [...v.shape.slice(0, -1), n, n];
  const proto = lax.broadcastTo(lax.reshape(v, [...v.shape.slice(0, -1), 1, n]), shape);
  const eye = eyeLike(proto);
  const gap = lax.sub(proto, asCol(v, proto));
  return lax.sub(lax.div(lax.constLike(gap, 1), lax.add(gap, eye)), eye);
}
const addAll = (xs: (Array | null)[]): Array | null => {
  const parts = xs.filter((x): x is Array => x !== null);
  return parts.length === 0 ? null : parts.reduce((a, b) => lax.add(a, b));
};
const orZeros = (x: Array | null, like: Array) => x ?? lax.zerosLike(like);

/** Every input's batch axis to the front (broadcast where unbatched); the outputs batched at 0. */
function frontVmap(def: () => PrimitiveDef) {
  return (args: Array[], dims: (number | null)[], _p: object, size: number): [Array[], (number | null)[]] => {
    const outs = bind(def(), args.map((x, i) => batchToFront(x, dims[i], size)), {});
    return [outs, outs.map(() => 0)];
  };
}

const square = (a: Aval, name: string) => {
  const n = a.shape[a.shape.length - 1];
  if (a.shape.length < 2 || a.shape[a.shape.length - 2] !== n) {
    throw new TypeError(`${name}: expected square matrices [..., n, n]; got ${fmtShape(a.shape)} (this is a bug)`);
  }
  return n;
};

// ---- the primitives ----

/** cholesky(a) = L, lower, with L L^T the symmetric matrix of a's lower triangle. */
export const cholesky: PrimitiveDef = defPrimitive({
  name: "cholesky",
  opcode: opcode("cholesky"),
  abstractEval: ([a]) => (square(a, "cholesky"), [a]),
  encode: noParams,
  // Murray (2016): dL = L Phi(L^-1 dS L^-T), Phi the lower triangle with its diagonal halved.
  jvp: (_p, [t], _params, [l]) => {
    if (!t) return [null];
    const li = lax.inv(l);
    const k = mm(mm(li, symLower(t)), T(li));
    return [mm(l, phi(k))];
  },
  // The transpose: dS = L^-T Phi(L^T dL) L^-1, then onto the lower triangle.
  vjp: (_p, [ct], _params, [l]) => {
    if (!ct) return [null];
    const li = lax.inv(l);
    return [symLowerT(mm(mm(T(li), phi(mm(T(l), ct))), li))];
  },
  vmap: frontVmap(() => cholesky),
});
/** The lower triangle of x with its diagonal halved. */
const phi = (x: Array) => lax.sub(tril(x), lax.mul(lax.mul(x, eyeLike(x)), lax.constLike(x, 0.5)));

/** inv(a) = a^-1 (LU with partial pivoting). */
export const inv: PrimitiveDef = defPrimitive({
  name: "inv",
  opcode: opcode("inv"),
  abstractEval: ([a]) => (square(a, "inv"), [a]),
  encode: noParams,
  // dY = -Y dA Y
  jvp: (_p, [t], _params, [y]) => [t ? lax.neg(mm(mm(y, t), y)) : null],
  // dA = -Y^T G Y^T
  vjp: (_p, [ct], _params, [y]) => [ct ? lax.neg(mm(mm(T(y), ct), T(y))) : null],
  vmap: frontVmap(() => inv),
});

/** solve(a, b) = a^-1 b for a [..., n, n] and b [..., n, k] (LU with partial pivoting). */
export const solve: PrimitiveDef = defPrimitive({
  name: "solve",
  opcode: opcode("solve"),
  abstractEval: ([a, b]) => (square(a, "solve"), [b]),
  encode: noParams,
  // dx = a^-1 (db - da x)
  jvp: ([a], [ta, tb], _params, [x]) => {
    const rhs = addAll([tb, ta ? lax.neg(mm(ta, x)) : null]);
    return [rhs ? lax.solve(a, rhs) : null];
  },
  // gb = a^-T g, ga = -gb x^T
  vjp: ([a], [ct], _params, [x]) => {
    if (!ct) return [null, null];
    const gb = lax.solve(T(a), ct);
    return [lax.neg(mm(gb, T(x))), gb];
  },
  vmap: frontVmap(() => solve),
});

const needTall = (op: string, a: Array) => {
  const [m, n] = a.shape.slice(-2);
  if (m < n) throw new TransformError(`${op}: derivatives of qr are defined for m >= n (as JAX); got shape ${fmtShape(a.shape)}`);
};

/** qr(a) = [Q, R], reduced (Householder): Q [..., m, k] orthonormal, R [..., k, n] upper with diag(R) >= 0. */
export const qr: PrimitiveDef = defPrimitive({
  name: "qr",
  opcode: opcode("qr"),
  abstractEval: ([a]) => {
    const [m, n] = a.shape.slice(-2), k = Math.min(m, n), batch = a.shape.slice(0, -2);
    return [{ shape: [...batch, m, k], dtype: a.dtype }, { shape: [...batch, k, n], dtype: a.dtype }];
  },
  encode: noParams,
  // JAX's qr_jvp_rule (m >= n): C = dA R^-1, B = Q^T C, O = tril(B, -1) - tril(B, -1)^T;
  // dQ = Q (O - B) + C, dR = (B - O) R.
  jvp: ([a], [t], _params, [q, r]) => {
    if (!t) return [null, null];
    needTall("qr jvp", a);
    const c = mm(t, lax.inv(r));
    const b = mm(T(q), c);
    const lo = tril(b, -1);
    const o = lax.sub(lo, T(lo));
    return [lax.add(mm(q, lax.sub(o, b)), c), mm(lax.sub(b, o), r)];
  },
  // The transpose of the jvp: X = Q^T gQ - gR R^T, Y = tril(X - X^T, -1) - X,
  // gA = (gQ + Q Y) R^-T.
  vjp: ([a], [gq, gr], _params, [q, r]) => {
    if (!gq && !gr) return [null];
    needTall("qr vjp", a);
    const x = addAll([gq ? mm(T(q), gq) : null, gr ? lax.neg(mm(gr, T(r))) : null])!;
    const y = lax.sub(tril(lax.sub(x, T(x)), -1), x);
    const gc = lax.add(orZeros(gq, q), mm(q, y));
    return [mm(gc, T(lax.inv(r)))];
  },
  vmap: frontVmap(() => qr),
});

/** eigh(a) = [w, V]: ascending eigenvalues and orthonormal eigenvectors of a's lower triangle. */
export const eigh: PrimitiveDef = defPrimitive({
  name: "eigh",
  opcode: opcode("eigh"),
  abstractEval: ([a]) => {
    const n = square(a, "eigh");
    return [{ shape: [...a.shape.slice(0, -2), n], dtype: a.dtype }, a];
  },
  encode: noParams,
  // K = V^T dS V: dw = diag(K), dV = V (F o K) with F_ij = 1 / (w_j - w_i) off the diagonal.
  jvp: (_p, [t], _params, [w, v]) => {
    if (!t) return [null, null];
    const k = mm(mm(T(v), symLower(t)), v);
    return [diagPart(k), mm(v, lax.mul(gapInverse(w), k))];
  },
  // dS = V (diag(gw) + F o (V^T gV)) V^T, then onto the lower triangle.
  vjp: (_p, [gw, gv], _params, [w, v]) => {
    if (!gw && !gv) return [null];
    const inner = addAll([gw ? diagEmbed(gw) : null, gv ? lax.mul(gapInverse(w), mm(T(v), gv)) : null])!;
    return [symLowerT(mm(mm(v, inner), T(v)))];
  },
  vmap: frontVmap(() => eigh),
});

/** svd(a) = [U, S, Vt], reduced (one-sided Jacobi): S descending; see linalg.cc for the signs. */
export const svd: PrimitiveDef = defPrimitive({
  name: "svd",
  opcode: opcode("svd"),
  abstractEval: ([a]) => {
    const [m, n] = a.shape.slice(-2), k = Math.min(m, n), batch = a.shape.slice(0, -2);
    return [
      { shape: [...batch, m, k], dtype: a.dtype },
      { shape: [...batch, k], dtype: a.dtype },
      { shape: [...batch, k, n], dtype: a.dtype },
    ];
  },
  encode: noParams,
  // JAX's svd_jvp_rule (real): K = U^T dA V, ds = diag(K), F_ij = 1 / (s_j^2 - s_i^2) off the
  // diagonal; dU = U (F o (K S + S K^T)) [+ (I - U U^T) dA V S^-1 if m > n];
  // dV = V (F o (S K + K^T S)) [+ (I - V V^T) dA^T U S^-1 if n > m].
  jvp: ([a], [t], _params, [u, s, vt]) => {
    if (!t) return [null, null, null];
    const [m, n] = a.shape.slice(-2);
    const v = T(vt);
    const k = mm(mm(T(u), t), v);
    const f = gapInverse(lax.mul(s, s));
    const ks = lax.mul(k, asRow(s, k)), sk = lax.mul(k, asCol(s, k));
    let du = mm(u, lax.mul(f, lax.add(ks, T(ks))));
    let dv = mm(v, lax.mul(f, lax.add(sk, T(sk))));
    if (m > n) {
      const dav = mm(t, v);
      const rest = lax.sub(dav, mm(u, mm(T(u), dav)));
      du = lax.add(du, lax.div(rest, asRow(s, rest)));
    }
    if (n > m) {
      const dau = mm(T(t), u);
      const rest = lax.sub(dau, mm(v, mm(vt, dau)));
      dv = lax.add(dv, lax.div(rest, asRow(s, rest)));
    }
    return [du, diagPart(k), T(dv)];
  },
  // The transpose: with P = F o (U^T gU), Q = F o (V^T gV), G = diag(gs) + (P + P^T) S + S (Q + Q^T):
  // gA = U G V^T [+ (gU - U U^T gU) S^-1 V^T if m > n] [+ U S^-1 (gVt - gVt V Vt) if n > m].
  vjp: ([a], [gu, gs, gvt], _params, [u, s, vt]) => {
    if (!gu && !gs && !gvt) return [null];
    const [m, n] = a.shape.slice(-2);
    const v = T(vt);
    const f = gapInverse(lax.mul(s, s));
    let pSym: Array | null = null, qSym: Array | null = null;
    if (gu) {
      const p = lax.mul(f, mm(T(u), gu));
      pSym = lax.add(p, T(p));
    }
    if (gvt) {
      const q = lax.mul(f, mm(vt, T(gvt)));
      qSym = lax.add(q, T(q));
    }
    const g = addAll([
      gs ? diagEmbed(gs) : null,
      pSym ? lax.mul(pSym, asRow(s, pSym)) : null,
      qSym ? lax.mul(qSym, asCol(s, qSym)) : null,
    ])!;
    let ga = mm(mm(u, g), vt);
    if (m > n && gu) {
      const rest = lax.sub(gu, mm(u, mm(T(u), gu)));
      ga = lax.add(ga, mm(lax.div(rest, asRow(s, rest)), vt));
    }
    if (n > m && gvt) {
      const rest = lax.sub(gvt, mm(mm(gvt, v), vt));
      ga = lax.add(ga, mm(u, lax.div(rest, asCol(s, rest))));
    }
    return [ga];
  },
  vmap: frontVmap(() => svd),
});
