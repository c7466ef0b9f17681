/**
 * @file mx.linalg: norm (NumPy's vector and matrix norms, as composites), inv, solve, cholesky,
 * qr, eigh and svd on the last two axes, batched over the leading ones. The decompositions run in
 * double (float32 inputs rounded once at the end); half-precision inputs are computed in float32
 * and cast back. Shape and argument errors are thrown at the call; a singular matrix (inv, solve)
 * or one that is not positive definite (cholesky) is an Error at evaluation naming the op.
 */
import type { Array } from "./array.js";
import { isFloating, promoteTypes, type DType } from "./dtype.js";
import { DTypeError, ShapeError, fmtShape } from "./errors.js";
import * as lax from "./lax.js";
import type { DeviceOptions } from "./device.js";
import { broadcastShapes, checkArray, checkBoolOption, fmtGot, fmtValue, normalizeAxis, withDevice } from "./ops/util.js";

/** The dtype a decomposition runs in, or a DTypeError naming the op. */
function kernelType(op: string, t: DType, what: string): DType {
  if (!isFloating(t)) {
    throw new DTypeError(`${op}: ${what} must be floating point (float32 or float64; float16 and bfloat16 are computed in float32); got ${t}`);
  }
  return t === "float64" ? "float64" : "float32";
}

/** Checks a: an Array of at least 2 dimensions, square in the last two unless `anyShape`. */
function checkMatrix(op: string, a: unknown, name: string, position: number, anyShape = false): asserts a is Array {
  checkArray(op, a, position);
  if (a.ndim < 2) throw new ShapeError(`${op}: ${name} must have at least 2 dimensions ([..., m, n]); got shape ${fmtShape(a.shape)}`);
  const [m, n] = a.shape.slice(-2);
  if (!anyShape && m !== n) {
    throw new ShapeError(`${op}: ${name} must be square in its last two axes ([..., n, n]); got shape ${fmtShape(a.shape)}`);
  }
}

/** Runs a one-operand decomposition in its kernel dtype and casts the outputs back to a's. */
function decompose<R extends Array[]>(op: string, a: Array, prim: (x: Array) => R): R {
  const t = kernelType(op, a.dtype, "a");
  return prim(lax.cast(a, t)).map((y) => lax.cast(y, a.dtype)) as R;
}

/**
 * The inverse of each square matrix in the last two axes (LU with partial pivoting). A singular
 * matrix is an Error when the result is evaluated.
 * @example
 * const a = mx.array([[4, 7], [2, 6]]);
 * mx.linalg.inv(a); // [[0.6, -0.7], [-0.2, 0.4]]
 */
export function inv(a: Array, options: DeviceOptions = {}): Array {
  return withDevice("linalg.inv", options, () => {
    checkMatrix("linalg.inv", a, "a", 1);
    return decompose("linalg.inv", a, (x) => [lax.inv(x)])[0];
  });
}

/**
 * The lower Cholesky factor L of each symmetric positive definite matrix (L @ L^T = a), read
 * from a's lower triangle (the upper one is ignored). A matrix that is not positive definite is
 * an Error when the result is evaluated.
 * @example
 * const l = mx.linalg.cholesky(mx.array([[4, 2], [2, 3]]));
 * mx.matmul(l, l.T); // [[4, 2], [2, 3]]
 */
export function cholesky(a: Array, options: DeviceOptions = {}): Array {
  return withDevice("linalg.cholesky", options, () => {
    checkMatrix("linalg.cholesky", a, "a", 1);
    return decompose("linalg.cholesky", a, (x) => [lax.cholesky(x)])[0];
  });
}

/**
 * The solution x of a @ x = b (LU with partial pivoting), with NumPy's rules: b is a vector
 * ([..., n] only when 1-D) or a stack of matrices [..., n, k]; the batch axes of a and b
 * broadcast. A singular a is an Error when the result is evaluated.
 * @example
 * const x = mx.linalg.solve(mx.array([[3, 1], [1, 2]]), mx.array([9, 8])); // [2, 3]
 * mx.linalg.solve(mx.ones([5, 3, 3]).add(mx.eye(3)), mx.ones([3, 2])).shape; // [5, 3, 2]
 */
export function solve(a: Array, b: Array, options: DeviceOptions = {}): Array {
  return withDevice("linalg.solve", options, () => {
    const op = "linalg.solve";
    checkMatrix(op, a, "a", 1);
    checkArray(op, b, 2);
    const n = a.shape[a.ndim - 1];
    if (b.ndim === 0) throw new ShapeError(`${op}: b must be a vector [n] or matrices [..., n, k]; got shape []`);
    const vector = b.ndim === 1;
    const rows = vector ? b.shape[0] : b.shape[b.ndim - 2];
    if (rows !== n) {
      throw new ShapeError(`${op}: b must have ${n} rows to match a ${fmtShape(a.shape)} (${vector ? "[n]" : "[..., n, k]"}); got b ${fmtShape(b.shape)}`);
    }
    const t = kernelType(op, promoteTypes(a.dtype, b.dtype), "a and b");
    const out = promoteTypes(a.dtype, b.dtype);
    const b2 = vector ? lax.reshape(b, [n, 1]) : b;
    let batch: number[];
    try {
      batch = broadcastShapes(op, [a.shape.slice(0, -2), b2.shape.slice(0, -2)]);
    } catch {
      throw new ShapeError(`${op}: the batch axes of a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)} cannot be broadcast together`);
    }
    const k = b2.shape[b2.ndim - 1];
    const x = lax.solve(lax.broadcastTo(lax.cast(a, t), [...batch, n, n]), lax.broadcastTo(lax.cast(b2, t), [...batch, n, k]));
    return lax.cast(vector ? lax.reshape(x, [...batch, n]) : x, out);
  });
}

/**
 * The reduced QR decomposition `[Q, R]` of each matrix (Householder): for a [..., m, n] and
 * k = min(m, n), Q is [..., m, k] with orthonormal columns and R is [..., k, n] upper triangular
 * with a non-negative diagonal, Q @ R = a. Gradients need m >= n (as JAX).
 * @example
 * const [q, r] = mx.linalg.qr(mx.array([[1, 2], [3, 4], [5, 6]]));
 * q.shape; r.shape; // [3, 2], [2, 2]
 */
export function qr(a: Array, options: DeviceOptions = {}): [Array, Array] {
  return withDevice("linalg.qr", options, () => {
    checkMatrix("linalg.qr", a, "a", 1, true);
    return decompose("linalg.qr", a, (x) => lax.qr(x));
  });
}

/**
 * The eigen-decomposition `[eigenvalues, eigenvectors]` of each symmetric matrix, read from its
 * lower triangle: eigenvalues ascending ([..., n]) and orthonormal eigenvectors in the columns
 * ([..., n, n]) with a @ V = V diag(w). Each eigenvector's largest-magnitude entry is positive.
 * @example
 * const [w, v] = mx.linalg.eigh(mx.array([[2, 1], [1, 2]]));
 * w; // [1, 3]
 */
export function eigh(a: Array, options: DeviceOptions = {}): [Array, Array] {
  return withDevice("linalg.eigh", options, () => {
    checkMatrix("linalg.eigh", a, "a", 1);
    return decompose("linalg.eigh", a, (x) => lax.eigh(x));
  });
}

/**
 * The reduced singular value decomposition `[U, S, Vt]` of each matrix (one-sided Jacobi): for a
 * [..., m, n] and k = min(m, n), U is [..., m, k], S [..., k] descending and non-negative, Vt
 * [..., k, n], with U @ diag(S) @ Vt = a and orthonormal columns of U and rows of Vt. Signs: each
 * column of U has its largest-magnitude entry positive, and the matching row of Vt follows.
 * Gradients need distinct non-zero singular values.
 * @example
 * const [u, s, vt] = mx.linalg.svd(mx.array([[3, 0], [0, -4]]));
 * s; // [4, 3]
 */
export function svd(a: Array, options: DeviceOptions = {}): [Array, Array, Array] {
  return withDevice("linalg.svd", options, () => {
    checkMatrix("linalg.svd", a, "a", 1, true);
    return decompose("linalg.svd", a, (x) => lax.svd(x));
  });
}

/** Options of norm. */
export interface NormOptions extends DeviceOptions {
  /** Keep the reduced axes as size-1 axes (default false). */
  keepdims?: boolean;
}

/** The order of a norm: a number (Infinity and -Infinity included), "fro" or "nuc". */
export type NormOrder = number | "fro" | "nuc";

/**
 * NumPy's `linalg.norm`. Over one axis, a vector norm of order `ord`: Infinity (max |x|),
 * -Infinity (min |x|), 0 (the count of non-zeros), any other p (`sum(|x|^p)^(1/p)`), 2 by default.
 * Over two axes, a matrix norm: "fro" (the default), "nuc" (sum of singular values), Infinity /
 * -Infinity (max / min row sum of |x|), 1 / -1 (max / min column sum), 2 / -2 (largest / smallest
 * singular value). Without `axis`: the 2-norm of the flattened x when `ord` is omitted, else x must
 * be 1-D or 2-D. Integer inputs are computed in float32.
 * @example
 * mx.linalg.norm(mx.array([3, 4])); // 5
 * mx.linalg.norm(mx.array([[1, 2], [3, 4]]), "nuc");
 * mx.linalg.norm(x, Infinity, -1, { keepdims: true });
 */
export function norm(x: Array, ord?: NormOrder | null, axis?: number | number[] | null, options: NormOptions = {}): Array {
  return withDevice("linalg.norm", options, () => normOf(x, ord ?? undefined, axis ?? undefined, options), ["keepdims"]);
}

const MATRIX_ORDERS = "\"fro\", \"nuc\", Infinity, -Infinity, 1, -1, 2 or -2";

function normOf(x: Array, ord: NormOrder | undefined, axis: number | number[] | undefined, options: NormOptions): Array {
  const op = "linalg.norm";
  checkArray(op, x, 1);
  const keepdims = checkBoolOption(op, "keepdims", options?.keepdims) ?? false;
  if (ord !== undefined && typeof ord !== "number" && ord !== "fro" && ord !== "nuc") {
    throw new TypeError(`${op}: ord must be a number, "fro" or "nuc"; got ${fmtGot(ord)}`);
  }
  if (typeof ord === "number" && Number.isNaN(ord)) throw new RangeError(`${op}: ord must not be NaN`);
  let axes: number[];
  if (axis === undefined) {
    if (ord === undefined) {
      // The 2-norm of the flattened array, whatever its rank.
      const all = [...globalThis.Array(x.ndim).keys()];
      return keep(sqrtSumSquares(toFloat(x), all), x.shape, all, keepdims);
    }
    if (x.ndim !== 1 && x.ndim !== 2) {
      throw new ShapeError(`${op}: with ord and no axis, x must be 1-D or 2-D; got shape ${fmtShape(x.shape)}`);
    }
    axes = [...globalThis.Array(x.ndim).keys()];
  } else {
    const list = typeof axis === "number" ? [axis] : axis;
    if (!globalThis.Array.isArray(list) || list.length < 1 || list.length > 2) {
      throw new TypeError(`${op}: axis must be an integer or a list of 1 or 2 integers; got ${fmtValue(axis)}`);
    }
    axes = list.map((a) => normalizeAxis(op, a, x.ndim, x.shape));
    if (axes.length === 2 && axes[0] === axes[1]) throw new RangeError(`${op}: axis repeats ${axes[0]} (shape ${fmtShape(x.shape)})`);
  }
  const xf = toFloat(x);
  if (axes.length === 1) {
    if (typeof ord === "string") throw new RangeError(`${op}: ord ${JSON.stringify(ord)} is a matrix norm; a vector norm (one axis) takes a number; got ${fmtValue(ord)}`);
    return keep(vectorNorm(xf, ord ?? 2, axes[0]), x.shape, axes, keepdims);
  }
  const o = ord ?? "fro";
  if (typeof o === "number" && ![Infinity, -Infinity, 1, -1, 2, -2].includes(o)) {
    throw new RangeError(`${op}: a matrix norm (two axes) takes ord ${MATRIX_ORDERS}; got ${o}`);
  }
  return keep(matrixNorm(xf, o, axes[0], axes[1]), x.shape, [...axes].sort((a, b) => a - b), keepdims);
}

/** Integers and bools as float32; floating arrays as they are. */
const toFloat = (x: Array) => (isFloating(x.dtype) ? x : lax.cast(x, "float32"));
const keep = (y: Array, shape: number[], axes: number[], keepdims: boolean) =>
  keepdims ? lax.reshape(y, shape.map((d, i) => (axes.includes(i) ? 1 : d))) : y;
const sqrtSumSquares = (x: Array, axes: number[]) => lax.sqrt(lax.reduceSum(lax.mul(x, x), axes));

function vectorNorm(x: Array, ord: number, axis: number): Array {
  const ax = lax.abs(x);
  if (ord === Infinity) return lax.reduceMax(ax, [axis]);
  if (ord === -Infinity) return lax.reduceMin(ax, [axis]);
  if (ord === 0) return lax.reduceSum(lax.cast(lax.notEqual(x, lax.zerosLike(x)), x.dtype), [axis]);
  if (ord === 1) return lax.reduceSum(ax, [axis]);
  if (ord === 2) return sqrtSumSquares(x, [axis]);
  const s = lax.reduceSum(lax.pow(ax, lax.constLike(ax, ord)), [axis]);
  return lax.pow(s, lax.constLike(s, 1 / ord));
}

/** A matrix norm over the axes (row, col) of x; the result keeps x's other axes in order. */
function matrixNorm(x: Array, ord: NormOrder, row: number, col: number): Array {
  switch (ord) {
    case "fro":
      return sqrtSumSquares(x, [row, col].sort((a, b) => a - b));
    case Infinity: case -Infinity: case 1: case -1: {
      // inf: the max over rows of the row sums; 1: the max over columns of the column sums.
      const [inner, outer] = ord === 1 || ord === -1 ? [row, col] : [col, row];
      const sums = lax.reduceSum(lax.abs(x), [inner]);
      const rest = outer > inner ? outer - 1 : outer;
      return ord > 0 ? lax.reduceMax(sums, [rest]) : lax.reduceMin(sums, [rest]);
    }
    default: {
      // 2, -2, nuc: from the singular values of x with (row, col) moved to the end.
      const others = [...globalThis.Array(x.ndim).keys()].filter((d) => d !== row && d !== col);
      const t = kernelType("linalg.norm", x.dtype, "x");
      const s = lax.svd(lax.cast(lax.transpose(x, [...others, row, col]), t))[1];
      const last = [s.ndim - 1];
      const y = ord === "nuc" ? lax.reduceSum(s, last) : ord === 2 ? lax.reduceMax(s, last) : lax.reduceMin(s, last);
      return lax.cast(y, x.dtype);
    }
  }
}
