/**
 * @file Convolution (one general N-d primitive, MLX's Convolution: stride, low/high padding,
 * kernel and input dilation, groups, kernel flip; channels-last) and the sliding-window copy that
 * pooling reduces over (window) with its transpose (windowAdd). The gradients of conv are convs.
 */
import type { Array } from "../array.js";
import { defPrimitive, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";

/** conv(x [N, S..., Cin], w [Cout, K..., Cin / groups]) -> [N, O..., Cout]; one entry per spatial dim. */
export interface ConvParams {
  stride: number[];
  padLo: number[];
  padHi: number[];
  kernelDilation: number[];
  inputDilation: number[];
  groups: number;
  flip: boolean;
}

const range = (a: number, b: number) => [...globalThis.Array(b - a).keys()].map((i) => i + a);
/** The length of n points spread d apart (what input dilation makes of an axis). */
export const dilatedLength = (n: number, d: number) => (n === 0 ? 0 : (n - 1) * d + 1);

/** The output's spatial size along one dim (0 when the kernel does not fit the padded input). */
export function convOutSize(n: number, k: number, p: ConvParams, d: number): number {
  const padded = dilatedLength(n, p.inputDilation[d]) + p.padLo[d] + p.padHi[d];
  const keff = dilatedLength(k, p.kernelDilation[d]);
  return padded < keff ? 0 : Math.floor((padded - keff) / p.stride[d]) + 1;
}

/** The cotangent of x: a convolution of the cotangent with the transposed, flipped kernel. */
function inputGrad(x: Array, w: Array, ct: Array, p: ConvParams): Array {
  const D = x.ndim - 2;
  const G = p.groups, cout = w.shape[0], cg = w.shape[D + 1], og = cout / G;
  const kshape = w.shape.slice(1, D + 1);
  // w [G*Og, K, Cg] -> [G*Cg, K, Og]: each group's kernel with its channel axes swapped.
  const wg = lax.reshape(w, [G, og, ...kshape, cg]);
  const wt = lax.reshape(lax.transpose(wg, [0, D + 2, ...range(2, D + 2), 1]), [G * cg, ...kshape, og]);
  const padLo = kshape.map((k, d) => dilatedLength(k, p.kernelDilation[d]) - 1 - p.padLo[d]);
  const padHi = kshape.map((k, d) =>
    (x.shape[1 + d] - 1) * p.inputDilation[d] + dilatedLength(k, p.kernelDilation[d]) -
    dilatedLength(ct.shape[1 + d], p.stride[d]) - padLo[d]);
  return lax.conv(ct, wt, {
    stride: p.inputDilation, padLo, padHi, kernelDilation: p.kernelDilation, inputDilation: p.stride, groups: G, flip: !p.flip,
  });
}

/** The cotangent of w: one native pass over the input's windows (convWeightGrad). */
function weightGrad(x: Array, w: Array, ct: Array, p: ConvParams): Array {
  return lax.convWeightGrad(x, ct, { ...p, kernel: w.shape.slice(1, -1) });
}

export const conv: PrimitiveDef<ConvParams> = defPrimitive<ConvParams>({
  name: "conv",
  opcode: opcode("conv"),
  abstractEval: ([x, w], p) => {
    const D = x.shape.length - 2;
    const out = range(0, D).map((d) => convOutSize(x.shape[1 + d], w.shape[1 + d], p, d));
    return [{ shape: [x.shape[0], ...out, w.shape[0]], dtype: x.dtype }];
  },
  encode: (p) => ({
    ints: [p.stride.length, p.groups, p.flip ? 1 : 0, ...p.stride, ...p.padLo, ...p.padHi, ...p.kernelDilation, ...p.inputDilation],
  }),
  // Bilinear: d conv(x, w) = conv(dx, w) + conv(x, dw).
  jvp: ([x, w], [tx, tw], p) => {
    const parts = [tx ? lax.conv(tx, w, p) : null, tw ? lax.conv(x, tw, p) : null].filter((t): t is Array => !!t);
    return [parts.length === 2 ? lax.add(parts[0], parts[1]) : parts[0]];
  },
  vjp: ([x, w], [ct], p) => [inputGrad(x, w, ct!, p), weightGrad(x, w, ct!, p)],
  vmap: ([x, w], [dx, dw], p, size) => {
    const D = x.ndim - (dx === null ? 2 : 3);
    const B = size, G = p.groups;
    if (dw === null) {
      // Fold the batch into N.
      const xb = batchToFront(x, dx, B);
      const y = lax.conv(lax.reshape(xb, [B * xb.shape[1], ...xb.shape.slice(2)]), w, p);
      return [[lax.reshape(y, [B, xb.shape[1], ...y.shape.slice(1)])], [0]];
    }
    const wb = batchToFront(w, dw, B); // [B, Cout, K, Cg]
    const cout = wb.shape[1], og = cout / G, rest = wb.shape.slice(2);
    if (dx === null) {
      // Fold the batch into each group's output channels: [G, B, Og] channel order.
      const wf = lax.reshape(lax.moveaxis(lax.reshape(wb, [B, G, og, ...rest]), 1, 0), [G * B * og, ...rest]);
      const y = lax.conv(x, wf, p); // [N, O, G*B*Og]
      const sp = y.shape.slice(0, D + 1);
      const yb = lax.moveaxis(lax.reshape(y, [...sp, G, B, og]), D + 2, 0);
      return [[lax.reshape(yb, [B, ...sp, cout])], [0]];
    }
    // Both batched: B*G groups over channels in [B, Cin] order.
    const xb = batchToFront(x, dx, B); // [B, N, S, Cin]
    const xf = lax.moveaxis(xb, 0, D + 1); // [N, S, B, Cin]
    const xs = xf.shape;
    const y = lax.conv(lax.reshape(xf, [...xs.slice(0, D + 1), B * xs[D + 2]]), lax.reshape(wb, [B * cout, ...rest]), { ...p, groups: B * G });
    const sp = y.shape.slice(0, D + 1);
    return [[lax.moveaxis(lax.reshape(y, [...sp, B, cout]), D + 1, 0)], [0]];
  },
});

/** convWeightGrad(x, ct) -> [Cout, K..., Cin / groups]: conv's params plus the kernel's spatial shape K. */
export interface ConvWeightGradParams extends ConvParams {
  kernel: number[];
}
const convOf = ({ stride, padLo, padHi, kernelDilation, inputDilation, groups, flip }: ConvWeightGradParams): ConvParams =>
  ({ stride, padLo, padHi, kernelDilation, inputDilation, groups, flip });

export const convWeightGrad: PrimitiveDef<ConvWeightGradParams> = defPrimitive<ConvWeightGradParams>({
  name: "convWeightGrad",
  opcode: opcode("convWeightGrad"),
  abstractEval: ([x, ct], p) => {
    const D = x.shape.length - 2;
    return [{ shape: [ct.shape[D + 1], ...p.kernel, x.shape[D + 1] / p.groups], dtype: x.dtype }];
  },
  encode: (p, inputs) => conv.encode(convOf(p), inputs),
  // Bilinear in (x, ct), like conv.
  jvp: ([x, ct], [tx, tct], p) => {
    const parts = [tx ? lax.convWeightGrad(tx, ct, p) : null, tct ? lax.convWeightGrad(x, tct, p) : null].filter((t): t is Array => !!t);
    return [parts.length === 2 ? lax.add(parts[0], parts[1]) : parts[0]];
  },
  // <cw, convWeightGrad(x, ct)> = <ct, conv(x, cw)>: the cotangents are conv's two gradients.
  vjp: ([x, ct], [cw], p) => [inputGrad(x, cw!, ct, convOf(p)), lax.conv(x, cw!, convOf(p))],
  vmap: ([x, ct], [dx, dct], p, size) => {
    // The batch becomes groups: channels in [B, Cin] and [B, Cout] order, B * groups groups.
    const B = size, D = p.kernel.length;
    const fold = (a: Array, d: number | null) => {
      const ab = lax.moveaxis(batchToFront(a, d, B), 0, D + 1); // [N, S, B, C]
      return lax.reshape(ab, [...ab.shape.slice(0, D + 1), B * ab.shape[D + 2]]);
    };
    const dw = lax.convWeightGrad(fold(x, dx), fold(ct, dct), { ...p, groups: B * p.groups }); // [B * Cout, K, Cg]
    return [[lax.reshape(dw, [B, dw.shape[0] / B, ...dw.shape.slice(1)])], [0]];
  },
});

/** window(x [N, S..., C]) -> [N, O..., K..., C]; out[n, o, k, c] = x[n, o * stride + k * dilation, c]. */
export interface WindowParams {
  kernel: number[];
  stride: number[];
  dilation: number[];
}
/** windowAdd(ct [N, O..., K..., C]) -> [N, S..., C]: window's transpose; `shape` is S. */
export interface WindowAddParams extends WindowParams {
  shape: number[];
}

/** The number of windows along one dim of size n. */
export function windowCount(n: number, p: WindowParams, d: number): number {
  const keff = dilatedLength(p.kernel[d], p.dilation[d]);
  return n < keff ? 0 : Math.floor((n - keff) / p.stride[d]) + 1;
}
const windowInts = (p: WindowParams) => ({ ints: [p.kernel.length, ...p.kernel, ...p.stride, ...p.dilation] });
const windowOf = ({ kernel, stride, dilation }: WindowParams): WindowParams => ({ kernel, stride, dilation });

/** Folds a leading batch axis into N and calls f; returns f's result unfolded, batch at 0. */
function foldIntoN(x: Array, d: number | null, size: number, f: (x: Array) => Array): [Array[], (number | null)[]] {
  const xb = batchToFront(x, d, size);
  const y = f(lax.reshape(xb, [size * xb.shape[1], ...xb.shape.slice(2)]));
  return [[lax.reshape(y, [size, xb.shape[1], ...y.shape.slice(1)])], [0]];
}

export const window: PrimitiveDef<WindowParams> = defPrimitive<WindowParams>({
  name: "window",
  opcode: opcode("window"),
  abstractEval: ([x], p) => {
    const D = p.kernel.length;
    const out = range(0, D).map((d) => windowCount(x.shape[1 + d], p, d));
    return [{ shape: [x.shape[0], ...out, ...p.kernel, x.shape[D + 1]], dtype: x.dtype }];
  },
  encode: windowInts,
  // Linear: the tangent is the window of the tangent, the cotangent the sum over windows.
  jvp: (_x, [t], p) => [lax.window(t!, p)],
  vjp: ([x], [ct], p) => [lax.windowAdd(ct!, { ...windowOf(p), shape: x.shape.slice(1, -1) })],
  vmap: ([x], [d], p, size) => foldIntoN(x, d, size, (xf) => lax.window(xf, p)),
});

export const windowAdd: PrimitiveDef<WindowAddParams> = defPrimitive<WindowAddParams>({
  name: "windowAdd",
  opcode: opcode("windowAdd"),
  abstractEval: ([ct], p) => [{ shape: [ct.shape[0], ...p.shape, ct.shape[ct.shape.length - 1]], dtype: ct.dtype }],
  encode: windowInts,
  jvp: (_x, [t], p) => [lax.windowAdd(t!, p)],
  vjp: (_x, [ct], p) => [lax.window(ct!, windowOf(p))],
  vmap: ([x], [d], p, size) => foldIntoN(x, d, size, (xf) => lax.windowAdd(xf, p)),
});
