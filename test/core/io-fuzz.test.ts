/**
 * @file A fast-check fuzz of the file readers (`mx.load` for `.npy` and `.npz`, `mx.loadSafetensors`)
 * over mutations of valid files that tessera writes: bytes flipped or overwritten, files truncated
 * or extended with junk, header length fields set to huge values, and headers rewritten (dtype
 * strings, shapes that disagree with the data, overlapping or out-of-range data_offsets, extra or
 * missing keys, versions), and ZIP local, central and end-record fields overwritten.
 *
 * Each load must either throw an Error naming the file, or return arrays whose byte sizes match
 * their shapes. Where a model of the format says what the file holds (a header left intact or
 * rewritten by the model, data bytes flipped), the load must succeed or fail exactly as the model
 * says, with the model's dtypes, shapes and bytes. A file claiming 2^40 elements must fail fast,
 * allocating nothing.
 *
 * Knobs: TESSERA_FUZZ_RUNS (cases per format; default 1000), TESSERA_FUZZ_SEED (default fixed),
 * TESSERA_FUZZ_PATH (replays a failing case, with its seed).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mx from "@tessera/core";
import { FUZZ } from "../helpers/fuzz.js";

const RUNS = process.env.TESSERA_FUZZ_RUNS ? FUZZ.runs : 1000;
const params = (seed: number): fc.Parameters<unknown> => ({ numRuns: RUNS, seed, path: FUZZ.path, endOnFailure: true });
/** A load that takes longer than this is a hang, for this test's small files. */
const SLOW_MS = 5000;

const dir = mkdtempSync(join(tmpdir(), "tessera-io-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Raw = { dtype: mx.DType; shape: number[]; raw: Uint8Array };
/**
 * What a load of a file must give: "throw"; "any" (throw, or consistent arrays); or the arrays
 * (one for .npy, a record for .npz and safetensors) it must return exactly.
 */
type Expect = "throw" | "any" | Raw | Record<string, Raw>;
type Case = { bytes: Uint8Array; expect: Expect; what: string };

const ITEMSIZE: Record<mx.DType, number> = {
  bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, float16: 2, bfloat16: 2, uint32: 4, int32: 4, float32: 4,
  uint64: 8, int64: 8, float64: 8,
};
const INT31 = 2 ** 31 - 1;

const rawOf = (x: mx.Array): Uint8Array => {
  const t = x.toTypedArray();
  return new Uint8Array(t.buffer.slice(t.byteOffset, t.byteOffset + t.byteLength));
};
/** What tessera holds for raw little-endian bytes of `dtype`: bool bytes become 0 or 1. */
const normalize = (dtype: mx.DType, b: Uint8Array): Uint8Array => (dtype === "bool" ? b.map((v) => (v ? 1 : 0)) : b.slice());
const product = (s: number[]) => s.reduce((a, b) => a * b, 1);
/** The element count of a shape the readers accept (each dimension an integer in [0, 2^31 - 1], a safe product), or null. */
function validSize(shape: unknown): number | null {
  if (!Array.isArray(shape)) return null;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0 || d > INT31) return null;
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

/** Loads `bytes` as a file through `load`, and checks the outcome against `expect`. */
function check(c: Case, file: string, load: (p: string) => unknown): void {
  writeFileSync(file, c.bytes);
  const t0 = performance.now();
  let got: unknown;
  let err: unknown = null;
  try {
    got = load(file);
  } catch (e) {
    err = e;
  }
  const ms = performance.now() - t0;
  if (ms > SLOW_MS) throw new Error(`${c.what}: the load took ${ms.toFixed(0)} ms`);
  if (err !== null) {
    if (!(err instanceof Error)) throw new Error(`${c.what}: threw a non-Error ${String(err)}`);
    if (!err.message.includes(file)) throw new Error(`${c.what}: the error does not name the file: ${err.constructor.name}: ${err.message}`);
    if (c.expect !== "throw" && c.expect !== "any") throw new Error(`${c.what}: expected a successful load; got ${err.message}`);
    return;
  }
  if (c.expect === "throw") throw new Error(`${c.what}: expected an Error; the load succeeded`);
  const arrays: [string, mx.Array][] = mx.isArray(got) ? [["", got]] : Object.entries(got as Record<string, mx.Array>);
  try {
    for (const [name, x] of arrays) {
      if (!mx.isArray(x)) throw new Error(`${c.what}: entry ${JSON.stringify(name)} is not an Array`);
      const size = product(x.shape);
      if (x.size !== size || x.nbytes !== size * ITEMSIZE[x.dtype] || x.itemsize !== ITEMSIZE[x.dtype]) {
        throw new Error(`${c.what}: ${JSON.stringify(name)} has shape [${x.shape}] but size ${x.size}, nbytes ${x.nbytes}`);
      }
      const raw = rawOf(x);
      if (raw.length !== x.nbytes) throw new Error(`${c.what}: ${JSON.stringify(name)} reads ${raw.length} bytes, not ${x.nbytes}`);
    }
    if (c.expect === "any") return;
    const want: Record<string, Raw> = "raw" in c.expect ? { "": c.expect as Raw } : (c.expect as Record<string, Raw>);
    const names = arrays.map(([n]) => n).sort();
    expect(names, c.what).toEqual(Object.keys(want).sort());
    for (const [name, x] of arrays) {
      const w = want[name];
      expect({ dtype: x.dtype, shape: x.shape }, `${c.what}: ${name}`).toEqual({ dtype: w.dtype, shape: w.shape });
      expect(Buffer.from(rawOf(x)).equals(Buffer.from(w.raw)), `${c.what}: the values of ${JSON.stringify(name)}`).toBe(true);
    }
  } finally {
    for (const [, x] of arrays) if (mx.isArray(x)) x.dispose();
  }
}

// ---- the arrays the valid files are made of ----

function sources(): [string, mx.Array][] {
  return [
    ["f32", mx.arange(6, "float32").reshape([2, 3]).div(7)],
    ["i64", mx.array([-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n, 5n], "int64")],
    ["b", mx.array([true, false, true, true])],
    ["h0", mx.array(1.5, "float16")],
    ["bf", mx.array([[1], [-2], [3.5]], "bfloat16")],
    ["e", mx.zeros([0, 3], "uint8")],
    ["f64", mx.arange(8, "float64").reshape([2, 2, 2]).sub(3.25)],
    ["i8", mx.array([-128, 127, 0, 1, -1, 3, 4], "int8")],
    ["u32", mx.array([4294967295], "uint32")],
    ["u16", mx.array([[1, 2], [65535, 0]], "uint16")],
  ];
}
let SRC: Record<string, Raw> = {};
let NPY: { name: string; bytes: Uint8Array; dataStart: number }[] = [];
let NPZ: { bytes: Uint8Array; members: Record<string, Raw>; dataRegions: [number, number][] }[] = [];
let ST: { bytes: Uint8Array; arrays: Record<string, Raw>; base: number }[] = [];

/** The local headers of a stored ZIP (as tessera writes): [name, data start, data end] of each member. */
function zipMembers(b: Uint8Array): [string, number, number][] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: [string, number, number][] = [];
  for (let at = 0; dv.getUint32(at, true) === 0x04034b50;) {
    const size = dv.getUint32(at + 18, true), n = dv.getUint16(at + 26, true), e = dv.getUint16(at + 28, true);
    const name = Buffer.from(b.subarray(at + 30, at + 30 + n)).toString("latin1");
    out.push([name, at + 30 + n + e, at + 30 + n + e + size]);
    at += 30 + n + e + size;
  }
  return out;
}

beforeAll(() => {
  const src = sources();
  mx.eval(src.map(([, x]) => x));
  SRC = Object.fromEntries(src.map(([n, x]) => [n, { dtype: x.dtype, shape: x.shape, raw: rawOf(x) }]));
  let k = 0;
  NPY = src.map(([name, x]) => {
    const p = join(dir, `base${k++}.npy`);
    mx.save(p, x);
    const bytes = new Uint8Array(readFileSync(p));
    return { name, bytes, dataStart: bytes.length - SRC[name].raw.length };
  });
  const records: string[][] = [["f32", "i64"], ["b"], [], ["e", "h0", "bf"], ["f64", "i8", "u32", "u16"]];
  NPZ = records.map((names) => {
    const p = join(dir, `base${k++}.npz`);
    mx.savez(p, Object.fromEntries(names.map((n) => [n, src.find(([m]) => m === n)![1]])));
    const bytes = new Uint8Array(readFileSync(p));
    const members = Object.fromEntries(names.map((n) => [n, SRC[n]]));
    const dataRegions = zipMembers(bytes).map(([, s, e]) => [s, e] as [number, number]);
    return { bytes, members, dataRegions };
  });
  ST = records.map((names, i) => {
    const p = join(dir, `base${k++}.safetensors`);
    mx.saveSafetensors(p, Object.fromEntries(names.map((n) => [n, src.find(([m]) => m === n)![1]])), i % 2 ? { format: "mlx", k: "v" } : undefined);
    const bytes = new Uint8Array(readFileSync(p));
    const arrays = Object.fromEntries(names.map((n) => [n, SRC[n]]));
    const base = 8 + Number(Buffer.from(bytes).readBigUInt64LE(0));
    return { bytes, arrays, base };
  });
});

// ---- byte-level mutations ----

/** A mutation of raw bytes, with the byte range it touched ([start, end) in the original) and whether lengths changed. */
type ByteMut = { apply: (b: Uint8Array) => Uint8Array; what: string; at: number; end: number; resized: boolean };
const INTERESTING = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

function byteMut(len: number): fc.Arbitrary<ByteMut> {
  const pos = fc.nat({ max: 1 << 20 }).map((p) => (len === 0 ? 0 : p % len));
  return fc.oneof(
    fc.array(fc.tuple(pos, fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }).map((flips) => ({
      apply: (b: Uint8Array) => {
        const c = b.slice();
        for (const [p, x] of flips) if (p < c.length) c[p] ^= x;
        return c;
      },
      what: `xor ${JSON.stringify(flips)}`, at: Math.min(...flips.map(([p]) => p)), end: Math.max(...flips.map(([p]) => p)) + 1, resized: false,
    })),
    fc.tuple(pos, fc.constantFrom(1, 2, 4, 8), fc.oneof(fc.constantFrom(...INTERESTING), fc.nat())).map(([p, w, v]) => ({
      apply: (b: Uint8Array) => {
        const c = b.slice();
        const le = Buffer.alloc(8);
        le.writeBigUInt64LE(BigInt(v));
        for (let i = 0; i < w && p + i < c.length; i++) c[p + i] = le[i];
        return c;
      },
      what: `overwrite ${w} bytes at ${p} with ${v}`, at: p, end: p + w, resized: false,
    })),
    pos.map((p) => ({ apply: (b: Uint8Array) => b.slice(0, p), what: `truncate to ${p}`, at: p, end: len, resized: true })),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((junk) => ({
      apply: (b: Uint8Array) => Buffer.concat([b, junk]), what: `append ${junk.length} junk bytes`, at: len, end: len, resized: true,
    })),
    fc.tuple(pos, fc.integer({ min: 1, max: 16 }), fc.uint8Array({ maxLength: 16 })).map(([p, del, ins]) => ({
      apply: (b: Uint8Array) => Buffer.concat([b.subarray(0, p), ins, b.subarray(Math.min(b.length, p + del))]),
      what: `splice ${del} bytes at ${p} for ${ins.length}`, at: p, end: len, resized: true,
    })),
  );
}
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
/** Whether a mutation touched only bytes in [lo, hi) and kept the length. */
const within = (m: ByteMut, lo: number, hi: number) => !m.resized && m.at >= lo && m.end <= hi;

// ---- .npy: a model of the header ----

const DESCRS: { descr: string; dtype: mx.DType | null; big: boolean }[] = [
  ...(["bool", "uint8", "int8"] as const).map((d) => ({ descr: `|${{ bool: "b1", uint8: "u1", int8: "i1" }[d]}`, dtype: d, big: false })),
  ...Object.entries({ u2: "uint16", i2: "int16", f2: "float16", u4: "uint32", i4: "int32", f4: "float32", u8: "uint64", i8: "int64", f8: "float64" })
    .flatMap(([k, d]) => [{ descr: `<${k}`, dtype: d as mx.DType, big: false }, { descr: `>${k}`, dtype: d as mx.DType, big: true }, { descr: `=${k}`, dtype: d as mx.DType, big: false }]),
  { descr: "<V2", dtype: "bfloat16", big: false },
  { descr: "|V2", dtype: "bfloat16", big: false },
  { descr: ">b1", dtype: "bool", big: false },
  { descr: "f4", dtype: "float32", big: false },
  ...["<f3", "<c8", "|O", "<U4", ">V2", "<V4", "<f16", "", "<i4 "].map((descr) => ({ descr, dtype: null, big: false })),
];
type NpyHeader = { descr: string; fortran: string; shape: string; keys: "ok" | "missing" | "extra"; version: 1 | 2 | 3; hlen: "ok" | number };

function shapeRepr(s: number[]) {
  return s.length === 1 ? `(${s[0]},)` : `(${s.join(", ")})`;
}
/** Shapes: the right size in another arrangement, wrong sizes, huge and negative dimensions, junk. */
function shapeArb(size: number, orig: number[]): fc.Arbitrary<{ text: string; dims: number[] | null }> {
  const dims = (d: number[]) => ({ text: shapeRepr(d), dims: d });
  return fc.oneof(
    fc.constant(dims(orig)),
    fc.constant(dims([size])),
    fc.constant(dims([...orig].reverse())),
    fc.constant(dims([1, size, 1])),
    fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 4 }).map(dims),
    fc.constantFrom([2 ** 40], [0, 2 ** 40], [2 ** 31], [2 ** 53], [-1], [-(size + 1)], [size + 1], [2 ** 20, 2 ** 20, 2 ** 20], [0, 2 ** 31 - 1], [3, -2]).map(dims),
    fc.constantFrom("(1e3,)", "[2, 3]", "(2, 3", "((2,),)", "(True,)", "'abc'", "(99999999999999999999999,)", "(", "((((((((((((", "None")
      .map((text) => ({ text, dims: text === "[2, 3]" ? [2, 3] : null })),
  );
}
const npyHeaderArb = (size: number, orig: number[], origDescr: string) =>
  fc.record({
    descr: fc.oneof(fc.constant(origDescr), fc.constantFrom(...DESCRS.map((d) => d.descr))),
    fortran: fc.constantFrom("False", "False", "True", "None", "1", "'False'"),
    shape: shapeArb(size, orig),
    keys: fc.constantFrom("ok" as const, "ok" as const, "ok" as const, "missing" as const, "extra" as const),
    version: fc.constantFrom(1 as const, 1 as const, 2 as const, 3 as const),
    hlen: fc.oneof({ weight: 5, arbitrary: fc.constant("ok" as const) }, fc.constantFrom(0, 1, 0xffff, 0xffffffff, 2 ** 31)),
  });

/** A .npy file of `data` with the header `h`; and what loading it must give. */
function npyFile(h: Omit<NpyHeader, "shape"> & { shape: { text: string; dims: number[] | null } }, data: Uint8Array): { bytes: Uint8Array; expect: Expect } {
  const parts = [`'descr': '${h.descr}'`, `'fortran_order': ${h.fortran}`, `'shape': ${h.shape.text}`];
  if (h.keys === "missing") parts.splice(1, 1);
  if (h.keys === "extra") parts.push("'extra': 1");
  let text = `{${parts.join(", ")}, }`;
  const lenBytes = h.version === 1 ? 2 : 4;
  while ((8 + lenBytes + text.length + 1) % 64) text += " ";
  text += "\n";
  const head = Buffer.alloc(8 + lenBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, h.version, 0]).copy(head);
  const hlen = h.hlen === "ok" ? text.length : h.version === 1 ? h.hlen & 0xffff : h.hlen >>> 0;
  if (h.version === 1) head.writeUInt16LE(hlen, 8);
  else head.writeUInt32LE(hlen, 8);
  const bytes = Buffer.concat([head, Buffer.from(text, "latin1"), data]);
  if (hlen !== text.length) return { bytes, expect: "any" };
  // The model: the header must be exact, the dtype known, the data exactly the shape's size.
  const d = DESCRS.find((x) => x.descr === h.descr);
  const fortran = h.fortran === "True" ? true : h.fortran === "False" ? false : null;
  const size = validSize(h.shape.dims);
  if (h.keys !== "ok" || !d || !d.dtype || fortran === null || size === null || size * ITEMSIZE[d.dtype] !== data.length) {
    return { bytes, expect: "throw" };
  }
  const dtype = d.dtype, shape = h.shape.dims!, n = ITEMSIZE[dtype];
  let raw = data.slice();
  if (d.big && n > 1) for (let i = 0; i < raw.length; i += n) raw.subarray(i, i + n).reverse();
  if (fortran && shape.length >= 2) {
    // Element (i0, ..., ik) of the result is at the Fortran offset sum(i_j * prod(shape[:j])).
    const out = new Uint8Array(raw.length);
    const idx = shape.map(() => 0);
    for (let e = 0; e < size; e++) {
      let off = 0;
      for (let j = shape.length - 1, stride = product(shape.slice(0, -1)); j >= 0; j--) {
        off += idx[j] * stride;
        if (j > 0) stride /= shape[j - 1];
      }
      out.set(raw.subarray(off * n, off * n + n), e * n);
      for (let j = shape.length - 1; j >= 0 && ++idx[j] === shape[j]; j--) idx[j] = 0;
    }
    raw = out;
  }
  return { bytes, expect: { dtype, shape, raw: normalize(dtype, raw) } };
}

/** A .npy case: a base file mutated byte by byte, or its header rewritten by the model. */
const npyCase: fc.Arbitrary<Case> = fc.nat({ max: 1000 }).chain((i) => {
  const base = NPY[i % NPY.length];
  const src = SRC[base.name];
  const data = base.bytes.subarray(base.dataStart);
  const origDescr = DESCRS.find((d) => d.dtype === src.dtype && !d.big && /^[<|]/.test(d.descr))!.descr;
  const bytewise = byteMut(base.bytes.length).map((m): Case => {
    const bytes = m.apply(base.bytes);
    let expect: Expect = "any";
    if (within(m, base.dataStart, base.bytes.length)) {
      expect = { dtype: src.dtype, shape: src.shape, raw: normalize(src.dtype, bytes.subarray(base.dataStart)) };
    } else if (m.what.startsWith("truncate") || m.what.startsWith("append")) {
      expect = "throw";
    }
    if (same(bytes, base.bytes)) expect = src;
    return { bytes, expect, what: `${base.name}.npy: ${m.what}` };
  });
  const rewritten = npyHeaderArb(product(src.shape), src.shape, origDescr).map((h): Case => {
    const { bytes, expect } = npyFile(h, data);
    return { bytes, expect, what: `${base.name}.npy with header ${JSON.stringify(h)}` };
  });
  return fc.oneof(bytewise, rewritten);
});

// ---- .npz ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** A stored ZIP archive of the members, laid out as Python's zipfile writes it. */
function zip(members: { name: string; data: Uint8Array }[]): Uint8Array {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of members) {
    const nm = Buffer.from(name, "utf8");
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(0x800, 6);
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nm.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0); cd.writeUInt16LE(20, 4); cd.writeUInt16LE(20, 6); cd.writeUInt16LE(0x800, 8);
    cd.writeUInt32LE(crc, 16); cd.writeUInt32LE(data.length, 20); cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(nm.length, 28); cd.writeUInt32LE(offset, 42);
    out.push(local, nm, Buffer.from(data));
    central.push(cd, nm);
    offset += 30 + nm.length + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(members.length, 8); end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cdBytes.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...out, cdBytes, end]);
}

/** The byte offsets of the ZIP fields worth corrupting in an archive (local, central, end records). */
function zipFields(b: Uint8Array): [number, number][] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fields: [number, number][] = [];
  const endAt = b.length - 22;
  for (const [o, w] of [[4, 2], [8, 2], [10, 2], [12, 4], [16, 4], [20, 2]]) fields.push([endAt + o, w]);
  const cdOffset = dv.getUint32(endAt + 16, true);
  for (let at = cdOffset, i = 0; i < dv.getUint16(endAt + 10, true); i++) {
    for (const [o, w] of [[0, 4], [8, 2], [10, 2], [16, 4], [20, 4], [24, 4], [28, 2], [30, 2], [32, 2], [42, 4]]) fields.push([at + o, w]);
    const local = dv.getUint32(at + 42, true);
    for (const [o, w] of [[0, 4], [6, 2], [8, 2], [14, 4], [18, 4], [22, 4], [26, 2], [28, 2]]) fields.push([local + o, w]);
    at += 46 + dv.getUint16(at + 28, true) + dv.getUint16(at + 30, true) + dv.getUint16(at + 32, true);
  }
  return fields;
}
function zipFieldMut(b: Uint8Array): fc.Arbitrary<{ bytes: Uint8Array; what: string }> {
  const fields = zipFields(b);
  return fc.tuple(fc.constantFrom(...fields), fc.oneof(fc.constantFrom(...INTERESTING), fc.nat())).map(([[at, w], v]) => {
    const c = Buffer.from(b);
    if (w === 2) c.writeUInt16LE(v & 0xffff, at);
    else c.writeUInt32LE(v >>> 0, at);
    return { bytes: c, what: `ZIP field at ${at} (${w} bytes) = ${v}` };
  });
}

/** A .npz case: a base archive mutated, or rebuilt from members whose headers the model rewrote. */
const npzCase: fc.Arbitrary<Case> = fc.nat({ max: 1000 }).chain((i) => {
  const base = NPZ[i % NPZ.length];
  const bytewise = byteMut(base.bytes.length).map((m): Case => {
    const bytes = m.apply(base.bytes);
    // Corrupt member data fails the CRC check.
    const inData = base.dataRegions.some(([s, e]) => within(m, s, e));
    const expect: Expect = same(bytes, base.bytes) ? base.members : inData ? "throw" : "any";
    return { bytes, expect, what: `npz ${i % NPZ.length}: ${m.what}` };
  });
  const fieldwise = zipFieldMut(base.bytes).map(({ bytes, what }): Case => ({ bytes, expect: "any", what: `npz ${i % NPZ.length}: ${what}` }));
  const names = Object.keys(base.members);
  const headers = names.map((n) => {
    const src = SRC[n];
    const origDescr = DESCRS.find((d) => d.dtype === src.dtype && !d.big && /^[<|]/.test(d.descr))!.descr;
    return fc.option(npyHeaderArb(product(src.shape), src.shape, origDescr), { freq: 2 });
  });
  const rebuilt = fc.tuple(fc.tuple(...headers), fc.constantFrom("ok", "ok", "noext", "dup", "utf8")).chain(([hs, naming]) => {
    const members: { name: string; data: Uint8Array }[] = [];
    const want: Record<string, Raw> = {};
    let fails = false, unknown = false;
    names.forEach((n, k) => {
      const src = SRC[n];
      const npy = NPY.find((x) => x.name === n)!;
      const h = hs[k];
      let data: Uint8Array = npy.bytes, e: Expect = src;
      if (h) ({ bytes: data, expect: e } = npyFile(h, npy.bytes.subarray(npy.dataStart)));
      const key = naming === "utf8" ? `${n}é` : n;
      members.push({ name: naming === "noext" && k === 0 ? key : `${key}.npy`, data });
      if (e === "throw") fails = true;
      else if (e === "any") unknown = true;
      else want[key] = e as Raw;
    });
    if (naming === "dup" && members.length) members.push(members[0]);
    if ((naming === "noext" || naming === "dup") && members.length) fails = true;
    const bytes = zip(members);
    const expect: Expect = fails ? "throw" : unknown ? "any" : want;
    const what = `npz rebuilt (${naming}) with headers ${JSON.stringify(hs)}`;
    // Then, sometimes, a ZIP field overwritten as well.
    return fc.oneof(
      { weight: 3, arbitrary: fc.constant<Case>({ bytes, expect, what }) },
      zipFieldMut(bytes).map((m): Case => ({ bytes: m.bytes, expect: "any", what: `${what}, ${m.what}` })),
    );
  });
  return fc.oneof(bytewise, fieldwise, rebuilt);
});

// ---- safetensors ----

const CODES: Record<string, mx.DType> = {
  BOOL: "bool", U8: "uint8", I8: "int8", U16: "uint16", I16: "int16", F16: "float16", BF16: "bfloat16", U32: "uint32",
  I32: "int32", F32: "float32", U64: "uint64", I64: "int64", F64: "float64",
};
const CODE_OF = Object.fromEntries(Object.entries(CODES).map(([c, d]) => [d, c])) as Record<mx.DType, string>;
type StEntry = { name: string; dtype: unknown; shape: unknown; offsets: unknown };

/** A safetensors file of the entries over `data`; and what loading it must give (the reference's rules). */
function stFile(entries: StEntry[], metadata: unknown, data: Uint8Array, hlenOverride: bigint | null): { bytes: Uint8Array; expect: Expect } {
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const e of entries) parts.push(`${JSON.stringify(e.name)}:{"dtype":${JSON.stringify(e.dtype)},"shape":${JSON.stringify(e.shape)},"data_offsets":${JSON.stringify(e.offsets)}}`);
  let header = Buffer.from(`{${parts.join(",")}}`, "utf8");
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(hlenOverride ?? BigInt(header.length));
  const bytes = Buffer.concat([len, header, data]);
  if (hlenOverride !== null && hlenOverride !== BigInt(header.length)) return { bytes, expect: "any" };
  const metaOk = metadata === undefined || (typeof metadata === "object" && metadata !== null && !Array.isArray(metadata) &&
    Object.values(metadata).every((v) => typeof v === "string"));
  const names = new Set(entries.map((e) => e.name));
  if (!metaOk || names.size !== entries.length || names.has("__metadata__")) return { bytes, expect: "throw" };
  const want: Record<string, Raw> = {};
  const spans: [number, number][] = [];
  for (const e of entries) {
    const dtype = typeof e.dtype === "string" ? CODES[e.dtype] : undefined;
    const size = validSize(e.shape);
    const off = e.offsets;
    if (!dtype || size === null || !Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0)) return { bytes, expect: "throw" };
    const [b, end] = off as number[];
    if (end - b !== size * ITEMSIZE[dtype]) return { bytes, expect: "throw" };
    spans.push([b, end]);
    want[e.name] = { dtype, shape: e.shape as number[], raw: normalize(dtype, data.slice(b, end)) };
  }
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let at = 0;
  for (const [b, end] of spans) {
    if (b !== at) return { bytes, expect: "throw" };
    at = end;
  }
  if (at !== data.length) return { bytes, expect: "throw" };
  return { bytes, expect: want };
}

const jsonJunk = fc.constantFrom<unknown>(null, true, "3", 1.5, -1, 2 ** 53, 2 ** 64, [], {}, [1, 2, 3], "F32");
/** A mutation of one header entry: dtype, shape or data_offsets changed, or a duplicate name. */
function entryMut(e: StEntry, dataLen: number): fc.Arbitrary<StEntry> {
  const [b, end] = e.offsets as number[];
  const size = product(e.shape as number[]);
  return fc.oneof(
    fc.oneof(fc.constantFrom(...Object.keys(CODES), "F8_E4M3", "f32", "", "C64", "BF8"), jsonJunk).map((dtype) => ({ ...e, dtype })),
    shapeArb(size, e.shape as number[]).map((s) => ({ ...e, shape: s.dims ?? [0.5] })),
    fc.oneof(
      fc.tuple(fc.integer({ min: -8, max: 8 }), fc.integer({ min: -8, max: 8 })).map(([x, y]) => [b + x, end + y]),
      fc.constantFrom([end, b], [0, end - b], [b, b], [0, dataLen], [b, 2 ** 42], [2 ** 53, 2 ** 53 + 4], [b], [b, end, end], [-1, end - b - 1]),
      jsonJunk,
    ).map((offsets) => ({ ...e, offsets })),
    fc.constant({ ...e, name: "__metadata__" }),
  );
}

/** A safetensors case: a base file mutated byte by byte, or its header rewritten by the model. */
const stCase: fc.Arbitrary<Case> = fc.nat({ max: 1000 }).chain((i) => {
  const base = ST[i % ST.length];
  const hlen = base.base - 8;
  const bytewise = byteMut(base.bytes.length).map((m): Case => {
    const bytes = m.apply(base.bytes);
    let expect: Expect = "any";
    if (within(m, base.base, base.bytes.length)) {
      const header = JSON.parse(Buffer.from(base.bytes.subarray(8, base.base)).toString("utf8")) as Record<string, { data_offsets: number[] }>;
      expect = Object.fromEntries(Object.entries(base.arrays).map(([n, r]) => {
        const [b, e] = header[n].data_offsets;
        return [n, { ...r, raw: normalize(r.dtype, bytes.subarray(base.base + b, base.base + e)) }];
      }));
    } else if (m.what.startsWith("truncate") || m.what.startsWith("append")) {
      expect = "throw";
    }
    if (same(bytes, base.bytes)) expect = base.arrays;
    return { bytes, expect, what: `safetensors ${i % ST.length}: ${m.what}` };
  });
  const header = JSON.parse(Buffer.from(base.bytes.subarray(8, base.base)).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
  const entries: StEntry[] = Object.entries(header).filter(([n]) => n !== "__metadata__").map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape, offsets: v.data_offsets }));
  const data = base.bytes.subarray(base.base);
  const rewritten = fc.record({
    k: fc.nat(),
    mutate: fc.boolean(),
    order: fc.boolean(),
    dup: fc.boolean(),
    meta: fc.oneof(fc.constant(header.__metadata__ as unknown), fc.constant(undefined), fc.constant({ a: "b" }), fc.constant({ a: 1 }), fc.constant("x"), fc.constant([])),
    hlen: fc.oneof({ weight: 6, arbitrary: fc.constant<bigint | null>(null) }, fc.constantFrom(0n, 1n, 7n, BigInt(hlen - 8), BigInt(hlen + 8), 100_000_001n, 2n ** 40n, 2n ** 64n - 1n)),
  }).chain((r) => {
    const es = r.order ? [...entries].reverse() : [...entries];
    const mutated = r.mutate && es.length ? entryMut(es[r.k % es.length], data.length).map((m) => es.map((e, j) => (j === r.k % es.length ? m : e))) : fc.constant(es);
    return mutated.map((es2): Case => {
      // Duplicate names are written as text (a plain object cannot hold them).
      const list = r.dup && es2.length ? [...es2, es2[0]] : es2;
      const { bytes, expect } = stFile(list, r.meta, data, r.hlen);
      return { bytes, expect, what: `safetensors ${i % ST.length} rewritten: ${JSON.stringify({ list, meta: r.meta, hlen: String(r.hlen) })}` };
    });
  });
  return fc.oneof(bytewise, rewritten);
});

// ---- the tests ----

describe("file readers under random mutations of valid files", () => {
  const npyPath = join(dir, "m.npy"), npzPath = join(dir, "m.npz"), stPath = join(dir, "m.safetensors");

  it("the unmutated base files load back exactly", () => {
    for (const b of NPY) check({ bytes: b.bytes, expect: SRC[b.name], what: `${b.name}.npy` }, npyPath, (p) => mx.load(p));
    for (const b of NPZ) check({ bytes: b.bytes, expect: b.members, what: "npz" }, npzPath, (p) => mx.load(p));
    for (const b of ST) check({ bytes: b.bytes, expect: b.arrays, what: "safetensors" }, stPath, (p) => mx.loadSafetensors(p).arrays);
  });

  it(".npy: each load throws an Error naming the file, or gives consistent arrays (exact where the model knows)", () => {
    fc.assert(fc.property(npyCase, (c) => check(c, npyPath, (p) => mx.load(p))), params(FUZZ.seed));
  });

  it(".npz: likewise", () => {
    fc.assert(fc.property(npzCase, (c) => check(c, npzPath, (p) => mx.load(p))), params(FUZZ.seed + 1));
  });

  it("safetensors: likewise", () => {
    fc.assert(fc.property(stCase, (c) => check(c, stPath, (p) => mx.loadSafetensors(p).arrays)), params(FUZZ.seed + 2));
  });
});

describe("a file claiming 2^40 elements fails fast, naming the file, without allocating them", () => {
  const N = 2 ** 40;
  const data = new Uint8Array(64).fill(7);
  const npy = npyFile({ descr: "<f4", fortran: "False", shape: { text: `(${N},)`, dims: [N] }, keys: "ok", version: 1, hlen: "ok" }, data).bytes;
  const npy2d = npyFile({ descr: "<f8", fortran: "True", shape: { text: `(1024, ${N / 1024})`, dims: null }, keys: "ok", version: 2, hlen: "ok" }, data).bytes;
  const cases: [string, string, Uint8Array, (p: string) => unknown][] = [
    ["npy [2^40]", "claim.npy", npy, (p) => mx.load(p)],
    ["npy [1024, 2^30] (Fortran order, version 2)", "claim2.npy", npy2d, (p) => mx.load(p)],
    ["npz member [2^40]", "claim.npz", zip([{ name: "x.npy", data: npy }]), (p) => mx.load(p)],
    ["safetensors [2^40], offsets that agree with the shape", "claim.safetensors",
      stFile([{ name: "x", dtype: "F32", shape: [N], offsets: [0, 4 * N] }], undefined, data, null).bytes, (p) => mx.loadSafetensors(p)],
    ["safetensors [2^40], offsets that cover the data", "claim2.safetensors",
      stFile([{ name: "x", dtype: "F32", shape: [N], offsets: [0, 64] }], undefined, data, null).bytes, (p) => mx.loadSafetensors(p)],
    ["safetensors header length 2^40", "claim3.safetensors",
      stFile([{ name: "x", dtype: "U8", shape: [64], offsets: [0, 64] }], undefined, data, 2n ** 40n).bytes, (p) => mx.loadSafetensors(p)],
  ];
  // Zero elements, but a dimension of 2^40 (more than the 2^31 - 1 an array dimension can be).
  const none = new Uint8Array(0);
  cases.push(
    ["npy [0, 2^40] (no data)", "zero.npy", npyFile({ descr: "<f4", fortran: "False", shape: { text: `(0, ${N})`, dims: null }, keys: "ok", version: 1, hlen: "ok" }, none).bytes, (p) => mx.load(p)],
    ["safetensors [0, 2^40] (no data)", "zero.safetensors", stFile([{ name: "x", dtype: "F32", shape: [0, N], offsets: [0, 0] }], undefined, none, null).bytes, (p) => mx.loadSafetensors(p)],
  );
  // A ZIP64 member whose sizes claim 2^40 bytes.
  {
    const z = Buffer.from(zip([{ name: "x.npy", data: npy }]));
    const cdAt = z.readUInt32LE(z.length - 22 + 16);
    const name = Buffer.from("x.npy");
    const extra = Buffer.alloc(20);
    extra.writeUInt16LE(1, 0); extra.writeUInt16LE(16, 2); extra.writeBigUInt64LE(2n ** 40n, 4); extra.writeBigUInt64LE(2n ** 40n, 12);
    const cd = Buffer.from(z.subarray(cdAt, cdAt + 46));
    cd.writeUInt32LE(0xffffffff, 20); cd.writeUInt32LE(0xffffffff, 24); cd.writeUInt16LE(20, 30);
    const cdAll = Buffer.concat([cd, name, extra]);
    const end = Buffer.from(z.subarray(z.length - 22));
    end.writeUInt32LE(cdAll.length, 12);
    cases.push(["npz ZIP64 member claiming 2^40 bytes", "claim64.npz", Buffer.concat([z.subarray(0, cdAt), cdAll, end]), (p) => mx.load(p)]);
  }

  for (const [what, name, bytes, load] of cases) {
    it(what, () => {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      const active = mx.getActiveMemory();
      mx.resetPeakMemory();
      const heap = process.memoryUsage().arrayBuffers;
      const t0 = performance.now();
      expect(() => load(file)).toThrow(file);
      const ms = performance.now() - t0;
      expect(ms).toBeLessThan(1000);
      expect(mx.getActiveMemory()).toBeLessThanOrEqual(active);
      expect(mx.getPeakMemory() - active).toBeLessThan(1 << 20);
      expect(process.memoryUsage().arrayBuffers - heap).toBeLessThan(64 << 20);
    });
  }
});
