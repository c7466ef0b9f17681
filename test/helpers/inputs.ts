/**
 * @file Random inputs for table-driven op tests, in every dtype kind: floats (rounded to the
 * dtype, with optional grid ties and special values), exact integers (BigInt, over the dtype's
 * range) and bools; their tessera twins; and exact comparison of results with references.
 */
import * as mx from "@tessera/core";
import { expect } from "vitest";
import { hostFrom, readFlat, type Host } from "./host.js";
import { roundTo } from "./special.js";

/** [lo, hi], or { abs: [lo, hi] } for values of either sign with magnitude in [lo, hi]. */
export type Domain = [number, number] | { abs: [number, number] };
/**
 * Integer inputs: an inclusive [lo, hi] (clipped to the dtype's range), "full" (the dtype's whole
 * range, capped at +-2^40 for 64-bit types), "sym" (full but symmetric: no minimum of a signed
 * type) or "shift" (0 .. bits-1).
 */
export type IntDomain = [number, number] | "full" | "sym" | "shift";

/** Draws one value from a domain (continuous). */
export function sample(d: Domain, next: () => number): number {
  const [lo, hi] = Array.isArray(d) ? d : d.abs;
  if (!(typeof lo === "number" && typeof hi === "number" && lo <= hi)) throw new TypeError(`bad domain ${JSON.stringify(d)}`);
  const m = lo + (hi - lo) * next();
  return Array.isArray(d) || next() >= 0.5 ? m : -m;
}

export type Kind = "float" | "int" | "bool";
export const kindOf = (d: mx.DType): Kind => (d === "bool" ? "bool" : mx.isFloating(d) ? "float" : "int");

const BITS: Partial<Record<mx.DType, number>> = {
  int8: 8, int16: 16, int32: 32, int64: 64, uint8: 8, uint16: 16, uint32: 32, uint64: 64,
};
export const bitsOf = (d: mx.DType) => BITS[d]!;
export const isUnsigned = (d: mx.DType) => d.startsWith("uint");

/** The dtype's range (64-bit types capped at +-2^40 so values stay exact as JS numbers). */
export function intRange(d: mx.DType): [bigint, bigint] {
  const bits = bitsOf(d);
  const cap = 2n ** 40n;
  let lo = isUnsigned(d) ? 0n : -(2n ** BigInt(bits - 1));
  let hi = isUnsigned(d) ? 2n ** BigInt(bits) - 1n : 2n ** BigInt(bits - 1) - 1n;
  if (bits === 64) [lo, hi] = [lo < -cap ? -cap : lo, hi > cap ? cap : hi];
  return [lo, hi];
}

/** Two's-complement wrap of an exact integer to the dtype (what C++ integer arithmetic stores). */
export function wrap(v: bigint, d: mx.DType): bigint {
  return isUnsigned(d) ? BigInt.asUintN(bitsOf(d), v) : BigInt.asIntN(bitsOf(d), v);
}

export function sampleInt(dom: IntDomain, d: mx.DType, next: () => number): bigint {
  const [min, max] = intRange(d);
  let lo: bigint, hi: bigint;
  if (dom === "shift") [lo, hi] = [0n, BigInt(bitsOf(d) - 1)];
  else if (dom === "full" || dom === "sym") {
    [lo, hi] = [dom === "sym" && !isUnsigned(d) ? -max : min, max];
    if (next() < 0.2) { // the edges, where wrapping shows
      const edges = [lo, hi, 0n, 1n, -1n, lo + 1n, hi - 1n].filter((v) => v >= lo && v <= hi);
      return edges[Math.floor(next() * edges.length)];
    }
  } else {
    lo = BigInt(dom[0]) < min ? min : BigInt(dom[0]);
    hi = BigInt(dom[1]) > max ? max : BigInt(dom[1]);
  }
  return lo + BigInt(Math.floor(next() * Number(hi - lo + 1n)));
}

export interface FloatSampling {
  domain: Domain;
  grid?: number;
  specials?: number[];
}

export function sampleFloat(s: FloatSampling, d: mx.DType, next: () => number): number {
  if (s.specials && s.specials.length > 0 && next() < 0.125) return s.specials[Math.floor(next() * s.specials.length)];
  let v = sample(s.domain, next);
  if (s.grid && next() < 0.6) v = Math.round(v / s.grid) * s.grid;
  return roundTo(d, v);
}

/** A random host array of the dtype's kind: numbers (floats, rounded to d), BigInts, or 0/1 for bool. */
export function randomHost(shape: number[], d: mx.DType, next: () => number, f: FloatSampling, intDom: IntDomain = "full"): Host<any> {
  switch (kindOf(d)) {
    case "float": return hostFrom(shape, () => sampleFloat(f, d, next));
    case "int": return hostFrom(shape, () => sampleInt(intDom, d, next));
    case "bool": return hostFrom(shape, () => (next() < 0.5 ? 1 : 0));
  }
}

const TYPED: Partial<Record<mx.DType, (v: any[]) => ArrayBufferView>> = {
  int8: (v) => Int8Array.from(v, Number), int16: (v) => Int16Array.from(v, Number), int32: (v) => Int32Array.from(v, Number),
  uint8: (v) => Uint8Array.from(v, Number), uint16: (v) => Uint16Array.from(v, Number), uint32: (v) => Uint32Array.from(v, Number),
  int64: (v) => BigInt64Array.from(v, BigInt), uint64: (v) => BigUint64Array.from(v, BigInt),
};

/** The contiguous tessera array holding a host array's values in dtype d (values must be exact in d). */
export function buildArray(h: Host<any>, d: mx.DType): mx.Array {
  let flat: mx.Array;
  if (kindOf(d) === "float") flat = mx.array(Float64Array.from(h.data, Number), d === "float64" ? undefined : d);
  else if (d === "bool") flat = mx.array(Uint8Array.from(h.data, (v) => (v ? 1 : 0)), "bool");
  else flat = mx.array(TYPED[d]!(h.data) as any);
  expect(flat.dtype).toBe(d);
  return mx.reshape(flat, h.shape);
}

/** The value a view's skipped base elements hold (anything; it must never be read). */
export const fillerFor = (d: mx.DType): any => (kindOf(d) === "int" ? 77n : kindOf(d) === "bool" ? 1 : 1234.5);

export interface Tol {
  rtol?: number;
  atol?: number;
}

/**
 * Asserts `actual` has the expected shape and dtype and matches the host reference: floats within
 * atol + rtol * |expected| (NaN matches NaN, infinities match exactly), integers and bools exactly.
 */
export function expectMatches(actual: mx.Array, expected: Host<any>, dtype: mx.DType, tol: Tol = {}, what = ""): void {
  const where = what ? ` (${what})` : "";
  expect(actual.shape, `shape${where}`).toEqual(expected.shape);
  expect(actual.dtype, `dtype${where}`).toBe(dtype);
  const got = readFlat(actual);
  const bad: string[] = [];
  const { rtol = 0, atol = 0 } = tol;
  for (let i = 0; i < got.length && bad.length < 5; i++) {
    const a = got[i], e = expected.data[i];
    let ok: boolean;
    if (dtype === "bool") ok = a === Boolean(e);
    else if (kindOf(dtype) === "int") ok = BigInt(a as number) === BigInt(e);
    else {
      const x = Number(a), y = Number(e);
      if (Number.isNaN(y)) ok = Number.isNaN(x);
      else if (!Number.isFinite(y)) ok = x === y;
      else ok = Math.abs(x - y) <= atol + rtol * Math.abs(y);
    }
    if (!ok) bad.push(`[${i}] expected ${String(e)}, got ${String(a)}`);
  }
  if (bad.length) expect.fail(`mismatch${where} for shape [${expected.shape}] ${dtype}: ${bad.join("; ")}`);
}
