import { it, expect } from "vitest";
import fc from "fast-check";
import { buildGraph, describeGraph, MODES, runGraph } from "./graph-model.js";
it("detects wrong refs", async () => {
  const stepArb = fc.record({ op: fc.nat({ max: 9999 }), arg: fc.nat({ max: 40 }), seed: fc.nat() });
  const arb = fc.record({ steps: fc.array(stepArb, { minLength: 3, maxLength: 8 }), mode: fc.constantFrom(...MODES), seed: fc.nat() });
  const samples = fc.sample(arb, { numRuns: 200, seed: 9 });
  let detected = 0, total = 0;
  for (const s of samples) {
    const g = buildGraph(s.steps, s.mode, s.seed);
    const victim = g.nodes.findIndex((n, i) => i > 0 && n.ins.length > 0 && n.approx.data.length > 0);
    if (victim < 0) continue;
    const n = g.nodes[victim];
    const orig = n.ref;
    n.ref = (xs) => { const e = orig(xs); const d = [...e.value.data]; const v = d[0]; d[0] = typeof v === "number" ? (Number.isNaN(v) ? 0 : v * 1.01 + 0.5) : typeof v === "bigint" ? v + 1n : !v; return { ...e, value: { shape: e.value.shape, data: d } }; };
    total++;
    try { await runGraph(g); console.log("UNDETECTED", n.text, describeGraph(g)); } catch (e) { detected++; if (detected < 3) console.log(String(e).slice(0, 1500)); }
  }
  console.log("detected", detected, "of", total);
}, 600000);
