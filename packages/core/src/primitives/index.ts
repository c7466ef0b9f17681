/** @file Every primitive definition, by family (the registry in primitive.ts lists them by name). */
export * from "./elementwise.js";
export * from "./reduce.js";
export * from "./movement.js";
export * from "./creation.js";
export * from "./matmul.js";
export * from "./indexing.js";
export * from "./random.js";
export * from "./scan.js";
export * from "./linalg.js";
export * from "./conv.js";
export * from "./fast.js";
export type { PrimitiveDef } from "../primitive.js";
import type { PrimitiveDef } from "../primitive.js";
/** A primitive with any params, for code generic over primitives. */
export type PrimitiveDefAny = PrimitiveDef<any>;
