/**
 * @file The table of elementwise ops, and the one place an elementwise op is added to the tests.
 * A new elementwise primitive takes four files: its kernel (a line of native/src/ops.def), its
 * definition with rules (packages/core/src/primitives/elementwise.ts), its user op
 * (packages/core/src/ops/elementwise.ts) and one row of OPS here. That row drives:
 *
 * - forward correctness (test/core/elementwise.test.ts): `fn` against `ref` (and `intRef` on every
 *   integer dtype) on many shapes, broadcasts, JS scalars and views, with inputs drawn from `domain`
 *   (with `grid` ties and `specials` mixed in) or `intDomain`, in `dtypes` (+ the integer dtypes
 *   with `intRef`, + bool with `bool`), result dtype by `out`, within `rtol` / `atol`;
 * - transform properties (test/transforms/properties.test.ts), for rows with `grad: true`: vjp and
 *   jvp of `fn` against finite differences, transposition and vmap, on random shapes, with
 *   float64 inputs drawn from `domain` (`{ abs: [lo, hi] }`: either sign), the operands in
 *   `gradArgs` differentiated (the others keep the `grid`);
 * - the primitive registry (test/transforms/registry.test.ts), for rows whose primitive (`name`,
 *   or `primitive` when they differ) is registered: the rules exist, the non-differentiable
 *   sentinels are there exactly when `grad` (or `primitiveGrad`) is false, vmap equals stacking,
 *   and jvp/vjp match finite differences. The primitive's inputs are what `fn` hands it for float64
 *   operands from `domain` (and int32 from `intDomain` when `intRef`, bools when `bool`); a
 *   non-differentiable row also gets a case with its `specials`. A registered elementwise
 *   primitive without a row here fails that test.
 *
 * Gradient tests draw from `domain` (so it must be where the op is smooth) and ignore `specials`.
 */
import * as mx from "@tessera/core";
import {
  erf, erfinv, floorDivideRef, floorDivInt, logaddexpRef, powRef, remainderInt, remainderRef, roundRef,
} from "../helpers/special.js";

import { sample, type Domain, type IntDomain } from "../helpers/inputs.js";

export { sample, type Domain, type IntDomain };

export interface OpCase {
  /** The op's name in @tessera/core (also the row label unless `label` is set). */
  name: string;
  label?: string;
  fn: (...xs: any[]) => mx.Array;
  /** float64 semantics (bools are 0/1 in and out). */
  ref: (...v: number[]) => number;
  /** Exact integer semantics, before wrapping to the dtype (absent: the op is not tested on integers). */
  intRef?: (...v: bigint[]) => bigint;
  arity: number;
  domain: Domain[];
  intDomain?: IntDomain[];
  /** Floating dtypes to test; integer dtypes come from INT_DTYPES when intRef is set. */
  dtypes: mx.DType[];
  /** Whether the op also takes bool operands (values 0/1; the reference sees 0/1). */
  bool?: boolean;
  /** Result dtype: the operands' ("same"), floating ("float": integers become float32) or "bool". */
  out: "same" | "float" | "bool";
  /** Round some inputs to multiples of grid (ties: comparisons, round half to even). */
  grid?: number;
  /** Values (NaN, infinities, zeros) mixed into forward-test inputs; the reference handles them. */
  specials?: number[];
  /** Relative tolerance per dtype, overriding DEFAULT_RTOL. */
  rtol?: Partial<Record<mx.DType, number>>;
  /** Absolute tolerance per dtype (default 0), for outputs that cross zero at non-representable points. */
  atol?: Partial<Record<mx.DType, number>>;
  /** Differentiable (almost everywhere in `domain`, with a nonzero derivative). */
  grad: boolean;
  /** The operands gradients flow to (default: all). */
  gradArgs?: number[];
  /**
   * The registry primitive `fn` binds, when its name is not `name`; null when the row has none
   * (default: `name` if the registry has it; rows with a `label` are variants and have none).
   */
  primitive?: string | null;
  /** Whether the primitive is differentiable, when that differs from `grad` (default: `grad`). */
  primitiveGrad?: boolean;
}

export const FLOATS: mx.DType[] = ["float64", "float32", "float16", "bfloat16"];
export const INT_DTYPES: mx.DType[] = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"];
export const DEFAULT_RTOL: Partial<Record<mx.DType, number>> = {
  float64: 1e-12, float32: 1e-6, float16: 1e-3, bfloat16: 8e-3,
};
const S = [NaN, Infinity, -Infinity, 0, -0];

const u = (name: string, fn: OpCase["fn"], ref: OpCase["ref"], domain: Domain, extra: Partial<OpCase> = {}): OpCase => ({
  name, fn, ref, arity: 1, domain: [domain], dtypes: FLOATS, out: "float", grad: true, specials: S, ...extra,
});
const b = (name: string, fn: OpCase["fn"], ref: OpCase["ref"], domain: Domain[], extra: Partial<OpCase> = {}): OpCase => ({
  name, fn, ref, arity: 2, domain, dtypes: FLOATS, out: "same", grad: true, ...extra,
});
const t = (v: boolean) => (v ? 1 : 0);
const truthy = (v: number) => v !== 0; // NaN is truthy, as C's cast to bool
const sgn = (v: bigint) => (v > 0n ? 1n : v < 0n ? -1n : 0n);

export const OPS: OpCase[] = [
  // arithmetic
  b("add", mx.add, (x, y) => x + y, [[-3, 3], [-3, 3]], { intRef: (x, y) => x + y, intDomain: ["full", "full"], specials: S }),
  b("sub", mx.sub, (x, y) => x - y, [[-3, 3], [-3, 3]], { intRef: (x, y) => x - y, intDomain: ["full", "full"], specials: S }),
  b("mul", mx.mul, (x, y) => x * y, [[-3, 3], [-3, 3]], { intRef: (x, y) => x * y, intDomain: ["full", "full"], specials: S }),
  b("div", mx.div, (x, y) => x / y, [[-3, 3], { abs: [0.5, 3] }], { out: "float", specials: S }),
  b("floorDivide", mx.floorDivide, floorDivideRef, [[-5, 5], { abs: [0.3, 3] }], {
    intRef: floorDivInt, intDomain: [[-1000, 1000], [-9, 9]], grad: false,
  }),
  b("remainder", mx.remainder, remainderRef, [[-5, 5], { abs: [0.3, 3] }], {
    intRef: remainderInt, intDomain: [[-1000, 1000], [-9, 9]],
  }),
  b("pow", mx.pow, powRef, [[0.5, 3], [-2, 2]], {
    intRef: (x, y) => x ** y, intDomain: [[-5, 5], [0, 9]], specials: S,
  }),
  b("maximum", mx.maximum, (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y)), [[-2, 2], [-2, 2]], {
    intRef: (x, y) => (x > y ? x : y), intDomain: ["full", "full"], specials: S,
  }),
  b("minimum", mx.minimum, (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y)), [[-2, 2], [-2, 2]], {
    intRef: (x, y) => (x < y ? x : y), intDomain: ["full", "full"], specials: S,
  }),
  b("arctan2", mx.arctan2, Math.atan2, [{ abs: [0.2, 3] }, [-3, 3]], { out: "float", specials: S }),
  // Crosses zero where max(a, b) is near -log 2: there the rounding of max + log1p(...) is
  // absolute, about an ulp of numbers below 1.
  b("logaddexp", mx.logaddexp, logaddexpRef, [[-5, 5], [-5, 5]], {
    out: "float", specials: S, atol: { float64: 2 ** -52, float32: 2 ** -23, float16: 2 ** -10, bfloat16: 2 ** -7 },
  }),
  // unary, same dtype
  u("neg", mx.neg, (x) => -x, [-3, 3], { out: "same", intRef: (x) => -x, intDomain: ["full"] }),
  u("abs", mx.abs, Math.abs, { abs: [0.1, 3] }, { out: "same", intRef: (x) => (x < 0n ? -x : x), intDomain: ["sym"] }),
  u("sign", mx.sign, Math.sign, [-2, 2], { out: "same", grad: false, specials: [Infinity, -Infinity, 0, -0], intRef: sgn, intDomain: [[-3, 3]] }),
  u("square", mx.square, (x) => x * x, [-3, 3], { out: "same", intRef: (x) => x * x, intDomain: ["full"] }),
  u("floor", mx.floor, Math.floor, [-5, 5], { out: "same", grad: false, grid: 1, intRef: (x) => x, intDomain: ["full"] }),
  u("ceil", mx.ceil, Math.ceil, [-5, 5], { out: "same", grad: false, grid: 1, intRef: (x) => x, intDomain: ["full"] }),
  u("round", mx.round, roundRef, [-5, 5], { out: "same", grad: false, grid: 0.25, intRef: (x) => x, intDomain: ["full"] }),
  // unary, floating
  u("sqrt", mx.sqrt, Math.sqrt, [0.1, 5]),
  u("rsqrt", mx.rsqrt, (x) => 1 / Math.sqrt(x), [0.1, 5]),
  u("reciprocal", mx.reciprocal, (x) => 1 / x, { abs: [0.2, 5] }),
  u("exp", mx.exp, Math.exp, [-5, 5]),
  u("expm1", mx.expm1, Math.expm1, [-2, 2]),
  u("log", mx.log, Math.log, [0.1, 10]),
  u("log1p", mx.log1p, Math.log1p, [-0.9, 5]),
  u("log2", mx.log2, Math.log2, [0.1, 10]),
  u("log10", mx.log10, Math.log10, [0.1, 10]),
  u("sin", mx.sin, Math.sin, [-5, 5]),
  u("cos", mx.cos, Math.cos, [-5, 5]),
  u("tan", mx.tan, Math.tan, [-1.4, 1.4]),
  u("arcsin", mx.arcsin, Math.asin, [-0.95, 0.95]),
  u("arccos", mx.arccos, Math.acos, [-0.95, 0.95]),
  u("arctan", mx.arctan, Math.atan, [-5, 5]),
  u("sinh", mx.sinh, Math.sinh, [-3, 3]),
  u("cosh", mx.cosh, Math.cosh, [-3, 3]),
  u("tanh", mx.tanh, Math.tanh, [-4, 4]),
  u("arcsinh", mx.arcsinh, Math.asinh, [-5, 5]),
  u("arccosh", mx.arccosh, Math.acosh, [1.1, 5]),
  u("arctanh", mx.arctanh, Math.atanh, [-0.9, 0.9]),
  u("sigmoid", mx.sigmoid, (x) => 1 / (1 + Math.exp(-x)), [-8, 8]),
  u("erf", mx.erf, erf, [-3, 3]),
  u("erfinv", mx.erfinv, erfinv, [-0.95, 0.95]),
  // clip: array bounds, and each bound alone
  {
    name: "clip", fn: (x, lo, hi) => mx.clip(x, lo, hi), ref: (x, lo, hi) => (Number.isNaN(x) ? NaN : Math.min(Math.max(x, lo), hi)),
    arity: 3, domain: [[-2, 2], [-1.5, -0.2], [0.2, 1.5]], dtypes: FLOATS, out: "same", grad: true,
    intRef: (x, lo, hi) => (x < lo ? lo : x > hi ? hi : x), intDomain: [[-100, 100], [-50, -1], [1, 50]],
  },
  u("clip", (x) => mx.clip(x, -0.5, null), (x) => (Number.isNaN(x) ? NaN : Math.max(x, -0.5)), [-2, 2], { label: "clip(min only)", out: "same" }),
  u("clip", (x) => mx.clip(x, null, 0.5), (x) => (Number.isNaN(x) ? NaN : Math.min(x, 0.5)), [-2, 2], { label: "clip(max only)", out: "same" }),
  // NaN / infinity handling
  u("nanToNum", (x) => mx.nanToNum(x, { nan: 0.5, posinf: 100, neginf: -100 }),
    (x) => (Number.isNaN(x) ? 0.5 : x === Infinity ? 100 : x === -Infinity ? -100 : x), [-3, 3], { out: "same" }),
  u("isnan", mx.isnan, (x) => t(Number.isNaN(x)), [-3, 3], { out: "bool", grad: false, bool: true, intRef: () => 0n, intDomain: ["full"] }),
  u("isinf", mx.isinf, (x) => t(x === Infinity || x === -Infinity), [-3, 3], { out: "bool", grad: false, bool: true, intRef: () => 0n, intDomain: ["full"] }),
  u("isfinite", mx.isfinite, (x) => t(Number.isFinite(x)), [-3, 3], { out: "bool", grad: false, bool: true, intRef: () => 1n, intDomain: ["full"] }),
  // comparisons (integer grid: ties)
  ...([
    ["equal", mx.equal, (x: number, y: number) => x === y],
    ["notEqual", mx.notEqual, (x: number, y: number) => x !== y],
    ["less", mx.less, (x: number, y: number) => x < y],
    ["lessEqual", mx.lessEqual, (x: number, y: number) => x <= y],
    ["greater", mx.greater, (x: number, y: number) => x > y],
    ["greaterEqual", mx.greaterEqual, (x: number, y: number) => x >= y],
  ] as const).map(([name, fn, f]) => b(name, fn, (x, y) => t(f(x, y)), [[-3, 3], [-3, 3]], {
    out: "bool", grad: false, grid: 1, specials: S, bool: true, intRef: (x, y) => BigInt(t(f(x as any, y as any))), intDomain: [[-3, 3], [-3, 3]],
  })),
  // logical: any dtype is read as truthy
  b("logicalAnd", mx.logicalAnd, (x, y) => t(truthy(x) && truthy(y)), [[-1, 1], [-1, 1]], {
    out: "bool", grad: false, grid: 1, specials: S, bool: true, intRef: (x, y) => BigInt(t(x !== 0n && y !== 0n)), intDomain: [[-1, 1], [-1, 1]],
  }),
  b("logicalOr", mx.logicalOr, (x, y) => t(truthy(x) || truthy(y)), [[-1, 1], [-1, 1]], {
    out: "bool", grad: false, grid: 1, specials: S, bool: true, intRef: (x, y) => BigInt(t(x !== 0n || y !== 0n)), intDomain: [[-1, 1], [-1, 1]],
  }),
  u("logicalNot", mx.logicalNot, (x) => t(!truthy(x)), [-1, 1], {
    out: "bool", grad: false, grid: 1, bool: true, intRef: (x) => BigInt(t(x === 0n)), intDomain: [[-2, 2]],
  }),
  // bitwise and shifts: integers (and bools for and/or/xor) only
  ...([
    ["bitwiseAnd", mx.bitwiseAnd, (x: bigint, y: bigint) => x & y, true],
    ["bitwiseOr", mx.bitwiseOr, (x: bigint, y: bigint) => x | y, true],
    ["bitwiseXor", mx.bitwiseXor, (x: bigint, y: bigint) => x ^ y, true],
    ["leftShift", mx.leftShift, (x: bigint, y: bigint) => x << y, false],
    ["rightShift", mx.rightShift, (x: bigint, y: bigint) => x >> y, false],
  ] as const).map(([name, fn, f, bool]): OpCase => ({
    name, fn, ref: (x, y) => Number(f(BigInt(x), BigInt(y))), intRef: f, arity: 2, domain: [[0, 1], [0, 1]],
    intDomain: bool ? ["full", "full"] : ["full", "shift"], dtypes: [], bool, out: "same", grid: 1, grad: false,
  })),
  // selection and identity
  {
    name: "where", fn: (c, x, y) => mx.where(c, x, y), ref: (c, x, y) => (truthy(c) ? x : y), arity: 3,
    domain: [[-1, 1], [-3, 3], [-3, 3]], grid: 1, dtypes: FLOATS, out: "same", specials: S, grad: true, gradArgs: [1, 2], bool: true,
    intRef: (c, x, y) => (c !== 0n ? x : y), intDomain: [[-1, 1], "full", "full"],
  },
  u("stopGradient", mx.stopGradient, (x) => x, [-3, 3], { out: "same", grad: false, bool: true, intRef: (x) => x, intDomain: ["full"] }),
];

/** The label of a row (its op name unless it has a variant label). */
export const labelOf = (op: OpCase) => op.label ?? op.name;

/**
 * The primitive a row stands for in the registry tests: its `primitive`, else its `name` unless it
 * is a variant (has a `label`). Rows whose name is no primitive (square, clip, ...) are skipped there.
 */
export const primitiveOf = (op: OpCase): string | null =>
  op.primitive !== undefined ? op.primitive : op.label === undefined ? op.name : null;
