/** @file Schedules' values, joinSchedules' boundaries, and clipGradNorm against plain-JS math. */
import * as mx from "@tessera/core";
import * as optim from "@tessera/optim";
import { describe, expect, it } from "vitest";

const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(b)));

describe("schedules", () => {
  it("exponentialDecay", () => {
    const s = optim.exponentialDecay(0.1, 0.9);
    for (const k of [0, 1, 5, 100]) close(s(k) as number, 0.1 * 0.9 ** k);
  });
  it("stepDecay", () => {
    const s = optim.stepDecay(0.1, 0.5, 3);
    expect([0, 1, 2, 3, 5, 6, 9].map((k) => s(k))).toEqual([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]);
  });
  it("cosineDecay, then flat at end", () => {
    const s = optim.cosineDecay(1, 10, 0.1);
    close(s(0) as number, 1);
    close(s(5) as number, 0.55);
    close(s(10) as number, 0.1);
    close(s(20) as number, 0.1);
    close(s(3) as number, 0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * 3) / 10)));
    close(optim.cosineDecay(2, 4)(2) as number, 1);
  });
  it("linearSchedule, then flat at end", () => {
    const s = optim.linearSchedule(0, 1, 4);
    expect([0, 1, 2, 3, 4, 10].map((k) => s(k))).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
  });
  it("joinSchedules starts each schedule from 0 at its boundary", () => {
    const warm = optim.linearSchedule(0, 1, 10);
    const decay = optim.exponentialDecay(1, 0.5);
    const flat = () => 7;
    const s = optim.joinSchedules([warm, decay, flat], [10, 13]);
    expect([0, 5, 9].map((k) => s(k))).toEqual([0, 0.5, 0.9]);
    expect([10, 11, 12].map((k) => s(k))).toEqual([1, 0.5, 0.25]);
    expect([13, 100].map((k) => s(k))).toEqual([7, 7]);
    expect(optim.joinSchedules([warm], [])(3)).toBe(0.3);
  });
  it("checks arguments", () => {
    expect(() => optim.joinSchedules([() => 1, () => 2], [])).toThrow(/boundaries/);
    expect(() => optim.joinSchedules([() => 1, () => 2, () => 3], [5, 2])).toThrow(/non-decreasing/);
    expect(() => optim.cosineDecay(1, 0)).toThrow(/decaySteps/);
    expect(() => optim.stepDecay(1, 0.5, 0)).toThrow(/stepSize/);
    expect(() => optim.exponentialDecay(1, 0.5)(-1)).toThrow(/step/);
  });
  it("update k uses the schedule's value at k", () => {
    const seen: number[] = [];
    const opt = new optim.SGD({ learningRate: (k) => (seen.push(k), 1) });
    let p = { a: mx.zeros([1]) };
    for (let i = 0; i < 3; i++) p = opt.applyGradients({ a: mx.ones([1]) }, p);
    expect(seen).toEqual([0, 1, 2]);
    expect(opt.step).toBe(3);
  });
});

describe("clipGradNorm", () => {
  const grads = () => ({ a: mx.array([3, 0], "float64"), b: [mx.array([[4]], "float64")] });
  it("scales by maxNorm / (norm + 1e-6) when the norm is larger", () => {
    const [clipped, norm] = optim.clipGradNorm(grads(), 1);
    expect(norm.ndim).toBe(0);
    expect(norm.item()).toBe(5);
    const s = 1 / (5 + 1e-6);
    const flat = mx.treeFlatten(clipped) as [string, mx.Array][];
    expect(flat.map(([k]) => k)).toEqual(["a", "b.0"]);
    close(flat[0][1].tolist()[0] as number, 3 * s);
    close((flat[1][1].tolist() as number[][])[0][0], 4 * s);
    expect(flat[0][1].dtype).toBe("float64");
  });
  it("leaves gradients under the limit unchanged", () => {
    const [clipped, norm] = optim.clipGradNorm(grads(), 10);
    expect(norm.item()).toBe(5);
    expect(clipped.a.tolist()).toEqual([3, 0]);
    expect(clipped.b[0].tolist()).toEqual([[4]]);
  });
  it("float32 leaves stay float32", () => {
    const [clipped, norm] = optim.clipGradNorm({ w: mx.array([[1, 2], [2, 4]]) }, 1);
    expect(clipped.w.dtype).toBe("float32");
    expect(norm.item()).toBeCloseTo(5, 5);
    expect(Math.hypot(...(clipped.w.toTypedArray() as Float32Array))).toBeCloseTo(1, 5);
  });
});
