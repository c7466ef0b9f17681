/**
 * @file compile: trace a function once per input signature, simplify and fuse the traced graph,
 * keep the program decoded native-side, and replay it on every call with the call's buffers.
 * See docs/compile.md.
 */
import * as mx from "@tessera/core";
import { TransformError, isArray, type Array } from "@tessera/core";
import { fmt } from "./trace.js";

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
  /** fn's result with slots for its arrays (see skeletonOf), then each state output's tree. */
  result: unknown;
  states: unknown[];
  /** Input positions the function donated (an optimizer replacing parameters): each call donates its own. */
  donated: number[];
  /** For shapeless calls with new shapes: the traced inputs and results. */
  tape: { inputs: Array[]; results: Array[] };
  /** The signature's tokens (see tokensOf), once a call has looked it up: the next call compares them. */
  tokens?: unknown[];
  /** Where each state written starts among the trace's results, and how many arrays it has. */
  stateFrom: number[];
  stateCount: number[];
  /**
   * For each state written: true where it is a state read (the same object) and what fn wrote has
   * the structure, shapes and dtypes of what it read, so its arrays go straight back into the
   * places they were read from (writeLeaves), with no tree built.
   */
  direct: boolean[];
  /** For each direct state, the position of its first array among the call's leaves (reshape checks them). */
  readFrom: number[];
  /** (input, result) pairs: the result is that state input's update (see replacedPairs). */
  replaces: [number, number][];
}

/** The path of each array of a tree, in skeletonOf's order. */
function pathsOf(tree: unknown): string[] {
  const paths: string[] = [];
  const walk = (t: unknown, path: string): void => {
    if (isArray(t)) paths.push(path);
    else if (globalThis.Array.isArray(t)) t.forEach((v, i) => walk(v, `${path}/${i}`));
    else if (mx.isPlainObject(t)) for (const [k, v] of Object.entries(t)) walk(v, `${path}.${k}`);
  };
  walk(tree, "");
  return paths;
}

/**
 * (input, result) pairs where a state array written is the update of one read (the same state
 * object, the same path in it, the same shape, dtype and device): makeTrace writes each such result over
 * its input's buffer when the input is donated, so every call binds the same buffers.
 */
function replacedPairs(read: { trees: unknown[]; start: number[] }, written: { trees: unknown[]; from: number[]; objs: number[] }, leaves: Array[], results: Array[]): [number, number][] {
  const pairs: [number, number][] = [];
  written.trees.forEach((tree, k) => {
    const j = written.objs[k];
    if (j < 0) return;
    const at = new Map(pathsOf(read.trees[j]).map((path, i) => [path, read.start[j] + i]));
    pathsOf(tree).forEach((path, i) => {
      const input = at.get(path), result = written.from[k] + i;
      const x = input === undefined ? undefined : leaves[input], y = results[result];
      const sameDevice = x && x.device.type === y.device.type && x.device.index === y.device.index;
      if (x && sameDevice && x.dtype === y.dtype && x.shape.length === y.shape.length && x.shape.every((d, a) => d === y.shape[a])) pairs.push([input!, result]);
    });
  });
  return pairs;
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
    // A copy of the containers (the arrays themselves shared): writing in place must not change what was read.
    read: () => {
      const { skeleton, arrays } = skeletonOf(obj);
      return fill(skeleton, arrays, { next: 0 });
    },
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

/** Where a state tree's k-th array was: the tree is rebuilt around new arrays on every call. */
class Slot {
  constructor(readonly index: number) {}
}

/**
 * A state tree with each array replaced by a Slot (in depth-first order), and its arrays: kept
 * instead of the tree, so the trace holds no traced array, and rebuilt with every call's results
 * (empty entries and holes kept, so the state has the same structure as uncompiled).
 */
function skeletonOf(tree: unknown): { skeleton: unknown; arrays: Array[] } {
  const arrays: Array[] = [];
  const walk = (t: unknown): unknown => {
    if (isArray(t)) return new Slot(arrays.push(t) - 1);
    if (globalThis.Array.isArray(t)) return t.map(walk);
    if (mx.isPlainObject(t)) return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, walk(v)]));
    return t;
  };
  return { skeleton: walk(tree), arrays };
}

/** The tree of `skeleton` with its k-th slot holding `values[at.next + k]`; advances `at.next`. */
function fill(skeleton: unknown, values: Array[], at: { next: number }): unknown {
  const base = at.next;
  let count = 0;
  const walk = (t: unknown): unknown => {
    if (t instanceof Slot) return count++, values[base + t.index];
    if (globalThis.Array.isArray(t)) return t.map(walk);
    if (mx.isPlainObject(t)) {
      const out: Record<string, unknown> = {};
      for (const k in t) out[k] = walk(t[k]);
      return out;
    }
    return t;
  };
  const tree = walk(skeleton);
  at.next = base + count;
  return tree;
}

const hasState = (x: unknown) => x !== null && typeof x === "object" && COMPILE_STATE in (x as object);

/** A stable name for a non-array leaf in the signature: its value, or its identity for objects. */
const objectIds = new WeakMap<object, number>();
let nextObjectId = 0;
function leafKey(v: unknown): string {
  if (v === null || (typeof v !== "object" && typeof v !== "function")) return `${typeof v}:${String(v)}`;
  return `object:${objectId(v as object)}`;
}

function objectId(v: object): number {
  let id = objectIds.get(v);
  if (id === undefined) objectIds.set(v, (id = nextObjectId++));
  return id;
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
export function compile<F extends (...args: never[]) => unknown>(fn: F, options: CompileOptions = {}): F {
  if (typeof fn !== "function") throw new TransformError(`compile: fn must be a function; got ${typeof fn}`);
  if (options === null || typeof options !== "object") throw new TransformError(`compile: options must be an object; got ${options === null ? "null" : typeof options}`);
  const { inputs = [], outputs = [], shapeless = false } = options;
  if (!globalThis.Array.isArray(inputs)) throw new TransformError(`compile: inputs must be a JS array of state; got ${typeof inputs}`);
  if (!globalThis.Array.isArray(outputs)) throw new TransformError(`compile: outputs must be a JS array of state; got ${typeof outputs}`);
  const inAccess = inputs.map((s, i) => stateAccess("compile", s, `inputs[${i}]`));
  const outAccess = outputs.map((s, i) => stateAccess("compile", s, `outputs[${i}]`));
  const inObjs = [...inputs], outObjs = [...outputs]; // the objects of inAccess and outAccess
  const call = fn as unknown as (...args: unknown[]) => unknown;
  const cache = new Map<string, Entry>();
  const shapelessBase = new Map<string, Entry>(); // shapeless: the traced entry per signature without shapes

  // The entry the previous call used, and scratch lists reused by every call (a call that finds
  // its signature the same as the previous call's builds no key string and allocates no list).
  let last: Entry | null = null;
  const tokens: unknown[] = [];

  const compiled = (...args: unknown[]): unknown => {
    if (traceState.depth > 0 || compileTracing()) return call(...args);
    // Models and optimizers passed as arguments are state read and written, like compile's.
    let reads = inAccess, writes = outAccess, readObjs = inObjs, writeObjs = outObjs;
    for (const a of args) {
      if (!hasState(a)) continue;
      const objs = args.filter(hasState);
      const implicit = objs.map((s) => (s as Record<symbol, StateAccess>)[COMPILE_STATE]);
      reads = [...inAccess, ...implicit];
      writes = [...outAccess, ...implicit];
      readObjs = [...inObjs, ...objs];
      writeObjs = [...outObjs, ...objs];
      break;
    }
    const states = reads.map((s) => s.read());
    const leaves: Array[] = [];
    tokens.length = 0;
    tokensOf(args, tokens, leaves);
    for (const s of states) tokensOf(s, tokens, leaves);

    let entry = last !== null && sameTokens(last.tokens!, tokens) ? last : undefined;
    let fresh = false; // traced by this call: its dynamic sources have run
    if (!entry) {
      const { key } = signature(args, states, shapeless);
      const exactKey = shapeless ? `${key}|${leaves.map((x) => x.shape.join(",")).join(";")}` : key;
      entry = cache.get(exactKey);
      if (!entry) {
        const base = shapeless ? shapelessBase.get(key) : undefined;
        if (base) entry = reshape(base, leaves);
        else {
          entry = trace(call, args, { reads, writes, readObjs, writeObjs }, states, leaves);
          fresh = true;
          if (shapeless) shapelessBase.set(key, entry);
        }
        cache.set(exactKey, entry);
      }
      entry.tokens = tokens.slice();
    }
    last = entry;
    const { trace: t } = entry;
    const outs = bindCall(t, leaves, fresh);
    if (entry.donated.length) donate(entry.donated.map((i) => leaves[i]));
    const tr = t.results;
    const results: Array[] = new globalThis.Array(tr.length);
    for (let i = 0; i < tr.length; i++) {
      const r = tr[i];
      results[i] = "output" in r ? outs[r.output] : "input" in r ? leaves[r.input] : r.constant;
    }
    const out = fill(entry.result, results, { next: 0 });
    for (let k = 0; k < writes.length; k++) {
      const from = entry.stateFrom[k];
      if (entry.direct[k] && writes[k].writeLeaves!(results, from, entry.stateCount[k])) continue;
      writes[k].write(fill(entry.states[k], results, { next: from }));
    }
    return out;
  };
  return compiled as unknown as F;
}

/** Tokens that mark where an array, a JS array, a plain object or another leaf starts. */
const ARRAY = Symbol("array"), LIST = Symbol("list"), OBJECT = Symbol("object"), LEAF = Symbol("leaf"), STATE = Symbol("state");

/**
 * The signature of `t` as a flat list of tokens appended to `out` (with its arrays appended to
 * `leaves`, in the order signature uses): what signature's key spells, as values compared with
 * `===`, so a call whose signature is the previous call's costs no string building. A token list
 * names one signature (each part starts with a marker and says its length); two lists that differ
 * may still name one signature (NaN, equal devices that are distinct objects): then the key decides.
 */
function tokensOf(t: unknown, out: unknown[], leaves: Array[]): void {
  if (isArray(t)) {
    if (t.disposed) t.checkAlive("compile");
    leaves.push(t);
    const shape = t.shape, device = t.device;
    out.push(ARRAY, t.dtype, device.type, device.index, shape.length);
    for (let i = 0; i < shape.length; i++) out.push(shape[i]);
  } else if (globalThis.Array.isArray(t)) {
    out.push(LIST, t.length);
    for (let i = 0; i < t.length; i++) tokensOf(t[i], out, leaves);
  } else if (mx.isPlainObject(t)) {
    out.push(OBJECT);
    const at = out.length;
    out.push(0);
    let n = 0;
    for (const k in t) {
      out.push(k);
      tokensOf(t[k], out, leaves);
      n++;
    }
    out[at] = n;
  } else if (hasState(t)) out.push(STATE);
  else if (t !== null && (typeof t === "object" || typeof t === "function")) out.push(LEAF, "object", objectId(t)); // not the object: kept tokens must not keep it alive
  else out.push(LEAF, typeof t, t);
}

/** Whether two trees have the same structure, and arrays of the same shapes, dtypes and devices. */
function sameSignature(x: unknown, y: unknown): boolean {
  const a: unknown[] = [], b: unknown[] = [];
  try {
    tokensOf(x, a, []);
    tokensOf(y, b, []);
  } catch {
    return false; // a disposed array: not written in place
  }
  return sameTokens(a, b);
}

function sameTokens(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The signature of a call (the structure of its arguments and state, the shape, dtype and
 * device of each array in them, and the value or identity of every other leaf) and its arrays,
 * in the depth-first order skeletonOf and fill use.
 */
function signature(args: unknown[], states: unknown[], shapeless: boolean): { key: string; leaves: Array[] } {
  const leaves: Array[] = [];
  let key = "";
  const visit = (t: unknown): void => {
    if (isArray(t)) {
      t.checkAlive("compile");
      leaves.push(t);
      key += shapeless ? `${t.dtype}@${t.device.type}${t.device.index}#${t.ndim},` : arrayKey(t);
    } else if (globalThis.Array.isArray(t)) {
      key += "[";
      for (let i = 0; i < t.length; i++) visit(t[i]);
      key += "]";
    } else if (mx.isPlainObject(t)) {
      key += "{";
      for (const k in t) {
        key += `${k.length}:${k}`; // the length keeps keys with separators in them apart
        visit(t[k]);
      }
      key += "}";
    } else key += `${hasState(t) ? "state" : leafKey(t)},`;
  };
  visit(args);
  key += "|";
  for (const s of states) {
    visit(s);
    key += "|";
  }
  return { key, leaves };
}

/** An array's part of a signature: dtype, device and shape. */
const arrayKey = (t: Array) => `${t.dtype}@${t.device.type}${t.device.index}[${t.shape}],`;

/** A placeholder for a compile input of x's shape, dtype and device. */
function placeholderFor(x: Array): Array {
  return onDevice("compile", x.device, () => bind(P.placeholder, [], { shape: x.shape, dtype: x.dtype, compile: true })[0]);
}

/** The state a call reads and writes: the accesses, and the objects they belong to. */
interface CallState {
  reads: StateAccess[];
  writes: StateAccess[];
  readObjs: unknown[];
  writeObjs: unknown[];
}

/** Traces fn for one signature (state read is swapped for placeholders while fn runs). */
function trace(fn: (...args: unknown[]) => unknown, args: unknown[], { reads, writes, readObjs, writeObjs }: CallState, states: unknown[], leaves: Array[]): Entry {
  const inputs = leaves.map((x) => placeholderFor(x));
  const at = { next: 0 };
  const tracedArgs = fill(skeletonOf(args).skeleton, inputs, at) as unknown[];
  let result: unknown;
  let sources: mx.internal.DynamicSource[];
  enterTrace();
  try {
    reads.forEach((s, j) => s.write(fill(skeletonOf(states[j]).skeleton, inputs, at)));
    ({ result, sources } = recordTrace(() => fn(...tracedArgs)));
  } catch (e) {
    reads.forEach((s, j) => s.write(states[j]));
    throw e;
  } finally {
    exitTrace();
  }
  // What fn wrote, before the state it only read gets its arrays back (each call writes its own).
  const writtenTrees = writes.map((s) => s.read());
  const written = writtenTrees.map((t) => skeletonOf(t));
  reads.forEach((s, j) => s.write(states[j]));
  for (const [path, o] of result === undefined || result === null ? [] : mx.treeFlatten(result as mx.Tree<unknown>)) {
    if (!isArray(o)) throw new TransformError(`compile: fn must return Arrays (a tree of them); found ${o === null ? "null" : typeof o}${path ? ` at "${path}"` : ""}`);
  }
  const out = skeletonOf(result);
  const results = [...out.arrays, ...written.flatMap((w) => w.arrays)];
  const stateCount = written.map((w) => w.arrays.length);
  const stateFrom = stateCount.map((_, k) => out.arrays.length + stateCount.slice(0, k).reduce((a, b) => a + b, 0));
  // Where each state read starts among the leaves (after the arguments' arrays).
  const argCount = skeletonOf(args).arrays.length;
  const readCount = states.map((t) => skeletonOf(t).arrays.length);
  const readStart = readCount.map((_, j) => argCount + readCount.slice(0, j).reduce((a, b) => a + b, 0));
  const readFrom = writes.map(() => -1);
  const direct = writes.map((s, k) => {
    const j = readObjs.indexOf(writeObjs[k]);
    if (j < 0 || !s.writeLeaves || !sameSignature(writtenTrees[k], states[j])) return false;
    readFrom[k] = readStart[j];
    return true;
  });
  const replaces = replacedPairs({ trees: states, start: readStart }, { trees: writtenTrees, from: stateFrom, objs: writes.map((_, k) => readObjs.indexOf(writeObjs[k])) }, inputs, results);
  return {
    trace: makeTrace(inputs, results, sources, "compile", replaces),
    replaces,
    result: out.skeleton,
    states: written.map((w) => w.skeleton),
    donated: inputs.flatMap((x, i) => (x.donated ? [i] : [])),
    tape: { inputs, results },
    stateFrom,
    stateCount,
    direct,
    readFrom,
  };
}

/** Whether a node is an elementwise op (its operands all have its output's shape). */
let opKinds: string[] | undefined;
function elementwise(node: { prim: { opcode: number | null } }): boolean {
  opKinds ??= mx.internal.native.opKinds();
  const kind = node.prim.opcode === null ? undefined : opKinds[node.prim.opcode];
  return kind === "unary" || kind === "predicate" || kind === "binary" || kind === "compare" || kind === "ternary";
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
    // A shape in the params (reshape, broadcastTo) was fixed when fn ran: it cannot follow new shapes.
    const changed = node.inputs.some((x) => value.has(x) && value.get(x)!.shape.join() !== x.shape.join());
    if (changed && node.params !== null && typeof node.params === "object" && "shape" in node.params) {
      throw new TransformError(
        `compile: a shapeless function's graph does not fit its new input shapes (${leaves.map((x) => fmt(x.shape)).join(", ")}) at ${node.prim.name}: ` +
          `its shape ${fmt(node.params.shape)} was fixed when the function was traced`,
      );
    }
    let ys: Array[];
    try {
      ys = onDevice("compile", node.device, () => bind(node.prim, node.inputs.map(get), node.params));
    } catch (e) {
      const shapes = leaves.map((x) => fmt(x.shape)).join(", ");
      throw new TransformError(`compile: a shapeless function's graph does not fit its new input shapes (${shapes}) at ${node.prim.name}: ${(e as Error).message}`);
    }
    // An operand the graph did not re-derive (a closed-over array, or a constant broadcast to
    // the traced shape, as `x * 2` or the gradient of `mean` make) that had the traced output's
    // shape cannot follow a new one: its shape, maybe its values, were fixed by the trace.
    const traced = node.outputs[0].shape;
    if (changed && elementwise(node)) {
      const stale = node.inputs.find((x) => !value.has(x) && x.ndim > 0 && x.shape.join() === traced.join());
      if (stale) {
        throw new TransformError(
          `compile: a shapeless function's graph does not fit its new input shapes (${leaves.map((x) => fmt(x.shape)).join(", ")}) at ${node.prim.name}: ` +
            `an operand of shape ${fmt(stale.shape)} was fixed when the function was traced (a closed-over array, or a constant ` +
            `broadcast to the traced shape, as in x * 2 or the gradient of mean); compile it without shapeless`,
        );
      }
    }
    node.outputs.forEach((y, i) => value.set(y, ys[i]));
  }
  const resultsNow = results.map(get);
  // A state written back in place must still have the shapes it was read with.
  const sameAval = (x: Array, y: Array) => x.dtype === y.dtype && x.shape.length === y.shape.length && x.shape.every((d, i) => d === y.shape[i]);
  const direct = entry.direct.map((d, k) => {
    if (!d) return false;
    for (let i = 0; i < entry.stateCount[k]; i++) if (!sameAval(resultsNow[entry.stateFrom[k] + i], leaves[entry.readFrom[k] + i])) return false;
    return true;
  });
  return {
    ...entry,
    tokens: undefined,
    direct,
    trace: makeTrace(inputsNow, resultsNow, entry.trace.sources, "compile", entry.replaces.filter(([i, r]) => sameAval(inputsNow[i], resultsNow[r]))),
    tape: { inputs: inputsNow, results: resultsNow },
  };
}
