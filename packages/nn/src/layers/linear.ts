/** @file Linear, Identity and Embedding layers. */
import * as mx from "@tessera/core";
import type { Array } from "@tessera/core";
import { Module } from "../module.js";

function checkSize(op: string, name: string, n: unknown): void {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new RangeError(`${op}: ${name} must be a positive integer; got ${String(n)}`);
}

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Whether to add a bias (default true). */
  bias?: boolean;
}

/**
 * `y = x W^T + b` with `weight` `[outDims, inDims]` and `bias` `[outDims]`, both initialised from
 * U(-k, k) with `k = 1 / sqrt(inDims)` (MLX's default).
 * @example
 * const layer = new nn.Linear(4, 2);
 * layer.forward(mx.zeros([8, 4])).shape; // [8, 2]
 */
export class Linear extends Module {
  /** `[outDims, inDims]`. */
  weight: Array;
  /** `[outDims]`, absent when built with `{ bias: false }`. */
  bias?: Array;

  constructor(inDims: number, outDims: number, options: LinearOptions = {}) {
    super();
    checkSize("Linear", "inDims", inDims);
    checkSize("Linear", "outDims", outDims);
    const k = Math.sqrt(1 / inDims);
    this.weight = mx.random.uniform(-k, k, [outDims, inDims]);
    if (options.bias ?? true) this.bias = mx.random.uniform(-k, k, [outDims]);
  }

  /** `x [..., inDims]` to `[..., outDims]`. */
  override forward(x: Array): Array {
    const y = mx.matmul(x, mx.transpose(this.weight));
    return this.bias ? mx.add(y, this.bias) : y;
  }
}

/**
 * Returns its input unchanged (a placeholder layer).
 * @example
 * new nn.Identity().forward(x); // x
 */
export class Identity extends Module {
  /** Returns `x`. */
  override forward(x: Array): Array {
    return x;
  }
}

/**
 * A lookup table of `numEmbeddings` vectors of size `dims`, initialised from N(0, 1/dims) as MLX.
 * @example
 * const emb = new nn.Embedding(100, 16);
 * emb.forward(mx.array([[1, 2, 3]], "int32")).shape; // [1, 3, 16]
 */
export class Embedding extends Module {
  /** `[numEmbeddings, dims]`. */
  weight: Array;

  constructor(numEmbeddings: number, dims: number) {
    super();
    checkSize("Embedding", "numEmbeddings", numEmbeddings);
    checkSize("Embedding", "dims", dims);
    this.weight = mx.random.normal([numEmbeddings, dims], { scale: Math.sqrt(1 / dims) });
  }

  /** The rows of `weight` at the integer indices `x`: `[...x.shape, dims]`. */
  override forward(x: Array): Array {
    return mx.take(this.weight, x, 0);
  }

  /** Uses the table as a linear layer, `x W^T` (for tied input and output embeddings). */
  asLinear(x: Array): Array {
    return mx.matmul(x, mx.transpose(this.weight));
  }
}
