/**
 * Property tests of the transforms over the shape, indexing, matmul, where and astype ops (the
 * elementwise ops and reductions are in properties.test.ts): vjp and jvp against central finite
 * differences in float64, the transposition identity, and vmap against stacking per example for
 * inAxes 0, 1 and null for a second argument. The rows live in rows-shape.ts.
 */
import { describe, it } from "vitest";
import { assertInstances } from "./checks.js";
import { ASTYPE, SHAPE_OPS, astypeArb, astypeUpArb, indexArb, matmulArb, whereArb } from "./rows-shape.js";

describe("shape ops", () => {
  it.each(SHAPE_OPS)("%s: derivatives and vmap", (_name, arb) => assertInstances(arb));
  it("index (integers, slices with any step, newaxis, ellipsis): derivatives and vmap", () => assertInstances(indexArb, 25));
});

describe("linear algebra and selection", () => {
  it("matmul (1-D, 2-D, batched, broadcast batch): derivatives and vmap", () => assertInstances(matmulArb, 25));
  it("where (broadcast condition and branches): derivatives and vmap", () => assertInstances(whereArb));
});

describe("astype between floats", () => {
  it.each(ASTYPE)("float64 -> %s -> float64: derivatives and vmap", (dtype, tol) => {
    assertInstances(astypeArb(dtype, tol));
  });
  it("float32 -> float64 keeps float32 gradients", () => {
    assertInstances(astypeUpArb);
  });
});
