/** @file Primitives without inputs: constant fills and ranges. No transform ever reaches them. */
import type { DType } from "../dtype.js";
import { defPrimitive, noGradient, noInputs, zeroTangent, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";

export interface FullParams {
  shape: number[];
  dtype: DType;
  value: number;
}
export const full: PrimitiveDef<FullParams> = defPrimitive({
  name: "full",
  opcode: opcode("full"),
  abstractEval: (_x, { shape, dtype }) => [{ shape, dtype }],
  encode: ({ value }) => ({ scalars: [value] }),
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

/** Stands for a vmapped argument while tracing: it has a shape but no value. */
export const placeholder: PrimitiveDef<{ shape: number[]; dtype: DType }> = defPrimitive({
  name: "placeholder",
  opcode: null,
  abstractEval: (_x, { shape, dtype }) => [{ shape, dtype }],
  encode: () => ({}),
  jvp: zeroTangent,
  vjp: noGradient,
  vmap: noInputs,
});
