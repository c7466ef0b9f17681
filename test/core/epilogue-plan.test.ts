/**
 * The planning of adds folded into the instructions they follow (packages/core/src/eval/epilogue.ts),
 * checked without a gpu: the nodes of a graph are handed to the pass as if they ran on one. The
 * folded order must still compute every value after its inputs and before its readers; a product
 * read elsewhere, kept, or of a half type is left apart; a norm backward moves only where its
 * addend is ready or nothing reads its parameter gradients in between. (test/gpu/epilogue.test.ts
 * checks the folded results on a gpu.)
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

type A = mx.Array;
type Node = NonNullable<A["node"]>;
const { foldEpilogues, allNodes, lax } = mx.internal;
const GPU = { type: "gpu", index: 0 } as unknown as Node["device"];

/** The nodes computing `roots` (inputs first), moved to a pretend gpu, and the pass's order. */
function plan(roots: A[], kept: A[] = roots): { before: Node[]; after: Node[] } {
  const before = allNodes(roots, new Set()) as Node[];
  for (const n of before) n.device = GPU;
  const after = foldEpilogues(before, new Set(kept)) as Node[];
  // Every value is computed before it is read.
  const made = new Set<A>();
  const inGraph = new Set(before.flatMap((n) => n.outputs));
  for (const n of after) {
    for (const x of n.inputs) if (inGraph.has(x)) expect(made.has(x), `${n.prim.name} reads a value computed later`).toBe(true);
    for (const y of n.outputs) made.add(y);
  }
  for (const r of roots) expect(made.has(r), "every root is computed").toBe(true);
  return { before, after };
}
const names = (nodes: Node[]) => nodes.map((n) => n.prim.name);
const folded = (nodes: Node[]) => nodes.filter((n) => n.params?.epilogue || n.params?.addend);
const inputs = (...shapes: number[][]) => {
  const xs = shapes.map((s) => mx.random.normal(s));
  mx.eval(...xs);
  return xs;
};

describe("planning adds folded into products and norm backwards", () => {
  it("folds an addend, a broadcast bias and a residual through a [B, L, D] reshape", () => {
    const [a, b, c, bias, x, w, h] = inputs([8, 16], [16, 12], [8, 12], [12], [2, 4, 16], [16, 12], [2, 4, 12]);
    const r1 = mx.add(mx.matmul(a, b), c);
    const r2 = mx.add(mx.matmul(a, b), mx.broadcastTo(bias, [8, 12]));
    const r3 = mx.add(h, mx.matmul(x, w));
    const { after } = plan([r1, r2, r3]);
    expect(names(after)).not.toContain("add");
    const f = folded(after);
    expect(f.map((n) => n.params.epilogue)).toEqual([1, 2, 1]);
    expect(f[0].inputs[2]).toBe(c);
    expect(f[1].inputs[2]).toBe(bias);
    expect(f[2].inputs[2]).toBe(h);
    expect(f[2].outputs[0]).toBe(r3);
    expect(f[2].outputs[0].shape).toEqual([2, 4, 12]);
  });

  it("leaves a product read twice, kept, or of a half type apart", () => {
    const [a, b, c] = inputs([8, 16], [16, 12], [8, 12]);
    const y = mx.matmul(a, b);
    const twice = plan([mx.add(y, c), mx.mul(y, 2)]);
    expect(folded(twice.after)).toEqual([]);
    const y2 = mx.matmul(a, b);
    const r = mx.add(y2, c);
    expect(folded(plan([r, y2]).after), "the product is kept").toEqual([]);
    const [ah, bh, ch] = [a, b, c].map((t) => t.astype("float16"));
    mx.eval(ah, bh, ch);
    expect(folded(plan([mx.add(mx.matmul(ah, bh), ch)]).after)).toEqual([]);
  });

  it("a product takes one add: a bias and then a residual leave the second add apart", () => {
    const [a, b, bias, h] = inputs([8, 16], [16, 12], [12], [8, 12]);
    const r = mx.add(mx.add(mx.matmul(a, b), mx.broadcastTo(bias, [8, 12])), h);
    const { after } = plan([r]);
    expect(folded(after).map((n) => n.params.epilogue)).toEqual([2]);
    expect(names(after).filter((n) => n === "add")).toHaveLength(1);
  });

  it("a norm backward takes a residual's gradient where it stands, or moves to the add when nothing reads its parameter gradients between", () => {
    const [x, w, g, early] = inputs([6, 10], [10], [6, 10], [6, 10]);
    const bwd = () => lax.layerNormBwd(x, w, g, { eps: 1e-5, hasWeight: true, lead: [] });
    // The addend exists before the norm backward: folded in place.
    const [dx, dw, db] = bwd();
    const here = plan([mx.add(dx, early), dw, db]);
    const f = folded(here.after);
    expect(f).toHaveLength(1);
    expect(f[0].inputs[f[0].inputs.length - 1]).toBe(early);
    expect(names(here.after)).not.toContain("add");
    // The addend is computed after it, and nothing reads dw in between: the norm moves to the add.
    const [dx2, dw2, db2] = bwd();
    const late = mx.exp(early);
    const moved = plan([mx.add(dx2, late), dw2, db2]);
    expect(folded(moved.after)).toHaveLength(1);
    // The addend is computed from dw: the norm backward can neither wait for it nor move past dw's reader.
    const [dx3, dw3, db3] = bwd();
    const uses = mx.mul(dw3, 2);
    const fromDw = mx.exp(mx.add(early, mx.sum(uses)));
    expect(folded(plan([mx.add(dx3, fromDw), uses, db3]).after)).toEqual([]);
    // dx plus the norm's own weight gradient (x of one row: dw has dx's shape) is left apart.
    const [x1, w1, g1] = inputs([10], [10], [10]);
    const [dx4, dw4] = lax.layerNormBwd(x1, w1, g1, { eps: 1e-5, hasWeight: true, lead: [] });
    expect(folded(plan([mx.add(dx4, dw4)]).after)).toEqual([]);
  });
});
