/**
 * @file Generic graph walks shared by every transform and by the derivative rules of fused
 * primitives (primitives/composite.ts); nothing here knows a particular primitive.
 */
import type { Array, Node } from "./array.js";

/**
 * The nodes that compute `outputs` from `sources`, inputs before users, in an order safe to
 * process forward (reverse it for the backward pass). A node is included only when it depends on
 * a source; the walk does not look past the sources or past arrays without a node.
 * Returns the nodes and the set of arrays that depend on a source (the sources included).
 */
export function dependentNodes(outputs: Array[], sources: Array[]): { order: Node[]; active: Set<Array> } {
  const isSource = new Set(sources);
  const active = new Set<Array>(sources);
  const order: Node[] = [];
  const state = new Map<Node, number>(); // 1: on the stack, 2: done
  const stack: [Node, number][] = [];
  const push = (a: Array) => {
    if (isSource.has(a) || !a.node || state.has(a.node)) return;
    state.set(a.node, 1);
    stack.push([a.node, 0]);
  };
  for (const o of outputs) {
    push(o);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const node = top[0];
      if (top[1] < node.inputs.length) push(node.inputs[top[1]++]);
      else {
        stack.pop();
        state.set(node, 2);
        if (node.inputs.some((x) => active.has(x))) {
          order.push(node);
          for (const y of node.outputs) active.add(y);
        }
      }
    }
  }
  return { order, active };
}

/** Every node reachable from `outputs`, inputs first (for vmap's rebuild). */
export function allNodes(outputs: Array[], stopAt: Set<Array>): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  const stack: [Node, number][] = [];
  const push = (a: Array) => {
    if (stopAt.has(a) || !a.node || seen.has(a.node)) return;
    seen.add(a.node);
    stack.push([a.node, 0]);
  };
  for (const o of outputs) {
    push(o);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top[1] < top[0].inputs.length) push(top[0].inputs[top[1]++]);
      else order.push(stack.pop()![0]);
    }
  }
  return order;
}
