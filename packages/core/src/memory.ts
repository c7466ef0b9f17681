/**
 * @file Memory figures of the native allocator of the default device (`mx.defaultDevice()`, as
 * MLX reports its GPU's), in bytes. resetPeakMemory and clearCache act on every device.
 */
import { defaultDevice, nativeDevice } from "./device.js";
import { native } from "./native/binding.js";

const stats = () => native.memoryStats(nativeDevice(defaultDevice(), "memory"));

/**
 * Bytes held by live arrays on the default device.
 * @example
 * const before = mx.getActiveMemory();
 * mx.eval(mx.zeros([1024]));
 */
export const getActiveMemory = (): number => stats().active;
/**
 * The most bytes held at once on the default device since the start or the last resetPeakMemory().
 * @example
 * mx.resetPeakMemory();
 * mx.getPeakMemory();
 */
export const getPeakMemory = (): number => stats().peak;
/**
 * Starts a new peak on every device: getPeakMemory() reports from now on.
 * @example
 * mx.resetPeakMemory();
 */
export const resetPeakMemory = (): void => native.resetPeakMemory();
/**
 * Bytes of freed buffers kept for reuse on the default device.
 * @example
 * mx.getCacheMemory();
 */
export const getCacheMemory = (): number => stats().cache;
/**
 * Frees the buffers kept for reuse on every device (getCacheMemory() drops to 0).
 * @example
 * mx.clearCache();
 */
export const clearCache = (): void => native.clearCache();
/**
 * Caps active memory on the default device: an evaluation that would exceed it fails with an
 * Error. Returns the previous limit.
 * @example
 * const prev = mx.setMemoryLimit(1 << 30);
 * mx.setMemoryLimit(prev);
 */
export const setMemoryLimit = (bytes: number): number => {
  if (typeof bytes !== "number") throw new TypeError(`setMemoryLimit: expected a non-negative number of bytes; got ${typeof bytes === "bigint" ? `${bytes}n` : typeof bytes}`);
  if (!(bytes >= 0)) throw new RangeError(`setMemoryLimit: expected a non-negative number of bytes; got ${bytes}`);
  return native.setMemoryLimit(bytes, nativeDevice(defaultDevice(), "setMemoryLimit"));
};
