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
  /** Decoded bodies kept for replay (keepBody). */
  bodies: number;
}

export interface NativeBinding {
  /** Copies host bytes into a new contiguous array on a device (default 0, the cpu); returns its handle. */
  fromData(bytes: ArrayBufferView, dtype: number, shape: number[], device?: number): number;
  /** Copies an array (made contiguous) into dst, whose byte length must match. */
  read(handle: number, dst: ArrayBufferView): void;
  free(handle: number): void;
  /** Frees `handle` when `owner` is garbage-collected (from inside the collector). */
  track(owner: object, handle: number): void;
  /**
   * Decodes and runs one program (see eval/program.ts) with its bindings; returns the output
   * handles. `scalars` may be undefined for none; `donated` lists input positions whose handles the
   * run takes over (freed at once). With `out` (as long as the program has outputs) the handles are
   * written there and it is returned; else a new array.
   */
  run(body: Int32Array, inputs: Int32Array, scalars: Float64Array | undefined, donated?: Int32Array, out?: Int32Array): Int32Array;
  runAsync(body: Int32Array, inputs: Int32Array, scalars: Float64Array, donated?: Int32Array): Promise<Int32Array>;
  /**
   * Decodes a body once and keeps it; runBody replays it with new bindings. `replaces` holds pairs
   * (input, output): that output updates that input, and takes its buffer when the input is donated.
   */
  keepBody(body: Int32Array, replaces?: Int32Array): number;
  runBody(id: number, inputs: Int32Array, scalars: Float64Array, donated?: Int32Array): Int32Array;
  runBodyAsync(id: number, inputs: Int32Array, scalars: Float64Array, donated?: Int32Array): Promise<Int32Array>;
  releaseBody(id: number): void;
  /** Kept bodies recorded as one device launch (CUDA graphs), runs such a recording served, runs it
   * could not serve (they ran plainly), recordings that failed, inputs replays copied in. */
  replayStats(): { captures: number; replays: number; misses: number; failures: number; copies: number; lastFailure: string; lastMiss: string; lastCopies: string };
  /** Each backend's named counts, keyed "device.name" (the gpu's: productGraphsRecorded and
   * productGraphsReplayed, products launched from a recorded graph of an earlier identical call). */
  counters(): Record<string, number>;
  /** The names of the addon's backends; a program's device field indexes this list. */
  devices(): string[];
  opTable(): string[];
  /** Each opcode's kind as ops.def declares it ("unary", "binary", "view", ...). */
  opKinds(): string[];
  /** Whether the backend of native device `device` runs opcode `op` (e.g. the fused kernel). */
  supports(device: number, op: number): boolean;
  describe(handle: number): { shape: number[]; strides: number[]; offset: number; storage: number; device: number };
  /** The figures of one device's allocator (default 0, the cpu). */
  memoryStats(device?: number): MemoryStats;
  resetPeakMemory(): void;
  clearCache(): void;
  setMemoryLimit(bytes: number, device?: number): number;
  numThreads(): number;
  /** The SIMD instruction set the cpu kernels run ("avx512", "avx2" or "generic"; see isa.h). */
  cpuIsa(): string;
  /** How bfloat16 products run on the cpu: "amx", "dot" (AVX-512 BF16) or "float32" (cpu/gemm.h). */
  bf16Path(): string;
  /** Starts timing every instruction this environment runs (mx.profile). */
  profileStart(): void;
  /** Stops timing; returns (opcode, nanoseconds) pairs, one per instruction run since the start,
   * each run's block headed by (-1, its instruction count). */
  profileStop(): Float64Array;
}

function load(): NativeBinding {
  const here = dirname(fileURLToPath(import.meta.url));
  // From dist/native/binding.js: TESSERA_ADDON overrides (GPU machines); then the workspace's
  // native/build (built once by the root install); then the package's own native/build, which its
  // install script (scripts/install.mjs) builds where @tessera/core is installed from a tarball.
  const candidates = [
    process.env.TESSERA_ADDON,
    resolve(here, "../../../../native/build/Release/tessera.node"),
    resolve(here, "../../native/build/Release/tessera.node"),
  ].filter((p): p is string => !!p);
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `tessera: native addon not found (looked in ${candidates.join(", ")}); in the workspace run \`pnpm install\` or \`pnpm run build:native\`; in a project that installed @tessera/core, \`npm rebuild @tessera/core\``,
    );
  }
  return createRequire(import.meta.url)(path) as NativeBinding;
}

export const native: NativeBinding = load();
