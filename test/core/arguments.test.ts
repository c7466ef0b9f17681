/**
 * @file Every argument is checked at the call: a wrong type, range, axis, dtype, shape or option
 * throws a TypeError or RangeError (or a TransformError for the transforms) whose message starts
 * with the op's name and says what was required and what was given, before anything is recorded
 * or computed; and nothing a user writes overflows the stack (deep or wide trees, long lists of
 * arrays, deeply nested lists).
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad, valueAndGrad } from "@tessera/transforms";

const { evalStats } = mx.internal;
type ErrorClass = new (message?: string) => Error;

interface WrongCall {
  name: string;
  call: () => unknown;
  /** The exact class thrown. */
  type: ErrorClass;
  /** The op the message starts with. */
  op: string;
  /** Text the message must contain besides the op (the bad value, the expected kind). */
  parts?: string[];
}

const x23 = () => mx.array([[1, 2, 3], [4, 5, 6]]);
const b2 = () => mx.array([true, false]);
const { ShapeError, DTypeError, TransformError } = mx;
const any = (v: unknown) => v as never;

const CASES: WrongCall[] = [
  // var / std: ddof
  { name: "var with a negative ddof", call: () => mx.var(x23(), null, { ddof: -1 }), type: RangeError, op: "var", parts: ["ddof", "-1"] },
  { name: "var with a fractional ddof", call: () => mx.var(x23(), null, { ddof: 1.5 }), type: RangeError, op: "var", parts: ["ddof", "1.5"] },
  { name: "std with a string ddof", call: () => mx.std(x23(), 0, { ddof: any("1") }), type: TypeError, op: "std", parts: ["ddof", '"1"'] },
  { name: "var with a BigInt ddof", call: () => x23().var(0, { ddof: any(1n) }), type: TypeError, op: "var", parts: ["1n"] },

  // ranges
  { name: "linspace with a string start", call: () => mx.linspace(any("a"), 1, 3), type: TypeError, op: "linspace", parts: ["start", '"a"'] },
  { name: "linspace with a NaN stop", call: () => mx.linspace(0, NaN, 3), type: RangeError, op: "linspace", parts: ["stop", "NaN"] },
  { name: "linspace with a string num", call: () => mx.linspace(0, 1, any("3")), type: TypeError, op: "linspace", parts: ["num", '"3"'] },
  { name: "linspace with a fractional num", call: () => mx.linspace(0, 1, 2.5), type: TypeError, op: "linspace", parts: ["num", "2.5"] },
  { name: "linspace with a BigInt num", call: () => mx.linspace(0, 1, any(3n)), type: TypeError, op: "linspace", parts: ["3n"] },
  { name: "linspace with an unknown dtype", call: () => mx.linspace(0, 1, 3, any("f32")), type: DTypeError, op: "linspace", parts: ['"f32"'] },
  { name: "arange with a string start", call: () => mx.arange(any("a"), 3), type: TypeError, op: "arange", parts: ["start", '"a"'] },
  { name: "arange with a string stop", call: () => mx.arange(any("a")), type: DTypeError, op: "arange", parts: ['"a"'] },
  { name: "arange with a dtype before a number", call: () => mx.arange(0, any("int32"), 1), type: TypeError, op: "arange", parts: ['"int32"'] },
  { name: "arange with a BigInt", call: () => mx.arange(any(3n)), type: TypeError, op: "arange", parts: ["3n"] },
  { name: "arange with NaN", call: () => mx.arange(0, NaN), type: TypeError, op: "arange", parts: ["NaN"] },
  { name: "arange with four numbers", call: () => (mx.arange as (...a: unknown[]) => unknown)(0, 1, 1, 2), type: TypeError, op: "arange", parts: ["4"] },
  { name: "arange with options not last", call: () => mx.arange(0, any({}), 1), type: TypeError, op: "arange", parts: ["options"] },

  // Slice
  { name: "new Slice with step 0", call: () => new mx.Slice(0, 4, 0), type: RangeError, op: "Slice", parts: ["step", "zero"] },
  { name: "new Slice with a fractional start", call: () => new mx.Slice(0.5), type: TypeError, op: "Slice", parts: ["0.5", "start"] },
  { name: "new Slice with a string stop", call: () => new mx.Slice(0, any("4")), type: TypeError, op: "Slice", parts: ['"4"', "stop"] },
  { name: "new Slice with a BigInt step", call: () => new mx.Slice(0, 4, any(1n)), type: TypeError, op: "Slice", parts: ["1n"] },
  { name: "new Slice with NaN", call: () => new mx.Slice(NaN), type: TypeError, op: "Slice", parts: ["NaN"] },
  { name: "mx.slice with Infinity", call: () => mx.slice(0, Infinity), type: TypeError, op: "slice", parts: ["Infinity"] },
  { name: "mx.slice with a BigInt", call: () => mx.slice(any(1n)), type: TypeError, op: "slice", parts: ["1n"] },
  { name: "index with a BigInt", call: () => x23().index(any(1n)), type: TypeError, op: "index", parts: ["1n"] },
  { name: "index with a string", call: () => x23().index(any("0")), type: TypeError, op: "index", parts: ['"0"'] },

  // shapes
  { name: "zeros of a BigInt shape", call: () => mx.zeros(any([2n])), type: TypeError, op: "zeros", parts: ["[2n]", "BigInt"] },
  { name: "zeros of a BigInt size", call: () => mx.zeros(any(2n)), type: TypeError, op: "zeros", parts: ["2n"] },
  { name: "ones of a string shape", call: () => mx.ones(any("2")), type: TypeError, op: "ones", parts: ['"2"'] },
  { name: "ones of a fractional size", call: () => mx.ones([2.5]), type: TypeError, op: "ones", parts: ["[2.5]"] },
  { name: "full of a negative size", call: () => mx.full([-1], 0), type: TypeError, op: "full", parts: ["[-1]"] },
  { name: "full of an object shape", call: () => mx.full(any({ length: 2 }), 0), type: TypeError, op: "full", parts: ["length"] },
  { name: "reshape to a BigInt shape", call: () => x23().reshape(any([2n, 3n])), type: TypeError, op: "reshape", parts: ["[2n,3n]"] },
  { name: "broadcastTo a BigInt shape", call: () => mx.broadcastTo(x23(), any([2n, 3])), type: TypeError, op: "broadcastTo", parts: ["2n"] },
  { name: "broadcastTo a number", call: () => mx.broadcastTo(x23(), any("2,3")), type: TypeError, op: "broadcastTo", parts: ['"2,3"'] },
  { name: "tile by BigInt reps", call: () => mx.tile(x23(), any([2n])), type: TypeError, op: "tile", parts: ["[2n]"] },
  { name: "split at BigInt indices", call: () => mx.split(x23(), any([1n]), 1), type: TypeError, op: "split", parts: ["[1n]"] },
  { name: "pad by BigInt widths", call: () => mx.pad(x23(), any(1n)), type: TypeError, op: "pad", parts: ["1n"] },

  // fills
  { name: "full of an array that does not broadcast", call: () => mx.full([2], mx.array([1, 2, 3])), type: ShapeError, op: "full", parts: ["[2]", "[3]"] },
  { name: "full of an array of higher rank", call: () => mx.full([3], x23()), type: ShapeError, op: "full", parts: ["[3]", "[2,3]"] },
  { name: "full of a string", call: () => mx.full([2], any("a")), type: TypeError, op: "full", parts: ["string", '"a"'] },
  { name: "full of null", call: () => mx.full([2], any(null)), type: TypeError, op: "full", parts: ["null"] },
  { name: "full of a symbol", call: () => mx.full([2], any(Symbol("s"))), type: TypeError, op: "full", parts: ["symbol"] },

  // axes
  { name: "expandDims of a string axis", call: () => mx.expandDims(x23(), any("a")), type: TypeError, op: "expandDims", parts: ['"a"'] },
  { name: "expandDims of a BigInt axis", call: () => x23().expandDims(any(0n)), type: TypeError, op: "expandDims", parts: ["0n"] },
  { name: "expandDims of a fractional axis", call: () => mx.expandDims(x23(), 0.5), type: TypeError, op: "expandDims", parts: ["0.5"] },
  { name: "expandDims of a string in a list", call: () => mx.expandDims(x23(), any([0, "1"])), type: TypeError, op: "expandDims", parts: ['"1"'] },
  { name: "sum of a string axis", call: () => mx.sum(x23(), any("0")), type: TypeError, op: "sum", parts: ['"0"'] },
  { name: "sum of a BigInt axis", call: () => mx.sum(x23(), any(0n)), type: TypeError, op: "sum", parts: ["0n"] },
  { name: "mean of a string in an axis list", call: () => mx.mean(x23(), any([0, "1"])), type: TypeError, op: "mean", parts: ['"1"'] },
  { name: "max of an object axis", call: () => mx.max(x23(), any({ axis: 0 })), type: TypeError, op: "max", parts: ["axis"] },
  { name: "argmax of a fractional axis", call: () => mx.argmax(x23(), 0.5), type: TypeError, op: "argmax", parts: ["0.5"] },
  { name: "softmax of a string axis", call: () => mx.softmax(x23(), any("1")), type: TypeError, op: "softmax", parts: ['"1"'] },
  { name: "logsumexp of a NaN axis", call: () => mx.logsumexp(x23(), NaN), type: TypeError, op: "logsumexp", parts: ["NaN"] },
  { name: "flip of a string axis", call: () => mx.flip(x23(), any("0")), type: TypeError, op: "flip", parts: ['"0"'] },
  { name: "squeeze of a fractional axis", call: () => mx.squeeze(mx.zeros([1, 2]), 0.5), type: TypeError, op: "squeeze", parts: ["0.5"] },
  { name: "swapaxes of a BigInt axis", call: () => mx.swapaxes(x23(), any(0n), 1), type: TypeError, op: "swapaxes", parts: ["0n"] },
  { name: "moveaxis of a string axis", call: () => mx.moveaxis(x23(), 0, any("1")), type: TypeError, op: "moveaxis", parts: ['"1"'] },
  { name: "flatten of a string axis", call: () => mx.flatten(x23(), any("0")), type: TypeError, op: "flatten", parts: ['"0"'] },
  { name: "transpose of BigInt axes", call: () => mx.transpose(x23(), any([1n, 0n])), type: TypeError, op: "transpose", parts: ["1n"] },
  { name: "concatenate along a string axis", call: () => mx.concatenate([x23(), x23()], any("1")), type: TypeError, op: "concatenate", parts: ['"1"'] },
  { name: "stack along a fractional axis", call: () => mx.stack([x23(), x23()], 0.5), type: TypeError, op: "stack", parts: ["0.5"] },
  { name: "split along a string axis", call: () => mx.split(x23(), 2, any("0")), type: TypeError, op: "split", parts: ['"0"'] },
  { name: "repeat along a string axis", call: () => mx.repeat(x23(), 2, any("0")), type: TypeError, op: "repeat", parts: ['"0"'] },
  { name: "roll along a BigInt axis", call: () => mx.roll(x23(), 1, any(0n)), type: TypeError, op: "roll", parts: ["0n"] },

  // dtypes
  { name: "zeros with an unknown dtype", call: () => mx.zeros([2], any("float128")), type: DTypeError, op: "zeros", parts: ['"float128"'] },
  { name: "ones with a number dtype", call: () => mx.ones([2], any(32)), type: DTypeError, op: "ones", parts: ["32"] },
  { name: "full with an unknown dtype", call: () => mx.full([2], 1, any("i32")), type: DTypeError, op: "full", parts: ['"i32"'] },
  { name: "array with a BigInt dtype", call: () => mx.array([1], any(1n)), type: DTypeError, op: "array", parts: ["1n"] },
  { name: "astype to a capitalized dtype", call: () => x23().astype(any("Float32")), type: DTypeError, op: "astype", parts: ['"Float32"'] },
  { name: "arange with an unknown dtype", call: () => mx.arange(0, 3, 1, any("int")), type: DTypeError, op: "arange", parts: ['"int"'] },
  { name: "eye with an unknown dtype", call: () => mx.eye(2, 2, 0, any("f")), type: DTypeError, op: "eye", parts: ['"f"'] },
  { name: "identity with an unknown dtype", call: () => mx.identity(2, any("x")), type: DTypeError, op: "identity", parts: ['"x"'] },
  { name: "tri with an unknown dtype", call: () => mx.tri(2, 2, 0, any({})), type: DTypeError, op: "tri", parts: ["{}"] },
  { name: "zerosLike with an unknown dtype", call: () => mx.zerosLike(x23(), any("x")), type: DTypeError, op: "zerosLike", parts: ['"x"'] },
  { name: "onesLike with an unknown dtype", call: () => mx.onesLike(x23(), any(true)), type: DTypeError, op: "onesLike", parts: ["true"] },

  // matrix helpers
  { name: "eye of null", call: () => mx.eye(any(null)), type: TypeError, op: "eye", parts: ["n", "null"] },
  { name: "eye of a string", call: () => mx.eye(any("2")), type: TypeError, op: "eye", parts: ['"2"'] },
  { name: "tri with a fractional k", call: () => mx.tri(2, 2, 0.5), type: RangeError, op: "tri", parts: ["k", "0.5"] },
  { name: "tril with a fractional k", call: () => mx.tril(x23(), 0.5), type: TypeError, op: "tril", parts: ["k", "0.5"] },
  { name: "triu with a string k", call: () => mx.triu(x23(), any("1")), type: TypeError, op: "triu", parts: ["k", '"1"'] },
  { name: "triu with a BigInt k", call: () => mx.triu(x23(), any(1n)), type: TypeError, op: "triu", parts: ["1n"] },

  // dtype rules of ops
  { name: "leftShift of bools", call: () => mx.leftShift(b2(), b2()), type: DTypeError, op: "leftShift", parts: ["bool"] },
  { name: "rightShift of a bool and true", call: () => mx.rightShift(b2(), true), type: DTypeError, op: "rightShift", parts: ["bool"] },
  { name: "sub of bools", call: () => mx.sub(b2(), b2()), type: DTypeError, op: "sub", parts: ["bool"] },
  { name: "pow of bools", call: () => b2().pow(true), type: DTypeError, op: "pow", parts: ["bool"] },
  { name: "floorDivide of bools", call: () => mx.floorDivide(b2(), b2()), type: DTypeError, op: "floorDivide", parts: ["bool"] },
  { name: "remainder of bools", call: () => mx.remainder(b2(), b2()), type: DTypeError, op: "remainder", parts: ["bool"] },
  { name: "bitwiseAnd of floats", call: () => mx.bitwiseAnd(x23(), 1), type: DTypeError, op: "bitwiseAnd", parts: ["float32"] },
  { name: "neg of bools", call: () => mx.neg(b2()), type: DTypeError, op: "neg", parts: ["bool"] },

  // options
  { name: "sum with a number for options", call: () => mx.sum(x23(), 0, any(5)), type: TypeError, op: "sum", parts: ["options", "5"] },
  { name: "sum with a misspelt option", call: () => mx.sum(x23(), 0, any({ keepDims: true })), type: TypeError, op: "sum", parts: ['"keepDims"', '"keepdims"'] },
  { name: "mean with a string keepdims", call: () => mx.mean(x23(), 0, any({ keepdims: "yes" })), type: TypeError, op: "mean", parts: ["keepdims", '"yes"'] },
  { name: "argmax with a number keepdims", call: () => mx.argmax(x23(), 0, any({ keepdims: 1 })), type: TypeError, op: "argmax", parts: ["keepdims"] },
  { name: "var with an unknown option", call: () => mx.var(x23(), 0, any({ correction: 1 })), type: TypeError, op: "var", parts: ['"correction"'] },
  { name: "add with a string device", call: () => mx.add(x23(), 1, any({ device: "cpu" })), type: TypeError, op: "add", parts: ["device", '"cpu"'] },
  { name: "exp with a JS array for options", call: () => mx.exp(x23(), any([1])), type: TypeError, op: "exp", parts: ["options"] },
  { name: "array with a string device", call: () => mx.array([1], undefined, any({ device: "gpu" })), type: TypeError, op: "array", parts: ["device"] },
  { name: "copy with a number device", call: () => mx.copy(x23(), any({ device: 0 })), type: TypeError, op: "copy", parts: ["device"] },
  { name: "pad with a string for options", call: () => mx.pad(x23(), 1, any("edge")), type: TypeError, op: "pad", parts: ['"edge"'] },
  { name: "pad with a misspelt option", call: () => mx.pad(x23(), 1, any({ constant: 1 })), type: TypeError, op: "pad", parts: ['"constant"'] },
  { name: "nanToNum with a string nan", call: () => mx.nanToNum(x23(), any({ nan: "0" })), type: TypeError, op: "nanToNum", parts: ["nan", '"0"'] },
  { name: "nanToNum with a null posinf", call: () => mx.nanToNum(x23(), any({ posinf: null })), type: TypeError, op: "nanToNum", parts: ["posinf", "null"] },
  { name: "meshgrid with an unknown indexing", call: () => mx.meshgrid(mx.zeros([2]), any({ indexing: "xx" })), type: TypeError, op: "meshgrid", parts: ['"xx"'] },
  { name: "meshgrid with an unknown option", call: () => mx.meshgrid(mx.zeros([2]), any({ sparse: true })), type: TypeError, op: "meshgrid", parts: ['"sparse"'] },

  // dtype helpers and memory
  { name: "promoteTypes of an unknown dtype", call: () => mx.promoteTypes(any("f32"), "int8"), type: DTypeError, op: "promoteTypes", parts: ['"f32"'] },
  { name: "itemsize of an inherited key", call: () => mx.itemsize(any("constructor")), type: DTypeError, op: "itemsize", parts: ['"constructor"'] },
  { name: "setMemoryLimit of a string", call: () => mx.setMemoryLimit(any("1")), type: TypeError, op: "setMemoryLimit", parts: ["string"] },

  // data
  { name: "array of a symbol element", call: () => mx.array(any([Symbol("s")])), type: TypeError, op: "array", parts: ["symbol"] },
  { name: "array of a function", call: () => mx.array(any(() => 1)), type: TypeError, op: "array", parts: ["function"] },
  { name: "array of a DataView", call: () => mx.array(any(new DataView(new ArrayBuffer(4)))), type: TypeError, op: "array", parts: ["DataView"] },
  { name: "array of a list that contains itself", call: () => { const l: unknown[] = []; l.push(l); return mx.array(any(l)); }, type: TypeError, op: "array", parts: ["contains itself"] },
];

describe("wrong arguments throw at the call, naming the op, what was required and what was given", () => {
  it.each(CASES)("$name", ({ call, type, op, parts = [] }) => {
    evalStats.reset();
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(err, "the call did not throw").toBeInstanceOf(Error);
    const e = err as Error;
    expect(e.constructor, e.message).toBe(type);
    expect(e instanceof TypeError || e instanceof RangeError).toBe(true);
    expect(e.message.startsWith(`${op}:`), `message should start with "${op}:": ${e.message}`).toBe(true);
    expect(e.message, "the message says what was given").toContain("got");
    for (const p of parts) expect(e.message).toContain(p);
    expect(evalStats.programs, "nothing was evaluated").toBe(0);
  });
});

describe("results that used to be silently wrong", () => {
  it("var and std divide by max(N - ddof, 0), as NumPy", () => {
    const x = mx.array([1, 2, 3]);
    expect(mx.var(x, null, { ddof: 1 }).item()).toBe(1);
    expect(mx.var(x, null, { ddof: 3 }).item()).toBe(Infinity);
    expect(mx.var(x, null, { ddof: 5 }).item()).toBe(Infinity);
    expect(mx.std(x, 0, { ddof: 4 }).item()).toBe(Infinity);
    expect(Number.isNaN(mx.var(mx.array([2, 2]), null, { ddof: 2 }).item())).toBe(true);
    expect(mx.var(mx.array([[1, 3], [5, 9]]), 1, { ddof: 1, keepdims: true }).tolist()).toEqual([[2], [8]]);
    expect(mx.var(x, null, null as never).item()).toBeCloseTo(2 / 3, 6);
  });

  it("a Slice made with new is checked like mx.slice, and cannot be changed afterwards", () => {
    const s = new mx.Slice(1, null, 2);
    expect(mx.arange(6).index(s).tolist()).toEqual([1, 3, 5]);
    expect(Object.isFrozen(s)).toBe(true);
    expect(mx.arange(6).index(new mx.Slice(undefined, undefined, -2)).tolist()).toEqual([5, 3, 1]);
    // a Slice-shaped object made without the constructor is checked when used
    const forged = Object.create(mx.Slice.prototype, { start: { value: 0 }, stop: { value: 4 }, step: { value: 0 } });
    expect(() => mx.arange(6).index(forged)).toThrow(RangeError);
  });

  it("grad rejects repeated argnums instead of returning a zero gradient", () => {
    const f = (a: mx.Array, b: mx.Array) => mx.sum(mx.mul(a, b));
    const a = mx.array([1, 2]), b = mx.array([3, 4]);
    const expectTransformError = (call: () => unknown, op: string, part: string) => {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TransformError);
      expect((err as Error).message.startsWith(`${op}:`), (err as Error).message).toBe(true);
      expect((err as Error).message).toContain(part);
    };
    expectTransformError(() => grad(f, { argnums: [0, 0] }), "grad", "[0, 0]");
    expectTransformError(() => valueAndGrad(f, { argnums: [1, 1] }), "valueAndGrad", "[1, 1]");
    // -1 and 1 are the same argument of a two-argument call: known only at the call
    expectTransformError(() => grad(f, { argnums: [1, -1] })(a, b), "grad", "same argument");
    expectTransformError(() => grad(f, { argnums: any("0") }), "grad", '"0"');
    expectTransformError(() => grad(f, any({ argnum: 0 })), "grad", '"argnum"');
    expectTransformError(() => grad(f, any(0)), "grad", "options");
    const [ga, gb] = grad(f, { argnums: [0, 1] })(a, b);
    expect([ga.tolist(), gb.tolist()]).toEqual([[3, 4], [1, 2]]);
  });

  it("treeUnflatten makes every key an own property of a plain object, __proto__ included", () => {
    const v = mx.array([1]);
    const t = mx.treeUnflatten([["__proto__.x", v], ["constructor", 2], ["a.__proto__", 3]]) as Record<string, any>;
    expect(Object.getPrototypeOf(t)).toBe(Object.prototype);
    expect(mx.isPlainObject(t)).toBe(true);
    expect(Object.keys(t)).toEqual(["__proto__", "constructor", "a"]);
    expect(Object.prototype.hasOwnProperty.call(t, "__proto__")).toBe(true);
    expect(mx.isPlainObject(t.__proto__)).toBe(true);
    expect(t.__proto__.x).toBe(v);
    expect(t.constructor).toBe(2);
    expect(Object.keys(t.a)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).x).toBeUndefined(); // Object.prototype untouched
    expect(mx.treeFlatten(t)).toEqual([["__proto__.x", v], ["constructor", 2], ["a.__proto__", 3]]);
    const doubled = mx.treeMap((leaf: unknown) => (typeof leaf === "number" ? leaf * 2 : leaf), t);
    expect(Object.getPrototypeOf(doubled)).toBe(Object.prototype);
    expect(mx.treeFlatten(doubled)).toEqual([["__proto__.x", v], ["constructor", 4], ["a.__proto__", 6]]);
  });

  it("treeUnflatten rejects a path given twice or one that runs through a leaf", () => {
    expect(() => mx.treeUnflatten([["a", 1], ["a", 2]])).toThrow(/^treeUnflatten: .*"a"/);
    expect(() => mx.treeUnflatten([["a", 1], ["a.b", 2]])).toThrow(TypeError);
    expect(() => mx.treeUnflatten([["a.b", 1], ["a", 2]])).toThrow(TypeError);
    expect(() => mx.treeUnflatten(any("a"))).toThrow(/^treeUnflatten: /);
    expect(() => mx.treeUnflatten(any([["a"]]))).toThrow(/^treeUnflatten: entry 0/);
    expect(mx.treeUnflatten([])).toEqual({});
    expect(mx.treeUnflatten([["", 5]])).toBe(5);
    expect(mx.treeUnflatten([["1", "b"], ["0", "a"]])).toEqual(["a", "b"]);
  });

  it("bitwise ops on bools stay bool; shifts of bools promote with a number", () => {
    expect(mx.bitwiseAnd(b2(), mx.array([true, true])).tolist()).toEqual([true, false]);
    expect(mx.bitwiseXor(b2(), true).tolist()).toEqual([false, true]);
    const y = mx.leftShift(b2(), 1);
    expect([y.dtype, y.tolist()]).toEqual(["int32", [2, 0]]);
  });

  it("tril and triu keep the dtype of bool and integer arrays", () => {
    const b = mx.ones([2, 2], "bool");
    expect(mx.tril(b).dtype).toBe("bool");
    expect(mx.triu(b).tolist()).toEqual([[true, true], [false, true]]);
    expect(mx.tril(mx.ones([2, 2], "uint8"), 5).tolist()).toEqual([[1, 1], [1, 1]]);
    expect(mx.triu(mx.ones([2, 3], "int8"), -(2 ** 40)).tolist()).toEqual([[1, 1, 1], [1, 1, 1]]);
    expect(mx.eye(3, 3, 2 ** 40).tolist()).toEqual([[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
  });

  it("null options and dtypes mean the defaults", () => {
    expect(mx.sum(x23(), 0, null as never).tolist()).toEqual([5, 7, 9]);
    expect(mx.array([1, 2], null).dtype).toBe("float32");
    expect(mx.zeros([2], null as never).dtype).toBe("float32");
    expect(mx.zerosLike(mx.zeros([1], "int8"), null).dtype).toBe("int8");
    expect(mx.arange(5, null as never).tolist()).toEqual([0, 1, 2, 3, 4]);
  });
});

describe("nothing recursive overflows the stack", () => {
  it("mx.eval of a JS array of 200,000 arrays (sharing 1,000 nodes) and of nested lists of them", () => {
    const pool = Array.from({ length: 1000 }, (_, i) => mx.full([], i, "int32").add(1));
    const xs = Array.from({ length: 200_000 }, (_, i) => pool[i % 1000]);
    mx.eval(xs);
    expect(xs[199_999].item()).toBe(1000);
    mx.eval({ list: xs, again: [xs, xs] });
    mx.eval(...xs.slice(0, 60_000));
  });

  // One run returning 200,000 handles (program.ts spreads nothing; the addon's sweeps stay amortized).
  it("mx.eval of a JS array of 200,000 distinct lazy arrays", () => {
    const xs = Array.from({ length: 200_000 }, (_, i) => mx.full([], i, "int32"));
    mx.eval(xs);
    expect(xs[199_999].item()).toBe(199_999);
  });

  it("treeFlatten, treeMap, treeUnflatten and mx.eval of a tree 200,000 levels deep", () => {
    const leaf = mx.array([1]);
    let tree: unknown = { w: leaf };
    for (let i = 0; i < 200_000; i++) tree = i % 2 ? { a: tree } : [tree];
    const flat = mx.treeFlatten(tree);
    expect(flat.length).toBe(1);
    expect(flat[0][1]).toBe(leaf);
    const mapped = mx.treeMap((v: mx.Array) => v.add(1), tree);
    const again = mx.treeFlatten(mapped);
    expect(again[0][0]).toBe(flat[0][0]);
    const rebuilt = mx.treeUnflatten(flat);
    expect(mx.treeFlatten(rebuilt)[0][0]).toBe(flat[0][0]);
    mx.eval(mapped);
    expect((again[0][1] as mx.Array).tolist()).toEqual([2]);
  });

  it("treeFlatten, treeMap and treeUnflatten of a tree 300,000 leaves wide", () => {
    const wide = Object.fromEntries(Array.from({ length: 300_000 }, (_, i) => [`k${i}`, i]));
    const flat = mx.treeFlatten(wide);
    expect(flat.length).toBe(300_000);
    const back = mx.treeUnflatten(flat) as Record<string, number>;
    expect(back.k299999).toBe(299_999);
    const list = mx.treeUnflatten(Array.from({ length: 300_000 }, (_, i): [string, number] => [String(i), i])) as number[];
    expect([Array.isArray(list), list.length, list[123_456]]).toEqual([true, 300_000, 123_456]);
    expect(mx.treeMap((v: number) => v + 1, list)[299_999]).toBe(300_000);
  });

  it("a tree that contains itself is a TypeError, not a hang or a stack overflow", () => {
    const t: Record<string, unknown> = { a: mx.zeros([1]) };
    t.self = { back: t };
    expect(() => mx.treeFlatten(t)).toThrow(/^treeFlatten: the tree contains itself \(at "self.back"\)/);
    expect(() => mx.treeMap((v: unknown) => v, t)).toThrow(/^treeMap: the tree contains itself/);
    expect(() => mx.eval(t)).toThrow(/^eval: the tree contains itself/);
    const shared = { w: mx.zeros([1]) }; // a subtree reached twice is fine
    expect(mx.treeFlatten({ a: shared, b: shared }).map(([p]) => p)).toEqual(["a.w", "b.w"]);
  });

  it("mx.array of lists nested 100,000 deep", () => {
    let data: unknown = 7;
    for (let i = 0; i < 100_000; i++) data = [data];
    const a = mx.array(data as never);
    expect([a.ndim, a.size, a.item()]).toEqual([100_000, 1, 7]);
  });
});
