/**
 * @file Property rows of the indexing, scan, sorting, linear-algebra, convolution and window
 * primitives (and the few plumbing ones: divmod, identity, copy, transfer, sliceUpdate), run by
 * properties-ops.test.ts and counted by the coverage guard (properties-coverage.test.ts). Each
 * row is an arbitrary of instances drawn where the function is differentiable: continuous values
 * (so sort, cummax and max pooling see no ties), distinct indices where a write overwrites,
 * products away from zero, SPD matrices for cholesky, well-separated spectra for eigh and svd,
 * diagonally dominant matrices for inv and solve.
 */
import fc from "fast-check";
import * as mx from "@tessera/core";
import { uniform, type Gen, type Instance } from "./checks.js";
import type { Row } from "./rows.js";

const { lax } = mx.internal;
const f64 = (shape: number[], lo = -2, hi = 2) => uniform(shape, lo, hi);
const sizeOf = (s: number[]) => s.reduce((a, d) => a * d, 1);
const show = (v: unknown) => JSON.stringify(v);
const nonEmptyShapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });

/** int32 indices in [-n, n) (repeats allowed). */
const ints = (shape: number[], n: number): Gen => (r) => ({
  shape, dtype: "int32", data: Float64Array.from({ length: sizeOf(shape) }, () => Math.floor(r() * 2 * n) - n),
});
/** int32 indices distinct along `axis` (a prefix of a permutation of 0..n-1, some negated): no write is lost. */
const distinct = (shape: number[], axis: number, n: number): Gen => (r) => {
  const m = shape[axis], inner = sizeOf(shape.slice(axis + 1)), size = sizeOf(shape);
  const data = new Float64Array(size);
  for (let line = 0; line < size / Math.max(1, m); line++) {
    const perm = [...Array(n).keys()];
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const base = Math.floor(line / inner) * m * inner + (line % inner);
    for (let j = 0; j < m; j++) data[base + j * inner] = r() < 0.3 ? perm[j] - n : perm[j];
  }
  return { shape, dtype: "int32", data };
};

// ---- gather ----

const takeArb = nonEmptyShapeArb.chain((s) =>
  fc.tuple(fc.option(fc.integer({ min: -s.length, max: s.length - 1 }), { nil: undefined }), fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }))
    .map(([axis, ishape]): Instance => {
      const n = axis === undefined ? sizeOf(s) : s[axis < 0 ? axis + s.length : axis];
      return { fn: (x, i) => mx.take(x, i, axis), args: [f64(s), ints(ishape, n)], label: `take ${show(s)} at ${show(ishape)} axis ${axis}` };
    }));

const takeAlongArb = nonEmptyShapeArb.chain((s) =>
  fc.tuple(fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: 1, max: 4 })).map(([axis, m]): Instance => {
    const ishape = s.map((d, i) => (i === axis ? m : d));
    return { fn: (x, i) => mx.takeAlongAxis(x, i, axis), args: [f64(s), ints(ishape, s[axis])], label: `takeAlongAxis ${show(s)} by ${show(ishape)} axis ${axis}` };
  }));

/** x.index with integer arrays at two axes around a slice (NumPy's rule moves them to the front). */
const advancedIndexArb = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }))
  .map(([a, b, c, m]): Instance => ({
    fn: (x, i, j) => x.index(i, mx.slice(null, null, -1), j),
    args: [f64([a, b, c]), ints([m], a), ints([m], c)],
    label: `index [${a},${b},${c}] [i, ::-1, j] with ${m} pairs`,
  }));

// ---- scatter ----

type AtMode = "set" | "add" | "multiply" | "maximum" | "minimum";
/** x.at(i)[mode](u) along axis 0 of x, u of the indexed shape; "set" writes distinct indices. */
const atArb = (mode: AtMode) => nonEmptyShapeArb.chain((s) =>
  fc.integer({ min: 1, max: mode === "set" ? s[0] : 4 }).map((m): Instance => {
    const ushape = [m, ...s.slice(1)];
    const idx = mode === "set" ? distinct([m], 0, s[0]) : ints([m], s[0]);
    const [lo, hi] = mode === "multiply" ? [0.5, 1.5] : [-2, 2];
    return {
      fn: (x, i, u) => x.at(i)[mode](u),
      args: [uniform(s, lo, hi, { away: mode === "multiply" }), idx, uniform(ushape, lo, hi, { away: mode === "multiply" })],
      deriv: { diff: [true, false, true] },
      label: `at(${m} indices).${mode} on ${show(s)}`,
    };
  }));

const putAlongArb = nonEmptyShapeArb.chain((s) =>
  fc.integer({ min: 0, max: s.length - 1 }).chain((axis) => fc.integer({ min: 1, max: s[axis] }).map((m): Instance => {
    const ishape = s.map((d, i) => (i === axis ? m : d));
    return {
      fn: (x, i, v) => mx.putAlongAxis(x, i, v, axis),
      args: [f64(s), distinct(ishape, axis, s[axis]), f64(ishape)],
      deriv: { diff: [true, false, true] },
      label: `putAlongAxis ${show(s)} at ${show(ishape)} axis ${axis}`,
    };
  })));

// ---- scans ----

type ScanName = "cumsum" | "cumprod" | "cummax" | "cummin" | "logcumsumexp";
/**
 * A scan over a random axis (or the flattened array), any direction, inclusive or not. An
 * exclusive max, min or logaddexp scan starts at an infinite identity, which finite differences
 * can't take: it is zeroed there (the rules still run on it).
 */
const scanArb = (name: ScanName) => nonEmptyShapeArb.chain((s) =>
  fc.tuple(fc.option(fc.integer({ min: -s.length, max: s.length - 1 }), { nil: undefined }), fc.boolean(), fc.boolean()).map(([axis, reverse, inclusive]): Instance => ({
    fn: (x) => {
      const y = mx[name](x, axis, { reverse, inclusive });
      return inclusive || name === "cumsum" || name === "cumprod" ? y : mx.where(mx.isinf(y), 0, y);
    },
    args: [name === "cumprod" ? uniform(s, 0.5, 1.5, { away: true }) : f64(s)],
    label: `${name} ${show(s)} axis ${axis} reverse ${reverse} inclusive ${inclusive}`,
  })));

// ---- sorting (continuous values: no ties, so the order is locally constant) ----

const axisOf = (s: number[]) => fc.option(fc.integer({ min: -s.length, max: s.length - 1 }), { nil: null });
const lengthAlong = (s: number[], axis: number | null) => (axis === null ? sizeOf(s) : s[axis < 0 ? axis + s.length : axis]);
const sortArb = nonEmptyShapeArb.chain((s) => axisOf(s).map((axis): Instance => ({
  fn: (x) => mx.sort(x, axis), args: [f64(s)], label: `sort ${show(s)} axis ${axis}`,
})));
const partitionArb = nonEmptyShapeArb.chain((s) => axisOf(s).chain((axis) => {
  const n = lengthAlong(s, axis);
  return fc.integer({ min: -n, max: n - 1 }).map((kth): Instance => ({
    fn: (x) => mx.partition(x, kth, axis), args: [f64(s)], label: `partition ${show(s)} kth ${kth} axis ${axis}`,
  }));
}));
const topkArb = nonEmptyShapeArb.chain((s) => axisOf(s).chain((axis) =>
  fc.integer({ min: 0, max: lengthAlong(s, axis) }).map((k): Instance => ({
    fn: (x) => mx.topk(x, k, axis), args: [f64(s)], label: `topk ${show(s)} k ${k} axis ${axis}`,
  }))));

// ---- linear algebra ----

const batchArb = fc.constantFrom<number[]>([], [2], [2, 1]);
/** Matrices [...batch, m, n]: uniform [-0.5, 0.5] plus `diag` on the main diagonal. */
const shifted = (batch: number[], m: number, n: number, diag: number[]): Gen => (r) => {
  const v = f64([...batch, m, n], -0.5, 0.5)(r);
  for (let b = 0; b < sizeOf(batch); b++) diag.forEach((d, i) => (v.data[b * m * n + i * n + i] += d));
  return v;
};
/** Symmetric positive definite [...batch, n, n]: B B^T + n I per matrix. */
const spd = (batch: number[], n: number): Gen => (r) => {
  const data = new Float64Array(sizeOf(batch) * n * n);
  for (let b = 0; b < sizeOf(batch); b++) {
    const m = f64([n, n], -1, 1)(r).data;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = i === j ? n : 0;
        for (let t = 0; t < n; t++) s += m[i * n + t] * m[j * n + t];
        data[b * n * n + i * n + j] = s;
      }
    }
  }
  return { shape: [...batch, n, n], dtype: "float64", data };
};
/** Several outputs as one: each flattened over its matrix axes, then joined (batch axes kept). */
const joined = (batch: number[], parts: mx.Array[]) =>
  mx.concatenate(parts.map((p) => mx.reshape(p, [...batch, -1])), -1);
const nArb = fc.integer({ min: 1, max: 4 });
/** A spread diagonal 3, 2 + ..., so singular values and eigenvalues stay apart. */
const spread = (k: number, step: number, base: number) => [...Array(k).keys()].map((i) => base + step * (k - 1 - i));

const invArb = fc.tuple(batchArb, nArb).map(([b, n]): Instance => ({
  fn: (a) => mx.linalg.inv(a), args: [shifted(b, n, n, Array(n).fill(3))], label: `inv ${show([...b, n, n])}`,
}));
const solveArb = fc.tuple(batchArb, nArb, fc.constantFrom<"matrix" | "vector">("matrix", "vector"), fc.integer({ min: 1, max: 3 })).map(([b, n, kind, k]): Instance => ({
  fn: (a, rhs) => mx.linalg.solve(a, rhs),
  // a vector right-hand side only beside an unbatched matrix (NumPy 2's rule)
  args: [shifted(b, n, n, Array(n).fill(3)), f64(kind === "matrix" || b.length > 0 ? [...b, n, k] : [n])],
  label: `solve ${show([...b, n, n])} with a ${kind === "matrix" || b.length > 0 ? "matrix" : "vector"}`,
}));
const choleskyArb = fc.tuple(batchArb, nArb).map(([b, n]): Instance => ({
  fn: (a) => mx.linalg.cholesky(a), args: [spd(b, n)], label: `cholesky ${show([...b, n, n])}`,
}));
const qrArb = fc.tuple(batchArb, nArb, fc.integer({ min: 0, max: 2 })).map(([b, n, extra]): Instance => ({
  fn: (a) => joined(b, mx.linalg.qr(a)), args: [shifted(b, n + extra, n, spread(n, 1, 2))], label: `qr ${show([...b, n + extra, n])}`,
}));
const eighArb = fc.tuple(batchArb, nArb).map(([b, n]): Instance => ({
  fn: (a) => joined(b, mx.linalg.eigh(a)), args: [shifted(b, n, n, spread(n, 3, 0))], label: `eigh ${show([...b, n, n])}`,
}));
const svdArb = fc.tuple(batchArb, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })).map(([b, m, n]): Instance => ({
  fn: (a) => joined(b, mx.linalg.svd(a)), args: [shifted(b, m, n, spread(Math.min(m, n), 2, 1))], label: `svd ${show([...b, m, n])}`,
}));

// ---- convolution and windows ----

/** conv1d/conv2d with random stride, padding, dilation and groups (the output at least 1 wide). */
const convArb = (D: 1 | 2) =>
  fc.record({
    n: fc.integer({ min: 1, max: 2 }), groups: fc.integer({ min: 1, max: 2 }), cg: fc.integer({ min: 1, max: 2 }), og: fc.integer({ min: 1, max: 2 }),
    size: fc.array(fc.integer({ min: 3, max: 5 }), { minLength: D, maxLength: D }), k: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: D, maxLength: D }),
    stride: fc.integer({ min: 1, max: 2 }), padding: fc.integer({ min: 0, max: 1 }), dilation: fc.integer({ min: 1, max: 2 }),
  })
    .filter(({ size, k, padding, dilation }) => size.every((s, d) => s + 2 * padding >= (k[d] - 1) * dilation + 1))
    .map(({ n, groups, cg, og, size, k, stride, padding, dilation }): Instance => {
      const xs = [n, ...size, groups * cg], ws = [groups * og, ...k, cg];
      const conv = D === 1 ? mx.conv1d : mx.conv2d;
      return {
        fn: (x, w) => conv(x, w, { stride, padding, dilation, groups }),
        args: [f64(xs), f64(ws)],
        label: `conv${D}d ${show(xs)} * ${show(ws)} stride ${stride} padding ${padding} dilation ${dilation} groups ${groups}`,
      };
    });

const convTransposeArb = (D: 1 | 2) =>
  fc.record({
    n: fc.integer({ min: 1, max: 2 }), cin: fc.integer({ min: 1, max: 2 }), cout: fc.integer({ min: 1, max: 2 }),
    size: fc.array(fc.integer({ min: 2, max: 4 }), { minLength: D, maxLength: D }), k: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: D, maxLength: D }),
    stride: fc.integer({ min: 1, max: 2 }), padding: fc.integer({ min: 0, max: 1 }),
  })
    .filter(({ k, padding }) => k.every((kk) => kk - 1 >= padding))
    .map(({ n, cin, cout, size, k, stride, padding }): Instance => {
      const xs = [n, ...size, cin], ws = [cout, ...k, cin];
      const conv = D === 1 ? mx.convTranspose1d : mx.convTranspose2d;
      return {
        fn: (x, w) => conv(x, w, { stride, padding }), args: [f64(xs), f64(ws)],
        label: `convTranspose${D}d ${show(xs)} * ${show(ws)} stride ${stride} padding ${padding}`,
      };
    });

/** convGeneral with input dilation, uneven padding and a flipped kernel (what gradients build). */
const convGeneralArb = fc.record({ s: fc.integer({ min: 2, max: 4 }), k: fc.integer({ min: 1, max: 3 }), lo: fc.integer({ min: 0, max: 2 }), hi: fc.integer({ min: 0, max: 2 }), flip: fc.boolean() })
  .map(({ s, k, lo, hi, flip }): Instance => ({
    fn: (x, w) => mx.convGeneral(x, w, { inputDilation: 2, padding: [[lo], [hi]], flip }),
    args: [f64([1, s, 2]), f64([2, k, 2])],
    label: `convGeneral [1,${s},2] * [2,${k},2] input dilation 2 padding ${lo},${hi} flip ${flip}`,
  }));

/** convWeightGrad (conv's weight cotangent) called directly: random stride, padding, dilation, groups, flip. */
const convWeightGradArb = fc.record({
  D: fc.constantFrom(1, 2), n: fc.integer({ min: 1, max: 2 }), groups: fc.integer({ min: 1, max: 2 }), cg: fc.integer({ min: 1, max: 2 }), og: fc.integer({ min: 1, max: 2 }),
  size: fc.integer({ min: 3, max: 5 }), k: fc.integer({ min: 1, max: 3 }), stride: fc.integer({ min: 1, max: 2 }), padding: fc.integer({ min: 0, max: 1 }),
  dilation: fc.integer({ min: 1, max: 2 }), flip: fc.boolean(),
})
  .filter(({ size, k, padding, dilation }) => size + 2 * padding >= (k - 1) * dilation + 1)
  .map(({ D, n, groups, cg, og, size, k, stride, padding, dilation, flip }): Instance => {
    const o = Math.floor((size + 2 * padding - (k - 1) * dilation - 1) / stride) + 1;
    const xs = [n, ...Array(D).fill(size), groups * cg], cs = [n, ...Array(D).fill(o), groups * og];
    const dims = (v: number) => Array(D).fill(v);
    const p = {
      stride: dims(stride), padLo: dims(padding), padHi: dims(padding), kernelDilation: dims(dilation), inputDilation: dims(1),
      groups, flip, kernel: dims(k),
    };
    return {
      fn: (x, ct) => lax.convWeightGrad(x, ct, p), args: [f64(xs), f64(cs)],
      label: `convWeightGrad ${show(xs)}, ${show(cs)} kernel ${k} stride ${stride} padding ${padding} dilation ${dilation} groups ${groups} flip ${flip}`,
    };
  });

/** maxPool/avgPool over 1 or 2 spatial dims: random kernel, stride and padding (at most half the kernel). */
const poolArb = (kind: "maxPool" | "avgPool") =>
  fc.record({
    D: fc.constantFrom(1, 2), n: fc.integer({ min: 1, max: 2 }), c: fc.integer({ min: 1, max: 2 }),
    size: fc.integer({ min: 2, max: 5 }), k: fc.integer({ min: 1, max: 3 }), stride: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }), pad: fc.integer({ min: 0, max: 1 }),
  })
    .filter(({ size, k, pad }) => 2 * pad <= k && size + 2 * pad >= k)
    .map(({ D, n, c, size, k, stride, pad }): Instance => {
      const xs = [n, ...Array(D).fill(size), c];
      return {
        fn: (x) => mx[kind](x, k, { stride, padding: pad }), args: [f64(xs)],
        label: `${kind} ${show(xs)} kernel ${k} stride ${stride} padding ${pad}`,
      };
    });

/** windowAdd (the transpose of window, which only gradients reach) called directly. */
const windowAddArb = fc.record({ s: fc.integer({ min: 1, max: 5 }), k: fc.integer({ min: 1, max: 3 }), stride: fc.integer({ min: 1, max: 2 }), dilation: fc.integer({ min: 1, max: 2 }) })
  .filter(({ s, k, dilation }) => s >= (k - 1) * dilation + 1)
  .map(({ s, k, stride, dilation }): Instance => {
    const o = Math.floor((s - ((k - 1) * dilation + 1)) / stride) + 1;
    const p = { kernel: [k], stride: [stride], dilation: [dilation], shape: [s] };
    return { fn: (ct) => lax.windowAdd(ct, p), args: [f64([2, o, k, 3])], label: `windowAdd [2,${o},${k},3] -> [2,${s},3] stride ${stride} dilation ${dilation}` };
  });

// ---- plumbing ----

const other: mx.Device = { type: "cpu", index: 1 };
const sliceUpdateArb = nonEmptyShapeArb.chain((s) =>
  fc.tuple(fc.integer({ min: 0, max: s[0] - 1 }), fc.constantFrom(1, 2)).map(([start, step]): Instance => {
    const m = Math.ceil((s[0] - start) / step);
    return {
      fn: (x, u) => x.at(mx.slice(start, null, step)).set(u), args: [f64(s), f64([m, ...s.slice(1)])],
      label: `at(${start}::${step}).set on ${show(s)}`,
    };
  }));

/** The rows, by the name the tests show; the guard counts the primitives their graphs bind. */
export const OP_ROWS: Row[] = [
  { name: "take", arb: takeArb },
  { name: "takeAlongAxis", arb: takeAlongArb },
  { name: "index with integer arrays and a slice", arb: advancedIndexArb },
  ...(["set", "add", "multiply", "maximum", "minimum"] as AtMode[]).map((m) => ({ name: `at(...).${m}`, arb: atArb(m) })),
  { name: "putAlongAxis", arb: putAlongArb },
  ...(["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"] as ScanName[]).map((n) => ({ name: n, arb: scanArb(n) })),
  { name: "sort", arb: sortArb },
  { name: "partition", arb: partitionArb },
  { name: "topk", arb: topkArb },
  { name: "linalg.inv", arb: invArb },
  { name: "linalg.solve", arb: solveArb },
  { name: "linalg.cholesky", arb: choleskyArb },
  { name: "linalg.qr", arb: qrArb },
  { name: "linalg.eigh", arb: eighArb },
  { name: "linalg.svd", arb: svdArb },
  { name: "conv1d", arb: convArb(1) },
  { name: "conv2d", arb: convArb(2), runs: 10 },
  { name: "convTranspose1d", arb: convTransposeArb(1) },
  { name: "convTranspose2d", arb: convTransposeArb(2), runs: 10 },
  { name: "convGeneral (input dilation, flip)", arb: convGeneralArb },
  { name: "maxPool", arb: poolArb("maxPool") },
  { name: "avgPool", arb: poolArb("avgPool") },
  { name: "windowAdd (lax)", arb: windowAddArb },
  { name: "convWeightGrad (lax)", arb: convWeightGradArb, runs: 10 },
  {
    name: "divmod (both results)",
    arb: nonEmptyShapeArb.map((s): Instance => ({
      fn: (a, b) => { const [q, r] = mx.divmod(a, b); return mx.add(mx.mul(q, 0.5), r); },
      args: [f64(s, -5, 5), uniform(s, 0.3, 3, { away: true })], label: `divmod ${show(s)}`,
    })),
  },
  { name: "sum over no axes (identity)", arb: nonEmptyShapeArb.map((s): Instance => ({ fn: (x) => mx.sum(mx.sin(x), []), args: [f64(s)], label: `sum [] ${show(s)}` })) },
  { name: "copy", arb: nonEmptyShapeArb.map((s): Instance => ({ fn: (x) => mx.copy(mx.sin(x)), args: [f64(s)], label: `copy ${show(s)}` })) },
  {
    name: "copy to another device (transfer)",
    arb: nonEmptyShapeArb.map((s): Instance => ({ fn: (x) => mx.mul(mx.copy(mx.sin(x), { device: other }), 2, { device: mx.cpu }), args: [f64(s)], label: `transfer ${show(s)}` })),
  },
  { name: "at(slice).set (sliceUpdate)", arb: sliceUpdateArb },
];
