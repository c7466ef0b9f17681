/**
 * Property-based fuzz test of whole graphs: fast-check draws a list of steps, and
 * test/fuzz/graph-model.ts turns them into a random graph of tessera ops (every elementwise op of
 * the op table, where, reductions with random axes and keepdims, argmax/argmin, logsumexp, softmax,
 * var and std, scans, sort/argsort/topk, indexing with random slices and with integer arrays,
 * `x.at(...)` updates, take/takeAlongAxis/putAlongAxis, transposes, reshapes, expandDims/squeeze,
 * broadcastTo, flip, concatenate/stack, pad, tile/repeat/roll, split, matmul, astype between
 * every pair of dtypes, divmod, copies to the test device) on random shapes with 0- and 1-sized
 * axes (now and then large ones), in every dtype (mostly float32, float64, int32 and bool), over
 * leaves built as non-contiguous views (transposed, step-sliced, reversed, broadcast). Some steps
 * are calls that must throw (a max over an empty axis, a bad reshape, a scalar that does not fit,
 * an index out of bounds or a bool subtraction found during evaluation, ...): they must throw an
 * Error, never crash, and leave the rest of the graph computable.
 *
 * Each graph is evaluated in one of several ways (one mx.eval of everything, of the sinks only,
 * reads in a random order with evals of random subsets in between, evals and reads interleaved
 * with recording, evalAsync), and then every node is read and compared with a plain-JS float64
 * reference of its op applied to the values of its inputs.
 *
 * TESSERA_FUZZ_RUNS sets the number of graphs (default 2000), TESSERA_FUZZ_SEED the seed and
 * TESSERA_FUZZ_PATH replays one case (see test/helpers/fuzz.ts and test/fuzz/README.md). A failure
 * prints the shrunk graph as code, the seed and the path.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as mx from "@tessera/core";
import { buildGraph, describeGraph, MODES, runGraph, type Graph } from "./graph-model.js";
import { FUZZ, chunks } from "../helpers/fuzz.js";

const CHUNK = 2500;

const stepArb = fc.record({
  op: fc.nat({ max: 9999 }),
  arg: fc.nat({ max: 40 }),
  seed: fc.nat(),
});

const graphArb: fc.Arbitrary<Graph> = fc
  .record({
    steps: fc.array(stepArb, { minLength: 1, maxLength: 24, size: "max" }),
    mode: fc.constantFrom(...MODES),
    seed: fc.nat(),
  })
  .map(({ steps, mode, seed }) => {
    const g = buildGraph(steps, mode, seed);
    return Object.assign(g, { [fc.toStringMethod]: () => `\n${describeGraph(g)}\n` });
  });

describe("random op graphs match a float64 reference", () => {
  for (const c of chunks(FUZZ.runs, CHUNK)) {
    it(`graphs ${c.start + 1}..${c.start + c.count} (seed ${c.seed})`, async () => {
      await fc.assert(fc.asyncProperty(graphArb, (g) => runGraph(g)), {
        numRuns: c.count,
        seed: c.seed,
        ...(FUZZ.path && c.start === 0 ? { path: FUZZ.path } : {}),
      });
    }, 20 * 60_000);
  }

  it("the process still computes afterwards", () => {
    const x = mx.array([[1, 2], [3, 4]], "float64");
    expect(mx.matmul(x, x.T).add(1).tolist()).toEqual([[6, 12], [12, 26]]);
  });
});
