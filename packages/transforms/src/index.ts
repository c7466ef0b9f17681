/** @file The public surface of @tessera/transforms. */
export { vjp } from "./vjp.js";
export { jvp } from "./jvp.js";
export { grad, valueAndGrad, type GradOptions } from "./grad.js";
export { vmap, type VmapOptions, type Axes } from "./vmap.js";
export { customFunction, checkpoint, type CustomFunction } from "./custom.js";
