import { configDefaults, defineConfig } from "vitest/config";

/**
 * Two projects, which `npm test` runs side by side as lanes (test/lanes.ts): "processes" holds the
 * tests that start agent clusters on loopback, "rest" everything else. A plain `npx vitest run`
 * runs both, one file at a time.
 */
const PROCESS_TESTS = "test/integration/process/**/*.test.ts";

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "processes", include: [PROCESS_TESTS] } },
      { extends: true, test: { name: "rest", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, PROCESS_TESTS] } },
    ],
  },
});
