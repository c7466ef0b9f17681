/**
 * @file Helpers of the gpu tests (test/gpu): whether a gpu is here, running the same recording
 * on the cpu and on the gpu, and exact or tolerant comparisons of the two results.
 */
import { expect } from "vitest";
import * as mx from "@tessera/core";

type A = mx.Array;
export const HAS_GPU = mx.isAvailable(mx.gpu);
const { native } = mx.internal;
export const GPU_INDEX = native.devices().indexOf("gpu");

/** fn's arrays recorded with `d` as the default device (inputs it reads may live anywhere). */
export function on<T>(d: mx.Device, fn: () => T): T {
  const prev = mx.defaultDevice();
  mx.setDefaultDevice(d);
  try {
    return fn();
  } finally {
    mx.setDefaultDevice(prev);
  }
}

const listOf = (r: A | A[]): A[] => (Array.isArray(r) ? r : [r]);

/** Evaluates fn on both devices; checks the gpu results live on the gpu; returns [cpu, gpu] pairs. */
export function bothDevices(fn: () => A | A[]): [A, A][] {
  const c = listOf(on(mx.cpu, fn)), g = listOf(on(mx.gpu, fn));
  mx.eval(...c, ...g);
  g.forEach((y) => expect(native.describe(y.handle).device, "gpu result's device").toBe(GPU_INDEX));
  return c.map((y, i) => [y, g[i]]);
}

/** Whether the bits of a float16 or bfloat16 element are a NaN (any payload). */
const halfNaN = (bits: number, dtype: mx.DType): boolean =>
  dtype === "float16" ? (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0 : (bits & 0x7f80) === 0x7f80 && (bits & 0x7f) !== 0;

/** Element i of a typed array as a number or bigint; half types as their bits, any NaN as NaN. */
const values = (a: A): (number | bigint | boolean)[] => {
  const t = a.toTypedArray() as ArrayLike<number | bigint>;
  const half = a.dtype === "float16" || a.dtype === "bfloat16";
  return Array.from({ length: t.length }, (_, i) =>
    a.dtype === "bool" ? Boolean(t[i]) : half && halfNaN(Number(t[i]), a.dtype) ? NaN : t[i],
  );
};

/** The gpu result equals the cpu's bit for bit (any NaN equals any NaN, -0 differs from +0). */
export function expectSame(pairs: [A, A][], what: string): void {
  pairs.forEach(([c, g], k) => {
    expect(g.shape, `${what} #${k} shape`).toEqual(c.shape);
    expect(g.dtype, `${what} #${k} dtype`).toBe(c.dtype);
    const cv = values(c), gv = values(g);
    for (let i = 0; i < cv.length; i++)
      if (!Object.is(cv[i], gv[i])) expect.fail(`${what} #${k}: element ${i} is ${String(gv[i])} on the gpu, ${String(cv[i])} on the cpu`);
  });
}

/** |gpu - ref| <= atol + rtol |ref| elementwise, ref a float64 array of the same length (NaN matches NaN). */
export function expectClose(got: A, ref: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  const gv = got.toTypedArray() as ArrayLike<number>;
  expect(gv.length, `${what}: length`).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], v = Number(gv[i]);
    if (Number.isNaN(r) ? !Number.isNaN(v) : !(v === r || Math.abs(v - r) <= atol + rtol * Math.abs(r)))
      expect.fail(`${what}: element ${i} is ${v}, expected ${r} (rtol ${rtol}, atol ${atol})`);
  }
}
