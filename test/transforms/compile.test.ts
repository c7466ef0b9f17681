/**
 * compile (packages/transforms/src/compile.ts, packages/core/src/eval/compiled.ts): a compiled
 * function gives bit for bit what the function gives uncompiled, on random graphs (elementwise
 * chains, matmuls, reductions, views, closed-over constants, constant parts, random draws from
 * the global key, donated state) and on whole training steps of every optimizer; it traces once
 * per signature and again only when a shape, dtype, structure or non-array argument changes
 * (counted); shapeless functions re-derive shapes without tracing; it composes with grad, vjp,
 * jvp and vmap; it runs one native program per call; and misuse gets clear errors.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";
import { compile, grad, jvp, valueAndGrad, vjp, vmap } from "@tessera/transforms";

type A = mx.Array;
const { evalStats } = mx.internal;

/** Asserts two arrays are equal bit for bit (shape, dtype, every value; NaNs included). */
function expectSame(actual: A, expected: A, what = ""): void {
  expect(actual.shape, what).toEqual(expected.shape);
  expect(actual.dtype, what).toBe(expected.dtype);
  const a = actual.toTypedArray(), b = expected.toTypedArray();
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) expect([what, i, a[i]]).toEqual([what, i, b[i]]);
}

const normal = (shape: number[], seed: number, dtype: mx.DType = "float32") => {
  const x = mx.random.normal(shape, { key: mx.random.key(seed), dtype });
  mx.eval(x);
  return x;
};

// ---- random graphs ----

/** Ops of a random graph: each reads earlier values (pick) of shape [R, C] and returns one. */
type Op = (p: (k: number) => A, consts: A[]) => A;
const R = 6, C = 5;
const OPS: Op[] = [
  (p) => mx.add(p(0), p(1)),
  (p) => mx.multiply(p(0), p(1)),
  (p) => mx.subtract(p(0), mx.multiply(p(1), 0.5)),
  (p) => mx.divide(p(0), mx.add(mx.abs(p(1)), 1)),
  (p) => mx.tanh(p(0)),
  (p) => mx.exp(mx.minimum(p(0), 5)),
  (p) => mx.maximum(p(0), 0),
  (p) => mx.where(mx.greater(p(0), p(1)), p(0), mx.negative(p(1))),
  (p) => mx.multiply(mx.matmul(mx.matmul(p(0), mx.transpose(p(1))), p(1)), 0.1),
  (p) => mx.broadcastTo(mx.sum(p(0), 0, { keepdims: true }), [R, C]),
  (p) => mx.broadcastTo(mx.max(p(0), 1, { keepdims: true }), [R, C]),
  (p) => mx.softmax(p(0), -1),
  (p) => mx.transpose(mx.transpose(p(0))).add(p(1)), // a view chain
  (p, c) => mx.multiply(p(0), c[0]), // a closed-over constant
  (p, c) => mx.add(p(0), mx.exp(c[1])), // a constant part, evaluated once by the trace
  (p) => mx.add(p(0), mx.multiply(mx.arange(C, p(0).dtype), 0.1)), // a constant made inside
  (p) => mx.add(p(0), p(0)), // repeated input
  (p) => mx.add(mx.tanh(p(0)), mx.tanh(p(0))), // a common subexpression
  (p) => mx.add(p(0), mx.random.uniform(0, 1, [R, C], { dtype: p(0).dtype })), // the global key
  (p) => mx.cumsum(p(0), 1),
];

/** The random graph: args x, y and (optionally) a state tree whose `w` it replaces, donating the old one. */
function graph(ops: number[], picks: number[][], outs: number[], consts: A[], state?: { w: A }) {
  return (x: A, y: A) => {
    const vals: A[] = [x, y, ...(state ? [state.w] : [])];
    ops.forEach((o, i) => vals.push(OPS[o]((k) => vals[picks[i][k] % vals.length], consts)));
    if (state) {
      const old = state.w;
      state.w = mx.add(old, vals[vals.length - 1]);
      mx.internal.donate([old]);
    }
    const first = state ? 3 : 2; // the outputs are computed values (a donated one is gone after the call)
    return outs.map((k) => vals[first + (k % (vals.length - first))]);
  };
}

describe("compile on random graphs", () => {
  it("gives what the function gives, bit for bit, on each call and signature, tracing once per signature", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(OPS.length - 1), { minLength: 1, maxLength: 14 }),
        fc.array(fc.array(fc.nat(30), { minLength: 2, maxLength: 2 }), { minLength: 14, maxLength: 14 }),
        fc.array(fc.nat(30), { minLength: 1, maxLength: 3 }),
        fc.nat(1000),
        fc.constantFrom("float32" as const, "float64" as const),
        (ops, picks, outs, seed, dtype) => {
          const consts = [normal([R, C], seed + 7, dtype), mx.multiply(normal([R, C], seed + 8, dtype), 0.1)]; // the second stays lazy
          let traces = 0;
          const f = graph(ops, picks, outs, consts);
          const cf = compile((x: A, y: A) => (traces++, f(x, y)));
          for (const [call, d] of [[0, dtype], [1, dtype], [2, dtype === "float32" ? "float64" : "float32"], [3, dtype]] as const) {
            const x = normal([R, C], seed + 10 * call, d), y = normal([R, C], seed + 10 * call + 1, d);
            mx.random.seed(seed + call);
            const want = f(x, y);
            mx.eval(want);
            mx.random.seed(seed + call);
            const got = cf(x, y);
            mx.eval(got);
            want.forEach((w, i) => expectSame(got[i], w, `call ${call} output ${i}`));
          }
          expect(traces).toBe(2); // float32 and float64: calls 0, 1 and 3 share one trace
        },
      ),
      { numRuns: 60, seed: 11 },
    );
  });

  it("replaces donated state in place, as uncompiled, and disposes what it replaced", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(OPS.length - 1), { minLength: 1, maxLength: 10 }),
        fc.array(fc.array(fc.nat(30), { minLength: 2, maxLength: 2 }), { minLength: 10, maxLength: 10 }),
        fc.nat(1000),
        (ops, picks, seed) => {
          const consts = [normal([R, C], seed + 7), normal([R, C], seed + 8)];
          const plainState = { w: normal([R, C], seed + 9) };
          const compiledState = { w: mx.copy(plainState.w) };
          mx.eval(compiledState.w);
          const f = graph(ops, picks, [0], consts, plainState);
          const cf = compile(graph(ops, picks, [0], consts, compiledState), { inputs: [compiledState], outputs: [compiledState] });
          for (let call = 0; call < 3; call++) {
            const x = normal([R, C], seed + 3 * call), y = normal([R, C], seed + 3 * call + 1);
            const before = compiledState.w;
            mx.random.seed(seed + call);
            const want = f(x, y);
            mx.eval(want, plainState.w);
            mx.random.seed(seed + call);
            const got = cf(x, y);
            mx.eval(got, compiledState.w);
            expect(before.disposed).toBe(true); // donated: its buffer was the new value's
            expectSame(compiledState.w, plainState.w, `state after call ${call}`);
            expectSame(got[0], want[0], `output of call ${call}`);
          }
        },
      ),
      { numRuns: 30, seed: 12 },
    );
  });
});

// ---- training steps ----

const OPTIMIZERS: [string, () => optim.Optimizer][] = [
  ["SGD momentum, dampening", () => new optim.SGD({ learningRate: optim.cosineDecay(0.1, 10), momentum: 0.9, dampening: 0.1, weightDecay: 1e-3 })],
  ["SGD nesterov", () => new optim.SGD({ learningRate: 0.05, momentum: 0.9, nesterov: true })],
  ["Adam", () => new optim.Adam({ learningRate: optim.linearSchedule(1e-2, 1e-3, 5) })],
  ["Adam amsgrad, no bias correction", () => new optim.Adam({ learningRate: 1e-2, amsgrad: true, biasCorrection: false })],
  ["AdamW", () => new optim.AdamW({ learningRate: 1e-2, weightDecay: 0.1 })],
  ["Adamax", () => new optim.Adamax({ learningRate: optim.exponentialDecay(1e-2, 0.9) })],
  ["RMSprop", () => new optim.RMSprop({ learningRate: 1e-2, momentum: 0.5, centered: true })],
  ["Adagrad", () => new optim.Adagrad({ learningRate: 1e-2, lrDecay: 0.1 })],
  ["AdaDelta", () => new optim.AdaDelta({ learningRate: 1.0 })],
  ["Lion", () => new optim.Lion({ learningRate: 1e-3, weightDecay: 0.1 })],
  ["Adafactor", () => new optim.Adafactor({ weightDecay: 0.01 })],
];

/** A model with dropout (draws from the global key) and its data. */
function setup(makeOpt: () => optim.Optimizer) {
  mx.random.seed(3);
  const model = new nn.Sequential(new nn.Linear(6, 16), new nn.ReLU(), new nn.Dropout(0.25), new nn.Linear(16, 3));
  const opt = makeOpt();
  mx.eval(model.parameters());
  return { model, opt };
}

describe("compiled training steps", () => {
  const x = normal([12, 6], 1);
  const y = mx.random.randint(0, 3, [12], { key: mx.random.key(2), dtype: "int32" });
  const loss = (m: nn.Module, x: A, y: A) => nn.losses.crossEntropy((m as nn.Sequential).forward(x), y, { reduction: "mean" });

  for (const [name, makeOpt] of OPTIMIZERS) {
    it(`${name}: parameters, state, step count and losses bit for bit as uncompiled, one program per step`, () => {
      const run = (compiled: boolean) => {
        const { model, opt } = setup(makeOpt);
        const lossAndGrad = nn.valueAndGrad(model, loss);
        let traces = 0;
        const step = (x: A, y: A) => {
          traces++;
          const [l, g] = lossAndGrad(model, x, y);
          opt.update(model, g);
          return l;
        };
        const f = compiled ? compile(step, { inputs: [model, opt], outputs: [model, opt] }) : step;
        const losses: number[] = [];
        let programs = 0;
        for (let i = 0; i < 6; i++) {
          const l = f(x, y);
          evalStats.reset();
          mx.eval(l, model.parameters(), opt.state);
          programs = evalStats.programs;
          losses.push(l.item() as number);
        }
        return { model, opt, losses, traces, programs };
      };
      const plain = run(false), comp = run(true);
      expect(comp.losses).toEqual(plain.losses);
      expect(comp.opt.step).toBe(6);
      // Two traces: the first step also creates the optimizer's state (a new signature after it).
      expect(comp.traces).toBe(2);
      expect(comp.programs).toBe(1);
      const a = mx.treeFlatten(plain.model.parameters() as mx.Tree<A>), b = mx.treeFlatten(comp.model.parameters() as mx.Tree<A>);
      expect(b.map(([p]) => p)).toEqual(a.map(([p]) => p));
      a.forEach(([p, v], i) => expectSame(b[i][1], v, p));
      const sa = mx.treeFlatten(plain.opt.state as mx.Tree<A>), sb = mx.treeFlatten(comp.opt.state as mx.Tree<A>);
      expect(sb.map(([p]) => p)).toEqual(sa.map(([p]) => p));
      sa.forEach(([p, v], i) => expectSame(sb[i][1], v, `state ${p}`));
    });
  }

  it("treats a model and an optimizer passed as arguments as state read and written", () => {
    const plain = setup(() => new optim.SGD({ learningRate: 0.1 }));
    const comp = setup(() => new optim.SGD({ learningRate: 0.1 }));
    const step = (model: nn.Module, opt: optim.Optimizer, x: A, y: A) => {
      const [l, g] = nn.valueAndGrad(model, loss)(model, x, y);
      opt.update(model, g);
      return l;
    };
    const cstep = compile(step);
    for (let i = 0; i < 3; i++) {
      mx.random.seed(10 + i); // the same dropout draws for both
      const a = step(plain.model, plain.opt, x, y);
      mx.random.seed(10 + i);
      const b = cstep(comp.model, comp.opt, x, y);
      mx.eval(a, b, plain.model.parameters(), comp.model.parameters());
      expectSame(b, a, `loss ${i}`);
    }
    expectSame((comp.model.parameters() as any).layers[0].weight, (plain.model.parameters() as any).layers[0].weight);
  });

  it("writes parameters back where they were read: nested lists and objects, a layer used twice, a changed model", () => {
    class Odd extends nn.Module {
      shared = new nn.Linear(6, 6);
      blocks = [this.shared, { inner: new nn.Linear(6, 3) }];
      scales: { s: A[] } = { s: [normal([3], 7), normal([3], 8)] };
      forward(x: A) {
        const h = mx.tanh(this.shared.forward(this.shared.forward(x)));
        return mx.multiply(mx.multiply((this.blocks[1] as { inner: nn.Linear }).inner.forward(h), this.scales.s[0]), this.scales.s[1]);
      }
    }
    const oddLoss = (m: Odd, x: A, y: A) => nn.losses.crossEntropy(m.forward(x), y, { reduction: "mean" });
    const run = (compiled: boolean) => {
      mx.random.seed(4);
      const model = new Odd();
      const opt = new optim.Adam({ learningRate: 1e-2 });
      let traces = 0;
      const step = (x: A, y: A) => {
        traces++;
        const [l, g] = nn.valueAndGrad(model, oddLoss)(model, x, y);
        opt.update(model, g);
        return l;
      };
      const f = compiled ? compile(step, { inputs: [model, opt], outputs: [model, opt] }) : step;
      const losses: number[] = [];
      for (let i = 0; i < 5; i++) {
        // A new list in the model between steps: the next call writes into the new one.
        if (i === 3) model.scales.s = [...model.scales.s];
        const l = f(x, y);
        mx.eval(l, model.parameters(), opt.state);
        losses.push(l.item() as number);
      }
      return { model, losses, traces };
    };
    const plain = run(false), comp = run(true);
    expect(comp.losses).toEqual(plain.losses);
    expect(comp.traces).toBe(2);
    expect(comp.model.blocks[0]).toBe(comp.model.shared);
    const a = mx.treeFlatten(plain.model.parameters() as mx.Tree<A>), b = mx.treeFlatten(comp.model.parameters() as mx.Tree<A>);
    expect(b.map(([p]) => p)).toEqual(a.map(([p]) => p));
    a.forEach(([p, v], i) => expectSame(b[i][1], v, p));
  });
});

// ---- tracing and signatures ----

describe("compile traces once per signature", () => {
  it("retraces on a new shape, dtype, structure or non-array argument, and not otherwise", () => {
    let traces = 0;
    const f = compile((t: { a: A; b: A[] }, k: number) => {
      traces++;
      return t.b.reduce((s, x) => mx.add(s, x), mx.multiply(t.a, k));
    });
    const v = (shape: number[], d: mx.DType = "float32") => normal(shape, shape.length, d);
    const calls: [() => unknown, number][] = [
      [() => f({ a: v([3]), b: [v([3])] }, 2), 1],
      [() => f({ a: v([3]), b: [v([3])] }, 2), 1], // same signature, new arrays
      [() => f({ a: v([4]), b: [v([4])] }, 2), 2], // shape
      [() => f({ a: v([3], "float64"), b: [v([3], "float64")] }, 2), 3], // dtype
      [() => f({ a: v([3]), b: [v([3]), v([3])] }, 2), 4], // structure
      [() => f({ a: v([3]), b: [v([3])] }, 3), 5], // a non-array argument
      [() => f({ a: v([3]), b: [v([3])] }, 2), 5], // back to the first: cached
      [() => f({ a: v([4]), b: [v([4])] }, 2), 5],
    ];
    for (const [call, want] of calls) {
      mx.eval(call() as A);
      expect(traces).toBe(want);
    }
    const r = f({ a: mx.array([1, 2, 3]), b: [mx.array([10, 20, 30])] }, 3);
    expect(r.tolist()).toEqual([13, 26, 39]);
  });

  it("shapeless: new shapes re-derive the traced graph without running fn again", () => {
    let traces = 0;
    const f = (x: A, w: A) => mx.sum(mx.tanh(mx.matmul(x, w)), -1);
    const cf = compile((x: A, w: A) => (traces++, f(x, w)), { shapeless: true });
    const w = normal([5, 3], 4);
    for (const rows of [2, 7, 2, 11]) {
      const x = normal([rows, 5], rows);
      expectSame(cf(x, w), f(x, w), `rows ${rows}`);
    }
    expect(traces).toBe(1);
    const fixed = compile((x: A) => mx.reshape(x, [2, 3]), { shapeless: true });
    expect(fixed(normal([6], 1)).shape).toEqual([2, 3]);
    expect(() => fixed(normal([8], 1))).toThrow(/compile: a shapeless function's graph does not fit its new input shapes \(\[8\]\) at reshape/);
    // A constant broadcast to the traced shape (its values may depend on it: mean's 1 / n).
    const scaled = compile((x: A) => mx.multiply(x, 2), { shapeless: true });
    expect(scaled(normal([4], 1)).shape).toEqual([4]);
    expect(() => scaled(normal([8], 1))).toThrow(/at mul: an operand of shape \[4\] was fixed when the function was traced/);
    const square = normal([3, 3], 5); // closed over, and the traced output's shape: matmul still follows
    const sq = compile((x: A) => mx.matmul(x, square), { shapeless: true });
    expectSame(sq(normal([3, 3], 1)), mx.matmul(normal([3, 3], 1), square), "square");
    expectSame(sq(normal([7, 3], 2)), mx.matmul(normal([7, 3], 2), square), "square, 7 rows");
    const meanGrad = compile((x: A) => grad((x: A) => mx.mean(mx.mul(x, x)))(x), { shapeless: true });
    meanGrad(normal([4, 3], 1));
    expect(() => meanGrad(normal([8, 3], 1))).toThrow(/an operand of shape \[4,3\] was fixed when the function was traced/);
  });

  it("shapeless: state written in place follows new argument shapes, as uncompiled, tracing once", () => {
    class Acc extends nn.Module {
      w = mx.zeros([5]);
      seen = [mx.zeros([1, 5])];
    }
    const run = (compiled: boolean) => {
      const model = new Acc();
      let traces = 0;
      const step = (x: A) => {
        traces++;
        // w keeps its shape, seen takes each call's rows: only w can go straight back in place.
        model.update({ w: mx.add(model.w, mx.sum(x, 0)), seen: [mx.add(x, x)] });
        return mx.sum(mx.tanh(x));
      };
      const f = compiled ? compile(step, { inputs: [model], outputs: [model], shapeless: true }) : step;
      const sums = [3, 7, 9, 3].map((rows) => {
        model.seen = [mx.zeros([rows, 5])]; // the next call reads state of its own rows
        const l = f(normal([rows, 5], rows));
        mx.eval(l, model.parameters());
        return l.item() as number;
      });
      // State read with other rows than the function writes: update refuses, compiled or not.
      expect(() => f(normal([7, 5], 1))).toThrow(/^Module\.update: shape mismatch at "seen\.0" \(expected \[3,5\], got \[7,5\]\)/);
      return { model, sums, traces };
    };
    const plain = run(false), comp = run(true);
    expect(comp.sums).toEqual(plain.sums);
    expect(comp.traces).toBe(1);
    expectSame(comp.model.w, plain.model.w, "w");
    expect(comp.model.seen[0].shape).toEqual([3, 5]);
    expectSame(comp.model.seen[0], plain.model.seen[0], "seen");
  });

  it("gives each call fresh numbers from the global key, the same sequence as uncompiled", () => {
    const f = (x: A) => mx.add(x, mx.random.normal([4]));
    const cf = compile(f);
    const x = mx.zeros([4]);
    mx.random.seed(5);
    const plain = [0, 1, 2].map(() => f(x).tolist());
    mx.random.seed(5);
    const comp = [0, 1, 2].map(() => cf(x).tolist());
    expect(comp).toEqual(plain);
    expect(comp[1]).not.toEqual(comp[0]);
  });
});

// ---- composition, laziness, errors ----

describe("compile composes and stays lazy", () => {
  const f = (x: A, y: A) => mx.sum(mx.multiply(mx.sin(x), mx.exp(y)));
  const x = normal([5], 1, "float64"), y = normal([5], 2, "float64");

  it("with grad, valueAndGrad, vjp, jvp and vmap, inside and outside", () => {
    const cf = compile(f);
    expectSame(grad(cf)(x, y), grad(f)(x, y), "grad(compile(f))");
    expectSame(compile(grad(f))(x, y), grad(f)(x, y), "compile(grad(f))");
    const [v1, g1] = valueAndGrad(cf, { argnums: [0, 1] })(x, y), [v2, g2] = valueAndGrad(f, { argnums: [0, 1] })(x, y);
    expectSame(v1, v2);
    g1.forEach((g, i) => expectSame(g, g2[i]));
    expectSame(vjp(cf, [x, y], [mx.array(2, "float64")])[1][0], vjp(f, [x, y], [mx.array(2, "float64")])[1][0], "vjp");
    expectSame(jvp(cf, [x, y], [y, x])[1][0], jvp(f, [x, y], [y, x])[1][0], "jvp");
    const xs = normal([3, 5], 3, "float64");
    expectSame(vmap(cf, { inAxes: [0, null] })(xs, y), vmap(f, { inAxes: [0, null] })(xs, y), "vmap(compile(f))");
    expectSame(compile(vmap(f, { inAxes: [0, null] }))(xs, y), vmap(f, { inAxes: [0, null] })(xs, y), "compile(vmap(f))");
  });

  it("takes lazy arguments, returns lazy results other ops can read, and works with evalAsync", async () => {
    const cf = compile(f);
    evalStats.reset();
    const r = cf(mx.add(x, 1), mx.multiply(y, 2));
    expect(evalStats.programs).toBe(0); // nothing ran yet
    const s = mx.add(r, 1);
    expectSame(s, mx.add(f(mx.add(x, 1), mx.multiply(y, 2)), 1));
    const later = cf(x, y);
    await mx.evalAsync(later);
    expectSame(later, f(x, y), "evalAsync");
  });

  it("runs a compiled call as one native program of fused instructions", () => {
    const g = compile((x: A, y: A) => mx.multiply(mx.tanh(mx.add(mx.multiply(x, 2), y)), mx.exp(x)));
    mx.eval(g(x, y));
    evalStats.reset();
    mx.eval(g(x, y));
    expect(evalStats.programs).toBe(1);
    expect(evalStats.fused).toBe(1);
  });
});

describe("compile errors", () => {
  const x = normal([3], 1);
  it("names what is wrong", () => {
    expect(() => compile(3 as any)).toThrow(/compile: fn must be a function; got number/);
    expect(() => compile((a: A) => a, { inputs: [x] })).toThrow(/compile: inputs\[0\] is an Array; state is read and written in place/);
    expect(() => compile((a: A) => a, { outputs: [5] })).toThrow(/compile: outputs\[0\] must be a model, an optimizer, or a plain object or JS array of arrays; got number/);
    expect(() => compile((a: A) => [a, 3] as any)(x)).toThrow(/compile: fn must return Arrays \(a tree of them\); found number at "1"/);
    expect(() => compile((a: A) => mx.array(a.sum().item() as number))(x)).toThrow(
      /^item: cannot read the value of an array traced by compile \(shape \[3\]\)/,
    );
    const state = { w: x };
    expect(() => compile((a: A) => mx.add(a, state.w.sum().item() as number), { inputs: [state] })(x)).toThrow(/traced by compile/);
    expect(state.w).toBe(x); // a failed trace gives the state its arrays back
  });
});
