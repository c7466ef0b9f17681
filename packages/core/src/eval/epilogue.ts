/**
 * @file Folding adds into the products they follow, on the gpu: `matmul(a, b) + c` (a residual,
 * or another product's result: the sum of a layer's input gradients) and `matmul(a, b) +
 * broadcast(bias)` become one matmul instruction whose epilogue adds them (cuBLASLt adds C and a
 * bias vector inside the product's kernel: native/src/cuda/matmul_lt.cc), instead of a product and
 * then a kernel for the add. A Transformer layer's residual adds and a classifier's bias add each
 * cost a kernel launch otherwise.
 *
 * The results are those of the separate ops up to the product's own summation order (cuBLASLt
 * may choose another algorithm for a product with an epilogue than for the same product without): a
 * float32 (or float64) product's value is its accumulator's, and the epilogue adds one operand to
 * it and rounds once, as the add would. So a product takes one add only (cuBLASLt adds C before
 * the bias: two adds folded would be summed in another order than the graph's), and half types
 * are left alone (their product is rounded to the half type before an add reads it; the epilogue
 * would round once). Plain and compiled evaluations fold alike, so they agree bit for bit.
 *
 * A norm backward's input gradient plus another array (a residual's gradient, in every
 * Transformer layer's backward) is folded the same way: the kernel adds it as it stores dx,
 * rounded apart (bit for bit the separate add).
 *
 * A fold needs the product's result to be read by the add alone (and not kept), so the
 * instruction can write the sum where the product would have gone; a reshape between them that
 * keeps the rows' length is folded too (the fold's output then has the add's shape: the same
 * rows, laid out the same).
 */
import type { Array, Node } from "../array.js";
import { opcode } from "../native/ops.js";
import { sameShape } from "../shape.js";

const MATMUL = opcode("matmul");
const ADD = opcode("add");
const BROADCAST = opcode("broadcastTo");
const RESHAPE = opcode("reshape");
const NORM_BWD = new Set([opcode("layerNormBwd"), opcode("rmsNormBwd")]);
/** program.h's flags. */
const ADDEND = 1;
const BIAS = 2;
const FOLDABLE = new Set(["float32", "float64"]);
/** TESSERA_EPILOGUES=0 leaves every add apart (for comparison). */
const enabled = process.env.TESSERA_EPILOGUES !== "0";

/**
 * `order` (nodes in execution order) with each gpu add that can be folded into the product it
 * reads replaced by that product with an epilogue; `order` itself when there is none.
 */
export function foldEpilogues(order: Node[], kept: Set<Array>): Node[] {
  if (!enabled || !order.some(isCandidate)) return order;
  const reads = new Map<Array, number>();
  for (const n of order) {
    for (let i = 0; i < n.inputs.length; i++) {
      const x = n.inputs[i];
      if (n.inputs.indexOf(x) === i) reads.set(x, (reads.get(x) ?? 0) + 1);
    }
  }
  const readOnce = (x: Array) => reads.get(x) === 1 && !kept.has(x);
  // A product's value, or a reshape of it keeping the rows' length (matmul of a [B, L, D] batch by
  // a weight is a product over B * L rows, reshaped): the nodes computing it, by their positions.
  const products = new Map<Array, Product>();
  const norms = new Map<Array, number>(); // a norm backward's dx, and its place
  const position = new Map<Node, number>();
  for (let k = 0; k < order.length; k++) position.set(order[k], k);
  const out = order.slice();
  for (let k = 0; k < out.length; k++) {
    const n = out[k];
    const op = n.prim.opcode;
    if (op === MATMUL && n.inputs.length === 2) {
      products.set(n.outputs[0], { node: n, at: [k] });
    } else if (op === RESHAPE) {
      const from = products.get(n.inputs[0]), y = n.outputs[0];
      if (from && readOnce(n.inputs[0]) && y.shape[y.ndim - 1] === n.inputs[0].shape[n.inputs[0].ndim - 1]) {
        products.set(y, { node: from.node, at: [...from.at, k] });
      }
    } else if (NORM_BWD.has(op!) && !n.params.addend && FOLDABLE.has(n.outputs[0].dtype)) {
      norms.set(n.outputs[0], k);
    } else if (isCandidate(n)) {
      const folded = fold(n, products, readOnce);
      if (folded) {
        for (const at of folded.at) out[at] = null!; // the product (and reshape) run as the fold, at the add's place
        out[k] = folded.node;
      } else {
        foldIntoNorm(out, k, norms, readOnce, position);
      }
    }
  }
  return out.filter((n) => n !== null);
}

/**
 * A norm backward's dx plus another array (the gradient a residual connection adds to it): the
 * norm backward adds it to dx as it stores it, at its own place when the addend is ready by then,
 * else at the add's when nothing in between reads its parameter gradients.
 */
function foldIntoNorm(out: Node[], k: number, norms: Map<Array, number>, readOnce: (x: Array) => boolean, position: Map<Node, number>): void {
  const add = out[k];
  const [x, y] = add.inputs;
  if (x === y) return;
  for (const [dx, other] of [[y, x], [x, y]] as const) {
    const at = norms.get(dx);
    if (at === undefined || !readOnce(dx) || other.dtype !== dx.dtype || !sameShape(other.shape, dx.shape)) continue;
    const norm = out[at];
    if (norm.device !== add.device || norm.outputs.includes(other)) continue;
    const fused: Node = {
      prim: norm.prim, inputs: [...norm.inputs, other], params: { ...norm.params, addend: true },
      outputs: [add.outputs[0], ...norm.outputs.slice(1)], device: norm.device,
    };
    const ready = other.handle || !other.node || (position.get(other.node) ?? Infinity) < at;
    if (ready) {
      out[at] = fused;
      out[k] = null!;
    } else {
      const params = new Set(norm.outputs.slice(1));
      for (let i = at + 1; i < k; i++) if (out[i] && out[i].inputs.some((v) => params.has(v))) return;
      out[at] = null!;
      out[k] = fused;
      position.set(norm, k); // its parameter gradients now come from here
    }
    norms.delete(dx);
    return;
  }
}

/** A product's value: the matmul computing it and the positions of it and of any reshape after it. */
interface Product {
  node: Node;
  at: number[];
}

/** A gpu add of floats: might read a product it can be folded into. */
function isCandidate(n: Node): boolean {
  return n.prim.opcode === ADD && n.device.type === "gpu" && FOLDABLE.has(n.outputs[0].dtype);
}

/** The fold replacing `add` and the product it reads (and the positions they leave), or null. */
function fold(add: Node, products: Map<Array, Product>, readOnce: (x: Array) => boolean): { node: Node; at: number[] } | null {
  const [x, y] = add.inputs;
  if (x === y) return null;
  // The later product takes the other operand as its addend (the earlier one is then done).
  for (const [m, other] of [[y, x], [x, y]] as const) {
    const product = products.get(m);
    if (!product || product.node.device !== add.device || !readOnce(m)) continue;
    const [a, b] = product.node.inputs;
    // The fold writes the add's result, of m's shape: a reshape of the product's rows.
    const fused = (flag: number, operand: Array) => ({
      node: { prim: product.node.prim, inputs: [a, b, operand], params: { epilogue: flag }, outputs: add.outputs, device: add.device },
      at: product.at,
    });
    const bcast = other.handle ? undefined : other.node;
    const bias = bcast?.prim.opcode === BROADCAST ? bcast.inputs[0] : undefined;
    if (bias && bias.ndim === 1 && bias.shape[0] === m.shape[m.ndim - 1] && bias.dtype === m.dtype) return fused(BIAS, bias);
    if (other.dtype === m.dtype && sameShape(other.shape, m.shape)) return fused(ADDEND, other);
  }
  return null;
}
