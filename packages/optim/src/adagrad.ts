/** @file Adagrad with torch.optim.Adagrad's update. */
import * as mx from "@tessera/core";
import { Optimizer, checkNumber, type LearningRate, type ParamState } from "./optimizer.js";

/** Options of {@link Adagrad}; defaults are torch.optim.Adagrad's. */
export interface AdagradOptions {
  /** The learning rate, a number or a schedule. */
  learningRate: LearningRate;
  /** Learning-rate decay: update t uses `lr / (1 + (t - 1) lrDecay)` (default 0). */
  lrDecay?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Starting value of the accumulator (default 0). */
  initialAccumulatorValue?: number;
  /** Added to the denominator (default 1e-10). */
  eps?: number;
}

/**
 * Adagrad with torch.optim.Adagrad's update: `sum += g^2`,
 * `p -= lr / (1 + (t - 1) lrDecay) * g / (sqrt(sum) + eps)`. State per parameter: `{ sum }`.
 * @example
 * const opt = new optim.Adagrad({ learningRate: 1e-2 });
 */
export class Adagrad extends Optimizer {
  /** Learning-rate decay. */
  lrDecay: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Starting accumulator value. */
  initialAccumulatorValue: number;
  /** Added to the denominator. */
  eps: number;

  /** @param options the learning rate and torch.optim.Adagrad's hyperparameters. */
  constructor({ learningRate, lrDecay = 0, weightDecay = 0, initialAccumulatorValue = 0, eps = 1e-10 }: AdagradOptions) {
    super(learningRate);
    this.lrDecay = checkNumber("Adagrad", "lrDecay", lrDecay, 0);
    this.weightDecay = checkNumber("Adagrad", "weightDecay", weightDecay, 0);
    this.initialAccumulatorValue = checkNumber("Adagrad", "initialAccumulatorValue", initialAccumulatorValue, 0);
    this.eps = checkNumber("Adagrad", "eps", eps, 0);
  }

  /** `{ sum: initialAccumulatorValue }`. */
  initState(param: mx.Array): ParamState {
    return { sum: mx.full(param.shape, this.initialAccumulatorValue, param.dtype) };
  }

  /** torch.optim.Adagrad's update of one parameter. */
  protected override stepValues(t: number, lr: number): Record<string, number> {
    return { decayedRate: lr / (1 + (t - 1) * this.lrDecay) };
  }

  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    const g = this.weightDecay !== 0 ? grad.add(param.mul(this.weightDecay)) : grad;
    const sum = state.sum.add(g.square());
    state.sum = sum;
    return param.sub(g.div(sum.sqrt().add(this.eps)).mul(this.value("decayedRate", param)));
  }
}
