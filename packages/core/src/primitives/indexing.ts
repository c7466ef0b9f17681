/**
 * @file Gather and scatter along one axis: the primitives behind take, takeAlongAxis,
 * putAlongAxis, advanced `index` and `at(...)` updates. Indices are any integer dtype; the
 * kernel maps negative ones from the end and rejects any outside [-n, n) at evaluation.
 */
import type { Array } from "../array.js";
import { defPrimitive, type PrimitiveDef, type Tangent } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";

export interface GatherParams {
  axis: number;
}

/**
 * gather(x, idx): out[..., i, ...] = x[..., idx[..., i, ...], ...] along `axis`; idx has the
 * output's shape, and x that shape too except along `axis`.
 */
export const gather: PrimitiveDef<GatherParams> = defPrimitive({
  name: "gather",
  opcode: opcode("gather"),
  abstractEval: ([x, idx], { axis }) => {
    const shape = [...idx.shape];
    if (shape.length !== x.shape.length || shape.some((d, i) => i !== axis && d !== x.shape[i])) {
      throw new TypeError(`gather: index shape [${idx.shape}] must match x's [${x.shape}] off axis ${axis} (this is a bug)`);
    }
    return [{ shape, dtype: x.dtype }];
  },
  encode: ({ axis }) => ({ ints: [axis] }),
  jvp: ([, idx], [t], { axis }) => [t ? lax.gather(t, idx, axis) : null],
  // Each output element is one input element: the cotangent is added back where it came from.
  vjp: ([x, idx], [ct], { axis }) => [lax.scatter(lax.zerosLike(x), idx, ct!, axis, "add"), null],
  vmap: ([x, idx], [dx, di], { axis }, size) => [
    [lax.gather(batchToFront(x, dx, size), batchToFront(idx, di, size), axis + 1)],
    [0],
  ],
});

/** How scatter combines an update with the element it lands on (and with repeated ones). */
export type ScatterMode = "set" | "add" | "mul" | "max" | "min";
const MODES: ScatterMode[] = ["set", "add", "mul", "max", "min"]; // the kernel's codes

export interface ScatterParams {
  axis: number;
  mode: ScatterMode;
}

/**
 * The product of the other updates landing on the same element as each update (zero-safe: no
 * division by an update that is zero), for the derivatives of a "mul" scatter.
 */
function otherProducts(base: Array, idx: Array, u: Array, axis: number): Array {
  const isZero = lax.equal(u, lax.zerosLike(u));
  const one = lax.constLike(u, 1);
  const safe = lax.where(isZero, one, u);
  const zeros = lax.gather(lax.scatter(lax.zerosLike(base), idx, lax.cast(isZero, u.dtype), axis, "add"), idx, axis);
  const prod = lax.gather(lax.scatter(lax.constLike(base, 1), idx, safe, axis, "mul"), idx, axis);
  const zero = lax.zerosLike(u);
  return lax.where(
    isZero,
    lax.where(lax.equal(zeros, one), prod, zero),
    lax.where(lax.equal(zeros, zero), lax.div(prod, safe), zero),
  );
}

/**
 * Weights of a "max"/"min" scatter's inputs in its derivative: the base element and the updates
 * equal to the result share it evenly (as reduceMax splits it among ties).
 */
function extremeWeights(base: Array, idx: Array, u: Array, out: Array, axis: number): [Array, Array, Array] {
  const hitBase = lax.cast(lax.equal(base, out), base.dtype);
  const hitU = lax.cast(lax.equal(u, lax.gather(out, idx, axis)), u.dtype);
  const count = lax.scatter(hitBase, idx, hitU, axis, "add");
  return [hitBase, hitU, count];
}

/**
 * scatter(base, idx, updates): base with each update combined (by `mode`) into the element its
 * index names along `axis`; idx has the updates' shape, and they base's except along `axis`.
 * Repeated indices combine in order (the last one wins for "set").
 */
export const scatter: PrimitiveDef<ScatterParams> = defPrimitive({
  name: "scatter",
  opcode: opcode("scatter"),
  abstractEval: ([base, idx, u], { axis }) => {
    if (u.shape.length !== base.shape.length || u.shape.some((d, i) => i !== axis && d !== base.shape[i]) ||
        idx.shape.length !== u.shape.length || idx.shape.some((d, i) => d !== u.shape[i])) {
      throw new TypeError(`scatter: shapes [${base.shape}], [${idx.shape}], [${u.shape}] do not fit along axis ${axis} (this is a bug)`);
    }
    return [base];
  },
  encode: ({ axis, mode }) => ({ ints: [axis, MODES.indexOf(mode)] }),
  jvp: ([base, idx, u], [tb, , tu], { axis, mode }, [out]) => {
    const dBase = tb ?? lax.zerosLike(base), dU = tu ?? lax.zerosLike(u);
    switch (mode) {
      case "set": case "add":
        return [lax.scatter(dBase, idx, dU, axis, mode)];
      case "mul": {
        // d(base * prod u) = dbase * prod u + base * sum_j du_j * prod_{i != j} u_i
        const viaBase = lax.scatter(dBase, idx, u, axis, "mul");
        const viaU = lax.mul(lax.mul(dU, otherProducts(base, idx, u, axis)), lax.gather(base, idx, axis));
        return [lax.scatter(viaBase, idx, viaU, axis, "add")];
      }
      default: {
        const [hitBase, hitU, count] = extremeWeights(base, idx, u, out, axis);
        return [lax.div(lax.scatter(lax.mul(dBase, hitBase), idx, lax.mul(dU, hitU), axis, "add"), count)];
      }
    }
  },
  vjp: ([base, idx, u], [ct], { axis, mode }, [out]): Tangent[] => {
    switch (mode) {
      // Overwritten base elements get nothing; each update gets its element's cotangent (with
      // repeated indices every one does, as in JAX, though only the last is kept).
      case "set":
        return [lax.scatter(ct!, idx, lax.zerosLike(u), axis, "set"), null, lax.gather(ct!, idx, axis)];
      case "add":
        return [ct!, null, lax.gather(ct!, idx, axis)];
      case "mul":
        return [
          lax.scatter(ct!, idx, u, axis, "mul"),
          null,
          lax.mul(lax.gather(lax.mul(ct!, base), idx, axis), otherProducts(base, idx, u, axis)),
        ];
      default: {
        const [hitBase, hitU, count] = extremeWeights(base, idx, u, out, axis);
        const share = lax.div(ct!, count);
        return [lax.mul(share, hitBase), null, lax.mul(lax.gather(share, idx, axis), hitU)];
      }
    }
  },
  vmap: ([base, idx, u], [db, di, du], { axis, mode }, size) => [
    [lax.scatter(batchToFront(base, db, size), batchToFront(idx, di, size), batchToFront(u, du, size), axis + 1, mode)],
    [0],
  ],
});
