/** @file The NumPy file functions: `save` (.npy), `savez` (.npz) and `load` (either). */
import { isArray, type Array } from "../array.js";
import { onDevice, type DeviceOptions } from "../device.js";
import { checkOptions, fmtGot } from "../ops/util.js";
import {
  checkPath, checkRecord, evaluateAll, fileError, readFile, setEntry, withExtension, writeFile,
} from "./common.js";
import { decodeNpy, encodeNpy, isNpy } from "./npy.js";
import { readZip, writeZip } from "./zip.js";

/**
 * Saves an array to a `.npy` file (NumPy format 1.0, or 2.0 for a very long header; C order,
 * little-endian), evaluating it first. As in MLX and NumPy, `.npy` is appended to a path without
 * it. bfloat16 is written as the 2-byte void type `<V2`, as MLX does: `mx.load` and MLX read it
 * back as bfloat16, NumPy as raw bytes (save `x.astype("float32")`, or use `saveSafetensors`, for
 * a file NumPy reads as numbers).
 * @example
 * mx.save("/tmp/x.npy", mx.arange(6).reshape([2, 3]));
 * mx.load("/tmp/x.npy"); // int32 array of shape [2, 3]
 */
export function save(path: string, x: Array): void {
  const file = withExtension(checkPath("save", path), ".npy");
  if (!isArray(x)) throw new TypeError(`save: argument 2 must be an Array; got ${fmtGot(x)}`);
  x.checkAlive("save");
  writeFile("save", file, encodeNpy(x));
}

/**
 * Saves a record of arrays to an uncompressed `.npz` file, as NumPy's `np.savez` does: a ZIP
 * archive with a member `<name>.npy` for each entry. `.npz` is appended to a path without it.
 * The arrays are evaluated together first. `mx.load` reads the file back as a record.
 * @example
 * mx.savez("/tmp/params.npz", { w: mx.ones([2, 2]), b: mx.zeros([2]) });
 * const { w, b } = mx.load("/tmp/params.npz") as Record<string, mx.Array>;
 */
export function savez(path: string, record: Record<string, Array>): void {
  const file = withExtension(checkPath("savez", path), ".npz");
  const entries = checkRecord("savez", record);
  evaluateAll("savez", entries.map(([, x]) => x));
  writeFile("savez", file, writeZip(entries.map(([name, x]) => ({ name: `${name}.npy`, chunks: encodeNpy(x) }))));
}

/**
 * Loads a `.npy` file as an array, or a `.npz` file (stored or deflated, as `np.savez` and
 * `np.savez_compressed` write them) as a record of arrays keyed by name, onto the default device
 * or `{ device }`. Fortran-order and big-endian files are read too. Malformed files throw an
 * Error naming the path and what is wrong.
 * @example
 * const x = mx.load("/tmp/x.npy") as mx.Array;
 * const params = mx.load("/tmp/params.npz") as Record<string, mx.Array>;
 * const onCpu = mx.load("/tmp/x.npy", { device: mx.cpu });
 */
export function load(path: string, options: DeviceOptions = {}): Array | Record<string, Array> {
  const file = checkPath("load", path);
  const o = checkOptions("load", options);
  return onDevice("load", o.device, () => {
    const bytes = readFile("load", file);
    if (isNpy(bytes)) {
      try {
        return decodeNpy("load", bytes);
      } catch (e) {
        throw rethrow(e, file, "");
      }
    }
    if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5)) {
      let members;
      try {
        members = readZip(bytes);
      } catch (e) {
        throw rethrow(e, file, "");
      }
      const out: Record<string, Array> = {};
      const seen = new Set<string>();
      for (const { name, data } of members) {
        if (!name.endsWith(".npy")) throw fileError("load", file, `member ${JSON.stringify(name)} is not a .npy file`);
        const key = name.slice(0, -4);
        if (seen.has(key)) throw fileError("load", file, `duplicate member ${JSON.stringify(name)}`);
        seen.add(key);
        try {
          setEntry(out, key, decodeNpy("load", data));
        } catch (e) {
          throw rethrow(e, file, `member ${JSON.stringify(name)}: `);
        }
      }
      return out;
    }
    const hint = file.endsWith(".safetensors") ? " (use loadSafetensors for .safetensors files)" : "";
    throw fileError("load", file, `not a .npy or .npz file (unknown magic bytes)${hint}`);
  });
}

/** A format error from below, as an Error naming load and the path; device and bug errors pass through. */
function rethrow(e: unknown, file: string, where: string): unknown {
  if (!(e instanceof Error) || e.constructor !== Error || e.message.startsWith("load: ")) return e;
  return fileError("load", file, where + e.message);
}
