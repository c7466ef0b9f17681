/**
 * The lazy Array, dtypes, ops, evaluation, memory, trees and devices.
 * @module @tessera/core
 * @file The public surface of @tessera/core: explicit re-exports only.
 */
import "./methods.js";
import { isArray, type Array } from "./array.js";
import { evaluate, evaluateAsync } from "./eval/eval.js";
import { treeLeaves } from "./tree.js";

export { Array, isArray, type ArrayLike, type Scalar, type Aval, type Node, type NestedList } from "./array.js";
export {
  type DType, bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64, float16, bfloat16, float32, float64,
  promoteTypes, isFloating, isInteger, itemsize,
} from "./dtype.js";
export { ShapeError, DTypeError, TransformError, DisposedError, InternalError } from "./errors.js";
export * from "./ops/creation.js";
export * from "./ops/elementwise.js";
export {
  sum, prod, max, min, all, any, mean, variance as var, std, argmax, argmin, logsumexp, softmax, logSoftmax,
  type ReduceOptions, type VarOptions,
} from "./ops/reduce.js";
export {
  cumsum, cumprod, cummax, cummin, logcumsumexp, sort, argsort, partition, argpartition, topk, type ScanOptions,
} from "./ops/scan.js";
export {
  astype, reshape, flatten, transpose, swapaxes, moveaxis, expandDims, squeeze, broadcastTo, concatenate, stack,
  split, flip, tile, repeat, pad, roll, copy, type PadOptions,
} from "./ops/shape.js";
export { matmul } from "./ops/linalg.js";
export { addmm, tensordot, inner, outer, type AddmmOptions } from "./ops/linalg.js";
export { einsum } from "./ops/einsum.js";
export {
  conv1d, conv2d, conv3d, convTranspose1d, convTranspose2d, convTranspose3d, convGeneral, maxPool, avgPool,
  type ConvOptions, type ConvTransposeOptions, type ConvGeneralOptions, type PoolOptions, type SpatialArg,
} from "./ops/conv.js";
/**
 * Fused-style ops with MLX's semantics: `layerNorm`, `rmsNorm`, `rope`, `scaledDotProductAttention`.
 * @example
 * mx.fast.rmsNorm(x, weight, 1e-5);
 */
export * as fast from "./fast.js";
export { index, slice, Slice, type IndexEntry, at, type ArrayAt, take, takeAlongAxis, putAlongAxis } from "./ops/indexing.js";
/**
 * Key-based random numbers (Threefry-2x32, as JAX and MLX): `seed`, `key`, `split`, `uniform`,
 * `normal`, `randint`, `bernoulli`, `categorical`, `truncatedNormal`, `gumbel`, `permutation`.
 * @example
 * const x = mx.random.normal([2, 3], { key: mx.random.key(0) });
 */
export * as random from "./random.js";
/**
 * Linear algebra on the last two axes, batched over the leading ones: `norm`, `inv`, `solve`,
 * `cholesky`, `qr`, `eigh`, `svd` (float32 and float64, computed in double).
 * @example
 * const [q, r] = mx.linalg.qr(a);
 * const x = mx.linalg.solve(a, b);
 */
export * as linalg from "./linalg.js";
export { treeFlatten, treeUnflatten, treeMap, isPlainObject, type Tree } from "./tree.js";
export { save, savez, load } from "./io/numpy.js";
export { saveSafetensors, loadSafetensors } from "./io/safetensors.js";
export { cpu, gpu, defaultDevice, setDefaultDevice, isAvailable, type Device, type DeviceOptions } from "./device.js";
export { profile, type Profile, type ProfileRow } from "./profile.js";
export {
  getActiveMemory, getPeakMemory, resetPeakMemory, getCacheMemory, clearCache, setMemoryLimit,
} from "./memory.js";

function collect(trees: unknown[], op: string): Array[] {
  // Arrays alone (`mx.eval(x, y)`): the leaves are the arguments, with no tree to walk.
  if (trees.every(isArray)) return trees as Array[];
  return treeLeaves(trees, isArray, op);
}

/**
 * Evaluates every array found in the arguments (arrays, JS arrays and plain objects nested to
 * any depth) in one pass over their shared graph.
 * @example
 * mx.eval(model.parameters(), opt.state, loss);
 */
function evalTrees(...trees: unknown[]): void {
  evaluate(collect(trees, "eval"), "eval");
}
/**
 * Like eval, off the JavaScript thread: the program runs on a worker thread of the addon and the
 * promise resolves when every array is computed (it rejects with the error of a failing op).
 * @example
 * await mx.evalAsync(loss, grads);
 */
export function evalAsync(...trees: unknown[]): Promise<void> {
  return evaluateAsync(collect(trees, "evalAsync"), "evalAsync");
}
export { evalTrees as eval };

/**
 * Internals for @tessera/transforms and tests: the primitive layer and the evaluation probe.
 * Not part of the public contract (left out of the generated reference).
 * @internal
 */
export * as internal from "./internal.js";
