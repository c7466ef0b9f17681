/**
 * @file Random numbers reproduce across processes and thread counts: the same key (explicit, or
 * the global key after `mx.random.seed(n)`) gives bit-identical samples in this process and in two
 * child processes whose thread pools have 1 and 2 threads (TESSERA_NUM_THREADS, read by
 * native/src/cpu/threads.cc). Shapes are large (100,001 elements, odd so the chunks are uneven)
 * so the kernels split them across the threads.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import * as mx from "@tessera/core";

/** The built @tessera/core as a file URL, for the child processes. */
const CORE = pathToFileURL(createRequire(import.meta.url).resolve("@tessera/core")).href;

/**
 * The samples, as a function of `mx` (the same source runs here and in the children): name ->
 * array. Each is evaluated and hashed over its raw bytes.
 */
const SAMPLES = `(mx) => {
  const N = 100001;
  const k = mx.random.key(1234);
  const [k1, k2] = mx.random.split(mx.random.key(7));
  const out = {};
  out.uniform = mx.random.uniform(0, 1, [N], { key: k });
  out.uniform64 = mx.random.uniform(-3, 5, [317, 331], { dtype: "float64", key: k1 });
  out.uniform16 = mx.random.uniform(0, 1, [N], { dtype: "bfloat16", key: k2 });
  out.normal = mx.random.normal([N], { key: k });
  out.normal64 = mx.random.normal([N], { dtype: "float64", loc: 2, scale: 3, key: k1 });
  out.randint = mx.random.randint(-1000, 1000, [N], { key: k });
  out.randint64 = mx.random.randint(-(2n ** 31n), 2n ** 31n, [N], { dtype: "int64", key: k2 });
  out.bernoulli = mx.random.bernoulli(0.3, [N], { key: k });
  out.permutation = mx.random.permutation(N, { key: k });
  out.permutationRows = mx.random.permutation(mx.arange(3 * 40001).reshape([40001, 3]), { key: k1 });
  out.categorical = mx.random.categorical(mx.arange(10).div(3).reshape([1, 10]).broadcastTo([N, 10]), { key: k });
  out.categoricalSamples = mx.random.categorical(mx.array([[0, 1, 2, 3], [3, 2, 1, 0]]), { numSamples: 50001, key: k2 });
  out.truncatedNormal = mx.random.truncatedNormal(-1, 2, [N], { key: k });
  out.gumbel = mx.random.gumbel([N], { key: k });
  out.splitKeys = mx.stack(mx.random.split(k, 1001));
  // The global key: seed, then calls without a key (each call advances it).
  mx.random.seed(42);
  out.seedUniform = mx.random.uniform(0, 1, [N]);
  out.seedNormal = mx.random.normal([N]);
  out.seedRandint = mx.random.randint(0, 10, [N]);
  out.seedBernoulli = mx.random.bernoulli(0.5, [N]);
  out.seedPermutation = mx.random.permutation(N);
  out.seedCategorical = mx.random.categorical(mx.zeros([N, 7]));
  mx.random.seed(42);
  out.reseededUniform = mx.random.uniform(0, 1, [N]);
  return out;
}`;

/** Evaluates the samples and returns name -> [sha256 of the raw bytes, dtype, shape, first values]. */
const REPORT = `(mx, samples) => {
  const out = samples(mx);
  mx.eval(out);
  const res = {};
  for (const [name, x] of Object.entries(out)) {
    const t = x.toTypedArray();
    const bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    const hash = createHash("sha256").update(bytes).digest("hex");
    res[name] = [hash, x.dtype, x.shape.join("x"), Array.from(t.slice(0, 4), String).join(",")];
  }
  return res;
}`;

type Report = Record<string, [string, string, string, string]>;
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const samples = new Function(`return ${SAMPLES}`)() as (m: typeof mx) => Record<string, mx.Array>;
const report = new Function("createHash", `return ${REPORT}`)(createHash) as (m: typeof mx, s: typeof samples) => Report;

/** The report of a child process with `threads` threads in its pool. */
function child(threads: number): Report {
  const script = `
import * as mx from ${JSON.stringify(CORE)};
import { createHash } from "node:crypto";
const report = ${REPORT};
process.stdout.write(JSON.stringify(report(mx, ${SAMPLES})));
`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, TESSERA_NUM_THREADS: String(threads) },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`child with ${threads} threads: status ${r.status} ${r.signal ?? ""}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

describe("random reproduces across processes and thread counts", () => {
  it("the same key gives bit-identical samples here and in children with 1 and 2 threads", () => {
    const here = report(mx, samples);
    // Sanity: the samples are what they claim (so equal hashes are not equal nothing).
    expect(Object.keys(here).length).toBe(22);
    expect(here.uniform[2]).toBe("100001");
    expect(here.seedUniform[0]).toBe(here.reseededUniform[0]);
    expect(here.seedUniform[0]).not.toBe(here.uniform[0]);
    const one = child(1);
    const two = child(2);
    // Compare name by name, so a failure names the sample and shows its first values.
    for (const name of Object.keys(here)) {
      expect(one[name], `${name}: 1 thread vs this process`).toEqual(here[name]);
      expect(two[name], `${name}: 2 threads vs this process`).toEqual(here[name]);
    }
    expect(Object.keys(one).sort()).toEqual(Object.keys(here).sort());
    expect(Object.keys(two).sort()).toEqual(Object.keys(here).sort());
  });
});
