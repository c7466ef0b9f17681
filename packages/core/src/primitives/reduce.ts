/**
 * @file Reductions over sorted, non-negative axes (the reduced axes are removed; the op layer
 * reshapes for keepdims), and argmax/argmin over one axis.
 */
import type { Array, Aval } from "../array.js";
import { defPrimitive, noGradient, zeroTangent, type PrimitiveDef, bind1 } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";

export interface AxesParams {
  axes: number[];
}

const dropAxes = (shape: number[], axes: number[]) => shape.filter((_, i) => !axes.includes(i));

/** The output broadcast back over the reduced axes, to the input's shape. */
export function expandReduced(y: Array, inShape: number[], axes: number[]): Array {
  const kept = inShape.map((d, i) => (axes.includes(i) ? 1 : d));
  return lax.broadcastTo(lax.reshape(y, kept), inShape);
}

function reduction(name: string, jvp: PrimitiveDef<AxesParams>["jvp"], vjp: PrimitiveDef<AxesParams>["vjp"]) {
  const def: PrimitiveDef<AxesParams> = defPrimitive({
    name,
    opcode: opcode(name),
    abstractEval: ([x], { axes }) => [{ shape: dropAxes(x.shape, axes), dtype: x.dtype }],
    encode: ({ axes }) => ({ ints: axes }),
    jvp,
    vjp,
    vmap: ([x], [d], { axes }, size) => [[bind1(def, [batchToFront(x, d, size)], { axes: axes.map((a) => a + 1) })], [0]],
  });
  return def;
}

export const reduceSum = reduction(
  "reduceSum",
  (_p, [t], { axes }) => [lax.reduceSum(t!, axes)],
  ([x], [ct], { axes }) => [expandReduced(ct!, x.shape, axes)],
);

/**
 * d/dx_i prod(x) is the product of the other elements. Written without dividing by x_i where x_i
 * is zero: with one zero in a slice only that element gets the product of the rest; with two or
 * more, every gradient in the slice is zero.
 */
function prodPartials(x: Array, out: Array, axes: number[]): Array {
  const zero = lax.constLike(x, 0);
  const isZero = lax.equal(x, zero);
  const zeros = lax.reduceSum(lax.cast(isZero, "int32"), axes);
  const prodNonzero = lax.reduceProd(lax.where(isZero, lax.constLike(x, 1), x), axes);
  const nz = expandReduced(zeros, x.shape, axes);
  const byDivision = lax.div(expandReduced(out, x.shape, axes), lax.where(isZero, lax.constLike(x, 1), x));
  const forZero = lax.where(lax.equal(nz, lax.constLike(nz, 1)), expandReduced(prodNonzero, x.shape, axes), zero);
  return lax.where(isZero, forZero, lax.where(lax.equal(nz, lax.constLike(nz, 0)), byDivision, zero));
}
export const reduceProd = reduction(
  "reduceProd",
  ([x], [t], { axes }, [out]) => [lax.reduceSum(lax.mul(t!, prodPartials(x, out, axes)), axes)],
  ([x], [ct], { axes }, [out]) => [lax.mul(expandReduced(ct!, x.shape, axes), prodPartials(x, out, axes))],
);

/** Weights that split the gradient of a max/min evenly among the tied extreme elements. */
function extremeWeights(x: Array, out: Array, axes: number[]): Array {
  const mask = lax.cast(lax.equal(x, expandReduced(out, x.shape, axes)), x.dtype);
  return lax.div(mask, expandReduced(lax.reduceSum(mask, axes), x.shape, axes));
}
const extremeJvp: PrimitiveDef<AxesParams>["jvp"] = ([x], [t], { axes }, [out]) => [
  lax.reduceSum(lax.mul(t!, extremeWeights(x, out, axes)), axes),
];
const extremeVjp: PrimitiveDef<AxesParams>["vjp"] = ([x], [ct], { axes }, [out]) => [
  lax.mul(expandReduced(ct!, x.shape, axes), extremeWeights(x, out, axes)),
];
export const reduceMax = reduction("reduceMax", extremeJvp, extremeVjp);
export const reduceMin = reduction("reduceMin", extremeJvp, extremeVjp);

export interface AxisParams {
  axis: number;
}
function argReduction(name: string) {
  const def: PrimitiveDef<AxisParams> = defPrimitive({
    name,
    opcode: opcode(name),
    abstractEval: ([x]: Aval[], { axis }) => [{ shape: dropAxes(x.shape, [axis]), dtype: "uint32" }],
    encode: ({ axis }) => ({ ints: [axis] }),
    jvp: zeroTangent,
    vjp: noGradient,
    vmap: ([x], [d], { axis }, size) => [[bind1(def, [batchToFront(x, d, size)], { axis: axis + 1 })], [0]],
  });
  return def;
}
export const argmax = argReduction("argmax");
export const argmin = argReduction("argmin");
