/**
 * @file The one conversion rule for JS values entering arrays (see docs/api.md, "Conversions"):
 * numbers saturate into integer dtypes (NaN gives 0, truncation toward zero, out-of-range values
 * and infinities give the dtype's min/max), as the native `astype` does; BigInts are exact or a
 * RangeError; a weak scalar (a JS number or BigInt operand of an op) must fit the integer dtype it
 * is used in.
 */
import { floatToBfloat16Bits, floatToHalfBits, isFloating, isInteger, type DType } from "./dtype.js";

/** The range of each integer dtype, as BigInts. */
const INT_RANGE: Partial<Record<DType, readonly [bigint, bigint]>> = {
  uint8: [0n, 255n], uint16: [0n, 65535n], uint32: [0n, 4294967295n], uint64: [0n, 2n ** 64n - 1n],
  int8: [-128n, 127n], int16: [-32768n, 32767n], int32: [-2147483648n, 2147483647n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** The BigInts any array can hold: the union of int64 and uint64. */
const BIGINT_MIN = -(2n ** 63n);
const BIGINT_MAX = 2n ** 64n - 1n;

/** The [min, max] of an integer dtype as BigInts. */
export function intRange(d: DType): readonly [bigint, bigint] {
  const r = INT_RANGE[d];
  if (!r) throw new TypeError(`intRange: ${d} is not an integer dtype`);
  return r;
}

/** `2n` as error messages print a BigInt. */
export const fmtBigInt = (v: bigint): string => `${v}n`;

/** Whether the JS number or BigInt v is exactly a value of integer dtype d. */
export function fitsInteger(v: number | bigint, d: DType): boolean {
  const [lo, hi] = intRange(d);
  if (typeof v === "bigint") return v >= lo && v <= hi;
  if (!Number.isInteger(v)) return false;
  // hi + 1 is a power of two, exact as a double (hi itself is not, for the 64-bit types)
  return v >= Number(lo) && v < Number(hi + 1n);
}

/**
 * Checks a BigInt entering an array of dtype d (creation and fills): an integer dtype must hold it
 * exactly; any other dtype takes the BigInts of int64 and uint64. A RangeError naming op otherwise.
 */
export function checkBigInt(op: string, v: bigint, d: DType): void {
  if (isInteger(d)) {
    if (fitsInteger(v, d)) return;
    const [lo, hi] = intRange(d);
    throw new RangeError(`${op}: a BigInt must fit the dtype ${d} (${lo} to ${hi}); got ${fmtBigInt(v)}`);
  }
  if (v < BIGINT_MIN || v > BIGINT_MAX) {
    throw new RangeError(`${op}: a BigInt must fit int64 or uint64 (-2^63 to 2^64 - 1); got ${fmtBigInt(v)}`);
  }
}

/** The dtype JS BigInts get on their own: int64, or uint64 when one exceeds int64 (all non-negative). */
export function bigintDType(op: string, values: Iterable<bigint>): DType {
  let big = false;
  let negative = false;
  for (const v of values) {
    checkBigInt(op, v, "float64"); // the range of int64 and uint64 together
    if (v > 2n ** 63n - 1n) big = true;
    if (v < 0n) negative = true;
  }
  if (big && negative) {
    throw new RangeError(`${op}: BigInts above 2^63 - 1 and negative BigInts do not fit one integer dtype (int64 or uint64); pass a dtype`);
  }
  return big ? "uint64" : "int64";
}

/** A number saturated into a 32-bit-or-narrower integer dtype: NaN gives 0, truncation toward zero, clamping. */
function saturateSmall(v: number, lo: number, hi: number): number {
  if (Number.isNaN(v)) return 0;
  const t = Math.trunc(v);
  return t < lo ? lo : t > hi ? hi : t + 0; // + 0 turns -0 into 0
}

/** A number saturated into int64/uint64, as an exact BigInt. */
function saturateWide(v: number, d: DType): bigint {
  const [lo, hi] = intRange(d);
  if (Number.isNaN(v)) return 0n;
  if (v >= Number(hi + 1n)) return hi;
  if (v <= Number(lo) - 1) return lo;
  return BigInt(Math.trunc(v));
}

/**
 * The double a BigInt rounds to when it is then rounded again to a narrower float (float32,
 * float16, bfloat16): rounded to odd, so the second rounding is correct (a plain Number(v) would
 * round twice). float64 takes Number(v), which rounds once.
 */
const f64 = new Float64Array(1);
const f64bits = new BigUint64Array(f64.buffer);
export function bigintToDouble(v: bigint, d: DType): number {
  const n = Number(v);
  if (d === "float64" || !Number.isFinite(n)) return n;
  const back = BigInt(n);
  if (back === v) return n;
  // Inexact, so |v| > 2^53 and n is a normal double: take the neighbour toward zero, then make
  // its last bit odd (round to odd).
  f64[0] = n;
  if (back < 0n ? back < v : back > v) f64bits[0] -= 1n; // |n| > |v|: one step toward zero
  f64bits[0] |= 1n;
  return f64[0];
}

/** A JS scalar converted to the value a fill of dtype d carries (saturated, exact or rounded once). */
export function fillValue(op: string, v: number | boolean | bigint, d: DType): number | bigint {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "bigint") {
    checkBigInt(op, v, d);
    if (d === "bool") return v !== 0n ? 1 : 0;
    if (d === "int64" || d === "uint64") return v;
    return isFloating(d) ? bigintToDouble(v, d) : Number(v);
  }
  if (d === "bool") return v !== 0 ? 1 : 0; // NaN is true, as astype
  if (d === "int64" || d === "uint64") return saturateWide(v, d);
  if (isInteger(d)) {
    const [lo, hi] = intRange(d);
    return saturateSmall(v, Number(lo), Number(hi));
  }
  return v;
}

type Convert = (v: number | boolean | bigint) => number | bigint;

/**
 * The function that turns one JS value into what the TypedArray storing dtype d holds: the
 * saturated integer, the exact BigInt, the 0/1 of a bool, or the 16-bit pattern of a half type.
 */
export function elementConverter(op: string, d: DType): Convert {
  if (d === "float16" || d === "bfloat16") {
    const bits = d === "float16" ? floatToHalfBits : floatToBfloat16Bits;
    return (v) => bits(Number(fillValue(op, v, d)));
  }
  if (d === "float32" || d === "float64") {
    return (v) => (typeof v === "number" ? v : fillValue(op, v, d));
  }
  if (d === "int64" || d === "uint64") {
    return (v) => fillValue(op, v, d);
  }
  if (d === "bool") return (v) => (typeof v === "boolean" ? (v ? 1 : 0) : fillValue(op, v, d));
  const [lo, hi] = intRange(d).map(Number);
  return (v) => (typeof v === "number" ? saturateSmall(v, lo, hi) : fillValue(op, v, d));
}

/**
 * Checks a weak scalar (a JS number or BigInt operand) against the dtype `d` it is used in: it must
 * be exactly a value of an integer dtype; floats, bool and booleans take anything. A RangeError
 * naming op otherwise.
 */
export function checkWeakScalar(op: string, v: number | boolean | bigint, d: DType): void {
  if (typeof v === "boolean" || !isInteger(d) || fitsInteger(v, d)) return;
  const [lo, hi] = intRange(d);
  const got = typeof v === "bigint" ? fmtBigInt(v) : String(v);
  throw new RangeError(
    `${op}: a scalar operand must fit the dtype ${d} it is used in (integers ${lo} to ${hi}); got ${got} (convert the array first, e.g. x.astype("float32") or a wider integer dtype)`,
  );
}

/**
 * A weak scalar as the value of a fill of dtype d: checked by checkWeakScalar, then converted
 * (with a float dtype any number or BigInt is accepted and rounded once).
 */
export function weakScalarValue(op: string, v: number | boolean | bigint, d: DType): number | bigint {
  checkWeakScalar(op, v, d);
  if (typeof v === "bigint" && isFloating(d)) return bigintToDouble(v, d);
  if (typeof v === "bigint" && d === "bool") return v !== 0n ? 1 : 0;
  return fillValue(op, v, d);
}
