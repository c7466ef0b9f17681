/**
 * Enumerates the primitive registry and checks every rule of every primitive: the rules exist,
 * non-differentiable primitives say so with the explicit sentinels, vmap equals stacking
 * per-example results, and (differentiable ones, in float64) jvp and vjp agree with central
 * finite differences and with each other. The elementwise primitives take their cases from their
 * rows in OPS (test/core/op-table.ts), the others from CASES here. A primitive with neither fails
 * here, so a new primitive cannot go unchecked.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { jvp, vjp } from "@tessera/transforms";
import { fromMx, rng } from "../helpers/reference.js";
import { kindOf, sampleFloat, sampleInt } from "../helpers/inputs.js";
import { OPS, labelOf, primitiveOf, type OpCase } from "../core/op-table.js";
import { checkDerivatives, checkVmap, toArray, uniform, type Gen } from "./checks.js";

const { registry, bind1, lax, noGradient, zeroTangent, noInputs } = mx.internal;

interface Case {
  args: Gen[];
  params?: object;
  /** Finite-difference overrides (a linear primitive in float32 wants a big step). */
  eps?: number;
  atol?: number;
}

const awayFromZero = (shape: number[], lo: number, hi: number) => uniform(shape, lo, hi, { away: true });
/** A fixed value with zeros in it (prod's gradient where x_i = 0). */
const withZeros = (zeros: number): Gen => (r) => {
  const v = uniform([3, 4], 0.5, 1.5)(r);
  for (let k = 0; k < zeros; k++) v.data[4 + k] = 0; // row 1 gets `zeros` zeros
  return v;
};

const S = [2, 3];
/** conv's params for D spatial dims: the defaults (stride 1, no padding, no dilation, one group) overridden. */
const convParams = (D: number, p: Partial<Record<"stride" | "padLo" | "padHi" | "kernelDilation" | "inputDilation", number[]> & { groups: number; flip: boolean }>) => ({
  stride: Array(D).fill(1), padLo: Array(D).fill(0), padHi: Array(D).fill(0), kernelDilation: Array(D).fill(1),
  inputDilation: Array(D).fill(1), groups: 1, flip: false, ...p,
});
/** int32 indices in [-n, n), repeats allowed. */
const indices = (shape: number[], n: number): Gen => (r) => ({
  shape, dtype: "int32", data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.floor(r() * 2 * n) - n),
});
/** int32 indices distinct along `axis` (a random prefix of a permutation of 0..n-1, some negated). */
const distinct = (shape: number[], axis: number, n: number): Gen => (r) => {
  const size = shape.reduce((a, b) => a * b, 1), m = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const data = new Float64Array(size);
  for (let line = 0; line < size / m; line++) {
    const perm = [...Array(n).keys()].sort(() => r() - 0.5);
    const base = Math.floor(line / inner) * m * inner + (line % inner);
    for (let j = 0; j < m; j++) data[base + j * inner] = r() < 0.3 ? perm[j] - n : perm[j];
  }
  return { shape, dtype: "int32", data };
};
/** Random uint32 words (keys of randomBits). */
const keys = (shape: number[]): Gen => (r) => ({ shape, dtype: "uint32", data: uniform(shape, 0, 1)(r).data.map((v) => Math.floor(v * 2 ** 32)) });
const un = (lo: number, hi: number): Case[] => [{ args: [uniform(S, lo, hi)] }];
/** Uniform [-0.5, 0.5] entries plus `diag` on the main diagonal (conditioned and spread by it). */
const shifted = (shape: number[], diag: number[]): Gen => (r) => {
  const v = uniform(shape, -0.5, 0.5)(r);
  diag.forEach((d, i) => (v.data[i * shape[1] + i] += d));
  return v;
};
/** A symmetric positive definite n x n matrix: B B^T + n I. */
const spd = (n: number): Gen => (r) => {
  const b = uniform([n, n], -1, 1)(r).data;
  const data = Float64Array.from({ length: n * n }, (_, k) => {
    const [i, j] = [Math.floor(k / n), k % n];
    let s = i === j ? n : 0;
    for (let t = 0; t < n; t++) s += b[i * n + t] * b[j * n + t];
    return s;
  });
  return { shape: [n, n], dtype: "float64", data };
};
const f = (lo = -2, hi = 2) => uniform(S, lo, hi);

/**
 * Every primitive with inputs that is not an elementwise one with a row in OPS: how to build
 * them. null marks the primitives that take none.
 */
const EXPLICIT: Record<string, Case[] | null> = {
  divmod: [{ args: [f(-3, 3), awayFromZero(S, 0.5, 2)] }],
  cast: [
    { args: [f()], params: { dtype: "float32" }, eps: 0.25, atol: 1e-5 },
    { args: [uniform(S, -2, 2, { dtype: "float32" })], params: { dtype: "float64" }, eps: 0.25, atol: 1e-5 },
    { args: [f(-5, 5)], params: { dtype: "int32" } },
  ],
  identity: un(-2, 2), copy: un(-2, 2), transfer: un(-2, 2),
  reduceSum: [{ args: [uniform([3, 4], -2, 2)], params: { axes: [1] } }, { args: [uniform([3, 4], -2, 2)], params: { axes: [0, 1] } }],
  reduceProd: [
    { args: [awayFromZero([3, 4], 0.5, 1.5)], params: { axes: [1] } },
    { args: [withZeros(1)], params: { axes: [1] } },
    { args: [withZeros(2)], params: { axes: [1] } },
    { args: [awayFromZero([2, 3], 0.5, 1.5)], params: { axes: [0, 1] } },
  ],
  reduceMax: [{ args: [uniform([3, 4], -2, 2)], params: { axes: [1] } }, { args: [uniform([3, 4], -2, 2)], params: { axes: [0, 1] } }],
  reduceMin: [{ args: [uniform([3, 4], -2, 2)], params: { axes: [0] } }, { args: [uniform([3, 4], -2, 2)], params: { axes: [0, 1] } }],
  argmax: [{ args: [uniform([3, 4], -2, 2)], params: { axis: 1 } }, { args: [uniform([3, 4], -2, 2)], params: { axis: 0 } }],
  argmin: [{ args: [uniform([3, 4], -2, 2)], params: { axis: 1 } }, { args: [uniform([3, 4], -2, 2)], params: { axis: 0 } }],
  broadcastTo: [{ args: [uniform([3, 1], -2, 2)], params: { shape: [2, 3, 4] } }],
  reshape: [{ args: [f()], params: { shape: [3, 2] } }, { args: [f()], params: { shape: [6] } }],
  transpose: [{ args: [uniform([2, 3, 4], -2, 2)], params: { perm: [2, 0, 1] } }],
  slice: [
    { args: [uniform([5, 4], -2, 2)], params: { start: [1, 3], step: [2, -1], shape: [2, 3] } },
    { args: [uniform([5, 4], -2, 2)], params: { start: [0, 1], step: [1, 1], shape: [5, 2] } },
  ],
  sliceUpdate: [{ args: [uniform([4, 5], -2, 2), uniform([2, 3], -2, 2)], params: { start: [0, 1], step: [2, 1], shape: [2, 3] } }],
  concatenate: [
    { args: [uniform([2, 3], -2, 2), uniform([1, 3], -2, 2), uniform([3, 3], -2, 2)], params: { axis: 0 } },
    { args: [uniform([2, 1], -2, 2), uniform([2, 3], -2, 2)], params: { axis: 1 } },
  ],
  matmul: [
    { args: [uniform([2, 3], -2, 2), uniform([3, 4], -2, 2)] },
    { args: [uniform([2, 2, 3], -2, 2), uniform([2, 3, 2], -2, 2)] },
  ],
  // Keys: [2] (one key) and [3, 2] (a key per leading index), random uint32 words.
  randomBits: [
    { args: [keys([2])], params: { shape: [2, 3] } },
    { args: [keys([3, 2])], params: { shape: [5] } },
  ],
  // Indices in [-n, n) (repeats allowed), or distinct along the axis (scatter-set: the last write wins).
  gather: [
    { args: [uniform([4, 3], -2, 2), indices([5, 3], 4)], params: { axis: 0 } },
    { args: [uniform([2, 3, 4], -2, 2), indices([2, 3, 2], 4)], params: { axis: 2 } },
  ],
  scatter: [
    { args: [uniform([4, 3], -2, 2), distinct([3, 3], 0, 4), uniform([3, 3], -2, 2)], params: { axis: 0, mode: "set" } },
    { args: [uniform([4, 3], -2, 2), indices([5, 3], 4), uniform([5, 3], -2, 2)], params: { axis: 0, mode: "add" } },
    { args: [uniform([2, 4], -2, 2), indices([2, 5], 4), uniform([2, 5], -2, 2)], params: { axis: 1, mode: "mul" } },
    { args: [uniform([4, 3], -2, 2), indices([5, 3], 4), uniform([5, 3], -2, 2)], params: { axis: 0, mode: "max" } },
    { args: [uniform([2, 4], -2, 2), indices([2, 5], 4), uniform([2, 5], -2, 2)], params: { axis: 1, mode: "min" } },
  ],
  // scans: every combining op, forward and reverse; exclusive for sum and prod (an exclusive max,
  // min or logaddexp starts at an infinite identity, which finite differences can't take)
  scan: [
    ...(["sum", "prod", "max", "min", "logaddexp"] as const).flatMap((kind) => {
      const x = () => (kind === "prod" ? awayFromZero([3, 4], 0.5, 1.5) : uniform([3, 4], -2, 2));
      const exclusive = kind === "sum" || kind === "prod";
      return [
        { args: [x()], params: { kind, axis: 1, reverse: false, inclusive: true } },
        { args: [x()], params: { kind, axis: 0, reverse: true, inclusive: !exclusive } },
      ];
    }),
    { args: [withZeros(1)], params: { kind: "prod", axis: 1, reverse: false, inclusive: true } },
    { args: [withZeros(1)], params: { kind: "prod", axis: 1, reverse: true, inclusive: false } },
    { args: [withZeros(2)], params: { kind: "prod", axis: 1, reverse: false, inclusive: true } },
  ],
  // a full sort, and selections (partition around kth; topk's with the side after kth sorted)
  sort: [
    { args: [uniform([3, 4], -2, 2)], params: { axis: 1 } }, { args: [uniform([3, 4], -2, 2)], params: { axis: 0 } },
    { args: [uniform([3, 5], -2, 2)], params: { axis: 1, kth: 2, sortTail: false } },
    { args: [uniform([4, 3], -2, 2)], params: { axis: 0, kth: 1, sortTail: true } },
  ],
  // convolution: plain 1-D; 2-D with groups, stride, uneven padding and kernel dilation; 1-D
  // with input dilation, a flipped kernel and negative padding (what the transposed convs and the
  // gradients build); pooling windows and their transpose
  conv: [
    { args: [uniform([2, 5, 3], -2, 2), uniform([4, 3, 3], -2, 2)], params: convParams(1, {}) },
    {
      args: [uniform([1, 5, 4, 4], -2, 2), uniform([2, 2, 2, 2], -2, 2)],
      params: convParams(2, { stride: [2, 1], padLo: [1, 0], padHi: [0, 2], kernelDilation: [1, 2], groups: 2 }),
    },
    {
      args: [uniform([2, 4, 2], -2, 2), uniform([3, 3, 2], -2, 2)],
      params: convParams(1, { padLo: [1], padHi: [-1], inputDilation: [2], flip: true }),
    },
  ],
  // conv's weight cotangent: x and ct shaped as conv's input and output, the kernel's size as a param
  convWeightGrad: [
    { args: [uniform([2, 5, 3], -2, 2), uniform([2, 3, 4], -2, 2)], params: { ...convParams(1, {}), kernel: [3] } },
    {
      args: [uniform([1, 5, 4, 4], -2, 2), uniform([1, 3, 4, 2], -2, 2)],
      params: { ...convParams(2, { stride: [2, 1], padLo: [1, 0], padHi: [0, 2], kernelDilation: [1, 2], groups: 2 }), kernel: [2, 2] },
    },
    {
      args: [uniform([2, 4, 2], -2, 2), uniform([2, 5, 3], -2, 2)],
      params: { ...convParams(1, { padLo: [1], padHi: [-1], inputDilation: [2], flip: true }), kernel: [3] },
    },
  ],
  window: [
    { args: [uniform([2, 5, 3], -2, 2)], params: { kernel: [2], stride: [2], dilation: [1] } },
    { args: [uniform([1, 4, 5, 2], -2, 2)], params: { kernel: [2, 3], stride: [1, 2], dilation: [2, 1] } },
  ],
  windowAdd: [
    { args: [uniform([2, 2, 2, 3], -2, 2)], params: { kernel: [2], stride: [2], dilation: [1], shape: [5] } },
    { args: [uniform([1, 2, 2, 2, 3, 2], -2, 2)], params: { kernel: [2, 3], stride: [1, 2], dilation: [2, 1], shape: [4, 5] } },
  ],
  // linalg: well-conditioned matrices with well-separated spectra (the derivatives of eigh and svd
  // need distinct values), batched shapes per example; cholesky and eigh read the lower triangle.
  cholesky: [{ args: [spd(3)] }],
  inv: [{ args: [shifted([3, 3], [3, 3, 3])] }],
  solve: [{ args: [shifted([3, 3], [3, 3, 3]), uniform([3, 2], -2, 2)] }],
  qr: [{ args: [shifted([4, 3], [3, 2, 1])] }, { args: [shifted([3, 3], [3, 2, 1])] }],
  eigh: [{ args: [shifted([3, 3], [0, 3, 6])] }],
  svd: [{ args: [shifted([3, 3], [5, 3, 1])] }, { args: [shifted([4, 2], [4, 2])] }, { args: [shifted([2, 4], [4, 2])] }],
  // fused: with and without weight and bias, leading axes, rope in both layouts, every mask kind
  // (causal with Lq > Lk: rows that see no key), grouped-query heads; the backward primitives on
  // independent random operands (their rules differentiate the plain computation)
  layerNorm: [
    { args: [uniform([3, 5], -2, 2), uniform([5], -2, 2), uniform([5], -2, 2)], params: { eps: 1e-5, hasWeight: true, hasBias: true } },
    { args: [uniform([2, 3, 4], -2, 2)], params: { eps: 0.1, hasWeight: false, hasBias: false } },
    { args: [uniform([2, 4], -2, 2), uniform([4], -2, 2)], params: { eps: 1e-3, hasWeight: false, hasBias: true } },
  ],
  layerNormBwd: [
    { args: [uniform([3, 5], -2, 2), uniform([5], -2, 2), uniform([3, 5], -2, 2)], params: { eps: 1e-5, hasWeight: true, lead: [] } },
    { args: [uniform([2, 4], -2, 2), uniform([2, 4], -2, 2)], params: { eps: 0.1, hasWeight: false, lead: [] } },
  ],
  rmsNorm: [
    { args: [uniform([3, 5], -2, 2), uniform([5], -2, 2)], params: { eps: 1e-5, hasWeight: true } },
    { args: [uniform([2, 3, 4], -2, 2)], params: { eps: 0.1, hasWeight: false } },
  ],
  rmsNormBwd: [
    { args: [uniform([3, 5], -2, 2), uniform([5], -2, 2), uniform([3, 5], -2, 2)], params: { eps: 1e-5, hasWeight: true, lead: [] } },
    { args: [uniform([2, 4], -2, 2), uniform([2, 4], -2, 2)], params: { eps: 0.1, hasWeight: false, lead: [] } },
  ],
  rope: [
    { args: [uniform([2, 3, 6], -2, 2)], params: { dims: 4, traditional: false, base: 10000, scale: 1, offset: 2, hasOffset: false } },
    { args: [uniform([3, 4], -2, 2)], params: { dims: 4, traditional: true, base: 100, scale: 0.5, offset: 0, hasOffset: false } },
  ],
  softmax: [{ args: [uniform([3, 4], -2, 2)] }, { args: [uniform([2, 3, 5], -2, 2)] }],
  logsumexp: [{ args: [uniform([3, 4], -2, 2)] }, { args: [uniform([2, 3, 5], -2, 2)] }],
  softmaxBwd: [{ args: [uniform([3, 4], 0, 1), uniform([3, 4], -2, 2)] }, { args: [uniform([2, 5], 0, 1), uniform([2, 5], -2, 2)] }],
  attention: [
    { args: [uniform([1, 4, 3, 2], -1, 1), uniform([1, 2, 4, 2], -1, 1), uniform([1, 2, 4, 3], -1, 1)], params: { scale: 0.7, mask: "none" } },
    {
      args: [uniform([1, 2, 3, 2], -1, 1), uniform([1, 2, 4, 2], -1, 1), uniform([1, 2, 4, 3], -1, 1), uniform([1, 2, 3, 4], -1, 1)],
      params: { scale: 0.5, mask: "additive" },
    },
    { args: [uniform([2, 2, 5, 3], -1, 1), uniform([2, 1, 3, 3], -1, 1), uniform([2, 1, 3, 2], -1, 1)], params: { scale: 0.6, mask: "causal" } },
  ],
  attentionBwd: [
    {
      args: [uniform([1, 2, 3, 2], -1, 1), uniform([1, 1, 4, 2], -1, 1), uniform([1, 1, 4, 3], -1, 1), uniform([1, 2, 3, 3], -1, 1), uniform([1, 2, 3], 0, 1), uniform([1, 2, 3, 3], -1, 1)],
      params: { scale: 0.7, mask: "none" },
    },
    {
      args: [
        uniform([1, 1, 3, 2], -1, 1), uniform([1, 1, 4, 2], -1, 1), uniform([1, 1, 4, 3], -1, 1), uniform([1, 1, 3, 4], -1, 1),
        uniform([1, 1, 3, 3], -1, 1), uniform([1, 1, 3], 0, 1), uniform([1, 1, 3, 3], -1, 1),
      ],
      params: { scale: 0.5, mask: "additive" },
    },
    {
      args: [uniform([1, 2, 4, 2], -1, 1), uniform([1, 2, 3, 2], -1, 1), uniform([1, 2, 3, 2], -1, 1), uniform([1, 2, 4, 2], -1, 1), uniform([1, 2, 4], 0, 1), uniform([1, 2, 4, 2], -1, 1)],
      params: { scale: 0.6, mask: "causal" },
    },
  ],
  full: null, arange: null, placeholder: null,
};

/** Those of them whose rules are the explicit non-differentiable sentinels. */
const EXPLICIT_NON_DIFFERENTIABLE = new Set(["argmax", "argmin", "full", "arange", "placeholder", "randomBits"]);
const NO_INPUTS = new Set(["full", "arange", "placeholder"]);

// ---- the elementwise primitives' cases, from their rows in OPS ----

/** The elementwise primitives (unary and binary) are their own lax functions, carrying `def`. */
const isElementwise = (name: string) => {
  const fn = (lax as Record<string, unknown>)[name];
  return registry.has(name) && typeof fn === "function" && (fn as { def?: unknown }).def === registry.get(name);
};

/**
 * A [2, 3] operand of dtype d for operand i of a row: floats from its domain ("smooth"), on its
 * grid ("grid"), or with its specials at every other element ("specials"); integers from its
 * intDomain; bools at random.
 */
function rowOperand(row: OpCase, i: number, d: mx.DType, how: "smooth" | "grid" | "specials"): Gen {
  return (r) => {
    const data = new Float64Array(S[0] * S[1]);
    for (let k = 0; k < data.length; k++) {
      const kind = kindOf(d);
      if (kind === "bool") data[k] = r() < 0.5 ? 0 : 1;
      else if (kind === "int") data[k] = Number(sampleInt(row.intDomain?.[i] ?? "full", d, r));
      else if (how === "specials" && k % 2 === 0) data[k] = row.specials![(k / 2 + i) % row.specials!.length];
      else data[k] = sampleFloat({ domain: row.domain[i], grid: how === "smooth" ? undefined : row.grid }, d, r);
    }
    return { shape: S, dtype: d, data };
  };
}

/** The dtypes a row is probed in: float64 for float rows, int32 with intRef, bool with bool. */
const probeDtypes = (row: OpCase): mx.DType[] => [
  ...(row.dtypes.length > 0 ? ["float64" as const] : []),
  ...(row.intRef ? ["int32" as const] : []),
  ...(row.bool ? ["bool" as const] : []),
];

/**
 * The cases of a row's primitive: for each dtype it is probed in, the row's fn is called and the
 * operand dtypes it hands the primitive (logical ops: bools; where: a bool condition) make a case
 * (once per distinct list; integer and bool probes only where no operand became floating). A
 * differentiable primitive's differentiated operands are smooth (off the grid); a
 * non-differentiable one also gets its row's specials. null: fn does not end in the primitive.
 */
function casesOfRow(row: OpCase, def: mx.internal.PrimitiveDef, differentiable: boolean): Case[] | null {
  const cases: Case[] = [];
  const seen = new Set<string>();
  for (const probe of probeDtypes(row)) {
    const r = rng(1);
    const node = row.fn(...row.domain.map((_, i) => toArray(rowOperand(row, i, probe, "smooth")(r)))).node;
    if (node?.prim !== def) continue; // e.g. floor leaves integers as they are
    const dtypes = node.inputs.map((x) => x.dtype);
    if ((probe !== "float64" && dtypes.some(mx.isFloating)) || seen.has(dtypes.join())) continue;
    seen.add(dtypes.join());
    const smooth = (i: number) => differentiable && (row.gradArgs?.includes(i) ?? true);
    cases.push({ args: dtypes.map((d, i) => rowOperand(row, i, d, smooth(i) ? "smooth" : "grid")) });
    if (!differentiable && row.specials?.length && dtypes.some(mx.isFloating)) {
      cases.push({ args: dtypes.map((d, i) => rowOperand(row, i, d, "specials")) });
    }
  }
  return cases.length > 0 ? cases : null;
}

interface Derived {
  cases: Case[];
  differentiable: boolean;
  rows: string[];
}
/** The primitives that rows of OPS cover, by name. */
const DERIVED: Record<string, Derived> = {};
/** Rows naming a primitive that is not registered or that their fn does not bind; rows of one primitive that disagree. */
const ROW_PROBLEMS: string[] = [];
for (const row of OPS) {
  const name = primitiveOf(row);
  const def = name === null ? undefined : registry.get(name);
  if (!def) {
    // A composite op (square, clip, ...) is covered through its primitives.
    if (row.primitive) ROW_PROBLEMS.push(`${labelOf(row)}: its primitive ${row.primitive} is not registered`);
    continue;
  }
  const differentiable = row.primitiveGrad ?? row.grad;
  let cases: Case[] | null;
  try {
    cases = casesOfRow(row, def, differentiable);
  } catch (e) {
    ROW_PROBLEMS.push(`${labelOf(row)}: fn throws on probe inputs: ${(e as Error).message}`);
    continue;
  }
  if (!cases) {
    ROW_PROBLEMS.push(`${labelOf(row)}: fn does not end in primitive ${name} (set the row's primitive: its name, or null)`);
    continue;
  }
  const prev = DERIVED[name!];
  if (prev && prev.differentiable !== differentiable) {
    ROW_PROBLEMS.push(`${labelOf(row)}: differentiability of ${name} differs from row ${prev.rows[0]} (set primitiveGrad)`);
  }
  DERIVED[name!] = { cases: [...(prev?.cases ?? []), ...cases], differentiable, rows: [...(prev?.rows ?? []), labelOf(row)] };
}

/** Every primitive with inputs: how to build them. null marks the primitives that take none. */
const CASES: Record<string, Case[] | null> = {
  ...EXPLICIT,
  ...Object.fromEntries(Object.entries(DERIVED).map(([name, d]) => [name, d.cases])),
};
/** The primitives whose rules are the explicit non-differentiable sentinels. */
const NON_DIFFERENTIABLE = new Set([
  ...EXPLICIT_NON_DIFFERENTIABLE,
  ...Object.keys(DERIVED).filter((name) => !DERIVED[name].differentiable),
]);

/** What to do about a primitive without cases. */
const missing = (name: string) =>
  isElementwise(name)
    ? `${name} is an elementwise primitive without a row in OPS: add one to test/core/op-table.ts`
    : `${name} has no cases: add a row to OPS in test/core/op-table.ts (an elementwise primitive) or an entry to CASES here`;

const names = [...registry.keys()];
const B = 3;

describe("the primitive registry", () => {
  it("has an input builder for every primitive, and no stale ones", () => {
    expect(ROW_PROBLEMS, "rows of OPS").toEqual([]);
    const lacking = names.filter((n) => !(n in CASES));
    expect(lacking, lacking.map(missing).join("; ")).toEqual([]);
    expect(Object.keys(EXPLICIT).filter((n) => !registry.has(n)), "entries of CASES that are not primitives").toEqual([]);
    expect(Object.keys(EXPLICIT).filter((n) => n in DERIVED), "in CASES and in OPS (keep the OPS row)").toEqual([]);
    expect(Object.keys(EXPLICIT).filter(isElementwise), "elementwise primitives in CASES (give them an OPS row)").toEqual([]);
    expect([...EXPLICIT_NON_DIFFERENTIABLE].filter((n) => !(n in EXPLICIT))).toEqual([]);
  });

  it.each(names)("%s: has every rule, with sentinels exactly where it is not differentiable", (name) => {
    expect(name in CASES, missing(name)).toBe(true);
    const def = registry.get(name)!;
    expect(def.name).toBe(name);
    for (const rule of ["abstractEval", "encode", "jvp", "vjp", "vmap"] as const) expect(typeof def[rule]).toBe("function");
    expect(def.vjp === noGradient, "vjp is noGradient").toBe(NON_DIFFERENTIABLE.has(name));
    expect(def.jvp === zeroTangent, "jvp is zeroTangent").toBe(NON_DIFFERENTIABLE.has(name));
    expect(def.vmap === noInputs, "vmap is noInputs").toBe(NO_INPUTS.has(name));
    expect(CASES[name] === null).toBe(NO_INPUTS.has(name));
  });

  it("noInputs refuses to batch", () => {
    expect(() => noInputs([], [], {}, 2)).toThrow(/without inputs/);
  });
});

const withInputs = names.filter((n) => CASES[n]);
describe.each(withInputs)("%s", (name) => {
  const def = registry.get(name)!;
  const cases = CASES[name]!;
  const call = (params: object) => (...xs: mx.Array[]) => bind1(def, xs, params);

  it.each(cases.map((c, i) => [i, c] as const))("case %i: vmap equals stacking per-example results", (i, c) => {
    const r = rng(100 + i);
    const examples = [...Array(B)].map(() => c.args.map((g) => g(r)));
    const fn = call(c.params ?? {});
    const n = c.args.length;
    const nd = examples[0][0].shape.length;
    const all = (ax: number | null) => new Array<number | null>(n).fill(ax);
    checkVmap(fn, examples, all(0));
    checkVmap(fn, examples, all(-1)); // the batch axis last (negative: counted from the end)
    if (nd >= 2) checkVmap(fn, examples, all(1));
    checkVmap(fn, examples, all(0), { outAxis: -1 });
    for (let k = 0; k < n && n > 1; k++) {
      // One argument mapped, the others shared; and one shared, the others mapped.
      checkVmap(fn, examples, all(null).map((_, j) => (j === k ? 0 : null)));
      checkVmap(fn, examples, all(0).map((_, j) => (j === k ? null : j % 2 === 0 ? 0 : 1)));
    }
  });

  if (NON_DIFFERENTIABLE.has(name)) {
    it.each(cases.map((c, i) => [i, c] as const))("case %i: jvp and vjp are zero", (i, c) => {
      const r = rng(200 + i);
      const xs = c.args.map((g) => toArray(g(r)));
      const fn = call(c.params ?? {});
      const [[out], [tan]] = jvp(fn, xs, xs.map((x) => mx.onesLike(x)));
      expect(tan.shape).toEqual(out.shape);
      expect([...fromMx(tan).data].every((v) => v === 0)).toBe(true);
      const [, cts] = vjp(fn, xs, [mx.onesLike(out)]);
      cts.forEach((ct, k) => {
        expect(ct.shape).toEqual(xs[k].shape);
        expect([...fromMx(ct).data].every((v) => v === 0)).toBe(true);
      });
    });
  } else {
    it.each(cases.map((c, i) => [i, c] as const))("case %i: jvp and vjp match finite differences", (i, c) => {
      const fn = call(c.params ?? {});
      for (let trial = 0; trial < 3; trial++) {
        const r = rng(300 + 10 * i + trial);
        const xs = c.args.map((g) => toArray(g(r)));
        checkDerivatives(fn, xs, { seed: trial + 1, eps: c.eps, atol: c.atol, elementwiseVjp: trial === 0 });
      }
    });
  }
});
