/** @file Devices. Only the cpu backend exists so far; the CUDA backend arrives with its own issue. */

export interface Device {
  readonly type: "cpu" | "gpu";
  readonly index: number;
}

export const cpu: Device = Object.freeze({ type: "cpu", index: 0 });
export const gpu: Device = Object.freeze({ type: "gpu", index: 0 });

let current: Device = cpu;

export function isAvailable(d: Device): boolean {
  return d.type === "cpu";
}

export function defaultDevice(): Device {
  return current;
}

/** Sets the device ops run on; throws if it is not available in this build. */
export function setDefaultDevice(d: Device): void {
  if (!d || (d.type !== "cpu" && d.type !== "gpu")) throw new TypeError("setDefaultDevice: expected mx.cpu or mx.gpu");
  if (!isAvailable(d)) throw new Error(`setDefaultDevice: device ${d.type} is not available (this build has the cpu backend only)`);
  current = d;
}
