/** @file Dropout. */
import * as mx from "@tessera/core";
import type { Array } from "@tessera/core";
import { Module } from "../module.js";

/**
 * Zeroes each element with probability `p` (default 0.5) and scales the rest by `1 / (1 - p)` in
 * training mode, drawing from `mx.random`; the identity in evaluation mode.
 * @example
 * const drop = new nn.Dropout(0.1);
 * drop.forward(x);          // training
 * drop.eval().forward(x);   // x
 */
export class Dropout extends Module {
  /** The probability of zeroing an element. */
  readonly p: number;

  constructor(p = 0.5) {
    super();
    if (typeof p !== "number" || !(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1); got ${String(p)}`);
    this.p = p;
  }

  /** `x` with dropped elements in training mode, `x` itself otherwise. */
  override forward(x: Array): Array {
    if (!this.training || this.p === 0) return x;
    const keep = mx.random.bernoulli(1 - this.p, x.shape);
    return mx.mul(mx.where(keep, x, 0), 1 / (1 - this.p));
  }
}
