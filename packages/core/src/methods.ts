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
import * as C from "./ops/scan.js";
import { matmul } from "./ops/linalg.js";
import { index, at, take, type ArrayAt, type IndexEntry } from "./ops/indexing.js";

/** An op taking the array first, as a method (that parameter dropped). */
type AsMethod<F> = F extends (self: never, ...rest: infer A) => infer R ? (...args: A) => R : never;
type MethodsOf<M, K extends keyof M> = { [N in K]: AsMethod<M[N]> };
type FunctionKeys<M> = { [K in keyof M]: M[K] extends (...args: never[]) => unknown ? K : never }[keyof M];

const REDUCTIONS = [
  "sum", "prod", "mean", "max", "min", "all", "any", "std", "logsumexp", "argmax", "argmin", "softmax", "logSoftmax",
] as const;
/** The scans and sorting ops of ops/scan.ts (partition and argpartition are functions only, as in MLX). */
const SCAN_OPS = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "sort", "argsort", "topk"] as const;
const SHAPE_OPS = [
  "reshape", "flatten", "transpose", "swapaxes", "moveaxis", "expandDims", "squeeze", "broadcastTo", "split", "flip",
  "astype", "tile", "repeat", "pad", "roll",
] as const;

/** Every elementwise op of ops/elementwise.ts, as a method. */
export type ElementwiseMethods = MethodsOf<typeof E, FunctionKeys<typeof E>>;
/** The reductions, as methods (`var` is R.variance). */
export type ReduceMethods = MethodsOf<typeof R, (typeof REDUCTIONS)[number]> & { var: AsMethod<typeof R.variance> };
/** The scans and sorting ops, as methods. */
export type ScanMethods = MethodsOf<typeof C, (typeof SCAN_OPS)[number]>;
/** The shape ops, as methods. */
export type ShapeMethods = MethodsOf<typeof S, (typeof SHAPE_OPS)[number]>;

declare module "./array.js" {
  interface Array extends ElementwiseMethods, ReduceMethods, ScanMethods, ShapeMethods {
    /** The matrix product `mx.matmul(this, b)`. */
    matmul(b: Array): Array;
    /** NumPy indexing (see mx.index). */
    index(...spec: IndexEntry[]): Array;
    /** Functional updates of the indexed elements (see mx.at): `x.at(i).add(v)`. */
    at(...spec: IndexEntry[]): ArrayAt;
    /** The elements at `indices` along `axis` (see mx.take). */
    take: AsMethod<typeof take>;
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
for (const name of SCAN_OPS) forward(name, C[name]);
for (const name of SHAPE_OPS) forward(name, S[name]);
forward("matmul", matmul);
forward("index", index);
forward("at", at);
forward("take", take);
Object.defineProperty(Array.prototype, "T", { get(this: Array) { return S.transpose(this); } });
