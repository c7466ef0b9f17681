import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { OP_NAMES } from "../../packages/core/src/native/ops.js";

const { native, registry } = mx.internal;

describe("native op table", () => {
  it("matches the TypeScript opcode list line for line", () => {
    expect(native.opTable()).toEqual([...OP_NAMES]);
  });
  it("every primitive with an opcode names a native op", () => {
    for (const def of registry.values()) {
      if (def.opcode === null) continue;
      expect(native.opTable()[def.opcode]).toBeDefined();
    }
  });
});
