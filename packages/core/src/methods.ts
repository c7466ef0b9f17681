/**
 * @file The methods of Array: each forwards to the op of the same name with the array first
 * (`a.add(b)` is `mx.add(a, b)`). Kept apart from array.ts so the class carries no math. The
 * types are derived from the ops' own signatures: every elementwise op is a method without being
 * listed, and the reductions and shape ops are each listed once, for the type and the runtime.
 */
import { Array } from "./array.js";
import * as E from "./ops/elementwise.js";
import * as R from "./ops/reduce.js";
import * as S from "./ops/shape.js";
import { matmul } from "./ops/linalg.js";
import { index, type IndexEntry } from "./ops/indexing.js";

/** An op taking the array first, as a method (that parameter dropped). */
type AsMethod<F> = F extends (self: never, ...rest: infer A) => infer R ? (...args: A) => R : never;
type MethodsOf<M, K extends keyof M> = { [N in K]: AsMethod<M[N]> };
type FunctionKeys<M> = { [K in keyof M]: M[K] extends (...args: never[]) => unknown ? K : never }[keyof M];

const REDUCTIONS = [
  "sum", "prod", "mean", "max", "min", "all", "any", "std", "logsumexp", "argmax", "argmin", "softmax", "logSoftmax",
] as const;
const SHAPE_OPS = [
  "reshape", "flatten", "transpose", "swapaxes", "moveaxis", "expandDims", "squeeze", "broadcastTo", "split", "flip",
  "astype", "tile", "repeat", "pad", "roll",
] as const;

/** Every elementwise op of ops/elementwise.ts, as a method. */
export type ElementwiseMethods = MethodsOf<typeof E, FunctionKeys<typeof E>>;
/** The reductions, as methods (`var` is R.variance). */
export type ReduceMethods = MethodsOf<typeof R, (typeof REDUCTIONS)[number]> & { var: AsMethod<typeof R.variance> };
/** The shape ops, as methods. */
export type ShapeMethods = MethodsOf<typeof S, (typeof SHAPE_OPS)[number]>;

declare module "./array.js" {
  interface Array extends ElementwiseMethods, ReduceMethods, ShapeMethods {
    /** The matrix product `mx.matmul(this, b)`. */
    matmul(b: Array): Array;
    /** NumPy indexing (see mx.index). */
    index(...spec: IndexEntry[]): Array;
    /** The transpose with all axes reversed. */
    readonly T: Array;
  }
}

const proto = Array.prototype as unknown as Record<string, unknown>;
const forward = (name: string, fn: (...args: never[]) => unknown) => {
  proto[name] = function (this: Array, ...args: unknown[]) {
    return (fn as (...a: unknown[]) => unknown)(this, ...args);
  };
};
for (const [name, fn] of Object.entries(E)) if (typeof fn === "function") forward(name, fn);
for (const name of REDUCTIONS) forward(name, R[name]);
forward("var", R.variance);
for (const name of SHAPE_OPS) forward(name, S[name]);
forward("matmul", matmul);
forward("index", index);
Object.defineProperty(Array.prototype, "T", { get(this: Array) { return S.transpose(this); } });
