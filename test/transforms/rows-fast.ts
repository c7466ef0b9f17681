/**
 * @file Property rows of the fused mx.fast primitives (layerNorm, rmsNorm, rope, attention) and,
 * through a vjp inside the row's function, of their fused backward primitives (layerNormBwd,
 * rmsNormBwd, attentionBwd, and softmax's softmaxBwd): the checks then take derivatives of a derivative. Run by
 * properties-ops.test.ts and counted by the coverage guard (properties-coverage.test.ts).
 * Inputs: features of at least 2 (a variance that is not identically zero), causal masks only
 * with Lq <= Lk (no query row with every key masked).
 */
import fc from "fast-check";
import * as mx from "@tessera/core";
import { vjp } from "@tessera/transforms";
import { uniform, type Fn, type Instance } from "./checks.js";
import type { Row } from "./rows.js";

const f64 = (shape: number[], lo = -2, hi = 2) => uniform(shape, lo, hi);
const show = (v: unknown) => JSON.stringify(v);
const leadArb = fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 });

/** The cotangents of fn's inputs for the output cotangent `ct`, flattened and joined. */
const vjpOf = (fn: Fn, n: number): Fn => (...xs) => {
  const [, cts] = vjp(fn, xs.slice(0, n), [xs[n]]);
  return mx.concatenate(cts.map((c) => mx.reshape(c, [-1])), 0);
};

type NormKind = "layerNorm" | "rmsNorm";
/** x [..., d] with optional weight (and bias for layerNorm) [d]; `second`: the vjp instead. */
const normArb = (kind: NormKind, second: boolean) =>
  fc.record({ lead: leadArb, d: fc.integer({ min: 2, max: 5 }), weight: fc.boolean(), bias: fc.boolean(), eps: fc.constantFrom(1e-5, 0.1) })
    .map(({ lead, d, weight, bias, eps }): Instance => {
      const xs = [...lead, d];
      const hasBias = kind === "layerNorm" && bias;
      const shapes = [xs, ...(weight ? [[d]] : []), ...(hasBias ? [[d]] : [])];
      const fn: Fn = (x, ...rest) => {
        const w = weight ? rest[0] : null, b = hasBias ? rest[weight ? 1 : 0] : null;
        return kind === "layerNorm" ? mx.fast.layerNorm(x, w, b, eps) : mx.fast.rmsNorm(x, w, eps);
      };
      return {
        fn: second ? vjpOf(fn, shapes.length) : fn,
        args: [...shapes.map((s) => f64(s)), ...(second ? [f64(xs)] : [])],
        label: `${second ? "vjp of " : ""}${kind} ${show(xs)} weight ${weight} bias ${hasBias} eps ${eps}`,
      };
    });

const ropeArb = fc.record({
  lead: leadArb, l: fc.integer({ min: 1, max: 4 }), half: fc.integer({ min: 1, max: 3 }), rest: fc.integer({ min: 0, max: 2 }),
  traditional: fc.boolean(), base: fc.constantFrom(10000, 10), scale: fc.constantFrom(1, 0.5), offset: fc.integer({ min: 0, max: 3 }),
}).map(({ lead, l, half, rest, traditional, base, scale, offset }): Instance => {
  const dims = 2 * half, xs = [...lead, l, dims + 2 * rest];
  return {
    fn: (x) => mx.fast.rope(x, dims, { traditional, base, scale, offset }), args: [f64(xs)],
    label: `rope ${show(xs)} dims ${dims} traditional ${traditional} base ${base} scale ${scale} offset ${offset}`,
  };
});

/** q [B, H, Lq, D], k and v [B, Hkv, Lk, D or Dv]; no mask, causal, or an additive [Lq, Lk] one. */
const attentionArb = (second: boolean) =>
  fc.record({
    b: fc.integer({ min: 1, max: 2 }), hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 2 }), lq: fc.integer({ min: 1, max: 3 }),
    lk: fc.integer({ min: 1, max: 3 }), d: fc.integer({ min: 1, max: 3 }), dv: fc.integer({ min: 1, max: 3 }),
    mask: fc.constantFrom<"none" | "causal" | "additive">("none", "causal", "additive"), scale: fc.option(fc.constantFrom(0.5, 2), { nil: undefined }),
  })
    .filter(({ lq, lk, mask }) => mask !== "causal" || lq <= lk)
    .map(({ b, hkv, group, lq, lk, d, dv, mask, scale }): Instance => {
      const qs = [b, hkv * group, lq, d], ks = [b, hkv, lk, d], vs = [b, hkv, lk, dv];
      const additive = mask === "additive";
      // the additive mask is an operand the checks differentiate too (a mask is added to the scores)
      const fn: Fn = (q, k, v, m) => mx.fast.scaledDotProductAttention(q, k, v, { scale, mask: additive ? m : mask === "causal" ? "causal" : null });
      const shapes = [qs, ks, vs, ...(additive ? [[lq, lk]] : [])];
      return {
        fn: second ? vjpOf(fn, shapes.length) : fn,
        args: [...shapes.map((s) => f64(s)), ...(second ? [f64([b, hkv * group, lq, dv])] : [])],
        label: `${second ? "vjp of " : ""}attention q ${show(qs)} k ${show(ks)} v ${show(vs)} mask ${mask} scale ${scale}`,
      };
    });

/** The vjp of softmax over the last axis of x [..., d] (the fused softmaxBwd). */
const softmaxVjpArb = fc.record({ lead: leadArb, d: fc.integer({ min: 1, max: 5 }) }).map(({ lead, d }): Instance => {
  const xs = [...lead, d];
  return { fn: vjpOf((x) => mx.softmax(x, -1), 1), args: [f64(xs), f64(xs)], label: `vjp of softmax ${show(xs)}` };
});

export const FAST_ROWS: Row[] = [
  { name: "fast.layerNorm", arb: normArb("layerNorm", false) },
  { name: "vjp of fast.layerNorm (layerNormBwd)", arb: normArb("layerNorm", true), runs: 10 },
  { name: "fast.rmsNorm", arb: normArb("rmsNorm", false) },
  { name: "vjp of fast.rmsNorm (rmsNormBwd)", arb: normArb("rmsNorm", true), runs: 10 },
  { name: "fast.rope", arb: ropeArb },
  { name: "vjp of softmax (softmaxBwd)", arb: softmaxVjpArb, runs: 10 },
  { name: "fast.scaledDotProductAttention", arb: attentionArb(false) },
  { name: "vjp of fast.scaledDotProductAttention (attentionBwd)", arb: attentionArb(true), runs: 10 },
];
