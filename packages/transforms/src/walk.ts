/** @file The generic graph walks every transform uses (they live in @tessera/core, whose fused
 * primitives' derivative rules walk graphs too); nothing here knows a particular primitive. */
import { internal } from "@tessera/core";

export const dependentNodes = internal.dependentNodes;
export const allNodes = internal.allNodes;
