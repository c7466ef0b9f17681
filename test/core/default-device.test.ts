/**
 * TESSERA_DEFAULT_DEVICE (packages/core/src/device.ts): read once when @tessera/core loads, it sets
 * mx.defaultDevice(); a malformed value or a device this machine lacks is an Error at load naming
 * the variable. Each case loads the package in a fresh Node process.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

/** What `mx.defaultDevice()` prints in a process started with TESSERA_DEFAULT_DEVICE=value, or its load error. */
function defaultIn(value: string): string {
  const script = 'import("@tessera/core").then((m) => console.log(JSON.stringify(m.defaultDevice())), (e) => console.log("Error: " + e.message))';
  return execFileSync(process.execPath, ["-e", script], { env: { ...process.env, TESSERA_DEFAULT_DEVICE: value }, encoding: "utf8" }).trim();
}

describe("TESSERA_DEFAULT_DEVICE", () => {
  it("names the default device at load: cpu when empty or cpu, the gpu where there is one, else an Error", () => {
    expect(defaultIn("")).toBe('{"type":"cpu","index":0}');
    expect(defaultIn("cpu")).toBe('{"type":"cpu","index":0}');
    if (mx.isAvailable(mx.gpu)) expect(defaultIn("gpu")).toBe('{"type":"gpu","index":0}');
    else expect(defaultIn("gpu")).toMatch(/^Error: TESSERA_DEFAULT_DEVICE=gpu: device gpu is not available \(available: cpu/);
    expect(defaultIn("gpu:7")).toMatch(/^Error: TESSERA_DEFAULT_DEVICE=gpu:7: device gpu:7 is not available/);
    expect(defaultIn("tpu")).toBe('Error: TESSERA_DEFAULT_DEVICE: expected "cpu", "gpu" or "gpu:<index>"; got "tpu"');
  });
});
