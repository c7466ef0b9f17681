// Float32 matmul GFLOP/s at 256..2048 and the effective GB/s of tanh(x * a + b) * exp(x) over
// 16M floats, each beside NumPy (OpenBLAS) measured in the same run, with the ratio.
// Run: `npx -y pnpm@12.4.2 bench` (or `node bench/core.mjs`). Times are the best of several runs.
import * as mx from "@tessera/core";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const peer = fileURLToPath(new URL("./numpy_peer.py", import.meta.url));

/** A python3 that imports numpy, installing Debian's python3-numpy if none does. */
function findPython() {
  const candidates = ["python3", "/usr/bin/python3"];
  const works = (py) => {
    try {
      execFileSync(py, ["-c", "import numpy"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  for (const py of candidates) if (works(py)) return py;
  console.log("NumPy not found: installing Debian's python3-numpy ...");
  const sudo = process.getuid && process.getuid() === 0 ? [] : ["sudo"];
  const run = (args) => execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: "inherit" });
  run(["apt-get", "update"]);
  run(["apt-get", "install", "-y", "python3-numpy"]);
  for (const py of candidates) if (works(py)) return py;
  throw new Error("bench: could not find or install NumPy");
}
const python = findPython();
const numpy = (what, n) => JSON.parse(execFileSync(python, [peer, what, String(n)]).toString()).seconds;

function best(fn, reps) {
  fn();
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const s = process.hrtime.bigint();
    fn();
    t = Math.min(t, Number(process.hrtime.bigint() - s) / 1e9);
  }
  return t;
}

const randn = (shape) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.random() * 2 - 1;
  return mx.reshape(mx.array(v), shape);
};

console.log(`tessera on ${mx.internal.native.numThreads()} threads vs NumPy (${python})\n`);
console.log("float32 matmul      tessera GFLOP/s   NumPy GFLOP/s   ratio");
for (const n of [256, 512, 1024, 2048]) {
  const a = randn([n, n]), b = randn([n, n]);
  mx.eval(a, b);
  const t = best(() => {
    const c = mx.matmul(a, b);
    mx.eval(c);
    c.dispose();
  }, n >= 2048 ? 3 : 7);
  const flops = 2 * n ** 3;
  const ours = flops / t / 1e9, theirs = flops / numpy("matmul", n) / 1e9;
  console.log(`  ${String(n).padEnd(16)}  ${ours.toFixed(1).padStart(15)}  ${theirs.toFixed(1).padStart(14)}  ${(ours / theirs).toFixed(2).padStart(6)}`);
}

const N = 16 * 1024 * 1024;
const x = randn([N]);
mx.eval(x);
const chain = () => {
  const y = mx.mul(mx.tanh(mx.add(mx.mul(x, 0.5), 0.25)), mx.exp(x));
  mx.eval(y);
  y.dispose();
};
const bytes = 2 * 4 * N; // read x once, write the result once
const ours = bytes / best(chain, 5) / 1e9, theirs = bytes / numpy("chain", N) / 1e9;
console.log("\ntanh(x*a+b)*exp(x)  tessera GB/s      NumPy GB/s      ratio");
console.log(`  16M float32       ${ours.toFixed(2).padStart(12)}  ${theirs.toFixed(2).padStart(14)}  ${(ours / theirs).toFixed(2).padStart(6)}`);
