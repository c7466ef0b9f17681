/**
 * Every public export of every package carries a doc comment: the test loads each package's public
 * entry with the TypeScript compiler, follows re-exports to their declarations, and lists every
 * export whose declaration has no JSDoc (neither text nor a tag).
 */
import { fileURLToPath } from "node:url";
import path from "node:path";
import { describe, expect, it } from "vitest";
import ts from "typescript";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Public entry points, and the exports of each that are deliberately not part of the public API. */
const ENTRIES: { file: string; skip: string[] }[] = [
  { file: "packages/core/src/index.ts", skip: ["internal"] },
  { file: "packages/transforms/src/index.ts", skip: [] },
  { file: "packages/transforms/src/testing/index.ts", skip: [] },
  { file: "packages/nn/src/index.ts", skip: [] },
  { file: "packages/optim/src/index.ts", skip: [] },
];

function compilerOptions(): ts.CompilerOptions {
  const configPath = path.join(root, "tsconfig.base.json");
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configPath);
  return { ...parsed.options, noEmit: true, composite: false, declaration: false, declarationMap: false };
}

/**
 * Tags of a file's header comment. TypeScript attaches a JSDoc block to the statement right below
 * it, so a file comment above the first export would otherwise count as that export's doc.
 */
const FILE_TAGS = new Set(["file", "fileoverview", "overview", "module", "packagedocumentation"]);

/**
 * The JSDoc blocks written on a declaration (for a variable, on its statement; for a namespace
 * re-export `export * as ns from`, on that statement), file headers excluded.
 */
function docBlocks(decl: ts.Declaration): ts.JSDoc[] {
  return ts
    .getJSDocCommentsAndTags(ts.isNamespaceExport(decl) ? decl.parent : decl)
    .filter((node): node is ts.JSDoc => ts.isJSDoc(node))
    .filter((doc) => !(doc.tags ?? []).some((tag) => FILE_TAGS.has(tag.tagName.text.toLowerCase())));
}

/** Whether any declaration of the symbol has a JSDoc block with text or a tag. */
function hasDoc(symbol: ts.Symbol): boolean {
  return (symbol.getDeclarations() ?? []).some((decl) =>
    docBlocks(decl).some((doc) => {
      const text = typeof doc.comment === "string" ? doc.comment : ts.getTextOfJSDocComment(doc.comment);
      return (text ?? "").trim() !== "" || (doc.tags?.length ?? 0) > 0;
    }),
  );
}

describe("JSDoc on public exports", () => {
  const files = ENTRIES.map((e) => path.join(root, e.file));
  const program = ts.createProgram(files, compilerOptions());
  const checker = program.getTypeChecker();

  for (const entry of ENTRIES) {
    it(`${entry.file}: every export has a doc comment`, () => {
      const source = program.getSourceFile(path.join(root, entry.file));
      expect(source, `${entry.file} is part of the program`).toBeDefined();
      const moduleSymbol = checker.getSymbolAtLocation(source!);
      expect(moduleSymbol, `${entry.file} is a module`).toBeDefined();
      const exports = checker.getExportsOfModule(moduleSymbol!);
      expect(exports.length, `${entry.file} exports something`).toBeGreaterThan(0);
      const missing: string[] = [];
      for (const exported of exports) {
        const name = exported.getName();
        if (entry.skip.includes(name)) continue;
        const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
        // An alias's own JSDoc (on the export specifier) counts too.
        if (hasDoc(target) || (target !== exported && hasDoc(exported))) continue;
        const decl = target.getDeclarations()?.[0];
        const where = decl
          ? `${path.relative(root, decl.getSourceFile().fileName)}:${decl.getSourceFile().getLineAndCharacterOfPosition(decl.getStart()).line + 1}`
          : "no declaration";
        missing.push(`${name} (${where})`);
      }
      expect(missing, `exports of ${entry.file} without a doc comment`).toEqual([]);
    });
  }
});
