import * as mx from "@tessera/core";
const n = 16 * 2 ** 20;
const x = mx.random.normal([n]); mx.eval(x);
const f = (y) => mx.mul(mx.tanh(mx.add(mx.mul(y, 0.5), 0.25)), mx.exp(y));
const sync = (x) => mx.reshape(x, [-1]).index(0).item();
for (const withSync of [false, true, false]) {
  const ts = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    const r = f(x); mx.eval(r); if (withSync) sync(r); r.dispose();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  const m = mx.internal.native.memoryStats();
  console.log(withSync, "median ms", ts[15].toFixed(3), "active MiB", (m.active / 2 ** 20).toFixed(0), "cache", (m.cache / 2 ** 20).toFixed(0));
}
