/**
 * @file The fusion pass: groups chains of elementwise nodes of one shape into single fused
 * instructions (native/src/cpu/fused.h), so that a chain such as Adam's update or a ReLU's
 * backward reads its inputs once and writes its outputs once, instead of a pass over memory per
 * op. Every evaluation runs it; the results are those of the separate instructions (each step
 * applies the same kernel expression).
 *
 * The plan walks the program's nodes in order. A fusable node joins an open group that produced
 * one of its inputs (same shape, device and number type) or opens one; a node that reads an open
 * group's value from outside closes that group first, so every group runs before its readers and
 * after its inputs. Scalar constants (`full`, and broadcasts of one) that only feed groups are
 * folded into them as constant steps. A value of a group is written out only when something
 * outside the group reads it or the evaluation keeps it.
 *
 * Then chains with the same steps and constants over arrays of other sizes (an optimizer's update
 * of each parameter) are batched into one instruction (batchChains): one kernel launch on the gpu
 * instead of one per parameter.
 */
import type { Array, Node } from "../array.js";
import { nativeDevice } from "../device.js";
import { dtypeCode, type DType } from "../dtype.js";
import { native } from "../native/binding.js";
import { opcode } from "../native/ops.js";
import type { DynamicRef } from "./tracing.js";

const KINDS: string[] = native.opKinds();
const FULL = opcode("full");
const BROADCAST = opcode("broadcastTo");
const CAST = opcode("cast");
const WHERE = opcode("where");
const FUSED = opcode("fused");
/** fused.h's markers. */
const CONST_STEP = -1;
const REG_NUMBER = 0;
const REG_BOOL = 1;
/** Bounds on a group: steps, and distinct inputs (each takes a scratch tile per thread). */
const MAX_STEPS = 64;
const MAX_INPUTS = 16;

let enabled = process.env.TESSERA_FUSION !== "0";
/** Turns the fusion pass on or off (on by default; TESSERA_FUSION=0 starts with it off). */
export function setFusion(on: boolean): void {
  enabled = on;
}
export function fusionEnabled(): boolean {
  return enabled;
}

/**
 * Below this many elements a plain evaluation leaves a cpu node unfused. Such data sits in the
 * core's caches, so fusing saves no memory traffic, and planning the fusion costs the host more
 * than it saves: on a Xeon (2026-12-02), eager chains of 3 to 20 ops over 2,048-16,384 floats ran
 * 1.1-1.9x faster unfused, and from 32,768 up fused ran faster (0.75x the time for 20 ops).
 * Programs kept to run many times (compile's) are planned once and fuse at any size; gpu nodes
 * always fuse (each kernel launch costs microseconds). TESSERA_FUSION_MIN_CPU sets another
 * bound (0: fuse every size, as the fusion tests do).
 */
let eagerCpuMin = Number(process.env.TESSERA_FUSION_MIN_CPU ?? 32768);
/** Sets the bound above (a count of elements); returns the previous one. */
export function setFusionMinCpu(elements: number): number {
  const prev = eagerCpuMin;
  eagerCpuMin = elements;
  return prev;
}
/** Whether a plain evaluation may fuse `node` (see eagerCpuMin). */
const fusesEagerly = (node: Node): boolean => node.device.type !== "cpu" || node.outputs[0].size >= eagerCpuMin;

/** One fused instruction: what it reads, what it writes, and its steps (fused.h's layout). */
export interface FusedUnit {
  kind: "fused";
  nodes: Node[];
  inputs: Array[];
  outputs: Array[];
  /** fused.h's ints. */
  ints: number[];
  /** The constants' values, in the order the constant steps index them. */
  scalars: number[];
  /** For each constant, the dynamic scalar it is (a compiled call rebinds it), if any. */
  scalarRefs: (DynamicRef | undefined)[];
  /** The number type the steps compute in. */
  type: DType;
  /** Chains batched in this instruction (batchChains): `ints` then ends with this count, and the
   * inputs and outputs are each member's in turn. */
  members: number;
}
export type Unit = { kind: "node"; node: Node } | FusedUnit;

const isFloat = (t: DType) => t === "float32" || t === "float64";
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The number type a fusable node computes in: "float32" or "float64", null for a node on bools
 * only (it joins a group but opens none), or undefined when the node cannot be fused.
 */
function numberType(node: Node): DType | null | undefined {
  if (node.outputs.length !== 1) return undefined;
  const op = node.prim.opcode;
  if (op === null) return undefined;
  const kind = KINDS[op];
  const out = node.outputs[0].dtype;
  const ins = node.inputs.map((x) => x.dtype);
  const shape = node.outputs[0].shape;
  if (!node.inputs.every((x) => sameShape(x.shape, shape))) return undefined;
  if (op === CAST) {
    if (ins[0] === "bool" && isFloat(out)) return out;
    if (isFloat(ins[0]) && out === "bool") return ins[0];
    return undefined;
  }
  if (op === WHERE) {
    if (ins[0] !== "bool") return undefined;
    return isFloat(out) ? out : out === "bool" ? null : undefined;
  }
  if (kind === "unary" || kind === "binary") {
    if (!ins.every((t) => t === out)) return undefined;
    return isFloat(out) ? out : out === "bool" ? null : undefined;
  }
  if (kind === "predicate" || kind === "compare") {
    if (out !== "bool" || !ins.every((t) => t === ins[0])) return undefined;
    return isFloat(ins[0]) ? ins[0] : ins[0] === "bool" ? null : undefined;
  }
  return undefined;
}

/** A scalar constant the plan may fold: a `full`, or a broadcast of one. */
function constantOf(node: Node): { value: number; dtype: DType; ref: DynamicRef | undefined } | null {
  const op = node.prim.opcode;
  if (op === FULL) {
    const v = node.params.value;
    if (typeof v !== "number" && typeof v !== "boolean") return null;
    return { value: Number(v), dtype: node.outputs[0].dtype, ref: node.params.dynamic };
  }
  return null;
}

interface Group {
  nodes: Node[];
  members: Set<Node>;
  shape: number[];
  device: string;
  type: DType;
  /** The register of each value the group computes, reads or folds in (see REG_*). */
  reg: Map<Array, number>;
  inputs: Array[];
  /** [op, type, a, b, c] per step, registers in the plan's numbering. */
  steps: number[][];
  scalars: number[];
  scalarRefs: (DynamicRef | undefined)[];
}

/** Registers while planning: inputs and steps are numbered apart until the input count is known. */
const INPUT_REG = 0x100000;
const STEP_REG = 0x200000;

interface Deferred {
  value: number;
  dtype: DType;
  ref: DynamicRef | undefined;
  /** The nodes computing it: a full, then a broadcast of it. */
  chain: Node[];
}

/** A node's device as a key; the last one is remembered (a program's nodes nearly always share one). */
let lastDevice: Node["device"] | null = null;
let lastKey = "";
function deviceKey(n: Node): string {
  if (n.device !== lastDevice) (lastKey = `${n.device.type}:${n.device.index}`), (lastDevice = n.device);
  return lastKey;
}
/** Per device, whether its backend runs `fused` (asked once: the gpu's needs NVRTC at run time). */
const FUSES = new Map<string, boolean>();
function fusesOn(n: Node): boolean {
  const key = deviceKey(n);
  let on = FUSES.get(key);
  if (on === undefined) FUSES.set(key, (on = native.supports(nativeDevice(n.device, "fused"), FUSED)));
  return on;
}

/**
 * Plans the units of a program: `order` is its nodes in execution order, `kept` gives the values
 * it must write out (roots and kept values). Returns the units in an order that respects every
 * dependency. `once` is false for a program kept to run many times (compile's): its chains fuse
 * at once.
 */
export function planFusion(order: Node[], kept: () => Set<Array>, once = true): Unit[] {
  // One node has nothing to fuse with (the common tiny evaluation: skip the planning).
  // Neither does a plain evaluation of small cpu arrays only (see eagerCpuMin).
  if (!enabled || order.length < 2 || (once && !order.some(fusesEagerly))) return order.map((node) => ({ kind: "node", node }));
  const keep = kept();
  const units = plan(order, keep, null, once);
  if (!once) return batchChains(units);
  // A chain whose kernel is generated at run time (the gpu's: NVRTC takes a good fraction of a
  // second per new kernel) runs unfused the first time an evaluation meets it, and fused from the
  // second on: a training loop compiles its chains at its second step, and an evaluation that
  // never repeats (exploring in a REPL, a fuzz test) never waits for a compiler. Either way the
  // bits are the same (the fused kernels apply the unfused kernels' own expressions).
  let cold: Set<Node> | null = null;
  for (const u of units) {
    if (u.kind !== "fused" || u.nodes[0].device.type !== "gpu") continue;
    const key = `${deviceKey(u.nodes[0])}|${u.type}|${u.inputs.map((x) => x.dtype).join()}|${u.ints.join()}`;
    if (seenChains.has(key)) continue;
    if (seenChains.size >= MAX_SEEN) seenChains.clear();
    seenChains.add(key);
    cold ??= new Set();
    for (const n of u.nodes) cold.add(n);
  }
  return batchChains(cold ? plan(order, keep, cold, once) : units);
}

/** fused.h's bound on a batch (a kernel's parameters hold every member's pointers). */
const MAX_MEMBERS = 256;

/**
 * Batches fused units with the same steps, constants, input dtypes and device whose operands all
 * have their own output's shape: an optimizer's update of each parameter becomes one instruction.
 * A batch runs where the first unit reading one of its members' values stands (or at the end), so
 * that every member's inputs exist and no reader comes before it; until then it stays open to
 * more members.
 */
function batchChains(units: Unit[]): Unit[] {
  let candidates = 0;
  for (const u of units) if (u.kind === "fused" && batchable(u)) candidates++;
  if (candidates < 2) return units;
  const out: Unit[] = [];
  const open = new Map<string, FusedUnit[]>();
  const batchOf = new Map<Array, string>(); // each value a member of an open batch writes
  const close = (key: string) => {
    const batch = open.get(key)!;
    open.delete(key);
    for (const m of batch) for (const y of m.outputs) batchOf.delete(y);
    out.push(batch.length === 1 ? batch[0] : joined(batch));
  };
  for (const u of units) {
    for (const x of u.kind === "fused" ? u.inputs : u.node.inputs) {
      const key = batchOf.get(x);
      if (key !== undefined) close(key);
    }
    if (u.kind !== "fused" || !batchable(u)) {
      out.push(u);
      continue;
    }
    const key = `${deviceKey(u.nodes[0])}|${u.inputs.map((x) => x.dtype).join()}|${u.ints.join()}|${u.scalars.map(exact).join()}`;
    let batch = open.get(key);
    if (batch && !sameRefs(batch[0], u)) {
      close(key);
      batch = undefined;
    }
    if (!batch) open.set(key, (batch = []));
    batch.push(u);
    for (const y of u.outputs) batchOf.set(y, key);
    if (batch.length === MAX_MEMBERS) close(key);
  }
  for (const key of [...open.keys()]) close(key);
  return out;
}

/** A unit that may join a batch: every operand has the output's shape (no broadcast input). */
function batchable(u: FusedUnit): boolean {
  const shape = u.outputs[0].shape;
  return u.members === 1 && u.inputs.every((x) => sameShape(x.shape, shape));
}

/** A constant as text that tells -0 from 0. */
const exact = (v: number): string => (Object.is(v, -0) ? "-0" : String(v));

function sameRefs(a: FusedUnit, b: FusedUnit): boolean {
  return a.scalarRefs.every((r, i) => r === b.scalarRefs[i]);
}

function joined(batch: FusedUnit[]): FusedUnit {
  const first = batch[0];
  return {
    kind: "fused",
    nodes: batch.flatMap((m) => m.nodes),
    inputs: batch.flatMap((m) => m.inputs),
    outputs: batch.flatMap((m) => m.outputs),
    ints: [...first.ints, batch.length],
    scalars: first.scalars,
    scalarRefs: first.scalarRefs,
    type: first.type,
    members: batch.length,
  };
}

/** The gpu chains evaluations have met (see planFusion), forgotten when there are too many. */
const seenChains = new Set<string>();
const MAX_SEEN = 1 << 14;

function plan(order: Node[], kept: Set<Array>, cold: Set<Node> | null, once: boolean): Unit[] {
  const readers = new Map<Array, Node[]>();
  for (const node of order)
    for (const x of node.inputs) {
      let r = readers.get(x);
      if (!r) readers.set(x, (r = []));
      r.push(node);
    }

  const units: Unit[] = [];
  const emitted = new Set<Node>();
  const emit = (node: Node) => {
    if (emitted.has(node)) return;
    emitted.add(node);
    units.push({ kind: "node", node });
  };
  const groupOf = new Map<Array, Group>(); // values computed by a group still open
  const open = new Set<Group>();
  const deferred = new Map<Array, Deferred>();

  // A deferred constant read by something that is not a group: computed after all, once.
  const materialize = (x: Array) => {
    const d = deferred.get(x);
    if (!d) return;
    for (const n of d.chain) {
      deferred.delete(n.outputs[0]);
      emit(n);
    }
  };
  const close = (g: Group) => {
    open.delete(g);
    for (const n of g.nodes) groupOf.delete(n.outputs[0]);
    const unit = finish(g, kept, readers);
    if (unit.kind === "node") emit(unit.node);
    else units.push(unit);
  };

  for (const node of order) {
    const y = node.outputs[0];
    // Constants wait until a reader decides whether to fold them in or compute them.
    const c = constantOf(node);
    if (c && !kept.has(y)) {
      deferred.set(y, { ...c, chain: [node] });
      continue;
    }
    const src = node.prim.opcode === BROADCAST ? deferred.get(node.inputs[0]) : undefined;
    if (src && !kept.has(y)) {
      deferred.set(y, { ...src, chain: [...src.chain, node] });
      continue;
    }

    // Only devices whose backend runs the fused kernel (the gpu's needs NVRTC: docs/cuda.md).
    const type = fusesOn(node) && !cold?.has(node) && (!once || fusesEagerly(node)) ? numberType(node) : undefined;
    // The open groups this node can join: it joins all of them (merged into the first), since
    // open groups never read each other's values (reading one from outside closes it).
    let target: Group | undefined;
    if (type !== undefined) {
      for (const x of node.inputs) {
        const g = groupOf.get(x);
        if (!g || g === target || !sameShape(g.shape, y.shape) || g.device !== deviceKey(node)) continue;
        if (type !== null && g.type !== type) continue;
        if (!target) {
          if (g.steps.length + node.inputs.length >= MAX_STEPS || g.inputs.length + node.inputs.length > MAX_INPUTS) continue;
          target = g;
        } else if (target.type === g.type && target.steps.length + g.steps.length + node.inputs.length < MAX_STEPS &&
                   target.inputs.length + g.inputs.length + node.inputs.length <= MAX_INPUTS) {
          merge(target, g);
          open.delete(g);
          for (const n of g.nodes) groupOf.set(n.outputs[0], target);
        }
      }
    }
    // Every open group this node reads from and does not join runs before it.
    for (const x of node.inputs) {
      const g = groupOf.get(x);
      if (g && g !== target && open.has(g)) close(g);
    }
    if (type === undefined || (type === null && !target)) {
      for (const x of node.inputs) materialize(x);
      emit(node);
      continue;
    }
    if (!target) {
      target = {
        nodes: [], members: new Set(), shape: y.shape, device: deviceKey(node), type: type!,
        reg: new Map(), inputs: [], steps: [], scalars: [], scalarRefs: [],
      };
      open.add(target);
    }
    addStep(target, node, deferred);
    groupOf.set(y, target);
  }
  for (const g of [...open]) close(g);
  return units;
}

/** Moves every step of open group `b` into `a` (b's registers renumbered; shared inputs shared). */
function merge(a: Group, b: Group): void {
  const shift = a.steps.length, scalarShift = a.scalars.length;
  const map = (r: number): number => {
    if (r === -1) return -1;
    if (r >= STEP_REG) return r + shift;
    const x = b.inputs[r - INPUT_REG];
    let ra = a.reg.get(x);
    if (ra === undefined) {
      ra = INPUT_REG + a.inputs.length;
      a.inputs.push(x);
      a.reg.set(x, ra);
    }
    return ra;
  };
  const moved = b.steps.map(([op, type, x, y, z]) =>
    op === CONST_STEP ? [op, type, x + scalarShift, -1, -1] : [op, type, map(x), map(y), map(z)]);
  for (const [v, r] of b.reg) if (r >= STEP_REG) a.reg.set(v, r + shift);
  for (const st of moved) a.steps.push(st);
  for (const v of b.scalars) a.scalars.push(v);
  for (const r of b.scalarRefs) a.scalarRefs.push(r);
  for (const n of b.nodes) a.nodes.push(n), a.members.add(n);
}

/** Adds `node` to `g`: registers for its new inputs (constants folded in as steps), then its step. */
function addStep(g: Group, node: Node, deferred: Map<Array, Deferred>): void {
  const regs = node.inputs.map((x) => {
    let r = g.reg.get(x);
    if (r !== undefined) return r;
    const d = deferred.get(x);
    if (d) {
      r = STEP_REG + g.steps.length;
      g.steps.push([CONST_STEP, d.dtype === "bool" ? REG_BOOL : REG_NUMBER, g.scalars.length, -1, -1]);
      g.scalars.push(d.value);
      g.scalarRefs.push(d.ref);
    } else {
      r = INPUT_REG + g.inputs.length;
      g.inputs.push(x);
    }
    g.reg.set(x, r);
    return r;
  });
  const y = node.outputs[0];
  g.reg.set(y, STEP_REG + g.steps.length);
  g.steps.push([node.prim.opcode!, y.dtype === "bool" ? REG_BOOL : REG_NUMBER, regs[0] ?? -1, regs[1] ?? -1, regs[2] ?? -1]);
  g.nodes.push(node);
  g.members.add(node);
}

/** The unit of a closed group: a plain node when there is nothing to fuse, else the fused layout. */
function finish(g: Group, kept: Set<Array>, readers: Map<Array, Node[]>): Unit {
  if (g.nodes.length === 1 && g.steps.length === 1) return { kind: "node", node: g.nodes[0] };
  const nIn = g.inputs.length;
  const resolve = (r: number) => (r === -1 ? -1 : r >= STEP_REG ? nIn + (r - STEP_REG) : r - INPUT_REG);
  const ints: number[] = [dtypeCode(g.type), g.steps.length];
  for (const [op, type, a, b, c] of g.steps) {
    if (op === CONST_STEP) ints.push(op, type, a, -1, -1);
    else ints.push(op, type, resolve(a), resolve(b), resolve(c));
  }
  const outputs: Array[] = [];
  for (const n of g.nodes) {
    const y = n.outputs[0];
    if (kept.has(y) || (readers.get(y) ?? []).some((r) => !g.members.has(r))) outputs.push(y);
  }
  ints.push(outputs.length);
  for (const y of outputs) ints.push(resolve(g.reg.get(y)!));
  return { kind: "fused", nodes: g.nodes, inputs: g.inputs, outputs, ints, scalars: g.scalars, scalarRefs: g.scalarRefs, type: g.type, members: 1 };
}
