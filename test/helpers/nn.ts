/** @file Shared by the nn tests: seeded float64 data, parameters set to it, and the largest error. */
import * as mx from "@tessera/core";
import type * as nn from "@tessera/nn";
import { expect } from "vitest";

export const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
export const flat = (a: mx.Array) => Array.from(a.astype("float64").toTypedArray() as Float64Array);

/** The largest absolute difference between a's values and ref (their counts must agree). */
export function maxError(a: mx.Array, ref: number[]): number {
  const got = flat(a);
  expect(got.length).toBe(ref.length);
  return Math.max(0, ...got.map((g, i) => Math.abs(g - ref[i])));
}

/** A seeded generator of float64 arrays in (-1, 1), and of modules whose parameters are such arrays. */
export function seededData(seed: number) {
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  /** A float64 array of the shape, and its flat data. */
  function data(shape: number[]): [mx.Array, Float64Array] {
    const v = Float64Array.from({ length: prod(shape) }, rand);
    return [mx.reshape(mx.array(v), shape), v];
  }
  /** Gives every parameter of the module float64 random values; returns them flat by path. */
  function float64Params(m: nn.Module): Map<string, Float64Array> {
    const out = new Map<string, Float64Array>();
    const pairs = (mx.treeFlatten(m.parameters()) as [string, mx.Array][]).map(([k, v]): [string, mx.Array] => {
      const [a, d] = data(v.shape);
      out.set(k, d);
      return [k, a];
    });
    m.update(mx.treeUnflatten(pairs));
    return out;
  }
  return { rand, data, float64Params };
}
