/**
 * @file printGraph: the pending graph of some arrays as text, one node a line in execution order
 * (for tests and debugging). Computed arrays the graph reads are listed first as inputs.
 *
 *   a:f32[2,3] b:f32[3] = inputs
 *   c:f32[2,3] = broadcastTo{shape:[2,3]}(b)
 *   d:f32[2,3] = add(a, c)
 *   return d
 */
import type { Array } from "../array.js";
import type { DType } from "../dtype.js";
import { pendingNodes } from "./program.js";
import { deviceName, defaultDevice } from "../device.js";

const SHORT: Record<DType, string> = {
  bool: "bool", uint8: "u8", uint16: "u16", uint32: "u32", uint64: "u64", int8: "i8", int16: "i16", int32: "i32",
  int64: "i64", float16: "f16", bfloat16: "bf16", float32: "f32", float64: "f64",
};

function varName(i: number): string {
  let s = "";
  do {
    s = String.fromCharCode(97 + (i % 26)) + s;
    i = Math.floor(i / 26) - 1;
  } while (i >= 0);
  return s;
}

function fmtParams(params: unknown): string {
  if (!params || typeof params !== "object") return "";
  const entries = Object.entries(params as Record<string, unknown>).filter(([, v]) => typeof v !== "function");
  if (entries.length === 0) return "";
  const fmt = (v: unknown): string =>
    typeof v === "bigint" ? `${v}n` : globalThis.Array.isArray(v) ? `[${v.map(fmt).join(",")}]` : typeof v === "object" && v !== null ? "{...}" : String(v);
  return `{${entries.map(([k, v]) => `${k}:${fmt(v)}`).join(", ")}}`;
}

/**
 * The pending graph that evaluating `arrays` would run, as text.
 * @example
 * const x = mx.array([1, 2]);
 * console.log(mx.internal.printGraph(x.add(1).exp()));
 */
export function printGraph(...arrays: Array[]): string {
  const { order, inputs } = pendingNodes(arrays, "printGraph");
  const names = new Map<Array, string>();
  const name = (a: Array) => {
    let n = names.get(a);
    if (n === undefined) names.set(a, (n = varName(names.size)));
    return n;
  };
  const typed = (a: Array) => `${name(a)}:${SHORT[a.dtype]}[${a.shape.join(",")}]`;
  const lines: string[] = [];
  if (inputs.length) lines.push(`${inputs.map(typed).join(" ")} = inputs`);
  const def = defaultDevice();
  for (const node of order) {
    const outs = node.outputs.map(typed).join(" ");
    const where = node.device === def || deviceName(node.device) === deviceName(def) ? "" : `@${deviceName(node.device)}`;
    lines.push(`${outs} = ${node.prim.name}${where}${fmtParams(node.params)}(${node.inputs.map(name).join(", ")})`);
  }
  lines.push(`return ${arrays.map((a) => (names.has(a) ? name(a) : a.handle ? "<computed>" : name(a))).join(", ")}`);
  return lines.join("\n");
}
