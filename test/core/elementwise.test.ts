/**
 * Forward correctness of every elementwise op against its float64 (or exact integer) reference,
 * driven by OPS: many shapes (empty, size-1, 0-d), broadcasting, weak JS scalars, non-contiguous
 * views (transposed, strided, reversed, negative steps, broadcast), every float dtype, every
 * integer dtype and bool where the op takes them.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { rng } from "../helpers/reference.js";
import { VIEWS, makeBroadcastable, mapHost, viewOf, type Host } from "../helpers/host.js";
import {
  buildArray, expectMatches, fillerFor, kindOf, randomHost, wrap, type FloatSampling,
} from "../helpers/inputs.js";
import { roundTo } from "../helpers/special.js";
import { DEFAULT_RTOL, INT_DTYPES, OPS, labelOf, sample, type OpCase } from "./op-table.js";

const SHAPES = [[], [0], [3, 0, 2], [1], [4, 1], [2, 3, 4]];
const BCAST: Record<number, number[][][]> = {
  2: [[[3, 1], [1, 4]], [[2, 3, 4], [4]], [[], [2, 3]], [[2, 1, 4], [3, 1]], [[0, 3], [1, 3]], [[1], [5]]],
  3: [[[3, 1], [1, 4], [4]], [[2, 3, 4], [4], [3, 1]], [[], [2, 3], [1]], [[2, 1], [1], [1, 0]]],
};

function outDtype(op: OpCase, d: mx.DType): mx.DType {
  if (op.out === "bool") return "bool";
  if (op.out === "float" && kindOf(d) !== "float") return "float32";
  return d;
}

function dtypesOf(op: OpCase): mx.DType[] {
  return [...op.dtypes, ...(op.intRef ? INT_DTYPES : []), ...(op.bool ? ["bool" as mx.DType] : [])];
}

function inputHost(op: OpCase, i: number, d: mx.DType, shape: number[], next: () => number): Host<any> {
  const f: FloatSampling = { domain: op.domain[i], grid: op.grid, specials: op.specials };
  return randomHost(shape, d, next, f, op.intDomain?.[i]);
}

/** The reference result of op on host operands of dtype d (scalars are 0-d hosts). */
function expected(op: OpCase, d: mx.DType, xs: Host<any>[]): Host<any> {
  const od = outDtype(op, d);
  switch (kindOf(d)) {
    case "int":
      return mapHost((...v: bigint[]) => {
        const r = op.intRef!(...v);
        return od === "bool" ? r !== 0n : wrap(r, d);
      }, ...xs);
    case "bool":
      return mapHost((...v: number[]) => op.ref(...v) !== 0, ...xs);
    case "float":
      return mapHost((...v: number[]) => {
        const r = op.ref(...v);
        return od === "bool" ? r !== 0 : roundTo(od, r);
      }, ...xs);
  }
}

function tolOf(op: OpCase, d: mx.DType) {
  const od = outDtype(op, d);
  return { rtol: op.rtol?.[od] ?? DEFAULT_RTOL[od] ?? 0, atol: op.atol?.[od] ?? 0 };
}

const describeInputs = (xs: Host<any>[]) => xs.map((x) => `[${x.shape}]: ${x.data.slice(0, 6).map(String).join(",")}`).join(" | ");

/** Checks one call; returns how many expected float values were finite (to catch vacuous inputs). */
function run(op: OpCase, d: mx.DType, xs: Host<any>[], args: (mx.Array | number)[], what: string): number {
  const y = op.fn(...args);
  const e = expected(op, d, xs);
  expectMatches(y, e, outDtype(op, d), tolOf(op, d), `${what}; inputs ${describeInputs(xs)}`);
  return e.data.filter((v) => typeof v !== "number" || Number.isFinite(v)).length;
}

describe("the op table", () => {
  const API = `add sub mul div floorDivide remainder pow maximum minimum neg abs sign square sqrt rsqrt exp expm1 log
    log1p log2 log10 sin cos tan arcsin arccos arctan arctan2 sinh cosh tanh arcsinh arccosh arctanh sigmoid erf erfinv
    floor ceil round clip isnan isinf isfinite nanToNum reciprocal logaddexp equal notEqual less lessEqual greater
    greaterEqual logicalAnd logicalOr logicalNot bitwiseAnd bitwiseOr bitwiseXor leftShift rightShift where stopGradient`;
  it("covers every elementwise op of API.md", () => {
    const names = new Set(OPS.map((op) => op.name));
    for (const n of API.split(/\s+/).filter(Boolean)) {
      expect(names.has(n), n).toBe(true);
      expect(typeof (mx as any)[n], n).toBe("function");
    }
  });
  it("has finite references on every row's domain (what gradient tests sample)", () => {
    const next = rng(1);
    for (const op of OPS) {
      expect(op.domain.length, labelOf(op)).toBe(op.arity);
      if (op.dtypes.length === 0) continue; // integer/bool-only rows (bitwise ops)
      for (let k = 0; k < 50; k++) {
        const v = op.domain.map((d) => sample(d, next));
        expect(Number.isFinite(op.ref(...v)), `${labelOf(op)}(${v})`).toBe(true);
      }
    }
  });
});

/** Ops whose first operand must be an array (clip's x). */
const arrayFirst = (op: OpCase) => op.name === "clip";

describe.each(OPS.map((op) => [labelOf(op), op] as const))("%s", (_label, op) => {
  describe.each(dtypesOf(op))("%s", (d) => {
    const seed = [...labelOf(op) + d].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);

    it("matches the reference on many shapes (0-d, empty, size-1 axes)", () => {
      const next = rng(seed);
      let finite = 0;
      for (const shape of SHAPES) {
        const xs = op.domain.map((_, i) => inputHost(op, i, d, shape, next));
        finite += run(op, d, xs, xs.map((x) => buildArray(x, d)), `shape [${shape}]`);
      }
      expect(finite).toBeGreaterThan(20); // most of the 30 elements are ordinary values
    });

    if (op.arity > 1) it("broadcasts operands of different shapes", () => {
      const next = rng(seed + 1);
      for (const shapes of BCAST[op.arity]) {
        const xs = shapes.map((s, i) => inputHost(op, i, d, s, next));
        run(op, d, xs, xs.map((x) => buildArray(x, d)), `shapes ${JSON.stringify(shapes)}`);
      }
    });

    if (op.arity > 1 && d !== "bool") it("takes JS numbers as weakly typed operands", () => {
      const next = rng(seed + 2);
      for (let pos = arrayFirst(op) ? 1 : 0; pos < op.arity; pos++) {
        const xs = op.domain.map((_, i) => inputHost(op, i, d, i === pos ? [] : [2, 3], next));
        // an exact JS number (BigInt-range integers stay small enough to be exact)
        const scalar = Number(xs[pos].data[0]);
        if (kindOf(d) === "float" && !Number.isFinite(scalar)) continue;
        const args = xs.map((x, i) => (i === pos ? scalar : buildArray(x, d)));
        run(op, d, xs, args, `JS number ${scalar} at operand ${pos}`);
      }
    });

    it("reads non-contiguous operands (transposed, strided, reversed, negative step, broadcast)", () => {
      const next = rng(seed + 3);
      const shapes = op.arity === 1 ? [[3, 4], [2, 3, 4]] : [[3, 4]];
      for (const shape of shapes) {
        for (let v = 0; v < VIEWS.length; v++) {
          const kinds = op.domain.map((_, i) => VIEWS[(v + i) % VIEWS.length]);
          const xs = op.domain.map((_, i) => {
            const h = inputHost(op, i, d, shape, next);
            return kinds[i] === "broadcast" ? makeBroadcastable(h) : h;
          });
          const args = xs.map((x, i) => viewOf(x, kinds[i], (b) => buildArray(b, d), fillerFor(d)));
          run(op, d, xs, args, `views ${kinds.join(",")} of [${shape}]`);
        }
      }
    });
  });

  // Float-valued ops compute integer operands in float32 (floatUnary / div / arctan2 / logaddexp).
  const hasInts = op.domain.every((dom) => {
    const [lo, hi] = Array.isArray(dom) ? dom : dom.abs;
    return Math.ceil(lo) <= Math.floor(hi);
  });
  if (op.out === "float" && hasInts) {
    it("computes int32 operands in float32", () => {
      const next = rng(99);
      const ints = op.domain.map((dom) => {
        const [lo, hi] = Array.isArray(dom) ? dom : dom.abs;
        const vals: number[] = [];
        for (let k = Math.ceil(lo); k <= Math.floor(hi); k++) vals.push(k);
        return Array.isArray(dom) ? vals : [...vals, ...vals.map((v) => -v)];
      });
      const xs: Host<number>[] = ints.map((vals) => ({ shape: [2, 5], data: Array.from({ length: 10 }, () => vals[Math.floor(next() * vals.length)]) }));
      const y = op.fn(...xs.map((x) => buildArray(x, "int32")));
      const e = mapHost((...v: number[]) => roundTo("float32", op.ref(...v)), ...xs);
      expectMatches(y, e, "float32", { rtol: DEFAULT_RTOL.float32 }, `int32 inputs ${describeInputs(xs)}`);
    });
  }

  // The method form (x.op(...rest)) is the same op.
  const method = (mx.Array.prototype as any)[op.name];
  if (typeof method === "function" && op.fn === (mx as any)[op.name] && op.dtypes.includes("float32")) it("has a method form", () => {
    const next = rng(5);
    const xs = op.domain.map((_, i) => inputHost(op, i, "float32", [2, 3], next));
    const [x, ...rest] = xs.map((h) => buildArray(h, "float32"));
    const y = method.call(x, ...rest) as mx.Array;
    expect(y).toBeInstanceOf(mx.Array);
    expectMatches(y, expected(op, "float32", xs), outDtype(op, "float32"), tolOf(op, "float32"), "method form");
  });
});
