/**
 * @file Independent float64 references for tests: random data from a seeded generator, plain-JS
 * strided evaluation, and closeness checks. Nothing here calls tessera to compute an expectation.
 */
import * as mx from "@tessera/core";
import { expect } from "vitest";

/** Seeded uniform generator in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A host-side n-d array of doubles in row-major order: the reference representation. */
export interface Ref {
  shape: number[];
  data: Float64Array;
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function randomRef(shape: number[], next: () => number, lo = -2, hi = 2): Ref {
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * next();
  return { shape, data };
}

/** The tessera array holding a reference's values (float64 unless a dtype is given). */
export function toMx(r: Ref, dtype: mx.DType = "float64"): mx.Array {
  return mx.reshape(mx.array(r.data, dtype === "float64" ? undefined : dtype), r.shape);
}

/** A tessera array's values as a reference (read as doubles). */
export function fromMx(x: mx.Array): Ref {
  const flat = x.ndim === 0 ? [x.item()] : (x.reshape([-1]).tolist() as unknown[]);
  return { shape: [...x.shape], data: Float64Array.from(flat.map((v) => Number(v))) };
}

export function strides(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Multi-index of flat position i in shape. */
export function unravel(i: number, shape: number[]): number[] {
  const idx = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Element of r at a (broadcast) multi-index of a larger shape. */
export function at(r: Ref, idx: number[]): number {
  const lead = idx.length - r.shape.length;
  let off = 0;
  const st = strides(r.shape);
  for (let d = 0; d < r.shape.length; d++) off += (r.shape[d] === 1 ? 0 : idx[lead + d]) * st[d];
  return r.data[off];
}

export function broadcastShape(...shapes: number[][]): number[] {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = new Array(nd).fill(1);
  for (const s of shapes) s.forEach((d, i) => {
    const j = nd - s.length + i;
    if (d !== 1) out[j] = d;
  });
  return out;
}

/** Elementwise map over broadcast operands, in float64. */
export function mapRef(f: (...v: number[]) => number, ...xs: Ref[]): Ref {
  const shape = broadcastShape(...xs.map((x) => x.shape));
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = f(...xs.map((x) => at(x, idx)));
  }
  return { shape, data };
}

/**
 * Asserts that `actual` matches the float64 reference within atol + rtol * |expected|, treating
 * NaNs as equal to NaNs and infinities as equal to themselves.
 */
export function expectClose(actual: mx.Array, expected: Ref, { atol = 1e-6, rtol = 1e-6 } = {}): void {
  expect(actual.shape).toEqual(expected.shape);
  const got = fromMx(actual).data;
  for (let i = 0; i < got.length; i++) {
    const a = got[i], e = expected.data[i];
    if (Number.isNaN(e)) {
      if (!Number.isNaN(a)) expect.fail(`element ${i}: expected NaN, got ${a}`);
      continue;
    }
    if (!Number.isFinite(e)) {
      if (a !== e) expect.fail(`element ${i}: expected ${e}, got ${a}`);
      continue;
    }
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      expect.fail(`element ${i} of shape [${expected.shape}]: expected ${e}, got ${a} (diff ${Math.abs(a - e)})`);
    }
  }
}
