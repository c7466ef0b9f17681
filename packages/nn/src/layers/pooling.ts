/** @file Pooling layers over channels-last input: MaxPool1d/2d and AvgPool1d/2d. */
import * as mx from "@tessera/core";
import type { Array } from "@tessera/core";
import { Module } from "../module.js";

/** Options of the pooling layers. */
export interface PoolLayerOptions {
  /** The step between windows (default: the kernel size). */
  stride?: number | number[];
  /** Padding on both sides of each spatial dim (default 0); at most half the kernel size. */
  padding?: number | number[];
}

abstract class Pool extends Module {
  readonly kernelSize: number | number[];
  readonly stride?: number | number[];
  readonly padding?: number | number[];
  readonly #op: string;
  readonly #rank: number;
  readonly #fn: typeof mx.maxPool;

  constructor(op: string, rank: number, fn: typeof mx.maxPool, kernelSize: number | number[], options: PoolLayerOptions) {
    super();
    this.#op = op;
    this.#rank = rank;
    this.#fn = fn;
    this.kernelSize = kernelSize;
    if (options?.stride !== undefined) this.stride = options.stride;
    if (options?.padding !== undefined) this.padding = options.padding;
  }

  override forward(x: Array): Array {
    if (x.ndim !== this.#rank) {
      throw new mx.ShapeError(`${this.#op}: input must have ${this.#rank} dims ([N, ...spatial, C]); got shape [${x.shape.join(",")}]`);
    }
    return this.#fn(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}

/**
 * 1-D max pooling of `[N, L, C]`: windows of `kernelSize` every `stride` (default: the kernel size).
 * @example
 * new nn.MaxPool1d(2).forward(mx.zeros([1, 8, 3])).shape; // [1, 4, 3]
 */
export class MaxPool1d extends Pool {
  constructor(kernelSize: number, options: PoolLayerOptions = {}) {
    super("MaxPool1d", 3, mx.maxPool, kernelSize, options);
  }
}

/**
 * 2-D max pooling of `[N, H, W, C]`.
 * @example
 * new nn.MaxPool2d(2, { stride: 2 }).forward(mx.zeros([1, 8, 8, 3])).shape; // [1, 4, 4, 3]
 */
export class MaxPool2d extends Pool {
  constructor(kernelSize: number | [number, number], options: PoolLayerOptions = {}) {
    super("MaxPool2d", 4, mx.maxPool, kernelSize, options);
  }
}

/**
 * 1-D average pooling of `[N, L, C]` (padding counts as zeros).
 * @example
 * new nn.AvgPool1d(2).forward(mx.zeros([1, 8, 3])).shape; // [1, 4, 3]
 */
export class AvgPool1d extends Pool {
  constructor(kernelSize: number, options: PoolLayerOptions = {}) {
    super("AvgPool1d", 3, mx.avgPool, kernelSize, options);
  }
}

/**
 * 2-D average pooling of `[N, H, W, C]` (padding counts as zeros).
 * @example
 * new nn.AvgPool2d(2).forward(mx.zeros([1, 8, 8, 3])).shape; // [1, 4, 4, 3]
 */
export class AvgPool2d extends Pool {
  constructor(kernelSize: number | [number, number], options: PoolLayerOptions = {}) {
    super("AvgPool2d", 4, mx.avgPool, kernelSize, options);
  }
}
