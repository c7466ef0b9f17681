/**
 * @file `prepack` of @tessera/core (workspace only; pnpm strips it from the packed manifest):
 * copies the addon's sources, the workspace's native/CMakeLists.txt and native/src/, into this
 * package's native/ (gitignored), with a package.json carrying native/package.json's `binary`
 * setting, so cmake-js builds against the node-api-headers package and downloads nothing.
 * scripts/install.mjs builds that copy where the package is installed. `--clean` (postpack)
 * removes the copy again.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const workspaceNative = resolve(pkgDir, "../../native");
const out = join(pkgDir, "native");

rmSync(out, { recursive: true, force: true });
if (process.argv.includes("--clean")) process.exit(0);

if (!existsSync(join(workspaceNative, "CMakeLists.txt"))) {
  console.error(`@tessera/core prepack: ${workspaceNative}/CMakeLists.txt not found; pack from the tessera workspace`);
  process.exit(1);
}
mkdirSync(out, { recursive: true });
cpSync(join(workspaceNative, "CMakeLists.txt"), join(out, "CMakeLists.txt"));
cpSync(join(workspaceNative, "src"), join(out, "src"), { recursive: true });
const { binary } = JSON.parse(readFileSync(join(workspaceNative, "package.json"), "utf8"));
writeFileSync(
  join(out, "package.json"),
  JSON.stringify(
    {
      private: true,
      description: "The sources of the tessera addon, built by @tessera/core's install script (cmake-js)",
      binary,
    },
    null,
    2,
  ) + "\n",
);
