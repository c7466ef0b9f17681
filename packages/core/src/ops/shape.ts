/** @file Shape ops: reshaping, axis permutations, broadcasting, joining and splitting, dtype casts. */
import { Array } from "../array.js";
import { promoteTypes, type DType } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { checkArray, checkDType, checkShape, normalizeAxes, normalizeAxis, normalizeResultAxis } from "./util.js";

/** A copy of x converted to dtype (x itself when the dtype already matches). */
export function astype(x: Array, dtype: DType): Array {
  checkArray("astype", x);
  return lax.cast(x, checkDType("astype", dtype));
}

/**
 * x with a new shape of the same size; one entry may be -1 (inferred).
 * @example
 * mx.reshape(mx.arange(6), [2, -1]).shape; // [2, 3]
 */
export function reshape(x: Array, shape: number[] | number): Array {
  checkArray("reshape", x);
  const s = typeof shape === "number" ? [shape] : shape;
  if (!globalThis.Array.isArray(s) || !s.every((d) => Number.isInteger(d) && d >= -1)) {
    throw new TypeError(`reshape: shape must be a list of integers >= -1; got ${JSON.stringify(shape)}`);
  }
  const infer = s.filter((d) => d === -1).length;
  if (infer > 1) throw new RangeError(`reshape: only one -1 is allowed; got shape ${fmtShape(s)}`);
  const known = s.reduce((n, d) => (d === -1 ? n : n * d), 1);
  let out = [...s];
  if (infer === 1) {
    if (known === 0 || x.size % known !== 0) {
      throw new RangeError(`reshape: cannot reshape array of shape ${fmtShape(x.shape)} (size ${x.size}) into shape ${fmtShape(s)}`);
    }
    out = s.map((d) => (d === -1 ? x.size / known : d));
  } else if (known !== x.size) {
    throw new RangeError(`reshape: cannot reshape array of shape ${fmtShape(x.shape)} (size ${x.size}) into shape ${fmtShape(s)}`);
  }
  return lax.reshape(x, out);
}

/** Merges axes startAxis..endAxis (inclusive) into one. */
export function flatten(x: Array, startAxis = 0, endAxis = -1): Array {
  checkArray("flatten", x);
  if (x.ndim === 0) return lax.reshape(x, [1]);
  const a = normalizeAxis("flatten", startAxis, x.ndim, x.shape);
  const b = normalizeAxis("flatten", endAxis, x.ndim, x.shape);
  if (a > b) throw new RangeError(`flatten: startAxis ${startAxis} comes after endAxis ${endAxis} for shape ${fmtShape(x.shape)}`);
  const merged = x.shape.slice(a, b + 1).reduce((n, d) => n * d, 1);
  return lax.reshape(x, [...x.shape.slice(0, a), merged, ...x.shape.slice(b + 1)]);
}

/** Permutes the axes (reverses them by default). A view, not a copy. */
export function transpose(x: Array, axes?: number[]): Array {
  checkArray("transpose", x);
  const perm = axes ?? [...globalThis.Array(x.ndim).keys()].reverse();
  if (!globalThis.Array.isArray(perm) || perm.length !== x.ndim) {
    throw new RangeError(`transpose: axes ${JSON.stringify(axes)} is not a permutation of 0..${x.ndim - 1} (input shape ${fmtShape(x.shape)})`);
  }
  const norm = perm.map((p) => normalizeAxis("transpose", p, x.ndim, x.shape));
  if (new Set(norm).size !== norm.length) {
    throw new RangeError(`transpose: axes [${perm.join(",")}] is not a permutation of 0..${x.ndim - 1} (input shape ${fmtShape(x.shape)})`);
  }
  return lax.transpose(x, norm);
}

export function swapaxes(x: Array, axis1: number, axis2: number): Array {
  checkArray("swapaxes", x);
  const a = normalizeAxis("swapaxes", axis1, x.ndim, x.shape);
  const b = normalizeAxis("swapaxes", axis2, x.ndim, x.shape);
  const perm = [...globalThis.Array(x.ndim).keys()];
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return lax.transpose(x, perm);
}

export function moveaxis(x: Array, source: number, destination: number): Array {
  checkArray("moveaxis", x);
  const a = normalizeAxis("moveaxis", source, x.ndim, x.shape);
  const b = normalizeAxis("moveaxis", destination, x.ndim, x.shape);
  return lax.moveaxis(x, a, b);
}

/** Inserts size-1 axes at the given positions of the result. */
export function expandDims(x: Array, axis: number | number[]): Array {
  checkArray("expandDims", x);
  const list = typeof axis === "number" ? [axis] : axis;
  const nd = x.ndim + list.length;
  const axes = list.map((a) => normalizeResultAxis("expandDims", a, nd, x.shape));
  if (new Set(axes).size !== axes.length) throw new RangeError(`expandDims: repeated axis in [${list.join(",")}] (input shape ${fmtShape(x.shape)})`);
  const shape: number[] = [];
  let k = 0;
  for (let i = 0; i < nd; i++) shape.push(axes.includes(i) ? 1 : x.shape[k++]);
  return lax.reshape(x, shape);
}

/** Removes size-1 axes (all of them, or the given ones, which must have size 1). */
export function squeeze(x: Array, axis?: number | number[]): Array {
  checkArray("squeeze", x);
  let axes: number[];
  if (axis === undefined) axes = x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  else {
    axes = normalizeAxes("squeeze", axis, x.shape);
    for (const a of axes) {
      if (x.shape[a] !== 1) throw new RangeError(`squeeze: cannot squeeze axis ${a} of size ${x.shape[a]} (shape ${fmtShape(x.shape)})`);
    }
  }
  return lax.reshape(x, x.shape.filter((_, i) => !axes.includes(i)));
}

/** x broadcast to `shape` (a view with stride 0 along the stretched axes). */
export function broadcastTo(x: Array, shape: number[]): Array {
  checkArray("broadcastTo", x);
  const s = checkShape("broadcastTo", shape);
  const lead = s.length - x.ndim;
  const ok = lead >= 0 && x.shape.every((d, i) => d === s[lead + i] || d === 1);
  if (!ok) throw new ShapeError(`broadcastTo: cannot broadcast shape ${fmtShape(x.shape)} to ${fmtShape(s)}`);
  return lax.broadcastTo(x, s);
}

function checkList(op: string, xs: unknown): Array[] {
  if (!globalThis.Array.isArray(xs) || xs.length === 0) throw new TypeError(`${op}: expected a non-empty list of arrays`);
  xs.forEach((x, i) => checkArray(op, x, i + 1));
  return xs as Array[];
}

/** Joins arrays along an existing axis; the other axes must match. */
export function concatenate(xs: Array[], axis = 0): Array {
  const list = checkList("concatenate", xs);
  const nd = list[0].ndim;
  if (nd === 0) throw new RangeError("concatenate: zero-dimensional arrays cannot be concatenated");
  const ax = normalizeAxis("concatenate", axis, nd, list[0].shape);
  for (const x of list) {
    if (x.ndim !== nd || x.shape.some((d, i) => i !== ax && d !== list[0].shape[i])) {
      throw new ShapeError(`concatenate: all shapes must match except on axis ${ax}; got ${list.map((y) => fmtShape(y.shape)).join(", ")}`);
    }
  }
  const t = list.map((x) => x.dtype).reduce(promoteTypes);
  const cast = list.map((x) => lax.cast(x, t));
  return cast.length === 1 ? lax.identity(cast[0]) : lax.concatenate(cast, ax);
}

/** Joins arrays of one shape along a new axis. */
export function stack(xs: Array[], axis = 0): Array {
  const list = checkList("stack", xs);
  for (const x of list) {
    if (x.ndim !== list[0].ndim || x.shape.some((d, i) => d !== list[0].shape[i])) {
      throw new ShapeError(`stack: all arrays must have the same shape; got ${list.map((y) => fmtShape(y.shape)).join(", ")}`);
    }
  }
  const ax = normalizeResultAxis("stack", axis, list[0].ndim + 1, list[0].shape);
  return concatenate(list.map((x) => expandDims(x, ax)), ax);
}

/** Slices x along `axis` from start to stop (views). */
export function sliceAxis(x: Array, axis: number, start: number, stop: number): Array {
  const shape = [...x.shape];
  shape[axis] = Math.max(0, stop - start);
  return lax.slice(x, { start: x.shape.map((_, i) => (i === axis ? start : 0)), step: x.shape.map(() => 1), shape });
}

/**
 * Splits x along an axis into `n` equal sections, or at the given indices.
 * @example
 * mx.split(mx.arange(6), 3).map((p) => p.tolist()); // [[0, 1], [2, 3], [4, 5]]
 */
export function split(x: Array, indicesOrSections: number | number[], axis = 0): Array[] {
  checkArray("split", x);
  const ax = normalizeAxis("split", axis, x.ndim, x.shape);
  const n = x.shape[ax];
  let bounds: number[];
  if (typeof indicesOrSections === "number") {
    const k = indicesOrSections;
    if (!Number.isInteger(k) || k <= 0 || n % k !== 0) {
      throw new RangeError(`split: cannot split axis ${ax} of size ${n} into ${k} equal sections (shape ${fmtShape(x.shape)})`);
    }
    bounds = [...globalThis.Array(k - 1).keys()].map((i) => ((i + 1) * n) / k);
  } else if (globalThis.Array.isArray(indicesOrSections)) {
    if (!indicesOrSections.every((i) => Number.isInteger(i))) {
      throw new TypeError(`split: indices must be integers; got ${JSON.stringify(indicesOrSections)} (shape ${fmtShape(x.shape)})`);
    }
    bounds = indicesOrSections.map((i) => Math.min(Math.max(i < 0 ? i + n : i, 0), n));
  } else {
    throw new TypeError(`split: indicesOrSections must be a number or a list of indices; got ${typeof indicesOrSections}`);
  }
  const edges = [0, ...bounds, n];
  return edges.slice(0, -1).map((s, i) => sliceAxis(x, ax, s, Math.max(s, edges[i + 1])));
}

/** Reverses the order of elements along the given axes (all by default). A view. */
export function flip(x: Array, axis?: number | number[]): Array {
  checkArray("flip", x);
  const axes = normalizeAxes("flip", axis, x.shape);
  return lax.slice(x, {
    start: x.shape.map((d, i) => (axes.includes(i) ? Math.max(d - 1, 0) : 0)),
    step: x.shape.map((_, i) => (axes.includes(i) ? -1 : 1)),
    shape: x.shape,
  });
}
