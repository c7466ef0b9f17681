// Host time per gpu evaluation, pipelined (docs/cuda.md): products of 1024^3 and 64^3 (float32 with
// TF32 allowed, and bfloat16) and an add, each evaluated 2,000 times back to back with the result
// before freed as the next is queued, after 3,000 evaluations that let V8 optimize the tracing
// code. "host" is the time until the last evaluation returned; "with wait" adds the final wait for
// the device. It runs twice, with products replayed from recorded graphs off
// (TESSERA_PRODUCT_GRAPHS=0) and on, in child processes (the switch is read once per process).
// Run on a machine with a CUDA GPU: `node bench/gpu_host.mjs`.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as mx from "@tessera/core";
import { syncDevice } from "./util.mjs";

if (!mx.isAvailable(mx.gpu)) {
  console.log("bench/gpu_host.mjs: no gpu in this build or on this machine");
  process.exit(0);
}
if (!process.argv.includes("--child")) {
  for (const graphs of ["0", "1", "0", "1"]) {
    const env = { ...process.env, TESSERA_PRODUCT_GRAPHS: graphs, TESSERA_ALLOW_TF32: "1" };
    execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child"], { env, stdio: "inherit" });
  }
  process.exit(0);
}
mx.setDefaultDevice(mx.gpu);
const random = (shape, dtype) => {
  const x = mx.random.normal(shape).astype(dtype);
  mx.eval(x);
  return x;
};
/** [host us, us with the final wait] per evaluation of f, `reps` queued back to back. */
function queued(f, reps) {
  let last = null;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) {
    const r = f();
    mx.eval(r);
    last?.dispose();
    last = r;
  }
  const t1 = process.hrtime.bigint();
  syncDevice(mx, last);
  last.dispose();
  const t2 = process.hrtime.bigint();
  return [Number(t1 - t0) / 1e3 / reps, Number(t2 - t0) / 1e3 / reps];
}
const cases = [];
for (const dtype of ["float32", "bfloat16"]) {
  const a = random([1024, 1024], dtype), b = random([1024, 1024], dtype), s = random([64, 64], dtype);
  const name = dtype === "float32" ? "TF32" : dtype;
  cases.push([`${name} matmul 1024^3`, () => mx.matmul(a, b)], [`${name} matmul 64^3`, () => mx.matmul(s, s)]);
}
const x = random([1024, 1024], "float32");
cases.push(["add 1024^2", () => mx.add(x, x)]);
for (const [, f] of cases) queued(f, 3000);
const state = process.env.TESSERA_PRODUCT_GRAPHS === "0" ? "product graphs off" : "product graphs on ";
for (const [name, f] of cases) {
  const runs = [queued(f, 2000), queued(f, 2000)].map(([h, w]) => `host ${h.toFixed(1)}, with wait ${w.toFixed(1)}`);
  console.log(`${state}  ${name.padEnd(22)} us per evaluation: ${runs.join(" | ")}`);
}
