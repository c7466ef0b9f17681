/**
 * Devices: every op takes `{ device }` and records its nodes there (nested ops too); the default
 * device does the same; inputs on another device are transferred when the program runs, and
 * `mx.copy(x, { device })` copies explicitly (values exact, gradients sent back).
 *
 * The test device is "cpu:1", a second cpu backend that the addon registers when
 * TESSERA_TEST_DEVICE is set (vitest.config.ts): in JS the device { type: "cpu", index: 1 }, native
 * index 1, with its own allocator; it does not support matmul. mx.gpu is not available here, so
 * `{ device: mx.gpu }` must throw at the call, naming the op.
 */
import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import { OPS as ROWS, type Domain, type OpCase } from "./op-table.js";

type A = mx.Array;
type Opts = mx.DeviceOptions;
const testDevice: mx.Device = { type: "cpu", index: 1 };
const { native } = mx.internal;

/** The native device index of an evaluated array's data. */
const dataDevice = (a: A) => native.describe(a.handle).device;

// Inputs are made with mx.array (data uploaded at once, on the default device), so the only
// nodes of an op's result are the op's own.
const f23 = () => mx.array([[0.5, -1.5, 2], [3, -0.25, 1]]);
const row = () => mx.array([1, 2, 3]);
const unit = () => mx.array([[0.1, -0.5, 0.9], [0.3, 0.7, -0.2]]);
const spd3 = () => mx.array([[4, 1, 0], [1, 3, 1], [0, 1, 2]]);
const i23 = () => mx.array([[1, 2, 3], [4, 5, 6]], "int32");
const b3 = () => mx.array([true, false, true]);
const k7 = () => mx.array([0, 7], "uint32"); // a random key, uploaded
/** A file of f23() (and i23()) in each format, written once under the OS temp directory. */
const ioDir = mkdtempSync(join(tmpdir(), "tessera-devices-"));
afterAll(() => rmSync(ioDir, { recursive: true, force: true }));
function ioFile(ext: ".npy" | ".npz" | ".safetensors"): string {
  const p = join(ioDir, `x${ext}`);
  if (existsSync(p)) return p;
  if (ext === ".npy") mx.save(p, f23());
  else if (ext === ".npz") mx.savez(p, { a: f23(), b: i23() });
  else mx.saveSafetensors(p, { a: f23(), b: i23() });
  return p;
}

interface OpCall {
  /** Calls the op with valid arguments and `o` at the end or in its options slot. */
  call: (o: Opts) => A | A[];
  /** The op its errors name, when the export is another name of it (the same function). */
  errorName?: string;
  /** The device cannot run it: evaluation fails with an Error naming these. */
  unsupported?: RegExp[];
}

/** Three values inside a row's domain (integers for rows tested on integers only). */
const valuesIn = (d: Domain): number[] =>
  globalThis.Array.isArray(d) ? [0.2, 0.5, 0.8].map((t) => d[0] + t * (d[1] - d[0])) : [d.abs[0], -(d.abs[0] + d.abs[1]) / 2, d.abs[1]];
/** The elementwise ops, called as their row of the op table describes them. */
function fromRow(r: OpCase): OpCall {
  const dtype: mx.DType = r.dtypes.includes("float32") ? "float32" : "int32";
  const args = () => r.domain.map((d) => mx.array(dtype === "int32" ? [1, 2, 3] : valuesIn(d), dtype));
  return { call: (o) => (r.fn as (...xs: unknown[]) => A)(...args(), o) };
}
const ELEMENTWISE: Record<string, OpCall> = {};
for (const r of ROWS) {
  if (r.fn === (mx as Record<string, unknown>)[r.name] && !(r.name in ELEMENTWISE)) ELEMENTWISE[r.name] = fromRow(r);
}
// Other names of the same functions (subtract is sub): their errors name the op itself.
for (const [name, fn] of Object.entries(mx)) {
  const of = Object.keys(ELEMENTWISE).find((n) => (mx as Record<string, unknown>)[n] === fn && n !== name);
  if (of && !(name in ELEMENTWISE)) ELEMENTWISE[name] = { ...ELEMENTWISE[of], errorName: of };
}

/**
 * How to call each op of @tessera/core. Every exported function is either here or in NOT_OPS, so a
 * new op cannot go unchecked. The arguments are chosen so that the op computes something: the
 * cases where an op returns its input itself are in UNCHANGED below.
 */
/** An uploaded array of the given shape holding 1, 2, 3, ... (no pending node). */
const nd = (shape: number[]): A => {
  let k = 0;
  const build = (d: number): unknown => (d === shape.length ? ++k : Array.from({ length: shape[d] }, () => build(d + 1)));
  return mx.array(build(0) as number[], "float32");
};
const OPS: Record<string, OpCall> = {
  // creation
  array: { call: (o) => mx.array([1, 2, 3], undefined, o) },
  full: { call: (o) => mx.full([2, 3], 7, undefined, o) },
  zeros: { call: (o) => mx.zeros([2, 3], undefined, o) },
  ones: { call: (o) => mx.ones([2, 3], "int32", o) },
  zerosLike: { call: (o) => mx.zerosLike(f23(), undefined, o) },
  onesLike: { call: (o) => mx.onesLike(f23(), "int64", o) },
  // arange parses its positional arguments loosely: the options object ends them, whichever they are.
  arange: {
    call: (o) => [mx.arange(5, o), mx.arange(1, 5, o), mx.arange(0, 1, 0.25, o), mx.arange(1, 9, 2, "float32", o), mx.arange(5, "int64", o)],
  },
  linspace: { call: (o) => mx.linspace(0, 1, 5, undefined, o) },
  eye: { call: (o) => mx.eye(3, undefined, undefined, undefined, o) },
  identity: { call: (o) => mx.identity(3, undefined, o) },
  tri: { call: (o) => mx.tri(3, 4, 1, undefined, o) },
  tril: { call: (o) => mx.tril(f23(), 0, o) },
  triu: { call: (o) => mx.triu(f23(), 1, o) },
  meshgrid: { call: (o) => mx.meshgrid(row(), mx.array([4, 5]), { indexing: "ij", ...o }) },
  // every elementwise op with a row in the op table (test/core/op-table.ts), and its other names
  ...ELEMENTWISE,
  // elementwise ops whose rows call them with fixed extra arguments
  where: { call: (o) => mx.where(b3(), row(), 0, o) },
  clip: { call: (o) => mx.clip(f23(), -1, 1, o) },
  nanToNum: { call: (o) => mx.nanToNum(mx.array([NaN, Infinity, -Infinity, 1]), { nan: 5, ...o }) },
  divmod: { call: (o) => mx.divmod(f23(), 2, o) },
  // reductions
  sum: { call: (o) => mx.sum(f23(), undefined, o) },
  prod: { call: (o) => mx.prod(f23(), 1, o) },
  max: { call: (o) => mx.max(f23(), 0, { keepdims: true, ...o }) },
  min: { call: (o) => mx.min(f23(), undefined, o) },
  all: { call: (o) => mx.all(b3(), undefined, o) },
  any: { call: (o) => mx.any(b3(), undefined, o) },
  mean: { call: (o) => mx.mean(i23(), 1, o) },
  var: { call: (o) => mx.var(f23(), 1, { ddof: 1, ...o }) },
  std: { call: (o) => mx.std(f23(), undefined, o) },
  argmax: { call: (o) => mx.argmax(f23(), 1, o) },
  argmin: { call: (o) => mx.argmin(f23(), undefined, o) },
  logsumexp: { call: (o) => mx.logsumexp(f23(), 1, o) },
  softmax: { call: (o) => mx.softmax(f23(), -1, o) },
  logSoftmax: { call: (o) => mx.logSoftmax(f23(), 0, o) },
  // scans and sorting
  cumsum: { call: (o) => mx.cumsum(f23(), 1, o) },
  cumprod: { call: (o) => mx.cumprod(i23(), undefined, { reverse: true, ...o }) },
  cummax: { call: (o) => mx.cummax(f23(), 0, o) },
  cummin: { call: (o) => mx.cummin(f23(), -1, { inclusive: false, ...o }) },
  logcumsumexp: { call: (o) => mx.logcumsumexp(f23(), 1, o) },
  sort: { call: (o) => mx.sort(f23(), -1, o) },
  argsort: { call: (o) => mx.argsort(f23(), 0, o) },
  partition: { call: (o) => mx.partition(f23(), 1, -1, o) },
  argpartition: { call: (o) => mx.argpartition(f23(), 0, 0, o) },
  topk: { call: (o) => mx.topk(f23(), 2, 1, o) },
  // convolution and pooling
  conv1d: { call: (o) => mx.conv1d(nd([1, 5, 2]), nd([3, 2, 2]), { stride: 2, ...o }) },
  conv2d: { call: (o) => mx.conv2d(nd([1, 4, 4, 2]), nd([2, 3, 3, 1]), { padding: 1, groups: 2, ...o }) },
  conv3d: { call: (o) => mx.conv3d(nd([1, 3, 3, 3, 1]), nd([1, 2, 2, 2, 1]), o) },
  convTranspose1d: { call: (o) => mx.convTranspose1d(nd([1, 3, 2]), nd([1, 2, 2]), { stride: 2, ...o }) },
  convTranspose2d: { call: (o) => mx.convTranspose2d(nd([1, 2, 2, 1]), nd([1, 3, 3, 1]), { stride: 2, padding: 1, outputPadding: 1, ...o }) },
  convTranspose3d: { call: (o) => mx.convTranspose3d(nd([1, 2, 2, 2, 1]), nd([1, 2, 2, 2, 1]), o) },
  convGeneral: { call: (o) => mx.convGeneral(nd([1, 4, 1]), nd([1, 2, 1]), { padding: [[1], [0]], inputDilation: 2, flip: true, ...o }) },
  maxPool: { call: (o) => mx.maxPool(nd([1, 6, 1]), 2, o) },
  avgPool: { call: (o) => mx.avgPool(nd([1, 2, 3, 1]), [2, 2], { stride: 1, ...o }) },
  // shape
  astype: { call: (o) => mx.astype(f23(), "int32", o) },
  reshape: { call: (o) => mx.reshape(f23(), [3, 2], o) },
  flatten: { call: (o) => mx.flatten(f23(), 0, -1, o) },
  transpose: { call: (o) => mx.transpose(f23(), undefined, o) },
  swapaxes: { call: (o) => mx.swapaxes(f23(), 0, 1, o) },
  moveaxis: { call: (o) => mx.moveaxis(f23(), 0, 1, o) },
  expandDims: { call: (o) => mx.expandDims(f23(), 0, o) },
  squeeze: { call: (o) => mx.squeeze(mx.array([[1, 2, 3]]), undefined, o) },
  broadcastTo: { call: (o) => mx.broadcastTo(row(), [2, 3], o) },
  concatenate: { call: (o) => mx.concatenate([f23(), f23()], 1, o) },
  stack: { call: (o) => mx.stack([f23(), f23()], 0, o) },
  split: { call: (o) => mx.split(f23(), 3, 1, o) },
  flip: { call: (o) => mx.flip(f23(), undefined, o) },
  tile: { call: (o) => mx.tile(f23(), [2, 1], o) },
  repeat: { call: (o) => mx.repeat(f23(), 2, 1, o) },
  pad: { call: (o) => mx.pad(f23(), 1, { value: 9, ...o }) },
  roll: { call: (o) => mx.roll(f23(), 1, 1, o) },
  copy: { call: (o) => mx.copy(f23(), o) },
  // indexing and linear algebra
  index: { call: (o) => mx.index(f23(), 0, mx.slice(null, null, 2), o) },
  take: { call: (o) => mx.take(f23(), mx.array([2, -1], "int32"), 1, o) },
  takeAlongAxis: { call: (o) => mx.takeAlongAxis(f23(), mx.array([[0], [2]], "int32"), 1, o) },
  putAlongAxis: { call: (o) => mx.putAlongAxis(f23(), mx.array([[0], [2]], "int32"), 9, 1, o) },
  at: { call: (o) => mx.at(f23(), mx.array([1, 1], "int32")).add(1, o) },
  matmul: { call: (o) => mx.matmul(f23(), mx.array([[1, 2], [3, 4], [5, 6]]), o), unsupported: [/matmul/, /cpu:1/] },
  // contractions (one batched matmul each, except outer's broadcast product)
  addmm: { call: (o) => mx.addmm(row(), unit(), mx.array([[1, 0, 2], [0, 1, 3], [1, 1, 1]]), { alpha: 2, beta: 0.5, ...o }), unsupported: [/matmul/, /cpu:1/] },
  tensordot: { call: (o) => mx.tensordot(f23(), unit(), [[0, 1], [0, 1]], o), unsupported: [/matmul/, /cpu:1/] },
  inner: { call: (o) => mx.inner(f23(), unit(), o), unsupported: [/matmul/, /cpu:1/] },
  outer: { call: (o) => mx.outer(row(), f23(), o) },
  einsum: { call: (o) => mx.einsum("ij,kj->ik", f23(), unit(), o), unsupported: [/matmul/, /cpu:1/] },
  // the mx.fast namespace
  "fast.layerNorm": { call: (o) => mx.fast.layerNorm(f23(), row(), row(), 1e-5, o) },
  "fast.rmsNorm": { call: (o) => mx.fast.rmsNorm(f23(), row(), 1e-5, o) },
  "fast.rope": { call: (o) => [mx.fast.rope(unit(), 2, { offset: 1, ...o }), mx.fast.rope(unit(), 2, { traditional: true, ...o })] },
  "fast.scaledDotProductAttention": {
    call: (o) => mx.fast.scaledDotProductAttention(mx.array([[f23().tolist()]]), mx.array([[unit().tolist()]]), mx.array([[f23().tolist()]]), { mask: "causal", ...o }),
  },
  // the mx.random namespace, with explicit keys (the same numbers on both devices)
  // linalg (float32 matrices, square and well-conditioned where the op needs it)
  "linalg.norm": { call: (o) => [mx.linalg.norm(f23(), undefined, undefined, o), mx.linalg.norm(f23(), "nuc", undefined, { keepdims: true, ...o })] },
  "linalg.inv": { call: (o) => mx.linalg.inv(spd3(), o) },
  "linalg.solve": { call: (o) => mx.linalg.solve(spd3(), row(), o) },
  "linalg.cholesky": { call: (o) => mx.linalg.cholesky(spd3(), o) },
  "linalg.qr": { call: (o) => mx.linalg.qr(f23(), o) },
  "linalg.eigh": { call: (o) => mx.linalg.eigh(spd3(), o) },
  "linalg.svd": { call: (o) => mx.linalg.svd(f23(), o) },
  "random.key": { call: (o) => mx.random.key(7, o) },
  "random.split": { call: (o) => mx.random.split(k7(), 3, o) },
  "random.uniform": { call: (o) => mx.random.uniform(-1, 1, [2, 3], { key: k7(), ...o }) },
  "random.normal": { call: (o) => mx.random.normal([2, 3], { loc: 1, scale: 2, key: k7(), ...o }) },
  "random.randint": { call: (o) => mx.random.randint(-5, 5, [2, 3], { key: k7(), ...o }) },
  "random.bernoulli": { call: (o) => mx.random.bernoulli(0.3, [2, 3], { key: k7(), ...o }) },
  "random.categorical": { call: (o) => mx.random.categorical(f23(), { numSamples: 4, key: k7(), ...o }) },
  "random.truncatedNormal": { call: (o) => mx.random.truncatedNormal(-1, 2, [2, 3], { key: k7(), ...o }) },
  "random.gumbel": { call: (o) => mx.random.gumbel([2, 3], { dtype: "float64", key: k7(), ...o }) },
  "random.permutation": { call: (o) => [mx.random.permutation(5, { key: k7(), ...o }), mx.random.permutation(f23(), { axis: 1, key: k7(), ...o })] },
  // I/O: loading uploads the file's arrays to the device (the save functions are in NOT_OPS)
  load: { call: (o) => [mx.load(ioFile(".npy"), o) as A, ...Object.values(mx.load(ioFile(".npz"), o) as Record<string, A>)] },
  loadSafetensors: { call: (o) => Object.values(mx.loadSafetensors(ioFile(".safetensors"), o).arrays) },
};

/** Exported functions that are not ops (constants such as dtypes and devices are not functions). */
const NOT_OPS = new Set([
  "eval", "evalAsync", "profile", "treeFlatten", "treeUnflatten", "treeMap", "isPlainObject", "isArray",
  "promoteTypes", "isFloating", "isInteger", "itemsize",
  "defaultDevice", "setDefaultDevice", "isAvailable",
  "getActiveMemory", "getPeakMemory", "resetPeakMemory", "getCacheMemory", "clearCache", "setMemoryLimit",
  "ShapeError", "DTypeError", "TransformError", "DisposedError", "InternalError",
  "Array", "Slice", "slice", // the class, and the index-spec constructor (a Slice, not an array)
  "random.seed", // sets the global key
  "save", "savez", "saveSafetensors", // write files (they read arrays wherever they are)
]);

/**
 * Ops that return their input itself when there is nothing to do: no node is recorded, so the
 * result stays where the input is (a later op on another device transfers it when it runs).
 */
const UNCHANGED: { name: string; reason: string; call: (o: Opts) => [result: A | A[], input: A] }[] = [
  { name: "array", reason: "an Array without a dtype is returned as it is", call: (o) => { const x = f23(); return [mx.array(x, undefined, o), x]; } },
  { name: "astype", reason: "a cast to the array's own dtype is the identity", call: (o) => { const x = f23(); return [mx.astype(x, "float32", o), x]; } },
  { name: "reshape", reason: "reshaping to the same shape", call: (o) => { const x = f23(); return [mx.reshape(x, [2, 3], o), x]; } },
  { name: "flatten", reason: "a 1-D array is already flat", call: (o) => { const x = row(); return [mx.flatten(x, 0, -1, o), x]; } },
  { name: "transpose", reason: "the permutation of a 1-D array is the identity", call: (o) => { const x = row(); return [mx.transpose(x, undefined, o), x]; } },
  { name: "swapaxes", reason: "swapping an axis with itself", call: (o) => { const x = f23(); return [mx.swapaxes(x, 1, 1, o), x]; } },
  { name: "moveaxis", reason: "moving an axis to where it is", call: (o) => { const x = f23(); return [mx.moveaxis(x, 1, 1, o), x]; } },
  { name: "squeeze", reason: "no axis of size 1 to remove", call: (o) => { const x = f23(); return [mx.squeeze(x, undefined, o), x]; } },
  { name: "broadcastTo", reason: "broadcasting to the array's own shape", call: (o) => { const x = f23(); return [mx.broadcastTo(x, [2, 3], o), x]; } },
  { name: "roll", reason: "a shift of 0", call: (o) => { const x = f23(); return [mx.roll(x, 0, 1, o), x]; } },
  { name: "pad", reason: "widths of 0", call: (o) => { const x = f23(); return [mx.pad(x, 0, o), x]; } },
  { name: "index", reason: 'an index that selects everything ("...")', call: (o) => { const x = f23(); return [mx.index(x, "...", o), x]; } },
  { name: "abs", reason: "a bool array is its own absolute value", call: (o) => { const x = b3(); return [mx.abs(x, o), x]; } },
  { name: "sign", reason: "a bool array is its own sign", call: (o) => { const x = b3(); return [mx.sign(x, o), x]; } },
  { name: "floor", reason: "integers are already rounded (ceil and round too)", call: (o) => { const x = i23(); return [mx.floor(x, o), x]; } },
  { name: "nanToNum", reason: "integers have no NaN or infinity", call: (o) => { const x = i23(); return [mx.nanToNum(x, o), x]; } },
  { name: "meshgrid", reason: "the grid of one 1-D array is that array", call: (o) => { const x = row(); return [mx.meshgrid(x, o), x]; } },
];

/** An export by name; "random.x" is mx.random.x (and "fast.x" mx.fast.x). */
const exportOf = (name: string): unknown =>
  name.split(".").reduce<unknown>((ns, k) => (ns as Record<string, unknown> | undefined)?.[k], mx);
const asList = (r: A | A[]) => (globalThis.Array.isArray(r) ? r : [r]);
const errorNameOf = (name: string) => OPS[name].errorName ?? name;

/** Every node that computing `roots` records (stopping at arrays that have data). */
function pendingNodes(roots: A[]): mx.Node[] {
  const seen = new Set<mx.Node>();
  const stack = roots.map((r) => r.node).filter((n): n is mx.Node => n !== null);
  for (let n = stack.pop(); n; n = stack.pop()) {
    if (seen.has(n)) continue;
    seen.add(n);
    for (const x of n.inputs) if (!x.handle && x.node) stack.push(x.node);
  }
  return [...seen];
}

/**
 * Checks that every node computing `results` was recorded on the test device (array() uploads at
 * once and records none), then that their data is computed there (or, where the device cannot run
 * the op, that evaluation fails naming it).
 */
function expectRunsOn(name: string, results: A[]): void {
  for (const n of pendingNodes(results)) expect(n.device, `${name}: node ${n.prim.name}`).toEqual(testDevice);
  const op = OPS[name];
  if (op.unsupported) {
    let err: unknown;
    try {
      mx.eval(results);
    } catch (e) {
      err = e;
    }
    expect(err, `${name} fails on ${testDevice.type}:${testDevice.index}`).toBeInstanceOf(Error);
    for (const re of op.unsupported) expect((err as Error).message).toMatch(re);
    return;
  }
  mx.eval(results);
  results.forEach((r, i) => {
    expect(r.device, `${name} result ${i}`).toEqual(testDevice);
    expect(dataDevice(r), `${name} result ${i}: data`).toBe(1);
  });
}

describe("every op takes { device }", () => {
  it("the table covers every exported function: each is an op or listed as not one", () => {
    const missing: string[] = [];
    // Namespaces' functions count too, as "namespace.name" (mx.random.uniform is "random.uniform").
    for (const [name, value] of [
      ...Object.entries(mx),
      ...Object.entries(mx.random).map(([n, v]) => [`random.${n}`, v] as const),
      ...Object.entries(mx.fast).map(([n, v]) => [`fast.${n}`, v] as const),
      ...Object.entries(mx.linalg).map(([n, v]) => [`linalg.${n}`, v] as const),
    ]) {
      if (typeof value !== "function" || NOT_OPS.has(name)) continue;
      if (!(name in OPS)) missing.push(name);
    }
    expect(missing, "ops without a row in OPS (add one)").toEqual([]);
    const stale = Object.keys(OPS).filter((name) => typeof exportOf(name) !== "function");
    expect(stale, "rows of OPS that are not exports").toEqual([]);
    for (const name of NOT_OPS) expect(typeof exportOf(name), name).toBe("function");
    // Another name is the same function, so its errors name the op it is another name of.
    for (const [name, op] of Object.entries(OPS)) {
      if (op.errorName) expect((mx as any)[name], name).toBe((mx as any)[op.errorName]);
    }
  });

  it("each op records every node on the device it is given, and its data is computed there", () => {
    expect(mx.isAvailable(testDevice)).toBe(true);
    for (const [name, op] of Object.entries(OPS)) {
      const results = asList(op.call({ device: testDevice }));
      expectRunsOn(name, results);
      if (op.unsupported) continue;
      // The same values as on the cpu (inputs were transferred, nothing else changed).
      const want = asList(op.call({ device: mx.cpu }));
      mx.eval(want);
      want.forEach((w) => expect(dataDevice(w), `${name} on cpu`).toBe(0));
      expect(results.map((r) => r.tolist()), name).toEqual(want.map((w) => w.tolist()));
    }
  });

  // Where the addon has a gpu (test/core/gpu.test.ts runs there), it is available instead.
  it.skipIf(mx.isAvailable(mx.gpu))("{ device: mx.gpu } throws at the call, naming the op and saying gpu is not available", () => {
    for (const [name, op] of Object.entries(OPS)) {
      const re = new RegExp(`^${errorNameOf(name)}: device gpu is not available`);
      expect(() => op.call({ device: mx.gpu }), name).toThrow(re);
    }
    for (const { name, call } of UNCHANGED) {
      expect(() => call({ device: mx.gpu }), name).toThrow(new RegExp(`^${name}: device gpu is not available`));
    }
  });

  it("an op that has nothing to do returns its input itself, on the input's device", () => {
    for (const { name, reason, call } of UNCHANGED) {
      const [result, input] = call({ device: testDevice });
      for (const r of asList(result)) {
        expect(r, `${name}: ${reason}`).toBe(input);
        expect(r.device).toEqual(mx.defaultDevice()); // where the input was made, not testDevice
      }
    }
  });

  it("methods forward the option with the array first", () => {
    const x = f23();
    const s = x.sum(null, { device: testDevice, keepdims: true });
    const p = x.pad(1, { device: testDevice });
    mx.eval(s, p);
    expect([dataDevice(s), dataDevice(p), s.shape]).toEqual([1, 1, [1, 1]]);
  });
});

describe("the default device", () => {
  it("setDefaultDevice(testDevice) makes ops run there; { device } still overrides it", () => {
    try {
      mx.setDefaultDevice(testDevice);
      expect(mx.defaultDevice()).toEqual(testDevice);
      for (const [name, op] of Object.entries(OPS)) expectRunsOn(name, asList(op.call({})));
      const x = mx.array([1, 2, 3]);
      expect(dataDevice(x)).toBe(1);
      const y = mx.add(x, 1, { device: mx.cpu });
      expect(y.device).toEqual(mx.cpu);
      expect(y.tolist()).toEqual([2, 3, 4]);
      expect(dataDevice(y)).toBe(0);
    } finally {
      mx.setDefaultDevice(mx.cpu);
    }
    expect(mx.defaultDevice()).toEqual(mx.cpu);
    const z = mx.exp(mx.array([0]));
    mx.eval(z);
    expect(dataDevice(z)).toBe(0);
  });

  it("isAvailable and setDefaultDevice know which devices exist", () => {
    expect(mx.isAvailable(mx.cpu)).toBe(true);
    expect(mx.isAvailable(testDevice)).toBe(true);
    const gpu = mx.internal.native.devices().includes("gpu"); // an addon built with CUDA, on a machine with a GPU
    expect(mx.isAvailable(mx.gpu)).toBe(gpu);
    if (!gpu) expect(() => mx.setDefaultDevice(mx.gpu)).toThrow(/setDefaultDevice: device gpu is not available/);
    expect(mx.defaultDevice()).toEqual(mx.cpu);
  });
});

describe("transfers", () => {
  it("an input on the cpu is transferred to the device of the op that reads it", () => {
    const a = mx.array([1, 2, 3], "float32");
    const b = mx.mul(a, 2, { device: testDevice });
    expect(b.tolist()).toEqual([2, 4, 6]);
    expect(dataDevice(b)).toBe(1);
    expect(dataDevice(a)).toBe(0);
    expect(a.tolist()).toEqual([1, 2, 3]);
  });

  it("mx.copy to the device and back round-trips float32, int64 and bool exactly", () => {
    const bits = (t: Float32Array) => [...new Uint32Array(t.buffer, t.byteOffset, t.length)];
    const cases: [A, (a: A) => unknown][] = [
      [mx.array(new Float32Array([0.1, -0, NaN, Infinity, -3.4028234663852886e38, 1e-45])), (a) => bits(a.toTypedArray() as Float32Array)],
      [mx.array([2n ** 53n + 1n, -(2n ** 62n) - 7n, 2n ** 63n - 1n, -(2n ** 63n)]), (a) => a.tolist()],
      [mx.array([true, false, false, true]), (a) => a.tolist()],
    ];
    for (const [x, read] of cases) {
      const y = mx.copy(x, { device: testDevice });
      const z = mx.copy(y, { device: mx.cpu });
      mx.eval(z, y);
      expect([y.device, dataDevice(y), z.device, dataDevice(z)]).toEqual([testDevice, 1, mx.cpu, 0]);
      expect([y.dtype, z.dtype]).toEqual([x.dtype, x.dtype]);
      expect(read(y), x.dtype).toEqual(read(x));
      expect(read(z), x.dtype).toEqual(read(x));
    }
  });

  it("a graph that goes cpu -> test device -> cpu evaluates in one program", () => {
    const { evalStats } = mx.internal;
    const x = mx.array([1, 2, 3, 4], "float64");
    const a = mx.add(x, 1); // cpu
    const b = mx.mul(a, 10, { device: testDevice }); // reads a: transferred
    const c = mx.sub(b, 3, { device: mx.cpu }); // reads b: transferred back
    expect([a.device, b.device, c.device]).toEqual([mx.cpu, testDevice, mx.cpu]);
    evalStats.reset();
    mx.eval(c);
    expect(evalStats.programs).toBe(1);
    expect(evalStats.ops.get("transfer")).toBe(2);
    expect(c.tolist()).toEqual([17, 27, 37, 47]);
    expect(dataDevice(c)).toBe(0);
  });

  it("gradients flow back through transfers to the input's device", () => {
    const f = (v: A) => {
      const onTest = mx.copy(v, { device: testDevice });
      const y = mx.mul(mx.sin(onTest), onTest, { device: testDevice }); // x sin x
      return mx.sum(mx.copy(y, { device: mx.cpu }));
    };
    const xs = [0.3, -1.2, 2, 0.7];
    const x = mx.array(xs, "float64");
    const g = grad(f)(x);
    mx.eval(g);
    expect(g.device).toEqual(mx.cpu);
    expect(dataDevice(g)).toBe(0);
    const want = xs.map((v) => Math.sin(v) + v * Math.cos(v));
    (g.tolist() as number[]).forEach((v, i) => expect(v).toBeCloseTo(want[i], 12));
  });
});
