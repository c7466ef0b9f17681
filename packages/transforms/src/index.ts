/**
 * Function transforms as graph rewrites: grad, valueAndGrad, vjp, jvp, vmap, customFunction, checkpoint, compile.
 * @module @tessera/transforms
 * @file The public surface of @tessera/transforms.
 */
export { vjp } from "./vjp.js";
export { jvp } from "./jvp.js";
export { grad, valueAndGrad, type GradOptions } from "./grad.js";
export { vmap, type VmapOptions, type Axes } from "./vmap.js";
export { customFunction, checkpoint, type CustomFunction } from "./custom.js";
export { compile, type CompileOptions } from "./compile.js";
export type { LossOutput, LossArray, Outputs, Argnums, ArgIndex, ArgnumsFor, GradOf, GradsOf, ParamAt, OutputList, ArraysFor } from "./types.js";
