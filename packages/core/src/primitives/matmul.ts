/** @file Batched matrix multiply: [..., M, K] @ [..., K, N] with equal batch shapes and dtypes. */
import type { Array } from "../array.js";
import { defPrimitive, noParams, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";

const swapLast = (x: Array) => lax.moveaxis(x, x.ndim - 1, x.ndim - 2);

export const matmul: PrimitiveDef = defPrimitive({
  name: "matmul",
  opcode: opcode("matmul"),
  abstractEval: ([a, b]) => [{ shape: [...a.shape.slice(0, -1), b.shape[b.shape.length - 1]], dtype: a.dtype }],
  encode: noParams,
  // d(A B) = dA B + A dB
  jvp: ([a, b], [ta, tb]) => {
    const parts = [ta ? lax.matmul(ta, b) : null, tb ? lax.matmul(a, tb) : null].filter((t): t is Array => !!t);
    return [parts.length === 2 ? lax.add(parts[0], parts[1]) : parts[0]];
  },
  // dA = C B^T, dB = A^T C
  vjp: ([a, b], [ct]) => [lax.matmul(ct!, swapLast(b)), lax.matmul(swapLast(a), ct!)],
  vmap: ([a, b], dims, _p, size) => [[lax.matmul(batchToFront(a, dims[0], size), batchToFront(b, dims[1], size))], [0]],
});
