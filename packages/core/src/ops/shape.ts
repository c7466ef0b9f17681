/** @file Shape ops: reshaping, axis permutations, broadcasting, joining and splitting, tiling and padding, dtype casts. */
import { Array, isArray } from "../array.js";
import { promoteTypes, type DType } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import {
  checkArray, checkDType, checkOptions, checkShape, fmtGot, fmtValue, normalizeAxes, normalizeAxis, normalizeResultAxis, withDevice,
} from "./util.js";
import { weakScalarValue } from "../convert.js";
import { bind1 } from "../primitive.js";
import * as P from "../primitives/index.js";
import { currentDevice, deviceName, onDevice, type DeviceOptions } from "../device.js";

/**
 * A copy of x, on `device` when one is given (the way arrays move between devices).
 * @example
 * const y = mx.copy(x, { device: mx.cpu });
 */
export function copy(x: Array, options: DeviceOptions = {}): Array {
  checkArray("copy", x);
  const o = checkOptions("copy", options);
  return onDevice("copy", o.device, () =>
    bind1(deviceName(currentDevice()) === deviceName(x.device) ? P.copy : P.transfer, [x], {}),
  );
}

/** A copy of x converted to dtype (x itself when the dtype already matches). */
export function astype(x: Array, dtype: DType, options: DeviceOptions = {}): Array {
  return withDevice("astype", options, () => {
    checkArray("astype", x);
    return lax.cast(x, checkDType("astype", dtype));
  });
}

/**
 * x with a new shape of the same size; one entry may be -1 (inferred).
 * @example
 * mx.reshape(mx.arange(6), [2, -1]).shape; // [2, 3]
 */
export function reshape(x: Array, shape: number[] | number, options: DeviceOptions = {}): Array {
  return withDevice("reshape", options, () => reshapeOf(x, shape));
}
function reshapeOf(x: Array, shape: number[] | number): Array {
  checkArray("reshape", x);
  const s = typeof shape === "number" ? [shape] : shape;
  if (!globalThis.Array.isArray(s) || !s.every((d) => Number.isInteger(d) && d >= -1)) {
    throw new TypeError(`reshape: shape must be a list of integers >= -1; got ${fmtValue(shape)}`);
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
export function flatten(x: Array, startAxis = 0, endAxis = -1, options: DeviceOptions = {}): Array {
  return withDevice("flatten", options, () => flattenOf(x, startAxis, endAxis));
}
function flattenOf(x: Array, startAxis: number, endAxis: number): Array {
  checkArray("flatten", x);
  if (x.ndim === 0) return lax.reshape(x, [1]);
  const a = normalizeAxis("flatten", startAxis, x.ndim, x.shape);
  const b = normalizeAxis("flatten", endAxis, x.ndim, x.shape);
  if (a > b) throw new RangeError(`flatten: startAxis ${startAxis} comes after endAxis ${endAxis} for shape ${fmtShape(x.shape)}`);
  const merged = x.shape.slice(a, b + 1).reduce((n, d) => n * d, 1);
  return lax.reshape(x, [...x.shape.slice(0, a), merged, ...x.shape.slice(b + 1)]);
}

/** Permutes the axes (reverses them by default). A view, not a copy. */
export function transpose(x: Array, axes?: number[], options: DeviceOptions = {}): Array {
  return withDevice("transpose", options, () => transposeOf(x, axes));
}
function transposeOf(x: Array, axes: number[] | undefined): Array {
  checkArray("transpose", x);
  const perm = axes ?? [...globalThis.Array(x.ndim).keys()].reverse();
  if (!globalThis.Array.isArray(perm) || perm.length !== x.ndim) {
    throw new RangeError(`transpose: axes ${fmtValue(axes)} is not a permutation of 0..${x.ndim - 1} (input shape ${fmtShape(x.shape)})`);
  }
  const norm = perm.map((p) => normalizeAxis("transpose", p, x.ndim, x.shape));
  if (new Set(norm).size !== norm.length) {
    throw new RangeError(`transpose: axes [${perm.join(",")}] is not a permutation of 0..${x.ndim - 1} (input shape ${fmtShape(x.shape)})`);
  }
  return lax.transpose(x, norm);
}

/** x with axes axis1 and axis2 exchanged. A view. */
export function swapaxes(x: Array, axis1: number, axis2: number, options: DeviceOptions = {}): Array {
  return withDevice("swapaxes", options, () => swapaxesOf(x, axis1, axis2));
}
function swapaxesOf(x: Array, axis1: number, axis2: number): Array {
  checkArray("swapaxes", x);
  const a = normalizeAxis("swapaxes", axis1, x.ndim, x.shape);
  const b = normalizeAxis("swapaxes", axis2, x.ndim, x.shape);
  const perm = [...globalThis.Array(x.ndim).keys()];
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return lax.transpose(x, perm);
}

/** x with axis `source` moved to position `destination`, the others keeping their order. A view. */
export function moveaxis(x: Array, source: number, destination: number, options: DeviceOptions = {}): Array {
  return withDevice("moveaxis", options, () => moveaxisOf(x, source, destination));
}
function moveaxisOf(x: Array, source: number, destination: number): Array {
  checkArray("moveaxis", x);
  const a = normalizeAxis("moveaxis", source, x.ndim, x.shape);
  const b = normalizeAxis("moveaxis", destination, x.ndim, x.shape);
  return lax.moveaxis(x, a, b);
}

/** Inserts size-1 axes at the given positions of the result. */
export function expandDims(x: Array, axis: number | number[], options: DeviceOptions = {}): Array {
  return withDevice("expandDims", options, () => expandDimsOf(x, axis));
}
function expandDimsOf(x: Array, axis: number | number[]): Array {
  checkArray("expandDims", x);
  const list = typeof axis === "number" ? [axis] : axis;
  if (!globalThis.Array.isArray(list)) {
    throw new TypeError(`expandDims: axis must be an integer or a list of integers; got ${fmtValue(axis)} (input shape ${fmtShape(x.shape)})`);
  }
  const nd = x.ndim + list.length;
  const axes = list.map((a) => normalizeResultAxis("expandDims", a, nd, x.shape));
  if (new Set(axes).size !== axes.length) throw new RangeError(`expandDims: repeated axis in [${list.join(",")}] (input shape ${fmtShape(x.shape)})`);
  const shape: number[] = [];
  let k = 0;
  for (let i = 0; i < nd; i++) shape.push(axes.includes(i) ? 1 : x.shape[k++]);
  return lax.reshape(x, shape);
}

/** Removes size-1 axes (all of them, or the given ones, which must have size 1). */
export function squeeze(x: Array, axis?: number | number[], options: DeviceOptions = {}): Array {
  return withDevice("squeeze", options, () => squeezeOf(x, axis));
}
function squeezeOf(x: Array, axis: number | number[] | undefined): Array {
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
export function broadcastTo(x: Array, shape: number[], options: DeviceOptions = {}): Array {
  return withDevice("broadcastTo", options, () => broadcastToOf(x, shape));
}
function broadcastToOf(x: Array, shape: number[]): Array {
  checkArray("broadcastTo", x);
  const s = checkShape("broadcastTo", shape);
  const lead = s.length - x.ndim;
  const ok = lead >= 0 && x.shape.every((d, i) => d === s[lead + i] || d === 1);
  if (!ok) throw new ShapeError(`broadcastTo: cannot broadcast shape ${fmtShape(x.shape)} to ${fmtShape(s)}`);
  return lax.broadcastTo(x, s);
}

function checkList(op: string, xs: unknown): Array[] {
  if (!globalThis.Array.isArray(xs) || xs.length === 0) throw new TypeError(`${op}: expected a non-empty list of arrays; got ${fmtValue(xs)}`);
  xs.forEach((x, i) => checkArray(op, x, i + 1));
  return xs as Array[];
}

/** Joins arrays along an existing axis; the other axes must match. */
export function concatenate(xs: Array[], axis = 0, options: DeviceOptions = {}): Array {
  return withDevice("concatenate", options, () => concatenateOf(xs, axis));
}
function concatenateOf(xs: Array[], axis: number): Array {
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
export function stack(xs: Array[], axis = 0, options: DeviceOptions = {}): Array {
  return withDevice("stack", options, () => stackOf(xs, axis));
}
function stackOf(xs: Array[], axis: number): Array {
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
export function split(x: Array, indicesOrSections: number | number[], axis = 0, options: DeviceOptions = {}): Array[] {
  return withDevice("split", options, () => splitOf(x, indicesOrSections, axis));
}
function splitOf(x: Array, indicesOrSections: number | number[], axis: number): Array[] {
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
      throw new TypeError(`split: indices must be integers; got ${fmtValue(indicesOrSections)} (shape ${fmtShape(x.shape)})`);
    }
    bounds = indicesOrSections.map((i) => Math.min(Math.max(i < 0 ? i + n : i, 0), n));
  } else {
    throw new TypeError(`split: indicesOrSections must be a number or a list of indices; got ${typeof indicesOrSections}`);
  }
  const edges = [0, ...bounds, n];
  return edges.slice(0, -1).map((s, i) => sliceAxis(x, ax, s, Math.max(s, edges[i + 1])));
}

/** Reverses the order of elements along the given axes (all by default). A view. */
export function flip(x: Array, axis?: number | number[], options: DeviceOptions = {}): Array {
  return withDevice("flip", options, () => flipOf(x, axis));
}
function flipOf(x: Array, axis: number | number[] | undefined): Array {
  checkArray("flip", x);
  const axes = normalizeAxes("flip", axis, x.shape);
  return lax.slice(x, {
    start: x.shape.map((d, i) => (axes.includes(i) ? Math.max(d - 1, 0) : 0)),
    step: x.shape.map((_, i) => (axes.includes(i) ? -1 : 1)),
    shape: x.shape,
  });
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

/**
 * x repeated `reps` times along each axis (NumPy's tile): reps and x's shape are padded with
 * leading 1s to the same length.
 * @example
 * mx.tile(mx.array([1, 2]), [2, 2]).tolist(); // [[1, 2, 1, 2], [1, 2, 1, 2]]
 */
export function tile(x: Array, reps: number | number[], options: DeviceOptions = {}): Array {
  return withDevice("tile", options, () => tileOf(x, reps));
}
function tileOf(x: Array, reps: number | number[]): Array {
  checkArray("tile", x);
  const r = typeof reps === "number" ? [reps] : reps;
  if (!globalThis.Array.isArray(r) || !r.every(isInt)) {
    throw new TypeError(`tile: reps must be an integer or a list of integers; got ${fmtValue(reps)} (shape ${fmtShape(x.shape)})`);
  }
  if (r.some((k) => k < 0)) throw new RangeError(`tile: reps must be non-negative; got [${r.join(",")}] (shape ${fmtShape(x.shape)})`);
  const nd = Math.max(r.length, x.ndim);
  const rs = [...new globalThis.Array<number>(nd - r.length).fill(1), ...r];
  const s = [...new globalThis.Array<number>(nd - x.ndim).fill(1), ...x.shape];
  // [1, s0, 1, s1, ...] broadcast to [r0, s0, r1, s1, ...], then merged pairwise.
  const inter = lax.reshape(x, s.flatMap((d) => [1, d]));
  const wide = lax.broadcastTo(inter, s.flatMap((d, i) => [rs[i], d]));
  return lax.reshape(wide, s.map((d, i) => d * rs[i]));
}

/**
 * Each element of x repeated `repeats` times along `axis` (of the flattened x when omitted).
 * @example
 * mx.repeat(mx.array([1, 2]), 2).tolist(); // [1, 1, 2, 2]
 */
export function repeat(x: Array, repeats: number, axis?: number, options: DeviceOptions = {}): Array {
  return withDevice("repeat", options, () => repeatOf(x, repeats, axis));
}
function repeatOf(x: Array, repeats: number, axis: number | undefined): Array {
  checkArray("repeat", x);
  if (globalThis.Array.isArray(repeats) || isArray(repeats)) {
    throw new TypeError(`repeat: repeats must be one integer (per-element repeat counts are not supported); got ${fmtValue(repeats)} (shape ${fmtShape(x.shape)})`);
  }
  if (!isInt(repeats)) throw new TypeError(`repeat: repeats must be an integer; got ${fmtValue(repeats)} (shape ${fmtShape(x.shape)})`);
  if (repeats < 0) throw new RangeError(`repeat: repeats must be non-negative; got ${repeats} (shape ${fmtShape(x.shape)})`);
  const y = axis === undefined ? lax.reshape(x, [x.size]) : x;
  const ax = axis === undefined ? 0 : normalizeAxis("repeat", axis, x.ndim, x.shape);
  const s = y.shape;
  const inner = lax.reshape(y, [...s.slice(0, ax + 1), 1, ...s.slice(ax + 1)]);
  const wide = lax.broadcastTo(inner, [...s.slice(0, ax + 1), repeats, ...s.slice(ax + 1)]);
  return lax.reshape(wide, s.map((d, i) => (i === ax ? d * repeats : d)));
}

/** Options of {@link pad}. */
export interface PadOptions extends DeviceOptions {
  /** "constant" (fill with `value`, default) or "edge" (repeat the edge values). */
  mode?: "constant" | "edge";
  /** The fill of mode "constant" (default 0), cast to x's dtype. */
  value?: number;
}

/** pad's widths as one [before, after] pair per axis. */
function padWidths(x: Array, widths: unknown): [number, number][] {
  const bad = (why: string) =>
    new TypeError(`pad: widths must be a number, a [before, after] pair or one pair per axis (${why}); got ${fmtValue(widths)} (shape ${fmtShape(x.shape)})`);
  const isPair = (p: unknown): p is [number, number] => globalThis.Array.isArray(p) && p.length === 2 && p.every(isInt);
  let pairs: [number, number][];
  if (isInt(widths)) pairs = x.shape.map(() => [widths, widths]);
  else if (!globalThis.Array.isArray(widths)) throw bad("not a list");
  else if (widths.length === 1 && isInt(widths[0])) pairs = x.shape.map(() => [widths[0], widths[0]]);
  else if (isPair(widths)) pairs = x.shape.map(() => [widths[0], widths[1]]);
  else if (widths.length === 1 && isPair(widths[0]) && x.ndim !== 1) pairs = x.shape.map(() => [widths[0][0], widths[0][1]]);
  else if (widths.every(isPair)) {
    if (widths.length !== x.ndim) {
      throw new RangeError(`pad: got ${widths.length} [before, after] pairs for an array of ndim ${x.ndim} (shape ${fmtShape(x.shape)})`);
    }
    pairs = widths.map(([b, a]) => [b, a]);
  } else throw bad("entries must be integers");
  if (pairs.some(([b, a]) => b < 0 || a < 0)) throw new RangeError(`pad: widths must be non-negative; got ${fmtValue(widths)} (shape ${fmtShape(x.shape)})`);
  return pairs;
}

/**
 * x padded with `widths[i] = [before, after]` elements on each side of axis i: with `value`
 * (mode "constant") or copies of the edge element (mode "edge").
 * @example
 * mx.pad(mx.array([1, 2]), 1).tolist(); // [0, 1, 2, 0]
 * mx.pad(mx.array([1, 2]), [2, 1], { mode: "edge" }).tolist(); // [1, 1, 1, 2, 2]
 */
export function pad(x: Array, widths: number | [number, number] | [number, number][], options: PadOptions = {}): Array {
  return withDevice("pad", options, () => padOf(x, widths, options ?? {}), ["mode", "value"]);
}
function padOf(x: Array, widths: number | [number, number] | [number, number][], options: PadOptions): Array {
  checkArray("pad", x);
  const pairs = padWidths(x, widths);
  const { mode = "constant", value } = options ?? {};
  if (mode !== "constant" && mode !== "edge") {
    throw new TypeError(`pad: mode must be "constant" or "edge"; got ${fmtValue(mode)} (shape ${fmtShape(x.shape)})`);
  }
  if (mode === "constant") {
    const v = value ?? 0;
    if (typeof v !== "number" && typeof v !== "boolean" && typeof v !== "bigint") {
      throw new TypeError(`pad: value must be a number; got ${fmtGot(v)} (shape ${fmtShape(x.shape)})`);
    }
    const fillWith = weakScalarValue("pad", v, x.dtype);
    if (pairs.every(([b, a]) => b === 0 && a === 0)) return x;
    const shape = x.shape.map((d, i) => d + pairs[i][0] + pairs[i][1]);
    const base = lax.full(shape, fillWith, x.dtype);
    return lax.sliceUpdate(base, x, { start: pairs.map(([b]) => b), step: x.shape.map(() => 1), shape: x.shape });
  }
  if (value !== undefined) throw new TypeError(`pad: value applies to mode "constant" only (mode "edge", shape ${fmtShape(x.shape)})`);
  let y = x;
  pairs.forEach(([b, a], ax) => {
    if (b === 0 && a === 0) return;
    const n = y.shape[ax];
    if (n === 0) throw new RangeError(`pad: mode "edge" cannot pad axis ${ax} of size 0 (shape ${fmtShape(x.shape)})`);
    const edge = (at: number, k: number) => lax.broadcastTo(sliceAxis(y, ax, at, at + 1), y.shape.map((d, i) => (i === ax ? k : d)));
    const parts = [...(b > 0 ? [edge(0, b)] : []), y, ...(a > 0 ? [edge(n - 1, a)] : [])];
    y = lax.concatenate(parts, ax);
  });
  return y;
}

/**
 * x with elements shifted by `shift` along `axis` (those pushed off one end come back at the
 * other); along the flattened x when axis is omitted. A list of axes takes one shift or one per axis.
 * @example
 * mx.roll(mx.array([1, 2, 3]), 1).tolist(); // [3, 1, 2]
 */
export function roll(x: Array, shift: number | number[], axis?: number | number[], options: DeviceOptions = {}): Array {
  return withDevice("roll", options, () => rollOf(x, shift, axis));
}
function rollOf(x: Array, shift: number | number[], axis: number | number[] | undefined): Array {
  checkArray("roll", x);
  if (axis === undefined || axis === null) {
    if (!isInt(shift)) throw new TypeError(`roll: shift must be an integer when axis is omitted; got ${fmtValue(shift)} (shape ${fmtShape(x.shape)})`);
    return lax.reshape(roll(lax.reshape(x, [x.size]), shift, 0), x.shape);
  }
  const axes = typeof axis === "number" ? [axis] : axis;
  if (!globalThis.Array.isArray(axes)) throw new TypeError(`roll: axis must be an integer or a list of integers; got ${fmtValue(axis)} (shape ${fmtShape(x.shape)})`);
  const shifts = typeof shift === "number" ? axes.map(() => shift) : shift;
  if (!globalThis.Array.isArray(shifts) || !shifts.every(isInt)) {
    throw new TypeError(`roll: shift must be an integer or a list of integers; got ${fmtValue(shift)} (shape ${fmtShape(x.shape)})`);
  }
  if (shifts.length !== axes.length) {
    throw new RangeError(`roll: got ${shifts.length} shifts for ${axes.length} axes (shape ${fmtShape(x.shape)})`);
  }
  // Shifts of a repeated axis add up, as in NumPy.
  const total = new globalThis.Array<number>(x.ndim).fill(0);
  axes.forEach((a, i) => (total[normalizeAxis("roll", a, x.ndim, x.shape)] += shifts[i]));
  let y = x;
  total.forEach((s, ax) => {
    const n = y.shape[ax];
    const k = n === 0 ? 0 : ((s % n) + n) % n;
    if (k !== 0) y = lax.concatenate([sliceAxis(y, ax, n - k, n), sliceAxis(y, ax, 0, n - k)], ax);
  });
  return y;
}
