/**
 * @file Each optimizer's updates over several steps on a small parameter tree, against the
 * float64 references of torch.optim's algorithms in reference.ts, with default and non-default
 * hyperparameters, number and scheduled learning rates, in float64 (tight) and float32 (loose).
 */
import * as mx from "@tessera/core";
import * as optim from "@tessera/optim";
import { describe, expect, it } from "vitest";
import { rng } from "../helpers/reference.js";
import * as ref from "./reference.js";

const SHAPES: Record<string, number[]> = { w: [3, 4], b: [4], "layers.0.k": [2, 2, 2], "layers.1.k": [5] };
const STEPS = 7;

interface Run {
  steps?: number;
  dtype?: mx.DType;
  /** The reference's learning rate at update k (from 0). */
  lr: (k: number) => number;
}

/** Runs `opt` and `rule` side by side on the same parameters and gradients; returns the max error. */
function compare(opt: optim.Optimizer, rule: ref.Rule, { steps = STEPS, dtype = "float64", lr }: Run, seed = 1): void {
  const next = rng(seed);
  const rand = (n: number) => Float64Array.from({ length: n }, () => 4 * next() - 2);
  const paths = Object.keys(SHAPES);
  const refP = new Map(paths.map((p) => [p, rand(SHAPES[p].reduce((a, b) => a * b, 1))]));
  const refS = new Map(paths.map((p) => [p, refP.get(p)!.map(() => 0).reduce<Record<string, number>[]>((acc) => (acc.push({}), acc), [])]));
  const toTree = (m: Map<string, Float64Array>) =>
    mx.treeUnflatten(paths.map((p) => [p, mx.array(m.get(p)!, dtype).reshape(SHAPES[p])])) as Record<string, unknown>;
  let params = toTree(refP);
  if (dtype !== "float64") for (const p of paths) refP.set(p, Float64Array.from(new Float32Array(refP.get(p)!)));
  for (let k = 0; k < steps; k++) {
    const g = new Map(paths.map((p) => [p, rand(refP.get(p)!.length)]));
    if (dtype !== "float64") for (const p of paths) g.set(p, Float64Array.from(new Float32Array(g.get(p)!)));
    params = opt.applyGradients(toTree(g), params);
    mx.eval(params, opt.state);
    for (const p of paths) {
      const pv = refP.get(p)!;
      const gv = g.get(p)!;
      const sv = refS.get(p)!;
      for (let i = 0; i < pv.length; i++) pv[i] = rule.step(gv[i], pv[i], sv[i], k + 1, lr(k));
    }
    expect(opt.step).toBe(k + 1);
  }
  const [rtol, atol] = dtype === "float64" ? [1e-10, 1e-12] : [2e-4, 2e-5];
  for (const [p, leaf] of mx.treeFlatten(params) as [string, mx.Array][]) {
    expect(leaf.dtype).toBe(dtype);
    const got = leaf.toTypedArray() as Float64Array | Float32Array;
    const want = refP.get(p)!;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]);
      if (!(err <= atol + rtol * Math.abs(want[i]))) {
        throw new Error(`${opt.name} ${p}[${i}]: got ${got[i]}, want ${want[i]} (err ${err})`);
      }
    }
  }
}

interface Case {
  name: string;
  make: (lr: optim.LearningRate) => optim.Optimizer;
  rule: ref.Rule;
  lr: number;
}

const CASES: Case[] = [
  { name: "SGD", make: (lr) => new optim.SGD({ learningRate: lr }), rule: ref.sgd(), lr: 0.1 },
  { name: "SGD momentum", make: (lr) => new optim.SGD({ learningRate: lr, momentum: 0.9 }), rule: ref.sgd({ momentum: 0.9 }), lr: 0.05 },
  {
    name: "SGD momentum+dampening+weightDecay",
    make: (lr) => new optim.SGD({ learningRate: lr, momentum: 0.8, dampening: 0.3, weightDecay: 0.01 }),
    rule: ref.sgd({ momentum: 0.8, dampening: 0.3, weightDecay: 0.01 }), lr: 0.05,
  },
  {
    name: "SGD nesterov+weightDecay",
    make: (lr) => new optim.SGD({ learningRate: lr, momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
    rule: ref.sgd({ momentum: 0.9, nesterov: true, weightDecay: 0.1 }), lr: 0.05,
  },
  { name: "Adam", make: (lr) => new optim.Adam({ learningRate: lr }), rule: ref.adam(), lr: 1e-2 },
  {
    name: "Adam betas/eps/weightDecay",
    make: (lr) => new optim.Adam({ learningRate: lr, betas: [0.8, 0.95], eps: 1e-3, weightDecay: 0.05 }),
    rule: ref.adam({ betas: [0.8, 0.95], eps: 1e-3, weightDecay: 0.05 }), lr: 3e-2,
  },
  {
    name: "Adam amsgrad",
    make: (lr) => new optim.Adam({ learningRate: lr, amsgrad: true, betas: [0.5, 0.6] }),
    rule: ref.adam({ amsgrad: true, betas: [0.5, 0.6] }), lr: 1e-2,
  },
  {
    name: "Adam biasCorrection false (MLX)",
    make: (lr) => new optim.Adam({ learningRate: lr, biasCorrection: false }),
    rule: ref.adam({ biasCorrection: false }), lr: 1e-2,
  },
  { name: "AdamW", make: (lr) => new optim.AdamW({ learningRate: lr }), rule: ref.adam({ weightDecay: 0.01, decoupled: true }), lr: 1e-2 },
  {
    name: "AdamW weightDecay+amsgrad",
    make: (lr) => new optim.AdamW({ learningRate: lr, weightDecay: 0.3, amsgrad: true, betas: [0.7, 0.9] }),
    rule: ref.adam({ weightDecay: 0.3, amsgrad: true, decoupled: true, betas: [0.7, 0.9] }), lr: 5e-2,
  },
  { name: "Adamax", make: (lr) => new optim.Adamax({ learningRate: lr }), rule: ref.adamax(), lr: 2e-3 },
  {
    name: "Adamax betas/eps/weightDecay",
    make: (lr) => new optim.Adamax({ learningRate: lr, betas: [0.8, 0.9], eps: 1e-2, weightDecay: 0.1 }),
    rule: ref.adamax({ betas: [0.8, 0.9], eps: 1e-2, weightDecay: 0.1 }), lr: 1e-2,
  },
  { name: "RMSprop", make: (lr) => new optim.RMSprop({ learningRate: lr }), rule: ref.rmsprop(), lr: 1e-2 },
  {
    name: "RMSprop centered+momentum+weightDecay",
    make: (lr) => new optim.RMSprop({ learningRate: lr, alpha: 0.9, eps: 1e-4, centered: true, momentum: 0.7, weightDecay: 0.02 }),
    rule: ref.rmsprop({ alpha: 0.9, eps: 1e-4, centered: true, momentum: 0.7, weightDecay: 0.02 }), lr: 1e-2,
  },
  { name: "Adagrad", make: (lr) => new optim.Adagrad({ learningRate: lr }), rule: ref.adagrad(), lr: 1e-2 },
  {
    name: "Adagrad lrDecay+weightDecay+initialAccumulatorValue",
    make: (lr) => new optim.Adagrad({ learningRate: lr, lrDecay: 0.1, weightDecay: 0.05, initialAccumulatorValue: 0.3, eps: 1e-6 }),
    rule: ref.adagrad({ lrDecay: 0.1, weightDecay: 0.05, initialAccumulatorValue: 0.3, eps: 1e-6 }), lr: 5e-2,
  },
  { name: "AdaDelta", make: (lr) => new optim.AdaDelta({ learningRate: lr }), rule: ref.adadelta(), lr: 1.0 },
  {
    name: "AdaDelta rho/eps/weightDecay",
    make: (lr) => new optim.AdaDelta({ learningRate: lr, rho: 0.7, eps: 1e-3, weightDecay: 0.1 }),
    rule: ref.adadelta({ rho: 0.7, eps: 1e-3, weightDecay: 0.1 }), lr: 0.5,
  },
  { name: "Lion", make: (lr) => new optim.Lion({ learningRate: lr }), rule: ref.lion(), lr: 1e-3 },
  {
    name: "Lion betas+weightDecay",
    make: (lr) => new optim.Lion({ learningRate: lr, betas: [0.8, 0.95], weightDecay: 0.5 }),
    rule: ref.lion({ betas: [0.8, 0.95], weightDecay: 0.5 }), lr: 1e-2,
  },
];

describe.each(CASES)("$name matches torch.optim's update", ({ make, rule, lr }) => {
  it("float64, fixed learning rate", () => compare(make(lr), rule, { lr: () => lr }));
  it("float64, scheduled learning rate", () => {
    const s = optim.exponentialDecay(lr, 0.8);
    compare(make(s), rule, { lr: (k) => lr * 0.8 ** k }, 2);
  });
  it("float64, a schedule returning a 0-d Array", () => {
    compare(make((k) => mx.array(lr / (k + 1), "float64")), rule, { lr: (k) => lr / (k + 1) }, 3);
  });
  it("float32", () => compare(make(lr), rule, { lr: () => lr, dtype: "float32" }, 4));
});

it("the comparison catches a wrong rule (Adam against MLX's Adam)", () => {
  expect(() => compare(new optim.Adam({ learningRate: 0.01 }), ref.adam({ biasCorrection: false }), { lr: () => 0.01 })).toThrow(/Adam/);
  expect(() => compare(new optim.SGD({ learningRate: 0.01, momentum: 0.9, dampening: 0.5 }), ref.sgd({ momentum: 0.9 }), { lr: () => 0.01 })).toThrow(/SGD/);
});

describe("optimizer arguments", () => {
  it("checks hyperparameters", () => {
    expect(() => new optim.SGD({ learningRate: 0.1, nesterov: true })).toThrow(RangeError);
    expect(() => new optim.SGD({ learningRate: -1 })).toThrow(/learningRate/);
    expect(() => new optim.Adam({ learningRate: 1e-3, betas: [1, 0.9] })).toThrow(/betas/);
    expect(() => new optim.Adam({ learningRate: 1e-3, eps: -1 })).toThrow(/eps/);
  });
  it("names mismatched gradients", () => {
    const opt = new optim.SGD({ learningRate: 0.1 });
    expect(() => opt.applyGradients({ a: mx.zeros([2]) }, { a: mx.zeros([3]) })).toThrow(/"a".*\[2\].*\[3\]/);
    expect(() => opt.applyGradients({ a: mx.zeros([2]) }, { b: mx.zeros([2]) })).toThrow(/"a"/);
  });
  it("learningRate is settable; a null gradient leaves its parameter", () => {
    const opt = new optim.SGD({ learningRate: 0.1 });
    opt.learningRate = 0.5;
    const out = opt.applyGradients({ a: mx.ones([2]), b: null }, { a: mx.zeros([2]), b: mx.ones([1]) });
    expect(out.a.tolist()).toEqual([-0.5, -0.5]);
    expect(out.b.tolist()).toEqual([1]);
  });
  it("applyGradients leaves its inputs alone", () => {
    const opt = new optim.Adam({ learningRate: 0.1 });
    const params = { a: mx.ones([2]), l: [mx.ones([1])] };
    const grads = { a: mx.ones([2]), l: [mx.ones([1])] };
    const snapshot = { ...params, l: [...params.l] };
    const out = opt.applyGradients(grads, params);
    expect(params.a).toBe(snapshot.a);
    expect(params.l[0]).toBe(snapshot.l[0]);
    expect(out.a).not.toBe(params.a);
    expect(params.a.tolist()).toEqual([1, 1]);
    expect(grads.l[0].tolist()).toEqual([1]);
  });
});
