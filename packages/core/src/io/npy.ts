/**
 * @file The NumPy `.npy` format (versions 1.0, 2.0 and 3.0): the header's Python-literal
 * dictionary, dtype descriptors, and encoding and decoding one array.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import type { Array } from "../array.js";
import type { DType } from "../dtype.js";
import { itemsize } from "../dtype.js";
import { fmtShape } from "../errors.js";
import { transpose } from "../ops/shape.js";
import { arrayBytes, checkedSize, fromBytes } from "./common.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** NumPy aligns the data to 64 bytes and leaves room for the first axis to grow to 21 digits. */
const ARRAY_ALIGN = 64;
const GROWTH_AXIS_MAX_DIGITS = 21;

/**
 * The descriptor of each dtype, as NumPy writes it. bfloat16 has no NumPy dtype: like MLX, it is
 * written as the 2-byte void type `<V2` (NumPy loads it as raw bytes; `.view(ml_dtypes.bfloat16)`
 * recovers the values) and `<V2`/`|V2` is read back as bfloat16.
 */
const DESCR: Record<DType, string> = {
  bool: "|b1", uint8: "|u1", int8: "|i1", uint16: "<u2", int16: "<i2", uint32: "<u4", int32: "<i4",
  uint64: "<u8", int64: "<i8", float16: "<f2", bfloat16: "<V2", float32: "<f4", float64: "<f8",
};
const BY_KIND: Record<string, DType> = {
  b1: "bool", u1: "uint8", i1: "int8", u2: "uint16", i2: "int16", u4: "uint32", i4: "int32",
  u8: "uint64", i8: "int64", f2: "float16", f4: "float32", f8: "float64", V2: "bfloat16",
};

/** Whether bytes start with the .npy magic string. */
export function isNpy(b: Uint8Array): boolean {
  return b.length >= 6 && MAGIC.every((m, i) => b[i] === m);
}

/** Python's repr of a shape tuple: `()`, `(3,)`, `(2, 3)`. */
function shapeRepr(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/** The .npy file of x, as NumPy's `np.save` writes it (C order, 64-byte aligned header): header, data. */
export function encodeNpy(x: Array): Uint8Array[] {
  let dict = `{'descr': '${DESCR[x.dtype]}', 'fortran_order': False, 'shape': ${shapeRepr(x.shape)}, }`;
  if (x.ndim > 0) dict += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(x.shape[0]).length));
  const hlen = dict.length + 1; // the final "\n"
  // Version 1.0 stores the header length in 2 bytes, 2.0 in 4 (NumPy pads by 1..64 bytes, never 0).
  let version = 1;
  let pad = ARRAY_ALIGN - ((6 + 2 + 2 + hlen) % ARRAY_ALIGN);
  if (hlen + pad > 0xffff) {
    version = 2;
    pad = ARRAY_ALIGN - ((6 + 2 + 4 + hlen) % ARRAY_ALIGN);
  }
  const lenBytes = version === 1 ? 2 : 4;
  const head = new Uint8Array(8 + lenBytes + hlen + pad);
  head.set(MAGIC);
  head[6] = version;
  head[7] = 0;
  const dv = new DataView(head.buffer);
  if (version === 1) dv.setUint16(8, hlen + pad, true);
  else dv.setUint32(8, hlen + pad, true);
  const text = dict + " ".repeat(pad) + "\n";
  for (let i = 0; i < text.length; i++) head[8 + lenBytes + i] = text.charCodeAt(i); // ASCII
  return [head, arrayBytes(x)];
}

// ---- the header: a Python dict literal of strings, booleans and tuples of integers ----

type PyValue = string | boolean | null | number | PyValue[] | Map<string, PyValue>;

/** Parses the restricted Python literal syntax NumPy writes (`ast.literal_eval` of a dict). */
function parsePyLiteral(src: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at character ${i} of the header ${JSON.stringify(src.trimEnd())}`);
  };
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const value = (): PyValue => {
    ws();
    const c = src[i];
    if (c === "{") {
      i++;
      const m = new Map<string, PyValue>();
      for (;;) {
        ws();
        if (src[i] === "}") { i++; return m; }
        const k = value();
        if (typeof k !== "string") fail("a dictionary key that is not a string");
        if (m.has(k as string)) fail(`a duplicate key ${JSON.stringify(k)}`);
        ws();
        if (src[i++] !== ":") fail("expected ':'");
        m.set(k as string, value());
        ws();
        if (src[i] === ",") i++;
        else if (src[i] !== "}") fail("expected ',' or '}'");
      }
    }
    if (c === "(" || c === "[") {
      const close = c === "(" ? ")" : "]";
      i++;
      const items: PyValue[] = [];
      let commas = 0;
      for (;;) {
        ws();
        if (src[i] === close) {
          i++;
          // (3) is the integer 3, not a tuple
          if (close === ")" && items.length === 1 && commas === 0) return items[0];
          return items;
        }
        items.push(value());
        ws();
        if (src[i] === ",") { i++; commas++; }
        else if (src[i] !== close) fail(`expected ',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail("an unterminated string");
      const s = src.slice(i + 1, end);
      if (s.includes("\\")) fail("an escape sequence in a string");
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|[+-]?\d+L?)/.exec(src.slice(i, i + 40));
    if (!m) return fail("an unexpected token");
    i += m[0].length;
    if (m[0] === "True") return true;
    if (m[0] === "False") return false;
    if (m[0] === "None") return null;
    return Number(m[0].replace("L", ""));
  };
  const v = value();
  ws();
  if (i !== src.length) fail("unexpected text after the dictionary");
  return v;
}

/** The dtype and byte order of a descriptor such as `<f4`; throws a message for the rest. */
function parseDescr(descr: PyValue): { dtype: DType; bigEndian: boolean } {
  if (typeof descr !== "string") {
    throw new Error(`structured dtypes are not supported (descr ${typeof descr === "object" ? "is a list of fields" : JSON.stringify(descr)})`);
  }
  const m = /^([<>|=]?)([a-zA-Z]\d+)$/.exec(descr);
  const dtype = m ? BY_KIND[m[2]] : undefined;
  if (!m || !dtype) {
    throw new Error(`unsupported dtype '${descr}' (supported: bool, int8..int64, uint8..uint64, float16, float32, float64, and <V2 as bfloat16)`);
  }
  const bigEndian = m[1] === ">" && itemsize(dtype) > 1;
  if (bigEndian && dtype === "bfloat16") throw new Error(`unsupported dtype '${descr}' (bfloat16 is read from little-endian <V2 only)`);
  return { dtype, bigEndian };
}

/** Decodes one .npy file into an array on the current device; throws Errors describing what is wrong. */
export function decodeNpy(op: string, b: Uint8Array): Array {
  if (!isNpy(b)) throw new Error("not a .npy file (bad magic string; expected \\x93NUMPY)");
  if (b.length < 10) throw new Error(`truncated header (the file has ${b.length} bytes)`);
  const major = b[6], minor = b[7];
  if (![1, 2, 3].includes(major) || minor !== 0) throw new Error(`unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are supported)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (b.length < 8 + lenBytes) throw new Error(`truncated header (the file has ${b.length} bytes)`);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = 8 + lenBytes + hlen;
  if (start > b.length) throw new Error(`truncated header (it claims ${hlen} bytes; the file has ${b.length - 8 - lenBytes} after the length)`);
  const raw = b.subarray(8 + lenBytes, start);
  // Versions 1.0 and 2.0 encode the header as latin1, 3.0 as UTF-8.
  let header: PyValue;
  try {
    const text = major === 3
      ? new TextDecoder("utf-8", { fatal: true }).decode(raw)
      : Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString("latin1");
    header = parsePyLiteral(text);
  } catch (e) {
    throw new Error(`malformed header: ${(e as Error).message}`);
  }
  if (!(header instanceof Map)) throw new Error("malformed header: it is not a dictionary");
  const keys = [...header.keys()].sort();
  if (keys.join() !== "descr,fortran_order,shape") {
    throw new Error(`malformed header: expected the keys descr, fortran_order and shape; got ${keys.join(", ") || "none"}`);
  }
  const { dtype, bigEndian } = parseDescr(header.get("descr")!);
  const fortran = header.get("fortran_order");
  if (typeof fortran !== "boolean") throw new Error("malformed header: fortran_order must be True or False");
  const shape = header.get("shape");
  const size = globalThis.Array.isArray(shape) ? checkedSize(shape as number[]) : null;
  if (size === null) throw new Error(`malformed header: shape must be a tuple of non-negative integers; got ${JSON.stringify(shape)}`);
  const dims = shape as number[];
  const nbytes = size * itemsize(dtype);
  if (b.length - start !== nbytes) {
    const got = b.length - start;
    throw new Error(`${got < nbytes ? "truncated data" : "unexpected bytes after the data"}: shape ${fmtShape(dims)} ${dtype} needs ${nbytes} bytes; the file has ${got}`);
  }
  const data = b.subarray(start);
  if (!fortran || dims.length < 2) return fromBytes(op, data, dtype, dims, bigEndian);
  // Fortran order: the data is the row-major data of the transposed array.
  return transpose(fromBytes(op, data, dtype, dims.slice().reverse(), bigEndian));
}
