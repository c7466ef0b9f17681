/** @file AdaDelta with torch.optim.Adadelta's update. */
import * as mx from "@tessera/core";
import { Optimizer, checkNumber, type LearningRate, type ParamState } from "./optimizer.js";

/** Options of {@link AdaDelta}; defaults are torch.optim.Adadelta's. */
export interface AdaDeltaOptions {
  /** The learning rate, a number or a schedule (default 1.0, as torch). */
  learningRate?: LearningRate;
  /** Decay of the running averages (default 0.9). */
  rho?: number;
  /** Added inside the square roots (default 1e-6). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
}

/**
 * AdaDelta (Zeiler, 2012) with torch.optim.Adadelta's update: `v = rho v + (1 - rho) g^2`,
 * `d = sqrt(u + eps) / sqrt(v + eps) * g`, `u = rho u + (1 - rho) d^2`, `p -= lr d`.
 * State per parameter: `{ v, u }`.
 * @example
 * const opt = new optim.AdaDelta({ learningRate: 1.0, rho: 0.9 });
 */
export class AdaDelta extends Optimizer {
  /** Decay of the running averages. */
  rho: number;
  /** Added inside the square roots. */
  eps: number;
  /** L2 weight decay. */
  weightDecay: number;

  /** @param options the learning rate and torch.optim.Adadelta's hyperparameters. */
  constructor({ learningRate = 1.0, rho = 0.9, eps = 1e-6, weightDecay = 0 }: AdaDeltaOptions = {}) {
    super(learningRate);
    this.rho = checkNumber("AdaDelta", "rho", rho, 0, 1);
    this.eps = checkNumber("AdaDelta", "eps", eps, 0);
    this.weightDecay = checkNumber("AdaDelta", "weightDecay", weightDecay, 0);
  }

  /** `{ v: zeros, u: zeros }`. */
  initState(param: mx.Array): ParamState {
    return { v: mx.zerosLike(param), u: mx.zerosLike(param) };
  }

  /** torch.optim.Adadelta's update of one parameter. */
  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    const { rho, eps } = this;
    const g = this.weightDecay !== 0 ? grad.add(param.mul(this.weightDecay)) : grad;
    const v = state.v.mul(rho).add(g.square().mul(1 - rho));
    const d = state.u.add(eps).sqrt().div(v.add(eps).sqrt()).mul(g);
    state.v = v;
    state.u = state.u.mul(rho).add(d.square().mul(1 - rho));
    return param.sub(d.mul(this.lrFor(param)));
  }
}
