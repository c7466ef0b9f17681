/**
 * @file What a compile trace records beyond ordinary nodes: the trace in progress, dynamic
 * scalars (values a compiled function recomputes in JavaScript on every call), and the call node
 * of a compiled function. @tessera/transforms's compile drives them; eval/compiled.ts turns a
 * trace into a program kept native-side.
 */
import type { Array } from "../array.js";
import type { DType } from "../dtype.js";
import { bind1, type PrimitiveDef } from "../primitive.js";
import { InternalError } from "../errors.js";
import * as P from "../primitives/index.js";

/**
 * JavaScript state a compiled function reads on every call: the global random key, an
 * optimizer's step count and learning rate. MLX asks users to name such state as compile's
 * inputs; here the code that owns it registers a source while being traced, and each later call
 * of the trace runs `compute` again (in the order registered, so the state advances as it would
 * uncompiled) and binds the values it returns where the trace used them.
 */
export interface DynamicSource {
  compute(): number[];
}

/** The `index`-th value of a dynamic source, as a `full` node's params carry it. */
export interface DynamicRef {
  source: DynamicSource;
  index: number;
}

/** The compile trace in progress: the dynamic sources registered so far. */
let current: { sources: DynamicSource[] } | null = null;

/** Whether a compile trace is recording (code that owns dynamic state asks, see dynamicScalars). */
export function compileTracing(): boolean {
  return current !== null;
}

/**
 * Runs `fn` as a compile trace; returns its result and the dynamic sources it registered. A trace
 * inside a trace (a compiled function called while another is traced) records into the outer one.
 */
export function recordTrace<T>(fn: () => T): { result: T; sources: DynamicSource[] } {
  if (current) return { result: fn(), sources: [] };
  const trace = { sources: [] as DynamicSource[] };
  current = trace;
  try {
    return { result: fn(), sources: trace.sources };
  } finally {
    current = null;
  }
}

/**
 * Values that a compiled function must recompute on every call. Outside a compile trace this
 * returns null and the caller computes with plain numbers. Inside one, `compute` runs now and
 * again before each later call of the trace; `scalar(i, dtype)` is a 0-d array holding its i-th
 * value (a `full` the call rebinds: the program keeps no scalar values, only their places).
 * @example
 * const dyn = mx.internal.dynamicScalars(() => [this.nextStepSize()]);
 * const stepSize = dyn ? dyn.scalar(0, param.dtype) : this.nextStepSize();
 */
export function dynamicScalars(compute: () => number[]): { values: number[]; scalar(i: number, dtype: DType): Array } | null {
  if (!current) return null;
  const source: DynamicSource = { compute };
  current.sources.push(source);
  const values = compute();
  return {
    values,
    scalar: (index, dtype) => bind1(P.full, [], { shape: [], dtype, value: values[index], dynamic: { source, index } }),
  };
}

/**
 * The node of a compiled function's call: its inputs are the call's arguments, state and the
 * trace's constants, its outputs everything the trace computes; `params.trace` is the kept
 * program (eval/compiled.ts). Evaluation runs it with the kept program, apart from the rest of
 * the graph (eval.ts). It is not in the registry: transforms never meet it, since a compiled
 * function called inside a transform runs its function instead (so the rules are unreachable).
 */
export const callPrim: PrimitiveDef<{ trace: unknown }> = {
  name: "compiled",
  opcode: null,
  abstractEval: () => {
    throw new InternalError("compiled: a call node is recorded by compile with its outputs, never bound");
  },
  encode: () => {
    throw new InternalError("compiled: a call runs its kept program, it is never encoded");
  },
  jvp: () => {
    throw new InternalError("compiled: transforms call the function itself, never a call node");
  },
  vjp: () => {
    throw new InternalError("compiled: transforms call the function itself, never a call node");
  },
  vmap: () => {
    throw new InternalError("compiled: transforms call the function itself, never a call node");
  },
};

/**
 * The key of compile's state protocol: an object named in compile's `inputs` or `outputs` (or
 * passed to a compiled function) that has this property is read and written through it, as
 * `{ read(): tree of arrays, write(tree): void }` (nn.Module: its parameters; an optimizer: its
 * state). `Symbol.for`, so any class can take part without importing tessera.
 */
export const COMPILE_STATE: unique symbol = Symbol.for("tessera.compileState");

/** What an object gives compile through COMPILE_STATE. */
export interface CompileStateAccess {
  /** The arrays the object holds, as a tree. */
  read(): unknown;
  /** Replaces them with those of `tree` (shaped as `read()` returned it). */
  write(tree: unknown): void;
  /**
   * Optional, for speed: replaces the arrays of the tree the latest `read()` returned, in its
   * depth-first order, with `arrays[from]` to `arrays[from + count - 1]`, building no tree. False
   * when it cannot (compile then calls `write`). Compile calls it only where what its function
   * wrote has the structure, shapes and dtypes of what it read.
   */
  writeLeaves?(arrays: Array[], from: number, count: number): boolean;
}
