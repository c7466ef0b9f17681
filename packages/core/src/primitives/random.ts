/**
 * @file randomBits: the one random primitive. Threefry-2x32 words (native/src/cpu/random.cc) for
 * each key of a [K..., 2] uint32 key array; every distribution is a composite over it (ops/random.ts).
 */
import { defPrimitive, noGradient, zeroTangent, bind1, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";
import { batchToFront } from "./batching.js";

export interface RandomBitsParams {
  /** The shape of the words drawn per key. */
  shape: number[];
}

export const randomBits: PrimitiveDef<RandomBitsParams> = defPrimitive({
  name: "randomBits",
  opcode: opcode("randomBits"),
  // key [K..., 2] -> [K..., ...shape]; the native op reads the per-key shape off the output.
  abstractEval: ([key], { shape }) => [{ shape: [...key.shape.slice(0, -1), ...shape], dtype: "uint32" }],
  encode: () => ({}),
  jvp: zeroTangent,
  vjp: noGradient,
  // A batch of keys is one more leading key axis: each key draws its own words, as called alone.
  vmap: ([key], [d], params, size) => [[bind1(randomBits, [batchToFront(key, d, size)], params)], [0]],
});
