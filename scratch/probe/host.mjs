// Where the host time of a large gpu eval goes: build / eval / sync / dispose, medians.
import * as mx from "@tessera/core";
mx.setDefaultDevice(mx.gpu);
const sync = (x) => { const f = mx.reshape(x, [-1]), e = f.index(0); e.item(); e.dispose(); f.dispose(); };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const med = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
function phases(label, build, reps = 9) {
  const T = { build: [], eval: [], sync: [], dispose: [] };
  for (let i = 0; i < reps + 2; i++) {
    const t0 = now();
    const r = [build()].flat();
    const t1 = now();
    mx.eval(...r);
    const t2 = now();
    sync(r[r.length - 1]);
    const t3 = now();
    for (const a of r) a.dispose();
    const t4 = now();
    if (i >= 2) { T.build.push(t1 - t0); T.eval.push(t2 - t1); T.sync.push(t3 - t2); T.dispose.push(t4 - t3); }
  }
  const m = mx.internal.native.memoryStats(1);
  console.log(`${label.padEnd(34)} build ${med(T.build).toFixed(3)} eval ${med(T.eval).toFixed(3)} sync ${med(T.sync).toFixed(3)} dispose ${med(T.dispose).toFixed(3)} ms; cache ${(m.cache / 2 ** 20).toFixed(0)} MiB active ${(m.active / 2 ** 20).toFixed(0)} MiB`);
}
const random = (shape) => { const x = mx.random.normal(shape); mx.eval(x); return x; };
const n = 64 * 2 ** 20;
const x = random([n]), small = random([1024]);
const range = (k) => [...Array(k).keys()];
const f = (y) => mx.mul(mx.tanh(mx.add(mx.mul(y, 0.5), 0.25)), mx.exp(y));
phases("sync only (small add)", () => mx.add(small, small));
phases("add 64M x1", () => mx.add(x, x));
phases("fused 64M x1", () => f(x));
phases("fused 64M x4", () => range(4).map(() => f(x)));
phases("fused 64M x20", () => range(20).map(() => f(x)));
mx.internal.setFusion(false);
phases("copy chain 64M x20", () => range(20).reduce((y) => mx.copy(y), x));
mx.internal.setFusion(true);
for (const N of [1024, 4096]) {
  const a = random([N, N]), b = random([N, N]);
  phases(`matmul ${N} x10`, () => range(10).map(() => mx.matmul(a, b)));
  phases(`matmul ${N} x1`, () => mx.matmul(a, b));
}
// device time of the same, from mx.profile
const prof = (label, g) => { g(); const p = mx.profile(g); for (const a of [p.value].flat()) a.dispose(); console.log(`${label}: kernelMs ${p.kernelMs.toFixed(3)} wallMs ${p.wallMs.toFixed(3)}`); };
prof("profile fused 64M x20", () => range(20).map(() => f(x)));
prof("profile add 64M x1", () => mx.add(x, x));
