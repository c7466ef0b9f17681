/**
 * @file Elementwise ops: validation, promotion (JS scalars are weak) and broadcasting in front of
 * the elementwise primitives, plus the composites (square, reciprocal, clip, isfinite, ...).
 */
import { Array, isArray, type ArrayLike } from "../array.js";
import { isFloating, isInteger, toFloating, type DType } from "../dtype.js";
import { DTypeError } from "../errors.js";
import { bind, bind1, type PrimitiveDef } from "../primitive.js";
import * as P from "../primitives/index.js";
import * as lax from "../lax.js";
import { asArray, broadcastShapes, checkOperand, fmtGot, prepare, resultType, withDevice } from "./util.js";
import type { DeviceOptions } from "../device.js";

type Unary = (x: ArrayLike, options?: DeviceOptions) => Array;
type Binary = (a: ArrayLike, b: ArrayLike, options?: DeviceOptions) => Array;

/** A unary op computed in floating point (integers and bools become float32). */
function floatUnary(name: string, op: P.UnaryOp): Unary {
  return (x, options = {}) => withDevice(name, options, () => {
    const [a] = prepare(name, [x], toFloating(resultType([x])));
    return op(a);
  });
}
/** A unary op that keeps its operand's dtype. */
function sameUnary(name: string, op: P.UnaryOp, allowBool = true): Unary {
  return (x, options = {}) => withDevice(name, options, () => {
    const [a] = prepare(name, [x]);
    if (!allowBool && a.dtype === "bool") throw new DTypeError(`${name}: not defined for bool arrays (the operand must be numeric); got dtype bool`);
    return op(a);
  });
}
/**
 * A binary op on the promoted type (optionally forced to floating point); `allowBool` false makes
 * bool operands a DTypeError at the call (the kernel has no bool version).
 */
function binary(name: string, op: P.BinaryOp, floating = false, allowBool = true): Binary {
  // (No default `options = {}`, and one list of the operands: fewer objects per recorded op.)
  return (a, b, options) => withDevice(name, options, () => {
    checkOperand(name, a, 1);
    checkOperand(name, b, 2);
    const operands = [a, b];
    const t = resultType(operands);
    if (!allowBool && t === "bool") {
      throw new DTypeError(`${name}: operands must be numeric (not both bool); got bool (convert with astype first)`);
    }
    const [x, y] = prepare(name, operands, floating ? toFloating(t) : t);
    return op(x, y);
  });
}
function integerBinary(name: string, op: P.BinaryOp, allowBool: boolean): Binary {
  return (a, b, options = {}) => withDevice(name, options, () => {
    checkOperand(name, a, 1);
    checkOperand(name, b, 2);
    const t = resultType([a, b]);
    if (!(isInteger(t) || (allowBool && t === "bool"))) {
      throw new DTypeError(`${name}: expected integer${allowBool ? " or bool" : ""} operands; got ${t}`);
    }
    const [x, y] = prepare(name, [a, b], t);
    return op(x, y);
  });
}
function logical(name: string, op: P.BinaryOp): Binary {
  return (a, b, options = {}) => withDevice(name, options, () => {
    const [x, y] = prepare(name, [a, b], "bool");
    return op(x, y);
  });
}

/**
 * a + b elementwise. Like every binary op, it broadcasts its operands and promotes their dtypes;
 * JS numbers are weak (`x.add(1)` keeps x's dtype) and are accepted for either operand.
 * @example
 * mx.add(mx.array([1, 2, 3]), 10).tolist();      // [11, 12, 13]
 * mx.add(mx.ones([2, 1]), mx.arange(3)).shape;   // [2, 3]
 */
export const add = binary("add", P.add);
/** a - b elementwise (broadcasting and promoting, as {@link add}). */
export const sub = binary("sub", P.sub, false, false);
/** Another name of {@link sub}. */
export const subtract = sub;
/** a * b elementwise (broadcasting and promoting, as {@link add}). */
export const mul = binary("mul", P.mul);
/** Another name of {@link mul}. */
export const multiply = mul;
/** True division: integer operands give float32, as in NumPy and MLX. */
export const div = binary("div", P.div, true);
/** Another name of {@link div}. */
export const divide = div;
/** floor(a / b) elementwise; integers round toward negative infinity too (NumPy's rule). */
export const floorDivide = binary("floorDivide", P.floorDivide, false, false);
/** a - b * floorDivide(a, b): the remainder takes the sign of b, as NumPy's `%`. */
export const remainder = binary("remainder", P.remainder, false, false);
/** a raised to the power b, elementwise. */
export const pow = binary("pow", P.pow, false, false);
/** Another name of {@link pow}. */
export const power = pow;
/** The larger of a and b, elementwise (NaN if either is NaN). */
export const maximum = binary("maximum", P.maximum);
/** The smaller of a and b, elementwise (NaN if either is NaN). */
export const minimum = binary("minimum", P.minimum);
/** The angle of the point (b, a): arctan(a / b) in the quadrant of the signs of a and b (in floating point). */
export const arctan2 = binary("arctan2", P.arctan2, true);
/** log(exp(a) + exp(b)), computed without overflow (in floating point). */
export const logaddexp = binary("logaddexp", P.logaddexp, true);

/**
 * a == b elementwise, as a bool array; the operands are broadcast and promoted first. notEqual,
 * less, lessEqual, greater and greaterEqual work the same way.
 * @example
 * mx.equal(mx.array([1, 2, 3]), 2).tolist(); // [false, true, false]
 */
export const equal = binary("equal", P.equal);
/** a != b elementwise, as a bool array. */
export const notEqual = binary("notEqual", P.notEqual);
/** a < b elementwise, as a bool array. */
export const less = binary("less", P.less);
/** a <= b elementwise, as a bool array. */
export const lessEqual = binary("lessEqual", P.lessEqual);
/** a > b elementwise, as a bool array. */
export const greater = binary("greater", P.greater);
/** a >= b elementwise, as a bool array. */
export const greaterEqual = binary("greaterEqual", P.greaterEqual);
/** a AND b elementwise, with both operands converted to bool. */
export const logicalAnd = logical("logicalAnd", P.logicalAnd);
/** a OR b elementwise, with both operands converted to bool. */
export const logicalOr = logical("logicalOr", P.logicalOr);
/** Bitwise AND of integer or bool operands. */
export const bitwiseAnd = integerBinary("bitwiseAnd", P.bitwiseAnd, true);
/** Bitwise OR of integer or bool operands. */
export const bitwiseOr = integerBinary("bitwiseOr", P.bitwiseOr, true);
/** Bitwise XOR of integer or bool operands. */
export const bitwiseXor = integerBinary("bitwiseXor", P.bitwiseXor, true);
/** a shifted left by b bits (integer operands). */
export const leftShift = integerBinary("leftShift", P.leftShift, false);
/** a shifted right by b bits (integer operands; arithmetic for signed types). */
export const rightShift = integerBinary("rightShift", P.rightShift, false);

/** -x elementwise, in x's dtype (not defined for bool). */
export const neg = sameUnary("neg", P.neg, false);
/** Another name of {@link neg}. */
export const negative = neg;
/** |x| elementwise, in x's dtype (a bool array is returned as it is). */
export const abs = (x: ArrayLike, options: DeviceOptions = {}): Array => withDevice("abs", options, () => {
  const [a] = prepare("abs", [x]);
  return a.dtype === "bool" ? a : P.abs(a);
});
/** -1, 0 or 1 by the sign of x, in x's dtype (a bool array is returned as it is). */
export const sign = (x: ArrayLike, options: DeviceOptions = {}): Array => withDevice("sign", options, () => {
  const [a] = prepare("sign", [x]);
  return a.dtype === "bool" ? a : P.sign(a);
});
/** The square root, elementwise (in floating point, as {@link exp}). */
export const sqrt = floatUnary("sqrt", P.sqrt);
/** 1 / sqrt(x), elementwise (in floating point). */
export const rsqrt = floatUnary("rsqrt", P.rsqrt);
/**
 * e^x elementwise. Like every transcendental op (sqrt, log, sin, tanh, sigmoid, erf, ...), it
 * computes in floating point: integer and bool inputs give float32, float inputs keep their dtype.
 * @example
 * mx.exp(mx.array([0, 1])).tolist(); // [1, 2.7182817459106445] (float32)
 */
export const exp = floatUnary("exp", P.exp);
/** exp(x) - 1, accurate for x near 0 (in floating point). */
export const expm1 = floatUnary("expm1", P.expm1);
/** The natural logarithm, elementwise (in floating point). */
export const log = floatUnary("log", P.log);
/** log(1 + x), accurate for x near 0 (in floating point). */
export const log1p = floatUnary("log1p", P.log1p);
/** The base-2 logarithm, elementwise (in floating point). */
export const log2 = floatUnary("log2", P.log2);
/** The base-10 logarithm, elementwise (in floating point). */
export const log10 = floatUnary("log10", P.log10);
/** The sine of x (radians), elementwise (in floating point). */
export const sin = floatUnary("sin", P.sin);
/** The cosine of x (radians), elementwise (in floating point). */
export const cos = floatUnary("cos", P.cos);
/** The tangent of x (radians), elementwise (in floating point). */
export const tan = floatUnary("tan", P.tan);
/** The inverse sine, in radians (in floating point). */
export const arcsin = floatUnary("arcsin", P.arcsin);
/** The inverse cosine, in radians (in floating point). */
export const arccos = floatUnary("arccos", P.arccos);
/** The inverse tangent, in radians (in floating point). */
export const arctan = floatUnary("arctan", P.arctan);
/** The hyperbolic sine, elementwise (in floating point). */
export const sinh = floatUnary("sinh", P.sinh);
/** The hyperbolic cosine, elementwise (in floating point). */
export const cosh = floatUnary("cosh", P.cosh);
/** The hyperbolic tangent, elementwise (in floating point). */
export const tanh = floatUnary("tanh", P.tanh);
/** The inverse hyperbolic sine (in floating point). */
export const arcsinh = floatUnary("arcsinh", P.arcsinh);
/** The inverse hyperbolic cosine (in floating point). */
export const arccosh = floatUnary("arccosh", P.arccosh);
/** The inverse hyperbolic tangent (in floating point). */
export const arctanh = floatUnary("arctanh", P.arctanh);
/** The logistic function 1 / (1 + exp(-x)), elementwise (in floating point). */
export const sigmoid = floatUnary("sigmoid", P.sigmoid);
/** The error function, elementwise (in floating point). */
export const erf = floatUnary("erf", P.erf);
/** The inverse of {@link erf}, defined on (-1, 1) (in floating point). */
export const erfinv = floatUnary("erfinv", P.erfinv);

/** floor, ceil and round leave integer arrays as they are. */
function rounding(name: string, op: P.UnaryOp): Unary {
  return (x, options = {}) => withDevice(name, options, () => {
    const [a] = prepare(name, [x]);
    return isFloating(a.dtype) ? op(a) : a;
  });
}
/** The largest integer not above x, elementwise (integer arrays are returned as they are). */
export const floor = rounding("floor", P.floor);
/** The smallest integer not below x, elementwise (integer arrays are returned as they are). */
export const ceil = rounding("ceil", P.ceil);
/** Rounds half to even, as NumPy. */
export const round = rounding("round", P.round);

/** x * x elementwise, in x's dtype. */
export const square = (x: ArrayLike, options: DeviceOptions = {}): Array => withDevice("square", options, () => {
  const [a] = prepare("square", [x]);
  return lax.mul(a, a);
});
/** 1 / x elementwise (integers give float32, as {@link div}). */
export const reciprocal = (x: ArrayLike, options: DeviceOptions = {}): Array => withDevice("reciprocal", options, () => div(1, x));

/** NOT x elementwise, with x converted to bool. */
export const logicalNot = (x: ArrayLike, options: DeviceOptions = {}): Array => withDevice("logicalNot", options, () => {
  const [a] = prepare("logicalNot", [x], "bool");
  return P.logicalNot(a);
});

function floatTest(name: string, op: P.UnaryOp): Unary {
  return (x, options = {}) => withDevice(name, options, () => {
    const [a] = prepare(name, [x]);
    return isFloating(a.dtype) ? op(a) : lax.broadcastTo(lax.full([], 0, "bool"), a.shape);
  });
}
/** True where x is NaN (never for integer and bool arrays). */
export const isnan = floatTest("isnan", P.isnan);
/** True where x is +inf or -inf (never for integer and bool arrays). */
export const isinf = floatTest("isinf", P.isinf);
/** True where x is neither NaN nor infinite. */
export const isfinite = (x: ArrayLike, options: DeviceOptions = {}): Array =>
  withDevice("isfinite", options, () => logicalNot(logicalOr(isnan(x), isinf(x))));

/**
 * Chooses a where cond is true, b elsewhere (cond is converted to bool); the three operands are
 * broadcast together, a and b promoted.
 * @example
 * mx.where(mx.array([true, false]), mx.array([1, 2]), 0).tolist(); // [1, 0]
 */
export function where(cond: ArrayLike, a: ArrayLike, b: ArrayLike, options: DeviceOptions = {}): Array {
  return withDevice("where", options, () => {
    checkOperand("where", cond, 1);
    checkOperand("where", a, 2);
    checkOperand("where", b, 3);
    const t = resultType([a, b]);
    const xs = [asArray(cond, "bool", "where"), asArray(a, t, "where"), asArray(b, t, "where")];
    const shape = broadcastShapes("where", xs.map((v) => v.shape));
    return bind1(P.where, xs.map((v) => lax.broadcastTo(v, shape)), {});
  });
}

/** Limits values to [min, max]; either bound may be null. */
export function clip(x: ArrayLike, min: ArrayLike | null, max: ArrayLike | null, options: DeviceOptions = {}): Array {
  return withDevice("clip", options, () => {
    checkOperand("clip", x, 1);
    if (min !== null) checkOperand("clip", min, 2);
    if (max !== null) checkOperand("clip", max, 3);
    if (min === null && max === null) throw new TypeError("clip: at least one of min and max must be given");
    let y: Array = isArray(x) ? x : prepare("clip", [x])[0];
    if (min !== null) y = maximum(y, min);
    if (max !== null) y = minimum(y, max);
    return y;
  });
}

const FINITE_MAX: Partial<Record<DType, number>> = {
  float16: 65504, bfloat16: 3.3895313892515355e38, float32: 3.4028234663852886e38, float64: Number.MAX_VALUE,
};
/** Replaces NaN with `nan` (0) and infinities with `posinf`/`neginf` (the dtype's extremes). */
export function nanToNum(x: ArrayLike, options: { nan?: number; posinf?: number; neginf?: number } & DeviceOptions = {}): Array {
  return withDevice("nanToNum", options, () => {
    for (const k of ["nan", "posinf", "neginf"] as const) {
      const v = options?.[k];
      if (v !== undefined && typeof v !== "number") throw new TypeError(`nanToNum: ${k} must be a number; got ${fmtGot(v)}`);
    }
    const [a] = prepare("nanToNum", [x]);
    if (!isFloating(a.dtype)) return a;
    const big = FINITE_MAX[a.dtype]!;
    const { nan = 0, posinf = big, neginf = -big } = (options ?? {}) as { nan?: number; posinf?: number; neginf?: number };
    let y = where(isnan(a), nan, a);
    y = where(logicalAnd(isinf(y), greater(y, 0)), posinf, y);
    return where(logicalAnd(isinf(y), less(y, 0)), neginf, y);
  }, ["nan", "posinf", "neginf"]);
}

/**
 * `[floorDivide(a, b), remainder(a, b)]`, computed together.
 * @example
 * const [q, r] = mx.divmod(mx.array([7, -7]), 2); // q = [3, -4], r = [1, 1]
 */
export function divmod(a: ArrayLike, b: ArrayLike, options: DeviceOptions = {}): [Array, Array] {
  return withDevice("divmod", options, () => {
    checkOperand("divmod", a, 1);
    checkOperand("divmod", b, 2);
    const t = resultType([a, b]);
    if (t === "bool") throw new DTypeError("divmod: not defined for bool operands");
    const [x, y] = prepare("divmod", [a, b], t);
    const [q, r] = bind(P.divmod, [x, y], {});
    return [q, r];
  });
}

/** The identity, with a zero derivative. */
export function stopGradient(x: ArrayLike, options: DeviceOptions = {}): Array {
  return withDevice("stopGradient", options, () => {
    const [a] = prepare("stopGradient", [x]);
    return bind1(P.stopGradient, [a], {});
  });
}
