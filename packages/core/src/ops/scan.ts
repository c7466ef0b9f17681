/**
 * @file Cumulative ops (cumsum, cumprod, cummax, cummin, logcumsumexp) and sorting (sort,
 * argsort, partition, argpartition, topk), each along one axis.
 */
import type { Array } from "../array.js";
import { toFloating, type DType } from "../dtype.js";
import type { DeviceOptions } from "../device.js";
import { fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import type { ScanKind } from "../primitives/scan.js";
import { checkArray, checkBoolOption, checkInteger, normalizeAxis, withDevice } from "./util.js";

/** Options of the cumulative ops. */
export interface ScanOptions extends DeviceOptions {
  /** Accumulate from the end of the axis toward its start (default false). */
  reverse?: boolean;
  /** Include each element in its own result (default true); false gives the exclusive scan, starting from the identity. */
  inclusive?: boolean;
}
const SCAN_KEYS = ["reverse", "inclusive"] as const;

function scanOp(name: string, kind: ScanKind, dtypeOf: (t: DType) => DType) {
  return (x: Array, axis?: number | null, options: ScanOptions = {}): Array => withDevice(name, options, () => {
    checkArray(name, x);
    const reverse = checkBoolOption(name, "reverse", options?.reverse) ?? false;
    const inclusive = checkBoolOption(name, "inclusive", options?.inclusive) ?? true;
    const flat = axis === undefined || axis === null;
    const a = flat ? 0 : normalizeAxis(name, axis, x.ndim, x.shape);
    const xa = flat ? lax.reshape(x, [x.size]) : x;
    return lax.scan(lax.cast(xa, dtypeOf(x.dtype)), { kind, axis: a, reverse, inclusive });
  }, SCAN_KEYS);
}
const sumType = (t: DType): DType => (t === "bool" ? "int32" : t);

/**
 * Cumulative sum along an axis (of the flattened array when the axis is omitted); bool sums as
 * int32, integers wrap. Every cumulative op takes the axis and `{ reverse, inclusive }`.
 * @example
 * const x = mx.array([[1, 2, 3], [4, 5, 6]]);
 * mx.cumsum(x).tolist();                               // [1, 3, 6, 10, 15, 21]
 * mx.cumsum(x, 1).tolist();                            // [[1, 3, 6], [4, 9, 15]]
 * x.cumsum(1, { reverse: true, inclusive: false }).tolist(); // [[5, 3, 0], [11, 6, 0]]
 */
export const cumsum = scanOp("cumsum", "sum", sumType);
/**
 * Cumulative product along an axis (flattened when omitted); bool multiplies as int32.
 * @example
 * mx.cumprod(mx.array([1, 2, 3, 4])).tolist();          // [1, 2, 6, 24]
 */
export const cumprod = scanOp("cumprod", "prod", sumType);
/**
 * Running maximum along an axis (flattened when omitted); a NaN propagates to the rest of the scan.
 * @example
 * mx.cummax(mx.array([1, 3, 2, 5])).tolist();           // [1, 3, 3, 5]
 */
export const cummax = scanOp("cummax", "max", (t) => t);
/**
 * Running minimum along an axis (flattened when omitted); a NaN propagates to the rest of the scan.
 * @example
 * mx.cummin(mx.array([4, 2, 3, 1])).tolist();           // [4, 2, 2, 1]
 */
export const cummin = scanOp("cummin", "min", (t) => t);
/**
 * log(cumsum(exp(x))) along an axis (flattened when omitted), computed stably; integers in float32.
 * @example
 * mx.logcumsumexp(mx.array([0, 0])).tolist();           // [0, 0.6931471824645996]
 */
export const logcumsumexp = scanOp("logcumsumexp", "logaddexp", toFloating);

/** The array and axis a sorting op works on: -1 by default, the flattened array for null. */
function sortAxis(name: string, x: Array, axis: number | null | undefined): [Array, number] {
  checkArray(name, x);
  if (axis === null) return [lax.reshape(x, [x.size]), 0];
  return [x, normalizeAxis(name, axis ?? -1, x.ndim, x.shape)];
}

/** kth as an index along an axis of length n (negative counts from the end). */
function checkKth(name: string, kth: unknown, x: Array, n: number): number {
  const k = checkInteger(name, "kth", kth);
  if (k < -n || k >= n) throw new RangeError(`${name}: kth ${k} is out of range for an axis of length ${n} (shape ${fmtShape(x.shape)})`);
  return k < 0 ? k + n : k;
}

/**
 * Sorted ascending along an axis (the last by default; the flattened array for `null`). Stable,
 * with NaN last.
 * @example
 * mx.sort(mx.array([3, NaN, 1, 2])).tolist();           // [1, 2, 3, NaN]
 * mx.array([[2, 1], [0, 5]]).sort(0).tolist();           // [[0, 1], [2, 5]]
 */
export function sort(x: Array, axis: number | null = -1, options: DeviceOptions = {}): Array {
  return withDevice("sort", options, () => {
    const [xa, a] = sortAxis("sort", x, axis);
    return lax.sort(xa, a)[0];
  });
}

/**
 * The indices that sort an axis (the last by default; the flattened array for `null`), as uint32:
 * stable (ties keep their order), NaN last.
 * @example
 * mx.argsort(mx.array([3, 1, 2, 1])).tolist();          // [1, 3, 2, 0]
 */
export function argsort(x: Array, axis: number | null = -1, options: DeviceOptions = {}): Array {
  return withDevice("argsort", options, () => {
    const [xa, a] = sortAxis("argsort", x, axis);
    return lax.sort(xa, a)[1];
  });
}

/**
 * The axis rearranged so that the element at `kth` is the one a sort would put there, every
 * element before it is not greater and every one after it not less (NaN counts as the largest).
 * O(n) per line: a selection, not a sort. Each side keeps its elements in their original order,
 * so the result is deterministic; ties with the kth element are split as a stable sort would.
 * @example
 * mx.partition(mx.array([5, 1, 4, 2]), 1).index(1).item(); // 2
 */
export function partition(x: Array, kth: number, axis: number | null = -1, options: DeviceOptions = {}): Array {
  return withDevice("partition", options, () => {
    const [xa, a] = sortAxis("partition", x, axis);
    return lax.sort(xa, a, { kth: checkKth("partition", kth, x, xa.shape[a]) })[0];
  });
}

/**
 * The indices that partition an axis around `kth` (see partition), as uint32: O(n) per line, and
 * the indices on each side of kth ascending.
 * @example
 * mx.argpartition(mx.array([5, 1, 4, 2]), 0).index(0).item(); // 1
 */
export function argpartition(x: Array, kth: number, axis: number | null = -1, options: DeviceOptions = {}): Array {
  return withDevice("argpartition", options, () => {
    const [xa, a] = sortAxis("argpartition", x, axis);
    return lax.sort(xa, a, { kth: checkKth("argpartition", kth, x, xa.shape[a]) })[1];
  });
}

/**
 * The k largest elements along an axis (the last by default; the flattened array for `null`),
 * in no promised order (MLX's contract; here ascending). NaN counts as the largest. A selection
 * and a sort of the k found: O(n + k log k) per line.
 * @example
 * mx.topk(mx.array([3, 9, 1, 7]), 2).tolist();           // [7, 9]
 */
export function topk(x: Array, k: number, axis: number | null = -1, options: DeviceOptions = {}): Array {
  return withDevice("topk", options, () => {
    const [xa, a] = sortAxis("topk", x, axis);
    const n = xa.shape[a];
    checkInteger("topk", "k", k, 0);
    if (k > n) throw new RangeError(`topk: k ${k} is larger than the axis (length ${n}, shape ${fmtShape(x.shape)})`);
    // k = 0 selects nothing (and an empty axis has no kth to select around).
    const sorted = k === 0 ? xa : lax.sort(xa, a, { kth: n - k, sortTail: true })[0];
    return lax.slice(sorted, {
      start: xa.shape.map((d, i) => (i === a ? n - k : 0)),
      step: xa.shape.map(() => 1),
      shape: xa.shape.map((d, i) => (i === a ? k : d)),
    });
  });
}
