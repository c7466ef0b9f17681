/**
 * @file The public names of the API contract (API.md), enumerated: every function, namespace
 * member and constant it gives for @tessera/core, the `Array` properties and methods, and the
 * names of @tessera/transforms and @tessera/transforms/testing. The list is embedded here (CI's
 * clone has only this repository); keep it in step with API.md.
 *
 * Names not implemented yet are in NOT_YET, each with the issue that adds it. The test fails for
 * any missing name outside NOT_YET, and for any name in NOT_YET that now exists (so the set
 * shrinks as work lands: delete the entry when its issue lands). Every failure lists all the
 * offending names at once.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import * as transforms from "@tessera/transforms";
import * as testing from "@tessera/transforms/testing";

const DTYPES = [
  "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
  "float16", "bfloat16", "float32", "float64",
] as const;

/** API.md "Creation" (and `mx.array` from "Arrays and dtypes"). */
const CREATION = [
  "array", "zeros", "ones", "full", "zerosLike", "onesLike", "arange", "linspace", "eye", "identity", "tri", "tril",
  "triu", "meshgrid",
];
/** API.md "Elementwise". */
const ELEMENTWISE = (
  "add sub mul div floorDivide remainder pow maximum minimum neg abs sign square sqrt rsqrt exp expm1 log log1p " +
  "log2 log10 sin cos tan arcsin arccos arctan arctan2 sinh cosh tanh arcsinh arccosh arctanh sigmoid erf erfinv " +
  "floor ceil round clip isnan isinf isfinite nanToNum reciprocal logaddexp equal notEqual less lessEqual greater " +
  "greaterEqual logicalAnd logicalOr logicalNot bitwiseAnd bitwiseOr bitwiseXor leftShift rightShift where stopGradient"
).split(" ");
/** API.md "Reductions and scans". */
const REDUCTIONS = ["sum", "mean", "prod", "max", "min", "argmax", "argmin", "all", "any", "var", "std", "logsumexp"];
const SCANS = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "softmax", "logSoftmax"];
/** API.md "Shape and indexing": the shape ops proper (taking an array first) ... */
const SHAPE_OPS = [
  "reshape", "flatten", "transpose", "swapaxes", "moveaxis", "expandDims", "squeeze", "broadcastTo", "split", "tile",
  "repeat", "pad", "flip", "roll",
];
/** ... the two that take a JS array of arrays (functions only: there is no array to be `this`) ... */
const JOIN_OPS = ["concatenate", "stack"];
/** ... and indexing. */
const INDEXING = ["index", "slice", "at", "take", "takeAlongAxis", "putAlongAxis"];
/** API.md "Linear algebra, sorting, convolution". */
const LINALG_OPS = ["matmul", "addmm", "tensordot", "inner", "outer", "einsum"];
const SORTING = ["sort", "argsort", "partition", "argpartition", "topk"];
const CONV = ["conv1d", "conv2d", "conv3d", "convTranspose1d", "convTranspose2d"];
/** API.md "Trees, I/O, devices", "Evaluation" and memory. */
const TREES = ["treeFlatten", "treeUnflatten", "treeMap"];
const IO = ["save", "load", "savez", "saveSafetensors", "loadSafetensors"];
const DEVICES = ["defaultDevice", "setDefaultDevice", "isAvailable", "copy", "profile"];
const MEMORY = ["getActiveMemory", "getPeakMemory", "resetPeakMemory", "getCacheMemory", "clearCache", "setMemoryLimit"];
const EVAL = ["eval", "evalAsync"];
/** Conversion as a function too (`x.astype(dtype)` is `mx.astype(x, dtype)`). */
const CONVERSION = ["astype"];

/** Functions of `mx` (dotted names are namespace members). */
const CORE_FUNCTIONS = [
  ...CREATION, ...ELEMENTWISE, ...REDUCTIONS, ...SCANS, ...SHAPE_OPS, ...JOIN_OPS, ...INDEXING, ...LINALG_OPS,
  ...SORTING, ...CONV, ...TREES, ...IO, ...DEVICES, ...MEMORY, ...EVAL, ...CONVERSION,
  "Array",
  ...["norm", "inv", "cholesky", "qr", "svd", "solve", "eigh"].map((n) => `linalg.${n}`),
  ...["layerNorm", "rmsNorm", "rope", "scaledDotProductAttention"].map((n) => `fast.${n}`),
  ...[
    "seed", "key", "split", "uniform", "normal", "randint", "bernoulli", "categorical", "truncatedNormal", "gumbel",
    "permutation",
  ].map((n) => `random.${n}`),
];
/** Constants of `mx`: the dtypes (equal to their names) and the devices. */
const CORE_CONSTANTS = [...DTYPES, "cpu", "gpu"];

/**
 * Methods of Array (API.md: "The elementwise ops, reductions and scans, shape ops, `matmul`,
 * `astype`, `index`, `at`, `take`, `sort`, `argsort` and `topk` are also methods").
 */
const METHODS = [
  ...ELEMENTWISE, ...REDUCTIONS, ...SCANS, ...SHAPE_OPS, "matmul", "astype", "index", "at", "take", "sort", "argsort",
  "topk", "item", "tolist", "toTypedArray", "dispose",
];
/** Properties of an Array instance (checked as defined on an instance; `T` an Array). */
const PROPERTIES = ["shape", "ndim", "size", "dtype", "itemsize", "nbytes", "T"];

const TRANSFORMS = ["grad", "valueAndGrad", "vjp", "jvp", "vmap", "customFunction", "checkpoint", "compile"];
const TESTING = ["checkGrads", "arrayArb"];

/**
 * Names missing today, each with the issue that adds it. The test asserts these are still
 * missing: when one lands, remove it here.
 */
const NOT_YET = new Set<string>([]);

function lookup(root: unknown, dotted: string): unknown {
  let v: unknown = root;
  for (const part of dotted.split(".")) {
    if (v === null || v === undefined) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Every checked name (qualified, as in NOT_YET) with whether it is present. */
function survey(): Map<string, boolean> {
  const out = new Map<string, boolean>();
  const core = mx as unknown as Record<string, unknown>;
  for (const n of CORE_FUNCTIONS) out.set(`mx.${n}`, typeof lookup(core, n) === "function");
  for (const n of CORE_CONSTANTS) out.set(`mx.${n}`, lookup(core, n) !== undefined);
  const proto = (typeof core.Array === "function" ? (core.Array as { prototype: unknown }).prototype : {}) as Record<string, unknown>;
  for (const n of METHODS) out.set(`Array.prototype.${n}`, typeof proto[n] === "function");
  const x = mx.array([[1, 2], [3, 4]]) as unknown as Record<string, unknown>;
  for (const n of PROPERTIES) out.set(`Array#${n}`, x[n] !== undefined);
  for (const n of TRANSFORMS) out.set(`transforms.${n}`, typeof (transforms as Record<string, unknown>)[n] === "function");
  for (const n of TESTING) out.set(`testing.${n}`, typeof (testing as Record<string, unknown>)[n] === "function");
  return out;
}

describe("API.md names", () => {
  const present = survey();

  it("lists its names once each, and NOT_YET only names it lists", () => {
    expect(present.size).toBeGreaterThan(250);
    expect([...NOT_YET].filter((n) => !present.has(n))).toEqual([]);
  });

  it("every name outside NOT_YET exists (all missing names listed at once)", () => {
    const missing = [...present].filter(([n, ok]) => !ok && !NOT_YET.has(n)).map(([n]) => n);
    expect(missing, `missing from the API: ${missing.join(", ")}`).toEqual([]);
  });

  it("every name in NOT_YET is still missing (remove the ones that landed)", () => {
    const landed = [...NOT_YET].filter((n) => present.get(n) === true);
    expect(landed, `now implemented, remove from NOT_YET: ${landed.join(", ")}`).toEqual([]);
  });

  it("dtype constants equal their names; cpu and gpu are devices", () => {
    const core = mx as unknown as Record<string, unknown>;
    const wrong = DTYPES.filter((d) => core[d] !== d);
    expect(wrong, `dtype constants not equal to their names: ${wrong.join(", ")}`).toEqual([]);
    expect(mx.cpu).toMatchObject({ type: "cpu" });
    expect(mx.gpu).toMatchObject({ type: "gpu" });
  });

  it("Array instances have the properties and methods, with the right kinds of values", () => {
    const x = mx.array([[1, 2, 3], [4, 5, 6]]);
    expect(x).toBeInstanceOf(mx.Array);
    expect(x.shape).toEqual([2, 3]);
    expect([x.ndim, x.size, x.dtype, x.itemsize, x.nbytes]).toEqual([2, 6, "float32", 4, 24]);
    expect(x.T.shape).toEqual([3, 2]);
    expect(x.T).toBeInstanceOf(mx.Array);
    expect(mx.array(7).item()).toBe(7);
    expect(x.tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(x.toTypedArray()).toEqual(new Float32Array([1, 2, 3, 4, 5, 6]));
    expect(x.astype("int32").dtype).toBe("int32");
    // A method is the op with the array first.
    expect(x.add(1).tolist()).toEqual(mx.add(x, 1).tolist());
    expect(x.sum(1).tolist()).toEqual([6, 15]);
    const y = mx.array([1]);
    y.dispose();
    expect(() => y.tolist()).toThrow();
  });
});
