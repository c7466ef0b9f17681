/**
 * @file Reverse mode: trace fn on fresh leaves, then walk the traced graph from the outputs back,
 * applying each primitive's vjp rule and summing cotangents where a value is used more than once.
 * Only a graph is built; the user's eval runs forward and backward together.
 */
import * as mx from "@tessera/core";
import { TransformError, type Array } from "@tessera/core";
import { dependentNodes } from "./walk.js";
import { checkArrayList, fmt, leavesFor, outputList, tracing } from "./trace.js";
import type { ArraysFor, OutputList, Outputs } from "./types.js";

const { lax, withRuleLog } = mx.internal;

/**
 * Cotangents of `sources` given cotangents of `outputs` (null entries are zero). Returns null for
 * a source that nothing reaches.
 */
export function backward(outputs: Array[], cotangents: (Array | null)[], sources: Array[]): (Array | null)[] {
  return withRuleLog(() => walkBackward(outputs, cotangents, sources), (cts) => cts);
}

function walkBackward(outputs: Array[], cotangents: (Array | null)[], sources: Array[]): (Array | null)[] {
  const { order, active } = dependentNodes(outputs, sources);
  const ct = new Map<Array, Array>();
  const accumulate = (x: Array, g: Array | null) => {
    if (!g || !active.has(x) || !mx.isFloating(x.dtype)) return;
    const prev = ct.get(x);
    ct.set(x, prev ? lax.add(prev, g) : g);
  };
  outputs.forEach((o, i) => accumulate(o, cotangents[i] && lax.cast(cotangents[i]!, o.dtype)));
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    const cts = node.outputs.map((y) => ct.get(y) ?? null);
    if (cts.every((c) => c === null)) continue;
    for (const y of node.outputs) ct.delete(y); // consumed: lets the JS graph of cotangents shrink
    const vjps = node.prim.vjp(node.inputs, cts, node.params, node.outputs);
    node.inputs.forEach((x, k) => accumulate(x, vjps[k] ?? null));
  }
  return sources.map((s) => ct.get(s) ?? null);
}

/**
 * `[outputs, vjps]`: fn's outputs at `primals`, and the cotangents of the primals given the
 * outputs' `cotangents`.
 *
 * Typed from `primals` and fn: fn takes one Array per primal, `cotangents` has one entry per
 * output ({@link OutputList}), and the vjps one per primal (tuples when the lists are literals).
 * @example
 * const [[y], [dx]] = vjp((x) => x.sin(), [x], [mx.onesLike(x)]); // dx = cos(x)
 */
export function vjp<const P extends readonly Array[], R extends Outputs>(
  fn: (...primals: ArraysFor<P>) => R,
  primals: P,
  cotangents: NoInfer<Readonly<OutputList<R>>>,
): [OutputList<R>, ArraysFor<P>];
export function vjp(fn: (...xs: Array[]) => Array | Array[], primals: Array[], cotangents: unknown): [Array[], Array[]] {
  const ps = checkArrayList("vjp", "primals", primals);
  const cts = checkArrayList("vjp", "cotangents", cotangents);
  return tracing(() => {
    const leaves = leavesFor(ps);
    const outs = outputList("vjp", fn(...leaves));
    if (cts.length !== outs.length) {
      throw new TransformError(`vjp: fn returned ${outs.length} outputs but ${cts.length} cotangents were given`);
    }
    outs.forEach((o, i) => {
      if (o.shape.length !== cts[i].shape.length || o.shape.some((d, k) => d !== cts[i].shape[k])) {
        throw new TransformError(`vjp: cotangent ${i} has shape ${fmt(cts[i].shape)} but output ${i} has shape ${fmt(o.shape)}`);
      }
    });
    const grads = backward(outs, cts, leaves);
    return [outs, grads.map((g, i) => g ?? mx.zerosLike(ps[i]))];
  });
}
