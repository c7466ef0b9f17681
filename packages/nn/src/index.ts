/**
 * Module, layers, activations, losses and init (not implemented yet).
 * @module @tessera/nn
 * @file @tessera/nn: Module, layers, activations, losses and init. Filled in by its own
 * issue; the package exists now so the workspace and its build are complete.
 */
/** The package name, `"@tessera/nn"`; its API is not implemented yet (see docs/api.md). */
export const PACKAGE = "@tessera/nn";
