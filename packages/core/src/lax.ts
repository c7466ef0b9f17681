/**
 * @file One thin typed wrapper per primitive: the only API that primitive rules call. No
 * validation or promotion here: callers pass operands of equal shapes and dtypes.
 */
import type { Array } from "./array.js";
import type { DType } from "./dtype.js";
import { bind1 } from "./primitive.js";
import * as P from "./primitives/index.js";
import type { SliceParams } from "./primitives/movement.js";

const u = (def: () => P.PrimitiveDefAny) => (x: Array) => bind1(def(), [x], {});
const b = (def: () => P.PrimitiveDefAny) => (x: Array, y: Array) => bind1(def(), [x, y], {});

export const neg = u(() => P.neg);
export const abs = u(() => P.abs);
export const sign = u(() => P.sign);
export const sqrt = u(() => P.sqrt);
export const rsqrt = u(() => P.rsqrt);
export const exp = u(() => P.exp);
export const expm1 = u(() => P.expm1);
export const log = u(() => P.log);
export const log1p = u(() => P.log1p);
export const log2 = u(() => P.log2);
export const log10 = u(() => P.log10);
export const sin = u(() => P.sin);
export const cos = u(() => P.cos);
export const tan = u(() => P.tan);
export const arcsin = u(() => P.arcsin);
export const arccos = u(() => P.arccos);
export const arctan = u(() => P.arctan);
export const sinh = u(() => P.sinh);
export const cosh = u(() => P.cosh);
export const tanh = u(() => P.tanh);
export const arcsinh = u(() => P.arcsinh);
export const arccosh = u(() => P.arccosh);
export const arctanh = u(() => P.arctanh);
export const sigmoid = u(() => P.sigmoid);
export const erf = u(() => P.erf);
export const erfinv = u(() => P.erfinv);
export const floor = u(() => P.floor);
export const ceil = u(() => P.ceil);
export const round = u(() => P.round);
export const logicalNot = u(() => P.logicalNot);
export const isnan = u(() => P.isnan);
export const isinf = u(() => P.isinf);
export const identity = u(() => P.identity);
export const stopGradient = u(() => P.stopGradient);

export const add = b(() => P.add);
export const sub = b(() => P.sub);
export const mul = b(() => P.mul);
export const div = b(() => P.div);
export const pow = b(() => P.pow);
export const maximum = b(() => P.maximum);
export const minimum = b(() => P.minimum);
export const arctan2 = b(() => P.arctan2);
export const remainder = b(() => P.remainder);
export const floorDivide = b(() => P.floorDivide);
export const logaddexp = b(() => P.logaddexp);
export const logicalAnd = b(() => P.logicalAnd);
export const logicalOr = b(() => P.logicalOr);
export const bitwiseAnd = b(() => P.bitwiseAnd);
export const bitwiseOr = b(() => P.bitwiseOr);
export const bitwiseXor = b(() => P.bitwiseXor);
export const leftShift = b(() => P.leftShift);
export const rightShift = b(() => P.rightShift);
export const equal = b(() => P.equal);
export const notEqual = b(() => P.notEqual);
export const less = b(() => P.less);
export const lessEqual = b(() => P.lessEqual);
export const greater = b(() => P.greater);
export const greaterEqual = b(() => P.greaterEqual);
export const matmul = b(() => P.matmul);

export const where = (cond: Array, x: Array, y: Array) => bind1(P.where, [cond, x, y], {});
export const cast = (x: Array, dtype: DType) => (x.dtype === dtype ? x : bind1(P.cast, [x], { dtype }));

export const reduceSum = (x: Array, axes: number[]) => bind1(P.reduceSum, [x], { axes });
export const reduceProd = (x: Array, axes: number[]) => bind1(P.reduceProd, [x], { axes });
export const reduceMax = (x: Array, axes: number[]) => bind1(P.reduceMax, [x], { axes });
export const reduceMin = (x: Array, axes: number[]) => bind1(P.reduceMin, [x], { axes });
export const argmax = (x: Array, axis: number) => bind1(P.argmax, [x], { axis });
export const argmin = (x: Array, axis: number) => bind1(P.argmin, [x], { axis });

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
export const broadcastTo = (x: Array, shape: number[]) =>
  sameShape(x.shape, shape) ? x : bind1(P.broadcastTo, [x], { shape });
export const reshape = (x: Array, shape: number[]) => (sameShape(x.shape, shape) ? x : bind1(P.reshape, [x], { shape }));
export const transpose = (x: Array, perm: number[]) =>
  perm.every((p, i) => p === i) ? x : bind1(P.transpose, [x], { perm });
export const slice = (x: Array, params: SliceParams) => bind1(P.slice, [x], params);
export const sliceUpdate = (base: Array, update: Array, params: SliceParams) =>
  bind1(P.sliceUpdate, [base, update], params);
export const concatenate = (xs: Array[], axis: number) => bind1(P.concatenate, xs, { axis });

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
