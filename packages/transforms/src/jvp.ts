/**
 * @file Forward mode: trace fn on fresh leaves, then walk the graph forward from them, applying
 * each primitive's jvp rule. Tangents are symbolic zeros (null) until something makes them real.
 */
import * as mx from "@tessera/core";
import { TransformError, type Array } from "@tessera/core";
import { dependentNodes } from "./walk.js";
import { checkArrayList, fmt, leavesFor, outputList, tracing } from "./trace.js";
import type { ArraysFor, OutputList, Outputs } from "./types.js";

const { lax, withRuleLog } = mx.internal;

/** Tangents of `outputs` given tangents of `sources` (null where zero). */
export function forward(outputs: Array[], sources: Array[], tangents: (Array | null)[]): (Array | null)[] {
  return withRuleLog(() => walkForward(outputs, sources, tangents), (ts) => ts);
}

function walkForward(outputs: Array[], sources: Array[], tangents: (Array | null)[]): (Array | null)[] {
  const { order } = dependentNodes(outputs, sources);
  const tan = new Map<Array, Array>();
  sources.forEach((s, i) => {
    const t = tangents[i];
    if (t && mx.isFloating(s.dtype)) tan.set(s, lax.cast(t, s.dtype));
  });
  for (const node of order) {
    const ts = node.inputs.map((x) => tan.get(x) ?? null);
    if (ts.every((t) => t === null)) continue;
    const outs = node.prim.jvp(node.inputs, ts, node.params, node.outputs);
    node.outputs.forEach((y, k) => {
      const t = outs[k];
      if (t && mx.isFloating(y.dtype)) tan.set(y, t);
    });
  }
  return outputs.map((o) => tan.get(o) ?? null);
}

/**
 * `[outputs, jvps]`: fn's outputs at `primals`, and their directional derivatives along `tangents`.
 *
 * Typed from `primals` and fn: fn takes one Array per primal, `tangents` has one entry per primal,
 * and the outputs and jvps one per output ({@link OutputList}; tuples when the lists are literals).
 * @example
 * const [[y], [dy]] = jvp((x) => x.square(), [x], [mx.onesLike(x)]); // dy = 2x
 */
export function jvp<const P extends readonly Array[], R extends Outputs>(
  fn: (...primals: ArraysFor<P>) => R,
  primals: P,
  tangents: NoInfer<Readonly<ArraysFor<P>>>,
): [OutputList<R>, OutputList<R>];
export function jvp(fn: (...xs: Array[]) => Array | Array[], primals: Array[], tangents: unknown): [Array[], Array[]] {
  const ps = checkArrayList("jvp", "primals", primals);
  const ts = checkArrayList("jvp", "tangents", tangents);
  if (ps.length !== ts.length) throw new TransformError(`jvp: ${ps.length} primals but ${ts.length} tangents were given`);
  ps.forEach((p, i) => {
    if (p.shape.length !== ts[i].shape.length || p.shape.some((d, k) => d !== ts[i].shape[k])) {
      throw new TransformError(`jvp: tangent ${i} has shape ${fmt(ts[i].shape)} but primal ${i} has shape ${fmt(p.shape)}`);
    }
  });
  return tracing(() => {
    const leaves = leavesFor(ps);
    const outs = outputList("jvp", fn(...leaves));
    const out = forward(outs, leaves, ts);
    return [outs, out.map((t, i) => t ?? mx.zerosLike(outs[i]))];
  });
}
