/**
 * @file ZIP archives as `.npz` files use them: writing stored (uncompressed) members the way
 * Python's zipfile does for `np.savez`, and reading stored or deflated members, ZIP64 included.
 * Format: PKWARE APPNOTE.TXT (sections 4.3 and 4.5.3).
 */
import { inflateRawSync } from "node:zlib";

const LOCAL = 0x04034b50, CENTRAL = 0x02014b50, END = 0x06054b50, END64 = 0x06064b50, LOCATOR64 = 0x07064b50;
/** Python's zipfile switches to ZIP64 fields above 2^31 - 1; so do we. */
const ZIP64_LIMIT = 0x7fffffff;
const VERSION = 20, VERSION64 = 45;
/** A fixed time stamp (1980-01-01 00:00:00, the DOS epoch) keeps archives reproducible. */
const DOS_TIME = 0, DOS_DATE = (1 << 5) | 1;
/** Made by Unix (3), with permissions rw------- as Python writes them. */
const MADE_BY_UNIX = 3, EXTERNAL_ATTR = 0o600 << 16;
const UTF8_FLAG = 0x800;

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** The CRC-32 (ISO-HDLC, as ZIP and zlib use it) of the chunks, in order. */
export function crc32(chunks: Uint8Array[]): number {
  let c = -1;
  for (const b of chunks) for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** A little-endian record writer. */
class Fields {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private at = 0;
  constructor(n: number) {
    this.bytes = new Uint8Array(n);
    this.dv = new DataView(this.bytes.buffer);
  }
  u16(v: number): this { this.dv.setUint16(this.at, v, true); this.at += 2; return this; }
  u32(v: number): this { this.dv.setUint32(this.at, v, true); this.at += 4; return this; }
  u64(v: number): this { this.dv.setBigUint64(this.at, BigInt(v), true); this.at += 8; return this; }
  raw(b: Uint8Array): this { this.bytes.set(b, this.at); this.at += b.length; return this; }
}

/** One member to write: its name and its contents as chunks. */
export interface ZipEntry {
  name: string;
  chunks: Uint8Array[];
}

/**
 * The chunks of a ZIP archive of stored members: for each a local header (with a ZIP64 extra field
 * when its size needs one), its bytes; then the central directory and the end records.
 */
export function writeZip(entries: ZipEntry[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const ascii = /^[\x00-\x7f]*$/.test(e.name);
    const name = Buffer.from(e.name, ascii ? "ascii" : "utf8");
    const flags = ascii ? 0 : UTF8_FLAG;
    const size = e.chunks.reduce((n, c) => n + c.length, 0);
    const crc = crc32(e.chunks);
    const big = size > ZIP64_LIMIT;
    const local = new Fields(30 + name.length + (big ? 20 : 0))
      .u32(LOCAL).u16(big ? VERSION64 : VERSION).u16(flags).u16(0).u16(DOS_TIME).u16(DOS_DATE).u32(crc)
      .u32(big ? 0xffffffff : size).u32(big ? 0xffffffff : size).u16(name.length).u16(big ? 20 : 0).raw(name);
    if (big) local.u16(1).u16(16).u64(size).u64(size);
    // The central directory repeats the header, with ZIP64 fields for what does not fit in 4 bytes.
    const farOffset = offset > ZIP64_LIMIT;
    const extra64 = (big ? 16 : 0) + (farOffset ? 8 : 0);
    const extraLen = extra64 ? 4 + extra64 : 0;
    const v = extra64 ? VERSION64 : VERSION;
    const cd = new Fields(46 + name.length + extraLen)
      .u32(CENTRAL).u16(v | (MADE_BY_UNIX << 8)).u16(v).u16(flags).u16(0).u16(DOS_TIME).u16(DOS_DATE).u32(crc)
      .u32(big ? 0xffffffff : size).u32(big ? 0xffffffff : size).u16(name.length).u16(extraLen).u16(0)
      .u16(0).u16(0).u32(EXTERNAL_ATTR).u32(farOffset ? 0xffffffff : offset).raw(name);
    if (extra64) {
      cd.u16(1).u16(extra64);
      if (big) cd.u64(size).u64(size);
      if (farOffset) cd.u64(offset);
    }
    central.push(cd.bytes);
    out.push(local.bytes, ...e.chunks);
    offset += local.bytes.length + size;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  out.push(...central);
  const n = entries.length;
  if (n > 0xffff || offset > ZIP64_LIMIT || cdSize > ZIP64_LIMIT) {
    const end64 = new Fields(56 + 20)
      .u32(END64).u64(44).u16(VERSION64 | (MADE_BY_UNIX << 8)).u16(VERSION64).u32(0).u32(0)
      .u64(n).u64(n).u64(cdSize).u64(offset)
      .u32(LOCATOR64).u32(0).u64(offset + cdSize).u32(1);
    out.push(end64.bytes);
  }
  const end = new Fields(22)
    .u32(END).u16(0).u16(0).u16(Math.min(n, 0xffff)).u16(Math.min(n, 0xffff))
    .u32(Math.min(cdSize, 0xffffffff)).u32(Math.min(offset, 0xffffffff)).u16(0);
  out.push(end.bytes);
  return out;
}

/** One member read back: its name and its (inflated, CRC-checked) bytes. */
export interface ZipMember {
  name: string;
  data: Uint8Array;
}

/**
 * The members of a ZIP archive, in central-directory order. Throws an Error saying what is wrong
 * with a malformed archive (the caller adds the op and the path).
 */
export function readZip(b: Uint8Array): ZipMember[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (at: number) => dv.getUint16(at, true);
  const u32 = (at: number) => dv.getUint32(at, true);
  const u64 = (at: number) => {
    const v = dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`a ZIP64 field (${v}) is too large`);
    return Number(v);
  };
  const need = (at: number, n: number, what: string) => {
    if (at < 0 || at + n > b.length) throw new Error(`truncated archive (${what} at byte ${at} runs past the end of the file, ${b.length} bytes)`);
  };
  // The end of central directory record: 22 bytes and a comment of up to 65535.
  let end = -1;
  for (let at = b.length - 22; at >= Math.max(0, b.length - 22 - 0xffff); at--) {
    if (u32(at) === END && at + 22 + u16(at + 20) === b.length) { end = at; break; }
  }
  if (end < 0) throw new Error("not a ZIP archive, or a truncated one (no end of central directory record)");
  let count = u16(end + 10), cdSize = u32(end + 12), cdOffset = u32(end + 16);
  if (end >= 20 && u32(end - 20) === LOCATOR64) {
    const at = u64(end - 12);
    need(at, 56, "the ZIP64 end of central directory record");
    if (u32(at) !== END64) throw new Error("bad ZIP64 end of central directory record signature");
    count = u64(at + 32);
    cdSize = u64(at + 40);
    cdOffset = u64(at + 48);
  }
  need(cdOffset, cdSize, "the central directory");
  const members: ZipMember[] = [];
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    need(at, 46, `central directory entry ${i}`);
    if (u32(at) !== CENTRAL) throw new Error(`bad signature of central directory entry ${i}`);
    const flags = u16(at + 8), method = u16(at + 10), crc = u32(at + 16);
    let csize = u32(at + 20), usize = u32(at + 24), offset = u32(at + 42);
    const nameLen = u16(at + 28), extraLen = u16(at + 30), commentLen = u16(at + 32);
    need(at + 46, nameLen + extraLen + commentLen, `central directory entry ${i}`);
    const nameBytes = b.subarray(at + 46, at + 46 + nameLen);
    const name = Buffer.from(nameBytes.buffer, nameBytes.byteOffset, nameBytes.length).toString(flags & UTF8_FLAG ? "utf8" : "latin1");
    // ZIP64 extra field: the 8-byte values of the fields that are 0xffffffff, in this order.
    for (let x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen;) {
      const id = u16(x), len = u16(x + 2);
      if (id === 1) {
        let y = x + 4;
        const next = () => {
          if (y + 8 > x + 4 + len) throw new Error(`member ${JSON.stringify(name)}: ZIP64 extra field too short`);
          const v = u64(y);
          y += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = next();
        if (csize === 0xffffffff) csize = next();
        if (offset === 0xffffffff) offset = next();
      }
      x += 4 + len;
    }
    at += 46 + nameLen + extraLen + commentLen;
    const what = `member ${JSON.stringify(name)}`;
    if (flags & 1) throw new Error(`${what} is encrypted`);
    need(offset, 30, `the local header of ${what}`);
    if (u32(offset) !== LOCAL) throw new Error(`bad local header signature of ${what}`);
    const start = offset + 30 + u16(offset + 26) + u16(offset + 28);
    need(start, csize, `the data of ${what}`);
    const stored = b.subarray(start, start + csize);
    let data: Uint8Array;
    if (method === 0) {
      if (csize !== usize) throw new Error(`${what} is stored with a compressed size ${csize} different from its size ${usize}`);
      data = stored;
    } else if (method === 8) {
      // Never inflate past the size the directory declares (a small member can claim to hold a
      // lot: a "zip bomb"); a larger stream fails here, a smaller one at the size check below.
      if (usize > 2 ** 31 - 1) throw new Error(`${what} declares ${usize} bytes uncompressed; at most 2^31 - 1 are supported`);
      try {
        data = inflateRawSync(stored, { maxOutputLength: Math.max(usize, 1) });
      } catch (e) {
        throw new Error(`${what}: corrupt deflate data (${(e as Error).message})`);
      }
    } else {
      throw new Error(`${what} uses compression method ${method} (only 0, stored, and 8, deflate, are supported)`);
    }
    if (data.length !== usize) throw new Error(`${what} has ${data.length} bytes; the directory says ${usize}`);
    if (crc32([data]) !== crc) throw new Error(`${what} fails its CRC-32 check (the data is corrupt)`);
    members.push({ name, data });
  }
  return members;
}
