/**
 * @file Property rows of the shape, basic indexing, matmul, where and astype ops, run by
 * properties-shape.test.ts and counted by the coverage guard (properties-coverage.test.ts).
 */
import fc from "fast-check";
import * as mx from "@tessera/core";
import { bools, broadcastPartnerArb, shapeArb, uniform, type Instance } from "./checks.js";
import type { Row } from "./rows.js";

const f64 = (shape: number[]) => uniform(shape, -2, 2);
const nonEmptyShapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });
/** A permutation of 0..n-1. */
const permArb = (n: number) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n });
const sizeOf = (s: number[]) => s.reduce((a, d) => a * d, 1);
const one = (label: string, fn: Instance["fn"], ...shapes: number[][]): Instance => ({ fn, args: shapes.map(f64), label });

/** Each op: an arbitrary of instances (function plus per-example argument shapes). */
export const SHAPE_OPS: [string, fc.Arbitrary<Instance>][] = [
  ["reshape", shapeArb.chain((s) =>
    fc.constantFrom<number[]>([...s].reverse(), [-1], [...s, 1], [1, ...s], [sizeOf(s)]).map((to) =>
      one(`reshape ${JSON.stringify(s)} -> ${JSON.stringify(to)}`, (x) => mx.reshape(x, to), s)))],
  ["flatten", nonEmptyShapeArb.map((s) => one(`flatten ${JSON.stringify(s)}`, (x) => mx.flatten(x), s))],
  ["transpose", shapeArb.chain((s) => permArb(s.length).map((p) =>
    one(`transpose ${JSON.stringify(s)} by ${JSON.stringify(p)}`, (x) => mx.transpose(x, p), s)))],
  ["transpose (default) and .T", shapeArb.map((s) => one(`T ${JSON.stringify(s)}`, (x) => mx.mul(mx.transpose(x), x.T), s))],
  ["swapaxes", nonEmptyShapeArb.chain((s) => fc.tuple(fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: -s.length, max: -1 })).map(([a, b]) =>
    one(`swapaxes ${JSON.stringify(s)} ${a} ${b}`, (x) => mx.swapaxes(x, a, b), s)))],
  ["moveaxis", nonEmptyShapeArb.chain((s) => fc.tuple(fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: 0, max: s.length - 1 })).map(([a, b]) =>
    one(`moveaxis ${JSON.stringify(s)} ${a} -> ${b}`, (x) => mx.moveaxis(x, a, b), s)))],
  ["broadcastTo", shapeArb.chain((s) => broadcastPartnerArb(s).map((small) =>
    one(`broadcastTo ${JSON.stringify(small)} -> ${JSON.stringify(s)}`, (x) => mx.broadcastTo(x, s), small)))],
  ["expandDims", shapeArb.chain((s) => fc.integer({ min: -(s.length + 1), max: s.length }).map((a) =>
    one(`expandDims ${JSON.stringify(s)} at ${a}`, (x) => mx.expandDims(x, a), s)))],
  ["squeeze", shapeArb.chain((s) => fc.integer({ min: 0, max: s.length }).chain((at) => {
    const withOne = [...s.slice(0, at), 1, ...s.slice(at)];
    return fc.constantFrom<number | undefined>(undefined, at).map((axis) =>
      one(`squeeze ${JSON.stringify(withOne)} axis ${axis}`, (x) => mx.squeeze(x, axis), withOne));
  }))],
  ["concatenate", nonEmptyShapeArb.chain((s) => fc.tuple(fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: 1, max: 3 })).map(([axis, m]) => {
    const t = s.map((d, i) => (i === axis ? m : d));
    return one(`concatenate ${JSON.stringify([s, t])} axis ${axis}`, (a, b) => mx.concatenate([a, b], axis), s, t);
  }))],
  ["concatenate (three, one of them twice)", nonEmptyShapeArb.map((s) =>
    one(`concatenate ${JSON.stringify(s)} x3`, (a, b) => mx.concatenate([a, b, a], -1), s, s))],
  ["stack", shapeArb.chain((s) => fc.integer({ min: -(s.length + 1), max: s.length }).map((axis) =>
    one(`stack ${JSON.stringify(s)} axis ${axis}`, (a, b) => mx.stack([a, mx.sin(b), a], axis), s, s)))],
  ["split (every part)", nonEmptyShapeArb.chain((s) => fc.tuple(fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: 0, max: 4 })).map(([axis, at]) =>
    // each part scaled differently and put back together, so every part's gradient is seen
    one(`split ${JSON.stringify(s)} at [${at}] axis ${axis}`, (x) => {
      const parts = mx.split(x, [at], axis);
      return mx.concatenate(parts.map((p, k) => mx.mul(p, k + 2)).reverse(), axis);
    }, s)))],
  ["split (sections)", nonEmptyShapeArb.chain((s) => fc.integer({ min: 0, max: s.length - 1 }).map((axis) =>
    one(`split ${JSON.stringify(s)} into ${s[axis]} axis ${axis}`, (x) => mx.sum(mx.stack(mx.split(x, s[axis], axis).map((p, k) => mx.mul(p, k - 1))), 0), s)))],
  ["flip", shapeArb.chain((s) => fc.option(fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, s.length - 1) }), { maxLength: s.length }), { nil: undefined }).map((axes) =>
    one(`flip ${JSON.stringify(s)} axes ${JSON.stringify(axes)}`, (x) => mx.flip(x, s.length ? axes : undefined), s)))],
];

/** A basic index entry for an axis of size n. */
const entryArb = (n: number): fc.Arbitrary<number | mx.Slice> =>
  fc.oneof(
    fc.integer({ min: -n, max: n - 1 }),
    fc.tuple(fc.option(fc.integer({ min: -n - 1, max: n + 1 })), fc.option(fc.integer({ min: -n - 1, max: n + 1 })), fc.constantFrom(1, 2, -1, -2, null))
      .map(([a, b, st]) => mx.slice(a, b, st)),
  );
const show = (e: unknown) => (e instanceof mx.Slice ? `${e.start ?? ""}:${e.stop ?? ""}:${e.step ?? ""}` : JSON.stringify(e));
export const indexArb: fc.Arbitrary<Instance> = nonEmptyShapeArb.chain((s) =>
  fc.tuple(fc.tuple(...s.map(entryArb)), fc.integer({ min: 0, max: s.length }), fc.constantFrom("none", "newaxis", "ellipsis"))
    .map(([entries, keep, extra]) => {
      const spec: mx.IndexEntry[] = entries.slice(0, keep);
      if (extra === "newaxis") spec.splice(keep >> 1, 0, null);
      if (extra === "ellipsis") spec.splice(0, 0, "...");
      // times 3 keeps an index that selects nothing (size 0) a valid, if trivial, instance
      return one(`index ${JSON.stringify(s)} [${spec.map(show).join(", ")}]`, (x) => mx.mul(x.index(...spec), 3), s);
    }));

export const matmulArb: fc.Arbitrary<Instance> = fc
  .record({ m: fc.integer({ min: 1, max: 4 }), k: fc.integer({ min: 1, max: 4 }), n: fc.integer({ min: 1, max: 4 }), b: fc.integer({ min: 1, max: 3 }),
    kind: fc.constantFrom("2d", "vec@mat", "mat@vec", "vec@vec", "batched", "batch@2d", "2d@batch", "broadcast batch") })
  .map(({ m, k, n, b, kind }) => {
    const shapes: Record<string, [number[], number[]]> = {
      "2d": [[m, k], [k, n]], "vec@mat": [[k], [k, n]], "mat@vec": [[m, k], [k]], "vec@vec": [[k], [k]],
      batched: [[b, m, k], [b, k, n]], "batch@2d": [[b, m, k], [k, n]], "2d@batch": [[m, k], [b, k, n]],
      "broadcast batch": [[b, 1, m, k], [2, k, n]],
    };
    const [sa, sb] = shapes[kind];
    return one(`matmul ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, mx.matmul, sa, sb);
  });

export const whereArb: fc.Arbitrary<Instance> = shapeArb.chain((s) =>
  fc.tuple(broadcastPartnerArb(s), broadcastPartnerArb(s), fc.integer({ min: 0, max: 2 })).map(([p, q, which]) => {
    const shapes = [s, p, q];
    [shapes[0], shapes[which]] = [shapes[which], shapes[0]];
    return {
      fn: (c: mx.Array, a: mx.Array, b: mx.Array) => mx.where(c, a, mx.mul(b, b)),
      args: [bools(shapes[0]), f64(shapes[1]), f64(shapes[2])],
      label: `where ${JSON.stringify(shapes)}`,
    };
  }));

/** float64 -> dtype -> float64: linear up to rounding, so a large step and the dtype's precision. */
export const ASTYPE: [mx.DType, number][] = [["float32", 1e-6], ["float16", 2 ** -9], ["bfloat16", 2 ** -6]];

/** float64 -> dtype -> float64, with the dtype's precision as tolerance. */
export const astypeArb = (dtype: mx.DType, tol: number): fc.Arbitrary<Instance> =>
  shapeArb.map((s): Instance => ({
    fn: (x) => mx.astype(mx.mul(mx.astype(x, dtype), 3), "float64"),
    args: [f64(s)],
    deriv: { eps: 1, atol: 8 * tol, rtol: 8 * tol, transposeRtol: 8 * tol },
    label: `astype ${dtype} on ${JSON.stringify(s)}`,
  }));
/** float32 in, float64 computation: float32 gradients. */
export const astypeUpArb: fc.Arbitrary<Instance> = shapeArb.map((s): Instance => ({
    fn: (x) => mx.sin(mx.astype(x, "float64")),
    args: [uniform(s, -2, 2, { dtype: "float32" })],
    deriv: { eps: 1e-3, atol: 5e-4, rtol: 1e-3 },
    label: `astype float32 -> float64 on ${JSON.stringify(s)}`,
  }));

export const SHAPE_ROWS: Row[] = [
  ...SHAPE_OPS.map(([name, arb]) => ({ name, arb })),
  { name: "index (integers, slices with any step, newaxis, ellipsis)", arb: indexArb, runs: 25 },
  { name: "matmul (1-D, 2-D, batched, broadcast batch)", arb: matmulArb, runs: 25 },
  { name: "where (broadcast condition and branches)", arb: whereArb },
  ...ASTYPE.map(([dtype, tol]) => ({ name: `astype float64 -> ${dtype} -> float64`, arb: astypeArb(dtype, tol) })),
  { name: "astype float32 -> float64", arb: astypeUpArb },
];
