/**
 * @file Initializers, as MLX's `nn.init`: each function takes its settings and returns an
 * initializer `(array, options?) => array` that makes a new array of the given one's shape.
 */
import * as mx from "@tessera/core";
import type { Array, DType } from "@tessera/core";

/** An initializer: a new array with `a`'s shape (the values of `a` are not used). */
export type Initializer<O = undefined> = (a: Array, options?: O) => Array;

/** Options of the fan-based initializers' returned functions ({@link glorotUniform}, {@link glorotNormal}). */
export interface GainOptions {
  /** Scale of the standard deviation or limit (default 1). */
  gain?: number;
}

/** Options of the He initializers' returned functions. */
export interface HeOptions extends GainOptions {
  /** Which fan to scale by (default "fanIn"). */
  mode?: "fanIn" | "fanOut";
}

/**
 * `[fanIn, fanOut]` of a weight as MLX computes them: `[shape[-1], shape[0]]` for a matrix,
 * each times the receptive field (the product of the middle axes) for a convolution weight.
 * @example
 * nn.init.fanInFanOut(mx.zeros([8, 3, 3, 4])); // [36, 72]
 */
export function fanInFanOut(a: Array): [number, number] {
  if (a.ndim < 2) throw new RangeError(`init: fan in and fan out need an array of at least 2 dims; got shape [${a.shape.join(",")}]`);
  const rf = a.shape.slice(1, -1).reduce((p, d) => p * d, 1);
  return [a.shape[a.ndim - 1] * rf, a.shape[0] * rf];
}

/**
 * Fills with a constant.
 * @example
 * nn.init.constant(0.5)(mx.zeros([2, 2])); // all 0.5
 */
export function constant(value: number, dtype: DType = "float32"): Initializer {
  return (a) => mx.full(a.shape, value, dtype);
}

/**
 * Samples from U(low, high).
 * @example
 * const w = nn.init.uniform(-0.1, 0.1)(mx.zeros([3, 4]));
 */
export function uniform(low = 0, high = 1, dtype: DType = "float32"): Initializer {
  return (a) => mx.random.uniform(low, high, a.shape, { dtype });
}

/**
 * Samples from N(mean, std^2).
 * @example
 * const w = nn.init.normal(0, 0.02)(mx.zeros([3, 4]));
 */
export function normal(mean = 0, std = 1, dtype: DType = "float32"): Initializer {
  return (a) => mx.random.normal(a.shape, { dtype, loc: mean, scale: std });
}

/**
 * Glorot (Xavier) uniform: U(-l, l) with `l = gain * sqrt(6 / (fanIn + fanOut))`.
 * @example
 * const w = nn.init.glorotUniform()(layer.weight, { gain: 2 });
 */
export function glorotUniform(dtype: DType = "float32"): Initializer<GainOptions> {
  return (a, options = {}) => {
    const [fanIn, fanOut] = fanInFanOut(a);
    const limit = (options.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
    return mx.random.uniform(-limit, limit, a.shape, { dtype });
  };
}

/**
 * Glorot (Xavier) normal: N(0, s^2) with `s = gain * sqrt(2 / (fanIn + fanOut))`.
 * @example
 * const w = nn.init.glorotNormal()(layer.weight);
 */
export function glorotNormal(dtype: DType = "float32"): Initializer<GainOptions> {
  return (a, options = {}) => {
    const [fanIn, fanOut] = fanInFanOut(a);
    const std = (options.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
    return mx.random.normal(a.shape, { dtype, scale: std });
  };
}

function fan(a: Array, mode: HeOptions["mode"]): number {
  const [fanIn, fanOut] = fanInFanOut(a);
  if (mode === undefined || mode === "fanIn") return fanIn;
  if (mode === "fanOut") return fanOut;
  throw new RangeError(`init: mode must be "fanIn" or "fanOut"; got ${JSON.stringify(mode)}`);
}

/**
 * He (Kaiming) uniform: U(-l, l) with `l = gain * sqrt(3 / fan)`.
 * @example
 * const w = nn.init.heUniform()(layer.weight, { mode: "fanOut", gain: Math.SQRT2 });
 */
export function heUniform(dtype: DType = "float32"): Initializer<HeOptions> {
  return (a, options = {}) => {
    const limit = (options.gain ?? 1) * Math.sqrt(3 / fan(a, options.mode));
    return mx.random.uniform(-limit, limit, a.shape, { dtype });
  };
}

/**
 * He (Kaiming) normal: N(0, s^2) with `s = gain / sqrt(fan)`.
 * @example
 * const w = nn.init.heNormal()(layer.weight);
 */
export function heNormal(dtype: DType = "float32"): Initializer<HeOptions> {
  return (a, options = {}) => {
    const std = (options.gain ?? 1) / Math.sqrt(fan(a, options.mode));
    return mx.random.normal(a.shape, { dtype, scale: std });
  };
}
