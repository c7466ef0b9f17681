/**
 * The transforms' types: usage.ts (typed calls, with `@ts-expect-error` lines for calls that must
 * not compile) compiles with `tsc --noEmit` against the built declarations, and those declarations
 * give users no `any`.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The .d.ts files directly in `dir`. */
const declarations = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".d.ts"))
    .map((f) => join(dir, f));

/** Source text without comments (prose may say "any"), keeping string literals as they are. */
function stripComments(text: string): string {
  return text.replace(/("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m, str) => str ?? m.replace(/[^\n]/g, " "));
}

describe("types of @tessera/transforms", () => {
  it("test/types/usage.ts compiles with tsc --noEmit", () => {
    const tsc = join(root, "node_modules", ".bin", "tsc");
    const run = spawnSync(tsc, ["-p", join(root, "test", "types"), "--noEmit"], { cwd: root, encoding: "utf8" });
    expect(run.error).toBeUndefined();
    expect(`${run.stdout}${run.stderr}`.trim()).toBe("");
    expect(run.status).toBe(0);
  }, 180_000);

  it("the declarations in dist (and dist/testing) have no `any`", () => {
    const dist = join(root, "packages", "transforms", "dist");
    const files = [...declarations(dist), ...declarations(join(dist, "testing"))];
    expect(files.map((f) => f.slice(dist.length + 1))).toEqual(expect.arrayContaining(["index.d.ts", "grad.d.ts", "vjp.d.ts", "jvp.d.ts", "vmap.d.ts", "testing/index.d.ts"]));
    const found = files.flatMap((f) =>
      stripComments(readFileSync(f, "utf8"))
        .split("\n")
        .flatMap((line, i) => (/\bany\b/.test(line) ? [`${f.slice(dist.length + 1)}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(found).toEqual([]);
  });
});
