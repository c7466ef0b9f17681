/**
 * @file Plain-JS values for the graph fuzz test (test/fuzz/graphs.test.ts): the dtype rules it
 * expects (promotion, weak JS scalars, conversions) written out independently of
 * @tessera/core, host arrays of canonical values (numbers for floats, BigInts for integers,
 * booleans for bool), and the comparison of a tessera result with a reference. Nothing here
 * computes with tessera.
 */
import * as mx from "@tessera/core";
import { hostFrom, readFlat, type Host } from "../helpers/host.js";
import { roundTo } from "../helpers/special.js";
import { sizeOf } from "../helpers/reference.js";

export type DType = mx.DType;
/** A canonical element: a number (float dtypes), a BigInt (integer dtypes) or a boolean (bool). */
export type V = number | bigint | boolean;
export type H = Host<V>;
export type Scalar = number | boolean | bigint;
export type Kind = "float" | "int" | "bool";

export const ALL_DTYPES: DType[] = [
  "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
];
const FLOAT_SET = new Set<DType>(["float16", "bfloat16", "float32", "float64"]);
export const isFloat = (d: DType) => FLOAT_SET.has(d);
export const isUint = (d: DType) => d.startsWith("uint");
export const kindOf = (d: DType): Kind => (d === "bool" ? "bool" : isFloat(d) ? "float" : "int");

const SIZE: Record<DType, number> = {
  bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, float16: 2, bfloat16: 2,
  uint32: 4, int32: 4, float32: 4, uint64: 8, int64: 8, float64: 8,
};
export const bits = (d: DType) => SIZE[d] * 8;

/** The exact range of an integer dtype. */
export function intLimits(d: DType): [bigint, bigint] {
  const b = BigInt(bits(d));
  return isUint(d) ? [0n, 2n ** b - 1n] : [-(2n ** (b - 1n)), 2n ** (b - 1n) - 1n];
}

/** Two's-complement wrap to an integer dtype. */
export const wrapInt = (v: bigint, d: DType) => (isUint(d) ? BigInt.asUintN(bits(d), v) : BigInt.asIntN(bits(d), v));

/** The promotion lattice documented for mx.promoteTypes (MLX's table). */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === "bool") return b;
  if (b === "bool") return a;
  const fa = isFloat(a), fb = isFloat(b);
  if (fa && fb) return a === "float64" || b === "float64" ? "float64" : "float32";
  if (fa) return a;
  if (fb) return b;
  if (isUint(a) === isUint(b)) return SIZE[a] >= SIZE[b] ? a : b;
  const [u, s] = isUint(a) ? [a, b] : [b, a];
  if (SIZE[s] > SIZE[u]) return s;
  if (u === "uint64") return "float32";
  return ({ 1: "int16", 2: "int32", 4: "int64" } as Record<number, DType>)[SIZE[u]];
}

/** The dtype a JS scalar has on its own. */
export const scalarType = (v: Scalar): DType => (typeof v === "boolean" ? "bool" : typeof v === "bigint" ? "int64" : "float32");

/** JS scalars are weak: the array's dtype wins unless the scalar does not fit its kind. */
export function promoteScalar(t: DType, v: Scalar): DType {
  if (typeof v === "boolean") return t;
  if (isFloat(t)) return t;
  if (typeof v === "bigint") return t === "bool" ? "int64" : t;
  if (Number.isInteger(v)) return t === "bool" ? "int32" : t;
  return "float32";
}

/** The dtype an elementwise op's operands are brought to (arrays promote, scalars are weak). */
export function resultType(operands: (DType | Scalar)[]): DType {
  const isD = (x: DType | Scalar): x is DType => typeof x === "string";
  const arrays = operands.filter(isD);
  if (arrays.length === 0) return operands.map((s) => scalarType(s as Scalar)).reduce(promote);
  let t = arrays.reduce(promote);
  for (const x of operands) if (!isD(x)) t = promoteScalar(t, x);
  return t;
}

export const toFloat = (d: DType): DType => (isFloat(d) ? d : "float32");

/** Whether a weak scalar may be used with dtype t: an integer dtype takes only integers it holds. */
export function scalarFits(s: Scalar, t: DType): boolean {
  if (typeof s === "boolean" || kindOf(t) !== "int") return true;
  if (typeof s === "number" && !Number.isInteger(s)) return false;
  const [lo, hi] = intLimits(t);
  const v = BigInt(s);
  return v >= lo && v <= hi;
}

/** A BigInt as the nearest double with `mant` significant bits (ties to even), for float32 casts beyond 2^53. */
function roundBig(v: bigint, mant: number): number {
  const neg = v < 0n;
  const a = neg ? -v : v;
  const len = a.toString(2).length;
  if (len <= 53) return roundTo(mant === 24 ? "float32" : "float64", Number(v));
  const shift = BigInt(len - mant);
  let q = a >> shift;
  const rem = a - (q << shift), half = 1n << (shift - 1n);
  if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
  const r = Number(q) * 2 ** Number(shift);
  return neg ? -r : r;
}

/**
 * The conversion the addon documents: float to integer truncates and saturates (NaN is 0),
 * integers wrap, anything to bool is `!= 0` (NaN is true), integers to float16/bfloat16 go
 * through a double, to float32 and float64 in one rounding.
 */
export function castV(v: V, to: DType): V {
  const k = kindOf(to);
  if (typeof v === "boolean") return k === "bool" ? v : k === "int" ? (v ? 1n : 0n) : v ? 1 : 0;
  if (typeof v === "bigint") {
    if (k === "bool") return v !== 0n;
    if (k === "int") return wrapInt(v, to);
    if (to === "float64") return Number(v);
    if (to === "float32") return roundBig(v, 24);
    return roundTo(to, Number(v));
  }
  if (k === "bool") return v !== 0;
  if (k === "int") {
    if (Number.isNaN(v)) return 0n;
    const [lo, hi] = intLimits(to);
    if (!Number.isFinite(v)) return v > 0 ? hi : lo;
    const t = BigInt(Math.trunc(v));
    return t < lo ? lo : t > hi ? hi : t;
  }
  return roundTo(to, v);
}

/** A JS scalar converted to dtype t the way ops make it an array (a fill of t). */
export function castScalar(s: Scalar, t: DType): V {
  if (typeof s === "bigint" && kindOf(t) === "int") {
    const [lo, hi] = intLimits(t);
    return s < lo ? lo : s > hi ? hi : s; // 64-bit fills saturate (program.ts fillWord)
  }
  return castV(s, t);
}

export function castH(h: H, from: DType, to: DType): H {
  if (from === to) return h;
  return { shape: h.shape, data: h.data.map((v) => castV(v, to)) };
}

/** A tessera array's values as canonical values. */
export function readValues(x: mx.Array): V[] {
  const flat = readFlat(x);
  switch (kindOf(x.dtype)) {
    case "float": return flat.map((v) => Number(v));
    case "int": return flat.map((v) => BigInt(v as number | bigint));
    case "bool": return flat.map((v) => Boolean(v));
  }
}

/** Formats values for messages (BigInts with an n, -0 kept). */
export function fmtV(v: V | undefined): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number" && Object.is(v, -0)) return "-0";
  return String(v);
}

/** Nested-list text of a host array (shortened past `max` elements). */
export function fmtHost(h: H, max = 24): string {
  const n = h.data.length;
  if (n > max) return `[${h.data.slice(0, max).map(fmtV).join(", ")}, ... (${n} values)]`;
  if (h.shape.length === 0) return fmtV(h.data[0]);
  const rec = (d: number, off: number): string => {
    if (d === h.shape.length) return fmtV(h.data[off]);
    const inner = sizeOf(h.shape.slice(d + 1));
    return `[${Array.from({ length: h.shape[d] }, (_, i) => rec(d + 1, off + i * inner)).join(", ")}]`;
  };
  return rec(0, 0);
}

export const hostOf = (shape: number[], data: V[]): H => ({ shape: [...shape], data });
export const scalarHost = (v: V): H => hostFrom([], () => v);

/** The unit roundoff of a float dtype and its smallest subnormal. */
export const EPS: Partial<Record<DType, number>> = { float16: 2 ** -11, bfloat16: 2 ** -8, float32: 2 ** -24, float64: 2 ** -53 };
export const TINY: Partial<Record<DType, number>> = { float16: 2 ** -24, bfloat16: 2 ** -133, float32: 2 ** -149, float64: 2 ** -1074 };
export const MAX_FINITE: Partial<Record<DType, number>> = {
  float16: 65504, bfloat16: 3.3895313892515355e38, float32: 3.4028234663852886e38, float64: Number.MAX_VALUE,
};

/**
 * What a node's value must be: exact for integers and bools; for floats within
 * atol[i] + rtol * |value[i]| + the dtype's smallest subnormal, NaN where the reference is NaN,
 * the same infinity where it is infinite, and an infinity accepted where the exact result is
 * within rtol of the dtype's largest finite value (overflow at the boundary).
 */
export interface Expect {
  value: H;
  rtol?: number;
  atol?: number | number[];
  /** Brings tessera's values to the reference's form first (e.g. sorts what has no promised order). */
  normalize?: (got: V[]) => V[];
}

/** Ascending order with NaN last (sort's order); 0 when equal. */
export function compareV(a: V, b: V): number {
  if (typeof a === "number" && typeof b === "number") {
    if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
    if (Number.isNaN(b)) return -1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The first few mismatches between got and the expectation (empty when they match). */
export function mismatches(got: V[], e: Expect, dtype: DType, max = 5): string[] {
  const bad: string[] = [];
  const k = kindOf(dtype);
  const rtol = e.rtol ?? 0;
  const tiny = TINY[dtype] ?? 0;
  const big = MAX_FINITE[dtype] ?? Infinity;
  if (got.length !== e.value.data.length) return [`expected ${e.value.data.length} values, got ${got.length}`];
  for (let i = 0; i < got.length && bad.length < max; i++) {
    const g = got[i], x = e.value.data[i];
    let ok: boolean;
    if (k === "bool") ok = g === x;
    else if (k === "int") ok = g === x;
    else {
      const a = g as number, y = x as number;
      const given = typeof e.atol === "number" ? e.atol : e.atol ? e.atol[i] : 0;
      const atol = Number.isNaN(given) ? 0 : given; // (a NaN bound from NaN inputs: no slack)
      if (Number.isNaN(y)) ok = Number.isNaN(a);
      else if (!Number.isFinite(y)) ok = a === y;
      else if (!Number.isFinite(a)) ok = !Number.isNaN(a) && Math.sign(a) === Math.sign(y) && Math.abs(y) * (1 + rtol) + atol >= big;
      else ok = Math.abs(a - y) <= atol + rtol * Math.abs(y) + tiny;
    }
    if (!ok) {
      const tol = k === "float" ? ` (rtol ${rtol}, atol ${fmtV(typeof e.atol === "number" ? e.atol : e.atol?.[i] ?? 0)})` : "";
      bad.push(`[${i}] expected ${fmtV(x)}, got ${fmtV(g)}${tol}`);
    }
  }
  return bad;
}
