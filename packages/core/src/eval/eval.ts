/**
 * @file eval and evalAsync: build one program, run it natively, hand the results to their
 * arrays, and detach them from the graph so intermediates can be collected.
 */
import { makeArray, setHandle, type Array } from "../array.js";
import { cpu, type Device } from "../device.js";
import { native } from "../native/binding.js";
import { buildProgram, scratchOutputs, type Program, type Step } from "./program.js";
import { callOf } from "./compiled.js";
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

/** What evaluation has done, for tests that check laziness and sharing. */
export const evalStats = {
  programs: 0,
  /** Primitive computations run (a fused instruction counts each primitive it computes). */
  instructions: 0,
  /** Fused instructions run. */
  fused: 0,
  /** Executed instructions per primitive name. */
  ops: new Map<string, number>(),
  reset(): void {
    this.programs = 0;
    this.instructions = 0;
    this.fused = 0;
    this.ops.clear();
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
  const ops = evalStats.ops;
  for (const { name, members } of p.steps) {
    // A fused instruction counts as the primitives it computes (fusion changes how, not what).
    if (!members) {
      evalStats.instructions++;
      ops.set(name, (ops.get(name) ?? 0) + 1);
      continue;
    }
    for (const m of members) {
      evalStats.instructions++;
      ops.set(m, (ops.get(m) ?? 0) + 1);
    }
    evalStats.fused++;
  }
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
  for (const a of outputs) {
    if (traceState.depth === 0) detach(a);
    else traceState.evaluated.push(a);
  }
}

function nativeError(p: { steps: Step[] }, op: string, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^\[eval\] instruction (\d+) \(([^)]*)\): (.*)$/s.exec(msg);
  if (m) {
    const step = p.steps[Number(m[1])];
    const shapes = step.inputs.map((x) => `[${x.shape.join(",")}] ${x.dtype}`).join(", ");
    const name = step.members ? `fused(${step.members.join(", ")})` : step.name;
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
function prepareCall(node: Node, op: string) {
  const { trace, scalars } = callOf(node);
  const inputArrays = node.inputs;
  for (const x of inputArrays) x.checkAlive(op);
  const count = new Map<Array, number>();
  for (const x of inputArrays) count.set(x, (count.get(x) ?? 0) + 1);
  const donated: number[] = [];
  inputArrays.forEach((x, i) => x.donated && count.get(x) === 1 && donated.push(i));
  return {
    trace, scalars, inputArrays, nodes: [node], outputs: node.outputs, steps: trace.program.steps,
    inputs: Int32Array.from(inputArrays, (x) => x.handle),
    donated: Int32Array.from(donated),
  };
}

/** Runs a compiled function's call node (after whatever computes its inputs). */
function runCall(node: Node, op: string): void {
  const lazy = node.inputs.filter((x) => !x.handle);
  if (lazy.length) evaluate(lazy, op);
  if (node.outputs.every((y) => y.handle || y.disposed)) return;
  const c = prepareCall(node, op);
  let handles: Int32Array;
  try {
    handles = native.runBody(c.trace.id, c.inputs, c.scalars, c.donated);
  } catch (e) {
    retireDonated(c, true);
    throw nativeError(c, op, e);
  }
  retireDonated(c);
  record(c);
  adopt(c, handles);
}

async function runCallAsync(node: Node, op: string): Promise<void> {
  const lazy = node.inputs.filter((x) => !x.handle);
  if (lazy.length) await evaluateAsync(lazy, op);
  if (node.outputs.every((y) => y.handle || y.disposed)) return;
  const c = prepareCall(node, op);
  let handles: Int32Array;
  try {
    const run = native.runBodyAsync(c.trace.id, c.inputs, c.scalars, c.donated);
    retireDonated(c);
    handles = await run;
  } catch (e) {
    retireDonated(c, true);
    throw nativeError(c, op, e);
  }
  record(c);
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
    p = buildProgram(arrays, op, true) as Program | null;
  }
  if (!p) return;
  let handles: Int32Array;
  try {
    handles = native.run(p.body, p.inputs, p.scalars, p.donated, scratchOutputs.view(p.outputs.length) ?? undefined);
  } catch (e) {
    retireDonated(p, true);
    throw nativeError(p, op, e);
  }
  retireDonated(p);
  record(p);
  adopt(p, handles);
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
