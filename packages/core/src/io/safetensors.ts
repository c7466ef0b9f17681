/**
 * @file The safetensors format, byte-compatible with the reference implementation
 * (huggingface/safetensors, `safetensors/src/tensor.rs`): an 8-byte little-endian header length,
 * a JSON header padded with spaces to a multiple of 8, then the tensors' data, contiguous.
 */
import type { Array } from "../array.js";
import { itemsize, type DType } from "../dtype.js";
import { onDevice, type DeviceOptions } from "../device.js";
import { fmtShape } from "../errors.js";
import { checkOptions, fmtGot } from "../ops/util.js";
import { isPlainObject } from "../tree.js";
import {
  arrayBytes, checkPath, checkRecord, checkedSize, evaluateAll, fileError, fromBytes, readFile, setEntry,
  withExtension, writeFile,
} from "./common.js";

const CODE: Record<DType, string> = {
  bool: "BOOL", uint8: "U8", int8: "I8", uint16: "U16", int16: "I16", uint32: "U32", int32: "I32",
  uint64: "U64", int64: "I64", float16: "F16", bfloat16: "BF16", float32: "F32", float64: "F64",
};
const BY_CODE = new Map(Object.entries(CODE).map(([d, c]) => [c, d as DType]));
/**
 * The reference's `Dtype` enum order ("increasing alignment"): data is laid out by descending
 * rank, then by name, so every tensor starts aligned to its element size.
 */
const RANK = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];
/** The reference refuses headers larger than this. */
const MAX_HEADER = 100_000_000;
const METADATA = "__metadata__";

/** Compares strings by their UTF-8 bytes, as Rust orders `String`s. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Saves a record of arrays to a safetensors file, with optional string-to-string `metadata`
 * (written as `__metadata__`, its keys sorted). The arrays are evaluated together first; the
 * layout is the reference implementation's: tensors ordered by descending dtype rank, then name.
 * `.safetensors` is appended to a path without it, as MLX does.
 * @example
 * mx.saveSafetensors("/tmp/model.safetensors", { "layer.weight": mx.ones([2, 2]) }, { format: "mlx" });
 * const { arrays, metadata } = mx.loadSafetensors("/tmp/model.safetensors");
 * metadata.format; // "mlx"
 */
export function saveSafetensors(path: string, record: Record<string, Array>, metadata?: Record<string, string> | null): void {
  const op = "saveSafetensors";
  const file = withExtension(checkPath(op, path), ".safetensors");
  const entries = checkRecord(op, record);
  if (entries.some(([name]) => name === METADATA)) throw new TypeError(`${op}: "${METADATA}" is reserved for the metadata; it cannot name a tensor`);
  let meta: [string, string][] | null = null;
  if (metadata !== undefined && metadata !== null) {
    if (!isPlainObject(metadata)) throw new TypeError(`${op}: metadata must be a plain object of strings; got ${fmtGot(metadata)}`);
    meta = Object.entries(metadata);
    for (const [k, v] of meta) {
      if (typeof v !== "string") throw new TypeError(`${op}: metadata[${JSON.stringify(k)}] must be a string; got ${fmtGot(v)}`);
    }
    meta.sort(([a], [b]) => compareUtf8(a, b));
  }
  evaluateAll(op, entries.map(([, x]) => x));
  const rank = (x: Array) => RANK.indexOf(CODE[x.dtype]);
  entries.sort(([na, a], [nb, b]) => rank(b) - rank(a) || compareUtf8(na, nb));
  // serde_json's compact output: no spaces; strings escaped as JSON.stringify escapes them.
  const parts: string[] = [];
  if (meta) parts.push(`${JSON.stringify(METADATA)}:{${meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`);
  const data: Uint8Array[] = [];
  let offset = 0;
  for (const [name, x] of entries) {
    const bytes = arrayBytes(x);
    parts.push(`${JSON.stringify(name)}:{"dtype":"${CODE[x.dtype]}","shape":[${x.shape.join(",")}],"data_offsets":[${offset},${offset + bytes.length}]}`);
    data.push(bytes);
    offset += bytes.length;
  }
  let header = Buffer.from(`{${parts.join(",")}}`, "utf8");
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(header.length));
  writeFile(op, file, [n, header, ...data]);
}

/**
 * Loads a safetensors file onto the default device (or `{ device }`) as `{ arrays, metadata }`:
 * plain objects of arrays and of strings keyed by name (`metadata` is `{}` when the file has none).
 * Files the reference implementation rejects (offsets that leave gaps, overlap or run past the
 * data, sizes that do not match the shape, unknown dtypes, duplicate names) throw an Error naming
 * the path and what is wrong.
 * @example
 * const { arrays, metadata } = mx.loadSafetensors("/tmp/model.safetensors");
 * arrays["layer.weight"].shape; // [2, 2]
 * mx.loadSafetensors("/tmp/model.safetensors", { device: mx.cpu });
 */
export function loadSafetensors(path: string, options: DeviceOptions = {}): { arrays: Record<string, Array>; metadata: Record<string, string> } {
  const op = "loadSafetensors";
  const file = checkPath(op, path);
  const o = checkOptions(op, options);
  return onDevice(op, o.device, () => {
    const b = readFile(op, file);
    const bad = (what: string) => fileError(op, file, what);
    if (b.length < 8) throw bad(`truncated file (${b.length} bytes; the header length alone takes 8)`);
    const n = b.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER)) throw bad(`header length ${n} is larger than the limit of ${MAX_HEADER} bytes (not a safetensors file?)`);
    if (Number(n) + 8 > b.length) throw bad(`truncated header (it claims ${n} bytes; the file has ${b.length - 8} after the length)`);
    let header: JsonValue;
    try {
      header = parseJson(new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(8, 8 + Number(n))));
    } catch (e) {
      throw bad(`malformed header: ${e instanceof SyntaxError ? e.message : "it is not valid UTF-8"}`);
    }
    if (!(header instanceof Map)) throw bad("malformed header: it is not a JSON object");
    const metadata: Record<string, string> = {};
    const infos: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
    for (const [name, v] of header) {
      if (name === METADATA) {
        if (!(v instanceof Map)) throw bad(`malformed header: ${METADATA} must be an object of strings`);
        for (const [k, s] of v) {
          if (typeof s !== "string") throw bad(`malformed header: ${METADATA}[${JSON.stringify(k)}] must be a string; got ${JSON.stringify(toPlain(s))}`);
          setEntry(metadata, k, s);
        }
        continue;
      }
      const what = `tensor ${JSON.stringify(name)}`;
      if (!(v instanceof Map)) throw bad(`malformed header: ${what} must be an object with dtype, shape and data_offsets`);
      const code = v.get("dtype"), shape = v.get("shape"), offsets = v.get("data_offsets");
      if (typeof code !== "string") throw bad(`malformed header: ${what} has no string dtype`);
      const dtype = BY_CODE.get(code);
      if (!dtype) throw bad(`${what} has unsupported dtype ${JSON.stringify(code)} (supported: ${[...BY_CODE.keys()].join(", ")})`);
      const size = globalThis.Array.isArray(shape) ? checkedSize(shape as number[]) : null;
      if (size === null) throw bad(`malformed header: ${what} must have a shape of non-negative integers; got ${JSON.stringify(toPlain(shape ?? null))}`);
      // An array dimension is at most 2^31 - 1 (a zero-size shape can claim more without data).
      if ((shape as number[]).some((d) => (d as number) > 0x7fffffff)) throw bad(`${what} has shape ${fmtShape(shape as number[])}, with a dimension larger than 2^31 - 1`);
      const ok = globalThis.Array.isArray(offsets) && offsets.length === 2 && offsets.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
      if (!ok) throw bad(`malformed header: ${what} must have data_offsets [begin, end] of non-negative integers; got ${JSON.stringify(toPlain(offsets ?? null))}`);
      const [begin, end] = offsets as number[];
      const s = shape as number[];
      if (end < begin) throw bad(`${what} has data_offsets [${begin},${end}] that end before they begin`);
      if (end - begin !== size * itemsize(dtype)) {
        throw bad(`${what} has data_offsets [${begin},${end}] (${end - begin} bytes), but shape ${fmtShape(s)} ${code} needs ${size * itemsize(dtype)}`);
      }
      infos.push({ name, dtype, shape: s, begin, end });
    }
    // As the reference checks: in offset order, each tensor starts where the previous one ends,
    // and the last ends at the end of the file.
    const sorted = infos.slice().sort((x, y) => x.begin - y.begin || x.end - y.end);
    let at = 0;
    for (const t of sorted) {
      if (t.begin !== at) {
        const why = t.begin < at ? "overlap the previous tensor" : "leave a gap after the previous tensor";
        throw bad(`tensor ${JSON.stringify(t.name)} has data_offsets [${t.begin},${t.end}] that ${why} (expected to begin at ${at})`);
      }
      at = t.end;
    }
    const dataLen = b.length - 8 - Number(n);
    if (at !== dataLen) {
      throw bad(at > dataLen ? `truncated data: the tensors need ${at} bytes; the file has ${dataLen}` : `the data has ${dataLen} bytes, but the tensors cover ${at}`);
    }
    const base = 8 + Number(n);
    const arrays: Record<string, Array> = {};
    for (const t of infos) setEntry(arrays, t.name, fromBytes(op, b.subarray(base + t.begin, base + t.end), t.dtype, t.shape));
    return { arrays, metadata };
  });
}

// ---- a strict JSON reader that keeps key order and rejects duplicate keys ----

type JsonValue = string | number | boolean | null | JsonValue[] | Map<string, JsonValue>;

/** Plain JS of a parsed value, for error messages. */
function toPlain(v: JsonValue): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  if (globalThis.Array.isArray(v)) return v.map(toPlain);
  return v;
}

/** JSON.parse, except that objects become Maps and a duplicate key is a SyntaxError. */
function parseJson(src: string): JsonValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at character ${i}`);
  };
  const ws = () => {
    while (i < src.length && (src[i] === " " || src[i] === "\t" || src[i] === "\n" || src[i] === "\r")) i++;
  };
  const token = (re: RegExp): string => {
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) return fail("invalid JSON");
    i += m[0].length;
    return m[0];
  };
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const LITERAL = /true|false|null/y;
  const value = (depth: number): JsonValue => {
    if (depth > 64) fail("nesting too deep");
    ws();
    const c = src[i];
    if (c === "{") {
      i++;
      const m = new Map<string, JsonValue>();
      ws();
      if (src[i] === "}") { i++; return m; }
      for (;;) {
        ws();
        const k = JSON.parse(token(STRING)) as string;
        if (m.has(k)) fail(`duplicate name ${JSON.stringify(k)}`);
        ws();
        if (src[i++] !== ":") fail("expected ':'");
        m.set(k, value(depth + 1));
        ws();
        const d = src[i++];
        if (d === "}") return m;
        if (d !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const a: JsonValue[] = [];
      ws();
      if (src[i] === "]") { i++; return a; }
      for (;;) {
        a.push(value(depth + 1));
        ws();
        const d = src[i++];
        if (d === "]") return a;
        if (d !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return JSON.parse(token(STRING)) as string;
    if (c === "t" || c === "f" || c === "n") return JSON.parse(token(LITERAL)) as boolean | null;
    return Number(token(NUMBER));
  };
  const v = value(0);
  ws();
  if (i !== src.length) fail("unexpected text after the JSON value");
  return v;
}
