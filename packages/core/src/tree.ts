/**
 * @file Trees: arrays, JS arrays and plain objects nested to any depth (parameter trees, optimizer
 * state, transform arguments). Leaves are anything that is not a JS array or a plain object.
 */

/**
 * A tree of leaves of type T: a leaf, or JS arrays and plain objects of trees nested to any depth
 * (parameters, optimizer state, the arguments of a transform).
 */
export type Tree<T = unknown> = T | Tree<T>[] | { [key: string]: Tree<T> };

/** Whether x is a plain object (made by `{}` or with a null prototype): a tree node, not a leaf. */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== "object") return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function isContainer(x: unknown): x is unknown[] | Record<string, unknown> {
  return globalThis.Array.isArray(x) || isPlainObject(x);
}

/**
 * Sets `key` of a plain object as an own, enumerable data property, whatever the key: "__proto__"
 * becomes a key like any other instead of replacing the prototype.
 */
function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The keys of a tree node in walk order: indices of a JS array, own enumerable keys of an object. */
function childKeys(x: unknown[] | Record<string, unknown>): (string | number)[] {
  return globalThis.Array.isArray(x) ? [...x.keys()] : Object.keys(x);
}

const cycleError = (op: string, path: string) =>
  new TypeError(`${op}: the tree contains itself (at ${path === "" ? "the root" : JSON.stringify(path)}); trees must be acyclic`);

/**
 * Visits the leaves of a tree depth first in key order, with their dotted paths. Iterative, so any
 * depth is fine; a container inside itself is a TypeError naming `op` (a shared subtree is fine).
 */
function walkLeaves(op: string, tree: unknown, prefix: string, visit: (path: string, leaf: unknown) => void): void {
  if (!isContainer(tree)) {
    visit(prefix, tree);
    return;
  }
  interface Frame { node: unknown[] | Record<string, unknown>; path: string; keys: (string | number)[]; i: number }
  const open = new Set<unknown>([tree]);
  const stack: Frame[] = [{ node: tree, path: prefix, keys: childKeys(tree), i: 0 }];
  while (stack.length) {
    const f = stack[stack.length - 1];
    if (f.i === f.keys.length) {
      open.delete(f.node);
      stack.pop();
      continue;
    }
    const k = f.keys[f.i++];
    const child = (f.node as Record<string | number, unknown>)[k];
    const path = f.path ? `${f.path}.${k}` : String(k);
    if (!isContainer(child)) {
      visit(path, child);
      continue;
    }
    if (open.has(child)) throw cycleError(op, path);
    open.add(child);
    stack.push({ node: child, path, keys: childKeys(child), i: 0 });
  }
}

/**
 * The leaves of a tree with their dotted paths, depth first in key order.
 * @example
 * mx.treeFlatten({ layers: [{ w: a }], b }); // [["layers.0.w", a], ["b", b]]
 */
export function treeFlatten<T = unknown>(tree: Tree<T>, prefix = ""): [string, T][] {
  if (typeof prefix !== "string") throw new TypeError(`treeFlatten: prefix must be a string; got ${typeof prefix}`);
  const out: [string, T][] = [];
  walkLeaves("treeFlatten", tree, prefix, (path, leaf) => out.push([path, leaf as T]));
  return out;
}

/**
 * The tree that treeFlatten(tree) came from: levels whose keys are all integers become JS arrays.
 * Every key, "__proto__" and "constructor" included, becomes an own property of a plain object.
 * @example
 * mx.treeUnflatten([["layers.0.w", a], ["b", b]]); // { layers: [{ w: a }], b }
 */
export function treeUnflatten<T = unknown>(pairs: [string, T][]): Tree<T> {
  if (!globalThis.Array.isArray(pairs)) {
    throw new TypeError(`treeUnflatten: expected a list of [path, leaf] pairs; got ${pairs === null ? "null" : typeof pairs}`);
  }
  // A trie of the paths: a node maps each key to a child node, or holds a leaf.
  interface TrieNode { children: Map<string, TrieNode> | null; leaf?: { value: T } }
  const root: TrieNode = { children: null };
  for (let n = 0; n < pairs.length; n++) {
    const pair = pairs[n];
    if (!globalThis.Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") {
      throw new TypeError(`treeUnflatten: entry ${n} must be a [path, leaf] pair with a string path; got ${globalThis.Array.isArray(pair) ? `a list of length ${pair.length}` : pair === null ? "null" : typeof pair}`);
    }
    const [path, value] = pair;
    let node = root;
    if (path !== "") {
      for (const key of path.split(".")) {
        if (node.leaf) throw new TypeError(`treeUnflatten: path ${JSON.stringify(path)} goes through a leaf`);
        node.children ??= new Map();
        let child = node.children.get(key);
        if (!child) node.children.set(key, (child = { children: null }));
        node = child;
      }
    }
    if (node.leaf || node.children) {
      throw new TypeError(`treeUnflatten: path ${JSON.stringify(path)} is given twice, or is both a leaf and a node`);
    }
    node.leaf = { value };
  }
  if (root.leaf) return root.leaf.value;
  if (!root.children) return {};
  // Build the containers iteratively: each frame fills its container from its trie node.
  const build = (node: TrieNode): { out: unknown[] | Record<string, unknown>; keys: string[] } => {
    const keys = [...node.children!.keys()];
    const isList = keys.every((k) => /^\d+$/.test(k));
    return { out: isList ? [] : {}, keys };
  };
  interface Frame { node: TrieNode; out: unknown[] | Record<string, unknown>; keys: string[]; i: number }
  const first = build(root);
  const stack: Frame[] = [{ node: root, ...first, i: 0 }];
  while (stack.length) {
    const f = stack[stack.length - 1];
    if (f.i === f.keys.length) {
      stack.pop();
      continue;
    }
    const key = f.keys[f.i++];
    const child = f.node.children!.get(key)!;
    let value: unknown;
    if (child.leaf) value = child.leaf.value;
    else {
      const b = build(child);
      stack.push({ node: child, ...b, i: 0 });
      value = b.out;
    }
    if (globalThis.Array.isArray(f.out)) f.out[Number(key)] = value;
    else setKey(f.out, key, value);
  }
  return first.out as Tree<T>;
}

/**
 * Applies fn to every leaf of tree (and the matching leaves of `rest`, which must share its structure).
 * @example
 * mx.treeMap((p) => p.mul(2), params);
 */
export function treeMap(fn: (leaf: any, ...rest: any[]) => unknown, tree: unknown, ...rest: unknown[]): any {
  if (typeof fn !== "function") throw new TypeError(`treeMap: fn must be a function; got ${typeof fn}`);
  if (!isContainer(tree)) return fn(tree, ...rest);
  interface Frame { node: unknown[] | Record<string, unknown>; rest: unknown[]; out: unknown[] | Record<string, unknown>; keys: (string | number)[]; i: number; path: string }
  const frame = (node: unknown[] | Record<string, unknown>, r: unknown[], path: string): Frame =>
    ({ node, rest: r, out: globalThis.Array.isArray(node) ? new globalThis.Array(node.length) : {}, keys: childKeys(node), i: 0, path });
  const root = frame(tree, rest, "");
  const open = new Set<unknown>([tree]);
  const stack: Frame[] = [root];
  while (stack.length) {
    const f = stack[stack.length - 1];
    if (f.i === f.keys.length) {
      open.delete(f.node);
      stack.pop();
      continue;
    }
    const k = f.keys[f.i++];
    const child = (f.node as Record<string | number, unknown>)[k];
    const childRest = f.rest.map((r) => structural(r, k, f.node));
    const path = f.path ? `${f.path}.${k}` : String(k);
    let value: unknown;
    if (isContainer(child)) {
      if (open.has(child)) throw cycleError("treeMap", path);
      open.add(child);
      const c = frame(child, childRest, path);
      stack.push(c);
      value = c.out;
    } else {
      value = fn(child, ...childRest);
    }
    if (globalThis.Array.isArray(f.out)) f.out[k as number] = value;
    else setKey(f.out, k as string, value);
  }
  return root.out;
}

function structural(r: unknown, key: string | number, like: unknown): unknown {
  if (!isContainer(r) || !Object.prototype.hasOwnProperty.call(r, key)) {
    throw new TypeError(`treeMap: the trees do not have the same structure (missing key ${JSON.stringify(key)} beside ${globalThis.Array.isArray(like) ? "a list" : "an object"})`);
  }
  return (r as Record<string, unknown>)[key as string];
}

/** Every leaf of a tree that passes `keep`, in treeFlatten order. */
export function treeLeaves<T>(tree: unknown, keep: (x: unknown) => x is T, op = "treeFlatten"): T[] {
  const out: T[] = [];
  if (shallowLeaves(tree, keep, out, 0)) return out; // the common case (mx.eval of a step's trees), with no paths
  out.length = 0;
  walkLeaves(op, tree, "", (_path, leaf) => {
    if (keep(leaf)) out.push(leaf);
  });
  return out;
}

/**
 * treeLeaves without paths or cycle tracking, for trees at most 100 levels deep: false past that
 * (a deep tree, or one containing itself), and walkLeaves does it (or names the cycle).
 */
function shallowLeaves<T>(tree: unknown, keep: (x: unknown) => x is T, out: T[], depth: number): boolean {
  if (globalThis.Array.isArray(tree)) {
    if (depth > 100) return false;
    for (let i = 0; i < tree.length; i++) if (!shallowLeaves(tree[i], keep, out, depth + 1)) return false;
  } else if (isPlainObject(tree)) {
    if (depth > 100) return false;
    for (const k of Object.keys(tree)) if (!shallowLeaves(tree[k], keep, out, depth + 1)) return false;
  } else if (keep(tree)) out.push(tree);
  return true;
}
