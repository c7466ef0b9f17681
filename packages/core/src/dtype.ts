/** @file Element types: names, codes shared with the addon, sizes, and MLX's promotion rules. */
import { DTypeError } from "./errors.js";

/**
 * The element type of an array, as a string: `"bool"`, unsigned and signed integers of 8 to 64
 * bits, `"float16"`, `"bfloat16"`, `"float32"` (the default for JS numbers) and `"float64"`. The
 * constants `mx.float32` etc. equal these strings.
 * @example
 * mx.zeros([2], mx.int32).dtype;    // "int32"
 * mx.array([1, 2], "float64").dtype; // "float64"
 */
export type DType =
  | "bool" | "uint8" | "uint16" | "uint32" | "uint64" | "int8" | "int16" | "int32" | "int64"
  | "float16" | "bfloat16" | "float32" | "float64";

/** The `bool` dtype. Booleans, stored in one byte. */
export const bool: DType = "bool";
/** The `uint8` dtype. Unsigned 8-bit integers. */
export const uint8: DType = "uint8";
/** The `uint16` dtype. Unsigned 16-bit integers. */
export const uint16: DType = "uint16";
/** The `uint32` dtype. Unsigned 32-bit integers. */
export const uint32: DType = "uint32";
/** The `uint64` dtype. Unsigned 64-bit integers (read back as BigInt). */
export const uint64: DType = "uint64";
/** The `int8` dtype. Signed 8-bit integers. */
export const int8: DType = "int8";
/** The `int16` dtype. Signed 16-bit integers. */
export const int16: DType = "int16";
/** The `int32` dtype. Signed 32-bit integers. */
export const int32: DType = "int32";
/** The `int64` dtype. Signed 64-bit integers (read back as BigInt). */
export const int64: DType = "int64";
/** The `float16` dtype. IEEE half precision (16 bits). */
export const float16: DType = "float16";
/** The `bfloat16` dtype. Brain floating point: float32's exponent range in 16 bits. */
export const bfloat16: DType = "bfloat16";
/** The `float32` dtype. IEEE single precision: the default dtype of JS numbers. */
export const float32: DType = "float32";
/** The `float64` dtype. IEEE double precision. */
export const float64: DType = "float64";

/** Codes in native/src/dtype.h order. */
export const DTYPE_CODES: readonly DType[] = [
  "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
  "float16", "bfloat16", "float32", "float64",
];
const CODE = new Map(DTYPE_CODES.map((d, i) => [d, i]));

export function dtypeCode(d: DType): number {
  return CODE.get(d)!;
}

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && CODE.has(x as DType);
}

const SIZES: Record<DType, number> = {
  bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, float16: 2, bfloat16: 2,
  uint32: 4, int32: 4, float32: 4, uint64: 8, int64: 8, float64: 8,
};

/** A dtype argument of a public dtype function that is not a dtype: a DTypeError naming it. */
function notADType(op: string, d: unknown): DTypeError {
  const got = typeof d === "string" ? JSON.stringify(d) : typeof d === "bigint" ? `${d}n` : String(d);
  return new DTypeError(`${op}: a dtype must be one of ${DTYPE_CODES.join(", ")}; got ${got}`);
}

/** The size in bytes of one element of dtype d. */
export function itemsize(d: DType): number {
  if (!CODE.has(d)) throw notADType("itemsize", d);
  return SIZES[d];
}

/** Whether d is a floating-point dtype (float16, bfloat16, float32, float64). */
export function isFloating(d: DType): boolean {
  return d === "float16" || d === "bfloat16" || d === "float32" || d === "float64";
}
export function isUnsigned(d: DType): boolean {
  return d === "uint8" || d === "uint16" || d === "uint32" || d === "uint64";
}
export function isSignedInt(d: DType): boolean {
  return d === "int8" || d === "int16" || d === "int32" || d === "int64";
}
/** Whether d is a signed or unsigned integer dtype (bool is not). */
export function isInteger(d: DType): boolean {
  return isUnsigned(d) || isSignedInt(d);
}

const SIGNED_BY_SIZE: Record<number, DType> = { 1: "int8", 2: "int16", 4: "int32", 8: "int64" };

/**
 * The result type of a binary op on arrays of types a and b (MLX's table, JAX-style lattice).
 * @example
 * promoteTypes("int32", "float16") // "float16"
 * promoteTypes("uint8", "int8")    // "int16"
 */
export function promoteTypes(a: DType, b: DType): DType {
  if (!CODE.has(a)) throw notADType("promoteTypes", a);
  if (!CODE.has(b)) throw notADType("promoteTypes", b);
  if (a === b) return a;
  if (a === "bool") return b;
  if (b === "bool") return a;
  const fa = isFloating(a), fb = isFloating(b);
  if (fa && fb) {
    if (a === "float64" || b === "float64") return "float64";
    return "float32"; // float16 with bfloat16, or either with float32
  }
  if (fa) return a;
  if (fb) return b;
  const ua = isUnsigned(a), ub = isUnsigned(b);
  if (ua === ub) return SIZES[a] >= SIZES[b] ? a : b;
  const [u, s] = ua ? [a, b] : [b, a];
  if (SIZES[s] > SIZES[u]) return s;
  if (u === "uint64") return "float32"; // no signed type holds both, as in MLX
  return SIGNED_BY_SIZE[SIZES[u] * 2];
}

/** The dtype a plain JS value gets on its own (numbers are float32, as in MLX). */
export function scalarDType(v: number | boolean | bigint): DType {
  if (typeof v === "boolean") return "bool";
  if (typeof v === "bigint") return "int64";
  return "float32";
}

/**
 * The result type when a JS scalar meets an array: scalars are weak, so the array's type wins
 * unless the scalar cannot be represented in its kind (a non-integer meeting an integer array).
 */
export function promoteWithScalar(arrayType: DType, v: number | boolean | bigint): DType {
  if (typeof v === "boolean") return arrayType;
  if (isFloating(arrayType)) return arrayType;
  if (typeof v === "bigint") return arrayType === "bool" ? "int64" : arrayType;
  if (Number.isInteger(v)) return arrayType === "bool" ? "int32" : arrayType;
  return "float32";
}

/** The float type an op like `sin` computes integer inputs in. */
export function toFloating(d: DType): DType {
  return isFloating(d) ? d : "float32";
}

export type TypedArrayFor =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

/** The TypedArray class that holds a dtype's raw elements (half types as their 16-bit patterns). */
export function typedArrayClass(d: DType) {
  switch (d) {
    case "bool": case "uint8": return Uint8Array;
    case "int8": return Int8Array;
    case "uint16": case "float16": case "bfloat16": return Uint16Array;
    case "int16": return Int16Array;
    case "uint32": return Uint32Array;
    case "int32": return Int32Array;
    case "uint64": return BigUint64Array;
    case "int64": return BigInt64Array;
    case "float32": return Float32Array;
    case "float64": return Float64Array;
  }
}

/** The dtype a TypedArray's contents have when passed to `array()`. */
export function dtypeOfTypedArray(a: ArrayBufferView): DType | undefined {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Int16Array) return "int16";
  if (a instanceof Int8Array) return "int8";
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return "uint8";
  if (a instanceof Uint16Array) return "uint16";
  if (a instanceof Uint32Array) return "uint32";
  if (a instanceof BigInt64Array) return "int64";
  if (a instanceof BigUint64Array) return "uint64";
  return undefined;
}

// ---- half-precision conversion (round to nearest even), for writing and reading float16/bfloat16 ----
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The 16-bit pattern of the nearest value of a float format with `mant` fraction bits (10 for
 * float16, 7 for bfloat16), ties to even. Rounds the double directly: going through float32 first
 * would round twice (1 + 2^-11 + 2^-40 would become the tie 1 + 2^-11, then 1).
 */
function toSixteenBits(v: number, mant: number): number {
  const expBits = 15 - mant, bias = (1 << (expBits - 1)) - 1;
  const inf = ((1 << expBits) - 1) << mant;
  if (Number.isNaN(v)) return inf | (1 << (mant - 1));
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  const roundEven = (x: number) => {
    const f = Math.floor(x), d = x - f;
    return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  };
  // subnormal (exact scaling to an integer mantissa); rounding up to 2^mant yields the smallest normal
  if (a < 2 ** (1 - bias)) return sign | roundEven(a * 2 ** (mant + bias - 1));
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  if (e > bias) return sign | inf;
  // a carry out of the mantissa moves into the exponent (and from the largest finite value to inf)
  return sign | Math.min(((e + bias) << mant) + roundEven(a * 2 ** (mant - e)) - (1 << mant), inf);
}

export function floatToHalfBits(v: number): number {
  return toSixteenBits(v, 10);
}

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f, man = h & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  if (exp === 0) return sign * man * 2 ** -24;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function floatToBfloat16Bits(v: number): number {
  return toSixteenBits(v, 7);
}

export function bfloat16BitsToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}
