/** @file Array creation: from JS data, fills, ranges, and the triangular/identity helpers. */
import { Array, isArray, type NestedList, type Scalar } from "../array.js";
import {
  dtypeCode, dtypeOfTypedArray, floatToBfloat16Bits, floatToHalfBits, isInteger, typedArrayClass, type DType,
} from "../dtype.js";
import { fmtShape } from "../errors.js";
import { fromHandle } from "../eval/eval.js";
import { native } from "../native/binding.js";
import * as lax from "../lax.js";
import { checkArray, checkDType, checkShape, isScalar, withDevice } from "./util.js";
import { astype, expandDims } from "./shape.js";
import { lessEqual, where, equal, add, logicalNot } from "./elementwise.js";
import { isPlainObject } from "../tree.js";
import { currentDevice, nativeDevice, onDevice, type DeviceOptions } from "../device.js";

type Data = NestedList | ArrayBufferView | Array;

/** Shape and row-major leaves of nested JS arrays; throws on ragged or non-scalar entries. */
function flattenNested(data: NestedList): { shape: number[]; flat: Scalar[] } {
  const shape: number[] = [];
  for (let d: unknown = data; globalThis.Array.isArray(d); d = d[0]) shape.push(d.length);
  const flat: Scalar[] = [];
  const walk = (x: unknown, depth: number) => {
    if (depth === shape.length) {
      if (!isScalar(x)) {
        throw new TypeError(`array: elements must be numbers, booleans or BigInts; got ${globalThis.Array.isArray(x) ? "a nested list deeper than its siblings" : typeof x}`);
      }
      flat.push(x);
      return;
    }
    if (!globalThis.Array.isArray(x) || x.length !== shape[depth]) {
      throw new RangeError(`array: nested lists are ragged (expected length ${shape[depth]} at depth ${depth}, shape ${fmtShape(shape)})`);
    }
    for (const y of x) walk(y, depth + 1);
  };
  walk(data, 0);
  return { shape, flat };
}

/** Writes JS scalars into the TypedArray that stores `dtype`. */
function encode(values: ArrayLike<Scalar>, dtype: DType): ArrayBufferView {
  const Ctor = typedArrayClass(dtype);
  const out = new Ctor(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (dtype === "int64" || dtype === "uint64") {
      (out as BigInt64Array)[i] = typeof v === "bigint" ? v : BigInt(Math.trunc(Number(v)));
    } else if (dtype === "float16") {
      out[i] = floatToHalfBits(Number(v));
    } else if (dtype === "bfloat16") {
      out[i] = floatToBfloat16Bits(Number(v));
    } else if (dtype === "bool") {
      out[i] = v ? 1 : 0;
    } else {
      (out as Float64Array)[i] = isInteger(dtype) ? Math.trunc(Number(v)) : Number(v);
    }
  }
  return out;
}

/**
 * An array from JS data: a scalar, nested lists, a 1-D TypedArray, or an Array (converted).
 * @example
 * mx.array([[1, 2], [3, 4]]);          // float32, shape [2, 2]
 * mx.array(new Int32Array([1, 2, 3])); // int32
 * mx.array([true, false]);             // bool
 */
export function array(data: Data, dtype?: DType, options: DeviceOptions = {}): Array {
  return onDevice("array", options.device, () => arrayOn(data, dtype));
}

/** Copies host bytes to a new array on the current device. */
function upload(bytes: ArrayBufferView, shape: number[], dtype: DType): Array {
  const device = currentDevice();
  return fromHandle(shape, dtype, native.fromData(bytes, dtypeCode(dtype), shape, nativeDevice(device, "array")), device);
}

function arrayOn(data: Data, dtype?: DType): Array {
  if (dtype !== undefined) dtype = checkDType("array", dtype);
  if (isArray(data)) return dtype ? astype(data, dtype) : data;
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTypedArray(data);
    if (!own) throw new TypeError(`array: unsupported TypedArray ${data.constructor.name}`);
    const n = (data as unknown as ArrayLike<number>).length;
    if (!dtype || dtype === own) {
      return upload(data, [n], own);
    }
    const values = data as unknown as ArrayLike<Scalar>;
    return upload(encode(values, dtype), [n], dtype);
  }
  if (!isScalar(data) && !globalThis.Array.isArray(data)) {
    throw new TypeError(`array: data must be a number, boolean, nested lists, a TypedArray or an Array; got ${data === null ? "null" : typeof data}`);
  }
  const { shape, flat } = flattenNested(data);
  let t = dtype;
  if (!t) {
    if (flat.length > 0 && flat.every((v) => typeof v === "boolean")) t = "bool";
    else if (flat.length > 0 && flat.every((v) => typeof v === "bigint")) t = "int64";
    else t = "float32";
  }
  return upload(encode(flat, t), shape, t);
}

function fillValue(op: string, value: unknown): number | bigint {
  if (typeof value === "number" || typeof value === "bigint") return value;
  if (typeof value === "boolean") return Number(value);
  throw new TypeError(`${op}: value must be a number or boolean; got ${typeof value}`);
}

/**
 * An array of `shape` filled with `value` (an Array value is broadcast). A number fills float32
 * and a boolean bool, unless a dtype is given.
 * @example
 * mx.full([2], 7).tolist();                   // [7, 7]
 * mx.full([2, 2], mx.array([1, 2])).tolist(); // [[1, 2], [1, 2]]
 */
export function full(shape: number[] | number, value: Scalar | Array, dtype?: DType, options: DeviceOptions = {}): Array {
  return withDevice("full", options, () => fill("full", shape, value, dtype));
}
function fill(op: string, shape: number[] | number, value: Scalar | Array, dtype?: DType): Array {
  const s = checkShape(op, shape);
  if (isArray(value)) {
    const v = dtype ? astype(value, dtype) : value;
    return lax.broadcastTo(v, s);
  }
  const t = dtype ? checkDType(op, dtype) : typeof value === "boolean" ? "bool" : "float32";
  return lax.full(s, fillValue(op, value), t);
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
export function zerosLike(x: Array, dtype?: DType, options: DeviceOptions = {}): Array {
  return withDevice("zerosLike", options, () => {
    checkArray("zerosLike", x);
    return full(x.shape, 0, dtype ?? x.dtype);
  });
}
/** Ones of x's shape, in x's dtype unless one is given. */
export function onesLike(x: Array, dtype?: DType, options: DeviceOptions = {}): Array {
  return withDevice("onesLike", options, () => {
    checkArray("onesLike", x);
    return full(x.shape, 1, dtype ?? x.dtype);
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
  if (args.some(isPlainObject)) throw new TypeError("arange: the options object must be the last argument");
  const dt = args.find((a) => typeof a === "string") as DType | undefined;
  const nums = args.filter((a) => a !== undefined && a !== null && typeof a !== "string") as number[];
  for (const n of nums) if (typeof n !== "number" || !Number.isFinite(n)) throw new TypeError(`arange: start, stop and step must be finite numbers; got ${String(n)}`);
  let [a, b, s] = nums.length === 1 ? [0, nums[0], 1] : [nums[0], nums[1], nums[2] ?? 1];
  if (s === 0) throw new RangeError("arange: step must not be zero");
  const size = Math.max(0, Math.ceil((b - a) / s));
  const t = dt ? checkDType("arange", dt) : nums.every(Number.isInteger) ? "int32" : "float32";
  return lax.arange(a, s, size, t);
}

/** `num` evenly spaced values from start to stop inclusive. */
export function linspace(start: number, stop: number, num = 50, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("linspace", options, () => {
    if (!Number.isInteger(num) || num < 0) throw new RangeError(`linspace: num must be a non-negative integer; got ${num}`);
    const step = num > 1 ? (stop - start) / (num - 1) : 0;
    return lax.arange(start, step, num, checkDType("linspace", dtype));
  });
}

function checkMatrixArgs(op: string, n: unknown, m: unknown, k: unknown): void {
  for (const [name, v] of [["n", n], ["m", m]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0)) {
      throw new RangeError(`${op}: ${name} must be a non-negative integer; got ${String(v)}`);
    }
  }
  if (!Number.isInteger(k)) throw new RangeError(`${op}: k must be an integer; got ${String(k)}`);
}

/** Ones on the k-th diagonal of an n x m matrix. */
export function eye(n: number, m?: number, k = 0, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("eye", options, () => {
    checkMatrixArgs("eye", n, m, k);
    const cols = m ?? n;
    const rows = add(expandDims(arange(n), 1), k);
    return astype(equal(rows, expandDims(arange(cols), 0)), dtype);
  });
}
/** The n x n identity matrix. */
export function identity(n: number, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("identity", options, () => {
    checkMatrixArgs("identity", n, undefined, 0);
    return eye(n, n, 0, dtype);
  });
}
/** Ones at and below the k-th diagonal of an n x m matrix. */
export function tri(n: number, m?: number, k = 0, dtype: DType = "float32", options: DeviceOptions = {}): Array {
  return withDevice("tri", options, () => {
    checkMatrixArgs("tri", n, m, k);
    const cols = m ?? n;
    return astype(lessEqual(expandDims(arange(cols), 0), add(expandDims(arange(n), 1), k)), dtype);
  });
}
function triMask(op: string, x: Array, k: number): Array {
  checkArray(op, x);
  if (x.ndim < 2) throw new RangeError(`${op}: expected an array with at least 2 dimensions; got shape ${fmtShape(x.shape)}`);
  return astype(tri(x.shape[x.ndim - 2], x.shape[x.ndim - 1], k), "bool");
}
/** The lower triangle of the last two axes (at and below diagonal k), zeros elsewhere. */
export function tril(x: Array, k = 0, options: DeviceOptions = {}): Array {
  return withDevice("tril", options, () => where(triMask("tril", x, k), x, 0));
}
/** The upper triangle of the last two axes (at and above diagonal k), zeros elsewhere. */
export function triu(x: Array, k = 0, options: DeviceOptions = {}): Array {
  return withDevice("triu", options, () => where(logicalNot(triMask("triu", x, k - 1)), x, 0));
}

/** Coordinate grids from 1-D arrays; `indexing` "xy" (default, Cartesian) or "ij" (matrix). */
export function meshgrid(...args: (Array | ({ indexing?: "xy" | "ij" } & DeviceOptions))[]): Array[] {
  let indexing: "xy" | "ij" = "xy";
  let options: DeviceOptions = {};
  const last = args[args.length - 1];
  if (isPlainObject(last)) {
    options = last as DeviceOptions;
    indexing = (last as { indexing?: "xy" | "ij" }).indexing ?? "xy";
    args = args.slice(0, -1);
  }
  return withDevice("meshgrid", options, () => grids(args as Array[], indexing));
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
