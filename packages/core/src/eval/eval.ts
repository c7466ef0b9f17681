/**
 * @file eval and evalAsync: build one program, run it natively, hand the results to their
 * arrays, and detach them from the graph so intermediates can be collected.
 */
import { makeArray, setHandle, type Array } from "../array.js";
import { cpu, type Device } from "../device.js";
import { native } from "../native/binding.js";
import { buildProgram, Scratch, scratchOutputs, stepName, type Program, type Step } from "./program.js";
import { callOf, callScalars, countCallReads, COUNT_MARK } from "./compiled.js";
import { compileTracing } from "./tracing.js";
import type { Node } from "../array.js";
import { releaseInputs } from "../primitive.js";

/**
 * State shared with @tessera/transforms: while depth > 0 a transform is recording, and evaluated
 * arrays keep their graph so the transform can still walk through them; they are detached when
 * the outermost transform returns (so a value evaluated inside grad on every step does not keep
 * every earlier step's graph alive).
 */
export const traceState = { depth: 0, evaluated: [] as Array[] };

/** Enters a transform's recording. */
export function enterTrace(): void {
  traceState.depth++;
}

/** Leaves it; leaving the outermost one detaches what was evaluated meanwhile. */
export function exitTrace(): void {
  if (--traceState.depth > 0) return;
  const done = traceState.evaluated;
  traceState.evaluated = [];
  for (const a of done) if (a.handle) detach(a);
}

/** Drops a computed array's graph, so the collector can free what only the graph held. */
function detach(a: Array): void {
  const node = a.node;
  if (!node) return;
  a.node = null;
  for (const y of node.outputs) if (y.node) return;
  releaseInputs(node);
}

/** Executed instructions per primitive name (evalStats.ops), less the runs of compiled calls not yet added. */
const opCounts = new Map<string, number>();

/** What a program's steps add to evalStats; `runs` of it are not yet in opCounts. */
interface StepCounts {
  instructions: number;
  fused: number;
  ops: [string, number][];
  runs: number;
}

/** The step counts with runs not yet in opCounts (a compiled call adds them when ops is read). */
const unflushed: StepCounts[] = [];

/**
 * Executions of one primitive not yet in opCounts: a loop evaluating one op counts by a compare
 * and an increment, where a map lookup and store per instruction were a sizeable part of a tiny
 * evaluation. Flushed when another name comes, and when evalStats.ops is read.
 */
let pendingName: string | null = null;
let pendingCount = 0;

function countOp(name: string): void {
  if (name === pendingName) {
    pendingCount++;
    return;
  }
  flushPending();
  pendingName = name;
  pendingCount = 1;
}

function flushPending(): void {
  if (pendingName !== null) opCounts.set(pendingName, (opCounts.get(pendingName) ?? 0) + pendingCount);
  pendingName = null;
  pendingCount = 0;
}

/** What evaluation has done, for tests that check laziness and sharing. */
export const evalStats = {
  programs: 0,
  /** Primitive computations run (a fused instruction counts each primitive it computes). */
  instructions: 0,
  /** Fused instructions run. */
  fused: 0,
  /** Executed instructions per primitive name. */
  get ops(): Map<string, number> {
    flushPending();
    for (const c of unflushed) {
      for (const [name, n] of c.ops) opCounts.set(name, (opCounts.get(name) ?? 0) + n * c.runs);
      c.runs = 0;
    }
    unflushed.length = 0;
    return opCounts;
  },
  reset(): void {
    this.programs = 0;
    this.instructions = 0;
    this.fused = 0;
    for (const c of unflushed) c.runs = 0;
    unflushed.length = 0;
    pendingName = null;
    pendingCount = 0;
    opCounts.clear();
  },
};

/** Frees a handle once its array is garbage-collected: the addon sweeps weak references to the
 * arrays as memory grows, so a loop that never yields gets its memory back (a FinalizationRegistry
 * would wait for the next event-loop task). Freeing twice (after dispose) is harmless. */
const track = (a: Array, handle: number) => native.track(a, handle);

/** Frees an array's native data now (dispose). */
export function releaseHandle(a: Array): void {
  native.free(a.handle);
  setHandle(a, 0);
}

/** While mx.profile runs: the steps of each program run, in the order they finished. */
export const profiledPrograms: { steps: Program["steps"][] | null } = { steps: null };

function record(p: { steps: Step[] }): void {
  evalStats.programs++;
  profiledPrograms.steps?.push(p.steps);
  for (const { name, members } of p.steps) {
    // A fused instruction counts as the primitives it computes (fusion changes how, not what).
    if (!members) {
      evalStats.instructions++;
      countOp(name);
      continue;
    }
    for (const m of members) {
      evalStats.instructions++;
      countOp(m);
    }
    evalStats.fused++;
  }
}

/** The step counts of each compiled function's program, worked out once (it runs every call). */
const stepCounts = new WeakMap<Step[], StepCounts>();

/** record for a compiled function's call: its per-name counts are added when evalStats.ops is read. */
function recordCall(trace: { program: { steps: Step[] } }): void {
  const steps = trace.program.steps;
  let c = stepCounts.get(steps);
  if (!c) {
    const ops = new Map<string, number>();
    let instructions = 0, fused = 0;
    for (const { name, members } of steps) {
      for (const m of members ?? [name]) {
        instructions++;
        ops.set(m, (ops.get(m) ?? 0) + 1);
      }
      if (members) fused++;
    }
    stepCounts.set(steps, (c = { instructions, fused, ops: [...ops], runs: 0 }));
  }
  evalStats.programs++;
  profiledPrograms.steps?.push(steps);
  evalStats.instructions += c.instructions;
  evalStats.fused += c.fused;
  if (c.runs++ === 0) unflushed.push(c);
}

/** Hands the run's handles to their arrays; the intermediates it freed are marked as such. */
function adopt(p: { outputs: Array[]; nodes: Node[] }, handles: Int32Array): void {
  const outputs = p.outputs;
  for (let i = 0; i < outputs.length; i++) {
    const a = outputs[i];
    if (a.handle || a.disposed) {
      native.free(handles[i]); // computed meanwhile (evalAsync raced a sync eval) or dropped
      continue;
    }
    setHandle(a, handles[i]);
    track(a, handles[i]);
  }
  for (const node of p.nodes) for (const y of node.outputs) if (!y.handle) y.freedOnce = true;
  if (traceState.depth > 0) {
    for (const a of outputs) traceState.evaluated.push(a);
    return;
  }
  const only = p.nodes.length === 1 ? p.nodes[0] : null;
  if (only && outputs === only.outputs) {
    // A compiled call's node: all its outputs at once (detach one by one would scan them all each time).
    let attached = false;
    for (const a of outputs) if (a.node) (a.node = null), (attached = true);
    if (attached) countCallReads(only.inputs, -1);
    return;
  }
  for (const a of outputs) detach(a);
}

function nativeError(p: { steps: Step[] }, op: string, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^\[eval\] instruction (\d+) \(([^)]*)\): (.*)$/s.exec(msg);
  if (m) {
    const step = p.steps[Number(m[1])];
    const shapes = step.inputs.map((x) => `[${x.shape.join(",")}] ${x.dtype}`).join(", ");
    const name = stepName(step);
    return new Error(`${op}: ${name} failed during evaluation (inputs ${shapes || "none"}): ${m[3]}`);
  }
  return new Error(`${op}: evaluation failed: ${msg.replace(/^\[run\] /, "")}`);
}

/**
 * Marks arrays as donated: the next evaluation that reads one takes over its memory (its results
 * may be written there) and the array is disposed (so is any graph still reading it: evaluating
 * that later throws a DisposedError, never reads reused memory). An
 * optimizer's update donates the parameters and state it replaces, so a training step never
 * holds two copies of them. Reading a donated array after that evaluation throws DisposedError.
 */
export function donate(arrays: Iterable<Array>): void {
  const tracing = compileTracing();
  for (const a of arrays) {
    if (a.disposed) continue;
    // While compile traces, only its inputs can be donated (each call then donates its own
    // arrays); an array the trace closes over is one of its constants, read again next call.
    if (tracing && !(a.node?.prim.opcode === null && a.node.params?.compile)) continue;
    // Read by nothing recorded: no evaluation will take it over, so it goes now.
    if (a.consumers === 0 && a.handle) a.dispose();
    else a.donated = true;
  }
}

/**
 * The donated inputs a run took over: their handles are gone, so the arrays are disposed. After a
 * failure (`failed`), only those the run had already taken (a run that fails before binding its
 * inputs takes none, and they stay usable).
 */
function retireDonated(p: { donated: Int32Array; inputArrays: Array[] }, failed = false): void {
  if (p.donated.length === 0) return;
  for (const i of p.donated) {
    const a = p.inputArrays[i];
    if (a.disposed || !a.handle) continue;
    if (failed && handleAlive(a.handle)) continue;
    setHandle(a, 0);
    a.disposed = true;
    a.node = null;
  }
}

function handleAlive(h: number): boolean {
  try {
    native.describe(h);
    return true;
  } catch {
    return false;
  }
}

/**
 * A compiled function's call, ready to run: its inputs computed, its bindings. The donated inputs
 * (an optimizer's old parameters, marked by the call) are passed only where they are bound once.
 */
function prepareCall(node: Node, op: string, scratch: boolean) {
  const { trace } = callOf(node);
  const scalars = callScalars(node, scratch);
  const inputArrays = node.inputs;
  const n = inputArrays.length;
  const inputs = (scratch && callInputs.view(n)) || new Int32Array(n);
  let anyDonated = false;
  for (let i = 0; i < n; i++) {
    const x = inputArrays[i];
    if (x.disposed) x.checkAlive(op);
    inputs[i] = x.handle;
    if (x.donated) anyDonated = true;
  }
  const donated: number[] = [];
  if (anyDonated) {
    for (const x of inputArrays) if (x.donated) x.consumers += COUNT_MARK; // counts how often each is bound (see COUNT_MARK)
    for (let i = 0; i < n; i++) {
      const x = inputArrays[i];
      if (x.donated && x.consumers < 2 * COUNT_MARK) donated.push(i);
    }
    for (const x of inputArrays) if (x.donated) x.consumers -= COUNT_MARK;
  }
  return {
    trace, scalars, inputArrays, nodes: [node], outputs: node.outputs, steps: trace.program.steps,
    inputs,
    donated: (scratch && int32sOf(donated, callDonated)) || Int32Array.from(donated),
  };
}

/** The typed arrays of a synchronous call's bindings: the addon reads them during the call (see Scratch). */
const callInputs = new Scratch(new Int32Array(4096));
const callDonated = new Scratch(new Int32Array(4096));

function int32sOf(words: number[], scratch: Scratch<Int32Array>): Int32Array | null {
  const v = scratch.view(words.length);
  if (v) for (let i = 0; i < words.length; i++) v[i] = words[i];
  return v;
}

/** Whether any input of a call node is still lazy. */
function lazyInputs(node: Node): Array[] | null {
  let lazy: Array[] | null = null;
  for (const x of node.inputs) if (!x.handle) (lazy ??= []).push(x);
  return lazy;
}

/** Whether a call node has run already (every output computed or dropped). */
function ran(node: Node): boolean {
  for (const y of node.outputs) if (!y.handle && !y.disposed) return false;
  return true;
}

/** Runs a compiled function's call node (after whatever computes its inputs). */
function runCall(node: Node, op: string): void {
  const lazy = lazyInputs(node);
  if (lazy) evaluate(lazy, op);
  if (ran(node)) return;
  const c = prepareCall(node, op, true);
  let handles: Int32Array;
  try {
    handles = native.runBody(c.trace.id, c.inputs, c.scalars, c.donated);
  } catch (e) {
    retireDonated(c, true);
    throw nativeError(c, op, e);
  }
  retireDonated(c);
  recordCall(c.trace);
  adopt(c, handles);
}

async function runCallAsync(node: Node, op: string): Promise<void> {
  const lazy = lazyInputs(node);
  if (lazy) await evaluateAsync(lazy, op);
  if (ran(node)) return;
  const c = prepareCall(node, op, false);
  let handles: Int32Array;
  try {
    const run = native.runBodyAsync(c.trace.id, c.inputs, c.scalars, c.donated);
    retireDonated(c);
    handles = await run;
  } catch (e) {
    retireDonated(c, true);
    throw nativeError(c, op, e);
  }
  recordCall(c.trace);
  adopt(c, handles);
}

/**
 * Computes every lazy array in `arrays` in one native call; calls of compiled functions among
 * them run first, each its own kept program (then the rest, which reads their results).
 */
export function evaluate(arrays: Array[], op = "eval"): void {
  // Scratch typed arrays (see buildProgram): this run reads them at once, and adopt reads the
  // output handles before anything can evaluate again.
  let p = buildProgram(arrays, op, true);
  if (p && "calls" in p) {
    for (const node of p.calls) runCall(node, op);
    if (allComputed(arrays)) return; // the calls computed everything (a compiled step's eval)
    p = buildProgram(arrays, op, true) as Program | null;
  }
  if (!p) return;
  let handles: Int32Array;
  try {
    // No scalars or donated inputs: undefined spares the addon reading an empty typed array.
    const scalars = p.scalars.length > 0 ? p.scalars : undefined;
    const donated = p.donated.length > 0 ? p.donated : undefined;
    handles = native.run(p.body, p.inputs, scalars, donated, scratchOutputs.view(p.outputs.length) ?? undefined);
  } catch (e) {
    retireDonated(p, true);
    throw nativeError(p, op, e);
  }
  retireDonated(p);
  record(p);
  adopt(p, handles);
}

/** Whether every array has its data (a disposed one has none: buildProgram reports it). */
function allComputed(arrays: Array[]): boolean {
  for (const a of arrays) if (!a.handle) return false;
  return true;
}

export async function evaluateAsync(arrays: Array[], op = "evalAsync"): Promise<void> {
  let p = buildProgram(arrays, op);
  if (p && "calls" in p) {
    for (const node of p.calls) await runCallAsync(node, op);
    p = buildProgram(arrays, op) as Program | null;
  }
  if (!p) return;
  let handles: Int32Array;
  try {
    const run = native.runAsync(p.body, p.inputs, p.scalars, p.donated);
    retireDonated(p); // bound: their handles are the run's now
    handles = await run;
  } catch (e) {
    retireDonated(p, true);
    throw nativeError(p, op, e);
  }
  record(p);
  adopt(p, handles);
}

/** Wraps a new native handle (from host data) in an Array the collector will free. */
export function fromHandle(shape: number[], dtype: import("../dtype.js").DType, handle: number, device: Device = cpu): Array {
  const a = makeArray(shape, dtype, null, handle, device);
  track(a, handle);
  return a;
}
