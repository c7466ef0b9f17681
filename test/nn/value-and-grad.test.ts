/** @file nn.valueAndGrad against valueAndGrad over an explicit parameter tree. */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { valueAndGrad } from "@tessera/transforms";
import { describe, expect, it } from "vitest";

class MLP extends nn.Module {
  layers = [new nn.Linear(3, 5), new nn.Dropout(0.5), new nn.Linear(5, 2)];
  forward(x: mx.Array) { return this.layers[2].forward(nn.tanh(this.layers[0].forward(x))); }
}

function explicit(p: any, x: mx.Array, y: mx.Array) {
  const h = nn.tanh(mx.add(mx.matmul(x, mx.transpose(p.layers[0].weight)), p.layers[0].bias));
  const out = mx.add(mx.matmul(h, mx.transpose(p.layers[2].weight)), p.layers[2].bias);
  return nn.losses.mseLoss(out, y, { reduction: "mean" });
}

describe("nn.valueAndGrad", () => {
  const x = mx.random.normal([4, 3], { key: mx.random.key(1) });
  const y = mx.random.normal([4, 2], { key: mx.random.key(2) });

  it("equals valueAndGrad over the parameter tree, and restores the parameters", () => {
    const model = new MLP();
    const before = model.parameters();
    const [loss, grads] = nn.valueAndGrad(model, (a: mx.Array, b: mx.Array) => nn.losses.mseLoss(model.forward(a), b, { reduction: "mean" }))(x, y);
    const [refLoss, refGrads] = valueAndGrad(explicit)(model.parameters(), x, y);
    expect(loss.item()).toBeCloseTo(refLoss.item() as number, 6);
    const g = mx.treeFlatten(grads) as [string, mx.Array][];
    const r = new Map(mx.treeFlatten(refGrads) as [string, mx.Array][]);
    expect(g.map(([k]) => k)).toEqual(["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]);
    for (const [k, v] of g) {
      const d = mx.max(mx.abs(mx.sub(v, r.get(k)!))).item() as number;
      expect(d, k).toBeLessThan(1e-6);
    }
    expect((grads as any).layers[1]).toEqual({}); // same tree shape as trainableParameters()
    const after = model.parameters();
    mx.treeFlatten(before).forEach(([k, v], i) => expect(mx.treeFlatten(after)[i][1], k).toBe(v));
  });

  it("differentiates only trainable parameters and supports auxiliary outputs", () => {
    const model = new MLP();
    model.layers[0].freeze();
    const [[loss, aux], grads] = nn.valueAndGrad(model, (a: mx.Array) => {
      const out = model.forward(a);
      return [mx.mean(mx.square(out)), out];
    })(x);
    expect(loss.shape).toEqual([]);
    expect(aux.shape).toEqual([4, 2]);
    expect(mx.treeFlatten(grads).map(([k]) => k)).toEqual(["layers.2.weight", "layers.2.bias"]);
  });

  it("restores the parameters when fn throws", () => {
    const model = new MLP();
    const w = model.layers[0].weight;
    expect(() => nn.valueAndGrad(model, () => { throw new Error("boom"); })()).toThrow("boom");
    expect(model.layers[0].weight).toBe(w);
  });
});
