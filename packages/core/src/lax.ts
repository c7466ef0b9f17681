/**
 * @file One thin typed wrapper per primitive: the only API that primitive rules call. No
 * validation or promotion here: callers pass operands of equal shapes and dtypes.
 */
import type { Array } from "./array.js";
import type { DType } from "./dtype.js";
import { bind, bind1 } from "./primitive.js";
import * as P from "./primitives/index.js";
import { sameShape } from "./shape.js";
import type { SliceParams } from "./primitives/movement.js";
import type { ScatterMode } from "./primitives/indexing.js";
import type { ScanParams } from "./primitives/scan.js";
import type { ConvParams, ConvWeightGradParams, WindowParams, WindowAddParams } from "./primitives/conv.js";
import type { AttentionParams, NormBwdParams, RopeParams } from "./primitives/fast.js";

// The elementwise primitives are their own wrappers (primitives/elementwise.ts): lax.sin is P.sin.
export * from "./primitives/elementwise.js";

export const identity = (x: Array) => bind1(P.identity, [x], {});
export const stopGradient = (x: Array) => bind1(P.stopGradient, [x], {});
export const matmul = (a: Array, b: Array) => bind1(P.matmul, [a, b], {});
export const divmod = (a: Array, b: Array) => bind(P.divmod, [a, b], {});

export const where = (cond: Array, x: Array, y: Array) => bind1(P.where, [cond, x, y], {});
export const cast = (x: Array, dtype: DType) => (x.dtype === dtype ? x : bind1(P.cast, [x], { dtype }));

export const reduceSum = (x: Array, axes: number[]) => bind1(P.reduceSum, [x], { axes });
export const reduceProd = (x: Array, axes: number[]) => bind1(P.reduceProd, [x], { axes });
export const reduceMax = (x: Array, axes: number[]) => bind1(P.reduceMax, [x], { axes });
export const reduceMin = (x: Array, axes: number[]) => bind1(P.reduceMin, [x], { axes });
export const argmax = (x: Array, axis: number) => bind1(P.argmax, [x], { axis });
export const argmin = (x: Array, axis: number) => bind1(P.argmin, [x], { axis });
export const randomBits = (key: Array, shape: number[]) => bind1(P.randomBits, [key], { shape });

export const scan = (x: Array, params: ScanParams) => bind1(P.scan, [x], params);
/** A stable sort along axis, or with `kth` a partition around it (see SortParams). */
export const sort = (x: Array, axis: number, { kth, sortTail }: { kth?: number; sortTail?: boolean } = {}) =>
  bind(P.sort, [x], kth === undefined ? { axis } : { axis, kth, sortTail: sortTail ?? false });

export const cholesky = (a: Array) => bind1(P.cholesky, [a], {});
export const inv = (a: Array) => bind1(P.inv, [a], {});
export const solve = (a: Array, b: Array) => bind1(P.solve, [a, b], {});
export const qr = (a: Array) => bind(P.qr, [a], {}) as [Array, Array];
export const eigh = (a: Array) => bind(P.eigh, [a], {}) as [Array, Array];
export const svd = (a: Array) => bind(P.svd, [a], {}) as [Array, Array, Array];

export const conv = (x: Array, w: Array, params: ConvParams) => bind1(P.conv, [x, w], params);
export const convWeightGrad = (x: Array, ct: Array, params: ConvWeightGradParams) => bind1(P.convWeightGrad, [x, ct], params);
export const window = (x: Array, params: WindowParams) => bind1(P.window, [x], params);
export const windowAdd = (ct: Array, params: WindowAddParams) => bind1(P.windowAdd, [ct], params);

export const broadcastTo = (x: Array, shape: number[]) =>
  sameShape(x.shape, shape) ? x : bind1(P.broadcastTo, [x], { shape });
export const reshape = (x: Array, shape: number[]) => (sameShape(x.shape, shape) ? x : bind1(P.reshape, [x], { shape }));
export const transpose = (x: Array, perm: number[]) =>
  perm.every((p, i) => p === i) ? x : bind1(P.transpose, [x], { perm });
export const slice = (x: Array, params: SliceParams) => bind1(P.slice, [x], params);
export const sliceUpdate = (base: Array, update: Array, params: SliceParams) =>
  bind1(P.sliceUpdate, [base, update], params);
export const concatenate = (xs: Array[], axis: number) => bind1(P.concatenate, xs, { axis });
export const gather = (x: Array, idx: Array, axis: number) => bind1(P.gather, [x, idx], { axis });
export const scatter = (base: Array, idx: Array, updates: Array, axis: number, mode: ScatterMode) =>
  bind1(P.scatter, [base, idx, updates], { axis, mode });

// fused (primitives/fast.ts); optional operands are null
const opt = (...xs: (Array | null)[]) => xs.filter((x): x is Array => x !== null);
export const layerNorm = (x: Array, w: Array | null, b: Array | null, eps: number) =>
  bind1(P.layerNorm, opt(x, w, b), { eps, hasWeight: w !== null, hasBias: b !== null });
export const layerNormBwd = (x: Array, w: Array | null, g: Array, params: NormBwdParams) =>
  bind(P.layerNormBwd, opt(x, w, g), params) as [Array, Array, Array];
export const rmsNorm = (x: Array, w: Array | null, eps: number) => bind1(P.rmsNorm, opt(x, w), { eps, hasWeight: w !== null });
export const rmsNormBwd = (x: Array, w: Array | null, g: Array, params: NormBwdParams) =>
  bind(P.rmsNormBwd, opt(x, w, g), params) as [Array, Array];
export const rope = (x: Array, offset: Array | null, params: RopeParams) => bind1(P.rope, opt(x, offset), params);
export const softmax = (x: Array) => bind1(P.softmax, [x], {});
export const logsumexp = (x: Array) => bind1(P.logsumexp, [x], {});
export const attention = (q: Array, k: Array, v: Array, mask: Array | null, params: AttentionParams) =>
  bind(P.attention, opt(q, k, v, mask), params) as [Array, Array];
export const attentionBwd = (q: Array, k: Array, v: Array, mask: Array | null, out: Array, lse: Array, g: Array, params: AttentionParams) =>
  bind(P.attentionBwd, opt(q, k, v, mask, out, lse, g), params) as [Array, Array, Array];

export const full = (shape: number[], value: number | bigint, dtype: DType) => bind1(P.full, [], { shape, dtype, value });
export const arange = (start: number, step: number, size: number, dtype: DType) =>
  bind1(P.arange, [], { start, step, size, dtype });

// ---- small composites used by rules ----

/** `value` broadcast to x's shape and dtype (a scalar fill viewed with stride 0). */
export const constLike = (x: Array, value: number) => broadcastTo(full([], value, x.dtype), x.shape);
export const zerosLike = (x: Array) => constLike(x, 0);

/** Moves axis `from` to position `to`. */
export function moveaxis(x: Array, from: number, to: number): Array {
  const perm = [...globalThis.Array(x.ndim).keys()].filter((i) => i !== from);
  perm.splice(to, 0, from);
  return transpose(x, perm);
}
