/** @file Error classes and the invariant check used across packages. */

/** A shape is wrong for the op (mismatched dims, bad axes, wrong sizes). */
export class ShapeError extends TypeError {
  override name = "ShapeError";
}
/** A dtype is wrong for the op. */
export class DTypeError extends TypeError {
  override name = "DTypeError";
}
/** A transform was used wrongly (bad inAxes, reading a mapped value, non-scalar grad output). */
export class TransformError extends Error {
  override name = "TransformError";
}
/** An array was used after `dispose()`. */
export class DisposedError extends ReferenceError {
  override name = "DisposedError";
}
/** A broken internal invariant: a bug in tessera, never the user's fault. */
export class InternalError extends Error {
  override name = "InternalError";
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new InternalError(`${msg} (this is a bug)`);
}

/** Formats a shape the way error messages print it: `[2,3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}
