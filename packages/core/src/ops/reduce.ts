/** @file Reductions (with axis lists and keepdims) and the softmax family, as composites where possible. */
import { Array } from "../array.js";
import { toFloating, type DType } from "../dtype.js";
import { fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { checkArray, checkBoolOption, fmtValue, normalizeAxes, normalizeAxis, withDevice } from "./util.js";
import type { DeviceOptions } from "../device.js";
import { sqrt, square } from "./elementwise.js";

/** Options of the reductions. */
export interface ReduceOptions extends DeviceOptions {
  /** Keep each reduced axis as an axis of size 1, so the result broadcasts against the input (default false). */
  keepdims?: boolean;
}
type Axis = number | number[] | null | undefined;

function keep(y: Array, shape: number[], axes: number[], keepdims: boolean | undefined): Array {
  return keepdims ? lax.reshape(y, shape.map((d, i) => (axes.includes(i) ? 1 : d))) : y;
}

const REDUCE_KEYS = ["keepdims"] as const;
const VAR_KEYS = ["keepdims", "ddof"] as const;

/** keepdims of an options object already checked by withDevice (absent or null options: false). */
function keepdimsOf(name: string, options: ReduceOptions | null | undefined): boolean | undefined {
  return checkBoolOption(name, "keepdims", options?.keepdims);
}

function reduction(name: string, prim: (x: Array, axes: number[]) => Array, dtypeOf: (t: DType) => DType, nonEmpty = false) {
  return (x: Array, axis?: Axis, options: ReduceOptions = {}): Array => withDevice(name, options, () => {
    checkArray(name, x);
    const keepdims = keepdimsOf(name, options);
    const axes = normalizeAxes(name, axis, x.shape);
    if (nonEmpty && axes.some((a) => x.shape[a] === 0)) {
      throw new RangeError(`${name}: cannot reduce over an empty axis (shape ${fmtShape(x.shape)}, axes [${axes.join(",")}])`);
    }
    const y = axes.length === 0 ? lax.identity(lax.cast(x, dtypeOf(x.dtype))) : prim(lax.cast(x, dtypeOf(x.dtype)), axes);
    return keep(y, x.shape, axes, keepdims);
  }, REDUCE_KEYS);
}
const sumType = (t: DType): DType => (t === "bool" ? "int32" : t);

/**
 * Sum over axes (all by default); bool sums to int32. Every reduction takes the axis (a number, a
 * list, or nothing for all axes; negative counts from the end) and `{ keepdims }`.
 * @example
 * const x = mx.array([[1, 2], [3, 4]]);
 * mx.sum(x).item();                            // 10
 * mx.sum(x, 0).tolist();                       // [4, 6]
 * x.sum(1, { keepdims: true }).tolist();       // [[3], [7]]
 */
export const sum = reduction("sum", lax.reduceSum, sumType);
/** Product over axes (all by default); bool multiplies as int32. */
export const prod = reduction("prod", lax.reduceProd, sumType);
/** Maximum over axes (all by default); an empty axis throws. */
export const max = reduction("max", lax.reduceMax, (t) => t, true);
/** Minimum over axes (all by default); an empty axis throws. */
export const min = reduction("min", lax.reduceMin, (t) => t, true);
/** Whether every element over the axes is true (nonzero), as bool. */
export const all = reduction("all", lax.reduceMin, () => "bool");
/** Whether any element over the axes is true (nonzero), as bool. */
export const any = reduction("any", lax.reduceMax, () => "bool");

function count(shape: number[], axes: number[]): number {
  return axes.reduce((n, a) => n * shape[a], 1);
}

/** Mean over axes; integers average in float32. */
export function mean(x: Array, axis?: Axis, options: ReduceOptions = {}): Array {
  return withDevice("mean", options, () => {
    checkArray("mean", x);
    const keepdims = keepdimsOf("mean", options);
    const axes = normalizeAxes("mean", axis, x.shape);
    const t = toFloating(x.dtype);
    const s = sum(lax.cast(x, accumulationType(t)), axes, { keepdims });
    return lax.cast(lax.div(s, lax.constLike(s, count(x.shape, axes))), t);
  }, REDUCE_KEYS);
}

/** Options of var and std. */
export interface VarOptions extends ReduceOptions {
  /**
   * Delta degrees of freedom, a non-negative integer (default 0): the sum of squares is divided
   * by max(N - ddof, 0), as NumPy (so ddof >= N gives inf, or NaN where the sum is 0).
   */
  ddof?: number;
}
/** Variance over axes, divided by max(N - ddof, 0) (NumPy's rule). */
export function variance(x: Array, axis?: Axis, options: VarOptions = {}): Array {
  return withDevice("var", options, () => lax.cast(varianceOf("var", x, axis, options), toFloating(x.dtype)), VAR_KEYS);
}
/** Half types average and square in float32 (as NumPy): their own range overflows at 65504. */
const accumulationType = (t: DType): DType => (t === "float16" || t === "bfloat16" ? "float32" : t);

/** The variance in the accumulation type (std takes its root there before rounding). */
function varianceOf(name: string, x: Array, axis: Axis, options: VarOptions | null | undefined): Array {
  checkArray(name, x);
  const keepdims = keepdimsOf(name, options);
  const ddof = options?.ddof ?? 0;
  if (typeof ddof !== "number") throw new TypeError(`${name}: ddof must be a non-negative integer; got ${fmtValue(ddof)}`);
  if (!Number.isInteger(ddof) || ddof < 0) throw new RangeError(`${name}: ddof must be a non-negative integer; got ${ddof}`);
  const axes = normalizeAxes(name, axis, x.shape);
  const xf = lax.cast(x, accumulationType(toFloating(x.dtype)));
  const centered = lax.sub(xf, lax.broadcastTo(mean(xf, axes, { keepdims: true }), x.shape));
  const s = sum(square(centered), axes, { keepdims });
  const n = Math.max(count(x.shape, axes) - ddof, 0);
  return lax.div(s, lax.constLike(s, n));
}
export { variance as var };

/** Standard deviation over axes: the square root of the variance (`mx.var`). */
export function std(x: Array, axis?: Axis, options: VarOptions = {}): Array {
  return withDevice("std", options, () => lax.cast(sqrt(varianceOf("std", x, axis, options)), toFloating(x.dtype)), VAR_KEYS);
}

/** Index of the first maximum along an axis (of the flattened array when axis is omitted); uint32. */
export function argmax(x: Array, axis?: number | null, options: ReduceOptions = {}): Array {
  return withDevice("argmax", options, () => argReduce("argmax", lax.argmax, x, axis, options), REDUCE_KEYS);
}
/** Index of the first minimum along an axis (of the flattened array when axis is omitted); uint32. */
export function argmin(x: Array, axis?: number | null, options: ReduceOptions = {}): Array {
  return withDevice("argmin", options, () => argReduce("argmin", lax.argmin, x, axis, options), REDUCE_KEYS);
}
function argReduce(name: string, prim: (x: Array, axis: number) => Array, x: Array, axis: number | null | undefined, options: ReduceOptions | null | undefined): Array {
  checkArray(name, x);
  const keepdims = keepdimsOf(name, options);
  if (axis === undefined || axis === null) {
    if (x.size === 0) throw new RangeError(`${name}: attempt to get ${name} of an empty array (shape ${fmtShape(x.shape)})`);
    const y = prim(lax.reshape(x, [x.size]), 0);
    return keepdims ? lax.reshape(y, x.shape.map(() => 1)) : y;
  }
  const a = normalizeAxis(name, axis, x.ndim, x.shape);
  if (x.shape[a] === 0) throw new RangeError(`${name}: cannot reduce over an empty axis (shape ${fmtShape(x.shape)}, axis ${a})`);
  return keep(prim(x, a), x.shape, [a], keepdims);
}

/** log(sum(exp(x))) over axes, computed stably (the max is subtracted first). */
export function logsumexp(x: Array, axis?: Axis, options: ReduceOptions = {}): Array {
  return withDevice("logsumexp", options, () => logsumexpOf(x, axis, options), REDUCE_KEYS);
}
function logsumexpOf(x: Array, axis: Axis, options: ReduceOptions | null | undefined): Array {
  checkArray("logsumexp", x);
  const keepdims = keepdimsOf("logsumexp", options);
  const axes = normalizeAxes("logsumexp", axis, x.shape);
  const t = toFloating(x.dtype);
  const xf = lax.cast(x, t);
  if (xf.size === 0) return keep(lax.log(lax.reduceSum(lax.exp(xf), axes)), x.shape, axes, keepdims);
  const { flat, rest } = axesLast(lax.cast(xf, computeType(t)), axes);
  const y = lax.cast(lax.reshape(lax.logsumexp(flat), rest), t);
  return keep(y, x.shape, axes, keepdims);
}

/** The dtype the fused kernels run in: float32 for the half types. */
const computeType = (t: DType): DType => (t === "float16" || t === "bfloat16" ? "float32" : t);

/**
 * x with `axes` moved to the end and merged into one: `flat` [...rest, n], `perm` the
 * transposition applied, `moved` its shape before the merge.
 */
function axesLast(x: Array, axes: number[]) {
  const others = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const perm = [...others, ...axes];
  const moved = lax.transpose(x, perm);
  const rest = others.map((i) => x.shape[i]);
  const n = axes.reduce((p, a) => p * x.shape[a], 1);
  return { flat: lax.reshape(moved, [...rest, n]), rest, perm, moved: moved.shape };
}

/** exp(x) / sum(exp(x)) along an axis (the last by default), as one fused kernel per row. */
export function softmax(x: Array, axis: number | number[] = -1, options: DeviceOptions = {}): Array {
  return withDevice("softmax", options, () => {
    checkArray("softmax", x);
    const axes = normalizeAxes("softmax", axis, x.shape);
    const t = toFloating(x.dtype);
    const xf = lax.cast(x, t);
    if (xf.size === 0) return xf;
    const { flat, perm, moved } = axesLast(lax.cast(xf, computeType(t)), axes);
    const y = lax.reshape(lax.softmax(flat), moved);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return lax.cast(lax.transpose(y, inverse), t);
  });
}

/** x - logsumexp(x) along an axis (the last by default). */
export function logSoftmax(x: Array, axis: number | number[] = -1, options: DeviceOptions = {}): Array {
  return withDevice("logSoftmax", options, () => {
    checkArray("logSoftmax", x);
    const axes = normalizeAxes("logSoftmax", axis, x.shape);
    const xf = lax.cast(x, toFloating(x.dtype));
    return lax.sub(xf, lax.broadcastTo(logsumexp(xf, axes, { keepdims: true }), x.shape));
  });
}

