/**
 * What customFunction's rules return is checked (count, shape, dtype), with an error naming the
 * rule; dtypes that differ are cast to the value's floating dtype, as API.md allows.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { TransformError } from "@tessera/core";
import { grad, jvp, vmap } from "@tessera/transforms";
import { customFunction } from "@tessera/transforms";

type A = mx.Array;
const x = mx.array([0.5, 1, 2], "float64");

describe("customFunction rules are checked", () => {
  it("a vjp cotangent of the wrong shape is a TransformError naming the rule", () => {
    const f = customFunction((v: A) => v.sin()).vjp(() => [mx.ones([100], "float64")]);
    expect(() => grad((v: A) => f(v).sum())(x)).toThrow(TransformError);
    expect(() => grad((v: A) => f(v).sum())(x)).toThrow(/customFunction: the vjp rule returned \[100\] float64 at position 0; expected shape \[3\]/);
  });
  it("a vjp cotangent of another float dtype is cast to the primal's", () => {
    const f = customFunction((v: A) => v.sin()).vjp(([v], [ct]) => [ct.mul(v.cos()).astype("float32")]);
    const g = grad((v: A) => f(v).sum())(x);
    expect(g.dtype).toBe("float64");
    (g.tolist() as number[]).forEach((gv, i) => expect(gv).toBeCloseTo(Math.cos([0.5, 1, 2][i]), 6));
  });
  it("a vjp rule returning too few or non-Array entries is a TransformError", () => {
    const f = customFunction((a: A, b: A) => a.mul(b)).vjp(([a]) => [a] as A[]);
    expect(() => grad((v: A) => f(v, v).sum())(x)).toThrow(/the vjp rule must return one cotangent per primal \(2\)/);
    const h = customFunction((v: A) => v.exp()).vjp(() => [3 as unknown as A]);
    expect(() => grad((v: A) => h(v).sum())(x)).toThrow(/returned number at position 0; expected an Array/);
  });
  it("a jvp tangent of the wrong shape is a TransformError", () => {
    const f = customFunction((v: A) => v.sum()).jvp(([v]) => [v]);
    expect(() => jvp(f, [x], [mx.onesLike(x)])).toThrow(/the jvp rule returned \[3\] float64 at position 0; expected shape \[\]/);
  });
  it("a vmap rule with outputs of the wrong shape, dtype or axis is a TransformError", () => {
    const xs = mx.ones([4, 3], "float64");
    const wrongShape = customFunction((v: A) => v.exp()).vmap(([v]) => [[v.sum(1)], [0]]);
    expect(() => vmap(wrongShape)(xs)).toThrow(/the vmap rule returned \[4\] float64 at position 0; expected shape \[4,3\]/);
    const wrongDtype = customFunction((v: A) => v.exp()).vmap(([v], [ax]) => [[v.astype("float32")], [ax]]);
    expect(() => vmap(wrongDtype)(xs)).toThrow(/expected dtype float64/);
    const wrongAxis = customFunction((v: A) => v.exp()).vmap(([v]) => [[v], [5]]);
    expect(() => vmap(wrongAxis)(xs)).toThrow(/out axis 5/);
    const good = customFunction((v: A) => v.exp()).vmap(([v], [ax]) => [[v.exp()], [ax]]);
    expect(vmap(good)(xs).shape).toEqual([4, 3]);
  });
});
