/** @file A module for each activation function, for use in Sequential. */
import type { Array } from "@tessera/core";
import * as A from "../activations.js";
import { Module } from "../module.js";

/**
 * The {@link relu} activation as a module.
 * @example
 * new nn.Sequential(new nn.Linear(2, 4), new nn.ReLU());
 */
export class ReLU extends Module {
  /** relu(x). */
  override forward(x: Array): Array { return A.relu(x); }
}

/**
 * The {@link leakyRelu} activation as a module (`negativeSlope` default 0.01).
 * @example
 * new nn.LeakyReLU(0.2).forward(x);
 */
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) { super(); }
  /** leakyRelu(x, negativeSlope). */
  override forward(x: Array): Array { return A.leakyRelu(x, this.negativeSlope); }
}

/**
 * The {@link elu} activation as a module (`alpha` default 1).
 * @example
 * new nn.ELU().forward(x);
 */
export class ELU extends Module {
  constructor(readonly alpha = 1) { super(); }
  /** elu(x, alpha). */
  override forward(x: Array): Array { return A.elu(x, this.alpha); }
}

/**
 * The {@link selu} activation as a module.
 * @example
 * new nn.SELU().forward(x);
 */
export class SELU extends Module {
  /** selu(x). */
  override forward(x: Array): Array { return A.selu(x); }
}

/** Options of {@link GELU}. */
export interface GELUOptions {
  /** "none" (exact, default), "precise" or "tanh" (geluApprox), "fast" (geluFastApprox), as MLX. */
  approx?: "none" | "precise" | "tanh" | "fast";
}

/**
 * The {@link gelu} activation as a module; `approx` picks an approximation as MLX's GELU.
 * @example
 * new nn.GELU({ approx: "tanh" }).forward(x);
 */
export class GELU extends Module {
  readonly approx: NonNullable<GELUOptions["approx"]>;
  constructor(options: GELUOptions = {}) {
    super();
    const approx = options.approx ?? "none";
    if (!["none", "precise", "tanh", "fast"].includes(approx)) {
      throw new RangeError(`GELU: approx must be "none", "precise", "tanh" or "fast"; got ${JSON.stringify(approx)}`);
    }
    this.approx = approx;
  }
  /** gelu(x) or the chosen approximation. */
  override forward(x: Array): Array {
    if (this.approx === "none") return A.gelu(x);
    if (this.approx === "fast") return A.geluFastApprox(x);
    return A.geluApprox(x);
  }
}

/**
 * The {@link silu} activation as a module.
 * @example
 * new nn.SiLU().forward(x);
 */
export class SiLU extends Module {
  /** silu(x). */
  override forward(x: Array): Array { return A.silu(x); }
}

/**
 * The {@link mish} activation as a module.
 * @example
 * new nn.Mish().forward(x);
 */
export class Mish extends Module {
  /** mish(x). */
  override forward(x: Array): Array { return A.mish(x); }
}

/**
 * The {@link sigmoid} activation as a module.
 * @example
 * new nn.Sigmoid().forward(x);
 */
export class Sigmoid extends Module {
  /** sigmoid(x). */
  override forward(x: Array): Array { return A.sigmoid(x); }
}

/**
 * The {@link tanh} activation as a module.
 * @example
 * new nn.Tanh().forward(x);
 */
export class Tanh extends Module {
  /** tanh(x). */
  override forward(x: Array): Array { return A.tanh(x); }
}

/**
 * The {@link softplus} activation as a module.
 * @example
 * new nn.Softplus().forward(x);
 */
export class Softplus extends Module {
  /** softplus(x). */
  override forward(x: Array): Array { return A.softplus(x); }
}

/**
 * The {@link softmax} activation as a module (over `axis`, default the last).
 * @example
 * new nn.Softmax().forward(logits);
 */
export class Softmax extends Module {
  constructor(readonly axis = -1) { super(); }
  /** softmax(x, axis). */
  override forward(x: Array): Array { return A.softmax(x, this.axis); }
}

/**
 * The {@link logSoftmax} activation as a module (over `axis`, default the last).
 * @example
 * new nn.LogSoftmax().forward(logits);
 */
export class LogSoftmax extends Module {
  constructor(readonly axis = -1) { super(); }
  /** logSoftmax(x, axis). */
  override forward(x: Array): Array { return A.logSoftmax(x, this.axis); }
}

/**
 * The {@link hardSwish} activation as a module.
 * @example
 * new nn.HardSwish().forward(x);
 */
export class HardSwish extends Module {
  /** hardSwish(x). */
  override forward(x: Array): Array { return A.hardSwish(x); }
}
