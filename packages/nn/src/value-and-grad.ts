/** @file nn.valueAndGrad: gradients of a function of a model with respect to its trainable parameters. */
import { valueAndGrad as txValueAndGrad } from "@tessera/transforms";
import * as mx from "@tessera/core";
import type { Array } from "@tessera/core";
import { mapWithPath, type Module, type ParamTree } from "./module.js";

/**
 * `(...args) => [value, grads]` for `fn`, a function that calls `model`: `grads` holds the
 * gradients with respect to `model.trainableParameters()`, in the same tree shape. During the call
 * the trainable parameters are swapped for traced copies, and restored afterwards (even on error);
 * state that `fn` changes otherwise (BatchNorm's running statistics) is kept. If `fn` returns a JS
 * array, its first element is the loss and `value` is the whole array.
 * @example
 * const step = nn.valueAndGrad(model, (x: mx.Array, y: mx.Array) =>
 *   nn.losses.mseLoss(model.forward(x), y, { reduction: "mean" }));
 * const [loss, grads] = step(x, y);
 */
export function valueAndGrad<A extends unknown[], R extends Array | Array[]>(
  model: Module,
  fn: (...args: A) => R,
): (...args: A) => [R, ParamTree] {
  if (typeof fn !== "function") throw new TypeError(`nn.valueAndGrad: fn must be a function; got ${typeof fn}`);
  return (...args: A) => {
    const originals = model.trainableParameters();
    const pairs = mx.treeFlatten(originals) as [string, Array][];
    // The traced leaves travel as a flat list (a list's tree has no holes), their paths beside it.
    const inner = txValueAndGrad(
      ((leaves: Array[], ...rest: A) => {
        model.update(mx.treeUnflatten(leaves.map((leaf, i): [string, Array] => [pairs[i][0], leaf])));
        return fn(...rest);
      }) as unknown as (...xs: Array[]) => Array,
    ) as unknown as (leaves: Array[], ...rest: A) => [R, Array[]];
    const byPath = new Map<string, Array>();
    let value: R;
    try {
      const [v, grads] = inner(pairs.map(([, a]) => a), ...args);
      value = v;
      grads.forEach((g, i) => byPath.set(pairs[i][0], g));
    } finally {
      model.update(originals);
    }
    return [value, mapWithPath(originals, (path) => byPath.get(path)) as ParamTree];
  };
}
