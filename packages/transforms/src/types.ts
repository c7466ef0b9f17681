/**
 * @file Types of the transforms' signatures: what a differentiated function returns, which
 * arguments `argnums` may name, and the type of each gradient, so that `tsc` checks users' calls.
 * Types only; nothing here exists at run time.
 */
import type { Array } from "@tessera/core";

/**
 * What a function given to `grad` or `valueAndGrad` returns: the loss (a scalar float Array), or a
 * JS array whose first element is the loss and whose other elements are auxiliary outputs.
 */
export type LossOutput = Array | readonly [Array, ...unknown[]] | readonly Array[];

/**
 * JS arrays in general when R is a JS array type that may hold the loss first, as a function
 * declared apart gives (`(w: Array) => [loss, { acc }]` is typed `(Array | { acc: number })[]`);
 * never otherwise. With {@link LossOutput}, the constraint on what a differentiated function returns.
 */
export type LossArray<R> = Array extends (R extends readonly (infer E)[] ? E : never) ? readonly unknown[] : never;

/**
 * What a function given to `vjp` or `jvp` returns: an Array, or a JS array of them. (The empty
 * tuple is there so that an array literal returned by an unannotated function is typed as a
 * tuple, one entry per output.)
 */
export type Outputs = Array | readonly Array[] | readonly [];

/** `argnums`: the index of one positional argument, or a list of them. */
export type Argnums = number | readonly number[];

/**
 * The gradient of an argument of type T: the same type (an Array, or a tree of Arrays keeps its
 * tree type), except that a JS number, differentiated as a float32 scalar, gets an Array.
 */
export type GradOf<T> = T extends number ? Array : T;

/** The indices 0 .. n-1 of a fixed-length parameter list P. */
type Indices<P extends readonly unknown[], Seen extends unknown[] = []> =
  Seen["length"] extends P["length"] ? never : Seen["length"] | Indices<P, [...Seen, unknown]>;

/** -N for a numeric literal N. */
type Negate<N extends number> = `-${N}` extends `${infer M extends number}` ? M : never;

/**
 * The argument indices valid for parameters P: 0 .. n-1 and -n .. -1 (counting from the end), or
 * every number when P has a rest parameter.
 */
export type ArgIndex<P extends readonly unknown[]> = number extends Required<P>["length"]
  ? number
  : Indices<Required<P>> | Negate<Exclude<Indices<[unknown, ...Required<P>]>, 0>>;

/**
 * The `argnums` accepted for parameters P: valid indices, or a list of them. When A is a plain
 * `number` (or `number[]`), not a literal, every index is accepted: it is checked at run time.
 */
export type ArgnumsFor<P extends readonly unknown[], A> = number extends (A extends readonly (infer E)[] ? E : A)
  ? Argnums
  : ArgIndex<P> | readonly ArgIndex<P>[];

/** The M-th parameter of P counting from the end (M = 1 is the last). */
type FromEnd<P extends readonly unknown[], M extends number, Seen extends unknown[] = [unknown]> =
  P extends readonly [...infer Init, infer Last] ? (Seen["length"] extends M ? Last : FromEnd<Init, M, [...Seen, unknown]>) : never;

/**
 * The type of parameter N of P (N negative counts from the end); a union of all the parameters'
 * types when N or P's length is not known statically.
 */
export type ParamAt<P extends readonly unknown[], N> = N extends number
  ? number extends N
    ? Required<P>[number]
    : `${N}` extends keyof Required<P>
      ? Required<P>[`${N}` & keyof Required<P>]
      : number extends Required<P>["length"]
        ? Required<P>[number]
        : `${N}` extends `-${infer M extends number}`
          ? FromEnd<Required<P>, M>
          : never
  : never;

/**
 * The gradients for `argnums` A of a function with parameters P: the gradient of argument A when A
 * is a number, and a tuple of gradients, in the order given, when A is a list.
 * @example
 * GradsOf<[w: Array, b: Array, n: number], 0>;         // Array
 * GradsOf<[p: { w: Array }, x: Array], 0>;              // { w: Array }
 * GradsOf<[w: Array, b: Array, n: number], [0, -1]>;   // [Array, Array]
 */
export type GradsOf<P extends readonly unknown[], A> = A extends number
  ? GradOf<ParamAt<P, A>>
  : A extends readonly unknown[]
    ? { -readonly [K in keyof A]: GradOf<ParamAt<P, A[K]>> }
    : never;

/**
 * The outputs of a function returning R, as `vjp` and `jvp` give them: always a JS array, with one
 * entry per output (a tuple when R is one).
 */
export type OutputList<R> = R extends readonly Array[] ? { -readonly [K in keyof R]: R[K] } : [R];

/** One Array per entry of P (the vjps of the primals, the tangents given for them). */
export type ArraysFor<P extends readonly unknown[]> = { -readonly [K in keyof P]: Array };
