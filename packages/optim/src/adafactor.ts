/**
 * @file Adafactor (Shazeer and Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear
 * Memory Cost") with MLX's defaults: factored second moments for parameters of 2 or more axes.
 */
import * as mx from "@tessera/core";
import { Optimizer, checkNumber, type LearningRate, type ParamState } from "./optimizer.js";

/** Options of {@link Adafactor}; defaults are MLX's. */
export interface AdafactorOptions {
  /** The learning rate; when omitted, the relative step `min(1e-2, 1/sqrt(t))` is used. */
  learningRate?: LearningRate;
  /** `[eps1, eps2]`: added to the squared gradient, and the floor of the parameter scale (default `[1e-30, 1e-3]`). */
  eps?: [number, number];
  /** Clips the update's RMS to this value (default 1.0). */
  clipThreshold?: number;
  /** The second-moment decay is `1 - t^decayRate` (default -0.8). */
  decayRate?: number;
  /** First-moment decay; `null` keeps no first moment (default `null`). */
  beta1?: number | null;
  /** Decoupled weight decay, scaled by the learning rate (default 0). */
  weightDecay?: number;
  /** Scale the step by `max(eps2, rms(p))` (default true). */
  scaleParameter?: boolean;
  /** Use the relative step instead of `learningRate` (default: true when learningRate is omitted). */
  relativeStep?: boolean;
  /** With the relative step, warm up as `min(1e-6 t, 1/sqrt(t))` (default false). */
  warmupInit?: boolean;
}

const rms = (x: mx.Array): mx.Array => x.square().mean().sqrt();

/**
 * Adafactor as in its paper and MLX: for a parameter of 2 or more axes the second moment is kept
 * as row and column averages of `g^2 + eps1` over the last two axes (`expAvgSqRow`,
 * `expAvgSqCol`), otherwise in full (`expAvgSq`); the update `g / sqrt(v)` is clipped to RMS
 * `clipThreshold`, scaled by the (relative) learning rate times `max(eps2, rms(p))`, and
 * optionally averaged with `beta1` (`expAvg`).
 * @example
 * const opt = new optim.Adafactor(); // relative step sizes, as MLX's default
 * opt.update(model, grads);
 */
export class Adafactor extends Optimizer {
  /** `[eps1, eps2]`. */
  eps: [number, number];
  /** Clipping threshold of the update's RMS. */
  clipThreshold: number;
  /** Exponent of the second-moment decay. */
  decayRate: number;
  /** First-moment decay, or null. */
  beta1: number | null;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** Whether the step is scaled by the parameter's RMS. */
  scaleParameter: boolean;
  /** Whether the relative step replaces the learning rate. */
  relativeStep: boolean;
  /** Whether the relative step warms up. */
  warmupInit: boolean;

  /** @param options MLX's Adafactor hyperparameters. */
  constructor({
    learningRate, eps = [1e-30, 1e-3], clipThreshold = 1.0, decayRate = -0.8, beta1 = null, weightDecay = 0,
    scaleParameter = true, relativeStep = learningRate === undefined, warmupInit = false,
  }: AdafactorOptions = {}) {
    super(learningRate ?? 0);
    if (!Array.isArray(eps) || eps.length !== 2) throw new TypeError(`Adafactor: eps must be a pair [eps1, eps2]; got ${JSON.stringify(eps)}`);
    this.eps = [checkNumber("Adafactor", "eps[0]", eps[0], 0), checkNumber("Adafactor", "eps[1]", eps[1], 0)];
    this.clipThreshold = checkNumber("Adafactor", "clipThreshold", clipThreshold, 0, Infinity, true);
    this.decayRate = checkNumber("Adafactor", "decayRate", decayRate, -Infinity, 0);
    this.beta1 = beta1 === null ? null : checkNumber("Adafactor", "beta1", beta1, 0, 1);
    this.weightDecay = checkNumber("Adafactor", "weightDecay", weightDecay, 0);
    this.scaleParameter = scaleParameter;
    this.relativeStep = relativeStep;
    this.warmupInit = warmupInit;
  }

  /** Row and column averages for 2+ axes, the full second moment otherwise; `expAvg` with beta1. */
  initState(param: mx.Array): ParamState {
    const s: ParamState = {};
    const shape = param.shape;
    if (param.ndim >= 2) {
      s.expAvgSqRow = mx.zeros(shape.slice(0, -1), param.dtype);
      s.expAvgSqCol = mx.zeros([...shape.slice(0, -2), shape[shape.length - 1]], param.dtype);
    } else s.expAvgSq = mx.zerosLike(param);
    if (this.beta1 !== null) s.expAvg = mx.zerosLike(param);
    return s;
  }

  /** Adafactor's update of one parameter. */
  protected override stepValues(t: number, lr: number): Record<string, number> {
    const rel = this.relativeStep ? Math.min(this.warmupInit ? 1e-6 * t : 1e-2, 1 / Math.sqrt(t)) : lr;
    const beta2 = 1 - t ** this.decayRate;
    return { rel, beta2, oneMinusBeta2: 1 - beta2, decayRel: -this.weightDecay * rel };
  }

  applyOne(grad: mx.Array, param: mx.Array, state: ParamState): mx.Array {
    const [eps1, eps2] = this.eps;
    const rel = this.value("rel", param);
    const lr: number | mx.Array = this.scaleParameter ? mx.maximum(rms(param), eps2).mul(rel) : rel;
    const beta2 = this.value("beta2", param);
    const oneMinusBeta2 = this.value("oneMinusBeta2", param);
    const sq = grad.square().add(eps1);
    let update: mx.Array;
    if (param.ndim >= 2) {
      const row = state.expAvgSqRow.mul(beta2).add(sq.mean(-1).mul(oneMinusBeta2));
      const col = state.expAvgSqCol.mul(beta2).add(sq.mean(-2).mul(oneMinusBeta2));
      state.expAvgSqRow = row;
      state.expAvgSqCol = col;
      // v ~ outer(row, col) / mean(row): the rank-1 factorization of the paper.
      const r = row.div(row.mean(-1, { keepdims: true })).rsqrt();
      update = r.expandDims(-1).mul(col.rsqrt().expandDims(-2)).mul(grad);
    } else {
      const v = state.expAvgSq.mul(beta2).add(sq.mul(oneMinusBeta2));
      state.expAvgSq = v;
      update = v.rsqrt().mul(grad);
    }
    update = update.div(mx.maximum(rms(update).div(this.clipThreshold), 1)).mul(lr);
    if (this.beta1 !== null) {
      update = state.expAvg.mul(this.beta1).add(update.mul(1 - this.beta1));
      state.expAvg = update;
    }
    if (this.weightDecay === 0) return param.sub(update);
    const decay = this.scaleParameter ? (lr as mx.Array).mul(-this.weightDecay) : this.value("decayRel", param);
    return param.add(param.mul(decay)).sub(update);
  }
}
