import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";

const { native, registry } = mx.internal;

describe("native op table", () => {
  it("names each op once (core reads the opcodes from it at load)", () => {
    const names = native.opTable();
    expect(new Set(names).size).toBe(names.length);
  });
  it("every primitive with an opcode names a native op", () => {
    for (const def of registry.values()) {
      if (def.opcode === null) continue;
      expect(native.opTable()[def.opcode]).toBeDefined();
    }
  });
});
