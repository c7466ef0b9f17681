/**
 * The guard of the property tests: every differentiable primitive of the registry (one whose vjp
 * is not the noGradient sentinel) is bound by the function of at least one property row (rows of
 * rows-core.ts, rows-shape.ts, rows-ops.ts and rows-fast.ts, as their tests run them), so its jvp, vjp and vmap
 * rules meet finite differences and stacking on random shapes. A new differentiable primitive
 * fails here until a row reaches it, or until it joins EXCLUDED with the reason it can't.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { primitivesOfRow, type Row } from "./rows.js";
import { ELEMENTWISE_ROWS, REDUCTION_ROWS } from "./rows-core.js";
import { SHAPE_ROWS } from "./rows-shape.js";
import { OP_ROWS } from "./rows-ops.js";
import { FAST_ROWS } from "./rows-fast.js";

const { registry, noGradient } = mx.internal;

/**
 * Differentiable primitives no property row can reach, each with its reason. Empty today: every
 * one of them has a row. (stopGradient, argmax and the comparisons are not differentiable, so
 * the guard skips them by their sentinel.)
 */
const EXCLUDED: Record<string, string> = {};

const ROWS: [string, Row[]][] = [
  ["properties.test.ts (elementwise)", ELEMENTWISE_ROWS],
  ["properties.test.ts (reductions)", REDUCTION_ROWS],
  ["properties-shape.test.ts", SHAPE_ROWS],
  ["properties-ops.test.ts", OP_ROWS],
  ["properties-ops.test.ts (fast)", FAST_ROWS],
];

describe("property-test coverage", () => {
  it("every differentiable primitive is bound by some property row", () => {
    const coveredBy = new Map<string, string>();
    for (const [file, rows] of ROWS) {
      for (const row of rows) {
        for (const name of primitivesOfRow(row)) if (!coveredBy.has(name)) coveredBy.set(name, `${file}: ${row.name}`);
      }
    }
    const differentiable = [...registry.values()].filter((def) => def.vjp !== noGradient).map((def) => def.name);
    const missing = differentiable.filter((name) => !coveredBy.has(name) && !(name in EXCLUDED));
    expect(missing, `differentiable primitives without a property row: ${missing.join(", ")}`).toEqual([]);
    // an exclusion must still be needed, and name a registered differentiable primitive
    for (const name of Object.keys(EXCLUDED)) {
      expect(differentiable, `EXCLUDED names ${name}`).toContain(name);
      expect(coveredBy.has(name), `${name} is EXCLUDED but ${coveredBy.get(name)} covers it`).toBe(false);
    }
  });

  it("the rows of properties-ops.test.ts reach the primitives they are there for", () => {
    const want: Record<string, string[]> = {
      take: ["gather"], "at(...).set": ["scatter"], "at(...).maximum": ["scatter"], cummax: ["scan"], partition: ["sort"],
      topk: ["sort"], "linalg.inv": ["inv"], "linalg.solve": ["solve"], "linalg.cholesky": ["cholesky"], "linalg.qr": ["qr"],
      "linalg.eigh": ["eigh"], "linalg.svd": ["svd"], conv2d: ["conv"], maxPool: ["window"], "windowAdd (lax)": ["windowAdd"],
      "divmod (both results)": ["divmod"], "sum over no axes (identity)": ["identity"], copy: ["copy"],
      "copy to another device (transfer)": ["transfer"], "at(slice).set (sliceUpdate)": ["sliceUpdate"],
    };
    for (const [name, prims] of Object.entries(want)) {
      const row = OP_ROWS.find((r) => r.name === name);
      expect(row, `row ${name}`).toBeDefined();
      const got = primitivesOfRow(row!);
      for (const p of prims) expect(got.has(p), `row ${name} binds ${p} (it binds ${[...got].join(", ")})`).toBe(true);
    }
  });
});
