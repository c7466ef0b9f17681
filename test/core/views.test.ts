/**
 * @file Views: transpose, broadcastTo, slicing (negative steps too), expandDims and contiguous
 * reshapes share their input's native storage (mx.internal.native.describe), allocate nothing,
 * and read back the right values; a reshape of a non-contiguous array copies.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

const { native } = mx.internal;

type Nested = number | Nested[];

/** Nested lists of `shape` whose element at idx is f(idx): the reference values. */
function build(shape: number[], f: (idx: number[]) => number, prefix: number[] = []): Nested {
  if (prefix.length === shape.length) return f(prefix);
  return Array.from({ length: shape[prefix.length] }, (_, i) => build(shape, f, [...prefix, i]));
}

/** Reads a strided view out of the base's row-major data, as the descriptor says it lies. */
function readStrided(base: number[], d: { shape: number[]; strides: number[]; offset: number }): Nested {
  return build(d.shape, (idx) => base[d.offset + idx.reduce((o, i, k) => o + i * d.strides[k], 0)]);
}

const describeOf = (a: mx.Array) => {
  mx.eval(a);
  return native.describe(a.handle);
};

// The base: 3 x 4 holding 0..11, evaluated, row-major.
const X = (): { x: mx.Array; data: number[] } => {
  const data = Array.from({ length: 12 }, (_, i) => i);
  const x = mx.array(new Float32Array(data)).reshape([3, 4]);
  mx.eval(x);
  return { x, data };
};
const x2 = (i: number, j: number) => 4 * i + j; // X[i][j]

interface ViewCase {
  name: string;
  make: (x: mx.Array) => mx.Array;
  shape: number[];
  /** The element at idx, in terms of the base X[i][j] = 4i + j. */
  at: (idx: number[]) => number;
  strides?: number[];
  offset?: number;
}

const VIEWS: ViewCase[] = [
  { name: "transpose (x.T)", make: (x) => x.T, shape: [4, 3], at: ([i, j]) => x2(j, i), strides: [1, 4], offset: 0 },
  { name: "swapaxes", make: (x) => mx.swapaxes(x, 0, 1), shape: [4, 3], at: ([i, j]) => x2(j, i), strides: [1, 4], offset: 0 },
  {
    name: "broadcastTo a row",
    make: (x) => mx.broadcastTo(x.index(1), [2, 3, 4]),
    shape: [2, 3, 4], at: ([, , k]) => x2(1, k), strides: [0, 0, 1], offset: 4,
  },
  {
    name: "broadcastTo a column",
    make: (x) => mx.broadcastTo(x.index(mx.slice(), mx.slice(2, 3)), [3, 5]),
    shape: [3, 5], at: ([i]) => x2(i, 2), strides: [4, 0], offset: 2,
  },
  {
    name: "slice with a step",
    make: (x) => x.index(mx.slice(0, 3, 2), mx.slice(1, null, 2)),
    shape: [2, 2], at: ([i, j]) => x2(2 * i, 1 + 2 * j), strides: [8, 2], offset: 1,
  },
  {
    name: "slice with a negative step",
    make: (x) => x.index(mx.slice(null, null, -1), mx.slice(1, null, 2)),
    shape: [3, 2], at: ([i, j]) => x2(2 - i, 1 + 2 * j), strides: [-4, 2], offset: 9,
  },
  {
    name: "slice with step -2 from the end",
    make: (x) => x.index(mx.slice(null, null, -2), mx.slice(-1, null, -2)),
    shape: [2, 2], at: ([i, j]) => x2(2 - 2 * i, 3 - 2 * j), strides: [-8, -2], offset: 11,
  },
  { name: "flip", make: (x) => mx.flip(x), shape: [3, 4], at: ([i, j]) => x2(2 - i, 3 - j), strides: [-4, -1], offset: 11 },
  { name: "an integer index (a row)", make: (x) => x.index(2), shape: [4], at: ([j]) => x2(2, j), strides: [1], offset: 8 },
  { name: "expandDims", make: (x) => mx.expandDims(x, 1), shape: [3, 1, 4], at: ([i, , j]) => x2(i, j) },
  { name: "index with null (new axis)", make: (x) => x.index(null, "..."), shape: [1, 3, 4], at: ([, i, j]) => x2(i, j) },
  { name: "squeeze", make: (x) => mx.squeeze(mx.expandDims(x, 0)), shape: [3, 4], at: ([i, j]) => x2(i, j), strides: [4, 1], offset: 0 },
  { name: "contiguous reshape", make: (x) => x.reshape([2, 6]), shape: [2, 6], at: ([i, j]) => 6 * i + j, strides: [6, 1], offset: 0 },
  { name: "flatten", make: (x) => mx.flatten(x), shape: [12], at: ([i]) => i, strides: [1], offset: 0 },
  {
    name: "reshape of a contiguous row slice",
    make: (x) => x.index(mx.slice(1, 3)).reshape([2, 2, 2]),
    shape: [2, 2, 2], at: ([a, b, c]) => 4 + 4 * a + 2 * b + c, strides: [4, 2, 1], offset: 4,
  },
  {
    name: "transpose of a slice (a view of a view)",
    make: (x) => x.index(mx.slice(null, null, -1), mx.slice(0, 2)).T,
    shape: [2, 3], at: ([i, j]) => x2(2 - j, i), strides: [1, -4], offset: 8,
  },
];

describe("views share their input's storage", () => {
  it.each(VIEWS)("$name", ({ make, shape, at, strides, offset }) => {
    const { x, data } = X();
    const base = describeOf(x);
    globalThis.gc!(); // what earlier cases dropped is swept now, not between the two readings
    const before = mx.getActiveMemory();
    const y = make(x);
    const d = describeOf(y);
    expect(mx.getActiveMemory()).toBe(before); // nothing was allocated
    expect(d.storage).toBe(base.storage);
    expect(d.shape).toEqual(shape);
    if (strides) expect(d.strides).toEqual(strides);
    if (offset !== undefined) expect(d.offset).toBe(offset);
    const expected = build(shape, at);
    expect(readStrided(data, d)).toEqual(expected); // the descriptor says where the values lie
    expect(y.tolist()).toEqual(expected); // and reading the view gives them
  });

  it("a view keeps its storage alive after its base is disposed", () => {
    const { x } = X();
    const y = x.T;
    mx.eval(y);
    x.dispose();
    expect(native.describe(y.handle).storage).toBeGreaterThan(0);
    expect(y.tolist()).toEqual(build([4, 3], ([i, j]) => x2(j, i)));
  });

  it("views compose with computation on them", () => {
    const { x } = X();
    const y = mx.add(x.T, x.index(mx.slice(null, null, -1)).index(mx.slice(), mx.slice(0, 1)).T.reshape([1, 3]));
    // x.T[i][j] + x[2 - j][0]
    expect(y.tolist()).toEqual(build([4, 3], ([i, j]) => x2(j, i) + x2(2 - j, 0)));
  });
});

describe("reshapes that cannot be views copy", () => {
  const COPIES: ViewCase[] = [
    { name: "reshape of a transpose", make: (x) => x.T.reshape([12]), shape: [12], at: ([k]) => x2(k % 3, Math.floor(k / 3)) },
    { name: "flatten of a transpose", make: (x) => mx.flatten(x.T), shape: [12], at: ([k]) => x2(k % 3, Math.floor(k / 3)) },
    {
      name: "reshape of a column slice",
      make: (x) => x.index(mx.slice(), mx.slice(0, 2)).reshape([6]),
      shape: [6], at: ([k]) => x2(Math.floor(k / 2), k % 2),
    },
    {
      name: "reshape of a reversed array",
      make: (x) => mx.flip(x, 0).reshape([2, 6]),
      shape: [2, 6], at: ([i, j]) => x2(2 - Math.floor((6 * i + j) / 4), (6 * i + j) % 4),
    },
  ];
  it.each(COPIES)("$name", ({ make, shape, at }) => {
    const { x, data } = X();
    const base = describeOf(x);
    const y = make(x);
    const d = describeOf(y);
    expect(d.storage).not.toBe(base.storage);
    expect(d.shape).toEqual(shape);
    // A fresh row-major buffer.
    expect(d.offset).toBe(0);
    expect(d.strides).toEqual(shape.map((_, i) => shape.slice(i + 1).reduce((n, s) => n * s, 1)));
    expect(y.tolist()).toEqual(build(shape, at));
    expect(readStrided(data, native.describe(x.handle))).toEqual(build([3, 4], ([i, j]) => x2(i, j))); // base untouched
  });
});

describe("size-1 axes and basic indexing of non-contiguous arrays (DESIGN: views)", () => {
  // Adding or removing a size-1 axis never needs a copy, whatever the strides (NumPy, MLX).
  it.each([
    { name: "expandDims of a transpose", make: (x: mx.Array) => mx.expandDims(x.T, 1), shape: [4, 1, 3], at: ([i, , j]: number[]) => x2(j, i) },
    { name: "squeeze of a transposed column", make: (x: mx.Array) => mx.squeeze(x.index(mx.slice(), mx.slice(1, 2)).T), shape: [3], at: ([i]: number[]) => x2(i, 1) },
    { name: "an integer index of a column", make: (x: mx.Array) => x.index(mx.slice(), 1), shape: [3], at: ([i]: number[]) => x2(i, 1) },
    { name: "an integer index and a negative step", make: (x: mx.Array) => x.index(1, mx.slice(-1, null, -2)), shape: [2], at: ([j]: number[]) => x2(1, 3 - 2 * j) },
  ])("$name", ({ make, shape, at }) => {
    const { x } = X();
    const base = describeOf(x);
    const y = make(x);
    const d = describeOf(y);
    expect(y.tolist()).toEqual(build(shape, at));
    expect(d.storage, `copied into a new buffer (strides [${d.strides}]) instead of a view`).toBe(base.storage);
  });
});
