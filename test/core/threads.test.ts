/**
 * tessera in Worker threads: each thread owns the arrays it makes (the addon keeps per-thread
 * state; kernels and allocators are shared behind locks). Main thread and Workers compute at the
 * same time, a Worker can be terminated in the middle of evalAsync, and the process can exit
 * during one, without a crash.
 */
import { describe, expect, it } from "vitest";
import { Worker } from "node:worker_threads";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import * as mx from "@tessera/core";

/** The built @tessera/core as a file URL: Workers and child processes import it from there. */
const CORE = pathToFileURL(createRequire(import.meta.url).resolve("@tessera/core")).href;

const WORK = `
import * as mx from "@tessera/core";
import { parentPort } from "node:worker_threads";
const x = mx.reshape(mx.arange(0, 64 * 64, 1, "float32"), [64, 64]).mul(1 / 4096);
let total = 0;
for (let i = 0; i < 200; i++) total += mx.sum(mx.matmul(x, x).add(i)).item();
parentPort.postMessage(total);
`;
const SLOW = `
import * as mx from "@tessera/core";
import { parentPort } from "node:worker_threads";
const x = mx.ones([1200, 1200]);
let y = x;
for (let i = 0; i < 40; i++) y = mx.matmul(y, x).mul(1 / 1200);
parentPort.postMessage("started");
await mx.evalAsync(y);
parentPort.postMessage("done");
`;
/** A Worker running an ES module (a data: URL, so @tessera/core is imported by its file URL). */
const worker = (code: string) =>
  new Worker(new URL(`data:text/javascript,${encodeURIComponent(code.replaceAll('"@tessera/core"', JSON.stringify(CORE)))}`));

describe("Worker threads", () => {
  it("workers and the main thread compute at the same time, with correct results", async () => {
    const x = mx.reshape(mx.arange(0, 64 * 64, 1, "float32"), [64, 64]).mul(1 / 4096);
    let expected = 0;
    for (let i = 0; i < 200; i++) expected += mx.sum(mx.matmul(x, x).add(i)).item() as number;
    const workers = [worker(WORK), worker(WORK)];
    const results = workers.map((w) => new Promise((resolve, reject) => (w.once("message", resolve), w.once("error", reject))));
    let mine = 0;
    for (let i = 0; i < 200; i++) mine += mx.sum(mx.matmul(x, x).add(i)).item() as number;
    expect(await Promise.all(results)).toEqual([expected, expected]);
    expect(mine).toBe(expected);
    await Promise.all(workers.map((w) => w.terminate()));
  }, 60_000);

  it("terminating a worker during evalAsync is safe, and its memory is freed", async () => {
    globalThis.gc!();
    const before = mx.getActiveMemory();
    const w = worker(SLOW);
    await new Promise((resolve) => w.once("message", resolve));
    await new Promise((r) => setTimeout(r, 50));
    await w.terminate();
    expect(mx.array([1, 2]).add(1).tolist()).toEqual([2, 3]);
    // the worker's arrays are freed when it ends (its in-flight run finishes, then drops its outputs)
    for (let i = 0; i < 100 && (globalThis.gc!(), mx.getActiveMemory() > before); i++) await new Promise((r) => setTimeout(r, 50));
    expect(mx.getActiveMemory()).toBeLessThanOrEqual(before);
  }, 60_000);

  it("a handle made by another thread is not usable here", async () => {
    const w = worker(`
      import * as mx from "@tessera/core";
      import { parentPort } from "node:worker_threads";
      const x = mx.array([1, 2, 3]);
      parentPort.postMessage(x.handle);
      setTimeout(() => {}, 1000);
    `);
    const handle = (await new Promise((resolve) => w.once("message", resolve))) as number;
    expect(() => mx.internal.native.read(handle, new Float32Array(3))).toThrow(/not live in this thread/);
    mx.internal.native.free(handle); // not ours: nothing happens
    await w.terminate();
  }, 60_000);

  it("the process can exit during evalAsync", () => {
    const script = `
      import * as mx from "${CORE}";
      const x = mx.ones([1000, 1000]);
      let y = x;
      for (let i = 0; i < 30; i++) y = mx.matmul(y, x).mul(1e-3);
      mx.evalAsync(y);
      setTimeout(() => process.exit(0), 30);
    `;
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
    }
  }, 120_000);
});
