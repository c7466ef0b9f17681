/** @file Entering and leaving a transform's recording, and checks of what user functions return. */
import * as mx from "@tessera/core";
import { TransformError, isArray, type Array } from "@tessera/core";

const { enterTrace, exitTrace, lax } = mx.internal;

/** Runs fn with evaluation told not to detach graphs a transform still has to walk. */
export function tracing<T>(fn: () => T): T {
  enterTrace();
  try {
    return fn();
  } finally {
    exitTrace();
  }
}

/** Fresh nodes standing for the primals: the walks stop at them, and they carry the same values. */
export function leavesFor(primals: Array[]): Array[] {
  return primals.map((p) => lax.identity(p));
}

/** fn's result as a list of Arrays (an Array, or a JS array of them). */
export function outputList(op: string, out: unknown): Array[] {
  const list = globalThis.Array.isArray(out) ? out : [out];
  list.forEach((o, i) => {
    if (!isArray(o)) throw new TransformError(`${op}: fn must return an Array or a JS array of Arrays; output ${i} is ${o === null ? "null" : typeof o}`);
  });
  return list as Array[];
}

export function checkArrayList(op: string, what: string, xs: unknown): Array[] {
  if (!globalThis.Array.isArray(xs)) throw new TransformError(`${op}: ${what} must be a JS array of Arrays; got ${typeof xs}`);
  xs.forEach((x, i) => {
    if (!isArray(x)) throw new TransformError(`${op}: ${what}[${i}] must be an Array; got ${x === null ? "null" : typeof x}`);
  });
  return xs as Array[];
}

export function fmt(shape: number[]): string {
  return `[${shape.join(",")}]`;
}

/** The tree that `pairs` (from treeFlatten) came from, with each leaf replaced by values[i]. */
export function withLeaves<T>(pairs: [string, unknown][], values: T[]): unknown {
  if (pairs.length === 1 && pairs[0][0] === "") return values[0];
  return mx.treeUnflatten(pairs.map(([p], i) => [p, values[i]]));
}
