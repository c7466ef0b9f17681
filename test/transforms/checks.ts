/**
 * @file Checks shared by the transform tests: derivatives against central finite differences
 * computed in plain JS (float64), the vjp/jvp transposition identity, and vmap against stacking
 * per-example results in JS. Only the function under test runs in tessera.
 */
import * as mx from "@tessera/core";
import { jvp, vjp, vmap } from "@tessera/transforms";
import { expect } from "vitest";
import fc from "fast-check";
import { fromMx, randomRef, rng, sizeOf, strides, unravel, type Ref } from "../helpers/reference.js";

export type Fn = (...xs: mx.Array[]) => mx.Array;

/** A host-side value with the dtype its tessera array gets. */
export interface Val extends Ref {
  dtype: mx.DType;
}

export function toArray(v: Val): mx.Array {
  return mx.reshape(mx.array(v.data, v.dtype === "float64" ? undefined : v.dtype), v.shape);
}

/** Makes a host value from a seeded generator. */
export type Gen = (r: () => number) => Val;

/** Uniform values in [lo, hi]; with `away`, |x| in [lo, hi] with a random sign (away from zero). */
export const uniform = (shape: number[], lo: number, hi: number, { dtype = "float64", away = false }: { dtype?: mx.DType; away?: boolean } = {}): Gen =>
  (r) => {
    const { data } = randomRef(shape, r, lo, hi);
    return { shape, dtype, data: away ? data.map((v) => (r() < 0.5 ? -v : v)) : data };
  };
export const bools = (shape: number[]): Gen => (r) => ({ shape, dtype: "bool", data: randomRef(shape, r, 0, 1).data.map((v) => (v < 0.5 ? 0 : 1)) });

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i], 0);

/** Fails unless every element of `got` is within atol + rtol * |want| (NaN matches NaN, inf itself). */
export function expectAllClose(got: Float64Array, want: Float64Array, atol: number, rtol: number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const a = got[i], e = want[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) expect.fail(`${what}: element ${i}: expected ${e}, got ${a} (diff ${Math.abs(a - e)})`);
  }
}

export interface DerivOptions {
  /** Which inputs get a random direction (default: the floating ones). */
  diff?: boolean[];
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
  /** Tolerance of the exact transposition identity (default: by the dtypes involved). */
  transposeRtol?: number;
  /** Also compare every element of the vjp with a finite difference of <v, fn> (2 calls per element). */
  elementwiseVjp?: boolean;
}

/**
 * Checks fn's jvp and vjp at `xs` against central finite differences along random directions u
 * (per differentiated input) and v (output cotangent): jvp(u) ~ fd(u), <v, fd(u)> ~ <vjp(v), u>,
 * and the exact transposition <v, jvp(u)> = <vjp(v), u>. Inputs not differentiated get zero
 * tangents, and their cotangents are not checked here.
 */
export function checkDerivatives(fn: Fn, xs: mx.Array[], options: DerivOptions = {}): void {
  const { eps = 1e-6, atol = 1e-7, rtol = 1e-6, seed = 1 } = options;
  const diff = options.diff ?? xs.map((x) => mx.isFloating(x.dtype));
  const next = rng(seed);
  const xRefs = xs.map(fromMx);
  const us = xs.map((x, i) => (diff[i] ? randomRef(x.shape, next, -1, 1) : null));
  const shifted = (s: number) =>
    xs.map((x, i) => {
      const u = us[i];
      if (!u) return x;
      return toArray({ shape: x.shape, dtype: x.dtype, data: xRefs[i].data.map((v, k) => v + s * eps * u.data[k]) });
    });
  const fp = fromMx(fn(...shifted(1))).data;
  const fm = fromMx(fn(...shifted(-1))).data;
  const fd = fp.map((p, k) => (p - fm[k]) / (2 * eps));

  const tangents = xs.map((x, i) => (us[i] ? toArray({ ...us[i]!, dtype: x.dtype }) : mx.zerosLike(x)));
  const [[out], [tan]] = jvp(fn, xs, tangents);
  expect(tan.shape).toEqual(out.shape);
  const t = fromMx(tan).data;
  expectAllClose(t, fd, atol, rtol, "jvp vs finite differences");

  const v = randomRef(out.shape, next, -1, 1);
  const [[out2], cts] = vjp(fn, xs, [toArray({ ...v, dtype: out.dtype })]);
  expect(out2.shape).toEqual(out.shape);
  expect(cts.map((c) => c.shape)).toEqual(xs.map((x) => x.shape));
  const vjpDotU = cts.reduce((s, c, i) => (us[i] ? s + dot(fromMx(c).data, us[i]!.data) : s), 0);
  const vDotFd = dot(v.data, fd);
  const vDotJvp = dot(v.data, t);
  const scale = Math.max(1, Math.abs(vDotFd));
  if (options.elementwiseVjp) {
    xs.forEach((x, i) => {
      if (!diff[i]) return;
      const fdGrad = new Float64Array(x.size);
      for (let k = 0; k < x.size; k++) {
        const at = (s: number) => {
          const data = xRefs[i].data.slice();
          data[k] += s * eps;
          const ys = xs.map((y, j) => (j === i ? toArray({ shape: x.shape, dtype: x.dtype, data }) : y));
          return dot(v.data, fromMx(fn(...ys)).data);
        };
        fdGrad[k] = (at(1) - at(-1)) / (2 * eps);
      }
      expectAllClose(fromMx(cts[i]).data, fdGrad, atol * Math.max(1, v.data.length), rtol, `vjp of input ${i} vs finite differences`);
    });
  }
  expect(Math.abs(vjpDotU - vDotFd), `<vjp(v), u> = ${vjpDotU} vs <v, fd(u)> = ${vDotFd}`).toBeLessThanOrEqual(
    atol * fd.length + rtol * scale,
  );
  // Both sides are exact up to rounding: in the precision of the least precise dtype involved.
  const f64 = [...xs, out].every((a) => !mx.isFloating(a.dtype) || a.dtype === "float64");
  const mag = v.data.reduce((s, x, k) => s + Math.abs(x * t[k]), 0);
  expect(Math.abs(vjpDotU - vDotJvp), `<vjp(v), u> = ${vjpDotU} vs <v, jvp(u)> = ${vDotJvp}`).toBeLessThanOrEqual(
    (options.transposeRtol ?? (f64 ? 1e-12 : 1e-6)) * (1 + mag),
  );
}

/** Stacks host values along a new axis. */
export function stackRefs(refs: Ref[], axis: number): Ref {
  const inner = refs[0].shape;
  const shape = [...inner.slice(0, axis), refs.length, ...inner.slice(axis)];
  const data = new Float64Array(sizeOf(shape));
  const st = strides(inner);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    const b = idx[axis];
    idx.splice(axis, 1);
    data[i] = refs[b].data[idx.reduce((o, d, k) => o + d * st[k], 0)];
  }
  return { shape, data };
}

export interface VmapOptions {
  atol?: number;
  rtol?: number;
  /** Output batch axis (default 0). */
  outAxis?: number;
}

/**
 * Checks vmap(fn, { inAxes }) on `examples` (one argument list per example; an unmapped
 * argument is taken from the first example) against fn applied per example and stacked in JS.
 */
export function checkVmap(fn: Fn, examples: Val[][], inAxes: (number | null)[], options: VmapOptions = {}): void {
  const { atol = 1e-12, rtol = 1e-12, outAxis = 0 } = options;
  const args = inAxes.map((ax, i) => {
    if (ax === null) return toArray(examples[0][i]);
    const nd = examples[0][i].shape.length + 1;
    const stacked = stackRefs(examples.map((ex) => ex[i]), ax < 0 ? ax + nd : ax);
    return toArray({ ...stacked, dtype: examples[0][i].dtype });
  });
  const perExample = examples.map((ex) => fromMx(fn(...ex.map((v, i) => (inAxes[i] === null ? args[i] : toArray(v))))));
  const want = stackRefs(perExample, 0);
  const got = vmap(fn, { inAxes: inAxes as any, outAxes: outAxis })(...args) as mx.Array;
  const gotRef = fromMx(outAxis === 0 ? got : mx.moveaxis(got, outAxis, 0));
  expect(gotRef.shape, `vmap inAxes ${JSON.stringify(inAxes)}: shape`).toEqual(want.shape);
  expectAllClose(gotRef.data, want.data, atol, rtol, `vmap inAxes ${JSON.stringify(inAxes)}`);
}

// ---- property-test plumbing ----

/** One instance of a property: a function and generators of its arguments (per example). */
export interface Instance {
  fn: Fn;
  args: Gen[];
  deriv?: DerivOptions;
  /** Says what was drawn (shapes, axes), for failure reports. */
  label?: string;
}

export const FC = { seed: 42, numRuns: 20 };
export const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 });

/** A shape that broadcasts against `shape`: leading axes dropped, some axes set to 1. */
export const broadcastPartnerArb = (shape: number[]) =>
  fc
    .record({ drop: fc.integer({ min: 0, max: shape.length }), ones: fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }) })
    .map(({ drop, ones }) => shape.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

/**
 * Runs every check on one instance: derivatives at one random point, then vmap with every
 * argument on axis 0, on axis 1 (when every example has an axis), and with the second
 * argument unmapped. The batch size is 1 to 3.
 */
export function checkInstance({ fn, args, deriv }: Instance, seed: number, batch: number): void {
  const r = rng(seed);
  checkDerivatives(fn, args.map((g) => toArray(g(r))), { seed, ...deriv });
  const examples = [...Array(batch)].map(() => args.map((g) => g(r)));
  const n = args.length;
  checkVmap(fn, examples, new Array(n).fill(0));
  if (examples[0].every((v) => v.shape.length >= 1)) checkVmap(fn, examples, new Array(n).fill(1));
  checkVmap(fn, examples, new Array(n).fill(-1));
  if (n >= 2) checkVmap(fn, examples, [0, null, ...new Array(n - 2).fill(0)]);
}

/** fc.assert over instances drawn by `arb`. */
export function assertInstances(arb: fc.Arbitrary<Instance>, numRuns = FC.numRuns): void {
  fc.assert(
    fc.property(
      arb.map((inst) => Object.assign(inst, { [fc.toStringMethod]: () => inst.label ?? "instance" })),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.integer({ min: 1, max: 3 }),
      (inst, seed, batch) => checkInstance(inst, seed, batch),
    ),
    { ...FC, numRuns },
  );
}

