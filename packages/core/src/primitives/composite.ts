/**
 * @file Derivative rules of a fused primitive taken from the same computation written with plain
 * lax ops: the plain function is traced on fresh views of the primals and the plain primitives'
 * own jvp and vjp rules are walked over it (forward or backward), as the transforms do. The
 * fused kernels' backward primitives get their jvp and vjp this way, so higher derivatives
 * reuse rules that are already tested.
 */
import type { Array, Node } from "../array.js";
import { isFloating } from "../dtype.js";
import type { Tangent } from "../primitive.js";
import * as lax from "../lax.js";
import { dependentNodes as dependent } from "../walk.js";


/** Fresh views of the primals, so a value passed twice (q as k) gets two tangents. */
const leaves = (xs: Array[]) => xs.map((x) => lax.identity(x));

/** The tangents of fn's outputs at `primals` along `tangents` (null: zero). */
export function compositeJvp(fn: (...xs: Array[]) => Array[], primals: Array[], tangents: Tangent[]): Tangent[] {
  const src = leaves(primals);
  const outs = fn(...src);
  const { order } = dependent(outs, src);
  const tan = new Map<Array, Array>();
  src.forEach((s, i) => {
    const t = tangents[i];
    if (t && isFloating(s.dtype)) tan.set(s, lax.cast(t, s.dtype));
  });
  for (const node of order) {
    const ts = node.inputs.map((x) => tan.get(x) ?? null);
    if (ts.every((t) => t === null)) continue;
    const res = node.prim.jvp(node.inputs, ts, node.params, node.outputs);
    node.outputs.forEach((y, k) => {
      const t = res[k];
      if (t && isFloating(y.dtype)) tan.set(y, t);
    });
  }
  return outs.map((o) => tan.get(o) ?? null);
}

/** The cotangents of `primals` for cotangents `cts` of fn's outputs (null: zero). */
export function compositeVjp(fn: (...xs: Array[]) => Array[], primals: Array[], cts: Tangent[]): Tangent[] {
  const src = leaves(primals);
  const outs = fn(...src);
  const { order, active } = dependent(outs, src);
  const ct = new Map<Array, Array>();
  const accumulate = (x: Array, g: Tangent) => {
    if (!g || !active.has(x) || !isFloating(x.dtype)) return;
    const prev = ct.get(x);
    ct.set(x, prev ? lax.add(prev, g) : g);
  };
  outs.forEach((o, i) => accumulate(o, cts[i] && lax.cast(cts[i]!, o.dtype)));
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    const gs = node.outputs.map((y) => ct.get(y) ?? null);
    if (gs.every((g) => g === null)) continue;
    const res = node.prim.vjp(node.inputs, gs, node.params, node.outputs);
    node.inputs.forEach((x, k) => accumulate(x, res[k] ?? null));
  }
  return src.map((s) => ct.get(s) ?? null);
}
