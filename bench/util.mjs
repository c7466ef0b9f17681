// Helpers shared by the benchmark scripts: timing (the same rule as bench/torch_ops.py, so that
// both sides of a ratio are measured alike), the environment of the Python peers, running a child
// that prints one JSON line, and printing aligned tables.
import { execFileSync } from "node:child_process";

/**
 * Seconds per call of `fn`: calls for `warmSeconds` of warm-up, then calls in repetitions of `inner` calls, `inner`
 * doubled from 1 until a repetition lasts `minRepSeconds` (so microsecond ops are not lost in the
 * timer), and the fastest of `reps` such repetitions: on a shared machine the least disturbed one.
 * @example
 * const s = bestSeconds(() => mx.eval(mx.add(a, b)), { reps: 7 });
 */
export function bestSeconds(fn, { reps = 7, minRepSeconds = 0.02, warmSeconds = 0.3 } = {}) {
  const rep = (inner) => {
    const t = now();
    for (let i = 0; i < inner; i++) fn();
    return (now() - t) / inner;
  };
  // Warmed for a time, not a count: on a busy 2-core machine V8 can still be optimizing the hot
  // functions 150 ms after the first call, and a tiny evaluation runs 4x slower until it has.
  const warmUntil = now() + warmSeconds;
  do fn();
  while (now() < warmUntil);
  let inner = 1;
  while (rep(inner) * inner < minRepSeconds) inner *= 2;
  let best = Infinity;
  for (let r = 0; r < reps; r++) best = Math.min(best, rep(inner));
  return best;
}
const now = () => Number(process.hrtime.bigint()) / 1e9;

/**
 * The environment of a Python peer: this one without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (which
 * would pin OpenBLAS to another CPU's kernels and cache size), and with `threads` set for OpenMP
 * and OpenBLAS (whose pool ignores torch.set_num_threads) when given.
 * @example
 * execFileSync(python, [script], { env: peerEnv(2) });
 */
export function peerEnv(threads) {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  if (threads !== undefined) env.OMP_NUM_THREADS = env.OPENBLAS_NUM_THREADS = String(threads);
  return env;
}

/**
 * Runs `command args` and parses the last line of its stdout as JSON (stderr passes through).
 * @example
 * const r = runJSON(python, [peer, "--threads", "1"], { env: peerEnv(1) });
 */
export function runJSON(command, args, { env = process.env } = {}) {
  const out = execFileSync(command, args, { env, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
  return JSON.parse(out.toString().trim().split("\n").pop());
}

/**
 * Prints `rows` (arrays of strings) under `head`, the first column left-aligned, the others right.
 * @example
 * printTable(["op", "ms"], [["softmax", "12.3"]]);
 */
export function printTable(head, rows) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

/**
 * For each key, the faster (smaller) of the seconds measured by several peer runs, with the
 * thread count of the run that gave it.
 * @example
 * fastest([{ threads: 1, seconds: { sum: 0.02 } }, { threads: 2, seconds: { sum: 0.01 } }]).sum; // { seconds: 0.01, threads: 2 }
 */
export function fastest(runs) {
  const out = {};
  for (const run of runs) {
    for (const [key, seconds] of Object.entries(run.seconds)) {
      if (!(key in out) || seconds < out[key].seconds) out[key] = { seconds, threads: run.threads };
    }
  }
  return out;
}

/** A float32 array of `shape` filled with uniform values in [-1, 1) from JS's Math.random. */
export function randomArray(mx, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.random() * 2 - 1;
  const x = mx.reshape(mx.array(v), shape);
  mx.eval(x);
  return x;
}

/** Disposes every Array in a (nested) JS array of results. */
export function disposeAll(x) {
  if (Array.isArray(x)) x.forEach(disposeAll);
  else if (x && typeof x.dispose === "function") x.dispose();
}

/**
 * Waits for everything queued on x's device: reading one element synchronizes the gpu's stream. The
 * views it makes are freed at once (left to the collector, they would keep x's buffer alive, and a
 * timed run would allocate fresh device memory).
 */
export function syncDevice(mx, x) {
  const flat = mx.reshape(x, [-1]), first = flat.index(0);
  first.item();
  first.dispose();
  flat.dispose();
}
