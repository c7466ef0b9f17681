/**
 * @file `install` script of @tessera/core: builds the native addon from the package's own copy
 * of the sources (native/, put there by scripts/prepack.mjs) into native/build/Release/tessera.node,
 * which src/native/binding.ts loads. cmake-js finds the Node-API headers in the node-api-headers
 * and node-addon-api dependencies (native/package.json sets `binary.napi_versions`), so nothing is
 * downloaded; it needs cmake and a C++17 compiler (and builds the CUDA backend too where a CUDA
 * toolkit is found, unless TESSERA_CUDA=OFF).
 *
 * A no-op inside the tessera workspace, whose root install builds native/ once for every package,
 * and when $TESSERA_ADDON names an existing addon. TESSERA_BUILD_JOBS caps the parallel jobs.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const workspaceRoot = resolve(pkgDir, "../..");

if (existsSync(join(workspaceRoot, "pnpm-workspace.yaml")) && existsSync(join(workspaceRoot, "native/CMakeLists.txt"))) {
  process.exit(0); // the workspace: its root `postinstall` builds native/
}
if (process.env.TESSERA_ADDON && existsSync(process.env.TESSERA_ADDON)) {
  console.log(`@tessera/core: using TESSERA_ADDON=${process.env.TESSERA_ADDON}; not building the addon`);
  process.exit(0);
}
const sources = join(pkgDir, "native");
if (!existsSync(join(sources, "CMakeLists.txt"))) {
  console.error(`@tessera/core: ${sources}/CMakeLists.txt is missing; this package was not packed with its native sources`);
  process.exit(1);
}

const jobs = Number(process.env.TESSERA_BUILD_JOBS) || availableParallelism();
const cmakeJs = createRequire(import.meta.url).resolve("cmake-js/bin/cmake-js");
const args = [cmakeJs, "compile", "-d", sources, "-m", "-p", String(jobs)];
// The CUDA backend is built when a CUDA toolkit is found; TESSERA_CUDA=OFF builds without it.
if (process.env.TESSERA_CUDA === "OFF") args.push("--CDTESSERA_CUDA=OFF");
const result = spawnSync(process.execPath, args, { cwd: pkgDir, stdio: "inherit" });
if (result.status !== 0) {
  console.error(
    "@tessera/core: building the native addon failed (it needs cmake >= 3.15 and a C++17 compiler: g++ or clang++)",
  );
  process.exit(result.status ?? 1);
}
