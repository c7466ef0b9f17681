/**
 * The documentation ships with the repository: every relative link in README.md, docs/ and the
 * packages' READMEs resolves to a file of the repository (and, for a link to a heading of a
 * markdown file, to a heading that exists), and nothing links outside the repository.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Markdown files under dir, recursively (generated output under docs/reference is skipped). */
function markdownUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return full === path.join(root, "docs", "reference") ? [] : markdownUnder(full);
    return name.endsWith(".md") ? [full] : [];
  });
}

function documentationFiles(): string[] {
  const packages = readdirSync(path.join(root, "packages"))
    .map((p) => path.join(root, "packages", p, "README.md"))
    .filter((f) => existsSync(f));
  return [path.join(root, "README.md"), ...markdownUnder(path.join(root, "docs")), ...packages];
}

/** Markdown text without fenced code blocks and inline code, where link syntax means nothing. */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** The targets of inline links and images, `[text](target)`, and of reference definitions, `[id]: target`. */
function linkTargets(text: string): string[] {
  const body = prose(text);
  const inline = [...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
  const defs = [...body.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]);
  return [...inline, ...defs];
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target); // http:, https:, mailto:, ...

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(readFileSync(file, "utf8")).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe("documentation links", () => {
  const files = documentationFiles();

  it("finds the documentation", () => {
    const rel = files.map((f) => path.relative(root, f));
    expect(rel).toContain("README.md");
    expect(rel).toContain(path.join("docs", "README.md"));
    expect(rel).toContain(path.join("docs", "api.md"));
    expect(rel).toContain(path.join("docs", "evaluation.md"));
    expect(rel).toContain(path.join("docs", "design.md"));
  });

  for (const file of files) {
    const rel = path.relative(root, file);
    it(`${rel}: every relative link resolves inside the repository`, () => {
      const text = readFileSync(file, "utf8");
      const broken: string[] = [];
      for (const target of linkTargets(text)) {
        if (isExternal(target)) continue;
        const [rawPath, anchor] = target.split("#", 2);
        const resolved = rawPath === "" ? file : path.resolve(path.dirname(file), decodeURIComponent(rawPath));
        const inside = resolved === root || resolved.startsWith(root + path.sep);
        if (!inside) {
          broken.push(`${target} (outside the repository)`);
        } else if (!existsSync(resolved)) {
          broken.push(`${target} (no such file)`);
        } else if (anchor && resolved.endsWith(".md") && !anchors(resolved).has(anchor.toLowerCase())) {
          broken.push(`${target} (no heading #${anchor} in ${path.relative(root, resolved)})`);
        }
      }
      expect(broken, `broken links in ${rel}`).toEqual([]);
    });

  }

  it("no markdown file of the repository refers to ../shared", () => {
    const skip = new Set(["node_modules", "dist", "build", "reference", ".git"]);
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const full = path.join(dir, name);
        if (statSync(full).isDirectory()) return skip.has(name) ? [] : walk(full);
        return name.endsWith(".md") ? [full] : [];
      });
    const offenders = walk(root).filter((f) => /\.\.\/shared\b/.test(readFileSync(f, "utf8")));
    expect(offenders.map((f) => path.relative(root, f))).toEqual([]);
  });
});
