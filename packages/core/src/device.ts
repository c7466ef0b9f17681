/**
 * @file Devices: which backend a node runs on. Every recorded node carries the device it was
 * recorded for (an op's `{ device }` option, else the default device), and the program sends it
 * to the addon, whose backend registry routes the instruction (native/src/backend.h).
 */
import { native } from "./native/binding.js";

/** A device: a backend of the addon (`mx.cpu`, `mx.gpu`). */
export interface Device {
  /** The kind of backend. */
  readonly type: "cpu" | "gpu";
  /** Which device of that kind (0 for the first). */
  readonly index: number;
}

/** The host processor: always available. */
export const cpu: Device = Object.freeze({ type: "cpu", index: 0 });
/** The first GPU: available when the addon was built with a GPU backend and finds a device. */
export const gpu: Device = Object.freeze({ type: "gpu", index: 0 });

/** The name the addon gives a device's backend ("cpu", "gpu", "cpu:1"). */
export function deviceName(d: Device): string {
  return d.index === 0 ? d.type : `${d.type}:${d.index}`;
}

const NATIVE_INDEX = new Map<string, number>(native.devices().map((name, i) => [name, i]));

function isDevice(d: unknown): d is Device {
  return (
    typeof d === "object" && d !== null && ((d as Device).type === "cpu" || (d as Device).type === "gpu") &&
    Number.isInteger((d as Device).index) && (d as Device).index >= 0
  );
}

/** Whether this build and machine have the device. */
export function isAvailable(d: Device): boolean {
  return isDevice(d) && NATIVE_INDEX.has(deviceName(d));
}

/** nativeDevice's cache: the last frozen device it was asked about, and its index. */
let lastDevice: Device | null = null;
let lastIndex = 0;

/** The device's index in the addon's backend registry; throws, naming `op`, if it is not available. */
export function nativeDevice(d: Device, op: string): number {
  // The last device asked about, checked once: every evaluation asks, nearly always of one device.
  if (d === lastDevice) return lastIndex;
  const i = isDevice(d) ? NATIVE_INDEX.get(deviceName(d)) : undefined;
  if (!isDevice(d)) throw new TypeError(`${op}: expected a device (mx.cpu or mx.gpu); got ${typeof d === "object" ? JSON.stringify(d) : String(d)}`);
  if (i === undefined) {
    throw new Error(`${op}: device ${deviceName(d)} is not available (available: ${[...NATIVE_INDEX.keys()].join(", ")})`);
  }
  // Devices are frozen (mx.cpu, mx.gpu, deviceOf), so an object's index never changes; a plain
  // object a user passes may be changed later, and is checked again each time.
  if (Object.isFrozen(d)) (lastDevice = d), (lastIndex = i);
  return i;
}

/** The Device of a native index. */
export function deviceOf(index: number): Device {
  const name = native.devices()[index];
  const [type, i] = name.split(":");
  return Object.freeze({ type: type as Device["type"], index: i === undefined ? 0 : Number(i) });
}

/**
 * The device named by the environment variable `TESSERA_DEFAULT_DEVICE` ("cpu", "gpu", "gpu:0"),
 * read once when the package loads; cpu when it is unset or empty. A device this build or machine
 * does not have is an error at load, so a run meant for the gpu never falls back to the cpu.
 */
function initialDevice(): Device {
  const name = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.TESSERA_DEFAULT_DEVICE;
  if (name === undefined || name === "") return cpu;
  const m = /^(cpu|gpu)(?::(\d+))?$/.exec(name);
  if (!m) throw new Error(`TESSERA_DEFAULT_DEVICE: expected "cpu", "gpu" or "gpu:<index>"; got ${JSON.stringify(name)}`);
  const d: Device = Object.freeze({ type: m[1] as Device["type"], index: m[2] === undefined ? 0 : Number(m[2]) });
  nativeDevice(d, `TESSERA_DEFAULT_DEVICE=${name}`);
  return d.index === 0 ? (d.type === "gpu" ? gpu : cpu) : d;
}

let current: Device = initialDevice();
/** Set while an op that was given `{ device }` records its nodes. */
let scoped: Device | null = null;

/**
 * The device ops run on when none is given: `mx.cpu` unless the environment variable
 * `TESSERA_DEFAULT_DEVICE` named another when the package loaded, or `mx.setDefaultDevice` changed it.
 *
 * @example
 * // TESSERA_DEFAULT_DEVICE=gpu node train.mjs  runs every op on the gpu
 * mx.defaultDevice(); // { type: "gpu", index: 0 } there, { type: "cpu", index: 0 } by default
 */
export function defaultDevice(): Device {
  return current;
}

/** Sets the device ops run on; throws if it is not available in this build. */
export function setDefaultDevice(d: Device): void {
  nativeDevice(d, "setDefaultDevice");
  current = d;
}

/** The device a node recorded now runs on. */
export function currentDevice(): Device {
  return scoped ?? current;
}

/** The user-facing op being recorded (the outermost one), for errors raised below it. */
let userOp: string | null = null;

/** The op a recording error should name: the user's op, else `fallback` (a primitive). */
export function opName(fallback: string): string {
  return userOp ?? fallback;
}

/**
 * Runs fn with the nodes it records placed on `d` (undefined: unchanged), as user op `op`: errors
 * raised while it records name `op`, unless an enclosing op already does.
 */
export function onDevice<T>(op: string, d: Device | undefined, fn: () => T): T {
  const prevOp = userOp;
  userOp ??= op;
  const prev = scoped;
  try {
    if (d !== undefined) {
      nativeDevice(d, op);
      scoped = d;
    }
    return fn();
  } finally {
    scoped = prev;
    userOp = prevOp;
  }
}

/** The option every op takes. */
export interface DeviceOptions {
  /** Where the op runs (default: the default device); inputs on other devices are copied there. */
  device?: Device;
}
