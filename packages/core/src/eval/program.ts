/**
 * @file Linearizes the pending part of a graph into the program the addon runs in one call, and
 * decides which computed values are kept (see docs/evaluation.md). The format is documented once,
 * here and in native/src/program.h:
 *
 *   body     := VERSION nSlots nInputs nScalars nInstr instr* nOutputs slot*
 *   instr    := opcode device nIn inSlot* nOut (outSlot dtype ndim dim*)* nInt int* nScalar scalarIndex
 *   bindings := inputs (an Int32Array of handles for slots 0..nInputs-1), scalars (8-byte words)
 *
 * A body holds no handles and no scalar values, so the addon can decode it once and replay it
 * with new bindings.
 */
import type { Array, Node } from "../array.js";
import { dtypeCode, type DType } from "../dtype.js";
import { DisposedError, InternalError, TransformError, assert, fmtShape } from "../errors.js";
import { nativeDevice, type Device } from "../device.js";
import { opcode } from "../native/ops.js";
import { planFusion } from "./fuse.js";
import { callPrim, type DynamicRef } from "./tracing.js";

/** native/src/program.h's kProgramVersion. */
export const PROGRAM_VERSION = 0x54530002;

/** What one instruction computes, for error messages and the evaluation probe. */
export interface Step {
  name: string;
  inputs: { shape: number[]; dtype: DType }[];
  /** For a fused instruction, the primitives it computes, in order. */
  members?: string[];
  /** For a fused instruction, how many chains of the same steps it batches (members holds each's). */
  batch?: number;
}

/** A step's name in profiles and errors: a fused chain as `fused(mul, add)`, a batch of them `fused(mul, add) x30`. */
export function stepName(step: Step): string {
  if (!step.members) return step.name;
  const k = step.batch ?? 1;
  const chain = `fused(${step.members.slice(0, step.members.length / k).join(", ")})`;
  return k > 1 ? `${chain} x${k}` : chain;
}

export interface Program {
  body: Int32Array;
  /** Handles bound to the body's input slots, in slot order. */
  inputs: Int32Array;
  /** The arrays bound to the input slots, in slot order. */
  inputArrays: Array[];
  /** The scalar words (doubles; int64 bits where a 64-bit integer fill needs them). */
  scalars: Float64Array;
  /** Positions in `inputs` of donated arrays this run takes over (see donate in eval.ts). */
  donated: Int32Array;
  /** The arrays whose handles the run returns, in output order: the roots, then kept values. */
  outputs: Array[];
  /** The step of each instruction. */
  steps: Step[];
  /** The nodes of the program, in execution order. */
  nodes: Node[];
  /** The scalar words a compiled call recomputes (see dynamic.ts): where each lands, and from what. */
  dynamic: readonly DynamicScalar[];
}

/** A dynamic scalar's word in a program's scalars. */
export interface DynamicScalar {
  index: number;
  ref: DynamicRef;
  dtype: DType;
}

function checkPending(a: Array, op: string): Node {
  if (a.disposed) throw new DisposedError(`${op}: array of shape ${fmtShape(a.shape)} ${a.dtype} was disposed`);
  const node = a.node;
  if (!node) throw new InternalError(`${op}: lazy array without a node (this is a bug)`);
  if (node.prim.opcode === null && node.params?.compile) {
    throw new TransformError(
      `${op}: cannot read the value of an array traced by compile (shape ${fmtShape(a.shape)}): it depends on a compiled function's inputs, ` +
        "which have no value while the function is traced. Evaluate outside the compiled function; state it replaces (a model, an optimizer) " +
        "must be named in compile's outputs, and state it reads in its inputs",
    );
  }
  if (node.prim.opcode === null) {
    throw new TransformError(
      `${op}: cannot read the value of an array mapped by vmap (shape ${fmtShape(a.shape)}): inside vmap a mapped value has no single value`,
    );
  }
  return node;
}

/**
 * The nodes computing the lazy `roots`, inputs first, and the computed arrays they read (and the
 * arrays `isInput` names: a compile trace's inputs). Calls of compiled functions are not walked
 * through: they are listed in `calls`, and evaluation runs them first (see evaluate).
 */
export function pendingNodes(
  roots: Array[],
  op: string,
  isInput?: (x: Array) => boolean,
): { order: Node[]; inputs: Array[]; calls: Node[] } {
  const order: Node[] = [];
  const inputs: Array[] = [];
  const calls: Node[] = [];
  const seenInput = new Set<Array>();
  const seen = new Set<Node>();
  // The walk's stack as two parallel lists (a node, the next of its inputs to visit) and a depth,
  // rather than a [node, index] pair allocated per node.
  const stackNodes: Node[] = [];
  const stackNext: number[] = [];
  for (const r of roots) {
    if (r.handle || isInput?.(r)) continue;
    if (r.node?.prim === callPrim) {
      if (!calls.includes(r.node)) calls.push(r.node);
      continue;
    }
    const rootNode = checkPending(r, op);
    if (seen.has(rootNode)) continue;
    seen.add(rootNode);
    stackNodes[0] = rootNode;
    stackNext[0] = 0;
    let depth = 1;
    while (depth > 0) {
      const node = stackNodes[depth - 1];
      const next = stackNext[depth - 1];
      if (next < node.inputs.length) {
        const x = node.inputs[next];
        stackNext[depth - 1] = next + 1;
        if (x.handle || isInput?.(x)) {
          if (!seenInput.has(x)) seenInput.add(x), inputs.push(x);
          continue;
        }
        if (x.node?.prim === callPrim) {
          if (!calls.includes(x.node)) calls.push(x.node);
          continue;
        }
        const n = checkPending(x, op);
        if (!seen.has(n)) {
          seen.add(n);
          stackNodes[depth] = n;
          stackNext[depth] = 0;
          depth++;
        }
      } else {
        depth--;
        order.push(node);
      }
    }
  }
  return { order, inputs, calls };
}

/**
 * Appends to `outputs` the computed arrays of `order` that keep their buffers after the run,
 * besides the roots (its first `numRoots` entries; `rootSet` holds them when there are many) and
 * disposed arrays: those read by a recorded node outside the program (a pending consumer that a
 * later eval will run), and those an earlier evaluation already computed and freed (a value needed
 * a second time is kept the second time, so it is never computed a third). They are appended in
 * the order of `order`, without an intermediate set or list (this runs on every evaluation).
 */
function appendKept(order: Node[], outputs: Array[], numRoots: number, rootSet: Set<Array> | null): void {
  const readsInside = smallGraph(order) ? null : countReads(order);
  for (let k = 0; k < order.length; k++) {
    const ys = order[k].outputs;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      // Without a consumer outside (consumers counts those inside too) only an earlier free keeps y;
      // the reads inside are counted only when it can matter.
      if (!y.freedOnce) {
        if (y.consumers === 0) continue;
        if (y.consumers <= (readsInside ? (readsInside.get(y) ?? 0) : readsOf(order, y))) continue;
      }
      if (y.disposed || isRoot(y, outputs, numRoots, rootSet)) continue;
      outputs.push(y);
    }
  }
}

/** Whether `order` reads so few arrays that a scan per value is cheaper than a map of counts. */
function smallGraph(order: Node[]): boolean {
  if (order.length > 16) return false;
  let edges = 0;
  for (let k = 0; k < order.length; k++) edges += order[k].inputs.length;
  return edges <= 64;
}

/** How many nodes of `order` read each computed array (a node reading one twice counts once). */
function countReads(order: Node[]): Map<Array, number> {
  const readsInside = new Map<Array, number>();
  for (let k = 0; k < order.length; k++) {
    const ins = order[k].inputs;
    // A node reads each array once: many inputs are deduplicated by a set, a few by a scan.
    const distinct = ins.length > 8 ? new Set<Array>() : null;
    for (let i = 0; i < ins.length; i++) {
      const x = ins[i];
      if (x.handle) continue;
      if (distinct) {
        if (distinct.has(x)) continue;
        distinct.add(x);
      } else {
        let j = 0;
        while (j < i && ins[j] !== x) j++;
        if (j < i) continue;
      }
      readsInside.set(x, (readsInside.get(x) ?? 0) + 1);
    }
  }
  return readsInside;
}

/** countReads(order).get(y) ?? 0 by a scan, for a small graph. */
function readsOf(order: Node[], y: Array): number {
  if (y.handle) return 0;
  let n = 0;
  for (let k = 0; k < order.length; k++) if (order[k].inputs.includes(y)) n++;
  return n;
}

/** Whether `y` is one of the roots, the first `numRoots` of `outputs` (or in `rootSet`, when given). */
function isRoot(y: Array, outputs: Array[], numRoots: number, rootSet: Set<Array> | null): boolean {
  if (rootSet) return rootSet.has(y);
  for (let i = 0; i < numRoots; i++) if (outputs[i] === y) return true;
  return false;
}

/**
 * Builds the program computing every lazy array in `roots` (those with data are inputs). When
 * the graph reads calls of compiled functions, nothing is built: their nodes come back, to run
 * first. With `scratch`, the typed arrays are views of buffers the next evaluation reuses (see
 * toScratch): only a caller that hands them to a synchronous run at once may ask for that.
 */
export function buildProgram(roots: Array[], op: string, scratch = false): Program | { calls: Node[] } | null {
  const one = roots.length === 1 ? singleNode(roots[0], op) : null;
  if (one) return encodeProgram([one.node], one.inputs, one.outputs, op, scratch);
  const { order, inputs, calls } = pendingNodes(roots, op);
  if (calls.length) return { calls };
  if (order.length === 0) return null;
  // The outputs: the lazy roots, each once, then the kept values. A scan finds a repeated root
  // among a few; a set among many (an eval of a model's parameters).
  const outputs: Array[] = [];
  const rootSet = roots.length > 16 ? new Set<Array>() : null;
  for (let i = 0; i < roots.length; i++) {
    const r = roots[i];
    if (r.handle) continue;
    if (rootSet) {
      if (rootSet.has(r)) continue;
      rootSet.add(r);
    } else if (outputs.includes(r)) continue;
    outputs.push(r);
  }
  appendKept(order, outputs, outputs.length, rootSet);
  return encodeProgram(order, inputs, outputs, op, scratch);
}

/**
 * The common tiny evaluation, without the general walk's maps and sets: one lazy root whose node
 * reads only computed arrays. Its program is that node; it returns the root, then the node's other
 * outputs that appendKept would keep (no node of the program reads them, so a pending consumer or
 * an earlier free is what keeps one). Null when the graph is anything else.
 */
function singleNode(root: Array, op: string): { node: Node; inputs: Array[]; outputs: Array[] } | null {
  if (root.handle || root.disposed) return null;
  const node = root.node;
  if (!node || node.prim.opcode === null) return null;
  const xs = node.inputs;
  const inputs: Array[] = new globalThis.Array(xs.length); // sized: a push onto [] allocates room for 17
  let n = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (!x.handle) return null;
    if (!inputs.includes(x)) inputs[n++] = x;
  }
  if (n < xs.length) inputs.length = n; // an input read twice is bound once
  const outputs = [root];
  for (const y of node.outputs) if (y !== root && (y.freedOnce || y.consumers > 0) && !y.disposed) outputs.push(y);
  return { node, inputs, outputs };
}

/** The opcodes the encoder writes itself. */
const TRANSFER = opcode("transfer");
const FUSED = opcode("fused");

/**
 * The buffers an evaluation's typed arrays are views of (see buildProgram's `scratch`): one per
 * role, off the V8 heap so that the addon reads them without copying, with one cached view per
 * length, so a loop of small evaluations allocates no typed array at all. The addon copies what it
 * keeps during the call, so the next evaluation may overwrite them.
 */
export class Scratch<T extends Int32Array | Float64Array> {
  private views: T[] = [];
  constructor(private readonly buf: T) {}
  /** A view of the first n words, or null when n exceeds the buffer. */
  view(n: number): T | null {
    if (n > this.buf.length) return null;
    return (this.views[n] ??= this.buf.subarray(0, n) as T);
  }
}
const scratchBody = new Scratch(new Int32Array(4096));
const scratchInputs = new Scratch(new Int32Array(1024));
const scratchDonated = new Scratch(new Int32Array(1024));
const scratchScalars = new Scratch(new Float64Array(512));
/** The buffer the addon writes an evaluation's output handles into (see eval.ts). */
export const scratchOutputs = new Scratch(new Int32Array(1024));

/**
 * encodeProgram for a program of one node whose inputs are all on its device (the common tiny
 * evaluation): the same words, written straight into the body's typed array (no word list, maps,
 * closures or fusion plan). Null when a transfer is involved.
 */
function encodeOne(order: Node[], inputs: Array[], outputs: Array[], scratch: boolean): Program | null {
  const node = order[0];
  const opc = node.prim.opcode!;
  if (opc === TRANSFER) return null;
  const xs = node.inputs, ys = node.outputs;
  for (let i = 0; i < xs.length; i++) if (xs[i].device !== node.device) return null;
  const enc = node.prim.encode(node.params, xs);
  const dev = nativeDevice(node.device, node.prim.name);
  const ints = enc.ints, nInts = ints ? ints.length : 0;
  const nIn = inputs.length;
  // header 5, instruction head 3, inputs, nOut, outputs 3 + ndim each, nInt ints, nScalar index, nOutputs slots
  let n = 5 + 3 + xs.length + 1 + (1 + nInts) + 2 + (1 + outputs.length);
  for (let k = 0; k < ys.length; k++) n += 3 + ys[k].shape.length;
  const code = (scratch && scratchBody.view(n)) || new Int32Array(n);
  const scalars = enc.scalars ?? NO_SCALARS;
  code[0] = PROGRAM_VERSION;
  code[1] = nIn + ys.length;
  code[2] = nIn;
  code[3] = scalars.length;
  code[4] = 1;
  code[5] = opc;
  code[6] = dev;
  code[7] = xs.length;
  let w = 8;
  for (let i = 0; i < xs.length; i++) code[w++] = inputs.indexOf(xs[i]);
  code[w++] = ys.length;
  for (let k = 0; k < ys.length; k++) {
    const shape = ys[k].shape;
    code[w++] = nIn + k;
    code[w++] = dtypeCode(ys[k].dtype);
    code[w++] = shape.length;
    for (let d = 0; d < shape.length; d++) code[w++] = shape[d];
  }
  code[w++] = nInts;
  for (let i = 0; i < nInts; i++) code[w++] = ints![i];
  code[w++] = scalars.length;
  code[w++] = 0;
  code[w++] = outputs.length;
  for (let i = 0; i < outputs.length; i++) code[w++] = nIn + ys.indexOf(outputs[i]);
  assert(w === n, "encodeOne: body length");
  const ref: DynamicRef | undefined = node.params?.dynamic;
  const dynamic = ref ? [{ index: 0, ref, dtype: ys[0].dtype }] : NO_DYNAMIC;
  const steps: Step[] = [{ name: node.prim.name, inputs: xs }];
  return assemble(code, scalars, { inputArrays: inputs, outputs, steps, nodes: order, dynamic }, scratch);
}
/** Shared empty lists of a program without scalars (never written: a program's lists are read only). */
const NO_SCALARS: readonly number[] = Object.freeze([]);
const NO_DYNAMIC: readonly DynamicScalar[] = Object.freeze([]);

/**
 * Encodes `order` (nodes in execution order) reading `inputs` (bound to slots 0..n-1, in order)
 * into a body returning `outputs`; `scratch` as for buildProgram; `kept` for a body kept to run
 * many times (compile's), whose chains fuse from the first run (see planFusion).
 */
export function encodeProgram(order: Node[], inputs: Array[], outputs: Array[], op: string, scratch = false, kept = false): Program {
  if (order.length === 1) {
    const one = encodeOne(order, inputs, outputs, scratch);
    if (one) return one;
  }
  const slotOf = new Map<Array, number>();
  for (let i = 0; i < inputs.length; i++) slotOf.set(inputs[i], i);
  let numSlots = inputs.length;
  // The body is written into the shared word buffer (see bodyWords), w words so far; the header's
  // counts are filled in at the end. Every write is preceded by room() for its words.
  let code = bodyWords;
  let w = 5;
  const room = (k: number) => {
    if (w + k > code.length) code = growBodyWords(w + k, w);
  };
  const scalars: (number | bigint)[] = [];
  const dynamic: DynamicScalar[] = [];
  const steps: Step[] = [];
  let transferred: Map<string, number> | null = null; // `${slot}@${device}` -> slot
  // The native index of the last device seen (nodes and inputs nearly always share one).
  let lastDevice: Device | null = null;
  let lastIndex = 0;
  const deviceIndex = (d: Device, name: string) => (d === lastDevice ? lastIndex : ((lastIndex = nativeDevice(d, name)), (lastDevice = d), lastIndex));

  const outSpec = (a: Array) => {
    const shape = a.shape;
    room(3 + shape.length);
    slotOf.set(a, numSlots);
    code[w++] = numSlots++;
    code[w++] = dtypeCode(a.dtype);
    code[w++] = shape.length;
    for (let d = 0; d < shape.length; d++) code[w++] = shape[d];
  };
  // The slot of x as seen on device `dev`: inputs on another device go through a transfer.
  const slotOn = (x: Array, dev: number): number => {
    const s = slotOf.get(x)!;
    if (deviceIndex(x.device, op) === dev) return s;
    const key = `${s}@${dev}`;
    let t = (transferred ??= new Map()).get(key);
    if (t === undefined) {
      const shape = x.shape;
      room(11 + shape.length);
      code[w++] = TRANSFER;
      code[w++] = dev;
      code[w++] = 1;
      code[w++] = s;
      code[w++] = 1;
      code[w++] = numSlots;
      code[w++] = dtypeCode(x.dtype);
      code[w++] = shape.length;
      for (let d = 0; d < shape.length; d++) code[w++] = shape[d];
      code[w++] = 0;
      code[w++] = 0;
      code[w++] = 0;
      transferred.set(key, (t = numSlots++));
      steps.push({ name: "transfer", inputs: [{ shape: x.shape, dtype: x.dtype }] });
    }
    return t;
  };
  // An instruction's input slots are found first, into `ins` (shared, see inputSlots), since slotOn
  // may write a transfer ahead of the instruction; then the instruction's head and inputs go in.
  const ins = inputSlots;
  const head = (opc: number, dev: number, nIn: number) => {
    room(3 + nIn + 1);
    code[w++] = opc;
    code[w++] = dev;
    code[w++] = nIn;
    for (let i = 0; i < nIn; i++) code[w++] = ins[i];
  };
  // The tail of an instruction: its ints, then its scalars' count and first index.
  const tail = (ints: ArrayLike<number> | undefined, numScalars: number) => {
    const nInts = ints ? ints.length : 0;
    room(1 + nInts + 2);
    code[w++] = nInts;
    for (let i = 0; i < nInts; i++) code[w++] = ints![i];
    code[w++] = numScalars;
    code[w++] = scalars.length;
  };

  for (const unit of planFusion(order, () => new Set(outputs), !kept)) {
    if (unit.kind === "fused") {
      const dev = deviceIndex(unit.nodes[0].device, "fused");
      const xs = unit.inputs;
      for (let i = 0; i < xs.length; i++) ins[i] = slotOn(xs[i], dev);
      head(FUSED, dev, xs.length);
      const ys = unit.outputs;
      code[w++] = ys.length; // head made room for this word
      for (let i = 0; i < ys.length; i++) outSpec(ys[i]);
      tail(unit.ints, unit.scalars.length);
      const refs = unit.scalarRefs;
      for (let i = 0; i < refs.length; i++) {
        const ref = refs[i];
        if (ref) dynamic.push({ index: scalars.length + i, ref, dtype: unit.type });
      }
      for (let i = 0; i < unit.scalars.length; i++) scalars.push(unit.scalars[i]);
      steps.push({ name: "fused", inputs: unit.inputs, members: unit.nodes.map((n) => n.prim.name), batch: unit.members });
      continue;
    }
    const node = unit.node;
    const enc = node.prim.encode(node.params, node.inputs);
    const dev = deviceIndex(node.device, node.prim.name);
    const xs = node.inputs;
    if (node.prim.opcode === TRANSFER) for (let i = 0; i < xs.length; i++) ins[i] = slotOf.get(xs[i])!;
    else for (let i = 0; i < xs.length; i++) ins[i] = slotOn(xs[i], dev);
    head(node.prim.opcode!, dev, xs.length);
    const ys = node.outputs;
    code[w++] = ys.length; // head made room for this word
    for (let i = 0; i < ys.length; i++) outSpec(ys[i]);
    const sc = enc.scalars;
    tail(enc.ints, sc ? sc.length : 0);
    const ref: DynamicRef | undefined = node.params?.dynamic;
    if (ref) dynamic.push({ index: scalars.length, ref, dtype: ys[0].dtype });
    if (sc) for (let i = 0; i < sc.length; i++) scalars.push(sc[i]);
    steps.push({ name: node.prim.name, inputs: node.inputs });
  }
  room(1 + outputs.length);
  code[w++] = outputs.length;
  for (let i = 0; i < outputs.length; i++) code[w++] = slotOf.get(outputs[i])!;
  code[0] = PROGRAM_VERSION;
  code[1] = numSlots;
  code[2] = inputs.length;
  code[3] = scalars.length;
  code[4] = steps.length;
  // The body is a copy of the words, since the buffer is the next evaluation's; except with
  // `scratch`, whose body may be overwritten by the next evaluation anyway: there a body too long
  // for scratchBody is a view of the buffer itself, sparing a large typed array per evaluation.
  let body: Int32Array | null = scratch ? scratchBody.view(w) : null;
  if (body) body.set(code.subarray(0, w));
  else body = scratch ? code.subarray(0, w) : code.slice(0, w);
  // A huge program (a concatenation of 100,000 arrays) does not keep its buffers' size for good.
  if (bodyWords.length > MAX_KEPT_WORDS) bodyWords = new Int32Array(1 << 14);
  if (inputSlots.length > MAX_KEPT_WORDS) inputSlots.length = 0;
  return assemble(body, scalars, { inputArrays: inputs, outputs, steps, nodes: order, dynamic }, scratch);
}

/**
 * The words encodeProgram writes a body into, shared by every evaluation and grown by doubling:
 * a body written into a list grown by push left the list's outgrown backing stores and the list
 * itself as garbage, then was copied into the Int32Array anyway. The same goes for inputSlots, an
 * instruction's input slots. Neither is live between calls (encoding never reenters itself).
 */
let bodyWords: Int32Array = new Int32Array(1 << 14);
const inputSlots: number[] = [];
const MAX_KEPT_WORDS = 1 << 20;

/** Grows bodyWords to at least `need` words, keeping its first `used`; returns the new buffer. */
function growBodyWords(need: number, used: number): Int32Array {
  let n = bodyWords.length * 2;
  while (n < need) n *= 2;
  const grown = new Int32Array(n);
  grown.set(bodyWords.subarray(0, used));
  return (bodyWords = grown);
}

/** The program from its body, scalars and input arrays (their handles and donations); the rest is `parts`. */
function assemble(body: Int32Array, scalars: readonly (number | bigint)[], parts: Omit<Program, "body" | "inputs" | "donated" | "scalars">, scratch: boolean): Program {
  const inputs = parts.inputArrays;
  const words = (scratch && scratchScalars.view(scalars.length)) || new Float64Array(scalars.length);
  let bits: BigInt64Array | null = null;
  for (let i = 0; i < scalars.length; i++) {
    const v = scalars[i];
    if (typeof v === "bigint") (bits ??= new BigInt64Array(words.buffer, words.byteOffset, words.length))[i] = BigInt.asIntN(64, v);
    else words[i] = v;
  }
  // A donated input is taken over by the first program that reads it. Nodes recorded outside
  // this program that read it (often garbage: the collector has not run yet) would find it
  // disposed if ever evaluated, and throw a DisposedError rather than read reused memory.
  const n = inputs.length;
  const handles = (scratch && scratchInputs.view(n)) || new Int32Array(n);
  let numDonated = 0;
  for (let i = 0; i < n; i++) {
    handles[i] = inputs[i].handle;
    if (inputs[i].donated) numDonated++;
  }
  const donated = (scratch && scratchDonated.view(numDonated)) || new Int32Array(numDonated);
  if (numDonated > 0) for (let i = 0, k = 0; i < n; i++) if (inputs[i].donated) donated[k++] = i;
  return {
    body,
    inputs: handles,
    inputArrays: inputs,
    donated,
    scalars: words,
    outputs: parts.outputs,
    steps: parts.steps,
    nodes: parts.nodes,
    dynamic: parts.dynamic,
  };
}
