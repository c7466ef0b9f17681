/** @file Batched matrix multiply: [..., M, K] @ [..., K, N] with equal batch shapes and dtypes. */
import type { Array } from "../array.js";
import { defPrimitive, noParams, type PrimitiveDef } from "../primitive.js";
import { opcode } from "../native/ops.js";
import * as lax from "../lax.js";
import { batchToFront } from "./batching.js";

const swapLast = (x: Array) => lax.moveaxis(x, x.ndim - 1, x.ndim - 2);
/** Whether x is a view of another array with its last two axes swapped (a Linear layer's W^T). */
function isSwapped(x: Array): boolean {
  const node = x.node;
  if (!node || node.prim.name !== "transpose") return false;
  const perm: number[] = node.params.perm;
  const n = perm.length;
  return n >= 2 && perm[n - 1] === n - 2 && perm[n - 2] === n - 1 && perm.every((p, i) => i >= n - 2 || p === i);
}

export const matmul: PrimitiveDef = defPrimitive({
  name: "matmul",
  opcode: opcode("matmul"),
  abstractEval: ([a, b]) => [{ shape: [...a.shape.slice(0, -1), b.shape[b.shape.length - 1]], dtype: a.dtype }],
  // A product the fusion pass folded adds into carries their epilogue (eval/epilogue.ts).
  encode: (p: { epilogue?: number }) => (p?.epilogue ? { ints: [p.epilogue] } : noParams()),
  // d(A B) = dA B + A dB
  jvp: ([a, b], [ta, tb]) => {
    const parts = [ta ? lax.matmul(ta, b) : null, tb ? lax.matmul(a, tb) : null].filter((t): t is Array => !!t);
    return [parts.length === 2 ? lax.add(parts[0], parts[1]) : parts[0]];
  },
  // dA = C B^T, dB = A^T C. An operand that is a swapped view (x @ W^T) gets its cotangent as the
  // swapped view of (B C^T) or (C^T A): the transpose's own rule then hands W a contiguous
  // gradient, which the optimizer's chain reads in order (the same products, summed by one GEMM).
  vjp: ([a, b], [ct]) => [
    isSwapped(a) ? swapLast(lax.matmul(b, swapLast(ct!))) : lax.matmul(ct!, swapLast(b)),
    isSwapped(b) ? swapLast(lax.matmul(swapLast(ct!), a)) : lax.matmul(swapLast(a), ct!),
  ],
  vmap: ([a, b], [da, db], _p, size) => {
    // One operand unbatched and both 2-D per example: fold the batch into the other operand's
    // rows (or columns), so the batched product stays a single GEMM.
    if (db === null && a.ndim === 3 && b.ndim === 2) {
      const af = batchToFront(a, da, size); // [size, M, K]
      const [m, k] = af.shape.slice(1);
      const out = lax.matmul(lax.reshape(af, [size * m, k]), b);
      return [[lax.reshape(out, [size, m, b.shape[1]])], [0]];
    }
    if (da === null && b.ndim === 3 && a.ndim === 2) {
      const bf = lax.moveaxis(b, db!, 1); // [K, size, N]
      const [k, , n] = bf.shape;
      const out = lax.matmul(a, lax.reshape(bf, [k, size * n]));
      return [[lax.reshape(out, [a.shape[0], size, n])], [1]];
    }
    return [[lax.matmul(batchToFront(a, da, size), batchToFront(b, db, size))], [0]];
  },
});
