import * as mx from "@tessera/core";
const dev = process.argv[2] === "gpu" ? mx.gpu : mx.cpu;
mx.setDefaultDevice(dev);
const x = mx.random.normal([1024]); mx.eval(x);
const f = (y) => mx.mul(mx.tanh(mx.add(mx.mul(y, 0.5), 0.25)), mx.exp(y));
const now = () => performance.now();
for (const [label, g] of [["add", () => mx.add(x, x)], ["fused", () => f(x)], ["fused x20", () => [...Array(20)].map(() => f(x))]]) {
  const T = { b: [], e: [] };
  for (let i = 0; i < 2000; i++) {
    const t0 = now(); const r = [g()].flat(); const t1 = now(); mx.eval(...r); const t2 = now();
    for (const a of r) a.dispose();
    T.b.push(t1 - t0); T.e.push(t2 - t1);
  }
  const med = (a) => a.sort((p, q) => p - q)[a.length >> 1] * 1000;
  console.log(label, "build us", med(T.b).toFixed(1), "eval us", med(T.e).toFixed(1));
}
