/** @file Argument checking shared by the user-facing ops: operands, axes, shapes, dtypes. */
import { Array, isArray, type ArrayLike, type Scalar } from "../array.js";
import { DTYPE_CODES, promoteTypes, promoteWithScalar, scalarDType, type DType } from "../dtype.js";
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { onDevice, opName, type Device, type DeviceOptions } from "../device.js";
import { weakScalarValue } from "../convert.js";
import { sameShape } from "../shape.js";

/** The options of a call that passes none: one shared empty object (callers only read options). */
const NO_OPTIONS = Object.freeze({});

/**
 * Checks an op's options argument: undefined, null or a plain object whose keys are `device` and
 * the op's own `keys`, with a device (if any) that is a Device. Returns it as an object.
 */
export function checkOptions<T extends object>(op: string, options: T | null | undefined, keys: readonly string[] = []): Partial<T> {
  if (options === undefined || options === null) return NO_OPTIONS;
  if (typeof options !== "object" || globalThis.Array.isArray(options) || isArray(options)) {
    throw new TypeError(`${op}: options must be an object${keys.length ? ` ({ ${[...keys, "device"].join(", ")} })` : " ({ device })"}; got ${fmtGot(options)}`);
  }
  for (const k of Object.keys(options)) {
    if (k !== "device" && !keys.includes(k)) {
      throw new TypeError(`${op}: the options are ${[...keys, "device"].map((n) => JSON.stringify(n)).join(", ")}; got an unknown option ${JSON.stringify(k)}`);
    }
  }
  const device = (options as DeviceOptions).device;
  if (device !== undefined) checkDevice(op, device);
  return options;
}

/** Checks that d is a Device object (mx.cpu, mx.gpu); whether it is available is the device layer's check. */
export function checkDevice(op: string, d: unknown): asserts d is Device {
  const ok = typeof d === "object" && d !== null && ((d as Device).type === "cpu" || (d as Device).type === "gpu") &&
    Number.isInteger((d as Device).index) && (d as Device).index >= 0;
  if (!ok) throw new TypeError(`${op}: device must be a Device (mx.cpu or mx.gpu); got ${fmtGot(d)}`);
}

/**
 * Runs an op's body with the nodes it records placed on `options.device` (absent: unchanged, so
 * the ops it calls inherit the scope); throws, naming `op`, if that device is not available.
 * `options` is checked first (see checkOptions; `keys` are the op's options besides `device`).
 */
export function withDevice<T>(op: string, options: DeviceOptions | null | undefined, fn: () => T, keys: readonly string[] = []): T {
  const o = checkOptions(op, options, keys);
  return onDevice(op, o.device, fn);
}

/** Checks an optional boolean option. */
export function checkBoolOption(op: string, name: string, v: unknown): boolean | undefined {
  if (v === undefined || typeof v === "boolean") return v;
  throw new TypeError(`${op}: ${name} must be a boolean; got ${fmtGot(v)}`);
}

/** Checks an integer argument (a JS number), at least `min` when given. */
export function checkInteger(op: string, name: string, v: unknown, min?: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(`${op}: ${name} must be an integer; got ${typeof v === "number" ? v : fmtGot(v)}`);
  }
  if (min !== undefined && v < min) {
    throw new RangeError(`${op}: ${name} must be ${min === 0 ? "non-negative" : `at least ${min}`}; got ${v}`);
  }
  return v;
}

/** Checks a finite number argument. */
export function checkFinite(op: string, name: string, v: unknown): number {
  if (typeof v !== "number") throw new TypeError(`${op}: ${name} must be a number; got ${fmtGot(v)}`);
  if (!Number.isFinite(v)) throw new RangeError(`${op}: ${name} must be finite; got ${v}`);
  return v;
}

export function isScalar(x: unknown): x is Scalar {
  return typeof x === "number" || typeof x === "boolean" || typeof x === "bigint";
}

/**
 * A bad argument as error messages print it: strings and lists quoted, so "0" and [0] differ from
 * 0; BigInts as `2n`; arrays by shape and dtype; never throws (symbols, cycles, getters).
 */
export function fmtValue(x: unknown): string {
  try {
    if (typeof x === "bigint") return `${x}n`;
    if (typeof x === "symbol") return x.toString();
    if (typeof x === "function") return "a function";
    if (isArray(x)) return `an array of shape ${fmtShape(x.shape)} ${x.dtype}`;
    if (typeof x === "string") return x.length > 60 ? `${JSON.stringify(x.slice(0, 57))}...` : JSON.stringify(x);
    if (typeof x === "object" && x !== null) {
      const seen = new Set<unknown>();
      const text = JSON.stringify(x, (_k, v: unknown) => {
        if (typeof v === "bigint") return `${v}n`;
        if (typeof v === "number" && !Number.isFinite(v)) return String(v);
        if (typeof v === "symbol") return v.toString();
        if (typeof v === "function") return "a function";
        if (v === undefined) return "undefined";
        if (isArray(v)) return `array ${fmtShape(v.shape)} ${v.dtype}`;
        if (typeof v === "object" && v !== null) {
          if (seen.has(v)) return "(cycle)";
          seen.add(v);
        }
        return v;
      });
      const out = (text ?? String(x)).replace(/"(-?\d+n|NaN|-?Infinity|undefined|a function|Symbol\(.*?\)|array \[[\d,]*\] \w+)"/g, "$1");
      return out.length > 120 ? `${out.slice(0, 117)}...` : out;
    }
    return String(x);
  } catch {
    return typeof x;
  }
}

/**
 * What a wrong-kind argument is, for "must be a number; got ..." messages: its kind and its value,
 * as `a string ("a")`, `a BigInt (2n)`, `an object ({})`, `null`.
 */
export function fmtGot(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (isArray(x)) return fmtValue(x);
  if (globalThis.Array.isArray(x)) return `a JS array (${fmtValue(x)})`;
  switch (typeof x) {
    case "string": return `a string (${fmtValue(x)})`;
    case "bigint": return `a BigInt (${fmtValue(x)})`;
    case "number": return `a number (${fmtValue(x)})`;
    case "boolean": return `a boolean (${x})`;
    case "symbol": return `a symbol (${fmtValue(x)})`;
    case "function": return "a function";
    default: return `an object (${fmtValue(x)})`;
  }
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
  // Arrays first (JS scalars are weak: they promote only the arrays' type), without temporaries.
  let t: DType | undefined;
  for (const x of xs) if (isArray(x)) t = t === undefined || t === x.dtype ? x.dtype : promoteTypes(t, x.dtype);
  if (t === undefined) {
    return xs.map((x) => scalarDType(x as Scalar)).reduce(promoteTypes);
  }
  for (const x of xs) if (!isArray(x)) t = promoteWithScalar(t, x);
  return t;
}

/**
 * An operand as an Array of the given dtype (scalars become 0-d fills). A JS number or BigInt must
 * fit an integer dtype exactly (a RangeError naming the user's op otherwise); with a float dtype
 * it is rounded once.
 */
export function asArray(x: ArrayLike, dtype: DType, op = "asArray"): Array {
  if (isArray(x)) return lax.cast(x, dtype);
  return lax.full([], weakScalarValue(opName(op), x, dtype), dtype);
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

/**
 * Results up to this many elements get their JS-scalar operands as fills of the result's shape:
 * one node instead of a 0-d fill and its broadcast (an eager `x + 1.5` over a few floats ran
 * 0.45 us faster so). Larger ones keep the broadcast 0-d fill, which an op that is not fused reads
 * in place instead of from a materialized constant as large as its result.
 */
const SMALL_FILL = 8192;

/** Operands promoted to one dtype and broadcast to one shape: what primitives require. */
export function prepare(op: string, xs: ArrayLike[], dtype?: DType): Array[] {
  for (let i = 0; i < xs.length; i++) checkOperand(op, xs[i], i + 1);
  const t = dtype ?? resultType(xs);
  // With a JS scalar among the operands: the Arrays' shape when they all have one, small enough
  // for scalars to fill it (Arrays alone, the common case, skip the shape comparisons).
  let scalar = false;
  for (let i = 0; i < xs.length && !scalar; i++) scalar = !isArray(xs[i]);
  let first: Array | null = null, shared = scalar;
  for (let i = 0; i < xs.length && shared; i++) {
    const x = xs[i];
    if (!isArray(x)) continue;
    if (first === null) first = x;
    else shared = sameShape(x.shape, first.shape);
  }
  const fillShape = first !== null && shared && first.ndim > 0 && first.size <= SMALL_FILL ? first.shape : null;
  const arrays: Array[] = new globalThis.Array(xs.length); // sized: a push onto [] allocates room for 17
  let oneShape = true;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    arrays[i] = fillShape !== null && !isArray(x) ? lax.full(fillShape, weakScalarValue(opName(op), x, t), t) : asArray(x, t, op);
    if (i > 0 && !sameShape(arrays[i].shape, arrays[0].shape)) oneShape = false;
  }
  // Operands of one shape (the common case) need no broadcast.
  if (arrays.length > 0 && oneShape) return arrays;
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
  if (!globalThis.Array.isArray(list)) throw new TypeError(`${op}: axis must be an integer or a list of integers; got ${fmtValue(axis)}`);
  const out = list.map((a) => normalizeAxis(op, a, nd, shape));
  if (new Set(out).size !== out.length) throw new RangeError(`${op}: repeated axis in [${list.join(",")}] for shape ${fmtShape(shape)}`);
  return out.sort((a, b) => a - b);
}

/**
 * A shape: a list of non-negative integers (JS numbers), or one number for 1-D. BigInts,
 * fractions, negatives and non-lists are TypeErrors naming the op.
 */
export function checkShape(op: string, shape: unknown): number[] {
  const s = typeof shape === "number" ? [shape] : shape;
  if (!globalThis.Array.isArray(s) || !s.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 0)) {
    const hint = globalThis.Array.isArray(s) && s.some((d) => typeof d === "bigint") ? " (sizes are JS numbers, not BigInts)" : "";
    throw new TypeError(`${op}: shape must be a list of non-negative integers${hint}; got ${fmtValue(shape)}`);
  }
  return [...s];
}

/** A dtype name, or a DTypeError (a TypeError) naming the op. */
export function checkDType(op: string, dtype: unknown): DType {
  if (typeof dtype !== "string" || !(DTYPE_CODES as readonly string[]).includes(dtype)) {
    throw new DTypeError(`${op}: dtype must be one of ${DTYPE_CODES.join(", ")}; got ${fmtValue(dtype)}`);
  }
  return dtype as DType;
}
