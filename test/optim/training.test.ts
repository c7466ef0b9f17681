/**
 * @file The optimizer in use: the state tree's shape, saving state and parameters with
 * safetensors and resuming bit for bit, memory that stays flat over many steps (old parameters
 * and state are dropped), and a small training loop on a model-shaped plain class.
 */
import * as mx from "@tessera/core";
import * as optim from "@tessera/optim";
import { valueAndGrad } from "@tessera/transforms";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

type Params = { layers: { w: mx.Array; b: mx.Array }[] };

/** A model as optim sees one: trainableParameters() and update(tree); no nn involved. */
class TinyMLP {
  params: Params;
  constructor(dims: number[], seed: number) {
    const keys = mx.random.split(mx.random.key(seed), dims.length);
    this.params = {
      layers: dims.slice(1).map((d, i) => ({
        w: mx.random.normal([dims[i], d], { key: keys[i], scale: 1 / Math.sqrt(dims[i]) }),
        b: mx.zeros([d]),
      })),
    };
  }
  trainableParameters(): Params {
    return this.params;
  }
  parameters(): Params {
    return this.params;
  }
  update(tree: Params): void {
    tree.layers.forEach((l, i) => Object.assign(this.params.layers[i], l));
  }
  static forward(p: Params, x: mx.Array): mx.Array {
    p.layers.forEach((l, i) => {
      x = x.matmul(l.w).add(l.b);
      if (i < p.layers.length - 1) x = mx.tanh(x);
    });
    return x;
  }
}

function data(seed: number, n = 64): [mx.Array, mx.Array] {
  const [k1, k2] = mx.random.split(mx.random.key(seed));
  const x = mx.random.uniform(-1, 1, [n, 2], { key: k1 });
  const y = mx.sin(x.index(mx.slice(), mx.slice(0, 1)).mul(3)).add(x.index(mx.slice(), mx.slice(1, 2)).square()).add(mx.random.normal([n, 1], { key: k2, scale: 0.01 }));
  return [x, y];
}

const lossFn = (p: Params, x: mx.Array, y: mx.Array) => TinyMLP.forward(p, x).sub(y).square().mean();
const step = valueAndGrad(lossFn);

/** k training steps; one mx.eval per step, as users write it. */
function train(model: TinyMLP, opt: optim.Optimizer, k: number, from = 0): number {
  let loss = 0;
  for (let i = from; i < from + k; i++) {
    const [x, y] = data(100 + i);
    const [l, grads] = step(model.trainableParameters(), x, y);
    opt.update(model, grads);
    mx.eval(model.parameters(), opt.state, l);
    loss = l.item() as number;
  }
  return loss;
}

const dir = mkdtempSync(path.join(tmpdir(), "tessera-optim-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("state", () => {
  it("mirrors the parameter tree beside step and learningRate", () => {
    const model = new TinyMLP([2, 3, 1], 0);
    const opt = new optim.Adam({ learningRate: 1e-3 });
    opt.init(model.trainableParameters());
    const flat = (mx.treeFlatten(opt.state) as [string, mx.Array][]).map(([k, v]) => [k, v.shape]);
    expect(flat).toEqual([
      ["layers.0.w.m", [2, 3]], ["layers.0.w.v", [2, 3]], ["layers.0.b.m", [3]], ["layers.0.b.v", [3]],
      ["layers.1.w.m", [3, 1]], ["layers.1.w.v", [3, 1]], ["layers.1.b.m", [1]], ["layers.1.b.v", [1]],
      ["step", []], ["learningRate", []],
    ]);
    expect(opt.step).toBe(0);
    train(model, opt, 3);
    expect(opt.step).toBe(3);
    expect(Number((opt.state.step as mx.Array).item())).toBe(3);
    expect((opt.state.learningRate as mx.Array).item()).toBeCloseTo(1e-3, 9);
    const sgd = new optim.SGD({ learningRate: 0.1, momentum: 0.9 });
    sgd.init(model.trainableParameters());
    expect(mx.treeFlatten(sgd.state).map(([k]) => k)).toEqual(["layers.0.w.v", "layers.0.b.v", "layers.1.w.v", "layers.1.b.v", "step", "learningRate"]);
  });

  const makers: [string, () => optim.Optimizer][] = [
    ["Adam with a joined schedule", () => new optim.Adam({ learningRate: optim.joinSchedules([optim.linearSchedule(0, 1e-2, 4), optim.cosineDecay(1e-2, 20)], [4]) })],
    ["SGD with momentum", () => new optim.SGD({ learningRate: 0.05, momentum: 0.9, dampening: 0.1 })],
    ["AdamW", () => new optim.AdamW({ learningRate: 3e-3 })],
    ["Adafactor", () => new optim.Adafactor()],
    ["Lion", () => new optim.Lion({ learningRate: 1e-3, weightDecay: 0.1 })],
  ];
  it.each(makers)("%s: saved with safetensors, resumes bit for bit", (name, make) => {
    const k = 6;
    const total = 12;
    const whole = new TinyMLP([2, 8, 1], 1);
    train(whole, make(), total);

    const first = new TinyMLP([2, 8, 1], 1);
    const opt1 = make();
    train(first, opt1, k);
    const file = path.join(dir, `${name.replace(/\W/g, "_")}.safetensors`);
    const record = Object.fromEntries([
      ...mx.treeFlatten(first.parameters(), "params"),
      ...mx.treeFlatten(opt1.state, "opt"),
    ] as [string, mx.Array][]);
    mx.saveSafetensors(file, record, { step: String(opt1.step) });

    const { arrays } = mx.loadSafetensors(file);
    const loaded = mx.treeUnflatten(Object.entries(arrays)) as { params: Params; opt: Record<string, unknown> };
    const second = new TinyMLP([2, 8, 1], 99); // different initial weights, replaced by the file's
    second.update(loaded.params);
    const opt2 = make();
    opt2.state = loaded.opt;
    expect(opt2.step).toBe(k);
    train(second, opt2, total - k, k);
    expect(opt2.step).toBe(total);

    const a = mx.treeFlatten(whole.parameters()) as [string, mx.Array][];
    const b = mx.treeFlatten(second.parameters()) as [string, mx.Array][];
    expect(b.map(([p]) => p)).toEqual(a.map(([p]) => p));
    a.forEach(([, x], i) => expect(Buffer.from((b[i][1].toTypedArray() as Float32Array).buffer)).toEqual(Buffer.from((x.toTypedArray() as Float32Array).buffer)));
  });

  it("a loaded number learning rate is kept when it is the stored one's rounding, adopted otherwise", () => {
    const opt = new optim.SGD({ learningRate: 1e-3 });
    opt.applyGradients({ a: mx.ones([1]) }, { a: mx.ones([1]) });
    const fresh = new optim.SGD({ learningRate: 1e-3 });
    fresh.state = opt.state;
    expect(fresh.learningRate).toBe(1e-3);
    const other = new optim.SGD({ learningRate: 0.5 });
    other.state = opt.state;
    expect(other.learningRate).toBe(Math.fround(1e-3));
    expect(other.step).toBe(1);
  });
});

describe("memory", () => {
  it("stays flat over many steps: the optimizer drops the old parameters and state", () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    const n = 256;
    const model = {
      p: { w: mx.random.normal([n, n], { key: mx.random.key(3) }), b: mx.zeros([n]) },
      trainableParameters() { return this.p; },
      parameters() { return this.p; },
      update(t: { w: mx.Array; b: mx.Array }) { this.p = { ...this.p, ...t }; },
    };
    const opt = new optim.Adam({ learningRate: 1e-3 });
    const g = { w: mx.full([n, n], 0.01), b: mx.full([n], 0.01) };
    mx.eval(model.p, g);
    const paramBytes = (n * n + n) * 4;
    const samples: number[] = [];
    let peak = 0;
    for (let i = 0; i < 300; i++) {
      if (i >= 290) gc?.(); // the last steps measure what a step adds on top of what is live before it
      const before = mx.getActiveMemory();
      mx.resetPeakMemory();
      opt.update(model, g);
      mx.eval(model.parameters(), opt.state);
      if (i >= 290) peak = Math.max(peak, mx.getPeakMemory() - before);
      if (i % 10 === 9) {
        gc?.();
        samples.push(mx.getActiveMemory());
      }
    }
    // Live set: params + grads + m + v = 4 copies. A collection may lag a step behind (a sample
    // of 7x to 16x), but nothing accumulates: the typical sample is the live set, and none grows.
    const sorted = [...samples].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1];
    console.log(`optim memory: active ${samples.map((s) => (s / paramBytes).toFixed(1)).join(" ")} x params; a step adds at most ${(peak / paramBytes).toFixed(1)} x params (${peak} bytes, params ${paramBytes})`);
    expect(median).toBeLessThanOrEqual(4.5 * paramBytes);
    expect(sorted[sorted.length - 1]).toBeLessThanOrEqual(32 * paramBytes); // a leak would reach 900x
    // On top of the live set a step holds the new params, m and v (3) and its intermediates.
    expect(peak).toBeLessThanOrEqual(10 * paramBytes);
  });
});

describe("training loop", () => {
  it.each([
    ["Adam", () => new optim.Adam({ learningRate: 2e-2 })],
    ["SGD", () => new optim.SGD({ learningRate: 0.1, momentum: 0.9 })],
    ["RMSprop", () => new optim.RMSprop({ learningRate: 5e-3 })],
  ] as [string, () => optim.Optimizer][])("%s reaches a low loss with one mx.eval per step", (_name, make) => {
    const model = new TinyMLP([2, 16, 1], 7);
    const opt = make();
    const [x, y] = data(100);
    const start = lossFn(model.params, x, y).item() as number;
    train(model, opt, 300);
    const end = lossFn(model.params, x, y).item() as number;
    expect(end).toBeLessThan(0.02);
    expect(end).toBeLessThan(start / 10);
  });
});
