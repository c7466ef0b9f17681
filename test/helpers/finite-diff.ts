/**
 * @file Gradients of a layer against an independent reference: tessera's autodiff (grad for the
 * inputs, nn.valueAndGrad for the parameters) of `sum(forward(...) * c)`, compared with central
 * differences in float64 of the test's own plain-loop forward. Nothing here runs layer code to
 * compute an expectation.
 */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { grad } from "@tessera/transforms";
import { expect } from "vitest";
import { flat, seededData } from "./nn.js";

/** A float64 reference of a layer: flat inputs and parameters by path to the flat output. */
export type Reference = (xs: Float64Array[], p: Map<string, Float64Array>) => number[];

/** d/dv of f at v, each entry by a central difference with step eps (v is restored). */
function centralDiff(f: () => number, v: Float64Array, eps: number): number[] {
  return Array.from(v, (_, j) => {
    const v0 = v[j];
    v[j] = v0 + eps;
    const up = f();
    v[j] = v0 - eps;
    const down = f();
    v[j] = v0;
    return (up - down) / (2 * eps);
  });
}

/**
 * Expects the gradients of `sum(forward(...xs) * c)` (c fixed seeded weights) with respect to each
 * of `inputs` and to every trainable parameter of `m` to match central differences of
 * `sum(ref(...) * c)` within `tol`. `inputs` pairs each tessera input with its flat float64 data;
 * `params` are the module's parameters' flat data (as set by `float64Params`).
 */
export function expectGradsMatchReference(
  m: nn.Module, params: Map<string, Float64Array>, inputs: [mx.Array, Float64Array][],
  forward: (...xs: mx.Array[]) => mx.Array, ref: Reference, tol = 1e-7,
): void {
  const xs = inputs.map(([a]) => a);
  const y0 = forward(...xs);
  const [c, cv] = seededData(y0.size + 101).data([y0.size]);
  const loss = (...a: mx.Array[]) => mx.sum(mx.mul(mx.reshape(forward(...a), [-1]), c));
  const refLoss = () => ref(inputs.map(([, v]) => v), params).reduce((s, y, i) => s + y * cv[i], 0);

  const argnums = inputs.map((_, i) => i);
  const gx = grad(loss, { argnums })(...xs) as unknown as mx.Array[];
  const [, gp] = nn.valueAndGrad(m, loss)(...xs);
  const got: [string, mx.Array][] = [
    ...gx.map((g, i): [string, mx.Array] => [`input ${i}`, g]),
    ...(mx.treeFlatten(gp) as [string, mx.Array][]),
  ];
  const want = new Map<string, Float64Array>([...inputs.map(([, v], i): [string, Float64Array] => [`input ${i}`, v]), ...params]);
  expect(got.map(([k]) => k).sort()).toEqual([...want.keys()].sort());
  for (const [k, g] of got) {
    const fd = centralDiff(refLoss, want.get(k)!, 1e-6);
    const err = Math.max(0, ...flat(g).map((v, j) => Math.abs(v - fd[j])));
    expect(err, `gradient of ${k}`).toBeLessThan(tol);
  }
}
