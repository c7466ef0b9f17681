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
import { sameShape } from "../shape.js";
import { foldEpilogues } from "./epilogue.js";
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
 * core's caches, so fusing saves little memory traffic, and planning the fusion costs the host
 * about what it saves: on a Xeon (2026-12-02), eager chains of 3 to 20 ops over 2,048-4,096
 * floats ran up to 1.2x faster unfused, about even at 8,192, and from 16,384 up fused ran faster
 * (1.4x for 20 ops). Programs kept to run many times (compile's) are planned once and fuse at any
 * size; gpu nodes always fuse (each kernel launch costs microseconds). TESSERA_FUSION_MIN_CPU sets
 * another bound (0: fuse every size, as the fusion tests do).
 */
let eagerCpuMin = Number(process.env.TESSERA_FUSION_MIN_CPU ?? 8192);
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

const isFloat = (t: DType | undefined) => t === "float32" || t === "float64";

/**
 * The number type a fusable node computes in: "float32" or "float64", null for a node on bools
 * only (it joins a group but opens none), or undefined when the node cannot be fused.
 */
function numberType(node: Node): DType | null | undefined {
  if (node.outputs.length !== 1) return undefined;
  const op = node.prim.opcode;
  if (op === null) return undefined;
  const kind = KINDS[op];
  const elementwise = kind === "unary" || kind === "binary";
  const test = kind === "predicate" || kind === "compare";
  // Most nodes of a program are not elementwise: turned away before their inputs are looked at.
  if (op !== CAST && op !== WHERE && !elementwise && !test) return undefined;
  const out = node.outputs[0].dtype;
  const ins = node.inputs;
  const shape = node.outputs[0].shape;
  for (const x of ins) if (!sameShape(x.shape, shape)) return undefined;
  const in0 = ins.length > 0 ? ins[0].dtype : undefined;
  if (op === CAST) {
    if (in0 === "bool" && isFloat(out)) return out;
    if (isFloat(in0) && out === "bool") return in0!;
    return undefined;
  }
  if (op === WHERE) {
    if (in0 !== "bool") return undefined;
    return isFloat(out) ? out : out === "bool" ? null : undefined;
  }
  if (elementwise) {
    if (!allOf(ins, out)) return undefined;
    return isFloat(out) ? out : out === "bool" ? null : undefined;
  }
  if (out !== "bool" || !allOf(ins, in0)) return undefined;
  return isFloat(in0) ? in0! : in0 === "bool" ? null : undefined;
}
/** Whether every array of `xs` has dtype `t`. */
function allOf(xs: readonly Array[], t: DType | undefined): boolean {
  for (const x of xs) if (x.dtype !== t) return false;
  return true;
}

/** A scalar constant the plan may fold: a `full` (a broadcast of one is deferred by plan). */
function constantOf(node: Node): Deferred | null {
  const op = node.prim.opcode;
  if (op === FULL) {
    const v = node.params.value;
    if (typeof v !== "number" && typeof v !== "boolean") return null;
    return { value: Number(v), dtype: node.outputs[0].dtype, ref: node.params.dynamic, node, from: null };
  }
  return null;
}

interface Group {
  nodes: Node[];
  shape: number[];
  device: string;
  type: DType;
  /** The register of each value the group computes, reads or folds in (see INPUT_REG, STEP_REG). */
  reg: Map<Array, number>;
  inputs: Array[];
  /** STEP_INTS numbers per step: op, type, a, b, c, registers in the plan's numbering. One flat
   * array rather than an array per step: a training step plans hundreds of steps per evaluation. */
  steps: number[];
  scalars: number[];
  scalarRefs: (DynamicRef | undefined)[];
  /** False once closed, or merged into another group. */
  open: boolean;
}
const STEP_INTS = 5;
const stepCount = (g: Group): number => g.steps.length / STEP_INTS;

/** Registers while planning: inputs and steps are numbered apart until the input count is known. */
const INPUT_REG = 0x100000;
const STEP_REG = 0x200000;

interface Deferred {
  value: number;
  dtype: DType;
  ref: DynamicRef | undefined;
  /** The node computing it: a full, or a broadcast of `from` (linked rather than copied into a
   * list per broadcast: most deferred constants are folded and never walked). */
  node: Node;
  from: Deferred | null;
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
  order = foldEpilogues(order, keep);
  const units = plan(order, keep, null, once);
  if (!once) return batchChains(units);
  // A chain whose kernel is generated at run time (the gpu's: NVRTC takes a good fraction of a
  // second per new kernel) runs unfused the first time an evaluation meets it, and fused from the
  // second on: a training loop compiles its chains at its second step, and an evaluation that
  // never repeats (exploring in a REPL, a fuzz test) never waits for a compiler. Either way the
  // bits are the same (the fused kernels apply the unfused kernels' own expressions).
  let cold: Set<Node> | null = null;
  for (const u of units) {
    if (u.kind !== "fused" || u.nodes[0].device.type !== "gpu" || seenBefore(u)) continue;
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
  // At most one batch is open per chain and constants (sameChain, sameScalars). Batches are found
  // by a hash of their ints and compared in full rather than by a key string: such a key spells
  // out every step, and writing a long chain's ints as text costs more than comparing them.
  const open = new Set<FusedUnit[]>(); // in the order they opened, the order the end closes them
  const byHash = new Map<number, FusedUnit[][]>();
  const batchOf = new Map<Array, FusedUnit[]>(); // each value a member of an open batch writes
  const close = (batch: FusedUnit[]) => {
    open.delete(batch);
    const bucket = byHash.get(intsHash(batch[0].ints))!;
    bucket.splice(bucket.indexOf(batch), 1);
    for (const m of batch) for (const y of m.outputs) batchOf.delete(y);
    out.push(batch.length === 1 ? batch[0] : joined(batch));
  };
  for (const u of units) {
    if (batchOf.size > 0) { // (nothing to close while no batch is open)
      for (const x of u.kind === "fused" ? u.inputs : u.node.inputs) {
        const batch = batchOf.get(x);
        if (batch !== undefined) close(batch);
      }
    }
    if (u.kind !== "fused" || !batchable(u)) {
      out.push(u);
      continue;
    }
    const hash = intsHash(u.ints);
    let bucket = byHash.get(hash);
    if (!bucket) byHash.set(hash, (bucket = []));
    let batch = bucket.find((b) => sameChain(b[0], u) && sameScalars(b[0], u));
    if (batch && !sameRefs(batch[0], u)) {
      close(batch);
      batch = undefined;
    }
    if (!batch) {
      open.add((batch = []));
      bucket.push(batch);
    }
    batch.push(u);
    for (const y of u.outputs) batchOf.set(y, batch);
    if (batch.length === MAX_MEMBERS) close(batch);
  }
  for (const batch of [...open]) close(batch);
  return out;
}

/** A unit that may join a batch: every operand has the output's shape (no broadcast input). */
function batchable(u: FusedUnit): boolean {
  const shape = u.outputs[0].shape;
  return u.members === 1 && u.inputs.every((x) => sameShape(x.shape, shape));
}

/** A hash of a unit's ints: units with the same steps have the same one. */
function intsHash(ints: readonly number[]): number {
  let h = ints.length;
  for (const v of ints) h = (Math.imul(h, 31) + v) | 0;
  return h;
}

/** Whether two units run the same kernel: same device, steps and input dtypes. */
function sameChain(a: FusedUnit, b: FusedUnit): boolean {
  if (a.inputs.length !== b.inputs.length || deviceKey(a.nodes[0]) !== deviceKey(b.nodes[0]) || !sameShape(a.ints, b.ints)) return false;
  for (let i = 0; i < a.inputs.length; i++) if (a.inputs[i].dtype !== b.inputs[i].dtype) return false;
  return true;
}

/** The same constants, -0 told from 0 (and any NaN equal to any other). */
function sameScalars(a: FusedUnit, b: FusedUnit): boolean {
  if (a.scalars.length !== b.scalars.length) return false;
  for (let i = 0; i < a.scalars.length; i++) if (!Object.is(a.scalars[i], b.scalars[i])) return false;
  return true;
}

function sameRefs(a: FusedUnit, b: FusedUnit): boolean {
  return a.scalarRefs.every((r, i) => r === b.scalarRefs[i]);
}

function joined(batch: FusedUnit[]): FusedUnit {
  const first = batch[0];
  const nodes: Node[] = [], inputs: Array[] = [], outputs: Array[] = [];
  for (const m of batch) {
    for (const n of m.nodes) nodes.push(n);
    for (const x of m.inputs) inputs.push(x);
    for (const y of m.outputs) outputs.push(y);
  }
  const ints = first.ints.slice();
  ints.push(batch.length);
  return {
    kind: "fused",
    nodes,
    inputs,
    outputs,
    ints,
    scalars: first.scalars,
    scalarRefs: first.scalarRefs,
    type: first.type,
    members: batch.length,
  };
}

/**
 * The gpu chains evaluations have met (see planFusion), forgotten when there are too many: per
 * hash of their ints, what tells one kernel from another (device, number type, input dtypes,
 * ints). Copies, not the units: a unit would keep its arrays (and their device memory) alive.
 */
interface SeenChain {
  device: string;
  type: DType;
  dtypes: DType[];
  ints: number[];
}
const seenChains = new Map<number, SeenChain[]>();
let seenCount = 0;
const MAX_SEEN = 1 << 14;

/** Whether an evaluation met `u`'s kernel before; remembers it if not. */
function seenBefore(u: FusedUnit): boolean {
  const hash = intsHash(u.ints), device = deviceKey(u.nodes[0]);
  const found = seenChains.get(hash)?.some((s) =>
    s.device === device && s.type === u.type && sameShape(s.ints, u.ints) &&
    s.dtypes.length === u.inputs.length && s.dtypes.every((t, i) => t === u.inputs[i].dtype));
  if (found) return true;
  if (seenCount >= MAX_SEEN) seenChains.clear(), (seenCount = 0);
  let bucket = seenChains.get(hash);
  if (!bucket) seenChains.set(hash, (bucket = []));
  bucket.push({ device, type: u.type, dtypes: u.inputs.map((x) => x.dtype), ints: u.ints });
  seenCount++;
  return false;
}

function plan(order: Node[], kept: Set<Array>, cold: Set<Node> | null, once: boolean): Unit[] {
  const units: Unit[] = [];
  const emit = (node: Node) => units.push({ kind: "node", node });
  const groupOf = new Map<Array, Group>(); // values computed by a group, open or closed
  const groups: Group[] = []; // in the order they opened, which the end closes the open ones in
  const deferred = new Map<Array, Deferred>();
  // Group values read by a node outside their group. Such a read closes the group if still open
  // (so no group value is read from outside before its group closes), or comes later: a group's
  // outputs are known only at the end, when finish fills in the places its closing kept.
  const readOutside = new Set<Array>();
  const closed: Group[] = []; // fused groups closed, and the place in `units` each will take
  const places: number[] = [];

  // A deferred constant read by something that is not a group: computed after all, once. Its
  // nodes leave `deferred` as they are emitted, so a full that two broadcasts read is emitted once.
  const materializeChain = (d: Deferred) => {
    if (d.from) materializeChain(d.from);
    if (deferred.delete(d.node.outputs[0])) emit(d.node);
  };
  const materialize = (x: Array) => {
    const d = deferred.get(x);
    if (d) materializeChain(d);
  };
  const close = (g: Group) => {
    g.open = false;
    // A single node has nothing to fuse with: it runs as itself.
    if (g.nodes.length === 1 && stepCount(g) === 1) {
      emit(g.nodes[0]);
      return;
    }
    closed.push(g);
    places.push(units.length);
    units.push(null!);
  };

  for (const node of order) {
    const y = node.outputs[0];
    // Constants wait until a reader decides whether to fold them in or compute them.
    const c = constantOf(node);
    if (c && !kept.has(y)) {
      deferred.set(y, c);
      continue;
    }
    const src = node.prim.opcode === BROADCAST ? deferred.get(node.inputs[0]) : undefined;
    if (src && !kept.has(y)) {
      deferred.set(y, { value: src.value, dtype: src.dtype, ref: src.ref, node, from: src });
      continue;
    }

    // Only devices whose backend runs the fused kernel (the gpu's needs NVRTC: docs/cuda.md).
    let type = fusesOn(node) && !cold?.has(node) ? numberType(node) : undefined;
    // Asked of fusable nodes only: a cpu array's size is a product over its shape.
    if (type !== undefined && once && !fusesEagerly(node)) type = undefined;
    // The open groups this node can join: it joins all of them (merged into the first), since
    // open groups never read each other's values (reading one from outside closes it).
    let target: Group | undefined;
    if (type !== undefined) {
      for (const x of node.inputs) {
        const g = groupOf.get(x);
        if (!g || !g.open || g === target || !sameShape(g.shape, y.shape) || g.device !== deviceKey(node)) continue;
        if (type !== null && g.type !== type) continue;
        if (!target) {
          if (stepCount(g) + node.inputs.length >= MAX_STEPS || g.inputs.length + node.inputs.length > MAX_INPUTS) continue;
          target = g;
        } else if (target.type === g.type && stepCount(target) + stepCount(g) + node.inputs.length < MAX_STEPS &&
                   target.inputs.length + g.inputs.length + node.inputs.length <= MAX_INPUTS) {
          merge(target, g);
          g.open = false;
          for (const n of g.nodes) groupOf.set(n.outputs[0], target);
        }
      }
    }
    // Every open group this node reads from and does not join runs before it.
    for (const x of node.inputs) {
      const g = groupOf.get(x);
      if (!g || g === target) continue;
      readOutside.add(x);
      if (g.open) close(g);
    }
    if (type === undefined || (type === null && !target)) {
      for (const x of node.inputs) materialize(x);
      emit(node);
      continue;
    }
    if (!target) {
      target = {
        nodes: [], shape: y.shape, device: deviceKey(node), type: type!,
        reg: new Map(), inputs: [], steps: [], scalars: [], scalarRefs: [], open: true,
      };
      groups.push(target);
    }
    addStep(target, node, deferred);
    groupOf.set(y, target);
  }
  for (const g of groups) if (g.open) close(g);
  for (let i = 0; i < closed.length; i++) units[places[i]] = finish(closed[i], kept, readOutside);
  return units;
}

/** Moves every step of open group `b` into `a` (b's registers renumbered; shared inputs shared). */
function merge(a: Group, b: Group): void {
  const shift = stepCount(a), scalarShift = a.scalars.length;
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
  const s = b.steps;
  for (let i = 0; i < s.length; i += STEP_INTS) {
    if (s[i] === CONST_STEP) a.steps.push(CONST_STEP, s[i + 1], s[i + 2] + scalarShift, -1, -1);
    else a.steps.push(s[i], s[i + 1], map(s[i + 2]), map(s[i + 3]), map(s[i + 4]));
  }
  b.reg.forEach((r, v) => {
    if (r >= STEP_REG) a.reg.set(v, r + shift);
  });
  for (const v of b.scalars) a.scalars.push(v);
  for (const r of b.scalarRefs) a.scalarRefs.push(r);
  for (const n of b.nodes) a.nodes.push(n);
}

/** Adds `node` to `g`: registers for its new inputs (constants folded in as steps), then its step. */
function addStep(g: Group, node: Node, deferred: Map<Array, Deferred>): void {
  // A step has three operands (fused.h's layout); no fusable node reads more.
  let a = -1, b = -1, c = -1;
  const ins = node.inputs;
  for (let i = 0; i < ins.length; i++) {
    const r = register(g, ins[i], deferred);
    if (i === 0) a = r;
    else if (i === 1) b = r;
    else if (i === 2) c = r;
  }
  const y = node.outputs[0];
  g.reg.set(y, STEP_REG + stepCount(g));
  g.steps.push(node.prim.opcode!, y.dtype === "bool" ? REG_BOOL : REG_NUMBER, a, b, c);
  g.nodes.push(node);
}

/** The register of `x` in `g`, given one (an input, or a deferred constant folded in as a step) if new. */
function register(g: Group, x: Array, deferred: Map<Array, Deferred>): number {
  let r = g.reg.get(x);
  if (r !== undefined) return r;
  const d = deferred.get(x);
  if (d) {
    r = STEP_REG + stepCount(g);
    g.steps.push(CONST_STEP, d.dtype === "bool" ? REG_BOOL : REG_NUMBER, g.scalars.length, -1, -1);
    g.scalars.push(d.value);
    g.scalarRefs.push(d.ref);
  } else {
    r = INPUT_REG + g.inputs.length;
    g.inputs.push(x);
  }
  g.reg.set(x, r);
  return r;
}

/** The fused layout of a closed group of more than one step (see plan for `readOutside`). */
function finish(g: Group, kept: Set<Array>, readOutside: Set<Array>): FusedUnit {
  const steps = g.steps, count = stepCount(g);
  const nIn = g.inputs.length;
  const resolve = (r: number) => (r === -1 ? -1 : r >= STEP_REG ? nIn + (r - STEP_REG) : r - INPUT_REG);
  const ints: number[] = [dtypeCode(g.type), count];
  for (let i = 0; i < steps.length; i += STEP_INTS) {
    if (steps[i] === CONST_STEP) ints.push(CONST_STEP, steps[i + 1], steps[i + 2], -1, -1);
    else ints.push(steps[i], steps[i + 1], resolve(steps[i + 2]), resolve(steps[i + 3]), resolve(steps[i + 4]));
  }
  const outputs: Array[] = [];
  for (const n of g.nodes) {
    const y = n.outputs[0];
    if (kept.has(y) || readOutside.has(y)) outputs.push(y);
  }
  ints.push(outputs.length);
  for (const y of outputs) ints.push(resolve(g.reg.get(y)!));
  return { kind: "fused", nodes: g.nodes, inputs: g.inputs, outputs, ints, scalars: g.scalars, scalarRefs: g.scalarRefs, type: g.type, members: 1 };
}
