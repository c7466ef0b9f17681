/**
 * @file einsum as a composite: subscripts parsed (implicit/explicit output, ellipsis, repeated
 * labels), diagonals taken with a strided slice, operands contracted pairwise in a greedy order,
 * each pair lowered to transpose + reshape + one batched matmul.
 */
import { Array, isArray } from "../array.js";
import { promoteTypes, type DType } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { checkArray, fmtGot, withDevice } from "./util.js";
import type { DeviceOptions } from "../device.js";

/** A label: a letter's char code, or ELLIPSIS_BASE + k for the k-th ellipsis axis from the right. */
type Label = number;
const ELLIPSIS_BASE = 1000;

/** An operand during contraction: its array and one distinct label per axis. */
interface Term {
  x: Array;
  labels: Label[];
}

const isLetter = (c: string) => /^[a-zA-Z]$/.test(c);
const prod = (xs: number[]) => xs.reduce((p, d) => p * d, 1);
const labelName = (l: Label) => (l >= ELLIPSIS_BASE ? "..." : String.fromCharCode(l));

/**
 * Einstein summation over the operands, with NumPy's subscripts: `"ij,jk->ik"` (explicit output),
 * `"ij,jk"` (implicit: the labels used once, in alphabetical order), `"..."` for broadcast leading
 * axes, repeated labels in one operand for diagonals (`"ii->i"`) and traces (`"ii"`). Labels that
 * are not in the output are summed. Operands are contracted two at a time in a greedy order that
 * keeps intermediates small, each pair as one batched matmul, so gradients and vmap come for free.
 * A trailing `{ device }` object is the options.
 * @example
 * mx.einsum("ij,jk->ik", a, b);          // matmul(a, b)
 * mx.einsum("bij,bjk->bik", x, y);       // batched matmul
 * mx.einsum("ii", m);                    // trace
 * mx.einsum("...ij->...ji", x);          // swap the last two axes
 */
export function einsum(subscripts: string, ...operands: (Array | DeviceOptions)[]): Array {
  let options: DeviceOptions = {};
  const last = operands[operands.length - 1];
  if (operands.length > 0 && !isArray(last) && typeof last === "object" && last !== null && !globalThis.Array.isArray(last)) {
    options = last as DeviceOptions;
    operands = operands.slice(0, -1);
  }
  return withDevice("einsum", options, () => einsumOf(subscripts, operands as Array[]));
}

function einsumOf(subscripts: string, xs: Array[]): Array {
  if (typeof subscripts !== "string") {
    throw new TypeError(`einsum: subscripts must be a string such as "ij,jk->ik"; got ${fmtGot(subscripts)}`);
  }
  if (xs.length === 0) throw new TypeError(`einsum: at least one operand is required (subscripts ${JSON.stringify(subscripts)})`);
  xs.forEach((x, i) => checkArray("einsum", x, i + 2));
  const { inputs, output } = parse(subscripts, xs);
  const sizes = labelSizes(subscripts, inputs, xs);
  const t = xs.map((x) => x.dtype).reduce(promoteTypes) as DType;
  const outSet = new Set(output);
  let terms: Term[] = xs.map((x, i) => diagonal({ x: lax.cast(x, t), labels: inputs[i] }));
  // Sum, in each operand, the labels that no other operand and not the output has.
  terms = terms.map((term, i) => {
    const others = new Set(terms.flatMap((u, j) => (j === i ? [] : u.labels)));
    return sumLabels(term, term.labels.filter((l) => !outSet.has(l) && !others.has(l)));
  });
  while (terms.length > 1) {
    const [i, j] = pickPair(terms, outSet, sizes);
    const keep = new Set([...outSet, ...terms.flatMap((u, k) => (k === i || k === j ? [] : u.labels))]);
    const merged = contractPair(terms[i], terms[j], keep, sizes);
    terms = [...terms.filter((_u, k) => k !== i && k !== j), merged];
  }
  const final = sumLabels(terms[0], terms[0].labels.filter((l) => !outSet.has(l)));
  const y = lax.transpose(final.x, output.map((l) => final.labels.indexOf(l)));
  return lax.broadcastTo(y, output.map((l) => sizes.get(l)!));
}

/** Splits subscripts into one label list per operand and the output's labels (validated). */
function parse(subscripts: string, xs: Array[]): { inputs: Label[][]; output: Label[] } {
  const s = subscripts.replace(/\s+/g, "");
  const bad = (why: string): never => {
    throw new TypeError(`einsum: invalid subscripts ${JSON.stringify(subscripts)}: ${why}`);
  };
  const parts = s.split("->");
  if (parts.length > 2) bad('"->" appears more than once');
  const [lhs, rhs] = parts;
  if (/[->]/.test(lhs) || (rhs !== undefined && /[->]/.test(rhs))) bad('"-" and ">" may appear only as "->"');
  const terms = lhs.split(",");
  if (terms.length !== xs.length) {
    throw new TypeError(`einsum: subscripts ${JSON.stringify(subscripts)} name ${terms.length} operand(s); got ${xs.length}`);
  }
  const termLabels = (term: string, i: number): Label[] => {
    const what = `operand ${i + 1}`, shape = xs[i].shape, nd = shape.length;
    const pieces = term.split("...");
    if (pieces.length > 2) bad(`"..." appears more than once in ${what}`);
    for (const c of pieces.join("")) if (!isLetter(c)) bad(`${JSON.stringify(c)} in ${what} is not a letter (labels are a-z, A-Z)`);
    const named = pieces.join("").length;
    if (pieces.length === 1) {
      if (named !== nd) {
        throw new ShapeError(`einsum: ${what} "${term}" has ${named} label(s) but the operand has shape ${fmtShape(shape)}`);
      }
      return [...term].map((c) => c.charCodeAt(0));
    }
    const ne = nd - named;
    if (ne < 0) {
      throw new ShapeError(`einsum: ${what} "${term}" has ${named} label(s) besides "..." but the operand has shape ${fmtShape(shape)}`);
    }
    const ell = [...globalThis.Array(ne).keys()].map((k) => ELLIPSIS_BASE + ne - 1 - k);
    return [...[...pieces[0]].map((c) => c.charCodeAt(0)), ...ell, ...[...pieces[1]].map((c) => c.charCodeAt(0))];
  };
  const inputs = terms.map((term, i) => termLabels(term, i));
  const nEllipsis = Math.max(0, ...inputs.flat().filter((l) => l >= ELLIPSIS_BASE).map((l) => l - ELLIPSIS_BASE + 1));
  const ellipsisOut = [...globalThis.Array(nEllipsis).keys()].map((k) => ELLIPSIS_BASE + nEllipsis - 1 - k);
  if (rhs === undefined) {
    const counts = new Map<Label, number>();
    for (const l of inputs.flat()) if (l < ELLIPSIS_BASE) counts.set(l, (counts.get(l) ?? 0) + 1);
    const once = [...counts].filter(([, n]) => n === 1).map(([l]) => l).sort((a, b) => a - b);
    return { inputs, output: [...ellipsisOut, ...once] };
  }
  const pieces = rhs.split("...");
  if (pieces.length > 2) bad('"..." appears more than once in the output');
  for (const c of pieces.join("")) if (!isLetter(c)) bad(`${JSON.stringify(c)} in the output is not a letter (labels are a-z, A-Z)`);
  if (pieces.length === 1 && nEllipsis > 0) {
    bad(`the operands have ${nEllipsis} axes under "..." but the output has no "..." to keep them`);
  }
  const code = (p: string) => [...p].map((c) => c.charCodeAt(0));
  const output = pieces.length === 1 ? code(rhs) : [...code(pieces[0]), ...ellipsisOut, ...code(pieces[1])];
  const used = new Set(inputs.flat());
  const seen = new Set<Label>();
  for (const l of output) {
    if (l >= ELLIPSIS_BASE) continue;
    if (seen.has(l)) bad(`label "${labelName(l)}" appears more than once in the output`);
    seen.add(l);
    if (!used.has(l)) bad(`output label "${labelName(l)}" is not in any operand`);
  }
  return { inputs, output };
}

/**
 * The size of each label: equal wherever it appears, except that a size of 1 broadcasts (as for
 * NumPy's ellipsis axes). A label repeated within one operand must have one size there.
 */
function labelSizes(subscripts: string, inputs: Label[][], xs: Array[]): Map<Label, number> {
  const sizes = new Map<Label, number>();
  inputs.forEach((labels, i) => {
    const own = new Map<Label, number>();
    labels.forEach((l, ax) => {
      const d = xs[i].shape[ax];
      if (own.has(l) && own.get(l) !== d) {
        throw new ShapeError(`einsum: label "${labelName(l)}" is repeated in operand ${i + 1} with different sizes (shape ${fmtShape(xs[i].shape)}, subscripts ${JSON.stringify(subscripts)})`);
      }
      own.set(l, d);
      const s = sizes.get(l);
      if (s === undefined || s === 1) sizes.set(l, d);
      else if (d !== 1 && d !== s) {
        throw new ShapeError(`einsum: label "${labelName(l)}" has size ${d} in operand ${i + 1} but ${s} in an earlier operand (shapes ${xs.map((x) => fmtShape(x.shape)).join(", ")}, subscripts ${JSON.stringify(subscripts)})`);
      }
    });
  });
  return sizes;
}

/**
 * Takes the diagonal of every label repeated within the term: the r axes of size n move to the
 * end, flatten to n^r elements, and a slice with step 1 + n + ... + n^(r-1) reads the diagonal.
 */
function diagonal(term: Term): Term {
  let { x, labels } = term;
  for (;;) {
    const l = labels.find((m, i) => labels.indexOf(m) !== i);
    if (l === undefined) return { x, labels };
    const at = labels.flatMap((m, i) => (m === l ? [i] : []));
    const rest = labels.map((_m, i) => i).filter((i) => !at.includes(i));
    const n = x.shape[at[0]], r = at.length;
    const moved = lax.transpose(x, [...rest, ...at]);
    const outer = rest.map((i) => x.shape[i]);
    const flat = lax.reshape(moved, [...outer, n ** r]);
    const step = n > 1 ? (n ** r - 1) / (n - 1) : 1;
    x = lax.slice(flat, {
      start: [...outer.map(() => 0), 0],
      step: [...outer.map(() => 1), step],
      shape: [...outer, n],
    });
    labels = [...rest.map((i) => labels[i]), l];
  }
}

function sumLabels(term: Term, drop: Label[]): Term {
  if (drop.length === 0) return term;
  const axes = drop.map((l) => term.labels.indexOf(l)).sort((a, b) => a - b);
  return { x: lax.reduceSum(term.x, axes), labels: term.labels.filter((l) => !drop.includes(l)) };
}

/** The labels and elements of the result of contracting terms a and b, keeping `keep`. */
function pairResult(a: Term, b: Term, keep: Set<Label>, sizes: Map<Label, number>): number {
  const labels = new Set([...a.labels, ...b.labels].filter((l) => keep.has(l)));
  return prod([...labels].map((l) => sizes.get(l)!));
}

/**
 * The pair to contract next (opt_einsum's greedy rule): among pairs that share a label, the one
 * whose result grows the least (result size minus the sizes of its inputs); with no shared labels,
 * the two smallest operands (an outer product).
 */
function pickPair(terms: Term[], outSet: Set<Label>, sizes: Map<Label, number>): [number, number] {
  let best: [number, number] | null = null, bestCost = Infinity;
  for (let i = 0; i < terms.length; i++) {
    for (let j = i + 1; j < terms.length; j++) {
      if (!terms[i].labels.some((l) => terms[j].labels.includes(l))) continue;
      const keep = new Set([...outSet, ...terms.flatMap((u, k) => (k === i || k === j ? [] : u.labels))]);
      const cost = pairResult(terms[i], terms[j], keep, sizes) - terms[i].x.size - terms[j].x.size;
      if (cost < bestCost) [best, bestCost] = [[i, j], cost];
    }
  }
  if (best) return best;
  const order = terms.map((u, i) => [u.x.size, i]).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  return [order[0][1], order[1][1]].sort((p, q) => p - q) as [number, number];
}

/**
 * Contracts two terms as one batched matmul: labels in both and kept are batch axes, labels in
 * both and not kept are summed (K), the others are M (from a) and N (from b). Size-1 axes are
 * broadcast to the label's size first.
 */
function contractPair(a: Term, b: Term, keep: Set<Label>, sizes: Map<Label, number>): Term {
  a = sumLabels(a, a.labels.filter((l) => !keep.has(l) && !b.labels.includes(l)));
  b = sumLabels(b, b.labels.filter((l) => !keep.has(l) && !a.labels.includes(l)));
  const shared = a.labels.filter((l) => b.labels.includes(l));
  const batch = shared.filter((l) => keep.has(l));
  const contracted = shared.filter((l) => !keep.has(l));
  const freeA = a.labels.filter((l) => !shared.includes(l));
  const freeB = b.labels.filter((l) => !shared.includes(l));
  const size = (l: Label) => sizes.get(l)!;
  const arrange = (t: Term, order: Label[], shape: number[]) => {
    const x = lax.transpose(t.x, order.map((l) => t.labels.indexOf(l)));
    return lax.reshape(lax.broadcastTo(x, order.map(size)), shape);
  };
  const nb = prod(batch.map(size)), m = prod(freeA.map(size)), n = prod(freeB.map(size)), k = prod(contracted.map(size));
  const x = arrange(a, [...batch, ...freeA, ...contracted], [nb, m, k]);
  const y = arrange(b, [...batch, ...contracted, ...freeB], [nb, k, n]);
  const labels = [...batch, ...freeA, ...freeB];
  return { x: lax.reshape(lax.matmul(x, y), labels.map(size)), labels };
}
