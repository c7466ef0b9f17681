/**
 * @file Module: parameter trees read from a subclass's fields, dotted paths, update, freezing,
 * train/eval mode and safetensors weights.
 */
import * as mx from "@tessera/core";
import { isArray, isPlainObject, type Array } from "@tessera/core";

/** A parameter tree: arrays in JS arrays and plain objects nested to any depth. */
export type ParamTree = { [key: string]: unknown };

/** Options of {@link Module.freeze} and {@link Module.unfreeze}. */
export interface FreezeOptions {
  /** Local parameter names (e.g. `"bias"`) to (un)freeze in each module; all of them when omitted. */
  keys?: string | string[];
  /** Apply to every submodule too (default true). */
  recurse?: boolean;
  /** Throw if a key names no parameter of the modules it applies to (default false). */
  strict?: boolean;
}

/** Options of {@link Module.loadWeights}. */
export interface LoadWeightsOptions {
  /** Require exactly the model's parameter names (default true). */
  strict?: boolean;
}

type Keep = (owner: Module, localPath: string, leaf: Array) => boolean;

const fmt = (shape: number[]) => `[${shape.join(",")}]`;

/** What subtree returns for a value that holds (at any depth) no Array and no Module. */
const IRRELEVANT = Symbol("irrelevant");

/** The `keep` of parameters(): every array, so subtree need not build their paths. */
const keepAll: Keep = () => true;

/**
 * The parameter subtree of a field value: undefined for an array or module left out, IRRELEVANT
 * for a value holding no array or module (such fields stay out of the tree). Modules give their
 * own tree; JS arrays keep their indices (entries without parameters become `{}`), so paths like
 * `layers.0.weight` stay stable. One pass: whether a container holds anything is found on the way.
 */
function subtree(owner: Module, path: string, v: unknown, keep: Keep, intoModules: boolean, slots: Slot[] | null, parent: object, key: string | number): unknown {
  if (isArray(v)) {
    if (!keep(owner, path, v)) return undefined;
    slots?.push([parent as Record<string | number, unknown>, key]);
    return v;
  }
  if (v instanceof Module) return intoModules ? v.filterTree(keep, slots) : undefined;
  const paths = keep !== keepAll; // only keep reads them
  if (globalThis.Array.isArray(v)) {
    let any = false;
    const out = v.map((x, i) => {
      const t = subtree(owner, paths ? `${path}.${i}` : path, x, keep, intoModules, slots, v, i);
      if (t === IRRELEVANT) return {};
      any = true;
      return t ?? {};
    });
    return any ? out : IRRELEVANT;
  }
  if (!isPlainObject(v)) return IRRELEVANT;
  let any = false;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    if (slots && k.includes(".")) slots.push(null); // update's dotted path would not find it: no direct writes
    const t = subtree(owner, paths ? `${path}.${k}` : path, v[k], keep, intoModules, slots, v, k);
    if (t === IRRELEVANT) continue;
    any = true;
    if (t !== undefined) out[k] = t;
  }
  return any ? out : IRRELEVANT;
}

type Write = [Record<string | number, unknown>, string | number, Array];

/** The container and key holding a parameter (null: one that a dotted path would not name). */
type Slot = [Record<string | number, unknown>, string | number] | null;

/**
 * The common case of Module.update, without building and resolving paths: `tree` (a container)
 * walked beside `node` (a module, or a container in one), pushing a write for each leaf. False as
 * soon as anything is not plain (a leaf that is not an Array, a key that does not resolve, or
 * would not resolve the same way as a dotted path, a new shape, a very deep tree): update's
 * general path then does the same writes, or reports what is wrong.
 */
function directWrites(node: unknown, tree: unknown, out: Write[], depth: number): boolean {
  const list = globalThis.Array.isArray(tree);
  if ((!list && !isPlainObject(tree)) || depth > 64) return false;
  const keys: string[] | null = list ? null : Object.keys(tree as object);
  const n = keys ? keys.length : (tree as unknown[]).length;
  for (let j = 0; j < n; j++) {
    const k = keys ? keys[j] : j;
    const child = (tree as Record<string | number, unknown>)[k];
    if (child === undefined) continue; // a hole: update skips it
    const childIsList = globalThis.Array.isArray(child);
    if (childIsList || isPlainObject(child)) {
      // An empty container has no leaves, so update resolves nothing under it.
      if (childIsList ? (child as unknown[]).length === 0 : Object.keys(child as object).length === 0) continue;
    } else if (!isArray(child)) return false;
    // One step of Module.resolve (a list's index needs no checks as a path part).
    const part = String(k);
    if (keys && (part === "" || part.includes("."))) return false;
    let owner: Record<string | number, unknown>;
    let key: string | number = part;
    if (node instanceof Module) {
      if (part.startsWith("_") || !Object.prototype.hasOwnProperty.call(node, part)) return false;
      owner = node as unknown as Record<string, unknown>;
    } else if (globalThis.Array.isArray(node)) {
      key = keys ? Number(part) : (k as number);
      if ((keys && !/^\d+$/.test(part)) || (key as number) >= node.length) return false;
      owner = node as unknown as Record<number, unknown>;
    } else if (isPlainObject(node)) {
      if (!Object.prototype.hasOwnProperty.call(node, part)) return false;
      owner = node;
    } else return false;
    const current = owner[key];
    if (isArray(child)) {
      if (!isArray(current)) return false;
      const want = current.shape, got = child.shape;
      if (want.length !== got.length) return false;
      for (let i = 0; i < want.length; i++) if (want[i] !== got[i]) return false;
      out.push([owner, key, child]);
    } else if (!directWrites(current, child, out, depth + 1)) return false;
  }
  return true;
}

/** Visits the modules under v (a field value), with their dotted paths. */
function visitModules(v: unknown, path: string, visit: (path: string, m: Module) => void): void {
  if (v instanceof Module) visit(path, v);
  else if (globalThis.Array.isArray(v)) v.forEach((x, i) => visitModules(x, `${path}.${i}`, visit));
  else if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) visitModules(x, `${path}.${k}`, visit);
}

/** The fields of a module that can hold parameters: own enumerable keys not starting with "_". */
function fields(m: Module): [string, unknown][] {
  return Object.keys(m).filter((k) => !k.startsWith("_")).map((k) => [k, (m as unknown as Record<string, unknown>)[k]]);
}

/** Rebuilds `tree` with each Array leaf replaced by fn(path, leaf), keeping empty containers. */
export function mapWithPath(tree: unknown, fn: (path: string, leaf: Array) => unknown, prefix = ""): unknown {
  if (isArray(tree)) return fn(prefix, tree);
  const join = (k: string | number) => (prefix ? `${prefix}.${k}` : String(k));
  if (globalThis.Array.isArray(tree)) return tree.map((x, i) => mapWithPath(x, fn, join(i)));
  if (isPlainObject(tree)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(tree)) out[k] = mapWithPath(x, fn, join(k));
    return out;
  }
  return tree;
}

/**
 * The base class of layers and models, as MLX's `nn.Module`. A subclass assigns arrays, modules,
 * and JS arrays or plain objects of them to its fields; those form the parameter tree, with dotted
 * paths such as `layers.0.weight`. Fields whose names start with `_`, and values that hold no
 * array or module (numbers, strings, functions), stay out of it. The training flag and the set of
 * frozen parameters are private state, never part of the tree. Subclasses define `forward`.
 * @example
 * class MLP extends nn.Module {
 *   layers = [new nn.Linear(2, 8), new nn.Linear(8, 1)];
 *   forward(x: mx.Array) { return this.layers[1].forward(nn.relu(this.layers[0].forward(x))); }
 * }
 * mx.treeFlatten(new MLP().parameters()).map(([k]) => k); // ["layers.0.weight", "layers.0.bias", ...]
 */
export class Module {
  #training = true;
  #frozen = new Set<string>();
  /** Where compile's latest read found each parameter, in order (null: not all of them plainly). */
  #compileSlots: Exclude<Slot, null>[] | null = null;

  /** Whether the module is in training mode (the default; see {@link Module.train}). */
  get training(): boolean {
    return this.#training;
  }

  /**
   * The module's computation; subclasses define it (the base class throws).
   * @example
   * const y = layer.forward(x);
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  forward(..._args: any[]): any {
    throw new TypeError(`${this.constructor.name}.forward: not defined; subclasses of nn.Module define forward`);
  }

  /**
   * The tree of this module's arrays kept by `keep` (used by parameters and trainableParameters);
   * with `slots`, the container and key of each array kept are appended to it, in order.
   * @internal
   */
  filterTree(keep: Keep, slots: Slot[] | null = null): ParamTree {
    const out: ParamTree = {};
    const self = this as unknown as Record<string, unknown>;
    for (const k of Object.keys(self)) {
      if (k.startsWith("_")) continue; // not a field that can hold parameters (see fields)
      if (slots && k.includes(".")) slots.push(null); // as in subtree
      const v = self[k];
      // A submodule, the most common field, without subtree's checks.
      const t = v instanceof Module ? v.filterTree(keep, slots) : subtree(this, k, v, keep, true, slots, self, k);
      if (t !== undefined && t !== IRRELEVANT) out[k] = t;
    }
    return out;
  }

  /**
   * Every array of the module and its submodules, as a tree keyed by field names (a fresh tree;
   * the arrays are the module's own).
   * @example
   * const params = model.parameters();
   * mx.eval(params);
   */
  parameters(): ParamTree {
    return this.filterTree(keepAll);
  }

  /**
   * The parameters that are not frozen (what `nn.valueAndGrad` and optimizers work on).
   * @example
   * model.freeze({ keys: "bias" });
   * mx.treeFlatten(model.trainableParameters()); // weights only
   */
  trainableParameters(): ParamTree {
    return this.filterTree((owner, path) => !owner.isFrozen(path));
  }

  /** Whether the local parameter at `localPath` (or a field containing it) is frozen. */
  private isFrozen(localPath: string): boolean {
    if (this.#frozen.size === 0) return false;
    const parts = localPath.split(".");
    for (let i = 1; i <= parts.length; i++) if (this.#frozen.has(parts.slice(0, i).join("."))) return true;
    return false;
  }

  /** Dotted paths of this module's own arrays, not those of its submodules. */
  private localParameterPaths(): string[] {
    const tree: ParamTree = {};
    for (const [k, v] of fields(this)) {
      const t = subtree(this, k, v, () => true, false, null, this, k);
      if (t !== undefined && t !== IRRELEVANT) tree[k] = t;
    }
    return mx.treeFlatten(tree).map(([p]) => p);
  }

  /**
   * The direct submodules, as a tree keyed by field names (fields holding no module are left out).
   * @example
   * Object.keys(new nn.Sequential(new nn.Linear(2, 2)).children()); // ["layers"]
   */
  children(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const only = (v: unknown): unknown => {
      if (v instanceof Module) return v;
      if (globalThis.Array.isArray(v)) return v.some(hasModule) ? v.map((x) => only(x) ?? {}) : undefined;
      if (isPlainObject(v) && hasModule(v)) {
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
          const t = only(x);
          if (t !== undefined) o[k] = t;
        }
        return o;
      }
      return undefined;
    };
    for (const [k, v] of fields(this)) {
      const t = only(v);
      if (t !== undefined) out[k] = t;
    }
    return out;
  }

  /**
   * Every module in the tree with its dotted path, this one first (path `""`), depth first.
   * @example
   * model.namedModules().map(([path]) => path); // ["", "layers.0", "layers.1"]
   */
  namedModules(): [string, Module][] {
    const out: [string, Module][] = [];
    const walk = (prefix: string, m: Module) => {
      out.push([prefix, m]);
      for (const [k, v] of fields(m)) visitModules(v, prefix ? `${prefix}.${k}` : k, (p, c) => walk(p, c));
    };
    walk("", this);
    return out;
  }

  /**
   * Every module in the tree, this one included (first).
   * @example
   * model.modules().filter((m) => m instanceof nn.Linear).length;
   */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /**
   * Replaces arrays by path with those of `params` (a tree, possibly partial, as from
   * `parameters()`; holes and `{}` are skipped), in place, and returns the module. Everything is checked before anything is
   * replaced: unknown paths and shape mismatches throw, naming every one.
   * @example
   * model.update(mx.treeMap((p) => p.mul(0.5), model.parameters()));
   */
  update(params: unknown, options: { strict?: boolean } = {}): this {
    const direct: Write[] = [];
    if (directWrites(this, params, direct, 0)) {
      for (const [owner, key, leaf] of direct) owner[key] = leaf;
      return this;
    }
    const strict = options.strict ?? true;
    const unknown: string[] = [];
    const badShape: string[] = [];
    const writes: [Record<string | number, unknown>, string | number, Array][] = [];
    for (const [path, leaf] of mx.treeFlatten(params)) {
      if (leaf === undefined) continue; // a hole of a JS array (a partial tree from treeUnflatten)
      if (!isArray(leaf)) throw new TypeError(`Module.update: every leaf must be an Array; got ${leaf === null ? "null" : typeof leaf} at "${path}"`);
      const slot = this.resolve(path);
      if (!slot) {
        if (strict) unknown.push(`"${path}"`);
        continue;
      }
      const [owner, key, current] = slot;
      if (current.shape.length !== leaf.shape.length || current.shape.some((d, i) => d !== leaf.shape[i])) {
        badShape.push(`"${path}" (expected ${fmt(current.shape)}, got ${fmt(leaf.shape)})`);
        continue;
      }
      writes.push([owner, key, leaf]);
    }
    const problems: string[] = [];
    if (unknown.length) problems.push(`unknown parameter paths ${unknown.join(", ")}`);
    if (badShape.length) problems.push(`shape mismatch at ${badShape.join(", ")}`);
    if (problems.length) throw new mx.ShapeError(`Module.update: ${problems.join("; ")}`);
    for (const [owner, key, leaf] of writes) owner[key] = leaf;
    return this;
  }

  /**
   * compile's state protocol: a model's arrays are its parameters, replaced by `update`; or, after
   * a read, straight into the places read found them (writeLeaves: a compiled step's update).
   */
  get [mx.internal.COMPILE_STATE](): mx.internal.CompileStateAccess {
    return {
      read: () => {
        const slots: Slot[] = [];
        const tree = this.filterTree(keepAll, slots);
        this.#compileSlots = slots.includes(null) ? null : (slots as Exclude<Slot, null>[]);
        return tree;
      },
      write: (tree) => void this.update(tree),
      writeLeaves: (arrays, from, count) => {
        const slots = this.#compileSlots;
        if (!slots || slots.length !== count) return false;
        for (let i = 0; i < count; i++) slots[i][0][slots[i][1]] = arrays[from + i];
        return true;
      },
    };
  }

  /** The container, key and current array at a dotted path, or null if none is there. */
  private resolve(path: string): [Record<string | number, unknown>, string | number, Array] | null {
    const parts = path.split(".");
    let node: unknown = this;
    let owner: Record<string | number, unknown> | null = null;
    let key: string | number = "";
    for (const part of parts) {
      if (node instanceof Module) {
        if (part.startsWith("_") || !Object.prototype.hasOwnProperty.call(node, part)) return null;
        owner = node as unknown as Record<string, unknown>;
        key = part;
      } else if (globalThis.Array.isArray(node)) {
        const i = Number(part);
        if (!/^\d+$/.test(part) || i >= node.length) return null;
        owner = node as unknown as Record<number, unknown>;
        key = i;
      } else if (isPlainObject(node)) {
        if (!Object.prototype.hasOwnProperty.call(node, part)) return null;
        owner = node;
        key = part;
      } else {
        return null;
      }
      node = owner[key];
    }
    return owner && isArray(node) ? [owner, key, node] : null;
  }

  /**
   * Freezes parameters so that `trainableParameters()` (hence `nn.valueAndGrad` and optimizers)
   * leaves them out. Without `keys`, every parameter of this module (and, with `recurse`, of its
   * submodules); with `keys`, the parameters of those local names in each module. Returns the module.
   * @example
   * model.freeze();                       // everything
   * model.freeze({ keys: ["bias"] });     // every bias
   */
  freeze(options: FreezeOptions = {}): this {
    this.changeFrozen("freeze", options, (m, keys) => keys.forEach((k) => m.#frozen.add(k)));
    return this;
  }

  /**
   * Undoes {@link Module.freeze}: without `keys`, every parameter becomes trainable again (except
   * those a layer never trains, such as BatchNorm's running statistics). Returns the module.
   * @example
   * model.freeze().unfreeze({ keys: "bias" }); // train only the biases
   */
  unfreeze(options: FreezeOptions = {}): this {
    this.changeFrozen("unfreeze", options, (m, keys, all) => {
      if (all) m.#frozen.clear();
      else keys.forEach((k) => m.#frozen.delete(k));
      m.keepFrozen();
    });
    return this;
  }

  /** Re-freezes what this layer never trains (after unfreeze); a hook for subclasses. */
  protected keepFrozen(): void {}

  private changeFrozen(op: string, options: FreezeOptions, apply: (m: Module, keys: string[], all: boolean) => void): void {
    const { keys, recurse = true, strict = false } = options ?? {};
    const list = keys === undefined ? null : typeof keys === "string" ? [keys] : keys;
    if (list !== null && (!globalThis.Array.isArray(list) || list.some((k) => typeof k !== "string"))) {
      throw new TypeError(`Module.${op}: keys must be a string or a list of strings`);
    }
    const targets = recurse ? this.modules() : [this];
    if (list && strict) {
      const known = new Set(targets.flatMap((m) => m.localParameterPaths()));
      const bad = list.filter((k) => ![...known].some((p) => p === k || p.startsWith(`${k}.`)));
      if (bad.length) throw new TypeError(`Module.${op}: keys name no parameter: ${bad.map((k) => `"${k}"`).join(", ")}`);
    }
    for (const m of targets) apply(m, list ?? m.localParameterPaths(), list === null);
  }

  /**
   * Sets training mode (`mode = true`) or evaluation mode on this module and every submodule
   * (Dropout and BatchNorm behave differently in each). Returns the module.
   * @example
   * model.train();      // training
   * model.train(false); // same as model.eval()
   */
  train(mode = true): this {
    for (const m of this.modules()) m.#training = mode;
    return this;
  }

  /**
   * Sets evaluation mode on this module and every submodule; returns the module.
   * @example
   * model.eval();
   */
  eval(): this {
    return this.train(false);
  }

  /**
   * Writes every parameter to a safetensors file, keyed by dotted path. Synchronous.
   * @example
   * model.saveWeights("model.safetensors");
   */
  saveWeights(path: string): void {
    if (typeof path !== "string") throw new TypeError(`Module.saveWeights: path must be a string; got ${typeof path}`);
    const record: Record<string, Array> = {};
    for (const [k, v] of mx.treeFlatten(this.parameters())) record[k] = v as Array;
    mx.saveSafetensors(path, record);
  }

  /**
   * Loads parameters from a safetensors file or from `[path, array]` pairs and returns the module.
   * With `strict` (the default) the names must be exactly the model's, and every shape must match;
   * the error names every missing, unexpected and mis-shaped key. Without it, unknown names are
   * ignored and missing ones keep their values.
   * @example
   * model.loadWeights("model.safetensors");
   * model.loadWeights([["layers.0.bias", mx.zeros([8])]], { strict: false });
   */
  loadWeights(pathOrPairs: string | [string, Array][], options: LoadWeightsOptions = {}): this {
    const strict = options?.strict ?? true;
    let pairs: [string, Array][];
    if (typeof pathOrPairs === "string") pairs = Object.entries(mx.loadSafetensors(pathOrPairs).arrays);
    else if (globalThis.Array.isArray(pathOrPairs)) pairs = pathOrPairs;
    else throw new TypeError(`Module.loadWeights: expected a file path or a list of [name, array] pairs`);
    const expected = new Map(mx.treeFlatten(this.parameters()) as [string, Array][]);
    const given = new Set(pairs.map(([k]) => k));
    const missing = [...expected.keys()].filter((k) => !given.has(k));
    const unexpected = [...given].filter((k) => !expected.has(k));
    const badShape: string[] = [];
    for (const [k, v] of pairs) {
      if (!isArray(v)) throw new TypeError(`Module.loadWeights: the value of "${k}" is not an Array`);
      const cur = expected.get(k);
      if (cur && fmt(cur.shape) !== fmt(v.shape)) badShape.push(`"${k}" (expected ${fmt(cur.shape)}, got ${fmt(v.shape)})`);
    }
    const problems: string[] = [];
    if (strict && missing.length) problems.push(`missing keys ${missing.map((k) => `"${k}"`).join(", ")}`);
    if (strict && unexpected.length) problems.push(`unexpected keys ${unexpected.map((k) => `"${k}"`).join(", ")}`);
    if (badShape.length) problems.push(`shape mismatch at ${badShape.join(", ")}`);
    if (problems.length) throw new mx.ShapeError(`Module.loadWeights: ${problems.join("; ")}`);
    return this.update(mx.treeUnflatten(pairs.filter(([k]) => expected.has(k))));
  }
}

function hasModule(v: unknown): boolean {
  if (v instanceof Module) return true;
  if (globalThis.Array.isArray(v)) return v.some(hasModule);
  if (isPlainObject(v)) return Object.values(v).some(hasModule);
  return false;
}
