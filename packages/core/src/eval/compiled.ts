/**
 * @file Traces of compiled functions: the graph a trace recorded, simplified (constant parts
 * evaluated once, common subexpressions merged), encoded once and kept decoded native-side; and
 * the call node each call of a compiled function records, whose evaluation replays the kept
 * program with the call's buffers (eval.ts). @tessera/transforms's compile drives this.
 */
import { makeArray, type Array, type Node } from "../array.js";
import type { Device } from "../device.js";
import type { DType } from "../dtype.js";
import { native } from "../native/binding.js";
import * as P from "../primitives/index.js";
import { fillWord } from "../primitives/creation.js";
import { encodeProgram, pendingNodes, type Program } from "./program.js";
import { evaluate } from "./eval.js";
import { callPrim, type DynamicSource } from "./tracing.js";

/** A traced function encoded once: what a call binds and what it returns. */
export interface Trace {
  /** The kept body (native keepBody). */
  id: number;
  /** The program: its steps (for profiles and errors), scalar words and dynamic scalars. */
  program: Program;
  /** Input slots bound to the call's arguments and state, before the constants. */
  numInputs: number;
  /** Arrays the trace reads that are not inputs (closed over, or constant parts evaluated once). */
  constants: Array[];
  /** The shape, dtype and device of each value the program returns. */
  outputs: { shape: number[]; dtype: DType; device: Device }[];
  /** The dynamic sources the trace registered, in order (each call runs them again). */
  sources: DynamicSource[];
  /** Where each of the traced function's results comes from. */
  results: Result[];
}

/** A result of the traced function: an input passed through, a constant, or a computed output. */
export type Result = { input: number } | { constant: Array } | { output: number };

/** The params of a call node: the trace, and the scalar words of this call. */
interface CallParams {
  trace: Trace;
  scalars: Float64Array;
}

/** Frees a kept body once nothing can call its trace any more. */
const bodies = new FinalizationRegistry<number>((id) => native.releaseBody(id));

/**
 * Encodes the traced graph from `inputs` (the trace's placeholders) to `results` and keeps it
 * native-side. `sources` are the dynamic sources the trace registered.
 */
export function makeTrace(inputs: Array[], results: Array[], sources: DynamicSource[], op: string): Trace {
  const isInput = new Set(inputs);
  const isIn = (x: Array) => isInput.has(x);
  const computed = (xs: Array[]) => [...new Set(xs.filter((r) => !r.handle && !isInput.has(r)))];
  foldConstants(computed(results), isInput, op);
  const same = mergeCommon(computed(results), isIn, op);
  const finalResults = results.map((r) => same.get(r) ?? r);
  const roots = computed(finalResults);
  const { order, inputs: read } = pendingNodes(roots, op, isIn);
  const constants = read.filter((x) => !isInput.has(x));
  const program = encodeProgram(order, [...inputs, ...constants], roots, op);
  const id = native.keepBody(program.body);
  const outIndex = new Map(roots.map((r, i) => [r, i]));
  const inIndex = new Map(inputs.map((x, i) => [x, i]));
  const trace: Trace = {
    id,
    program,
    numInputs: inputs.length,
    constants,
    outputs: roots.map((r) => ({ shape: r.shape, dtype: r.dtype, device: r.device })),
    sources,
    results: finalResults.map((r): Result =>
      inIndex.has(r) ? { input: inIndex.get(r)! } : outIndex.has(r) ? { output: outIndex.get(r)! } : { constant: r }),
  };
  bodies.register(trace, id);
  return trace;
}

/** A `full`, or a broadcast of one: the fusion pass folds these into its kernels as they are. */
const isFill = (x: Array): boolean =>
  x.node !== null && (x.node.prim === P.full || (x.node.prim === P.broadcastTo && isFill(x.node.inputs[0])));

/**
 * Evaluates, once, the parts of the trace that depend on no input (a causal mask, positions, a
 * closed-over array still lazy): the values of them that the rest reads, or that are results,
 * become constants of the trace. Fills stay in the program, where fusion folds them for free.
 */
function foldConstants(roots: Array[], isInput: Set<Array>, op: string): void {
  const { order } = pendingNodes(roots, op, (x) => isInput.has(x));
  const dependent = new Set<Array>();
  for (const node of order) {
    if (node.params?.dynamic || node.inputs.some((x) => isInput.has(x) || dependent.has(x))) {
      for (const y of node.outputs) dependent.add(y);
    }
  }
  const fold = new Set<Array>();
  const consider = (x: Array) => {
    if (!x.handle && !isInput.has(x) && !dependent.has(x) && !isFill(x)) fold.add(x);
  };
  for (const node of order) if (dependent.has(node.outputs[0])) node.inputs.forEach(consider);
  roots.forEach(consider);
  if (fold.size) evaluate([...fold], op);
}

/**
 * Merges nodes that compute the same thing (same primitive, params, device and inputs) into the
 * first of them; returns the replacement of each merged output. The traced graph is the trace's
 * own, so its nodes are rewired in place.
 */
function mergeCommon(roots: Array[], isInput: (x: Array) => boolean, op: string): Map<Array, Array> {
  const { order } = pendingNodes(roots, op, isInput);
  const ids = new Map<unknown, number>();
  const id = (x: unknown) => {
    let i = ids.get(x);
    if (i === undefined) ids.set(x, (i = ids.size));
    return i;
  };
  const first = new Map<string, Node>();
  const same = new Map<Array, Array>();
  for (const node of order) {
    if (node.inputs.some((x) => same.has(x))) {
      node.inputs = node.inputs.map((x) => {
        const r = same.get(x);
        if (!r) return x;
        x.consumers--;
        r.consumers++;
        return r;
      });
    }
    const key = nodeKey(node, id);
    if (key === null) continue;
    const prev = first.get(key);
    if (!prev) first.set(key, node);
    else node.outputs.forEach((y, i) => same.set(y, prev.outputs[i]));
  }
  return same;
}

/** What a node computes, as a string; null when its params cannot be compared as data. */
function nodeKey(node: Node, id: (x: unknown) => number): string | null {
  try {
    const params = JSON.stringify(node.params ?? null, (k, v) => {
      if (k === "dynamic") return `dynamic:${id(v.source)}:${v.index}`;
      if (typeof v === "bigint") return `${v}n`;
      if (typeof v === "function" || (typeof v === "object" && v !== null && !globalThis.Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype)) {
        throw new Error("not data");
      }
      return v;
    });
    return `${node.prim.name}@${node.device.type}:${node.device.index}(${node.inputs.map(id).join(",")})${params}`;
  } catch {
    return null;
  }
}

/**
 * Records a call of `trace` on `args` (the arrays bound to its input slots, in order): a node
 * whose outputs are the trace's computed values. `fresh` says the trace was recorded by this very
 * call, so its dynamic sources have just run; otherwise they run now, as the function would.
 */
export function bindCall(trace: Trace, args: Array[], fresh: boolean): Array[] {
  const scalars = trace.program.scalars.slice();
  if (!fresh && trace.sources.length) {
    const values = new Map(trace.sources.map((s) => [s, s.compute()]));
    const bits = new BigInt64Array(scalars.buffer);
    for (const { index, ref, dtype } of trace.program.dynamic) {
      const v = fillWord(values.get(ref.source)![ref.index], dtype);
      if (typeof v === "bigint") bits[index] = BigInt.asIntN(64, v);
      else scalars[index] = v;
    }
  }
  if (trace.outputs.length === 0) return [];
  const inputs = [...args, ...trace.constants];
  const params: CallParams = { trace, scalars };
  const node: Node = { prim: callPrim, inputs, params, outputs: [], device: trace.outputs[0]?.device ?? args[0]?.device };
  node.outputs = trace.outputs.map((o) => makeArray(o.shape, o.dtype, node, 0, o.device));
  for (const x of new Set(inputs)) x.consumers++;
  return node.outputs;
}

/** The trace and scalar words of a call node. */
export function callOf(node: Node): CallParams {
  return node.params as CallParams;
}
