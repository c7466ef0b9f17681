/** @file grad and valueAndGrad: reverse mode with a unit cotangent, over tree-structured arguments. */
import * as mx from "@tessera/core";
import { TransformError, isArray, type Array } from "@tessera/core";
import { backward } from "./vjp.js";
import { fmt, leavesFor, tracing, withLeaves } from "./trace.js";
import type { Argnums, ArgnumsFor, GradsOf, LossArray, LossOutput } from "./types.js";

/** Options of {@link grad} and {@link valueAndGrad}. */
export interface GradOptions<A extends Argnums = Argnums> {
  /** Which positional arguments to differentiate: a number (default 0) or a list. */
  argnums?: A;
}

/** The implementation's view of a user function (the public signatures are the typed overloads). */
type Fn = (...args: unknown[]) => unknown;

/** Checks argnums without the call's argument count (when the transform is made): integers, no repeats. */
function checkArgnums(op: string, argnums: unknown): void {
  if (argnums === undefined) return;
  const list = typeof argnums === "number" ? [argnums] : argnums;
  if (!globalThis.Array.isArray(list) || list.length === 0) {
    throw new TransformError(`${op}: argnums must be a number or a non-empty list of numbers (integers); got ${fmtArg(argnums)}`);
  }
  for (const a of list) {
    if (typeof a !== "number" || !Number.isInteger(a)) throw new TransformError(`${op}: argnums entries must be integers; got ${fmtArg(a)}`);
  }
  if (new Set(list).size !== list.length) {
    throw new TransformError(`${op}: argnums must not repeat an argument; got [${list.join(", ")}]`);
  }
}

function normalizeArgnums(op: string, argnums: Argnums | undefined, nargs: number): number[] {
  checkArgnums(op, argnums);
  const list = argnums === undefined ? [0] : typeof argnums === "number" ? [argnums] : argnums;
  const out = list.map((a) => {
    const k = a < 0 ? a + nargs : a;
    if (k < 0 || k >= nargs) throw new TransformError(`${op}: argnums ${a} is out of range for a call with ${nargs} arguments`);
    return k;
  });
  if (new Set(out).size !== out.length) {
    throw new TransformError(`${op}: argnums must not repeat an argument; got [${list.join(", ")}], which name the same argument for a call with ${nargs} arguments`);
  }
  return out;
}

/** A bad argnums value as messages print it. */
function fmtArg(x: unknown): string {
  if (typeof x === "bigint") return `${x}n`;
  if (typeof x === "string") return JSON.stringify(x);
  if (globalThis.Array.isArray(x)) return `[${x.map(fmtArg).join(", ")}]`;
  return x === null ? "null" : typeof x === "object" ? "an object" : String(x);
}

/** The Array leaves of a differentiated argument (JS numbers become float32 scalars). */
function argLeaves(op: string, arg: unknown, index: number): [string, Array][] {
  const tree = typeof arg === "number" ? mx.array(arg) : arg;
  return mx.treeFlatten(tree).map(([path, leaf]): [string, Array] => {
    if (!isArray(leaf)) {
      throw new TransformError(`${op}: argument ${index} must be an Array or a tree of Arrays; found ${leaf === null ? "null" : typeof leaf} at "${path}"`);
    }
    return [path, leaf];
  });
}

/**
 * `(...args) => [value, grads]`. If fn returns a JS array, its first element is the loss and
 * `value` is the whole array (auxiliary outputs). `grads` has the shape of the differentiated
 * argument (a JS array of them when argnums is a list).
 *
 * Typed from fn: the returned function takes fn's parameters, `value` has fn's return type, and
 * `grads` the type of the differentiated parameter ({@link GradsOf}: a tuple for a list of
 * argnums, an Array for a JS number). Unannotated parameters of fn are Arrays.
 * @example
 * const [loss, g] = valueAndGrad((w, x) => mx.sum(mx.matmul(x, w).square()))(w, x);
 * const [[l, aux], [gw, gb]] = valueAndGrad((w: mx.Array, b: mx.Array) => [loss(w, b), acc], { argnums: [0, 1] })(w, b);
 */
export function valueAndGrad<P extends readonly unknown[] = Array[], R extends LossOutput | LossArray<R> = Array, const A extends 0 | ArgnumsFor<P, A> = 0>(
  fn: (...args: P) => R,
  options?: GradOptions<A>,
): (...args: P) => [R, GradsOf<P, A>];
export function valueAndGrad(fn: Fn, options: GradOptions = {}) {
  return makeValueAndGrad("valueAndGrad", fn, options);
}

/** valueAndGrad, with errors naming `op` (the transform the user called). */
function makeValueAndGrad(op: string, fn: Fn, options: GradOptions | null | undefined) {
  if (typeof fn !== "function") throw new TransformError(`${op}: fn must be a function; got ${typeof fn}`);
  if (options === null || options === undefined) options = {};
  if (typeof options !== "object" || globalThis.Array.isArray(options)) {
    throw new TransformError(`${op}: options must be an object ({ argnums }); got ${fmtArg(options)}`);
  }
  for (const k of Object.keys(options)) {
    if (k !== "argnums") throw new TransformError(`${op}: unknown option ${JSON.stringify(k)}; expected "argnums"`);
  }
  checkArgnums(op, options.argnums);
  const opts: GradOptions = options;
  return (...args: unknown[]): [unknown, unknown] =>
    tracing(() => {
      const nums = normalizeArgnums(op, opts.argnums, args.length);
      const newArgs = [...args];
      const sources: Array[] = [];
      const structure = nums.map((k) => {
        const pairs = argLeaves(op, args[k], k);
        const leaves = leavesFor(pairs.map(([, a]) => a));
        sources.push(...leaves);
        newArgs[k] = withLeaves(pairs, leaves);
        return { pairs, leaves };
      });
      const value = fn(...newArgs);
      const loss = globalThis.Array.isArray(value) ? value[0] : value;
      if (!isArray(loss)) {
        throw new TransformError(`${op}: fn must return an Array (or a JS array whose first element is one); got ${loss === null ? "null" : typeof loss}`);
      }
      if (loss.size !== 1 || !mx.isFloating(loss.dtype)) {
        throw new TransformError(`${op}: fn must return a scalar float array; got shape ${fmt(loss.shape)} ${loss.dtype}`);
      }
      const cts = backward([loss], [mx.onesLike(loss)], sources);
      let pos = 0;
      const grads = structure.map(({ pairs, leaves }) => {
        const gs = leaves.map((leaf, i) => cts[pos + i] ?? mx.zerosLike(pairs[i][1]));
        pos += leaves.length;
        return withLeaves(pairs, gs);
      });
      return [value, typeof opts.argnums === "object" ? grads : grads[0]];
    });
}

/**
 * The gradient of a scalar-valued fn with respect to argument `argnums` (default 0).
 *
 * Typed from fn: the returned function takes fn's parameters and returns the type of the
 * differentiated parameter ({@link GradsOf}: the same tree type for a tree, an Array for a JS
 * number, a tuple for a list of argnums). Unannotated parameters of fn are Arrays.
 * @example
 * const df = grad((x) => x.square().sum());
 * df(mx.array([1, 2])).tolist(); // [2, 4]
 */
export function grad<P extends readonly unknown[] = Array[], R extends LossOutput | LossArray<R> = Array, const A extends 0 | ArgnumsFor<P, A> = 0>(
  fn: (...args: P) => R,
  options?: GradOptions<A>,
): (...args: P) => GradsOf<P, A>;
export function grad(fn: Fn, options: GradOptions = {}) {
  const vg = makeValueAndGrad("grad", fn, options);
  return (...args: unknown[]): unknown => vg(...args)[1];
}
