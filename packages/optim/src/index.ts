/**
 * Optimizers, schedules and gradient clipping (not implemented yet).
 * @module @tessera/optim
 * @file @tessera/optim: optimizers, schedules and gradient clipping. Filled in by its own
 * issue; the package exists now so the workspace and its build are complete.
 */
/** The package name, `"@tessera/optim"`; its API is not implemented yet (see docs/api.md). */
export const PACKAGE = "@tessera/optim";
