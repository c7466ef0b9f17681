/**
 * @file Host-side n-d arrays of any element type (numbers, BigInts, booleans) in row-major order,
 * with plain-JS strided views (permute, flip, step slices, broadcast) and a way to build the same
 * logical values in tessera through a non-contiguous view. Nothing here computes with tessera.
 */
import * as mx from "@tessera/core";
import { broadcastShape, sizeOf, strides, unravel } from "./reference.js";

export interface Host<T> {
  shape: number[];
  data: T[];
}

export function hostFrom<T>(shape: number[], f: (i: number) => T): Host<T> {
  return { shape: [...shape], data: Array.from({ length: sizeOf(shape) }, (_, i) => f(i)) };
}

/** Element at a multi-index (broadcasting: size-1 axes and missing leading axes). */
export function hostAt<T>(h: Host<T>, idx: number[]): T {
  const lead = idx.length - h.shape.length;
  const st = strides(h.shape);
  let off = 0;
  for (let d = 0; d < h.shape.length; d++) off += (h.shape[d] === 1 ? 0 : idx[lead + d]) * st[d];
  return h.data[off];
}

/** A general strided view: out[i] = h[start + i * step] on every axis (NumPy basic slicing per axis). */
export function stridedView<T>(h: Host<T>, start: number[], step: number[], shape: number[]): Host<T> {
  return hostFrom(shape, (i) => {
    const idx = unravel(i, shape);
    return hostAt(h, idx.map((v, d) => start[d] + v * step[d]));
  });
}

/** out[idx] = h[idx permuted]: out.shape[i] = h.shape[perm[i]]. */
export function permuteHost<T>(h: Host<T>, perm: number[]): Host<T> {
  const shape = perm.map((p) => h.shape[p]);
  return hostFrom(shape, (i) => {
    const idx = unravel(i, shape);
    const src = new Array(h.shape.length);
    perm.forEach((p, k) => (src[p] = idx[k]));
    return hostAt(h, src);
  });
}

export function flipHost<T>(h: Host<T>, axes = h.shape.map((_, i) => i)): Host<T> {
  return hostFrom(h.shape, (i) => {
    const idx = unravel(i, h.shape);
    return hostAt(h, idx.map((v, d) => (axes.includes(d) ? h.shape[d] - 1 - v : v)));
  });
}

export function broadcastHost<T>(h: Host<T>, shape: number[]): Host<T> {
  return hostFrom(shape, (i) => hostAt(h, unravel(i, shape)));
}

/** Elementwise map over broadcast operands. */
export function mapHost<R>(f: (...v: any[]) => R, ...xs: Host<any>[]): Host<R> {
  const shape = broadcastShape(...xs.map((x) => x.shape));
  return hostFrom(shape, (i) => {
    const idx = unravel(i, shape);
    return f(...xs.map((x) => hostAt(x, idx)));
  });
}

export const VIEWS = ["contiguous", "transposed", "strided", "reversed", "negStrided", "broadcast"] as const;
export type ViewKind = (typeof VIEWS)[number];

/**
 * A tessera array whose logical values are `h`, built through a view of kind `kind` over a
 * different base buffer (`build` turns a host array into a contiguous tessera array; `filler`
 * fills the skipped base elements). "broadcast" needs h constant along axis 0 (see
 * `broadcastable`) and otherwise falls back to contiguous, as do 0-d arrays.
 */
export function viewOf<T>(h: Host<T>, kind: ViewKind, build: (b: Host<T>) => mx.Array, filler: T): mx.Array {
  const nd = h.shape.length;
  if (nd === 0 || kind === "contiguous") return build(h);
  switch (kind) {
    case "transposed": {
      const rev = h.shape.map((_, i) => nd - 1 - i);
      return build(permuteHost(h, rev)).T;
    }
    case "strided": {
      // base has axis 0 doubled: logical element i sits at 2i, odd positions hold filler
      const shape = [2 * h.shape[0], ...h.shape.slice(1)];
      const base = hostFrom(shape, (i) => {
        const idx = unravel(i, shape);
        return idx[0] % 2 === 0 ? hostAt(h, [idx[0] / 2, ...idx.slice(1)]) : filler;
      });
      return build(base).index(mx.slice(null, null, 2));
    }
    case "reversed":
      return mx.flip(build(flipHost(h)));
    case "negStrided": {
      // base has the last axis doubled; logical element i of it sits at 2n-1-2i
      const n = h.shape[nd - 1];
      const shape = [...h.shape.slice(0, -1), 2 * n];
      const base = hostFrom(shape, (i) => {
        const idx = unravel(i, shape);
        const j = 2 * n - 1 - idx[nd - 1];
        return j % 2 === 0 ? hostAt(h, [...idx.slice(0, -1), j / 2]) : filler;
      });
      return build(base).index("...", mx.slice(null, null, -2));
    }
    case "broadcast": {
      if (h.shape[0] === 0 || !broadcastable(h)) return build(h);
      const small = stridedView(h, h.shape.map(() => 0), h.shape.map(() => 1), [1, ...h.shape.slice(1)]);
      return mx.broadcastTo(build(small), h.shape);
    }
  }
}

/** Whether h is constant along axis 0 (so it can be a broadcast view). */
export function broadcastable<T>(h: Host<T>): boolean {
  if (h.shape.length === 0) return false;
  const inner = sizeOf(h.shape.slice(1));
  return h.data.every((v, i) => Object.is(v, h.data[i % inner]));
}

/** Makes h constant along axis 0 by copying its first slice (for broadcast views). */
export function makeBroadcastable<T>(h: Host<T>): Host<T> {
  if (h.shape.length === 0) return h;
  const inner = sizeOf(h.shape.slice(1));
  return { shape: h.shape, data: h.data.map((_, i) => h.data[i % inner]) };
}

/** A tessera array's values, flat, as JS values (BigInt for 64-bit integers, booleans for bool). */
export function readFlat(x: mx.Array): (number | bigint | boolean)[] {
  const v = x.tolist();
  return x.ndim === 0 ? [v as number] : ((v as unknown[]).flat(x.ndim - 1) as (number | bigint | boolean)[]);
}
