/** @file SGD with momentum, dampening, Nesterov momentum and L2 weight decay, as torch.optim.SGD. */
import * as mx from "@tessera/core";
import { Optimizer, checkNumber, type LearningRate, type ParamState } from "./optimizer.js";

/** Options of {@link SGD}; defaults are torch.optim.SGD's. */
export interface SGDOptions {
  /** The learning rate, a number or a schedule. */
  learningRate: LearningRate;
  /** Momentum factor (default 0: plain SGD, no state). */
  momentum?: number;
  /** L2 penalty added to the gradient, `g + weightDecay * p` (default 0). */
  weightDecay?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
}

/**
 * Stochastic gradient descent, with torch.optim.SGD's update:
 * `g += wd * p; v = g` on the first update, then `v = momentum * v + (1 - dampening) * g`;
 * `g = nesterov ? g + momentum * v : v`; `p -= lr * g`. The state of each parameter is `{ v }`
 * when momentum is nonzero, `{}` otherwise.
 * @example
 * const opt = new optim.SGD({ learningRate: 0.1, momentum: 0.9, nesterov: true });
 * opt.update(model, grads);
 * mx.eval(model.parameters(), opt.state);
 */
export class SGD extends Optimizer {
  /** Momentum factor. */
  momentum: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Dampening of the momentum. */
  dampening: number;
  /** Whether the momentum is Nesterov's. */
  nesterov: boolean;

  /** @param options the learning rate and torch.optim.SGD's hyperparameters. */
  constructor({ learningRate, momentum = 0, weightDecay = 0, dampening = 0, nesterov = false }: SGDOptions) {
    super(learningRate);
    this.momentum = checkNumber("SGD", "momentum", momentum, 0);
    this.weightDecay = checkNumber("SGD", "weightDecay", weightDecay, 0);
    this.dampening = checkNumber("SGD", "dampening", dampening, 0, 1);
    this.nesterov = nesterov;
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new RangeError(`SGD: nesterov momentum requires momentum > 0 and dampening 0; got momentum ${momentum}, dampening ${dampening}`);
    }
  }

  /** `{ v: zeros }` with momentum, `{}` without. */
  initState(param: mx.Array): ParamState {
    return this.momentum !== 0 ? { v: mx.zerosLike(param) } : {};
  }

  protected override stepValues(t: number): Record<string, number> {
    return { gradScale: t === 1 ? 1 : 1 - this.dampening };
  }

  /** torch.optim.SGD's update of one parameter. */
  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    let g = this.weightDecay !== 0 ? grad.add(param.mul(this.weightDecay)) : grad;
    if (this.momentum !== 0) {
      // torch starts the buffer at the first gradient (no dampening on the first update): from
      // the zero buffer of initState, momentum * 0 + g is exactly g.
      const v = !state.v ? g : state.v.mul(this.momentum).add(this.dampening ? g.mul(this.value("gradScale", param)) : g);
      state.v = v;
      g = this.nesterov ? g.add(v.mul(this.momentum)) : v;
    }
    return param.sub(g.mul(this.lrFor(param)));
  }
}
