/**
 * @file The methods of Array: each forwards to the op of the same name with the array first
 * (`a.add(b)` is `mx.add(a, b)`). Kept apart from array.ts so the class carries no math.
 */
import { Array, type ArrayLike } from "./array.js";
import type { DType } from "./dtype.js";
import * as E from "./ops/elementwise.js";
import * as R from "./ops/reduce.js";
import * as S from "./ops/shape.js";
import { matmul } from "./ops/linalg.js";
import { index, type IndexEntry } from "./ops/indexing.js";

type Axis = number | number[] | null;

declare module "./array.js" {
  interface Array {
    add(b: ArrayLike): Array; sub(b: ArrayLike): Array; subtract(b: ArrayLike): Array;
    mul(b: ArrayLike): Array; multiply(b: ArrayLike): Array; div(b: ArrayLike): Array; divide(b: ArrayLike): Array;
    floorDivide(b: ArrayLike): Array; remainder(b: ArrayLike): Array; pow(b: ArrayLike): Array;
    maximum(b: ArrayLike): Array; minimum(b: ArrayLike): Array; arctan2(b: ArrayLike): Array; logaddexp(b: ArrayLike): Array;
    equal(b: ArrayLike): Array; notEqual(b: ArrayLike): Array; less(b: ArrayLike): Array; lessEqual(b: ArrayLike): Array;
    greater(b: ArrayLike): Array; greaterEqual(b: ArrayLike): Array; logicalAnd(b: ArrayLike): Array; logicalOr(b: ArrayLike): Array;
    bitwiseAnd(b: ArrayLike): Array; bitwiseOr(b: ArrayLike): Array; bitwiseXor(b: ArrayLike): Array;
    leftShift(b: ArrayLike): Array; rightShift(b: ArrayLike): Array;
    neg(): Array; negative(): Array; abs(): Array; sign(): Array; square(): Array; sqrt(): Array; rsqrt(): Array; exp(): Array;
    expm1(): Array; log(): Array; log1p(): Array; log2(): Array; log10(): Array; sin(): Array; cos(): Array; tan(): Array;
    arcsin(): Array; arccos(): Array; arctan(): Array; sinh(): Array; cosh(): Array; tanh(): Array; arcsinh(): Array;
    arccosh(): Array; arctanh(): Array; sigmoid(): Array; erf(): Array; erfinv(): Array; floor(): Array; ceil(): Array;
    round(): Array; reciprocal(): Array; isnan(): Array; isinf(): Array; isfinite(): Array; logicalNot(): Array;
    stopGradient(): Array;
    clip(min: ArrayLike | null, max: ArrayLike | null): Array;
    nanToNum(options?: { nan?: number; posinf?: number; neginf?: number }): Array;
    sum(axis?: Axis, options?: R.ReduceOptions): Array; prod(axis?: Axis, options?: R.ReduceOptions): Array;
    mean(axis?: Axis, options?: R.ReduceOptions): Array; max(axis?: Axis, options?: R.ReduceOptions): Array;
    min(axis?: Axis, options?: R.ReduceOptions): Array; all(axis?: Axis, options?: R.ReduceOptions): Array;
    any(axis?: Axis, options?: R.ReduceOptions): Array; var(axis?: Axis, options?: R.VarOptions): Array;
    std(axis?: Axis, options?: R.VarOptions): Array; logsumexp(axis?: Axis, options?: R.ReduceOptions): Array;
    argmax(axis?: number | null, options?: R.ReduceOptions): Array; argmin(axis?: number | null, options?: R.ReduceOptions): Array;
    softmax(axis?: number | number[]): Array; logSoftmax(axis?: number | number[]): Array;
    reshape(shape: number[] | number): Array; flatten(startAxis?: number, endAxis?: number): Array;
    transpose(axes?: number[]): Array; swapaxes(a: number, b: number): Array; moveaxis(src: number, dst: number): Array;
    expandDims(axis: number | number[]): Array; squeeze(axis?: number | number[]): Array;
    broadcastTo(shape: number[]): Array; split(indicesOrSections: number | number[], axis?: number): Array[];
    flip(axis?: number | number[]): Array;
    tile(reps: number | number[]): Array; repeat(repeats: number, axis?: number): Array;
    pad(widths: number | [number, number] | [number, number][], options?: S.PadOptions): Array;
    roll(shift: number | number[], axis?: number | number[]): Array;
    matmul(b: Array): Array; astype(dtype: DType): Array; index(...spec: IndexEntry[]): Array;
    /** The transpose with all axes reversed. */
    readonly T: Array;
  }
}

const proto = Array.prototype as any;
const forward = (ns: Record<string, unknown>, names: string[]) => {
  for (const n of names) proto[n] = function (this: Array, ...args: unknown[]) { return (ns[n] as Function)(this, ...args); };
};
forward(E, [
  "add", "sub", "subtract", "mul", "multiply", "div", "divide", "floorDivide", "remainder", "pow", "maximum", "minimum",
  "arctan2", "logaddexp", "equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual", "logicalAnd", "logicalOr",
  "bitwiseAnd", "bitwiseOr", "bitwiseXor", "leftShift", "rightShift", "neg", "negative", "abs", "sign", "square", "sqrt",
  "rsqrt", "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh",
  "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "sigmoid", "erf", "erfinv", "floor", "ceil", "round", "reciprocal",
  "isnan", "isinf", "isfinite", "logicalNot", "stopGradient", "clip", "nanToNum",
]);
forward(R, ["sum", "prod", "mean", "max", "min", "all", "any", "std", "logsumexp", "argmax", "argmin", "softmax", "logSoftmax"]);
proto.var = function (this: Array, ...args: unknown[]) { return (R.variance as Function)(this, ...args); };
forward(S, ["reshape", "flatten", "transpose", "swapaxes", "moveaxis", "expandDims", "squeeze", "broadcastTo", "split", "flip", "astype",
  "tile", "repeat", "pad", "roll"]);
proto.matmul = function (this: Array, b: Array) { return matmul(this, b); };
proto.index = function (this: Array, ...spec: IndexEntry[]) { return index(this, ...spec); };
Object.defineProperty(proto, "T", { get(this: Array) { return S.transpose(this); } });
