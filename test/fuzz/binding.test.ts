/**
 * Fuzz test of the internal binding (`mx.internal.native`, packages/core/src/native/binding.ts):
 * whatever it is given, every call returns or throws an Error, and the process goes on working.
 *
 * - mutated programs: bodies built by `mx.internal.buildProgram` from random graphs (see
 *   graph-model.ts), with fields changed where the format puts them (counts, opcodes, devices,
 *   slots, dtypes, dims, parameters, scalar indices), words flipped, inserted, deleted and swapped,
 *   bodies truncated and extended, instructions duplicated; and their bindings changed (handles
 *   that do not exist, freed ones, ones of other dtypes, shapes or devices, wrong counts, special
 *   scalars). They run through run, runAsync, keepBody/runBody and a released body. An unmutated
 *   program must give the bytes a normal evaluation gives.
 * - programs drawn from the grammar with random opcodes, operands, output specs and parameters,
 *   so that the operand checks of every opcode (and the kernels behind them) see odd combinations.
 * - random words as bodies, with random bindings.
 * - every binding function called with random argument lists: strings, objects, negative, huge
 *   and non-integer numbers, NaN, BigInts, typed arrays of the wrong kind, detached and shared
 *   buffers, live, freed and foreign handles.
 *
 * Everything runs in this process (a crash fails the file). Afterwards a normal op must evaluate
 * correctly and the handles, kept bodies and active bytes must be back where they were. The crashes
 * this fuzz found (fixed in 7cb9b64) have regression tests at the end, each in a child process.
 * TESSERA_FUZZ_RUNS scales the case counts (2000: the default).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import * as mx from "@tessera/core";
import { buildGraph, recordGraph } from "./graph-model.js";
import { DEFAULT_RUNS, FUZZ } from "../helpers/fuzz.js";
import { rng } from "../helpers/reference.js";
import {
  INTERESTING, ITEMSIZE, NUM_DEVICES, OPCODES, SPECIAL_DOUBLES, VERSION, call, dtypeCode, grammarProgram,
  RECIPES, instanceProgram, instancesOf, learnTemplates, mutateBindings, mutateBody, native, parseBody, recipe, release,
  type Instance,
  type BindMutation, type HandlePool, type Mutation, type Outcome, type PoolArray,
} from "./binding-model.js";

const scaled = (k: number) => Math.max(10, Math.round((k * FUZZ.runs) / DEFAULT_RUNS));
/** fast-check's settings: every property takes TESSERA_FUZZ_SEED (a path replays one case: select its test with -t). */
const opts = (numRuns: number) => ({ numRuns, seed: FUZZ.seed, ...(FUZZ.path ? { path: FUZZ.path } : {}) });
/** The allocator's cap while fuzzing: a mutated shape asks for a few bytes or for too many, never for all memory. */
const LIMIT = 256 * 2 ** 20;
const TIMEOUT = 30 * 60_000;
const gc = () => (globalThis as { gc?: () => void }).gc?.();

let base: ReturnType<typeof native.memoryStats>;
let previousLimit = 0;
const pool: PoolArray[] = [];
const others: HandlePool = { foreign: [], freed: [] };

/** A new array from random bytes. */
function fresh(dtype: mx.DType, shape: number[], device = 0, seed = 1): number {
  const n = shape.reduce((p, d) => p * d, 1) * ITEMSIZE[dtypeCode(dtype)];
  const r = rng(seed);
  const bytes = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  if (dtype === "bool") bytes.forEach((_, i) => (bytes[i] &= 1));
  return native.fromData(bytes, dtypeCode(dtype), shape, device);
}

beforeAll(() => {
  gc();
  base = native.memoryStats();
  previousLimit = native.setMemoryLimit(LIMIT);
  const specs: [mx.DType, number[], number][] = [
    ["float32", [2, 3], 0], ["float32", [3], 0], ["float64", [], 0], ["int32", [3], 0], ["int32", [2, 2], 0], ["bool", [2, 2], 0],
    ["uint8", [0], 0], ["int64", [2, 1], 0], ["float16", [4], 0], ["int8", [3, 1, 2], 0], ["uint32", [1], 0], ["float32", [3, 2], 0],
    ...(NUM_DEVICES > 1 ? ([["float32", [3], 1], ["int32", [2, 2], 1]] as [mx.DType, number[], number][]) : []),
  ];
  specs.forEach(([d, s, dev], i) => pool.push({ handle: fresh(d, s, dev, i + 1), dtype: dtypeCode(d), shape: s, device: dev }));
  others.foreign = pool.map((a) => a.handle);
  for (let i = 0; i < 3; i++) {
    const h = fresh("float32", [2], 0, 100 + i);
    native.free(h);
    others.freed.push(h);
  }
});

afterAll(() => {
  native.setMemoryLimit(previousLimit);
});

/** A normal op still evaluates correctly. */
function stillComputes(): void {
  const x = mx.array([[1, 2], [3, 4]], "float64");
  expect(mx.matmul(x, x.T).add(1).tolist()).toEqual([[6, 12], [12, 26]]);
}

function expectError(o: Outcome, what: string): void {
  if (!o.ok && !(o.error instanceof Error)) expect.fail(`${what} threw a non-Error: ${String(o.error)}`);
}

/**
 * Runs a body through one of the entry points: run, runAsync, keepBody + runBody (twice), a body
 * released before runBody (must fail), or run of a view into a larger buffer. Frees what it made
 * beyond the returned outcome.
 */
async function runVia(entry: number, body: Int32Array, inputs: Int32Array, scalars: Float64Array): Promise<Outcome> {
  switch (entry % 5) {
    case 0: return call("run", [body, inputs, scalars]);
    case 1: return call("runAsync", [body, inputs, scalars]);
    case 2: {
      const kept = await call("keepBody", [body]);
      expectError(kept, "keepBody");
      if (!kept.ok) return kept;
      try {
        const first = await call("runBody", [kept.value, inputs, scalars]);
        const again = await call("runBody", [kept.value, inputs, scalars]);
        expectError(again, "runBody");
        if (again.ok) release("runBody", again.value);
        return first;
      } finally {
        native.releaseBody(kept.value as number);
      }
    }
    case 3: {
      const kept = await call("keepBody", [body]);
      if (!kept.ok) return kept;
      native.releaseBody(kept.value as number);
      const o = await call("runBody", [kept.value, inputs, scalars]);
      expect(o.ok, "runBody of a released body").toBe(false);
      return o;
    }
    default: {
      const big = new Int32Array(body.length + 7).fill(-77);
      big.set(body, 3);
      return call("run", [big.subarray(3, 3 + body.length), inputs, scalars]);
    }
  }
}

/** The raw bytes of an array's data. */
function bytesOf(handle: number, nbytes: number): Uint8Array {
  const out = new Uint8Array(nbytes);
  native.read(handle, out);
  return out;
}

const stepArb = fc.record({ op: fc.nat({ max: 9999 }), arg: fc.nat({ max: 40 }), seed: fc.nat() });
const mutationArb: fc.Arbitrary<Mutation> = fc.record({ kind: fc.nat({ max: 11 }), at: fc.nat(), value: fc.nat(), extra: fc.nat() });
const bindArb: fc.Arbitrary<BindMutation> = fc.record({ kind: fc.nat({ max: 6 }), at: fc.nat(), value: fc.nat() });

describe("the binding survives malformed programs and arguments", () => {
  it("mutated programs and bindings: a result or an Error", async () => {
    const caseArb = fc.record({
      steps: fc.array(stepArb, { minLength: 1, maxLength: 10 }),
      roots: fc.nat(),
      muts: fc.oneof({ weight: 1, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 6, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }) }),
      binds: fc.oneof({ weight: 4, arbitrary: fc.constant<BindMutation[]>([]) }, { weight: 1, arbitrary: fc.array(bindArb, { minLength: 1, maxLength: 2 }) }),
      entry: fc.nat({ max: 4 }),
      seed: fc.nat(),
      source: fc.nat({ max: 3 }),
    });
    await fc.assert(fc.asyncProperty(caseArb, async (c) => {
      // a random graph (three times in four) or a recipe of the ops the graphs do not draw
      const fromRecipe = c.source === 0 ? recipe(c.seed, c.roots) : null;
      const arrays = fromRecipe ?? recordGraph(buildGraph(c.steps, "eval-all", c.seed, { big: false, probes: false }));
      const r = rng(c.roots);
      const roots = arrays.filter(() => r() < 0.4);
      if (!roots.length) roots.push(arrays[arrays.length - 1]);
      const p = mx.internal.buildProgram(roots, "fuzz");
      if (!p) return;
      const valid = c.muts.length === 0 && c.binds.length === 0;
      const body = valid ? p.body : mutateBody(p.body, c.muts);
      const [inputs, scalars] = c.binds.length ? mutateBindings(p.inputs, p.scalars, c.binds, others) : [p.inputs, p.scalars];
      const parsed = parseBody(body);
      const o = await runVia(valid && c.entry % 5 === 3 ? 0 : c.entry, body, inputs, scalars);
      expectError(o, "a run");
      if (!o.ok) {
        if (valid) expect.fail(`a valid program failed: ${String((o as { error: unknown }).error)}\n${mx.internal.printGraph(...roots)}`);
        return;
      }
      expect(o.value).toBeInstanceOf(Int32Array);
      const handles = o.value as Int32Array;
      if (valid) {
        // the bytes of a normal evaluation
        expect(handles.length).toBe(p.outputs.length);
        mx.eval(p.outputs);
        p.outputs.forEach((a, i) => {
          const nbytes = a.size * a.itemsize;
          expect(bytesOf(handles[i], nbytes), `output ${i} of\n${mx.internal.printGraph(...roots)}`).toEqual(bytesOf(a.handle, nbytes));
        });
      }
      release("run", handles, parsed.specs, parsed.outputs);
    }), opts(scaled(2500)));
    stillComputes();
  }, TIMEOUT);

  it("programs drawn from the grammar, and instructions of valid programs on random bytes: a result or an Error", async () => {
    // the counts and parameters of each opcode as valid programs use them
    const bodies: Int32Array[] = [];
    const instances: Instance[] = [];
    const learn = (arrays: mx.Array[] | null) => {
      const p = arrays && mx.internal.buildProgram(arrays, "templates");
      if (!p) return;
      bodies.push(p.body);
      instances.push(...instancesOf(p));
    };
    for (let k = 0; k < 300; k++) {
      const r = rng(k + 1);
      const steps = Array.from({ length: 1 + Math.floor(r() * 10) }, () => ({ op: Math.floor(r() * 9999), arg: Math.floor(r() * 5), seed: Math.floor(r() * 2 ** 31) }));
      learn(recordGraph(buildGraph(steps, "eval-all", k, { big: false, probes: false })));
    }
    RECIPES.forEach((_, k) => learn(recipe(k, k + 1)));
    const templates = learnTemplates(bodies);
    // instances grouped by opcode, so that each opcode is drawn as often as any other
    const groups = new Map<number, Instance[]>();
    for (const t of instances) groups.set(t.op, [...(groups.get(t.op) ?? []), t]);
    const byOp = [...groups.values()];
    await fc.assert(fc.asyncProperty(fc.nat(), fc.nat({ max: 4 }), fc.boolean(), async (seed, entry, replay) => {
      if (replay) {
        // one instruction of a valid program on random bytes (now and then an operand or parameter changed)
        const group = byOp[seed % byOp.length];
        const { body, inputs, scalars, made } = instanceProgram(group[Math.floor(seed / byOp.length) % group.length], seed);
        try {
          const parsed = parseBody(body);
          const o = await runVia(entry, body, inputs, scalars);
          expectError(o, "a run");
          if (o.ok) release("run", o.value, parsed.specs, parsed.outputs);
        } finally {
          made.forEach((h) => native.free(h));
        }
        return;
      }
      const { body, inputs, scalars } = grammarProgram(seed, pool, templates);
      const parsed = parseBody(body);
      const o = await runVia(entry, body, inputs, scalars);
      expectError(o, "a run");
      if (o.ok) release("run", o.value, parsed.specs, parsed.outputs);
    }), opts(scaled(4000)));
    stillComputes();
  }, TIMEOUT);

  it("random words as bodies: an Error (or, rarely, a result)", async () => {
    const word = fc.oneof(fc.integer(), fc.constantFrom(...INTERESTING), fc.nat({ max: 40 }));
    const caseArb = fc.record({
      versioned: fc.boolean(),
      words: fc.array(word, { maxLength: 48 }),
      inputs: fc.array(fc.nat(), { maxLength: 3 }),
      scalars: fc.array(fc.oneof(fc.double(), fc.constantFrom(...SPECIAL_DOUBLES)), { maxLength: 4 }),
      entry: fc.nat({ max: 4 }),
    });
    await fc.assert(fc.asyncProperty(caseArb, async (c) => {
      const words = c.versioned ? [VERSION, ...c.words] : c.words;
      const body = Int32Array.from(words);
      const handles = [...pool.map((a) => a.handle), ...others.freed, 0, -1];
      const inputs = Int32Array.from(c.inputs, (i) => handles[i % handles.length]);
      const parsed = parseBody(body);
      const o = await runVia(c.entry, body, inputs, Float64Array.from(c.scalars));
      expectError(o, "a run");
      if (o.ok) release("run", o.value, parsed.specs, parsed.outputs);
    }), opts(scaled(1500)));
    stillComputes();
  }, TIMEOUT);

  it("every binding function with wrong arguments: a result or an Error", async () => {
    const made: number[] = [];
    const live = () => {
      const h = fresh("float32", [2, 2], 0, made.length + 7);
      made.push(h);
      return h;
    };
    const detached = () => {
      const t = new Int32Array(4);
      structuredClone(t.buffer, { transfer: [t.buffer] });
      return t;
    };
    const sparse = (n: number) => {
      const a: number[] = [];
      a.length = n;
      return a;
    };
    const throwing = () => {
      const a = [1, 2];
      Object.defineProperty(a, 1, { get() { throw new Error("getter"); } });
      return a;
    };
    // Factories, so that each call gets fresh values (typed arrays may be written to).
    const VALUES: (() => unknown)[] = [
      () => undefined, () => null, () => true, () => false, () => 0, () => -1, () => -0, () => NaN, () => Infinity, () => -Infinity,
      () => 2 ** 31, () => -(2 ** 31) - 1, () => 2 ** 53, () => 1e300, () => 1_000_000_007, () => 1_000_000_007.5, () => 2 ** 32 + 1_000_000_007,
      () => "", () => "abc", () => "1", () => ({}), () => ({ length: 3 }), () => [], () => [1, 2, 3], () => [[1]], () => [-1], () => [1.5],
      () => [2 ** 31], () => [1e9, 1e9, 1e9], () => sparse(1 << 16), throwing, () => () => 1, () => Symbol("s"), () => 1n, () => -(2n ** 70n),
      () => new Int32Array(0), () => Int32Array.from([VERSION, 0, 0, 0, 0, 0]), () => Int32Array.from([VERSION, 1, 0, 0, 0, 1, 0]),
      () => new Int32Array(3), () => new Float64Array(3), () => new Float64Array(0), () => new BigInt64Array(2), () => new BigUint64Array(1),
      () => new Float32Array(4), () => new Uint8Array(4), () => new Uint8Array(0), () => new Int16Array(2), () => new Uint8ClampedArray(16),
      () => new DataView(new ArrayBuffer(8)), () => new ArrayBuffer(8), () => new Int32Array(new SharedArrayBuffer(16)),
      () => new Float64Array(new SharedArrayBuffer(16)), detached, () => new Float32Array(new ArrayBuffer(64), 8, 4),
      live, () => others.freed[0], () => pool[0].handle, () => mx.array([1, 2]), () => Promise.resolve(1), () => new Proxy({}, {}),
      () => Object.freeze([2, 2]), () => dtypeCode("float32"), () => 13, () => 99, () => NUM_DEVICES, () => OPCODES.length,
    ];
    const FUNCS = [
      "fromData", "read", "free", "track", "run", "runAsync", "keepBody", "runBody", "releaseBody", "devices", "opTable",
      "describe", "memoryStats", "resetPeakMemory", "clearCache", "setMemoryLimit", "numThreads",
    ];
    const caseArb = fc.record({ fn: fc.constantFrom(...FUNCS), args: fc.array(fc.nat({ max: VALUES.length - 1 }), { maxLength: 5 }) });
    await fc.assert(fc.asyncProperty(caseArb, async ({ fn, args: picks }) => {
      // free(h) or track(o, h) of a pool handle would pull data from under the other cases: they get new ones
      const args = picks.map((i) => VALUES[i]()).map((v) => ((fn === "free" || fn === "track") && v === pool[0].handle ? live() : v));
      try {
        const o = await call(fn, args);
        expectError(o, `${fn}(${picks.join(", ")})`);
        if (o.ok) release(fn, o.value);
      } finally {
        if (fn === "setMemoryLimit") native.setMemoryLimit(LIMIT);
        made.splice(0).forEach((h) => native.free(h));
      }
    }), opts(scaled(3000)));
    stillComputes();
  }, TIMEOUT);

  it("afterwards: a normal op evaluates correctly, and no handle, body or buffer is left behind", () => {
    stillComputes();
    pool.splice(0).forEach((a) => native.free(a.handle));
    gc();
    gc();
    const now = native.memoryStats();
    expect(now.handles).toBe(base.handles);
    expect(now.bodies).toBe(base.bodies);
    expect(now.active).toBe(base.active);
  });
});

/** Runs `code` (an ES module importing @tessera/core as mx) in a child Node process. */
function inChild(code: string) {
  const src = `import * as mx from "@tessera/core"; const native = mx.internal.native; const V = mx.internal.PROGRAM_VERSION;\n${code}\nconsole.log("alive");`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", src], { encoding: "utf8", timeout: 120_000, cwd: process.cwd(), env: process.env });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

/**
 * Calls that once crashed the process (found by this fuzz, fixed in 7cb9b64), each in a child
 * process so that a regression fails its test instead of killing this file: they must throw an
 * Error and leave the process alive.
 */
describe("known crashes (child processes)", () => {
  // MemoryStats called backend(device) outside guarded(), so the C++ exception for an unknown
  // device reached node-addon-api (which only catches Napi::Error): std::terminate. Every export
  // is guarded now.
  it("memoryStats(7) throws an Error instead of aborting", () => {
    const r = inChild(`
      let threw = false;
      try { native.memoryStats(7); } catch (e) { if (!(e instanceof Error)) throw e; threw = true; }
      if (!threw) throw new Error("memoryStats(7) returned");`);
    expect(r.out).toContain("alive");
    expect(r.status).toBe(0);
  });

  // Run read a Uint8Array of N elements as N doubles (here 512 MB from a 64 MB buffer: SIGSEGV);
  // bodies and input handles were read the same way. Typed-array kinds are checked now.
  it("run, keepBody and runBody reject typed arrays of a narrower kind instead of reading past their end", () => {
    const r = inChild(`
      const N = 1 << 26;
      const full = native.opTable().indexOf("full");
      const body = Int32Array.from([V, 1, 0, N, 1, full, 0, 0, 1, 0, 11, 0, 0, 1, 0, 1, 0]);
      const calls = [
        ["run", [body, new Int32Array(0), new Uint8Array(N)]],
        ["run", [new Uint8Array(24), new Int32Array(0), new Float64Array(0)]],
        ["run", [Int32Array.from([V, 0, 1, 0, 0, 0]), new Uint8Array(1), new Float64Array(0)]],
        ["run", [Int32Array.from([V, 0, 0, 2, 0, 0]), new Int32Array(0), new Float32Array(2)]],
        ["keepBody", [new Int16Array(12)]],
        ["runBody", [native.keepBody(Int32Array.from([V, 0, 0, 1, 0, 0])), new Int32Array(0), new Float32Array(2)]],
      ];
      for (const [f, args] of calls) {
        let threw = false;
        try { native[f](...args); } catch (e) { if (!(e instanceof Error)) throw e; threw = true; }
        if (!threw) throw new Error(f + " accepted a narrow typed array");
      }`);
    expect(r.out).toContain("alive");
    expect(r.status).toBe(0);
  });

  // decode_program allocated slot tables as large as the body claimed (a 6-word body declaring
  // 2^24 slots: 1.5 GB, about 90 bytes a slot; 2^27: about 12 GB). Counts are bounded by the body now.
  it("a body declaring more slots than it can write is rejected before anything is allocated", () => {
    const r = inChild(`
      const t0 = performance.now();
      let threw = false;
      try { native.run(Int32Array.from([V, 1 << 24, 0, 0, 0, 0]), new Int32Array(0), new Float64Array(0)); } catch (e) { threw = true; }
      if (!threw) throw new Error("accepted a body of 6 words declaring 2^24 slots");
      if (performance.now() - t0 > 500) throw new Error("took " + (performance.now() - t0) + " ms to reject it");`);
    expect(r.out).toContain("alive");
    expect(r.status).toBe(0);
  });
});
