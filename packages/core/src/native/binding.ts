/**
 * @file Loads the native addon; the only module that touches it. The contract with
 * native/src/addon.cc: integer handles, one `run` per evaluation, copies at read/write.
 */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

export interface MemoryStats {
  active: number;
  peak: number;
  cache: number;
  liveBuffers: number;
  handles: number;
  limit: number;
}

export interface NativeBinding {
  /** Copies host bytes into a new contiguous array; returns its handle. */
  fromData(bytes: ArrayBufferView, dtype: number, shape: number[]): number;
  /** Copies an array (made contiguous) into dst, whose byte length must match. */
  read(handle: number, dst: ArrayBufferView): void;
  free(handle: number): void;
  /** Frees `handle` when `owner` is garbage-collected (from inside the collector). */
  track(owner: object, handle: number): void;
  /** Runs one program (see eval/program.ts); returns the output handles. */
  run(program: Int32Array, scalars: Float64Array): Int32Array;
  runAsync(program: Int32Array, scalars: Float64Array): Promise<Int32Array>;
  opTable(): string[];
  describe(handle: number): { shape: number[]; strides: number[]; offset: number; storage: number };
  memoryStats(): MemoryStats;
  resetPeakMemory(): void;
  clearCache(): void;
  setMemoryLimit(bytes: number): number;
  numThreads(): number;
}

function load(): NativeBinding {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/native/binding.js -> the workspace's native/build; TESSERA_ADDON overrides (GPU machines).
  const candidates = [
    process.env.TESSERA_ADDON,
    resolve(here, "../../../../native/build/Release/tessera.node"),
  ].filter((p): p is string => !!p);
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `tessera: native addon not found (looked in ${candidates.join(", ")}); run \`pnpm install\` or \`pnpm run build:native\``,
    );
  }
  return createRequire(import.meta.url)(path) as NativeBinding;
}

export const native: NativeBinding = load();
