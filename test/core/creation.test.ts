/**
 * Creation and reading: array() from every kind of JS data, fills, ranges, eye/tri/tril/triu,
 * meshgrid; what tolist/item/toTypedArray return per dtype; tree utilities; devices. All values
 * are checked against plain-JS expectations.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { hostFrom, readFlat } from "../helpers/host.js";
import { buildArray, expectMatches } from "../helpers/inputs.js";
import { roundTo, roundToFloat16 } from "../helpers/special.js";

describe("array()", () => {
  it("infers shape and dtype from nested lists, booleans and BigInts", () => {
    const x = mx.array([[1, 2.5, -3], [4, 5, 6]]);
    expect([x.shape, x.dtype, x.ndim, x.size, x.itemsize, x.nbytes]).toEqual([[2, 3], "float32", 2, 6, 4, 24]);
    expect(x.tolist()).toEqual([[1, 2.5, -3], [4, 5, 6]]);
    expect(mx.array([0.1]).item()).toBe(Math.fround(0.1));
    const b = mx.array([[true], [false]]);
    expect([b.shape, b.dtype, b.tolist()]).toEqual([[2, 1], "bool", [[true], [false]]]);
    const n = mx.array([2n ** 40n, -3n]);
    expect([n.dtype, n.tolist()]).toEqual(["int64", [2n ** 40n, -3n]]);
    for (const [v, d] of [[3.5, "float32"], [true, "bool"], [7n, "int64"]] as const) {
      const s = mx.array(v);
      expect([s.shape, s.dtype, s.item()]).toEqual([[], d, v]);
    }
    expect([mx.array([]).shape, mx.array([]).dtype]).toEqual([[0], "float32"]);
    expect(mx.array([[], []]).shape).toEqual([2, 0]);
  });
  it("keeps each TypedArray's element type", () => {
    const cases: [ArrayBufferView, mx.DType][] = [
      [new Float32Array([1.5, -2]), "float32"], [new Float64Array([0.1, 1e300]), "float64"], [new Int8Array([-128, 127]), "int8"],
      [new Int16Array([-300, 300]), "int16"], [new Int32Array([-(2 ** 31), 5]), "int32"], [new Uint8Array([0, 255]), "uint8"],
      [new Uint16Array([65535, 1]), "uint16"], [new Uint32Array([2 ** 32 - 1, 0]), "uint32"],
      [new BigInt64Array([-(2n ** 63n), 2n ** 62n]), "int64"], [new BigUint64Array([2n ** 64n - 1n, 0n]), "uint64"],
    ];
    for (const [data, d] of cases) {
      const x = mx.array(data as any);
      expect(x.dtype).toBe(d);
      expect(x.shape).toEqual([2]);
      const back = x.toTypedArray();
      expect(back.constructor).toBe(data.constructor);
      expect([...(back as any)]).toEqual([...(data as any)]);
      expect(x.itemsize).toBe((data as any).BYTES_PER_ELEMENT);
    }
  });
  it("converts to an explicit dtype (truncating to integers), and from an Array", () => {
    expect(mx.array([1.7, -2.2, 3], "int32").tolist()).toEqual([1, -2, 3]);
    expect(mx.array(new Float64Array([0.1]), "float32").item()).toBe(Math.fround(0.1));
    const i = mx.array(new Int32Array([3, -4]), "float64");
    expect([i.dtype, i.tolist()]).toEqual(["float64", [3, -4]]);
    expect(mx.array([1, 0, 2], "bool").tolist()).toEqual([true, false, true]);
    expect(mx.array([1.5, 2 ** 20 + 1], "float16").tolist()).toEqual([1.5, roundToFloat16(2 ** 20 + 1)]);
    const x = mx.array([1.5, 2.5]);
    expect(mx.array(x).tolist()).toEqual([1.5, 2.5]);
    expect(mx.array(x, "int32").tolist()).toEqual([1, 2]);
  });
  it("rejects ragged lists and non-numeric entries", () => {
    expect(() => mx.array([[1, 2], [3]])).toThrow(RangeError);
    expect(() => mx.array(["a"] as any)).toThrow(TypeError);
  });
});

describe("reading values", () => {
  it("tolist, item and toTypedArray give each dtype's JS values", () => {
    const f16 = mx.array([0.5, -2], "float16");
    expect(f16.tolist()).toEqual([0.5, -2]);
    expect(f16.toTypedArray()).toBeInstanceOf(Uint16Array);
    expect([...mx.array([1, -2], "bfloat16").toTypedArray()]).toEqual([0x3f80, 0xc000]);
    const b = mx.array([true, false]);
    expect(b.toTypedArray()).toEqual(new Uint8Array([1, 0]));
    expect(mx.array([3], "int64").item()).toBe(3n);
    expect(mx.array([3], "uint64").item()).toBe(3n);
    expect(mx.array([true]).item()).toBe(true);
    expect(mx.array([[7]], "int32").item()).toBe(7);
    expect(mx.array([1, 2], "float64").toTypedArray()).toEqual(new Float64Array([1, 2]));
    expect(mx.zeros([2, 0]).tolist()).toEqual([[], []]);
    expect(() => mx.zeros([2]).item()).toThrow(RangeError);
    // toTypedArray is a copy
    const x = mx.array([1, 2], "int32");
    const t = x.toTypedArray();
    t[0] = 99;
    expect(x.tolist()).toEqual([1, 2]);
  });
});

describe("fills", () => {
  it("zeros, ones and full with shapes, dtypes and values", () => {
    const all = (x: mx.Array, v: unknown) => readFlat(x).every((e) => e === v);
    for (const d of ["float32", "float64", "int32", "uint8", "float16", "bfloat16"] as mx.DType[]) {
      const z = mx.zeros([2, 3], d), o = mx.ones([4], d), f = mx.full([3, 1], 5, d);
      expect([z.shape, z.dtype, all(z, 0)]).toEqual([[2, 3], d, true]);
      expect([o.shape, o.dtype, all(o, 1)]).toEqual([[4], d, true]);
      expect([f.shape, f.dtype, all(f, 5)]).toEqual([[3, 1], d, true]);
    }
    expect(mx.zeros([2]).dtype).toBe("float32");
    expect(mx.zeros(3).shape).toEqual([3]);
    expect(mx.zeros([]).shape).toEqual([]);
    expect(mx.zeros([0, 4]).size).toBe(0);
    expect(mx.ones([2], "int64").tolist()).toEqual([1n, 1n]);
    expect(mx.ones([2], "bool").tolist()).toEqual([true, true]);
    expect([mx.full([2], true).dtype, mx.full([2], true).tolist()]).toEqual(["bool", [true, true]]);
    expect(mx.full([2], 0.1).tolist()).toEqual([Math.fround(0.1), Math.fround(0.1)]);
    expect(mx.full([2, 2], mx.array([1, 2])).tolist()).toEqual([[1, 2], [1, 2]]);
    expect(mx.full([2], -1.5, "int32").tolist()).toEqual([-1, -1]);
  });
  it("zerosLike and onesLike keep shape and dtype", () => {
    for (const d of ["float64", "int16", "bool"] as mx.DType[]) {
      const x = mx.zeros([2, 3], d);
      expectMatches(mx.zerosLike(x), hostFrom([2, 3], () => 0), d);
      expectMatches(mx.onesLike(x.T), hostFrom([3, 2], () => 1), d);
    }
  });
});

describe("ranges", () => {
  /** NumPy arange: ceil((stop - start) / step) values start + i * step. */
  const arangeRef = (start: number, stop: number, step: number, d: mx.DType) =>
    hostFrom([Math.max(0, Math.ceil((stop - start) / step))], (i) => roundTo(d, start + i * step));
  it.each([
    [[5], [0, 5, 1], "int32"], [[2, 7], [2, 7, 1], "int32"], [[1, 10, 3], [1, 10, 3], "int32"], [[5, 0, -1], [5, 0, -1], "int32"],
    [[10, 1, -4], [10, 1, -4], "int32"], [[3, 3], [3, 3, 1], "int32"], [[5, 1], [5, 1, 1], "int32"], [[0, 1, 0.25], [0, 1, 0.25], "float32"],
    [[0, -1, -0.3], [0, -1, -0.3], "float32"], [[0.5, 3], [0.5, 3, 1], "float32"], [[-2.5, 2.5, 0.5], [-2.5, 2.5, 0.5], "float32"],
    [[5, "float64"], [0, 5, 1], "float64"], [[0, 5, 2, "float32"], [0, 5, 2], "float32"], [[1, 2, 0.1, "float64"], [1, 2, 0.1], "float64"],
    [[0, 6, 2, "int64"], [0, 6, 2], "int64"],
  ] as [any[], [number, number, number], mx.DType][])("arange(%j)", (args, [start, stop, step], d) => {
    const x = (mx.arange as any)(...args) as mx.Array;
    const ref = arangeRef(start, stop, step, d);
    expectMatches(x, d === "int64" ? { shape: ref.shape, data: ref.data.map(BigInt) } : ref, d, { rtol: d === "float64" ? 1e-15 : 2 ** -23, atol: 1e-15 });
  });
  it("arange rejects a zero step", () => {
    expect(() => mx.arange(0, 5, 0)).toThrow(RangeError);
  });
  it.each([
    [0, 1, 5, "float32"], [-1, 1, 50, "float64"], [3, -3, 7, "float32"], [2, 2, 3, "float64"], [1, 5, 1, "float32"], [0, 1, 0, "float32"],
  ] as [number, number, number, mx.DType][])("linspace(%d, %d, %d, %s) includes both ends", (start, stop, num, d) => {
    const ref = hostFrom([num], (i) => roundTo(d, num === 1 ? start : start + ((stop - start) * i) / (num - 1)));
    expectMatches(mx.linspace(start, stop, num, d), ref, d, { rtol: d === "float64" ? 1e-15 : 2 ** -22, atol: d === "float64" ? 1e-15 : 1e-7 });
  });
  it("linspace defaults to 50 float32 values", () => {
    const x = mx.linspace(0, 49);
    expect([x.shape, x.dtype]).toEqual([[50], "float32"]);
    expect(x.tolist()).toEqual([...Array(50).keys()]);
  });
});

describe("eye, identity, tri, tril, triu", () => {
  it.each([[3, undefined, 0], [3, 5, 0], [4, 2, 0], [4, 4, 1], [4, 4, -2], [3, 5, 3], [3, 3, 5], [0, 2, 0]] as [number, number | undefined, number][])(
    "eye(%d, %s, %d) has ones on diagonal k",
    (n, m, k) => {
      const cols = m ?? n;
      expectMatches(mx.eye(n, m, k), hostFrom([n, cols], (i) => (Math.floor(i / cols) + k === i % cols ? 1 : 0)), "float32");
      expectMatches(mx.tri(n, m, k), hostFrom([n, cols], (i) => (i % cols <= Math.floor(i / cols) + k ? 1 : 0)), "float32");
    },
  );
  it("eye, identity and tri take a dtype", () => {
    expectMatches(mx.eye(2, 3, 1, "int32"), { shape: [2, 3], data: [0, 1, 0, 0, 0, 1] }, "int32");
    expectMatches(mx.identity(3, "float64"), hostFrom([3, 3], (i) => (i % 4 === 0 ? 1 : 0)), "float64");
    expectMatches(mx.tri(2, 2, 0, "bool"), { shape: [2, 2], data: [1, 0, 1, 1] }, "bool");
  });
  it("tril and triu keep the dtype and work over leading batch axes and views", () => {
    const h = hostFrom([2, 3, 4], (i) => i + 1);
    for (const k of [-1, 0, 1, 3]) {
      const low = hostFrom(h.shape, (i) => (i % 4 <= Math.floor(i / 4) % 3 + k ? h.data[i] : 0));
      const up = hostFrom(h.shape, (i) => (i % 4 >= Math.floor(i / 4) % 3 + k ? h.data[i] : 0));
      for (const d of ["float32", "int32"] as mx.DType[]) {
        expectMatches(mx.tril(buildArray(h, d), k), low, d, {}, `tril k=${k}`);
        expectMatches(mx.triu(buildArray(h, d), k), up, d, {}, `triu k=${k}`);
      }
    }
    const t = hostFrom([4, 3], (i) => 1 + (i % 3) * 4 + Math.floor(i / 3)); // the transpose of a [3, 4] iota
    expectMatches(mx.tril(buildArray(hostFrom([3, 4], (i) => i + 1), "float32").T), hostFrom([4, 3], (i) => (i % 3 <= Math.floor(i / 3) ? t.data[i] : 0)), "float32");
    expect(() => mx.tril(mx.zeros([3]))).toThrow(RangeError);
  });
});

describe("meshgrid", () => {
  const x = [1, 2, 3], y = [10, 20], z = [7, 8, 9, 6];
  const A = (v: number[]) => buildArray({ shape: [v.length], data: v }, "float32");
  it("xy (Cartesian) indexing swaps the first two output axes", () => {
    const [X, Y] = mx.meshgrid(A(x), A(y));
    expectMatches(X, hostFrom([2, 3], (i) => x[i % 3]), "float32");
    expectMatches(Y, hostFrom([2, 3], (i) => y[Math.floor(i / 3)]), "float32");
    const [X3, Y3, Z3] = mx.meshgrid(A(x), A(y), A(z));
    const at = (i: number) => [Math.floor(i / 12), Math.floor(i / 4) % 3, i % 4]; // shape [2, 3, 4]
    expectMatches(X3, hostFrom([2, 3, 4], (i) => x[at(i)[1]]), "float32");
    expectMatches(Y3, hostFrom([2, 3, 4], (i) => y[at(i)[0]]), "float32");
    expectMatches(Z3, hostFrom([2, 3, 4], (i) => z[at(i)[2]]), "float32");
  });
  it("ij (matrix) indexing", () => {
    const [X, Y] = mx.meshgrid(A(x), A(y), { indexing: "ij" });
    expectMatches(X, hostFrom([3, 2], (i) => x[Math.floor(i / 2)]), "float32");
    expectMatches(Y, hostFrom([3, 2], (i) => y[i % 2]), "float32");
    const [only] = mx.meshgrid(A(x));
    expectMatches(only, { shape: [3], data: x }, "float32");
  });
});

describe("trees", () => {
  const a = mx.array([1]), b = mx.array([2]), c = mx.array([3]), d = mx.array([4]);
  const tree = { layers: [{ w: a, b }, { w: c, b: d }], head: { scale: 0.5 }, name: "mlp" };
  it("treeFlatten gives dotted paths depth first; treeUnflatten rebuilds the tree", () => {
    const flat = mx.treeFlatten<unknown>(tree);
    expect(flat.map(([p]) => p)).toEqual(["layers.0.w", "layers.0.b", "layers.1.w", "layers.1.b", "head.scale", "name"]);
    expect(flat[0][1]).toBe(a);
    expect(flat[3][1]).toBe(d);
    const back = mx.treeUnflatten(flat) as any;
    expect(Array.isArray(back.layers)).toBe(true);
    expect(back.layers[1].w).toBe(c);
    expect(back.head.scale).toBe(0.5);
    expect(back).toEqual(tree);
    expect(mx.treeFlatten([[a], b])).toEqual([["0.0", a], ["1", b]]);
    expect(mx.treeFlatten(a)).toEqual([["", a]]);
    expect(mx.treeUnflatten([["", a]])).toBe(a);
  });
  it("treeMap applies a function leafwise, over several trees of the same structure", () => {
    const doubled = mx.treeMap((x: mx.Array) => mx.mul(x, 2), { p: [a, b], q: c });
    expect(doubled.p[1].tolist()).toEqual([4]);
    expect(doubled.q.tolist()).toEqual([6]);
    const summed = mx.treeMap((x: mx.Array, y: mx.Array) => mx.add(x, y), [a, { k: b }], [c, { k: d }]);
    expect([summed[0].tolist(), summed[1].k.tolist()]).toEqual([[4], [6]]);
    expect(() => mx.treeMap((x: any, y: any) => x, { p: a }, { q: a })).toThrow(TypeError);
  });
  it("eval accepts trees and evaluates every array in them", () => {
    const t = { x: mx.add(a, 1), ys: [mx.mul(b, 3), { z: mx.sub(c, d) }] };
    mx.eval(t, [mx.neg(a)]);
    expect([t.x.tolist(), (t.ys[0] as mx.Array).tolist(), (t.ys[1] as any).z.tolist()]).toEqual([[2], [6], [-1]]);
  });
});

describe("devices", () => {
  it("the cpu is available and the default (unless TESSERA_DEFAULT_DEVICE names the gpu); the gpu is refused when unavailable", () => {
    expect(mx.cpu.type).toBe("cpu");
    expect(mx.gpu.type).toBe("gpu");
    expect(mx.isAvailable(mx.cpu)).toBe(true);
    const start = mx.defaultDevice();
    expect(start).toEqual(process.env.TESSERA_DEFAULT_DEVICE?.startsWith("gpu") ? mx.gpu : mx.cpu);
    try {
      mx.setDefaultDevice(mx.cpu);
      expect(mx.defaultDevice()).toEqual(mx.cpu);
      if (!mx.isAvailable(mx.gpu)) {
        expect(() => mx.setDefaultDevice(mx.gpu)).toThrow(/gpu/);
        expect(mx.defaultDevice()).toEqual(mx.cpu);
      }
    } finally {
      mx.setDefaultDevice(start);
    }
  });
});
