import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    // One process per file: memory figures are per process, and a test file owns them.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
