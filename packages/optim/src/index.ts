/**
 * @file @tessera/optim: optimizers, schedules and gradient clipping. Filled in by its own
 * issue; the package exists now so the workspace and its build are complete.
 */
export const PACKAGE = "@tessera/optim";
