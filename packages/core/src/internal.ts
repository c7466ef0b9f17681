/** @file What @tessera/transforms and the tests need beyond the public API (not a public contract). */
export { traceState, enterTrace, exitTrace, evalStats, donate } from "./eval/eval.js";
export { buildProgram, PROGRAM_VERSION, type Program } from "./eval/program.js";
export { printGraph } from "./eval/print.js";
export { compileTracing, recordTrace, dynamicScalars, COMPILE_STATE, type CompileStateAccess, type DynamicSource } from "./eval/tracing.js";
export { makeTrace, bindCall, type Trace, type Result as TraceResult } from "./eval/compiled.js";
export { dependentNodes, allNodes } from "./walk.js";
export { setFusion, fusionEnabled, setFusionMinCpu } from "./eval/fuse.js";
export { foldEpilogues } from "./eval/epilogue.js";
export { onDevice, currentDevice, deviceName, nativeDevice } from "./device.js";
export { bind, bind1, withRuleLog, registry, noGradient, zeroTangent, noInputs, type PrimitiveDef, type Tangent } from "./primitive.js";
export * as lax from "./lax.js";
export * as P from "./primitives/index.js";
export { native } from "./native/binding.js";
export { broadcastShapes, normalizeAxis, normalizeAxes } from "./ops/util.js";
