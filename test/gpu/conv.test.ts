/**
 * Convolution, pooling and divmod on the gpu (native/src/cuda/conv.cu, backend.cc): conv1d/2d/3d
 * and convGeneral (strides, padding of both signs, kernel and input dilation, groups, flip) and
 * their gradients (the input's a conv, the weight's convWeightGrad) against the cpu backend on
 * float32, float64 and float16; max and average pooling (window) and their gradients (windowAdd);
 * divmod bit for bit, division by zero and negative operands included.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import { rng } from "../helpers/reference.js";
import { HAS_GPU, bothDevices, expectClose, expectSame } from "./util.js";

type A = mx.Array;
const next = rng(77);
type F = "float16" | "float32" | "float64";
/** |gpu - cpu| <= tol * (1 + |cpu|): GEMMs sum in another order, so float results differ in the last bits. */
const TOL: Record<F, number> = { float16: 2e-3, float32: 2e-5, float64: 1e-12 };
function data(shape: number[], d: mx.DType = "float32"): A {
  const n = shape.reduce((a, b) => a * b, 1);
  return mx.array(Array.from({ length: n }, () => 2 * next() - 1), "float64").astype(d).reshape(shape);
}
function close(pairs: [A, A][], tol: number, what: string): void {
  pairs.forEach(([c, g], k) => expectClose(g.astype("float64"), c.astype("float64").toTypedArray() as Float64Array, tol, tol, `${what} #${k}`));
}

describe.skipIf(!HAS_GPU)("gpu: conv against the cpu", () => {
  for (const d of ["float32", "float64", "float16"] as F[]) {
    it(`${d}: conv1d, conv2d, conv3d with strides, padding, dilation and groups`, () => {
      const x1 = data([2, 11, 6], d), w1 = data([4, 3, 3], d);
      close(bothDevices(() => mx.conv1d(x1, w1, { stride: 2, padding: 1, groups: 2 })), TOL[d], "conv1d");
      close(bothDevices(() => mx.conv1d(x1, w1, { dilation: 3, groups: 2 })), TOL[d], "conv1d dilated");
      const x2 = data([3, 9, 8, 4], d), w2 = data([6, 3, 2, 4], d);
      close(bothDevices(() => mx.conv2d(x2, w2, { stride: [2, 1], padding: [1, 2], dilation: [1, 2] })), TOL[d], "conv2d");
      const x3 = data([1, 5, 4, 6, 3], d), w3 = data([2, 2, 3, 2, 3], d);
      close(bothDevices(() => mx.conv3d(x3, w3, { padding: 1, stride: 2 })), TOL[d], "conv3d");
    });
  }
  it("convGeneral: input dilation, flip, asymmetric padding; a strided input; two im2col chunks (forward and weight gradient)", () => {
    const x = data([2, 7, 6, 4], "float64"), w = data([3, 3, 2, 4], "float64"), wg = data([4, 3, 2, 2], "float64");
    const cases: [A, mx.ConvGeneralOptions][] = [
      [wg, { inputDilation: [2, 3], padding: [[1, 0], [2, 1]], groups: 2 }],
      [w, { flip: true, kernelDilation: [2, 1], padding: [[0, 2], [3, 0]] }],
      [wg, { stride: [3, 2], inputDilation: 2, flip: true, groups: 2 }],
    ];
    for (const [wc, o] of cases) close(bothDevices(() => mx.convGeneral(x, wc, o)), 1e-12, `convGeneral ${JSON.stringify(o)}`);
    const xt = mx.transpose(data([2, 4, 6, 7], "float32"), [0, 3, 2, 1]); // [2, 7, 6, 4], channels strided
    const wt = data([5, 3, 3, 4], "float32");
    close(bothDevices(() => mx.conv2d(xt, wt, { padding: 1 })), TOL.float32, "conv2d of a transposed input");
    // 45,000 output rows of 1,600 taps x channels: two im2col chunks, forward and weight gradient
    const xl = data([2, 150, 150, 64], "float32"), wl = data([4, 5, 5, 64], "float32");
    // Sums of K = 1,600 products, rounded to float32 in another order on each device, so the two
    // can differ by more than a fixed tolerance near zero: each is checked against a float64
    // reference within the rounding bound of a K-term float32 sum, K 2^-24 sum |x w| (a wrong
    // chunk or tap is off by about sum |x w| itself).
    const [[cl32, gl32]] = bothDevices(() => mx.conv2d(xl, wl, { padding: 2 }));
    const on64 = (f: (x: A, w: A) => A, x: A, w: A) => f(x.astype("float64"), w.astype("float64")).toTypedArray() as Float64Array;
    const conv = (x: A, w: A) => mx.conv2d(x, w, { padding: 2 });
    const ref = on64(conv, xl, wl), mag = on64(conv, mx.abs(xl), mx.abs(wl));
    for (const [got, dev] of [[cl32, "cpu"], [gl32, "gpu"]] as [A, string][]) {
      const v = got.toTypedArray() as Float32Array;
      for (let i = 0; i < ref.length; i++)
        if (!(Math.abs(v[i] - ref[i]) <= 1600 * 2 ** -24 * mag[i]))
          expect.fail(`conv2d over two chunks (${dev}): element ${i} is ${v[i]}, float64 reference ${ref[i]}, bound ${1600 * 2 ** -24 * mag[i]}`);
    }
    const cl = data([2, 150, 150, 4], "float32");
    close(bothDevices(() => grad((w: A) => mx.sum(mx.mul(mx.conv2d(xl, w, { padding: 2 }), cl)))(wl)), 1e-4, "convWeightGrad over two chunks");
  });
  it("gradients: dx (a conv, negative padding among them) and dw (convWeightGrad), with groups, flip and dilation", () => {
    const cases: [A, A, (x: A, w: A) => A, string][] = [
      [data([2, 9, 8, 4], "float64"), data([6, 3, 2, 2], "float64"), (x, w) => mx.conv2d(x, w, { stride: 2, padding: 1, groups: 2 }), "conv2d"],
      [data([3, 12, 3], "float64"), data([2, 4, 3], "float64"), (x, w) => mx.conv1d(x, w, { dilation: 2, padding: 3 }), "conv1d"],
      [data([2, 7, 6, 2], "float64"), data([3, 3, 2, 2], "float64"),
        (x, w) => mx.convGeneral(x, w, { inputDilation: 2, flip: true, padding: [[1, 0], [2, 1]] }), "convGeneral"],
      [data([4, 10, 10, 3], "float32"), data([5, 3, 3, 3], "float32"), (x, w) => mx.conv2d(x, w, { padding: 1 }), "conv2d float32"],
      [data([2, 6, 4], "float16"), data([3, 3, 4], "float16"), (x, w) => mx.conv1d(x, w), "conv1d float16"],
    ];
    for (const [x, w, f, what] of cases) {
      const c = data(f(x, w).shape, x.dtype);
      const loss = (x: A, w: A) => mx.sum(mx.mul(f(x, w), c));
      close(bothDevices(() => grad(loss, { argnums: [0, 1] })(x, w) as unknown as A[]),
        x.dtype === "float64" ? 1e-12 : x.dtype === "float32" ? 1e-4 : 1e-2, `${what} gradients`);
    }
  });
});

describe.skipIf(!HAS_GPU)("gpu: pooling (window, windowAdd) and divmod", () => {
  it("maxPool and avgPool, forward and backward, several dtypes", () => {
    for (const d of ["float32", "float64", "float16"] as F[]) {
      const x = data([2, 9, 7, 3], d);
      expectSame(bothDevices(() => mx.maxPool(x, [3, 2], { stride: [2, 1], padding: 1 })), `maxPool ${d}`);
      close(bothDevices(() => mx.avgPool(x, 2)), TOL[d], `avgPool ${d}`);
      const loss = (x: A) => mx.add(mx.sum(mx.avgPool(x, [2, 3], { stride: 1, padding: [1, 0] })), mx.sum(mx.square(mx.maxPool(x, 3, { stride: 2 }))));
      close(bothDevices(() => grad(loss)(x)), TOL[d] * 4, `pooling gradient ${d}`);
    }
    const xi = mx.array(Array.from({ length: 60 }, (_, i) => (i * 37) % 23 - 11), "int32").reshape([1, 10, 6]);
    expectSame(bothDevices(() => mx.maxPool(xi, 3, { stride: 2 })), "maxPool int32");
    const xt = mx.transpose(data([2, 3, 8], "float32"), [0, 2, 1]);
    close(bothDevices(() => grad((x: A) => mx.sum(mx.avgPool(x, 3, { stride: 2 })))(xt)), TOL.float32, "avgPool gradient of a strided input");
  });
  it("divmod equals the cpu's (integers bit for bit, floats up to NaN payloads), division by zero and negative operands included", () => {
    const ai = mx.array([7, -7, 7, -7, 0, 5, -2147483648, 3], "int32"), bi = mx.array([2, 2, -2, -2, 3, 0, -1, 7], "int32");
    expectSame(bothDevices(() => mx.divmod(ai, bi)), "divmod int32");
    expectSame(bothDevices(() => mx.divmod(mx.array([7, 250, 0], "uint8"), mx.array([2, 7, 0], "uint8"))), "divmod uint8");
    for (const d of ["float32", "float64", "float16"] as mx.DType[]) {
      const a = mx.array([7.5, -7.5, 7.5, -7.5, 0, 1, -1, Infinity, NaN, 5], "float64").astype(d);
      const b = mx.array([2, 2, -2, -2, 3, 0, 0, 2, 1, Infinity], "float64").astype(d);
      // NaN payloads differ between the processors (the cpu's fmod gives -NaN), so floats compare as values.
      close(bothDevices(() => mx.divmod(a, b)), 0, `divmod ${d}`);
      const [s, t] = [mx.transpose(mx.mul(data([3, 4], d), 9)), data([4, 1], d)];
      close(bothDevices(() => mx.divmod(s, t)), 0, `divmod ${d}, strided and broadcast`);
    }
  });
});
