/**
 * @file customFunction (user-supplied vjp/jvp/vmap rules) and checkpoint (recompute instead of
 * keep). Both wrap each output of a traced function in a node of their own primitive, whose
 * inputs are the function's inputs followed by the raw output; natively it is the identity of the
 * raw output, and its rules either call the user's or fall through to the raw output's graph.
 */
import * as mx from "@tessera/core";
import { TransformError, type Array } from "@tessera/core";
import { dependentNodes } from "./walk.js";
import { checkArrayList, leavesFor, outputList, tracing } from "./trace.js";
import { vjp as vjpTransform } from "./vjp.js";

const { bind } = mx.internal;
type PrimitiveDef<P> = mx.internal.PrimitiveDef<P>;

const IDENTITY = mx.internal.P.identity.opcode;

interface CustomParams {
  /** Which output this node is. */
  k: number;
  /** How many leading inputs are the function's arguments (the rest: captured values, then the raw output). */
  nIn: number;
  /** All raw outputs of the traced function. */
  raws: Array[];
}

type VjpFn = (primals: Array[], cotangents: Array[], outputs: Array[]) => Array[];
type JvpFn = (primals: Array[], tangents: Array[]) => Array[];
type VmapFn = (inputs: Array[], axes: (number | null)[]) => [Array[], (number | null)[]];

interface Rules {
  vjp?: (primals: Array[], cts: mx.internal.Tangent[], p: CustomParams) => (Array | null)[];
  jvp?: JvpFn;
  vmap?: VmapFn;
}

function customDef(name: string, rules: Rules): PrimitiveDef<CustomParams> {
  return {
    name,
    opcode: IDENTITY,
    abstractEval: (ins) => [ins[ins.length - 1]],
    encode: () => ({}),
    jvp: (primals, tangents, p) => {
      if (!rules.jvp) return [tangents[tangents.length - 1]]; // derived: the raw output's tangent
      const ins = primals.slice(0, p.nIn);
      const ts = ins.map((x, i) => tangents[i] ?? mx.zerosLike(x));
      return [rules.jvp(ins, ts)[p.k] ?? null];
    },
    vjp: (primals, cts, p) => {
      const rest = primals.length - 1;
      if (!rules.vjp) return [...new globalThis.Array(rest).fill(null), cts[0]]; // derived: through the raw graph
      return [...rules.vjp(primals, cts, p), null];
    },
    vmap: (args, dims, p) => {
      if (!rules.vmap) return [[args[args.length - 1]], [dims[dims.length - 1]]];
      const ins = args.slice(0, p.nIn);
      const [outs, axes] = rules.vmap(ins, dims.slice(0, p.nIn));
      return [[outs[p.k]], [axes[p.k] ?? null]];
    },
  };
}

function wrapOutputs(def: PrimitiveDef<CustomParams>, deps: Array[], nIn: number, raws: Array[]): Array[] {
  return raws.map((r, k) => bind(def, [...deps, r], { k, nIn, raws })[0]);
}

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
    // One node per output: pass zeros for the other outputs' cotangents (the rule is linear in them).
    rules.vjp = (primals, cts, p) => {
      const ins = primals.slice(0, p.nIn);
      const all = p.raws.map((o, j) => (j === p.k ? cts[0]! : mx.zerosLike(o)));
      const res = rule(ins, all, p.raws);
      if (!globalThis.Array.isArray(res) || res.length !== ins.length) {
        throw new TransformError(`customFunction: the vjp rule must return one cotangent per primal (${ins.length})`);
      }
      return res;
    };
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
      vjp: (primals, cts, p) => {
        const xs = primals.slice(0, sources.length);
        const [, grads] = vjpTransform((...ys: Array[]) => replay([p.raws[p.k]], sources, ys)[0], xs, [cts[0]!]);
        return grads;
      },
    });
    const outs = wrapOutputs(def, [...ins, ...captured], ins.length, raws);
    return globalThis.Array.isArray(result) ? outs : outs[0];
  }) as F;
}

