/**
 * @file The lazy Array: a node of the graph (shape, dtype, and the primitive that makes it from
 * its inputs) or a handle to native data once evaluated. No math here: ops live in ops/, and the
 * methods of Array are attached in methods.ts.
 */
import type { DType } from "./dtype.js";
import { itemsize, typedArrayClass, halfBitsToFloat, bfloat16BitsToFloat } from "./dtype.js";
import { DisposedError, fmtShape } from "./errors.js";
import type { PrimitiveDef } from "./primitive.js";
import { cpu, type Device } from "./device.js";
import { native } from "./native/binding.js";
import { evaluate, releaseHandle } from "./eval/eval.js";

/** Shape and dtype: what is known about an array before it is computed. */
export interface Aval {
  /** The size of each axis. */
  shape: number[];
  /** The element type. */
  dtype: DType;
}

/** How a lazy array is computed: a primitive applied to inputs (siblings share one node). */
export interface Node {
  /** The primitive that computes the outputs. */
  prim: PrimitiveDef<any>;
  /** The arrays it reads. */
  inputs: Array[];
  /** The primitive's parameters (axes, shapes, scalars). */
  params: any;
  /** All outputs of the node, in order (length 1 for single-output primitives). */
  outputs: Array[];
  /** Where it runs; inputs on other devices are transferred when the program runs. */
  device: Device;
}

/** A JS scalar an op accepts in place of an array: a number, a boolean or a BigInt. */
export type Scalar = number | boolean | bigint;
/** Anything an op takes as an array operand: an Array or a JS scalar (weakly typed). */
export type ArrayLike = Array | Scalar;

/** Nested JS arrays of a dtype's JS values, as `tolist()` returns them. */
export type NestedList = number | boolean | bigint | NestedList[];

/** Lets core create arrays; the public constructor refuses to (see makeArray). */
const CREATE = Symbol("tessera.createArray");
let writeHandle: (a: Array, handle: number) => void;

/**
 * A lazy n-dimensional array. Ops record nodes; reading values (`item`, `tolist`,
 * `toTypedArray`) or `mx.eval` computes them.
 * @example
 * const x = mx.array([[1, 2], [3, 4]]);
 * x.add(1).tolist(); // [[2, 3], [4, 5]]
 */
export class Array {
  #shape: readonly number[];
  #dtype: DType;
  #device: Device;
  #handle: number;
  /** How to compute this array, until it is evaluated (then null, unless a transform keeps it). */
  node: Node | null;
  /** @internal set by dispose(). */
  disposed = false;
  /** @internal How many recorded nodes read this array (the evaluation's keep policy uses it). */
  consumers = 0;
  /** @internal An evaluation computed this array and freed it again as an intermediate. */
  freedOnce = false;
  /** @internal Handed over (donate): the next evaluation reading it may reuse its memory, then disposes it. */
  donated = false;

  /**
   * Arrays are made by ops (`mx.array`, `mx.zeros`, ...), never by this constructor: an array
   * around a handle it does not own would free another array's data.
   */
  constructor(token: symbol, shape: number[], dtype: DType, node: Node | null, handle: number, device: Device) {
    if (token !== CREATE) throw new TypeError("Array: arrays are created by ops such as mx.array(data) or mx.zeros(shape); the constructor is internal");
    // A copied loop, not slice(): V8's slice of a frozen array (every array's shape, which ops
    // pass on) takes a slow path, some 150 ns, a sizeable part of recording an op. Sized up front:
    // pushing onto [] allocates room for 17 elements at the first push.
    const copy: number[] = new globalThis.Array(shape.length);
    for (let i = 0; i < shape.length; i++) copy[i] = shape[i];
    this.#shape = Object.freeze(copy);
    this.#dtype = dtype;
    this.node = node;
    this.#handle = handle;
    this.#device = device;
  }

  static {
    writeHandle = (a, handle) => void (a.#handle = handle);
  }

  /** The size of each axis (known before the array is computed; a frozen copy, never shared). */
  get shape(): number[] {
    return this.#shape as number[];
  }
  /** The element type (known before the array is computed). */
  get dtype(): DType {
    return this.#dtype;
  }
  /** The device that computes (or holds) the array. */
  get device(): Device {
    return this.#device;
  }
  /** Native handle of the computed data; 0 while lazy. */
  get handle(): number {
    return this.#handle;
  }

  /** The number of axes (`shape.length`). */
  get ndim(): number {
    return this.shape.length;
  }
  /** The number of elements (the product of the shape; 1 for a 0-d array). */
  get size(): number {
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }
  /** The size in bytes of one element. */
  get itemsize(): number {
    return itemsize(this.dtype);
  }
  /** The size in bytes of the data: `size * itemsize`. */
  get nbytes(): number {
    return this.size * itemsize(this.dtype);
  }

  /** Throws if the array was disposed. */
  checkAlive(op: string): void {
    if (this.disposed) {
      throw new DisposedError(`${op}: array of shape ${fmtShape(this.shape)} ${this.dtype} was disposed`);
    }
  }

  /** A copy of the data, in the TypedArray of the dtype (raw 16-bit patterns for half types). */
  toTypedArray(): InstanceType<ReturnType<typeof typedArrayClass>> {
    return this.read("toTypedArray");
  }

  private read(op: string): InstanceType<ReturnType<typeof typedArrayClass>> {
    this.checkAlive(op);
    evaluate([this], op);
    const Ctor = typedArrayClass(this.dtype);
    const out = new Ctor(this.size);
    if (this.size > 0) native.read(this.handle, out);
    return out;
  }

  /** The elements as JS values, in row-major order. */
  private values(op: string): (number | boolean | bigint)[] {
    const raw = this.read(op);
    const out: (number | boolean | bigint)[] = new globalThis.Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i];
      if (this.dtype === "bool") out[i] = v !== 0;
      else if (this.dtype === "float16") out[i] = halfBitsToFloat(v as number);
      else if (this.dtype === "bfloat16") out[i] = bfloat16BitsToFloat(v as number);
      else out[i] = v;
    }
    return out;
  }

  /** The value of a size-1 array (a BigInt for int64/uint64, a boolean for bool). */
  item(): number | boolean | bigint {
    this.checkAlive("item");
    if (this.size !== 1) {
      throw new RangeError(`item: expected an array of size 1; got shape ${fmtShape(this.shape)}`);
    }
    return this.values("item")[0];
  }

  /** Nested JS arrays of the values (booleans for bool, BigInt for 64-bit integers). */
  tolist(): NestedList {
    const flat = this.values("tolist");
    if (this.ndim === 0) return flat[0];
    // Built bottom-up without recursion, so any number of axes works: group the flat values into
    // rows of the last axis, then those rows into rows of the axis before, and so on.
    let level: NestedList[] = flat;
    for (let axis = this.ndim - 1; axis >= 0; axis--) {
      const n = this.shape[axis];
      const count = axis === 0 ? 1 : level.length / Math.max(n, 1);
      const next: NestedList[] = new globalThis.Array(n === 0 ? this.shape.slice(0, axis).reduce((p, d) => p * d, 1) : count);
      for (let i = 0; i < next.length; i++) next[i] = n === 0 ? [] : level.slice(i * n, (i + 1) * n);
      level = next;
    }
    return level[0];
  }

  /** Frees the native memory now; any later use throws a DisposedError. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.handle) releaseHandle(this);
    this.node = null;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** The values as text, `array([1, 2], dtype=float32)`; computes the array. */
  toString(): string {
    if (this.disposed) return `array(<disposed>, shape=${fmtShape(this.shape)}, dtype=${this.dtype})`;
    return `array(${JSON.stringify(this.tolist(), (_k, v) => (typeof v === "bigint" ? v.toString() : v))}, dtype=${this.dtype})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.handle || this.node ? this.toString() : `array(<disposed>, dtype=${this.dtype})`;
  }
}

/** @internal Creates an array (core only: ops, evaluation). */
export function makeArray(shape: number[], dtype: DType, node: Node | null, handle = 0, device: Device = node?.device ?? cpu): Array {
  return new Array(CREATE, shape, dtype, node, handle, device);
}

/** @internal Sets an array's native handle (core only: evaluation and dispose). */
export function setHandle(a: Array, handle: number): void {
  writeHandle(a, handle);
}

/** Whether x is a tessera Array (a type guard). */
export function isArray(x: unknown): x is Array {
  return x instanceof Array;
}
