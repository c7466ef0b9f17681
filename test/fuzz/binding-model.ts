/**
 * @file The model behind test/fuzz/binding.test.ts: a reader of program bodies that knows where
 * each field sits (the format of packages/core/src/eval/program.ts and native/src/program.h),
 * mutations of valid bodies and of their bindings, programs drawn from the grammar with random
 * fields, and calls of the binding that must return or throw an Error, never crash.
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

/**
 * Known crashes of the binding (see binding.test.ts, "known crashes"): the fuzz never makes
 * these calls in its own process; each has a test that makes it in a child process.
 *
 * - MEMORY_STATS_DEVICE: memoryStats(d) with a number d whose int32 value is not a device index
 *   throws a C++ exception outside the addon's guard: std::terminate aborts the process.
 * - NARROW_TYPED_ARRAY: run/runAsync/keepBody/runBody take any typed array for the body, the
 *   input handles and the scalars and read it as Int32Array / Float64Array with its element
 *   count, so a narrower one (a Uint8Array body, a Float32Array of scalars) is read past its end.
 * - HUGE_SLOT_COUNT: a body's slot count is not bounded by its size: a 6-word body with 2^24 slots
 *   makes run() allocate 1.5 GB (about 90 bytes a slot) and 2^27 would take about 12 GB.
 */
export const KNOWN = {
  MEMORY_STATS_DEVICE: "memoryStats(device) with an unknown device index aborts the process",
  NARROW_TYPED_ARRAY: "a typed array narrower than Int32Array/Float64Array is read past its end",
  HUGE_SLOT_COUNT: "a body's slot count is unbounded: run() allocates about 90 bytes per declared slot",
};
/** The largest slot count the fuzz puts in a header (HUGE_SLOT_COUNT). */
export const MAX_SLOTS = 4096;

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

/** Applies mutations to a copy of the body; the slot count stays at most MAX_SLOTS (HUGE_SLOT_COUNT). */
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
  if (w.length > 1 && w[1] > MAX_SLOTS) w[1] = MAX_SLOTS; // HUGE_SLOT_COUNT
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

/** An ArrayBufferView whose elements are narrower than `bytes` (NARROW_TYPED_ARRAY). */
export function narrowView(x: unknown, bytes: number): boolean {
  return ArrayBuffer.isView(x) && !(x instanceof DataView) && (x as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT < bytes && (x as Uint8Array).length > 0;
}

/** Whether a call of `fn` with `args` is one of the KNOWN crashes (so the fuzz leaves it out). */
export function knownCrash(fn: string, args: unknown[]): string | null {
  if (fn === "memoryStats" && typeof args[0] === "number") {
    const d = args[0] | 0;
    if (d < 0 || d >= NUM_DEVICES) return KNOWN.MEMORY_STATS_DEVICE;
  }
  const widths: Record<string, number[]> = { run: [4, 4, 8], runAsync: [4, 4, 8], keepBody: [4], runBody: [0, 4, 8] };
  const w = widths[fn];
  if (w && args.some((a, i) => i < w.length && w[i] > 0 && narrowView(a, w[i]))) return KNOWN.NARROW_TYPED_ARRAY;
  if ((fn === "run" || fn === "runAsync" || fn === "keepBody") && args[0] instanceof Int32Array && args[0].length > 1 && args[0][1] > MAX_SLOTS) {
    return KNOWN.HUGE_SLOT_COUNT;
  }
  return null;
}

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
