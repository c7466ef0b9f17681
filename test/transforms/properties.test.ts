/**
 * Property tests of the transforms over every differentiable user-level op, on random shapes
 * (up to 3 axes of sizes 1..4, broadcast operands) and values: vjp and jvp against central
 * finite differences in float64, the vjp/jvp transposition identity, and vmap(f)(xs) against
 * stacking f per example, for inAxes 0, 1 and null (second argument unmapped). The elementwise
 * ops are the rows of OPS (test/core/op-table.ts) with `grad: true`, plus composites.
 * Shape, indexing and matmul ops: properties-shape.test.ts.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as mx from "@tessera/core";
import { grad, jvp, vjp } from "@tessera/transforms";
import { arrayArb, checkGrads } from "@tessera/transforms/testing";
import { assertInstances, broadcastPartnerArb, shapeArb, uniform, type Fn, type Gen, type Instance } from "./checks.js";
import { OPS, labelOf, type Domain as RowDomain } from "../core/op-table.js";

// ---- elementwise ----

type Domain = [number, number, boolean?]; // [lo, hi, away from zero]
interface ElementwiseOp {
  name: string;
  fn: Fn;
  domains: Domain[];
  /** The operands differentiated (default: all); the others are drawn on `grid` when there is one. */
  gradArgs?: number[];
  grid?: number;
}

/** A row's domain as [lo, hi, away]: `{ abs: [lo, hi] }` is |x| in [lo, hi] with either sign. */
const fromRow = (d: RowDomain): Domain => (Array.isArray(d) ? [d[0], d[1]] : [d.abs[0], d.abs[1], true]);

/** Every differentiable elementwise op, with a domain where it is smooth: OPS rows, then composites. */
const ELEMENTWISE: ElementwiseOp[] = [
  ...OPS.filter((row) => row.grad).map((row): ElementwiseOp => ({
    name: labelOf(row), fn: row.fn, domains: row.domain.map(fromRow), gradArgs: row.gradArgs, grid: row.grid,
  })),
  {
    name: "a * sin(b) + b / a (a value used twice)",
    fn: (x, y) => mx.add(mx.mul(x, mx.sin(y)), mx.div(y, x)),
    domains: [[0.5, 2, true], [-2, 2]],
  },
];

/** Values of gen rounded to multiples of grid (ties: where's condition gets zeros). */
const onGrid = (gen: Gen, grid: number): Gen => (r) => {
  const v = gen(r);
  return { ...v, data: v.data.map((x) => Math.round(x / grid) * grid) };
};

/** One operand has the drawn shape, the others shapes that broadcast against it. */
const elementwiseArb = (op: ElementwiseOp): fc.Arbitrary<Instance> =>
  shapeArb.chain((shape) =>
    fc.tuple(fc.tuple(...op.domains.map(() => broadcastPartnerArb(shape))), fc.nat(op.domains.length - 1)).map(([partners, full]) => {
      const shapes = partners.map((partner, i) => (i === full ? shape : partner));
      const differentiated = op.domains.map((_, i) => op.gradArgs?.includes(i) ?? true);
      return {
        fn: op.fn,
        args: op.domains.map(([lo, hi, away], i) => {
          const gen = uniform(shapes[i], lo, hi, { away });
          return !differentiated[i] && op.grid ? onGrid(gen, op.grid) : gen;
        }),
        deriv: op.gradArgs ? { diff: differentiated } : undefined,
        label: `${op.name} on ${JSON.stringify(shapes)}`,
      };
    }),
  );

describe("elementwise ops", () => {
  it.each(ELEMENTWISE.map((op) => [op.name, op] as const))("%s: derivatives and vmap", (_name, op) => {
    assertInstances(elementwiseArb(op));
  });

  it("stopGradient has zero derivatives and still maps", () => {
    assertInstances(shapeArb.map((shape) => ({ fn: (x: mx.Array) => mx.mul(mx.stopGradient(x), 0), args: [uniform(shape, -2, 2)] })), 5);
    const x = mx.array(new Float64Array([1, -2, 3]));
    expect(grad((v: mx.Array) => mx.sum(mx.mul(mx.stopGradient(v), v)))(x).tolist()).toEqual([1, -2, 3]);
    const [, [t]] = jvp((v) => mx.stopGradient(v), [x], [mx.onesLike(x)]);
    expect(t.tolist()).toEqual([0, 0, 0]);
    const [, [ct]] = vjp((v) => mx.stopGradient(v), [x], [mx.onesLike(x)]);
    expect(ct.tolist()).toEqual([0, 0, 0]);
  });

  it("checkGrads accepts every unary op on arrayArb inputs", () => {
    const unary = ELEMENTWISE.filter((op) => op.domains.length === 1 && !op.domains[0][2]);
    for (const op of unary) {
      const [lo, hi] = op.domains[0];
      fc.assert(
        fc.property(arrayArb({ dtype: "float64", min: lo, max: hi }), (x) => {
          checkGrads((v) => op.fn(v), [x]);
        }),
        { seed: 7, numRuns: 4 },
      );
    }
  });

  it("checkGrads rejects a wrong gradient", () => {
    const wrong = (x: mx.Array) => mx.add(x, mx.stopGradient(mx.sub(mx.sin(x), x))); // value sin, slope 1
    expect(() => checkGrads(wrong, [mx.array(new Float64Array([0.5, 1]))])).toThrow(/checkGrads/);
  });
});

// ---- reductions ----

interface Reduction {
  name: string;
  fn: (x: mx.Array, axis: number | number[] | undefined, keepdims: boolean) => mx.Array;
  domain: Domain;
  /** The fewest reduced elements it is smooth for. */
  minCount?: number;
  /** softmax and logSoftmax default to the last axis, so need one. */
  minNdim?: number;
}
const R = (name: string, fn: Reduction["fn"], domain: Domain = [-2, 2], minCount = 1, minNdim = 0): Reduction =>
  ({ name, fn, domain, minCount, minNdim });
const REDUCTIONS: Reduction[] = [
  R("sum", (x, a, k) => mx.sum(x, a, { keepdims: k })),
  R("mean", (x, a, k) => mx.mean(x, a, { keepdims: k })),
  R("prod", (x, a, k) => mx.prod(x, a, { keepdims: k }), [0.5, 1.5, true]),
  R("max", (x, a, k) => mx.max(x, a, { keepdims: k })),
  R("min", (x, a, k) => mx.min(x, a, { keepdims: k })),
  R("logsumexp", (x, a, k) => mx.logsumexp(x, a, { keepdims: k }), [-3, 3]),
  R("var", (x, a, k) => mx.var(x, a, { keepdims: k })),
  R("var (ddof 1)", (x, a, k) => mx.var(x, a, { keepdims: k, ddof: 1 }), [-2, 2], 2),
  R("std", (x, a, k) => mx.std(x, a, { keepdims: k }), [-2, 2], 2),
  R("softmax", (x, a) => mx.softmax(x, a), [-3, 3], 1, 1),
  R("logSoftmax", (x, a) => mx.logSoftmax(x, a), [-3, 3], 1, 1),
];

/** undefined (every axis), one axis (maybe negative) or a list of distinct axes. */
const axisArb = (nd: number): fc.Arbitrary<number | number[] | undefined> =>
  nd === 0
    ? fc.constantFrom(undefined, [])
    : fc.oneof(
        fc.constant(undefined),
        fc.integer({ min: -nd, max: nd - 1 }),
        fc.uniqueArray(fc.integer({ min: 0, max: nd - 1 }), { maxLength: nd }),
      );

const count = (shape: number[], axis: number | number[] | undefined) => {
  const axes = axis === undefined ? shape.map((_, i) => i) : typeof axis === "number" ? [axis < 0 ? axis + shape.length : axis] : axis;
  return axes.reduce((n, a) => n * shape[a], 1);
};

describe("reductions", () => {
  it.each(REDUCTIONS.map((op) => [op.name, op] as const))("%s over random axes: derivatives and vmap", (_name, op) => {
    const arb = shapeArb
      .filter((shape) => shape.length >= (op.minNdim ?? 0))
      .chain((shape) => fc.tuple(fc.constant(shape), axisArb(shape.length), fc.boolean()))
      .filter(([shape, axis]) => count(shape, axis) >= (op.minCount ?? 1))
      .map(([shape, axis, keepdims]): Instance => {
        const [lo, hi, away] = op.domain;
        return {
          fn: (x) => op.fn(x, axis, keepdims),
          args: [uniform(shape, lo, hi, { away })],
          label: `${op.name} of ${JSON.stringify(shape)} over axis ${JSON.stringify(axis)}${keepdims ? " (keepdims)" : ""}`,
        };
      });
    assertInstances(arb);
  });

  it("max splits the gradient evenly among ties", () => {
    const x = mx.array(new Float64Array([1, 3, 3, 0, 3]));
    expect(grad((v: mx.Array) => mx.max(v))(x).tolist()).toEqual([0, 1 / 3, 1 / 3, 0, 1 / 3]);
    const [, [t]] = jvp((v) => mx.min(v), [x], [mx.array(new Float64Array([1, 2, 3, 4, 5]))]);
    expect(t.item()).toBe(4); // the single minimum, x[3]
  });

  it("prod has the product of the others as gradient, zeros included", () => {
    const g = (vals: number[]) => grad((v: mx.Array) => mx.prod(v))(mx.array(new Float64Array(vals))).tolist();
    expect(g([2, 3, 4])).toEqual([12, 8, 6]);
    expect(g([2, 0, 4])).toEqual([0, 8, 0]);
    expect(g([0, 3, 0])).toEqual([0, 0, 0]);
  });
});
