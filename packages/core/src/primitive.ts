/**
 * @file The primitive definition type, the registry, and bind(): the one way a node is recorded.
 * Every rule is a required field; opting out is an explicit sentinel (noGradient, zeroTangent).
 */
import { makeArray, type Array, type Aval, type Node } from "./array.js";
import { assert } from "./errors.js";
import { currentDevice, opName } from "./device.js";
import { itemsize } from "./dtype.js";
import { fmtShape } from "./errors.js";

/** The largest axis the program format carries (dimensions are int32 words, as in MLX). */
export const MAX_DIM = 2 ** 31 - 1;
/** The largest array in bytes: sizes must stay exact in a JS number. */
export const MAX_BYTES = 2 ** 53;

/** Checks that an array of this shape and dtype can exist; a RangeError naming the op otherwise. */
function checkAval(a: Aval, prim: string): void {
  let n = 1;
  for (const d of a.shape) {
    if (!Number.isInteger(d) || d < 0 || d > MAX_DIM) {
      throw new RangeError(`${opName(prim)}: result shape ${fmtShape(a.shape)} has an axis of ${d}; axes hold at most 2^31 - 1 elements`);
    }
    n *= d;
  }
  if (n * itemsize(a.dtype) > MAX_BYTES) {
    throw new RangeError(`${opName(prim)}: result shape ${fmtShape(a.shape)} ${a.dtype} needs ${n * itemsize(a.dtype)} bytes; at most 2^53 can be addressed`);
  }
}

export type Tangent = Array | null; // null: a symbolic zero

/** Forward mode: tangents of the outputs, given those of the inputs (null where zero). */
export type JvpRule<P> = (primals: Array[], tangents: Tangent[], params: P, outputs: Array[]) => Tangent[];
/** Reverse mode: cotangents of the inputs, given those of the outputs (null where zero). */
export type VjpRule<P> = (primals: Array[], cotangents: Tangent[], params: P, outputs: Array[]) => Tangent[];
/**
 * Batching: the outputs for batched inputs. `dims[i]` is the batch axis of args[i], or null when
 * it is not batched (at least one is); `size` is the batch size.
 */
export type VmapRule<P> = (args: Array[], dims: (number | null)[], params: P, size: number) => [Array[], (number | null)[]];

export interface Encoded {
  ints?: number[];
  /** Doubles, or BigInts for the value of a 64-bit integer fill (kept exact). */
  scalars?: (number | bigint)[];
}

export interface PrimitiveDef<P = {}> {
  name: string;
  /** The native opcode (native/src/ops.def), or null for nodes that can't be evaluated. */
  opcode: number | null;
  abstractEval(inputs: Aval[], params: P): Aval[];
  /** The parameters as the native program encodes them. */
  encode(params: P, inputs: Aval[]): Encoded;
  jvp: JvpRule<P>;
  vjp: VjpRule<P>;
  vmap: VmapRule<P>;
}

/** Sentinel vjp of a non-differentiable primitive: every input gets a zero cotangent. */
export const noGradient: VjpRule<any> = (primals) => primals.map(() => null);
/** Sentinel jvp of a non-differentiable primitive: every output gets a zero tangent. */
export const zeroTangent: JvpRule<any> = (_p, _t, _params, outputs) => outputs.map(() => null);
/** Sentinel for primitives that take no array inputs, so no transform ever reaches them. */
export const noInputs: VmapRule<any> = () => {
  throw new Error("a primitive without inputs cannot be batched (this is a bug)");
};
/** The encoding of a primitive without parameters: one shared empty object, never written. */
const NO_ENCODED: Encoded = Object.freeze({});
export const noParams = (): Encoded => NO_ENCODED;

/** Every primitive, by name, for tests that enumerate them. */
export const registry = new Map<string, PrimitiveDef<any>>();

export function defPrimitive<P = {}>(def: PrimitiveDef<P>): PrimitiveDef<P> {
  assert(!registry.has(def.name), `primitive ${def.name} defined twice`);
  registry.set(def.name, def);
  return def;
}

/**
 * Records `def` applied to inputs on the current device (an op's `{ device }`, else the default);
 * returns its outputs (lazy).
 */
export function bind<P>(def: PrimitiveDef<P>, inputs: Array[], params: P): Array[] {
  // Lists sized up front (pushing onto [] allocates room for 17 at the first push).
  const ins: Aval[] = new globalThis.Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i];
    x.checkAlive(def.name);
    ins[i] = { shape: x.shape, dtype: x.dtype };
  }
  const avals = def.abstractEval(ins, params);
  for (const a of avals) checkAval(a, def.name);
  const outputs: Array[] = new globalThis.Array(avals.length);
  const node: Node = { prim: def, inputs, params, outputs, device: currentDevice() };
  for (let i = 0; i < avals.length; i++) outputs[i] = makeArray(avals[i].shape, avals[i].dtype, node);
  countReads(inputs, 1);
  ruleLog?.push(node);
  return outputs;
}

/** Adds `delta` to the consumer count of each distinct input (a node counts once per array). */
function countReads(inputs: Array[], delta: number): void {
  if (inputs.length > 8) {
    for (const x of new Set(inputs)) x.consumers += delta;
    return;
  }
  outer: for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i];
    for (let j = 0; j < i; j++) if (inputs[j] === x) continue outer;
    x.consumers += delta;
  }
}

/** @internal A node stops reading its inputs (evaluated and detached, or garbage of a transform). */
export function releaseInputs(node: Node): void {
  countReads(node.inputs, -1);
}

/** The nodes recorded while a transform applies rules (see withRuleLog). */
let ruleLog: Node[] | null = null;

/**
 * Runs a transform's walk, then releases the nodes its rules recorded that its results do not
 * use (a vjp rule builds cotangents for inputs nobody differentiates, say): they stop counting
 * as consumers of their inputs, so evaluation does not keep values only garbage would read
 * (docs/evaluation.md). The nodes still used join the enclosing transform's log, if any.
 */
export function withRuleLog<T>(walk: () => T, results: (r: T) => (Array | null)[]): T {
  const outer = ruleLog;
  const log: Node[] = [];
  ruleLog = log;
  let r: T;
  try {
    r = walk();
  } finally {
    ruleLog = outer;
  }
  const inLog = new Set(log);
  const used = new Set<Node>();
  const stack: Node[] = [];
  const visit = (a: Array | null) => {
    const n = a?.node;
    if (n && inLog.has(n) && !used.has(n)) used.add(n), stack.push(n);
  };
  results(r).forEach(visit);
  while (stack.length) stack.pop()!.inputs.forEach(visit);
  for (const n of log) {
    if (used.has(n)) outer?.push(n);
    else releaseInputs(n);
  }
  return r;
}

export function bind1<P>(def: PrimitiveDef<P>, inputs: Array[], params: P): Array {
  return bind(def, inputs, params)[0];
}
