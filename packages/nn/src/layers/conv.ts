/**
 * @file Channels-last convolution layers: Conv1d, Conv2d, ConvTranspose1d and ConvTranspose2d
 * (MLX's layout and initialisation).
 */
import * as mx from "@tessera/core";
import { isArray, ShapeError, type Array } from "@tessera/core";
import { Module } from "../module.js";

/** Options of the convolution layers. */
export interface ConvLayerOptions {
  /** The step between windows (default 1). */
  stride?: number | number[];
  /** Zeros added on both sides of each spatial dim (default 0). */
  padding?: number | number[];
  /** The spacing of the kernel's taps (default 1). */
  dilation?: number | number[];
  /** Channel groups (default 1); both channel counts must be divisible by it. */
  groups?: number;
  /** Whether to add a bias (default true). */
  bias?: boolean;
}

function kernelDims(op: string, k: number | number[], d: number): number[] {
  const ks = typeof k === "number" ? new globalThis.Array<number>(d).fill(k) : k;
  if (!globalThis.Array.isArray(ks) || ks.length !== d || ks.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new RangeError(`${op}: kernelSize must be a positive integer or ${d} of them; got ${JSON.stringify(k)}`);
  }
  return ks;
}

/** Shared construction: weight `[out, ...kernel, in / groups]` from U(-s, s), s = 1/sqrt(fanIn); bias zeros. */
abstract class ConvNd extends Module {
  /** `[outChannels, ...kernelSize, inChannels / groups]`. */
  weight: Array;
  /** `[outChannels]`, absent when built with `{ bias: false }`. */
  bias?: Array;
  /** The convolution's settings (not parameters). */
  readonly stride: number | number[];
  readonly padding: number | number[];
  readonly dilation: number | number[];
  readonly groups: number;

  constructor(op: string, d: number, inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvLayerOptions) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true } = options ?? {};
    for (const [name, n] of [["inChannels", inChannels], ["outChannels", outChannels], ["groups", groups]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`${op}: ${name} must be a positive integer; got ${String(n)}`);
    }
    if (inChannels % groups || outChannels % groups) {
      throw new RangeError(`${op}: inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${groups})`);
    }
    const ks = kernelDims(op, kernelSize, d);
    const fanIn = (inChannels / groups) * ks.reduce((a, b) => a * b, 1);
    const s = Math.sqrt(1 / fanIn);
    this.weight = mx.random.uniform(-s, s, [outChannels, ...ks, inChannels / groups]);
    if (bias) this.bias = mx.zeros([outChannels]);
    this.stride = stride;
    this.padding = padding;
    this.dilation = dilation;
    this.groups = groups;
  }
}

/**
 * 1-D convolution over `x` `[N, L, inChannels]` (channels last, as MLX), giving
 * `[N, L', outChannels]`. Weight `[outChannels, kernelSize, inChannels / groups]`.
 * @example
 * const conv = new nn.Conv1d(3, 8, 5, { padding: 2 });
 * conv.forward(mx.zeros([2, 32, 3])).shape; // [2, 32, 8]
 */
export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number, options: ConvLayerOptions = {}) {
    super("Conv1d", 1, inChannels, outChannels, kernelSize, options);
  }

  /** `[N, L, inChannels]` to `[N, L', outChannels]`. */
  override forward(x: Array): Array {
    const { stride, padding, dilation, groups } = this;
    const y = mx.conv1d(x, this.weight, { stride, padding, dilation, groups });
    return this.bias ? mx.add(y, this.bias) : y;
  }
}

/**
 * 2-D convolution over `x` `[N, H, W, inChannels]` (channels last, as MLX), giving
 * `[N, H', W', outChannels]`. Weight `[outChannels, kh, kw, inChannels / groups]`, from
 * U(-s, s) with `s = 1 / sqrt(inChannels / groups * kh * kw)`; bias zeros.
 * @example
 * const conv = new nn.Conv2d(3, 16, 3, { stride: 2, padding: 1 });
 * conv.forward(mx.zeros([1, 28, 28, 3])).shape; // [1, 14, 14, 16]
 */
export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | [number, number], options: ConvLayerOptions = {}) {
    super("Conv2d", 2, inChannels, outChannels, kernelSize, options);
  }

  /** `[N, H, W, inChannels]` to `[N, H', W', outChannels]`. */
  override forward(x: Array): Array {
    const { stride, padding, dilation, groups } = this;
    const y = mx.conv2d(x, this.weight, { stride, padding, dilation, groups });
    return this.bias ? mx.add(y, this.bias) : y;
  }
}

/** Options of the transposed convolution layers (MLX's; no groups, as MLX's layers). */
export interface ConvTransposeLayerOptions {
  /** The step between the input's positions in the output (default 1). */
  stride?: number | number[];
  /** Removed from both sides of each spatial dim of the output (default 0). */
  padding?: number | number[];
  /** The spacing of the kernel's taps (default 1). */
  dilation?: number | number[];
  /** Added to the high side of each spatial dim of the output (default 0; less than stride or dilation). */
  outputPadding?: number | number[];
  /** Whether to add a bias (default true). */
  bias?: boolean;
}

/** Shared construction: weight `[out, ...kernel, in]` from U(-s, s), s = 1/sqrt(in * prod(kernel)); bias zeros. */
abstract class ConvTransposeNd extends Module {
  /** `[outChannels, ...kernelSize, inChannels]`. */
  weight: Array;
  /** `[outChannels]`, absent when built with `{ bias: false }`. */
  bias?: Array;
  /** The transposed convolution's settings (not parameters). */
  readonly stride: number | number[];
  readonly padding: number | number[];
  readonly dilation: number | number[];
  readonly outputPadding: number | number[];

  constructor(protected readonly op: string, d: number, inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvTransposeLayerOptions) {
    super();
    const { stride = 1, padding = 0, dilation = 1, outputPadding = 0, bias = true } = options ?? {};
    for (const [name, n] of [["inChannels", inChannels], ["outChannels", outChannels]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`${op}: ${name} must be a positive integer; got ${String(n)}`);
    }
    const ks = kernelDims(op, kernelSize, d);
    const s = Math.sqrt(1 / (inChannels * ks.reduce((a, b) => a * b, 1)));
    this.weight = mx.random.uniform(-s, s, [outChannels, ...ks, inChannels]);
    if (bias) this.bias = mx.zeros([outChannels]);
    this.stride = stride;
    this.padding = padding;
    this.dilation = dilation;
    this.outputPadding = outputPadding;
  }

  /** The layer's own check of x (rank and channels), so that the error names the layer. */
  protected checkInput(x: unknown, layout: string): void {
    const w = this.weight;
    const cin = w.shape[w.ndim - 1];
    if (!isArray(x) || x.ndim !== w.ndim || x.shape[x.ndim - 1] !== cin) {
      const got = isArray(x) ? `shape [${x.shape.join(",")}]` : typeof x;
      throw new ShapeError(`${this.op}: input must have shape ${layout} with inChannels = ${cin}; got ${got}`);
    }
  }
}

/**
 * 1-D transposed convolution over `x` `[N, L, inChannels]` (channels last, as MLX), giving
 * `[N, L', outChannels]` with `L' = (L - 1) * stride - 2 * padding + dilation * (kernelSize - 1) +
 * outputPadding + 1`. Weight `[outChannels, kernelSize, inChannels]` from U(-s, s) with
 * `s = 1 / sqrt(inChannels * kernelSize)`; bias zeros.
 * @example
 * const up = new nn.ConvTranspose1d(8, 4, 4, { stride: 2, padding: 1 });
 * up.forward(mx.zeros([2, 16, 8])).shape; // [2, 32, 4]
 */
export class ConvTranspose1d extends ConvTransposeNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number, options: ConvTransposeLayerOptions = {}) {
    super("ConvTranspose1d", 1, inChannels, outChannels, kernelSize, options);
  }

  /** `[N, L, inChannels]` to `[N, L', outChannels]`. */
  override forward(x: Array): Array {
    this.checkInput(x, "[N, L, inChannels]");
    const { stride, padding, dilation, outputPadding } = this;
    const y = mx.convTranspose1d(x, this.weight, { stride, padding, dilation, outputPadding });
    return this.bias ? mx.add(y, this.bias) : y;
  }
}

/**
 * 2-D transposed convolution over `x` `[N, H, W, inChannels]` (channels last, as MLX), giving
 * `[N, H', W', outChannels]` (each spatial dim as in {@link ConvTranspose1d}). Weight
 * `[outChannels, kh, kw, inChannels]` from U(-s, s) with `s = 1 / sqrt(inChannels * kh * kw)`;
 * bias zeros.
 * @example
 * const up = new nn.ConvTranspose2d(16, 3, 2, { stride: 2 });
 * up.forward(mx.zeros([1, 14, 14, 16])).shape; // [1, 28, 28, 3]
 */
export class ConvTranspose2d extends ConvTransposeNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | [number, number], options: ConvTransposeLayerOptions = {}) {
    super("ConvTranspose2d", 2, inChannels, outChannels, kernelSize, options);
  }

  /** `[N, H, W, inChannels]` to `[N, H', W', outChannels]`. */
  override forward(x: Array): Array {
    this.checkInput(x, "[N, H, W, inChannels]");
    const { stride, padding, dilation, outputPadding } = this;
    const y = mx.convTranspose2d(x, this.weight, { stride, padding, dilation, outputPadding });
    return this.bias ? mx.add(y, this.bias) : y;
  }
}
