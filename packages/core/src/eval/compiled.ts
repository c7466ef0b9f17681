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
import { encodeProgram, pendingNodes, Scratch, type Program } from "./program.js";
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

/**
 * The params of a call node: the trace, and this call's dynamic scalar words (one per
 * `trace.program.dynamic`, an int64 word as a BigInt), or null when the program's own scalars hold
 * them (the call that traced). The scalar words are assembled when the call runs (callScalars).
 */
interface CallParams {
  trace: Trace;
  dynamic: (number | bigint)[] | null;
}

/** Frees a kept body once nothing can call its trace any more. */
const bodies = new FinalizationRegistry<number>((id) => native.releaseBody(id));

/**
 * Encodes the traced graph from `inputs` (the trace's placeholders) to `results` and keeps it
 * native-side. `sources` are the dynamic sources the trace registered. `replaces` pairs an input
 * with the result that updates it (a parameter and its new value): when that input is donated, the
 * result is written over it, so every call binds the same buffers (what a CUDA graph replay needs).
 */
export function makeTrace(inputs: Array[], results: Array[], sources: DynamicSource[], op: string, replaces: [number, number][] = []): Trace {
  const isInput = new Set(inputs);
  const isIn = (x: Array) => isInput.has(x);
  const computed = (xs: Array[]) => [...new Set(xs.filter((r) => !r.handle && !isInput.has(r)))];
  foldConstants(computed(results), isInput, op);
  const same = mergeCommon(computed(results), isIn, op);
  const finalResults = results.map((r) => same.get(r) ?? r);
  const roots = computed(finalResults);
  const { order, inputs: read } = pendingNodes(roots, op, isIn);
  const constants = read.filter((x) => !isInput.has(x));
  const program = encodeProgram(order, [...inputs, ...constants], roots, op, false, true);
  const outIndex = new Map(roots.map((r, i) => [r, i]));
  const pairs: number[] = [];
  for (const [input, result] of replaces) {
    const o = outIndex.get(finalResults[result]);
    if (o !== undefined) pairs.push(input, o);
  }
  const id = native.keepBody(program.body, Int32Array.from(pairs));
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
 * Added to an array's `consumers` while a call counts its distinct inputs: no array has that many
 * readers, so the mark says "seen" without a Set (a call may read hundreds of arrays, every step).
 */
export const COUNT_MARK = 2 ** 26;

/** Where each dynamic scalar's value comes from: the position of its source in `sources`. */
const sourceIndex = new WeakMap<Trace, Int32Array>();

function sourceIndexOf(trace: Trace): Int32Array {
  let index = sourceIndex.get(trace);
  if (!index) {
    index = Int32Array.from(trace.program.dynamic, (d) => trace.sources.indexOf(d.ref.source));
    sourceIndex.set(trace, index);
  }
  return index;
}

/**
 * Records a call of `trace` on `args` (the arrays bound to its input slots, in order): a node
 * whose outputs are the trace's computed values. `fresh` says the trace was recorded by this very
 * call, so its dynamic sources have just run; otherwise they run now, as the function would.
 */
export function bindCall(trace: Trace, args: Array[], fresh: boolean): Array[] {
  const sources = trace.sources;
  let words: (number | bigint)[] | null = null;
  if (!fresh && sources.length) {
    const values: number[][] = [];
    for (const s of sources) values.push(s.compute());
    const dynamic = trace.program.dynamic;
    const from = sourceIndexOf(trace);
    words = new globalThis.Array(dynamic.length);
    for (let k = 0; k < dynamic.length; k++) {
      const { ref, dtype } = dynamic[k];
      const x = values[from[k]][ref.index];
      if (dtype !== "int64" && dtype !== "uint64") words[k] = Number(x);
      else {
        // A small count (an optimizer's step) needs none of fillWord's saturation.
        const v = typeof x === "number" && Number.isSafeInteger(x) && (x >= 0 || dtype === "int64") ? BigInt(x) : fillWord(x, dtype);
        words[k] = BigInt.asIntN(64, v as bigint);
      }
    }
  }
  if (trace.outputs.length === 0) return [];
  const constants = trace.constants;
  const inputs = args.slice();
  for (let i = 0; i < constants.length; i++) inputs.push(constants[i]);
  const params: CallParams = { trace, dynamic: words };
  const node: Node = { prim: callPrim, inputs, params, outputs: [], device: trace.outputs[0]?.device ?? args[0]?.device };
  const outs = trace.outputs;
  const outputs: Array[] = new globalThis.Array(outs.length);
  for (let i = 0; i < outs.length; i++) outputs[i] = makeArray(outs[i].shape, outs[i].dtype, node, 0, outs[i].device);
  node.outputs = outputs;
  countCallReads(inputs, 1);
  return outputs;
}

/** Adds `delta` to the consumer count of each distinct input of a call node (see COUNT_MARK). */
export function countCallReads(inputs: Array[], delta: number): void {
  for (const x of inputs) if (x.consumers < COUNT_MARK / 2) x.consumers += COUNT_MARK;
  for (const x of inputs) if (x.consumers >= COUNT_MARK / 2) x.consumers += delta - COUNT_MARK;
}

/** The trace of a call node. */
export function callOf(node: Node): CallParams {
  return node.params as CallParams;
}

/** The scalar words a synchronous call binds: the addon reads them during the call (see Scratch). */
const callWords = new Float64Array(4096);
const callWordBits = new BigInt64Array(callWords.buffer);
const callWordViews = new Scratch(callWords);

/**
 * The scalar words of a call node's run: the program's, with this call's dynamic scalars in
 * place. With `scratch` (a synchronous run only), a view of a buffer the next call reuses.
 */
export function callScalars(node: Node, scratch: boolean): Float64Array {
  const { trace, dynamic: words } = callOf(node);
  const own = trace.program.scalars;
  if (!words) return own;
  const view = scratch ? callWordViews.view(own.length) : null;
  const scalars = view ?? own.slice();
  if (view) view.set(own);
  const bits = view ? callWordBits : null;
  const dynamic = trace.program.dynamic;
  for (let k = 0; k < dynamic.length; k++) {
    const w = words[k], index = dynamic[k].index;
    if (typeof w === "number") scalars[index] = w;
    else (bits ?? new BigInt64Array(scalars.buffer))[index] = w;
  }
  return scalars;
}
