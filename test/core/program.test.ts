/**
 * The program format (packages/core/src/eval/program.ts, native/src/program.h): multi-output
 * nodes, exact 64-bit integer constants, a body replayed with new bindings, the version word,
 * validation of malformed bodies, and the graph printer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";

const { buildProgram, native, printGraph, evalStats, PROGRAM_VERSION } = mx.internal;

/** Floored division and remainder in float64, NumPy's rule. */
const floorDiv = (a: number, b: number) => Math.floor(a / b);
const floorMod = (a: number, b: number) => {
  const m = a - Math.floor(a / b) * b;
  return m === 0 ? (b < 0 ? -0 : 0) : m; // a zero remainder takes the divisor's sign
};

describe("multi-output nodes", () => {
  it("divmod is one node with two outputs, computed by one instruction", () => {
    const a = mx.array([7, -7, 7, -7, 0, 13], "int32");
    const b = mx.array([2, 2, -2, -2, 3, 5], "int32");
    const [q, r] = mx.divmod(a, b);
    expect(q.node).toBe(r.node);
    evalStats.reset();
    mx.eval(q, r);
    expect(evalStats.instructions).toBe(1);
    const av = [7, -7, 7, -7, 0, 13], bv = [2, 2, -2, -2, 3, 5];
    expect(q.tolist()).toEqual(av.map((v, i) => floorDiv(v, bv[i])));
    expect(r.tolist()).toEqual(av.map((v, i) => floorMod(v, bv[i])));
  });

  it("float divmod matches float64 floored division, on broadcast and transposed operands", () => {
    const a = mx.array([[5.5, -5.5, 3], [1.25, -0.75, 9]], "float64");
    const b = mx.array([2, -1.5], "float64");
    const [q, r] = mx.divmod(a.T, b);
    const A = [[5.5, -5.5, 3], [1.25, -0.75, 9]], B = [2, -1.5];
    expect(q.tolist()).toEqual([0, 1, 2].map((i) => [0, 1].map((j) => floorDiv(A[j][i], B[j]))));
    expect(r.tolist()).toEqual([0, 1, 2].map((i) => [0, 1].map((j) => floorMod(A[j][i], B[j]))));
  });

  it("reading one output leaves the sibling usable, and gradients flow through the remainder", () => {
    const a = mx.array([5.5, 7.25], "float64");
    const [, r] = mx.divmod(a, 2);
    expect(r.tolist()).toEqual([1.5, 1.25]);
    const g = grad((v: mx.Array) => mx.sum(mx.divmod(v, 2)[1]))(a);
    expect(g.tolist()).toEqual([1, 1]);
    const gb = grad((d: mx.Array) => mx.sum(mx.divmod(a, d)[1]))(mx.array(2, "float64"));
    expect(gb.item()).toBe(-(floorDiv(5.5, 2) + floorDiv(7.25, 2))); // d/db (a - q b) = -q
  });
});

describe("exact 64-bit integer constants", () => {
  it("an int64 scalar beyond 2^53 keeps its last bit", () => {
    const big = 2n ** 60n + 1n;
    expect(mx.array([0n]).add(big).item()).toBe(big);
    expect(mx.array([5n, -5n]).sub(2n ** 62n + 7n).tolist()).toEqual([5n - 2n ** 62n - 7n, -5n - 2n ** 62n - 7n]);
    expect(mx.full([2], -(2n ** 63n), "int64").tolist()).toEqual([-(2n ** 63n), -(2n ** 63n)]);
  });

  it("uint64 constants up to 2^64 - 1 are exact", () => {
    const top = 2n ** 64n - 1n;
    expect(mx.full([1], top, "uint64").item()).toBe(top);
    expect(mx.array([1n], "uint64").add(2n ** 63n + 5n).item()).toBe(2n ** 63n + 6n);
  });
});

describe("a body replayed with new bindings", () => {
  it("decodes once, then runs with other inputs and scalars", () => {
    const a1 = mx.array([0.5, 1, 2]), b1 = mx.array([3, 4, 5]);
    const y = a1.exp().mul(b1).add(1);
    const p = buildProgram([y], "test")!;
    expect(p.inputs.length).toBe(2);
    const id = native.keepBody(p.body);
    try {
      const run = (inputs: mx.Array[], scalars: Float64Array) => {
        const [h] = native.runBody(id, Int32Array.from(inputs, (x) => x.handle), scalars);
        const out = new Float32Array(3);
        native.read(h, out);
        native.free(h);
        return [...out];
      };
      const order = p.nodes.flatMap((n) => n.inputs).filter((x) => x.handle);
      expect(new Set(order).size).toBe(2);
      const slots = [a1, b1].map((x) => [...p.inputs].indexOf(x.handle));
      const bind = (a: mx.Array, b: mx.Array) => (slots[0] === 0 ? [a, b] : [b, a]);
      const expected = (a: mx.Array, b: mx.Array, c: number) => a.exp().mul(b).add(c).tolist();

      expect(run(bind(a1, b1), p.scalars)).toEqual(expected(a1, b1, 1));
      const a2 = mx.array([-1, 0, 0.25]), b2 = mx.array([2, -2, 8]);
      expect(run(bind(a2, b2), p.scalars)).toEqual(expected(a2, b2, 1));
      const five = Float64Array.from(p.scalars, () => 5); // the only scalar is the added constant
      expect(p.scalars.length).toBe(1);
      expect(run(bind(a2, b2), five)).toEqual(expected(a2, b2, 5));
      expect(native.memoryStats().bodies).toBeGreaterThanOrEqual(1);
    } finally {
      native.releaseBody(id);
    }
    expect(() => native.runBody(id, new Int32Array(2), new Float64Array(1))).toThrow(/not live/);
  });

  it("a run with the wrong number of bindings is an Error", () => {
    const y = mx.array([1, 2]).add(mx.array([3, 4]));
    const p = buildProgram([y], "test")!;
    expect(() => native.run(p.body, p.inputs.slice(1), p.scalars)).toThrow(/takes 2 inputs; got 1/);
  });
});

describe("a one-node program (the tiny evaluation's encoder)", () => {
  /** native/src/dtype.h's codes. */
  const DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"];
  /** The body of a program of `node` alone, written from the format in native/src/program.h. */
  function referenceBody(node: mx.Node, inputs: mx.Array[], outputs: mx.Array[]): number[] {
    const enc = node.prim.encode(node.params, node.inputs);
    const ints = enc.ints ?? [], scalars = enc.scalars ?? [], ys = node.outputs, nIn = inputs.length;
    const words = [PROGRAM_VERSION, nIn + ys.length, nIn, scalars.length, 1];
    words.push(node.prim.opcode!, 0, node.inputs.length, ...node.inputs.map((x) => inputs.indexOf(x)), ys.length);
    ys.forEach((y, k) => words.push(nIn + k, DTYPES.indexOf(y.dtype), y.ndim, ...y.shape));
    words.push(ints.length, ...ints, scalars.length, 0, outputs.length, ...outputs.map((o) => nIn + ys.indexOf(o)));
    return words;
  }
  // The reference encoder writes device 0: the block runs on the cpu whatever the default device.
  let before: mx.Device;
  let x: mx.Array, w: mx.Array, i: mx.Array, j: mx.Array;
  beforeAll(() => {
    before = mx.defaultDevice();
    mx.setDefaultDevice(mx.cpu);
    x = mx.array([[1, 2, 3], [4, 5, 6]]);
    w = mx.array([[0.5, -1, 2], [3, 0, -4]]);
    i = mx.array([7, -7, 9], "int32");
    j = mx.array([2, 3, -4], "int32");
    mx.eval(x, w, i, j);
  });
  afterAll(() => mx.setDefaultDevice(before));
  // [what, the pending root, its node's computed inputs (distinct, first use first), the outputs]
  const cases: [string, () => { root: mx.Array; inputs: mx.Array[]; outputs: (root: mx.Array) => mx.Array[] }][] = [
    ["two inputs", () => ({ root: mx.add(x, w), inputs: [x, w], outputs: (r) => [r] })],
    ["one input read twice", () => ({ root: mx.mul(w, w), inputs: [w], outputs: (r) => [r] })],
    ["integer parameters", () => ({ root: mx.transpose(x), inputs: [x], outputs: (r) => [r] })],
    ["reduction axes", () => ({ root: mx.sum(x, 1), inputs: [x], outputs: (r) => [r] })],
    ["no inputs, float scalars", () => ({ root: mx.arange(0, 5, 0.5), inputs: [], outputs: (r) => [r] })],
    ["no inputs, a 64-bit integer scalar", () => ({ root: mx.full([3], 2n ** 60n + 1n, "int64"), inputs: [], outputs: (r) => [r] })],
    ["two outputs, one read", () => ({ root: mx.divmod(i, j)[0], inputs: [i, j], outputs: (r) => [r] })],
    ["two outputs, the other kept for a pending reader", () => {
      const [q, r] = mx.divmod(j, i);
      r.add(1); // a recorded reader outside the program keeps r
      return { root: q, inputs: [j, i], outputs: () => [q, r] };
    }],
  ];
  it.each(cases)("%s: the words of the format, its bindings, and the value", (_what, make) => {
    const { root, inputs, outputs } = make();
    const node = root.node!;
    for (const a of node.inputs) expect(a.handle).not.toBe(0);
    const p = buildProgram([root], "test", true) as mx.internal.Program;
    expect([...p.body]).toEqual(referenceBody(node, inputs, outputs(root)));
    expect([...p.inputs]).toEqual(inputs.map((a) => a.handle));
    expect(p.inputArrays).toEqual(inputs);
    expect(p.outputs).toEqual(outputs(root));
    expect(p.donated.length).toBe(0);
    const scalars = node.prim.encode(node.params, node.inputs).scalars ?? [];
    expect(p.scalars.length).toBe(scalars.length);
    const bits = new BigInt64Array(p.scalars.buffer, p.scalars.byteOffset, p.scalars.length);
    scalars.forEach((v, k) => (typeof v === "bigint" ? expect(bits[k]).toBe(v) : expect(p.scalars[k]).toBe(v)));
    // and evaluating it gives what the op means
    const want = {
      "two inputs": [[1.5, 1, 5], [7, 5, 2]], "one input read twice": [[0.25, 1, 4], [9, 0, 16]],
      "integer parameters": [[1, 4], [2, 5], [3, 6]], "reduction axes": [6, 15],
      "no inputs, float scalars": [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5],
      "no inputs, a 64-bit integer scalar": [2n ** 60n + 1n, 2n ** 60n + 1n, 2n ** 60n + 1n],
      "two outputs, one read": [3, -3, -3], "two outputs, the other kept for a pending reader": [0, -1, -1],
    }[_what];
    expect(root.tolist()).toEqual(want);
  });

  it("the addon's cache of decoded bodies tells apart bodies of one length that differ in a word", () => {
    // add, sub and mul of the same operands: bodies of equal length, differing in the opcode only
    const ops = [mx.add, mx.sub, mx.mul, mx.add, mx.add, mx.mul, mx.sub];
    const want = new Map<unknown, number[]>([[mx.add, [9, -4, 5]], [mx.sub, [5, -10, 13]], [mx.mul, [14, -21, -36]]]);
    for (const op of ops) {
      const y = op(i, j);
      expect(y.tolist()).toEqual(want.get(op));
      y.dispose();
    }
  });

  it("a run keeps no buffer once it returns, not even of an input no instruction reads", () => {
    const n = 1 << 18; // 1 MiB each
    globalThis.gc!(); // what earlier tests dropped is swept now, not between the two readings
    const base = native.memoryStats().active;
    const unread = mx.array(new Float32Array(n).fill(1)), read = mx.array(new Float32Array(n).fill(2));
    mx.eval(unread, read);
    const neg = mx.internal.P.neg.def.opcode!;
    // slot 0: an input nothing reads; slot 1 -> neg -> slot 2, the output
    const body = Int32Array.from([PROGRAM_VERSION, 3, 2, 0, 1, neg, 0, 1, 1, 1, 2, 11, 1, n, 0, 0, 0, 1, 2]);
    const out = native.run(body, Int32Array.from([unread.handle, read.handle]), undefined); // undefined: no scalars
    const got = new Float32Array(n);
    native.read(out[0], got);
    expect(got.every((v) => v === -2)).toBe(true);
    native.free(out[0]);
    unread.dispose();
    read.dispose();
    expect(native.memoryStats().active).toBe(base);
    // a body that takes scalars needs them
    const fill = mx.full([2], 3);
    const p = buildProgram([fill], "test")!;
    expect(p.scalars.length).toBe(1);
    expect(() => native.run(p.body, p.inputs, undefined)).toThrow(/takes 1 scalars; got 0/);
  });
});

describe("the body is validated before anything runs", () => {
  const y = () => mx.array([1, 2]).mul(2);
  it("carries a version word", () => {
    const p = buildProgram([y()], "test")!;
    expect(p.body[0]).toBe(PROGRAM_VERSION);
    const body = p.body.slice();
    body[0] = PROGRAM_VERSION + 1;
    expect(() => native.run(body, p.inputs, p.scalars)).toThrow(/version mismatch/);
  });
  it("rejects truncated bodies, unknown devices and reads of unwritten slots", () => {
    const p = buildProgram([y()], "test")!;
    expect(() => native.run(p.body.slice(0, -2), p.inputs, p.scalars)).toThrow(/malformed program/);
    // header: version nSlots nInputs nScalars nInstr; then the first instruction: opcode device nIn ...
    const badDevice = p.body.slice();
    badDevice[6] = 99;
    expect(() => native.run(badDevice, p.inputs, p.scalars)).toThrow(/unknown device 99/);
    const unwritten = Int32Array.from([PROGRAM_VERSION, 2, 0, 0, 1, mx.internal.P.neg.opcode!, 0, 1, 1, 1, 0, 11, 0, 0, 0, 0, 1, 0]);
    expect(() => native.run(unwritten, new Int32Array(0), new Float64Array(0))).toThrow(/reads slot 1 before it is written/);
  });
});

describe("printGraph", () => {
  it("prints the pending graph in execution order", () => {
    const x = mx.array([[1, 2, 3], [4, 5, 6]]);
    const b = mx.array([1, 0, -1]);
    const y = mx.sum(mx.exp(mx.add(x, b)), 1);
    expect(printGraph(y)).toMatchInlineSnapshot(`
      "a:f32[2,3] b:f32[3] = inputs
      c:f32[2,3] = broadcastTo{shape:[2,3]}(b)
      d:f32[2,3] = add(a, c)
      e:f32[2,3] = exp(d)
      f:f32[2] = reduceSum{axes:[1]}(e)
      return f"
    `);
    const [q, r] = mx.divmod(mx.array([7n, 9n]), 4n);
    expect(printGraph(q, r)).toMatchInlineSnapshot(`
      "a:i64[2] = inputs
      b:i64[2] = full{shape:[2], dtype:int64, value:4n}()
      c:i64[2] d:i64[2] = divmod(a, b)
      return c, d"
    `);
  });
});
