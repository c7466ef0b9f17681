/**
 * @file The one conversion rule (docs/api.md, "Conversions"): a float becoming an integer saturates
 * (truncation toward zero, NaN gives 0, infinities and out-of-range values give the dtype's
 * extremes) on every path (creation from numbers and TypedArrays, fills, astype, half types);
 * BigInts are exact or a RangeError naming the op; a JS number or BigInt used as a scalar operand
 * must fit the integer dtype it is used in (a RangeError naming the op), while float arrays take
 * any scalar. Every expectation is computed here in plain JS (BigInt arithmetic).
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { readFlat } from "../helpers/host.js";

const INTS: mx.DType[] = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"];
const WIDE = new Set<mx.DType>(["int64", "uint64"]);

function range(d: mx.DType): [bigint, bigint] {
  const bits = BigInt(mx.itemsize(d) * 8);
  return d.startsWith("u") ? [0n, 2n ** bits - 1n] : [-(2n ** (bits - 1n)), 2n ** (bits - 1n) - 1n];
}

/** The saturating conversion of a double, computed exactly with BigInts. */
function saturate(v: number, d: mx.DType): bigint {
  const [lo, hi] = range(d);
  if (Number.isNaN(v)) return 0n;
  if (v === Infinity) return hi;
  if (v === -Infinity) return lo;
  const t = BigInt(Math.trunc(v));
  return t < lo ? lo : t > hi ? hi : t;
}

/** An array's values as BigInts (integer dtypes). */
const asBig = (x: mx.Array): bigint[] => readFlat(x).map((v) => BigInt(v as number | bigint));

/** Doubles around and beyond each integer dtype's range, and the special values. */
function probeValues(d: mx.DType): number[] {
  const [lo, hi] = range(d);
  const out = [0, 1, -1, 2.7, -2.7, 0.5, -0.5, -0, 1e30, -1e30, NaN, Infinity, -Infinity, Number(lo), Number(hi), Number(lo) - 1, Number(hi) + 1];
  if (!WIDE.has(d)) out.push(Number(hi) - 0.5, Number(lo) + 0.5, Number(hi) + 0.5, Number(lo) - 0.5);
  else out.push(2 ** 62, -(2 ** 62), 2 ** 53 + 2, 2 ** 63, 2 ** 64, -(2 ** 63));
  return out;
}

function expectRangeError(call: () => unknown, op: string, ...parts: string[]): void {
  let err: unknown;
  try {
    call();
  } catch (e) {
    err = e;
  }
  expect(err, "the call did not throw").toBeInstanceOf(RangeError);
  const msg = (err as Error).message;
  expect(msg.startsWith(`${op}:`), `message should start with "${op}:": ${msg}`).toBe(true);
  for (const p of parts) expect(msg).toContain(p);
}

describe("float to integer conversion saturates on every path", () => {
  it.each(INTS)("creation from JS numbers saturates into %s (NaN gives 0, truncation toward zero)", (d) => {
    const vals = probeValues(d);
    const x = mx.array(vals, d);
    expect(x.dtype).toBe(d);
    expect(asBig(x)).toEqual(vals.map((v) => saturate(v, d)));
  });

  it.each(INTS)("astype from float64 and float32 into %s gives the same values as creation", (d) => {
    const vals = probeValues(d);
    expect(asBig(mx.array(vals, "float64").astype(d))).toEqual(vals.map((v) => saturate(v, d)));
    const f32 = Array.from(new Float32Array(vals));
    expect(asBig(mx.array(f32, "float32").astype(d))).toEqual(f32.map((v) => saturate(v, d)));
    expect(asBig(mx.array(new Float32Array(vals), d))).toEqual(f32.map((v) => saturate(v, d)));
  });

  it.each(INTS)("a Float64Array or Float32Array given dtype %s saturates", (d) => {
    const vals = probeValues(d);
    expect(asBig(mx.array(new Float64Array(vals), d))).toEqual(vals.map((v) => saturate(v, d)));
  });

  it.each(INTS)("fills (full, zeros, ones) saturate into %s", (d) => {
    for (const v of [1e30, -1e30, NaN, Infinity, -Infinity, 3.9, -3.9]) {
      expect(asBig(mx.full([2], v, d))).toEqual([saturate(v, d), saturate(v, d)]);
    }
    expect(asBig(mx.ones([1], d))).toEqual([1n]);
    expect(asBig(mx.zeros([1], d))).toEqual([0n]);
  });

  it.each(["float16", "bfloat16"] as mx.DType[])("astype from %s saturates into every integer dtype", (h) => {
    const vals = [NaN, Infinity, -Infinity, 1000, -1000, 65504, -65504, 2.5, -2.5, 0];
    const x = mx.array(vals, h);
    const stored = readFlat(x) as number[]; // the half values, as doubles
    for (const d of INTS) expect(asBig(x.astype(d)), `${h} -> ${d}`).toEqual(stored.map((v) => saturate(v, d)));
  });

  it("integer arguments of an integer arange fit (a RangeError names arange otherwise)", () => {
    expect(mx.arange(5).tolist()).toEqual([0, 1, 2, 3, 4]);
    expect(mx.arange(2 ** 31 - 2, 2 ** 31 - 1).tolist()).toEqual([2 ** 31 - 2]);
    expectRangeError(() => mx.arange(2 ** 31, 2 ** 31 + 2), "arange", "int32", "2147483648");
    expectRangeError(() => mx.arange(0, 300, 1, "int8"), "arange", "int8", "299");
    expect(mx.arange(2 ** 31, 2 ** 31 + 2, 1, "int64").tolist()).toEqual([2n ** 31n, 2n ** 31n + 1n]);
    expectRangeError(() => mx.linspace(0, 300, 3, "uint8"), "linspace", "uint8");
    expect(mx.linspace(0, 10, 3, "int32").tolist()).toEqual([0, 5, 10]);
  });
});

describe("bool and half conversions agree between creation and astype", () => {
  it("creation into bool: nonzero (NaN included) is true, as astype", () => {
    const vals = [NaN, 0, -0, 0.5, -3, Infinity];
    const want = [true, false, false, true, true, true];
    expect(mx.array(vals, "bool").tolist()).toEqual(want);
    expect(mx.array(vals).astype("bool").tolist()).toEqual(want);
    expect(mx.array(new Float64Array(vals), "bool").tolist()).toEqual(want);
    expect(mx.array([0n, 5n, -1n], "bool").tolist()).toEqual([false, true, true]);
    expect(mx.full([1], NaN, "bool").tolist()).toEqual([true]);
  });

  it("creation into half types rounds to nearest even, overflows to infinity, keeps NaN", () => {
    // 1 + 2^-11 is the tie between 1 and 1 + 2^-10: even is 1; 2^-40 more breaks the tie upward.
    expect(mx.array([1 + 2 ** -11, 1 + 2 ** -11 + 2 ** -40, 1e6, -1e6], "float16").tolist()).toEqual([1, 1 + 2 ** -10, Infinity, -Infinity]);
    expect(mx.array([1 + 2 ** -8, 1 + 2 ** -8 + 2 ** -40, 1e39], "bfloat16").tolist()).toEqual([1, 1 + 2 ** -7, Infinity]);
    const n = mx.array([NaN], "float16").item() as number;
    expect(Number.isNaN(n)).toBe(true);
    // the same values through astype from float64
    expect(mx.array([1 + 2 ** -11 + 2 ** -40, 1e6], "float64").astype("float16").tolist()).toEqual([1 + 2 ** -10, Infinity]);
  });
});

describe("BigInts are exact or a RangeError", () => {
  it.each(INTS)("BigInts at the edges of %s are exact", (d) => {
    const [lo, hi] = range(d);
    const vals = [lo, hi, 0n, lo + 1n, hi - 1n];
    expect(asBig(mx.array(vals, d))).toEqual(vals);
    expect(asBig(mx.full([1], hi, d))).toEqual([hi]);
    expect(asBig(mx.full([1], lo, d))).toEqual([lo]);
  });

  it.each(INTS)("a BigInt outside %s is a RangeError naming the op", (d) => {
    const [lo, hi] = range(d);
    expectRangeError(() => mx.array([0n, hi + 1n], d), "array", d, `${hi + 1n}n`);
    expectRangeError(() => mx.array([lo - 1n], d), "array", d, `${lo - 1n}n`);
    expectRangeError(() => mx.full([2], hi + 1n, d), "full", d);
  });

  it("all-BigInt data is int64, or uint64 past int64's maximum; beyond both is a RangeError", () => {
    const a = mx.array([2n ** 62n, -5n]);
    expect([a.dtype, a.tolist()]).toEqual(["int64", [2n ** 62n, -5n]]);
    const b = mx.array([2n ** 63n, 2n ** 64n - 1n]);
    expect([b.dtype, b.tolist()]).toEqual(["uint64", [2n ** 63n, 2n ** 64n - 1n]]);
    expectRangeError(() => mx.array([2n ** 70n]), "array", "int64", "uint64", `${2n ** 70n}n`);
    expectRangeError(() => mx.array([-(2n ** 63n) - 1n]), "array", "int64");
    expectRangeError(() => mx.array([2n ** 63n, -1n]), "array", "int64", "uint64");
    expectRangeError(() => mx.array([[1n], [2n ** 64n]]), "array");
    expectRangeError(() => mx.array(2n ** 64n), "array");
    const f = mx.full([2], 3n);
    expect([f.dtype, f.tolist()]).toEqual(["int64", [3n, 3n]]);
  });

  it("a BigInt outside int64 and uint64 is a RangeError for float dtypes too", () => {
    expectRangeError(() => mx.array([2n ** 70n], "float32"), "array", "int64");
    expectRangeError(() => mx.array([1, 2n ** 64n]), "array");
    expectRangeError(() => mx.full([1], -(2n ** 64n), "float64"), "full");
  });

  it("BigInts become floats rounded once to nearest (no double rounding through float64)", () => {
    // 2^60 + 2^36 + 1 is just above the float32 tie between 2^60 and 2^60 + 2^37; through a
    // double it would become the tie itself and round to even (2^60).
    const v = 2n ** 60n + 2n ** 36n + 1n;
    expect(mx.array([v], "float32").item()).toBe(2 ** 60 + 2 ** 37);
    expect(mx.full([1], v, "float32").item()).toBe(2 ** 60 + 2 ** 37);
    expect(mx.array([v], "float64").item()).toBe(Number(v));
    expect(mx.array([2n ** 53n + 1n, -(2n ** 53n) - 3n], "float64").tolist()).toEqual([2 ** 53, -(2 ** 53) - 4]);
    // bfloat16 keeps 8 bits: 2^60 + 2^52 + 1 is above the tie between 2^60 and 2^60 + 2^53
    expect(mx.array([2n ** 60n + 2n ** 52n + 1n], "bfloat16").item()).toBe(2 ** 60 + 2 ** 53);
    // mixed numbers and BigInts are float32
    const m = mx.array([1.5, 2n]);
    expect([m.dtype, m.tolist()]).toEqual(["float32", [1.5, 2]]);
  });

  it("a BigInt64Array or BigUint64Array given an integer dtype keeps values exact or throws", () => {
    expect(mx.array(new BigInt64Array([-128n, 127n]), "int8").tolist()).toEqual([-128, 127]);
    expectRangeError(() => mx.array(new BigInt64Array([300n]), "int8"), "array", "int8", "300n");
    expectRangeError(() => mx.array(new BigInt64Array([-1n]), "uint64"), "array", "uint64", "-1n");
    expectRangeError(() => mx.array(new BigUint64Array([2n ** 63n]), "int64"), "array", "int64");
    expect(mx.array(new BigUint64Array([2n ** 63n - 1n]), "int64").tolist()).toEqual([2n ** 63n - 1n]);
    expect(mx.array(new BigInt64Array([3n, -3n]), "float32").tolist()).toEqual([3, -3]);
  });
});

describe("TypedArrays", () => {
  it("integer TypedArrays given a narrower integer dtype saturate element by element (creation converts values)", () => {
    expect(mx.array(new Int32Array([300, -300, 5]), "int8").tolist()).toEqual([127, -128, 5]);
    expect(mx.array(new Int16Array([-1, 256]), "uint8").tolist()).toEqual([0, 255]);
    expect(mx.array(new Uint32Array([2 ** 32 - 1]), "int32").tolist()).toEqual([2 ** 31 - 1]);
    expect(mx.array(new Uint8Array([0, 200]), "int8").tolist()).toEqual([0, 127]);
    expect(mx.array(new Int32Array([-1, 7]), "uint64").tolist()).toEqual([0n, 7n]);
    expect(mx.array(new Int32Array([-1, 7]), "int64").tolist()).toEqual([-1n, 7n]);
  });

  it("views of a SharedArrayBuffer are copied, not refused", () => {
    const shared = new Float32Array(new SharedArrayBuffer(16));
    shared.set([1.5, -2, 3, 4]);
    const x = mx.array(shared);
    expect([x.dtype, x.tolist()]).toEqual(["float32", [1.5, -2, 3, 4]]);
    shared[0] = 99; // the array holds its own copy
    expect(x.tolist()).toEqual([1.5, -2, 3, 4]);
    expect(mx.array(shared.subarray(1, 3)).tolist()).toEqual([-2, 3]);
    expect(mx.array(shared, "int8").tolist()).toEqual([99, -2, 3, 4]);
    const ints = new Int32Array(new SharedArrayBuffer(8));
    ints.set([7, -7]);
    expect(mx.array(ints).tolist()).toEqual([7, -7]);
    expect(mx.array(new BigInt64Array(new SharedArrayBuffer(8))).tolist()).toEqual([0n]);
  });

  it("subarray views with an offset read their own elements", () => {
    const base = new Float64Array([1, 2, 3, 4, 5]);
    expect(mx.array(base.subarray(2)).tolist()).toEqual([3, 4, 5]);
    expect(mx.array(base.subarray(1, 3), "int32").tolist()).toEqual([2, 3]);
  });

  it("astype between integer dtypes wraps (two's complement), as documented", () => {
    expect(mx.array([300, -300], "int32").astype("int8").tolist()).toEqual([44, -44]);
    expect(mx.array([-1], "int32").astype("uint8").tolist()).toEqual([255]);
  });
});

describe("weak scalars", () => {
  const u8 = () => mx.array([1, 2], "uint8");
  const i8 = () => mx.array([1, -2], "int8");

  it("a JS number that does not fit an integer array's dtype is a RangeError naming the op", () => {
    expectRangeError(() => u8().add(-1), "add", "uint8", "-1");
    expectRangeError(() => mx.add(u8(), -1), "add", "uint8", "-1");
    expectRangeError(() => mx.add(-1, u8()), "add", "uint8");
    expectRangeError(() => i8().mul(300), "mul", "int8", "300");
    expectRangeError(() => i8().sub(-129), "sub", "int8");
    expectRangeError(() => mx.array([1], "int16").add(40000), "add", "int16", "40000");
    expectRangeError(() => mx.array([1], "int32").add(2 ** 40), "add", "int32");
    expectRangeError(() => mx.array([1], "uint32").maximum(-1), "maximum", "uint32");
    expectRangeError(() => mx.array([1n], "int64").add(2 ** 63), "add", "int64");
    expectRangeError(() => mx.array([1n], "uint64").sub(-1), "sub", "uint64");
    expectRangeError(() => mx.equal(u8(), 256), "equal", "uint8", "256");
    expectRangeError(() => mx.bitwiseAnd(u8(), -1), "bitwiseAnd", "uint8");
    expectRangeError(() => mx.floorDivide(i8(), 1000), "floorDivide", "int8");
    expectRangeError(() => mx.where(mx.array([true, false]), i8(), 300), "where", "int8", "300");
    expectRangeError(() => mx.clip(u8(), -5, 10), "clip", "uint8", "-5");
    expectRangeError(() => mx.pad(u8(), 1, { value: -1 }), "pad", "uint8", "-1");
    expectRangeError(() => mx.pad(mx.array([1], "int32"), 1, { value: 0.5 }), "pad", "int32", "0.5");
  });

  it("a BigInt that does not fit is a RangeError; one that fits is exact", () => {
    expectRangeError(() => i8().add(300n), "add", "int8", "300n");
    expectRangeError(() => mx.array([1n]).add(2n ** 63n), "add", "int64");
    expectRangeError(() => mx.add(2n ** 70n, 1n), "add", "int64");
    expect(mx.array([1n], "int64").add(2n ** 62n).tolist()).toEqual([2n ** 62n + 1n]);
    expect(mx.array([0n], "uint64").add(2n ** 64n - 1n).tolist()).toEqual([2n ** 64n - 1n]);
    expect(mx.array([1n], "int64").add(2 ** 53).tolist()).toEqual([2n ** 53n + 1n]);
    expect(i8().add(5n).tolist()).toEqual([6, 3]);
  });

  it("scalars that fit keep the array's dtype, at the edges of each integer dtype", () => {
    for (const d of INTS) {
      const [lo, hi] = range(d);
      const x = mx.zeros([1], d);
      const big = WIDE.has(d);
      const y = x.add(big ? hi : Number(hi));
      expect([y.dtype, asBig(y)]).toEqual([d, [hi]]);
      expect(asBig(x.add(big ? lo : Number(lo)))).toEqual([lo]);
    }
    // the scalar fits; the arithmetic then wraps in the array's dtype, as C and NumPy
    expect(mx.mul(mx.array([200], "uint8"), 2).tolist()).toEqual([144]);
  });

  it("float arrays take any scalar; integer arrays with a non-integral number become float32", () => {
    expect(mx.array([1], "float16").add(1e6).tolist()).toEqual([Infinity]);
    expect(mx.array([1]).add(1e300).tolist()).toEqual([Infinity]);
    expect(mx.array([1]).add(-Infinity).tolist()).toEqual([-Infinity]);
    expect(mx.array([0]).add(2n ** 70n).item()).toBe(2 ** 70);
    expect(mx.array([0], "float32").add(2n ** 60n + 2n ** 36n + 1n).item()).toBe(2 ** 60 + 2 ** 37);
    const y = mx.array([1, 2], "int32").add(0.5);
    expect([y.dtype, y.tolist()]).toEqual(["float32", [1.5, 2.5]]);
    const z = mx.array([1], "uint8").add(NaN);
    expect(z.dtype).toBe("float32");
    expect(mx.array([1], "int8").mul(Infinity).tolist()).toEqual([Infinity]);
  });

  it("bool arrays meet numbers as int32, booleans as bool", () => {
    const b = mx.array([true, false]);
    const y = b.add(300);
    expect([y.dtype, y.tolist()]).toEqual(["int32", [301, 300]]);
    expectRangeError(() => b.add(2 ** 40), "add", "int32");
    expect(b.logicalAnd(5).tolist()).toEqual([true, false]);
    expect(mx.where(b, 2 ** 40, 0.5).dtype).toBe("float32");
    expect(mx.array([1], "uint8").add(true).tolist()).toEqual([2]);
  });

  it("a failed call records nothing and leaves its operand usable", () => {
    const x = u8();
    mx.internal.evalStats.reset();
    expect(() => x.add(-1)).toThrow(RangeError);
    expect(mx.internal.evalStats.programs).toBe(0);
    expect(x.add(1).tolist()).toEqual([2, 3]);
  });
});
