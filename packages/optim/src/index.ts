/**
 * Optimizers (torch.optim's update formulas and defaults), learning-rate schedules and gradient
 * clipping. Optimizers work on any model with `trainableParameters()` and `update(tree)`.
 * @module @tessera/optim
 * @file The public surface of @tessera/optim: explicit re-exports only.
 */
export { Optimizer, type Schedule, type LearningRate, type ParamState, type Model } from "./optimizer.js";
export { SGD, type SGDOptions } from "./sgd.js";
export { Adam, AdamW, Adamax, type AdamOptions, type AdamWOptions, type AdamaxOptions } from "./adam.js";
export { RMSprop, type RMSpropOptions } from "./rmsprop.js";
export { Adagrad, type AdagradOptions } from "./adagrad.js";
export { AdaDelta, type AdaDeltaOptions } from "./adadelta.js";
export { Lion, type LionOptions } from "./lion.js";
export { Adafactor, type AdafactorOptions } from "./adafactor.js";
export { exponentialDecay, stepDecay, cosineDecay, linearSchedule, joinSchedules } from "./schedules.js";
export { clipGradNorm } from "./clip.js";
