/**
 * @file Loss functions with MLX's definitions. Every loss takes `reduction` ("none" | "mean" |
 * "sum"), default "none": the per-element (or per-sample) losses come back unreduced.
 */
import * as mx from "@tessera/core";
import type { Array } from "@tessera/core";

/** How a loss reduces its per-element values: not at all (the default), by mean, or by sum. */
export type Reduction = "none" | "mean" | "sum";

/** The `reduction` option shared by every loss. */
export interface ReductionOptions {
  /** "none" (default), "mean" or "sum". */
  reduction?: Reduction;
}

const fmt = (shape: number[]) => `[${shape.join(",")}]`;

function reduce(op: string, loss: Array, reduction: Reduction | undefined): Array {
  switch (reduction ?? "none") {
    case "none": return loss;
    case "mean": return mx.mean(loss);
    case "sum": return mx.sum(loss);
    default: throw new RangeError(`${op}: reduction must be "none", "mean" or "sum"; got ${JSON.stringify(reduction)}`);
  }
}

function sameShape(op: string, a: Array, b: Array, what = "predictions and targets"): void {
  if (fmt(a.shape) !== fmt(b.shape)) throw new mx.ShapeError(`${op}: ${what} must have the same shape; got ${fmt(a.shape)} and ${fmt(b.shape)}`);
}

function applyWeights(op: string, loss: Array, weights: Array | undefined | null): Array {
  if (weights === undefined || weights === null) return loss;
  if (fmt(weights.shape) !== fmt(loss.shape)) {
    throw new mx.ShapeError(`${op}: weights must have the shape of the unreduced loss ${fmt(loss.shape)}; got ${fmt(weights.shape)}`);
  }
  return mx.mul(loss, weights);
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions extends ReductionOptions {
  /** The class axis of the logits (default -1). */
  axis?: number;
  /** Label smoothing in [0, 1) (default 0). */
  labelSmoothing?: number;
  /** One weight per target (the shape of the unreduced loss), as in MLX. */
  weights?: Array;
}

/**
 * Cross entropy of `logits` against `targets`, which are class indices (one axis fewer than the
 * logits) or probabilities (the logits' shape): `logsumexp(logits) - score`, where the score is
 * the target's logit (or the probability-weighted sum). With label smoothing `s` the loss is
 * `logsumexp - (1 - s) * score - s * mean(logits)`.
 * @example
 * const loss = nn.losses.crossEntropy(logits, labels, { reduction: "mean" });
 * nn.losses.crossEntropy(logits, labels, { labelSmoothing: 0.1 }); // one loss per sample
 */
export function crossEntropy(logits: Array, targets: Array, options: CrossEntropyOptions = {}): Array {
  const op = "crossEntropy";
  const { axis = -1, labelSmoothing = 0, weights, reduction } = options;
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new RangeError(`${op}: labelSmoothing must be in [0, 1); got ${labelSmoothing}`);
  const ax = axis < 0 ? axis + logits.ndim : axis;
  if (ax < 0 || ax >= logits.ndim) throw new RangeError(`${op}: axis ${axis} is out of range for logits of shape ${fmt(logits.shape)}`);
  let score: Array;
  if (targets.ndim === logits.ndim) {
    sameShape(op, logits, targets, "logits and probability targets");
    score = mx.sum(mx.mul(logits, targets), ax);
  } else if (targets.ndim === logits.ndim - 1) {
    const expected = logits.shape.filter((_, i) => i !== ax);
    if (fmt(expected) !== fmt(targets.shape)) {
      throw new mx.ShapeError(`${op}: class-index targets must have the logits' shape without the class axis ${fmt(expected)}; got ${fmt(targets.shape)}`);
    }
    score = mx.squeeze(mx.takeAlongAxis(logits, mx.expandDims(targets, ax), ax), ax);
  } else {
    throw new mx.ShapeError(`${op}: targets must be class indices (rank ${logits.ndim - 1}) or probabilities (rank ${logits.ndim}); got shape ${fmt(targets.shape)} for logits ${fmt(logits.shape)}`);
  }
  const lse = mx.logsumexp(logits, ax);
  let loss: Array;
  if (labelSmoothing > 0) {
    loss = mx.sub(mx.sub(lse, mx.mul(score, 1 - labelSmoothing)), mx.mul(mx.mean(logits, ax), labelSmoothing));
  } else {
    loss = mx.sub(lse, score);
  }
  return reduce(op, applyWeights(op, loss, weights), reduction);
}

/** Options of {@link binaryCrossEntropy}. */
export interface BinaryCrossEntropyOptions extends ReductionOptions {
  /** Whether `inputs` are logits (default true) or probabilities. */
  withLogits?: boolean;
  /** Weights of the shape of the unreduced loss. */
  weights?: Array;
}

/**
 * Binary cross entropy. With logits (the default): `log(1 + exp(x)) - x * t`; with probabilities:
 * `-(t * log(p) + (1 - t) * log(1 - p))`, each log clipped at -100 as in MLX and PyTorch.
 * @example
 * nn.losses.binaryCrossEntropy(logits, labels, { reduction: "mean" });
 * nn.losses.binaryCrossEntropy(probs, labels, { withLogits: false });
 */
export function binaryCrossEntropy(inputs: Array, targets: Array, options: BinaryCrossEntropyOptions = {}): Array {
  const op = "binaryCrossEntropy";
  const { withLogits = true, weights, reduction } = options;
  sameShape(op, inputs, targets, "inputs and targets");
  let loss: Array;
  if (withLogits) {
    loss = mx.sub(mx.logaddexp(inputs, 0), mx.mul(inputs, targets));
  } else {
    const logP = mx.clip(mx.log(inputs), -100, null);
    const log1mP = mx.clip(mx.log(mx.sub(1, inputs)), -100, null);
    loss = mx.neg(mx.add(mx.mul(targets, logP), mx.mul(mx.sub(1, targets), log1mP)));
  }
  return reduce(op, applyWeights(op, loss, weights), reduction);
}

/** Options of {@link nllLoss}. */
export interface NllLossOptions extends ReductionOptions {
  /** The class axis (default -1). */
  axis?: number;
}

/**
 * Negative log likelihood of class-index `targets` under log-probabilities `inputs`.
 * @example
 * nn.losses.nllLoss(nn.logSoftmax(logits), labels, { reduction: "mean" });
 */
export function nllLoss(inputs: Array, targets: Array, options: NllLossOptions = {}): Array {
  const op = "nllLoss";
  const { axis = -1, reduction } = options;
  const ax = axis < 0 ? axis + inputs.ndim : axis;
  if (ax < 0 || ax >= inputs.ndim) throw new RangeError(`${op}: axis ${axis} is out of range for inputs of shape ${fmt(inputs.shape)}`);
  if (targets.ndim !== inputs.ndim - 1) throw new mx.ShapeError(`${op}: targets must be class indices of rank ${inputs.ndim - 1}; got shape ${fmt(targets.shape)}`);
  const loss = mx.neg(mx.squeeze(mx.takeAlongAxis(inputs, mx.expandDims(targets, ax), ax), ax));
  return reduce(op, loss, reduction);
}

/**
 * Mean squared error terms, `(predictions - targets)^2`.
 * @example
 * nn.losses.mseLoss(pred, y, { reduction: "mean" });
 */
export function mseLoss(predictions: Array, targets: Array, options: ReductionOptions = {}): Array {
  sameShape("mseLoss", predictions, targets);
  return reduce("mseLoss", mx.square(mx.sub(predictions, targets)), options.reduction);
}

/**
 * Absolute error terms, `|predictions - targets|`.
 * @example
 * nn.losses.l1Loss(pred, y, { reduction: "mean" });
 */
export function l1Loss(predictions: Array, targets: Array, options: ReductionOptions = {}): Array {
  sameShape("l1Loss", predictions, targets);
  return reduce("l1Loss", mx.abs(mx.sub(predictions, targets)), options.reduction);
}

/** Options of {@link smoothL1Loss}. */
export interface SmoothL1LossOptions extends ReductionOptions {
  /** Where the loss switches from quadratic to linear (default 1). */
  beta?: number;
}

/**
 * Smooth L1: `0.5 d^2 / beta` where `d = |predictions - targets| < beta`, else `d - 0.5 beta`.
 * @example
 * nn.losses.smoothL1Loss(pred, y, { beta: 0.5, reduction: "mean" });
 */
export function smoothL1Loss(predictions: Array, targets: Array, options: SmoothL1LossOptions = {}): Array {
  const { beta = 1, reduction } = options;
  sameShape("smoothL1Loss", predictions, targets);
  const d = mx.abs(mx.sub(predictions, targets));
  const loss = mx.where(mx.less(d, beta), mx.div(mx.mul(mx.square(d), 0.5), beta), mx.sub(d, 0.5 * beta));
  return reduce("smoothL1Loss", loss, reduction);
}

/** Options of {@link huberLoss}. */
export interface HuberLossOptions extends ReductionOptions {
  /** Where the loss switches from quadratic to linear (default 1). */
  delta?: number;
}

/**
 * Huber loss: `0.5 d^2` for `d = |inputs - targets| <= delta`, else `delta (d - 0.5 delta)`.
 * @example
 * nn.losses.huberLoss(pred, y, { delta: 2, reduction: "mean" });
 */
export function huberLoss(inputs: Array, targets: Array, options: HuberLossOptions = {}): Array {
  const { delta = 1, reduction } = options;
  sameShape("huberLoss", inputs, targets, "inputs and targets");
  const d = mx.abs(mx.sub(inputs, targets));
  const quadratic = mx.minimum(d, delta);
  const linear = mx.sub(d, quadratic);
  const loss = mx.add(mx.mul(mx.square(quadratic), 0.5), mx.mul(linear, delta));
  return reduce("huberLoss", loss, reduction);
}

/** Options of {@link klDivLoss}. */
export interface KlDivLossOptions extends ReductionOptions {
  /** The distribution axis (default -1). */
  axis?: number;
}

/**
 * Kullback-Leibler divergence KL(targets || inputs), both given as log-probabilities (as MLX):
 * `sum(exp(targets) * (targets - inputs), axis)`.
 * @example
 * nn.losses.klDivLoss(nn.logSoftmax(logits), logTargets, { reduction: "mean" });
 */
export function klDivLoss(inputs: Array, targets: Array, options: KlDivLossOptions = {}): Array {
  const { axis = -1, reduction } = options;
  sameShape("klDivLoss", inputs, targets, "inputs and targets");
  return reduce("klDivLoss", mx.sum(mx.mul(mx.exp(targets), mx.sub(targets, inputs)), axis), reduction);
}

/** Options of {@link cosineSimilarityLoss}. */
export interface CosineSimilarityLossOptions extends ReductionOptions {
  /** The axis of the vectors (default 1, as MLX). */
  axis?: number;
  /** Lower bound of the product of norms (default 1e-8). */
  eps?: number;
}

/**
 * Cosine similarity of `x1` and `x2` along `axis`, as MLX's `cosine_similarity_loss`:
 * `sum(x1 * x2) / max(|x1| |x2|, eps)` (the similarity itself, not one minus it).
 * @example
 * nn.losses.cosineSimilarityLoss(a, b, { reduction: "mean" });
 */
export function cosineSimilarityLoss(x1: Array, x2: Array, options: CosineSimilarityLossOptions = {}): Array {
  const { axis = 1, eps = 1e-8, reduction } = options;
  sameShape("cosineSimilarityLoss", x1, x2, "x1 and x2");
  const n1 = mx.sqrt(mx.sum(mx.square(x1), axis));
  const n2 = mx.sqrt(mx.sum(mx.square(x2), axis));
  const loss = mx.div(mx.sum(mx.mul(x1, x2), axis), mx.maximum(mx.mul(n1, n2), eps));
  return reduce("cosineSimilarityLoss", loss, reduction);
}
