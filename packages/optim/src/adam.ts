/** @file Adam, AdamW and Adamax with torch.optim's updates (bias correction on by default). */
import * as mx from "@tessera/core";
import { Optimizer, checkNumber, type LearningRate, type ParamState } from "./optimizer.js";

/** Options of {@link Adam}; defaults are torch.optim.Adam's. */
export interface AdamOptions {
  /** The learning rate, a number or a schedule. */
  learningRate: LearningRate;
  /** Decay rates `[beta1, beta2]` of the first and second moments (default `[0.9, 0.999]`). */
  betas?: [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Divide the moments by `1 - beta^t` (default true, as torch; false is MLX's Adam). */
  biasCorrection?: boolean;
  /** L2 penalty added to the gradient (default 0; AdamW decouples it instead). */
  weightDecay?: number;
  /** Use the running maximum of the second moment (AMSGrad; default false). */
  amsgrad?: boolean;
}

/** Options of {@link AdamW}: Adam's, with decoupled weight decay (default 0.01). */
export interface AdamWOptions extends AdamOptions {
  /** Decoupled weight decay: `p *= 1 - lr * weightDecay` before the Adam step (default 0.01). */
  weightDecay?: number;
}

/**
 * Adam (Kingma and Ba, 2015) with torch.optim.Adam's update, for the update numbered t from 1:
 * `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
 * `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`; with `biasCorrection: false`,
 * `p -= lr * m / (sqrt(v) + eps)` (MLX's Adam). `weightDecay` adds `wd * p` to the gradient;
 * `amsgrad` keeps `vMax = max(vMax, v)` and uses it for v. State per parameter: `{ m, v }`
 * (and `vMax` with amsgrad).
 * @example
 * const opt = new optim.Adam({ learningRate: 1e-3 });
 * opt.update(model, grads);
 * mx.eval(model.parameters(), opt.state);
 */
export class Adam extends Optimizer {
  /** `[beta1, beta2]`. */
  betas: [number, number];
  /** Added to the denominator. */
  eps: number;
  /** Whether the moments are bias-corrected. */
  biasCorrection: boolean;
  /** Weight decay (L2 for Adam, decoupled for AdamW). */
  weightDecay: number;
  /** Whether AMSGrad is used. */
  amsgrad: boolean;
  /** Whether weight decay is decoupled (AdamW). */
  protected decoupled = false;

  /** @param options the learning rate and torch.optim.Adam's hyperparameters. */
  constructor({ learningRate, betas = [0.9, 0.999], eps = 1e-8, biasCorrection = true, weightDecay = 0, amsgrad = false }: AdamOptions) {
    super(learningRate);
    this.betas = checkBetas(this.name, betas);
    this.eps = checkNumber(this.name, "eps", eps, 0);
    this.biasCorrection = biasCorrection;
    this.weightDecay = checkNumber(this.name, "weightDecay", weightDecay, 0);
    this.amsgrad = amsgrad;
  }

  /** `{ m: zeros, v: zeros }`, and `vMax: zeros` with amsgrad. */
  initState(param: mx.Array): ParamState {
    const s: ParamState = { m: mx.zerosLike(param), v: mx.zerosLike(param) };
    if (this.amsgrad) s.vMax = mx.zerosLike(param);
    return s;
  }

  /** torch.optim.Adam's (or AdamW's) update of one parameter. */
  protected override stepValues(t: number, lr: number): Record<string, number> {
    const [b1, b2] = this.betas;
    return { stepSize: lr / (1 - b1 ** t), bc2Sqrt: Math.sqrt(1 - b2 ** t), decay: 1 - lr * this.weightDecay };
  }

  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    const [b1, b2] = this.betas;
    let g = grad;
    let p = param;
    if (this.weightDecay !== 0) {
      if (this.decoupled) p = p.mul(this.value("decay", param));
      else g = g.add(p.mul(this.weightDecay));
    }
    const m = state.m.mul(b1).add(g.mul(1 - b1));
    const v = state.v.mul(b2).add(g.square().mul(1 - b2));
    state.m = m;
    state.v = v;
    let vUsed = v;
    if (this.amsgrad) {
      vUsed = mx.maximum(state.vMax ?? v, v);
      state.vMax = vUsed;
    }
    if (!this.biasCorrection) return p.sub(m.div(vUsed.sqrt().add(this.eps)).mul(this.lrFor(param)));
    const denom = vUsed.sqrt().div(this.value("bc2Sqrt", param)).add(this.eps);
    return p.sub(m.div(denom).mul(this.value("stepSize", param)));
  }
}

/**
 * AdamW (Loshchilov and Hutter, 2019) with torch.optim.AdamW's update: the parameter is first
 * scaled by `1 - lr * weightDecay` (default 0.01), then takes Adam's step.
 * @example
 * const opt = new optim.AdamW({ learningRate: 1e-3, weightDecay: 0.05 });
 * opt.update(model, grads);
 */
export class AdamW extends Adam {
  /** @param options Adam's options, with decoupled weight decay (default 0.01). */
  constructor({ weightDecay = 0.01, ...rest }: AdamWOptions) {
    super({ ...rest, weightDecay });
    this.decoupled = true;
  }
}

/** Options of {@link Adamax}; defaults are torch.optim.Adamax's. */
export interface AdamaxOptions {
  /** The learning rate, a number or a schedule. */
  learningRate: LearningRate;
  /** `[beta1, beta2]` (default `[0.9, 0.999]`). */
  betas?: [number, number];
  /** Added to `|g|` in the infinity norm (default 1e-8). */
  eps?: number;
  /** Divide the step by `1 - beta1^t` (default true, as torch). */
  biasCorrection?: boolean;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
}

/**
 * Adamax, Adam with the infinity norm, with torch.optim.Adamax's update:
 * `m = b1 m + (1 - b1) g`, `u = max(b2 u, |g| + eps)`, `p -= lr / (1 - b1^t) * m / u`
 * (without the `1 - b1^t` when `biasCorrection` is false). State per parameter: `{ m, u }`.
 * @example
 * const opt = new optim.Adamax({ learningRate: 2e-3 });
 */
export class Adamax extends Optimizer {
  /** `[beta1, beta2]`. */
  betas: [number, number];
  /** Added to `|g|`. */
  eps: number;
  /** Whether the step is bias-corrected. */
  biasCorrection: boolean;
  /** L2 weight decay. */
  weightDecay: number;

  /** @param options the learning rate and torch.optim.Adamax's hyperparameters. */
  constructor({ learningRate, betas = [0.9, 0.999], eps = 1e-8, biasCorrection = true, weightDecay = 0 }: AdamaxOptions) {
    super(learningRate);
    this.betas = checkBetas("Adamax", betas);
    this.eps = checkNumber("Adamax", "eps", eps, 0);
    this.biasCorrection = biasCorrection;
    this.weightDecay = checkNumber("Adamax", "weightDecay", weightDecay, 0);
  }

  /** `{ m: zeros, u: zeros }`. */
  initState(param: mx.Array): ParamState {
    return { m: mx.zerosLike(param), u: mx.zerosLike(param) };
  }

  /** torch.optim.Adamax's update of one parameter. */
  protected override stepValues(t: number, lr: number): Record<string, number> {
    return { stepSize: lr / (this.biasCorrection ? 1 - this.betas[0] ** t : 1) };
  }

  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    const [b1, b2] = this.betas;
    const g = this.weightDecay !== 0 ? grad.add(param.mul(this.weightDecay)) : grad;
    const m = state.m.mul(b1).add(g.mul(1 - b1));
    const u = mx.maximum(state.u.mul(b2), g.abs().add(this.eps));
    state.m = m;
    state.u = u;
    return param.sub(m.div(u).mul(this.value("stepSize", param)));
  }
}

/** Checks `[beta1, beta2]`, each in [0, 1). */
export function checkBetas(op: string, betas: unknown): [number, number] {
  if (!Array.isArray(betas) || betas.length !== 2) throw new TypeError(`${op}: betas must be a pair [beta1, beta2]; got ${JSON.stringify(betas)}`);
  return [checkNumber(op, "betas[0]", betas[0], 0, 1, false, true), checkNumber(op, "betas[1]", betas[1], 0, 1, false, true)];
}
