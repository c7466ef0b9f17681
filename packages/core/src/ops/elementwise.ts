/**
 * @file Elementwise ops: validation, promotion (JS scalars are weak) and broadcasting in front of
 * the elementwise primitives, plus the composites (square, reciprocal, clip, isfinite, ...).
 */
import { Array, isArray, type ArrayLike } from "../array.js";
import { isFloating, isInteger, toFloating, type DType } from "../dtype.js";
import { DTypeError } from "../errors.js";
import { bind1, type PrimitiveDef } from "../primitive.js";
import * as P from "../primitives/index.js";
import * as lax from "../lax.js";
import { asArray, broadcastShapes, checkOperand, prepare, resultType } from "./util.js";

type Unary = (x: ArrayLike) => Array;
type Binary = (a: ArrayLike, b: ArrayLike) => Array;

/** A unary op computed in floating point (integers and bools become float32). */
function floatUnary(name: string, def: PrimitiveDef<any>): Unary {
  return (x) => {
    const [a] = prepare(name, [x], toFloating(resultType([x])));
    return bind1(def, [a], {});
  };
}
/** A unary op that keeps its operand's dtype. */
function sameUnary(name: string, def: PrimitiveDef<any>, allowBool = true): Unary {
  return (x) => {
    const [a] = prepare(name, [x]);
    if (!allowBool && a.dtype === "bool") throw new DTypeError(`${name}: not defined for bool arrays`);
    return bind1(def, [a], {});
  };
}
/** A binary op on the promoted type (optionally forced to floating point). */
function binary(name: string, def: PrimitiveDef<any>, floating = false): Binary {
  return (a, b) => {
    checkOperand(name, a, 1);
    checkOperand(name, b, 2);
    const t = resultType([a, b]);
    const [x, y] = prepare(name, [a, b], floating ? toFloating(t) : t);
    return bind1(def, [x, y], {});
  };
}
function integerBinary(name: string, def: PrimitiveDef<any>, allowBool: boolean): Binary {
  return (a, b) => {
    checkOperand(name, a, 1);
    checkOperand(name, b, 2);
    const t = resultType([a, b]);
    if (!(isInteger(t) || (allowBool && t === "bool"))) {
      throw new DTypeError(`${name}: expected integer${allowBool ? " or bool" : ""} operands; got ${t}`);
    }
    const [x, y] = prepare(name, [a, b], t);
    return bind1(def, [x, y], {});
  };
}
function logical(name: string, def: PrimitiveDef<any>): Binary {
  return (a, b) => {
    const [x, y] = prepare(name, [a, b], "bool");
    return bind1(def, [x, y], {});
  };
}

export const add = binary("add", P.add);
export const sub = binary("sub", P.sub);
export const subtract = sub;
export const mul = binary("mul", P.mul);
export const multiply = mul;
/** True division: integer operands give float32, as in NumPy and MLX. */
export const div = binary("div", P.div, true);
export const divide = div;
export const floorDivide = binary("floorDivide", P.floorDivide);
export const remainder = binary("remainder", P.remainder);
export const pow = binary("pow", P.pow);
export const power = pow;
export const maximum = binary("maximum", P.maximum);
export const minimum = binary("minimum", P.minimum);
export const arctan2 = binary("arctan2", P.arctan2, true);
export const logaddexp = binary("logaddexp", P.logaddexp, true);

export const equal = binary("equal", P.equal);
export const notEqual = binary("notEqual", P.notEqual);
export const less = binary("less", P.less);
export const lessEqual = binary("lessEqual", P.lessEqual);
export const greater = binary("greater", P.greater);
export const greaterEqual = binary("greaterEqual", P.greaterEqual);
export const logicalAnd = logical("logicalAnd", P.logicalAnd);
export const logicalOr = logical("logicalOr", P.logicalOr);
export const bitwiseAnd = integerBinary("bitwiseAnd", P.bitwiseAnd, true);
export const bitwiseOr = integerBinary("bitwiseOr", P.bitwiseOr, true);
export const bitwiseXor = integerBinary("bitwiseXor", P.bitwiseXor, true);
export const leftShift = integerBinary("leftShift", P.leftShift, false);
export const rightShift = integerBinary("rightShift", P.rightShift, false);

export const neg = sameUnary("neg", P.neg, false);
export const negative = neg;
export const abs = (x: ArrayLike): Array => {
  const [a] = prepare("abs", [x]);
  return a.dtype === "bool" ? a : bind1(P.abs, [a], {});
};
export const sign = (x: ArrayLike): Array => {
  const [a] = prepare("sign", [x]);
  return a.dtype === "bool" ? a : bind1(P.sign, [a], {});
};
export const sqrt = floatUnary("sqrt", P.sqrt);
export const rsqrt = floatUnary("rsqrt", P.rsqrt);
export const exp = floatUnary("exp", P.exp);
export const expm1 = floatUnary("expm1", P.expm1);
export const log = floatUnary("log", P.log);
export const log1p = floatUnary("log1p", P.log1p);
export const log2 = floatUnary("log2", P.log2);
export const log10 = floatUnary("log10", P.log10);
export const sin = floatUnary("sin", P.sin);
export const cos = floatUnary("cos", P.cos);
export const tan = floatUnary("tan", P.tan);
export const arcsin = floatUnary("arcsin", P.arcsin);
export const arccos = floatUnary("arccos", P.arccos);
export const arctan = floatUnary("arctan", P.arctan);
export const sinh = floatUnary("sinh", P.sinh);
export const cosh = floatUnary("cosh", P.cosh);
export const tanh = floatUnary("tanh", P.tanh);
export const arcsinh = floatUnary("arcsinh", P.arcsinh);
export const arccosh = floatUnary("arccosh", P.arccosh);
export const arctanh = floatUnary("arctanh", P.arctanh);
export const sigmoid = floatUnary("sigmoid", P.sigmoid);
export const erf = floatUnary("erf", P.erf);
export const erfinv = floatUnary("erfinv", P.erfinv);

/** floor, ceil and round leave integer arrays as they are. */
function rounding(name: string, def: PrimitiveDef<any>): Unary {
  return (x) => {
    const [a] = prepare(name, [x]);
    return isFloating(a.dtype) ? bind1(def, [a], {}) : a;
  };
}
export const floor = rounding("floor", P.floor);
export const ceil = rounding("ceil", P.ceil);
/** Rounds half to even, as NumPy. */
export const round = rounding("round", P.round);

export const square = (x: ArrayLike): Array => {
  const [a] = prepare("square", [x]);
  return lax.mul(a, a);
};
export const reciprocal = (x: ArrayLike): Array => div(1, x);

export const logicalNot = (x: ArrayLike): Array => {
  const [a] = prepare("logicalNot", [x], "bool");
  return bind1(P.logicalNot, [a], {});
};

function floatTest(name: string, def: PrimitiveDef<any>): Unary {
  return (x) => {
    const [a] = prepare(name, [x]);
    return isFloating(a.dtype) ? bind1(def, [a], {}) : lax.broadcastTo(lax.full([], 0, "bool"), a.shape);
  };
}
export const isnan = floatTest("isnan", P.isnan);
export const isinf = floatTest("isinf", P.isinf);
export const isfinite = (x: ArrayLike): Array => logicalNot(logicalOr(isnan(x), isinf(x)));

/** Chooses a where cond is true, b elsewhere (cond is converted to bool). */
export function where(cond: ArrayLike, a: ArrayLike, b: ArrayLike): Array {
  checkOperand("where", cond, 1);
  checkOperand("where", a, 2);
  checkOperand("where", b, 3);
  const t = resultType([a, b]);
  const xs = [asArray(cond, "bool"), asArray(a, t), asArray(b, t)];
  const shape = broadcastShapes("where", xs.map((v) => v.shape));
  return bind1(P.where, xs.map((v) => lax.broadcastTo(v, shape)), {});
}

/** Limits values to [min, max]; either bound may be null. */
export function clip(x: ArrayLike, min: ArrayLike | null, max: ArrayLike | null): Array {
  checkOperand("clip", x, 1);
  if (min !== null) checkOperand("clip", min, 2);
  if (max !== null) checkOperand("clip", max, 3);
  if (min === null && max === null) throw new TypeError("clip: at least one of min and max must be given");
  let y: Array = isArray(x) ? x : prepare("clip", [x])[0];
  if (min !== null) y = maximum(y, min);
  if (max !== null) y = minimum(y, max);
  return y;
}

const FINITE_MAX: Partial<Record<DType, number>> = {
  float16: 65504, bfloat16: 3.3895313892515355e38, float32: 3.4028234663852886e38, float64: Number.MAX_VALUE,
};
/** Replaces NaN with `nan` (0) and infinities with `posinf`/`neginf` (the dtype's extremes). */
export function nanToNum(x: ArrayLike, options: { nan?: number; posinf?: number; neginf?: number } = {}): Array {
  const [a] = prepare("nanToNum", [x]);
  if (!isFloating(a.dtype)) return a;
  const big = FINITE_MAX[a.dtype]!;
  const { nan = 0, posinf = big, neginf = -big } = options;
  let y = where(isnan(a), nan, a);
  y = where(logicalAnd(isinf(y), greater(y, 0)), posinf, y);
  return where(logicalAnd(isinf(y), less(y, 0)), neginf, y);
}

/** The identity, with a zero derivative. */
export function stopGradient(x: ArrayLike): Array {
  const [a] = prepare("stopGradient", [x]);
  return bind1(P.stopGradient, [a], {});
}
