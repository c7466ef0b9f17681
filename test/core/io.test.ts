/**
 * @file I/O: `.npy` (save/load), `.npz` (savez/load) and safetensors (saveSafetensors/
 * loadSafetensors). Round trips of every dtype and of 0-d, empty and transposed arrays; golden
 * files written out byte by byte here from the format specifications (NumPy's format.py, PKWARE's
 * APPNOTE, the safetensors reference's own test vectors) and compared with what tessera writes;
 * files from other writers (Fortran order, big-endian, versions 2.0/3.0, deflate, ZIP64); malformed
 * files and bad arguments; `{ device }`; and, when NumPy is installed, a cross-check with NumPy.
 */
import { afterAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import * as mx from "@tessera/core";

const dir = mkdtempSync(join(tmpdir(), "tessera-io-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let nfile = 0;
/** A fresh path in the test's temporary directory. */
const tmp = (ext: string) => join(dir, `f${nfile++}${ext}`);
const { native } = mx.internal;
const testDevice: mx.Device = { type: "cpu", index: 1 };

type A = mx.Array;
const ALL: mx.DType[] = [
  "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
];

/** Six values of each dtype, extremes and special values included. */
function sample(d: mx.DType): A {
  const bits = mx.itemsize(d) * 8;
  switch (d) {
    case "bool": return mx.array([true, false, true, true, false, false]);
    case "uint64": return mx.array([0n, 1n, 2n ** 64n - 1n, 2n ** 53n + 1n, 7n, 2n ** 63n], d);
    case "int64": return mx.array([-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n, 2n ** 53n + 1n, 5n], d);
    case "float16": case "bfloat16": return mx.array([0, -0, 1.5, -Infinity, NaN, -2.25e-5], d);
    case "float32": return mx.array(new Float32Array([0.1, -0, NaN, Infinity, -3.4028234663852886e38, 1e-45]));
    case "float64": return mx.array([0.1, -0, NaN, Infinity, 1.7976931348623157e308, 5e-324], d);
    default: {
      const [lo, hi] = d.startsWith("u") ? [0, 2 ** bits - 1] : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
      return mx.array([lo, hi, 0, 1, lo + 1, hi - 1], d);
    }
  }
}

/** The raw little-endian bytes of an array, for exact comparison (NaN payloads, -0). */
const rawBytes = (x: A) => {
  const t = x.toTypedArray();
  return [...new Uint8Array(t.buffer, t.byteOffset, t.byteLength)];
};
function expectSame(got: unknown, want: A, what = ""): void {
  expect(mx.isArray(got), what).toBe(true);
  const g = got as A;
  expect([g.dtype, g.shape], what).toEqual([want.dtype, want.shape]);
  expect(rawBytes(g), what).toEqual(rawBytes(want));
}

/** The cases every format round-trips: each dtype as [2, 3], 0-d, empty, and transposed. */
function cases(): [string, A][] {
  const out: [string, A][] = [];
  for (const d of ALL) {
    const x = sample(d).reshape([2, 3]);
    out.push([`${d} [2,3]`, x], [`${d} 0-d`, mx.index(x, 1, 2)], [`${d} [0]`, mx.zeros([0], d)], [`${d} [3,0,2]`, mx.zeros([3, 0, 2], d)]);
    out.push([`${d} transposed`, mx.transpose(sample(d).reshape([3, 2]))]);
  }
  out.push(["float32 [2,3,4] permuted", mx.transpose(mx.arange(24, "float32").reshape([2, 3, 4]), [2, 0, 1])]);
  return out;
}

// ---- little-endian byte builders, for the golden files ----
const u16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const u64 = (v: number | bigint) => [...Buffer.from(new BigUint64Array([BigInt(v)]).buffer)];
const ascii = (s: string) => [...Buffer.from(s, "latin1")];
const f32 = (xs: number[]) => [...new Uint8Array(new Float32Array(xs).buffer)];

/** CRC-32 bit by bit (the definition: reflected polynomial 0xEDB88320). */
function crc32(bytes: number[]): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** A .npy file: magic, version, header length, the header padded with spaces to `align`, data. */
function npyFile(dict: string, data: number[], version = 1, align = 64): number[] {
  const lenBytes = version === 1 ? 2 : 4;
  const pad = align - ((6 + 2 + lenBytes + dict.length + 1) % align);
  const header = dict + " ".repeat(pad) + "\n";
  const hb = version === 3 ? [...Buffer.from(header, "utf8")] : ascii(header);
  return [0x93, ...ascii("NUMPY"), version, 0, ...(version === 1 ? u16(hb.length) : u32(hb.length)), ...hb, ...data];
}

/**
 * A ZIP archive, field by field as APPNOTE 4.3.7 (local header), 4.3.12 (central directory) and
 * 4.3.16 (end record) define them, with Python zipfile's values for np.savez: version 2.0, made by
 * Unix, external attributes rw-------; the time stamp is the DOS epoch 1980-01-01 00:00.
 */
function zipFile(members: { name: string; data: number[]; method?: number; stored?: number[] }[]): number[] {
  const out: number[] = [];
  const central: number[] = [];
  for (const m of members) {
    const stored = m.stored ?? m.data;
    const name = ascii(m.name);
    const fields = [...u16(0), ...u16(m.method ?? 0), ...u16(0), ...u16(0x21), ...u32(crc32(m.data)), ...u32(stored.length), ...u32(m.data.length), ...u16(name.length)];
    central.push(...u32(0x02014b50), 20, 3, ...u16(20), ...fields, ...u16(0), ...u16(0), ...u16(0), ...u16(0), ...u32(0o600 << 16), ...u32(out.length), ...name);
    out.push(...u32(0x04034b50), ...u16(20), ...fields, ...u16(0), ...name, ...stored);
  }
  const cdOffset = out.length;
  out.push(...central, ...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(members.length), ...u16(members.length), ...u32(central.length), ...u32(cdOffset), ...u16(0));
  return out;
}

const bytesOf = (path: string) => [...readFileSync(path)];
const write = (bytes: number[] | Uint8Array, ext: string) => {
  const p = tmp(ext);
  writeFileSync(p, Uint8Array.from(bytes));
  return p;
};

describe("round trips", () => {
  it("save/load: every dtype, 0-d, empty and transposed arrays", () => {
    for (const [what, x] of cases()) {
      const p = tmp(".npy");
      mx.save(p, x);
      expectSame(mx.load(p), x, what);
    }
  });

  it("savez/load: every case in one archive, read back as a record in order", () => {
    const record = Object.fromEntries(cases());
    const p = tmp(".npz");
    mx.savez(p, record);
    const back = mx.load(p) as Record<string, A>;
    expect(Object.keys(back)).toEqual(Object.keys(record));
    for (const [k, x] of Object.entries(record)) expectSame(back[k], x, k);
    const empty = tmp(".npz");
    mx.savez(empty, {});
    expect(mx.load(empty)).toEqual({});
  });

  it("saveSafetensors/loadSafetensors: every case, with and without metadata", () => {
    const record = Object.fromEntries(cases());
    const p = tmp(".safetensors");
    mx.saveSafetensors(p, record, { format: "mlx", "ключ": "значение ✓" });
    const { arrays, metadata } = mx.loadSafetensors(p);
    expect(metadata).toEqual({ format: "mlx", "ключ": "значение ✓" });
    expect(Object.keys(arrays).sort()).toEqual(Object.keys(record).sort());
    for (const [k, x] of Object.entries(record)) expectSame(arrays[k], x, k);
    const q = tmp(".safetensors");
    mx.saveSafetensors(q, { x: mx.arange(3) });
    const r = mx.loadSafetensors(q);
    expect(r.metadata).toEqual({});
    expect(Object.getPrototypeOf(r.arrays)).toBe(Object.prototype);
    expect(r.arrays.x.tolist()).toEqual([0, 1, 2]);
  });

  it("save evaluates lazy inputs (several at once for savez and saveSafetensors)", () => {
    const { evalStats } = mx.internal;
    const x = mx.array([1, 2, 3]);
    const a = mx.mul(mx.add(x, 1), 2), b = mx.exp(mx.zeros([2]));
    expect([a.node, b.node].every((n) => n !== null)).toBe(true);
    const p = tmp(".npy");
    mx.save(p, a);
    expect((mx.load(p) as A).tolist()).toEqual([4, 6, 8]);
    const c = mx.sub(a, 1), d = mx.neg(b);
    evalStats.reset();
    const q = tmp(".npz");
    mx.savez(q, { c, d });
    expect(evalStats.programs).toBe(1);
    const back = mx.load(q) as Record<string, A>;
    expect([back.c.tolist(), back.d.tolist()]).toEqual([[3, 5, 7], [-1, -1]]);
    const s = tmp(".safetensors");
    mx.saveSafetensors(s, { e: mx.add(c, 1) });
    expect(mx.loadSafetensors(s).arrays.e.tolist()).toEqual([4, 6, 8]);
  });

  it("appends the extension to a path without it, as MLX and NumPy do", () => {
    const base = join(dir, "noext");
    mx.save(base, mx.array([1]));
    mx.savez(base, { a: mx.array([2]) });
    mx.saveSafetensors(base, { a: mx.array([3]) });
    expect((mx.load(`${base}.npy`) as A).tolist()).toEqual([1]);
    expect((mx.load(`${base}.npz`) as Record<string, A>).a.tolist()).toEqual([2]);
    expect(mx.loadSafetensors(`${base}.safetensors`).arrays.a.tolist()).toEqual([3]);
    expect(existsSync(base)).toBe(false);
  });

  it("loads onto the device given in { device }, and the default device otherwise", () => {
    const p = tmp(".npy"), q = tmp(".npz"), s = tmp(".safetensors");
    const x = mx.array([[1, 2], [3, 4]]);
    mx.save(p, x);
    mx.savez(q, { x });
    mx.saveSafetensors(s, { x });
    const loaded = [mx.load(p, { device: testDevice }) as A, (mx.load(q, { device: testDevice }) as Record<string, A>).x, mx.loadSafetensors(s, { device: testDevice }).arrays.x];
    for (const a of loaded) {
      expect(a.device).toEqual(testDevice);
      expect(native.describe(a.handle).device).toBe(1);
      expect(a.tolist()).toEqual([[1, 2], [3, 4]]);
    }
    expect((mx.load(p) as A).device).toEqual(mx.defaultDevice());
    const absent = { type: "gpu", index: 7 } as const;
    expect(() => mx.load(p, { device: absent })).toThrow(/^load: device gpu:7 is not available/);
    expect(() => mx.loadSafetensors(s, { device: absent })).toThrow(/^loadSafetensors: device gpu:7 is not available/);
  });
});

describe(".npy golden files", () => {
  it("writes NumPy's header byte for byte: sorted keys, growth-axis spaces, 64-byte alignment", () => {
    // format.py: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", then 21 - len("2")
    // spaces, then spaces and "\n" up to a multiple of 64: 128 bytes in all.
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + " ".repeat(20);
    const want = npyFile(dict, f32([0, 1, 2, 3, 4, 5]));
    expect(want.length).toBe(128 + 24);
    const p = tmp(".npy");
    mx.save(p, mx.arange(6, "float32").reshape([2, 3]));
    expect(bytesOf(p)).toEqual(want);
    expect((mx.load(write(want, ".npy")) as A).tolist()).toEqual([[0, 1, 2], [3, 4, 5]]);
  });

  it("0-d, 1-d, bool and int64 headers", () => {
    const golden: [A, string, number[]][] = [
      [mx.array(2.5, "float64"), "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", [...Buffer.from(new Float64Array([2.5]).buffer)]],
      [mx.array([true, false, true]), "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }" + " ".repeat(20), [1, 0, 1]],
      [mx.array([-2n], "int64"), "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }" + " ".repeat(20), u64(2n ** 64n - 2n)],
      [mx.zeros([0, 12], "uint8"), "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 12), }" + " ".repeat(20), []],
    ];
    for (const [x, dict, data] of golden) {
      const p = tmp(".npy");
      mx.save(p, x);
      expect(bytesOf(p), dict).toEqual(npyFile(dict, data));
      expectSame(mx.load(p), x, dict);
    }
  });

  it("bfloat16 is written as MLX writes it, '<V2', and read back as bfloat16", () => {
    const x = mx.array([1, -2.5, 3e38], "bfloat16");
    const p = tmp(".npy");
    mx.save(p, x);
    const dict = "{'descr': '<V2', 'fortran_order': False, 'shape': (3,), }" + " ".repeat(20);
    expect(bytesOf(p)).toEqual(npyFile(dict, rawBytes(x)));
    expectSame(mx.load(p), x);
    // NumPy writes void types with '|'.
    expectSame(mx.load(write(npyFile(dict.replace("<V2", "|V2"), rawBytes(x)), ".npy")), x);
  });

  it("reads files of other writers: Fortran order, big-endian, versions 2.0 and 3.0, MLX's 16-byte alignment", () => {
    // Fortran order: the column-major data of [[1, 2, 3], [4, 5, 6]].
    const fortran = npyFile("{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }", [1, 4, 2, 5, 3, 6].flatMap(u16));
    const f = mx.load(write(fortran, ".npy")) as A;
    expect([f.dtype, f.tolist()]).toEqual(["int16", [[1, 2, 3], [4, 5, 6]]]);
    const cube = npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1, 3), }", f32([0, 3, 1, 4, 2, 5]));
    expect((mx.load(write(cube, ".npy")) as A).tolist()).toEqual([[[0, 1, 2]], [[3, 4, 5]]]);
    // Big-endian.
    const be = npyFile("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", [...Buffer.from([0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc0, 0x24, 0, 0, 0, 0, 0, 0])]);
    expect((mx.load(write(be, ".npy")) as A).tolist()).toEqual([1.5, -10]);
    const beInt = npyFile("{'descr': '>u4', 'fortran_order': True, 'shape': (2, 2), }", [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff]);
    expect((mx.load(write(beInt, ".npy")) as A).tolist()).toEqual([[1, 256], [2, 4294967295]]);
    expect((mx.load(write(npyFile("{'descr': '>i1', 'fortran_order': False, 'shape': (1,), }", [0xff]), ".npy")) as A).tolist()).toEqual([-1]);
    // Versions 2.0 (4-byte length) and 3.0 (UTF-8 header); MLX's own writer aligns to 16 bytes, without a trailing comma.
    expect((mx.load(write(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f32([1, 2]), 2), ".npy")) as A).tolist()).toEqual([1, 2]);
    expect((mx.load(write(npyFile("{'descr': '<u2', 'fortran_order': False, 'shape': (1,)}", u16(7), 3), ".npy")) as A).tolist()).toEqual([7]);
    expect((mx.load(write(npyFile("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1, )}", [...u32(3), ...u32(4)], 1, 16), ".npy")) as A).tolist()).toEqual([[3], [4]]);
    // Python 2's long integers, and keys in another order.
    expect((mx.load(write(npyFile("{'shape': (1L,), 'fortran_order': False, 'descr': '|u1'}", [9]), ".npy")) as A).tolist()).toEqual([9]);
  });
});

describe(".npz golden files", () => {
  it("writes the exact ZIP layout of np.savez (stored members, CRC-32, central directory, end record)", () => {
    expect(crc32(ascii("123456789"))).toBe(0xcbf43926); // the CRC-32 check value
    const a = mx.arange(6, "float32").reshape([2, 3]), b = mx.array([true, false]);
    const npy = (x: A) => {
      const p = tmp(".npy");
      mx.save(p, x);
      return bytesOf(p);
    };
    const want = zipFile([{ name: "a.npy", data: npy(a) }, { name: "b.npy", data: npy(b) }]);
    const p = tmp(".npz");
    mx.savez(p, { a, b });
    expect(bytesOf(p)).toEqual(want);
    const back = mx.load(write(want, ".npz")) as Record<string, A>;
    expect(Object.keys(back)).toEqual(["a", "b"]);
    expectSame(back.a, a);
    expectSame(back.b, b);
    // An empty archive is just the end record.
    const q = tmp(".npz");
    mx.savez(q, {});
    expect(bytesOf(q)).toEqual(zipFile([]));
  });

  it("reads deflated members (np.savez_compressed) and ZIP64 records", () => {
    const npy = npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f32([1, 2, 3]));
    const zipped = zipFile([{ name: "w.npy", data: npy, method: 8, stored: [...deflateRawSync(Uint8Array.from(npy))] }]);
    expect((mx.load(write(zipped, ".npz")) as Record<string, A>).w.tolist()).toEqual([1, 2, 3]);
    // ZIP64: sizes and offset 0xffffffff in the central directory with the values in a ZIP64
    // extra field (APPNOTE 4.5.3), and a ZIP64 end record with its locator (4.3.14, 4.3.15).
    const name = ascii("z.npy");
    const crc = crc32(npy);
    const local = [...u32(0x04034b50), ...u16(45), ...u16(0), ...u16(0), ...u16(0), ...u16(0x21), ...u32(crc), ...u32(0xffffffff), ...u32(0xffffffff), ...u16(name.length), ...u16(20), ...name, ...u16(1), ...u16(16), ...u64(npy.length), ...u64(npy.length)];
    const cd = [...u32(0x02014b50), 45, 3, ...u16(45), ...u16(0), ...u16(0), ...u16(0), ...u16(0x21), ...u32(crc), ...u32(0xffffffff), ...u32(0xffffffff), ...u16(name.length), ...u16(28), ...u16(0), ...u16(0), ...u16(0), ...u32(0), ...u32(0xffffffff), ...name, ...u16(1), ...u16(24), ...u64(npy.length), ...u64(npy.length), ...u64(0)];
    const cdOffset = local.length + npy.length;
    const end64 = [...u32(0x06064b50), ...u64(44), 45, 3, ...u16(45), ...u32(0), ...u32(0), ...u64(1), ...u64(1), ...u64(cd.length), ...u64(cdOffset)];
    const locator = [...u32(0x07064b50), ...u32(0), ...u64(cdOffset + cd.length), ...u32(1)];
    const end = [...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(0xffff), ...u16(0xffff), ...u32(0xffffffff), ...u32(0xffffffff), ...u16(0)];
    const zip64 = [...local, ...npy, ...cd, ...end64, ...locator, ...end];
    expect((mx.load(write(zip64, ".npz")) as Record<string, A>).z.tolist()).toEqual([1, 2, 3]);
  });
});

describe("safetensors golden files", () => {
  it("matches the reference implementation's own test vectors byte for byte", () => {
    // safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty.
    const data = f32([0, 1, 2, 3, 4, 5]);
    const vectors: [Record<string, A>, Record<string, string> | undefined, number[]][] = [
      [{ "attn.0": mx.arange(6, "float32").reshape([1, 2, 3]) }, undefined,
        [64, 0, 0, 0, 0, 0, 0, 0, ...ascii('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'), ...data]],
      [{ attn0: mx.arange(6, "float32").reshape([1, 1, 2, 3]) }, undefined,
        [72, 0, 0, 0, 0, 0, 0, 0, ...ascii('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       '), ...data]],
      [{}, undefined, [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]],
      [{}, { framework: "pt" }, [40, 0, 0, 0, 0, 0, 0, 0, ...ascii('{"__metadata__":{"framework":"pt"}}     ')]],
    ];
    for (const [record, metadata, want] of vectors) {
      const p = tmp(".safetensors");
      mx.saveSafetensors(p, record, metadata);
      expect(bytesOf(p)).toEqual(want);
      const back = mx.loadSafetensors(write(want, ".safetensors"));
      expect(back.metadata).toEqual(metadata ?? {});
      for (const [k, x] of Object.entries(record)) expectSame(back.arrays[k], x, k);
    }
  });

  it("lays tensors out by descending dtype rank (the reference's Dtype order), then name, in the header too", () => {
    const record = {
      a: mx.array([1.5], "float64"), b: mx.array([-1n], "int64"), c: mx.array([7, 8], "uint8"),
      d: mx.array([2], "float32"), e: mx.array([1], "bfloat16"), f: mx.array([true]), g: mx.array([3], "float32"),
      h: mx.array([4], "int16"), i: mx.array([5], "uint16"), j: mx.array([6], "float16"), k: mx.array([9], "int8"),
    };
    // U64 > I64 > F64 > F32 > U32 > I32 > BF16 > F16 > U16 > I16 > I8 > U8 > BOOL; metadata keys sorted.
    const json = '{"__metadata__":{"a":"1","b":"2"},' +
      '"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},' +
      '"d":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},"g":{"dtype":"F32","shape":[1],"data_offsets":[20,24]},' +
      '"e":{"dtype":"BF16","shape":[1],"data_offsets":[24,26]},"j":{"dtype":"F16","shape":[1],"data_offsets":[26,28]},' +
      '"i":{"dtype":"U16","shape":[1],"data_offsets":[28,30]},"h":{"dtype":"I16","shape":[1],"data_offsets":[30,32]},' +
      '"k":{"dtype":"I8","shape":[1],"data_offsets":[32,33]},"c":{"dtype":"U8","shape":[2],"data_offsets":[33,35]},' +
      '"f":{"dtype":"BOOL","shape":[1],"data_offsets":[35,36]}}';
    const header = json + " ".repeat((8 - (json.length % 8)) % 8);
    const data = [
      ...u64(2n ** 64n - 1n), ...Buffer.from(new Float64Array([1.5]).buffer), ...f32([2, 3]), 0x80, 0x3f, 0x00, 0x46,
      ...u16(5), ...u16(4), 9, 7, 8, 1,
    ];
    const want = [...u64(header.length), ...ascii(header), ...data];
    const p = tmp(".safetensors");
    mx.saveSafetensors(p, record, { b: "2", a: "1" });
    expect(bytesOf(p)).toEqual(want);
    const back = mx.loadSafetensors(p);
    for (const [k, x] of Object.entries(record)) expectSame(back.arrays[k], x, k);
  });

  it("reads files whose tensors are in any header order, with any valid JSON spacing", () => {
    const json = ' { "y" : {"shape": [], "dtype": "I32", "data_offsets": [4, 8]}, "x": {"dtype":"U8","shape":[0],"data_offsets":[8,8]},\n "z":{"data_offsets":[0,4],"dtype":"F32","shape":[1], "extra": 1}}';
    const file = [...u64(json.length), ...ascii(json), ...f32([0.5]), ...u32(42)];
    const { arrays } = mx.loadSafetensors(write(file, ".safetensors"));
    expect(Object.keys(arrays)).toEqual(["y", "x", "z"]);
    expect([arrays.y.tolist(), arrays.x.shape, arrays.z.tolist()]).toEqual([42, [0], [0.5]]);
  });
});

describe("malformed files are Errors naming the op, the path and the problem", () => {
  const expectLoadError = (bytes: number[], re: RegExp, ext = ".npy") => {
    const p = write(bytes, ext);
    let err: unknown;
    try {
      mx.load(p);
    } catch (e) {
      err = e;
    }
    expect(err, String(re)).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`^load: ${JSON.stringify(p).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: `));
    expect((err as Error).message).toMatch(re);
  };
  const good = npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f32([1, 2]));

  it(".npy", () => {
    expectLoadError([1, 2, 3], /not a \.npy or \.npz file/);
    expectLoadError([], /not a \.npy or \.npz file/);
    expectLoadError(good.slice(0, 9), /truncated header/);
    expectLoadError(good.slice(0, 40), /truncated header/);
    expectLoadError(good.slice(0, -1), /truncated data: shape \[2\] float32 needs 8 bytes; the file has 7/);
    expectLoadError([...good, 0], /unexpected bytes after the data/);
    expectLoadError([...good.slice(0, 6), 4, 0, ...good.slice(8)], /unsupported \.npy format version 4\.0/);
    const file = (dict: string, data: number[] = []) => npyFile(dict, data);
    expectLoadError(file("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0, 0, 0, 0, 0]), /unsupported dtype '<c8'/);
    expectLoadError(file("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }"), /unsupported dtype '<U3'/);
    expectLoadError(file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"), /structured dtypes are not supported/);
    expectLoadError(file("{'descr': '>V2', 'fortran_order': False, 'shape': (1,), }", [0, 0]), /bfloat16 is read from little-endian <V2 only/);
    expectLoadError(file("{'descr': '<f4', 'shape': (1,), }"), /expected the keys descr, fortran_order and shape; got descr, shape/);
    expectLoadError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"), /expected the keys/);
    expectLoadError(file("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }"), /fortran_order must be True or False/);
    expectLoadError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), /shape must be a tuple of non-negative integers/);
    expectLoadError(file("{'descr': '<f4', 'fortran_order': False, 'shape': 3, }"), /shape must be a tuple/);
    expectLoadError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'descr': '<f4'}"), /duplicate key "descr"/);
    expectLoadError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)"), /malformed header/);
    expectLoadError(file("['descr']"), /it is not a dictionary/);
    expectLoadError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk"), /unexpected text after the dictionary/);
  });

  it(".npz", () => {
    const zip = zipFile([{ name: "a.npy", data: good }]);
    expectLoadError(zip.slice(0, -3), /no end of central directory record/, ".npz");
    const corrupt = zip.slice();
    corrupt[30 + 5 + 130] ^= 1; // a data byte of the member
    expectLoadError(corrupt, /member "a\.npy" fails its CRC-32 check/, ".npz");
    expectLoadError(zipFile([{ name: "a.txt", data: [1, 2] }]), /member "a\.txt" is not a \.npy file/, ".npz");
    expectLoadError(zipFile([{ name: "a.npy", data: good }, { name: "a.npy", data: good }]), /duplicate member "a\.npy"/, ".npz");
    expectLoadError(zipFile([{ name: "a.npy", data: good, method: 12 }]), /compression method 12/, ".npz");
    expectLoadError(zipFile([{ name: "a.npy", data: good, method: 8, stored: [1, 2, 3] }]), /corrupt deflate data/, ".npz");
    expectLoadError(zipFile([{ name: "a.npy", data: [1, 2, 3] }]), /member "a\.npy": not a \.npy file \(bad magic/, ".npz");
    expectLoadError(zipFile([{ name: "a.npy", data: good.slice(0, -2) }]), /member "a\.npy": truncated data/, ".npz");
    // The central directory points past the end of the file.
    const far = zip.slice();
    far.splice(far.length - 6, 4, ...u32(10_000));
    expectLoadError(far, /truncated archive/, ".npz");
  });

  it("safetensors", () => {
    const expectError = (bytes: number[], re: RegExp) => {
      const p = write(bytes, ".safetensors");
      let err: unknown;
      try {
        mx.loadSafetensors(p);
      } catch (e) {
        err = e;
      }
      expect(err, String(re)).toBeInstanceOf(Error);
      expect((err as Error).message.startsWith(`loadSafetensors: ${JSON.stringify(p)}: `), (err as Error).message).toBe(true);
      expect((err as Error).message).toMatch(re);
    };
    const file = (json: string, data: number[] = []) => [...u64(json.length), ...ascii(json), ...data];
    const entry = (dtype: string, shape: number[], b: number, e: number) => `{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":[${b},${e}]}`;
    expectError([1, 2, 3], /truncated file/);
    expectError(u64(2n ** 40n), /larger than the limit/);
    expectError([...u64(100), ...ascii("{}")], /truncated header/);
    expectError(file("{not json}"), /malformed header/);
    expectError(file('[{"a":1}]'), /it is not a JSON object/);
    expectError([...u64(2), 0xff, 0xfe], /not valid UTF-8/);
    expectError(file(`{"a":${entry("F32", [1], 0, 4)},"a":${entry("F32", [1], 4, 8)}}`, f32([1, 2])), /duplicate name "a"/);
    expectError(file(`{"a":${entry("C64", [1], 0, 8)}}`, f32([1, 2])), /tensor "a" has unsupported dtype "C64"/);
    expectError(file(`{"a":${entry("F32", [3], 0, 8)}}`, f32([1, 2])), /\(8 bytes\), but shape \[3\] F32 needs 12/);
    expectError(file(`{"a":${entry("F32", [1], 0, 4)},"b":${entry("F32", [1], 8, 12)}}`, f32([1, 2, 3])), /tensor "b" .* leave a gap/);
    expectError(file(`{"a":${entry("F32", [2], 0, 8)},"b":${entry("F32", [1], 4, 8)}}`, f32([1, 2])), /overlap the previous tensor/);
    expectError(file(`{"a":${entry("F32", [2], 0, 8)}}`, f32([1])), /truncated data: the tensors need 8 bytes; the file has 4/);
    expectError(file(`{"a":${entry("F32", [1], 0, 4)}}`, f32([1, 2])), /the data has 8 bytes, but the tensors cover 4/);
    expectError(file(`{"a":${entry("F32", [1], 4, 0)}}`, f32([1])), /end before they begin/);
    expectError(file('{"a":{"dtype":"F32","shape":[1]}}', f32([1])), /data_offsets \[begin, end\]/);
    expectError(file('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'), /shape of non-negative integers/);
    expectError(file('{"a":[1]}'), /tensor "a" must be an object/);
    expectError(file('{"__metadata__":{"k":1}}'), /__metadata__\["k"\] must be a string; got 1/);
    expectError(file('{"__metadata__":"x"}'), /__metadata__ must be an object of strings/);
  });

  it("a missing file is an Error naming the op and the path", () => {
    const p = join(dir, "missing.npy");
    expect(() => mx.load(p)).toThrow(new RegExp(`^load: .*missing\\.npy.*: cannot read the file \\(ENOENT`));
    expect(() => mx.loadSafetensors(p)).toThrow(/^loadSafetensors: .*cannot read the file/);
    expect(() => mx.save(join(dir, "no-such-dir", "x.npy"), mx.array([1]))).toThrow(/^save: .*cannot write the file/);
    expect(() => mx.load(write(ascii("12345678{}"), ".safetensors"))).toThrow(/use loadSafetensors for \.safetensors files/);
  });
});

describe("bad arguments are TypeErrors naming the op", () => {
  it("paths, records, metadata and options", () => {
    const x = mx.array([1]);
    const p = tmp(".npy");
    expect(() => mx.save(3 as unknown as string, x)).toThrow(TypeError);
    expect(() => mx.save(3 as unknown as string, x)).toThrow(/^save: path must be a non-empty string; got a number/);
    expect(() => mx.save("", x)).toThrow(/^save: path must be a non-empty string/);
    expect(() => mx.save(p, [1, 2] as unknown as A)).toThrow(/^save: argument 2 must be an Array; got a JS array/);
    expect(() => mx.load(undefined as unknown as string)).toThrow(/^load: path must be a non-empty string; got undefined/);
    expect(() => mx.load(p, { dev: 1 } as unknown as mx.DeviceOptions)).toThrow(/^load: .*unknown option "dev"/);
    expect(() => mx.savez(p, [x] as unknown as Record<string, A>)).toThrow(/^savez: record must be a plain object of Arrays/);
    expect(() => mx.savez(p, { a: x, b: 2 } as unknown as Record<string, A>)).toThrow(/^savez: record\["b"\] must be an Array; got a number/);
    expect(() => mx.saveSafetensors(p, { a: "x" } as unknown as Record<string, A>)).toThrow(/^saveSafetensors: record\["a"\] must be an Array/);
    expect(() => mx.saveSafetensors(p, { a: x }, { v: 1 } as unknown as Record<string, string>)).toThrow(/^saveSafetensors: metadata\["v"\] must be a string; got a number/);
    expect(() => mx.saveSafetensors(p, { a: x }, "meta" as unknown as Record<string, string>)).toThrow(/^saveSafetensors: metadata must be a plain object/);
    expect(() => mx.saveSafetensors(p, { __metadata__: x })).toThrow(/^saveSafetensors: "__metadata__" is reserved/);
    expect(() => mx.loadSafetensors(null as unknown as string)).toThrow(/^loadSafetensors: path must be a non-empty string/);
    for (const f of [() => mx.save(3 as unknown as string, x), () => mx.savez(p, { b: 2 } as unknown as Record<string, A>), () => mx.saveSafetensors(p, { a: x }, { v: 1 } as unknown as Record<string, string>)]) {
      expect(f).toThrow(TypeError);
    }
    const gone = mx.array([1]);
    gone.dispose();
    expect(() => mx.save(p, gone)).toThrow(/^save: array of shape \[1\] float32 was disposed/);
    expect(() => mx.savez(p, { gone })).toThrow(/^savez: array of shape/);
  });

  it("names such as __proto__ are ordinary keys", () => {
    const record: Record<string, A> = {};
    Object.defineProperty(record, "__proto__", { value: mx.array([1]), enumerable: true, writable: true, configurable: true });
    record["constructor"] = mx.array([2]);
    const npz = tmp(".npz"), st = tmp(".safetensors");
    mx.savez(npz, record);
    mx.saveSafetensors(st, record);
    for (const back of [mx.load(npz) as Record<string, A>, mx.loadSafetensors(st).arrays]) {
      expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
      expect(Object.keys(back).sort()).toEqual(["__proto__", "constructor"]);
      expect((Object.getOwnPropertyDescriptor(back, "__proto__")!.value as A).tolist()).toEqual([1]);
      expect(back["constructor"].tolist()).toEqual([2]);
    }
  });
});

const hasPython = spawnSync("/usr/bin/python3", ["-c", "import zipfile"]).status === 0;
describe.skipIf(!hasPython)("Python zipfile cross-check (runs when /usr/bin/python3 exists)", () => {
  it("zipfile reads tessera's .npz (CRCs included); tessera reads zipfile's, as np.savez (force_zip64) and np.savez_compressed write them", () => {
    const record = { x: mx.array([[1.5, -2], [3, 4]]), y: mx.array([1n, -2n], "int64"), "ünï": mx.array([true]) };
    const npz = tmp(".npz"), stored = tmp(".npz"), deflated = tmp(".npz");
    mx.savez(npz, record);
    const script = `
import zipfile, sys
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
names = z.namelist()
assert names == ["x.npy", "y.npy", "\u00fcn\u00ef.npy"], names
data = {n: z.read(n) for n in names}
with zipfile.ZipFile(sys.argv[2], "w", compression=zipfile.ZIP_STORED, allowZip64=True) as out:
    for n in names:
        with out.open(n, "w", force_zip64=True) as f:
            f.write(data[n])
with zipfile.ZipFile(sys.argv[3], "w", compression=zipfile.ZIP_DEFLATED) as out:
    for n in names:
        out.writestr(n, data[n])
`;
    execFileSync("/usr/bin/python3", ["-c", script, npz, stored, deflated]);
    for (const p of [stored, deflated]) {
      const back = mx.load(p) as Record<string, A>;
      expect(Object.keys(back)).toEqual(Object.keys(record));
      for (const [k, x] of Object.entries(record)) expectSame(back[k], x, k);
    }
  });
});

const hasNumpy = spawnSync("/usr/bin/python3", ["-c", "import numpy"]).status === 0;
describe.skipIf(!hasNumpy)("NumPy cross-check (runs when /usr/bin/python3 has numpy)", () => {
  it("NumPy loads tessera's .npy/.npz and tessera loads NumPy's", () => {
    const x = mx.array([[1.5, -2], [3, 4]], "float32"), y = mx.array([1n, -2n, 3n], "int64"), z = mx.array([true, false]);
    const h = mx.array([0.5, 1], "float16");
    const npy = tmp(".npy"), npz = tmp(".npz");
    mx.save(npy, x);
    mx.savez(npz, { x, y, z, h });
    const script = `
import numpy as np, sys, json
a = np.load(sys.argv[1]); d = np.load(sys.argv[2])
assert a.dtype == np.float32 and a.tolist() == [[1.5, -2.0], [3.0, 4.0]], a
assert sorted(d.files) == ["h", "x", "y", "z"], d.files
assert d["y"].dtype == np.int64 and d["y"].tolist() == [1, -2, 3]
assert d["z"].dtype == np.bool_ and d["z"].tolist() == [True, False]
assert d["h"].dtype == np.float16 and d["h"].tolist() == [0.5, 1.0]
np.save(sys.argv[3], np.arange(6, dtype=np.int16).reshape(2, 3))
np.save(sys.argv[4], np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)))
np.savez(sys.argv[5], a=np.arange(3, dtype=np.uint8), b=np.float64(2.5))
np.savez_compressed(sys.argv[6], c=np.ones((2, 2), dtype=np.float32))
`;
    const out = [tmp(".npy"), tmp(".npy"), tmp(".npz"), tmp(".npz")];
    execFileSync("/usr/bin/python3", ["-c", script, npy, npz, ...out]);
    expect((mx.load(out[0]) as A).tolist()).toEqual([[0, 1, 2], [3, 4, 5]]);
    const f = mx.load(out[1]) as A;
    expect([f.dtype, f.tolist()]).toEqual(["float64", [[0, 1, 2], [3, 4, 5]]]);
    const d = mx.load(out[2]) as Record<string, A>;
    expect([d.a.dtype, d.a.tolist(), d.b.shape, d.b.tolist()]).toEqual(["uint8", [0, 1, 2], [], 2.5]);
    expect((mx.load(out[3]) as Record<string, A>).c.tolist()).toEqual([[1, 1], [1, 1]]);
  });
});
