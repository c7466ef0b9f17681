/** @file RMSprop with torch.optim.RMSprop's update (centered variant and momentum included). */
import * as mx from "@tessera/core";
import { Optimizer, checkNumber, type LearningRate, type ParamState } from "./optimizer.js";

/** Options of {@link RMSprop}; defaults are torch.optim.RMSprop's. */
export interface RMSpropOptions {
  /** The learning rate, a number or a schedule. */
  learningRate: LearningRate;
  /** Smoothing constant of the squared-gradient average (default 0.99). */
  alpha?: number;
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Normalize by the estimated variance instead of the second moment (default false). */
  centered?: boolean;
}

/**
 * RMSprop with torch.optim.RMSprop's update: `v = alpha v + (1 - alpha) g^2`; with `centered`,
 * `gAvg = alpha gAvg + (1 - alpha) g` and `v - gAvg^2` replaces v; `d = sqrt(v) + eps`; with
 * momentum `buf = momentum buf + g / d; p -= lr buf`, else `p -= lr g / d`. State per parameter:
 * `{ v }`, plus `gAvg` (centered) and `buf` (momentum).
 * @example
 * const opt = new optim.RMSprop({ learningRate: 1e-2, momentum: 0.9 });
 */
export class RMSprop extends Optimizer {
  /** Smoothing constant. */
  alpha: number;
  /** Added to the denominator. */
  eps: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Momentum factor. */
  momentum: number;
  /** Whether the variance is centered. */
  centered: boolean;

  /** @param options the learning rate and torch.optim.RMSprop's hyperparameters. */
  constructor({ learningRate, alpha = 0.99, eps = 1e-8, weightDecay = 0, momentum = 0, centered = false }: RMSpropOptions) {
    super(learningRate);
    this.alpha = checkNumber("RMSprop", "alpha", alpha, 0, 1);
    this.eps = checkNumber("RMSprop", "eps", eps, 0);
    this.weightDecay = checkNumber("RMSprop", "weightDecay", weightDecay, 0);
    this.momentum = checkNumber("RMSprop", "momentum", momentum, 0);
    this.centered = centered;
  }

  /** `{ v: zeros }`, plus `gAvg` and `buf` when centered or with momentum. */
  initState(param: mx.Array): ParamState {
    const s: ParamState = { v: mx.zerosLike(param) };
    if (this.centered) s.gAvg = mx.zerosLike(param);
    if (this.momentum > 0) s.buf = mx.zerosLike(param);
    return s;
  }

  /** torch.optim.RMSprop's update of one parameter. */
  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    const a = this.alpha;
    const lr = this.lrFor(param);
    const g = this.weightDecay !== 0 ? grad.add(param.mul(this.weightDecay)) : grad;
    const v = state.v.mul(a).add(g.square().mul(1 - a));
    state.v = v;
    let avg: mx.Array;
    if (this.centered) {
      const gAvg = state.gAvg.mul(a).add(g.mul(1 - a));
      state.gAvg = gAvg;
      avg = v.sub(gAvg.square()).sqrt().add(this.eps);
    } else avg = v.sqrt().add(this.eps);
    if (this.momentum > 0) {
      const buf = state.buf.mul(this.momentum).add(g.div(avg));
      state.buf = buf;
      return param.sub(buf.mul(lr));
    }
    return param.sub(g.div(avg).mul(lr));
  }
}
