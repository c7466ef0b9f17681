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

/** Reverses the kernel axes 1..D of a weight-shaped array (a flipped convolution's taps). */
function flipTaps(dw: Array, D: number): Array {
  return lax.slice(dw, {
    start: dw.shape.map((s, i) => (i >= 1 && i <= D ? s - 1 : 0)),
    step: dw.shape.map((_, i) => (i >= 1 && i <= D ? -1 : 1)),
    shape: dw.shape,
  });
}

/**
 * The cotangent of w as one product per group over the input's windows (im2col):
 * dw[g]^T = windows(x)[g]^T [K*Cg, N*O] @ ct[g] [N*O, Og]. The windows of every output point are
 * materialized, which costs memory but turns the reduction over N*O into a GEMM with contiguous
 * operands. Null when the input is dilated or a padding is negative (weightGrad's general form).
 */
function weightGradByWindows(x: Array, w: Array, ct: Array, p: ConvParams): Array | null {
  const D = x.ndim - 2;
  if (p.inputDilation.some((d) => d !== 1) || p.padLo.some((v) => v < 0) || p.padHi.some((v) => v < 0)) return null;
  const G = p.groups, n = x.shape[0], cin = x.shape[D + 1], cout = w.shape[0], cg = w.shape[D + 1], og = cout / G;
  const kshape = w.shape.slice(1, D + 1), outSp = ct.shape.slice(1, D + 1);
  const rows = n * outSp.reduce((a, b) => a * b, 1), taps = kshape.reduce((a, b) => a * b, 1);
  let xp = x;
  if (p.padLo.some((v) => v > 0) || p.padHi.some((v) => v > 0)) {
    const shape = x.shape.map((s, i) => (i >= 1 && i <= D ? s + p.padLo[i - 1] + p.padHi[i - 1] : s));
    xp = lax.sliceUpdate(lax.full(shape, 0, x.dtype), x, { start: [0, ...p.padLo, 0], step: x.shape.map(() => 1), shape: x.shape });
  }
  let cols = lax.window(xp, { kernel: kshape, stride: p.stride, dilation: p.kernelDilation }); // [N, O'..., K..., Cin]
  if (cols.shape.slice(1, D + 1).some((o, d) => o !== outSp[d])) {
    // The high padding left room for windows the convolution did not use: keep its O.
    const shape = [n, ...outSp, ...kshape, cin];
    cols = lax.slice(cols, { start: shape.map(() => 0), step: shape.map(() => 1), shape });
  }
  const c = lax.reshape(lax.transpose(lax.reshape(cols, [rows, taps, G, cg]), [2, 0, 1, 3]), [G, rows, taps * cg]);
  const g = lax.transpose(lax.reshape(ct, [rows, G, og]), [1, 0, 2]); // [G, N*O, Og]
  // dw^T = windows^T @ ct: the long K*Cg side as the GEMM's rows runs faster than Og rows.
  const dwT = lax.matmul(lax.transpose(c, [0, 2, 1]), g); // [G, K*Cg, Og]
  const dw = lax.reshape(lax.transpose(dwT, [0, 2, 1]), [cout, ...kshape, cg]); // indexed by the physical tap
  return p.flip ? flipTaps(dw, D) : dw;
}

/** The cotangent of w: a convolution of the input (batch and channels swapped) with the cotangent. */
function weightGrad(x: Array, w: Array, ct: Array, p: ConvParams): Array {
  const byWindows = weightGradByWindows(x, w, ct, p);
  if (byWindows) return byWindows;
  const D = x.ndim - 2;
  const G = p.groups, n = x.shape[0], cg = w.shape[D + 1];
  const sp = x.shape.slice(1, D + 1);
  const kshape = w.shape.slice(1, D + 1);
  // x [N, S, G*Cg] -> [Cg, S, G*N]; ct [N, O, Cout] -> [Cout, O, N]; groups keep pairing g with g.
  const xg = lax.reshape(x, [n, ...sp, G, cg]);
  const xt = lax.reshape(lax.transpose(xg, [D + 2, ...range(1, D + 1), D + 1, 0]), [cg, ...sp, G * n]);
  const swapEnds = [D + 1, ...range(1, D + 1), 0];
  const ctt = lax.transpose(ct, swapEnds);
  const padHi = kshape.map((k, d) =>
    (k - 1) * p.kernelDilation[d] + dilatedLength(ct.shape[1 + d], p.stride[d]) -
    dilatedLength(sp[d], p.inputDilation[d]) - p.padLo[d]);
  const z = lax.conv(xt, ctt, {
    stride: p.kernelDilation, padLo: p.padLo, padHi, kernelDilation: p.stride, inputDilation: p.inputDilation, groups: G, flip: false,
  });
  const dw = lax.transpose(z, swapEnds); // [Cout, K, Cg], indexed by the physical tap
  return p.flip ? flipTaps(dw, D) : dw;
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
