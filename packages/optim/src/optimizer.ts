/**
 * @file The Optimizer base class: the state tree, the step count, the learning rate (a number or
 * a schedule), and the walk that pairs gradients with parameters and calls `applyOne` on each.
 */
import * as mx from "@tessera/core";

/**
 * A learning-rate schedule: the learning rate for the update numbered `step` (from 0), a number
 * or a 0-d Array.
 */
export type Schedule = (step: number) => number | mx.Array;

/** A learning rate: a fixed number or a schedule. */
export type LearningRate = number | Schedule;

/** The state of one parameter: named arrays (Adam's `m` and `v`, SGD's `v`). */
export type ParamState = Record<string, mx.Array>;

/**
 * What an optimizer needs of a model: its trainable parameters as a tree of arrays, and a way to
 * replace them (`nn.Module` has both; so can any plain class).
 */
export interface Model {
  /** The parameters to train, as a tree (plain objects and JS arrays) of arrays. */
  trainableParameters(): unknown;
  /** Replaces the parameters named in `params` (a tree shaped like trainableParameters()). */
  update(params: any): unknown;
}

/** The keys of the state tree that are not parameters. */
const RESERVED = ["step", "learningRate"];

const isContainer = (x: unknown): x is unknown[] | Record<string, unknown> =>
  Array.isArray(x) || mx.isPlainObject(x);

const join = (path: string, k: string | number) => (path ? `${path}.${k}` : String(k));

/**
 * The base class of every optimizer, as in MLX: a subclass defines `initState(param)` (the state
 * of one parameter) and `applyOne(grad, param, state)` (one parameter's update); the class pairs
 * gradients with parameters, keeps the state tree and step count, and resolves the learning rate.
 *
 * `state` is a plain object tree: `step` (a 0-d uint64 Array, the updates applied), `learningRate`
 * (a 0-d float32 Array, the rate of the last update), and per-parameter entries mirroring the
 * parameter tree. Each update builds new arrays and drops the optimizer's references to the old
 * ones, so after `mx.eval(params, opt.state)` the previous step's arrays can be freed.
 * @example
 * const opt = new optim.Adam({ learningRate: 1e-3 });
 * opt.update(model, grads);
 * mx.eval(model.parameters(), opt.state);
 */
export abstract class Optimizer {
  #learningRate: LearningRate;
  #step = 0;
  #state: Record<string, unknown> = {};
  /**
   * The numbers of the update in progress (set before each `applyOne`): the step count after it,
   * the learning rate, then `stepValues`'s in order; while compile traces, also the dynamic
   * scalars holding them, so that each call of the compiled step computes them again.
   */
  #now: { values: number[]; names: string[]; dynamic: ReturnType<typeof mx.internal.dynamicScalars> } | null = null;

  /** @param learningRate a number or a schedule. */
  constructor(learningRate: LearningRate) {
    this.#learningRate = checkLearningRate(this.name, learningRate);
  }

  /** The optimizer's name, for error messages. */
  get name(): string {
    return this.constructor.name;
  }

  /** The learning rate: a number or a schedule (settable; a schedule gets the step count). */
  get learningRate(): LearningRate {
    return this.#learningRate;
  }
  set learningRate(lr: LearningRate) {
    this.#learningRate = checkLearningRate(this.name, lr);
  }

  /** The number of updates applied. */
  get step(): number {
    return this.#step;
  }

  /**
   * The state tree: `step`, `learningRate` and per-parameter entries mirroring the parameter tree.
   * Setting it (for example to a tree loaded with `loadSafetensors` and `treeUnflatten`) resumes
   * from it: the step count is read from `step`, and a number learning rate from `learningRate`
   * (kept as is when the stored float32 value is its rounding).
   */
  get state(): Record<string, unknown> {
    return this.#state;
  }
  set state(state: Record<string, unknown>) {
    if (!mx.isPlainObject(state)) throw new TypeError(`${this.name}.state: expected a plain object tree; got ${describe(state)}`);
    const step = state.step;
    let count = 0;
    if (step !== undefined) {
      if (!mx.isArray(step) || step.size !== 1) throw new TypeError(`${this.name}.state: step must be a 0-d Array; got ${describe(step)}`);
      count = Number(step.item());
      if (!Number.isInteger(count) || count < 0) throw new RangeError(`${this.name}.state: step must be a non-negative integer; got ${count}`);
    }
    const lr = state.learningRate;
    if (lr !== undefined && typeof this.#learningRate === "number") {
      if (!mx.isArray(lr) || lr.size !== 1) throw new TypeError(`${this.name}.state: learningRate must be a 0-d Array; got ${describe(lr)}`);
      const stored = Number(lr.item());
      const current = this.#learningRate;
      const same = lr.dtype === "float32" ? Math.fround(current) === stored : current === stored;
      if (!same) this.#learningRate = stored;
    }
    this.#step = count;
    this.#state = { ...state };
  }

  /** The state of one new parameter (for example `{ m: zerosLike(p), v: zerosLike(p) }`). */
  abstract initState(param: mx.Array): ParamState;

  /**
   * One parameter's update: returns the new parameter and writes the new state arrays into
   * `state` (a fresh copy of the parameter's entry, owned by this update). The update's learning
   * rate and the numbers of `stepValues` are read with `value(name, param)`.
   */
  abstract applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array;

  /**
   * The numbers an update derives from its number `t` (from 1, torch's `step` inside the update)
   * and learning rate `lr`, by name, computed in double precision once per update (bias
   * corrections, decayed rates). `applyOne` reads them with `value`. A compiled training step
   * computes them again on every call, so they follow the step count exactly as uncompiled.
   */
  protected stepValues(_t: number, _lr: number): Record<string, number> {
    return {};
  }

  /**
   * The update's value `name` (`"lr"` or a key of `stepValues`) for `param`: a number, or while
   * compile traces, a 0-d array of the parameter's dtype that each call of the step rebinds.
   */
  protected value(name: string, param: mx.Array): number | mx.Array {
    const now = this.#now;
    if (!now) throw new Error(`${this.name}: value("${name}") is only defined during an update`);
    const i = name === "lr" ? 1 : now.names.indexOf(name) + 2;
    if (i < 1) throw new Error(`${this.name}: "${name}" is not one of stepValues' names (${now.names.join(", ")})`);
    return now.dynamic ? now.dynamic.scalar(i, param.dtype) : now.values[i];
  }

  /** The numbers of update number k (from 0): the count after it, its learning rate, stepValues'. */
  #valuesAt(k: number): { values: number[]; names: string[] } {
    const lr = this.#rateAt(k);
    const named = this.stepValues(k + 1, lr);
    return { values: [k + 1, lr, ...Object.values(named)], names: Object.keys(named) };
  }

  /** compile's state protocol: the state tree is read and written as it is. */
  get [mx.internal.COMPILE_STATE](): mx.internal.CompileStateAccess {
    return {
      read: () => this.#state,
      write: (tree) => {
        this.#state = { ...(tree as Record<string, unknown>) };
      },
    };
  }

  /**
   * Creates the state of every parameter of `params` that has none yet (it is also done lazily by
   * the first update). Existing entries are kept.
   * @example
   * opt.init(model.trainableParameters());
   * mx.eval(opt.state);
   */
  init(params: unknown): void {
    if (!mx.isPlainObject(params)) throw new TypeError(`${this.name}.init: params must be a plain object tree of arrays; got ${describe(params)}`);
    const state = { ...this.#state };
    for (const k of Object.keys(params)) {
      if (RESERVED.includes(k)) throw new TypeError(`${this.name}.init: a parameter may not be named "${k}" (a key of the state)`);
      state[k] = this.#initTree(params[k], state[k], k);
    }
    state.step ??= mx.array(this.#step, "uint64");
    state.learningRate ??= mx.array(this.#rateAt(this.#step), "float32");
    this.#state = state;
  }

  #initTree(p: unknown, s: unknown, path: string): unknown {
    if (mx.isArray(p)) return mx.isPlainObject(s) ? s : this.initState(p);
    if (!isContainer(p)) return s;
    const out: any = Array.isArray(p) ? (Array.isArray(s) ? [...s] : []) : mx.isPlainObject(s) ? { ...s } : {};
    for (const k of Object.keys(p)) out[k] = this.#initTree((p as any)[k], out[k], join(path, k));
    return out;
  }

  /**
   * Applies one update to `params` and returns the new parameters (a tree shaped like `grads`),
   * leaving `grads` and `params` themselves unchanged; the state and step count advance.
   * @example
   * const next = opt.applyGradients(grads, params);
   * mx.eval(next, opt.state);
   */
  applyGradients(grads: unknown, params: unknown): any {
    if (!mx.isPlainObject(grads)) throw new TypeError(`${this.name}.applyGradients: grads must be a plain object tree of arrays; got ${describe(grads)}`);
    if (!mx.isPlainObject(params)) throw new TypeError(`${this.name}.applyGradients: params must be a plain object tree of arrays; got ${describe(params)}`);
    for (const key of Object.keys(grads)) {
      if (RESERVED.includes(key)) throw new TypeError(`${this.name}.applyGradients: a parameter may not be named "${key}" (a key of the state)`);
    }
    // While compile traces, the step's numbers are dynamic scalars: each call of the compiled
    // step computes them for its own step count (and advances it) before it runs.
    let names: string[] = [];
    const dynamic = mx.internal.dynamicScalars(() => {
      const now = this.#valuesAt(this.#step);
      this.#step++;
      names = now.names;
      return now.values;
    });
    const k = this.#step;
    const now = dynamic ? { values: dynamic.values, names, dynamic } : { ...this.#valuesAt(k), dynamic: null };
    this.#now = now;
    try {
      const state: Record<string, unknown> = { ...this.#state };
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(grads)) [out[key], state[key]] = this.#applyTree(grads[key], params[key], state[key], key);
      state.step = dynamic ? dynamic.scalar(0, "uint64") : mx.array(now.values[0], "uint64");
      state.learningRate = dynamic ? dynamic.scalar(1, "float32") : mx.array(now.values[1], "float32");
      this.#state = state;
      if (!dynamic) this.#step = k + 1;
      return out;
    } finally {
      this.#now = null; // hold no array of this step beyond the state
    }
  }

  #applyTree(g: unknown, p: unknown, s: unknown, path: string): [unknown, unknown] {
    if (mx.isArray(g)) {
      if (!mx.isArray(p)) throw new TypeError(`${this.name}: the gradient at "${path}" has no parameter array beside it (got ${describe(p)})`);
      if (g.shape.length !== p.shape.length || g.shape.some((d, i) => d !== p.shape[i])) {
        throw new TypeError(`${this.name}: the gradient at "${path}" has shape [${g.shape}] but its parameter [${p.shape}]`);
      }
      const entry: ParamState = { ...(mx.isPlainObject(s) ? (s as ParamState) : this.initState(p)) };
      return [this.applyOne(g, p, entry), entry];
    }
    if (!isContainer(g)) return [p, s]; // null or another non-array leaf: no update
    if (!isContainer(p)) throw new TypeError(`${this.name}: the gradient at "${path}" is a tree but the parameters there are ${describe(p)}`);
    const list = Array.isArray(g);
    const out: any = list ? new Array(g.length) : {};
    const st: any = list ? (Array.isArray(s) ? [...s] : []) : mx.isPlainObject(s) ? { ...s } : {};
    for (const k of Object.keys(g)) [out[k], st[k]] = this.#applyTree((g as any)[k], (p as any)[k], st[k], join(path, k));
    return [out, st];
  }

  /**
   * Applies one update to the model's trainable parameters and hands them to `model.update`.
   * The parameters and state it replaces are donated: the evaluation that computes the new ones
   * reuses their memory, so a step never holds two copies, and the old arrays are disposed then
   * (keep a copy, `mx.copy(p)`, of any you want to read after the step).
   * @example
   * const [loss, grads] = step(x, y);
   * opt.update(model, grads);
   * mx.eval(model.parameters(), opt.state, loss);
   */
  update(model: Model, grads: unknown): void {
    const params = model.trainableParameters();
    const before = new Set([...leaves(params), ...leaves(this.#state)]);
    const next = this.applyGradients(grads, params);
    model.update(next);
    for (const a of [...leaves(next), ...leaves(this.#state)]) before.delete(a);
    mx.internal.donate(before);
  }

  /** The learning rate of update number `k` (a schedule's 0-d Array is read). */
  #rateAt(k: number): number {
    const lr = this.#learningRate;
    const value = typeof lr === "number" ? lr : lr(k);
    if (typeof value === "number") return value;
    if (!mx.isArray(value) || value.size !== 1) {
      throw new TypeError(`${this.name}: a schedule must return a number or a 0-d Array; got ${describe(value)} at step ${k}`);
    }
    return Number(value.item());
  }

  /** The update's learning rate for `param` (see `value`). */
  protected lrFor(param: mx.Array): number | mx.Array {
    return this.value("lr", param);
  }
}

function checkLearningRate(name: string, lr: unknown): LearningRate {
  if (typeof lr === "function") return lr as Schedule;
  if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) {
    throw new TypeError(`${name}: learningRate must be a non-negative number or a schedule; got ${describe(lr)}`);
  }
  return lr;
}

/** The arrays of a tree (arrays, JS arrays and plain objects of them). */
function leaves(tree: unknown): mx.Array[] {
  return mx.treeFlatten(tree as mx.Tree<unknown>).map(([, v]) => v).filter(mx.isArray);
}

/** A short description of a value for error messages. */
export function describe(x: unknown): string {
  if (mx.isArray(x)) return `an Array of shape [${x.shape}] ${x.dtype}`;
  if (x === null) return "null";
  if (Array.isArray(x)) return "a JS array";
  if (typeof x === "number") return String(x);
  return typeof x;
}

/** Checks that an option is a finite number in a range; returns it. */
export function checkNumber(op: string, name: string, v: unknown, min: number, max = Infinity, minOpen = false, maxOpen = false): number {
  const ok = typeof v === "number" && Number.isFinite(v) && (minOpen ? v > min : v >= min) && (maxOpen ? v < max : v <= max);
  if (!ok) {
    const range = `${minOpen ? "(" : "["}${min}, ${max}${maxOpen ? ")" : "]"}`;
    throw new RangeError(`${op}: ${name} must be a number in ${range}; got ${describe(v)}`);
  }
  return v as number;
}
