/** @file Helpers on shapes (arrays of dimension sizes), shared by the op layer and the planner. */

/** Element-wise equality of two shapes (or of any two lists of integers). */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
