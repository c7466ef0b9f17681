/**
 * @file eval and evalAsync: build one program, run it natively, hand the results to their
 * arrays, and detach them from the graph so intermediates can be collected.
 */
import { Array as ArrayClass, type Array } from "../array.js";
import { native } from "../native/binding.js";
import { buildProgram, type Program } from "./program.js";

/** State shared with @tessera/transforms: while depth > 0 a transform is recording, and evaluated
 * arrays keep their graph so the transform can still walk through them. */
export const traceState = { depth: 0 };

/** What evaluation has done, for tests that check laziness and sharing. */
export const evalStats = {
  programs: 0,
  instructions: 0,
  /** Executed instructions per primitive name. */
  ops: new Map<string, number>(),
  reset(): void {
    this.programs = 0;
    this.instructions = 0;
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
  a.handle = 0;
}

function record(p: Program): void {
  evalStats.programs++;
  evalStats.instructions += p.nodes.length;
  for (const n of p.nodes) evalStats.ops.set(n.prim.name, (evalStats.ops.get(n.prim.name) ?? 0) + 1);
}

function adopt(p: Program, handles: Int32Array): void {
  p.outputs.forEach((a, i) => {
    if (a.handle || a.disposed) {
      native.free(handles[i]); // computed meanwhile (evalAsync raced a sync eval) or dropped
      return;
    }
    a.handle = handles[i];
    track(a, a.handle);
    if (traceState.depth === 0) a.node = null;
  });
}

function nativeError(p: Program, op: string, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^\[eval\] instruction (\d+) \(([^)]*)\): (.*)$/s.exec(msg);
  if (m) {
    const node = p.nodes[Number(m[1])];
    const shapes = node.inputs.map((x) => `[${x.shape.join(",")}] ${x.dtype}`).join(", ");
    return new Error(`${op}: ${node.prim.name} failed during evaluation (inputs ${shapes || "none"}): ${m[3]}`);
  }
  return new Error(`${op}: evaluation failed: ${msg}`);
}

/** Computes every lazy array in `arrays` in one native call. */
export function evaluate(arrays: Array[], op = "eval"): void {
  const p = buildProgram(arrays, op);
  if (!p) return;
  let handles: Int32Array;
  try {
    handles = native.run(p.code, p.scalars);
  } catch (e) {
    throw nativeError(p, op, e);
  }
  record(p);
  adopt(p, handles);
}

export async function evaluateAsync(arrays: Array[], op = "evalAsync"): Promise<void> {
  const p = buildProgram(arrays, op);
  if (!p) return;
  let handles: Int32Array;
  try {
    handles = await native.runAsync(p.code, p.scalars);
  } catch (e) {
    throw nativeError(p, op, e);
  }
  record(p);
  adopt(p, handles);
}

/** Wraps a new native handle (from host data) in an Array the collector will free. */
export function fromHandle(shape: number[], dtype: import("../dtype.js").DType, handle: number): Array {
  const a = new ArrayClass(shape, dtype, null, handle);
  track(a, handle);
  return a;
}
