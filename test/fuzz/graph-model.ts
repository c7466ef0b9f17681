/**
 * @file The model behind test/fuzz/graphs.test.ts: a builder that turns fast-check's choices into
 * a random graph of tessera ops (elementwise ops from the op table, where, reductions, views,
 * joins, pads, tiles, matmul, casts, divmod, and calls that must throw), and a reference
 * interpreter for the same graph in plain JS.
 *
 * Each node's reference is computed from the values tessera produced for the node's inputs
 * (read back exactly), so every check is of one op on known operands: floats within a few ulps
 * of the float64 result (wider for sums, matmul and composites, by the usual error bounds),
 * integers and bools exactly. Leaves are checked against the host data they were built from, so
 * the chain of checks is anchored. While building, the builder runs the same interpreter on its
 * own values (an approximation of tessera's) to keep operands in the domains of the ops and the
 * magnitudes finite.
 */
import * as mx from "@tessera/core";
import { expect } from "vitest";
import { DEFAULT_RTOL, OPS, labelOf, type OpCase } from "../core/op-table.js";
import { hostAt, hostFrom, makeBroadcastable, mapHost, viewOf, VIEWS, type ViewKind } from "../helpers/host.js";
import { buildArray, fillerFor, sample, sampleInt, type IntDomain } from "../helpers/inputs.js";
import { rng, sizeOf, strides, unravel, broadcastShape } from "../helpers/reference.js";
import { floorDivideRef, floorDivInt, remainderInt, remainderRef } from "../helpers/special.js";
import {
  ALL_DTYPES, EPS, MAX_FINITE, TINY, bits, castH, castScalar, castV, compareV, fmtHost, fmtV, intLimits, isFloat, isUint, kindOf, mismatches,
  promote, readValues, resultType, scalarFits, scalarHost, toFloat, wrapInt,
  type DType, type Expect, type H, type Scalar, type V,
} from "./graph-values.js";

// ---------------------------------------------------------------------------------------------
// The graph
// ---------------------------------------------------------------------------------------------

export type Operand = { node: number } | { scalar: Scalar };
type Arg = mx.Array | Scalar;
type RefArg = H | Scalar;

export interface GNode {
  id: number;
  /** The op as code over earlier nodes, e.g. `mx.sum(%2, [0], { keepdims: true })`. */
  text: string;
  shape: number[];
  dtype: DType;
  ins: Operand[];
  /** Records the op in tessera (absent for the second output of a two-output op). */
  run?: (xs: Arg[]) => mx.Array | mx.Array[];
  /** The expected value from the input values. */
  ref: (xs: RefArg[]) => Expect;
  /** The builder's own value (reference on reference values). */
  approx: H;
  /** In the interleaved mode: nothing (0), mx.eval (1) or a read (2) right after recording. */
  after: number;
}

/** A call that must throw an Error (and leave the process and the other arrays intact). */
export interface Probe {
  /** Runs after this many nodes are recorded. */
  at: number;
  text: string;
  ins: number[];
  run: (xs: mx.Array[]) => unknown;
}

export const MODES = ["eval-all", "eval-sinks", "piecewise", "interleaved", "async"] as const;
export type Mode = (typeof MODES)[number];

export interface Graph {
  nodes: GNode[];
  probes: Probe[];
  mode: Mode;
  seed: number;
}

/** The graph as code, one node a line (only `only`'s nodes, with the probes, when given). */
export function describeGraph(g: Graph, only?: Set<number>): string {
  const lines = [`mode ${g.mode}, read seed ${g.seed}`];
  const probesAt = (k: number) => (only ? [] : g.probes.filter((p) => p.at === k).map((p) => `  must throw: ${p.text}`));
  lines.push(...probesAt(0));
  for (const n of g.nodes) {
    if (only && !only.has(n.id)) continue;
    const after = g.mode === "interleaved" && n.after ? `   then ${n.after === 1 ? "mx.eval" : "read"}` : "";
    lines.push(`  %${n.id} = ${n.text}  -> ${n.dtype}[${n.shape.join(",")}]${after}`);
    lines.push(...probesAt(n.id + 1));
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Reference helpers on host arrays
// ---------------------------------------------------------------------------------------------

const isHost = (x: RefArg): x is H => typeof x === "object" && x !== null && "data" in x;

/** out[idx] = x[map(idx)] over the out shape. */
function gather(x: H, shape: number[], map: (idx: number[]) => number[]): H {
  return hostFrom(shape, (i) => hostAt(x, map(unravel(i, shape))));
}

const reshapeH = (x: H, shape: number[]): H => ({ shape: [...shape], data: x.data });

function normAxis(a: number, nd: number): number {
  return a < 0 ? a + nd : a;
}

/** Python's slice.indices, then the length: [first, step, length]. */
export function sliceIndices(start: number | null, stop: number | null, step: number | null, n: number): [number, number, number] {
  const st = step ?? 1;
  const adjust = (v: number | null, dflt: number): number => {
    if (v === null) return dflt;
    if (v < 0) {
      v += n;
      if (v < 0) v = st < 0 ? -1 : 0;
    } else if (v >= n) v = st < 0 ? n - 1 : n;
    return v;
  };
  const a = adjust(start, st < 0 ? n - 1 : 0);
  const b = adjust(stop, st < 0 ? -1 : n);
  let len = 0;
  if (st < 0 ? b < a : a < b) len = st < 0 ? Math.floor((a - b - 1) / -st) + 1 : Math.floor((b - a - 1) / st) + 1;
  return [a, st, len];
}

/** Groups x's elements by output position of a reduction over `axes` (row-major order inside a group). */
function groups(x: H, axes: number[]): { outShape: number[]; groups: V[][] } {
  const nd = x.shape.length;
  const kept = [...Array(nd).keys()].filter((d) => !axes.includes(d));
  const outShape = kept.map((d) => x.shape[d]);
  const gs: V[][] = Array.from({ length: sizeOf(outShape) }, () => []);
  const st = strides(outShape);
  x.data.forEach((v, i) => {
    const idx = unravel(i, x.shape);
    let o = 0;
    kept.forEach((d, k) => (o += idx[d] * st[k]));
    gs[o].push(v);
  });
  return { outShape, groups: gs };
}

const keepShape = (shape: number[], axes: number[]) => shape.map((d, i) => (axes.includes(i) ? 1 : d));

const rtolOf = (t: DType, factor = 1) => (DEFAULT_RTOL[t] ?? 0) * factor;
const abs = (v: V) => Math.abs(Number(v));

// ---------------------------------------------------------------------------------------------
// Leaves
// ---------------------------------------------------------------------------------------------

interface LeafSrc {
  domain?: [number, number] | { abs: [number, number] };
  intDomain?: IntDomain;
  specials?: number[];
}

const DTYPE_WEIGHTS: [DType, number][] = [
  ["float32", 30], ["float64", 14], ["int32", 14], ["bool", 10], ["float16", 6], ["bfloat16", 3], ["int8", 5],
  ["uint8", 5], ["int64", 5], ["uint32", 2], ["int16", 2], ["uint16", 1], ["uint64", 2],
];
const INT_DTYPES = ALL_DTYPES.filter((d) => kindOf(d) === "int");
const FLOAT_DTYPES = ALL_DTYPES.filter(isFloat);
const SPECIALS = [NaN, Infinity, -Infinity, -0, 0];
/** Elements allowed per node (keeps graphs small enough for thousands of runs), unless an input is larger. */
const MAX_SIZE = 1500;
/** The largest node, and how often a leaf is large (1000 to 20000 elements). */
const MAX_BIG = 25000;
const BIG_LEAVES = 0.02;
/** Float magnitudes the builder keeps below, per dtype (products and sums of these stay finite). */
const LIMIT: Partial<Record<DType, number>> = { float16: 2e3, bfloat16: 1e15, float32: 1e15, float64: 1e60 };

function leafValues(shape: number[], dtype: DType, r: () => number, src: LeafSrc): H {
  const k = kindOf(dtype);
  if (k === "bool") return hostFrom(shape, () => r() < 0.5);
  if (k === "int") {
    if (src.intDomain) return hostFrom(shape, () => sampleInt(src.intDomain!, dtype, r));
    const [lo, hi] = intLimits(dtype);
    const style = r();
    const edges = [lo, hi, lo + 1n, hi - 1n, 0n, ...(isUint(dtype) ? [] : [-1n])];
    return hostFrom(shape, () => {
      if (style < 0.6) {
        const v = BigInt(Math.floor(r() * 11) - (isUint(dtype) ? 0 : 5));
        return v < lo ? lo : v > hi ? hi : v;
      }
      if (style < 0.9 || r() < 0.7) return sampleInt("full", dtype, r);
      return edges[Math.floor(r() * edges.length)];
    });
  }
  const specials = src.specials ?? (r() < 0.04 ? SPECIALS : undefined);
  const style = r();
  return hostFrom(shape, () => {
    if (specials && r() < 0.12) return specials[Math.floor(r() * specials.length)];
    let v: number;
    if (src.domain) v = sample(src.domain, r);
    else if (style < 0.5) v = Math.round((r() * 8 - 4) * 4) / 4;
    else if (style < 0.85) v = r() * 8 - 4;
    else if (style < 0.95) v = (r() * 2 - 1) * 1e-3;
    else v = (r() * 2 - 1) * 1e3;
    return castV(v, dtype);
  });
}

// ---------------------------------------------------------------------------------------------
// The builder
// ---------------------------------------------------------------------------------------------

export interface Step {
  /** Which op (weighted categories, then a choice inside the category). */
  op: number;
  /** Which earlier node is the first operand (0: the latest; past the candidates: a new leaf). */
  arg: number;
  /** Seeds every other choice of the step (shapes, partners, axes, data). */
  seed: number;
}

interface Spec {
  text: string;
  ins: Operand[];
  dtype: DType;
  run: (xs: Arg[]) => mx.Array | mx.Array[];
  ref: (xs: RefArg[]) => Expect;
  /** Non-finite results are expected here even from finite inputs (e.g. log outside its domain). */
  allowSpecial?: boolean;
  /** The result's element count when it can exceed the broadcast of the inputs (tile, pad, ...). */
  size?: number;
}

class Builder {
  nodes: GNode[] = [];
  probes: Probe[] = [];
  r: () => number = rng(1);
  arg = 0;
  after = 0;
  /** Whether large leaves and large matmuls may be drawn. */
  big = true;

  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  weighted<T>(xs: readonly [T, number][]): T {
    const total = xs.reduce((s, [, w]) => s + w, 0);
    let u = this.r() * total;
    for (const [x, w] of xs) if ((u -= w) < 0) return x;
    return xs[xs.length - 1][0];
  }
  dtype(): DType {
    return this.weighted(DTYPE_WEIGHTS);
  }
  dim(): number {
    const u = this.r();
    return u < 0.06 ? 0 : u < 0.3 ? 1 : 2 + this.int(4);
  }
  shape(): number[] {
    if (this.big && this.chance(BIG_LEAVES)) {
      // now and then a large array: multithreaded kernels, vector loops and blocked paths
      const nd = 1 + this.int(3);
      const span = nd === 1 ? [1000, 20000] : nd === 2 ? [20, 160] : [8, 28];
      return Array.from({ length: nd }, () => span[0] + this.int(span[1] - span[0]));
    }
    const nd = this.weighted([[0, 8], [1, 25], [2, 32], [3, 25], [4, 10]] as [number, number][]);
    return Array.from({ length: nd }, () => this.dim());
  }
  /** A shape that broadcasts with s (leading axes dropped or added, axes set to 1, s's 1s stretched). */
  partnerShape(s: number[]): number[] {
    let p = [...s];
    if (p.length && this.chance(0.3)) p = p.slice(this.int(p.length + 1));
    p = p.map((d) => (this.chance(0.2) ? 1 : d));
    const lead = s.length - p.length;
    p = p.map((d, i) => (s[lead + i] === 1 && this.chance(0.3) ? 2 + this.int(2) : d));
    if (p.length >= s.length && p.length < 5 && this.chance(0.12)) p.unshift(1 + this.int(3));
    return p;
  }

  value(o: Operand): RefArg {
    return "node" in o ? this.nodes[o.node].approx : o.scalar;
  }
  dtypeOf(o: Operand): DType | Scalar {
    return "node" in o ? this.nodes[o.node].dtype : o.scalar;
  }
  shapeOf(o: Operand): number[] {
    return "node" in o ? this.nodes[o.node].shape : [];
  }

  /** Adds a node if its builder-side value is acceptable; returns its id or -1. */
  add(spec: Spec): number {
    const size = spec.size ?? sizeOf(broadcastShape(...spec.ins.map((o) => this.shapeOf(o))));
    if (size > MAX_BIG) return -1;
    const xs = spec.ins.map((o) => this.value(o));
    const e = spec.ref(xs);
    if (!this.acceptable(e.value, spec.dtype, xs, spec.allowSpecial)) return -1;
    const id = this.nodes.length;
    this.nodes.push({ id, text: spec.text, shape: e.value.shape, dtype: spec.dtype, ins: spec.ins, run: spec.run, ref: spec.ref, approx: e.value, after: this.after });
    return id;
  }

  acceptable(h: H, dtype: DType, xs: RefArg[], allowSpecial = false): boolean {
    const inSize = Math.max(0, ...xs.map((x) => (isHost(x) ? x.data.length : 0)));
    if (h.data.length > Math.min(Math.max(MAX_SIZE, inSize), MAX_BIG) || h.shape.length > 6) return false;
    if (kindOf(dtype) !== "float") return true;
    const special = allowSpecial || xs.some((x) => isHost(x) && x.data.some((v) => typeof v === "number" && !Number.isFinite(v)));
    const lim = LIMIT[dtype]!;
    for (const v of h.data as number[]) {
      if (!Number.isFinite(v)) {
        if (!special) return false;
      } else if (Math.abs(v) > lim) return false;
    }
    return true;
  }

  leaf(shape: number[], dtype: DType, src: LeafSrc = {}): number {
    const h = leafValues(shape, dtype, this.r, src);
    const view: ViewKind = this.chance(0.4) ? "contiguous" : this.pick(VIEWS);
    const host = view === "broadcast" ? makeBroadcastable(h) : h;
    const shown = view === "contiguous" ? "" : ` (built as a ${view} view)`;
    const id = this.nodes.length;
    this.nodes.push({
      id, text: `array(${fmtHost(host, 40)}, ${dtype})${shown}`, shape: [...shape], dtype, ins: [],
      run: () => viewOf(host, view, (b) => buildArray(b, dtype), fillerFor(dtype)),
      ref: () => ({ value: host }), approx: host, after: this.after,
    });
    return id;
  }
  randomLeaf(): number {
    return this.leaf(this.shape(), this.dtype());
  }

  /** The first operand: the step's `arg` picks among the candidates (latest first) or a new leaf. */
  primary(pred: (n: GNode) => boolean = () => true, make: () => number = () => this.randomLeaf()): number {
    const cands = this.nodes.filter(pred);
    const i = this.arg % (cands.length + 1);
    return i < cands.length ? cands[cands.length - 1 - i].id : make();
  }
  /** Another operand: an earlier node that fits, a new leaf, or (when given) a JS scalar. */
  partner(pred: (n: GNode) => boolean, make: () => number, scalar?: () => Scalar): Operand {
    const u = this.r();
    if (scalar && u < 0.15) return { scalar: scalar() };
    const cands = this.nodes.filter(pred);
    if (cands.length && u < 0.6) return { node: this.pick(cands).id };
    return { node: make() };
  }
  probe(text: string, ins: number[], run: (xs: mx.Array[]) => unknown): boolean {
    this.probes.push({ at: this.nodes.length, text, ins, run });
    return true;
  }
}

const fmtArg = (o: Operand) => ("node" in o ? `%${o.node}` : typeof o.scalar === "bigint" ? `${o.scalar}n` : fmtV(o.scalar));
const json = (v: unknown) => JSON.stringify(v);
/** Whether shape a broadcasts to shape t (one way: a's axes are t's or 1). */
const broadcastsTo = (a: number[], t: number[]) => a.length <= t.length && a.every((d, i) => d === 1 || d === t[t.length - a.length + i]);
const broadcastable = (a: number[], b: number[]) => {
  for (let i = 1; i <= Math.min(a.length, b.length); i++) {
    const x = a[a.length - i], y = b[b.length - i];
    if (x !== y && x !== 1 && y !== 1) return false;
  }
  return true;
};

// ---------------------------------------------------------------------------------------------
// Elementwise ops from the op table
// ---------------------------------------------------------------------------------------------

const LOGICAL = new Set(["logicalAnd", "logicalOr", "logicalNot"]);
const ROWS = OPS.filter((r) => labelOf(r) !== "where");
/** Where each op's float operands give a number (outside: NaN, which the builder keeps rare). */
const NATURAL: Record<string, ((v: number, i: number) => boolean) | undefined> = {
  sqrt: (v) => v >= 0, rsqrt: (v) => v > 0, log: (v) => v > 0, log2: (v) => v > 0, log10: (v) => v > 0,
  log1p: (v) => v > -1, arcsin: (v) => Math.abs(v) <= 1, arccos: (v) => Math.abs(v) <= 1, arctanh: (v) => Math.abs(v) < 1,
  erfinv: (v) => Math.abs(v) < 1, arccosh: (v) => v >= 1, pow: (v, i) => i === 1 || v > 0,
  floorDivide: (v, i) => i === 0 || Math.abs(v) >= 1e-3, remainder: (v, i) => i === 0 || Math.abs(v) >= 1e-3,
};
/** Ops whose result is a difference of operand-sized terms: absolute error ~ eps * max |operand|. */
const ADDITIVE: Record<string, number> = { add: 1, sub: 1, logaddexp: 4, remainder: 2, clip: 0 };

/** Integer references that must hold for every operand (the op table's assume its sampled domains). */
const INT_OVERRIDE: Record<string, ((...v: bigint[]) => bigint) | undefined> = {
  // clip is minimum(maximum(x, lo), hi), as NumPy's, also where lo > hi
  clip: (x, lo, hi) => {
    const m = x > lo ? x : lo;
    return m < hi ? m : hi;
  },
};

/** The dtype operand i is brought to: clip promotes step by step (maximum with min, then minimum with max), as MLX. */
function operandT(row: OpCase, operands: (DType | Scalar)[], i: number): DType {
  if (row.name === "clip" && operands.length === 3 && i < 2) return resultType(operands.slice(0, 2));
  return rowT(row, operands);
}

/** Float references that must hold past the op table's sampled domains too. */
const FLOAT_OVERRIDE: Record<string, ((...v: number[]) => number) | undefined> = {
  // 1 / (1 + exp(-x)) underflows to 0 below x = -709, where the result is still a subnormal
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
};

function rowT(row: OpCase, operands: (DType | Scalar)[]): DType {
  if (LOGICAL.has(row.name)) return "bool";
  const t = row.name === "clip" && operands.length === 3 ? resultType([resultType(operands.slice(0, 2)), operands[2]]) : resultType(operands);
  return row.out === "float" ? toFloat(t) : t;
}
function rowAccepts(row: OpCase, t: DType): boolean {
  switch (kindOf(t)) {
    case "float": return row.dtypes.includes(t);
    case "int": return !!row.intRef;
    case "bool": return !!row.bool;
  }
}
/**
 * The op-table rows whose references hold for any operand (checked when this test was written).
 * A row added to the table later is only given operands inside its sampled domains.
 */
const ANYWHERE = new Set([
  "abs", "add", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "bitwiseAnd", "bitwiseOr",
  "bitwiseXor", "ceil", "clip", "cos", "cosh", "div", "equal", "erf", "erfinv", "exp", "expm1", "floor", "floorDivide",
  "greater", "greaterEqual", "isfinite", "isinf", "isnan", "leftShift", "less", "lessEqual", "log", "log10", "log1p",
  "log2", "logaddexp", "logicalAnd", "logicalNot", "logicalOr", "maximum", "minimum", "mul", "nanToNum", "neg",
  "notEqual", "pow", "reciprocal", "remainder", "rightShift", "round", "rsqrt", "sigmoid", "sign", "sin", "sinh",
  "sqrt", "square", "stopGradient", "sub", "tan", "tanh",
]);

/** Whether v lies in a row's sampled domain for operand i. */
function inSampledDomain(row: OpCase, i: number, v: V, t: DType): boolean {
  if (typeof v === "bigint") {
    const d = row.intDomain?.[i] ?? "full";
    if (d === "full" || d === "sym") return true;
    const [lo, hi] = d === "shift" ? [0, bits(t) - 1] : d;
    return v >= BigInt(lo) && v <= BigInt(hi);
  }
  if (typeof v !== "number") return true;
  const d = row.domain[i];
  if (!d) return true;
  const [lo, hi] = Array.isArray(d) ? d : d.abs;
  const a = Array.isArray(d) ? v : Math.abs(v);
  return a >= lo && a <= hi;
}

/** Whether operand i (already in dtype t) is one the op's reference is exact for. */
function rowValid(row: OpCase, i: number, v: V, t: DType, strict: boolean): boolean {
  if (!ANYWHERE.has(row.name) && !(typeof v === "number" && !Number.isFinite(v)) && !inSampledDomain(row, i, v, t)) return false;
  if (typeof v === "bigint") {
    if (row.name === "pow" && i === 1) return v >= 0n && v <= 64n;
    if ((row.name === "leftShift" || row.name === "rightShift") && i === 1) return v >= 0n && v <= BigInt(2 * bits(t));
    return true;
  }
  if (typeof v !== "number") return true;
  if (!Number.isFinite(v)) return (row.specials ?? []).some((s) => Object.is(s, v));
  const nat = NATURAL[row.name];
  return !strict || !nat || nat(v, i);
}

function rowScalar(b: Builder, row: OpCase, i: number, t0: DType): Scalar {
  switch (kindOf(t0)) {
    case "bool":
      return b.chance(0.7) ? b.chance(0.5) : b.int(2);
    case "int": {
      if (b.chance(0.1)) return b.pick([0.5, -1.5, 2.5]);
      const v = sampleInt(row.intDomain?.[i] ?? "full", t0, b.r);
      return (t0 === "int64" || t0 === "uint64") && b.chance(0.3) ? v : Number(v);
    }
    default:
      return Math.round(sample(row.domain[i] ?? [-3, 3], b.r) * 2) / 2;
  }
}

function rowLeaf(b: Builder, row: OpCase, i: number, shape: number[], dtype: DType): number {
  const k = kindOf(dtype);
  if (k === "float") return b.leaf(shape, dtype, { domain: row.domain[i] ?? [-3, 3], specials: b.chance(0.1) ? row.specials : undefined });
  if (k === "int") return b.leaf(shape, dtype, { intDomain: row.intDomain?.[i] ?? "full" });
  return b.leaf(shape, dtype);
}

function rowDtypes(row: OpCase): DType[] {
  return ALL_DTYPES.filter((d) => rowAccepts(row, rowT(row, [d])));
}

function buildRow(b: Builder, row: OpCase): boolean {
  const strict = !b.chance(0.12); // now and then, operands outside the natural domain (NaN results)
  const accepted = rowDtypes(row);
  if (accepted.length === 0) return false;
  for (let attempt = 0; attempt < 3; attempt++) {
    let first: number;
    if (attempt < 2) first = b.primary((n) => rowAccepts(row, rowT(row, [n.dtype])));
    else first = rowLeaf(b, row, 0, b.shape(), b.pick(accepted));
    const t0 = b.nodes[first].dtype;
    const ins: Operand[] = [{ node: first }];
    let shape = b.nodes[first].shape;
    for (let i = 1; i < row.arity; i++) {
      const fresh = () => rowLeaf(b, row, i, b.partnerShape(shape), accepted.includes(t0) && b.chance(0.7) ? t0 : b.pick(accepted));
      const o = attempt === 0
        ? b.partner((n) => broadcastable(n.shape, shape), fresh, () => rowScalar(b, row, i, t0))
        : b.chance(0.2) ? { scalar: rowScalar(b, row, i, t0) } : { node: fresh() };
      ins.push(o);
      shape = broadcastShape(shape, b.shapeOf(o));
    }
    if (b.chance(0.3) && row.arity === 2 && row.name !== "clip") ins.reverse();
    const dts = ins.map((o) => b.dtypeOf(o));
    const t = rowT(row, dts);
    if (!rowAccepts(row, t)) continue;
    const ok = ins.every((o, i) => {
      const x = b.value(o);
      if (!isHost(x) && !scalarFits(x, operandT(row, dts, i))) return false;
      return isHost(x)
        ? castH(x, dts[i] as DType, t).data.every((v) => rowValid(row, i, v, t, strict))
        : rowValid(row, i, castScalar(x, t), t, strict);
    });
    if (!ok) continue;
    const out: DType = row.out === "bool" ? "bool" : t;
    const id = b.add({
      text: `mx.${labelOf(row)}(${ins.map(fmtArg).join(", ")})`,
      ins, dtype: out,
      run: (xs) => row.fn(...xs),
      ref: (xs) => rowRef(row, xs, dts, t, out),
      allowSpecial: !strict,
    });
    if (id >= 0) return true;
  }
  return false;
}

const toT = (x: RefArg, from: DType | Scalar, t: DType): H => (isHost(x) ? castH(x, from as DType, t) : scalarHost(castScalar(x, t)));
const maxV = (a: V, c: V): V => (typeof a === "number" && (Number.isNaN(a) || Number.isNaN(c as number)) ? NaN : a > c ? a : c);
const minV = (a: V, c: V): V => (typeof a === "number" && (Number.isNaN(a) || Number.isNaN(c as number)) ? NaN : a < c ? a : c);

/** clip(x, lo, hi) = minimum(maximum(x, lo), hi), each step in its own promoted dtype. */
function clipRef(xs: RefArg[], dts: (DType | Scalar)[], t1: DType, t2: DType): Expect {
  const y = castH(mapHost(maxV, toT(xs[0], dts[0], t1), toT(xs[1], dts[1], t1)), t1, t2);
  return { value: mapHost(minV, y, toT(xs[2], dts[2], t2)) };
}

function rowRef(row: OpCase, xs: RefArg[], dts: (DType | Scalar)[], t: DType, out: DType): Expect {
  if (row.name === "clip" && xs.length === 3) return clipRef(xs, dts, operandT(row, dts, 0), t);
  const hs = xs.map((x, i) => toT(x, dts[i], t));
  const kt = kindOf(t);
  const f = (...v: V[]): V => {
    let r: number | bigint;
    if (kt === "float") r = (FLOAT_OVERRIDE[row.name] ?? row.ref)(...(v as number[]));
    else if (kt === "int") r = (INT_OVERRIDE[row.name] ?? row.intRef!)(...(v as bigint[]));
    else r = row.ref(...v.map((x) => (x ? 1 : 0)));
    if (out === "bool") return typeof r === "bigint" ? r !== 0n : r !== 0;
    if (kindOf(out) === "int") return wrapInt(r as bigint, out);
    if (t === "bool") return r !== 0; // a bool op that keeps its dtype (where, stopGradient)
    return r as number;
  };
  const value = mapHost(f, ...hs);
  if (kindOf(out) !== "float") return { value };
  const rtol = row.rtol?.[out] ?? rtolOf(out);
  const base = row.atol?.[out] ?? 0;
  const add = ADDITIVE[row.name];
  if (!add) return { value, rtol, atol: base };
  const scale = mapHost((...v: V[]) => Math.max(...v.map((x) => (Number.isFinite(Number(x)) ? abs(x) : 0))), ...hs);
  return { value, rtol, atol: (scale.data as number[]).map((s) => base + add * rtol * s) };
}

// where(cond, a, b): cond of any dtype, a and b promoted
function buildWhere(b: Builder): boolean {
  const c = b.primary();
  let shape = b.nodes[c].shape;
  const ins: Operand[] = [{ node: c }];
  const t0 = b.dtype();
  for (let i = 0; i < 2; i++) {
    const o = b.partner((n) => broadcastable(n.shape, shape), () => b.leaf(b.partnerShape(shape), b.chance(0.6) ? t0 : b.dtype()),
      () => (b.chance(0.2) ? b.chance(0.5) : b.pick([0, 1, -2, 2.5, 7])));
    ins.push(o);
    shape = broadcastShape(shape, b.shapeOf(o));
  }
  const dts = ins.map((o) => b.dtypeOf(o));
  const t = resultType(dts.slice(1));
  if (ins.some((o) => "scalar" in o && !scalarFits(o.scalar, t))) return false;
  return b.add({
    text: `mx.where(${ins.map(fmtArg).join(", ")})`, ins, dtype: t,
    run: ([c2, x, y]) => mx.where(c2, x, y),
    ref: (xs) => {
      const [hc, hx, hy] = xs.map((x, i) => (isHost(x) ? castH(x, dts[i] as DType, i === 0 ? "bool" : t) : scalarHost(castScalar(x, t))));
      return { value: mapHost((cv: V, xv: V, yv: V) => (cv ? xv : yv), hc, hx, hy) };
    },
  }) >= 0;
}

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

/** An axis argument: undefined (all), one axis (maybe negative) or a list (maybe empty, unsorted). */
function axisArg(b: Builder, nd: number, single = false): number | number[] | undefined {
  const u = b.r();
  if (nd === 0 || u < 0.25) return undefined;
  if (single || u < 0.5) return b.int(nd) - (b.chance(0.3) ? nd : 0);
  const axes = [...Array(nd).keys()].filter(() => b.chance(0.5)).map((a) => (b.chance(0.3) ? a - nd : a));
  return axes.sort(() => b.r() - 0.5);
}
const axesOf = (arg: number | number[] | undefined, nd: number): number[] =>
  arg === undefined ? [...Array(nd).keys()] : (typeof arg === "number" ? [arg] : arg).map((a) => normAxis(a, nd)).sort((p, q) => p - q);
const fmtAxis = (a: number | number[] | undefined) => (a === undefined ? "undefined" : json(a));

/**
 * Whether the intermediate sums `f` of each reduced group stay well inside the finite range of
 * the type they are kept in (half types accumulate in float32, as NumPy).
 */
function intermediatesFit(h: H, from: DType, t: DType, axes: number[], f: (g: number[]) => number[]): boolean {
  if (kindOf(t) !== "float") return true;
  const acc: DType = t === "float16" || t === "bfloat16" ? "float32" : t;
  const lim = (MAX_FINITE[acc] ?? Infinity) / 4;
  return groups(castH(h, from, t), axes).groups.every((g) => f(g as number[]).every((v) => !(Math.abs(v) > lim)));
}

type RedName = "sum" | "prod" | "max" | "min" | "all" | "any" | "mean";
function buildReduce(b: Builder): boolean {
  const name = b.weighted<RedName>([["sum", 4], ["prod", 1], ["max", 2], ["min", 2], ["all", 1], ["any", 1], ["mean", 2]]);
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const axis = axisArg(b, shape.length);
  const axes = axesOf(axis, shape.length);
  const keepdims = b.chance(0.4);
  if ((name === "max" || name === "min") && axes.some((a) => shape[a] === 0)) {
    return b.probe(`mx.${name}(%${x}, ${fmtAxis(axis)}) over an empty axis`, [x], ([a]) => mx[name](a, axis));
  }
  const t: DType = name === "all" || name === "any" ? "bool" : name === "mean" ? toFloat(dtype) : (name === "sum" || name === "prod") && dtype === "bool" ? "int32" : dtype;
  // mean divides a sum kept in t (float32 for half types): keep that sum finite
  if (name === "mean" && !intermediatesFit(b.nodes[x].approx, dtype, t, axes, (g) => [g.reduce((p, v) => p + v, 0)])) return false;
  const dev = DEVICES.length > 1 && b.chance(0.15) ? DEVICES[1] : undefined;
  const opts = keepdims || dev ? `, { ${[keepdims ? "keepdims: true" : "", dev ? `device: ${dev[0]}` : ""].filter(Boolean).join(", ")} }` : "";
  return b.add({
    text: `mx.${name}(%${x}, ${fmtAxis(axis)}${opts})`, ins: [{ node: x }], dtype: t,
    run: ([a]) => mx[name](a as mx.Array, axis, dev ? { keepdims, device: dev[1] } : { keepdims }),
    ref: ([h]) => reduceRef(name, castH(h as H, dtype, t), axes, keepdims, t),
  }) >= 0;
}

function reduceRef(name: RedName, x: H, axes: number[], keepdims: boolean, t: DType): Expect {
  const { outShape, groups: gs } = groups(x, axes);
  const shape = keepdims ? keepShape(x.shape, axes) : outShape;
  const k = kindOf(t);
  const atol: number[] = [];
  const data = gs.map((g): V => {
    const n = g.length;
    if (name === "all") return g.every(Boolean);
    if (name === "any") return g.some(Boolean);
    if (name === "max" || name === "min") {
      let acc = g[0];
      for (const v of g.slice(1)) {
        if (typeof v === "number" && (Number.isNaN(v) || Number.isNaN(acc as number))) acc = NaN;
        else if (name === "max" ? v > acc : v < acc) acc = v;
      }
      return acc;
    }
    if (k === "int") {
      const signed = !isUint(t);
      let acc = name === "prod" ? 1n : 0n;
      for (const v of g as bigint[]) {
        acc = name === "prod" ? acc * v : acc + v;
        acc = signed ? BigInt.asIntN(64, acc) : BigInt.asUintN(64, acc);
      }
      return wrapInt(acc, t);
    }
    const xs = g as number[];
    const mag = xs.reduce((s, v) => s + Math.abs(v), 0);
    if (name === "prod") {
      const p = xs.reduce((s, v) => s * v, 1);
      atol.push((n + 2) * 2 ** -52 * Math.abs(p));
      return p;
    }
    const s = xs.reduce((acc, v) => acc + v, 0);
    if (name === "mean") {
      atol.push(4 * rtolOf(t) * (mag / n) + (n + 2) * 2 ** -52 * (mag / n));
      return s / n;
    }
    atol.push((n + 2) * 2 ** -52 * mag);
    return s;
  });
  const value = { shape, data };
  if (k !== "float" || name === "max" || name === "min") return { value };
  return { value, rtol: rtolOf(t, name === "mean" ? 3 : 1), atol };
}

function buildArg(b: Builder): boolean {
  const name = b.chance(0.5) ? "argmax" : "argmin";
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const axis = shape.length && b.chance(0.7) ? (axisArg(b, shape.length, true) as number) : undefined;
  const keepdims = b.chance(0.3);
  const empty = axis === undefined ? sizeOf(shape) === 0 : shape[normAxis(axis, shape.length)] === 0;
  if (empty) return b.probe(`mx.${name}(%${x}, ${fmtAxis(axis)}) of an empty axis`, [x], ([a]) => mx[name](a, axis));
  return b.add({
    text: `mx.${name}(%${x}, ${fmtAxis(axis)}${keepdims ? ", { keepdims: true }" : ""})`, ins: [{ node: x }], dtype: "uint32",
    run: ([a]) => mx[name](a as mx.Array, axis, { keepdims }),
    ref: ([h0]) => {
      const h = h0 as H;
      const flat = axis === undefined;
      const src = flat ? reshapeH(h, [sizeOf(h.shape)]) : h;
      const ax = flat ? 0 : normAxis(axis, h.shape.length);
      const { outShape, groups: gs } = groups(src, [ax]);
      const data = gs.map((g) => {
        let best = 0;
        const nan = (v: V) => typeof v === "number" && Number.isNaN(v);
        if (nan(g[0])) return 0n;
        for (let i = 1; i < g.length; i++) {
          if (nan(g[i])) return BigInt(i);
          if (name === "argmax" ? g[i] > g[best] : g[i] < g[best]) best = i;
        }
        return BigInt(best);
      });
      const shape2 = !keepdims ? outShape : flat ? h.shape.map(() => 1) : keepShape(h.shape, [ax]);
      void dtype;
      return { value: { shape: shape2, data } };
    },
  }) >= 0;
}

/** logsumexp, softmax, var and std: composites of several primitives, with looser bounds. */
function buildComposite(b: Builder): boolean {
  const name = b.weighted<"logsumexp" | "softmax" | "var" | "std">([["logsumexp", 2], ["softmax", 2], ["var", 1], ["std", 1]]);
  const x = b.primary((n) => n.dtype !== "bool");
  const { shape, dtype } = b.nodes[x];
  const t = toFloat(dtype);
  const nd = shape.length;
  let axis = axisArg(b, nd);
  if (name === "softmax" && axis === undefined && nd > 0 && b.chance(0.5)) axis = -1;
  const axes = axesOf(axis, nd);
  const keepdims = name !== "softmax" && b.chance(0.4);
  const count = axes.reduce((n, a) => n * shape[a], 1);
  const ddof = (name === "var" || name === "std") && count >= 2 && b.chance(0.4) ? 1 : 0;
  const eps = rtolOf(t);
  const squares = (g: number[]) => {
    const m = g.reduce((p, v) => p + v, 0);
    return [m, g.reduce((p, v) => p + (v - m / g.length) ** 2, 0)];
  };
  if ((name === "var" || name === "std") && !intermediatesFit(b.nodes[x].approx, dtype, t, axes, squares)) return false;
  const opts = keepdims || ddof ? `, { ${[keepdims ? "keepdims: true" : "", ddof ? "ddof: 1" : ""].filter(Boolean).join(", ")} }` : "";
  return b.add({
    text: `mx.${name === "var" ? "var" : name}(%${x}, ${fmtAxis(axis)}${opts})`, ins: [{ node: x }], dtype: t,
    run: ([a]) => {
      const arr = a as mx.Array;
      if (name === "softmax") return axis === undefined ? mx.softmax(arr, [...Array(nd).keys()]) : mx.softmax(arr, axis);
      if (name === "logsumexp") return mx.logsumexp(arr, axis, { keepdims });
      return mx[name](arr, axis, { keepdims, ddof });
    },
    ref: ([h0]) => {
      const h = castH(h0 as H, dtype, t);
      const { outShape, groups: gs } = groups(h, axes);
      const shapeOut = keepdims ? keepShape(shape, axes) : outShape;
      if (name === "softmax") {
        // per element: exp(x - max) / sum over its group
        const nd2 = shape.length;
        const kept = [...Array(nd2).keys()].filter((d) => !axes.includes(d));
        const st = strides(outShape);
        const stats = gs.map((g) => {
          const xs = g as number[];
          // the plain formula, as tessera (and JAX) compute it: an infinite max gives NaN
          const ms = xs.reduce((p, v) => (v > p || Number.isNaN(v) ? v : p), -Infinity);
          const s = xs.reduce((p, v) => p + Math.exp(v - ms), 0);
          const spread = xs.reduce((p, v) => (Number.isFinite(v - ms) ? Math.max(p, Math.abs(v - ms)) : p), 0);
          return { ms, s, spread };
        });
        const atol: number[] = [];
        const value = hostFrom(shape, (i) => {
          const idx = unravel(i, shape);
          let o = 0;
          kept.forEach((d, k) => (o += idx[d] * st[k]));
          const { ms, s, spread } = stats[o];
          const v = Math.exp((h.data[i] as number) - ms) / s;
          atol.push((16 + 4 * spread) * eps * Math.abs(v) + 4 * (TINY[t] ?? 0));
          return v;
        });
        return { value, rtol: 0, atol };
      }
      const atol: number[] = [];
      const data = gs.map((g) => {
        const xs = g as number[];
        const n = xs.length;
        if (name === "logsumexp") {
          const m = xs.reduce((p, v) => (v > p || Number.isNaN(v) ? v : p), -Infinity);
          const ms = Number.isFinite(m) ? m : 0;
          const s = xs.reduce((p, v) => p + Math.exp(v - ms), 0);
          const r = Math.log(s) + ms;
          const spread = xs.reduce((p, v) => (Number.isFinite(v - ms) ? Math.max(p, Math.abs(v - ms)) : p), 0);
          atol.push(8 * eps * (Math.abs(ms) + Math.abs(Math.log(s)) + spread + 1));
          return r;
        }
        const mean = xs.reduce((p, v) => p + v, 0) / n;
        const ss = xs.reduce((p, v) => p + (v - mean) ** 2, 0);
        const scale = xs.reduce((p, v) => p + (Math.abs(v) + Math.abs(mean)) ** 2, 0);
        const v = ss / (n - ddof);
        // plus the squares' underflow: each is off by at most one subnormal spacing of t
        const err = ((8 + n) * eps * scale + (n + 2) * (TINY[t] ?? 0)) / Math.abs(n - ddof) + 4 * eps * v;
        if (name === "var") {
          atol.push(err);
          return v;
        }
        atol.push(Math.sqrt(err) + 4 * eps * Math.sqrt(v));
        return Math.sqrt(v);
      });
      return { value: { shape: shapeOut, data }, rtol: 4 * eps, atol };
    },
  }) >= 0;
}

// ---------------------------------------------------------------------------------------------
// Views and shape ops
// ---------------------------------------------------------------------------------------------

type IndexItem = { int: number } | { slice: [number | null, number | null, number | null] } | "new" | "...";

function buildIndex(b: Builder): boolean {
  const x = b.primary();
  const { shape } = b.nodes[x];
  const nd = shape.length;
  const consumed = nd === 0 ? 0 : nd - (b.chance(0.3) ? b.int(nd + 1) : 0);
  const bound = (n: number) => (b.chance(0.3) ? null : b.int(2 * n + 5) - n - 2);
  const items: IndexItem[] = [];
  for (let d = 0; d < consumed; d++) {
    const n = shape[d];
    const u = b.r();
    if (u < 0.15 && n > 0) items.push({ int: b.int(2 * n) - n });
    else if (u < 0.45) items.push({ slice: [null, null, null] });
    else items.push({ slice: [bound(n), bound(n), b.chance(0.3) ? null : b.pick([-3, -2, -1, 1, 2, 3])] });
  }
  if (b.chance(0.25)) {
    // an ellipsis standing for a run of whole slices (or nothing), the omitted trailing axes included
    while (items.length < nd) items.push({ slice: [null, null, null] });
    const at = b.int(items.length + 1);
    let end = at;
    while (end < items.length && "slice" in (items[end] as object) && (items[end] as { slice: unknown[] }).slice.every((v) => v === null)) end++;
    items.splice(at, end - at, "...");
  }
  for (let k = b.int(3); k > 0 && b.chance(0.4); k--) items.splice(b.int(items.length + 1), 0, "new");
  const toSpec = () => items.map((it) => (it === "new" ? null : it === "..." ? "..." : "int" in it ? it.int : mx.slice(...it.slice)));
  const fmt = items.map((it) => (it === "new" ? "null" : it === "..." ? `"..."` : "int" in it ? String(it.int) : `mx.slice(${it.slice.map((v) => (v === null ? "null" : v)).join(", ")})`));
  return b.add({
    text: `%${x}.index(${fmt.join(", ")})`, ins: [{ node: x }], dtype: b.nodes[x].dtype,
    run: ([a]) => (a as mx.Array).index(...(toSpec() as mx.IndexEntry[])),
    ref: ([h]) => ({ value: indexRef(h as H, items) }),
  }) >= 0;
}

function indexRef(h: H, items: IndexItem[]): H {
  const nd = h.shape.length;
  const consuming = items.filter((it) => it !== "new" && it !== "...").length;
  const full: IndexItem[] = [];
  let ell = false;
  for (const it of items) {
    if (it === "...") {
      for (let k = 0; k < nd - consuming; k++) full.push({ slice: [null, null, null] });
      ell = true;
    } else full.push(it);
  }
  if (!ell) for (let k = 0; k < nd - consuming; k++) full.push({ slice: [null, null, null] });
  // per output axis: the source axis it walks (start, step), or none (a new axis)
  const outShape: number[] = [];
  const plan: { src: number; start: number; step: number }[] = [];
  const fixed: number[] = new Array(nd).fill(0);
  let axis = 0;
  for (const it of full) {
    if (it === "new") {
      outShape.push(1);
      plan.push({ src: -1, start: 0, step: 0 });
      continue;
    }
    const n = h.shape[axis];
    if (it === "...") continue;
    if ("int" in it) fixed[axis] = it.int < 0 ? it.int + n : it.int;
    else {
      const [start, step, len] = sliceIndices(it.slice[0], it.slice[1], it.slice[2], n);
      outShape.push(len);
      plan.push({ src: axis, start, step });
    }
    axis++;
  }
  return gather(h, outShape, (idx) => {
    const src = [...fixed];
    plan.forEach((p, k) => {
      if (p.src >= 0) src[p.src] = p.start + idx[k] * p.step;
    });
    return src;
  });
}

function permute(h: H, perm: number[]): H {
  const shape = perm.map((p) => h.shape[p]);
  return gather(h, shape, (idx) => {
    const src = new Array(perm.length);
    perm.forEach((p, k) => (src[p] = idx[k]));
    return src;
  });
}

function buildPermute(b: Builder): boolean {
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  const kind = nd < 2 ? "transpose" : b.pick(["transpose", "transpose", "T", "swapaxes", "moveaxis"] as const);
  let perm: number[], text: string, run: (a: mx.Array) => mx.Array;
  if (kind === "T") {
    perm = [...Array(nd).keys()].reverse();
    text = `%${x}.T`;
    run = (a) => a.T;
  } else if (kind === "transpose") {
    const p = [...Array(nd).keys()].sort(() => b.r() - 0.5).map((a) => (b.chance(0.2) ? a - nd : a));
    const given = b.chance(0.2) ? undefined : p;
    perm = given ? p.map((a) => normAxis(a, nd)) : [...Array(nd).keys()].reverse();
    text = `mx.transpose(%${x}${given ? `, ${json(given)}` : ""})`;
    run = (a) => mx.transpose(a, given);
  } else if (kind === "swapaxes") {
    const i = b.int(2 * nd) - nd, j = b.int(2 * nd) - nd;
    perm = [...Array(nd).keys()];
    [perm[normAxis(i, nd)], perm[normAxis(j, nd)]] = [perm[normAxis(j, nd)], perm[normAxis(i, nd)]];
    text = `mx.swapaxes(%${x}, ${i}, ${j})`;
    run = (a) => mx.swapaxes(a, i, j);
  } else {
    const s = b.int(2 * nd) - nd, d = b.int(2 * nd) - nd;
    perm = [...Array(nd).keys()].filter((a) => a !== normAxis(s, nd));
    perm.splice(normAxis(d, nd), 0, normAxis(s, nd));
    text = `mx.moveaxis(%${x}, ${s}, ${d})`;
    run = (a) => mx.moveaxis(a, s, d);
  }
  return b.add({ text, ins: [{ node: x }], dtype, run: ([a]) => run(a as mx.Array), ref: ([h]) => ({ value: permute(h as H, perm) }) }) >= 0;
}

/** A random shape of `size` elements with nd axes (size 0: at least one axis of 0). */
function shapeOfSize(b: Builder, size: number): number[] | null {
  const nd = b.weighted([[0, 1], [1, 3], [2, 4], [3, 3], [4, 2]] as [number, number][]);
  if (size === 0) {
    if (nd === 0) return null;
    const s = Array.from({ length: nd }, () => b.int(4));
    s[b.int(nd)] = 0;
    return s;
  }
  if (nd === 0) return size === 1 ? [] : null;
  const s = new Array(nd).fill(1);
  let rest = size;
  for (let p = 2; rest > 1; p++) {
    while (rest % p === 0) {
      s[b.int(nd)] *= p;
      rest /= p;
    }
  }
  return s;
}

function buildReshape(b: Builder): boolean {
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  const size = sizeOf(shape);
  const kind = b.pick(["reshape", "reshape", "flatten", "expandDims", "squeeze"] as const);
  let target: number[], text: string, run: (a: mx.Array) => mx.Array;
  if (kind === "reshape") {
    const s = shapeOfSize(b, size);
    if (!s) return false;
    target = s;
    const infer = size > 0 && s.length && b.chance(0.3) ? b.int(s.length) : -1;
    const arg = s.map((d, i) => (i === infer ? -1 : d));
    text = `mx.reshape(%${x}, ${json(arg)})`;
    run = (a) => mx.reshape(a, arg);
  } else if (kind === "flatten") {
    if (nd === 0) {
      target = [1];
      text = `mx.flatten(%${x})`;
      run = (a) => mx.flatten(a);
    } else {
      let s = b.int(nd), e = b.int(nd);
      if (s > e) [s, e] = [e, s];
      const sa = b.chance(0.3) ? s - nd : s, ea = b.chance(0.3) ? e - nd : e;
      target = [...shape.slice(0, s), sizeOf(shape.slice(s, e + 1)), ...shape.slice(e + 1)];
      text = `mx.flatten(%${x}, ${sa}, ${ea})`;
      run = (a) => mx.flatten(a, sa, ea);
    }
  } else if (kind === "expandDims") {
    const k = 1 + b.int(2);
    const out = nd + k;
    const axes = [...Array(out).keys()].sort(() => b.r() - 0.5).slice(0, k);
    const arg = axes.map((a) => (b.chance(0.3) ? a - out : a));
    const given = k === 1 && b.chance(0.5) ? arg[0] : arg;
    target = [];
    let j = 0;
    for (let i = 0; i < out; i++) target.push(axes.includes(i) ? 1 : shape[j++]);
    text = `mx.expandDims(%${x}, ${json(given)})`;
    run = (a) => mx.expandDims(a, given);
  } else {
    const ones = shape.flatMap((d, i) => (d === 1 ? [i] : []));
    const sel = b.chance(0.4) ? undefined : ones.filter(() => b.chance(0.6));
    const drop = sel ?? ones;
    target = shape.filter((_, i) => !drop.includes(i));
    text = `mx.squeeze(%${x}${sel ? `, ${json(sel)}` : ""})`;
    run = (a) => mx.squeeze(a, sel);
  }
  return b.add({ text, ins: [{ node: x }], dtype, run: ([a]) => run(a as mx.Array), ref: ([h]) => ({ value: reshapeH(h as H, target) }) }) >= 0;
}

function buildBroadcast(b: Builder): boolean {
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const lead = Array.from({ length: b.chance(0.5) ? b.int(3) : 0 }, () => b.int(4));
  const target = [...lead, ...shape.map((d) => (d === 1 && b.chance(0.6) ? b.int(4) : d))];
  return b.add({
    text: `mx.broadcastTo(%${x}, ${json(target)})`, ins: [{ node: x }], dtype, size: sizeOf(target),
    run: ([a]) => mx.broadcastTo(a as mx.Array, target),
    ref: ([h]) => ({ value: gather(h as H, target, (idx) => idx.slice(lead.length)) }),
  }) >= 0;
}

function buildFlip(b: Builder): boolean {
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const axis = axisArg(b, shape.length);
  const axes = axesOf(axis, shape.length);
  return b.add({
    text: `mx.flip(%${x}${axis === undefined ? "" : `, ${json(axis)}`})`, ins: [{ node: x }], dtype,
    run: ([a]) => mx.flip(a as mx.Array, axis),
    ref: ([h]) => ({ value: gather(h as H, shape, (idx) => idx.map((v, d) => (axes.includes(d) ? shape[d] - 1 - v : v))) }),
  }) >= 0;
}

function concatRef(hs: H[], axis: number): H {
  const shape = [...hs[0].shape];
  shape[axis] = hs.reduce((n, h) => n + h.shape[axis], 0);
  return hostFrom(shape, (i) => {
    const idx = unravel(i, shape);
    let k = 0, pos = idx[axis];
    while (pos >= hs[k].shape[axis]) pos -= hs[k++].shape[axis];
    const src = [...idx];
    src[axis] = pos;
    return hostAt(hs[k], src);
  });
}

function buildConcat(b: Builder): boolean {
  const stack = b.chance(0.3);
  const x = b.primary((n) => stack || n.shape.length > 0, () => b.leaf(b.shape().concat([1 + b.int(3)]), b.dtype()));
  const { shape } = b.nodes[x];
  const nd = shape.length;
  const axis = stack ? b.int(2 * nd + 2) - (nd + 1) : b.int(2 * nd) - nd;
  const ax = normAxis(axis, stack ? nd + 1 : nd);
  const ins: Operand[] = [{ node: x }];
  for (let k = 1 + b.int(2); k > 0; k--) {
    const fits = (n: GNode) => n.shape.length === nd && n.shape.every((d, i) => d === shape[i] || (!stack && i === ax));
    const make = () => b.leaf(shape.map((d, i) => (!stack && i === ax && b.chance(0.7) ? b.int(4) : d)), b.chance(0.6) ? b.nodes[x].dtype : b.dtype());
    ins.push(b.partner(fits, make));
  }
  if (b.chance(0.3)) ins.reverse();
  const dts = ins.map((o) => b.dtypeOf(o) as DType);
  const t = dts.reduce(promote);
  return b.add({
    text: `mx.${stack ? "stack" : "concatenate"}([${ins.map(fmtArg).join(", ")}], ${axis})`, ins, dtype: t,
    size: ins.reduce((n, o) => n + sizeOf(b.shapeOf(o)), 0),
    run: (xs) => (stack ? mx.stack : mx.concatenate)(xs as mx.Array[], axis),
    ref: (xs) => {
      let hs = xs.map((h, i) => castH(h as H, dts[i], t));
      if (stack) hs = hs.map((h) => reshapeH(h, [...h.shape.slice(0, ax), 1, ...h.shape.slice(ax)]));
      return { value: concatRef(hs, ax) };
    },
  }) >= 0;
}

function buildPad(b: Builder): boolean {
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  const w = () => (b.chance(0.3) ? 0 : b.int(3));
  const form = b.int(3);
  let widths: number | [number, number] | [number, number][];
  let pairs: [number, number][];
  if (form === 0) {
    const v = w();
    widths = v;
    pairs = shape.map(() => [v, v]);
  } else if (form === 1 || nd === 0) {
    const p: [number, number] = [w(), w()];
    widths = p;
    pairs = shape.map(() => [p[0], p[1]]);
  } else {
    pairs = shape.map(() => [w(), w()] as [number, number]);
    widths = pairs;
  }
  const edge = b.chance(0.3);
  if (edge && pairs.some(([p, q], i) => (p || q) && shape[i] === 0)) {
    return b.probe(`mx.pad(%${x}, ${json(widths)}, { mode: "edge" }) across an axis of size 0`, [x], ([a]) => mx.pad(a, widths, { mode: "edge" }));
  }
  const value = b.pick([0, 1, -2.5, 3].filter((v) => scalarFits(v, dtype)));
  const opts = edge ? { mode: "edge" as const } : b.chance(0.5) ? { value } : {};
  const fill = castV(edge ? 0 : (opts as { value?: number }).value ?? 0, dtype);
  const out = shape.map((d, i) => d + pairs[i][0] + pairs[i][1]);
  return b.add({
    text: `mx.pad(%${x}, ${json(widths)}${Object.keys(opts).length ? `, ${json(opts)}` : ""})`, ins: [{ node: x }], dtype, size: sizeOf(out),
    run: ([a]) => mx.pad(a as mx.Array, widths, opts),
    ref: ([h]) => ({
      value: hostFrom(out, (i) => {
        const idx = unravel(i, out).map((v, d) => v - pairs[d][0]);
        if (edge) return hostAt(h as H, idx.map((v, d) => Math.min(Math.max(v, 0), shape[d] - 1)));
        return idx.every((v, d) => v >= 0 && v < shape[d]) ? hostAt(h as H, idx) : fill;
      }),
    }),
  }) >= 0;
}

function buildTile(b: Builder): boolean {
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const kind = b.pick(["tile", "repeat", "roll"] as const);
  const nd = shape.length;
  if (kind === "tile") {
    const list = b.chance(0.7);
    const reps = list ? Array.from({ length: b.int(4) }, () => b.int(3)) : b.int(3);
    const r = typeof reps === "number" ? [reps] : reps;
    const n = Math.max(r.length, nd);
    const rs = [...new Array(n - r.length).fill(1), ...r];
    const s = [...new Array(n - nd).fill(1), ...shape];
    const out = s.map((d, i) => d * rs[i]);
    return b.add({
      text: `mx.tile(%${x}, ${json(reps)})`, ins: [{ node: x }], dtype, size: sizeOf(out),
      run: ([a]) => mx.tile(a as mx.Array, reps),
      ref: ([h]) => ({ value: gather(reshapeH(h as H, s), out, (idx) => idx.map((v, d) => v % s[d])) }),
    }) >= 0;
  }
  if (kind === "repeat") {
    const reps = b.int(4);
    const axis = nd && b.chance(0.6) ? b.int(2 * nd) - nd : undefined;
    const src = axis === undefined ? [sizeOf(shape)] : shape;
    const ax = axis === undefined ? 0 : normAxis(axis, nd);
    const out = src.map((d, i) => (i === ax ? d * reps : d));
    return b.add({
      text: `mx.repeat(%${x}, ${reps}${axis === undefined ? "" : `, ${axis}`})`, ins: [{ node: x }], dtype, size: sizeOf(out),
      run: ([a]) => mx.repeat(a as mx.Array, reps, axis),
      ref: ([h]) => ({ value: gather(reshapeH(h as H, src), out, (idx) => idx.map((v, d) => (d === ax ? Math.floor(v / reps) : v))) }),
    }) >= 0;
  }
  // roll
  const flat = nd === 0 || b.chance(0.3);
  const axes = flat ? [] : [...Array(nd).keys()].filter(() => b.chance(0.6)).map((a) => (b.chance(0.3) ? a - nd : a));
  const shifts = axes.map(() => b.int(11) - 5);
  const one = flat || (axes.length === 1 && b.chance(0.5));
  const shiftArg: number | number[] = flat ? b.int(11) - 5 : one ? shifts[0] ?? 0 : shifts;
  const axisArg2: number | number[] | undefined = flat ? undefined : one ? axes[0] : axes;
  if (!flat && axes.length === 0) return false;
  const total = new Array(nd).fill(0);
  if (!flat) axes.forEach((a, i) => (total[normAxis(a, nd)] += one ? (shiftArg as number) : shifts[i]));
  return b.add({
    text: `mx.roll(%${x}, ${json(shiftArg)}${axisArg2 === undefined ? "" : `, ${json(axisArg2)}`})`, ins: [{ node: x }], dtype,
    run: ([a]) => mx.roll(a as mx.Array, shiftArg, axisArg2),
    ref: ([h0]) => {
      const h = h0 as H;
      if (flat) {
        const n = h.data.length;
        const s = n ? (((shiftArg as number) % n) + n) % n : 0;
        return { value: { shape: h.shape, data: h.data.map((_, i) => h.data[(i - s + n) % n]) } };
      }
      return { value: gather(h, shape, (idx) => idx.map((v, d) => (shape[d] ? (((v - total[d]) % shape[d]) + shape[d]) % shape[d] : v))) };
    },
  }) >= 0;
}

function buildSplit(b: Builder): boolean {
  const x = b.primary((n) => n.shape.length > 0, () => b.leaf([1 + b.int(5), ...b.shape().slice(0, 2)], b.dtype()));
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  const axis = b.int(2 * nd) - nd;
  const ax = normAxis(axis, nd);
  const n = shape[ax];
  let arg: number | number[];
  let edges: number[];
  if (b.chance(0.5)) {
    const divisors = [...Array(Math.max(n, 1) + 1).keys()].slice(1).filter((k) => n % k === 0);
    const k = b.pick(divisors.length ? divisors : [1]);
    arg = k;
    edges = [...Array(k + 1).keys()].map((i) => (i * n) / k);
  } else {
    arg = Array.from({ length: b.int(3) }, () => b.int(2 * n + 3) - n - 1);
    edges = [0, ...arg.map((i) => Math.min(Math.max(i < 0 ? i + n : i, 0), n)), n];
  }
  const piece = b.int(edges.length - 1);
  const [s, e] = [edges[piece], Math.max(edges[piece], edges[piece + 1])];
  return b.add({
    text: `mx.split(%${x}, ${json(arg)}, ${axis})[${piece}]`, ins: [{ node: x }], dtype,
    run: ([a]) => mx.split(a as mx.Array, arg, axis)[piece],
    ref: ([h]) => {
      const out = shape.map((d, i) => (i === ax ? e - s : d));
      return { value: gather(h as H, out, (idx) => idx.map((v, d) => (d === ax ? v + s : v))) };
    },
  }) >= 0;
}

// ---------------------------------------------------------------------------------------------
// matmul, astype, divmod, copy
// ---------------------------------------------------------------------------------------------

function buildMatmul(b: Builder): boolean {
  const big = b.big && b.chance(0.08); // a product large enough for the blocked, multithreaded GEMM
  const dim = () => 8 + b.int(90);
  const x = big
    ? b.leaf([...(b.chance(0.3) ? [1 + b.int(3)] : []), dim(), dim()], b.pick(["float32", "float64", "float32", "float16", "int32"] as DType[]))
    : b.primary((n) => n.shape.length >= 1 && n.shape.length <= 4, () => b.leaf([...b.shape().slice(0, 2), 1 + b.int(4)], b.dtype()));
  const xs = b.nodes[x].shape;
  const k = xs[xs.length - 1];
  const fits = (s: number[]) => {
    if (s.length === 0) return false;
    if (s.length === 1) return s[0] === k;
    if (s[s.length - 2] !== k) return false;
    if (xs.length === 1) return true;
    return broadcastable(xs.slice(0, -2), s.slice(0, -2));
  };
  const make = () => {
    if (b.chance(0.2)) return b.leaf([k], b.chance(0.6) ? b.nodes[x].dtype : b.dtype());
    const batch = xs.length > 2 ? (b.chance(0.7) ? b.partnerShape(xs.slice(0, -2)) : []) : b.chance(0.2) ? [1 + b.int(3)] : [];
    return b.leaf([...batch, k, big ? dim() : b.int(5)], b.chance(0.6) ? b.nodes[x].dtype : b.dtype());
  };
  const y = big ? { node: make() } : b.partner((n) => fits(n.shape), make);
  const ins: Operand[] = [{ node: x }, y];
  const [da, db] = ins.map((o) => b.dtypeOf(o) as DType);
  const t = promote(da, db);
  return b.add({
    text: `mx.matmul(${ins.map(fmtArg).join(", ")})`, ins, dtype: t,
    size: (() => {
      const ys = b.shapeOf(y);
      const batch = broadcastShape(xs.slice(0, -2), ys.slice(0, -2));
      return sizeOf(batch) * (xs.length > 1 ? xs[xs.length - 2] : 1) * (ys.length > 1 ? ys[ys.length - 1] : 1);
    })(),
    run: ([p, q]) => mx.matmul(p as mx.Array, q as mx.Array),
    ref: ([p, q]) => matmulRef(castH(p as H, da, t), castH(q as H, db, t), t),
  }) >= 0;
}

function matmulRef(a: H, c: H, t: DType): Expect {
  const a2 = a.shape.length === 1 ? reshapeH(a, [1, a.shape[0]]) : a;
  const b2 = c.shape.length === 1 ? reshapeH(c, [c.shape[0], 1]) : c;
  const m = a2.shape[a2.shape.length - 2], k = a2.shape[a2.shape.length - 1], n = b2.shape[b2.shape.length - 1];
  const batch = broadcastShape(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const nb = sizeOf(batch);
  const kind = kindOf(t);
  // the flat offset of batch entry i in an operand whose batch axes broadcast to `batch`
  const batchOffset = (h: H, i: number, mat: number) => {
    const bs = h.shape.slice(0, -2);
    const idx = unravel(i, batch).slice(batch.length - bs.length);
    const st = strides(bs);
    return idx.reduce((o, v, d) => o + (bs[d] === 1 ? 0 : v * st[d]), 0) * mat;
  };
  const data: V[] = new Array(nb * m * n);
  const atol: number[] = new Array(nb * m * n);
  const u = t === "float64" ? 2 ** -53 : 2 ** -24; // float32 accumulates in float; half types in double
  for (let bi = 0; bi < nb; bi++) {
    const oa = batchOffset(a2, bi, m * k), ob = batchOffset(b2, bi, k * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const o = (bi * m + i) * n + j;
        if (kind === "bool") {
          let any = false;
          for (let q = 0; q < k && !any; q++) any = Boolean(a2.data[oa + i * k + q]) && Boolean(b2.data[ob + q * n + j]);
          data[o] = any;
        } else if (kind === "int") {
          let acc = 0n;
          for (let q = 0; q < k; q++) acc += (a2.data[oa + i * k + q] as bigint) * (b2.data[ob + q * n + j] as bigint);
          data[o] = wrapInt(acc, t);
        } else {
          let acc = 0, mag = 0;
          for (let q = 0; q < k; q++) {
            const p = (a2.data[oa + i * k + q] as number) * (b2.data[ob + q * n + j] as number);
            acc += p;
            mag += Math.abs(p);
          }
          data[o] = acc;
          atol[o] = (k + 2) * u * mag;
        }
      }
    }
  }
  const shape = [...batch, ...(a.shape.length === 1 ? [] : [m]), ...(c.shape.length === 1 ? [] : [n])];
  const value = { shape, data };
  return kind === "float" ? { value, rtol: rtolOf(t), atol } : { value };
}

function buildAstype(b: Builder): boolean {
  const x = b.primary();
  const from = b.nodes[x].dtype;
  const to = b.chance(0.8) ? b.dtype() : b.pick(ALL_DTYPES);
  return b.add({
    text: `mx.astype(%${x}, "${to}")`, ins: [{ node: x }], dtype: to,
    run: ([a]) => mx.astype(a as mx.Array, to),
    ref: ([h]) => ({ value: castH(h as H, from, to) }),
  }) >= 0;
}

function buildDivmod(b: Builder): boolean {
  const x = b.primary((n) => n.dtype !== "bool");
  const { shape, dtype } = b.nodes[x];
  const divisor = (): Scalar => (kindOf(dtype) === "int" ? b.pick([3, -2, 5, 0, 1, -1]) : b.pick([2, -1.5, 0.75, 3]));
  const y = b.partner((n) => broadcastable(n.shape, shape) && n.dtype !== "bool", () => {
    const d = b.chance(0.7) ? dtype : b.pick([...INT_DTYPES, ...FLOAT_DTYPES]);
    return b.leaf(b.partnerShape(shape), d, kindOf(d) === "int" ? { intDomain: [-9, 9] } : { domain: { abs: [0.25, 4] } });
  }, divisor);
  const ins: Operand[] = b.chance(0.2) ? [y, { node: x }] : [{ node: x }, y];
  const dts = ins.map((o) => b.dtypeOf(o));
  const t = resultType(dts);
  if (t === "bool" || ins.some((o) => "scalar" in o && !scalarFits(o.scalar, t))) return false;
  const ok = ins.every((o, i) => {
    const v = b.value(o);
    const vals = isHost(v) ? castH(v, dts[i] as DType, t).data : [castScalar(v, t)];
    return vals.every((e) => (typeof e === "number" ? Number.isFinite(e) && (i === 0 || e === 0 || Math.abs(e) >= 0.1) : true));
  });
  if (!ok) return false;
  const ref = (which: 0 | 1) => (xs: RefArg[]): Expect => {
    const [ha, hb] = xs.map((v, i) => (isHost(v) ? castH(v, dts[i] as DType, t) : scalarHost(castScalar(v, t))));
    if (kindOf(t) === "int") {
      return { value: mapHost((p: V, q: V) => wrapInt((which ? remainderInt : floorDivInt)(p as bigint, q as bigint), t), ha, hb) };
    }
    const value = mapHost((p: V, q: V) => (which ? remainderRef : floorDivideRef)(p as number, q as number), ha, hb);
    const rt = rtolOf(t);
    const atol = mapHost((_p: V, q: V) => 2 * rt * abs(q), ha, hb).data as number[];
    return { value, rtol: rt, atol };
  };
  const text = `mx.divmod(${ins.map(fmtArg).join(", ")})`;
  const q = b.add({ text: `${text}[0]`, ins, dtype: t, run: (xs) => mx.divmod(xs[0], xs[1]), ref: ref(0), allowSpecial: true });
  if (q < 0) return false;
  // the remainder: the second output of the same node (the run above records both)
  const r = b.add({ text: `${text}[1]`, ins, dtype: t, run: () => [], ref: ref(1), allowSpecial: true });
  if (r < 0) {
    b.nodes.pop();
    return false;
  }
  b.nodes[r].run = undefined;
  return true;
}

/** The second cpu backend the addon registers for tests (TESSERA_TEST_DEVICE), when there is one. */
const TEST_DEVICE: mx.Device = { type: "cpu", index: 1 };
const DEVICES: [string, mx.Device][] = [["mx.cpu", mx.cpu], ...(mx.isAvailable(TEST_DEVICE) ? [["cpu:1", TEST_DEVICE] as [string, mx.Device]] : [])];

/** copy, to the default device or (moving data between backends) to the test device. */
function buildCopy(b: Builder): boolean {
  const x = b.primary();
  const dev = b.chance(0.3) ? undefined : b.pick(DEVICES);
  return b.add({
    text: `mx.copy(%${x}${dev ? `, { device: ${dev[0]} }` : ""})`, ins: [{ node: x }], dtype: b.nodes[x].dtype,
    run: ([a]) => mx.copy(a as mx.Array, dev ? { device: dev[1] } : {}),
    ref: ([h]) => ({ value: h as H }),
  }) >= 0;
}

// ---------------------------------------------------------------------------------------------
// Calls that must throw
// ---------------------------------------------------------------------------------------------

function buildProbe(b: Builder): boolean {
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  const size = sizeOf(shape);
  const kind = b.int(14);
  switch (kind) {
    case 0: {
      const bad = [...shape, 2 + b.int(3)];
      return size === sizeOf(bad) ? false : b.probe(`mx.reshape(%${x}, ${json(bad)})`, [x], ([a]) => mx.reshape(a, bad));
    }
    case 1: {
      const i = shape.findIndex((d) => d > 1);
      if (i < 0) return false;
      const bad = shape.map((d, j) => (j === i ? d + 1 : d));
      return b.probe(`mx.broadcastTo(%${x}, ${json(bad)})`, [x], ([a]) => mx.broadcastTo(a, bad));
    }
    case 2: {
      if (nd === 0) return false;
      const k = shape[nd - 1];
      const other = b.leaf([k + 1, 2], "float32");
      return b.probe(`mx.matmul(%${x}, %${other})`, [x, other], ([a, c]) => mx.matmul(a, c));
    }
    case 3: {
      if (nd === 0) return false;
      const d = b.int(nd);
      const i = b.chance(0.5) ? shape[d] : -shape[d] - 1;
      const spec = [...new Array(d).fill(mx.slice()), i];
      return b.probe(`%${x}.index(${[...new Array(d).fill("mx.slice()"), i].join(", ")})`, [x], ([a]) => a.index(...spec));
    }
    case 4:
      return dtype === "bool" ? b.probe(`mx.neg(%${x}) of a bool array`, [x], ([a]) => mx.neg(a)) : false;
    case 5:
      // not defined for bool: the error comes from the evaluation, which must leave the rest usable
      return dtype === "bool" ? b.probe(`mx.eval(mx.sub(%${x}, %${x})) of bool arrays`, [x], ([a]) => mx.eval(mx.sub(a, a))) : false;
    case 6:
      return b.probe(`mx.astype(%${x}, "float128")`, [x], ([a]) => mx.astype(a, "float128" as mx.DType));
    case 7:
      return nd >= 2 ? b.probe(`mx.transpose(%${x}, ${json([0, 0, ...[...Array(nd - 2).keys()].map((i) => i + 2)])})`, [x], ([a]) => mx.transpose(a, [0, 0, ...[...Array(nd - 2).keys()].map((i) => i + 2)])) : false;
    case 8: {
      const i = shape.findIndex((d) => d !== 1);
      return i < 0 ? false : b.probe(`mx.squeeze(%${x}, ${i})`, [x], ([a]) => mx.squeeze(a, i));
    }
    case 9: {
      if (nd === 0) return false;
      const other = b.leaf(shape.map((d, i) => (i === nd - 1 ? d : d + 1)).concat(nd === 1 ? [1] : []), "float32");
      return b.probe(`mx.concatenate([%${x}, %${other}], ${nd - 1})`, [x, other], ([a, c]) => mx.concatenate([a, c], nd - 1));
    }
    case 10: {
      const i = shape.findIndex((d) => d > 1);
      if (i < 0) return false;
      const other = b.leaf(shape.map((d, j) => (j === i ? d + 1 : d)), "float32");
      return b.probe(`mx.add(%${x}, %${other})`, [x, other], ([a, c]) => mx.add(a, c));
    }
    case 11: {
      // a weak scalar must fit the integer dtype it is used in (no silent saturation or wrapping)
      if (kindOf(dtype) !== "int") return false;
      const v = isUint(dtype) ? -1 : Number(intLimits(dtype)[1]) + 1;
      return b.probe(`mx.add(%${x}, ${v})`, [x], ([a]) => mx.add(a, v));
    }
    case 12: {
      // a disposed array cannot be read by a pending consumer (its copy is disposed, not the node)
      const first = b.chance(0.5);
      return b.probe(`y = mx.copy(%${x}); z = mx.stack([y, y]); ${first ? "mx.eval(y); " : ""}y.dispose(); mx.eval(z)`, [x], ([a]) => {
        const y = mx.copy(a);
        const z = mx.stack([y, y]);
        if (first) mx.eval(y);
        y.dispose();
        mx.eval(z);
      });
    }
    default:
      return b.probe(`mx.sum(%${x}, ${nd})`, [x], ([a]) => mx.sum(a, nd));
  }
}

// ---------------------------------------------------------------------------------------------
// Scans, sorting, gathers and scatters
// ---------------------------------------------------------------------------------------------

/** The lines of h along `axis` as lists of flat positions (row-major over the other axes). */
function lines(shape: number[], axis: number): number[][] {
  const n = shape[axis];
  const st = strides(shape);
  const others = shape.map((d, i) => (i === axis ? 1 : d));
  const out: number[][] = [];
  for (let i = 0; i < sizeOf(others); i++) {
    const idx = unravel(i, others);
    const startPos = idx.reduce((o, v, d) => o + v * st[d], 0);
    out.push(Array.from({ length: n }, (_, k) => startPos + k * st[axis]));
  }
  return out;
}

type ScanName = "cumsum" | "cumprod" | "cummax" | "cummin";
function buildScan(b: Builder): boolean {
  const name = b.weighted<ScanName>([["cumsum", 3], ["cumprod", 1], ["cummax", 2], ["cummin", 2]]);
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  const axis: number | null | undefined = nd && b.chance(0.75) ? b.int(2 * nd) - nd : b.chance(0.5) ? null : undefined;
  const reverse = b.chance(0.3), inclusive = !b.chance(0.3);
  const t: DType = (name === "cumsum" || name === "cumprod") && dtype === "bool" ? "int32" : dtype;
  const opts: Record<string, boolean> = {};
  if (reverse || b.chance(0.2)) opts.reverse = reverse;
  if (!inclusive || b.chance(0.2)) opts.inclusive = inclusive;
  const optText = Object.keys(opts).length ? `, ${json(opts)}` : "";
  return b.add({
    text: `mx.${name}(%${x}, ${axis === undefined ? "undefined" : axis}${optText})`, ins: [{ node: x }], dtype: t,
    allowSpecial: !inclusive && (name === "cummax" || name === "cummin"),
    run: ([a]) => mx[name](a as mx.Array, axis, opts),
    ref: ([h0]) => {
      const h = castH(h0 as H, dtype, t);
      const flat = axis === undefined || axis === null;
      const src = flat ? reshapeH(h, [h.data.length]) : h;
      const ax = flat ? 0 : normAxis(axis, nd);
      const data: V[] = new Array(src.data.length);
      const atol: number[] = new Array(src.data.length).fill(0);
      const k = kindOf(t);
      for (const line of lines(src.shape, ax)) {
        const order = reverse ? [...line].reverse() : line;
        let acc: V = name === "cumsum" ? (k === "int" ? 0n : k === "bool" ? false : 0)
          : name === "cumprod" ? (k === "int" ? 1n : k === "bool" ? true : 1)
          : name === "cummax" ? (k === "int" ? intLimits(t)[0] : k === "bool" ? false : -Infinity)
          : k === "int" ? intLimits(t)[1] : k === "bool" ? true : Infinity;
        let mag = 0;
        for (const pos of order) {
          const v = src.data[pos];
          const next = (): V => {
            if (name === "cummax") return maxV(acc, v);
            if (name === "cummin") return minV(acc, v);
            if (k === "int") {
              const r = name === "cumsum" ? (acc as bigint) + (v as bigint) : (acc as bigint) * (v as bigint);
              return isUint(t) ? BigInt.asUintN(64, r) : BigInt.asIntN(64, r);
            }
            if (k === "bool") return name === "cumsum" ? Boolean(acc) || Boolean(v) : Boolean(acc) && Boolean(v);
            return name === "cumsum" ? (acc as number) + (v as number) : (acc as number) * (v as number);
          };
          if (inclusive) acc = next();
          data[pos] = k === "int" ? wrapInt(acc as bigint, t) : acc;
          if (k === "float") {
            if (Number.isFinite(v)) mag += Math.abs(v as number);
            const scale = name === "cumprod" ? Math.abs(acc as number) : mag;
            atol[pos] = Number.isFinite(scale) ? (order.length + 2) * 2 ** -52 * scale : 0;
          }
          if (!inclusive) acc = next();
        }
      }
      const value = reshapeH({ shape: src.shape, data }, flat ? [h.data.length] : shape);
      return k === "float" && (name === "cumsum" || name === "cumprod") ? { value, rtol: rtolOf(t), atol } : { value };
    },
  }) >= 0;
}

/** Stable ascending sort of each line (NaN last); with `indices`, the positions instead of the values. */
function sortLines(h: H, axis: number, indices: boolean): H {
  const data: V[] = new Array(h.data.length);
  for (const line of lines(h.shape, axis)) {
    const order = line.map((pos, k) => ({ v: h.data[pos], k })).sort((p, q) => compareV(p.v, q.v) || p.k - q.k);
    line.forEach((pos, k) => (data[pos] = indices ? BigInt(order[k].k) : order[k].v));
  }
  return { shape: h.shape, data };
}

function buildSort(b: Builder): boolean {
  const name = b.weighted<"sort" | "argsort" | "topk">([["sort", 2], ["argsort", 2], ["topk", 1]]);
  const x = b.primary();
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  const axis: number | null | undefined = nd === 0 ? null : b.chance(0.4) ? undefined : b.chance(0.2) ? null : b.int(2 * nd) - nd;
  const flat = axis === null;
  const ax = flat ? 0 : normAxis(axis ?? -1, nd);
  const srcShape = flat ? [sizeOf(shape)] : shape;
  const n = srcShape[ax];
  const k = name === "topk" ? b.int(n + 1) : 0;
  const axisText = axis === undefined ? "" : `, ${axis}`;
  return b.add({
    text: name === "topk" ? `mx.topk(%${x}, ${k}${axisText})` : `mx.${name}(%${x}${axisText})`, ins: [{ node: x }],
    dtype: name === "argsort" ? "uint32" : dtype,
    run: ([a]) => (name === "topk" ? mx.topk(a as mx.Array, k, axis) : mx[name](a as mx.Array, axis)),
    ref: ([h0]) => {
      const h = reshapeH(h0 as H, srcShape);
      if (name !== "topk") return { value: sortLines(h, ax, name === "argsort") };
      // the k largest of each line, ascending (tessera's values are sorted the same way first: no order is promised)
      const sorted = sortLines(h, ax, false);
      const outShape = srcShape.map((d, i) => (i === ax ? k : d));
      const value = gather(sorted, outShape, (idx) => idx.map((v, d) => (d === ax ? v + n - k : v)));
      return { value, normalize: (got) => sortLines({ shape: outShape, data: got }, ax, false).data };
    },
  }) >= 0;
}

const INDEX_DTYPES: [DType, number][] = [["int32", 6], ["int64", 2], ["uint8", 1], ["int16", 1], ["uint32", 1], ["int8", 1]];

/** A leaf of indices into an axis of length n (negative ones too, for signed dtypes). */
function indexLeaf(b: Builder, shape: number[], n: number): number {
  const d = b.weighted(INDEX_DTYPES);
  const [lo, hi] = intLimits(d);
  const min = BigInt(Math.max(-n, Number(lo))), max = BigInt(Math.min(n - 1, Number(hi)));
  return b.leaf(shape, d, { intDomain: [Number(min), Number(max)] });
}
const normIndex = (v: V, n: number) => {
  const k = Number(v);
  return k < 0 ? k + n : k;
};

function buildTake(b: Builder): boolean {
  const kind = b.weighted<"take" | "takeAlongAxis" | "putAlongAxis">([["take", 3], ["takeAlongAxis", 2], ["putAlongAxis", 2]]);
  const x = b.primary((n) => kind === "take" || n.shape.length > 0);
  const { shape, dtype } = b.nodes[x];
  const nd = shape.length;
  if (kind === "take") {
    const axis = nd && b.chance(0.7) ? b.int(2 * nd) - nd : undefined;
    const n = axis === undefined ? sizeOf(shape) : shape[normAxis(axis, nd)];
    const ishape = Array.from({ length: b.int(3) }, () => b.int(4));
    // (with nothing else to read either, the result is empty and nothing is checked: not probed)
    if (n === 0 && sizeOf(ishape) > 0 && (axis === undefined || sizeOf(shape.filter((_, i) => i !== normAxis(axis, nd))) > 0)) {
      const bad = b.leaf(ishape, "int32", { intDomain: [0, 3] });
      return b.probe(`mx.eval(mx.take(%${x}, %${bad}, ${axis})) with indices into an empty axis`, [x, bad], ([a, i]) => mx.eval(mx.take(a, i, axis)));
    }
    if (n === 0 && sizeOf(ishape) > 0) return false;
    const scalar = b.chance(0.15) && n > 0;
    const idx: Operand = scalar ? { scalar: b.int(2 * n) - n } : { node: indexLeaf(b, ishape, n) };
    return b.add({
      text: `mx.take(%${x}, ${fmtArg(idx)}${axis === undefined ? "" : `, ${axis}`})`, ins: [{ node: x }, idx], dtype,
      size: sizeOf(shape) / Math.max(n, 1) * (scalar ? 1 : sizeOf(ishape)),
      run: ([a, i]) => mx.take(a as mx.Array, i as mx.Array | number, axis),
      ref: ([h0, i0]) => {
        const h = axis === undefined ? reshapeH(h0 as H, [sizeOf(shape)]) : (h0 as H);
        const ax = axis === undefined ? 0 : normAxis(axis, nd);
        const ih = isHost(i0) ? i0 : scalarHost(BigInt(i0 as number));
        const pre = h.shape.slice(0, ax), post = h.shape.slice(ax + 1);
        const out = [...pre, ...ih.shape, ...post];
        return {
          value: gather(h, out, (idx) => [...idx.slice(0, pre.length), normIndex(hostAt(ih, idx.slice(pre.length, pre.length + ih.shape.length)), n), ...idx.slice(pre.length + ih.shape.length)]),
        };
      },
    }) >= 0;
  }
  if (nd === 0) return false;
  const axis = b.int(2 * nd) - nd;
  const ax = normAxis(axis, nd);
  const n = shape[ax];
  const m = b.int(4);
  // indices: as many axes as x, each off-axis one x's size or 1 (and, for takeAlongAxis, x's 1s may stretch)
  const ishape = shape.map((d, i) => (i === ax ? m : b.chance(0.25) ? 1 : d === 1 && kind === "takeAlongAxis" && b.chance(0.3) ? 2 : d));
  if (n === 0 && sizeOf(ishape) > 0) return false;
  const idx = indexLeaf(b, ishape, n);
  if (kind === "takeAlongAxis") {
    const off = shape.map((d, i) => (i === ax ? 1 : d === 1 ? ishape[i] : d));
    const out = off.map((d, i) => (i === ax ? m : d));
    return b.add({
      text: `mx.takeAlongAxis(%${x}, %${idx}, ${axis})`, ins: [{ node: x }, { node: idx }], dtype, size: sizeOf(out),
      run: ([a, i]) => mx.takeAlongAxis(a as mx.Array, i as mx.Array, axis),
      ref: ([h, ih]) => ({
        value: gather(h as H, out, (o) => o.map((v, d) => (d === ax ? normIndex(hostAt(ih as H, o), n) : (shape[d] === 1 ? 0 : v)))),
      }),
    }) >= 0;
  }
  // putAlongAxis: values a scalar or an array broadcasting to the indices' (broadcast) shape
  const target = shape.map((d, i) => (i === ax ? m : d));
  const vals: Operand = b.chance(0.3)
    ? { scalar: b.pick([0, 1, 2, -1, 0.5].filter((v) => scalarFits(v, dtype))) }
    : { node: b.leaf(b.partnerShape(target).filter((_, i, all) => all.length - i <= target.length), b.chance(0.7) ? dtype : b.dtype()) };
  if (!broadcastsTo(b.shapeOf(vals), target)) return false;
  return b.add({
    text: `mx.putAlongAxis(%${x}, %${idx}, ${fmtArg(vals)}, ${axis})`, ins: [{ node: x }, { node: idx }, vals], dtype,
    run: ([a, i, v]) => mx.putAlongAxis(a as mx.Array, i as mx.Array, v, axis),
    ref: ([h, ih, v]) => {
      const out = [...(h as H).data];
      const vh = isHost(v) ? castH(v, b.dtypeOf(vals) as DType, dtype) : scalarHost(castScalar(v as Scalar, dtype));
      const st = strides(shape);
      for (let p = 0; p < sizeOf(target); p++) {
        const o = unravel(p, target);
        const dst = o.map((vv, d) => (d === ax ? normIndex(hostAt(ih as H, o), n) : vv));
        out[dst.reduce((s, vv, d) => s + vv * st[d], 0)] = hostAt(vh, o);
      }
      return { value: { shape, data: out } };
    },
  }) >= 0;
}

type AdvItem = { int: number } | { slice: [number | null, number | null, number | null] } | "new" | "..." | { arr: number };

/** NumPy's indexing with integer arrays: the positions of x each result element reads, row-major. */
function advancedPlan(shape: number[], items: AdvItem[], arrays: H[]): { out: number[]; src: (o: number[]) => number[] } {
  const nd = shape.length;
  const consuming = items.filter((it) => it !== "new" && it !== "...").length;
  const full: AdvItem[] = [];
  let ell = false;
  for (const it of items) {
    if (it === "...") {
      for (let k = 0; k < nd - consuming; k++) full.push({ slice: [null, null, null] });
      ell = true;
    } else full.push(it);
  }
  if (!ell) for (let k = 0; k < nd - consuming; k++) full.push({ slice: [null, null, null] });
  const hasArr = full.some((it) => typeof it === "object" && "arr" in it);
  type Part = { kind: "new" } | { kind: "slice"; axis: number; start: number; step: number; len: number } | { kind: "adv"; axis: number; idx: H; n: number };
  const parts: Part[] = [];
  let axis = 0;
  for (const it of full) {
    if (it === "new") {
      parts.push({ kind: "new" });
      continue;
    }
    if (it === "...") continue;
    const n = shape[axis];
    if ("arr" in it) parts.push({ kind: "adv", axis, idx: arrays[it.arr], n });
    else if ("int" in it) {
      const v = it.int < 0 ? it.int + n : it.int;
      if (hasArr) parts.push({ kind: "adv", axis, idx: scalarHost(BigInt(v)), n });
      else parts.push({ kind: "slice", axis, start: v, step: 1, len: -1 }); // dropped
    } else {
      const [start, step, len] = sliceIndices(it.slice[0], it.slice[1], it.slice[2], n);
      parts.push({ kind: "slice", axis, start, step, len });
    }
    axis++;
  }
  const adv = parts.filter((p): p is Extract<Part, { kind: "adv" }> => p.kind === "adv");
  const bshape = adv.length ? broadcastShape(...adv.map((p) => p.idx.shape)) : [];
  const at = parts.map((p, i) => (p.kind === "adv" ? i : -1)).filter((i) => i >= 0);
  const adjacent = at.length === 0 || at[at.length - 1] - at[0] === at.length - 1;
  // each result axis: a broadcast-index axis, a slice, or a new axis
  type Dim = { kind: "b" } | { kind: "slice"; p: Extract<Part, { kind: "slice" }> } | { kind: "new" };
  const dims: Dim[] = [];
  const bdims = () => bshape.forEach(() => dims.push({ kind: "b" }));
  if (adv.length && !adjacent) bdims();
  let placed = false;
  for (const p of parts) {
    if (p.kind === "new") dims.push({ kind: "new" });
    else if (p.kind === "slice") {
      if (p.len >= 0) dims.push({ kind: "slice", p });
    } else if (adjacent && !placed) {
      bdims();
      placed = true;
    }
  }
  const out = dims.map((d) => (d.kind === "b" ? 0 : d.kind === "slice" ? d.p.len : 1));
  let bi = 0;
  dims.forEach((d, i) => d.kind === "b" && (out[i] = bshape[bi++]));
  return {
    out,
    src: (o) => {
      const src = new Array(nd).fill(0);
      const bidx = o.filter((_, i) => dims[i].kind === "b");
      for (const p of parts) if (p.kind === "slice" && p.len < 0) src[p.axis] = p.start;
      dims.forEach((d, i) => {
        if (d.kind === "slice") src[d.p.axis] = d.p.start + o[i] * d.p.step;
      });
      for (const p of adv) src[p.axis] = normIndex(hostAt(p.idx, bidx), p.n);
      return src;
    },
  };
}

/** An index spec with integer arrays among its entries (for index and at). */
function advancedSpec(b: Builder, shape: number[]): { items: AdvItem[]; arrays: number[] } | null {
  const nd = shape.length;
  const items: AdvItem[] = [];
  const arrays: number[] = [];
  const bshape = Array.from({ length: b.int(3) }, () => b.int(4));
  const consumed = nd - (b.chance(0.3) ? b.int(nd + 1) : 0);
  for (let d = 0; d < consumed; d++) {
    const n = shape[d];
    const u = b.r();
    if (u < 0.45) {
      const prev = broadcastShape(bshape, ...arrays.map((a) => b.nodes[a].shape));
      let s = b.chance(0.5) ? [...bshape] : b.partnerShape(bshape);
      if (!broadcastable(s, prev)) s = [...bshape];
      if (n === 0 && sizeOf(s) > 0) return null; // every index must be in range, even where the result is empty
      arrays.push(indexLeaf(b, s, n));
      items.push({ arr: arrays.length - 1 });
    } else if (u < 0.6 && n > 0) items.push({ int: b.int(2 * n) - n });
    else if (u < 0.8) items.push({ slice: [null, null, null] });
    else {
      const bound = () => (b.chance(0.3) ? null : b.int(2 * n + 5) - n - 2);
      items.push({ slice: [bound(), bound(), b.chance(0.3) ? null : b.pick([-2, -1, 1, 2, 3])] });
    }
  }
  if (!arrays.length) return null;
  if (b.chance(0.2)) items.splice(b.int(items.length + 1), 0, "new");
  if (b.chance(0.2) && consumed < nd) items.push("...");
  return { items, arrays };
}

const fmtItems = (items: AdvItem[], arrays: number[]) =>
  items.map((it) => (it === "new" ? "null" : it === "..." ? `"..."` : "int" in it ? String(it.int) : "arr" in it ? `%${arrays[it.arr]}` : `mx.slice(${it.slice.map((v) => (v === null ? "null" : v)).join(", ")})`)).join(", ");
const specOf = (items: AdvItem[], xs: Arg[]) =>
  items.map((it) => (it === "new" ? null : it === "..." ? "..." : "int" in it ? it.int : "arr" in it ? (xs[1 + it.arr] as mx.Array) : mx.slice(...it.slice))) as mx.IndexEntry[];

function buildAdvancedIndex(b: Builder): boolean {
  const x = b.primary((n) => n.shape.length > 0);
  if (!b.nodes[x].shape.length) return false;
  const { shape, dtype } = b.nodes[x];
  const spec = advancedSpec(b, shape);
  if (!spec) return false;
  const { items, arrays } = spec;
  const ins: Operand[] = [{ node: x }, ...arrays.map((a) => ({ node: a }))];
  const sizes = [...ins.map((o) => sizeOf(b.shapeOf(o)))];
  return b.add({
    text: `%${x}.index(${fmtItems(items, arrays)})`, ins, dtype, size: Math.max(...sizes) * 8,
    run: (xs) => (xs[0] as mx.Array).index(...specOf(items, xs)),
    ref: ([h, ...ih]) => {
      const plan = advancedPlan(shape, items, ih as H[]);
      return { value: gather(h as H, plan.out, plan.src) };
    },
  }) >= 0;
}

type AtKind = "set" | "add" | "subtract" | "multiply" | "divide" | "maximum" | "minimum";
function buildAt(b: Builder): boolean {
  const x = b.primary((n) => n.shape.length > 0);
  const { shape, dtype } = b.nodes[x];
  if (!shape.length) return false;
  const kinds: AtKind[] = ["set", "add", "maximum", "minimum", "multiply", ...(dtype !== "bool" ? ["subtract" as const] : []), ...(isFloat(dtype) ? ["divide" as const] : [])];
  const kind = b.pick(kinds);
  const spec = advancedSpec(b, shape);
  if (!spec) return false;
  const { items, arrays } = spec;
  const probe = advancedPlan(shape, items, arrays.map((a) => b.nodes[a].approx));
  const vals: Operand = b.chance(0.3)
    ? { scalar: b.pick([1, 2, -1, 0.5, 3].filter((v) => scalarFits(v, dtype))) }
    : { node: b.leaf(b.partnerShape(probe.out).filter((_, i, all) => all.length - i <= probe.out.length), b.chance(0.7) ? dtype : b.dtype()) };
  if (!broadcastsTo(b.shapeOf(vals), probe.out)) return false;
  const ins: Operand[] = [{ node: x }, ...arrays.map((a) => ({ node: a })), vals];
  const vd = b.dtypeOf(vals);
  return b.add({
    text: `%${x}.at(${fmtItems(items, arrays)}).${kind}(${fmtArg(vals)})`, ins, dtype,
    run: (xs) => (xs[0] as mx.Array).at(...specOf(items, xs))[kind](xs[xs.length - 1]),
    ref: (xs) => {
      const h = xs[0] as H;
      const plan = advancedPlan(shape, items, xs.slice(1, -1) as H[]);
      const v = xs[xs.length - 1];
      const vh = isHost(v) ? castH(v, vd as DType, dtype) : scalarHost(castScalar(v as Scalar, dtype));
      const data = [...h.data];
      const mag = new Array(data.length).fill(0), count = new Array(data.length).fill(0);
      const st = strides(shape);
      const k = kindOf(dtype);
      for (let p = 0; p < sizeOf(plan.out); p++) {
        const o = unravel(p, plan.out);
        const at = plan.src(o).reduce((s, vv, d) => s + vv * st[d], 0);
        let val = hostAt(vh, o);
        const cur = data[at];
        if (kind === "subtract") val = k === "int" ? wrapInt(-(val as bigint), dtype) : -(val as number);
        if (kind === "divide") val = castV(1 / (val as number), dtype);
        let r: V;
        switch (kind) {
          case "set": r = val; break;
          case "maximum": r = maxV(cur, val); break;
          case "minimum": r = minV(cur, val); break;
          case "add": case "subtract":
            r = k === "int" ? wrapInt((cur as bigint) + (val as bigint), dtype) : k === "bool" ? Boolean(cur) || Boolean(val) : (cur as number) + (val as number);
            break;
          default:
            r = k === "int" ? wrapInt((cur as bigint) * (val as bigint), dtype) : k === "bool" ? Boolean(cur) && Boolean(val) : (cur as number) * (val as number);
        }
        if (k === "float" && kind !== "set" && kind !== "maximum" && kind !== "minimum") {
          mag[at] = (mag[at] || Math.abs(cur as number)) + Math.abs(r as number) + Math.abs(val as number);
          count[at]++;
        }
        data[at] = r;
      }
      if (k !== "float") return { value: { shape, data } };
      const u = EPS[dtype]!;
      return { value: { shape, data }, rtol: rtolOf(dtype), atol: mag.map((m, i) => (count[i] + 2) * 2 * u * m) };
    },
  }) >= 0;
}

function buildIndexProbe(b: Builder): boolean {
  // (the index must be read: an empty result reads none and is not an error)
  const x = b.primary((n) => n.shape.length > 0 && sizeOf(n.shape) > 0);
  const { shape } = b.nodes[x];
  if (!shape.length || sizeOf(shape) === 0) return false;
  const n = shape[0];
  const bad = b.leaf([1 + b.int(3)], "int32", { intDomain: b.chance(0.5) ? [n, n + 3] : [-n - 3, -n - 1] });
  return b.pick([
    () => b.probe(`mx.eval(%${x}.index(%${bad})) with an index out of bounds`, [x, bad], ([a, i]) => mx.eval(a.index(i))),
    () => b.probe(`mx.eval(mx.take(%${x}, %${bad}, 0)) with an index out of bounds`, [x, bad], ([a, i]) => mx.eval(mx.take(a, i, 0))),
    () => b.probe(`mx.eval(%${x}.at(%${bad}).add(1)) with an index out of bounds`, [x, bad], ([a, i]) => mx.eval(a.at(i).add(1))),
  ])();
}

// ---------------------------------------------------------------------------------------------
// Categories and the graph builder
// ---------------------------------------------------------------------------------------------

const CATEGORIES: [string, number, (b: Builder) => boolean][] = [
  ["leaf", 3, (b) => (b.randomLeaf(), true)],
  ["elementwise", 30, (b) => buildRow(b, ROWS[b.int(ROWS.length)])],
  ["where", 4, buildWhere],
  ["reduce", 12, buildReduce],
  ["argmax", 3, buildArg],
  ["composite", 3, buildComposite],
  ["index", 8, buildIndex],
  ["permute", 5, buildPermute],
  ["reshape", 6, buildReshape],
  ["broadcastTo", 4, buildBroadcast],
  ["flip", 2, buildFlip],
  ["concatenate", 4, buildConcat],
  ["pad", 3, buildPad],
  ["tile", 4, buildTile],
  ["split", 2, buildSplit],
  ["matmul", 5, buildMatmul],
  ["astype", 6, buildAstype],
  ["divmod", 2, buildDivmod],
  ["copy", 3, buildCopy],
  ["probe", 3, buildProbe],
  ["scan", 3, buildScan],
  ["sort", 3, buildSort],
  ["take", 4, buildTake],
  ["advanced index", 4, buildAdvancedIndex],
  ["at", 3, buildAt],
  ["index probe", 1, buildIndexProbe],
];
const TOTAL = CATEGORIES.reduce((s, [, w]) => s + w, 0);

function category(sel: number): (b: Builder) => boolean {
  let u = sel % TOTAL;
  for (const [, w, f] of CATEGORIES) if ((u -= w) < 0) return f;
  return CATEGORIES[0][2];
}

export function buildGraph(steps: Step[], mode: Mode, seed: number, options: { big?: boolean; probes?: boolean } = {}): Graph {
  const b = new Builder();
  b.big = options.big ?? true;
  const probes = options.probes ?? true;
  steps.forEach((step, k) => {
    for (let attempt = 0; attempt < 12; attempt++) {
      b.r = rng((step.seed + 0x9e3779b1 * attempt + 7919 * k) >>> 0);
      b.arg = step.arg;
      b.after = b.weighted([[0, 8], [1, 1], [2, 1]] as [number, number][]);
      const mark = b.nodes.length, probeMark = b.probes.length;
      const build = category(step.op + attempt * 7);
      if ((probes || build !== buildProbe) && build(b)) return;
      b.nodes.length = mark; // drop leaves a failed attempt made
      b.probes.length = probeMark;
    }
    b.randomLeaf();
  });
  return { nodes: b.nodes, probes: b.probes, mode, seed };
}

// ---------------------------------------------------------------------------------------------
// Running a graph in tessera and checking every node
// ---------------------------------------------------------------------------------------------

function shuffled(n: number, r: () => number): number[] {
  const a = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function runProbe(p: Probe, arrays: mx.Array[], g: Graph): void {
  let threw: unknown = undefined;
  try {
    p.run(p.ins.map((i) => arrays[i]));
  } catch (e) {
    threw = e;
  }
  if (!(threw instanceof Error)) {
    expect.fail(`expected ${p.text} to throw an Error; it ${threw === undefined ? "returned" : `threw ${String(threw)}`}\n${describeGraph(g)}`);
  }
}

/** A node and every node it depends on. */
function ancestors(g: Graph, id: number): Set<number> {
  const seen = new Set<number>();
  const visit = (k: number) => {
    if (seen.has(k)) return;
    seen.add(k);
    for (const o of g.nodes[k].ins) if ("node" in o) visit(o.node);
    if (!g.nodes[k].run && k > 0) visit(k - 1); // the second output of a two-output op
  };
  visit(id);
  return seen;
}

/** Records every node of a graph (without probes) in tessera, evaluating nothing beyond the leaves. */
export function recordGraph(g: Graph): mx.Array[] {
  const arrays: mx.Array[] = [];
  for (const n of g.nodes) {
    if (!n.run) continue;
    const out = n.run(n.ins.map((o) => ("node" in o ? arrays[o.node] : o.scalar)));
    if (Array.isArray(out)) out.forEach((a, k) => (arrays[n.id + k] = a));
    else arrays[n.id] = out;
  }
  return arrays;
}

/** Records the graph in tessera, evaluates it as its mode says, and checks every node. */
export async function runGraph(g: Graph): Promise<void> {
  const arrays: mx.Array[] = [];
  const r = rng(g.seed);
  const probesAt = (k: number) => g.probes.filter((p) => p.at === k).forEach((p) => runProbe(p, arrays, g));
  probesAt(0);
  for (const n of g.nodes) {
    if (n.run) {
      const out = n.run(n.ins.map((o) => ("node" in o ? arrays[o.node] : o.scalar)));
      if (Array.isArray(out)) out.forEach((a, k) => (arrays[n.id + k] = a));
      else arrays[n.id] = out;
    }
    if (g.mode === "interleaved" && n.after === 1) mx.eval(arrays[n.id]);
    if (g.mode === "interleaved" && n.after === 2) readValues(arrays[n.id]);
    probesAt(n.id + 1);
  }
  const used = new Set(g.nodes.flatMap((n) => n.ins.flatMap((o) => ("node" in o ? [o.node] : []))));
  const sinks = arrays.filter((_, i) => !used.has(i));
  switch (g.mode) {
    case "eval-all": mx.eval(arrays); break;
    case "eval-sinks": mx.eval(sinks); break;
    case "piecewise":
      for (const i of shuffled(arrays.length, r)) {
        if (r() < 0.3) mx.eval(arrays.filter(() => r() < 0.3));
        readValues(arrays[i]);
      }
      break;
    case "interleaved": mx.eval(arrays.filter(() => r() < 0.5)); break;
    case "async": {
      // now and then a synchronous read while the program runs on the addon's worker thread
      const pending = mx.evalAsync(r() < 0.5 ? sinks : arrays);
      if (arrays.length && r() < 0.5) readValues(arrays[Math.floor(r() * arrays.length)]);
      await pending;
      break;
    }
  }
  // check every node against its reference on the values tessera gave its inputs
  const got: H[] = [];
  for (const n of g.nodes) {
    const a = arrays[n.id];
    const where = () => `node %${n.id} = ${n.text}\nits inputs (the whole graph is the counterexample):\n${describeGraph(g, ancestors(g, n.id))}`;
    if (a.dtype !== n.dtype || a.shape.length !== n.shape.length || a.shape.some((d, i) => d !== n.shape[i])) {
      expect.fail(`expected ${n.dtype}[${n.shape}], got ${a.dtype}[${a.shape}] at ${where()}`);
    }
    got[n.id] = { shape: [...a.shape], data: readValues(a) };
    const e = n.ref(n.ins.map((o) => ("node" in o ? got[o.node] : o.scalar)));
    if (e.value.shape.length !== n.shape.length || e.value.shape.some((d, i) => d !== n.shape[i])) {
      expect.fail(`reference shape [${e.value.shape}] differs from the model's [${n.shape}] (a bug in the test) at ${where()}`);
    }
    const bad = mismatches(e.normalize ? e.normalize(got[n.id].data) : got[n.id].data, e, n.dtype);
    if (bad.length) {
      const ins = n.ins.map((o) => ("node" in o ? `%${o.node} = ${fmtHost(got[o.node], 40)}` : `${fmtArg(o)}`)).join("\n    ");
      expect.fail(`wrong values at ${where()}\n  ${bad.join("\n  ")}\n  inputs:\n    ${ins}\n  got ${fmtHost(got[n.id], 40)}`);
    }
  }
}

