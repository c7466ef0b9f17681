/** @file Activation functions (MLX's definitions), composed from core ops so they differentiate. */
import * as mx from "@tessera/core";
import type { Array } from "@tessera/core";

/**
 * Rectified linear unit, `max(x, 0)`.
 * @example
 * nn.relu(mx.array([-1, 2])).tolist(); // [0, 2]
 */
export function relu(x: Array): Array {
  return mx.maximum(x, 0);
}

/**
 * Leaky ReLU: `x` for positive inputs, `negativeSlope * x` otherwise.
 * @example
 * nn.leakyRelu(mx.array([-1, 2]), 0.1).tolist(); // [-0.1, 2]
 */
export function leakyRelu(x: Array, negativeSlope = 0.01): Array {
  return mx.where(mx.greater(x, 0), x, mx.mul(x, negativeSlope));
}

/**
 * Exponential linear unit: `x` for positive inputs, `alpha * (exp(x) - 1)` otherwise.
 * @example
 * nn.elu(mx.array([-1, 2])).tolist(); // [-0.632..., 2]
 */
export function elu(x: Array, alpha = 1): Array {
  // expm1 of min(x, 0): the unused branch stays finite, so its zero gradient is not NaN.
  return mx.where(mx.greater(x, 0), x, mx.mul(mx.expm1(mx.minimum(x, 0)), alpha));
}

/**
 * Scaled ELU, `1.0507009873554805 * elu(x, 1.6732632423543772)`.
 * @example
 * nn.selu(x);
 */
export function selu(x: Array): Array {
  return mx.mul(elu(x, 1.6732632423543772), 1.0507009873554805);
}

/**
 * Gaussian error linear unit, exact: `x * (1 + erf(x / sqrt(2))) / 2`.
 * @example
 * nn.gelu(x);
 */
export function gelu(x: Array): Array {
  return mx.mul(mx.mul(x, 0.5), mx.add(mx.erf(mx.mul(x, Math.SQRT1_2)), 1));
}

/**
 * GELU, tanh approximation: `0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))`.
 * @example
 * nn.geluApprox(x);
 */
export function geluApprox(x: Array): Array {
  const inner = mx.mul(mx.add(x, mx.mul(mx.mul(mx.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mx.mul(mx.mul(x, 0.5), mx.add(mx.tanh(inner), 1));
}

/**
 * GELU, sigmoid approximation (MLX's `gelu_fast_approx`): `x * sigmoid(1.702x)`.
 * @example
 * nn.geluFastApprox(x);
 */
export function geluFastApprox(x: Array): Array {
  return mx.mul(x, mx.sigmoid(mx.mul(x, 1.702)));
}

/**
 * Sigmoid linear unit (swish), `x * sigmoid(x)`.
 * @example
 * nn.silu(x);
 */
export function silu(x: Array): Array {
  return mx.mul(x, mx.sigmoid(x));
}

/**
 * Softplus, `log(1 + exp(x))`, computed stably.
 * @example
 * nn.softplus(mx.array([0])).item(); // 0.693...
 */
export function softplus(x: Array): Array {
  return mx.logaddexp(x, 0);
}

/**
 * Mish, `x * tanh(softplus(x))`.
 * @example
 * nn.mish(x);
 */
export function mish(x: Array): Array {
  return mx.mul(x, mx.tanh(softplus(x)));
}

/**
 * The logistic sigmoid, `1 / (1 + exp(-x))`.
 * @example
 * nn.sigmoid(mx.array([0])).item(); // 0.5
 */
export function sigmoid(x: Array): Array {
  return mx.sigmoid(x);
}

/**
 * Hyperbolic tangent.
 * @example
 * nn.tanh(x);
 */
export function tanh(x: Array): Array {
  return mx.tanh(x);
}

/**
 * Softmax along `axis` (default the last).
 * @example
 * nn.softmax(logits); // rows sum to 1
 */
export function softmax(x: Array, axis = -1): Array {
  return mx.softmax(x, axis);
}

/**
 * Log-softmax along `axis` (default the last).
 * @example
 * nn.logSoftmax(logits);
 */
export function logSoftmax(x: Array, axis = -1): Array {
  return mx.logSoftmax(x, axis);
}

/**
 * Hard swish, `x * min(max(x + 3, 0), 6) / 6`.
 * @example
 * nn.hardSwish(x);
 */
export function hardSwish(x: Array): Array {
  return mx.div(mx.mul(x, mx.minimum(mx.maximum(mx.add(x, 3), 0), 6)), 6);
}
