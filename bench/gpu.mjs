// A first look at the CUDA backend on a machine with a GPU (docs/cuda.md): float32, TF32 and
// bfloat16 matmul TFLOP/s through cuBLAS, the bandwidth of device copies, of an elementwise add and
// of the tanh(x * a + b) * exp(x) chain over 64M floats (unfused, then fused into one NVRTC
// kernel), and of host<->device copies. "Pipelined" figures queue one evaluation after another and
// wait once at the end, as a training loop does and as the peers are timed (the host's cost per
// evaluation overlaps the gpu's work); "per eval" figures wait for each evaluation; "profiled"
// ones are mx.profile's per-instruction times (each instruction waited for alone).
// Run: `node bench/gpu.mjs`. Each figure is the median of several timed runs after a warm-up;
// a run ends by reading one element back, which waits for the gpu's stream. At the end, PyTorch's
// figures from the same call (bench/gpu_peers.py: cuBLAS float32, TF32 and bfloat16 matmul, the
// device copy) and the ratios to them; the TF32 row comes from a child run with
// TESSERA_ALLOW_TF32=1 (the setting is read when the addon loads).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as mx from "@tessera/core";
import { syncDevice } from "./util.mjs";

if (!mx.isAvailable(mx.gpu)) {
  console.log("bench/gpu.mjs: no gpu in this build or on this machine");
  process.exit(0);
}
mx.setDefaultDevice(mx.gpu); // every op, and the views that sync() makes, run on the gpu
const sync = (x) => syncDevice(mx, x);

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
/**
 * Evaluates f `reps` times back to back, each result freed as soon as the next is queued (the
 * allocator reuses a block only for work queued later), and waits once at the end.
 */
function queue(f, reps) {
  let last = null;
  for (let i = 0; i < reps; i++) {
    const r = f();
    mx.eval(r);
    last?.dispose();
    last = r;
  }
  sync(last);
  last.dispose();
}
/**
 * Seconds per evaluation of f when `reps` evaluations are queued back to back and waited for once
 * at the end, as a training loop runs (and as the peers are timed: launches back to back, one wait):
 * the host records and plans the next evaluation while the gpu runs this one.
 */
function pipelined(f, reps, runs = 5) {
  return median(() => queue(f, reps), runs) / reps;
}
const random = (shape) => {
  const n = shape.reduce((a, b) => a * b, 1), v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.random() * 2 - 1;
  const x = mx.reshape(mx.array(v), shape);
  mx.eval(x);
  return x;
};
const range = (k) => [...Array(k).keys()];

const tf32 = process.env.TESSERA_ALLOW_TF32 === "1";
// V8 optimizes the tracing and planning code only after some thousands of evaluations (a cold
// process spent 8-10 us of host time per small product against 2.3 warm, with pauses of 30-60 us
// while it compiled), and a training loop runs in that state; the peers' Python needs no warm-up.
// So 3,000 products of 64^3 run first: the same code paths, with the gpu nearly idle (warming up
// on the timed products themselves held a 4096^3 product's clock down: 0.84 of PyTorch, 0.99
// without, 2026-12-02).
for (const d of ["float32", "bfloat16"]) {
  const r = random([64, 64]), t = mx.astype(r, d);
  queue(() => mx.matmul(t, t), 3000);
  if (t !== r) t.dispose();
  r.dispose();
}
/** The device time (ms) of what g returns: mx.profile waits for each instruction. */
const deviceMs = (g) => {
  const p = mx.profile(g);
  for (const a of [p.value].flat()) a.dispose();
  return p.kernelMs;
};
/**
 * TFLOP/s of n^3 products of dtype d: one product per evaluation, pipelined (the rate the ratios
 * use); 10 per evaluation and 1 per evaluation, each waited for (the host's latency included); and
 * mx.profile's per-instruction time (each product waited for alone: a launch's latency included).
 */
function matmulRows(d, label) {
  console.log(`${label}   TFLOP/s: pipelined | 10 per eval | 1 per eval | profiled`);
  const rates = {};
  for (const n of [1024, 4096]) {
    const [a, b] = [random([n, n]), random([n, n])].map((t) => (d === "float32" ? t : mx.astype(t, d)));
    mx.eval(a, b);
    const flowing = pipelined(() => mx.matmul(a, b), n === 4096 ? 20 : 100);
    const many = median(timed(() => range(10).map(() => mx.matmul(a, b))), 5) / 10;
    const one = median(timed(() => mx.matmul(a, b)), 10);
    const products = () => range(10).map(() => mx.matmul(a, b));
    deviceMs(products);
    const profiled = Math.min(...range(3).map(() => deviceMs(products))) / 10 / 1e3;
    const tf = (t) => (2 * n ** 3) / t / 1e12;
    const cells = [flowing, many, one, profiled].map((t) => tf(t).toFixed(1).padStart(6));
    console.log(`  ${String(n).padStart(5)}^3                         ${cells.join(" | ")}`);
    rates[n] = tf(flowing);
  }
  return rates;
}
if (process.argv.includes("--tf32-row")) {  // the child run of the TF32 row
  console.log(JSON.stringify(matmulRows("float32", "float32 matmul (TF32 allowed)")));
  process.exit(0);
}
const f32 = matmulRows("float32", `float32 matmul (${tf32 ? "TF32 allowed" : "TF32 off"})`);
const bf16 = matmulRows("bfloat16", "bfloat16 matmul (float32 accumulation)");

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
// 100 evaluations per timed run (about 14 ms): with 20, the first evaluation's host time and the
// final wait weighed on the figure, which moved from 0.66 to 0.83 of the copy between calls.
const tFused = pipelined(() => f(x), 5 * K);
const tFusedMany = median(timed(() => range(K).map(() => f(x))), 5) / K;
const pct = ((100 * tCopy) / tFused).toFixed(0);
console.log(`tanh(x*a+b)*exp(x), 64M floats, fused (1 kernel), an eval per chain, pipelined: ${(tFused * 1e3).toFixed(3)} ms, ${tb(8 * n, tFused)} (${pct}% of the device copy)`);
console.log(`  ${K} chains in one eval, waited for: ${(tFusedMany * 1e3).toFixed(3)} ms per chain, ${tb(8 * n, tFusedMany)}`);
// The same on the device alone: mx.profile waits for each instruction, so the host's cost of
// recording and planning the chains (about 9 nodes per kernel here) is left out.
deviceMs(() => range(K).map(() => f(x)));
const dFused = deviceMs(() => range(K).map(() => f(x))) / K / 1e3, dCopy = deviceMs(() => range(K).map(() => mx.copy(x))) / K / 1e3;
console.log(`  device time per kernel (mx.profile): fused ${(dFused * 1e3).toFixed(3)} ms, ${tb(8 * n, dFused)}; copy ${(dCopy * 1e3).toFixed(3)} ms, ${tb(8 * n, dCopy)}`);

// A scan of one long line (scan.cu's chunked path): reads x twice and writes once.
const tScan = median(timed(() => mx.cumsum(x)), 5);
console.log(`cumsum of 64M floats, one line: ${(tScan * 1e3).toFixed(3)} ms, ${tb(8 * n, tScan)} (read + write)`);

const host = mx.array(new Float32Array(n), undefined, { device: mx.cpu });
mx.eval(host);
const tUp = median(timed(() => mx.copy(host, { device: mx.gpu })), 5);
const tDown = median(() => {
  const r = mx.copy(x, { device: mx.cpu });
  mx.eval(r);
  r.dispose();
}, 5);
console.log(`host->gpu 256 MiB: ${((4 * n) / tUp / 1e9).toFixed(1)} GB/s; gpu->host: ${((4 * n) / tDown / 1e9).toFixed(1)} GB/s`);

// Same-call ratios to PyTorch (issue targets: matmul >= 0.95 of cuBLAS; the fused chain >= 0.85
// of the device copy's bandwidth).
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const lastJSON = (out) => JSON.parse(out.toString().trim().split("\n").pop());
let tf32Rates = null, peers = null;
try {
  const env = { ...process.env, TESSERA_ALLOW_TF32: "1" };
  tf32Rates = lastJSON(execFileSync(process.execPath, [here("./gpu.mjs"), "--tf32-row"], { env, stdio: ["ignore", "pipe", "inherit"] }));
  peers = lastJSON(execFileSync("python3", [here("./gpu_peers.py")], { stdio: ["ignore", "pipe", "inherit"] }));
} catch (e) {
  console.log(`peers not measured: ${String(e.message).split("\n")[0]}`);
}
if (peers) {
  console.log(`\nratios to PyTorch ${peers.torch} in this call (${peers.device}):`);
  for (const n of [1024, 4096]) {
    const r = (ours, key) => `${ours.toFixed(1)} / ${peers[key].toFixed(1)} = ${(ours / peers[key]).toFixed(2)}`;
    console.log(`  matmul ${n}^3 TFLOP/s (pipelined), tessera / torch: float32 ${r(f32[n], `matmul_${tf32 ? "tf32" : "float32"}_${n}`)}; TF32 ${r(tf32Rates[n], `matmul_tf32_${n}`)}; bfloat16 ${r(bf16[n], `matmul_bfloat16_${n}`)}`);
  }
  const fusedTBs = (8 * n) / tFused / 1e12, deviceTBs = (8 * n) / dFused / 1e12;
  console.log(`  fused chain ${fusedTBs.toFixed(2)} TB/s pipelined (${deviceTBs.toFixed(2)} on the device) / torch copy ${peers.copy_tbs.toFixed(2)} TB/s = ${(fusedTBs / peers.copy_tbs).toFixed(2)} (${(deviceTBs / peers.copy_tbs).toFixed(2)})`);
}
