/**
 * @file vmap: trace fn on placeholders of per-example shape, then rebuild the traced graph with
 * each primitive's vmap rule, tracking which axis of each value is the batch axis (null: none).
 */
import * as mx from "@tessera/core";
import { TransformError, isArray, type Array } from "@tessera/core";
import { allNodes } from "./walk.js";
import { fmt, tracing, withLeaves } from "./trace.js";

const { lax, P, bind, withRuleLog } = mx.internal;

/**
 * Batch axes for vmap: a number (negative counts from the end), `null` (not mapped), or a JS array
 * or plain object of them matching the structure of the arguments or outputs.
 */
export type Axes = number | null | Axes[] | { [key: string]: Axes };

/** Options of {@link vmap}. */
export interface VmapOptions {
  /** Batch axis of each argument: a number, null (not mapped), or one entry (a tree) per argument. Default 0. */
  inAxes?: Axes;
  /** Where the batch axis goes in each output: a number, null (output not batched), or one per output. Default 0. */
  outAxes?: Axes;
}

/** Per-leaf axes of `tree`, with `spec` a number/null for every leaf or a tree matching it. */
function leafAxes(op: string, spec: Axes, tree: unknown, what: string): (number | null)[] {
  const leaves = mx.treeFlatten(tree);
  if (spec === null || typeof spec === "number") return leaves.map(() => spec);
  if (globalThis.Array.isArray(tree) && globalThis.Array.isArray(spec) && spec.length !== tree.length) {
    throw new TransformError(`${op}: ${what} has ${spec.length} entries but the value has ${tree.length}`);
  }
  try {
    return mx.treeFlatten(mx.treeMap((_leaf: unknown, ax: Axes) => ax, tree, spec)).map(([, a]) => a as number | null);
  } catch {
    throw new TransformError(`${op}: ${what} does not match the structure of its value`);
  }
}

function moveOut(x: Array, dim: number | null, to: number | null, size: number, index: number): Array {
  if (to === null) {
    if (dim !== null) throw new TransformError(`vmap: outAxes for output ${index} is null but the output depends on a mapped input`);
    return x;
  }
  const nd = x.ndim + (dim === null ? 1 : 0);
  if (!Number.isInteger(to) || to < -nd || to >= nd) {
    throw new TransformError(`vmap: outAxes ${to} is out of range for output ${index} with ${nd} dimensions`);
  }
  const target = to < 0 ? to + nd : to;
  if (dim === null) {
    const b = lax.broadcastTo(x, [size, ...x.shape]);
    return lax.moveaxis(b, 0, target);
  }
  return dim === target ? x : lax.moveaxis(x, dim, target);
}

/**
 * Vectorizes fn over a batch axis of its arguments.
 *
 * Typed from fn: the returned function takes fn's parameters and returns fn's return type (the
 * batch axis changes shapes, which are not part of the type). Unannotated parameters are Arrays.
 * @example
 * const perExample = vmap((x) => x.sum(), { inAxes: 0 });
 * perExample(mx.ones([3, 4])).tolist(); // [4, 4, 4]
 */
export function vmap<P extends readonly unknown[] = Array[], R = Array>(fn: (...args: P) => R, options?: VmapOptions): (...args: P) => R;
export function vmap(fn: (...args: unknown[]) => unknown, options: VmapOptions = {}) {
  if (typeof fn !== "function") throw new TransformError(`vmap: fn must be a function; got ${typeof fn}`);
  const { inAxes = 0, outAxes = 0 } = options;
  return (...args: unknown[]): unknown => {
    if (globalThis.Array.isArray(inAxes) && inAxes.length !== args.length) {
      throw new TransformError(`vmap: inAxes has ${inAxes.length} entries but fn was called with ${args.length} arguments`);
    }
    // Flatten every argument, find the batch size, and make placeholders for mapped leaves.
    let size = -1;
    let sizeFrom = "";
    const batched = new Map<Array, [Array, number]>(); // placeholder -> [value, axis]
    const tracedArgs = args.map((arg, i) => {
      const spec = globalThis.Array.isArray(inAxes) ? inAxes[i] : inAxes;
      const axes = leafAxes("vmap", spec, arg, `inAxes entry for argument ${i}`);
      const pairs = mx.treeFlatten(arg);
      const leaves = pairs.map(([path, leaf], k) => {
        const ax = axes[k];
        if (ax === null || ax === undefined) return leaf;
        if (!isArray(leaf)) throw new TransformError(`vmap: argument ${i}${path ? ` at "${path}"` : ""} is mapped (inAxes ${ax}) but is not an Array`);
        if (!Number.isInteger(ax) || ax < -leaf.ndim || ax >= leaf.ndim) {
          throw new TransformError(`vmap: inAxes ${ax} is out of range for argument ${i} of shape ${fmt(leaf.shape)}`);
        }
        const a = ax < 0 ? ax + leaf.ndim : ax;
        const n = leaf.shape[a];
        const where = `argument ${i}${path ? ` at "${path}"` : ""} has size ${n} along axis ${a}`;
        if (size === -1) [size, sizeFrom] = [n, where];
        else if (n !== size) throw new TransformError(`vmap: inconsistent sizes for mapped axes: ${sizeFrom}, but ${where}`);
        const ph = bind(P.placeholder, [], { shape: leaf.shape.filter((_, d) => d !== a), dtype: leaf.dtype })[0];
        batched.set(ph, [leaf, a]);
        return ph;
      });
      return withLeaves(pairs, leaves);
    });
    if (size === -1) throw new TransformError("vmap: at least one argument must be mapped (inAxes are all null)");

    // The traced graph is garbage once rebuilt: the rule log releases its nodes (docs/evaluation.md).
    const [outPairs, results] = withRuleLog(() => {
      const out = tracing(() => fn(...tracedArgs));
      const outPairs = mx.treeFlatten(out);
      outPairs.forEach(([path, o]) => {
        if (!isArray(o)) throw new TransformError(`vmap: fn must return Arrays; found ${typeof o}${path ? ` at "${path}"` : ""}`);
      });
      const outs = outPairs.map(([, o]) => o as Array);

      // Rebuild the traced graph with batch axes, inputs before users.
      const value = new Map<Array, [Array, number | null]>();
      for (const [ph, v] of batched) value.set(ph, v);
      const get = (x: Array): [Array, number | null] => value.get(x) ?? [x, null];
      for (const node of allNodes(outs, new Set(batched.keys()))) {
        const ins = node.inputs.map(get);
        if (ins.every(([, d]) => d === null)) continue; // does not depend on a mapped value
        const [ys, dims] = node.prim.vmap(ins.map(([x]) => x), ins.map(([, d]) => d), node.params, size);
        node.outputs.forEach((y, k) => value.set(y, [ys[k], dims[k]]));
      }
      const perOut = leafAxes("vmap", outAxes, out, "outAxes");
      const results = outs.map((o, i) => {
        const [y, d] = get(o);
        return moveOut(y, d, perOut[i], size, i);
      });
      return [outPairs, results] as const;
    }, ([, rs]) => rs);
    return withLeaves(outPairs, results);
  };
}
