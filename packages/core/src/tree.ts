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
 * The leaves of a tree with their dotted paths, depth first in key order.
 * @example
 * mx.treeFlatten({ layers: [{ w: a }], b }); // [["layers.0.w", a], ["b", b]]
 */
export function treeFlatten<T = unknown>(tree: Tree<T>, prefix = ""): [string, T][] {
  const out: [string, T][] = [];
  const walk = (x: unknown, path: string) => {
    if (globalThis.Array.isArray(x)) x.forEach((v, i) => walk(v, path ? `${path}.${i}` : String(i)));
    else if (isPlainObject(x)) for (const k of Object.keys(x)) walk(x[k], path ? `${path}.${k}` : k);
    else out.push([path, x as T]);
  };
  walk(tree, prefix);
  return out;
}

/**
 * The tree that treeFlatten(tree) came from: levels whose keys are all integers become JS arrays.
 * @example
 * mx.treeUnflatten([["layers.0.w", a], ["b", b]]); // { layers: [{ w: a }], b }
 */
export function treeUnflatten<T = unknown>(pairs: [string, T][]): Tree<T> {
  if (pairs.length === 1 && pairs[0][0] === "") return pairs[0][1];
  const groups = new Map<string, [string, T][]>();
  for (const [path, v] of pairs) {
    const dot = path.indexOf(".");
    const head = dot < 0 ? path : path.slice(0, dot);
    const rest = dot < 0 ? "" : path.slice(dot + 1);
    if (!groups.has(head)) groups.set(head, []);
    groups.get(head)!.push([rest, v]);
  }
  const keys = [...groups.keys()];
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    const out: Tree<T>[] = [];
    for (const k of keys) out[Number(k)] = treeUnflatten(groups.get(k)!);
    return out;
  }
  const obj: { [key: string]: Tree<T> } = {};
  for (const k of keys) obj[k] = treeUnflatten(groups.get(k)!);
  return obj;
}

/**
 * Applies fn to every leaf of tree (and the matching leaves of `rest`, which must share its structure).
 * @example
 * mx.treeMap((p) => p.mul(2), params);
 */
export function treeMap(fn: (leaf: any, ...rest: any[]) => unknown, tree: unknown, ...rest: unknown[]): any {
  if (globalThis.Array.isArray(tree)) {
    return tree.map((v, i) => treeMap(fn, v, ...rest.map((r) => structural(r, i, tree))));
  }
  if (isPlainObject(tree)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(tree)) out[k] = treeMap(fn, tree[k], ...rest.map((r) => structural(r, k, tree)));
    return out;
  }
  return fn(tree, ...rest);
}

function structural(r: unknown, key: string | number, like: unknown): unknown {
  if (!isContainer(r) || !(key in (r as object))) {
    throw new TypeError(`treeMap: the trees do not have the same structure (missing key ${JSON.stringify(key)} beside ${globalThis.Array.isArray(like) ? "a list" : "an object"})`);
  }
  return (r as Record<string, unknown>)[key as string];
}

/** Every leaf of a tree that passes `keep`, in treeFlatten order. */
export function treeLeaves<T>(tree: unknown, keep: (x: unknown) => x is T): T[] {
  return treeFlatten(tree).map(([, v]) => v).filter(keep);
}
