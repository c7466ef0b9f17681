/**
 * @file Linearizes the pending part of a graph into the flat program the addon runs in one call.
 * The format is documented once, here and in native/src/program.h:
 *
 *   program := nSlots  nInputs {handle slot}*  nInstr instr*  nOutputs {slot}*
 *   instr   := opcode dtype ndim shape[ndim] nIn inSlot[nIn] outSlot nInt int[nInt] nScalar scalarOffset
 */
import type { Array, Node } from "../array.js";
import { dtypeCode } from "../dtype.js";
import { DisposedError, InternalError, TransformError, fmtShape } from "../errors.js";

export interface Program {
  code: Int32Array;
  scalars: Float64Array;
  /** The arrays whose handles the run returns, in output order. */
  outputs: Array[];
  /** The node of each instruction, for error messages and the evaluation probe. */
  nodes: Node[];
}

/** Builds the program computing every lazy array in `roots` (those with handles are inputs). */
export function buildProgram(roots: Array[], op: string): Program | null {
  const slotOf = new Map<Array, number>();
  const inputs: number[] = [];
  const order: Node[] = [];
  const seen = new Set<Node>();

  const slot = (a: Array): number => {
    let s = slotOf.get(a);
    if (s === undefined) slotOf.set(a, (s = slotOf.size));
    return s;
  };
  const check = (a: Array) => {
    if (a.handle) return;
    if (a.disposed) throw new DisposedError(`${op}: array of shape ${fmtShape(a.shape)} ${a.dtype} was disposed`);
    if (!a.node) throw new InternalError(`${op}: lazy array without a node (this is a bug)`);
    if (a.node.prim.opcode === null) {
      throw new TransformError(
        `${op}: cannot read the value of an array mapped by vmap (shape ${fmtShape(a.shape)}): inside vmap a mapped value has no single value`,
      );
    }
  };

  // Iterative post-order DFS over nodes, stopping at arrays that already have data.
  const stack: [Node, number][] = [];
  const pending = roots.filter((r) => !r.handle);
  if (pending.length === 0) return null;
  for (const r of pending) {
    check(r);
    if (seen.has(r.node!)) continue;
    seen.add(r.node!);
    stack.push([r.node!, 0]);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, i] = top;
      if (i < node.inputs.length) {
        top[1]++;
        const x = node.inputs[i];
        if (x.handle) {
          if (!slotOf.has(x)) inputs.push(x.handle, slot(x));
          continue;
        }
        check(x);
        if (!seen.has(x.node!)) {
          seen.add(x.node!);
          stack.push([x.node!, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
  }

  const code: number[] = [0, inputs.length / 2, ...inputs, order.length];
  const scalars: number[] = [];
  for (const node of order) {
    if (node.outputs.length !== 1) throw new InternalError(`${node.prim.name}: multi-output nodes are not supported yet`);
    const out = node.outputs[0];
    const enc = node.prim.encode(node.params, node.inputs);
    code.push(node.prim.opcode!, dtypeCode(out.dtype), out.shape.length, ...out.shape, node.inputs.length);
    for (const x of node.inputs) code.push(slot(x));
    code.push(slot(out));
    const ints = enc.ints ?? [];
    code.push(ints.length, ...ints);
    const sc = enc.scalars ?? [];
    code.push(sc.length, scalars.length);
    scalars.push(...sc);
  }
  const outputs = [...new Set(pending)];
  code.push(outputs.length, ...outputs.map(slot));
  code[0] = slotOf.size;
  return { code: Int32Array.from(code), scalars: Float64Array.from(scalars), outputs, nodes: order };
}
