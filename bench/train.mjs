// Steps per second of whole training steps (forward, backward, the optimizer's update and one
// mx.eval of the loss, the parameters and the optimizer state), tessera beside PyTorch CPU (Debian's
// python3-torch, at 1 and 2 threads, the faster reported; each the best of three timing windows),
// and each one's peak RSS. Every configuration runs in a child process of its own, so each peak
// RSS is that configuration's alone.
// Run: `npx -y pnpm@12.4.2 bench:train` (or `node bench/train.mjs`); `--help` lists the options.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findTorchPython } from "./python.mjs";
import { peerEnv } from "./util.mjs";

const HELP = `usage: node bench/train.mjs [options]
  --seconds X     timed seconds per configuration, after a warm-up of 3 steps, split into three
                  windows of which the fastest is reported (default 3)
  --rss-steps N   MLP Adam steps of the peak-RSS row (default 3000)
Each configuration runs uncompiled and through compile(step, { inputs: [model, opt], outputs: [model, opt] }).`;

const CONFIGS = {
  "mlp-sgd": "MLP 784-512-512-10, SGD m=0.9, batch 256",
  "mlp-adam": "MLP 784-512-512-10, Adam, batch 256",
  transformer: "char Transformer (examples/lm), AdamW, 16 x 128",
};
const VOCAB = 59; // the distinct characters of examples/lm's text

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    "rss-steps": { type: "string", default: "3000" },
    child: { type: "string" }, // internal: run one tessera configuration and print JSON
    steps: { type: "string", default: "0" }, // internal, with --child
    compiled: { type: "boolean", default: false }, // internal, with --child: the step through compile
    device: { type: "string", default: "cpu" }, // internal, with --child: cpu or gpu (bench/gpu_train.mjs)
    profile: { type: "boolean", default: false }, // internal, with --child: also print mx.profile of one step
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}

/** One tessera configuration in this process; prints the same JSON as bench/torch_train.py. */
async function child(config, seconds, steps, compiled, device, profile) {
  const mx = await import("@tessera/core");
  const nn = await import("@tessera/nn");
  const optim = await import("@tessera/optim");
  if (device === "gpu") mx.setDefaultDevice(mx.gpu);
  else if (device !== "cpu") throw new Error(`bench/train.mjs: unknown device ${device}`);
  mx.random.seed(0);
  let model, opt, x, y, lossFn;
  if (config === "mlp-sgd" || config === "mlp-adam") {
    const { MLP } = await import("../examples/mnist/models.mjs");
    model = new MLP([784, 512, 512, 10]);
    opt = config === "mlp-sgd" ? new optim.SGD({ learningRate: 0.01, momentum: 0.9 }) : new optim.Adam({ learningRate: 1e-3 });
    x = mx.random.normal([256, 784]);
    y = mx.random.randint(0, 10, [256], { dtype: "int32" });
    lossFn = (x, y) => nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" });
  } else if (config === "transformer") {
    const lm = await import("../examples/lm/model.mjs");
    model = new lm.CharTransformer(VOCAB, { contextLen: 128 });
    opt = new optim.AdamW({ learningRate: 1e-3, weightDecay: 0.01 });
    x = mx.random.randint(0, VOCAB, [16, 128], { dtype: "int32" });
    y = mx.random.randint(0, VOCAB, [16, 128], { dtype: "int32" });
    lossFn = (x, y) => lm.lossFn(model, x, y);
  } else throw new Error(`bench/train.mjs: unknown config ${config}`);
  mx.eval(x, y, model.parameters());
  const lossAndGrad = nn.valueAndGrad(model, lossFn);
  const update = (x, y) => {
    const [loss, grads] = lossAndGrad(x, y);
    opt.update(model, grads);
    return loss;
  };
  const { compile } = await import("@tessera/transforms");
  const run = compiled ? compile(update, { inputs: [model, opt], outputs: [model, opt] }) : update;
  // One eval per step, as a training loop does; the loss is read at the end of a timed window
  // (as the peers do: on a gpu, reading it every step would wait for the device every step).
  const step = () => {
    const loss = run(x, y);
    mx.eval(loss, model.parameters(), opt.state);
    return loss;
  };
  let n = 0, secs;
  if (steps > 0) {
    const t = performance.now();
    let last;
    for (; n < steps; n++) last = step();
    last?.item();
    secs = (performance.now() - t) / 1000;
  } else {
    for (let i = 0; i < 3; i++) step().item(); // warm-up: buffer cache, thread pool
    // The best of three windows of `seconds / 3`: on a shared machine the least disturbed one.
    let best = 0;
    for (let w = 0; w < 3; w++) {
      const t = performance.now();
      let k = 0, last;
      while (k < 3 || performance.now() - t < (seconds * 1000) / 3) {
        last = step();
        k++;
      }
      last.item();
      const s = (performance.now() - t) / 1000;
      if (k / s > best) [best, n, secs] = [k / s, k, s];
    }
  }
  const peakRssMB = process.resourceUsage().maxRSS / 1024; // maxRSS is in kilobytes
  const threads = mx.internal.native.numThreads();
  if (profile) {
    // Time per primitive of one step, each instruction waited for (a profiled run is never replayed).
    const p = mx.profile(() => step());
    const rows = p.rows.slice(0, 16).map((r) => `${r.ms.toFixed(3).padStart(8)} ms ${String(r.calls).padStart(4)}x ${r.primitive.slice(0, 90)}`);
    console.error(`profile of one step: ${p.wallMs.toFixed(2)} ms wall, ${p.kernelMs.toFixed(2)} ms in instructions\n${rows.join("\n")}`);
  }
  // How a compiled step ran on a device that records it (docs/cuda.md: replays, misses and why).
  const replay = compiled && device === "gpu" ? mx.internal.native.replayStats() : undefined;
  console.log(JSON.stringify({ steps: n, seconds: secs, stepsPerSec: n / secs, peakRssMB, threads, replay }));
}

if (args.child) {
  await child(args.child, Number(args.seconds), Number(args.steps), args.compiled, args.device, args.profile);
  process.exit(0);
}

const seconds = Number(args.seconds), rssSteps = Number(args["rss-steps"]);
if (!(seconds > 0)) throw new RangeError(`--seconds must be positive; got ${args.seconds}`);
if (!Number.isInteger(rssSteps) || rssSteps < 1) throw new RangeError(`--rss-steps must be a positive integer; got ${args["rss-steps"]}`);

const python = findTorchPython();
const self = fileURLToPath(import.meta.url);
const peer = fileURLToPath(new URL("./torch_train.py", import.meta.url));
const json = (out) => JSON.parse(out.toString().trim().split("\n").pop());
const tessera = (config, extra = []) =>
  json(execFileSync(process.execPath, [self, "--child", config, "--seconds", String(seconds), ...extra], { stdio: ["ignore", "pipe", "inherit"] }));
const torch = (config, threads, extra = []) =>
  json(execFileSync(python, [peer, "--config", config, "--threads", String(threads), "--seconds", String(seconds), "--vocab", String(VOCAB), ...extra], { stdio: ["ignore", "pipe", "inherit"], env: peerEnv() }));

const rows = [];
let info;
for (const [config, label] of Object.entries(CONFIGS)) {
  const ours = tessera(config);
  const compiled = tessera(config, ["--compiled"]);
  const theirs = [torch(config, 1), torch(config, 2)].sort((a, b) => b.stepsPerSec - a.stepsPerSec)[0];
  info ??= { threads: ours.threads, torch: theirs.torch, blas: theirs.blas };
  for (const [name, r] of [[label, ours], [`  compiled (compile(step))`, compiled]]) {
    rows.push([name, r.stepsPerSec.toFixed(1), `${theirs.stepsPerSec.toFixed(1)} (${theirs.threads})`,
      (r.stepsPerSec / theirs.stepsPerSec).toFixed(2), r.peakRssMB.toFixed(0), theirs.peakRssMB.toFixed(0)]);
  }
}
// Peak RSS over a long run, torch at the thread count that was faster for MLP Adam.
const adamThreads = Number(rows[2][2].match(/\((\d+)\)/)[1]);
const oursLong = tessera("mlp-adam", ["--steps", String(rssSteps)]);
const theirsLong = torch("mlp-adam", adamThreads, ["--steps", String(rssSteps)]);
rows.push([`peak RSS, ${rssSteps.toLocaleString("en-US")} MLP Adam steps`, oursLong.stepsPerSec.toFixed(1),
  `${theirsLong.stepsPerSec.toFixed(1)} (${adamThreads})`, (oursLong.stepsPerSec / theirsLong.stepsPerSec).toFixed(2),
  oursLong.peakRssMB.toFixed(0), theirsLong.peakRssMB.toFixed(0)]);

console.log(`tessera on ${info.threads} threads vs PyTorch ${info.torch} CPU (${python}; BLAS: ${info.blas.join(", ") || "none loaded"}), ${seconds} s timed per configuration\n`);
const head = ["config", "tessera steps/s", "torch steps/s (threads)", "ratio", "tessera peak RSS MB", "torch peak RSS MB"];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
console.log(line(head));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));
console.log("\nratio = tessera steps/s / torch steps/s (above 1: tessera faster)");
