/**
 * Elementwise dtype behaviour: type promotion (MLX's table, weak JS scalars), integer edge cases
 * (floor division by negatives and zero, shifts, wrapping), float16/bfloat16 storage and
 * arithmetic, nanToNum's defaults, and a check of the test references themselves.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { rng } from "../helpers/reference.js";
import {
  erf, erfinv, roundRef, roundToBfloat16, roundToFloat16, roundToFloat32,
} from "../helpers/special.js";
import { readFlat } from "../helpers/host.js";

describe("test references", () => {
  it("erf and erfinv match tabulated values", () => {
    const table: [number, number][] = [
      [1e-10, 1.1283791670955126e-10], [-0.1, -0.1124629160182849], [0.5, 0.5204998778130465],
      [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014], [5, 0.9999999999984626],
    ];
    for (const [x, e] of table) expect(Math.abs(erf(x) - e)).toBeLessThanOrEqual(1e-15 * Math.abs(e));
    expect(erfinv(0.5)).toBeCloseTo(0.4769362762044699, 15);
    expect(erfinv(-0.9)).toBeCloseTo(-1.1630871536766743, 15);
    expect(erfinv(0.999)).toBeCloseTo(2.3267537655135246, 14);
    // erf(x) is exact to ~1e-16, and erfinv's slope there is up to ~500
    for (const x of [-2.5, -0.3, 0.01, 0.7, 1.9]) expect(erfinv(erf(x))).toBeCloseTo(x, 12);
  });
  it("rounds to float32 like Math.fround, and to half formats with ties to even", () => {
    const next = rng(1);
    for (let i = 0; i < 2000; i++) {
      const v = (next() - 0.5) * 2 ** Math.floor(next() * 300 - 150);
      expect(roundToFloat32(v)).toBe(Math.fround(v));
    }
    expect(roundToFloat16(1 + 2 ** -11)).toBe(1);
    expect(roundToFloat16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundToFloat16(65519)).toBe(65504);
    expect(roundToFloat16(65520)).toBe(Infinity);
    expect(roundToFloat16(2 ** -25)).toBe(0);
    expect(roundToFloat16(3 * 2 ** -26)).toBe(2 ** -24);
    expect(roundToBfloat16(1 + 2 ** -8)).toBe(1);
    expect(roundToBfloat16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
    expect([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999].map(roundRef)).toEqual([0, 2, 2, -0, -2, 2]);
  });
});

describe("type promotion", () => {
  // [a, b, result]: MLX's table (JAX-style lattice)
  const TABLE: [mx.DType, mx.DType, mx.DType][] = [
    ["bool", "bool", "bool"], ["bool", "int8", "int8"], ["bool", "float16", "float16"],
    ["uint8", "int8", "int16"], ["uint8", "uint16", "uint16"], ["uint16", "int16", "int32"], ["uint32", "int32", "int64"],
    ["uint32", "int8", "int64"], ["uint64", "int8", "float32"], ["uint64", "uint32", "uint64"], ["int8", "int64", "int64"],
    ["int32", "float16", "float16"], ["int64", "bfloat16", "bfloat16"], ["uint8", "float32", "float32"],
    ["float16", "bfloat16", "float32"], ["float16", "float32", "float32"], ["bfloat16", "float64", "float64"],
    ["float32", "float64", "float64"], ["int32", "float64", "float64"],
  ];
  it.each(TABLE)("%s with %s gives %s, converting before the op", (a, b, r) => {
    expect(mx.promoteTypes(a, b)).toBe(r);
    expect(mx.promoteTypes(b, a)).toBe(r);
    // values that the narrower type could not hold show that operands are cast first
    const val = (d: mx.DType, f: number) => (d === "bool" ? 1 : d.startsWith("uint") ? 200 : mx.isFloating(d) ? f : 100);
    const va = val(a, 1.5), vb = val(b, 0.5);
    const y = mx.add(mx.array([va], a), mx.array([vb], b));
    expect(y.dtype).toBe(r);
    if (r !== "bool") expect(Number(readFlat(y)[0])).toBe(va + vb);
  });

  it("keeps an array's dtype for JS numbers (weak scalars)", () => {
    const cases: [mx.DType, number, number, mx.DType][] = [
      ["float16", 0.5, 2.5, "float16"], ["bfloat16", 4, 2, "bfloat16"], ["int8", 3, 4, "int8"],
      ["uint8", 200, 2, "uint8"], ["int64", 7, 3, "int64"], ["float64", 1, 1e-12, "float64"],
    ];
    for (const [d, x, s, r] of cases) {
      const y = mx.mul(mx.array([x], d), s);
      expect(y.dtype).toBe(r);
      expect(mx.add(s, mx.array([x], d)).dtype).toBe(r);
    }
    expect(mx.mul(mx.array([200], "uint8"), 2).tolist()).toEqual([144]); // wraps in uint8
    expect(mx.add(mx.array([1], "float64"), 1e-12).item()).toBe(1 + 1e-12); // no trip through float32
  });
  it("promotes integer arrays with non-integral numbers to float32, bool with numbers to int32", () => {
    const y = mx.add(mx.array([1, 2], "int32"), 2.5);
    expect(y.dtype).toBe("float32");
    expect(y.tolist()).toEqual([3.5, 4.5]);
    const z = mx.add(mx.array([true, false]), 3);
    expect(z.dtype).toBe("int32");
    expect(z.tolist()).toEqual([4, 3]);
  });
  it("makes JS-number-only ops float32", () => {
    const y = mx.add(1, 2);
    expect([y.dtype, y.shape, y.item()]).toEqual(["float32", [], 3]);
    expect(mx.sin(0.5).item()).toBe(Math.fround(Math.sin(0.5)));
  });
  it("divides integers in float32 (true division)", () => {
    for (const d of ["int32", "int64", "uint8", "int8"] as mx.DType[]) {
      const y = mx.div(mx.array([7, 1, 9], d), mx.array([2, 3, 4], d));
      expect(y.dtype).toBe("float32");
      expect(y.tolist()).toEqual([3.5, Math.fround(1 / 3), 2.25]);
    }
  });
});

describe("integer edge cases", () => {
  const SIGNED: mx.DType[] = ["int8", "int16", "int32", "int64"];
  it.each(SIGNED)("floorDivide and remainder floor toward -inf; a zero divisor gives 0 (%s)", (d) => {
    const a = mx.array([-7, 7, -7, 7, -8, 7, 0, -3], d);
    const b = mx.array([2, -2, -2, 2, 2, 0, 0, 5], d);
    expect(readFlat(mx.floorDivide(a, b)).map(Number)).toEqual([-4, -4, 3, 3, -4, 0, 0, -1]);
    expect(readFlat(mx.remainder(a, b)).map(Number)).toEqual([1, -1, -1, 1, 0, 0, 0, 2]);
    expect(mx.floorDivide(a, b).dtype).toBe(d);
  });
  it("floorDivide and remainder on unsigned, with a zero divisor", () => {
    const a = mx.array([7, 255, 9], "uint8"), b = mx.array([2, 16, 0], "uint8");
    expect(mx.floorDivide(a, b).tolist()).toEqual([3, 15, 0]);
    expect(mx.remainder(a, b).tolist()).toEqual([1, 15, 0]);
  });
  it("floorDivide and remainder of floats follow NumPy (including a zero divisor)", () => {
    const a = mx.array([-7.5, 7.5, -7.5, 1, -1, 0], "float64"), b = mx.array([2, -2, -2, 0, 0, 0], "float64");
    expect(mx.floorDivide(a, b).tolist()).toEqual([-4, -4, 3, Infinity, -Infinity, NaN]);
    const r = mx.remainder(a, b).tolist() as number[];
    expect(r.slice(0, 3)).toEqual([0.5, -0.5, -1.5]);
    expect(r.slice(3).every(Number.isNaN)).toBe(true);
  });
  it("shifts: left wraps, right is arithmetic for signed and logical for unsigned", () => {
    const i32 = (v: number[]) => mx.array(new Int32Array(v));
    expect(mx.leftShift(i32([1, -1, 3]), i32([31, 4, 30])).tolist()).toEqual([-(2 ** 31), -16, -(2 ** 30)]);
    expect(mx.rightShift(i32([-8, -1, 2 ** 30]), i32([1, 5, 30])).tolist()).toEqual([-4, -1, 1]);
    const u = mx.array(new Uint32Array([2 ** 31, 2 ** 32 - 1]));
    expect(mx.rightShift(u, mx.array(new Uint32Array([31, 4]))).tolist()).toEqual([1, 2 ** 28 - 1]);
    expect(mx.leftShift(mx.array([255], "uint8"), mx.array([1], "uint8")).tolist()).toEqual([254]);
  });
  it("bitwise ops on bools give bools", () => {
    const a = mx.array([true, true, false, false]), b = mx.array([true, false, true, false]);
    expect(mx.bitwiseAnd(a, b).tolist()).toEqual([true, false, false, false]);
    expect(mx.bitwiseOr(a, b).tolist()).toEqual([true, true, true, false]);
    expect(mx.bitwiseXor(a, b).tolist()).toEqual([false, true, true, false]);
  });
  it("rejects float operands of bitwise ops and bool operands of neg", () => {
    expect(() => mx.bitwiseAnd(mx.array([1.5]), mx.array([1]))).toThrow(TypeError);
    expect(() => mx.leftShift(mx.array([true]), mx.array([true]))).toThrow(/leftShift/);
    expect(() => mx.neg(mx.array([true]))).toThrow(/neg/);
  });
  it("integer pow, abs, sign", () => {
    expect(mx.pow(mx.array([2, -3, 0, 7], "int32"), mx.array([10, 3, 0, 1], "int32")).tolist()).toEqual([1024, -27, 1, 7]);
    expect(mx.abs(mx.array([-5, 5, 0], "int16")).tolist()).toEqual([5, 5, 0]);
    expect(mx.sign(mx.array([-5, 5, 0], "int8")).tolist()).toEqual([-1, 1, 0]);
    expect(mx.sign(mx.array([0, 9], "uint8")).tolist()).toEqual([0, 1]);
  });
  it("rounding ops leave integers as they are and round floats half to even", () => {
    const x = mx.array([-3, 4], "int32");
    for (const f of [mx.floor, mx.ceil, mx.round]) expect([f(x).dtype, f(x).tolist()]).toEqual(["int32", [-3, 4]]);
    for (const d of ["float32", "float64", "float16", "bfloat16"] as mx.DType[]) {
      const y = mx.round(mx.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 2.75], d));
      expect(y.tolist()).toEqual([0, 2, 2, -0, -2, -2, 4, 3]);
    }
  });
});

describe("float16 and bfloat16", () => {
  const HALF = [
    ["float16", roundToFloat16, 2 ** -24, 70000],
    ["bfloat16", roundToBfloat16, 2 ** -133, 4e38],
  ] as const;
  it.each(HALF)("%s stores values rounded to nearest even and reads them back", (d, round, tiny, huge) => {
    const next = rng(3);
    const vals = Array.from({ length: 300 }, (_, i) => Math.fround((next() - 0.5) * 2 ** ((i % 40) - 20)));
    vals.push(0, -0, 1, -2, tiny, tiny / 2, 3 * tiny, huge, -huge, Infinity, -Infinity, NaN);
    const x = mx.array(vals, d);
    expect(x.dtype).toBe(d);
    const got = x.tolist() as number[];
    vals.forEach((v, i) => expect(got[i], `element ${i} (${v})`).toBe(round(v)));
    expect(mx.array(new Float64Array(vals)).astype(d).tolist()).toEqual(got);
    expect(mx.array(vals, d).astype("float32").tolist()).toEqual(got);
  });
  it("exposes raw bit patterns through toTypedArray", () => {
    expect([...mx.array([1, -2, 65504, Infinity, 2 ** -24], "float16").toTypedArray()]).toEqual([0x3c00, 0xc000, 0x7bff, 0x7c00, 0x0001]);
    expect([...mx.array([1, -2, 0.5], "bfloat16").toTypedArray()]).toEqual([0x3f80, 0xc000, 0x3f00]);
  });
  it.each(HALF)("rounds doubles to %s directly (no double rounding through float32)", (d, round) => {
    // the nearest float32 of v is a tie in the half format, which would round down to even
    const v = d === "float16" ? 1 + 2 ** -11 + 2 ** -40 : 1 + 2 ** -8 + 2 ** -40;
    expect(round(v)).toBeGreaterThan(1);
    expect(mx.array([v, -v], d).tolist()).toEqual([round(v), -round(v)]);
  });
  it.each(HALF)("fills and casts float64 to %s directly (no double rounding through float32)", (d, round) => {
    const v = d === "float16" ? 1 + 2 ** -11 + 2 ** -40 : 1 + 2 ** -8 + 2 ** -40;
    expect(mx.full([1], v, d).item()).toBe(round(v));
    expect(mx.array(new Float64Array([v, -v])).astype(d).tolist()).toEqual([round(v), -round(v)]);
  });
  it.each(HALF)("%s add, sub, mul, div and sqrt are correctly rounded", (d, round) => {
    const next = rng(4);
    const a = Array.from({ length: 200 }, () => round((next() - 0.5) * 40));
    const b = Array.from({ length: 200 }, () => round((next() - 0.5) * 40 || 1));
    const x = mx.array(a, d), y = mx.array(b, d);
    const ops: [mx.Array, (p: number, q: number) => number][] = [
      [mx.add(x, y), (p, q) => p + q], [mx.sub(x, y), (p, q) => p - q], [mx.mul(x, y), (p, q) => p * q],
      [mx.div(x, y), (p, q) => p / q], [mx.sqrt(mx.abs(x)), (p) => Math.sqrt(Math.abs(p))],
    ];
    for (const [z, f] of ops) {
      expect(z.dtype).toBe(d);
      const got = z.tolist() as number[];
      a.forEach((p, i) => expect(got[i], `${p}, ${b[i]}`).toBe(round(f(p, b[i]))));
    }
  });
});

describe("nanToNum", () => {
  it.each([
    ["float32", 3.4028234663852886e38], ["float64", Number.MAX_VALUE], ["float16", 65504], ["bfloat16", 3.3895313892515355e38],
  ] as const)("replaces NaN with 0 and infinities with the extremes of %s by default", (d, big) => {
    const y = mx.nanToNum(mx.array([NaN, Infinity, -Infinity, 1.5], d));
    expect(y.dtype).toBe(d);
    expect(y.tolist()).toEqual([0, big, -big, 1.5]);
  });
  it("leaves integer arrays alone", () => {
    expect(mx.nanToNum(mx.array([1, -2], "int32")).tolist()).toEqual([1, -2]);
  });
});

describe("errors", () => {
  it("throws at the call for shapes that do not broadcast, naming the op and shapes", () => {
    expect(() => mx.add(mx.zeros([2, 3]), mx.zeros([3, 2]))).toThrow(/add.*\[2,3\].*\[3,2\]/);
    expect(() => mx.where(mx.zeros([2]), mx.zeros([3]), 0)).toThrow(TypeError);
  });
});
