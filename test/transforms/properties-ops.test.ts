/**
 * Property tests of the transforms over gather and scatter (take, takeAlongAxis, integer-array
 * index, at(...) updates, putAlongAxis), the scans, sort/partition/topk, the linalg primitives,
 * convolution and pooling windows, the plumbing primitives, and the fused mx.fast primitives
 * with their backward ones (rows-fast.ts): vjp and jvp against central
 * finite differences in float64, the transposition identity, and vmap against stacking per
 * example for inAxes 0, 1 and null for a second argument. The rows (and why their inputs are
 * where the functions are differentiable) live in rows-ops.ts.
 */
import { describe, it } from "vitest";
import { assertInstances } from "./checks.js";
import { OP_ROWS } from "./rows-ops.js";
import { FAST_ROWS } from "./rows-fast.js";

describe("indexing, scans, sorting, linalg, conv and windows", () => {
  it.each(OP_ROWS.map((row) => [row.name, row] as const))("%s: derivatives and vmap", (_name, row) => {
    assertInstances(row.arb, row.runs);
  });
});

describe("fused mx.fast primitives and their backward primitives", () => {
  it.each(FAST_ROWS.map((row) => [row.name, row] as const))("%s: derivatives and vmap", (_name, row) => {
    assertInstances(row.arb, row.runs);
  });
});
