/** @file Argument checking shared by the user-facing ops: operands, axes, shapes, dtypes. */
import { Array, isArray, type ArrayLike, type Scalar } from "../array.js";
import { promoteTypes, promoteWithScalar, scalarDType, type DType } from "../dtype.js";
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { onDevice, type DeviceOptions } from "../device.js";

/**
 * Runs an op's body with the nodes it records placed on `options.device` (absent: unchanged, so
 * the ops it calls inherit the scope); throws, naming `op`, if that device is not available.
 */
export function withDevice<T>(op: string, options: DeviceOptions | undefined, fn: () => T): T {
  return onDevice(op, options?.device, fn);
}

export function isScalar(x: unknown): x is Scalar {
  return typeof x === "number" || typeof x === "boolean" || typeof x === "bigint";
}

/** A bad argument as error messages print it: strings and lists quoted, so "0" and [0] differ from 0. */
export function fmtValue(x: unknown): string {
  if (typeof x === "string" || globalThis.Array.isArray(x)) return JSON.stringify(x);
  return String(x);
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (globalThis.Array.isArray(x)) return "a JS array (wrap it with mx.array)";
  if (isArray(x)) return `array ${fmtShape(x.shape)} ${x.dtype}`;
  return typeof x;
}

/** Checks that x is an Array (alive) or a JS scalar. */
export function checkOperand(op: string, x: unknown, position: number): asserts x is ArrayLike {
  if (isArray(x)) {
    x.checkAlive(op);
    return;
  }
  if (!isScalar(x)) {
    throw new TypeError(`${op}: argument ${position} must be an Array or a number; got ${describe(x)}`);
  }
}

export function checkArray(op: string, x: unknown, position = 1): asserts x is Array {
  if (!isArray(x)) throw new TypeError(`${op}: argument ${position} must be an Array; got ${describe(x)}`);
  x.checkAlive(op);
}

/** The dtype the operands promote to (JS scalars are weak). */
export function resultType(xs: ArrayLike[]): DType {
  const arrays = xs.filter(isArray);
  if (arrays.length === 0) return xs.map((x) => scalarDType(x as Scalar)).reduce(promoteTypes);
  let t = arrays.map((a) => a.dtype).reduce(promoteTypes);
  for (const x of xs) if (!isArray(x)) t = promoteWithScalar(t, x);
  return t;
}

/** An operand as an Array of the given dtype (scalars become 0-d fills). */
export function asArray(x: ArrayLike, dtype: DType): Array {
  if (isArray(x)) return lax.cast(x, dtype);
  return lax.full([], typeof x === "bigint" ? x : Number(x), dtype);
}

/** The shape operands of these shapes broadcast to (NumPy rules). */
export function broadcastShapes(op: string, shapes: number[][]): number[] {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out: number[] = new globalThis.Array(nd).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = nd - s.length + i;
      if (s[i] === out[j] || s[i] === 1) continue;
      if (out[j] === 1) out[j] = s[i];
      else throw new ShapeError(`${op}: shapes ${shapes.map(fmtShape).join(" and ")} cannot be broadcast together`);
    }
  }
  return out;
}

/** Operands promoted to one dtype and broadcast to one shape: what primitives require. */
export function prepare(op: string, xs: ArrayLike[], dtype?: DType): Array[] {
  xs.forEach((x, i) => checkOperand(op, x, i + 1));
  const t = dtype ?? resultType(xs);
  const arrays = xs.map((x) => asArray(x, t));
  const shape = broadcastShapes(op, arrays.map((a) => a.shape));
  return arrays.map((a) => lax.broadcastTo(a, shape));
}

/** Normalizes one axis (negative counts from the end) or throws a RangeError naming the op. */
export function normalizeAxis(op: string, axis: unknown, ndim: number, shape?: number[]): number {
  if (typeof axis !== "number" || !Number.isInteger(axis)) {
    throw new TypeError(`${op}: axis must be an integer; got ${fmtValue(axis)}`);
  }
  if (axis < -ndim || axis >= ndim) {
    const s = shape ? ` for shape ${fmtShape(shape)}` : "";
    throw new RangeError(`${op}: axis ${axis} is out of range${s} (ndim ${ndim})`);
  }
  return axis < 0 ? axis + ndim : axis;
}

/** Normalizes an axis of an op's result (expandDims, stack), whose rank exceeds the input's. */
export function normalizeResultAxis(op: string, axis: unknown, ndim: number, inputShape: number[]): number {
  if (typeof axis === "number" && Number.isInteger(axis) && (axis < -ndim || axis >= ndim)) {
    throw new RangeError(`${op}: axis ${axis} is out of range for a result of ndim ${ndim} (input shape ${fmtShape(inputShape)})`);
  }
  return normalizeAxis(op, axis, ndim);
}

/** Axes as a sorted list of distinct non-negative axes; undefined/null means all. */
export function normalizeAxes(op: string, axis: number | number[] | null | undefined, shape: number[]): number[] {
  const nd = shape.length;
  if (axis === undefined || axis === null) return [...globalThis.Array(nd).keys()];
  const list = typeof axis === "number" ? [axis] : axis;
  if (!globalThis.Array.isArray(list)) throw new TypeError(`${op}: axis must be a number or a list of numbers; got ${typeof axis}`);
  const out = list.map((a) => normalizeAxis(op, a, nd, shape));
  if (new Set(out).size !== out.length) throw new RangeError(`${op}: repeated axis in [${list.join(",")}] for shape ${fmtShape(shape)}`);
  return out.sort((a, b) => a - b);
}

export function checkShape(op: string, shape: unknown): number[] {
  const s = typeof shape === "number" ? [shape] : shape;
  if (!globalThis.Array.isArray(s) || !s.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 0)) {
    throw new TypeError(`${op}: shape must be a list of non-negative integers; got ${JSON.stringify(shape)}`);
  }
  return [...s];
}

export function checkDType(op: string, dtype: unknown): DType {
  const ok = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
    "float16", "bfloat16", "float32", "float64"];
  if (typeof dtype !== "string" || !ok.includes(dtype)) {
    throw new DTypeError(`${op}: unknown dtype ${JSON.stringify(dtype)}; expected one of ${ok.join(", ")}`);
  }
  return dtype as DType;
}
