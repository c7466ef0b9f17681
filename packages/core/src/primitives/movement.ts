/**
 * @file Shape primitives. broadcastTo, reshape, transpose and slice are views natively (reshape
 * copies only a non-contiguous input); sliceUpdate and concatenate write new arrays.
 */
import type { Array } from "../array.js";
import { defPrimitive, noParams, type PrimitiveDef, bind1 } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";
import { onDevice } from "../device.js";

/** A copy on the same device (a new buffer, contiguous). */
export const copy: PrimitiveDef = defPrimitive({
  name: "copy",
  opcode: opcode("copy"),
  abstractEval: ([x]) => [x],
  encode: noParams,
  jvp: (_p, [t]) => [t],
  vjp: (_p, [ct]) => [ct],
  vmap: ([x], [d]) => [[bind1(copy, [x], {})], [d]],
});

/**
 * The value copied to the node's device from its input's. Rules run where the values live:
 * the cotangent goes back to the input's device.
 */
export const transfer: PrimitiveDef = defPrimitive({
  name: "transfer",
  opcode: opcode("transfer"),
  abstractEval: ([x]) => [x],
  encode: noParams,
  jvp: (_p, [t]) => [t],
  vjp: ([x], [ct]) => [onDevice("transfer", x.device, () => bind1(transfer, [ct!], {}))],
  vmap: ([x], [d]) => [[bind1(transfer, [x], {})], [d]],
});

export interface ShapeParams {
  shape: number[];
}

/** The axes a broadcast from `from` to `to` added or stretched (what its vjp sums over). */
export function broadcastAxes(from: number[], to: number[]): number[] {
  const lead = to.length - from.length;
  const axes: number[] = [];
  for (let i = 0; i < to.length; i++) if (i < lead || (from[i - lead] === 1 && to[i] !== 1)) axes.push(i);
  return axes;
}

export const broadcastTo: PrimitiveDef<ShapeParams> = defPrimitive({
  name: "broadcastTo",
  opcode: opcode("broadcastTo"),
  abstractEval: ([x], { shape }) => [{ shape, dtype: x.dtype }],
  encode: noParams,
  jvp: (_p, [t], { shape }) => [lax.broadcastTo(t!, shape)],
  // The one place that un-broadcasts: sum over the stretched axes.
  vjp: ([x], [ct], { shape }) => [lax.reshape(lax.reduceSum(ct!, broadcastAxes(x.shape, shape)), x.shape)],
  vmap: ([x], [d], { shape }, size) => {
    const xb = batchToFront(x, d, size);
    const padded = [size, ...new globalThis.Array<number>(shape.length - x.ndim + 1).fill(1), ...xb.shape.slice(1)];
    return [[lax.broadcastTo(lax.reshape(xb, padded), [size, ...shape])], [0]];
  },
});

export const reshape: PrimitiveDef<ShapeParams> = defPrimitive({
  name: "reshape",
  opcode: opcode("reshape"),
  abstractEval: ([x], { shape }) => [{ shape, dtype: x.dtype }],
  encode: noParams,
  jvp: (_p, [t], { shape }) => [lax.reshape(t!, shape)],
  vjp: ([x], [ct]) => [lax.reshape(ct!, x.shape)],
  vmap: ([x], [d], { shape }, size) => [[lax.reshape(batchToFront(x, d, size), [size, ...shape])], [0]],
});

export interface PermParams {
  perm: number[];
}
export const transpose: PrimitiveDef<PermParams> = defPrimitive({
  name: "transpose",
  opcode: opcode("transpose"),
  abstractEval: ([x], { perm }) => [{ shape: perm.map((p) => x.shape[p]), dtype: x.dtype }],
  encode: ({ perm }) => ({ ints: perm }),
  jvp: (_p, [t], { perm }) => [lax.transpose(t!, perm)],
  vjp: (_p, [ct], { perm }) => {
    const inv = new globalThis.Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [lax.transpose(ct!, inv)];
  },
  // Logical axis p of the unbatched value is physical axis p (or p + 1 past the batch axis d).
  vmap: ([x], [d], { perm }) => [[lax.transpose(x, [d!, ...perm.map((p) => (p < d! ? p : p + 1))])], [0]],
});

/** Per-axis start and step, with the output shape (so stop is implied). */
export interface SliceParams {
  start: number[];
  step: number[];
  shape: number[];
}
const sliceInts = ({ start, step }: SliceParams) => ({ ints: start.flatMap((s, i) => [s, step[i]]) });
const withBatchAxis = ({ start, step, shape }: SliceParams, size: number): SliceParams => ({
  start: [0, ...start],
  step: [1, ...step],
  shape: [size, ...shape],
});

export const slice: PrimitiveDef<SliceParams> = defPrimitive({
  name: "slice",
  opcode: opcode("slice"),
  abstractEval: ([x], { shape }) => [{ shape, dtype: x.dtype }],
  encode: sliceInts,
  jvp: (_p, [t], params) => [lax.slice(t!, params)],
  vjp: ([x], [ct], params) => [lax.sliceUpdate(lax.zerosLike(x), ct!, params)],
  vmap: ([x], [d], params, size) => [[lax.slice(batchToFront(x, d, size), withBatchAxis(params, size))], [0]],
});

/** sliceUpdate(base, update): base with `update` written over the slice. */
export const sliceUpdate: PrimitiveDef<SliceParams> = defPrimitive({
  name: "sliceUpdate",
  opcode: opcode("sliceUpdate"),
  abstractEval: ([base]) => [base],
  encode: sliceInts,
  jvp: ([base, update], [tb, tu], params) => [
    lax.sliceUpdate(tb ?? lax.zerosLike(base), tu ?? lax.zerosLike(update), params),
  ],
  vjp: ([, update], [ct], params) => [lax.sliceUpdate(ct!, lax.zerosLike(update), params), lax.slice(ct!, params)],
  vmap: ([base, update], dims, params, size) => [
    [lax.sliceUpdate(batchToFront(base, dims[0], size), batchToFront(update, dims[1], size), withBatchAxis(params, size))],
    [0],
  ],
});

export interface ConcatParams {
  axis: number;
}
export const concatenate: PrimitiveDef<ConcatParams> = defPrimitive({
  name: "concatenate",
  opcode: opcode("concatenate"),
  abstractEval: (xs, { axis }) => {
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((n, x) => n + x.shape[axis], 0);
    return [{ shape, dtype: xs[0].dtype }];
  },
  encode: ({ axis }) => ({ ints: [axis] }),
  jvp: (xs, ts, { axis }) => [lax.concatenate(xs.map((x, i) => ts[i] ?? lax.zerosLike(x)), axis)],
  vjp: (xs, [ct], { axis }) => {
    let pos = 0;
    return xs.map((x) => {
      const start = x.shape.map((_, i) => (i === axis ? pos : 0));
      pos += x.shape[axis];
      return lax.slice(ct!, { start, step: x.shape.map(() => 1), shape: x.shape });
    });
  },
  vmap: (xs, dims, { axis }, size) => [
    [lax.concatenate(xs.map((x, i) => batchToFront(x, dims[i], size)), axis + 1)],
    [0],
  ],
});
