/**
 * Transforms only record graphs: their results are unevaluated until mx.eval or a read, and
 * evaluating a loss with its gradients runs the shared forward pass once, in one program.
 */
import { beforeEach, describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { checkpoint, customFunction, grad, jvp, valueAndGrad, vjp, vmap } from "@tessera/transforms";
import { fromMx } from "../helpers/reference.js";
import { expectAllClose } from "./checks.js";

type A = mx.Array;
const { evalStats } = mx.internal;
const xs = [0.3, -1.2, 2, 0.7];
const input = () => mx.array(xs, "float64");
const isLazy = (a: A) => a.handle === 0 && a.node !== null;
const expectLazy = (...arrays: A[]) => arrays.forEach((a, i) => expect(isLazy(a), `result ${i} is lazy`).toBe(true));
const close = (a: A, want: number[]) => expectAllClose(fromMx(a).data, Float64Array.from(want), 1e-12, 1e-12, "values");

beforeEach(() => evalStats.reset());

describe("transforms return unevaluated arrays", () => {
  const f = (v: A) => mx.sum(mx.exp(mx.sin(v)));

  it("grad, valueAndGrad, vjp, jvp and vmap evaluate nothing", () => {
    const x = input();
    mx.eval(x);
    evalStats.reset();
    const g = grad(f)(x);
    const [value, g2] = valueAndGrad(f)(x);
    const [[y], [ct]] = vjp((v) => mx.sin(v), [x], [mx.onesLike(x)]);
    const [[z], [t]] = jvp((v) => mx.sin(v), [x], [mx.onesLike(x)]);
    const m = vmap((v: A) => mx.sum(mx.sin(v)))(mx.reshape(x, [2, 2]));
    expectLazy(g, value, g2, y, ct, z, t, m);
    expect(evalStats.programs).toBe(0);
  });

  it("composed and custom transforms evaluate nothing", () => {
    const x = input();
    const gg = grad(grad((v: A) => mx.sum(mx.pow(v, 3))))(mx.array(1.5, "float64"));
    const hvp = jvp(grad(f), [x], [mx.onesLike(x)])[1][0];
    const perExample = vmap(grad((v: A) => mx.sum(mx.sin(v))))(mx.reshape(x, [2, 2]));
    const c = customFunction((v: A) => mx.sin(v)).vjp(([v], [ct]) => [mx.mul(ct, mx.cos(v))]);
    const gc = grad((v: A) => mx.sum(c(v)))(x);
    const gk = grad((v: A) => mx.sum(checkpoint((u: A) => mx.exp(mx.sin(u)))(v)))(x);
    expectLazy(gg, hvp, perExample, gc, gk);
    expect(evalStats.programs).toBe(0);
    mx.eval(gg, hvp, perExample, gc, gk);
    expect(evalStats.programs).toBe(1);
    close(gg, [6 * 1.5]);
    close(gc, xs.map(Math.cos));
  });
});

describe("evaluating a loss with its gradients", () => {
  it("runs the shared forward once: exp(sin(x)) has one sin and one exp", () => {
    const x = input();
    const [loss, g] = valueAndGrad((v: A) => mx.sum(mx.exp(mx.sin(v))))(x);
    mx.eval(loss, g);
    expect(evalStats.programs).toBe(1);
    // the backward pass uses exp's output and cos(x), never a second sin or exp
    expect(evalStats.ops.get("sin")).toBe(1);
    expect(evalStats.ops.get("exp")).toBe(1);
    expect(evalStats.ops.get("cos")).toBe(1);
    close(loss, [xs.reduce((s, v) => s + Math.exp(Math.sin(v)), 0)]);
    close(g, xs.map((v) => Math.exp(Math.sin(v)) * Math.cos(v)));
    // already evaluated: nothing more to run
    mx.eval(loss, g);
    expect(evalStats.programs).toBe(1);
  });

  it("a deep chain: sin(sin(sin(x))) evaluates each sin once", () => {
    const x = input();
    const [loss, g] = valueAndGrad((v: A) => mx.sum(mx.sin(mx.sin(mx.sin(v)))))(x);
    mx.eval(loss, g);
    expect(evalStats.programs).toBe(1);
    expect(evalStats.ops.get("sin")).toBe(3);
    expect(evalStats.ops.get("cos")).toBe(3);
    const s1 = xs.map(Math.sin), s2 = s1.map(Math.sin);
    close(g, xs.map((v, i) => Math.cos(s2[i]) * Math.cos(s1[i]) * Math.cos(v)));
  });

  it("aux outputs and several argnums share the forward too", () => {
    const x = input(), w = mx.array([0.5, 2, -1, 1], "float64");
    const [[loss, aux], [gx, gw]] = valueAndGrad(
      (v: A, u: A) => {
        const h = mx.exp(mx.mul(mx.sin(v), u));
        return [mx.sum(h), h];
      },
      { argnums: [0, 1] },
    )(x, w);
    mx.eval(loss, aux, gx, gw);
    expect(evalStats.programs).toBe(1);
    expect(evalStats.ops.get("sin")).toBe(1);
    expect(evalStats.ops.get("exp")).toBe(1);
    const ws = [0.5, 2, -1, 1];
    const h = xs.map((v, i) => Math.exp(Math.sin(v) * ws[i]));
    close(aux, h);
    close(gx, xs.map((v, i) => h[i] * ws[i] * Math.cos(v)));
    close(gw, xs.map((v, i) => h[i] * Math.sin(v)));
  });
});
