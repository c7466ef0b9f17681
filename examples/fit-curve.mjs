// Fits a small tanh network to y = sin(3x) with valueAndGrad and plain gradient steps, printing
// the loss as it falls. Run with `pnpm demo` (or `node examples/fit-curve.mjs`).
import * as mx from "@tessera/core";
import { valueAndGrad } from "@tessera/transforms";

// A seeded generator for the data and the initial weights (mx.random arrives with its own issue).
let seed = 1234;
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const randn = (shape, scale) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return mx.reshape(mx.array(v), shape);
};

const N = 256, H = 32;
const xs = mx.reshape(mx.linspace(-1, 1, N), [N, 1]);
const ys = mx.sin(mx.mul(xs, 3));

let params = { w1: randn([1, H], 1), b1: mx.zeros([H]), w2: randn([H, 1], 1 / Math.sqrt(H)), b2: mx.zeros([1]) };

const model = (p, x) => mx.add(mx.matmul(mx.tanh(mx.add(mx.matmul(x, p.w1), p.b1)), p.w2), p.b2);
const loss = (p, x, y) => mx.mean(mx.square(mx.sub(model(p, x), y)));
const step = valueAndGrad(loss);

const lr = 0.1;
for (let it = 0; it <= 2000; it++) {
  const [l, g] = step(params, xs, ys);
  params = mx.treeMap((p, gp) => mx.sub(p, mx.mul(gp, lr)), params, g);
  mx.eval(params, l); // one native call per iteration: forward, backward and update together
  if (it % 250 === 0) console.log(`step ${String(it).padStart(4)}  loss ${Number(l.item()).toFixed(6)}`);
}
const final = Number(loss(params, xs, ys).item());
console.log(`final mean squared error ${final.toFixed(6)} (the target's variance is ${Number(mx.var(ys).item()).toFixed(3)})`);
