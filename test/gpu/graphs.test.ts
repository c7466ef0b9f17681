/**
 * Compiled functions on the gpu replayed as CUDA graphs (native/src/replay.cc, cuda/graph.cc):
 * after two plain runs a kept program is recorded once and later calls launch the recording.
 * Whatever serves a call, the results are those of the uncompiled function, bit for bit: a
 * training step with dropout and a learning-rate schedule (the random key, step count and rate
 * change every call: they are patched into the recording), results kept across calls (copied out
 * of the recording, never overwritten), inputs that change buffers or views, and calls the
 * recording cannot serve (they run plainly). A recording spreads independent instructions over
 * parallel branches (native/src/cuda/lanes.h): wide bodies whose temporaries reuse each other's
 * memory and whose in-place updates overwrite what other branches read still give those results.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";
import { compile } from "@tessera/transforms";
import { HAS_GPU, on } from "./util.js";

type A = mx.Array;
const { native } = mx.internal;
const stats = () => native.replayStats();
const bits = (a: A) => Array.from(a.astype("float64").toTypedArray() as Float64Array);

/** Trains the same model from the same seed, compiled or not; returns losses, parameters, state. */
function train(compiled: boolean, steps: number) {
  return on(mx.gpu, () => {
    mx.random.seed(11);
    const model = new nn.Sequential(new nn.Linear(8, 32), new nn.ReLU(), new nn.Dropout(0.2), new nn.Linear(32, 4));
    const opt = new optim.Adam({ learningRate: optim.cosineDecay(1e-2, steps) });
    mx.eval(model.parameters());
    opt.init(model.trainableParameters());
    const x = mx.random.normal([16, 8]);
    const y = mx.random.randint(0, 4, [16], { dtype: "int32" });
    mx.eval(x, y, opt.state);
    const lossAndGrad = nn.valueAndGrad(model, (m: nn.Module, x: A, y: A) =>
      nn.losses.crossEntropy((m as nn.Sequential).forward(x), y, { reduction: "mean" }));
    const stepFn = (x: A, y: A) => {
      const [l, g] = lossAndGrad(model, x, y);
      opt.update(model, g);
      return l;
    };
    const step = compiled ? compile(stepFn, { inputs: [model, opt], outputs: [model, opt] }) : stepFn;
    const losses: A[] = [];
    for (let i = 0; i < steps; i++) {
      const l = step(x, y);
      mx.eval(l, model.parameters(), opt.state);
      losses.push(l); // kept: a later replay must not write over an earlier step's loss
    }
    const flat = (t: unknown): A[] => (t instanceof mx.Array ? [t] : Object.values(t as object).flatMap(flat));
    return { losses: losses.map(bits), params: flat(model.parameters()).map(bits), state: flat(opt.state).map(bits) };
  });
}

describe.skipIf(!HAS_GPU)("gpu: compiled calls replayed as CUDA graphs", () => {
  it("an Adam step with dropout and a schedule: bit for bit the uncompiled step, served by replays", () => {
    const before = stats();
    const compiled = train(true, 12);
    const after = stats();
    expect(after.captures - before.captures, `recordings (last failure: ${after.lastFailure})`).toBe(1);
    expect(after.replays - before.replays, `replayed calls (last miss: ${after.lastMiss})`).toBeGreaterThanOrEqual(9);
    expect(after.failures - before.failures, "failed recordings").toBe(0);
    // The call has 20 inputs, 14 of them donated (parameters, moments and the like): those are
    // updated in place, so a replay copies in at most the 6 others (the batch among them).
    expect(after.copies - before.copies, "inputs copied in").toBeLessThanOrEqual(6 * (after.replays - before.replays));
    const plain = train(false, 12);
    expect(compiled.losses).toEqual(plain.losses);
    expect(compiled.params).toEqual(plain.params);
    expect(compiled.state).toEqual(plain.state);
  });

  it("keeps earlier results, follows inputs to new buffers and views, and runs plainly when it must", () => {
    on(mx.gpu, () => {
      const f = compile((x: A, w: A) => mx.add(mx.mul(mx.tanh(mx.matmul(x, w)), 0.5), mx.sum(x, 0)));
      const ref = (x: A, w: A) => mx.add(mx.mul(mx.tanh(mx.matmul(x, w)), 0.5), mx.sum(x, 0));
      mx.random.seed(2);
      const w = mx.random.normal([6, 6]);
      const xs = Array.from({ length: 8 }, () => mx.random.normal([5, 6]));
      mx.eval(w, ...xs);
      const before = stats();
      const kept: [A, A][] = [];
      for (let i = 0; i < 8; i++) {
        const y = f(xs[i], w);
        mx.eval(y);
        kept.push([y, ref(xs[i], w)]);
      }
      // A strided view: copied into the recording's contiguous buffer (so cuBLAS may sum in
      // another order than on the view itself: close, not identical).
      const t = mx.random.normal([6, 5]);
      const view = mx.transpose(t);
      const yv = f(view, w);
      mx.eval(yv);
      const after = stats();
      expect(after.captures - before.captures).toBe(1);
      expect(after.replays - before.replays).toBeGreaterThanOrEqual(6);
      for (const [y, r] of kept) expect(bits(y)).toEqual(bits(r));
      const rv = bits(ref(view, w)), gv = bits(yv);
      gv.forEach((v, i) => expect(Math.abs(v - rv[i])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(rv[i]))));
    });
  });

  it("reads a view it saw last run (a constant broadcast mask) where it is; a view that moves runs plainly", () => {
    on(mx.gpu, () => {
      mx.random.seed(5);
      const view = (k: number) => mx.broadcastTo(mx.greater(mx.random.normal([8, 8]), k), [4, 8, 8]); // zero batch stride
      const mask = view(0), w = mx.random.normal([4, 8, 8]), x = mx.random.normal([4, 8, 8]);
      mx.eval(mask, w, x);
      expect(native.describe(mask.handle).strides[0], "the mask is a broadcast view").toBe(0);
      const ref = (x: A, m: A) => mx.where(m, mx.mul(x, w), mx.mul(x, -1));
      const f = compile((x: A) => ref(x, mask)); // the mask and w are constants of the trace
      let before = stats();
      for (let i = 0; i < 6; i++) expect(bits(f(x))).toEqual(bits(ref(x, mask)));
      let after = stats();
      expect(after.replays - before.replays, `replayed calls (last miss: ${after.lastMiss})`).toBeGreaterThanOrEqual(3);
      expect(after.copies - before.copies, `inputs copied in (${after.lastCopies})`).toBe(0);
      // The view as an argument: recorded where it was, then another view of another buffer.
      const g = compile(ref);
      const other = view(0.5);
      mx.eval(other);
      for (let i = 0; i < 3; i++) expect(bits(g(x, mask))).toEqual(bits(ref(x, mask)));
      before = stats();
      expect(bits(g(x, other))).toEqual(bits(ref(x, other)));
      after = stats();
      expect(after.misses - before.misses, "the moved view runs plainly").toBe(1);
      expect(after.lastMiss).toMatch(/changed buffers, and the recording reads it as a view of another buffer/);
      expect(bits(g(x, mask))).toEqual(bits(ref(x, mask)));
    });
  });

  it("a donated input still held elsewhere is not written over: the call runs plainly", () => {
    on(mx.gpu, () => {
      const state = { v: mx.zeros([4]) };
      mx.eval(state.v);
      const bump = compile(() => {
        state.v = mx.add(state.v, 1);
        return state.v;
      }, { inputs: [state], outputs: [state] });
      const seen: A[] = [];
      for (let i = 0; i < 6; i++) {
        const v = bump();
        mx.eval(v);
        seen.push(v); // holding each step's value keeps every buffer shared
      }
      seen.forEach((v, i) => expect(bits(v)).toEqual([i + 1, i + 1, i + 1, i + 1]));
    });
  });

  it("reports a bad index of a replayed call when its results are read, then goes on", () => {
    on(mx.gpu, () => {
      const x = mx.array([10, 11, 12, 13, 14], "float32");
      const f = compile((x: A, i: A) => mx.mul(mx.take(x, i, 0), 2));
      const good = () => mx.array([4, 0, 2], "int32");
      for (let k = 0; k < 4; k++) expect(Array.from(f(x, good()).toTypedArray() as Float32Array)).toEqual([28, 20, 24]);
      const before = stats();
      const y = f(x, mx.array([1, 9, 2], "int32"));
      mx.eval(y);
      expect(stats().replays - before.replays, "served by the recording").toBe(1);
      expect(() => y.toTypedArray()).toThrow(/gather in a replayed compiled call: index 9 is out of bounds for an axis of size 5/);
      expect(Array.from(f(x, good()).toTypedArray() as Float32Array)).toEqual([28, 20, 24]);
    });
  });

  it("independent branches run side by side: reused memory and in-place updates keep the plain results", () => {
    on(mx.gpu, () => {
      mx.random.seed(9);
      const ws = Array.from({ length: 6 }, () => mx.random.normal([96, 96], { scale: 0.1 }));
      const x0 = mx.random.normal([128, 96]);
      mx.eval(...ws, x0);
      // Six branches read the state; each makes and drops temporaries (products, a softmax, sums)
      // whose blocks the next ones reuse; then the state is overwritten in place (donated), after
      // every branch has read it.
      const body = (s: { x: A; acc: A }) => {
        const parts = ws.map((w, i) => {
          const h = mx.tanh(mx.matmul(s.x, w));
          const p = mx.softmax(mx.matmul(h, mx.transpose(w)), -1);
          return mx.mul(mx.sum(mx.mul(p, s.x), 0), i + 1);
        });
        const total = parts.reduce((a, b) => mx.add(a, b));
        s.acc = mx.add(mx.mul(s.acc, 0.5), total);
        s.x = mx.subtract(s.x, mx.mul(mx.tanh(s.x), 0.01));
        return mx.sum(s.acc);
      };
      const run = (compiled: boolean) => {
        const s = { x: mx.add(x0, 0), acc: mx.zeros([96]) };
        mx.eval(s.x, s.acc);
        const f = compiled ? compile(() => body(s), { inputs: [s], outputs: [s] }) : () => body(s);
        const out: number[][] = [];
        for (let i = 0; i < 24; i++) {
          const l = f();
          mx.eval(l, s.x, s.acc);
          out.push([...bits(l), ...bits(s.acc)]);
        }
        return { out, x: bits(s.x) };
      };
      const before = stats();
      const compiled = run(true);
      const after = stats();
      expect(after.replays - before.replays, `replayed calls (last miss: ${after.lastMiss}; failure: ${after.lastFailure})`).toBeGreaterThanOrEqual(20);
      const plain = run(false);
      expect(compiled.out).toEqual(plain.out);
      expect(compiled.x).toEqual(plain.x);
    });
  });
});
