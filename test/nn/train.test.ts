/** @file End to end: an MLP trained with plain SGD (inline) on a separable toy problem. */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { describe, expect, it } from "vitest";

class MLP extends nn.Module {
  layers: nn.Linear[];
  constructor(dims: number[]) {
    super();
    this.layers = dims.slice(1).map((d, i) => new nn.Linear(dims[i], d));
  }
  forward(x: mx.Array): mx.Array {
    this.layers.slice(0, -1).forEach((l) => (x = nn.relu(l.forward(x))));
    return this.layers[this.layers.length - 1].forward(x);
  }
}

describe("training an MLP", () => {
  it("reaches low loss with SGD and one eval per step", () => {
    mx.random.seed(0);
    const x = mx.random.normal([128, 2], { key: mx.random.key(5) });
    // Two classes split by the line x0 + x1 = 0, pushed apart by a margin.
    const side = mx.greater(mx.sum(x, 1), 0);
    const y = side.astype("int32");
    const xs = mx.add(x, mx.mul(mx.expandDims(mx.where(side, 1, -1), 1), 0.5));
    const model = new MLP([2, 16, 2]);
    const step = nn.valueAndGrad(model, (a: mx.Array, b: mx.Array) =>
      nn.losses.crossEntropy(model.forward(a), b, { reduction: "mean" }));
    let loss = Infinity;
    for (let i = 0; i < 100; i++) {
      const [l, grads] = step(xs, y);
      const params = model.trainableParameters();
      model.update(mx.treeMap((p: mx.Array, g: mx.Array) => mx.sub(p, mx.mul(g, 0.5)), params, grads));
      mx.eval(model.parameters(), l);
      loss = l.item() as number;
    }
    expect(loss).toBeLessThan(0.05);
    const acc = mx.mean(mx.equal(mx.argmax(model.forward(xs), 1), y)).item() as number;
    expect(acc).toBe(1);
  });
});
