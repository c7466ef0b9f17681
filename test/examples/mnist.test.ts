/**
 * @file examples/mnist: the IDX loader on tiny hand-built files, and the example itself run in a
 * child process on small configurations (the bundled digits with the MLP; IDX files with the CNN).
 */
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
// @ts-ignore: a plain JavaScript module of the example, without declarations
import { parseIdx, loadIdxDir, loadBundled } from "../../examples/mnist/data.mjs";

const root = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
const main = join(root, "examples", "mnist", "main.mjs");

/** An IDX file: type byte, dims, then big-endian data (`bytes` already encoded). */
function idx(type: number, dims: number[], bytes: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(bytes)]);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tessera-mnist-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("the IDX loader", () => {
  it("parses ubyte images and labels, plain and gzipped", () => {
    const pixels = new Uint8Array(2 * 3 * 4).map((_, i) => i * 10);
    const img = parseIdx(idx(0x08, [2, 3, 4], pixels));
    expect(img.dims).toEqual([2, 3, 4]);
    expect(Array.from(img.data)).toEqual(Array.from(pixels));
    const lab = parseIdx(gzipSync(idx(0x08, [3], new Uint8Array([7, 0, 9]))));
    expect(lab.dims).toEqual([3]);
    expect(Array.from(lab.data)).toEqual([7, 0, 9]);
  });

  it("reads wider types big-endian", () => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(-2, 0);
    b.writeInt32BE(70000, 4);
    expect(Array.from(parseIdx(idx(0x0c, [2], b)).data)).toEqual([-2, 70000]);
    const f = Buffer.alloc(4);
    f.writeFloatBE(1.5, 0);
    expect(Array.from(parseIdx(idx(0x0d, [1], f)).data)).toEqual([1.5]);
  });

  it("rejects bad magic, unknown types and truncated files", () => {
    expect(() => parseIdx(Buffer.from([1, 0, 8, 1, 0, 0, 0, 1, 5]))).toThrow(/magic/);
    expect(() => parseIdx(Buffer.from([0, 0, 0x42, 1, 0, 0, 0, 1, 5]))).toThrow(/type/);
    expect(() => parseIdx(idx(0x08, [4], new Uint8Array([1, 2])))).toThrow(/truncated/);
    expect(() => parseIdx(Buffer.from([0, 0, 8, 2, 0, 0]))).toThrow(/truncated/);
  });

  it("loads the four standard files from a directory, scaling pixels to [0, 1]", () => {
    const d = join(dir, "tiny");
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d);
    const train = new Uint8Array(2 * 784);
    train[0] = 255;
    train[784 + 783] = 51;
    writeFileSync(join(d, "train-images-idx3-ubyte"), idx(0x08, [2, 28, 28], train));
    writeFileSync(join(d, "train-labels-idx1-ubyte.gz"), gzipSync(idx(0x08, [2], new Uint8Array([3, 8]))));
    writeFileSync(join(d, "t10k-images-idx3-ubyte.gz"), gzipSync(idx(0x08, [1, 28, 28], new Uint8Array(784).fill(102))));
    writeFileSync(join(d, "t10k-labels-idx1-ubyte"), idx(0x08, [1], new Uint8Array([1])));
    const { train: tr, test: te } = loadIdxDir(d);
    expect(tr.n).toBe(2);
    expect(tr.images.length).toBe(2 * 784);
    expect(tr.images[0]).toBe(1);
    expect(tr.images[784 + 783]).toBeCloseTo(0.2, 6);
    expect(Array.from(tr.labels)).toEqual([3, 8]);
    expect(te.n).toBe(1);
    expect(te.images[500]).toBeCloseTo(0.4, 6);
    expect(Array.from(te.labels)).toEqual([1]);
    // A count mismatch between images and labels is an error that names it.
    writeFileSync(join(d, "t10k-labels-idx1-ubyte"), idx(0x08, [2], new Uint8Array([1, 2])));
    expect(() => loadIdxDir(d)).toThrow(/1 images but labels/);
    rmSync(join(d, "t10k-labels-idx1-ubyte"));
    expect(() => loadIdxDir(d)).toThrow(/not found/);
  });

  it("splits the bundled 10,000 digits 8,000 / 2,000, the same way for the same seed", () => {
    const a = loadBundled({ seed: 3 });
    expect(a.train.n).toBe(8000);
    expect(a.test.n).toBe(2000);
    expect(a.train.images.length).toBe(8000 * 784);
    const b = loadBundled({ seed: 3 });
    expect(Array.from(b.test.labels.subarray(0, 50))).toEqual(Array.from(a.test.labels.subarray(0, 50)));
    const counts = new Array(10).fill(0);
    a.test.labels.forEach((l: number) => counts[l]++);
    expect(counts.every((c) => c > 100)).toBe(true);
  });
});

function run(args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], { cwd: root, encoding: "utf8", timeout: 50_000 });
  if (r.status !== 0) throw new Error(`exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function checkSvg(file: string) {
  expect(existsSync(file)).toBe(true);
  const svg = readFileSync(file, "utf8");
  expect(svg.startsWith("<svg")).toBe(true);
  expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
  expect(svg).toMatch(/<path d="M[\d.]+,[\d.]+/);
  rmSync(file);
}

describe("examples/mnist/main.mjs", () => {
  it("trains the MLP on a subset of the bundled digits, reports per epoch and at the end, writes the SVG", () => {
    const out = join(dir, "mlp.svg");
    const stdout = run(["--epochs", "2", "--limit", "1000", "--out", out]);
    expect(stdout).toMatch(/data: 1000 training and 2000 held-out images/);
    expect(stdout).toMatch(/^epoch 1\/2 +loss \d+\.\d+ +train acc \d+\.\d+% +held-out acc \d+\.\d+%/m);
    expect(stdout).toMatch(/^epoch 2\/2 +loss \d+\.\d+ +train acc/m);
    const m = stdout.match(/held-out accuracy: (\d+\.\d+)% \((\d+)\/2000\)/);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(70); // 1,000 images, 2 epochs: well above chance
    checkSvg(out);
  });

  it("trains the CNN on standard IDX files given with --data", () => {
    // IDX files (some gzipped) made from the bundled digits.
    const d = join(dir, "idx");
    mkdirSync(d, { recursive: true });
    const { train, test } = loadBundled({ seed: 0 });
    const write = (name: string, ds: { images: Float32Array; labels: Int32Array }, n: number, gz: boolean) => {
      const px = new Uint8Array(n * 784);
      for (let i = 0; i < px.length; i++) px[i] = Math.round(ds.images[i] * 255);
      const imgs = idx(0x08, [n, 28, 28], px);
      const labs = idx(0x08, [n], Uint8Array.from(ds.labels.subarray(0, n)));
      writeFileSync(join(d, `${name}-images-idx3-ubyte${gz ? ".gz" : ""}`), gz ? gzipSync(imgs) : imgs);
      writeFileSync(join(d, `${name}-labels-idx1-ubyte${gz ? ".gz" : ""}`), gz ? gzipSync(labs) : labs);
    };
    write("train", train, 600, true);
    write("t10k", test, 200, false);
    const out = join(dir, "cnn.svg");
    const stdout = run(["--model", "cnn", "--data", d, "--epochs", "1", "--batch", "50", "--out", out]);
    expect(stdout).toMatch(/data: 600 training and 200 held-out images from IDX files/);
    expect(stdout).toMatch(/model: cnn/);
    expect(stdout).toMatch(/^epoch 1\/1 +loss \d+\.\d+ +train acc \d+\.\d+% +held-out acc \d+\.\d+%/m);
    expect(stdout).toMatch(/held-out accuracy: \d+\.\d+% \(\d+\/200\)/);
    checkSvg(out);
  });

  it("rejects a bad option with usage and exit code 2", () => {
    const r = spawnSync(process.execPath, [main, "--model", "rnn"], { cwd: root, encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--model must be mlp or cnn/);
  });
});
