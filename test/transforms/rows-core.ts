/**
 * @file Property rows of the elementwise ops and reductions, run by properties.test.ts and counted
 * by the coverage guard (properties-coverage.test.ts). The elementwise ops are the rows of OPS
 * (test/core/op-table.ts) with `grad: true`, plus composites.
 */
import fc from "fast-check";
import * as mx from "@tessera/core";
import { broadcastPartnerArb, shapeArb, uniform, type Fn, type Gen, type Instance } from "./checks.js";
import { OPS, labelOf, type Domain as RowDomain } from "../core/op-table.js";
import type { Row } from "./rows.js";

// ---- elementwise ----

type Domain = [number, number, boolean?]; // [lo, hi, away from zero]
export interface ElementwiseOp {
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
export const ELEMENTWISE: ElementwiseOp[] = [
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

/** Instances of a reduction over random shapes and axes (maybe negative, a list, or all). */
const reductionArb = (op: Reduction): fc.Arbitrary<Instance> =>
  shapeArb
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

export const ELEMENTWISE_ROWS: Row[] = ELEMENTWISE.map((op) => ({ name: op.name, arb: elementwiseArb(op) }));
export const REDUCTION_ROWS: Row[] = REDUCTIONS.map((op) => ({ name: op.name, arb: reductionArb(op) }));
