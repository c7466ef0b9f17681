// Training steps per second on a GPU, tessera beside its peers in the same run: the MLP
// 784-512-512-10 with Adam at batch 256 and the character Transformer of examples/lm with AdamW at
// 16 x 128, tessera uncompiled and through compile (bench/train.mjs --child ... --device gpu), and
// PyTorch eager, torch.compile (reduce-overhead) and jax.jit (bench/gpu_train.py).
// Run on a machine with a CUDA GPU: `node bench/gpu_train.mjs [--seconds S]` (Python with torch and
// jax on PATH as python3; a missing peer is reported as such).
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as mx from "@tessera/core";

const { values: args } = parseArgs({ options: { seconds: { type: "string", default: "3" } } });
if (!mx.isAvailable(mx.gpu)) {
  console.log("bench/gpu_train.mjs: no gpu in this build or on this machine");
  process.exit(0);
}
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const lastJSON = (out) => JSON.parse(out.toString().trim().split("\n").pop());
// Each row is printed as soon as it is measured, so a run cut short still shows what it measured.
const print = (r) => console.log(`${r[0].padEnd(12)}  ${r[1].padEnd(34)}  ${r[2]}`);
print(["config", "framework", "steps/s"]);
// The TF32 row lets cuBLAS round float32 matmul inputs to TF32 (TESSERA_ALLOW_TF32=1), which is
// what jax.jit does by default on this gpu; the other rows compute float32 matmuls in float32.
const variants = [["tessera", false, false], ["tessera compile(step)", true, false], ["tessera compile(step), TF32", true, true]];
for (const config of ["mlp-adam", "transformer"]) {
  for (const [name, compiled, tf32] of variants) {
    const extra = compiled ? ["--compiled"] : [];
    const env = tf32 ? { ...process.env, TESSERA_ALLOW_TF32: "1" } : process.env;
    try {
      const r = lastJSON(execFileSync(process.execPath, [here("./train.mjs"), "--child", config, "--device", "gpu", "--seconds", args.seconds, ...extra], { stdio: ["ignore", "pipe", "inherit"], env }));
      // A compiled step replays one CUDA graph per call (docs/cuda.md); misses say why not.
      const graph = r.replay ? ` (graph: ${r.replay.captures} recorded, ${r.replay.replays} replays, ${r.replay.misses} misses${r.replay.lastMiss ? `, last: ${r.replay.lastMiss}` : ""})` : "";
      print([config, name, r.stepsPerSec.toFixed(0) + graph]);
    } catch (e) {
      print([config, name, `failed: ${String(e.message).split("\n")[0].slice(0, 120)}`]);
    }
  }
}
// The peers print a JSON line per configuration and framework as each finishes.
await new Promise((resolve) => {
  const child = spawn("python3", [here("./gpu_train.py"), "--seconds", args.seconds], { stdio: ["ignore", "pipe", "inherit"] });
  let pending = "";
  child.stdout.on("data", (chunk) => {
    pending += chunk;
    for (let k; (k = pending.indexOf("\n")) >= 0; pending = pending.slice(k + 1)) {
      const text = pending.slice(0, k).trim();
      if (!text) continue;
      const r = JSON.parse(text);
      print([r.config, `${r.framework}${r.version ? ` ${r.version}` : ""}`, r.error ? `error: ${r.error.slice(0, 100)}` : r.stepsPerSec.toFixed(0)]);
    }
  });
  child.on("error", (e) => {
    print(["peers", "python3 bench/gpu_train.py", `failed: ${e.message}`]);
    resolve();
  });
  child.on("close", resolve);
});
