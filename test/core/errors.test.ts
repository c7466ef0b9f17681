/**
 * @file Wrong calls throw at the call that records the op (nothing is evaluated), with the error
 * class of API.md (ShapeError / DTypeError extend TypeError; RangeError for values out of range)
 * and a message naming the op and the offending shapes, dtypes or values.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

const { evalStats } = mx.internal;

type ErrorClass = new (message?: string) => TypeError | RangeError;

interface WrongCall {
  /** What the case shows. */
  name: string;
  call: () => unknown;
  /** The exact class thrown. */
  type: ErrorClass;
  /** The op named first in the message. */
  op: string;
  /** Further text the message must contain: shapes, dtypes, the bad value. */
  parts: string[];
}

// Lazy operands (recorded, never evaluated): errors must not wait for evaluation.
const a23 = mx.zeros([2, 3]);
const a32 = mx.ones([3, 2]);
const a4 = mx.zeros([4]);
const a234 = mx.zeros([2, 3, 4]);
const i23 = mx.zeros([2, 3], "int32");
const f64 = mx.ones([2], "float64");
const empty03 = mx.zeros([0, 3]);
const { ShapeError, DTypeError } = mx;

const CASES: WrongCall[] = [
  // Broadcasting.
  { name: "add of unbroadcastable shapes", call: () => mx.add(a23, a4), type: ShapeError, op: "add", parts: ["[2,3]", "[4]"] },
  { name: "mul of transposed shapes", call: () => mx.mul(a23, a32), type: ShapeError, op: "mul", parts: ["[2,3]", "[3,2]"] },
  { name: "method sub with a bad shape", call: () => a23.sub(mx.zeros([5])), type: ShapeError, op: "sub", parts: ["[2,3]", "[5]"] },
  { name: "where with a bad condition shape", call: () => mx.where(mx.zeros([2], "bool"), a23, 0), type: ShapeError, op: "where", parts: ["[2]", "[2,3]"] },
  { name: "where with bad branch shapes", call: () => mx.where(true, a23, a32), type: ShapeError, op: "where", parts: ["[2,3]", "[3,2]"] },
  { name: "maximum of unbroadcastable shapes", call: () => mx.maximum(a234, a23), type: ShapeError, op: "maximum", parts: ["[2,3,4]", "[2,3]"] },
  { name: "logicalAnd of unbroadcastable shapes", call: () => mx.logicalAnd(a23, a4), type: ShapeError, op: "logicalAnd", parts: ["[2,3]", "[4]"] },
  { name: "broadcastTo an incompatible shape", call: () => mx.broadcastTo(a23, [3, 3]), type: ShapeError, op: "broadcastTo", parts: ["[2,3]", "[3,3]"] },
  { name: "broadcastTo fewer dimensions", call: () => mx.broadcastTo(a23, [3]), type: ShapeError, op: "broadcastTo", parts: ["[2,3]", "[3]"] },
  { name: "broadcastTo a negative size", call: () => mx.broadcastTo(a23, [-2, 3]), type: TypeError, op: "broadcastTo", parts: ["[-2,3]"] },

  // matmul.
  { name: "matmul inner mismatch", call: () => mx.matmul(a23, a23), type: ShapeError, op: "matmul", parts: ["[2,3] @ [2,3]"] },
  { name: "matmul 1-D inner mismatch", call: () => mx.matmul(a4, a23), type: ShapeError, op: "matmul", parts: ["[4] @ [2,3]"] },
  { name: "matmul 0-d first operand", call: () => mx.matmul(mx.zeros([]), a23), type: ShapeError, op: "matmul", parts: ["[] @ [2,3]"] },
  { name: "matmul 0-d second operand", call: () => a23.matmul(mx.ones([])), type: ShapeError, op: "matmul", parts: ["[2,3] @ []"] },
  { name: "matmul batch mismatch", call: () => mx.matmul(mx.zeros([2, 2, 3]), mx.zeros([3, 3, 4])), type: ShapeError, op: "matmul", parts: ["[2,2,3] @ [3,3,4]"] },

  // reshape and flatten.
  { name: "reshape to a wrong size", call: () => mx.reshape(a23, [4]), type: RangeError, op: "reshape", parts: ["[2,3]", "[4]"] },
  { name: "reshape with two -1s", call: () => a23.reshape([-1, -1]), type: RangeError, op: "reshape", parts: ["[-1,-1]"] },
  { name: "reshape with an unfillable -1", call: () => mx.reshape(a23, [4, -1]), type: RangeError, op: "reshape", parts: ["[2,3]", "[4,-1]"] },
  { name: "reshape with a fractional size", call: () => mx.reshape(a23, [2.5, -1]), type: TypeError, op: "reshape", parts: ["[2.5,-1]"] },
  { name: "flatten axis out of range", call: () => mx.flatten(a23, 2), type: RangeError, op: "flatten", parts: ["axis 2", "[2,3]"] },
  { name: "flatten start after end", call: () => mx.flatten(a234, 2, 1), type: RangeError, op: "flatten", parts: ["2", "1", "[2,3,4]"] },

  // Axes of reductions and softmax.
  { name: "sum axis out of range", call: () => mx.sum(a23, 2), type: RangeError, op: "sum", parts: ["axis 2", "[2,3]"] },
  { name: "sum repeated axis", call: () => mx.sum(a23, [0, 0]), type: RangeError, op: "sum", parts: ["[0,0]", "[2,3]"] },
  { name: "sum non-integer axis", call: () => a23.sum(0.5), type: TypeError, op: "sum", parts: ["0.5"] },
  { name: "sum axis of a 0-d array", call: () => mx.sum(mx.zeros([]), 0), type: RangeError, op: "sum", parts: ["axis 0", "[]"] },
  { name: "mean negative axis out of range", call: () => mx.mean(a23, -3), type: RangeError, op: "mean", parts: ["axis -3", "[2,3]"] },
  { name: "max repeated axis (negative alias)", call: () => mx.max(a23, [1, -1]), type: RangeError, op: "max", parts: ["[1,-1]", "[2,3]"] },
  { name: "max over an empty axis", call: () => mx.max(empty03, 0), type: RangeError, op: "max", parts: ["empty", "[0,3]"] },
  { name: "min of an empty array", call: () => mx.min(mx.zeros([0])), type: RangeError, op: "min", parts: ["empty", "[0]"] },
  { name: "argmax axis out of range", call: () => mx.argmax(a23, 2), type: RangeError, op: "argmax", parts: ["axis 2", "[2,3]"] },
  { name: "argmax with a list of axes", call: () => mx.argmax(a23, [0] as unknown as number), type: TypeError, op: "argmax", parts: ["[0]"] },
  { name: "argmax of an empty array", call: () => mx.argmax(mx.zeros([0])), type: RangeError, op: "argmax", parts: ["empty", "[0]"] },
  { name: "argmin over an empty axis", call: () => mx.argmin(mx.zeros([2, 0]), 1), type: RangeError, op: "argmin", parts: ["empty", "[2,0]"] },
  { name: "softmax axis out of range", call: () => mx.softmax(a23, 5), type: RangeError, op: "softmax", parts: ["axis 5", "[2,3]"] },
  { name: "softmax repeated axis", call: () => mx.softmax(a23, [1, 1]), type: RangeError, op: "softmax", parts: ["[1,1]", "[2,3]"] },
  { name: "logsumexp axis out of range", call: () => mx.logsumexp(a23, 3), type: RangeError, op: "logsumexp", parts: ["axis 3", "[2,3]"] },
  { name: "std axis out of range", call: () => mx.std(a23, 2), type: RangeError, op: "std", parts: ["axis 2", "[2,3]"] },

  // Axes of shape ops.
  { name: "transpose repeated axes", call: () => mx.transpose(a23, [0, 0]), type: RangeError, op: "transpose", parts: ["[0,0]", "[2,3]"] },
  { name: "transpose too few axes", call: () => a234.transpose([0, 1]), type: RangeError, op: "transpose", parts: ["[0,1]", "[2,3,4]"] },
  { name: "transpose axis out of range", call: () => mx.transpose(a23, [0, 2]), type: RangeError, op: "transpose", parts: ["axis 2", "[2,3]"] },
  { name: "transpose non-integer axis", call: () => mx.transpose(a23, [0, 1.5]), type: TypeError, op: "transpose", parts: ["1.5"] },
  { name: "swapaxes axis out of range", call: () => mx.swapaxes(a23, 0, 2), type: RangeError, op: "swapaxes", parts: ["axis 2", "[2,3]"] },
  { name: "swapaxes string axis", call: () => mx.swapaxes(a23, "0" as unknown as number, 1), type: TypeError, op: "swapaxes", parts: ['"0"'] },
  { name: "moveaxis destination out of range", call: () => mx.moveaxis(a23, 0, -3), type: RangeError, op: "moveaxis", parts: ["axis -3", "[2,3]"] },
  { name: "expandDims axis out of range", call: () => mx.expandDims(a23, 3), type: RangeError, op: "expandDims", parts: ["axis 3", "[2,3]"] },
  { name: "expandDims repeated axis", call: () => mx.expandDims(a23, [0, 0]), type: RangeError, op: "expandDims", parts: ["[0,0]", "[2,3]"] },
  { name: "squeeze an axis of size 2", call: () => mx.squeeze(a23, 0), type: RangeError, op: "squeeze", parts: ["axis 0", "size 2", "[2,3]"] },
  { name: "squeeze axis out of range", call: () => mx.squeeze(a23, 4), type: RangeError, op: "squeeze", parts: ["axis 4", "[2,3]"] },
  { name: "flip axis out of range", call: () => mx.flip(a23, 2), type: RangeError, op: "flip", parts: ["axis 2", "[2,3]"] },

  // Joining and splitting.
  { name: "concatenate shape mismatch", call: () => mx.concatenate([a23, a32], 0), type: ShapeError, op: "concatenate", parts: ["[2,3]", "[3,2]"] },
  { name: "concatenate rank mismatch", call: () => mx.concatenate([a23, a4]), type: ShapeError, op: "concatenate", parts: ["[2,3]", "[4]"] },
  { name: "concatenate axis out of range", call: () => mx.concatenate([a23, a23], 2), type: RangeError, op: "concatenate", parts: ["axis 2", "[2,3]"] },
  { name: "concatenate 0-d arrays", call: () => mx.concatenate([mx.zeros([]), mx.zeros([])]), type: RangeError, op: "concatenate", parts: ["zero-dimensional"] },
  { name: "concatenate an empty list", call: () => mx.concatenate([]), type: TypeError, op: "concatenate", parts: ["non-empty"] },
  { name: "stack shape mismatch", call: () => mx.stack([a23, a32]), type: ShapeError, op: "stack", parts: ["[2,3]", "[3,2]"] },
  { name: "stack axis out of range", call: () => mx.stack([a23, a23], 3), type: RangeError, op: "stack", parts: ["axis 3", "[2,3]"] },
  { name: "stack of a JS array", call: () => mx.stack([a23, [1, 2] as unknown as mx.Array]), type: TypeError, op: "stack", parts: ["argument 2", "JS array"] },
  { name: "split into non-divisible sections", call: () => mx.split(a23, 4, 1), type: RangeError, op: "split", parts: ["size 3", "4", "[2,3]"] },
  { name: "split into zero sections", call: () => mx.split(a23, 0), type: RangeError, op: "split", parts: ["0", "[2,3]"] },
  { name: "split axis out of range", call: () => a23.split(2, 2), type: RangeError, op: "split", parts: ["axis 2", "[2,3]"] },
  { name: "split at fractional indices", call: () => mx.split(a23, [1.5], 1), type: TypeError, op: "split", parts: ["[1.5]", "[2,3]"] },

  // dtypes.
  { name: "bitwiseAnd on floats", call: () => mx.bitwiseAnd(a23, a23), type: DTypeError, op: "bitwiseAnd", parts: ["float32"] },
  { name: "bitwiseOr on float16", call: () => mx.bitwiseOr(mx.zeros([2], "float16"), 1), type: DTypeError, op: "bitwiseOr", parts: ["float16"] },
  { name: "bitwiseXor of int32 with float64", call: () => mx.bitwiseXor(i23, mx.zeros([3], "float64")), type: DTypeError, op: "bitwiseXor", parts: ["float64"] },
  { name: "leftShift on float", call: () => mx.leftShift(a23, 1), type: DTypeError, op: "leftShift", parts: ["float32"] },
  { name: "rightShift by a fractional number", call: () => i23.rightShift(1.5), type: DTypeError, op: "rightShift", parts: ["float32"] },
  { name: "neg of bool", call: () => mx.neg(mx.zeros([2], "bool")), type: DTypeError, op: "neg", parts: ["bool"] },
  { name: "astype to an unknown dtype", call: () => f64.astype("float128" as mx.DType), type: DTypeError, op: "astype", parts: ['"float128"'] },
  { name: "array with dtype float128", call: () => mx.array([1, 2], "float128" as mx.DType), type: DTypeError, op: "array", parts: ['"float128"'] },
  { name: "zeros with an unknown dtype", call: () => mx.zeros([2], "f32" as mx.DType), type: DTypeError, op: "zeros", parts: ['"f32"'] },

  // Operands that are not arrays.
  { name: "add of a string", call: () => mx.add("a" as unknown as number, 1), type: TypeError, op: "add", parts: ["argument 1", "string"] },
  { name: "add of a JS array", call: () => mx.add([1, 2] as unknown as mx.Array, 1), type: TypeError, op: "add", parts: ["argument 1", "JS array"] },
  { name: "add with a missing operand", call: () => (mx.add as (a: unknown) => unknown)(a23), type: TypeError, op: "add", parts: ["argument 2", "undefined"] },
  { name: "method mul by null", call: () => a23.mul(null as unknown as number), type: TypeError, op: "mul", parts: ["argument 2", "null"] },
  { name: "sum of a number", call: () => mx.sum(5 as unknown as mx.Array), type: TypeError, op: "sum", parts: ["argument 1", "number"] },
  { name: "matmul by a number", call: () => mx.matmul(a23, 2 as unknown as mx.Array), type: TypeError, op: "matmul", parts: ["argument 2", "number"] },
  { name: "reshape of a JS array", call: () => mx.reshape([1, 2] as unknown as mx.Array, [2]), type: TypeError, op: "reshape", parts: ["JS array"] },
  { name: "clip with a string bound", call: () => mx.clip(a23, "a" as unknown as number, 1), type: TypeError, op: "clip", parts: ["argument 2", "string"] },
  { name: "meshgrid of a number", call: () => mx.meshgrid(a4, 1 as unknown as mx.Array), type: TypeError, op: "meshgrid", parts: ["argument 2", "number"] },

  // Reading and indexing.
  { name: "item of a non-scalar", call: () => a23.item(), type: RangeError, op: "item", parts: ["size 1", "[2,3]"] },
  { name: "item of an empty array", call: () => mx.zeros([0]).item(), type: RangeError, op: "item", parts: ["[0]"] },
  { name: "index out of range", call: () => a23.index(2), type: RangeError, op: "index", parts: ["2", "axis 0", "size 2", "[2,3]"] },
  { name: "negative index out of range", call: () => a23.index(0, -4), type: RangeError, op: "index", parts: ["-4", "axis 1", "[2,3]"] },
  { name: "too many indices", call: () => a23.index(0, 0, 0), type: RangeError, op: "index", parts: ["too many", "[2,3]", "3"] },
  { name: "two ellipses", call: () => a234.index("...", 0, "..."), type: RangeError, op: "index", parts: ["ellipsis"] },
  { name: "fractional index", call: () => a23.index(0.5), type: TypeError, op: "index", parts: ["0.5"] },
  { name: "slice step 0", call: () => mx.slice(0, 1, 0), type: RangeError, op: "slice", parts: ["step", "zero"] },

  // Creation.
  { name: "ragged nested lists", call: () => mx.array([[1, 2], [3]]), type: RangeError, op: "array", parts: ["ragged", "[2,2]"] },
  { name: "list deeper than its siblings", call: () => mx.array([1, [2]] as unknown as number[]), type: TypeError, op: "array", parts: ["nested"] },
  { name: "array of strings", call: () => mx.array(["a"] as unknown as number[]), type: TypeError, op: "array", parts: ["string"] },
  { name: "array of a plain object", call: () => mx.array({} as unknown as number), type: TypeError, op: "array", parts: ["object"] },
  { name: "arange step 0", call: () => mx.arange(0, 5, 0), type: RangeError, op: "arange", parts: ["step", "zero"] },
  { name: "arange to infinity", call: () => mx.arange(0, Infinity), type: TypeError, op: "arange", parts: ["Infinity"] },
  { name: "linspace negative num", call: () => mx.linspace(0, 1, -1), type: RangeError, op: "linspace", parts: ["num", "-1"] },
  { name: "zeros of a negative shape", call: () => mx.zeros([2, -1]), type: TypeError, op: "zeros", parts: ["[2,-1]"] },
  { name: "full of a string", call: () => mx.full([2], "a" as unknown as number), type: TypeError, op: "full", parts: ["string"] },
  { name: "eye of a negative size", call: () => mx.eye(-1), type: RangeError, op: "eye", parts: ["-1"] },
  { name: "identity of a fractional size", call: () => mx.identity(2.5), type: RangeError, op: "identity", parts: ["2.5"] },
  { name: "tril of a 1-D array", call: () => mx.tril(a4), type: RangeError, op: "tril", parts: ["[4]"] },
  { name: "setMemoryLimit negative", call: () => mx.setMemoryLimit(-1), type: RangeError, op: "setMemoryLimit", parts: ["-1"] },
];

describe("wrong calls throw at the call, naming the op and what was wrong", () => {
  it("covers at least 40 wrong calls", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
  });

  it.each(CASES)("$name", ({ call, type, op, parts }) => {
    evalStats.reset();
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(err, "the call did not throw").toBeInstanceOf(Error);
    const e = err as Error;
    expect(e.constructor).toBe(type);
    expect(e instanceof TypeError || e instanceof RangeError).toBe(true);
    expect(e.message.startsWith(`${op}:`), `message should start with "${op}:": ${e.message}`).toBe(true);
    for (const p of parts) expect(e.message).toContain(p);
    // Thrown while recording: no program ran to discover the error.
    expect(evalStats.programs).toBe(0);
  });

  it("ShapeError and DTypeError are TypeErrors with their own names", () => {
    const shape = new mx.ShapeError("x");
    const dtype = new mx.DTypeError("x");
    expect(shape).toBeInstanceOf(TypeError);
    expect(dtype).toBeInstanceOf(TypeError);
    expect(shape.name).toBe("ShapeError");
    expect(dtype.name).toBe("DTypeError");
  });

  it("a failed call leaves its operands usable", () => {
    const x = mx.array([[1, 2, 3], [4, 5, 6]]);
    const y = x.add(1); // lazy
    expect(() => mx.add(y, mx.zeros([4]))).toThrow(mx.ShapeError);
    expect(() => mx.matmul(y, y)).toThrow(mx.ShapeError);
    expect(y.tolist()).toEqual([[2, 3, 4], [5, 6, 7]]);
    expect(x.tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
  });
});
