/** @file Gradient clipping by global norm, as MLX's clip_grad_norm. */
import * as mx from "@tessera/core";

/**
 * Scales a gradient tree so that its global L2 norm is at most `maxNorm`:
 * `g * min(maxNorm / (totalNorm + 1e-6), 1)`, as MLX. Returns `[clipped, totalNorm]`, the norm
 * before clipping as a 0-d float32 Array; each clipped leaf keeps its dtype. Lazy, like every op.
 * @example
 * const [clipped, norm] = optim.clipGradNorm(grads, 1.0);
 * opt.update(model, clipped);
 */
export function clipGradNorm<T>(grads: T, maxNorm: number): [T, mx.Array] {
  if (typeof maxNorm !== "number" || !(maxNorm >= 0)) throw new RangeError(`clipGradNorm: maxNorm must be a non-negative number; got ${String(maxNorm)}`);
  const leaves = mx.treeFlatten(grads as mx.Tree).map(([, g]) => g).filter(mx.isArray);
  let sq: mx.Array = mx.array(0, "float32");
  for (const g of leaves) sq = sq.add(g.astype(g.dtype === "float64" ? "float64" : "float32").square().sum());
  const totalNorm = sq.sqrt();
  const scale = mx.minimum(mx.div(maxNorm, totalNorm.add(1e-6)), 1);
  const clipped = mx.treeMap((g: unknown) => (mx.isArray(g) ? g.mul(scale.astype(g.dtype)) : g), grads);
  return [clipped as T, totalNorm];
}
