/**
 * Helpers for testing the gradients of your own functions.
 * @module @tessera/transforms/testing
 * @file Helpers for users' own gradient tests: checkGrads compares vjp and jvp with central finite
 * differences in float64; arrayArb is a fast-check arbitrary of arrays.
 */
import * as mx from "@tessera/core";
import type { Array, DType } from "@tessera/core";
import fc from "fast-check";
import { jvp } from "../jvp.js";
import { vjp } from "../vjp.js";

/** Options of {@link checkGrads}. */
export interface CheckGradsOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Seed of the random directions (default 0). */
  seed?: number;
}

/** A small deterministic generator (mulberry32), so directions repeat from run to run. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomLike(x: Array, next: () => number): Array {
  const v = new Float64Array(x.size);
  for (let i = 0; i < v.length; i++) v[i] = next() * 2 - 1;
  return mx.reshape(mx.array(v), x.shape);
}

const dot = (a: Array, b: Array): number => Number(mx.sum(mx.mul(a, b)).item());

/**
 * Throws if fn's vjp or jvp at `inputs` disagrees with central finite differences (computed in
 * float64, along random directions).
 * @example
 * checkGrads((x) => x.sin().sum(), [mx.array([0.5, 1.5], "float64")]);
 */
export function checkGrads(fn: (...xs: Array[]) => Array | Array[], inputs: Array[], options: CheckGradsOptions = {}): void {
  const { eps = 1e-6, atol = 1e-6, rtol = 1e-5, seed = 0 } = options;
  const next = rng(seed);
  const xs = inputs.map((x) => mx.astype(x, "float64"));
  const call = (ys: Array[]) => {
    const out = fn(...ys);
    return (globalThis.Array.isArray(out) ? out : [out]).map((o) => mx.astype(o, "float64"));
  };
  const us = xs.map((x) => randomLike(x, next));
  const plus = call(xs.map((x, i) => mx.add(x, mx.mul(us[i], eps))));
  const minus = call(xs.map((x, i) => mx.sub(x, mx.mul(us[i], eps))));
  const fd = plus.map((p, i) => mx.div(mx.sub(p, minus[i]), 2 * eps));

  const [outs, tangents] = jvp((...ys) => call(ys), xs, us);
  const vs = outs.map((o) => randomLike(o, next));
  const [, cts] = vjp((...ys) => call(ys), xs, vs);
  mx.eval(fd, tangents, cts);

  fd.forEach((f, i) => {
    const t = tangents[i];
    const ok = mx.all(mx.lessEqual(mx.abs(mx.sub(t, f)), mx.add(mx.mul(mx.abs(f), rtol), atol))).item();
    if (!ok) {
      const err = Number(mx.max(mx.abs(mx.sub(t, f))).item());
      throw new Error(`checkGrads: jvp of output ${i} differs from finite differences (max abs error ${err.toExponential(3)}; atol ${atol}, rtol ${rtol})`);
    }
  });
  // <v, J u> from finite differences against <J^T v, u> from the vjp.
  const lhs = fd.reduce((s, f, i) => s + dot(vs[i], f), 0);
  const rhs = cts.reduce((s, g, i) => s + dot(g, us[i]), 0);
  if (Math.abs(lhs - rhs) > atol + rtol * Math.abs(lhs)) {
    throw new Error(`checkGrads: vjp disagrees with finite differences: <v, J u> = ${lhs} but <J^T v, u> = ${rhs} (atol ${atol}, rtol ${rtol})`);
  }
}

/** Options of {@link arrayArb}. */
export interface ArrayArbOptions {
  /** A fixed shape; omitted, shapes of up to 3 axes of sizes 1 to 4 are drawn. */
  shape?: number[];
  /** The dtype of the arrays (default float32). */
  dtype?: DType;
  /** The smallest value drawn (default -10). */
  min?: number;
  /** The largest value drawn (default 10). */
  max?: number;
}

/**
 * A fast-check arbitrary of arrays (float32 in [-10, 10] by default).
 * @example
 * fc.assert(fc.property(arrayArb({ shape: [3], dtype: "float64" }), (x) => { checkGrads(f, [x]); }));
 */
export function arrayArb(options: ArrayArbOptions = {}): fc.Arbitrary<Array> {
  const { dtype = "float32", min = -10, max = 10 } = options;
  const shapeArb = options.shape ? fc.constant(options.shape) : fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 });
  const integral = !mx.isFloating(dtype);
  return shapeArb.chain((shape) => {
    const size = shape.reduce((n, d) => n * d, 1);
    const value = integral
      ? fc.integer({ min: Math.ceil(min), max: Math.floor(max) })
      : fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
    return fc.array(value, { minLength: size, maxLength: size }).map((vals) =>
      mx.reshape(mx.array(Float64Array.from(vals), dtype), shape),
    );
  });
}
