/** @file nn.Module: parameter trees, paths, update, freeze, train/eval, safetensors round trip. */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

class Block extends nn.Module {
  lin = new nn.Linear(3, 4);
  norm = new nn.LayerNorm(4);
  forward(x: mx.Array) { return this.norm.forward(this.lin.forward(x)); }
}
class Net extends nn.Module {
  layers = [new Block(), new nn.Dropout(0.1), new nn.Linear(4, 2, { bias: false })];
  extra = { scale: mx.ones([2]), list: [mx.zeros([1])] };
  hidden = 7;
  _cache = mx.zeros([5]);
  forward(x: mx.Array) {
    for (const l of this.layers) x = l.forward(x);
    return x.mul(this.extra.scale);
  }
}
const keys = (tree: unknown) => mx.treeFlatten(tree).map(([k]) => k);

describe("Module parameter trees", () => {
  it("collects arrays, modules, JS arrays and objects with dotted paths", () => {
    const net = new Net();
    expect(keys(net.parameters())).toEqual([
      "layers.0.lin.weight", "layers.0.lin.bias", "layers.0.norm.weight", "layers.0.norm.bias",
      "layers.2.weight", "extra.scale", "extra.list.0",
    ]);
    const p = net.parameters() as any;
    expect(p.layers[1]).toEqual({}); // Dropout keeps its index
    expect(p.layers[0].lin.weight).toBe(net.layers[0].lin.weight);
    expect(p.layers[0].lin.weight.shape).toEqual([4, 3]);
    expect(Object.keys(p)).not.toContain("training");
    expect(Object.keys(p)).not.toContain("_cache");
  });
  it("children and modules", () => {
    const net = new Net();
    expect(Object.keys(net.children())).toEqual(["layers"]);
    const ms = net.modules();
    expect(ms[0]).toBe(net);
    expect(ms.length).toBe(1 + 1 + 2 + 1 + 1);
    expect(net.namedModules().map(([p]) => p)).toEqual(["", "layers.0", "layers.0.lin", "layers.0.norm", "layers.1", "layers.2"]);
  });
  it("update replaces arrays in place by path and checks everything first", () => {
    const net = new Net();
    const w = mx.full([4, 3], 2);
    expect(net.update({ layers: [{ lin: { weight: w } }] })).toBe(net);
    expect(net.layers[0].lin.weight).toBe(w);
    const before = net.extra.scale;
    expect(() => net.update({ extra: { scale: mx.zeros([2]) }, nope: mx.zeros([1]), layers: [{ lin: { bias: mx.zeros([3]) } }] }))
      .toThrow(/unknown parameter paths "nope".*shape mismatch at "layers\.0\.lin\.bias" \(expected \[4\], got \[3\]\)/);
    expect(net.extra.scale).toBe(before); // nothing replaced
    expect(() => net.update({ hidden: mx.zeros([1]) })).toThrow(/"hidden"/);
    expect(() => net.update({ _cache: mx.zeros([5]) })).toThrow(/"_cache"/);
    net.update({ nope: mx.zeros([1]) }, { strict: false });
  });
  it("freeze and unfreeze, by keys and recursively", () => {
    const net = new Net();
    net.freeze();
    expect(keys(net.trainableParameters())).toEqual([]);
    expect(keys(net.parameters()).length).toBe(7);
    net.unfreeze();
    expect(keys(net.trainableParameters()).length).toBe(7);
    net.freeze({ keys: "bias" });
    expect(keys(net.trainableParameters())).toEqual(["layers.0.lin.weight", "layers.0.norm.weight", "layers.2.weight", "extra.scale", "extra.list.0"]);
    net.unfreeze({ keys: ["bias"] });
    net.layers[0].freeze();
    expect(keys(net.trainableParameters())).toEqual(["layers.2.weight", "extra.scale", "extra.list.0"]);
    net.freeze({ keys: ["extra"], recurse: false });
    expect(keys(net.trainableParameters())).toEqual(["layers.2.weight"]);
    expect(() => net.freeze({ keys: ["nothing"], strict: true })).toThrow(/"nothing"/);
  });
  it("train and eval set the flag on every module", () => {
    const net = new Net();
    expect(net.training).toBe(true);
    expect(net.eval()).toBe(net);
    expect(net.modules().every((m) => !m.training)).toBe(true);
    net.train();
    expect(net.modules().every((m) => m.training)).toBe(true);
    net.train(false);
    expect(net.layers[1].training).toBe(false);
  });
  it("forward is required of subclasses", () => {
    expect(() => new nn.Module().forward()).toThrow(/forward/);
  });
});

describe("saveWeights / loadWeights", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tessera-nn-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it("round trips through safetensors", () => {
    const a = new Net();
    const file = path.join(dir, "net.safetensors");
    a.saveWeights(file);
    const b = new Net();
    b.loadWeights(file);
    const pa = mx.treeFlatten(a.parameters()) as [string, mx.Array][];
    const pb = new Map(mx.treeFlatten(b.parameters()) as [string, mx.Array][]);
    for (const [k, v] of pa) expect(pb.get(k)!.tolist()).toEqual(v.tolist());
    const { arrays } = mx.loadSafetensors(file);
    expect(Object.keys(arrays).sort()).toEqual(pa.map(([k]) => k).sort());
  });
  it("strict loading names missing, unexpected and mis-shaped keys", () => {
    const net = new Net();
    const pairs = (mx.treeFlatten(net.parameters()) as [string, mx.Array][]).filter(([k]) => k !== "extra.scale");
    pairs.push(["bogus.weight", mx.zeros([1])]);
    pairs[0] = ["layers.0.lin.weight", mx.zeros([3, 4])];
    expect(() => net.loadWeights(pairs)).toThrow(
      /missing keys "extra\.scale".*unexpected keys "bogus\.weight".*shape mismatch at "layers\.0\.lin\.weight" \(expected \[4,3\], got \[3,4\]\)/,
    );
    const ok = pairs.filter(([k]) => k !== "layers.0.lin.weight");
    net.loadWeights(ok, { strict: false });
    expect(() => net.loadWeights(ok)).toThrow(/missing keys "layers\.0\.lin\.weight", "extra\.scale"/);
    const b = mx.full([4], 3);
    net.loadWeights([["layers.0.lin.bias", b]], { strict: false });
    expect(net.layers[0].lin.bias).toBe(b);
  });
});
