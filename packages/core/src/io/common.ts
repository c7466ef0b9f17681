/**
 * @file Shared pieces of the file formats: path and record checks, whole-file reads and writes,
 * array bytes out (little-endian, row-major) and in (uploaded as they are, no conversion).
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { endianness } from "node:os";
import { isArray, type Array } from "../array.js";
import { dtypeCode, itemsize, typedArrayClass, type DType } from "../dtype.js";
import { fmtShape } from "../errors.js";
import { evaluate, fromHandle } from "../eval/eval.js";
import { native } from "../native/binding.js";
import { currentDevice, nativeDevice } from "../device.js";
import { isPlainObject } from "../tree.js";
import { fmtGot } from "../ops/util.js";

const HOST_LITTLE = endianness() === "LE";

/** Checks a path argument: a non-empty string. */
export function checkPath(op: string, path: unknown): string {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`${op}: path must be a non-empty string; got ${fmtGot(path)}`);
  }
  return path;
}

/** `path`, with `ext` appended unless it already ends with it (as MLX and NumPy save). */
export function withExtension(path: string, ext: string): string {
  return path.endsWith(ext) ? path : path + ext;
}

/** A malformed or unreadable file: an Error naming the op and the path. */
export function fileError(op: string, path: string, what: string): Error {
  return new Error(`${op}: ${JSON.stringify(path)}: ${what}`);
}

/** The whole file; an Error naming the op and path when it cannot be read. */
export function readFile(op: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw fileError(op, path, `cannot read the file (${(e as Error).message})`);
  }
}

/** Writes the chunks, in order, as the whole file (replacing it); an Error naming the op and path on failure. */
export function writeFile(op: string, path: string, chunks: Uint8Array[]): void {
  let fd: number;
  try {
    fd = openSync(path, "w");
  } catch (e) {
    throw fileError(op, path, `cannot write the file (${(e as Error).message})`);
  }
  try {
    for (const c of chunks) {
      for (let done = 0; done < c.length;) done += writeSync(fd, c, done, c.length - done);
    }
  } catch (e) {
    throw fileError(op, path, `cannot write the file (${(e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** Checks a record argument: a plain object whose values are live Arrays. Returns its entries. */
export function checkRecord(op: string, record: unknown, what = "record"): [string, Array][] {
  if (!isPlainObject(record)) throw new TypeError(`${op}: ${what} must be a plain object of Arrays keyed by name; got ${fmtGot(record)}`);
  const entries = Object.entries(record);
  for (const [name, x] of entries) {
    if (!isArray(x)) throw new TypeError(`${op}: ${what}[${JSON.stringify(name)}] must be an Array; got ${fmtGot(x)}`);
    x.checkAlive(op);
  }
  return entries as [string, Array][];
}

/** Evaluates the arrays together (one program), so that the reads below compute nothing more. */
export function evaluateAll(op: string, xs: Array[]): void {
  evaluate(xs, op);
}

/** Reverses the bytes of each `size`-byte element of `b` in place. */
export function swapBytes(b: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= b.length; i += size) {
    for (let l = i, r = i + size - 1; l < r; l++, r--) {
      const t = b[l];
      b[l] = b[r];
      b[r] = t;
    }
  }
}

/** The elements of x as little-endian bytes in row-major order (evaluating x if it is lazy). */
export function arrayBytes(x: Array): Uint8Array {
  const data = x.toTypedArray();
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!HOST_LITTLE) swapBytes(bytes, itemsize(x.dtype));
  return bytes;
}

/**
 * A new array on the current device from the raw little-endian (or, with `bigEndian`, big-endian)
 * row-major bytes of `shape` `dtype`: no conversion, so half types keep their exact 16-bit
 * patterns. Bool bytes other than 0 are stored as 1. `op` names the op in device errors.
 */
export function fromBytes(op: string, bytes: Uint8Array, dtype: DType, shape: number[], bigEndian = false): Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const n = itemsize(dtype);
  if (bytes.length !== size * n) {
    throw new Error(`${op}: ${bytes.length} bytes cannot hold shape ${fmtShape(shape)} ${dtype} (this is a bug)`);
  }
  const Ctor = typedArrayClass(dtype);
  const data = new Ctor(size);
  const view = new Uint8Array(data.buffer, 0, data.byteLength);
  view.set(bytes);
  if (bigEndian === HOST_LITTLE) swapBytes(view, n);
  if (dtype === "bool") for (let i = 0; i < view.length; i++) view[i] = view[i] ? 1 : 0;
  const device = currentDevice();
  return fromHandle(shape, dtype, native.fromData(data, dtypeCode(dtype), shape, nativeDevice(device, op)), device);
}

/** Sets `out[key] = value` as an own enumerable property (a key such as "__proto__" included). */
export function setEntry<T>(out: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Whether a shape's element count is a safe integer (every dimension a non-negative integer). */
export function checkedSize(shape: number[]): number | null {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return null;
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}
