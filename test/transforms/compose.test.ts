/**
 * Composed transforms checked against hand-derived values: higher derivatives, Hessian-vector
 * products, per-example gradients, Jacobians from vmap(jvp), nested vmap, argnums, tree
 * arguments, auxiliary outputs, symbolic zeros, stopGradient, smoothness at 0, and reading
 * values inside grad. customFunction and checkpoint: custom.test.ts.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad, jvp, valueAndGrad, vjp, vmap } from "@tessera/transforms";
import { fromMx, randomRef, rng } from "../helpers/reference.js";
import { expectAllClose } from "./checks.js";

type A = mx.Array;
const f64 = (data: number | number[] | number[][]) => mx.array(data, "float64");
const values = (x: A) => fromMx(x).data;
/** Asserts x's shape and (float64-close) values. */
function expectValues(x: A, shape: number[], want: number[], tol = 1e-12): void {
  expect(x.shape).toEqual(shape);
  expectAllClose(values(x), Float64Array.from(want), tol, tol, "values");
}
const randomMatrix = (rows: number, cols: number, seed: number) => {
  const r = randomRef([rows, cols], rng(seed), -1, 1);
  return [...Array(rows)].map((_, i) => [...r.data.slice(i * cols, (i + 1) * cols)]);
};

describe("higher derivatives", () => {
  it("grad(grad(grad(f))) of a polynomial is its third derivative", () => {
    // f = x^4 + 2x^3 - x + 5: f''' = 24x + 12
    const f = (x: A) => mx.add(mx.sub(mx.add(mx.mul(mx.mul(x, x), mx.mul(x, x)), mx.mul(mx.mul(mx.mul(x, x), x), 2)), x), 5);
    const d3 = grad(grad(grad(f)));
    for (const x of [-2, 0, 0.5, 1.5]) expectValues(d3(f64(x)), [], [24 * x + 12]);
    // through pow: (x^5)''' = 60 x^2, (x^5)'' = 20 x^3
    const p = (x: A) => mx.pow(x, 5);
    expectValues(grad(grad(grad(p)))(f64(1.5)), [], [60 * 1.5 ** 2]);
    expectValues(grad(grad(p))(f64(-2)), [], [20 * -8]);
  });

  it("jvp(grad(f)) of a quadratic form is a Hessian-vector product (A + A^T) u", () => {
    const Am = randomMatrix(3, 3, 1);
    const A = f64(Am);
    const f = (v: A) => mx.sum(mx.mul(v, mx.matmul(A, v))); // v^T A v
    const v = f64([0.3, -1.2, 2]), u = f64([1, 0.5, -0.25]);
    const ud = [1, 0.5, -0.25];
    const [[g], [hvp]] = jvp(grad(f), [v], [u]);
    const vd = [0.3, -1.2, 2];
    const sym = (i: number, j: number) => Am[i][j] + Am[j][i];
    expectValues(g, [3], [0, 1, 2].map((i) => [0, 1, 2].reduce((s, j) => s + sym(i, j) * vd[j], 0)));
    expectValues(hvp, [3], [0, 1, 2].map((i) => [0, 1, 2].reduce((s, j) => s + sym(i, j) * ud[j], 0)));
  });

  it("grad(grad(f)) with f using its argument in several places", () => {
    // f = x sin(x): f' = sin x + x cos x, f'' = 2 cos x - x sin x
    const f = (x: A) => mx.mul(x, mx.sin(x));
    expectValues(grad(grad(f))(f64(0.7)), [], [2 * Math.cos(0.7) - 0.7 * Math.sin(0.7)]);
  });
});

describe("vmap with grad and jvp", () => {
  const W = [0.5, -1, 2];
  const X = randomMatrix(4, 3, 2);
  const Y = [0.1, -0.3, 0.7, 1.1];
  const dotw = (x: number[]) => x.reduce((s, v, k) => s + v * W[k], 0);

  it("per-example gradients of a linear model: vmap(grad(loss), { inAxes: [null, 0, 0] })", () => {
    const loss = (w: A, x: A, y: A) => mx.square(mx.sub(mx.sum(mx.mul(w, x)), y));
    const perExample = vmap(grad(loss), { inAxes: [null, 0, 0] })(f64(W), f64(X), f64(Y));
    const want = X.flatMap((x, i) => x.map((v) => 2 * (dotw(x) - Y[i]) * v));
    expectValues(perExample, [4, 3], want);
    // the same with the batch along axis 1 of x
    const t = vmap(grad(loss), { inAxes: [null, 1, 0] })(f64(W), mx.transpose(f64(X)), f64(Y));
    expectValues(t, [4, 3], want);
  });

  it("grad(vmap(f)): gradient of a sum of per-example values", () => {
    const g = grad((w: A, xs: A) => mx.sum(vmap((x: A) => mx.sin(mx.sum(mx.mul(w, x))), { inAxes: 0 })(xs)));
    const want = W.map((_, k) => X.reduce((s, x) => s + Math.cos(dotw(x)) * x[k], 0));
    expectValues(g(f64(W), f64(X)), [3], want);
  });

  it("vmap(jvp) over basis tangents gives the Jacobian; vmap(vjp) its transpose", () => {
    // f(x) = [sin(x0) x1, x0^2 + exp(x1), x0 x1 x2]
    const f = (x: A) => {
      const [a, b, c] = [0, 1, 2].map((i) => x.index(i));
      return mx.stack([mx.mul(mx.sin(a), b), mx.add(mx.square(a), mx.exp(b)), mx.mul(mx.mul(a, b), c)]);
    };
    const [x0, x1, x2] = [0.4, -0.7, 1.3];
    const J = [
      [Math.cos(x0) * x1, Math.sin(x0), 0],
      [2 * x0, Math.exp(x1), 0],
      [x1 * x2, x0 * x2, x0 * x1],
    ];
    const x = f64([x0, x1, x2]);
    const eye = mx.eye(3, undefined, 0, "float64");
    const cols = vmap((u: A) => jvp(f, [x], [u])[1][0])(eye); // row i: J e_i
    expectValues(cols, [3, 3], [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => J[j][i])));
    const jac = vmap((u: A) => jvp(f, [x], [u])[1][0], { outAxes: 1 })(eye);
    expectValues(jac, [3, 3], J.flat());
    const rows = vmap((v: A) => vjp(f, [x], [v])[1][0])(eye); // row i: e_i^T J
    expectValues(rows, [3, 3], J.flat());
  });

  it("nested vmap builds a table f(x_i, y_j)", () => {
    const xs = [0.5, -1, 2], ys = [1, 3];
    const f = (a: A, b: A) => mx.add(mx.mul(a, b), mx.sin(a));
    const table = vmap(vmap(f, { inAxes: [null, 0] }), { inAxes: [0, null] })(f64(xs), f64(ys));
    expectValues(table, [3, 2], xs.flatMap((a) => ys.map((b) => a * b + Math.sin(a))));
    // both levels over a matrix, the outer over its axis 1: m[j][i]
    const m = randomMatrix(2, 3, 3);
    const tt = vmap(vmap((v: A) => mx.exp(v)), { inAxes: 1 })(f64(m));
    expectValues(tt, [3, 2], [0, 1, 2].flatMap((i) => [0, 1].map((j) => Math.exp(m[j][i]))));
    // vmap(vmap(grad))
    const g = vmap(vmap(grad((v: A) => mx.mul(v, mx.mul(v, v)))))(f64(m));
    expectValues(g, [2, 3], m.flat().map((v) => 3 * v * v));
  });
});

describe("deeper compositions", () => {
  it("grad(vmap(grad(f))): per-example gradients summed, differentiated again", () => {
    // inner: d/dv sum(v^2 w) = 2 v w; outer: d/dw sum_ij 2 v_ij w = 2 sum(v)
    const m = randomMatrix(2, 3, 4);
    const g = grad((w: A) => mx.sum(vmap(grad((v: A) => mx.sum(mx.mul(mx.square(v), w))))(f64(m))))(f64(2));
    expectValues(g, [], [2 * m.flat().reduce((s, v) => s + v, 0)]);
  });

  it("nested grads keep their perturbations apart", () => {
    // d/dx [x * d/dy (x + y)] = d/dx [x] = 1 (Siskind and Pearlmutter's perturbation confusion)
    expectValues(grad((a: A) => mx.mul(a, grad((b: A) => mx.add(a, b))(f64(1))))(f64(3)), [], [1]);
    // d/dx [x * d/dy (x y)] = d/dx [x^2] = 2x
    expectValues(grad((a: A) => mx.mul(a, grad((b: A) => mx.mul(a, b))(f64(5))))(f64(3)), [], [6]);
  });

  it("outputs that are the inputs themselves", () => {
    const x = f64([1, 2, 3]);
    const [[y], [ct]] = vjp((v) => v, [x], [f64([4, 5, 6])]);
    expectValues(y, [3], [1, 2, 3]);
    expectValues(ct, [3], [4, 5, 6]);
    const [, [c2]] = vjp((v) => [v, mx.mul(v, 2), v], [x], [f64([4, 5, 6]), f64([1, 1, 1]), f64([1, 0, -1])]);
    expectValues(c2, [3], [7, 7, 7]);
    const [, ts] = jvp((v) => [v, mx.mul(v, 2)], [x], [f64([1, 0, 1])]);
    expectValues(ts[0], [3], [1, 0, 1]);
    expectValues(ts[1], [3], [2, 0, 2]);
    expectValues(vmap((v: A) => v, { inAxes: 1 })(f64([[1, 2, 3], [4, 5, 6]])), [3, 2], [1, 4, 2, 5, 3, 6]);
  });

  it("vmap with tree inAxes, per-output outAxes, and an unmapped output", () => {
    const b = f64([[1, 2], [3, 4], [5, 6]]);
    const out = vmap((p: { w: A; b: A }) => mx.mul(p.w, p.b), { inAxes: [{ w: null, b: 0 }] })({ w: f64([1, 2]), b });
    expectValues(out, [3, 2], [1, 4, 3, 8, 5, 12]);
    const [s, d] = vmap((v: A) => [mx.sin(v), mx.mul(v, 2)], { outAxes: [0, 1] })(b);
    expectValues(s, [3, 2], [1, 2, 3, 4, 5, 6].map(Math.sin));
    expectValues(d, [2, 3], [2, 6, 10, 4, 8, 12]);
    const [sums, constant] = vmap((v: A) => [mx.sum(v), f64([7, 8])])(b);
    expectValues(sums, [3], [3, 7, 11]);
    expectValues(constant, [3, 2], [7, 8, 7, 8, 7, 8]); // broadcast along the batch
    const [, kept] = vmap((v: A) => [mx.sum(v), f64([7, 8])], { outAxes: [0, null] })(b);
    expectValues(kept, [2], [7, 8]);
  });
});

describe("arguments: argnums and trees", () => {
  // f(a, b, c) = sum(a b^2 + c): da = b^2, db = 2ab, dc = 1
  const f = (a: A, b: A, c: A) => mx.sum(mx.add(mx.mul(a, mx.square(b)), c));
  const [a, b, c] = [f64([1, 2]), f64([3, -1]), f64([0.5, 0.5])];
  const da = [9, 1], db = [6, -4], dc = [1, 1];

  it("argnums as a number, a list of one, a list of two, and negative", () => {
    expectValues(grad(f)(a, b, c), [2], da);
    expectValues(grad(f, { argnums: 1 })(a, b, c), [2], db);
    const one = grad(f, { argnums: [1] })(a, b, c);
    expect(Array.isArray(one)).toBe(true);
    expect(one).toHaveLength(1);
    expectValues(one[0], [2], db);
    const two = grad(f, { argnums: [2, 0] })(a, b, c);
    expect(two).toHaveLength(2);
    expectValues(two[0], [2], dc);
    expectValues(two[1], [2], da);
    expectValues(grad(f, { argnums: -1 })(a, b, c), [2], dc);
    // the same array passed twice is two arguments, each with its own gradient
    const [g0, g1] = grad((p: A, q: A) => mx.sum(mx.mul(p, mx.square(q))), { argnums: [0, 1] })(b, b);
    expectValues(g0, [2], [9, 1]);
    expectValues(g1, [2], [18, 2]);
    const [value, gs] = valueAndGrad(f, { argnums: [-2, 0] })(a, b, c);
    expectValues(value, [], [1 * 9 + 0.5 + 2 * 1 + 0.5]);
    expectValues(gs[0], [2], db);
    expectValues(gs[1], [2], da);
  });

  it("tree arguments give gradients of the same tree shape", () => {
    const params = { w: [a, b], s: { t: c } };
    const loss = (p: typeof params) => f(p.w[0], p.w[1], p.s.t);
    const g = grad(loss)(params);
    expect(Object.keys(g)).toEqual(["w", "s"]);
    expect(Array.isArray(g.w)).toBe(true);
    expect(g.w).toHaveLength(2);
    expectValues(g.w[0], [2], da);
    expectValues(g.w[1], [2], db);
    expectValues(g.s.t, [2], dc);
    // a JS array of arrays, with argnums over a tree and a plain argument
    const g2 = grad((xs: A[], y: A) => f(xs[0], y, xs[1]), { argnums: [0, 1] })([a, c], b);
    expect(Array.isArray(g2[0])).toBe(true);
    expectValues(g2[0][0], [2], da);
    expectValues(g2[0][1], [2], dc);
    expectValues(g2[1], [2], db);
  });

  it("valueAndGrad with auxiliary outputs: [loss, aux] is the value, only loss is differentiated", () => {
    const [value, g] = valueAndGrad((x: A) => {
      const y = mx.mul(x, x);
      return [mx.sum(y), { y, count: mx.array(x.size) }];
    })(f64([1, -2, 3]));
    expect(Array.isArray(value)).toBe(true);
    expectValues(value[0], [], [14]);
    expectValues(value[1].y, [3], [1, 4, 9]);
    expectValues(value[1].count, [], [3]);
    expectValues(g, [3], [2, -4, 6]);
  });
});

describe("gradient bookkeeping", () => {
  it("accumulates gradients of a value used several times: f(x) = x*x + x", () => {
    const x = f64([-1.5, 0, 2]);
    expectValues(grad((v: A) => mx.sum(mx.add(mx.mul(v, v), v)))(x), [3], [-2, 1, 5]);
    // used by several branches that meet later: (x + x) * sin(x) + x
    const g = grad((v: A) => mx.sum(mx.add(mx.mul(mx.add(v, v), mx.sin(v)), v)))(x);
    expectValues(g, [3], [-1.5, 0, 2].map((v) => 2 * Math.sin(v) + 2 * v * Math.cos(v) + 1));
  });

  it("symbolic zeros: an output that ignores an argument gives zeros of its shape", () => {
    const f = (x: A, y: A) => mx.sum(mx.sin(x));
    const [gx, gy] = grad(f, { argnums: [0, 1] })(f64([1, 2]), f64([[1, 2, 3], [4, 5, 6]]));
    expectValues(gx, [2], [Math.cos(1), Math.cos(2)]);
    expect(gy.dtype).toBe("float64");
    expectValues(gy, [2, 3], [0, 0, 0, 0, 0, 0]);
    const [, [ct]] = vjp((x: A) => mx.ones([2]), [f64([1, 2, 3])], [mx.ones([2])]);
    expectValues(ct, [3], [0, 0, 0]);
    const [, [t]] = jvp((x: A) => mx.zeros([4]), [f64([1, 2])], [f64([1, 1])]);
    expectValues(t, [4], [0, 0, 0, 0]);
    // through an integer path: no gradient flows through argmax or a comparison
    const gi = grad((x: A) => mx.sum(mx.mul(mx.astype(mx.greater(x, 0), "float64"), mx.astype(mx.argmax(x), "float64"))))(f64([1, -1, 3]));
    expectValues(gi, [3], [0, 0, 0]);
  });

  it("stopGradient blocks exactly the stopped path", () => {
    // f = x * stop(x^2): df/dx = stop(x^2) = x^2, not 3x^2
    const g = grad((v: A) => mx.sum(mx.mul(v, mx.stopGradient(mx.square(v)))))(f64([1, -2, 0.5]));
    expectValues(g, [3], [1, 4, 0.25]);
    expectValues(grad(grad((v: A) => mx.mul(v, mx.stopGradient(mx.square(v)))))(f64(3)), [], [0]);
  });

  it("smooth functions have finite derivatives at 0 (pow included)", () => {
    const at0 = (fn: (x: A) => A) => grad(fn)(f64(0)).item();
    expect(at0((x) => mx.pow(x, 2))).toBe(0);
    expect(at0((x) => mx.pow(x, 3))).toBe(0);
    expect(at0((x) => mx.pow(x, 1))).toBe(1);
    expect(at0((x) => mx.pow(x, 0))).toBe(0);
    expect(at0((x) => mx.square(x))).toBe(0);
    expect(at0((x) => mx.mul(x, mx.sin(x)))).toBe(0);
    expect(at0((x) => mx.tanh(x))).toBe(1);
    expect(at0((x) => mx.sigmoid(x))).toBe(0.25);
    expect(at0((x) => mx.exp(mx.mul(x, x)))).toBe(0);
    expect(grad(grad((x: A) => mx.pow(x, 2)))(f64(0)).item()).toBe(2);
    expect(grad(grad(grad((x: A) => mx.pow(x, 3))))(f64(0)).item()).toBe(6);
    // d/db a^b at a = 0 is 0 (not 0 * log 0), and d/da at b = 0 is 0
    expect(grad((a: A, b: A) => mx.pow(a, b), { argnums: 1 })(f64(0), f64(2)).item()).toBe(0);
    expect(grad((a: A, b: A) => mx.pow(a, b))(f64(0), f64(0)).item()).toBe(0);
    const v = grad((x: A) => mx.sum(mx.pow(x, 2)))(f64([0, 0, 1]));
    expect(v.tolist()).toEqual([0, 0, 2]);
  });
});

describe("reading values inside grad", () => {
  const x = f64([0.5, -1, 2]);
  const xs = [0.5, -1, 2];

  it("item() for data-dependent control flow", () => {
    const f = (v: A) => (Number(mx.sum(v).item()) > 0 ? mx.sum(mx.mul(v, v)) : mx.sum(mx.sin(v)));
    expectValues(grad(f)(x), [3], xs.map((v) => 2 * v));
    expectValues(grad(f)(mx.neg(x)), [3], xs.map((v) => Math.cos(-v)));
  });

  it("mx.eval of an intermediate and tolist() leave the gradient intact", () => {
    const f = (v: A) => {
      const y = mx.sin(v);
      mx.eval(y);
      const scale = (y.tolist() as number[]).filter((s) => s > 0).length; // a JS number from the data
      return mx.sum(mx.mul(mx.mul(y, v), scale));
    };
    const scale = xs.filter((v) => Math.sin(v) > 0).length;
    expectValues(grad(f)(x), [3], xs.map((v) => scale * (Math.cos(v) * v + Math.sin(v))));
    // valueAndGrad too, and the value read inside matches
    let seen = NaN;
    const [val, g] = valueAndGrad((v: A) => {
      const l = mx.sum(mx.exp(v));
      seen = Number(l.item());
      return l;
    })(x);
    const want = xs.reduce((s, v) => s + Math.exp(v), 0);
    expect(seen).toBeCloseTo(want, 12);
    expectValues(val, [], [want]);
    expectValues(g, [3], xs.map(Math.exp));
  });

  it("reading inside grad(grad(f))", () => {
    const f = (v: A) => {
      const c = Number(mx.mul(v, v).item());
      return c > 1 ? mx.mul(mx.pow(v, 3), c) : mx.pow(v, 3); // c is a constant to the derivative
    };
    expectValues(grad(grad(f))(f64(2)), [], [6 * 2 * 4]);
    expectValues(grad(grad(f))(f64(0.5)), [], [6 * 0.5]);
  });
});
