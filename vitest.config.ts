import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    // One process per file: memory figures are per process, and a test file owns them.
    pool: "forks",
    // gc() lets memory tests start from a collected heap; the test device ("cpu:1", a second cpu
    // backend in the addon) lets device tests check where nodes run.
    execArgv: ["--expose-gc"],
    env: { TESSERA_TEST_DEVICE: "1" },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
