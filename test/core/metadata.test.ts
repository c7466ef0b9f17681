/**
 * Array metadata cannot be changed from outside: `shape` is a frozen array the array does not
 * share, `dtype`, `device`, `handle` and `size` cannot be reassigned, and the constructor refuses
 * to wrap raw handles.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

describe("immutable array metadata", () => {
  it("shape is a frozen copy, not shared with the input or other arrays", () => {
    const dims = [2, 3];
    const x = mx.zeros(dims);
    dims[0] = 100;
    expect(x.shape).toEqual([2, 3]);
    expect(Object.isFrozen(x.shape)).toBe(true);
    expect(() => {
      (x.shape as number[])[0] = 2 ** 26;
    }).toThrow(TypeError);
    expect(x.shape).toEqual([2, 3]);
    const y = x.add(1);
    expect(y.shape).not.toBe(x.shape);
    expect(y.tolist()).toEqual([[1, 1, 1], [1, 1, 1]]);
  });

  it("dtype, device, handle, size and shape cannot be reassigned", () => {
    const x = mx.array([1, 2, 3]);
    for (const key of ["dtype", "device", "handle", "size", "shape", "ndim", "nbytes"]) {
      expect(() => {
        (x as unknown as Record<string, unknown>)[key] = key === "dtype" ? "float64" : 7;
      }, key).toThrow(TypeError);
    }
    expect(x.dtype).toBe("float32");
    expect(x.tolist()).toEqual([1, 2, 3]);
  });

  it("the constructor does not wrap another array's handle", () => {
    const x = mx.array([1, 2, 3]);
    const Ctor = mx.Array as unknown as new (...args: unknown[]) => mx.Array;
    expect(() => new Ctor([3], "float32", null, x.handle)).toThrow(/created by ops/);
    expect(() => new Ctor(Symbol("tessera.createArray"), [3], "float32", null, x.handle)).toThrow(TypeError);
    expect(x.tolist()).toEqual([1, 2, 3]);
    expect(mx.isArray(x)).toBe(true);
  });
});
