/**
 * @file customFunction (user-supplied vjp/jvp/vmap rules) and checkpoint (recompute instead of
 * keep). Both wrap the outputs of a traced function in one node of their own primitive, whose
 * inputs are the function's inputs (then any values it closed over) followed by its raw outputs;
 * natively the node is the identity of the raw outputs, and its rules either call the user's
 * (once for all outputs) or fall through to the raw outputs' graph.
 */
import * as mx from "@tessera/core";
import { TransformError, type Array } from "@tessera/core";
import { dependentNodes } from "./walk.js";
import { checkArrayList, leavesFor, outputList, tracing } from "./trace.js";
import { vjp as vjpTransform } from "./vjp.js";

const { bind, lax } = mx.internal;
type PrimitiveDef<P> = mx.internal.PrimitiveDef<P>;
type Tangent = mx.internal.Tangent;

const IDENTITY = mx.internal.P.identity.opcode;

interface CustomParams {
  /** How many leading inputs are the function's arguments. */
  nIn: number;
  /** How many trailing inputs are its raw outputs (the node has that many outputs). */
  nOut: number;
}

type VjpFn = (primals: Array[], cotangents: Array[], outputs: Array[]) => Array[];
type JvpFn = (primals: Array[], tangents: Array[]) => Array[];
type VmapFn = (inputs: Array[], axes: (number | null)[]) => [Array[], (number | null)[]];

interface Rules {
  /** Cotangents of the arguments and captured values (the inputs before the raw outputs). */
  vjp?: (deps: Array[], cts: Array[], raws: Array[], p: CustomParams) => Tangent[];
  jvp?: JvpFn;
  vmap?: VmapFn;
}

const rawOutputs = (inputs: Array[], p: CustomParams) => inputs.slice(inputs.length - p.nOut);

const PER: Record<string, string> = { vjp: "cotangent per primal", jvp: "tangent per output", vmap: "output per output" };
const fmtAval = (a: { shape: number[]; dtype: string }) => `[${a.shape.join(",")}] ${a.dtype}`;

/**
 * Checks what a user rule returned against what it must be: a JS array with one entry per
 * expected value (null allowed where `nullable`), each of the expected shape. A dtype that differs
 * is cast to the expected floating dtype (a cotangent or tangent of an integer value is dropped).
 */
function checkRule(what: "vjp" | "jvp" | "vmap", res: unknown, like: { shape: number[]; dtype: mx.DType }[], nullable = false): (Array | null)[] {
  const cast = what !== "vmap"; // a vmap rule computes values, not derivatives: its dtypes must match
  if (!globalThis.Array.isArray(res) || res.length !== like.length) {
    throw new TransformError(`customFunction: the ${what} rule must return one ${PER[what]} (${like.length})`);
  }
  return res.map((r, i) => {
    if (r === null && nullable) return null;
    if (!mx.isArray(r)) {
      throw new TransformError(`customFunction: the ${what} rule returned ${r === null ? "null" : typeof r} at position ${i}; expected an Array`);
    }
    const want = like[i];
    if (r.shape.length !== want.shape.length || r.shape.some((d, k) => d !== want.shape[k])) {
      throw new TransformError(`customFunction: the ${what} rule returned ${fmtAval(r)} at position ${i}; expected shape [${want.shape.join(",")}]`);
    }
    if (r.dtype === want.dtype) return r;
    if (!cast) throw new TransformError(`customFunction: the ${what} rule returned ${fmtAval(r)} at position ${i}; expected dtype ${want.dtype}`);
    return mx.isFloating(want.dtype) ? lax.cast(r, want.dtype) : null;
  });
}

/**
 * The shape output k of a vmap rule must have: the per-example shape with the batch axis the rule
 * names inserted (checked to be an axis of that output).
 */
function batchedShape(shape: number[], axes: unknown, k: number, outs: unknown[]): number[] {
  const ax = globalThis.Array.isArray(axes) ? axes[k] ?? null : null;
  const out = outs[k];
  if (ax === null) return shape;
  if (!Number.isInteger(ax) || !mx.isArray(out) || ax < 0 || ax > shape.length) {
    throw new TransformError(`customFunction: the vmap rule gave out axis ${String(ax)} for output ${k}; expected null or an axis of it`);
  }
  return [...shape.slice(0, ax), out.shape[ax], ...shape.slice(ax)];
}

/** The per-example shape of a batched value (its batch axis removed). */
const unbatched = (x: Array, d: number | null) => ({ shape: x.shape.filter((_, k) => k !== d), dtype: x.dtype });

function customDef(name: string, rules: Rules): PrimitiveDef<CustomParams> {
  return {
    name,
    opcode: IDENTITY,
    abstractEval: (ins, p) => ins.slice(ins.length - p.nOut),
    encode: () => ({}),
    jvp: (primals, tangents, p) => {
      if (!rules.jvp) return tangents.slice(tangents.length - p.nOut); // derived: the raw outputs' tangents
      const ins = primals.slice(0, p.nIn);
      const ts = ins.map((x, i) => tangents[i] ?? mx.zerosLike(x));
      return checkRule("jvp", rules.jvp(ins, ts), rawOutputs(primals, p));
    },
    vjp: (primals, cts, p) => {
      const nDeps = primals.length - p.nOut;
      if (!rules.vjp) return [...new globalThis.Array<null>(nDeps).fill(null), ...cts]; // derived: through the raw graph
      const outs = rawOutputs(primals, p);
      const full = cts.map((c, k) => c ?? mx.zerosLike(outs[k]));
      return [...rules.vjp(primals.slice(0, nDeps), full, outs, p), ...new globalThis.Array<null>(p.nOut).fill(null)];
    },
    vmap: (args, dims, p) => {
      if (!rules.vmap) return [rawOutputs(args, p), dims.slice(dims.length - p.nOut)];
      const res = rules.vmap(args.slice(0, p.nIn), dims.slice(0, p.nIn));
      if (!globalThis.Array.isArray(res) || res.length !== 2) {
        throw new TransformError("customFunction: the vmap rule must return [outputs, outAxes]");
      }
      const [outs, axes] = res;
      const perExample = rawOutputs(args, p).map((r, k) => unbatched(r, dims[dims.length - p.nOut + k]));
      checkRule("vmap", outs, perExample.map((e, k) => ({ ...e, shape: batchedShape(e.shape, axes, k, outs) })));
      return [outs, outs.map((_, k) => (globalThis.Array.isArray(axes) ? axes[k] ?? null : null))];
    },
  };
}

function wrapOutputs(def: PrimitiveDef<CustomParams>, deps: Array[], nIn: number, raws: Array[]): Array[] {
  return bind(def, [...deps, ...raws], { nIn, nOut: raws.length });
}

/**
 * What {@link customFunction} returns: a function called like `fn`, with methods that set its
 * rules. Each method returns the function itself, so they chain.
 */
export interface CustomFunction<F extends (...args: Array[]) => Array | Array[]> {
  (...args: Parameters<F>): ReturnType<F>;
  /** Sets the vjp: (primals, cotangents, outputs) => one cotangent per primal. */
  vjp(rule: VjpFn): CustomFunction<F>;
  /** Sets the jvp: (primals, tangents) => one tangent per output. */
  jvp(rule: JvpFn): CustomFunction<F>;
  /** Sets the vmap rule: (inputs, axes) => [outputs, outAxes]. */
  vmap(rule: VmapFn): CustomFunction<F>;
}

/**
 * fn with rules of your own; a rule not set is derived from fn, as in MLX.
 * @example
 * const f = customFunction((x) => x.exp()).vjp(([x], [ct]) => [ct.mul(x.exp())]);
 */
export function customFunction<F extends (...args: Array[]) => Array | Array[]>(fn: F): CustomFunction<F> {
  if (typeof fn !== "function") throw new TransformError(`customFunction: fn must be a function; got ${typeof fn}`);
  const rules: Rules = {}; // read by the rules at transform time, so setting them later works
  const def = customDef(`customFunction(${fn.name || "fn"})`, rules);
  const f = ((...args: Array[]) => {
    const ins = checkArrayList("customFunction", "arguments", args);
    const result = fn(...ins);
    const raws = outputList("customFunction", result);
    const outs = wrapOutputs(def, ins, ins.length, raws);
    return (globalThis.Array.isArray(result) ? outs : outs[0]) as ReturnType<F>;
  }) as unknown as CustomFunction<F>;
  f.vjp = (rule) => {
    // Called once with every output's cotangent (zeros where an output got none).
    rules.vjp = (deps, cts, outs, p) =>
      checkRule("vjp", rule(deps.slice(0, p.nIn), cts, outs), deps.slice(0, p.nIn), true);
    return f;
  };
  f.jvp = (rule) => ((rules.jvp = rule), f);
  f.vmap = (rule) => ((rules.vmap = rule), f);
  return f;
}

/** Re-records the nodes between `sources` and `outputs` with the sources replaced by `values`. */
function replay(outputs: Array[], sources: Array[], values: Array[]): Array[] {
  const sub = new Map<Array, Array>(sources.map((s, i) => [s, values[i]]));
  for (const node of dependentNodes(outputs, sources).order) {
    const ys = bind(node.prim, node.inputs.map((x) => sub.get(x) ?? x), node.params);
    node.outputs.forEach((y, k) => sub.set(y, ys[k]));
  }
  return outputs.map((o) => sub.get(o) ?? o);
}

/**
 * fn with the same results and gradients, whose backward pass keeps only fn's inputs and
 * recomputes the rest (trading compute for memory in deep models).
 * @example
 * const block = checkpoint((x) => layer2(layer1(x)));
 */
export function checkpoint<F extends (...args: Array[]) => Array | Array[]>(fn: F): F {
  if (typeof fn !== "function") throw new TransformError(`checkpoint: fn must be a function; got ${typeof fn}`);
  return ((...args: Array[]) => {
    const ins = checkArrayList("checkpoint", "arguments", args);
    const leaves = leavesFor(ins);
    const result = tracing(() => fn(...leaves));
    const raws = outputList("checkpoint", result);
    // Lazy values fn closed over (parameters an outer grad is tracing, say) become inputs too,
    // so the recomputation can send them their cotangents.
    const { order, active } = dependentNodes(raws, leaves);
    const captured = [...new Set(order.flatMap((n) => n.inputs).filter((x) => !active.has(x) && x.node !== null))];
    const sources = [...leaves, ...captured];
    const def = customDef(`checkpoint(${fn.name || "fn"})`, {
      vjp: (deps, cts) => vjpTransform((...ys: Array[]) => replay(raws, sources, ys), deps, cts)[1],
    });
    const outs = wrapOutputs(def, [...ins, ...captured], ins.length, raws);
    return globalThis.Array.isArray(result) ? outs : outs[0];
  }) as F;
}

