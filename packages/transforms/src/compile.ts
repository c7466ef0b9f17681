/**
 * @file compile: trace a function once per input signature, simplify and fuse the traced graph,
 * keep the program decoded native-side, and replay it on every call with the call's buffers.
 * See docs/compile.md.
 */
import * as mx from "@tessera/core";
import { TransformError, isArray, type Array } from "@tessera/core";
import { fmt, withLeaves } from "./trace.js";

const { P, bind, onDevice, traceState, enterTrace, exitTrace, recordTrace, compileTracing, makeTrace, bindCall, donate, COMPILE_STATE } = mx.internal;
type Trace = mx.internal.Trace;
type StateAccess = mx.internal.CompileStateAccess;

/** Options of {@link compile}. */
export interface CompileOptions {
  /**
   * State the function reads besides its arguments: models, optimizers (anything with compile's
   * state protocol) and plain trees of arrays. Their arrays are inputs of every call.
   */
  inputs?: unknown[];
  /** State the function replaces: written back after every call (plain trees in place). */
  outputs?: unknown[];
  /**
   * Trace once per argument structure, ranks and dtypes, not per shape: a call with new shapes
   * re-derives the traced graph's shapes instead of running the function again. Only for
   * functions whose graph does not depend on their shapes (a reshape to a fixed size fails when
   * the shapes change; a fill of a fixed shape would stay that shape).
   */
  shapeless?: boolean;
}

/** One traced signature: the trace, where its results go, and which inputs it donates. */
interface Entry {
  trace: Trace;
  /** The structure of the function's result (treeFlatten paths), or the result itself when it holds no array. */
  outPairs: [string, unknown][];
  empty: { value: unknown } | null;
  /** For each state output, the paths of its tree. */
  statePairs: [string, unknown][][];
  /** Input positions the function donated (an optimizer replacing parameters): each call donates its own. */
  donated: number[];
  /** For shapeless calls with new shapes: the traced inputs and results. */
  tape: { inputs: Array[]; results: Array[] };
}

/** The state access of a compile `inputs`/`outputs` entry: the protocol, or a plain tree in place. */
function stateAccess(op: string, obj: unknown, where: string): StateAccess {
  const proto = obj !== null && typeof obj === "object" ? (obj as Record<symbol, StateAccess>)[COMPILE_STATE] : undefined;
  if (proto) return proto;
  if (isArray(obj)) {
    throw new TransformError(`${op}: ${where} is an Array; state is read and written in place, so name a model, an optimizer or an object or JS array holding the arrays`);
  }
  if (!globalThis.Array.isArray(obj) && !mx.isPlainObject(obj)) {
    throw new TransformError(`${op}: ${where} must be a model, an optimizer, or a plain object or JS array of arrays; got ${obj === null ? "null" : typeof obj}`);
  }
  return {
    read: () => obj,
    write: (tree) => {
      for (const [path, leaf] of mx.treeFlatten(tree)) assignPath(obj as Record<string, unknown>, path, leaf);
    },
  };
}

/** Sets `root`'s leaf at a dotted path (creating missing objects), for state written in place. */
function assignPath(root: Record<string, unknown>, path: string, leaf: unknown): void {
  const keys = path.split(".");
  let at: Record<string, unknown> = root;
  for (let i = 0; i < keys.length - 1; i++) {
    let next = at[keys[i]];
    if (next === null || typeof next !== "object") at[keys[i]] = next = /^\d+$/.test(keys[i + 1]) ? [] : {};
    at = next as Record<string, unknown>;
  }
  at[keys[keys.length - 1]] = leaf;
}

/** The arrays of a state's tree, by path (holes, null and undefined, are skipped). */
function stateLeaves(s: StateAccess, k: number): [string, Array][] {
  const out: [string, Array][] = [];
  for (const [path, v] of mx.treeFlatten(s.read() as mx.Tree<unknown>)) {
    if (isArray(v)) out.push([path, v]);
    else if (v !== null && v !== undefined) throw new TransformError(`compile: state ${k} has a leaf that is not an Array at "${path}" (${typeof v})`);
  }
  return out;
}

const hasState = (x: unknown) => x !== null && typeof x === "object" && COMPILE_STATE in (x as object);

/** A stable name for a non-array leaf in the signature: its value, or its identity for objects. */
const objectIds = new WeakMap<object, number>();
let nextObjectId = 0;
function leafKey(v: unknown): string {
  if (v === null || (typeof v !== "object" && typeof v !== "function")) return `${typeof v}:${String(v)}`;
  let id = objectIds.get(v as object);
  if (id === undefined) objectIds.set(v as object, (id = nextObjectId++));
  return `object:${id}`;
}

/**
 * Compiles `fn`: the first call with a new signature (argument structure, shapes, dtypes and
 * devices of its arrays, values of its other leaves, and the same of the state named in
 * `inputs`) traces `fn` on placeholders; the traced graph is simplified (parts that depend on no
 * input evaluated once, common subexpressions merged), its elementwise chains fused, and the
 * program kept decoded in the addon. Every call, the first included, records one call node whose
 * evaluation runs that program with the call's buffers; the results are lazy, as `fn`'s would be.
 *
 * As in MLX, arrays `fn` closes over are constants of the trace, and state `fn` reads or replaces
 * is named in `inputs` and `outputs` (a model or optimizer passed as an argument counts as both).
 * What `fn` reads from JavaScript state owned by tessera (the global random key, an optimizer's
 * step count and learning rate) is recomputed on every call, so a compiled step draws new random
 * numbers and follows its schedule exactly as the uncompiled one. Parameters and optimizer state
 * that an update replaces are donated: the call writes the new values over the old buffers.
 *
 * Inside a transform (`grad(compiled)`, `vmap(compiled)`) or another compiled function, `fn`
 * runs as it is, so compile composes with every transform. `mx.eval` and value reads inside `fn`
 * of arrays that depend on its inputs throw while it is traced.
 * @example
 * const model = new nn.Linear(4, 1);
 * const opt = new optim.Adam({ learningRate: 1e-2 });
 * const lossAndGrad = nn.valueAndGrad(model, (m, x, y) => nn.losses.mseLoss(m.forward(x), y, { reduction: "mean" }));
 * const step = compile((x, y) => {
 *   const [loss, grads] = lossAndGrad(model, x, y);
 *   opt.update(model, grads);
 *   return loss;
 * }, { inputs: [model, opt], outputs: [model, opt] });
 * const loss = step(x, y);
 * mx.eval(loss, model.parameters(), opt.state);
 */
export function compile<F extends (...args: any[]) => any>(fn: F, options: CompileOptions = {}): F {
  if (typeof fn !== "function") throw new TransformError(`compile: fn must be a function; got ${typeof fn}`);
  if (options === null || typeof options !== "object") throw new TransformError(`compile: options must be an object; got ${options === null ? "null" : typeof options}`);
  const { inputs = [], outputs = [], shapeless = false } = options;
  if (!globalThis.Array.isArray(inputs)) throw new TransformError(`compile: inputs must be a JS array of state; got ${typeof inputs}`);
  if (!globalThis.Array.isArray(outputs)) throw new TransformError(`compile: outputs must be a JS array of state; got ${typeof outputs}`);
  const inAccess = inputs.map((s, i) => stateAccess("compile", s, `inputs[${i}]`));
  const outAccess = outputs.map((s, i) => stateAccess("compile", s, `outputs[${i}]`));
  const cache = new Map<string, Entry>();
  const shapelessBase = new Map<string, Entry>(); // shapeless: the traced entry per signature without shapes

  const compiled = (...args: unknown[]): unknown => {
    if (traceState.depth > 0 || compileTracing()) return fn(...args);
    const argPairs = args.map((a) => mx.treeFlatten(a as mx.Tree<unknown>)).flatMap((pairs, i) => pairs.map(([p, v]): [string, unknown] => [`${i}:${p}`, v]));
    // Models and optimizers passed as arguments are state read and written, like compile's.
    const implicit = argPairs.map(([, v]) => v).filter(hasState).map((s) => (s as Record<symbol, StateAccess>)[COMPILE_STATE]);
    const reads = implicit.length ? [...inAccess, ...implicit] : inAccess;
    const writes = implicit.length ? [...outAccess, ...implicit] : outAccess;
    const statePairs = reads.map((s, k) => stateLeaves(s, k));

    // The signature, and the arrays bound to the trace's inputs (arguments, then state).
    const leaves: Array[] = [];
    let key = "";
    const addLeaf = (path: string, v: unknown) => {
      if (isArray(v)) {
        v.checkAlive("compile");
        leaves.push(v);
        key += `${path}=${v.dtype}@${v.device.type}${v.device.index}${shapeless ? `#${v.ndim}` : `[${v.shape}]`};`;
      } else key += `${path}=${hasState(v) ? "state" : leafKey(v)};`;
    };
    for (const [path, v] of argPairs) addLeaf(path, v);
    statePairs.forEach((pairs, k) => {
      key += `|${k}|`;
      for (const [path, v] of pairs) addLeaf(path, v);
    });

    const exactKey = shapeless ? `${key}|${leaves.map((x) => x.shape.join(",")).join(";")}` : key;
    let entry = cache.get(exactKey);
    let fresh = false; // traced by this call: its dynamic sources have run
    if (!entry) {
      const base = shapeless ? shapelessBase.get(key) : undefined;
      if (base) entry = reshape(base, leaves);
      else {
        entry = trace(fn, args, reads, writes, statePairs, leaves);
        fresh = true;
        if (shapeless) shapelessBase.set(key, entry);
      }
      cache.set(exactKey, entry);
    }
    const { trace: t } = entry;
    const outs = bindCall(t, leaves, fresh);
    if (entry.donated.length) donate(entry.donated.map((i) => leaves[i]));
    const results = t.results.map((r) => ("input" in r ? leaves[r.input] : "constant" in r ? r.constant : outs[r.output]));
    let at = entry.outPairs.length;
    writes.forEach((s, k) => {
      const pairs = entry!.statePairs[k];
      s.write(withLeaves(pairs, results.slice(at, at + pairs.length)));
      at += pairs.length;
    });
    return entry.empty ? entry.empty.value : withLeaves(entry.outPairs, results.slice(0, entry.outPairs.length));
  };
  return compiled as F;
}

/** A placeholder for a compile input of x's shape, dtype and device. */
function placeholderFor(x: Array, shape = x.shape): Array {
  return onDevice("compile", x.device, () => bind(P.placeholder, [], { shape, dtype: x.dtype, compile: true })[0]);
}

/** Traces fn for one signature (state read is swapped for placeholders while fn runs). */
function trace(
  fn: (...args: any[]) => unknown, args: unknown[], reads: StateAccess[], writes: StateAccess[],
  statePairs: [string, unknown][][], leaves: Array[],
): Entry {
  const inputs = leaves.map((x) => placeholderFor(x));
  let k = 0;
  // Each argument rebuilt with placeholders for its arrays (an argument without arrays as it is).
  const tracedArgs = args.map((a) => {
    const pairs = mx.treeFlatten(a as mx.Tree<unknown>);
    if (!pairs.some(([, v]) => isArray(v))) return a;
    return withLeaves(pairs, pairs.map(([, v]) => (isArray(v) ? inputs[k++] : v)));
  });
  const originals = reads.map((s) => s.read());
  let result: unknown;
  let sources: mx.internal.DynamicSource[];
  enterTrace();
  try {
    reads.forEach((s, j) => s.write(withLeaves(statePairs[j], statePairs[j].map(() => inputs[k++]))));
    ({ result, sources } = recordTrace(() => fn(...tracedArgs)));
  } catch (e) {
    reads.forEach((s, j) => s.write(originals[j]));
    throw e;
  } finally {
    exitTrace();
  }
  // What fn wrote, before the state it only read gets its arrays back (each call writes its own).
  const written = writes.map((s, j) => stateLeaves(s, j));
  reads.forEach((s, j) => s.write(originals[j]));
  const outPairs = result === undefined || result === null ? [] : mx.treeFlatten(result as mx.Tree<unknown>);
  outPairs.forEach(([path, o]) => {
    if (!isArray(o)) throw new TransformError(`compile: fn must return Arrays (a tree of them); found ${o === null ? "null" : typeof o}${path ? ` at "${path}"` : ""}`);
  });
  const results = [...outPairs, ...written.flat()].map(([, v]) => v as Array);
  return {
    trace: makeTrace(inputs, results, sources, "compile"),
    outPairs,
    empty: outPairs.length === 0 ? { value: result } : null,
    statePairs: written,
    donated: inputs.flatMap((x, i) => (x.donated ? [i] : [])),
    tape: { inputs, results },
  };
}

/**
 * A shapeless function called with new shapes: its traced graph rebound on placeholders of the
 * new shapes, each node's shapes derived again; fn does not run.
 */
function reshape(entry: Entry, leaves: Array[]): Entry {
  const { inputs, results } = entry.tape;
  const inputsNow = leaves.map((x) => placeholderFor(x));
  const value = new Map<Array, Array>(inputs.map((x, i) => [x, inputsNow[i]]));
  const get = (x: Array) => value.get(x) ?? x;
  const order = mx.internal.allNodes(results, new Set(inputs));
  for (const node of order) {
    if (!node.inputs.some((x) => value.has(x))) continue;
    let ys: Array[];
    try {
      ys = onDevice("compile", node.device, () => bind(node.prim, node.inputs.map(get), node.params));
    } catch (e) {
      const shapes = leaves.map((x) => fmt(x.shape)).join(", ");
      throw new TransformError(`compile: a shapeless function's graph does not fit its new input shapes (${shapes}) at ${node.prim.name}: ${(e as Error).message}`);
    }
    node.outputs.forEach((y, i) => value.set(y, ys[i]));
  }
  const resultsNow = results.map(get);
  return {
    ...entry,
    trace: makeTrace(inputsNow, resultsNow, entry.trace.sources, "compile"),
    tape: { inputs: inputsNow, results: resultsNow },
  };
}
