/** @file matmul with NumPy's rules (batched, broadcasting batch axes, 1-D operands promoted and squeezed), and the contractions built on it: addmm, tensordot, inner, outer. */
import { Array } from "../array.js";
import { promoteTypes } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { broadcastShapes, checkArray, checkFinite, checkInteger, fmtValue, normalizeAxis, withDevice } from "./util.js";
import { add, mul } from "./elementwise.js";
import type { DeviceOptions } from "../device.js";

/**
 * Matrix product of the last two axes, broadcasting the leading ones. A 1-D first operand is a
 * row vector and a 1-D second operand a column vector; their added axis is removed again.
 * @example
 * mx.matmul(mx.ones([4, 2, 3]), mx.ones([3, 5])).shape; // [4, 2, 5]
 */
export function matmul(a: Array, b: Array, options: DeviceOptions = {}): Array {
  return withDevice("matmul", options, () => matmulOf(a, b));
}
/** matmul without the device scope, its errors naming `op` and operands numbered from `first`. */
export function matmulOf(a: Array, b: Array, op = "matmul", first = 1): Array {
  checkArray(op, a, first);
  checkArray(op, b, first + 1);
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(`${op}: operands must have at least 1 dimension; got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  }
  const a2 = a.ndim === 1 ? lax.reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? lax.reshape(b, [b.shape[0], 1]) : b;
  const k = a2.shape[a2.ndim - 1];
  if (b2.shape[b2.ndim - 2] !== k) {
    throw new ShapeError(`${op}: inner dimensions must match; got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  }
  let batch: number[];
  try {
    batch = broadcastShapes(op, [a2.shape.slice(0, -2), b2.shape.slice(0, -2)]);
  } catch {
    throw new ShapeError(`${op}: batch dimensions cannot be broadcast together; got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  }
  const t = promoteTypes(a.dtype, b.dtype);
  const m = a2.shape[a2.ndim - 2], n = b2.shape[b2.ndim - 1];
  let out: Array;
  if (b2.ndim === 2 && a2.ndim > 2) {
    // An unbatched right operand (a weight): fold the batch axes into M, so the product and
    // both of its gradients are single GEMMs instead of one per batch entry and a reduction.
    const rows = lax.reshape(lax.cast(a2, t), [batch.reduce((p, d) => p * d, 1) * m, k]);
    out = lax.reshape(lax.matmul(rows, lax.cast(b2, t)), [...batch, m, n]);
  } else {
    const x = lax.broadcastTo(lax.cast(a2, t), [...batch, m, k]);
    const y = lax.broadcastTo(lax.cast(b2, t), [...batch, k, n]);
    out = lax.matmul(x, y);
  }
  if (a.ndim === 1 || b.ndim === 1) {
    const shape = [...batch];
    if (a.ndim !== 1) shape.push(m);
    if (b.ndim !== 1) shape.push(n);
    out = lax.reshape(out, shape);
  }
  return out;
}

/** Options of addmm. */
export interface AddmmOptions extends DeviceOptions {
  /** Factor of the product a @ b (default 1). */
  alpha?: number;
  /** Factor of c (default 1). */
  beta?: number;
}

/**
 * `alpha * (a @ b) + beta * c`, with matmul's rules for a and b and c broadcast to the product's
 * shape (as MLX's addmm).
 * @example
 * mx.addmm(bias, x, w, { alpha: 1, beta: 1 }); // x @ w + bias
 * mx.addmm(c, a, b, { alpha: 0.5, beta: 2 }).shape; // the shape of a @ b
 */
export function addmm(c: Array, a: Array, b: Array, options: AddmmOptions = {}): Array {
  return withDevice("addmm", options, () => {
    checkArray("addmm", c, 1);
    const alpha = options?.alpha === undefined ? 1 : checkFinite("addmm", "alpha", options.alpha);
    const beta = options?.beta === undefined ? 1 : checkFinite("addmm", "beta", options.beta);
    const ab = matmulOf(a, b, "addmm", 2);
    let fits = true;
    try {
      fits = fmtShape(broadcastShapes("addmm", [c.shape, ab.shape])) === fmtShape(ab.shape);
    } catch {
      fits = false;
    }
    if (!fits) {
      throw new ShapeError(`addmm: c of shape ${fmtShape(c.shape)} cannot be broadcast to the product's shape ${fmtShape(ab.shape)} (a ${fmtShape(a.shape)} @ b ${fmtShape(b.shape)})`);
    }
    const scaled = alpha === 1 ? ab : mul(ab, alpha);
    return add(scaled, beta === 1 ? c : mul(c, beta));
  }, ["alpha", "beta"]);
}

/**
 * Sums the products of a's axes `axesA` with b's axes `axesB` (equal sizes, pairwise): the result
 * has a's other axes, then b's, as one matmul of the operands transposed and reshaped.
 */
function dotAxes(op: string, a: Array, b: Array, axesA: number[], axesB: number[]): Array {
  axesA.forEach((ax, i) => {
    if (a.shape[ax] !== b.shape[axesB[i]]) {
      throw new ShapeError(`${op}: contracted axes must have equal sizes; got axis ${ax} of ${fmtShape(a.shape)} (size ${a.shape[ax]}) with axis ${axesB[i]} of ${fmtShape(b.shape)} (size ${b.shape[axesB[i]]})`);
    }
  });
  const t = promoteTypes(a.dtype, b.dtype);
  const freeA = [...globalThis.Array(a.ndim).keys()].filter((i) => !axesA.includes(i));
  const freeB = [...globalThis.Array(b.ndim).keys()].filter((i) => !axesB.includes(i));
  const size = (shape: number[], axes: number[]) => axes.reduce((p, i) => p * shape[i], 1);
  const k = size(a.shape, axesA);
  const x = lax.reshape(lax.transpose(lax.cast(a, t), [...freeA, ...axesA]), [size(a.shape, freeA), k]);
  const y = lax.reshape(lax.transpose(lax.cast(b, t), [...axesB, ...freeB]), [k, size(b.shape, freeB)]);
  return lax.reshape(lax.matmul(x, y), [...freeA.map((i) => a.shape[i]), ...freeB.map((i) => b.shape[i])]);
}

/** One side of tensordot's axes: a list of distinct axes of an operand (a number is a list of one). */
function tensordotAxes(x: Array, axes: unknown, which: string): number[] {
  const list = typeof axes === "number" ? [axes] : axes;
  if (!globalThis.Array.isArray(list)) {
    throw new TypeError(`tensordot: axes ${which} must be an integer or a list of integers; got ${fmtValue(axes)}`);
  }
  const out = list.map((ax) => normalizeAxis("tensordot", ax, x.ndim, x.shape));
  if (new Set(out).size !== out.length) throw new RangeError(`tensordot: axes ${which} [${list.join(",")}] repeats an axis of ${fmtShape(x.shape)}`);
  return out;
}

/**
 * Tensor dot product: with `axes` a count n (default 2), sums over the last n axes of a and the
 * first n of b; with `axes` a pair of axis lists `[axesA, axesB]`, sums over those pairs. The
 * result has a's remaining axes followed by b's.
 * @example
 * mx.tensordot(mx.ones([2, 3, 4]), mx.ones([3, 4, 5])).shape;           // [2, 5]
 * mx.tensordot(mx.ones([3, 2]), mx.ones([4, 3]), [[0], [1]]).shape;    // [2, 4]
 */
export function tensordot(a: Array, b: Array, axes: number | [number | number[], number | number[]] = 2, options: DeviceOptions = {}): Array {
  return withDevice("tensordot", options, () => {
    checkArray("tensordot", a, 1);
    checkArray("tensordot", b, 2);
    let axesA: number[], axesB: number[];
    if (typeof axes === "number") {
      const n = checkInteger("tensordot", "axes", axes, 0);
      if (n > a.ndim || n > b.ndim) {
        throw new RangeError(`tensordot: axes ${n} exceeds the rank of an operand; got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
      }
      axesA = [...globalThis.Array(n).keys()].map((i) => a.ndim - n + i);
      axesB = [...globalThis.Array(n).keys()];
    } else if (globalThis.Array.isArray(axes) && axes.length === 2) {
      axesA = tensordotAxes(a, axes[0], "for a");
      axesB = tensordotAxes(b, axes[1], "for b");
      if (axesA.length !== axesB.length) {
        throw new RangeError(`tensordot: the axis lists must have equal lengths; got ${fmtValue(axes[0])} and ${fmtValue(axes[1])}`);
      }
    } else {
      throw new TypeError(`tensordot: axes must be a non-negative integer or a pair of axis lists [axesA, axesB]; got ${fmtValue(axes)}`);
    }
    return dotAxes("tensordot", a, b, axesA, axesB);
  });
}

/**
 * Inner product over the last axes: for 1-D operands the dot product; otherwise the result has
 * a's leading axes followed by b's. A 0-d operand multiplies the other (as NumPy's inner).
 * @example
 * mx.inner(mx.array([1, 2, 3]), mx.array([4, 5, 6])).item(); // 32
 * mx.inner(mx.ones([2, 3]), mx.ones([4, 3])).shape;          // [2, 4]
 */
export function inner(a: Array, b: Array, options: DeviceOptions = {}): Array {
  return withDevice("inner", options, () => {
    checkArray("inner", a, 1);
    checkArray("inner", b, 2);
    if (a.ndim === 0 || b.ndim === 0) return mul(a, b);
    if (a.shape[a.ndim - 1] !== b.shape[b.ndim - 1]) {
      throw new ShapeError(`inner: the last dimensions must match; got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
    }
    return dotAxes("inner", a, b, [a.ndim - 1], [b.ndim - 1]);
  });
}

/**
 * Outer product of the flattened operands: `out[i, j] = a.flat[i] * b.flat[j]`.
 * @example
 * mx.outer(mx.array([1, 2]), mx.array([3, 4, 5])).tolist(); // [[3, 4, 5], [6, 8, 10]]
 */
export function outer(a: Array, b: Array, options: DeviceOptions = {}): Array {
  return withDevice("outer", options, () => {
    checkArray("outer", a, 1);
    checkArray("outer", b, 2);
    const t = promoteTypes(a.dtype, b.dtype);
    const shape = [a.size, b.size];
    const x = lax.broadcastTo(lax.reshape(lax.cast(a, t), [a.size, 1]), shape);
    const y = lax.broadcastTo(lax.reshape(lax.cast(b, t), [1, b.size]), shape);
    return lax.mul(x, y);
  });
}
