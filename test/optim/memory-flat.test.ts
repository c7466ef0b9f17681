/**
 * @file Memory over a long training loop: 2,000 Adam steps of a small nn MLP, one
 * `mx.eval(loss, model.parameters(), optimizer.state)` per step, hold exactly the same number of
 * active bytes after every step from step 10 on, with no garbage collection: the optimizer donates
 * the parameters and state it replaces (their buffers are retired by the evaluation), gradients
 * and intermediates never outlive the program, and the loop disposes its loss after reading it.
 */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";
import { describe, expect, it } from "vitest";

const bytesOf = (tree: unknown) =>
  (mx.treeFlatten(tree as mx.Array) as [string, unknown][]).reduce((s, [, a]) => s + (a instanceof mx.Array ? a.nbytes : 0), 0);

describe("memory over 2,000 training steps", () => {
  it("is exactly flat from step 10 on, and is the live set: parameters, Adam state, the batch", () => {
    mx.random.seed(0);
    const model = new nn.Sequential(new nn.Linear(32, 64), new nn.ReLU(), new nn.Linear(64, 64), new nn.ReLU(), new nn.Linear(64, 10));
    const opt = new optim.Adam({ learningRate: 1e-3 });
    const x = mx.random.normal([32, 32]);
    const y = mx.random.randint(0, 10, [32], { dtype: "int32" });
    mx.eval(x, y, model.parameters());
    const step = nn.valueAndGrad(model, (x: mx.Array, y: mx.Array) => nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" }));
    const active = new Set<number>();
    let first = 0, last = 0;
    for (let i = 1; i <= 2000; i++) {
      const [loss, grads] = step(x, y);
      opt.update(model, grads);
      mx.eval(loss, model.parameters(), opt.state);
      last = loss.item() as number;
      loss.dispose();
      if (i === 1) first = last;
      if (i >= 10) active.add(mx.getActiveMemory());
    }
    const live = bytesOf(model.parameters()) + bytesOf(opt.state) + x.nbytes + y.nbytes;
    // The same to the byte after every step: nothing accumulates (no graph, no old parameters or
    // state, no cached intermediates), and nothing waits for the collector.
    expect([...active]).toHaveLength(1);
    const held = [...active][0];
    // It is the live set, up to the allocator's rounding of each buffer (not a second copy of it).
    expect(held).toBeGreaterThanOrEqual(live);
    expect(held).toBeLessThan(1.25 * live);
    expect(last).toBeLessThan(first); // and the loop did train
  });

  it("donates what update replaces: the old arrays are disposed by the evaluation, copies survive", () => {
    mx.random.seed(1);
    const model = new nn.Linear(4, 3);
    const opt = new optim.Adam({ learningRate: 1e-2 });
    const x = mx.random.normal([5, 4]);
    mx.eval(x, model.parameters());
    const step = nn.valueAndGrad(model, (x: mx.Array) => mx.sum(mx.square(model.forward(x))));
    const [, g0] = step(x);
    opt.update(model, g0);
    mx.eval(model.parameters(), opt.state);
    const oldW = model.weight as mx.Array;
    const oldM = (opt.state as any).weight.m as mx.Array;
    const kept = mx.copy(oldW);
    mx.eval(kept);
    const [loss, grads] = step(x);
    opt.update(model, grads);
    expect(oldW.disposed).toBe(false); // still lazy-readable until the step is evaluated
    mx.eval(loss, model.parameters(), opt.state);
    expect(oldW.disposed).toBe(true);
    expect(oldM.disposed).toBe(true);
    expect(() => oldW.item()).toThrow(mx.DisposedError);
    expect(kept.shape).toEqual([3, 4]);
    expect(Array.from(kept.toTypedArray()).every(Number.isFinite)).toBe(true);
    // applyGradients is functional: it neither replaces nor donates anything.
    const params = model.trainableParameters();
    const next = opt.applyGradients(step(x)[1], params);
    mx.eval(next, opt.state);
    expect((params as any).weight.disposed).toBe(false);
    expect((next as any).weight.shape).toEqual([3, 4]);
  });
});
