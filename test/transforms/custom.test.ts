/**
 * customFunction (user rules override, rules not set are derived from fn) and checkpoint (same
 * gradients, lower peak memory), checked against hand-derived values.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { checkpoint, customFunction, grad, jvp, valueAndGrad, vjp, vmap } from "@tessera/transforms";
import { fromMx } from "../helpers/reference.js";
import { expectAllClose } from "./checks.js";

type A = mx.Array;
const f64 = (data: number | number[] | number[][]) => mx.array(data, "float64");
function expectValues(x: A, shape: number[], want: number[], tol = 1e-12): void {
  expect(x.shape).toEqual(shape);
  expectAllClose(fromMx(x).data, Float64Array.from(want), tol, tol, "values");
}
const xs = [0.3, -1.2, 2];
const x = f64(xs);

describe("customFunction", () => {
  it("a .vjp rule is used by grad and vjp; jvp and vmap are derived from fn", () => {
    let calls = 0;
    const f = customFunction((v: A) => mx.sin(v)).vjp(([v], [ct]) => (calls++, [mx.mul(ct, mx.mul(v, 2))]));
    expectValues(f(x), [3], xs.map(Math.sin));
    expectValues(grad((v: A) => mx.sum(f(v)))(x), [3], xs.map((v) => 2 * v));
    expect(calls).toBe(1);
    const [[y], [ct]] = vjp(f, [x], [f64([1, 2, 3])]);
    expectValues(y, [3], xs.map(Math.sin));
    expectValues(ct, [3], xs.map((v, i) => 2 * v * (i + 1)));
    const [, [t]] = jvp(f, [x], [f64([1, 1, 1])]);
    expectValues(t, [3], xs.map(Math.cos));
    expectValues(vmap(f)(f64([xs, xs.map((v) => v + 1)])), [2, 3], [...xs, ...xs.map((v) => v + 1)].map(Math.sin));
  });

  it("a .vjp rule gets the outputs, and is itself differentiable (grad of grad)", () => {
    const f = customFunction((v: A) => mx.exp(v)).vjp(([, ], [ct], [y]) => [mx.mul(ct, y)]);
    expectValues(grad((v: A) => mx.sum(f(v)))(x), [3], xs.map(Math.exp));
    // a rule written with sin: g' = 2 cos(x), so g'' = -2 sin(x)
    const g = customFunction((v: A) => mx.sin(v)).vjp(([v], [ct]) => [mx.mul(ct, mx.mul(mx.cos(v), 2))]);
    expectValues(grad(grad(g))(f64(0.7)), [], [-2 * Math.sin(0.7)]);
  });

  it("a .jvp rule is used by jvp; vjp is derived from fn", () => {
    const f = customFunction((v: A) => mx.exp(v)).jvp(([v], [t]) => [mx.mul(t, 3)]);
    const [[y], [t]] = jvp(f, [x], [f64([1, 2, 3])]);
    expectValues(y, [3], xs.map(Math.exp));
    expectValues(t, [3], [3, 6, 9]);
    expectValues(grad((v: A) => mx.sum(f(v)))(x), [3], xs.map(Math.exp));
  });

  it("a .vmap rule is used by vmap only", () => {
    const f = customFunction((v: A) => mx.sin(v)).vmap(([v], [ax]) => [[mx.add(mx.sin(v), 1)], [ax]]);
    const batch = f64([xs, xs]);
    expectValues(vmap(f)(batch), [2, 3], [...xs, ...xs].map((v) => Math.sin(v) + 1));
    expectValues(vmap(f, { inAxes: 1, outAxes: 1 })(mx.transpose(batch)), [3, 2], xs.flatMap((v) => [Math.sin(v) + 1, Math.sin(v) + 1]));
    expectValues(f(x), [3], xs.map(Math.sin));
    expectValues(grad((v: A) => mx.sum(f(v)))(x), [3], xs.map(Math.cos));
  });

  it("several inputs and outputs: the rule is called once with every cotangent", () => {
    // f(a, b) = [a b, a + b] with a vjp that scales the true one by 10
    let calls = 0;
    const f = customFunction((a: A, b: A) => [mx.mul(a, b), mx.add(a, b)]).vjp(([a, b], [c0, c1]) => (calls++, [
      mx.mul(mx.add(mx.mul(c0, b), c1), 10),
      mx.mul(mx.add(mx.mul(c0, a), c1), 10),
    ]));
    const a = f64([1, 2]), b = f64([3, 4]);
    const [outs, [ga, gb]] = vjp(f, [a, b], [f64([1, 1]), f64([2, 2])]);
    expect(calls).toBe(1);
    // both outputs come from one node
    expect(outs[0].node).not.toBeNull();
    expect(outs[0].node).toBe(outs[1].node);
    expectValues(outs[0], [2], [3, 8]);
    expectValues(outs[1], [2], [4, 6]);
    expectValues(ga, [2], [50, 60]);
    expectValues(gb, [2], [30, 40]);
    // only the first output used: its cotangent alone
    expectValues(grad((p: A, q: A) => mx.sum(f(p, q)[0]))(a, b), [2], [30, 40]);
  });

  it("composes with vmap: per-example gradients through a custom rule", () => {
    const f = customFunction((v: A) => mx.square(v)).vjp(([v], [ct]) => [mx.mul(ct, mx.add(v, 1))]);
    const g = vmap(grad((v: A) => mx.sum(f(v))))(f64([xs, xs.map((v) => -v)]));
    expectValues(g, [2, 3], [...xs, ...xs.map((v) => -v)].map((v) => v + 1));
    const [, [t]] = vmap((u: A) => jvp(f, [x], [u]))(mx.eye(3, undefined, 0, "float64"));
    expectValues(t, [3, 3], [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => (i === j ? 2 * xs[i] : 0))));
  });
});

describe("checkpoint", () => {
  // block(x) = tanh(x sin x + cos(x) / 2);  block'(x) = (1 - y^2)(sin x + x cos x - sin(x) / 2)
  const block = (v: A) => mx.tanh(mx.add(mx.mul(v, mx.sin(v)), mx.mul(mx.cos(v), 0.5)));
  const blockRef = (v: number) => Math.tanh(v * Math.sin(v) + Math.cos(v) / 2);
  const blockDeriv = (v: number) => (1 - blockRef(v) ** 2) * (Math.sin(v) + v * Math.cos(v) - Math.sin(v) / 2);
  const chain = (b: (v: A) => A, depth: number) => (v: A) => {
    for (let i = 0; i < depth; i++) v = b(v);
    return mx.sum(v);
  };
  const chainGradRef = (v: number, depth: number) => {
    let g = 1;
    for (let i = 0; i < depth; i++) (g *= blockDeriv(v)), (v = blockRef(v));
    return g;
  };

  it("gives the same values and gradients as the function itself", () => {
    const ck = checkpoint(block);
    expectValues(ck(x), [3], xs.map(blockRef));
    const [val, g] = valueAndGrad(chain(ck, 4))(x);
    expectValues(val, [], [xs.reduce((s, v) => s + [0, 1, 2, 3].reduce(blockRef, v), 0)]);
    expectValues(g, [3], xs.map((v) => chainGradRef(v, 4)));
    const [, [t]] = jvp(ck, [x], [f64([1, 1, 1])]);
    expectValues(t, [3], xs.map(blockDeriv));
    expectValues(vmap(ck)(f64([xs, xs])), [2, 3], [...xs, ...xs].map(blockRef));
  });

  it("sends gradients to values the function closes over", () => {
    // layer(v) = tanh(w v + c) with w and c captured; loss = sum(layer(layer(x)))
    const loss = (w: A, c: A, v: A) => {
      const layer = checkpoint((u: A) => mx.tanh(mx.add(mx.mul(w, u), c)));
      return mx.sum(layer(layer(v)));
    };
    const plain = (w: A, c: A, v: A) => {
      const layer = (u: A) => mx.tanh(mx.add(mx.mul(w, u), c));
      return mx.sum(layer(layer(v)));
    };
    const w = f64(0.8), c = f64([0.1, -0.2, 0.3]);
    const [gw, gc, gv] = grad(loss, { argnums: [0, 1, 2] })(w, c, x);
    // reference: y1 = tanh(w x + c), y2 = tanh(w y1 + c)
    const cs = [0.1, -0.2, 0.3];
    let rw = 0;
    const rc: number[] = [], rv: number[] = [];
    xs.forEach((v, i) => {
      const y1 = Math.tanh(0.8 * v + cs[i]), y2 = Math.tanh(0.8 * y1 + cs[i]);
      const d2 = 1 - y2 * y2, d1 = 1 - y1 * y1;
      rw += d2 * (y1 + 0.8 * d1 * v);
      rc.push(d2 * (1 + 0.8 * d1));
      rv.push(d2 * 0.8 * d1 * 0.8);
    });
    expectValues(gw, [], [rw]);
    expectValues(gc, [3], rc);
    expectValues(gv, [3], rv);
    const [pw, pc, pv] = grad(plain, { argnums: [0, 1, 2] })(w, c, x);
    expectValues(pw, [], [rw]);
    expectValues(pc, [3], rc);
    expectValues(pv, [3], rv);
  });

  it("composes: grad of grad, and vmap of grad", () => {
    const ck = checkpoint((v: A) => mx.mul(v, mx.sin(v)));
    // (x sin x)'' = 2 cos x - x sin x
    expectValues(grad(grad(ck))(f64(0.7)), [], [2 * Math.cos(0.7) - 0.7 * Math.sin(0.7)]);
    expectValues(vmap(grad(ck))(x), [3], xs.map((v) => Math.sin(v) + v * Math.cos(v)));
  });

  it("keeps the gradient and lowers peak memory on a deep chain (30 blocks on 1M floats)", () => {
    const N = 1 << 20, DEPTH = 30, MB = 4 * N;
    const data = new Float32Array(N);
    for (let i = 0; i < N; i++) data[i] = 2 * Math.sin(i);
    const input = mx.array(data);
    const peakOf = (f: (v: A) => A): [number, Float32Array] => {
      const g = grad(f)(input);
      const base = mx.getActiveMemory();
      mx.resetPeakMemory();
      mx.eval(g);
      const peak = mx.getPeakMemory() - base;
      return [peak, g.toTypedArray() as Float32Array];
    };
    const [plainPeak, plain] = peakOf(chain(block, DEPTH));
    const [ckPeak, ck] = peakOf(chain(checkpoint(block), DEPTH));
    // Without checkpoint the backward pass keeps about two values per block (a block's input
    // and its tanh output); with it, only each block's input.
    expect(plainPeak).toBeGreaterThan(1.5 * DEPTH * MB);
    expect(ckPeak).toBeLessThan(0.75 * plainPeak);
    let maxDiff = 0;
    for (let i = 0; i < N; i++) maxDiff = Math.max(maxDiff, Math.abs(plain[i] - ck[i]));
    expect(maxDiff).toBe(0); // the same float32 ops, recomputed
    for (const i of [0, 1, 12345, N - 1]) expect(plain[i]).toBeCloseTo(chainGradRef(Math.fround(data[i]), DEPTH), 3);
  });
});
