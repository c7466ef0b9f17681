/**
 * @file Basic indexing: `x.index(...)` with integers, `mx.slice(start, stop, step)`, `null` (new
 * axis) and `"..."`. The result is a view: one slice node and one reshape.
 */
import { Array, isArray } from "../array.js";
import { fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { checkArray, withDevice } from "./util.js";
import { isPlainObject } from "../tree.js";
import type { DeviceOptions } from "../device.js";

/** A slice spec, NumPy's `start:stop:step`; any part may be null. */
export class Slice {
  constructor(
    /** The first index (null: the start of the axis, or its end for a negative step). */
    readonly start: number | null = null,
    /** The index to stop before (null: past the last element in the step's direction). */
    readonly stop: number | null = null,
    /** The stride (null: 1); negative walks backwards. */
    readonly step: number | null = null,
  ) {}
}

/**
 * `mx.slice(start?, stop?, step?)`: a slice for `index`, like Python's `start:stop:step`.
 * @example
 * x.index(0, mx.slice(1, null, 2), null); // NumPy's x[0, 1::2, None]
 */
export function slice(start: number | null = null, stop: number | null = null, step: number | null = null): Slice {
  for (const v of [start, stop, step]) {
    if (v !== null && v !== undefined && !Number.isInteger(v)) throw new TypeError(`slice: start, stop and step must be integers or null; got ${String(v)}`);
  }
  if (step === 0) throw new RangeError("slice: step must not be zero");
  return new Slice(start ?? null, stop ?? null, step ?? null);
}

/**
 * One entry of an index spec: an integer (negative counts from the end), `mx.slice(...)`, `null`
 * (a new axis of size 1) or `"..."` (every axis not otherwise named). Integer `Array` entries
 * (advanced indexing, a gather) are in the type but throw for now: they are not implemented yet.
 */
export type IndexEntry = number | Slice | null | "..." | Array;

/** Python's slice.indices: start, step and length of a slice over an axis of size n. */
function resolve(s: Slice, n: number): [number, number, number] {
  const step = s.step ?? 1;
  const clamp = (v: number | null, dflt: number, lo: number, hi: number) => {
    if (v === null) return dflt;
    if (v < 0) v += n;
    return Math.min(Math.max(v, lo), hi);
  };
  let start: number, stop: number;
  if (step > 0) {
    start = clamp(s.start, 0, 0, n);
    stop = clamp(s.stop, n, 0, n);
  } else {
    start = clamp(s.start, n - 1, -1, n - 1);
    stop = clamp(s.stop, -1, -1, n - 1);
  }
  const len = step > 0 ? Math.max(0, Math.ceil((stop - start) / step)) : Math.max(0, Math.ceil((start - stop) / -step));
  return [len > 0 ? start : 0, step, len];
}

/**
 * NumPy basic indexing of x (`x.index(...spec)` as a method): integers drop their axis, slices keep
 * it, `null` adds one, `"..."` stands for the rest. The result is a view.
 * @example
 * const x = mx.arange(12).reshape([3, 4]);
 * mx.index(x, 1).tolist();                       // [4, 5, 6, 7]  NumPy's x[1]
 * x.index(mx.slice(null, null, 2), -1).tolist(); // [3, 11]       NumPy's x[::2, -1]
 * x.index("...", null).shape;                    // [3, 4, 1]     NumPy's x[..., None]
 */
export function index(x: Array, ...spec: IndexEntry[] | [...IndexEntry[], DeviceOptions]): Array {
  const last = spec[spec.length - 1];
  const options = isPlainObject(last) ? (last as DeviceOptions) : {};
  const entries = (isPlainObject(last) ? spec.slice(0, -1) : spec) as IndexEntry[];
  return withDevice("index", options, () => indexOf(x, entries));
}
function indexOf(x: Array, spec: IndexEntry[]): Array {
  checkArray("index", x);
  const ellipses = spec.filter((s) => s === "...").length;
  if (ellipses > 1) throw new RangeError("index: an index can only have a single ellipsis ('...')");
  for (const s of spec) {
    if (isArray(s)) throw new TypeError("index: integer-array (advanced) indexing is not supported yet; use mx.take");
    if (!(s === null || s === "..." || s instanceof Slice || (typeof s === "number" && Number.isInteger(s)))) {
      throw new TypeError(`index: entries must be integers, mx.slice(...), null or "..."; got ${JSON.stringify(s)}`);
    }
  }
  const consuming = spec.filter((s) => s !== null && s !== "...").length;
  if (consuming > x.ndim) {
    throw new RangeError(`index: too many indices for array of shape ${fmtShape(x.shape)}: ${consuming} were given`);
  }
  const full = [...spec];
  const at = ellipses ? full.indexOf("...") : full.length;
  full.splice(at, ellipses, ...new globalThis.Array<Slice>(x.ndim - consuming).fill(new Slice()));

  const start: number[] = [], step: number[] = [], sliced: number[] = [], outShape: number[] = [];
  let axis = 0;
  for (const s of full) {
    if (s === null) {
      outShape.push(1);
      continue;
    }
    const n = x.shape[axis];
    if (typeof s === "number") {
      const i = s < 0 ? s + n : s;
      if (i < 0 || i >= n) {
        throw new RangeError(`index: index ${s} is out of bounds for axis ${axis} with size ${n} (shape ${fmtShape(x.shape)})`);
      }
      start.push(i), step.push(1), sliced.push(1);
    } else {
      const [b, st, len] = resolve(s as Slice, n);
      start.push(b), step.push(st), sliced.push(len);
      outShape.push(len);
    }
    axis++;
  }
  const trivial = start.every((b, i) => b === 0 && step[i] === 1 && sliced[i] === x.shape[i]);
  const y = trivial ? x : lax.slice(x, { start, step, shape: sliced });
  return lax.reshape(y, outShape);
}
