// Trains a character-level Transformer language model on the bundled public-domain text (the
// opening of Shakespeare's Coriolanus), printing the loss as it trains and the held-out loss, then
// writes a sample drawn with temperature. Run with `pnpm lm` (or `node examples/lm/main.mjs`);
// `--help` lists the options.
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import * as mx from "@tessera/core";
import * as optim from "@tessera/optim";
import { loadText, makeVocab, rng, sampleBatch } from "./data.mjs";
import { CharTransformer, makeTrainer, generate, lossFn } from "./model.mjs";

const HELP = `usage: node examples/lm/main.mjs [options]
  --steps N        training steps (default 1000; 0 with --load only samples)
  --batch N        windows per step (default 16)
  --seq N          characters per window, at most 128 (default 128)
  --lr X           AdamW's initial learning rate, decayed along a cosine to a tenth (default 0.003)
  --seed N         seed of the initial weights, the windows and the sample (default 0)
  --save FILE      write the trained weights to FILE (safetensors)
  --load FILE      start from the weights in FILE (safetensors, as written by --save)
  --sample N       characters to generate after training (default 400)
  --temperature X  sampling temperature (default 0.8)
  --prompt TEXT    what the sample continues (default "MENENIUS:\\n")
  --log-every N    print the mean training loss every N steps (default 25)`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      steps: { type: "string", default: "1000" },
      batch: { type: "string", default: "16" },
      seq: { type: "string", default: "128" },
      lr: { type: "string", default: "0.003" },
      seed: { type: "string", default: "0" },
      save: { type: "string" },
      load: { type: "string" },
      sample: { type: "string", default: "400" },
      temperature: { type: "string", default: "0.8" },
      prompt: { type: "string", default: "MENENIUS:\n" },
      "log-every": { type: "string", default: "25" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (e) {
  console.error(`${e.message}\n\n${HELP}`);
  process.exit(2);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const fail = (msg) => {
  console.error(`${msg}\n\n${HELP}`);
  process.exit(2);
};
const int = (name, min = 1, max = Infinity) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) fail(`--${name} must be an integer in [${min}, ${max}]; got ${args[name]}`);
  return v;
};
const positive = (name) => {
  const v = Number(args[name]);
  if (!(v > 0) || !Number.isFinite(v)) fail(`--${name} must be a positive number; got ${args[name]}`);
  return v;
};
const CONTEXT = 128;
const steps = int("steps", 0), batch = int("batch"), seqLen = int("seq", 1, CONTEXT), seed = int("seed", 0);
const sampleLen = int("sample", 0), logEvery = int("log-every");
const lr = positive("lr"), temperature = positive("temperature");

// Data: the first 90% of the text trains, the last 10% is held out.
const text = loadText();
const vocab = makeVocab(text);
let prompt;
try {
  prompt = vocab.encode(args.prompt);
} catch (e) {
  fail(`--prompt: ${e.message}`);
}
if (!prompt.length) fail("--prompt must not be empty");
const ids = vocab.encode(text);
const split = Math.floor(ids.length * 0.9);
const trainIds = ids.subarray(0, split), heldIds = ids.subarray(split);
console.log(`data: ${text.length.toLocaleString("en-US")} characters of Coriolanus, ${vocab.size} distinct; ${trainIds.length.toLocaleString("en-US")} train, ${heldIds.length.toLocaleString("en-US")} held out`);

// Model.
mx.random.seed(seed);
const model = new CharTransformer(vocab.size, { contextLen: CONTEXT });
if (args.load) {
  model.loadWeights(resolve(args.load));
  console.log(`loaded weights from ${resolve(args.load)}`);
}
const nParams = mx.treeFlatten(model.parameters()).reduce((s, [, a]) => s + a.size, 0);
console.log(`model: 2-layer Transformer, width 128, 4 heads, learned positions (${nParams.toLocaleString("en-US")} parameters); uniform-chance loss ln(${vocab.size}) = ${Math.log(vocab.size).toFixed(3)}`);

/** Mean loss over 8 fixed held-out windows (forward only, no dropout). */
function heldOutLoss() {
  const r = rng(12345);
  model.eval();
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    const [x, y] = sampleBatch(heldIds, 8, seqLen, r);
    sum += lossFn(model, x, y).item();
  }
  model.train();
  return sum / 8;
}

// Training.
if (steps > 0) {
  console.log(`training: ${steps} steps of ${batch} x ${seqLen} characters, AdamW lr ${lr} (cosine decay to ${+(lr / 10).toPrecision(3)})`);
  const { step } = makeTrainer(model, { learningRate: optim.cosineDecay(lr, steps, lr / 10) });
  const rand = rng(seed + 1);
  const t0 = performance.now();
  let sum = 0, n = 0;
  for (let s = 1; s <= steps; s++) {
    const [x, y] = sampleBatch(trainIds, batch, seqLen, rand);
    sum += step(x, y);
    n++;
    if (s % logEvery === 0 || s === steps) {
      const secs = (performance.now() - t0) / 1000;
      console.log(`step ${String(s).padStart(String(steps).length)}/${steps}  loss ${(sum / n).toFixed(4)}  ${secs.toFixed(1)} s (${(s / secs).toFixed(1)} steps/s)`);
      sum = 0;
      n = 0;
    }
  }
}
console.log(`held-out loss: ${heldOutLoss().toFixed(4)}`);
if (args.save) {
  model.saveWeights(resolve(args.save));
  console.log(`saved weights to ${resolve(args.save)}`);
}

// Sample.
if (sampleLen > 0) {
  const out = generate(model, prompt, sampleLen, { temperature, key: mx.random.key(seed + 2) });
  console.log(`\nsample (temperature ${temperature}):\n${"-".repeat(40)}\n${args.prompt}${vocab.decode(out)}\n${"-".repeat(40)}`);
}
