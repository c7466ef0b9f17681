/**
 * @file RNN, GRU and LSTM: outputs against float64 references by plain loops, gradients (input,
 * initial states, every parameter) against central differences of those references.
 */
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import { grad } from "@tessera/transforms";
import { describe, expect, it } from "vitest";
import { flat, maxError, seededData } from "../helpers/nn.js";
import { expectGradsMatchReference, type Reference } from "../helpers/finite-diff.js";

const { data, float64Params } = seededData(23);
function close(a: mx.Array, ref: number[], tol = 1e-12) {
  expect(maxError(a, ref)).toBeLessThan(tol);
}
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** `W v (+ b)` for W [rows, cols] flat, v the `cols` entries of `x` from `off`. */
function affine(w: Float64Array, rows: number, cols: number, x: ArrayLike<number>, off: number, b?: Float64Array): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r] : 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[off + c];
    out.push(s);
  }
  return out;
}

/**
 * Runs `step` over a float64 sequence x [N, L, D] (flat; unbatched is N = 1) from states `s0`
 * (each [N, H] flat, or zeros when absent); returns each state's values over the steps, [N, L, H]
 * flat, one after the other.
 */
function refScan(
  x: Float64Array, [N, L, D]: number[], H: number, s0: (Float64Array | undefined)[],
  step: (x: Float64Array, off: number, state: number[][]) => number[][],
): number[] {
  const outs: number[][] = s0.map(() => new Array(N * L * H));
  for (let n = 0; n < N; n++) {
    let state = s0.map((s) => (s ? Array.from(s.subarray(n * H, (n + 1) * H)) : new Array<number>(H).fill(0)));
    for (let t = 0; t < L; t++) {
      state = step(x, (n * L + t) * D, state);
      state.forEach((s, i) => s.forEach((v, k) => (outs[i][(n * L + t) * H + k] = v)));
    }
  }
  return outs.flat();
}

/** The Elman step: h' = f(Wxh x + bias + Whh h). */
const rnnStep = (p: Map<string, Float64Array>, D: number, H: number, f: (v: number) => number = Math.tanh) =>
  (x: Float64Array, off: number, [h]: number[][]) => {
    const a = affine(p.get("Wxh")!, H, D, x, off, p.get("bias"));
    const b = affine(p.get("Whh")!, H, H, h, 0);
    return [a.map((v, k) => f(v + b[k]))];
  };

/** The GRU step (rows r, z, n): n = tanh(xn + r (Whn h + bhn)), h' = (1 - z) n + z h. */
const gruStep = (p: Map<string, Float64Array>, D: number, H: number) =>
  (x: Float64Array, off: number, [h]: number[][]) => {
    const gx = affine(p.get("Wx")!, 3 * H, D, x, off, p.get("b"));
    const gh = affine(p.get("Wh")!, 3 * H, H, h, 0);
    const bhn = p.get("bhn");
    return [h.map((hk, k) => {
      const r = sigmoid(gx[k] + gh[k]);
      const z = sigmoid(gx[H + k] + gh[H + k]);
      const n = Math.tanh(gx[2 * H + k] + r * (gh[2 * H + k] + (bhn ? bhn[k] : 0)));
      return (1 - z) * n + z * hk;
    })];
  };

/** The LSTM step (rows i, f, g, o): c' = f c + i g, h' = o tanh(c'). */
const lstmStep = (p: Map<string, Float64Array>, D: number, H: number) =>
  (x: Float64Array, off: number, [h, c]: number[][]) => {
    const gx = affine(p.get("Wx")!, 4 * H, D, x, off, p.get("bias"));
    const gh = affine(p.get("Wh")!, 4 * H, H, h, 0);
    const g = gx.map((v, k) => v + gh[k]);
    const c2 = c.map((ck, k) => sigmoid(g[H + k]) * ck + sigmoid(g[k]) * Math.tanh(g[2 * H + k]));
    return [c2.map((ck, k) => sigmoid(g[3 * H + k]) * Math.tanh(ck)), c2];
  };

/** The layer's output as one flat array (LSTM: hiddens then cells), to compare with refScan. */
const flatOut = (y: mx.Array | [mx.Array, mx.Array]) =>
  Array.isArray(y) ? mx.concatenate(y.map((a) => mx.reshape(a, [-1]))) : mx.reshape(y, [-1]);

interface Case {
  name: string;
  make: (D: number, H: number, bias: boolean) => nn.RNN | nn.GRU | nn.LSTM;
  step: (p: Map<string, Float64Array>, D: number, H: number) => (x: Float64Array, off: number, s: number[][]) => number[][];
  states: string[];
  params: [string, (D: number, H: number) => number[]][];
}

const cases: Case[] = [
  {
    name: "RNN", make: (D, H, bias) => new nn.RNN(D, H, { bias }), step: (p, D, H) => rnnStep(p, D, H), states: ["hidden"],
    params: [["Wxh", (D, H) => [H, D]], ["Whh", (_, H) => [H, H]], ["bias", (_, H) => [H]]],
  },
  {
    name: "GRU", make: (D, H, bias) => new nn.GRU(D, H, { bias }), step: gruStep, states: ["hidden"],
    params: [["Wx", (D, H) => [3 * H, D]], ["Wh", (_, H) => [3 * H, H]], ["b", (_, H) => [3 * H]], ["bhn", (_, H) => [H]]],
  },
  {
    name: "LSTM", make: (D, H, bias) => new nn.LSTM(D, H, { bias }), step: lstmStep, states: ["hidden", "cell"],
    params: [["Wx", (D, H) => [4 * H, D]], ["Wh", (_, H) => [4 * H, H]], ["bias", (_, H) => [4 * H]]],
  },
];

for (const c of cases) {
  describe(c.name, () => {
    const [N, L, D, H] = [2, 5, 3, 4];
    /** forward on x and optional initial states, as one flat output. */
    const run = (m: nn.Module, x: mx.Array, ...s: mx.Array[]) => flatOut(m.forward(x, ...s));
    const reference = (shape: number[]): Reference =>
      ([xv, ...sv], p) => refScan(xv, shape, H, c.states.map((_, i) => sv[i]), c.step(p, D, H));

    it("initialises as MLX: parameter names and shapes, U(-1/sqrt(H), 1/sqrt(H)), bias: false drops the biases", () => {
      const m = c.make(D, 64, true);
      const ps = mx.treeFlatten(m.parameters()) as [string, mx.Array][];
      expect(ps.map(([k, v]) => [k, v.shape])).toEqual(c.params.map(([k, s]) => [k, s(D, 64)]));
      const w = ps.flatMap(([, v]) => flat(v));
      expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(1 / 8);
      expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.12);
      const names = (mx.treeFlatten(c.make(D, H, false).parameters()) as [string, mx.Array][]).map(([k]) => k);
      expect(names).toEqual(c.params.map(([k]) => k).filter((k) => k.startsWith("W")));
    });

    it("batched [N, L, D] and unbatched [L, D] match the float64 loop, from zeros and from given states", () => {
      const m = c.make(D, H, true);
      const p = float64Params(m);
      const [x, xv] = data([N, L, D]);
      const y = m.forward(x);
      for (const a of Array.isArray(y) ? y : [y]) expect(a.shape).toEqual([N, L, H]);
      close(flatOut(y), refScan(xv, [N, L, D], H, c.states.map(() => undefined), c.step(p, D, H)));
      const s = c.states.map(() => data([N, H]));
      close(run(m, x, ...s.map(([a]) => a)), refScan(xv, [N, L, D], H, s.map(([, v]) => v), c.step(p, D, H)));
      // An explicit zero state is the same as none (GRU's bhn counts from the first step).
      close(run(m, x, ...c.states.map(() => mx.zeros([N, H], "float64"))), flat(flatOut(y)));

      const [xu, xuv] = data([L, D]);
      const yu = m.forward(xu);
      for (const a of Array.isArray(yu) ? yu : [yu]) expect(a.shape).toEqual([L, H]);
      close(flatOut(yu), refScan(xuv, [1, L, D], H, c.states.map(() => undefined), c.step(p, D, H)));
      const su = c.states.map(() => data([H]));
      close(run(m, xu, ...su.map(([a]) => a)), refScan(xuv, [1, L, D], H, su.map(([, v]) => v), c.step(p, D, H)));
    });

    it("gradients with respect to the input, the initial states and every parameter match central differences", () => {
      const m = c.make(D, H, true);
      const p = float64Params(m);
      const x = data([N, L, D]);
      const s = c.states.map(() => data([N, H]));
      expectGradsMatchReference(m, p, [x, ...s], (...a) => run(m, a[0], ...a.slice(1)), reference([N, L, D]));
      // Unbatched, no initial state.
      const xu = data([L, D]);
      expectGradsMatchReference(m, p, [xu], (a) => run(m, a), reference([1, L, D]));
    });

    it("bias: false: forward and gradients match the reference without biases", () => {
      const m = c.make(D, H, false);
      const p = float64Params(m);
      const [x, xv] = data([N, L, D]);
      close(flatOut(m.forward(x)), refScan(xv, [N, L, D], H, c.states.map(() => undefined), c.step(p, D, H)));
      expectGradsMatchReference(m, p, [[x, xv]], (a) => run(m, a), reference([N, L, D]));
    });

    it("rejects a wrong input rank or feature size, and a wrong state shape, naming the layer and the shapes", () => {
      const m = c.make(D, H, true);
      const msg = (got: string) => new RegExp(`^${c.name}: input must have shape \\[N, L, 3\\] or \\[L, 3\\].*got shape \\[${got}\\]`);
      expect(() => m.forward(mx.zeros([L]))).toThrow(msg("5"));
      expect(() => m.forward(mx.zeros([1, N, L, D]))).toThrow(msg("1,2,5,3"));
      expect(() => m.forward(mx.zeros([N, L, D + 1]))).toThrow(msg("2,5,4"));
      expect(() => m.forward(mx.zeros([N, L, D]), mx.zeros([N + 1, H]))).toThrow(
        new RegExp(`^${c.name}: hidden must have shape \\[2,4\\].*got shape \\[3,4\\]`),
      );
      expect(() => m.forward(mx.zeros([L, D]), mx.zeros([N, H]))).toThrow(new RegExp(`^${c.name}: hidden must have shape \\[4\\]`));
      if (c.name === "LSTM") {
        expect(() => m.forward(mx.zeros([N, L, D]), mx.zeros([N, H]), mx.zeros([N, H + 1]))).toThrow(/^LSTM: cell must have shape \[2,4\].*got shape \[2,5\]/);
      }
      expect(() => c.make(0, H, true)).toThrow(new RegExp(`^${c.name}: inputSize must be a positive integer`));
      expect(() => c.make(D, 2.5, true)).toThrow(new RegExp(`^${c.name}: hiddenSize must be a positive integer`));
    });

    it("builds a graph linear in the sequence length, and grad goes through it", () => {
      const m = c.make(D, H, true);
      float64Params(m);
      mx.eval(m.parameters()); // so that only the layer's own nodes are pending
      const nodes = (len: number) => {
        const [x] = data([N, len, D]);
        const loss = (a: mx.Array) => mx.sum(mx.square(run(m, a)));
        const y = loss(x);
        const g = grad(loss)(x);
        const count = (a: mx.Array) => mx.internal.buildProgram([a], "test")!.nodes.length;
        const out = [count(y), count(g)];
        expect(flat(g).every(Number.isFinite)).toBe(true);
        return out;
      };
      const [n4, n8, n16] = [nodes(4), nodes(8), nodes(16)];
      for (const k of [0, 1]) {
        expect(n16[k] - n8[k]).toBe(2 * (n8[k] - n4[k])); // a fixed number of nodes per step
        expect(n8[k] - n4[k]).toBeGreaterThan(0);
      }
    });

    it("an empty sequence gives empty states", () => {
      const m = c.make(D, H, true);
      const y = m.forward(mx.zeros([N, 0, D]));
      for (const a of Array.isArray(y) ? y : [y]) expect(a.shape).toEqual([N, 0, H]);
    });
  });
}

describe("RNN nonlinearity", () => {
  it("uses the given nonlinearity at each step (relu here)", () => {
    const m = new nn.RNN(3, 4, { nonlinearity: nn.relu });
    const p = float64Params(m);
    const [x, xv] = data([2, 6, 3]);
    close(m.forward(x), refScan(xv, [2, 6, 3], 4, [undefined], rnnStep(p, 3, 4, (v) => Math.max(0, v))));
    expect(() => new nn.RNN(3, 4, { nonlinearity: "relu" as never })).toThrow(/^RNN: nonlinearity must be a function/);
  });
});
