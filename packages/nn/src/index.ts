/**
 * Neural networks: Module, layers, activations, losses, init and nn.valueAndGrad.
 * @module @tessera/nn
 * @file The public surface of @tessera/nn: explicit re-exports only.
 */
export { Module, type ParamTree, type FreezeOptions, type LoadWeightsOptions } from "./module.js";
export { valueAndGrad } from "./value-and-grad.js";
export {
  relu, leakyRelu, elu, selu, gelu, geluApprox, geluFastApprox, silu, mish, sigmoid, tanh, softplus, softmax,
  logSoftmax, hardSwish,
} from "./activations.js";
export { Linear, Identity, Embedding, type LinearOptions } from "./layers/linear.js";
export {
  Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, type ConvLayerOptions, type ConvTransposeLayerOptions,
} from "./layers/conv.js";
export {
  LayerNorm, RMSNorm, GroupNorm, BatchNorm,
  type LayerNormOptions, type RMSNormOptions, type GroupNormOptions, type BatchNormOptions,
} from "./layers/normalization.js";
export { Dropout } from "./layers/dropout.js";
export { MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, type PoolLayerOptions } from "./layers/pooling.js";
export { Sequential, type SequentialLayer } from "./layers/containers.js";
export {
  MultiHeadAttention, RoPE, TransformerEncoderLayer, TransformerEncoder,
  type MultiHeadAttentionOptions, type RoPEOptions, type TransformerEncoderOptions,
} from "./layers/transformer.js";
export { RNN, GRU, LSTM, type RNNOptions, type RecurrentOptions } from "./layers/recurrent.js";
export {
  ReLU, LeakyReLU, ELU, SELU, GELU, SiLU, Mish, Sigmoid, Tanh, Softplus, Softmax, LogSoftmax, HardSwish,
  type GELUOptions,
} from "./layers/activations.js";
/**
 * Loss functions (MLX's definitions; `reduction` defaults to "none"): `crossEntropy`,
 * `binaryCrossEntropy`, `nllLoss`, `mseLoss`, `l1Loss`, `smoothL1Loss`, `huberLoss`, `klDivLoss`,
 * `cosineSimilarityLoss`.
 * @example
 * const loss = nn.losses.crossEntropy(logits, labels, { reduction: "mean" });
 */
export * as losses from "./losses.js";
/**
 * Initializers (MLX's `nn.init`): each returns a function `(array, options?) => array` of new values
 * with the array's shape: `constant`, `uniform`, `normal`, `glorotUniform`, `glorotNormal`,
 * `heUniform`, `heNormal`.
 * @example
 * layer.weight = nn.init.heNormal()(layer.weight);
 */
export * as init from "./init.js";
