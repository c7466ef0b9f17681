// Dense linear algebra on the gpu (native/src/cuda/linalg.cu) beside PyTorch's (cuSOLVER / MAGMA)
// in the same call: cholesky, inv, solve (one right-hand side), qr, eigh and svd of one float64
// n x n matrix, milliseconds per call, each the median of 5 calls waited for. linalg.cu keeps the
// cpu's algorithms in the cpu's order per element (a block of threads per matrix from 32 rows for
// the first four; eigh's and svd's Jacobi sweeps on one thread, so they run only up to n = 128), so
// large matrices are where it is furthest from a blocked library; this shows how far.
// Run on a machine with a CUDA GPU: `node bench/gpu_linalg.mjs`.
import { execFileSync } from "node:child_process";
import * as mx from "@tessera/core";
import { syncDevice } from "./util.mjs";

if (!mx.isAvailable(mx.gpu)) {
  console.log("bench/gpu_linalg.mjs: no gpu in this build or on this machine");
  process.exit(0);
}
mx.setDefaultDevice(mx.gpu);
const sizes = [64, 128, 256, 1024];
const median = (f) => {
  f();
  const ts = [];
  for (let i = 0; i < 5; i++) {
    const s = process.hrtime.bigint();
    f();
    ts.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return ts.sort((a, b) => a - b)[2];
};
const ops = {
  cholesky: (a, s) => mx.linalg.cholesky(s),
  inv: (a) => mx.linalg.inv(a),
  solve: (a, s, b) => mx.linalg.solve(a, b),
  qr: (a) => mx.linalg.qr(a),
  eigh: (a, s) => mx.linalg.eigh(s),
  svd: (a) => mx.linalg.svd(a),
};
const maxN = { eigh: 128, svd: 128 };
const ours = {};
for (const n of sizes) {
  const a = mx.random.normal([n, n], { dtype: "float64" }), b = mx.random.normal([n, 1], { dtype: "float64" });
  const s = mx.add(mx.matmul(a, a.T), mx.multiply(mx.eye(n, undefined, undefined, "float64"), n));
  mx.eval(a, b, s);
  for (const [name, f] of Object.entries(ops))
    if (n <= (maxN[name] ?? Infinity)) ours[`${name}_${n}`] = median(() => {
      const r = [f(a, s, b)].flat();
      mx.eval(...r);
      syncDevice(mx, r[0]);
    });
}
let torch = null;
try {
  const py = `
import json, statistics, time, torch
out = {}
for n in ${JSON.stringify(sizes)}:
    a = torch.randn(n, n, dtype=torch.float64, device="cuda"); b = torch.randn(n, 1, dtype=torch.float64, device="cuda")
    s = a @ a.T + n * torch.eye(n, dtype=torch.float64, device="cuda")
    fs = {"cholesky": lambda: torch.linalg.cholesky(s), "inv": lambda: torch.linalg.inv(a), "solve": lambda: torch.linalg.solve(a, b), "qr": lambda: torch.linalg.qr(a),
          "eigh": lambda: torch.linalg.eigh(s), "svd": lambda: torch.linalg.svd(a, full_matrices=False)}
    for name, f in fs.items():
        if n > 128 and name in ("eigh", "svd"): continue
        f(); torch.cuda.synchronize(); ts = []
        for _ in range(5):
            t = time.perf_counter(); f(); torch.cuda.synchronize(); ts.append((time.perf_counter() - t) * 1e3)
        out[f"{name}_{n}"] = statistics.median(ts)
print(json.dumps(out))`;
  torch = JSON.parse(execFileSync("python3", ["-c", py], { stdio: ["ignore", "pipe", "inherit"] }).toString().trim().split("\n").pop());
} catch (e) {
  console.log(`torch not measured: ${String(e.message).split("\n")[0]}`);
}
console.log("float64 n x n, ms per call: tessera | torch");
for (const n of sizes)
  console.log(`  n ${String(n).padStart(5)}  ` + Object.keys(ops).filter((k) => ours[`${k}_${n}`] !== undefined).map((k) => `${k} ${ours[`${k}_${n}`].toFixed(2)}${torch ? ` | ${torch[`${k}_${n}`].toFixed(2)}` : ""}`).join("   "));
