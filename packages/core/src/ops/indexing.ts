/**
 * @file Indexing and functional updates: `x.index(...)` (basic indexing is a view: one slice and
 * one reshape; integer-array entries gather), `x.at(...).set/add/...` (a sliceUpdate, or a
 * scatter), `take`, `takeAlongAxis` and `putAlongAxis`. Several index arrays are linearized into
 * one over their merged axes, so every gather or scatter is along a single axis.
 */
import { Array, isArray, type ArrayLike } from "../array.js";
import { isFloating, isInteger, type DType } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import type { ScatterMode } from "../primitives/indexing.js";
import { asArray, broadcastShapes, checkArray, checkOperand, fmtGot, fmtValue, normalizeAxis, withDevice } from "./util.js";
import { isPlainObject } from "../tree.js";
import type { DeviceOptions } from "../device.js";

/** Checks the parts of a slice: integers or null (undefined counts as null), a step other than 0. */
function checkSliceParts(op: string, start: unknown, stop: unknown, step: unknown): void {
  for (const [name, v] of [["start", start], ["stop", stop], ["step", step]] as const) {
    if (v !== null && v !== undefined && !(typeof v === "number" && Number.isInteger(v))) {
      throw new TypeError(`${op}: start, stop and step must be integers or null; got ${fmtValue(v)} as ${name}`);
    }
  }
  if (step === 0) throw new RangeError(`${op}: step must not be zero; got 0`);
}

/** A slice spec, NumPy's `start:stop:step`; any part may be null. Checked when made, and immutable. */
export class Slice {
  /** The first index (null: the start of the axis, or its end for a negative step). */
  readonly start: number | null;
  /** The index to stop before (null: past the last element in the step's direction). */
  readonly stop: number | null;
  /** The stride (null: 1); negative walks backwards. */
  readonly step: number | null;
  constructor(start: number | null = null, stop: number | null = null, step: number | null = null) {
    checkSliceParts("Slice", start, stop, step);
    this.start = start ?? null;
    this.stop = stop ?? null;
    this.step = step ?? null;
    Object.freeze(this);
  }
}

/**
 * `mx.slice(start?, stop?, step?)`: a slice for `index`, like Python's `start:stop:step`.
 * @example
 * x.index(0, mx.slice(1, null, 2), null); // NumPy's x[0, 1::2, None]
 */
export function slice(start: number | null = null, stop: number | null = null, step: number | null = null): Slice {
  checkSliceParts("slice", start, stop, step);
  return new Slice(start ?? null, stop ?? null, step ?? null);
}

/**
 * One entry of an index spec: an integer (negative counts from the end), `mx.slice(...)`, `null`
 * (a new axis of size 1), `"..."` (every axis not otherwise named) or an integer `Array` (advanced
 * indexing: a gather).
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

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
/** Whether an array of shape `from` broadcasts to exactly `to`. */
const broadcastsTo = (from: number[], to: number[]) =>
  from.length <= to.length && from.every((d, i) => d === 1 || d === to[to.length - from.length + i]);

/** Checks an index array: alive, with an integer dtype. */
function checkIndexArray(op: string, a: Array, what: string): void {
  a.checkAlive(op);
  if (!isInteger(a.dtype)) {
    const hint = a.dtype === "bool" ? " (boolean masks are not supported)" : "";
    throw new TypeError(`${op}: ${what} must have an integer dtype; got ${a.dtype}${hint}`);
  }
}

/** What one entry of a spec contributes to the result, in spec order. */
type Part = { kind: "new" } | { kind: "slice"; axis: number } | { kind: "drop" } | { kind: "adv" };

/** An index spec resolved against x's shape. */
interface Resolved {
  /** The slice of x taken first (axes of advanced entries are kept whole). */
  start: number[];
  step: number[];
  sliced: number[];
  trivial: boolean;
  parts: Part[];
  /** Advanced entries in spec order: their axis of x, the index (integers normalized) and the axis size. */
  adv: { axis: number; index: Array | number; n: number }[];
  /** The shape the index arrays broadcast to. */
  bshape: number[];
  /** Whether the advanced entries are next to each other (their result axes then stay in place). */
  adjacent: boolean;
}

/**
 * Resolves an index spec (NumPy's rules): with any integer Array in it, integers count as
 * advanced indices too (0-d ones), so `x.index(0, mx.slice(), idx)` puts idx's axes first.
 */
function resolveSpec(op: string, x: Array, spec: IndexEntry[]): Resolved {
  checkArray(op, x);
  const ellipses = spec.filter((s) => s === "...").length;
  if (ellipses > 1) throw new RangeError(`${op}: an index can only have a single ellipsis ('...')`);
  for (const s of spec) {
    if (isArray(s)) {
      checkIndexArray(op, s, "index arrays");
      continue;
    }
    if (!(s === null || s === "..." || s instanceof Slice || (typeof s === "number" && Number.isInteger(s)))) {
      throw new TypeError(`${op}: entries must be integers, mx.slice(...), null, "..." or integer Arrays; got ${fmtValue(s)}`);
    }
    if (s instanceof Slice) checkSliceParts(op, s.start, s.stop, s.step); // a Slice made without its constructor
  }
  const consuming = spec.filter((s) => s !== null && s !== "...").length;
  if (consuming > x.ndim) {
    throw new RangeError(`${op}: too many indices for array of shape ${fmtShape(x.shape)}: ${consuming} were given`);
  }
  const full = [...spec];
  const at = ellipses ? full.indexOf("...") : full.length;
  full.splice(at, ellipses, ...new globalThis.Array<Slice>(x.ndim - consuming).fill(new Slice()));
  const hasAdv = full.some(isArray);

  const r: Resolved = { start: [], step: [], sliced: [], trivial: true, parts: [], adv: [], bshape: [], adjacent: true };
  let axis = 0;
  for (const s of full) {
    if (s === null) {
      r.parts.push({ kind: "new" });
      continue;
    }
    const n = x.shape[axis];
    if (typeof s === "number" || isArray(s)) {
      let index: Array | number = s;
      if (typeof s === "number") {
        if (s < -n || s >= n) {
          throw new RangeError(`${op}: index ${s} is out of bounds for axis ${axis} with size ${n} (shape ${fmtShape(x.shape)})`);
        }
        index = s < 0 ? s + n : s;
      }
      if (hasAdv) {
        r.start.push(0), r.step.push(1), r.sliced.push(n);
        r.parts.push({ kind: "adv" });
        r.adv.push({ axis, index, n });
      } else {
        r.start.push(index as number), r.step.push(1), r.sliced.push(1);
        r.parts.push({ kind: "drop" });
      }
    } else {
      const [b, st, len] = resolve(s as Slice, n);
      r.start.push(b), r.step.push(st), r.sliced.push(len);
      r.parts.push({ kind: "slice", axis });
    }
    axis++;
  }
  r.trivial = r.start.every((b, i) => b === 0 && r.step[i] === 1 && r.sliced[i] === x.shape[i]);
  if (hasAdv) {
    r.bshape = broadcastShapes(op, r.adv.map((a) => (isArray(a.index) ? a.index.shape : [])));
    const at = r.parts.map((p, i) => (p.kind === "adv" ? i : -1)).filter((i) => i >= 0);
    r.adjacent = at[at.length - 1] - at[0] === at.length - 1;
  }
  return r;
}

/** The shape of `x.index(...spec)`. */
function resultShape(r: Resolved): number[] {
  const shape: number[] = [];
  let placed = false;
  for (const p of r.parts) {
    if (p.kind === "new") shape.push(1);
    else if (p.kind === "slice") shape.push(r.sliced[p.axis]);
    else if (p.kind === "adv" && r.adjacent && !placed) shape.push(...r.bshape), (placed = true);
  }
  return r.adv.length && !r.adjacent ? [...r.bshape, ...shape] : shape;
}

/** x viewed with an extra leading 1s and broadcast to `shape` (no copy). */
const bcast = (x: Array, shape: number[]) =>
  lax.broadcastTo(lax.reshape(x, [...new globalThis.Array<number>(shape.length - x.ndim).fill(1), ...x.shape]), shape);

/** Gathers along `axis` with indices of any shape (their axes replace it); no argument checks. */
function takeAlong(x: Array, idx: Array, axis: number): Array {
  const pre = x.shape.slice(0, axis), post = x.shape.slice(axis + 1);
  const k = idx.size;
  const ones = (s: number[]) => s.map(() => 1);
  const spread = lax.broadcastTo(lax.reshape(idx, [...ones(pre), k, ...ones(post)]), [...pre, k, ...post]);
  return lax.reshape(lax.gather(x, spread, axis), [...pre, ...idx.shape, ...post]);
}

/**
 * The advanced entries as one index into their axes merged (row-major), of shape bshape. A lone
 * index array is used as is (the kernel checks it); otherwise each array is first checked and
 * made non-negative by a gather from arange(n), so a bad index is reported as itself.
 */
function linearIndex(r: Resolved): Array {
  const only = r.adv.length === 1 ? r.adv[0].index : null;
  if (isArray(only)) return only;
  const dtype: DType = prod(r.adv.map((a) => a.n)) <= 2 ** 31 - 1 ? "int32" : "int64";
  let lin: Array | null = null;
  let constant = 0, stride = 1;
  for (let j = r.adv.length - 1; j >= 0; j--) {
    const { index, n } = r.adv[j];
    if (typeof index === "number") {
      constant += index * stride;
    } else {
      const norm = takeAlong(lax.arange(0, 1, n, dtype), index, 0);
      const term = bcast(stride === 1 ? norm : lax.mul(norm, lax.constLike(norm, stride)), r.bshape);
      lin = lin ? lax.add(lin, term) : term;
    }
    stride *= n;
  }
  const c = lax.broadcastTo(lax.full([], constant, dtype), r.bshape);
  return lin === null ? c : constant === 0 ? lin : lax.add(lin, c);
}

/** The axes of x the advanced entries index, and the others (in order). */
function advancedAxes(r: Resolved, ndim: number): [number[], number[]] {
  const adv = r.adv.map((a) => a.axis);
  return [adv, [...globalThis.Array(ndim).keys()].filter((a) => !adv.includes(a))];
}

const sliceOf = (x: Array, r: Resolved) => (r.trivial ? x : lax.slice(x, { start: r.start, step: r.step, shape: r.sliced }));

/**
 * NumPy indexing of x (`x.index(...spec)` as a method). Basic indexing (integers drop their axis,
 * slices keep it, `null` adds one, `"..."` stands for the rest) gives a view. Integer Array
 * entries gather (advanced indexing): they broadcast together, and their axes take the place of
 * the first when they are adjacent, the front otherwise; integers next to them count as 0-d ones.
 * @example
 * const x = mx.arange(12).reshape([3, 4]);
 * mx.index(x, 1).tolist();                       // [4, 5, 6, 7]  NumPy's x[1]
 * x.index(mx.slice(null, null, 2), -1).tolist(); // [3, 11]       NumPy's x[::2, -1]
 * x.index("...", null).shape;                    // [3, 4, 1]     NumPy's x[..., None]
 * x.index(mx.array([2, 0], "int32"), mx.array([1, -1], "int32")).tolist(); // [9, 3]
 */
export function index(x: Array, ...spec: IndexEntry[] | [...IndexEntry[], DeviceOptions]): Array {
  const last = spec[spec.length - 1];
  const options = isPlainObject(last) ? (last as DeviceOptions) : {};
  const entries = (isPlainObject(last) ? spec.slice(0, -1) : spec) as IndexEntry[];
  return withDevice("index", options, () => indexOf(x, entries));
}
function indexOf(x: Array, spec: IndexEntry[]): Array {
  const r = resolveSpec("index", x, spec);
  const y = sliceOf(x, r);
  const shape = resultShape(r);
  if (!r.adv.length) return lax.reshape(y, shape);
  const lin = linearIndex(r);
  const [adv, others] = advancedAxes(r, x.ndim);
  const merged = prod(adv.map((a) => y.shape[a]));
  let g: Array;
  if (r.adjacent) {
    const p0 = adv[0], pl = adv[adv.length - 1];
    g = takeAlong(lax.reshape(y, [...y.shape.slice(0, p0), merged, ...y.shape.slice(pl + 1)]), lin, p0);
  } else {
    const front = lax.transpose(y, [...adv, ...others]);
    g = takeAlong(lax.reshape(front, [merged, ...others.map((a) => y.shape[a])]), lin, 0);
  }
  return lax.reshape(g, shape);
}

/** The update methods of `x.at(...)`, and the scatter mode each one uses. */
type UpdateKind = "set" | "add" | "subtract" | "multiply" | "divide" | "maximum" | "minimum";
const MODE_OF: Record<UpdateKind, ScatterMode> = {
  set: "set", add: "add", subtract: "add", multiply: "mul", divide: "mul", maximum: "max", minimum: "min",
};

/** x with `v` combined into the elements r selects (repeated advanced indices accumulate). */
function updateAt(op: string, x: Array, r: Resolved, v: ArrayLike, kind: UpdateKind): Array {
  checkOperand(op, v, 1);
  if (kind === "divide" && !isFloating(x.dtype)) {
    throw new TypeError(`${op}: needs a floating-point array (the quotient replaces its elements); got ${x.dtype}`);
  }
  if (kind === "subtract" && x.dtype === "bool") throw new TypeError(`${op}: is not defined for bool arrays`);
  const shape = resultShape(r);
  let vals = asArray(v, x.dtype, op);
  if (!broadcastsTo(vals.shape, shape)) {
    throw new ShapeError(`${op}: values of shape ${fmtShape(vals.shape)} cannot be broadcast to the indexed shape ${fmtShape(shape)}`);
  }
  vals = lax.broadcastTo(vals, shape);
  if (kind === "subtract") vals = lax.neg(vals);
  if (kind === "divide") vals = lax.div(lax.constLike(vals, 1), vals);
  const mode = MODE_OF[kind];
  const y = sliceOf(x, r);
  let updated: Array;
  if (!r.adv.length) {
    // No index repeats: combine elementwise over the slice.
    const vv = lax.reshape(vals, y.shape);
    const combine = { set: null, add: lax.add, mul: lax.mul, max: lax.maximum, min: lax.minimum }[mode];
    updated = combine ? combine(y, vv) : vv;
  } else {
    // Scatter along the advanced axes merged into one at the front, the values laid out to match.
    const lin = linearIndex(r);
    const [adv, others] = advancedAxes(r, x.ndim);
    const k = prod(r.bshape);
    const rest = others.map((a) => y.shape[a]);
    let vv: Array;
    if (r.adjacent) {
      const pre = y.shape.slice(0, adv[0]), post = y.shape.slice(adv[adv.length - 1] + 1);
      vv = lax.moveaxis(lax.reshape(vals, [...pre, k, ...post]), pre.length, 0);
    } else {
      vv = lax.reshape(vals, [k, ...rest]);
    }
    const perm = [...adv, ...others];
    const front = lax.reshape(lax.transpose(y, perm), [prod(adv.map((a) => y.shape[a])), ...rest]);
    const spread = lax.broadcastTo(lax.reshape(lin, [k, ...rest.map(() => 1)]), [k, ...rest]);
    const scattered = lax.reshape(lax.scatter(front, spread, vv, 0, mode), perm.map((a) => y.shape[a]));
    const inv = new globalThis.Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    updated = lax.transpose(scattered, inv);
  }
  return r.trivial ? updated : lax.sliceUpdate(x, updated, { start: r.start, step: r.step, shape: r.sliced });
}

/**
 * The functional updates of `x.at(...spec)`: each returns a new array, x with the indexed
 * elements replaced. Values broadcast to the indexed shape and are cast to x's dtype; repeated
 * indices accumulate for add, subtract, multiply, divide, maximum and minimum (subtract and
 * divide add the negation and multiply by the reciprocal, as MLX); for set the last one wins.
 */
export class ArrayAt {
  readonly #x: Array;
  readonly #r: Resolved;
  /** @internal Made by `x.at(...)`. */
  constructor(x: Array, spec: IndexEntry[]) {
    this.#r = resolveSpec("at", x, spec);
    this.#x = x;
  }
  #apply(kind: UpdateKind, v: ArrayLike, options?: DeviceOptions): Array {
    const op = `at(...).${kind}`;
    return withDevice("at", options, () => updateAt(op, this.#x, this.#r, v, kind));
  }
  /** The indexed elements replaced by v. */
  set(v: ArrayLike, options?: DeviceOptions): Array {
    return this.#apply("set", v, options);
  }
  /** v added to the indexed elements (repeated indices add up). */
  add(v: ArrayLike, options?: DeviceOptions): Array {
    return this.#apply("add", v, options);
  }
  /** v subtracted from the indexed elements. */
  subtract(v: ArrayLike, options?: DeviceOptions): Array {
    return this.#apply("subtract", v, options);
  }
  /** The indexed elements multiplied by v. */
  multiply(v: ArrayLike, options?: DeviceOptions): Array {
    return this.#apply("multiply", v, options);
  }
  /** The indexed elements divided by v (floating-point arrays). */
  divide(v: ArrayLike, options?: DeviceOptions): Array {
    return this.#apply("divide", v, options);
  }
  /** The indexed elements replaced by their maximum with v. */
  maximum(v: ArrayLike, options?: DeviceOptions): Array {
    return this.#apply("maximum", v, options);
  }
  /** The indexed elements replaced by their minimum with v. */
  minimum(v: ArrayLike, options?: DeviceOptions): Array {
    return this.#apply("minimum", v, options);
  }
}

/**
 * Functional updates of the elements `spec` selects (`x.at(...spec)` as a method; the spec is
 * that of `index`): `.set(v)`, `.add(v)`, `.subtract(v)`, `.multiply(v)`, `.divide(v)`,
 * `.maximum(v)`, `.minimum(v)` each return a new array.
 * @example
 * const x = mx.zeros([4]);
 * x.at(mx.array([0, 2, 0], "int32")).add(1).tolist(); // [2, 0, 1, 0]
 * x.at(mx.slice(1, 3)).set(5).tolist();               // [0, 5, 5, 0]
 */
export function at(x: Array, ...spec: IndexEntry[]): ArrayAt {
  return new ArrayAt(x, spec);
}

/** An index argument: an integer Array, or a JS integer (a 0-d index). */
function indexOperand(op: string, indices: unknown, position: number): Array {
  if (isArray(indices)) {
    checkIndexArray(op, indices, "indices");
    return indices;
  }
  if (typeof indices === "number" && Number.isInteger(indices)) {
    return lax.full([], indices, Math.abs(indices) < 2 ** 31 ? "int32" : "int64");
  }
  throw new TypeError(`${op}: argument ${position} (indices) must be an integer Array or an integer; got ${fmtGot(indices)}`);
}

/**
 * The elements of x at `indices` along `axis` (of the flattened x when omitted); the index's axes
 * replace that axis. Negative indices count from the end; one outside [-n, n) is an error at
 * evaluation.
 * @example
 * const x = mx.array([[1, 2, 3], [4, 5, 6]]);
 * mx.take(x, mx.array([2, -3], "int32"), 1).tolist(); // [[3, 1], [6, 4]]
 * x.take(mx.array([[0, 5]], "int32")).tolist();       // [[1, 6]]
 */
export function take(x: Array, indices: Array | number, axis?: number | null, options: DeviceOptions = {}): Array {
  return withDevice("take", options, () => {
    checkArray("take", x);
    const idx = indexOperand("take", indices, 2);
    if (axis === undefined || axis === null) return takeAlong(lax.reshape(x, [x.size]), idx, 0);
    return takeAlong(x, idx, normalizeAxis("take", axis, x.ndim, x.shape));
  });
}

/** Checks indices of takeAlongAxis/putAlongAxis: as many axes as x. */
function alongOperands(op: string, x: Array, indices: unknown, axis: unknown): [Array, Array, number] {
  checkArray(op, x);
  if (!isArray(indices)) throw new TypeError(`${op}: argument 2 (indices) must be an integer Array; got ${fmtGot(indices)}`);
  checkIndexArray(op, indices, "indices");
  if (axis === null) {
    if (indices.ndim !== 1) throw new ShapeError(`${op}: with axis null, indices must be 1-D; got shape ${fmtShape(indices.shape)}`);
    return [lax.reshape(x, [x.size]), indices, 0];
  }
  const a = normalizeAxis(op, axis, x.ndim, x.shape);
  if (indices.ndim !== x.ndim) {
    throw new ShapeError(`${op}: indices must have as many axes as x; got shapes ${fmtShape(x.shape)} and ${fmtShape(indices.shape)}`);
  }
  return [x, indices, a];
}

/**
 * NumPy's take_along_axis: out[..., i, ...] = x[..., indices[..., i, ...], ...] along `axis`
 * (null: of the flattened x). x and indices broadcast against each other off that axis.
 * @example
 * const x = mx.array([[10, 30, 20], [60, 40, 50]]);
 * mx.takeAlongAxis(x, mx.argmax(x, 1, { keepdims: true }), 1).tolist(); // [[30], [60]]
 */
export function takeAlongAxis(x: Array, indices: Array, axis: number | null, options: DeviceOptions = {}): Array {
  return withDevice("takeAlongAxis", options, () => {
    const [xs, idx, a] = alongOperands("takeAlongAxis", x, indices, axis);
    const with1 = (s: number[]) => s.map((d, i) => (i === a ? 1 : d));
    const off = broadcastShapes("takeAlongAxis", [with1(xs.shape), with1(idx.shape)]);
    const to = (n: number) => off.map((d, i) => (i === a ? n : d));
    return lax.gather(lax.broadcastTo(xs, to(xs.shape[a])), lax.broadcastTo(idx, to(idx.shape[a])), a);
  });
}

/**
 * NumPy's put_along_axis, functional: x with `values` written at `indices` along `axis` (null: of
 * the flattened x, and the result is flat). indices broadcast to x's shape off that axis, values to
 * the indices' shape; where indices repeat, the last write wins.
 * @example
 * const x = mx.zeros([2, 3]);
 * mx.putAlongAxis(x, mx.array([[1], [2]], "int32"), 7, 1).tolist(); // [[0, 7, 0], [0, 0, 7]]
 */
export function putAlongAxis(x: Array, indices: Array, values: ArrayLike, axis: number | null, options: DeviceOptions = {}): Array {
  return withDevice("putAlongAxis", options, () => {
    const op = "putAlongAxis";
    const [xs, idx, a] = alongOperands(op, x, indices, axis);
    checkOperand(op, values, 3);
    const target = xs.shape.map((d, i) => (i === a ? idx.shape[a] : d));
    if (!broadcastsTo(idx.shape, target)) {
      throw new ShapeError(`${op}: indices of shape ${fmtShape(idx.shape)} cannot be broadcast to ${fmtShape(target)} (x's shape off axis ${a})`);
    }
    const vals = asArray(values, xs.dtype, op);
    if (!broadcastsTo(vals.shape, target)) {
      throw new ShapeError(`${op}: values of shape ${fmtShape(vals.shape)} cannot be broadcast to the indices' shape ${fmtShape(target)}`);
    }
    return lax.scatter(xs, lax.broadcastTo(idx, target), lax.broadcastTo(vals, target), a, "set");
  });
}
