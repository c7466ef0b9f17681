import { it } from "vitest";
import fc from "fast-check";
import { buildGraph, describeGraph, MODES, runGraph } from "./graph-model.js";
it("debug", async () => {
  const stepArb = fc.record({ op: fc.nat({ max: 9999 }), arg: fc.nat({ max: 40 }), seed: fc.nat() });
  const arb = fc.record({ steps: fc.array(stepArb, { minLength: 1, maxLength: 24, size: "max" }), mode: fc.constantFrom(...MODES), seed: fc.nat() });
  const samples = fc.sample(arb, { numRuns: 2500, seed: 54 });
  const times: [number, number, number, string][] = [];
  let total = 0;
  for (const s of samples) {
    const t0 = performance.now(); const g = buildGraph(s.steps, s.mode, s.seed); const t1 = performance.now();
    try { await runGraph(g); } catch (e) { console.log("FAIL", String(e).slice(0, 3000)); }
    const t2 = performance.now(); total += t2 - t0;
    times.push([t2 - t0, t1 - t0, t2 - t1, describeGraph(g).split("\n").map((l) => l.slice(0, 160)).join("\n")]);
  }
  times.sort((a, b) => b[0] - a[0]);
  console.log("total", total);
  for (const t of times.slice(0, 4)) console.log(t[0].toFixed(0), "build", t[1].toFixed(0), "run", t[2].toFixed(0), "\n", t[3]);
}, 600000);
