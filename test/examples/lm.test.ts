/**
 * @file examples/lm: the vocabulary and the training windows, a short training run of the
 * character Transformer (the loss falls well below uniform chance, ln(vocab)), weights that round-trip
 * through --save/--load bit for bit, seeded sampling, and main.mjs itself run in a child process.
 */
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as mx from "@tessera/core";
// @ts-ignore: plain JavaScript modules of the example, without declarations
import { loadText, makeVocab, rng, sampleBatch } from "../../examples/lm/data.mjs";
// @ts-ignore: plain JavaScript modules of the example, without declarations
import { CharTransformer, makeTrainer, generate } from "../../examples/lm/model.mjs";

const root = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
const main = join(root, "examples", "lm", "main.mjs");

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tessera-lm-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("the data", () => {
  it("bundles a 30-100 KB text whose characters form the vocabulary, and encodes and decodes it", () => {
    const text = loadText();
    expect(text.length).toBeGreaterThan(30_000);
    expect(text.length).toBeLessThan(100_000);
    const vocab = makeVocab(text);
    expect(vocab.size).toBe(new Set(text).size);
    expect(vocab.chars).toEqual([...vocab.chars].sort());
    const ids = vocab.encode(text.slice(0, 200));
    expect(ids).toBeInstanceOf(Int32Array);
    expect(vocab.decode(ids)).toBe(text.slice(0, 200));
    expect(() => vocab.encode("€")).toThrow(/not in the vocabulary/);
  });

  it("draws windows whose targets are the inputs shifted by one", () => {
    const ids = Int32Array.from({ length: 50 }, (_, i) => i);
    const [x, y] = sampleBatch(ids, 3, 8, rng(1));
    expect(x.shape).toEqual([3, 8]);
    expect(x.dtype).toBe("int32");
    const xs = x.tolist() as number[][], ys = y.tolist() as number[][];
    for (let b = 0; b < 3; b++) {
      for (let t = 0; t < 8; t++) expect(ys[b][t]).toBe(xs[b][t] + 1);
    }
    expect(() => sampleBatch(ids.subarray(0, 5), 1, 8, rng(1))).toThrow(/need at least/);
  });
});

describe("the model", () => {
  it("trains: the loss falls well below uniform chance ln(vocab) in a few dozen steps", () => {
    const text = loadText();
    const vocab = makeVocab(text);
    const ids = vocab.encode(text);
    mx.random.seed(0);
    const model = new CharTransformer(vocab.size);
    expect(model.forward(mx.zeros([2, 16], "int32")).shape).toEqual([2, 16, vocab.size]);
    const { step } = makeTrainer(model, { learningRate: 3e-3 });
    const rand = rng(1);
    const losses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const [x, y] = sampleBatch(ids, 16, 64, rand);
      losses.push(step(x, y));
    }
    const chance = Math.log(vocab.size); // 4.08 for 59 characters
    const tail = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(losses[0]).toBeGreaterThan(chance - 0.5); // it starts near chance
    expect(tail).toBeLessThan(chance - 1); // and learns at least the character frequencies
  });

  it("saves and loads its weights: a fresh model given them gives identical logits", () => {
    mx.random.seed(1);
    const a = new CharTransformer(20, { contextLen: 16 });
    const file = join(dir, "w.safetensors");
    a.saveWeights(file);
    mx.random.seed(2);
    const b = new CharTransformer(20, { contextLen: 16 });
    const x = mx.array(Int32Array.from([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])).reshape([1, 10]);
    const before = b.forward(x).toTypedArray();
    b.loadWeights(file);
    const want = a.forward(x).toTypedArray(), got = b.forward(x).toTypedArray();
    expect(Array.from(got)).toEqual(Array.from(want));
    expect(Array.from(before)).not.toEqual(Array.from(want));
  });

  it("samples in the vocabulary, the same characters for the same key", () => {
    mx.random.seed(3);
    const model = new CharTransformer(12, { contextLen: 8 });
    const a = generate(model, [1, 2, 3], 20, { temperature: 0.9, key: mx.random.key(7) });
    const b = generate(model, [1, 2, 3], 20, { temperature: 0.9, key: mx.random.key(7) });
    expect(a).toBeInstanceOf(Int32Array);
    expect(a.length).toBe(20); // longer than contextLen: the window slides
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a).every((i) => i >= 0 && i < 12)).toBe(true);
    expect(() => generate(model, [1], 5, { temperature: 0 })).toThrow(/temperature/);
    expect(() => model.forward(mx.zeros([1, 9], "int32"))).toThrow(/exceeds contextLen 8/);
  });
});

function run(args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], { cwd: root, encoding: "utf8", timeout: 50_000 });
  if (r.status !== 0) throw new Error(`exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe("examples/lm/main.mjs", () => {
  it("trains, prints the loss, saves, then loads the weights and samples without training", () => {
    const file = join(dir, "main.safetensors");
    const out = run(["--steps", "20", "--batch", "4", "--seq", "32", "--log-every", "10", "--sample", "40", "--save", file]);
    expect(out).toMatch(/^data: [\d,]+ characters of Coriolanus, 59 distinct/m);
    expect(out).toMatch(/uniform-chance loss ln\(59\) = 4\.078/);
    expect(out).toMatch(/^step 10\/20 +loss \d+\.\d+/m);
    expect(out).toMatch(/^step 20\/20 +loss \d+\.\d+/m);
    expect(out).toMatch(/^held-out loss: \d+\.\d+/m);
    expect(out).toMatch(/sample \(temperature 0\.8\):\n-+\nMENENIUS:\n/);
    expect(existsSync(file)).toBe(true);
    const again = run(["--load", file, "--steps", "0", "--seq", "32", "--sample", "30", "--prompt", "ROME"]);
    expect(again).toMatch(/^loaded weights from /m);
    expect(again).not.toMatch(/^step /m);
    expect(again).toMatch(/-+\nROME/);
    // The held-out loss (fixed windows of --seq characters) depends only on the weights: the loaded
    // model reports the trained one's.
    const held = (s: string) => s.match(/held-out loss: (\d+\.\d+)/)![1];
    expect(held(again)).toBe(held(out));
  });

  it("rejects a bad option with usage and exit code 2", () => {
    const r = spawnSync(process.execPath, [main, "--seq", "500"], { cwd: root, encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--seq must be an integer in \[1, 128\]/);
    expect(r.stderr).toMatch(/usage:/);
  });
});
