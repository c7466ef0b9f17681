/**
 * @file Adafactor against a float64 reference of the paper's algorithm with MLX's defaults
 * (factored over the last two axes for 2+ axes), for several hyperparameter sets.
 */
import * as mx from "@tessera/core";
import * as optim from "@tessera/optim";
import { describe, expect, it } from "vitest";
import { rng } from "../helpers/reference.js";

interface Opts { lr?: number; eps1: number; eps2: number; clip: number; decay: number; beta1: number | null; wd: number; scale: boolean; relative: boolean; warmup: boolean }
const DEFAULTS: Opts = { eps1: 1e-30, eps2: 1e-3, clip: 1, decay: -0.8, beta1: null, wd: 0, scale: true, relative: true, warmup: false };

const rmsOf = (x: Float64Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);

/** One Adafactor step on a [B..., R, C] (or 1-D) parameter, in place; `s` holds the state. */
function refStep(o: Opts, shape: number[], p: Float64Array, g: Float64Array, s: Record<string, Float64Array>, t: number): void {
  const rel = o.relative ? Math.min(o.warmup ? 1e-6 * t : 1e-2, 1 / Math.sqrt(t)) : o.lr!;
  const lr = o.scale ? Math.max(o.eps2, rmsOf(p)) * rel : rel;
  const b2 = 1 - t ** o.decay;
  const sq = g.map((v) => v * v + o.eps1);
  const u = new Float64Array(p.length);
  if (shape.length >= 2) {
    const C = shape[shape.length - 1];
    const R = shape[shape.length - 2];
    const B = p.length / (R * C);
    s.row ??= new Float64Array(B * R);
    s.col ??= new Float64Array(B * C);
    for (let b = 0; b < B; b++) {
      for (let r = 0; r < R; r++) {
        let m = 0;
        for (let c = 0; c < C; c++) m += sq[(b * R + r) * C + c] / C;
        s.row[b * R + r] = b2 * s.row[b * R + r] + (1 - b2) * m;
      }
      for (let c = 0; c < C; c++) {
        let m = 0;
        for (let r = 0; r < R; r++) m += sq[(b * R + r) * C + c] / R;
        s.col[b * C + c] = b2 * s.col[b * C + c] + (1 - b2) * m;
      }
      let rowMean = 0;
      for (let r = 0; r < R; r++) rowMean += s.row[b * R + r] / R;
      for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) {
        const i = (b * R + r) * C + c;
        u[i] = g[i] / Math.sqrt(s.row[b * R + r] / rowMean) / Math.sqrt(s.col[b * C + c]);
      }
    }
  } else {
    s.v ??= new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      s.v[i] = b2 * s.v[i] + (1 - b2) * sq[i];
      u[i] = g[i] / Math.sqrt(s.v[i]);
    }
  }
  const d = Math.max(1, rmsOf(u) / o.clip);
  for (let i = 0; i < u.length; i++) u[i] = (u[i] / d) * lr;
  if (o.beta1 !== null) {
    s.m ??= new Float64Array(p.length);
    for (let i = 0; i < u.length; i++) u[i] = s.m[i] = o.beta1 * s.m[i] + (1 - o.beta1) * u[i];
  }
  for (let i = 0; i < p.length; i++) p[i] = p[i] - o.wd * lr * p[i] - u[i];
}

const SHAPES: Record<string, number[]> = { w: [3, 4], b: [4], k: [2, 3, 2] };

function run(o: Opts, make: () => optim.Adafactor, steps = 6): void {
  const next = rng(11);
  const rand = (n: number) => Float64Array.from({ length: n }, () => 4 * next() - 2);
  const names = Object.keys(SHAPES);
  const refP: Record<string, Float64Array> = {};
  const refS: Record<string, Record<string, Float64Array>> = {};
  let params: Record<string, mx.Array> = {};
  for (const n of names) {
    refP[n] = rand(SHAPES[n].reduce((a, b) => a * b, 1));
    refS[n] = {};
    params[n] = mx.array(refP[n]).reshape(SHAPES[n]);
  }
  const opt = make();
  for (let t = 1; t <= steps; t++) {
    const grads: Record<string, mx.Array> = {};
    for (const n of names) {
      const g = rand(refP[n].length);
      grads[n] = mx.array(g).reshape(SHAPES[n]);
      refStep(o, SHAPES[n], refP[n], g, refS[n], t);
    }
    params = opt.applyGradients(grads, params);
    mx.eval(params, opt.state);
  }
  for (const n of names) {
    const got = params[n].toTypedArray() as Float64Array;
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - refP[n][i])).toBeLessThanOrEqual(1e-12 + 1e-10 * Math.abs(refP[n][i]));
  }
}

describe("Adafactor matches the paper's algorithm with MLX's defaults", () => {
  it("defaults (relative step, parameter scale, no first moment)", () => run(DEFAULTS, () => new optim.Adafactor()));
  it("explicit learning rate, beta1, weight decay, clipping", () => {
    const o = { ...DEFAULTS, lr: 0.05, relative: false, beta1: 0.9, wd: 0.1, clip: 0.5, decay: -0.5 };
    run(o, () => new optim.Adafactor({ learningRate: 0.05, beta1: 0.9, weightDecay: 0.1, clipThreshold: 0.5, decayRate: -0.5 }));
  });
  it("warmupInit without parameter scaling", () => {
    const o = { ...DEFAULTS, warmup: true, scale: false, eps1: 1e-20 };
    run(o, () => new optim.Adafactor({ warmupInit: true, scaleParameter: false, eps: [1e-20, 1e-3] }));
  });
  it("factored state for 2+ axes", () => {
    const opt = new optim.Adafactor({ beta1: 0.9 });
    opt.init({ w: mx.zeros([3, 4]), b: mx.zeros([4]), k: mx.zeros([2, 3, 5]) });
    const shapes = Object.fromEntries((mx.treeFlatten(opt.state) as [string, mx.Array][]).map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      "w.expAvgSqRow": [3], "w.expAvgSqCol": [4], "w.expAvg": [3, 4],
      "b.expAvgSq": [4], "b.expAvg": [4],
      "k.expAvgSqRow": [2, 3], "k.expAvgSqCol": [2, 5], "k.expAvg": [2, 3, 5],
      step: [], learningRate: [],
    });
  });
});
