/**
 * @file What a property row is, and how the coverage guard sees what a row exercises: the
 * primitives in the graph its function records on one drawn instance (the transforms then run
 * every one of their rules).
 */
import fc from "fast-check";
import type * as mx from "@tessera/core";
import { toArray, type Instance } from "./checks.js";
import { rng } from "../helpers/reference.js";

/** A property row: instances of one op (or composite), checked by assertInstances. */
export interface Row {
  name: string;
  arb: fc.Arbitrary<Instance>;
  /** fast-check runs (default FC.numRuns). */
  runs?: number;
}

/** The names of the primitives in the graph of `outs`, from `inputs` (or evaluated arrays) on. */
export function primitivesIn(outs: mx.Array[], inputs: mx.Array[] = []): Set<string> {
  const names = new Set<string>();
  const seen = new Set<object>();
  const stack = outs.filter((x) => !inputs.includes(x));
  while (stack.length > 0) {
    const x = stack.pop()!;
    const node = inputs.includes(x) ? null : x.node;
    if (!node || seen.has(node)) continue;
    seen.add(node);
    names.add(node.prim.name);
    stack.push(...node.inputs);
  }
  return names;
}

/** The primitives a row's function binds, over `samples` drawn instances. */
export function primitivesOfRow(row: Row, samples = 4): Set<string> {
  const names = new Set<string>();
  fc.sample(row.arb, { seed: 3, numRuns: samples }).forEach((inst, k) => {
    const r = rng(k + 1);
    const xs = inst.args.map((g) => toArray(g(r)));
    for (const n of primitivesIn([inst.fn(...xs)], xs)) names.add(n);
  });
  return names;
}
