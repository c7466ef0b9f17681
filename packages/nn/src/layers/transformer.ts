/** @file Attention and transformer layers: MultiHeadAttention, RoPE, TransformerEncoderLayer, TransformerEncoder. */
import * as mx from "@tessera/core";
import type { Array, DType } from "@tessera/core";
import { Module } from "../module.js";
import { relu } from "../activations.js";
import { Linear } from "./linear.js";
import { LayerNorm } from "./normalization.js";
import { Dropout } from "./dropout.js";

function checkSize(op: string, name: string, n: unknown): void {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new RangeError(`${op}: ${name} must be a positive integer; got ${String(n)}`);
}

/** The most negative finite value of each float dtype (MLX's `finfo(dtype).min`). */
const LOWEST: Record<string, number> = {
  float16: -65504, bfloat16: -3.3895313892515355e38, float32: -3.4028234663852886e38, float64: -Number.MAX_VALUE,
};

/** Options of {@link MultiHeadAttention} (MLX's, in camelCase). */
export interface MultiHeadAttentionOptions {
  /** Input size of the queries (default `dims`). */
  queryInputDims?: number;
  /** Input size of the keys (default `dims`). */
  keyInputDims?: number;
  /** Input size of the values (default `keyInputDims`). */
  valueInputDims?: number;
  /** Size of the projected values (default `dims`). */
  valueDims?: number;
  /** Size of the output (default `dims`). */
  valueOutputDims?: number;
  /** Give the four projections a bias (default false, as MLX). */
  bias?: boolean;
}

/**
 * Multi-head attention as MLX's `nn.MultiHeadAttention`: the queries, keys and values are projected
 * by `queryProj`, `keyProj` and `valueProj`, split into `numHeads` heads (`[B, L, H, D]` to
 * `[B, H, L, D]`), attended with `mx.fast.scaledDotProductAttention` at scale `1 / sqrt(D)` (an
 * optional additive mask, broadcastable to `[B, H, Lq, Lk]`), merged and projected by `outProj`.
 * @example
 * const attn = new nn.MultiHeadAttention(32, 4);
 * const mask = nn.MultiHeadAttention.createAdditiveCausalMask(10);
 * attn.forward(x, x, x, mask).shape; // x [2, 10, 32] gives [2, 10, 32]
 */
export class MultiHeadAttention extends Module {
  /** `[dims, queryInputDims]` projection of the queries. */
  queryProj: Linear;
  /** `[dims, keyInputDims]` projection of the keys. */
  keyProj: Linear;
  /** `[valueDims, valueInputDims]` projection of the values. */
  valueProj: Linear;
  /** `[valueOutputDims, valueDims]` projection of the merged heads. */
  outProj: Linear;
  /** The number of heads. */
  readonly numHeads: number;

  constructor(dims: number, numHeads: number, options: MultiHeadAttentionOptions = {}) {
    super();
    checkSize("MultiHeadAttention", "dims", dims);
    checkSize("MultiHeadAttention", "numHeads", numHeads);
    if (dims % numHeads !== 0) {
      throw new RangeError(`MultiHeadAttention: the input feature dimensions should be divisible by the number of heads (${dims} % ${numHeads}) != 0`);
    }
    const queryInputDims = options.queryInputDims ?? dims;
    const keyInputDims = options.keyInputDims ?? dims;
    const valueInputDims = options.valueInputDims ?? keyInputDims;
    const valueDims = options.valueDims ?? dims;
    const valueOutputDims = options.valueOutputDims ?? dims;
    if (valueDims % numHeads !== 0) {
      throw new RangeError(`MultiHeadAttention: valueDims (${valueDims}) must be divisible by numHeads (${numHeads})`);
    }
    const bias = options.bias ?? false;
    this.numHeads = numHeads;
    this.queryProj = new Linear(queryInputDims, dims, { bias });
    this.keyProj = new Linear(keyInputDims, dims, { bias });
    this.valueProj = new Linear(valueInputDims, valueDims, { bias });
    this.outProj = new Linear(valueDims, valueOutputDims, { bias });
  }

  /**
   * `queries [B, Lq, queryInputDims]`, `keys [B, Lk, keyInputDims]`, `values [B, Lk, valueInputDims]`
   * to `[B, Lq, valueOutputDims]`; `mask` is additive (or bool, or `"causal"`), broadcastable to
   * `[B, numHeads, Lq, Lk]`.
   */
  override forward(queries: Array, keys: Array, values: Array, mask?: Array | "causal" | null): Array {
    const h = this.numHeads;
    const heads = (x: Array) => {
      const [b, l, d] = x.shape;
      if (x.ndim !== 3) throw new mx.ShapeError(`MultiHeadAttention: inputs must be [B, L, dims]; got shape [${x.shape.join(",")}]`);
      return mx.transpose(mx.reshape(x, [b, l, h, d / h]), [0, 2, 1, 3]);
    };
    const q = heads(this.queryProj.forward(queries));
    const k = heads(this.keyProj.forward(keys));
    const v = heads(this.valueProj.forward(values));
    const scale = Math.sqrt(1 / q.shape[3]);
    const o = mx.fast.scaledDotProductAttention(q, k, v, { scale, mask: mask ?? null });
    const [b, , lq, dv] = o.shape;
    return this.outProj.forward(mx.reshape(mx.transpose(o, [0, 2, 1, 3]), [b, lq, h * dv]));
  }

  /**
   * The additive causal mask `[n, n]` (MLX's `create_additive_causal_mask`): 0 where `j <= i`, the
   * most negative finite value of `dtype` (default float32) where `j > i`.
   * @example
   * nn.MultiHeadAttention.createAdditiveCausalMask(3); // [[0, -3.4e38, -3.4e38], [0, 0, -3.4e38], [0, 0, 0]]
   */
  static createAdditiveCausalMask(n: number, dtype: DType = "float32"): Array {
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw new RangeError(`MultiHeadAttention.createAdditiveCausalMask: n must be a non-negative integer; got ${String(n)}`);
    const lowest = LOWEST[dtype as string];
    if (lowest === undefined) throw new TypeError(`MultiHeadAttention.createAdditiveCausalMask: dtype must be a float type; got ${String(dtype)}`);
    const idx = mx.arange(0, n, 1, "int32");
    const future = mx.less(mx.expandDims(idx, 1), mx.expandDims(idx, 0));
    // + 0 turns the -0 of 0 * lowest into +0
    return mx.add(mx.mul(mx.astype(future, dtype), lowest), 0);
  }
}

/** Options of {@link RoPE}. */
export interface RoPEOptions {
  /** Rotate interleaved pairs instead of the two halves (default false). */
  traditional?: boolean;
  /** The base of the frequencies (default 10000). */
  base?: number;
  /** Scale of the positions (default 1). */
  scale?: number;
}

/**
 * Rotary positional encoding (MLX's `nn.RoPE`) of the first `dims` features, positions along the
 * second-to-last axis: `mx.fast.rope` with the layer's options. It has no parameters.
 * @example
 * const rope = new nn.RoPE(16);
 * rope.forward(mx.random.normal([1, 4, 10, 16]), 5).shape; // [1, 4, 10, 16]
 */
export class RoPE extends Module {
  /** The number of features rotated. */
  readonly dims: number;
  readonly traditional: boolean;
  readonly base: number;
  readonly scale: number;

  constructor(dims: number, options: RoPEOptions = {}) {
    super();
    checkSize("RoPE", "dims", dims);
    const { traditional = false, base = 10000, scale = 1 } = options;
    this.dims = dims;
    this.traditional = traditional;
    this.base = base;
    this.scale = scale;
  }

  /** Rotates `x [..., L, D]`, row `l` at position `offset + l`. */
  override forward(x: Array, offset: number | Array = 0): Array {
    return mx.fast.rope(x, this.dims, { traditional: this.traditional, base: this.base, scale: this.scale, offset });
  }
}

/** Options of {@link TransformerEncoderLayer} and {@link TransformerEncoder}. */
export interface TransformerEncoderOptions {
  /** Hidden size of the MLP (default `4 * dims`). */
  mlpDims?: number;
  /** Dropout probability after the attention and inside the MLP (default 0). */
  dropout?: number;
  /** The MLP's activation (default `nn.relu`). */
  activation?: (x: Array) => Array;
  /** Normalize before the attention and the MLP (pre-norm) rather than after the residuals (default true). */
  normFirst?: boolean;
}

/**
 * One transformer encoder block as MLX's: self-attention (`attention`) and an MLP
 * (`linear1`, activation, `linear2`), each with a residual, LayerNorms `ln1` and `ln2` and dropouts.
 * With `normFirst` (the default): `x + attn(ln1(x))`, then `x + mlp(ln2(x))`; otherwise
 * `ln1(x + attn(x))`, then `ln2(x + mlp(x))`.
 * @example
 * const layer = new nn.TransformerEncoderLayer(32, 4);
 * layer.forward(x, nn.MultiHeadAttention.createAdditiveCausalMask(10)).shape; // x [2, 10, 32] gives [2, 10, 32]
 */
export class TransformerEncoderLayer extends Module {
  attention: MultiHeadAttention;
  ln1: LayerNorm;
  ln2: LayerNorm;
  linear1: Linear;
  linear2: Linear;
  dropout1: Dropout;
  dropout2: Dropout;
  /** The MLP's activation. */
  readonly activation: (x: Array) => Array;
  readonly normFirst: boolean;

  constructor(dims: number, numHeads: number, options: TransformerEncoderOptions = {}) {
    super();
    const { dropout = 0, activation = relu, normFirst = true } = options;
    const mlpDims = options.mlpDims ?? dims * 4;
    this.attention = new MultiHeadAttention(dims, numHeads);
    this.ln1 = new LayerNorm(dims);
    this.ln2 = new LayerNorm(dims);
    this.linear1 = new Linear(dims, mlpDims);
    this.linear2 = new Linear(mlpDims, dims);
    this.dropout1 = new Dropout(dropout);
    this.dropout2 = new Dropout(dropout);
    this.activation = activation;
    this.normFirst = normFirst;
  }

  /** `x [B, L, dims]` with an additive `mask` (or null) to `[B, L, dims]`. */
  override forward(x: Array, mask?: Array | "causal" | null): Array {
    const mlp = (y: Array) => this.linear2.forward(this.dropout2.forward(this.activation(this.linear1.forward(y))));
    if (this.normFirst) {
      let y = this.ln1.forward(x);
      y = this.dropout1.forward(this.attention.forward(y, y, y, mask));
      x = mx.add(x, y);
      return mx.add(x, mlp(this.ln2.forward(x)));
    }
    const y = this.dropout1.forward(this.attention.forward(x, x, x, mask));
    x = this.ln1.forward(mx.add(x, y));
    return this.ln2.forward(mx.add(x, mlp(x)));
  }
}

/**
 * A stack of `numLayers` {@link TransformerEncoderLayer}s (`layers`) followed by a final LayerNorm
 * (`ln`), as MLX's `nn.TransformerEncoder`.
 * @example
 * const enc = new nn.TransformerEncoder(2, 32, 4, { mlpDims: 64 });
 * enc.forward(x, null).shape; // x [2, 10, 32] gives [2, 10, 32]
 */
export class TransformerEncoder extends Module {
  /** The encoder layers, in order. */
  layers: TransformerEncoderLayer[];
  /** The final LayerNorm. */
  ln: LayerNorm;

  constructor(numLayers: number, dims: number, numHeads: number, options: TransformerEncoderOptions = {}) {
    super();
    if (typeof numLayers !== "number" || !Number.isInteger(numLayers) || numLayers < 0) {
      throw new RangeError(`TransformerEncoder: numLayers must be a non-negative integer; got ${String(numLayers)}`);
    }
    this.layers = globalThis.Array.from({ length: numLayers }, () => new TransformerEncoderLayer(dims, numHeads, options));
    this.ln = new LayerNorm(dims);
  }

  /** `x [B, L, dims]` through every layer with `mask`, then `ln`. */
  override forward(x: Array, mask?: Array | "causal" | null): Array {
    for (const l of this.layers) x = l.forward(x, mask);
    return this.ln.forward(x);
  }
}
