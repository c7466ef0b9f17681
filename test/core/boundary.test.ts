/**
 * The native boundary is bounded: shapes the program format cannot carry are RangeErrors at the
 * call that records them (naming the user's op), sizes past 2^31 elements are counted in 64 bits,
 * and a program built by hand through the internal binding can fail but never reads or writes
 * outside a buffer (every instruction is checked against its operands before a kernel runs).
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

const { native, buildProgram, PROGRAM_VERSION, P } = mx.internal;

describe("sizes past int32", () => {
  it("shapes too large for the format are RangeErrors at the call, naming the op", () => {
    const cases: [string, () => unknown, RegExp][] = [
      ["broadcastTo", () => mx.broadcastTo(mx.ones([2 ** 22]), [2 ** 21, 2 ** 21, 2 ** 22]), /^broadcastTo: result shape/],
      ["broadcastTo", () => mx.broadcastTo(mx.array(1), [2 ** 31]), /^broadcastTo: .*axes hold at most 2\^31 - 1/],
      ["ones", () => mx.ones([2 ** 32 + 1]), /^ones: /],
      ["pad", () => mx.pad(mx.ones([2]), [[2 ** 32 - 1, 0]]), /^pad: /],
      ["tile", () => mx.tile(mx.ones([2 ** 20]), [2 ** 20, 2 ** 20]), /^tile: /],
      ["zeros", () => mx.zeros([2 ** 30, 2 ** 30, 2 ** 30]), /^zeros: .*2\^53/],
    ];
    for (const [op, f, message] of cases) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err, op).toBeInstanceOf(RangeError);
      expect((err as Error).message, op).toMatch(message);
    }
  });

  it("a reduction over more than 2^31 elements counts them in 64 bits", () => {
    // a broadcast view: 2^31 + 2^16 elements without a byte of storage behind them
    const n = mx.broadcastTo(mx.array(1, "float32"), [65537, 32768]).sum();
    expect(n.item()).toBe(65537 * 32768);
  }, 120_000);
});

describe("hand-built programs fail cleanly", () => {
  const header = (nSlots: number, nInputs: number, nScalars: number, nInstr: number) => [PROGRAM_VERSION, nSlots, nInputs, nScalars, nInstr];
  const run = (body: number[], inputs: number[] = [], scalars: number[] = []) =>
    native.run(Int32Array.from(body), Int32Array.from(inputs), Float64Array.from(scalars));
  const f32 = 11; // DTYPE_CODES.float32
  const op = (name: string) => P[name as "neg"]?.opcode ?? native.opTable().indexOf(name);

  it("operands whose shapes disagree with the output are rejected before any kernel runs", () => {
    // The programs below run on device 0 (the cpu), so their inputs are made there whatever the default device.
    const x = mx.array([1, 2, 3, 4], null, { device: mx.cpu });
    mx.eval(x);
    // neg of a [4] input declared as producing [1000]
    expect(() => run([...header(2, 1, 0, 1), op("neg"), 0, 1, 0, 1, 1, f32, 1, 1000, 0, 0, 0, 1, 1], [x.handle])).toThrow(
      /operand shape differs/,
    );
    // a slice reaching past its input
    expect(() => run([...header(2, 1, 0, 1), op("slice"), 0, 1, 0, 1, 1, f32, 1, 3, 2, 2, 1, 0, 0, 1, 1], [x.handle])).toThrow(
      /slice out of bounds/,
    );
    // a transpose whose permutation repeats an axis
    const m = mx.ones([2, 3], "float32", { device: mx.cpu });
    mx.eval(m);
    expect(() => run([...header(2, 1, 0, 1), op("transpose"), 0, 1, 0, 1, 1, f32, 2, 3, 3, 2, 1, 1, 0, 0, 1, 1], [m.handle])).toThrow(
      /bad permutation/,
    );
    // matmul with mismatched inner dimensions
    expect(() => run([...header(3, 2, 0, 1), op("matmul"), 0, 2, 0, 1, 1, 2, f32, 2, 2, 2, 0, 0, 0, 1, 2], [m.handle, m.handle])).toThrow(
      /matmul shapes do not match/,
    );
    // a reduction over an axis the input lacks
    expect(() => run([...header(2, 1, 0, 1), op("reduceSum"), 0, 1, 0, 1, 1, f32, 0, 1, 5, 0, 0, 1, 1], [x.handle])).toThrow(
      /reduction axes/,
    );
    expect(x.tolist()).toEqual([1, 2, 3, 4]); // the inputs are untouched and usable
  });

  it("dtypes, devices, slots and scalars are validated", () => {
    const y = mx.array([1, 2]).mul(2);
    const p = buildProgram([y], "test")!;
    const mutate = (i: number, v: number) => {
      const b = p.body.slice();
      b[i] = v;
      return () => native.run(b, p.inputs, p.scalars);
    };
    expect(mutate(0, 7)).toThrow(/version mismatch/);
    expect(mutate(1, -1)).toThrow(/malformed program/);
    expect(mutate(5, 100000)).toThrow(/unknown opcode/);
    expect(mutate(6, -3)).toThrow(/unknown device/);
    expect(() => native.run(p.body, p.inputs, new Float64Array(0))).toThrow(/scalars/);
    expect(() => native.run(p.body, Int32Array.from([987654]), p.scalars)).toThrow(/not live/);
    expect(y.tolist()).toEqual([2, 4]);
  });

  it("data copied in is checked against its shape and dtype", () => {
    expect(() => native.fromData(new Float32Array(3), 11, [4])).toThrow(/byte length/);
    expect(() => native.fromData(new Float32Array(3), 99, [3])).toThrow(/dtype/);
    expect(() => native.fromData(new Float32Array(3), 11, [-3])).toThrow(/dimension/);
    expect(() => native.fromData(new Float32Array(0), 11, [2 ** 40, 0])).toThrow(/dimension/);
  });
});
