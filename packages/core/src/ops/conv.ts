/**
 * @file Convolutions (conv1d/2d/3d, convTranspose1d/2d/3d, convGeneral), channels-last as in MLX,
 * and the pooling reductions (maxPool, avgPool) over strided, padded sliding windows.
 */
import type { Array } from "../array.js";
import { isFloating, promoteTypes } from "../dtype.js";
import type { DeviceOptions } from "../device.js";
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { convOutSize, dilatedLength, windowCount, type ConvParams } from "../primitives/conv.js";
import { checkArray, checkInteger, fmtGot, fmtValue, withDevice } from "./util.js";
import { pad } from "./shape.js";
import { max, mean } from "./reduce.js";

/** A size per spatial dim, or one number for all of them. */
export type SpatialArg = number | number[];

/** Options of conv1d, conv2d and conv3d. */
export interface ConvOptions extends DeviceOptions {
  /** The step between windows (default 1). */
  stride?: SpatialArg;
  /** Zeros added on both sides of each spatial dim (default 0). */
  padding?: SpatialArg;
  /** The spacing of the kernel's taps (default 1). */
  dilation?: SpatialArg;
  /** Channel groups: input and output channels split into this many independent convolutions (default 1). */
  groups?: number;
}
const CONV_KEYS = ["stride", "padding", "dilation", "groups"] as const;

/** Options of the transposed convolutions. */
export interface ConvTransposeOptions extends ConvOptions {
  /** Extra size added to one side of each spatial dim of the output (default 0). */
  outputPadding?: SpatialArg;
}
const CONV_T_KEYS = [...CONV_KEYS, "outputPadding"] as const;

/** Options of convGeneral. */
export interface ConvGeneralOptions extends DeviceOptions {
  stride?: SpatialArg;
  /** A number or one per dim (both sides), or a pair `[low, high]` of per-dim lists. */
  padding?: SpatialArg | [number[], number[]];
  kernelDilation?: SpatialArg;
  inputDilation?: SpatialArg;
  groups?: number;
  /** Flip the kernel along its spatial axes (a true convolution rather than a correlation). */
  flip?: boolean;
}
const CONV_GENERAL_KEYS = ["stride", "padding", "kernelDilation", "inputDilation", "groups", "flip"] as const;

/** A per-dim list from a number or a list of D numbers, each an integer at least `min`. */
function spatial(op: string, name: string, v: unknown, D: number, fallback: number, min: number): number[] {
  if (v === undefined || v === null) return new globalThis.Array<number>(D).fill(fallback);
  if (typeof v === "number") {
    checkInteger(op, name, v, min);
    return new globalThis.Array<number>(D).fill(v);
  }
  if (!globalThis.Array.isArray(v) || v.length !== D) {
    throw new TypeError(`${op}: ${name} must be an integer or a list of ${D} integers (one per spatial dim); got ${fmtGot(v)}`);
  }
  return v.map((e) => checkInteger(op, name, e, min));
}

/** Checks x and w for a D-d convolution: ranks, a floating dtype, channels and groups. */
function checkOperands(op: string, x: unknown, w: unknown, D: number, groups: number): asserts x is Array {
  checkArray(op, x, 1);
  checkArray(op, w, 2);
  const layout = `[N, ${D === 1 ? "L" : D === 2 ? "H, W" : `${D} spatial dims`}, C]`;
  if (x.ndim !== D + 2) throw new ShapeError(`${op}: input must have rank ${D + 2} (${layout}); got shape ${fmtShape(x.shape)}`);
  if (w.ndim !== D + 2) {
    throw new ShapeError(`${op}: weight must have rank ${D + 2} ([C_out, ...kernel, C_in / groups]); got shape ${fmtShape(w.shape)}`);
  }
  const t = promoteTypes(x.dtype, w.dtype);
  if (!isFloating(t)) throw new DTypeError(`${op}: input and weight must be floating point; got ${x.dtype} and ${w.dtype}`);
  const cin = x.shape[D + 1], cout = w.shape[0], cg = w.shape[D + 1];
  if (cin % groups !== 0) {
    throw new ShapeError(`${op}: groups (${groups}) must divide the input channels; got input shape ${fmtShape(x.shape)}`);
  }
  if (cout % groups !== 0) {
    throw new ShapeError(`${op}: groups (${groups}) must divide the output channels; got weight shape ${fmtShape(w.shape)}`);
  }
  if (cg * groups !== cin) {
    throw new ShapeError(
      `${op}: the weight's last axis must be input channels / groups (${cin} / ${groups} = ${cin / groups}); got input ${fmtShape(x.shape)} and weight ${fmtShape(w.shape)}`,
    );
  }
  w.shape.slice(1, D + 1).forEach((k, d) => {
    if (k < 1) throw new ShapeError(`${op}: kernel sizes must be at least 1; got weight shape ${fmtShape(w.shape)} (spatial dim ${d})`);
  });
}

/** The convolution after validation: promotes and checks that each window fits the padded input. */
function convCore(op: string, x: Array, w: Array, p: ConvParams): Array {
  const D = x.ndim - 2;
  for (let d = 0; d < D; d++) {
    const padded = dilatedLength(x.shape[1 + d], p.inputDilation[d]) + p.padLo[d] + p.padHi[d];
    const keff = dilatedLength(w.shape[1 + d], p.kernelDilation[d]);
    if (padded < keff || convOutSize(x.shape[1 + d], w.shape[1 + d], p, d) < 1) {
      throw new ShapeError(
        `${op}: the (dilated) kernel size ${keff} exceeds the padded input size ${padded} along spatial dim ${d}; got input ${fmtShape(x.shape)} and weight ${fmtShape(w.shape)}`,
      );
    }
  }
  const t = promoteTypes(x.dtype, w.dtype);
  return lax.conv(lax.cast(x, t), lax.cast(w, t), p);
}

function convN(op: string, D: number) {
  return (x: Array, w: Array, options: ConvOptions = {}): Array => withDevice(op, options, () => {
    const groups = checkInteger(op, "groups", options?.groups ?? 1, 1);
    checkOperands(op, x, w, D, groups);
    const padding = spatial(op, "padding", options?.padding, D, 0, 0);
    return convCore(op, x, w, {
      stride: spatial(op, "stride", options?.stride, D, 1, 1),
      padLo: padding,
      padHi: padding,
      kernelDilation: spatial(op, "dilation", options?.dilation, D, 1, 1),
      inputDilation: new globalThis.Array<number>(D).fill(1),
      groups,
      flip: false,
    });
  }, CONV_KEYS);
}

/**
 * 1-D convolution (a cross-correlation, as MLX and PyTorch) of `x` [N, L, C_in] with `w`
 * [C_out, K, C_in / groups], giving [N, L_out, C_out]; `{ stride, padding, dilation, groups }`.
 * @example
 * const x = mx.ones([1, 5, 1]), w = mx.ones([1, 3, 1]);
 * mx.conv1d(x, w).reshape([-1]).tolist();                   // [3, 3, 3]
 * mx.conv1d(x, w, { padding: 1 }).reshape([-1]).tolist();   // [2, 3, 3, 3, 2]
 */
export const conv1d = convN("conv1d", 1);
/**
 * 2-D convolution of `x` [N, H, W, C_in] with `w` [C_out, KH, KW, C_in / groups], giving
 * [N, H_out, W_out, C_out]; stride, padding and dilation are a number or one per spatial dim.
 * @example
 * const x = mx.random.normal([2, 8, 8, 3]), w = mx.random.normal([16, 3, 3, 3]);
 * mx.conv2d(x, w, { stride: 2, padding: 1 }).shape;          // [2, 4, 4, 16]
 */
export const conv2d = convN("conv2d", 2);
/**
 * 3-D convolution of `x` [N, D, H, W, C_in] with `w` [C_out, KD, KH, KW, C_in / groups].
 * @example
 * const x = mx.zeros([1, 4, 4, 4, 2]), w = mx.zeros([3, 2, 2, 2, 2]);
 * mx.conv3d(x, w).shape;                                     // [1, 3, 3, 3, 3]
 */
export const conv3d = convN("conv3d", 3);

/**
 * The general convolution (MLX's conv_general): any number of spatial dims, low/high padding,
 * kernel and input dilation, groups and an optional kernel flip.
 * @example
 * const x = mx.ones([1, 3, 1]), w = mx.ones([1, 2, 1]);
 * mx.convGeneral(x, w, { inputDilation: 2 }).reshape([-1]).tolist();   // [1, 1, 1, 1]
 */
export function convGeneral(x: Array, w: Array, options: ConvGeneralOptions = {}): Array {
  const op = "convGeneral";
  return withDevice(op, options, () => {
    checkArray(op, x, 1);
    const D = x.ndim - 2;
    if (D < 1) throw new ShapeError(`${op}: input must have rank at least 3 ([N, ...spatial, C]); got shape ${fmtShape(x.shape)}`);
    const groups = checkInteger(op, "groups", options?.groups ?? 1, 1);
    checkOperands(op, x, w, D, groups);
    const flip = options?.flip ?? false;
    if (typeof flip !== "boolean") throw new TypeError(`${op}: flip must be a boolean; got ${fmtGot(flip)}`);
    const pd = options?.padding;
    const pair = globalThis.Array.isArray(pd) && pd.length === 2 && globalThis.Array.isArray(pd[0]);
    const padLo = pair ? spatial(op, "padding", (pd as number[][])[0], D, 0, 0) : spatial(op, "padding", pd, D, 0, 0);
    const padHi = pair ? spatial(op, "padding", (pd as number[][])[1], D, 0, 0) : padLo;
    return convCore(op, x, w, {
      stride: spatial(op, "stride", options?.stride, D, 1, 1),
      padLo,
      padHi,
      kernelDilation: spatial(op, "kernelDilation", options?.kernelDilation, D, 1, 1),
      inputDilation: spatial(op, "inputDilation", options?.inputDilation, D, 1, 1),
      groups,
      flip,
    });
  }, CONV_GENERAL_KEYS);
}

function convTransposeN(op: string, D: number) {
  return (x: Array, w: Array, options: ConvTransposeOptions = {}): Array => withDevice(op, options, () => {
    const groups = checkInteger(op, "groups", options?.groups ?? 1, 1);
    checkOperands(op, x, w, D, groups);
    const stride = spatial(op, "stride", options?.stride, D, 1, 1);
    const padding = spatial(op, "padding", options?.padding, D, 0, 0);
    const dilation = spatial(op, "dilation", options?.dilation, D, 1, 1);
    const outputPadding = spatial(op, "outputPadding", options?.outputPadding, D, 0, 0);
    outputPadding.forEach((o, d) => {
      if (o >= Math.max(stride[d], dilation[d])) {
        throw new RangeError(`${op}: outputPadding must be smaller than the stride or the dilation; got outputPadding ${fmtValue(outputPadding)}, stride ${fmtValue(stride)}, dilation ${fmtValue(dilation)}`);
      }
    });
    // The transpose of a strided convolution: input dilated by the stride, the kernel flipped,
    // padded by (dilated kernel - 1 - padding) on each side (plus outputPadding on the high side).
    const keff = w.shape.slice(1, D + 1).map((k, d) => dilatedLength(k, dilation[d]));
    return convCore(op, x, w, {
      stride: new globalThis.Array<number>(D).fill(1),
      padLo: keff.map((k, d) => k - 1 - padding[d]),
      padHi: keff.map((k, d) => k - 1 - padding[d] + outputPadding[d]),
      kernelDilation: dilation,
      inputDilation: stride,
      groups,
      flip: true,
    });
  }, CONV_T_KEYS);
}

/**
 * 1-D transposed convolution (the gradient of conv1d with respect to its input) of `x`
 * [N, L, C_in] with `w` [C_out, K, C_in / groups] (MLX's layout), giving [N, L_out, C_out] with
 * L_out = (L - 1) * stride - 2 * padding + dilation * (K - 1) + outputPadding + 1.
 * @example
 * const x = mx.ones([1, 3, 1]), w = mx.ones([1, 2, 1]);
 * mx.convTranspose1d(x, w, { stride: 2 }).reshape([-1]).tolist();   // [1, 1, 1, 1, 1, 1]
 */
export const convTranspose1d = convTransposeN("convTranspose1d", 1);
/**
 * 2-D transposed convolution of `x` [N, H, W, C_in] with `w` [C_out, KH, KW, C_in / groups].
 * @example
 * const x = mx.zeros([1, 4, 4, 8]), w = mx.zeros([3, 3, 3, 8]);
 * mx.convTranspose2d(x, w, { stride: 2, padding: 1, outputPadding: 1 }).shape;   // [1, 8, 8, 3]
 */
export const convTranspose2d = convTransposeN("convTranspose2d", 2);
/**
 * 3-D transposed convolution of `x` [N, D, H, W, C_in] with `w` [C_out, KD, KH, KW, C_in / groups].
 * @example
 * mx.convTranspose3d(mx.zeros([1, 2, 2, 2, 1]), mx.zeros([1, 2, 2, 2, 1]), { stride: 2 }).shape;   // [1, 4, 4, 4, 1]
 */
export const convTranspose3d = convTransposeN("convTranspose3d", 3);

/** Options of the pooling ops. */
export interface PoolOptions extends DeviceOptions {
  /** The step between windows (default: the kernel size). */
  stride?: SpatialArg;
  /** Padding on both sides of each spatial dim (default 0); at most half the kernel size. */
  padding?: SpatialArg;
}
const POOL_KEYS = ["stride", "padding"] as const;

/** The lowest value of x's dtype: what max pooling pads with. */
function lowest(x: Array): number {
  const t = x.dtype;
  if (isFloating(t)) return -Infinity;
  if (t === "bool" || t.startsWith("uint")) return 0;
  return -(2 ** (Number(t.slice(3)) - 1)); // exact in a double, int64's too
}

/** x [N, S..., C] padded and cut into windows, [N, O..., K..., C], with the window axes. */
function windows(op: string, x: Array, kernelSize: unknown, options: PoolOptions, padValue: number): [Array, number[]] {
  checkArray(op, x, 1);
  const D = x.ndim - 2;
  if (D < 1) throw new ShapeError(`${op}: input must have rank at least 3 ([N, ...spatial, C]); got shape ${fmtShape(x.shape)}`);
  if (kernelSize === undefined || kernelSize === null) throw new TypeError(`${op}: kernelSize is required (a number or one per spatial dim)`);
  const kernel = spatial(op, "kernelSize", kernelSize, D, 1, 1);
  const stride = spatial(op, "stride", options?.stride, D, 1, 1);
  if (options?.stride === undefined || options?.stride === null) kernel.forEach((k, d) => (stride[d] = k));
  const padding = spatial(op, "padding", options?.padding, D, 0, 0);
  padding.forEach((p, d) => {
    if (2 * p > kernel[d]) {
      throw new RangeError(`${op}: padding must be at most half the kernel size; got padding ${fmtValue(padding)} with kernel size ${fmtValue(kernel)}`);
    }
  });
  const padded = pad(x, [[0, 0], ...padding.map((p): [number, number] => [p, p]), [0, 0]], { value: padValue });
  const p = { kernel, stride, dilation: new globalThis.Array<number>(D).fill(1) };
  padded.shape.slice(1, D + 1).forEach((n, d) => {
    if (windowCount(n, p, d) < 1) {
      throw new ShapeError(`${op}: kernel size ${fmtValue(kernel)} exceeds the padded input along spatial dim ${d}; got input shape ${fmtShape(x.shape)} with padding ${fmtValue(padding)}`);
    }
  });
  const axes = kernel.map((_, d) => D + 1 + d);
  return [lax.window(padded, p), axes];
}

/**
 * Max pooling over the spatial dims of `x` [N, ...spatial, C] (as MLX's MaxPool layers): windows
 * of `kernelSize` (a number or one per dim) every `stride` (default: the kernel size), padded with
 * -inf (the dtype's lowest value for integers). The gradient is split evenly among tied maxima.
 * @example
 * const x = mx.array([1, 3, 2, 5, 4, 0]).reshape([1, 6, 1]);
 * mx.maxPool(x, 2).reshape([-1]).tolist();                        // [3, 5, 4]
 * mx.maxPool(x, 3, { stride: 1 }).reshape([-1]).tolist();         // [3, 5, 5, 5]
 */
export function maxPool(x: Array, kernelSize: SpatialArg, options: PoolOptions = {}): Array {
  return withDevice("maxPool", options, () => {
    checkArray("maxPool", x, 1);
    const [win, axes] = windows("maxPool", x, kernelSize, options ?? {}, lowest(x));
    return max(win, axes);
  }, POOL_KEYS);
}

/**
 * Average pooling over the spatial dims of `x` [N, ...spatial, C] (as MLX's AvgPool layers):
 * the mean of each window, padding counted as zeros; integers average in float32.
 * @example
 * const x = mx.array([1, 3, 2, 6]).reshape([1, 4, 1]);
 * mx.avgPool(x, 2).reshape([-1]).tolist();                        // [2, 4]
 * mx.avgPool(x, 2, { stride: 1, padding: 1 }).reshape([-1]).tolist();   // [0.5, 2, 2.5, 4, 3]
 */
export function avgPool(x: Array, kernelSize: SpatialArg, options: PoolOptions = {}): Array {
  return withDevice("avgPool", options, () => {
    const [win, axes] = windows("avgPool", x, kernelSize, options ?? {}, 0);
    return mean(win, axes);
  }, POOL_KEYS);
}
