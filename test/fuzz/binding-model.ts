/**
 * @file The model behind test/fuzz/binding.test.ts: a reader of program bodies that knows where
 * each field sits (the format of packages/core/src/eval/program.ts and native/src/program.h),
 * mutations of valid bodies and of their bindings, programs drawn from the grammar with random
 * fields, recipes of the ops the graph model does not draw, instructions of valid programs
 * replayed on random bytes, and calls of the binding that must return or throw an Error, never
 * crash.
 */
import * as mx from "@tessera/core";
import { rng } from "../helpers/reference.js";

export const native = mx.internal.native;
export const VERSION = mx.internal.PROGRAM_VERSION;
export const OPCODES = native.opTable();
export const NUM_DEVICES = native.devices().length;

/** Itemsize per dtype code (native/src/dtype.h order). */
export const ITEMSIZE = [1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 2, 4, 8];
const DTYPE_NAMES: mx.DType[] = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"];
export const dtypeCode = (d: mx.DType) => DTYPE_NAMES.indexOf(d);

// ---------------------------------------------------------------------------------------------
// Reading a body
// ---------------------------------------------------------------------------------------------

export type FieldKind =
  | "version" | "nSlots" | "nInputs" | "nScalars" | "nInstr" | "opcode" | "device" | "nIn" | "inSlot" | "nOut"
  | "outSlot" | "dtype" | "ndim" | "dim" | "nInt" | "int" | "nScalar" | "scalarIndex" | "nOutputs" | "outputSlot";

export interface Field {
  pos: number;
  kind: FieldKind;
  instr: number;
}

export interface OutSpec {
  slot: number;
  dtype: number;
  shape: number[];
}

export interface Parsed {
  fields: Field[];
  /** Where each instruction starts and ends (words [start, end)). */
  instrs: { start: number; end: number }[];
  specs: Map<number, OutSpec>;
  outputs: number[];
  nSlots: number;
  nScalars: number;
  /** Whether the whole body was read without running past its end. */
  complete: boolean;
}

/** Reads as much of a body as its counts allow (no validation beyond staying inside it). */
export function parseBody(w: Int32Array): Parsed {
  const fields: Field[] = [];
  const instrs: { start: number; end: number }[] = [];
  const specs = new Map<number, OutSpec>();
  const outputs: number[] = [];
  let pos = 0, instr = -1;
  const take = (kind: FieldKind): number => {
    if (pos >= w.length) throw new RangeError("end");
    fields.push({ pos, kind, instr });
    return w[pos++];
  };
  const count = (kind: FieldKind) => {
    const c = take(kind);
    if (c < 0 || c > w.length - pos) throw new RangeError("count");
    return c;
  };
  let nSlots = 0, nScalars = 0, complete = false;
  try {
    take("version");
    nSlots = take("nSlots");
    take("nInputs");
    nScalars = take("nScalars");
    const n = count("nInstr");
    for (let i = 0; i < n; i++) {
      instr = i;
      const start = pos;
      take("opcode");
      take("device");
      const nin = count("nIn");
      for (let k = 0; k < nin; k++) take("inSlot");
      const nout = count("nOut");
      for (let k = 0; k < nout; k++) {
        const slot = take("outSlot");
        const dtype = take("dtype");
        const nd = count("ndim");
        const shape: number[] = [];
        for (let j = 0; j < nd; j++) shape.push(take("dim"));
        specs.set(slot, { slot, dtype, shape });
      }
      const nint = count("nInt");
      for (let k = 0; k < nint; k++) take("int");
      take("nScalar");
      take("scalarIndex");
      instrs.push({ start, end: pos });
    }
    instr = -1;
    const no = count("nOutputs");
    for (let k = 0; k < no; k++) outputs.push(take("outputSlot"));
    complete = pos === w.length;
  } catch {
    // a partial read: the fields found so far
  }
  return { fields, instrs, specs, outputs, nSlots, nScalars, complete };
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

export const INTERESTING = [
  0, 1, -1, 2, 3, 4, 7, 8, 13, 16, 255, 256, 65535, 65536, 1 << 20, 1 << 30, 2147483647, -2147483648, -2, 100,
];

export interface Mutation {
  kind: number;
  at: number;
  value: number;
  extra: number;
}

/** A value for a field of this kind: near its valid range, or an interesting word. */
function fieldValue(kind: FieldKind, p: Parsed, v: number, r: () => number): number {
  if (r() < 0.15) return INTERESTING[v % INTERESTING.length];
  const small = (lo: number, hi: number) => lo + (v % (hi - lo + 1));
  switch (kind) {
    case "version": return VERSION + small(-1, 1);
    case "nSlots": return small(-1, p.nSlots + 3);
    case "nInputs": return small(-1, p.nSlots + 1);
    case "nScalars": return small(-1, p.nScalars + 2);
    case "opcode": return small(-1, OPCODES.length);
    case "device": return small(-1, NUM_DEVICES);
    case "inSlot": case "outSlot": case "outputSlot": return small(-1, p.nSlots);
    case "dtype": return small(-1, 13);
    case "dim": return small(0, 6);
    case "int": return small(-3, 8);
    case "scalarIndex": return small(-1, p.nScalars + 1);
    default: return small(-1, 5); // counts
  }
}

/** Applies mutations to a copy of the body. */
export function mutateBody(body: Int32Array, muts: Mutation[]): Int32Array {
  let w = Array.from(body);
  for (const m of muts) {
    const p = parseBody(Int32Array.from(w));
    const r = rng(m.extra);
    const n = w.length;
    switch (m.kind % 12) {
      case 0: case 1: case 2: { // a field of the structure
        if (!p.fields.length) break;
        const f = p.fields[m.at % p.fields.length];
        w[f.pos] = fieldValue(f.kind, p, m.value, r);
        break;
      }
      case 3: // any word, an interesting value
        if (n) w[m.at % n] = INTERESTING[m.value % INTERESTING.length];
        break;
      case 4: // a bit flip
        if (n) w[m.at % n] ^= 1 << (m.value % 32);
        break;
      case 5: // truncated
        w = w.slice(0, m.at % (n + 1));
        break;
      case 6: // extended
        for (let k = 1 + (m.value % 6); k > 0; k--) w.push(r() < 0.5 ? Math.floor(r() * 8) : INTERESTING[Math.floor(r() * INTERESTING.length)]);
        break;
      case 7: // a word inserted
        w.splice(m.at % (n + 1), 0, INTERESTING[m.value % INTERESTING.length]);
        break;
      case 8: // a word deleted
        if (n) w.splice(m.at % n, 1);
        break;
      case 9: { // two words swapped
        if (!n) break;
        const i = m.at % n, j = m.value % n;
        [w[i], w[j]] = [w[j], w[i]];
        break;
      }
      case 10: { // an instruction's opcode replaced by another instruction's, or any
        const ops = p.fields.filter((f) => f.kind === "opcode");
        if (!ops.length) break;
        const f = ops[m.at % ops.length];
        w[f.pos] = r() < 0.5 ? w[ops[m.value % ops.length].pos] : m.value % OPCODES.length;
        break;
      }
      case 11: { // an instruction duplicated (and counted, or not)
        if (!p.instrs.length) break;
        const { start, end } = p.instrs[m.at % p.instrs.length];
        w.splice(end, 0, ...w.slice(start, end));
        if (r() < 0.7 && n > 4) w[4] += 1;
        break;
      }
    }
  }
  return Int32Array.from(w);
}

export interface BindMutation {
  kind: number;
  at: number;
  value: number;
}

export const SPECIAL_DOUBLES = [NaN, Infinity, -Infinity, -0, 1e308, -1e308, 5e-324, 2 ** 63, -(2 ** 63), 0.5, 1e20];

/** Handles that are not the program's: nonexistent, freed, on the other device, of other dtypes and shapes. */
export interface HandlePool {
  foreign: number[];
  freed: number[];
}

export function mutateBindings(inputs: Int32Array, scalars: Float64Array, muts: BindMutation[], pool: HandlePool): [Int32Array, Float64Array] {
  let ins = Array.from(inputs), sc = Array.from(scalars);
  for (const m of muts) {
    const bad = [0, -1, 2147483647, -2147483648, 1_000_000_007, ...pool.freed, ...pool.foreign];
    switch (m.kind % 7) {
      case 0:
        if (ins.length) ins[m.at % ins.length] = bad[m.value % bad.length];
        break;
      case 1:
        if (ins.length) ins[m.at % ins.length] = ins[m.value % ins.length]; // a duplicate
        break;
      case 2:
        if (m.value % 2) ins.pop();
        else ins.push(bad[m.value % bad.length]);
        break;
      case 3:
        ins.reverse();
        break;
      case 4:
        if (sc.length) sc[m.at % sc.length] = SPECIAL_DOUBLES[m.value % SPECIAL_DOUBLES.length];
        break;
      case 5:
        if (m.value % 2) sc.pop();
        else sc.push(SPECIAL_DOUBLES[m.value % SPECIAL_DOUBLES.length]);
        break;
      case 6: { // int64 bits of a fill: any word
        if (!sc.length) break;
        const bits = new BigInt64Array(1);
        bits[0] = BigInt.asIntN(64, BigInt(m.value) * 0x9e3779b97f4a7c15n);
        sc[m.at % sc.length] = new Float64Array(bits.buffer)[0];
        break;
      }
    }
  }
  return [Int32Array.from(ins), Float64Array.from(sc)];
}

// ---------------------------------------------------------------------------------------------
// Programs drawn from the grammar
// ---------------------------------------------------------------------------------------------

export interface PoolArray {
  handle: number;
  dtype: number;
  shape: number[];
  device: number;
}

/** How an opcode was used in a valid program: its counts, parameters and scalar count. */
export interface Template {
  op: number;
  nIn: number;
  nOut: number;
  ints: number[];
  nScalar: number;
}

/** The instructions of valid bodies as templates, by opcode (each distinct one once). */
export function learnTemplates(bodies: Int32Array[]): Template[] {
  const seen = new Map<string, Template>();
  for (const w of bodies) {
    const p = parseBody(w);
    for (const { start } of p.instrs) {
      let pos = start;
      const op = w[pos++];
      pos++; // device
      const nIn = w[pos++];
      pos += nIn;
      const nOut = w[pos++];
      for (let k = 0; k < nOut; k++) {
        pos += 2;
        pos += w[pos] + 1;
      }
      const nInt = w[pos++];
      const ints = Array.from(w.subarray(pos, pos + nInt));
      pos += nInt;
      const t = { op, nIn, nOut, ints, nScalar: w[pos] };
      seen.set(JSON.stringify(t), t);
    }
  }
  return [...seen.values()];
}

/**
 * A program with the right layout and random contents: instructions of random opcodes (mostly
 * with the counts and parameters some valid program used them with) reading earlier slots, their
 * outputs mostly shaped like an input (so the operand checks often pass and kernels run), small
 * random parameters and scalars.
 */
export function grammarProgram(seed: number, pool: PoolArray[], templates: Template[]): { body: Int32Array; inputs: Int32Array; scalars: Float64Array } {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  const ins = Array.from({ length: int(4) }, () => pick(pool));
  const specs: { dtype: number; shape: number[]; device: number }[] = ins.map((a) => ({ dtype: a.dtype, shape: a.shape, device: a.device }));
  const nScalars = r() < 0.8 ? 4 : int(5);
  const scalars = Array.from({ length: nScalars }, () => (r() < 0.7 ? int(7) - 2 : pick(SPECIAL_DOUBLES)));
  const code: number[] = [];
  const nInstr = 1 + int(5);
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  for (let i = 0; i < nInstr; i++) {
    const t: Template = templates.length && r() < 0.75
      ? pick(templates)
      : { op: int(OPCODES.length), nIn: int(4), nOut: r() < 0.85 ? 1 : 2, ints: [], nScalar: int(3) };
    const nIn = specs.length ? t.nIn : 0;
    const reads: number[] = [];
    for (let k = 0; k < nIn; k++) {
      const like = reads.length ? specs.map((s, j) => j).filter((j) => same(specs[j].shape, specs[reads[0]].shape)) : [];
      reads.push(like.length && r() < 0.7 ? pick(like) : r() < 0.6 ? specs.length - 1 - int(Math.min(2, specs.length)) : int(specs.length));
    }
    const base = reads.length ? specs[reads[r() < 0.8 ? 0 : reads.length - 1]] : { dtype: int(13), shape: [int(4)], device: 0 };
    const device = r() < 0.9 ? base.device : int(NUM_DEVICES);
    code.push(t.op, device, nIn, ...reads, t.nOut);
    for (let k = 0; k < t.nOut; k++) {
      const u = r();
      const dtype = u < 0.6 ? base.dtype : u < 0.7 ? 0 : u < 0.8 ? 8 : int(13);
      let shape = [...base.shape];
      const v = r();
      if (v < 0.15 && shape.length) shape.splice(int(shape.length), 1);
      else if (v < 0.25) shape = shape.reverse();
      else if (v < 0.35) shape = Array.from({ length: int(4) }, () => int(5));
      else if (v < 0.4) shape = [shape.reduce((p, d) => p * d, 1)];
      code.push(specs.length, dtype, shape.length, ...shape);
      specs.push({ dtype, shape, device });
    }
    const nd = base.shape.length;
    const ints = t.ints.length && r() < 0.7 ? t.ints.map((v) => (r() < 0.15 ? v + int(3) - 1 : v))
      : Array.from({ length: r() < 0.5 ? int(5) : r() < 0.5 ? nd : 2 * nd }, () => (r() < 0.8 ? int(Math.max(nd, 1) + 1) - (r() < 0.2 ? 1 : 0) : pick(INTERESTING)));
    code.push(ints.length, ...ints);
    const nSc = Math.min(t.nScalar, nScalars);
    code.push(nSc, int(nScalars - nSc + 1));
  }
  const nOut = 1 + int(3);
  const outs = Array.from({ length: nOut }, () => (r() < 0.7 ? specs.length - 1 - int(Math.min(3, specs.length)) : int(specs.length)));
  const body = Int32Array.from([VERSION, specs.length, ins.length, nScalars, nInstr, ...code, nOut, ...outs]);
  return { body, inputs: Int32Array.from(ins, (a) => a.handle), scalars: Float64Array.from(scalars) };
}

// ---------------------------------------------------------------------------------------------
// Calling the binding
// ---------------------------------------------------------------------------------------------

/** What a call did: returned a value, or threw (anything thrown must be an Error). */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export async function call(fn: string, args: unknown[]): Promise<Outcome> {
  try {
    const f = (native as unknown as Record<string, (...a: unknown[]) => unknown>)[fn];
    let value = f.apply(native, args);
    if (value instanceof Promise) value = await value;
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Frees what a successful call made (handles, kept bodies), after reading what it can of them. */
export function release(fn: string, value: unknown, specs?: Map<number, OutSpec>, outputs?: number[]): number {
  let made = 0;
  if (value instanceof Int32Array) {
    value.forEach((h, i) => {
      made++;
      const spec = specs && outputs ? specs.get(outputs[i]) : undefined;
      touch(h, spec);
      native.free(h);
    });
  } else if (fn === "fromData" && typeof value === "number") {
    made++;
    touch(value);
    native.free(value);
  } else if (fn === "keepBody" && typeof value === "number") {
    native.releaseBody(value);
  }
  return made;
}

/** Describes a handle and reads it back with the byte size its spec implies (an Error if that is wrong). */
function touch(h: number, spec?: OutSpec): void {
  const d = native.describe(h);
  if (!Array.isArray(d.shape)) throw new Error(`describe(${h}) gave no shape`);
  const size = d.shape.reduce((p: number, v: number) => p * v, 1);
  const itemsize = spec && spec.dtype >= 0 && spec.dtype < ITEMSIZE.length ? ITEMSIZE[spec.dtype] : 4;
  if (size * itemsize > 1 << 24) return;
  try {
    native.read(h, new Uint8Array(size * itemsize));
  } catch (e) {
    if (!(e instanceof Error)) throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Programs of the ops the graph model does not draw (linear algebra, convolution and pooling,
// random numbers, contractions, fused ops, partitions): sources of valid bodies to mutate and of
// templates for the grammar. An op whose signature changed is skipped (its recipe throws).
// ---------------------------------------------------------------------------------------------

const M = (r: () => number, shape: number[], dtype: mx.DType = "float32") =>
  mx.reshape(mx.array(Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => Math.round((r() * 4 - 2) * 4) / 4), dtype), shape);
/** A symmetric positive definite matrix. */
const spd = (r: () => number, n: number, dtype: mx.DType = "float32") => {
  const a = M(r, [n, n], dtype);
  return mx.add(mx.matmul(a, a.T), mx.multiply(mx.eye(n, n, 0, dtype), n));
};

export const RECIPES: ((r: () => number) => mx.Array[])[] = [
  (r) => [mx.linalg.inv(spd(r, 3))],
  (r) => [mx.linalg.solve(spd(r, 3, "float64"), M(r, [3, 2], "float64"))],
  (r) => [mx.linalg.cholesky(spd(r, 4))],
  (r) => mx.linalg.qr(M(r, [4, 3])),
  (r) => mx.linalg.eigh(spd(r, 3)),
  (r) => mx.linalg.svd(M(r, [3, 2])),
  (r) => [mx.linalg.norm(M(r, [3, 3]))],
  (r) => [mx.conv1d(M(r, [1, 6, 2]), M(r, [3, 3, 2]))],
  (r) => [mx.conv2d(M(r, [1, 5, 5, 1]), M(r, [2, 3, 3, 1]))],
  (r) => [mx.maxPool(M(r, [1, 6, 2]), 2)],
  (r) => [mx.avgPool(M(r, [1, 4, 4, 1]), [2, 2])],
  (r) => [mx.random.uniform(0, 1, [3, 2], { key: mx.random.key(Math.floor(r() * 100)) })],
  (r) => [mx.random.normal([4], { key: mx.random.key(Math.floor(r() * 100)) })],
  (r) => [mx.random.randint(0, 10, [5], { key: mx.random.key(Math.floor(r() * 100)) })],
  (r) => [mx.random.permutation(5, { key: mx.random.key(Math.floor(r() * 100)) })],
  (r) => [mx.random.categorical(M(r, [2, 4]), { key: mx.random.key(Math.floor(r() * 100)) })],
  (r) => [mx.einsum("ij,jk->ik", M(r, [2, 3]), M(r, [3, 2]))],
  (r) => [mx.tensordot(M(r, [2, 3, 2]), M(r, [3, 2, 4]), 2)],
  (r) => [mx.outer(M(r, [3]), M(r, [2]))],
  (r) => [mx.fast.layerNorm(M(r, [2, 4]), M(r, [4]), M(r, [4]), 1e-5)],
  (r) => [mx.fast.rmsNorm(M(r, [2, 4]), M(r, [4]), 1e-5)],
  (r) => [mx.fast.scaledDotProductAttention(M(r, [1, 1, 3, 4]), M(r, [1, 1, 3, 4]), M(r, [1, 1, 3, 4]))],
  (r) => [mx.partition(M(r, [5]), 2), mx.argpartition(M(r, [2, 4]), 1)],
  (r) => [mx.logcumsumexp(M(r, [2, 3]), 1)],
];

/** A recipe's lazy results, or null when its op's signature changed. */
export function recipe(k: number, seed: number): mx.Array[] | null {
  try {
    return RECIPES[k % RECIPES.length](rng(seed));
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Instructions of valid programs replayed on random bytes
// ---------------------------------------------------------------------------------------------

/** One instruction of a valid program, with the specs of its operands and its scalars. */
export interface Instance {
  op: number;
  device: number;
  ins: { dtype: number; shape: number[]; device: number }[];
  outs: { dtype: number; shape: number[] }[];
  ints: number[];
  scalars: number[];
}

/** The instructions of a built program as instances (input specs from its steps). */
export function instancesOf(p: { body: Int32Array; scalars: Float64Array; steps: { inputs: { shape: number[]; dtype: mx.DType }[] }[] }): Instance[] {
  const w = p.body;
  const parsed = parseBody(w);
  return parsed.instrs.map(({ start }, i) => {
    let pos = start;
    const op = w[pos++], device = w[pos++];
    const nIn = w[pos++];
    pos += nIn;
    const nOut = w[pos++];
    const outs: Instance["outs"] = [];
    for (let k = 0; k < nOut; k++) {
      pos++;
      const dtype = w[pos++], nd = w[pos++];
      outs.push({ dtype, shape: Array.from(w.subarray(pos, pos + nd)) });
      pos += nd;
    }
    const nInt = w[pos++];
    const ints = Array.from(w.subarray(pos, pos + nInt));
    pos += nInt;
    const nSc = w[pos++], at = w[pos++];
    const ins = p.steps[i].inputs.map((x) => ({ dtype: dtypeCode(x.dtype), shape: [...x.shape], device: op === OPCODES.indexOf("transfer") ? 0 : device }));
    return { op, device, ins, outs, ints, scalars: Array.from(p.scalars.subarray(at, at + nSc)) };
  });
}

/**
 * An instance as a one-instruction program over new arrays of random bytes (NaNs, infinities,
 * subnormals, any integer), now and then with an operand's dtype, shape or device, a parameter
 * or a scalar changed. Returns the program and the handles to free afterwards.
 */
export function instanceProgram(t: Instance, seed: number): { body: Int32Array; inputs: Int32Array; scalars: Float64Array; made: number[] } {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const made: number[] = [];
  const ins = t.ins.map((s) => {
    let { dtype, shape, device } = s;
    if (r() < 0.1) dtype = int(13);
    if (r() < 0.1 && shape.length) shape = shape.map((d, i) => (i === int(shape.length) ? Math.max(0, d + int(3) - 1) : d));
    if (r() < 0.05) device = int(NUM_DEVICES);
    const n = shape.reduce((p, d) => p * d, 1) * ITEMSIZE[dtype];
    const bytes = Uint8Array.from({ length: n }, () => (r() < 0.3 ? 0 : int(256)));
    if (dtype === 0) bytes.forEach((_, i) => (bytes[i] &= 1));
    const h = native.fromData(bytes, dtype, shape, device);
    made.push(h);
    return h;
  });
  const ints = t.ints.map((v) => (r() < 0.08 ? (r() < 0.5 ? v + int(3) - 1 : INTERESTING[int(INTERESTING.length)]) : v));
  const scalars = t.scalars.map((v) => (r() < 0.1 ? SPECIAL_DOUBLES[int(SPECIAL_DOUBLES.length)] : v));
  const code = [t.op, t.device, ins.length, ...ins.map((_, i) => i), t.outs.length];
  t.outs.forEach((o, k) => code.push(ins.length + k, o.dtype, o.shape.length, ...o.shape));
  code.push(ints.length, ...ints, scalars.length, 0);
  const nSlots = ins.length + t.outs.length;
  const body = Int32Array.from([VERSION, nSlots, ins.length, scalars.length, 1, ...code, t.outs.length, ...t.outs.map((_, k) => ins.length + k)]);
  return { body, inputs: Int32Array.from(ins), scalars: Float64Array.from(scalars), made };
}
