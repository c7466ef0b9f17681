/** @file Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"). */
import * as mx from "@tessera/core";
import { Optimizer, checkNumber, type LearningRate, type ParamState } from "./optimizer.js";
import { checkBetas } from "./adam.js";

/** Options of {@link Lion}; defaults are the paper's (and MLX's). */
export interface LionOptions {
  /** The learning rate, a number or a schedule. */
  learningRate: LearningRate;
  /** `[beta1, beta2]`: interpolation for the update, decay of the momentum (default `[0.9, 0.99]`). */
  betas?: [number, number];
  /** Decoupled weight decay (default 0). */
  weightDecay?: number;
}

/**
 * Lion, as its paper's Algorithm 2: `c = b1 m + (1 - b1) g`, `p = p (1 - lr wd) - lr sign(c)`,
 * `m = b2 m + (1 - b2) g`. State per parameter: `{ m }`.
 * @example
 * const opt = new optim.Lion({ learningRate: 1e-4, weightDecay: 0.1 });
 */
export class Lion extends Optimizer {
  /** `[beta1, beta2]`. */
  betas: [number, number];
  /** Decoupled weight decay. */
  weightDecay: number;

  /** @param options the learning rate, betas and weight decay. */
  constructor({ learningRate, betas = [0.9, 0.99], weightDecay = 0 }: LionOptions) {
    super(learningRate);
    this.betas = checkBetas("Lion", betas);
    this.weightDecay = checkNumber("Lion", "weightDecay", weightDecay, 0);
  }

  /** `{ m: zeros }`. */
  initState(param: mx.Array): ParamState {
    return { m: mx.zerosLike(param) };
  }

  protected override stepValues(_t: number, lr: number): Record<string, number> {
    return { decay: 1 - lr * this.weightDecay };
  }

  /** Lion's update of one parameter. */
  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    const [b1, b2] = this.betas;
    const lr = this.lrFor(param);
    const c = state.m.mul(b1).add(grad.mul(1 - b1));
    state.m = state.m.mul(b2).add(grad.mul(1 - b2));
    const p = this.weightDecay !== 0 ? param.mul(this.value("decay", param)) : param;
    return p.sub(mx.sign(c).mul(lr));
  }
}
