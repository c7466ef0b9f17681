/**
 * randomBits on the gpu (native/src/cuda/random.cu): the same Threefry-2x32 words as the cpu for
 * the same key, for single, batched and strided keys and odd word counts; a known-answer vector;
 * and the samplers built on it (split, uniform, randint, bernoulli, permutation exactly, normal
 * within an ulp or two, since its erfinv is the gpu's own).
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { HAS_GPU, bothDevices, expectSame, on } from "./util.js";

const { lax } = mx.internal;

describe.skipIf(!HAS_GPU)("gpu: randomBits", () => {
  it("gives Threefry-2x32's known answer for key (0, 0), counter 0", () => {
    const k = mx.array(new Uint32Array([0, 0]));
    const bits = on(mx.gpu, () => lax.randomBits(k, [2]));
    expect(Array.from(bits.toTypedArray() as Uint32Array)).toEqual([0x6b200159, 0x99ba4efe]);
  });
  it("equals the cpu's words for single, batched and strided keys", () => {
    const key = mx.random.key(1234);
    for (const shape of [[0], [1], [2], [7], [3, 5], [1000, 3]])
      expectSame(bothDevices(() => lax.randomBits(key, shape)), `key [2], shape [${shape}]`);
    const keys = mx.stack(mx.random.split(mx.random.key(7), 6)); // [6, 2]
    expectSame(bothDevices(() => lax.randomBits(keys, [6, 9])), "6 keys, 9 words each");
    const batched = mx.reshape(keys, [2, 3, 2]);
    expectSame(bothDevices(() => lax.randomBits(batched, [2, 3, 4, 5])), "[2, 3] keys");
    const strided = mx.transpose(mx.reshape(mx.arange(0, 12, 1, "uint32"), [2, 6])); // [6, 2], key words 6 apart
    expectSame(bothDevices(() => lax.randomBits(strided, [6, 33])), "transposed keys");
  });
  it("the samplers give the cpu's numbers", () => {
    const key = mx.random.key(99);
    expectSame(bothDevices(() => mx.random.split(key, 5)), "split");
    expectSame(bothDevices(() => mx.random.uniform(-2, 3, [1001], { key })), "uniform float32");
    expectSame(bothDevices(() => mx.random.uniform(0, 1, [257], { key, dtype: "float64" })), "uniform float64");
    expectSame(bothDevices(() => mx.random.randint(-50, 50, [513], { key })), "randint");
    expectSame(bothDevices(() => mx.random.bernoulli(0.3, [300], { key })), "bernoulli");
    expectSame(bothDevices(() => mx.random.permutation(200, { key })), "permutation");
    for (const [c, g] of bothDevices(() => mx.random.normal([2000], { key }))) {
      const cv = c.toTypedArray() as Float32Array, gv = g.toTypedArray() as Float32Array;
      for (let i = 0; i < cv.length; i++)
        if (!(Math.abs(cv[i] - gv[i]) <= 4 * 2 ** -23 * Math.abs(cv[i]) + 1e-7)) expect.fail(`normal ${i}: ${gv[i]} vs ${cv[i]}`);
    }
  });
});
