/**
 * Property tests of the transforms over every differentiable user-level op, on random shapes
 * (up to 3 axes of sizes 1..4, broadcast operands) and values: vjp and jvp against central
 * finite differences in float64, the vjp/jvp transposition identity, and vmap(f)(xs) against
 * stacking f per example, for inAxes 0, 1 and null (second argument unmapped). The elementwise
 * ops are the rows of OPS (test/core/op-table.ts) with `grad: true`, plus composites; the rows
 * live in rows-core.ts. Shape, indexing and matmul ops: properties-shape.test.ts; gather, scatter,
 * scans, sorting, linalg, conv and pooling: properties-ops.test.ts; the guard that every
 * differentiable primitive has a row: properties-coverage.test.ts.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as mx from "@tessera/core";
import { grad, jvp, vjp } from "@tessera/transforms";
import { arrayArb, checkGrads } from "@tessera/transforms/testing";
import { assertInstances, shapeArb, uniform } from "./checks.js";
import { ELEMENTWISE, ELEMENTWISE_ROWS, REDUCTION_ROWS } from "./rows-core.js";

// ---- elementwise ----

describe("elementwise ops", () => {
  it.each(ELEMENTWISE_ROWS.map((row) => [row.name, row] as const))("%s: derivatives and vmap", (_name, row) => {
    assertInstances(row.arb);
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

describe("reductions", () => {
  it.each(REDUCTION_ROWS.map((row) => [row.name, row] as const))("%s over random axes: derivatives and vmap", (_name, row) => {
    assertInstances(row.arb);
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
