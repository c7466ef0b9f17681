/**
 * Enumerates the primitive registry and checks every rule of every primitive: the rules exist,
 * non-differentiable primitives say so with the explicit sentinels, vmap equals stacking
 * per-example results, and (differentiable ones, in float64) jvp and vjp agree with central
 * finite differences and with each other. A primitive missing from CASES fails here, so a new
 * primitive cannot go unchecked.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { jvp, vjp } from "@tessera/transforms";
import { fromMx, randomRef, rng } from "../helpers/reference.js";
import { bools, checkDerivatives, checkVmap, toArray, uniform, type Gen } from "./checks.js";

const { registry, bind1, noGradient, zeroTangent, noInputs } = mx.internal;

interface Case {
  args: Gen[];
  params?: object;
  /** Finite-difference overrides (a linear primitive in float32 wants a big step). */
  eps?: number;
  atol?: number;
}

const awayFromZero = (shape: number[], lo: number, hi: number) => uniform(shape, lo, hi, { away: true });
const ints = (shape: number[], lo: number, hi: number, dtype: mx.DType = "int32"): Gen => (r) => ({
  shape,
  dtype,
  data: randomRef(shape, r, lo, hi + 1).data.map(Math.floor),
});
/** Small integers as floats, so comparisons see ties. */
const tied = (shape: number[]): Gen => (r) => ({ ...ints(shape, -1, 1)(r), dtype: "float64" });
/** Floats with a NaN, an inf and a -inf mixed in. */
const special: Gen = (r) => {
  const v = uniform([2, 3], -2, 2)(r);
  v.data[0] = NaN, v.data[2] = Infinity, v.data[4] = -Infinity;
  return v;
};
/** A fixed value with zeros in it (prod's gradient where x_i = 0). */
const withZeros = (zeros: number): Gen => (r) => {
  const v = uniform([3, 4], 0.5, 1.5)(r);
  for (let k = 0; k < zeros; k++) v.data[4 + k] = 0; // row 1 gets `zeros` zeros
  return v;
};

const S = [2, 3];
const un = (lo: number, hi: number): Case[] => [{ args: [uniform(S, lo, hi)] }];
const bin = (a: Gen, b: Gen): Case[] => [{ args: [a, b] }];
const f = (lo = -2, hi = 2) => uniform(S, lo, hi);

/** Every primitive with inputs: how to build them. null marks the primitives that take none. */
const CASES: Record<string, Case[] | null> = {
  neg: un(-2, 2), abs: [{ args: [awayFromZero(S, 0.2, 2)] }], sign: [{ args: [awayFromZero(S, 0.2, 2)] }],
  sqrt: un(0.2, 3), rsqrt: un(0.2, 3), exp: un(-2, 2), expm1: un(-2, 2), log: un(0.2, 3), log1p: un(-0.5, 2),
  log2: un(0.2, 3), log10: un(0.2, 3), sin: un(-3, 3), cos: un(-3, 3), tan: un(-1.2, 1.2),
  arcsin: un(-0.9, 0.9), arccos: un(-0.9, 0.9), arctan: un(-3, 3), sinh: un(-2, 2), cosh: un(-2, 2),
  tanh: un(-2, 2), arcsinh: un(-3, 3), arccosh: un(1.2, 3), arctanh: un(-0.9, 0.9), sigmoid: un(-3, 3),
  erf: un(-2, 2), erfinv: un(-0.9, 0.9), floor: un(-3, 3), ceil: un(-3, 3), round: un(-3, 3),
  logicalNot: [{ args: [bools(S)] }], isnan: [{ args: [special] }], isinf: [{ args: [special] }],
  add: bin(f(), f()), sub: bin(f(), f()), mul: bin(f(), f()), div: bin(f(), awayFromZero(S, 0.3, 2)),
  pow: bin(f(0.2, 2), f()), maximum: bin(f(), f()), minimum: bin(f(), f()),
  arctan2: bin(f(), awayFromZero(S, 0.3, 2)), remainder: bin(f(-3, 3), awayFromZero(S, 0.5, 2)),
  floorDivide: [{ args: [f(-3, 3), awayFromZero(S, 0.5, 2)] }, { args: [ints(S, -20, 20), ints(S, 1, 5)] }],
  logaddexp: bin(f(), f()),
  divmod: [{ args: [f(-3, 3), awayFromZero(S, 0.5, 2)] }],
  logicalAnd: bin(bools(S), bools(S)), logicalOr: bin(bools(S), bools(S)),
  bitwiseAnd: bin(ints(S, -50, 50), ints(S, -50, 50)), bitwiseOr: bin(ints(S, -50, 50), ints(S, -50, 50)),
  bitwiseXor: bin(ints(S, -50, 50), ints(S, -50, 50)),
  leftShift: bin(ints(S, 0, 100), ints(S, 0, 5)), rightShift: bin(ints(S, 0, 100), ints(S, 0, 5)),
  equal: bin(tied(S), tied(S)), notEqual: bin(tied(S), tied(S)), less: bin(tied(S), tied(S)),
  lessEqual: bin(tied(S), tied(S)), greater: bin(tied(S), tied(S)), greaterEqual: bin(tied(S), tied(S)),
  where: [{ args: [bools(S), f(), f()] }],
  cast: [
    { args: [f()], params: { dtype: "float32" }, eps: 0.25, atol: 1e-5 },
    { args: [uniform(S, -2, 2, { dtype: "float32" })], params: { dtype: "float64" }, eps: 0.25, atol: 1e-5 },
    { args: [f(-5, 5)], params: { dtype: "int32" } },
  ],
  identity: un(-2, 2), stopGradient: un(-2, 2), copy: un(-2, 2), transfer: un(-2, 2),
  reduceSum: [{ args: [uniform([3, 4], -2, 2)], params: { axes: [1] } }, { args: [uniform([3, 4], -2, 2)], params: { axes: [0, 1] } }],
  reduceProd: [
    { args: [awayFromZero([3, 4], 0.5, 1.5)], params: { axes: [1] } },
    { args: [withZeros(1)], params: { axes: [1] } },
    { args: [withZeros(2)], params: { axes: [1] } },
    { args: [awayFromZero([2, 3], 0.5, 1.5)], params: { axes: [0, 1] } },
  ],
  reduceMax: [{ args: [uniform([3, 4], -2, 2)], params: { axes: [1] } }, { args: [uniform([3, 4], -2, 2)], params: { axes: [0, 1] } }],
  reduceMin: [{ args: [uniform([3, 4], -2, 2)], params: { axes: [0] } }, { args: [uniform([3, 4], -2, 2)], params: { axes: [0, 1] } }],
  argmax: [{ args: [uniform([3, 4], -2, 2)], params: { axis: 1 } }, { args: [uniform([3, 4], -2, 2)], params: { axis: 0 } }],
  argmin: [{ args: [uniform([3, 4], -2, 2)], params: { axis: 1 } }, { args: [uniform([3, 4], -2, 2)], params: { axis: 0 } }],
  broadcastTo: [{ args: [uniform([3, 1], -2, 2)], params: { shape: [2, 3, 4] } }],
  reshape: [{ args: [f()], params: { shape: [3, 2] } }, { args: [f()], params: { shape: [6] } }],
  transpose: [{ args: [uniform([2, 3, 4], -2, 2)], params: { perm: [2, 0, 1] } }],
  slice: [
    { args: [uniform([5, 4], -2, 2)], params: { start: [1, 3], step: [2, -1], shape: [2, 3] } },
    { args: [uniform([5, 4], -2, 2)], params: { start: [0, 1], step: [1, 1], shape: [5, 2] } },
  ],
  sliceUpdate: [{ args: [uniform([4, 5], -2, 2), uniform([2, 3], -2, 2)], params: { start: [0, 1], step: [2, 1], shape: [2, 3] } }],
  concatenate: [
    { args: [uniform([2, 3], -2, 2), uniform([1, 3], -2, 2), uniform([3, 3], -2, 2)], params: { axis: 0 } },
    { args: [uniform([2, 1], -2, 2), uniform([2, 3], -2, 2)], params: { axis: 1 } },
  ],
  matmul: [
    { args: [uniform([2, 3], -2, 2), uniform([3, 4], -2, 2)] },
    { args: [uniform([2, 2, 3], -2, 2), uniform([2, 3, 2], -2, 2)] },
  ],
  full: null, arange: null, placeholder: null,
};

/** The primitives whose rules are the explicit non-differentiable sentinels. */
const NON_DIFFERENTIABLE = new Set([
  "equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual",
  "logicalNot", "logicalAnd", "logicalOr",
  "bitwiseAnd", "bitwiseOr", "bitwiseXor", "leftShift", "rightShift",
  "argmax", "argmin", "floor", "ceil", "round", "sign", "floorDivide", "isnan", "isinf",
  "stopGradient", "full", "arange", "placeholder",
]);
const NO_INPUTS = new Set(["full", "arange", "placeholder"]);

const names = [...registry.keys()];
const B = 3;

describe("the primitive registry", () => {
  it("has an input builder for every primitive, and no stale ones", () => {
    expect(names.filter((n) => !(n in CASES))).toEqual([]);
    expect(Object.keys(CASES).filter((n) => !registry.has(n))).toEqual([]);
  });

  it.each(names)("%s: has every rule, with sentinels exactly where it is not differentiable", (name) => {
    const def = registry.get(name)!;
    expect(def.name).toBe(name);
    for (const rule of ["abstractEval", "encode", "jvp", "vjp", "vmap"] as const) expect(typeof def[rule]).toBe("function");
    expect(def.vjp === noGradient, "vjp is noGradient").toBe(NON_DIFFERENTIABLE.has(name));
    expect(def.jvp === zeroTangent, "jvp is zeroTangent").toBe(NON_DIFFERENTIABLE.has(name));
    expect(def.vmap === noInputs, "vmap is noInputs").toBe(NO_INPUTS.has(name));
    expect(CASES[name] === null).toBe(NO_INPUTS.has(name));
  });

  it("noInputs refuses to batch", () => {
    expect(() => noInputs([], [], {}, 2)).toThrow(/without inputs/);
  });
});

const withInputs = names.filter((n) => CASES[n]);
describe.each(withInputs)("%s", (name) => {
  const def = registry.get(name)!;
  const cases = CASES[name]!;
  const call = (params: object) => (...xs: mx.Array[]) => bind1(def, xs, params);

  it.each(cases.map((c, i) => [i, c] as const))("case %i: vmap equals stacking per-example results", (i, c) => {
    const r = rng(100 + i);
    const examples = [...Array(B)].map(() => c.args.map((g) => g(r)));
    const fn = call(c.params ?? {});
    const n = c.args.length;
    const nd = examples[0][0].shape.length;
    const all = (ax: number | null) => new Array<number | null>(n).fill(ax);
    checkVmap(fn, examples, all(0));
    checkVmap(fn, examples, all(-1)); // the batch axis last (negative: counted from the end)
    if (nd >= 2) checkVmap(fn, examples, all(1));
    checkVmap(fn, examples, all(0), { outAxis: -1 });
    for (let k = 0; k < n && n > 1; k++) {
      // One argument mapped, the others shared; and one shared, the others mapped.
      checkVmap(fn, examples, all(null).map((_, j) => (j === k ? 0 : null)));
      checkVmap(fn, examples, all(0).map((_, j) => (j === k ? null : j % 2 === 0 ? 0 : 1)));
    }
  });

  if (NON_DIFFERENTIABLE.has(name)) {
    it.each(cases.map((c, i) => [i, c] as const))("case %i: jvp and vjp are zero", (i, c) => {
      const r = rng(200 + i);
      const xs = c.args.map((g) => toArray(g(r)));
      const fn = call(c.params ?? {});
      const [[out], [tan]] = jvp(fn, xs, xs.map((x) => mx.onesLike(x)));
      expect(tan.shape).toEqual(out.shape);
      expect([...fromMx(tan).data].every((v) => v === 0)).toBe(true);
      const [, cts] = vjp(fn, xs, [mx.onesLike(out)]);
      cts.forEach((ct, k) => {
        expect(ct.shape).toEqual(xs[k].shape);
        expect([...fromMx(ct).data].every((v) => v === 0)).toBe(true);
      });
    });
  } else {
    it.each(cases.map((c, i) => [i, c] as const))("case %i: jvp and vjp match finite differences", (i, c) => {
      const fn = call(c.params ?? {});
      for (let trial = 0; trial < 3; trial++) {
        const r = rng(300 + 10 * i + trial);
        const xs = c.args.map((g) => toArray(g(r)));
        checkDerivatives(fn, xs, { seed: trial + 1, eps: c.eps, atol: c.atol, elementwiseVjp: trial === 0 });
      }
    });
  }
});
