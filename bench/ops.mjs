// Single ops of issue 8 beside PyTorch CPU in the same run: conv2d, mx.fast.layerNorm, softmax and
// mx.fast.scaledDotProductAttention, forward and forward+backward (the gradients of every input
// given a random output cotangent, through mx.vjp, all evaluated in one mx.eval). Torch (Debian's
// python3-torch, bench/torch_ops.py) runs at 1 and at 2 threads; each row reports the faster.
// Run: `npx -y pnpm@12.4.2 bench:ops` (or `node bench/ops.mjs`; `--only conv2d,sdpa` runs just those groups).
import * as mx from "@tessera/core";
import { vjp } from "@tessera/transforms";
import { fileURLToPath } from "node:url";
import { findTorchPython } from "./python.mjs";
import { bestSeconds, disposeAll, fastest, peerEnv, printTable, randomArray, runJSON } from "./util.mjs";

const python = findTorchPython();
const peer = fileURLToPath(new URL("./torch_ops.py", import.meta.url));
const ALL = ["conv2d", "layernorm", "softmax", "sdpa"];
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt >= 0 ? (process.argv[onlyAt + 1] ?? "").split(",") : ALL;
const unknown = only.filter((g) => !ALL.includes(g));
if (unknown.length) throw new Error(`bench/ops.mjs --only: unknown group(s) ${unknown.join(",")}; expected some of ${ALL.join(",")}`);
const GROUPS = only.join(",");

/** Seconds per forward of `f(...inputs)`. */
const forward = (f, inputs) => bestSeconds(() => {
  const y = f(...inputs);
  mx.eval(y);
  y.dispose();
});

/** Seconds per forward + backward: f's output and the vjps of all inputs in one mx.eval. */
function backward(f, inputs) {
  const shape = f(...inputs).shape;
  const cot = randomArray(mx, shape);
  return bestSeconds(() => {
    const [outs, grads] = vjp(f, inputs, [cot]);
    mx.eval(outs, grads);
    disposeAll([outs, grads]);
  });
}

// The cases, named as bench/torch_ops.py names them.
const cases = [];
const add = (key, label, seconds) => cases.push({ key, label, seconds });

if (only.includes("conv2d")) {
  // Channels-last here, NCHW in torch (each framework's own layout): x [32, 32, 32, 64], w [64, 3, 3, 64].
  const x = randomArray(mx, [32, 32, 32, 64]), w = randomArray(mx, [64, 3, 3, 64]);
  const f = (x, w) => mx.conv2d(x, w, { padding: 1 });
  add("conv2d", "conv2d b32 32x32x64, 3x3x64x64, pad 1", forward(f, [x, w]));
  add("conv2d-bwd", "  fwd+bwd (input, weight)", backward(f, [x, w]));
}
if (only.includes("layernorm") || only.includes("softmax")) {
  const x = randomArray(mx, [4096, 4096]), w = randomArray(mx, [4096]), b = randomArray(mx, [4096]);
  const f = (x, w, b) => mx.fast.layerNorm(x, w, b, 1e-5);
  if (only.includes("layernorm")) {
    add("layernorm", "fast.layerNorm 4096x4096", forward(f, [x, w, b]));
    add("layernorm-bwd", "  fwd+bwd (x, weight, bias)", backward(f, [x, w, b]));
  }
  if (only.includes("softmax")) add("softmax", "softmax 4096x4096, last axis", forward((x) => mx.softmax(x, -1), [x]));
}
if (only.includes("sdpa")) {
  const [q, k, v] = [0, 1, 2].map(() => randomArray(mx, [16, 4, 128, 64]));
  for (const mask of [null, "causal"]) {
    const f = (q, k, v) => mx.fast.scaledDotProductAttention(q, k, v, { scale: 1 / 8, mask });
    const key = mask ? "sdpa-causal" : "sdpa";
    add(key, `fast.scaledDotProductAttention b16 h4 L128 D64${mask ? ", causal" : ""}`, forward(f, [q, k, v]));
    add(`${key}-bwd`, "  fwd+bwd (q, k, v)", backward(f, [q, k, v]));
  }
}

const runs = [1, 2].map((threads) => runJSON(python, [peer, "--threads", String(threads), "--groups", GROUPS], { env: peerEnv(threads) }));
const torch = fastest(runs);

console.log(`tessera on ${mx.internal.native.numThreads()} threads (${mx.internal.native.cpuIsa()}) vs PyTorch ${runs[0].torch} CPU (${python}), torch at 1 and 2 threads, the faster shown`);
console.log("torch attention is matmul / softmax / matmul (+ additive causal mask): torch 1.13 has no F.scaled_dot_product_attention\n");
const ms = (s) => (s * 1e3).toFixed(3);
printTable(["op", "tessera ms", "torch ms (threads)", "ratio"], cases.map(({ key, label, seconds }) =>
  [label, ms(seconds), `${ms(torch[key].seconds)} (${torch[key].threads})`, (torch[key].seconds / seconds).toFixed(2)]));
console.log("\nratio = torch time / tessera time (above 1: tessera faster); each time the best of 7 repetitions after warm-up");
