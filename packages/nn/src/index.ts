/**
 * @file @tessera/nn: Module, layers, activations, losses and init. Filled in by its own
 * issue; the package exists now so the workspace and its build are complete.
 */
export const PACKAGE = "@tessera/nn";
