/** @file Sequential. */
import type { Array } from "@tessera/core";
import { Module } from "../module.js";

/** A layer of a Sequential: a module, or a plain function of one array. */
export type SequentialLayer = Module | ((x: Array) => Array);

/**
 * Applies its layers in order; their parameters are at `layers.0`, `layers.1`, ...
 * @example
 * const mlp = new nn.Sequential(new nn.Linear(2, 16), new nn.ReLU(), new nn.Linear(16, 1));
 * mlp.forward(mx.zeros([4, 2])).shape; // [4, 1]
 */
export class Sequential extends Module {
  /** The layers, in order. */
  layers: SequentialLayer[];

  constructor(...modules: SequentialLayer[]) {
    super();
    modules.forEach((m, i) => {
      if (!(m instanceof Module) && typeof m !== "function") throw new TypeError(`Sequential: layer ${i} must be a Module or a function`);
    });
    this.layers = modules;
  }

  /** Passes `x` through every layer. */
  override forward(x: Array): Array {
    for (const l of this.layers) x = l instanceof Module ? l.forward(x) : l(x);
    return x;
  }
}
