/** @file nn.losses against their formulas, with reductions, label smoothing and weights. */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { describe, expect, it } from "vitest";

const L = nn.losses;
const f64 = (v: number[][] | number[]) => mx.array(v as number[][], "float64");
const flat = (a: mx.Array) => Array.from(a.astype("float64").toTypedArray() as Float64Array);
const close = (a: mx.Array, ref: number[], tol = 1e-10) => {
  const got = flat(a);
  expect(got.length).toBe(ref.length);
  got.forEach((g, i) => expect(Math.abs(g - ref[i]), `entry ${i}: ${g} vs ${ref[i]}`).toBeLessThan(tol));
};
const sum = (a: number[]) => a.reduce((p, q) => p + q, 0);
const lse = (r: number[]) => Math.log(sum(r.map(Math.exp)));

const logits = [[1, 2, 0.5], [-1, 0.3, 2]];
const labels = [1, 2];

describe("losses", () => {
  it("crossEntropy: indices, probabilities, label smoothing, weights, reductions, axis", () => {
    const ref = logits.map((r, i) => lse(r) - r[labels[i]]);
    close(L.crossEntropy(f64(logits), mx.array(labels, "int32")), ref);
    close(L.crossEntropy(f64(logits), mx.array(labels, "int32"), { reduction: "mean" }), [sum(ref) / 2]);
    close(L.crossEntropy(f64(logits), mx.array(labels, "int32"), { reduction: "sum" }), [sum(ref)]);
    const probs = [[0.2, 0.5, 0.3], [0, 0, 1]];
    close(L.crossEntropy(f64(logits), f64(probs)), logits.map((r, i) => lse(r) - sum(r.map((v, j) => v * probs[i][j]))));
    const s = 0.1;
    const smooth = logits.map((r, i) => lse(r) - (1 - s) * r[labels[i]] - (s * sum(r)) / 3);
    close(L.crossEntropy(f64(logits), mx.array(labels, "int32"), { labelSmoothing: s }), smooth);
    close(L.crossEntropy(f64(logits), mx.array(labels, "int32"), { weights: f64([2, 0.5]), reduction: "sum" }), [2 * ref[0] + 0.5 * ref[1]]);
    const t = f64(logits).T;
    close(L.crossEntropy(t, mx.array(labels, "int32"), { axis: 0 }), ref);
    expect(() => L.crossEntropy(f64(logits), mx.array(labels, "int32"), { weights: f64([1, 2, 3]) })).toThrow(/weights/);
    expect(() => L.crossEntropy(f64(logits), mx.array(labels, "int32"), { reduction: "avg" as never })).toThrow(/reduction/);
  });
  it("binaryCrossEntropy with logits and with probabilities", () => {
    const x = [0.5, -2, 3, 0];
    const y = [1, 0, 0, 1];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const ref = x.map((v, i) => -(y[i] * Math.log(sig(v)) + (1 - y[i]) * Math.log(1 - sig(v))));
    close(L.binaryCrossEntropy(f64(x), f64(y)), ref);
    close(L.binaryCrossEntropy(f64(x.map(sig)), f64(y), { withLogits: false }), ref);
    close(L.binaryCrossEntropy(f64(x), f64(y), { weights: f64([1, 2, 3, 4]), reduction: "mean" }), [sum(ref.map((r, i) => r * (i + 1))) / 4]);
    close(L.binaryCrossEntropy(f64([0, 1]), f64([1, 0]), { withLogits: false }), [100, 100]);
  });
  it("nllLoss", () => {
    const lp = logits.map((r) => r.map((v) => v - lse(r)));
    close(L.nllLoss(f64(lp), mx.array(labels, "int32")), lp.map((r, i) => -r[labels[i]]));
    close(L.nllLoss(f64(lp), mx.array(labels, "int32"), { reduction: "mean" }), [-(lp[0][1] + lp[1][2]) / 2]);
  });
  it("mseLoss, l1Loss, smoothL1Loss, huberLoss", () => {
    const p = [0.1, 2.5, -3, 0.7];
    const t = [0, 0, 0, 1];
    const d = p.map((v, i) => v - t[i]);
    close(L.mseLoss(f64(p), f64(t)), d.map((v) => v * v));
    close(L.mseLoss(f64(p), f64(t), { reduction: "mean" }), [sum(d.map((v) => v * v)) / 4]);
    close(L.l1Loss(f64(p), f64(t), { reduction: "sum" }), [sum(d.map(Math.abs))]);
    const beta = 0.5;
    close(L.smoothL1Loss(f64(p), f64(t), { beta }), d.map(Math.abs).map((a) => (a < beta ? (0.5 * a * a) / beta : a - 0.5 * beta)));
    const delta = 2;
    close(L.huberLoss(f64(p), f64(t), { delta }), d.map(Math.abs).map((a) => (a <= delta ? 0.5 * a * a : delta * (a - 0.5 * delta))));
    expect(() => L.mseLoss(f64(p), f64([1, 2]))).toThrow(/same shape/);
  });
  it("klDivLoss (log-probabilities) and cosineSimilarityLoss", () => {
    const lp = logits.map((r) => r.map((v) => v - lse(r)));
    const lq = [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]].map((r) => r.map(Math.log));
    close(L.klDivLoss(f64(lp), f64(lq)), lq.map((r, i) => sum(r.map((v, j) => Math.exp(v) * (v - lp[i][j])))));
    const a = [[1, 2, 3], [0, 1, 0]];
    const b = [[2, 0, 1], [0, 3, 0]];
    const cos = a.map((r, i) => sum(r.map((v, j) => v * b[i][j])) / Math.sqrt(sum(r.map((v) => v * v)) * sum(b[i].map((v) => v * v))));
    close(L.cosineSimilarityLoss(f64(a), f64(b)), cos);
    close(L.cosineSimilarityLoss(f64(a), f64(b), { reduction: "mean" }), [sum(cos) / 2]);
  });
});

describe("init", () => {
  const stats = (a: mx.Array) => {
    const v = flat(a);
    const m = sum(v) / v.length;
    // (a loop, not Math.max(...v): 60,000 arguments can overflow the stack, depending on its depth)
    return { mean: m, std: Math.sqrt(sum(v.map((x) => (x - m) ** 2)) / v.length), max: v.reduce((a, x) => Math.max(a, Math.abs(x)), 0) };
  };
  const w = mx.zeros([200, 300]);
  it("constant, uniform, normal", () => {
    expect(flat(nn.init.constant(0.5)(mx.zeros([3]))).every((v) => v === 0.5)).toBe(true);
    const u = stats(nn.init.uniform(-2, 2)(w));
    expect(Math.abs(u.mean)).toBeLessThan(0.05);
    expect(u.max).toBeLessThanOrEqual(2);
    expect(Math.abs(u.std - 4 / Math.sqrt(12))).toBeLessThan(0.02);
    const n = stats(nn.init.normal(1, 0.5)(w));
    expect(Math.abs(n.mean - 1)).toBeLessThan(0.01);
    expect(Math.abs(n.std - 0.5)).toBeLessThan(0.01);
    expect(nn.init.normal(0, 1, "float64")(w).dtype).toBe("float64");
  });
  it("glorot and he", () => {
    const gu = stats(nn.init.glorotUniform()(w));
    expect(gu.max).toBeLessThanOrEqual(Math.sqrt(6 / 500));
    expect(Math.abs(gu.std - Math.sqrt(2 / 500))).toBeLessThan(0.002);
    expect(Math.abs(stats(nn.init.glorotNormal()(w, { gain: 2 })).std - 2 * Math.sqrt(2 / 500))).toBeLessThan(0.003);
    expect(Math.abs(stats(nn.init.heNormal()(w)).std - 1 / Math.sqrt(300))).toBeLessThan(0.002);
    expect(Math.abs(stats(nn.init.heNormal()(w, { mode: "fanOut" })).std - 1 / Math.sqrt(200))).toBeLessThan(0.002);
    const hu = stats(nn.init.heUniform()(w));
    expect(hu.max).toBeLessThanOrEqual(Math.sqrt(3 / 300));
    expect(Math.abs(hu.std - 1 / Math.sqrt(300))).toBeLessThan(0.002);
    expect(nn.init.fanInFanOut(mx.zeros([8, 3, 3, 4]))).toEqual([36, 72]);
    expect(() => nn.init.heNormal()(mx.zeros([3]))).toThrow(/at least 2 dims/);
  });
});
