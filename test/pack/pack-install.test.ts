/**
 * @file A user's own project: `pnpm pack` of the four packages, `npm install` of the tarballs into
 * an empty directory outside the repository (which builds the addon from the sources packed into
 * @tessera/core, through its install script), then a script there that imports @tessera/core and
 * @tessera/transforms computes a gradient and an add. Needs the npm registry (cmake-js,
 * node-addon-api, node-api-headers, fast-check), cmake and a C++ compiler.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const pnpm = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).packageManager as string; // pnpm@x.y.z
const packages = ["core", "nn", "optim", "transforms"];
const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
const tarballName = (pkg: string) => `tessera-${pkg}-${manifest(join(repo, "packages", pkg)).version}.tgz`;
const temps: string[] = [];

afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/**
 * The environment of a command run as a user would: without the npm_* and pnpm settings that
 * `npx pnpm test` exports (npm would read npm_config_local_prefix and the like as its own
 * configuration; a user's NPM_CONFIG_* stay), without TESSERA_* (TESSERA_ADDON: the project must
 * load the addon it built; vitest's TESSERA_TEST_DEVICE), with the addon built on 2 jobs.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|pnpm_|PNPM_|TESSERA_)/.test(k) && k !== "INIT_CWD") env[k] = v;
  }
  env.TESSERA_BUILD_JOBS = "2";
  env.TESSERA_CUDA = "OFF"; // the packaging is under test, not the gpu backend (slow to compile)
  return env;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(
      `\`${cmd} ${args.join(" ")}\` in ${cwd} failed (${r.error ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r.stdout;
}

const tmp = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};

const USER_SCRIPT = `
import * as mx from "@tessera/core";
import { grad } from "@tessera/transforms";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";

const x = mx.array([0.5, 1, 2, -3], mx.float64);
const df = grad((w) => mx.sum(mx.square(mx.sin(w))));
const sum = mx.add(mx.array([[1, 2], [3, 4]]), mx.array([10, 20]));
console.log(JSON.stringify({
  grad: df(x).tolist(),
  sum: sum.tolist(),
  modules: [typeof nn, typeof optim],
}));
`;

// npm and its npx come with every Node install a user has; a machine with a bare node binary (the
// lent gpu machine: scripts/gpu/on-device.sh) cannot reach the registry either, so it skips.
const hasNpx = spawnSync("npx", ["--version"], { stdio: "ignore" }).error === undefined;

describe.skipIf(!hasNpx)("packing for a user's own project", () => {
  it(
    "pnpm pack, npm install of the tarballs outside the repo (building the addon), a script runs",
    () => {
      // The tarballs carry dist/: make sure it is current (a no-op after the workspace install).
      run("npx", ["-y", pnpm, "run", "build:ts"], repo);
      const tarballs = tmp("tessera-tgz-");
      run("npx", ["-y", pnpm, "-r", "--filter", "./packages/*", "pack", "--pack-destination", tarballs], repo);
      const tgz = readdirSync(tarballs).filter((f) => f.endsWith(".tgz")).sort();
      expect(tgz).toEqual(packages.map(tarballName));
      expect(existsSync(join(repo, "packages/core/native")), "postpack removes the copied sources").toBe(false);

      const project = tmp("tessera-user-");
      expect(project.startsWith(repo)).toBe(false);
      // allowScripts: what `npm install-scripts approve @tessera/core` records (npm 11 runs an
      // unapproved install script with a warning; older npm ignores the field).
      const allowScripts = { [`file:${join(tarballs, tarballName("core"))}`]: true };
      writeFileSync(
        join(project, "package.json"),
        JSON.stringify({ name: "tessera-user-project", version: "1.0.0", private: true, type: "module", allowScripts }),
      );
      const env = userEnv();
      run(
        "npm",
        ["install", "--no-audit", "--no-fund", "--loglevel=error", ...tgz.map((f) => join(tarballs, f))],
        project,
        env,
      );
      const core = join(project, "node_modules/@tessera/core");
      expect(existsSync(join(core, "native/build/Release/tessera.node")), "the install script built the addon").toBe(
        true,
      );
      for (const pkg of packages) {
        // workspace:* became the version of the dependency; no copy of @tessera/* came from a registry.
        const deps: Record<string, string> = manifest(join(project, "node_modules/@tessera", pkg)).dependencies ?? {};
        for (const [name, range] of Object.entries(deps)) {
          if (!name.startsWith("@tessera/")) continue;
          expect(range, `${pkg} -> ${name}`).toBe(manifest(join(repo, "packages", name.slice(9))).version);
          expect(existsSync(join(project, "node_modules/@tessera", pkg, "node_modules", name))).toBe(false);
        }
      }

      writeFileSync(join(project, "main.mjs"), USER_SCRIPT);
      const out = JSON.parse(run(process.execPath, ["main.mjs"], project, env));
      const xs = [0.5, 1, 2, -3];
      expect(out.grad).toHaveLength(4);
      out.grad.forEach((g: number, i: number) => expect(g).toBeCloseTo(Math.sin(2 * xs[i]), 12)); // d/dx sin²x
      expect(out.sum).toEqual([
        [11, 22],
        [13, 24],
      ]);
      expect(out.modules).toEqual(["object", "object"]);
    },
    600_000,
  );
});
