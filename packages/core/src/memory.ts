/** @file Memory figures of the native allocator, in bytes. */
import { native } from "./native/binding.js";

/** Bytes held by live arrays. */
export const getActiveMemory = (): number => native.memoryStats().active;
/** The most bytes held at once since the start or the last resetPeakMemory(). */
export const getPeakMemory = (): number => native.memoryStats().peak;
/** Starts a new peak: getPeakMemory() reports from now on. */
export const resetPeakMemory = (): void => native.resetPeakMemory();
/** Bytes of freed buffers kept for reuse. */
export const getCacheMemory = (): number => native.memoryStats().cache;
/** Frees the buffers kept for reuse (getCacheMemory() drops to 0). */
export const clearCache = (): void => native.clearCache();
/** Caps active memory: an evaluation that would exceed it fails with an Error. Returns the previous limit. */
export const setMemoryLimit = (bytes: number): number => {
  if (typeof bytes !== "number") throw new TypeError(`setMemoryLimit: expected a non-negative number of bytes; got ${typeof bytes === "bigint" ? `${bytes}n` : typeof bytes}`);
  if (!(bytes >= 0)) throw new RangeError(`setMemoryLimit: expected a non-negative number of bytes; got ${bytes}`);
  return native.setMemoryLimit(bytes);
};
