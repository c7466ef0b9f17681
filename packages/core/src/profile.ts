/**
 * @file mx.profile: time per primitive for the evaluations a function causes. The addon times each
 * instruction it runs while a profile is open (to its completion on its device); this module
 * groups the timings by the native op name.
 */
import { isArray } from "./array.js";
import { native } from "./native/binding.js";
import { evaluate, profiledPrograms } from "./eval/eval.js";
import { stepName } from "./eval/program.js";
import { treeLeaves } from "./tree.js";

/** One primitive's share of a profile. */
export interface ProfileRow {
  /** The primitive's name, as `mx.internal.printGraph` shows it; a fused chain of elementwise
   * primitives (one instruction) shows as `fused(mul, add, ...)`. */
  primitive: string;
  /** How many instructions of this primitive ran. */
  calls: number;
  /** Their total time, milliseconds. */
  ms: number;
}

/** What `mx.profile(fn)` returns. */
export interface Profile<T> {
  /** `fn`'s result, evaluated. */
  value: T;
  /** Wall time of the whole call, milliseconds (tracing and dispatch included). */
  wallMs: number;
  /** Time inside instructions, milliseconds (the sum of the rows). */
  kernelMs: number;
  /** One row per primitive, the slowest first. */
  rows: ProfileRow[];
  /** The rows as an aligned table. */
  toString(): string;
}

const NAMES: string[] = native.opTable();
let open = false;

/**
 * Runs `fn`, evaluates the arrays in what it returns (arrays, JS arrays and plain objects), and
 * reports the time of every instruction evaluated meanwhile, grouped by primitive. Profiles do not
 * nest. Timing each instruction to its end adds a little overhead per instruction.
 * @example
 * const p = mx.profile(() => step(x, y));
 * console.log(p.toString());   // primitive, calls, ms, % of kernel time
 */
export function profile<T>(fn: () => T): Profile<T> {
  if (typeof fn !== "function") throw new TypeError(`profile: fn must be a function; got ${typeof fn}`);
  if (open) throw new Error("profile: a profile is already open (profiles do not nest)");
  open = true;
  const t0 = performance.now();
  let raw: Float64Array;
  let value: T;
  native.profileStart();
  profiledPrograms.steps = [];
  const programs = profiledPrograms.steps;
  try {
    value = fn();
    evaluate(treeLeaves([value], isArray, "profile"), "profile");
  } finally {
    raw = native.profileStop();
    profiledPrograms.steps = null;
    open = false;
  }
  const wallMs = performance.now() - t0;
  const byName = new Map<string, ProfileRow>();
  for (let i = 0, run = 0; i < raw.length; run++) {
    const count = raw[i + 1];
    const steps = programs[run];
    i += 2;
    for (let k = 0; k < count; k++, i += 2) {
      const step = steps && steps.length === count ? steps[k] : undefined;
      const name = step?.members ? stepName(step) : NAMES[raw[i]] ?? `op ${raw[i]}`;
      let row = byName.get(name);
      if (!row) byName.set(name, (row = { primitive: name, calls: 0, ms: 0 }));
      row.calls++;
      row.ms += raw[i + 1] / 1e6;
    }
  }
  const rows = [...byName.values()].sort((a, b) => b.ms - a.ms);
  const kernelMs = rows.reduce((s, r) => s + r.ms, 0);
  return { value, wallMs, kernelMs, rows, toString: () => format(rows, kernelMs, wallMs) };
}

function format(rows: ProfileRow[], kernelMs: number, wallMs: number): string {
  const width = Math.max(9, ...rows.map((r) => r.primitive.length));
  const lines = [`${"primitive".padEnd(width)}  calls        ms      %`];
  for (const r of rows) {
    const pct = kernelMs > 0 ? (100 * r.ms) / kernelMs : 0;
    lines.push(`${r.primitive.padEnd(width)}  ${String(r.calls).padStart(5)}  ${r.ms.toFixed(3).padStart(8)}  ${pct.toFixed(1).padStart(5)}`);
  }
  lines.push(`kernels ${kernelMs.toFixed(3)} ms of ${wallMs.toFixed(3)} ms wall`);
  return lines.join("\n");
}
