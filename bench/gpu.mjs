// A first look at the CUDA backend on a machine with a GPU (docs/cuda.md): float32 matmul
// TFLOP/s through cuBLAS (TF32 when TESSERA_ALLOW_TF32=1), the bandwidth of device copies, of an
// elementwise add and of the tanh(x * a + b) * exp(x) chain over 64M floats (unfused, then fused
// into one NVRTC kernel), and of host<->device copies. Device figures come from one program of
// many kernels (so the host's cost per evaluation is spread over them); "per eval" figures run
// one op per evaluation.
// Run: `node bench/gpu.mjs`. Each figure is the median of several timed runs after a warm-up;
// a run ends by reading one element back, which waits for the gpu's stream.
import * as mx from "@tessera/core";

if (!mx.isAvailable(mx.gpu)) {
  console.log("bench/gpu.mjs: no gpu in this build or on this machine");
  process.exit(0);
}
mx.setDefaultDevice(mx.gpu); // every op, and the views that sync() makes, run on the gpu
/** Waits for everything queued on the gpu (reading one element synchronizes its stream). */
const sync = (x) => mx.reshape(x, [-1]).index(0).item();

function median(fn, reps) {
  fn();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const s = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - s) / 1e9);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1];
}
/** Evaluates what f returns, waits for it, and frees it (so the next run reuses its memory). */
const timed = (f) => () => {
  const r = f();
  mx.eval(r);
  sync(Array.isArray(r) ? r[r.length - 1] : r);
  for (const a of [r].flat()) a.dispose();
};
const random = (shape) => {
  const n = shape.reduce((a, b) => a * b, 1), v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.random() * 2 - 1;
  const x = mx.reshape(mx.array(v), shape);
  mx.eval(x);
  return x;
};
const range = (k) => [...Array(k).keys()];

const tf32 = process.env.TESSERA_ALLOW_TF32 === "1";
console.log(`float32 matmul (${tf32 ? "TF32 allowed" : "TF32 off"})   TFLOP/s: 10 per eval | 1 per eval`);
for (const n of [1024, 4096]) {
  const a = random([n, n]), b = random([n, n]);
  const many = median(timed(() => range(10).map(() => mx.matmul(a, b))), 5) / 10;
  const one = median(timed(() => mx.matmul(a, b)), 10);
  const tf = (t) => ((2 * n ** 3) / t / 1e12).toFixed(1);
  console.log(`  ${String(n).padStart(5)}^3                         ${tf(many).padStart(6)} | ${tf(one).padStart(6)}`);
}
if (tf32) process.exit(0);

const n = 64 * 2 ** 20, K = 20;
const x = random([n]);
// The single-kernel rows run with the fusion pass off (else a chain of adds is one kernel).
mx.internal.setFusion(false);
const chainOf = (step) => () => range(K).reduce((y) => step(y), x); // each intermediate dies at once
const tb = (bytes, t) => `${(bytes / t / 1e12).toFixed(2)} TB/s`;
const tCopy = median(timed(chainOf((y) => mx.copy(y))), 5) / K;
console.log(`device copy, 64M floats: ${(tCopy * 1e3).toFixed(3)} ms, ${tb(8 * n, tCopy)} (read + write)`);
const tAdd = median(timed(chainOf((y) => mx.add(y, x))), 5) / K;
console.log(`add, 64M floats: ${(tAdd * 1e3).toFixed(3)} ms, ${tb(12 * n, tAdd)} (read 2 + write 1)`);
const tAddOne = median(timed(() => mx.add(x, x)), 7);
console.log(`add, one per eval: ${(tAddOne * 1e3).toFixed(3)} ms`);
const f = (y) => mx.mul(mx.tanh(mx.add(mx.mul(y, 0.5), 0.25)), mx.exp(y));
const tChain = median(timed(() => range(4).reduce((y) => f(y), x)), 5) / 4;
console.log(`tanh(x*a+b)*exp(x), 64M floats, unfused (5 kernels): ${(tChain * 1e3).toFixed(3)} ms, ${tb(8 * n, tChain)} effective`);
// Fused: one kernel per chain (generated and compiled with NVRTC); K independent chains per
// program, each reading x and writing its result once.
mx.internal.setFusion(true);
const tFused = median(timed(() => range(K).map(() => f(x))), 5) / K;
const pct = ((100 * tCopy) / tFused).toFixed(0);
console.log(`tanh(x*a+b)*exp(x), 64M floats, fused (1 kernel): ${(tFused * 1e3).toFixed(3)} ms, ${tb(8 * n, tFused)} (${pct}% of the device copy)`);
// The same on the device alone: mx.profile waits for each instruction, so the host's cost of
// recording and planning the chains (about 9 nodes per kernel here) is left out.
const deviceMs = (g) => {
  const p = mx.profile(g);
  for (const a of p.value) a.dispose();
  return p.kernelMs;
};
deviceMs(() => range(K).map(() => f(x)));
const dFused = deviceMs(() => range(K).map(() => f(x))) / K / 1e3, dCopy = deviceMs(() => range(K).map(() => mx.copy(x))) / K / 1e3;
console.log(`  device time per kernel (mx.profile): fused ${(dFused * 1e3).toFixed(3)} ms, ${tb(8 * n, dFused)}; copy ${(dCopy * 1e3).toFixed(3)} ms, ${tb(8 * n, dCopy)}`);

const host = mx.array(new Float32Array(n), undefined, { device: mx.cpu });
mx.eval(host);
const tUp = median(timed(() => mx.copy(host, { device: mx.gpu })), 5);
const tDown = median(() => {
  const r = mx.copy(x, { device: mx.cpu });
  mx.eval(r);
  r.dispose();
}, 5);
console.log(`host->gpu 256 MiB: ${((4 * n) / tUp / 1e9).toFixed(1)} GB/s; gpu->host: ${((4 * n) / tDown / 1e9).toFixed(1)} GB/s`);
