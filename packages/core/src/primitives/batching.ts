/** @file Shared vmap helpers for primitive rules: moving and materializing batch axes. */
import type { Array } from "../array.js";
import type { PrimitiveDef } from "../primitive.js";
import { bind } from "../primitive.js";
import * as lax from "../lax.js";

/** Moves the batch axis to the front, or broadcasts an unbatched value to have one. */
export function batchToFront(x: Array, dim: number | null, size: number): Array {
  if (dim === null) return lax.broadcastTo(x, [size, ...x.shape]);
  return dim === 0 ? x : lax.moveaxis(x, dim, 0);
}

/**
 * The vmap rule of elementwise primitives: if every batched input has its batch axis at the same
 * place and none is unbatched, the batch axis passes through; otherwise all go to the front.
 */
export function elementwiseVmap<P>(def: () => PrimitiveDef<P>) {
  return (args: Array[], dims: (number | null)[], params: P, size: number): [Array[], (number | null)[]] => {
    const d0 = dims[0];
    if (d0 !== null && dims.every((d) => d === d0)) {
      const outs = bind(def(), args, params);
      return [outs, outs.map(() => d0)];
    }
    const outs = bind(def(), args.map((x, i) => batchToFront(x, dims[i], size)), params);
    return [outs, outs.map(() => 0)];
  };
}
