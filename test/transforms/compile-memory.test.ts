/**
 * @file Memory of compiled training steps (in a file of its own, so no other test's garbage is
 * collected while it measures): the call donates the parameters and optimizer state it
 * replaces and writes the new values over them, so active memory is the same to the byte after
 * every step, with no garbage collection.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";
import { compile } from "@tessera/transforms";

/** A compiled training step: `loss` of the model's output against `y`, then `opt`'s update. */
function compiledStep(model: nn.Sequential, opt: optim.Optimizer, loss: (out: mx.Array, y: mx.Array) => mx.Array) {
  const lossAndGrad = nn.valueAndGrad(model, (m: nn.Module, x: mx.Array, y: mx.Array) => loss((m as nn.Sequential).forward(x), y));
  return compile((x: mx.Array, y: mx.Array) => {
    const [l, g] = lossAndGrad(model, x, y);
    opt.update(model, g);
    return l;
  }, { inputs: [model, opt], outputs: [model, opt] });
}

describe("compiled training steps", () => {
  it("keep active memory exactly flat: parameters and state are updated in place", () => {
    mx.random.seed(3);
    const model = new nn.Sequential(new nn.Linear(6, 16), new nn.ReLU(), new nn.Dropout(0.25), new nn.Linear(16, 3));
    const opt = new optim.Adam({ learningRate: 1e-3 });
    mx.eval(model.parameters());
    opt.init(model.trainableParameters());
    const x = mx.random.normal([12, 6]);
    const y = mx.random.randint(0, 3, [12], { dtype: "int32" });
    mx.eval(x, y, opt.state);
    const step = compiledStep(model, opt, (out, y) => nn.losses.crossEntropy(out, y, { reduction: "mean" }));
    const active = new Set<number>();
    let first = 0, last = 0;
    for (let i = 1; i <= 500; i++) {
      const l = step(x, y);
      mx.eval(l, model.parameters(), opt.state);
      last = l.item() as number;
      if (i === 1) first = last;
      l.dispose();
      if (i >= 5) active.add(mx.getActiveMemory());
    }
    expect([...active]).toHaveLength(1);
    expect(last).toBeLessThan(first);
  });

  it("write an update over its input only once nothing else reads the input (state read after its update, one value written twice, a fill)", () => {
    // Each value checked against the same arithmetic in plain JS (float64).
    const state = { a: mx.array([1, 2, 3], "float64"), b: mx.array([5, 6, 7], "float64"), c: mx.array([0, 0, 0], "float64"), d: mx.array([0, 0, 0], "float64") };
    mx.eval(state.a, state.b, state.c, state.d);
    const f = compile((x: mx.Array) => {
      const a = state.a, b = state.b;
      const a2 = mx.multiply(a, 2); // the update of a: a is still read below
      const out = mx.add(mx.multiply(a2, x), a); // reads the old a after a2 exists
      state.a = a2;
      state.b = mx.full([3], 9, "float64"); // the update of b reads nothing (a fill)
      const twice = mx.add(state.c, x);
      state.c = twice; // one value written to two places
      state.d = twice;
      mx.internal.donate([a, b]); // as an optimizer donates what it replaces
      return out;
    }, { inputs: [state], outputs: [state] });
    let a = [1, 2, 3], c = [0, 0, 0];
    for (let call = 0; call < 4; call++) {
      const x = mx.array([call, 1, -1], "float64");
      const xs = [call, 1, -1];
      const out = f(x);
      mx.eval(out, state.a, state.b, state.c, state.d);
      const a2 = a.map((v) => 2 * v);
      expect(out.tolist()).toEqual(a2.map((v, i) => v * xs[i] + a[i]));
      c = c.map((v, i) => v + xs[i]);
      a = a2;
      expect(state.a.tolist()).toEqual(a);
      expect(state.b.tolist()).toEqual([9, 9, 9]);
      expect(state.c.tolist()).toEqual(c);
      expect(state.d.tolist()).toEqual(c);
    }
  });

  it("write each parameter and state array over its own buffer, so every call binds the same buffers", () => {
    // What a recording replayed as one launch needs (a CUDA graph reads fixed addresses): every
    // updated array, including the step count and a scheduled learning rate, lands where it was.
    mx.random.seed(4);
    const model = new nn.Sequential(new nn.Linear(5, 7), new nn.Tanh(), new nn.Linear(7, 7), new nn.Linear(7, 2));
    const opt = new optim.AdamW({ learningRate: optim.cosineDecay(1e-2, 50) });
    mx.eval(model.parameters());
    opt.init(model.trainableParameters());
    const x = mx.random.normal([9, 5]);
    const y = mx.random.normal([9, 2]);
    mx.eval(x, y, opt.state);
    const step = compiledStep(model, opt, (out, y) => nn.losses.mseLoss(out, y, { reduction: "mean" }));
    const buffers = () => [...mx.treeFlatten(model.parameters() as mx.Tree<mx.Array>), ...mx.treeFlatten(opt.state as mx.Tree<mx.Array>)]
      .map(([path, a]) => `${path}@${mx.internal.native.describe(a.handle).storage}`);
    const seen: string[][] = [];
    for (let i = 0; i < 5; i++) {
      mx.eval(step(x, y), model.parameters(), opt.state);
      seen.push(buffers());
    }
    expect(seen[0]).toHaveLength(20); // 6 parameters, 12 moments, the step count and the learning rate
    for (const b of seen.slice(2)) expect(b).toEqual(seen[1]);
  });
});
