/** @file Normalization layers: LayerNorm, RMSNorm, GroupNorm (PyTorch's grouping) and BatchNorm. */
import * as mx from "@tessera/core";
import type { Array } from "@tessera/core";
import { Module } from "../module.js";

const fmt = (shape: number[]) => `[${shape.join(",")}]`;

function checkFeatures(op: string, x: Array, dims: number): void {
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== dims) {
    throw new mx.ShapeError(`${op}: the last axis of the input must have size ${dims}; got shape ${fmt(x.shape)}`);
  }
}

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn a scale `weight` (and a `bias`) (default true). */
  affine?: boolean;
  /** With `affine`, also learn a `bias` (default true). */
  bias?: boolean;
}

/**
 * Normalizes over the last axis (`dims` features): `(x - mean) / sqrt(var + eps) * weight + bias`,
 * with `weight` ones and `bias` zeros.
 * @example
 * const ln = new nn.LayerNorm(16);
 * ln.forward(mx.random.normal([4, 16])).shape; // [4, 16]
 */
export class LayerNorm extends Module {
  /** `[dims]`, when affine. */
  weight?: Array;
  /** `[dims]`, when affine with bias. */
  bias?: Array;
  readonly dims: number;
  readonly eps: number;

  constructor(dims: number, options: LayerNormOptions = {}) {
    super();
    const { eps = 1e-5, affine = true, bias = true } = options;
    this.dims = dims;
    this.eps = eps;
    if (affine) {
      this.weight = mx.ones([dims]);
      if (bias) this.bias = mx.zeros([dims]);
    }
  }

  /** Normalizes `x [..., dims]`. */
  override forward(x: Array): Array {
    checkFeatures("LayerNorm", x, this.dims);
    return mx.fast.layerNorm(x, this.weight ?? null, this.bias ?? null, this.eps);
  }
}

/** Options of {@link RMSNorm}. */
export interface RMSNormOptions {
  /** Added to the mean square (default 1e-5). */
  eps?: number;
}

/**
 * Root-mean-square normalization over the last axis: `x / sqrt(mean(x^2) + eps) * weight`,
 * `weight` ones.
 * @example
 * const norm = new nn.RMSNorm(16);
 * norm.forward(x);
 */
export class RMSNorm extends Module {
  /** `[dims]`. */
  weight: Array;
  readonly dims: number;
  readonly eps: number;

  constructor(dims: number, options: RMSNormOptions = {}) {
    super();
    this.dims = dims;
    this.eps = options.eps ?? 1e-5;
    this.weight = mx.ones([dims]);
  }

  /** Normalizes `x [..., dims]`. */
  override forward(x: Array): Array {
    checkFeatures("RMSNorm", x, this.dims);
    return mx.fast.rmsNorm(x, this.weight, this.eps);
  }
}

/** Options of {@link GroupNorm}. */
export interface GroupNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn a per-channel `weight` and `bias` (default true). */
  affine?: boolean;
}

/**
 * Group normalization of channels-last input `[N, ..., dims]`: the channels split into `numGroups`
 * contiguous groups (channel c in group `floor(c / (dims / numGroups))`, PyTorch's grouping), each
 * normalized over its channels and every spatial position of a sample; then a per-channel affine.
 * @example
 * const gn = new nn.GroupNorm(4, 16);
 * gn.forward(mx.random.normal([2, 8, 8, 16])).shape; // [2, 8, 8, 16]
 */
export class GroupNorm extends Module {
  /** `[dims]`, when affine. */
  weight?: Array;
  /** `[dims]`, when affine. */
  bias?: Array;
  readonly numGroups: number;
  readonly dims: number;
  readonly eps: number;

  constructor(numGroups: number, dims: number, options: GroupNormOptions = {}) {
    super();
    if (!Number.isInteger(numGroups) || numGroups < 1 || dims % numGroups !== 0) {
      throw new RangeError(`GroupNorm: dims (${dims}) must be divisible by numGroups (${numGroups})`);
    }
    const { eps = 1e-5, affine = true } = options;
    this.numGroups = numGroups;
    this.dims = dims;
    this.eps = eps;
    if (affine) {
      this.weight = mx.ones([dims]);
      this.bias = mx.zeros([dims]);
    }
  }

  /** Normalizes `x [N, ..., dims]`. */
  override forward(x: Array): Array {
    checkFeatures("GroupNorm", x, this.dims);
    if (x.ndim < 2) throw new mx.ShapeError(`GroupNorm: input must be [N, ..., dims]; got shape ${fmt(x.shape)}`);
    const g = this.numGroups;
    const xg = mx.reshape(x, [x.shape[0], -1, g, this.dims / g]);
    const mean = mx.mean(xg, [1, 3], { keepdims: true });
    const v = mx.var(xg, [1, 3], { keepdims: true });
    let y = mx.reshape(mx.mul(mx.sub(xg, mean), mx.rsqrt(mx.add(v, this.eps))), x.shape);
    if (this.weight) y = mx.mul(y, this.weight);
    if (this.bias) y = mx.add(y, this.bias);
    return y;
  }
}

/** Options of {@link BatchNorm}. */
export interface BatchNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Weight of the new batch in the running statistics (default 0.1). */
  momentum?: number;
  /** Learn a per-feature `weight` and `bias` (default true). */
  affine?: boolean;
  /** Keep running statistics for evaluation mode (default true). */
  trackRunningStats?: boolean;
}

/**
 * Batch normalization over every axis but the last (input `[N, C]`, `[N, L, C]` or `[N, H, W, C]`).
 * In training mode it uses the batch's mean and biased variance and updates `runningMean` and
 * `runningVar` as `(1 - momentum) * running + momentum * batch` (the variance unbiased, as PyTorch);
 * in evaluation mode it uses the running statistics. They are in `parameters()` (so they are saved
 * and loaded) but never trainable.
 * @example
 * const bn = new nn.BatchNorm(16);
 * bn.forward(x);          // training: batch statistics, running stats updated
 * bn.eval().forward(x);   // running statistics
 */
export class BatchNorm extends Module {
  /** `[numFeatures]`, when affine. */
  weight?: Array;
  /** `[numFeatures]`, when affine. */
  bias?: Array;
  /** `[numFeatures]`, when tracking running statistics. */
  runningMean?: Array;
  /** `[numFeatures]`, when tracking running statistics. */
  runningVar?: Array;
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super();
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = options;
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.momentum = momentum;
    if (affine) {
      this.weight = mx.ones([numFeatures]);
      this.bias = mx.zeros([numFeatures]);
    }
    if (trackRunningStats) {
      this.runningMean = mx.zeros([numFeatures]);
      this.runningVar = mx.ones([numFeatures]);
      this.keepFrozen();
    }
  }

  protected override keepFrozen(): void {
    if (this.runningMean) this.freeze({ keys: ["runningMean", "runningVar"], recurse: false });
  }

  /** Normalizes `x [N, ..., numFeatures]`, updating the running statistics in training mode. */
  override forward(x: Array): Array {
    checkFeatures("BatchNorm", x, this.numFeatures);
    if (x.ndim < 2 || x.ndim > 4) throw new mx.ShapeError(`BatchNorm: input must have 2 to 4 dims ([N, ..., C]); got shape ${fmt(x.shape)}`);
    const axes = [...x.shape.keys()].slice(0, -1);
    let mean: Array;
    let v: Array;
    if (this.training || !this.runningMean || !this.runningVar) {
      mean = mx.mean(x, axes);
      v = mx.var(x, axes);
      if (this.training && this.runningMean && this.runningVar) {
        const n = axes.reduce((p, a) => p * x.shape[a], 1);
        const m = this.momentum;
        // PyTorch: the running variance uses the unbiased batch variance, var * n / (n - 1).
        const unbiased = mx.mul(mx.stopGradient(v), n / Math.max(n - 1, 1));
        this.runningMean = mx.add(mx.mul(this.runningMean, 1 - m), mx.mul(mx.stopGradient(mean), m));
        this.runningVar = mx.add(mx.mul(this.runningVar, 1 - m), mx.mul(unbiased, m));
      }
    } else {
      mean = this.runningMean;
      v = this.runningVar;
    }
    let y = mx.mul(mx.sub(x, mean), mx.rsqrt(mx.add(v, this.eps)));
    if (this.weight) y = mx.mul(y, this.weight);
    if (this.bias) y = mx.add(y, this.bias);
    return y;
  }
}
