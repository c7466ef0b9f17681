/**
 * @file Elementwise primitives: unary math, binary arithmetic, comparisons, logic, where, cast,
 * identity and stopGradient. Inputs always have equal shapes and dtypes (the op layer broadcasts
 * and promotes); derivative comments give the rule each one implements.
 */
import type { Array, Aval } from "../array.js";
import { isFloating, type DType } from "../dtype.js";
import {
  defPrimitive, noGradient, zeroTangent, noParams, type PrimitiveDef, type Tangent, bind, bind1,
} from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { elementwiseVmap } from "./batching.js";

/**
 * An elementwise primitive as rules and ops use it: calling it records the primitive on its
 * operands (so lax re-exports these and needs no list of its own), and `def` is the definition.
 */
export type UnaryOp = ((x: Array) => Array) & { readonly def: PrimitiveDef };
export type BinaryOp = ((a: Array, b: Array) => Array) & { readonly def: PrimitiveDef };
/** The params of a primitive that has none: one shared empty object (params are never written). */
const NO_PARAMS = Object.freeze({});
const callable = <F>(def: PrimitiveDef): F & { readonly def: PrimitiveDef } =>
  Object.assign((...xs: Array[]) => bind1(def, xs, NO_PARAMS), { def }) as unknown as F & { readonly def: PrimitiveDef };

const same = ([x]: Aval[]): Aval[] => [x];
const boolOut = ([x]: Aval[]): Aval[] => [{ shape: x.shape, dtype: "bool" }];
const c = (like: Array, v: number) => lax.constLike(like, v);

/**
 * A differentiable unary primitive from its derivative f'(x) (which may use the output y):
 * jvp is t * f'(x), vjp is ct * f'(x).
 */
function unary(name: string, deriv: ((x: Array, y: Array) => Array) | null): UnaryOp {
  const def: PrimitiveDef = defPrimitive({
    name,
    opcode: opcode(name),
    abstractEval: same,
    encode: noParams,
    jvp: deriv ? ([x], [t], _p, [y]) => [lax.mul(t!, deriv(x, y))] : zeroTangent,
    vjp: deriv ? ([x], [ct], _p, [y]) => [lax.mul(ct!, deriv(x, y))] : noGradient,
    vmap: elementwiseVmap(() => def),
  });
  return callable<(x: Array) => Array>(def);
}

function predicate(name: string): UnaryOp {
  const def: PrimitiveDef = defPrimitive({
    name, opcode: opcode(name), abstractEval: boolOut, encode: noParams,
    jvp: zeroTangent, vjp: noGradient, vmap: elementwiseVmap(() => def),
  });
  return callable<(x: Array) => Array>(def);
}

const sq = (x: Array) => lax.mul(x, x);

// d/dx of each function, given x and the output y.
export const neg = unary("neg", (x) => c(x, -1));
export const abs = unary("abs", (x) => lax.sign(x));
export const sign = unary("sign", null);
export const sqrt = unary("sqrt", (_x, y) => lax.div(c(y, 0.5), y)); // 1 / (2 sqrt x)
export const rsqrt = unary("rsqrt", (x, y) => lax.mul(c(x, -0.5), lax.div(y, x))); // -x^(-3/2) / 2
export const exp = unary("exp", (_x, y) => y);
export const expm1 = unary("expm1", (_x, y) => lax.add(y, c(y, 1)));
export const log = unary("log", (x) => lax.div(c(x, 1), x));
export const log1p = unary("log1p", (x) => lax.div(c(x, 1), lax.add(x, c(x, 1))));
export const log2 = unary("log2", (x) => lax.div(c(x, 1), lax.mul(x, c(x, Math.LN2))));
export const log10 = unary("log10", (x) => lax.div(c(x, 1), lax.mul(x, c(x, Math.LN10))));
export const sin = unary("sin", (x) => lax.cos(x));
export const cos = unary("cos", (x) => lax.neg(lax.sin(x)));
export const tan = unary("tan", (_x, y) => lax.add(c(y, 1), sq(y))); // 1 + tan^2
export const arcsin = unary("arcsin", (x) => lax.rsqrt(lax.sub(c(x, 1), sq(x))));
export const arccos = unary("arccos", (x) => lax.neg(lax.rsqrt(lax.sub(c(x, 1), sq(x)))));
export const arctan = unary("arctan", (x) => lax.div(c(x, 1), lax.add(c(x, 1), sq(x))));
export const sinh = unary("sinh", (x) => lax.cosh(x));
export const cosh = unary("cosh", (x) => lax.sinh(x));
export const tanh = unary("tanh", (_x, y) => lax.sub(c(y, 1), sq(y))); // 1 - tanh^2
export const arcsinh = unary("arcsinh", (x) => lax.rsqrt(lax.add(sq(x), c(x, 1))));
export const arccosh = unary("arccosh", (x) => lax.rsqrt(lax.sub(sq(x), c(x, 1))));
export const arctanh = unary("arctanh", (x) => lax.div(c(x, 1), lax.sub(c(x, 1), sq(x))));
export const sigmoid = unary("sigmoid", (_x, y) => lax.mul(y, lax.sub(c(y, 1), y))); // s (1 - s)
export const erf = unary("erf", (x) => lax.mul(c(x, 2 / Math.sqrt(Math.PI)), lax.exp(lax.neg(sq(x)))));
export const erfinv = unary("erfinv", (_x, y) => lax.mul(c(y, Math.sqrt(Math.PI) / 2), lax.exp(sq(y))));
// Piecewise constant: zero gradient almost everywhere, as in MLX.
export const floor = unary("floor", null);
export const ceil = unary("ceil", null);
export const round = unary("round", null);
export const logicalNot = predicate("logicalNot");
export const isnan = predicate("isnan");
export const isinf = predicate("isinf");

type Partials = (a: Array, b: Array, out: Array) => [Array | 1 | null, Array | 1 | null];

/**
 * A binary primitive from its partial derivatives (1 means the identity, null a zero):
 * jvp is da * ta + db * tb, vjp is [ct * da, ct * db].
 */
function binary(name: string, partials: Partials | null, abstractEval = same): BinaryOp {
  const scale = (t: Array, d: Array | 1 | null): Tangent => (d === null ? null : d === 1 ? t : lax.mul(t, d));
  const def: PrimitiveDef = defPrimitive({
    name,
    opcode: opcode(name),
    abstractEval,
    encode: noParams,
    jvp: partials
      ? ([a, b], [ta, tb], _p, [out]) => {
          const [da, db] = partials(a, b, out);
          const parts = [ta ? scale(ta, da) : null, tb ? scale(tb, db) : null].filter((t): t is Array => t !== null);
          return [parts.length === 0 ? null : parts.length === 1 ? parts[0] : lax.add(parts[0], parts[1])];
        }
      : zeroTangent,
    vjp: partials
      ? ([a, b], [ct], _p, [out]) => {
          const [da, db] = partials(a, b, out);
          return [scale(ct!, da), scale(ct!, db)];
        }
      : noGradient,
    vmap: elementwiseVmap(() => def),
  });
  return callable<(a: Array, b: Array) => Array>(def);
}

// Ties of maximum/minimum split the gradient evenly between the operands.
const tieSplit = (win: Array, tie: Array, like: Array) =>
  lax.where(win, c(like, 1), lax.where(tie, c(like, 0.5), c(like, 0)));

export const add = binary("add", () => [1, 1]);
export const sub = binary("sub", (a) => [1, c(a, -1)]);
export const mul = binary("mul", (a, b) => [b, a]);
export const div = binary("div", (_a, b, out) => [lax.div(c(b, 1), b), lax.neg(lax.div(out, b))]);
// d/da a^b = b a^(b-1), d/db a^b = a^b log a; both written to be 0 (not 0 * inf) where they vanish.
export const pow = binary("pow", (a, b, out) => [
  lax.where(lax.equal(b, c(b, 0)), c(a, 0), lax.mul(b, lax.pow(a, lax.sub(b, c(b, 1))))),
  lax.where(lax.equal(a, c(a, 0)), c(a, 0), lax.mul(out, lax.log(a))),
]);
export const maximum = binary("maximum", (a, b) => {
  const da = tieSplit(lax.greater(a, b), lax.equal(a, b), a);
  return [da, lax.sub(c(a, 1), da)];
});
export const minimum = binary("minimum", (a, b) => {
  const da = tieSplit(lax.less(a, b), lax.equal(a, b), a);
  return [da, lax.sub(c(a, 1), da)];
});
export const arctan2 = binary("arctan2", (a, b) => {
  const den = lax.add(sq(a), sq(b));
  return [lax.div(b, den), lax.neg(lax.div(a, den))];
});
// remainder(a, b) = a - floor(a / b) * b
export const remainder = binary("remainder", (a, b) => [1, lax.neg(lax.floorDivide(a, b))]);
export const floorDivide = binary("floorDivide", null);
// d/da log(e^a + e^b) = e^(a - out)
export const logaddexp = binary("logaddexp", (a, b, out) => [lax.exp(lax.sub(a, out)), lax.exp(lax.sub(b, out))]);

/** divmod(a, b) = [floorDivide(a, b), remainder(a, b)] in one pass: a node with two outputs. */
export const divmod: PrimitiveDef = defPrimitive({
  name: "divmod",
  opcode: opcode("divmod"),
  abstractEval: ([a]) => [a, a],
  encode: noParams,
  // The quotient is piecewise constant; the remainder is a - q b, so d = da - q db.
  jvp: ([a], [ta, tb], _p, [q]) => {
    if (!ta && !tb) return [null, null];
    const parts = [ta, tb ? lax.neg(lax.mul(tb, q)) : null].filter((t): t is Array => !!t);
    return [null, parts.length === 2 ? lax.add(parts[0], parts[1]) : parts[0]];
  },
  vjp: (_primals, [, ctr], _p, [q]) => (ctr ? [ctr, lax.neg(lax.mul(ctr, q))] : [null, null]),
  vmap: elementwiseVmap(() => divmod),
});

const nonDiff = (name: string) => binary(name, null);
const compare = (name: string) => binary(name, null, boolOut);
export const logicalAnd = nonDiff("logicalAnd");
export const logicalOr = nonDiff("logicalOr");
export const bitwiseAnd = nonDiff("bitwiseAnd");
export const bitwiseOr = nonDiff("bitwiseOr");
export const bitwiseXor = nonDiff("bitwiseXor");
export const leftShift = nonDiff("leftShift");
export const rightShift = nonDiff("rightShift");
export const equal = compare("equal");
export const notEqual = compare("notEqual");
export const less = compare("less");
export const lessEqual = compare("lessEqual");
export const greater = compare("greater");
export const greaterEqual = compare("greaterEqual");

/** where(cond, a, b): cond is bool, a and b share the output's dtype. */
export const where: PrimitiveDef = defPrimitive({
  name: "where",
  opcode: opcode("where"),
  abstractEval: ([, a]) => [a],
  encode: noParams,
  jvp: ([cond, a], [, ta, tb]) => {
    if (!ta && !tb) return [null];
    return [lax.where(cond, ta ?? lax.zerosLike(a), tb ?? lax.zerosLike(a))];
  },
  vjp: ([cond], [ct]) => {
    const z = lax.zerosLike(ct!);
    return [null, lax.where(cond, ct!, z), lax.where(cond, z, ct!)];
  },
  vmap: elementwiseVmap(() => where),
});

export const cast: PrimitiveDef<{ dtype: DType }> = defPrimitive({
  name: "cast",
  opcode: opcode("cast"),
  abstractEval: ([x], { dtype }) => [{ shape: x.shape, dtype }],
  encode: noParams,
  jvp: (_p, [t], { dtype }) => [t && isFloating(dtype) ? lax.cast(t, dtype) : null],
  vjp: ([x], [ct]) => [isFloating(x.dtype) ? lax.cast(ct!, x.dtype) : null],
  vmap: ([x], [d], params) => [[bind1(cast, [x], params)], [d]],
});

/** The identity: a new node for the same value (transforms trace through it). */
export const identity: PrimitiveDef = defPrimitive({
  name: "identity",
  opcode: opcode("identity"),
  abstractEval: same,
  encode: noParams,
  jvp: (_p, [t]) => [t],
  vjp: (_p, [ct]) => [ct],
  vmap: ([x], [d]) => [[bind1(identity, [x], {})], [d]],
});

/** The identity whose derivative is zero. */
export const stopGradient: PrimitiveDef = defPrimitive({
  name: "stopGradient",
  opcode: opcode("identity"),
  abstractEval: same,
  encode: noParams,
  jvp: zeroTangent,
  vjp: noGradient,
  vmap: ([x], [d]) => [bind(stopGradient, [x], {}), [d]],
});
