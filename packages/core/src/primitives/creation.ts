/** @file Primitives without inputs: constant fills and ranges. No transform ever reaches them. */
import type { DType } from "../dtype.js";
import { defPrimitive, noGradient, noInputs, zeroTangent, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";
import type { DynamicRef } from "../eval/tracing.js";

export interface FullParams {
  shape: number[];
  dtype: DType;
  /** A BigInt keeps 64-bit integer values exact. */
  value: number | bigint;
  /** Set on a compile trace's dynamic scalar: each call of the trace binds a new value. */
  dynamic?: DynamicRef;
}

/** A fill value as the program carries it: 64-bit integer fills as exact (saturated) integers. */
export function fillWord(value: number | bigint, dtype: DType): number | bigint {
  if (dtype !== "int64" && dtype !== "uint64") return Number(value);
  const [lo, hi] = dtype === "int64" ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
  let v: bigint;
  if (typeof value === "bigint") v = value;
  else if (Number.isNaN(value)) v = 0n;
  else if (!Number.isFinite(value)) v = value > 0 ? hi : lo;
  else v = BigInt(Math.trunc(value));
  return v < lo ? lo : v > hi ? hi : v;
}

export const full: PrimitiveDef<FullParams> = defPrimitive({
  name: "full",
  opcode: opcode("full"),
  abstractEval: (_x, { shape, dtype }) => [{ shape, dtype }],
  encode: ({ value, dtype }) => ({ scalars: [fillWord(value, dtype)] }),
  jvp: zeroTangent,
  vjp: noGradient,
  vmap: noInputs,
});

export interface ArangeParams {
  start: number;
  step: number;
  size: number;
  dtype: DType;
}
export const arange: PrimitiveDef<ArangeParams> = defPrimitive({
  name: "arange",
  opcode: opcode("arange"),
  abstractEval: (_x, { size, dtype }) => [{ shape: [size], dtype }],
  encode: ({ start, step }) => ({ scalars: [start, step] }),
  jvp: zeroTangent,
  vjp: noGradient,
  vmap: noInputs,
});

/**
 * Stands for a vmapped argument, or for an input of a compiled function (`compile: true`), while
 * tracing: it has a shape but no value.
 */
export const placeholder: PrimitiveDef<{ shape: number[]; dtype: DType; compile?: boolean }> = defPrimitive({
  name: "placeholder",
  opcode: null,
  abstractEval: (_x, { shape, dtype }) => [{ shape, dtype }],
  encode: () => ({}),
  jvp: zeroTangent,
  vjp: noGradient,
  vmap: noInputs,
});
