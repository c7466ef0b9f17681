/**
 * @file Hand-written float64 references of torch.optim's algorithms (and Lion's paper), one
 * element at a time: each rule keeps a per-element state object and returns the new parameter.
 * Written from torch/optim/*.py (the single-tensor, non-foreach paths), independent of tessera.
 */

/** The per-element update of an optimizer, as torch writes it. `t` counts updates from 1. */
export interface Rule {
  step(g: number, p: number, s: Record<string, number>, t: number, lr: number): number;
}

export function sgd({ momentum = 0, weightDecay = 0, dampening = 0, nesterov = false } = {}): Rule {
  return {
    step(g, p, s, _t, lr) {
      if (weightDecay !== 0) g = g + weightDecay * p;
      if (momentum !== 0) {
        s.buf = s.buf === undefined ? g : momentum * s.buf + (1 - dampening) * g;
        g = nesterov ? g + momentum * s.buf : s.buf;
      }
      return p - lr * g;
    },
  };
}

export function adam({ betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0, amsgrad = false, decoupled = false, biasCorrection = true } = {}): Rule {
  const [b1, b2] = betas;
  return {
    step(g, p, s, t, lr) {
      if (decoupled) p = p * (1 - lr * weightDecay);
      else if (weightDecay !== 0) g = g + weightDecay * p;
      s.m = (s.m ?? 0) + (g - (s.m ?? 0)) * (1 - b1); // torch: exp_avg.lerp_(grad, 1 - beta1)
      s.v = (s.v ?? 0) * b2 + (1 - b2) * g * g;
      let v = s.v;
      if (amsgrad) v = s.vmax = Math.max(s.vmax ?? 0, s.v);
      if (!biasCorrection) return p - (lr * s.m) / (Math.sqrt(v) + eps);
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      const denom = Math.sqrt(v) / Math.sqrt(bc2) + eps;
      return p - (lr / bc1) * (s.m / denom);
    },
  };
}

export function adamax({ betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0 } = {}): Rule {
  const [b1, b2] = betas;
  return {
    step(g, p, s, t, lr) {
      if (weightDecay !== 0) g = g + weightDecay * p;
      s.m = (s.m ?? 0) + (g - (s.m ?? 0)) * (1 - b1);
      s.u = Math.max((s.u ?? 0) * b2, Math.abs(g) + eps);
      return p - (lr / (1 - b1 ** t)) * (s.m / s.u);
    },
  };
}

export function rmsprop({ alpha = 0.99, eps = 1e-8, weightDecay = 0, momentum = 0, centered = false } = {}): Rule {
  return {
    step(g, p, s, _t, lr) {
      if (weightDecay !== 0) g = g + weightDecay * p;
      s.sq = (s.sq ?? 0) * alpha + (1 - alpha) * g * g;
      let avg: number;
      if (centered) {
        s.ga = (s.ga ?? 0) + (g - (s.ga ?? 0)) * (1 - alpha);
        avg = Math.sqrt(s.sq - s.ga * s.ga) + eps;
      } else avg = Math.sqrt(s.sq) + eps;
      if (momentum > 0) {
        s.buf = (s.buf ?? 0) * momentum + g / avg;
        return p - lr * s.buf;
      }
      return p - (lr * g) / avg;
    },
  };
}

export function adagrad({ lrDecay = 0, weightDecay = 0, initialAccumulatorValue = 0, eps = 1e-10 } = {}): Rule {
  return {
    step(g, p, s, t, lr) {
      if (weightDecay !== 0) g = g + weightDecay * p;
      const clr = lr / (1 + (t - 1) * lrDecay);
      s.sum = (s.sum ?? initialAccumulatorValue) + g * g;
      return p - (clr * g) / (Math.sqrt(s.sum) + eps);
    },
  };
}

export function adadelta({ rho = 0.9, eps = 1e-6, weightDecay = 0 } = {}): Rule {
  return {
    step(g, p, s, _t, lr) {
      if (weightDecay !== 0) g = g + weightDecay * p;
      s.sq = (s.sq ?? 0) * rho + (1 - rho) * g * g;
      const std = Math.sqrt(s.sq + eps);
      const delta = (Math.sqrt((s.acc ?? 0) + eps) / std) * g;
      s.acc = (s.acc ?? 0) * rho + (1 - rho) * delta * delta;
      return p - lr * delta;
    },
  };
}

/** Lion (Chen et al. 2023, Algorithm 2): decoupled weight decay, sign of the interpolation. */
export function lion({ betas = [0.9, 0.99], weightDecay = 0 } = {}): Rule {
  const [b1, b2] = betas;
  return {
    step(g, p, s, _t, lr) {
      const m = s.m ?? 0;
      const c = b1 * m + (1 - b1) * g;
      p = p - lr * (Math.sign(c) + weightDecay * p);
      s.m = b2 * m + (1 - b2) * g;
      return p;
    },
  };
}
