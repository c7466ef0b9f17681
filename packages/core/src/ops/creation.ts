/** @file Array creation: from JS data, fills, ranges, and the triangular/identity helpers. */
import { Array, isArray, type NestedList, type Scalar } from "../array.js";
import { dtypeCode, dtypeOfTypedArray, isInteger, typedArrayClass, type DType } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import { fromHandle } from "../eval/eval.js";
import { native } from "../native/binding.js";
import * as lax from "../lax.js";
import {
  checkArray, checkDType, checkFinite, checkInteger, checkOptions, checkShape, fmtGot, fmtValue, isScalar, withDevice,
} from "./util.js";
import { astype, expandDims } from "./shape.js";
import { lessEqual, where, equal, add, logicalNot } from "./elementwise.js";
import { isPlainObject } from "../tree.js";
import { currentDevice, nativeDevice, onDevice, type DeviceOptions } from "../device.js";
import { bigintDType, elementConverter, fillValue, fitsInteger, intRange } from "../convert.js";

type Data = NestedList | ArrayBufferView | Array;

/**
 * Shape and row-major leaves of nested JS arrays; throws on ragged or non-scalar entries and on a
 * list that contains itself. Iterative, so any depth of nesting is fine.
 */
function flattenNested(data: NestedList): { shape: number[]; flat: Scalar[] } {
  const shape: number[] = [];
  const chain = new Set<unknown>();
  for (let d: unknown = data; globalThis.Array.isArray(d); d = d[0]) {
    if (chain.has(d)) throw new TypeError(`array: nested lists must not contain themselves; got a list that contains itself (at depth ${shape.length})`);
    chain.add(d);
    shape.push(d.length);
  }
  const flat: Scalar[] = [];
  const ragged = (depth: number) =>
    new RangeError(`array: nested lists are ragged (expected length ${shape[depth]} at depth ${depth}, shape ${fmtShape(shape)})`);
  // One frame per open list: the list and the index of its next entry.
  const lists: unknown[][] = [];
  const next: number[] = [];
  const visit = (x: unknown, depth: number) => {
    if (depth === shape.length) {
      if (!isScalar(x)) {
        throw new TypeError(`array: elements must be numbers, booleans or BigInts; got ${globalThis.Array.isArray(x) ? "a nested list deeper than its siblings" : fmtGot(x)}`);
      }
      flat.push(x);
    } else {
      if (!globalThis.Array.isArray(x) || x.length !== shape[depth]) throw ragged(depth);
      lists.push(x);
      next.push(0);
    }
  };
  visit(data, 0);
  const leafDepth = shape.length - 1;
  while (lists.length) {
    const top = lists.length - 1;
    const list = lists[top];
    if (top === leafDepth) {
      // the innermost lists hold the scalars: copy them in one loop
      for (let i = 0; i < list.length; i++) visit(list[i], shape.length);
      lists.pop();
      next.pop();
      continue;
    }
    if (next[top] === list.length) {
      lists.pop();
      next.pop();
      continue;
    }
    visit(list[next[top]++], top + 1);
  }
  return { shape, flat };
}

/**
 * Writes JS values (numbers, booleans, BigInts; from lists or a TypedArray) into the TypedArray
 * that stores `dtype`, converting each by the conversion rule: numbers saturate into integer
 * dtypes (NaN gives 0), BigInts are exact or a RangeError, half types round to nearest even.
 */
function encode(values: ArrayLike<Scalar>, dtype: DType, op = "array"): ArrayBufferView {
  const Ctor = typedArrayClass(dtype);
  const out = new Ctor(values.length) as unknown as { [i: number]: number | bigint };
  const convert = elementConverter(op, dtype);
  for (let i = 0; i < values.length; i++) out[i] = convert(values[i]);
  return out as unknown as ArrayBufferView;
}

/**
 * An array from JS data: a scalar, nested lists, a 1-D TypedArray, or an Array (converted).
 * @example
 * mx.array([[1, 2], [3, 4]]);          // float32, shape [2, 2]
 * mx.array(new Int32Array([1, 2, 3])); // int32
 * mx.array([true, false]);             // bool
 */
export function array(data: Data, dtype?: DType | null, options: DeviceOptions = {}): Array {
  const o = checkOptions("array", options);
  return onDevice("array", o.device, () => arrayOn(data, dtype));
}

/** Copies host bytes to a new array on the current device. */
function upload(bytes: ArrayBufferView, shape: number[], dtype: DType): Array {
  const device = currentDevice();
  return fromHandle(shape, dtype, native.fromData(bytes, dtypeCode(dtype), shape, nativeDevice(device, "array")), device);
}

function arrayOn(data: Data, dtype?: DType | null): Array {
  const t0 = dtype === undefined || dtype === null ? undefined : checkDType("array", dtype);
  if (isArray(data)) {
    data.checkAlive("array");
    return t0 ? astype(data, t0) : data;
  }
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTypedArray(data);
    if (!own) throw new TypeError(`array: data must be a number, boolean, BigInt, nested lists of them, a TypedArray or an Array; got an unsupported ${data.constructor.name}`);
    let view = data as unknown as ArrayLike<Scalar> & ArrayBufferView;
    // The addon reads plain ArrayBuffers only: copy views of shared or resizable memory first.
    const buffer = view.buffer as ArrayBuffer & { resizable?: boolean };
    if (!(buffer instanceof ArrayBuffer) || buffer.resizable) {
      view = new (view.constructor as new (x: ArrayLike<Scalar>) => typeof view)(view);
    }
    if (!t0 || t0 === own) return upload(view, [view.length], own);
    return upload(encode(view, t0), [view.length], t0);
  }
  if (!isScalar(data) && !globalThis.Array.isArray(data)) {
    throw new TypeError(`array: data must be a number, boolean, BigInt, nested lists of them, a TypedArray or an Array; got ${fmtGot(data)}`);
  }
  const { shape, flat } = flattenNested(data);
  let t = t0;
  if (!t) {
    if (flat.length > 0 && flat.every((v) => typeof v === "boolean")) t = "bool";
    else if (flat.length > 0 && flat.every((v) => typeof v === "bigint")) t = bigintDType("array", flat as bigint[]);
    else t = "float32";
  }
  return upload(encode(flat, t), shape, t);
}

/** A scalar fill value: a number, boolean or BigInt. */
function checkFillValue(op: string, value: unknown): Scalar {
  if (isScalar(value)) return value;
  throw new TypeError(`${op}: value must be a number, boolean, BigInt or an Array; got ${fmtGot(value)}`);
}

/**
 * An array of `shape` filled with `value` (an Array value is broadcast). A number fills float32
 * and a boolean bool, unless a dtype is given.
 * @example
 * mx.full([2], 7).tolist();                   // [7, 7]
 * mx.full([2, 2], mx.array([1, 2])).tolist(); // [[1, 2], [1, 2]]
 */
export function full(shape: number[] | number, value: Scalar | Array, dtype?: DType | null, options: DeviceOptions = {}): Array {
  return withDevice("full", options, () => fill("full", shape, value, dtype));
}
function fill(op: string, shape: number[] | number, value: Scalar | Array, dtype?: DType | null): Array {
  const s = checkShape(op, shape);
  const t0 = dtype === undefined || dtype === null ? undefined : checkDType(op, dtype);
  if (isArray(value)) {
    checkArray(op, value, 2);
    const lead = s.length - value.ndim;
    if (lead < 0 || !value.shape.every((d, i) => d === s[lead + i] || d === 1)) {
      throw new ShapeError(`${op}: the value must broadcast to the shape ${fmtShape(s)}; got a value of shape ${fmtShape(value.shape)}`);
    }
    const v = t0 ? astype(value, t0) : value;
    return lax.broadcastTo(v, s);
  }
  const v = checkFillValue(op, value);
  const t = t0 ?? (typeof v === "boolean" ? "bool" : typeof v === "bigint" ? bigintDType(op, [v]) : "float32");
  return lax.full(s, fillValue(op, v, t), t);
}

/**
 * An array of `shape` (a list, or a number for 1-D) filled with zeros; float32 unless a dtype is given.
 * @example
 * mx.zeros([2, 3]).shape;          // [2, 3]
 * mx.zeros(4, mx.int32).tolist();  // [0, 0, 0, 0]
 */
export function zeros(shape: number[] | number, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("zeros", options, () => fill("zeros", shape, 0, dtype));
}
/** An array of `shape` filled with ones; float32 unless a dtype is given. */
export function ones(shape: number[] | number, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("ones", options, () => fill("ones", shape, 1, dtype));
}
/** Zeros of x's shape, in x's dtype unless one is given. */
export function zerosLike(x: Array, dtype?: DType | null, options: DeviceOptions = {}): Array {
  return withDevice("zerosLike", options, () => {
    checkArray("zerosLike", x);
    return fill("zerosLike", x.shape, 0, dtype ?? x.dtype);
  });
}
/** Ones of x's shape, in x's dtype unless one is given. */
export function onesLike(x: Array, dtype?: DType | null, options: DeviceOptions = {}): Array {
  return withDevice("onesLike", options, () => {
    checkArray("onesLike", x);
    return fill("onesLike", x.shape, 1, dtype ?? x.dtype);
  });
}

/**
 * Evenly spaced values in [start, stop): `arange(n)`, `arange(start, stop, step?)`. Integer
 * arguments give int32, otherwise float32, unless a dtype is given (it may end the arguments).
 * @example
 * mx.arange(5).tolist();        // [0, 1, 2, 3, 4]
 * mx.arange(0, 1, 0.25).tolist(); // [0, 0.25, 0.5, 0.75]
 */
export function arange(
  start: number,
  stop?: number | DType | DeviceOptions,
  step?: number | DType | DeviceOptions,
  dtype?: DType | DeviceOptions,
  options?: DeviceOptions,
): Array {
  const args: unknown[] = [start, stop, step, dtype, options];
  // An options object ends the arguments, as a dtype may.
  let end = args.length;
  while (end > 0 && args[end - 1] === undefined) end--;
  const opts = end > 0 && isPlainObject(args[end - 1]) ? (args[--end] as DeviceOptions) : {};
  return withDevice("arange", opts, () => rangeOf(args.slice(0, end)));
}
function rangeOf(args: unknown[]): Array {
  let pos = args;
  let dt: DType | undefined;
  if (pos.length > 0 && typeof pos[pos.length - 1] === "string") {
    dt = checkDType("arange", pos[pos.length - 1]);
    pos = pos.slice(0, -1);
  }
  if (pos.length === 0 || pos.length > 3) {
    throw new TypeError(`arange: expected a stop, or a start and a stop (and a step), then a dtype and options; got ${pos.length === 0 ? "no numbers" : `${pos.length} arguments before the dtype`}`);
  }
  const names = pos.length === 1 ? ["stop"] : ["start", "stop", "step"];
  const nums: (number | null)[] = pos.map((v, i) => {
    if ((v === null || v === undefined) && i > 0) return null; // an absent stop or step
    if (typeof v === "string") throw new TypeError(`arange: a dtype must come after the numbers (before the options); got ${fmtValue(v)} as ${names[i]}`);
    if (isPlainObject(v)) throw new TypeError(`arange: the options object must be the last argument; got one as argument ${i + 1}`);
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TypeError(`arange: ${names[i]} must be a finite number; got ${typeof v === "number" ? v : fmtGot(v)}`);
    }
    return v;
  });
  const given = nums.filter((v): v is number => v !== null);
  const [a, b, s] = nums[1] === null || nums.length === 1 ? [0, given[0], nums[2] ?? 1] : [nums[0]!, nums[1]!, nums[2] ?? 1];
  if (s === 0) throw new RangeError("arange: step must not be zero; got 0");
  const size = Math.max(0, Math.ceil((b - a) / s));
  const t = dt ?? (given.every(Number.isInteger) ? "int32" : "float32");
  checkRangeFits("arange", a, size > 0 ? a + (size - 1) * s : a, t, dt === undefined);
  return lax.arange(a, s, size, t);
}

/** The first and last values of a range must fit an integer dtype (a RangeError naming op otherwise). */
function checkRangeFits(op: string, first: number, last: number, t: DType, inferred: boolean): void {
  if (!isInteger(t)) return;
  for (const v of [first, last]) {
    if (!fitsInteger(Math.trunc(v), t)) {
      const [lo, hi] = intRange(t);
      throw new RangeError(`${op}: the values must fit the dtype ${t} (${lo} to ${hi}); got ${first} to ${last}${inferred ? ' (pass a dtype such as "int64" or "float64")' : ""}`);
    }
  }
}

/** `num` evenly spaced values from start to stop inclusive. */
export function linspace(start: number, stop: number, num = 50, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("linspace", options, () => {
    checkFinite("linspace", "start", start);
    checkFinite("linspace", "stop", stop);
    checkInteger("linspace", "num", num, 0);
    const t = checkDType("linspace", dtype ?? "float32");
    const step = num > 1 ? (stop - start) / (num - 1) : 0;
    checkRangeFits("linspace", start, num > 1 ? stop : start, t, false);
    return lax.arange(start, step, num, t);
  });
}

function checkMatrixArgs(op: string, n: unknown, m: unknown, k: unknown): void {
  for (const [name, v] of [["n", n], ["m", m]] as const) {
    if (name === "m" && (v === undefined || v === null)) continue;
    if (!(typeof v === "number" && Number.isInteger(v) && v >= 0)) {
      const E = typeof v === "number" ? RangeError : TypeError;
      throw new E(`${op}: ${name} must be a non-negative integer; got ${fmtValue(v)}`);
    }
  }
  if (typeof k !== "number" || !Number.isInteger(k)) {
    const E = typeof k === "number" ? RangeError : TypeError;
    throw new E(`${op}: k must be an integer; got ${fmtValue(k)}`);
  }
}

/** k limited to the diagonals an n x m matrix has (beyond them every diagonal is the same: all or none). */
const clampK = (k: number, n: number, m: number) => Math.min(Math.max(k, -n - 1), m + 1);

/** Ones on the k-th diagonal of an n x m matrix. */
export function eye(n: number, m?: number | null, k = 0, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("eye", options, () => {
    checkMatrixArgs("eye", n, m, k);
    const t = checkDType("eye", dtype ?? "float32");
    const cols = m ?? n;
    const rows = add(expandDims(arange(n), 1), clampK(k, n, cols));
    return astype(equal(rows, expandDims(arange(cols), 0)), t);
  });
}
/** The n x n identity matrix. */
export function identity(n: number, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("identity", options, () => {
    checkMatrixArgs("identity", n, undefined, 0);
    checkDType("identity", dtype ?? "float32");
    return eye(n, n, 0, dtype ?? "float32");
  });
}
/** Ones at and below the k-th diagonal of an n x m matrix. */
export function tri(n: number, m?: number | null, k = 0, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("tri", options, () => {
    checkMatrixArgs("tri", n, m, k);
    const t = checkDType("tri", dtype ?? "float32");
    const cols = m ?? n;
    return astype(lessEqual(expandDims(arange(cols), 0), add(expandDims(arange(n), 1), clampK(k, n, cols))), t);
  });
}
function triMask(op: string, x: Array, k: unknown, shift: number): Array {
  checkArray(op, x);
  checkInteger(op, "k", k);
  if (x.ndim < 2) throw new RangeError(`${op}: expected an array with at least 2 dimensions; got shape ${fmtShape(x.shape)}`);
  const n = x.shape[x.ndim - 2], m = x.shape[x.ndim - 1];
  return astype(tri(n, m, clampK((k as number) + shift, n, m)), "bool");
}
/** The lower triangle of the last two axes (at and below diagonal k), zeros elsewhere. */
export function tril(x: Array, k = 0, options: DeviceOptions = {}): Array {
  // false, not 0: a weak boolean keeps x's dtype, bool arrays included
  return withDevice("tril", options, () => where(triMask("tril", x, k, 0), x, false));
}
/** The upper triangle of the last two axes (at and above diagonal k), zeros elsewhere. */
export function triu(x: Array, k = 0, options: DeviceOptions = {}): Array {
  return withDevice("triu", options, () => where(logicalNot(triMask("triu", x, k, -1)), x, false));
}

/** Coordinate grids from 1-D arrays; `indexing` "xy" (default, Cartesian) or "ij" (matrix). */
export function meshgrid(...args: (Array | ({ indexing?: "xy" | "ij" } & DeviceOptions))[]): Array[] {
  let indexing: "xy" | "ij" = "xy";
  let options: DeviceOptions = {};
  const last = args[args.length - 1];
  if (isPlainObject(last)) {
    options = checkOptions("meshgrid", last as DeviceOptions, ["indexing"]);
    const ix = (last as { indexing?: unknown }).indexing ?? "xy";
    if (ix !== "xy" && ix !== "ij") throw new TypeError(`meshgrid: indexing must be "xy" or "ij"; got ${fmtValue(ix)}`);
    indexing = ix;
    args = args.slice(0, -1);
  }
  return withDevice("meshgrid", options, () => grids(args as Array[], indexing), ["indexing"]);
}
function grids(xs: Array[], indexing: "xy" | "ij"): Array[] {
  xs.forEach((x, i) => checkArray("meshgrid", x, i + 1));
  const n = xs.length;
  const shape = xs.map((x) => x.size);
  if (indexing === "xy" && n >= 2) [shape[0], shape[1]] = [shape[1], shape[0]];
  return xs.map((x, i) => {
    let axis = i;
    if (indexing === "xy" && n >= 2 && i < 2) axis = 1 - i;
    const view = shape.map((d, j) => (j === axis ? d : 1));
    return lax.broadcastTo(lax.reshape(x, view), shape);
  });
}
