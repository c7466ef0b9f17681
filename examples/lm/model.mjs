// The model of the language-model example: a character-level Transformer decoder (token and learned
// position embeddings, a pre-norm TransformerEncoder under a causal mask, a linear head), its
// training step, and temperature sampling.
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";
import { compile } from "@tessera/transforms";

export class CharTransformer extends nn.Module {
  /**
   * `vocab` characters, `contextLen` positions at most; by default 2 layers, width 128, 4 heads and
   * an MLP of 4 x 128 (the configuration).
   */
  constructor(vocab, { contextLen = 128, dims = 128, numHeads = 4, numLayers = 2 } = {}) {
    super();
    this.contextLen = contextLen;
    this.embedding = new nn.Embedding(vocab, dims);
    // Learned absolute positions: one row per position, added to the character embedding.
    this.positions = new nn.Embedding(contextLen, dims);
    this.encoder = new nn.TransformerEncoder(numLayers, dims, numHeads, { mlpDims: 4 * dims });
    this.head = new nn.Linear(dims, vocab);
  }

  /** Character ids `x [B, L]` (L <= contextLen) to next-character logits `[B, L, vocab]`. */
  forward(x) {
    const L = x.shape[1];
    if (L > this.contextLen) throw new RangeError(`CharTransformer: sequence length ${L} exceeds contextLen ${this.contextLen}`);
    const h = mx.add(this.embedding.forward(x), this.positions.forward(mx.arange(0, L, 1, "int32")));
    // Additive causal mask: position i attends to positions j <= i only.
    const mask = nn.MultiHeadAttention.createAdditiveCausalMask(L);
    return this.head.forward(this.encoder.forward(h, mask));
  }
}

/** Mean cross-entropy of the next-character logits of `x` against `y` (both `[B, L]`). */
export function lossFn(model, x, y) {
  const logits = model.forward(x);
  const [b, l, v] = logits.shape;
  return nn.losses.crossEntropy(mx.reshape(logits, [b * l, v]), mx.reshape(y, [b * l]), { reduction: "mean" });
}

/**
 * A training step for `model` with AdamW: `step(x, y)` runs forward, backward and the update, and
 * evaluates the loss, the parameters and the optimizer state in one `mx.eval`; it returns the loss.
 */
export function makeTrainer(model, { learningRate = 1e-3, weightDecay = 0.01 } = {}) {
  const opt = new optim.AdamW({ learningRate, weightDecay });
  opt.init(model.trainableParameters()); // the state exists before the first step: one trace
  const lossAndGrad = nn.valueAndGrad(model, (x, y) => lossFn(model, x, y));
  // The step compiled: traced once, then one native program per step.
  const update = compile((x, y) => {
    const [loss, grads] = lossAndGrad(x, y);
    opt.update(model, grads);
    return loss;
  }, { inputs: [model, opt], outputs: [model, opt] });
  const step = (x, y) => {
    const loss = update(x, y);
    mx.eval(loss, model.parameters(), opt.state);
    return loss.item();
  };
  return { step, optimizer: opt };
}

/**
 * Continues `prompt` (character ids) by `length` characters, each drawn with
 * `mx.random.categorical` from the last position's logits divided by `temperature`, over at most
 * the last `contextLen` characters. Returns the new ids (Int32Array).
 */
export function generate(model, prompt, length, { temperature = 0.8, key = mx.random.key(0) } = {}) {
  if (!(temperature > 0)) throw new RangeError(`generate: temperature must be positive; got ${temperature}`);
  const ids = Array.from(prompt);
  if (!ids.length) throw new RangeError("generate: the prompt must hold at least one character");
  const wasTraining = model.training;
  model.eval();
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const ctx = ids.slice(-model.contextLen);
    const logits = model.forward(mx.array(Int32Array.from(ctx)).reshape([1, ctx.length]));
    const last = mx.reshape(logits.index(0, -1), [-1]);
    const [k, sub] = mx.random.split(key);
    key = k;
    const next = Number(mx.random.categorical(mx.div(last, temperature), { key: sub }).item());
    ids.push(next);
    out[i] = next;
  }
  model.train(wasTraining);
  return out;
}
