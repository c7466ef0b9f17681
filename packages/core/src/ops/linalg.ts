/** @file matmul with NumPy's rules: batched, broadcasting batch axes, 1-D operands promoted and squeezed. */
import { Array } from "../array.js";
import { promoteTypes } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import * as lax from "../lax.js";
import { broadcastShapes, checkArray, withDevice } from "./util.js";
import type { DeviceOptions } from "../device.js";

/**
 * Matrix product of the last two axes, broadcasting the leading ones. A 1-D first operand is a
 * row vector and a 1-D second operand a column vector; their added axis is removed again.
 * @example
 * mx.matmul(mx.ones([4, 2, 3]), mx.ones([3, 5])).shape; // [4, 2, 5]
 */
export function matmul(a: Array, b: Array, options: DeviceOptions = {}): Array {
  return withDevice("matmul", options, () => matmulOf(a, b));
}
function matmulOf(a: Array, b: Array): Array {
  checkArray("matmul", a, 1);
  checkArray("matmul", b, 2);
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(`matmul: operands must have at least 1 dimension; got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  }
  const a2 = a.ndim === 1 ? lax.reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? lax.reshape(b, [b.shape[0], 1]) : b;
  const k = a2.shape[a2.ndim - 1];
  if (b2.shape[b2.ndim - 2] !== k) {
    throw new ShapeError(`matmul: inner dimensions must match; got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  }
  let batch: number[];
  try {
    batch = broadcastShapes("matmul", [a2.shape.slice(0, -2), b2.shape.slice(0, -2)]);
  } catch {
    throw new ShapeError(`matmul: batch dimensions cannot be broadcast together; got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  }
  const t = promoteTypes(a.dtype, b.dtype);
  const m = a2.shape[a2.ndim - 2], n = b2.shape[b2.ndim - 1];
  let out: Array;
  if (b2.ndim === 2 && a2.ndim > 2) {
    // An unbatched right operand (a weight): fold the batch axes into M, so the product and
    // both of its gradients are single GEMMs instead of one per batch entry and a reduction.
    const rows = lax.reshape(lax.cast(a2, t), [batch.reduce((p, d) => p * d, 1) * m, k]);
    out = lax.reshape(lax.matmul(rows, lax.cast(b2, t)), [...batch, m, n]);
  } else {
    const x = lax.broadcastTo(lax.cast(a2, t), [...batch, m, k]);
    const y = lax.broadcastTo(lax.cast(b2, t), [...batch, k, n]);
    out = lax.matmul(x, y);
  }
  if (a.ndim === 1 || b.ndim === 1) {
    const shape = [...batch];
    if (a.ndim !== 1) shape.push(m);
    if (b.ndim !== 1) shape.push(n);
    out = lax.reshape(out, shape);
  }
  return out;
}
